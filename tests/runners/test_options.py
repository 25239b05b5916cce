"""Runner flags for the engines (no cluster): where the Python SDK workers run for Spark and Flink."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PortableOptions, SetupOptions

from uvd.core.options import pipeline_options


@pytest.mark.parametrize(
    "args",
    [
        ["--runner=SparkRunner", "--job_endpoint=127.0.0.1:8099"],
        ["--runner=FlinkRunner", "--job_endpoint=localhost:8199"],
        ["--runner=SparkRunner", "--job_endpoint=127.0.0.1:8099", "--spark_master_url=spark://127.0.0.1:7077"],
    ],
)
def test_a_job_server_on_this_machine_runs_the_workers_in_process(args):
    opts = pipeline_options(args)
    assert opts.view_as(PortableOptions).environment_type == "LOOPBACK"
    assert opts.view_as(SetupOptions).setup_file is None  # nothing to install: the workers are this process


@pytest.mark.parametrize(
    "args",
    [
        ["--runner=SparkRunner", "--job_endpoint=jobserver:8099"],
        ["--runner=SparkRunner", "--job_endpoint=127.0.0.1:8099", "--spark_master_url=spark://10.1.2.3:7077"],
        ["--runner=FlinkRunner", "--job_endpoint=127.0.0.1:8199", "--flink_master=jobmanager:8081"],
        ["--runner=PortableRunner", "--job_endpoint=localhost:8099"],
    ],
)
def test_a_remote_cluster_keeps_beams_default_environment(args):
    opts = pipeline_options(args)
    assert opts.view_as(PortableOptions).environment_type is None
    assert opts.view_as(SetupOptions).setup_file.endswith("pyproject.toml")


def test_an_explicit_environment_is_kept():
    opts = pipeline_options(
        [
            "--runner=SparkRunner",
            "--job_endpoint=127.0.0.1:8099",
            "--environment_type=EXTERNAL",
            "--environment_config=127.0.0.1:50000",
        ]
    )
    assert opts.view_as(PortableOptions).environment_type == "EXTERNAL"

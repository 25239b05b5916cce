"""Runner choice by options alone: each runner's flags assemble, and missing ones name the fix."""

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from uvd.config import ConfigError
from uvd.core.options import pipeline_options

REPO = Path(__file__).resolve().parents[2]
DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=us-central1", "--temp_location=gs://b/tmp"]


def test_dataflow_options_assemble_and_ship_the_package():
    opts = pipeline_options(DATAFLOW + ["--max_num_workers=50"])
    assert opts.view_as(StandardOptions).runner == "DataflowRunner"
    gcp = opts.view_as(GoogleCloudOptions)
    assert (gcp.project, gcp.region, gcp.temp_location) == ("p", "us-central1", "gs://b/tmp")
    assert opts.view_as(WorkerOptions).max_num_workers == 50
    assert opts.view_as(SetupOptions).setup_file == str(REPO / "pyproject.toml")


def test_dataflow_with_container_does_not_rebuild_the_package():
    opts = pipeline_options(DATAFLOW + ["--sdk_container_image=reg/uvd:1", "--sdk_location=container"])
    assert opts.view_as(WorkerOptions).sdk_container_image == "reg/uvd:1"
    assert opts.view_as(SetupOptions).setup_file is None


@pytest.mark.parametrize("drop, field", [(1, "project"), (2, "region"), (3, "temp_location")])
def test_dataflow_missing_flag_names_it(drop, field):
    args = [a for i, a in enumerate(DATAFLOW) if i != drop]
    with pytest.raises(ConfigError, match=rf"^{field}: .*--{field}="):
        pipeline_options(args)


def test_dataflow_temp_must_be_gcs():
    with pytest.raises(ConfigError, match="temp_location: .*gs://"):
        pipeline_options(DATAFLOW[:3] + ["--temp_location=/tmp/x"])


def test_spark_and_portable_need_a_job_server():
    with pytest.raises(ConfigError, match="job_endpoint"):
        pipeline_options(["--runner=PortableRunner"])
    with pytest.raises(ConfigError, match="spark_master_url"):
        pipeline_options(["--runner=SparkRunner"])
    opts = pipeline_options(["--runner=SparkRunner", "--spark_master_url=spark://h:7077"])
    assert opts.get_all_options()["spark_master_url"] == "spark://h:7077"
    opts = pipeline_options(["--runner=PortableRunner", "--job_endpoint=localhost:8099"])
    assert opts.view_as(PortableOptions).job_endpoint == "localhost:8099"
    assert opts.view_as(SetupOptions).setup_file.endswith("pyproject.toml")


def test_portable_embedded_loopback_runs_here():
    opts = pipeline_options(["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"])
    assert opts.view_as(SetupOptions).setup_file is None  # workers are this process
    with beam.Pipeline(options=opts) as p:
        counted = p | beam.Create(range(10)) | beam.combiners.Count.Globally()
        from apache_beam.testing.util import assert_that, equal_to

        assert_that(counted, equal_to([10]))


def test_worker_container_matches_the_installed_beam():
    dockerfile = (REPO / "docker" / "worker.Dockerfile").read_text()
    assert f"ARG BEAM_VERSION={beam.__version__}" in dockerfile
    assert "apache/beam_python${PY_VERSION}_sdk:${BEAM_VERSION}" in dockerfile
    assert "scripts/apt-packages.txt" in dockerfile

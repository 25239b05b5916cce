"""Beam's portable path (the one Spark and Flink use) writes the same shards as the local runner."""

from __future__ import annotations

import glob
import os

from apache_beam.options.pipeline_options import PipelineOptions

from tests.pipelines.fake_sources import FakeTokenize, fake_module
from tests.pipelines.test_dataset import _manifest
from uvd.assembly import dataset
from uvd.core.options import pipeline_options


def _shard_bytes(out: str) -> dict[str, bytes]:
    files = sorted(glob.glob(os.path.join(out, "*-of-*.parquet")) + glob.glob(os.path.join(out, "failures", "*")))
    return {os.path.relpath(f, out): open(f, "rb").read() for f in files}


def _build(tmp_path, name: str, options: PipelineOptions) -> dict[str, bytes]:
    out = str(tmp_path / name)
    dataset.build_dataset(
        _manifest(tmp_path), out, options, modules={"singles": fake_module, "clips": fake_module}, tokenize=FakeTokenize
    )
    return _shard_bytes(out)


def test_portable_runner_equals_local_runner_byte_for_byte(tmp_path):
    local = _build(tmp_path, "local", PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"]))
    # The same options path users take (uvd.core.options): embedded job server, LOOPBACK workers.
    portable = _build(
        tmp_path,
        "portable",
        pipeline_options(["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]),
    )
    assert any(name.startswith("train-") for name in local)
    assert portable.keys() == local.keys()
    assert all(portable[name] == local[name] for name in local), "portable shards differ from local ones"

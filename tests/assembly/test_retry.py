"""`uvd retry`: only units with retriable failures (timeouts, 5xx) run again; the rest is reused."""

from __future__ import annotations

import os
from types import SimpleNamespace

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from tests.pipelines.fake_sources import FakeTokenize
from uvd import schema
from uvd.assembly import dataset, retry
from uvd.assembly import manifest as M
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, RunSource


class Flaky:
    """Record i -> one image sentence; while `outage` exists, every 5th answers 503 and i=7 is a 404."""

    def __init__(self, outage: str) -> None:
        self.outage = outage

    def __call__(self, i: int):
        if i == 7:
            yield FAILURES, schema.failure_row(str(i), "laion", "flaky", "http_404")
            return
        if i % 5 == 0 and os.path.exists(self.outage):
            yield FAILURES, schema.failure_row(str(i), "laion", "flaky", "http_503")
            return
        yield IMAGES, {"image_id": f"img{i}", "image": b"png", "source": "laion", "provenance": str(i)}
        yield SENTENCES, schema.sentence_row(f"s{i}", "laion", "single", [f"img{i}"], f"img{i}")


class FlakySource(beam.PTransform):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config

    def expand(self, pbegin):
        return (
            pbegin
            | beam.Create(list(range(self.config["n"])))
            | RunSource(Flaky(self.config["outage"]), source="laion", stage="flaky")
        )


def test_retry_reruns_only_units_with_retriable_failures(tmp_path):
    outage = tmp_path / "outage"  # a folder: options naming a file would count its mtime in the unit key
    outage.mkdir()
    m = M.parse(
        {
            "name": "retry",
            "sources": {
                "web": {
                    "stage": "laion",
                    "input": str(tmp_path),
                    "weight": 1,
                    "options": {"n": 30, "outage": str(outage)},
                }
            },
        },
        base=tmp_path,
    )
    out = str(tmp_path / "out")
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    module = SimpleNamespace(__name__="flaky", source_transform=FlakySource)

    def build():
        return dataset.build_dataset(m, out, options, modules={"web": module}, tokenize=FakeTokenize)

    first = build()
    outage.rmdir()  # the server is back
    seen, dropped = retry.invalidate_retriable(os.path.join(out, "cache"))
    assert (seen, dropped) == (30, 6)
    second = build()
    assert second["work"]["units computed"] == 6 and second["work"]["units reused"] == 24
    failures = pq.read_table(os.path.join(out, "failures")).to_pylist()
    assert [(f["record_id"], f["reason"]) for f in failures] == [("7", "http_404")]
    total = lambda s: sum(t["sentences"] for t in s["totals"]["by_split"].values())  # noqa: E731
    assert total(first) == 23 and total(second) == 29

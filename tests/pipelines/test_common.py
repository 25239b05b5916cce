"""RunSource routes rows, turns exceptions into failure rows, and counts everything."""

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from uvd.core.options import pipeline_options
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, RunSource, merge_outputs
from uvd.schema import failure_row


def toy_source(n: int):
    """Odd numbers become an image + sentence, multiples of 4 a failure, 6 raises (a bug)."""
    if n == 6:
        raise KeyError("boom")
    if n % 4 == 0:
        yield FAILURES, failure_row(str(n), "toy", "toy", "multiple_of_4", status="filtered")
        return
    yield IMAGES, {"image_id": f"i{n}"}
    yield SENTENCES, {"sentence_id": f"s{n}"}


def test_run_source_routes_and_catches():
    with TestPipeline() as p:
        out = p | beam.Create([1, 2, 4, 6]) | RunSource(toy_source, "toy", "toy")
        assert_that(out.images | "ImgIds" >> beam.Map(lambda r: r["image_id"]), equal_to(["i1", "i2"]), label="img")
        assert_that(
            out.sentences | "SentIds" >> beam.Map(lambda r: r["sentence_id"]), equal_to(["s1", "s2"]), label="sent"
        )
        assert_that(
            out.failures | "Reasons" >> beam.Map(lambda r: (r["record_id"], r["status"], r["reason"])),
            equal_to([("4", "filtered", "multiple_of_4"), ("6", "failed", "exception_KeyError")]),
            label="fail",
        )


def test_run_source_counts_metrics():
    p = TestPipeline(options=pipeline_options(["--direct_running_mode=in_memory", "--direct_num_workers=1"]))
    _ = p | beam.Create([1, 3, 4, 6]) | RunSource(toy_source, "toy", "toy")
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "uvd.toy"
    }
    assert counters == {
        "inputs": 4,
        "images": 2,
        "sentences": 2,
        "failures": 2,
        # what became of each input record: the card reconciles inputs with these
        "records_with_sentences": 2,
        "records_failures_only": 2,
    }


def test_merge_outputs_flattens_sources():
    with TestPipeline() as p:
        a = p | "A" >> beam.Create([1]) | "RA" >> RunSource(toy_source, "toy", "toy")
        b = p | "B" >> beam.Create([3, 4]) | "RB" >> RunSource(toy_source, "toy", "toy")
        merged = merge_outputs([a, b])
        assert_that(merged.images | beam.combiners.Count.Globally(), equal_to([2]), label="n_img")
        assert_that(merged.failures | "N" >> beam.combiners.Count.Globally(), equal_to([1]), label="n_fail")


def test_pipeline_options_default_runner_and_passthrough():
    opts = pipeline_options([])
    assert opts.view_as(StandardOptions).runner == "DirectRunner"
    assert opts.view_as(DirectOptions).direct_num_workers >= 1
    opts = pipeline_options(
        ["--runner=DataflowRunner", "--project=p", "--region=r", "--temp_location=gs://b/t", "--direct_num_workers=7"]
    )
    assert opts.view_as(StandardOptions).runner == "DataflowRunner"
    assert opts.get_all_options()["project"] == "p"
    assert opts.view_as(DirectOptions).direct_num_workers == 7

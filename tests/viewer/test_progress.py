"""Live progress lines and the closing summary per stage."""

from __future__ import annotations

import io

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from uvd.core.metrics import Progress, format_duration
from uvd.core.outputs import FAILURES, SENTENCES, RunSource
from uvd.core.summary import stage_summary, summary_line
from uvd.schema import failure_row


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_line_has_done_total_rate_and_eta():
    clock, out = _Clock(), io.StringIO()
    p = Progress("laion", total=1000, every_s=5.0, stream=out, clock=clock)
    for _ in range(100):
        p.add("in")
    p.add("failures", 3)
    assert out.getvalue() == ""  # throttled: nothing before every_s
    clock.t += 10.0
    p.add("in")
    assert out.getvalue() == "[uvd laion] 101/1,000 in (10%), 10.1/s, ETA 1m29s | 3 failures\n"
    clock.t += 90.0
    p.counts["in"] = 1000
    assert p.line().startswith("[uvd laion] 1,000/1,000 in (100%), 10.0/s, done in 1m40s")
    assert Progress("video", clock=clock).line().startswith("[uvd video] 0 in, 0.0/s")


def test_format_duration():
    assert [format_duration(s) for s in (9.4, 220, 3725)] == ["9s", "3m40s", "1h02m"]


def test_shared_progress_is_one_line_per_stage_until_its_last_user_is_done(capsys):
    a = Progress.shared("t_stage", every_s=1e9)
    b = Progress.shared("t_stage", total=7)
    assert a is b and a.total == 7
    a.add("in", 2)
    b.add("in", 3)
    a.release()
    assert capsys.readouterr().err == ""
    b.release()
    assert capsys.readouterr().err.startswith("[uvd t_stage] 5/7 in (71%)")
    assert Progress.shared("t_stage").counts == {}  # a new run starts from zero


def test_summary_line_from_counters():
    counts = {
        ("uvd.laion", "inputs"): 31,
        ("uvd.laion", "sentences"): 22,
        ("uvd.laion", "images"): 22,
        ("uvd.laion", "failures"): 9,
        ("uvd.laion.failed", "truncated"): 2,
        ("uvd.laion.failed", "http_404"): 3,
        ("uvd.laion.filtered", "too_small"): 4,
        ("uvd.laion", "records_with_sentences"): 22,
        ("uvd.video", "inputs"): 5,
    }
    assert summary_line(counts, "laion", "out/failures/") == (
        "[uvd laion] 31 inputs -> 22 sentences, 22 images; 9 failures (failed 5: http_404 3, truncated 2; "
        "filtered 4: too_small 4); tables: out/failures/"
    )


def _rows(x: int):
    if x % 3 == 0:
        yield FAILURES, failure_row(str(x), "toy", "toy", "divisible_by_3", status="filtered")
    else:
        yield SENTENCES, {"x": x}


def test_stage_summary_reads_a_real_pipelines_counters(capsys):
    p = beam.Pipeline(options=PipelineOptions([]))
    _ = p | beam.Create(range(10)) | RunSource(_rows, source="toy", stage="toy", total=10)
    result = p.run()
    result.wait_until_finish()
    line = stage_summary(result, "toy", "/o")
    assert line == (
        "[uvd toy] 10 inputs -> 6 sentences; 4 failures (filtered 4: divisible_by_3 4); "
        "tables: /o/{images,sentences,failures}/"
    )
    assert "[uvd toy] 10/10 in (100%)" in capsys.readouterr().err  # the closing progress line, with its total


def test_laion_total_comes_from_the_parquet_footers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from uvd.sources.laion.reader import metadata_rows

    for i, n in enumerate((3, 5)):
        pq.write_table(pa.table({"URL": [f"file:{j}.jpg" for j in range(n)]}), tmp_path / f"part-{i}.parquet")
    assert metadata_rows(str(tmp_path / "*.parquet")) == 8
    assert metadata_rows(str(tmp_path / "*.parquet"), max_files=1) is None  # too many footers to read up front
    assert metadata_rows(str(tmp_path / "none-*.parquet")) is None

"""Mixing: rates from weights, seeded sampling, and proportions on a synthetic run of thousands."""

from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from uvd.assembly import mix


def test_total_defaults_to_the_largest_mixture_without_repeats():
    total, plans = mix.plan_mixture({"a": 1000, "b": 100}, {"a": 1, "b": 1}, {})
    assert total == 200  # b has only 100 = half of the mixture
    assert plans["a"].rate == pytest.approx(0.1) and plans["b"].rate == 1.0
    assert not plans["a"].short and not plans["b"].short


def test_replacement_lets_a_scarce_source_repeat():
    total, plans = mix.plan_mixture({"a": 1000, "b": 100}, {"a": 3, "b": 1}, {"b": True})
    assert total == pytest.approx(1000 / 0.75)
    assert plans["a"].rate == 1.0 and plans["b"].rate == pytest.approx(total * 0.25 / 100)


def test_explicit_total_marks_short_sources_without_replacement():
    total, plans = mix.plan_mixture({"a": 1000, "b": 10}, {"a": 1, "b": 1}, {}, total=100)
    assert total == 100
    assert plans["a"].rate == pytest.approx(0.05) and plans["b"].rate == 1.0 and plans["b"].short
    _, plans = mix.plan_mixture({"a": 1000, "b": 0}, {"a": 1, "b": 1}, {"b": True}, total=100)
    assert plans["b"].rate == 0.0


def test_copies_are_seeded_and_average_the_rate():
    ids = [f"s{i}" for i in range(20000)]
    for rate in (0.3, 1.0, 2.5):
        c = np.array([mix.copies(0, i, rate) for i in ids])
        assert abs(c.mean() - rate) < 0.02
        assert set(np.unique(c)) <= {int(np.floor(rate)), int(np.ceil(rate))}
    assert [mix.copies(0, i, 0.5) for i in ids[:200]] == [mix.copies(0, i, 0.5) for i in ids[:200]]
    assert [mix.copies(0, i, 0.5) for i in ids[:200]] != [mix.copies(1, i, 0.5) for i in ids[:200]]


def test_repeats_get_unique_ids():
    row = {"sentence_id": "x", "entry": "a", "tokens": np.zeros(256)}
    out = list(mix.sample_row(row, 0, {"a": 3.0}))
    assert [r["sentence_id"] for r in out] == ["x", "x~r1", "x~r2"]


def _rows(entry: str, n: int, images: int) -> list[dict]:
    return [
        {"sentence_id": f"{entry}{i}", "entry": entry, "tokens": np.zeros(256 * images, np.uint16)} for i in range(n)
    ]


def _mix_plain(rows: list[dict], weights, replacement, unit: str, seed: int) -> list[dict]:
    available: dict[str, int] = {}
    for r in rows:
        available[r["entry"]] = available.get(r["entry"], 0) + mix.amount(r, unit)
    _, plans = mix.plan_mixture(available, weights, replacement)
    rates = {e: p.rate for e, p in plans.items()}
    return [m for r in rows for m in mix.sample_row(r, seed, rates)]


WEIGHTS = {"laion": 88.5, "video": 4.24, "ann": 7.15}  # UVDv1's category shares
REPLACEMENT = {"video": True, "ann": True}


@pytest.mark.parametrize("unit", ["sentences", "tokens"])
def test_mixture_proportions_on_thousands_of_sentences(unit):
    rows = _rows("laion", 20000, 1) + _rows("video", 300, 16) + _rows("ann", 3000, 2)
    mixed = _mix_plain(rows, WEIGHTS, REPLACEMENT, unit, seed=3)
    sizes = {e: 0 for e in WEIGHTS}
    for r in mixed:
        sizes[r["entry"]] += mix.amount(r, unit)
    total = sum(sizes.values())
    for e, w in WEIGHTS.items():
        share = w / sum(WEIGHTS.values())
        assert abs(sizes[e] / total - share) < 0.1 * share + 0.002, (e, sizes[e] / total, share)
    assert sizes["laion"] == 20000 * mix.amount(rows[0], unit)  # the scarce, no-repeat entry is kept whole
    ids = [r["sentence_id"] for r in mixed]
    assert len(ids) == len(set(ids))
    if unit == "sentences":
        assert sizes["video"] > 300  # upsampled with replacement


def test_mix_transform_equals_the_plain_functions_and_writes_its_summary(tmp_path):
    rows = _rows("laion", 1500, 1) + _rows("video", 20, 16) + _rows("ann", 200, 2)
    expected = sorted(r["sentence_id"] for r in _mix_plain(rows, WEIGHTS, REPLACEMENT, "tokens", seed=5))
    out = str(tmp_path)
    os.makedirs(os.path.join(out, "stats"))
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])) as p:
        mixed = p | beam.Create(rows) | mix.Mix(WEIGHTS, REPLACEMENT, "tokens", seed=5, output=out)
        _ = (
            mixed
            | beam.Map(lambda r: r["sentence_id"])
            | beam.io.WriteToText(os.path.join(out, "ids"), shard_name_template="")
        )
    got = sorted(open(os.path.join(out, "ids")).read().split())
    assert got == expected
    summary = json.load(open(os.path.join(out, "stats", "mixture.json")))
    assert summary["weights_by"] == "tokens" and summary["seed"] == 5
    sampled = {e["entry"]: e["sampled"] for e in summary["entries"]}
    assert sampled == {e: sum(1 for i in got if i.startswith(e)) for e in WEIGHTS}
    assert sum(e["share"] for e in summary["entries"]) == pytest.approx(1.0)

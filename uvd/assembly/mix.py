"""Mixing: up/down-sample each manifest entry's sentences to its weight, seeded and deterministic.

Weights are shares of the final dataset, measured in sentences or in tokens (the manifest says
which). With `total` unset, the mixture is the largest one that needs no repetition: the scarcest
entry (available / weight) sets the size. An entry is repeated only when its manifest entry says
`replacement: true`; otherwise a short entry keeps all it has and the card marks it `short`.

Every sentence is kept `floor(rate)` times plus once more with probability `frac(rate)`, decided by
a seeded hash of its id: no shared random state, so any runner and worker count picks the same
rows. Repeats get ids `<sentence_id>~r<k>` (k >= 1), so every shard row id stays unique.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from uvd.core.files import write_json
from uvd.core.metrics import SumCounts
from uvd.hashing import unit_hash

UNITS = ("sentences", "tokens")


@dataclass(frozen=True)
class EntryPlan:
    entry: str
    weight: float  # normalised share of the mixture
    available: float  # sentences or tokens the entry has
    target: float  # what its weight asks for
    rate: float  # expected copies per sentence
    short: bool  # available < target and no replacement


def plan_mixture(
    available: dict[str, float], weights: dict[str, float], replacement: dict[str, bool], total: float | None = None
) -> tuple[float, dict[str, EntryPlan]]:
    """Per entry sampling rates for a mixture of `total` units (None: the largest without repeats)."""
    wsum = sum(weights.values())
    if wsum <= 0:
        raise ValueError("mixture weights must sum to a positive number")
    shares = {e: w / wsum for e, w in weights.items()}
    if total is None:
        limits = [available.get(e, 0) / s for e, s in shares.items() if not replacement.get(e, False)]
        total = min(limits) if limits else float(sum(available.get(e, 0) for e in shares))
    plans = {}
    for e, share in shares.items():
        have = float(available.get(e, 0))
        target = share * total
        rate = target / have if have > 0 else 0.0
        short = have < target * (1 - 1e-9) and not replacement.get(e, False)
        if not replacement.get(e, False):
            rate = min(rate, 1.0)
        plans[e] = EntryPlan(e, share, have, target, rate, short)
    return total, plans


def copies(seed: int, sentence_id: str, rate: float) -> int:
    """How many times a sentence is kept: floor(rate) + Bernoulli(frac(rate)) from a seeded hash."""
    whole = math.floor(rate)
    return whole + (1 if unit_hash(seed, "mix", sentence_id) < rate - whole else 0)


def repeat_id(sentence_id: str, k: int) -> str:
    return sentence_id if k == 0 else f"{sentence_id}~r{k}"


def sample_row(row: dict, seed: int, rates: dict[str, float]) -> Iterator[dict]:
    for k in range(copies(seed, row["sentence_id"], rates.get(row["entry"], 0.0))):
        yield row if k == 0 else {**row, "sentence_id": repeat_id(row["sentence_id"], k)}


def amount(row: dict, unit: str) -> int:
    return 1 if unit == "sentences" else len(row["tokens"])


class _SumPerEntry(SumCounts):
    def __init__(self, unit: str) -> None:
        self.unit = unit

    def add_input(self, acc: dict, row: dict) -> dict:
        acc[row["entry"]] = acc.get(row["entry"], 0) + amount(row, self.unit)
        return acc


class _CountEntries(_SumPerEntry):
    def add_input(self, acc: dict, row: dict) -> dict:
        acc[row["entry"]] = acc.get(row["entry"], 0) + 1
        return acc


class Mix(beam.PTransform):
    """Composed rows (with `entry`) -> the sampled mixture; writes `<output>/stats/mixture.json`.

    The per-entry totals are one small singleton side input; nothing is gathered per entry.
    """

    def __init__(
        self,
        weights: dict[str, float],
        replacement: dict[str, bool],
        weights_by: str = "sentences",
        total: float | None = None,
        seed: int = 0,
        output: str | None = None,
    ) -> None:
        super().__init__()
        if weights_by not in UNITS:
            raise ValueError(f"weights_by must be one of {UNITS}, got {weights_by!r}")
        self.weights, self.replacement, self.unit = dict(weights), dict(replacement), weights_by
        self.total, self.seed, self.output = total, seed, output

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        weights, replacement, unit, total, seed = self.weights, self.replacement, self.unit, self.total, self.seed
        available = rows | "Available" >> beam.CombineGlobally(_SumPerEntry(unit))
        plan = available | "Plan" >> beam.Map(lambda a: plan_mixture(a, weights, replacement, total))
        rates = plan | "Rates" >> beam.Map(lambda tp: {e: p.rate for e, p in tp[1].items()})
        mixed = rows | "Sample" >> beam.FlatMap(sample_row, seed=seed, rates=beam.pvalue.AsSingleton(rates))
        if self.output:
            sampled = mixed | "Sampled" >> beam.CombineGlobally(_CountEntries(unit))
            path = FileSystems.join(self.output, "stats", "mixture.json")
            _ = plan | "Summary" >> beam.Map(
                _write_summary,
                sampled=beam.pvalue.AsSingleton(sampled),
                sampled_units=beam.pvalue.AsSingleton(
                    mixed | "SampledUnits" >> beam.CombineGlobally(_SumPerEntry(unit))
                ),
                path=path,
                unit=unit,
                seed=seed,
            )
        return mixed


def _write_summary(
    total_plans: tuple[float, dict[str, EntryPlan]], sampled: dict, sampled_units: dict, path: str, unit: str, seed: int
) -> str:
    total, plans = total_plans
    all_units = sum(sampled_units.values()) or 1
    entries = [
        asdict(p) | {"sampled": sampled.get(e, 0), "share": sampled_units.get(e, 0) / all_units}
        for e, p in sorted(plans.items())
    ]
    write_json(path, {"weights_by": unit, "seed": seed, "total": total, "entries": entries})
    return path

"""A closing summary per stage, from the Beam counters every stage keeps (uvd.<stage>/<tag> and
uvd.<stage>.<status>/<reason>): inputs, outputs, failures by reason, and where the tables are.

    [uvd laion] 31 inputs -> 22 sentences, 22 images; 9 failures (failed 5: truncated 1, ...; filtered 4: ...)
                tables: out/laion/{images,sentences,failures}/

One plain function over `PipelineResult.metrics()`, so every stage runner prints the same thing.
"""

from __future__ import annotations

import logging
from typing import Any

from uvd.schema import FAILURE_STATUSES

log = logging.getLogger("uvd")
OUTPUT_TAGS = ("sentences", "images", "failures")


def counters(result: Any) -> dict[tuple[str, str], int] | None:
    """(namespace, name) -> value of every uvd.* counter, or None when the runner reports no metrics."""
    try:
        from apache_beam.metrics.metric import MetricsFilter

        found = result.metrics().query(MetricsFilter())["counters"]
    except Exception as exc:  # noqa: BLE001 - a runner without metrics still finishes
        log.debug("no Beam metrics: %s", exc)
        return None
    out: dict[tuple[str, str], int] = {}
    for c in found:
        ns, name = c.key.metric.namespace, c.key.metric.name
        if ns.startswith("uvd."):
            value = c.committed if c.committed is not None else c.attempted
            out[(ns, name)] = out.get((ns, name), 0) + int(value or 0)
    return out


def stages(counts: dict[tuple[str, str], int]) -> list[str]:
    """The stages that counted inputs (namespaces uvd.<stage> with an `inputs` counter), in name order."""
    return sorted({ns[len("uvd.") :] for ns, name in counts if ns.count(".") == 1 and name == "inputs"})


def summary_line(counts: dict[tuple[str, str], int], stage: str, where: str) -> str:
    """The summary of one stage from already-gathered counters (pure: tests build the dict by hand)."""
    main = {name: n for (ns, name), n in counts.items() if ns == f"uvd.{stage}"}
    parts = [f"{main.get('inputs', 0):,} inputs ->"]
    outs = [f"{main[t]:,} {t}" for t in OUTPUT_TAGS[:2] if t in main]
    parts.append(", ".join(outs) if outs else "no sentences or images")
    by_status: dict[str, list[tuple[int, str]]] = {}
    for (ns, name), n in counts.items():
        status = ns[len(f"uvd.{stage}.") :] if ns.startswith(f"uvd.{stage}.") else None
        if status in FAILURE_STATUSES:
            by_status.setdefault(status, []).append((n, name))
    failures = main.get("failures", sum(n for rows in by_status.values() for n, _ in rows))
    text = " ".join(parts) + f"; {failures:,} failures"
    if by_status:
        groups = []
        for status in FAILURE_STATUSES:
            rows = sorted(by_status.get(status, []), key=lambda r: (-r[0], r[1]))
            if rows:
                total = sum(n for n, _ in rows)
                groups.append(f"{status} {total:,}: " + ", ".join(f"{name} {n:,}" for n, name in rows))
        text += " (" + "; ".join(groups) + ")"
    extra = {
        k: v for k, v in main.items() if k not in ("inputs", "total", *OUTPUT_TAGS) and not k.startswith("records_")
    }
    if extra:
        text += "; " + ", ".join(f"{k} {v:,}" for k, v in sorted(extra.items()))
    return f"[uvd {stage}] {text}; tables: {where}"


def stage_summary(result: Any, stage: str, output: str, where: str | None = None) -> str:
    """The closing line of `stage` after `result` finished; `where` says where its tables are (default:
    the images/, sentences/ and failures/ tables a source stage writes under `output`)."""
    where = where or f"{output.rstrip('/')}/{{images,sentences,failures}}/"
    counts = counters(result)
    if counts is None:
        return f"[uvd {stage}] this runner reports no Beam metrics; tables: {where}"
    return summary_line(counts, stage, where)


def stage_summaries(result: Any, output: str, where: str | None = None) -> list[str]:
    """One closing line per stage that ran in `result` (a dataset runs several in one pipeline)."""
    counts = counters(result)
    if counts is None:
        return [f"[uvd] this runner reports no Beam metrics; tables under {output}"]
    return [summary_line(counts, s, where or f"{output.rstrip('/')}/failures/") for s in stages(counts)]

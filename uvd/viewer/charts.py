"""Small inline SVG charts: drawn once at build time, so the pages need no chart library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#bab0ac")


def colors(series: list[str]) -> dict[str, str]:
    """A stable colour per series name (train and validation first, as everywhere in the viewer)."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}


def _fmt(v: float) -> str:
    if v >= 1e9:
        return f"{v / 1e9:.1f}G"
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:,.0f}"


def legend(series: list[str], x: float = 0, y: float = 10, c: dict[str, str] | None = None) -> str:
    c = c or colors(series)
    parts, dx = [], x
    for s in series:
        parts.append(
            f'<rect x="{dx:.0f}" y="{y - 9}" width="10" height="10" rx="2" fill="{c[s]}"/>'
            f'<text x="{dx + 14:.0f}" y="{y}" class="lg">{escape(s)}</text>'
        )
        dx += 24 + 7 * len(s)
    return "".join(parts)


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    series: list[str],
    width: int = 560,
    label_width: int = 190,
    bar_height: int = 16,
    gap: int = 5,
    aria: str = "",
) -> str:
    """Horizontal bars, one per (label, {series: value}) row, stacked in `series` order."""
    if not rows:
        return '<p class="empty">nothing to chart</p>'
    c = colors(series)
    top = 22
    plot = width - label_width - 60
    peak = max(sum(v.values()) for _, v in rows) or 1
    height = top + len(rows) * (bar_height + gap)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(aria)}">',
        legend(series, label_width, 12),
    ]
    for i, (label, values) in enumerate(rows):
        y = top + i * (bar_height + gap)
        out.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 4}" class="lb" text-anchor="end">{escape(label)}</text>'
        )
        x = float(label_width)
        for s in series:
            v = values.get(s, 0)
            if v <= 0:
                continue
            w = max(plot * v / peak, 1.0)
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{c[s]}">'
                f"<title>{escape(label)} {escape(s)}: {v:,.0f}</title></rect>"
            )
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + bar_height - 4}" class="val">{_fmt(sum(values.values()))}</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_columns(
    bins: list[str], stacks: dict[str, list[float]], width: int = 560, height: int = 220, aria: str = ""
) -> str:
    """Vertical columns, one per bin, each stacked from `stacks` (series -> one value per bin)."""
    series = list(stacks)
    if not series:
        return '<p class="empty">nothing to chart</p>'
    c = colors(series)
    left, top, bottom = 40, 24 + 16 * (len(series) // 5), 28
    plot_w, plot_h = width - left - 8, height - top - bottom
    sums = [sum(stacks[s][i] for s in series) for i in range(len(bins))]
    peak = max(sums) or 1
    col = plot_w / len(bins)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(aria)}">'
    ]
    for row in range(0, len(series), 5):  # legend, five series a line
        out.append(legend(series[row : row + 5], left, 12 + 16 * (row // 5), c))
    for frac in (0.5, 1.0):
        y = top + plot_h * (1 - frac)
        out.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" class="ax" text-anchor="end">{_fmt(peak * frac)}</text>'
        )
    for i, b in enumerate(bins):
        x = left + i * col + 2
        y = float(top + plot_h)
        for s in series:
            v = stacks[s][i]
            if v <= 0:
                continue
            h = plot_h * v / peak
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{col - 4:.1f}" height="{h:.1f}" fill="{c[s]}">'
                f"<title>{escape(s)}, {escape(b)}: {v:,.0f}</title></rect>"
            )
        out.append(
            f'<text x="{x + (col - 4) / 2:.1f}" y="{height - bottom + 14}" class="ax" '
            f'text-anchor="middle">{escape(b)}</text>'
        )
    out.append(f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/></svg>')
    return "".join(out)


def rank_curve(ranked: list[int], width: int = 560, height: int = 220, aria: str = "") -> str:
    """Code counts sorted high to low, log scale: a flat curve is an evenly used codebook."""
    used = [v for v in ranked if v > 0]
    if not used:
        return '<p class="empty">no tokens read</p>'
    left, top, bottom = 44, 10, 28
    plot_w, plot_h = width - left - 8, height - top - bottom
    hi = math.log10(max(used))
    lo = 0.0
    span = max(hi - lo, 1e-9)
    n = len(ranked)
    step = max(1, n // plot_w)
    points = []
    for i in range(0, len(used), step):
        x = left + plot_w * i / max(n - 1, 1)
        y = top + plot_h * (1 - (math.log10(used[i]) - lo) / span)
        points.append(f"{x:.1f},{y:.1f}")
    x_end = left + plot_w * (len(used) - 1) / max(n - 1, 1)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(aria)}">'
    ]
    for exp in range(0, int(hi) + 1):
        y = top + plot_h * (1 - (exp - lo) / span)
        out.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" class="ax" text-anchor="end">{_fmt(10**exp)}</text>'
        )
    out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    out.append(
        f'<line x1="{x_end:.1f}" x2="{x_end:.1f}" y1="{top}" y2="{top + plot_h}" class="mark"/>'
        f'<text x="{min(x_end + 4, width - 90):.1f}" y="{top + 12}" class="ax">{len(used):,} used</text>'
    )
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * frac
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        out.append(
            f'<text x="{x:.1f}" y="{height - bottom + 14}" class="ax" text-anchor="{anchor}">'
            f"{int((n - 1) * frac) + 1:,}</text>"
        )
    out.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>'
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 2}" class="ax" text-anchor="middle">'
        f"code rank (most used first)</text></svg>"
    )
    return "".join(out)

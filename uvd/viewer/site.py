"""The viewer's pages as HTML strings, from the plain data of data.py (no I/O here)."""

from __future__ import annotations

import json
import re
from html import escape

from uvd import schema
from uvd.viewer import charts
from uvd.viewer.markdown import to_html

PAGE_SIZE = 8  # sentences per page on a source page
FAILURE_PAGE_SIZE = 50  # rows per page in the failures browser


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def slug(source: str) -> str:
    """A source name -> a file-name-safe page name ("ann/depth" -> "ann-depth")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", source).strip("-") or "source"


def source_pages(sources: list[str]) -> dict[str, str]:
    """source -> its page file, unique even when two names slug alike."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for s in sources:
        base = name = f"source-{slug(s)}"
        k = 2
        while name in taken:
            name, k = f"{base}-{k}", k + 1
        taken.add(name)
        out[s] = name + ".html"
    return out


def _json(obj: object) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def page(title: str, name: str, kind: str, body: str, data: object | None = None, nav: str = "") -> str:
    script = f"<script>window.UVD = {_json(data)};</script>\n" if data is not None else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · {escape(name)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="viewer.css">
</head>
<body data-page="{kind}">
<header class="top">
  <a class="brand" href="index.html"><span class="logo"></span>uvd viewer</a>
  <span class="ds">{escape(name)}</span>
  <nav>
    <a href="index.html"{' class="on"' if kind == "overview" else ""}>Overview</a>
    <a href="failures.html"{' class="on"' if kind == "failures" else ""}>Failures</a>
  </nav>
</header>
<div class="wrap">
{nav}
<main>
{body}
</main>
</div>
{script}<script src="viewer.js"></script>
</body>
</html>
"""


def sidebar(pages: dict[str, str], current: str | None, counts: dict[str, int]) -> str:
    items = "".join(
        f'<li><a href="{p}"{" class=on" if s == current else ""} data-source="{escape(s)}">'
        f"<span>{escape(s)}</span><b>{counts.get(s, 0):,}</b></a></li>"
        for s, p in pages.items()
    )
    return f'<aside class="side"><h3>Sources</h3><ul>{items}</ul></aside>'


def notices(missing: list[str]) -> str:
    if not missing:
        return ""
    items = "".join(f"<li>{escape(m)}</li>" for m in missing)
    return f'<div class="notice" data-testid="missing"><b>Parts of this dataset are missing</b><ul>{items}</ul></div>'


def tiles(values: list[tuple[str, str]]) -> str:
    return (
        '<div class="tiles">'
        + "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in values)
        + "</div>"
    )


def _panel(title: str, body: str, note: str = "", test_id: str = "") -> str:
    tid = f' data-testid="{test_id}"' if test_id else ""
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section class="panel"{tid}><h2>{escape(title)}</h2>{body}{note_html}</section>'


def family(source: str) -> str:
    """ "ann/depth" -> "ann": the lengths chart stacks by source family, not by each of ~20 tasks."""
    return source.split("/", 1)[0]


def overview(
    name: str,
    by_source: dict[str, dict[str, dict[str, int]]],
    lengths: dict[str, list[int]],
    lengths_rows: int,
    usage: dict | None,
    failures_total: int,
    shards: int,
    missing: list[str],
    card: str | None,
    pages: dict[str, str],
    previews: dict[str, list[str]],
) -> str:
    splits = sorted({sp for v in by_source.values() for sp in v}, key=lambda s: (s != "train", s != "validation", s))
    sent = sum(c["sentences"] for v in by_source.values() for c in v.values())
    imgs = sum(c["images"] for v in by_source.values() for c in v.values())
    toks = sum(c["tokens"] for v in by_source.values() for c in v.values())
    body = [
        f"<h1>{escape(name)}</h1>",
        '<p class="lead">Visual sentences of 1-16 VQGAN-tokenized 256x256 images. Everything here was read '
        "from the files the build wrote: the shards, <code>failures/</code>, <code>stats/</code> and the card.</p>",
        notices(missing),
        tiles(
            [
                ("sentences", f"{sent:,}"),
                ("images", f"{imgs:,}"),
                ("tokens", f"{toks:,}"),
                ("shards", f"{shards:,}"),
                ("sources", f"{len(by_source):,}"),
                ("failure rows", f"{failures_total:,}"),
            ]
        ),
    ]
    rows_s = [(s, {sp: v[sp]["sentences"] for sp in v}) for s, v in by_source.items()]
    rows_t = [(s, {sp: v[sp]["tokens"] for sp in v}) for s, v in by_source.items()]
    charts_html = [
        _panel(
            "Sentences per source and split",
            charts.stacked_bars(rows_s, splits, aria="sentences per source"),
            test_id="chart-sentences",
        ),
        _panel(
            "Tokens per source and split",
            charts.stacked_bars(rows_t, splits, aria="tokens per source"),
            test_id="chart-tokens",
        ),
    ]
    fams: dict[str, list[float]] = {}
    for s, h in lengths.items():
        f = fams.setdefault(family(s), [0.0] * schema.MAX_IMAGES_PER_SENTENCE)
        for i, v in enumerate(h):
            f[i] += v
    bins = [str(i + 1) for i in range(schema.MAX_IMAGES_PER_SENTENCE)]
    charts_html.append(
        _panel(
            "Sentence lengths (images per sentence)",
            charts.stacked_columns(bins, fams, aria="sentence lengths"),
            note=f"From {lengths_rows:,} sentences read in shard order.",
            test_id="chart-lengths",
        )
    )
    if usage and usage["rows"]:
        fig = (
            f'<p class="figs"><b>{usage["used"]:,}</b> of {usage["codebook"]:,} codes used '
            f"({100 * usage['used'] / usage['codebook']:.1f}%) · perplexity <b>{usage['perplexity']:,.0f}</b> · "
            f"top 1% of codes: <b>{100 * usage['top1pct_share']:.1f}%</b> of tokens</p>"
        )
        charts_html.append(
            _panel(
                "Code usage",
                fig + charts.rank_curve(usage["ranked"], aria="code usage"),
                note=f"From {usage['tokens']:,} tokens of {usage['rows']:,} sentences.",
                test_id="chart-codes",
            )
        )
    else:
        charts_html.append(_panel("Code usage", '<p class="empty">no shards to read tokens from</p>'))
    body.append('<div class="grid">' + "".join(charts_html) + "</div>")
    cards = []
    for s, p in pages.items():
        n = sum(c["sentences"] for c in by_source.get(s, {}).values())
        img = (
            "".join(
                f'<img src="strips/{name}" alt="a sentence of {escape(s)}" loading="lazy">'
                for name in previews.get(s, [])
            )
            or '<div class="noimg">no decoded sentence</div>'
        )
        cards.append(
            f'<a class="src" href="{p}" data-source="{escape(s)}"><div class="thumbs">{img}</div>'
            f'<div class="meta"><b title="{escape(s)}">{escape(s)}</b>'
            f"<span>{plural(n, 'sentence')}</span></div></a>"
        )
    body.append(
        _panel(
            "Sources",
            '<div class="srcs" data-testid="sources">' + "".join(cards) + "</div>"
            if cards
            else '<p class="empty">no sources: no shards were found</p>',
        )
    )
    if card:
        body.append(
            f'<details class="panel card" open><summary><h2>Dataset card (README.md)</h2></summary>'
            f"{to_html(card)}</details>"
        )
    return page("Overview", name, "overview", "\n".join(body))


def source_page(
    name: str,
    source: str,
    totals: dict[str, dict[str, int]],
    sentences: list[dict],
    pages: dict[str, str],
    counts: dict[str, int],
    max_images: int,
) -> str:
    by_split = " · ".join(f"{sp}: {c['sentences']:,} sentences, {c['images']:,} images" for sp, c in totals.items())
    kinds = sorted({s["kind"] for s in sentences})
    body = (
        f'<h1>{escape(source)}</h1><p class="lead">{escape(by_split)}'
        f"{' · kinds: ' + escape(', '.join(kinds)) if kinds else ''}</p>"
        f'<p class="note">{len(sentences):,} sentences decoded with the dataset\'s VQGAN (first ones in '
        f"shard order; up to {max_images} images each).</p>"
        '<div class="pager" data-testid="pager"><button data-act="prev">&larr; Prev</button>'
        '<span data-testid="page-label"></span><button data-act="next">Next &rarr;</button></div>'
        '<ol class="sentences" data-testid="sentences"></ol>'
        '<p class="empty" data-testid="no-sentences" hidden>no decoded sentences for this source</p>'
    )
    data = {"source": source, "page_size": PAGE_SIZE, "sentences": sentences}
    return page(source, name, "source", body, data, nav=sidebar(pages, source, counts))


def failures_page(
    name: str,
    groups: list[dict],
    facets: dict[str, list[tuple[str, int]]],
    rows_per_group: int,
    table_note: str,
    missing_table: bool,
) -> str:
    total = sum(g["count"] for g in groups)
    selects = "".join(
        f'<label>{f}<select data-field="{f}" data-testid="filter-{f}"><option value="">all</option>'
        + "".join(f'<option value="{escape(v)}">{escape(v)} ({n:,})</option>' for v, n in facets[f])
        + "</select></label>"
        for f in facets
    )
    note = (
        f"Each (stage, source, status, reason) group lists its first {rows_per_group:,} rows; the counts are "
        f"complete. {table_note}"
    )
    warn = (
        '<div class="notice"><b>The failures table is missing</b>: only the counts from '
        "<code>stats/failures.json</code> are shown.</div>"
        if missing_table and groups
        else ""
    )
    body = (
        f'<h1>Failures</h1><p class="lead">{total:,} rows that did not become sentences, with why: '
        "<b>failed</b> (bad input), <b>filtered</b> (a rule from the config), <b>skipped</b> "
        f'(valid input that yields nothing here).</p>{warn}<p class="note">{escape(note)}</p>'
        f'<div class="filters">{selects}<button data-act="clear">Clear</button>'
        '<span class="count" data-testid="failure-count"></span></div>'
        '<table class="rows" data-testid="failures"><thead><tr><th>status</th><th>stage</th><th>source</th>'
        "<th>reason</th><th>record id</th><th>detail</th><th>input</th></tr></thead><tbody></tbody></table>"
        '<div class="pager" data-testid="failure-pager"><button data-act="prev">&larr; Prev</button>'
        '<span data-testid="failure-page-label"></span><button data-act="next">Next &rarr;</button></div>'
    )
    if not groups:
        body = (
            '<h1>Failures</h1><p class="empty" data-testid="no-failures">No failure rows: neither '
            "<code>failures/</code> nor <code>stats/failures.json</code> has any.</p>"
        )
    data = {
        "page_size": FAILURE_PAGE_SIZE,
        "fields": list(facets),
        "groups": [
            {k: g[k] for k in ("stage", "source", "status", "reason", "count")} | {"shown": len(g["rows"])}
            for g in groups
        ],
    }
    return page("Failures", name, "failures", body, data)


def group_script(index: int, rows: list[dict]) -> str:
    """One failure group's rows as a script (file:// pages cannot fetch JSON, but can load scripts)."""
    return f"UVD.addRows({index},{_json(rows)});\n"

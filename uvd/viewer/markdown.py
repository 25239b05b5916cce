"""The dataset card's Markdown -> HTML: exactly the subset card.render_card writes (front matter,
headings, pipe tables, fenced code, paragraphs with `code`), so the overview shows the card itself."""

from __future__ import annotations

import re
from html import escape

_CODE = re.compile(r"`([^`]+)`")


def inline(text: str) -> str:
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text, quote=False))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"-?[\d,]+(\.\d+)?(e-?\d+)?", cell))


def to_html(text: str) -> str:
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":  # YAML front matter (for datasets.load_dataset): not shown
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
        lines = lines[end + 1 :]
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush() -> None:
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            lang = line[3:].strip()
            out.append(f'<pre><code class="{escape(lang)}">{escape(chr(10).join(lines[i + 1 : j]))}</code></pre>')
            i = j + 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            level = min(len(m.group(1)) + 1, 6)  # the page has its own h1
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1].strip()):
            flush()
            head = _cells(line)
            j = i + 2
            body = []
            while j < len(lines) and lines[j].startswith("|"):
                body.append(_cells(lines[j]))
                j += 1
            rows = "".join(
                "<tr>"
                + "".join(f'<td class="num">{inline(c)}</td>' if _numeric(c) else f"<td>{inline(c)}</td>" for c in r)
                + "</tr>"
                for r in body
            )
            out.append(
                '<table class="card"><thead><tr>'
                + "".join(f"<th>{inline(h)}</th>" for h in head)
                + f"</tr></thead><tbody>{rows}</tbody></table>"
            )
            i = j
            continue
        elif line.strip():
            para.append(line.strip())
        else:
            flush()
        i += 1
    flush()
    return "\n".join(out)

"""`uvd view`: a static site beside a built dataset, to look at it before training on it.

    uvd view --shards out/sample                 # writes out/sample/viewer/index.html

Pages (plain HTML, CSS and a little JavaScript; opens from file:// or a bucket, no server):
    index.html          overview: the card's tables, charts of sentences/tokens per source and split,
                        code usage and sentence lengths
    source-<name>.html  one per source: decoded sentences as image strips, paged
    failures.html       the dead-letter rows, filtered by stage, source, status and reason

It reads only what the build wrote (shards, failures/, stats/, README.md) and says plainly which
part is missing. Modules, one job each:
    data.py     shards, failures and stats -> the plain dicts the pages are made of
    charts.py   small inline SVG charts
    markdown.py the card's Markdown -> HTML (headings, tables, code, paragraphs)
    thumbs.py   token strips -> JPEG strips (decoded once, cached by content), failed inputs' thumbnails
    site.py     the pages
    build.py    `uvd view`: gather, decode, write
"""

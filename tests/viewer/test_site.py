"""The pages, charts and card rendering, and `uvd view` end to end on a hand-made dataset (no VQGAN)."""

from __future__ import annotations

import json
import re

import numpy as np
from PIL import Image

from tests.viewer.conftest import cheap_decoder, make_tiny_dataset
from uvd.viewer import charts, markdown, site, thumbs
from uvd.viewer.build import Config, build_viewer, from_manifest, run


def test_source_pages_are_file_safe_and_unique():
    pages = site.source_pages(["ann/depth", "ann-depth", "laion"])
    assert pages == {
        "ann/depth": "source-ann-depth.html",
        "ann-depth": "source-ann-depth-2.html",
        "laion": "source-laion.html",
    }


def test_stacked_bars_are_proportional_to_the_values():
    svg = charts.stacked_bars([("a", {"train": 30, "validation": 10}), ("b", {"train": 20})], ["train", "validation"])
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="16"', svg)]
    assert len(widths) == 3
    assert abs(widths[0] / widths[1] - 3.0) < 0.01 and abs((widths[0] + widths[1]) / widths[2] - 2.0) < 0.01
    assert "nothing to chart" in charts.stacked_bars([], ["train"])


def test_card_markdown_becomes_tables_without_front_matter():
    html = markdown.to_html("---\nconfigs: []\n---\n# t\n\nA `x` <b>.\n\n| k | n |\n|---|---|\n| a | 1,024 |\n")
    assert "configs" not in html and "<h2>t</h2>" in html
    assert "<code>x</code> &lt;b&gt;." in html
    assert '<td>a</td><td class="num">1,024</td>' in html


def test_strip_lays_thumbnails_side_by_side():
    images = np.zeros((3, 256, 256, 3), np.uint8)
    images[1] = 255
    s = thumbs.strip(images, 32)
    assert s.shape == (32, 3 * 32 + 2 * thumbs.GAP, 3)
    assert s[:, :32].max() == 0 and s[:, 32 + thumbs.GAP : 64 + thumbs.GAP].min() == 255


def _page_data(path) -> dict:
    text = path.read_text()
    return json.loads(re.search(r"window\.UVD = (.*?);</script>", text).group(1).replace("<\\/", "</"))


def test_view_writes_every_page_and_decodes_each_sentence_once(tiny):
    out = tiny["root"] / "viewer"
    calls = []

    def decoder(ids):
        calls.append(len(ids))
        return cheap_decoder(ids)

    report = build_viewer(Config(shards=str(tiny["root"]), per_source=3, max_images=4, thumb=32), decoder)
    names = sorted(p.name for p in out.iterdir())
    assert {"index.html", "failures.html", "viewer.css", "viewer.js", "source-a.html", "source-b-x.html"} <= set(names)
    # a: 1 + 2 + (16 -> 4) images, b/x: 4 + 4, each source's sentences decoded together in one batch
    assert report["decoded"] == 5 and sorted(calls) == [7, 8]
    a = _page_data(out / "source-a.html")
    assert [s["sentence_id"] for s in a["sentences"]] == ["a-0000", "a-0001", "a-0002"]
    assert a["sentences"][2]["shown"] == 4 and a["sentences"][2]["num_images"] == 16
    strip = np.asarray(Image.open(out / "strips" / a["sentences"][2]["strip"]), dtype=np.int16)
    assert strip.shape == (32, 4 * 32 + 3 * thumbs.GAP, 3)
    ids = np.asarray(tiny["train"][2]["tokens"], dtype=np.uint16).reshape(16, 256)[:4]
    want = thumbs.strip(cheap_decoder(ids), 32).astype(np.int16)  # its own images, in order, not a neighbour's
    assert np.abs(strip - want).mean() < 4  # JPEG
    again = build_viewer(Config(shards=str(tiny["root"]), per_source=3, max_images=4, thumb=32), decoder)
    assert again["decoded"] == 0 and len(calls) == 2  # thumbnails are written once


def test_failures_page_lists_groups_and_copies_inputs_that_exist(tiny):
    build_viewer(Config(shards=str(tiny["root"]), rows_per_group=2, thumb=32), cheap_decoder)
    out = tiny["root"] / "viewer"
    groups = _page_data(out / "failures.html")["groups"]
    assert groups[0] == {
        "stage": "laion",
        "source": "laion",
        "status": "failed",
        "reason": "http_404",
        "count": 3,
        "shown": 2,
    }
    rows = {}
    for i, g in enumerate(groups):
        text = (out / "failures" / f"g{i}.js").read_text()
        assert text.startswith(f"UVD.addRows({i},")
        rows[g["reason"]] = json.loads(text[len(f"UVD.addRows({i},") : -3])
    assert rows["http_404"][0]["input_url"] == "https://example.invalid/0.jpg"
    for reason in ("class_too_small", "filtered_pwatermark"):  # an absolute path and a file: URL, both the cat
        assert Image.open(out / "inputs" / rows[reason][0]["input"]).size == (60, 40)
    assert "input" not in rows["not_an_image"][0] and "input" not in rows["file_not_found"][0]


def test_a_half_written_dataset_gets_a_viewer_that_says_what_is_missing(tmp_path):
    t = make_tiny_dataset(tmp_path / "ds", with_stats=False, with_failures=False)
    report = build_viewer(Config(shards=str(t["root"]), thumb=32), cheap_decoder)
    index = (t["root"] / "viewer" / "index.html").read_text()
    assert 'data-testid="missing"' in index and "stats/dataset.json" in index and "failures/" in index
    assert 'data-testid="no-failures"' in (t["root"] / "viewer" / "failures.html").read_text()
    assert report["sources"] == 2  # counted from the shards themselves


def test_view_cli_rejects_a_folder_with_nothing_in_it(tmp_path, capsys):
    assert run(["--shards", str(tmp_path)]) == 2
    assert "holds no shards" in capsys.readouterr().err
    assert run(["--shards", str(tmp_path), "--per_source", "0"]) == 2
    assert "per_source: must be >= 1" in capsys.readouterr().err


def test_manifest_section_turns_the_viewer_on_with_checked_options(tmp_path):
    assert from_manifest(None, "o") is None and from_manifest(False, "o") is None
    cfg = from_manifest({"per_source": 2}, str(tmp_path))
    assert cfg.per_source == 2 and cfg.site == str(tmp_path / "viewer")
    import pytest

    from uvd.config import ConfigError

    with pytest.raises(ConfigError, match="viewer.per_sorce: unknown option"):
        from_manifest({"per_sorce": 2}, "o")
    with pytest.raises(ConfigError, match="viewer.output"):
        from_manifest({"output": "x"}, "o")

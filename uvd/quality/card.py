"""The card's "Data quality" section, rendered from `<output>/stats/quality.json` alone."""

from __future__ import annotations

from typing import Any

from uvd.quality import learn

REASONS = {
    "near_duplicate": "a sentence showing the same images (up to near-duplicates) was kept",
    "eval_contamination": "an image near-duplicates an evaluation image",
    "validation_near_train": "a validation image near-duplicates a train image",
    "low_psnr": "the tokenizer reconstructs an image below min_psnr",
    "few_distinct_codes": "an image uses fewer than min_distinct_codes codes",
    "sequence_frozen": "most frames repeat the previous one",
    "sequence_blank": "a blank (flat) frame",
    "sequence_cuts": "a scene cut inside the window",
}


def _by(counts: dict, prefix: str) -> dict[str, Any]:
    return {k[len(prefix) + 1 :]: v for k, v in counts.items() if k.startswith(prefix + "|")}


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)

    return (
        ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
        + [""]
    )


def _histograms(counts: dict, what: str, edges: tuple, unit: str) -> list[str]:
    hists, sums = _by(counts, what), _by(counts, f"{what}_sum")
    if not hists:
        return []
    labels = learn.bin_labels(edges)
    rows = []
    for src, hist in sorted(hists.items()):
        n = sum(hist)
        nonzero = [i for i, c in enumerate(hist) if c]
        rows.append(
            [
                src,
                n,
                round(sums.get(src, 0) / max(n, 1), 2),
                f"`{learn.spark(hist)}`",
                f"{labels[nonzero[0]]} .. {labels[nonzero[-1]]}" if nonzero else "",
            ]
        )
    return _table(["source", "images", f"mean {unit}", f"histogram ({labels[0]} .. {labels[-1]})", "range"], rows)


def section(quality: dict | None) -> list[str]:
    """Markdown lines for the card (empty when no check ran)."""
    if not quality:
        return []
    counts, config = quality.get("counts", {}), quality.get("config", {})
    out = [
        "## Data quality",
        "",
        "Checks of `quality:` in the manifest (uvd/quality). Removed sentences are rows in `failures/` "
        "(stage `quality`); `quality/` holds one report row per sentence.",
        "",
    ]
    removed = _by(counts, "removed")
    rows = [[*k.split("|", 1), v, REASONS.get(k.split("|")[0], "")] for k, v in sorted(removed.items())]
    out += ["### Removed", ""] + (
        _table(["reason", "source", "sentences", "why"], rows) if rows else ["Nothing was removed.", ""]
    )
    dups = config.get("near_duplicates", {})
    if dups.get("policy", "off") != "off":
        images, dup, dropped = _by(counts, "images"), _by(counts, "dup_images"), _by(counts, "dup_dropped_images")
        sents = _by(counts, "dup_sentences")
        out += [
            f"### Near-duplicates (policy `{dups['policy']}`: {dups['bits']}-bit DCT hash, {dups['bands']} LSH "
            f"bands, <= {dups['threshold']} bits)",
            "",
        ]
        out += _table(
            [
                "source",
                "images",
                "in a near-duplicate pair",
                "not their cluster's kept image",
                "near-duplicate sentences",
            ],
            [
                [s, images.get(s, 0), dup.get(s, 0), dropped.get(s, 0), sents.get(s, 0)]
                for s in sorted(set(images) | set(sents))
            ],
        )
    decon = config.get("decontaminate", {})
    if config.get("eval_sets") or decon.get("validation"):
        out += ["### Decontamination", ""]
        rows = [
            [name, n, sum(v for k, v in _by(counts, f"eval_images|{name}").items())]
            for name, n in sorted(config.get("eval_sets", {}).items())
        ]
        if rows:
            out += [
                f"Action `{decon.get('action')}`; training sentences with an image within the threshold of an "
                "evaluation image:",
                "",
            ] + _table(["evaluation set", "images", "training images matched"], rows)
            matched = sorted(_by(counts, "eval_sentences").items())
            out += _table(["source", "sentences matched"], [[k, v] for k, v in matched])
        if decon.get("validation"):
            val = _by(counts, "validation_near_train")
            verb = "removed" if decon.get("action") == "drop" else "flagged (kept: action `flag`)"
            out += [
                f"Validation vs train: {sum(val.values()):,} validation sentences {verb} for showing an "
                "image that is, or near-duplicates, a train image.",
                "",
            ]
            if val:
                out += _table(["source", "validation sentences"], [[k, v] for k, v in sorted(val.items())])
    if config.get("learnability", {}).get("enabled"):
        out += ["### Learnability (what the tokenizer keeps)", ""]
        out += _histograms(counts, "psnr", learn.PSNR_EDGES, "PSNR dB")
        out += _histograms(counts, "codes", learn.DIVERSITY_EDGES, "distinct codes of 256")
    if config.get("sequences", {}).get("enabled"):
        checked = _by(counts, "seq_checked")
        out += ["### Sequences (16x16 thumbnails of each frame)", ""]
        out += _table(
            ["source", "sentences checked", "frozen", "blank frame", "scene cut"],
            [
                [
                    s,
                    n,
                    counts.get(f"seq_frozen|{s}", 0),
                    counts.get(f"seq_blank|{s}", 0),
                    counts.get(f"seq_cuts|{s}", 0),
                ]
                for s, n in sorted(checked.items())
            ],
        )
    return out

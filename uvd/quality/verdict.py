"""Per-sentence verdicts from per-image facts: the plain functions the Beam steps call.

An image's facts (`info`) are what the image-level steps found: its source, hash, thumbnail,
distinct codes, PSNR, its representative (the kept image of its near-duplicate cluster) and its
nearest evaluation image. A sentence is filtered when the learnability thresholds, the evaluation
sets or the sequence flags say so; otherwise it goes on, and `signature` is what the near-duplicate
step compares sentences by: the representatives of its images, position by position (a sentence
showing the same images as another, up to near-duplicates, is a near-duplicate sentence).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uvd import schema
from uvd.quality.config import Quality
from uvd.quality.grouping import rank_key
from uvd.quality.sequence import check_sequence

STAGE = "quality"


def signature(sentence: dict, infos: list[dict | None]) -> str:
    """Single images compare across all sources; a multi-image sentence only within its source, since
    two tasks can pair the same pictures (colorization and low-light both show a photo and a luma
    copy of it, which a luma hash cannot tell apart) and still teach different things."""
    reps = [(info or {}).get("rep") or iid for iid, info in zip(sentence["image_ids"], infos)]
    scope = "" if len(reps) == 1 else f"{sentence['kind']}/{sentence['source']}"
    return scope + "|" + "|".join(reps)


def report_row(sentence: dict, infos: list[dict | None], q: Quality) -> tuple[dict, list[tuple[str, str]]]:
    """The per-sentence quality row and the filter reasons (reason, detail) it triggers."""
    reasons: list[tuple[str, str]] = []
    row: dict[str, Any] = {
        "sentence_id": sentence["sentence_id"],
        "source": sentence["source"],
        "kind": sentence["kind"],
        "num_images": len(infos),
        "min_psnr": None,
        "min_distinct_codes": None,
        "frozen": None,
        "blank": None,
        "cuts": None,
        "eval_match": None,
    }
    known = [(iid, i) for iid, i in zip(sentence["image_ids"], infos) if i]
    codes = [(i["codes"], iid) for iid, i in known if i.get("codes") is not None]
    psnrs = [(i["psnr"], iid) for iid, i in known if i.get("psnr") is not None]
    if codes:
        row["min_distinct_codes"] = int(min(codes)[0])
        lim = q.learn.min_distinct_codes
        if lim is not None and min(codes)[0] < lim:
            reasons.append(("few_distinct_codes", f"image {min(codes)[1]}: {min(codes)[0]} distinct codes < {lim}"))
    if psnrs:
        row["min_psnr"] = round(float(min(psnrs)[0]), 2)
        lim = q.learn.min_psnr
        if lim is not None and min(psnrs)[0] < lim:
            reasons.append(("low_psnr", f"image {min(psnrs)[1]}: PSNR {min(psnrs)[0]:.2f} dB < {lim}"))
    matches = [(i["eval"], iid) for iid, i in known if i.get("eval")]
    if matches:
        (name, item, d), iid = min(matches, key=lambda m: m[0][2])
        row["eval_match"] = f"{name}:{item}"
        if q.decon.action == "drop":
            reasons.append(("eval_contamination", f"image {iid} is {d} bits from {name}:{item}"))
    s = q.seq
    if s.enabled and s.applies(sentence) and len(infos) > 1 and all(i and i.get("thumb") for i in infos):
        thumbs = np.stack([np.frombuffer(i["thumb"], np.uint8).reshape(16, 16) for i in infos])
        rep = check_sequence(thumbs, s.frozen_mad, s.blank_std, s.cut_mad, s.cut_ratio)
        row.update(frozen=len(rep.frozen), blank=len(rep.blank), cuts=len(rep.cuts))
        flags = {
            "frozen": len(rep.frozen) > s.frozen_fraction * (len(infos) - 1),
            "blank": bool(rep.blank),
            "cuts": bool(rep.cuts),
        }
        for flag in s.filter:
            if flags[flag]:
                where = {"frozen": rep.frozen, "blank": rep.blank, "cuts": rep.cuts}[flag]
                reasons.append((f"sequence_{flag}", f"frames {where} of {len(infos)}"))
        row["flags"] = [f for f, on in flags.items() if on]
    return row, reasons


def filtered_row(sentence: dict, reasons: list[tuple[str, str]]) -> dict:
    reason, detail = reasons[0]
    if len(reasons) > 1:
        detail += "; also " + ", ".join(r for r, _ in reasons[1:])
    return schema.failure_row(sentence["sentence_id"], sentence["source"], STAGE, reason, detail, status="filtered")


def pick_kept(seed: int, sentences: list[dict]) -> tuple[dict, list[dict]]:
    """Among sentences with one signature: the kept one (smallest seeded key) and the rest."""
    ordered = sorted(sentences, key=lambda s: rank_key(seed, s["sentence_id"]))
    return ordered[0], ordered[1:]


def near_duplicate_row(dropped: dict, kept: dict) -> dict:
    detail = f"kept sentence {kept['sentence_id']} ({kept['source']})"
    if len(kept["image_ids"]) == 1:
        detail += f", image {kept['image_ids'][0]}"
    return schema.failure_row(
        dropped["sentence_id"], dropped["source"], STAGE, "near_duplicate", detail, status="skipped"
    )


def validation_row(sentence: dict, image_id: str, rep: str) -> dict:
    return schema.failure_row(
        sentence["sentence_id"],
        sentence["source"],
        STAGE,
        "validation_near_train",
        f"image {image_id} is a near-duplicate of train image {rep}",
        status="skipped",
    )

"""The manifest's `quality:` block: which checks run in `uvd dataset`, checked before any work.

    quality:
      near_duplicates: {policy: keep_one, bits: 128, bands: 16, threshold: 32}   # off | report | keep_one
      decontaminate: {eval_sets: [../evals/images], action: drop, validation: true}
      learnability: {enabled: true, psnr: false, min_psnr: null, min_distinct_codes: null}
      sequences: {enabled: true, filter: []}                                       # of frozen, blank, cuts

Every block defaults to off, so a manifest without `quality:` builds what it built before.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uvd.config import ConfigError, from_dict, require

POLICIES = ("off", "report", "keep_one")
ACTIONS = ("drop", "flag")
SEQUENCE_FLAGS = ("frozen", "blank", "cuts")


@dataclass
class NearDuplicates:
    policy: str = "off"  # off | report (count clusters, drop nothing) | keep_one (drop the rest)
    bits: int = 128  # DCT hash length; 64..256 (README: recall and false positives by length)
    bands: int = 16  # LSH bands; must divide bits/8; fewer = bigger slices, fewer candidates
    threshold: int = 32  # max Hamming distance of a near-duplicate pair
    max_bucket: int = 4096  # buckets larger than this are compared as a keyed sort, not all-pairs
    window: int = 64  # successors each image is compared with in a sorted bucket
    rounds: int = 4  # label-propagation rounds that gather a cluster on one worker

    def validate(self) -> None:
        require(self.policy in POLICIES, "policy", f"must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        require(
            self.bits % 8 == 0 and 16 <= self.bits <= 512,
            "bits",
            f"must be a multiple of 8 in 16..512, got {self.bits}",
        )
        require(
            self.bands >= 1 and (self.bits // 8) % self.bands == 0,
            "bands",
            f"must divide the hash's {self.bits // 8} bytes, got {self.bands}",
        )
        require(0 <= self.threshold < self.bits // 2, "threshold", f"must be in [0, bits/2), got {self.threshold}")
        require(
            self.max_bucket >= 2 and self.window >= 1 and self.rounds >= 1,
            "max_bucket",
            "max_bucket >= 2, window >= 1 and rounds >= 1",
        )


@dataclass
class Decontaminate:
    eval_sets: list = field(default_factory=list)  # image folders or shard folders (relative to the manifest)
    action: str = "drop"  # drop: remove (failure rows); flag: keep, count in the card and report
    validation: bool = False  # check validation sentences against train the same way (same action)
    threshold: int | None = None  # default: near_duplicates.threshold
    limit: int | None = None  # at most this many prompts per shard eval set

    def validate(self) -> None:
        require(self.action in ACTIONS, "action", f"must be drop or flag, got {self.action!r}")
        require(all(isinstance(p, str) and p for p in self.eval_sets), "eval_sets", "must be a list of folder paths")


@dataclass
class Learnability:
    enabled: bool = False  # distinct codes per image (free: from the tokens)
    psnr: bool = False  # also decode every image's tokens and measure PSNR (a second VQGAN pass)
    psnr_fraction: float = 1.0  # decode only this seeded share of images (the histogram is a sample)
    min_psnr: float | None = None  # sentences with an image below this are filtered
    min_distinct_codes: int | None = None  # likewise for codes of 256

    def validate(self) -> None:
        require(0 < self.psnr_fraction <= 1, "psnr_fraction", f"must be in (0, 1], got {self.psnr_fraction}")
        require(self.min_psnr is None or self.psnr, "min_psnr", "needs `psnr: true` (it is measured by decoding)")
        require(
            self.min_psnr is None or self.psnr_fraction == 1,
            "min_psnr",
            "filters every image, so psnr_fraction must be 1",
        )
        require(
            self.min_distinct_codes is None or 1 <= self.min_distinct_codes <= 256,
            "min_distinct_codes",
            f"must be in 1..256, got {self.min_distinct_codes}",
        )
        require(
            not (self.min_psnr is not None or self.min_distinct_codes is not None) or self.enabled,
            "enabled",
            "must be true when a threshold is set",
        )


@dataclass
class Sequences:
    enabled: bool = False  # report frozen, blank frames and cuts per multi-image sentence
    filter: list = field(default_factory=list)  # drop sentences with these flags: frozen, blank, cuts
    frozen_mad: float = 0.5  # grey levels (16x16 thumbnail) below which two frames are the same
    frozen_fraction: float = 0.5  # `frozen` flag: more than this share of the frame pairs frozen
    blank_std: float = 4.0  # luma std below which a frame is blank
    cut_mad: float = 18.0  # a cut moves the thumbnail at least this much...
    cut_ratio: float = 3.0  # ...and this many times the window's median change
    sources: list = field(default_factory=lambda: ["video", "objaverse"])  # fnmatch patterns of sources

    def applies(self, sentence: dict) -> bool:
        """Frames of one stream only: a class sentence (imagenet_class) is a sequence of unrelated shots,
        and annotated video interleaves frames with their renders."""
        return sentence["kind"] == "sequence" and any(fnmatch.fnmatch(sentence["source"], p) for p in self.sources)

    def validate(self) -> None:
        bad = [f for f in self.filter if f not in SEQUENCE_FLAGS]
        require(not bad, "filter", f"unknown flag {bad[0] if bad else ''!r}; choose from {', '.join(SEQUENCE_FLAGS)}")
        require(not self.filter or self.enabled, "enabled", "must be true when `filter` is set")


@dataclass
class Quality:
    near_duplicates: dict = field(default_factory=dict)
    decontaminate: dict = field(default_factory=dict)
    learnability: dict = field(default_factory=dict)
    sequences: dict = field(default_factory=dict)
    # typed views, filled by parse()
    dups: NearDuplicates = field(default_factory=NearDuplicates)
    decon: Decontaminate = field(default_factory=Decontaminate)
    learn: Learnability = field(default_factory=Learnability)
    seq: Sequences = field(default_factory=Sequences)

    @property
    def needs_groups(self) -> bool:
        return self.dups.policy != "off" or self.decon.validation

    @property
    def enabled(self) -> bool:
        return self.needs_groups or bool(self.decon.eval_sets) or self.learn.enabled or self.seq.enabled

    @property
    def decon_threshold(self) -> int:
        return self.dups.threshold if self.decon.threshold is None else self.decon.threshold


def parse(data: dict | None, base: Path | None = None, check_inputs: bool = True) -> Quality:
    """Validate a `quality:` mapping; eval set paths resolve against `base` (the manifest's folder)."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError("quality: expected a mapping of near_duplicates, decontaminate, learnability, sequences")
    raw: dict[str, Any] = dict(data or {})
    reserved = {"dups", "decon", "learn", "seq"} & set(raw)
    if reserved:
        raise ConfigError(
            f"quality.{sorted(reserved)[0]}: unknown option; allowed options are: decontaminate, "
            "learnability, near_duplicates, sequences"
        )
    q = from_dict(Quality, raw, where="quality")
    q.dups = from_dict(NearDuplicates, q.near_duplicates, where="quality.near_duplicates")
    q.decon = from_dict(Decontaminate, q.decontaminate, where="quality.decontaminate")
    q.learn = from_dict(Learnability, q.learnability, where="quality.learnability")
    q.seq = from_dict(Sequences, q.sequences, where="quality.sequences")
    if q.decon.threshold is not None:
        require(
            0 <= q.decon.threshold < q.dups.bits // 2,
            "quality.decontaminate.threshold",
            f"must be in [0, bits/2), got {q.decon.threshold}",
        )
    base = base or Path.cwd()
    resolved = []
    for p in q.decon.eval_sets:
        path = p if "://" in p or Path(p).is_absolute() else str((base / p).resolve())
        if check_inputs:
            from uvd.quality.decontam import eval_kind

            eval_kind(path)  # raises ConfigError naming the folder
        resolved.append(path)
    q.decon.eval_sets = resolved
    return q

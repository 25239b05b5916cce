"""The benchmark's headline at a small size: near-duplicate recall and false positives with the default
hash and LSH settings, on the sample photos and procedural pictures under the 15 edits (832 images;
~5 s on an idle core)."""

from __future__ import annotations

import collections

import numpy as np

from uvd.quality import fingerprint as F
from uvd.quality import grouping as G
from uvd.quality import testset
from uvd.quality.config import NearDuplicates


def test_default_settings_reach_the_issue_goal():
    d = NearDuplicates()
    images, labels, kinds = testset.near_duplicate_set(procedural_count=30, seed=7)
    hashes = F.dct_hash(images, d.bits)
    ids = [f"{i:05d}" for i in range(len(images))]
    buckets = collections.defaultdict(list)
    for i, h in enumerate(hashes):
        for key in G.band_keys(h, d.bands):
            buckets[key].append(i)
    edges = set()
    for key, members in buckets.items():
        start = G.band_start(key, hashes.shape[1], d.bands)
        edges |= {
            (a, b)
            for a, b, _ in G.bucket_pairs(
                [ids[m] for m in members], hashes[members], d.threshold, d.max_bucket, d.window, start
            )
        }
    base = {labels[i]: ids[i] for i in range(len(ids)) if kinds[i] == ""}
    edits = [i for i in range(len(ids)) if kinds[i]]
    recall = np.mean([tuple(sorted((ids[i], base[labels[i]]))) in edges for i in edits])
    n = len(ids)
    distinct_pairs = n * (n - 1) // 2 - sum(c * (c - 1) // 2 for c in collections.Counter(labels.tolist()).values())
    false = sum(1 for a, b in edges if labels[int(a)] != labels[int(b)])
    assert recall >= 0.95, recall  # measured: 0.958 (the benchmark: 0.967 on 5,152 images)
    assert false / distinct_pairs <= 1e-3, false

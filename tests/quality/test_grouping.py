"""LSH buckets, bounded comparison and the kept-image choice."""

from __future__ import annotations

import numpy as np
import pytest

from uvd.quality import grouping as G


def _flip(h: np.ndarray, bits: list[int]) -> np.ndarray:
    u = np.unpackbits(h).copy()
    u[bits] ^= 1
    return np.packbits(u)


def test_band_keys_cover_the_hash():
    h = np.arange(16, dtype=np.uint8)
    keys = G.band_keys(h, 4)
    assert keys == ["0:00010203", "1:04050607", "2:08090a0b", "3:0c0d0e0f"]
    with pytest.raises(ValueError):
        G.band_keys(h, 3)


def test_all_pairs_and_keyed_sort_find_planted_pairs():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (300, 16), dtype=np.uint8)
    near = np.stack([_flip(b, (8 + rng.choice(120, 3, replace=False)).tolist()) for b in base[:50]])
    hashes = np.concatenate([base, near])
    ids = [f"b{i}" for i in range(300)] + [f"n{i}" for i in range(50)]
    truth = {tuple(sorted((f"b{i}", f"n{i}"))) for i in range(50)}
    full = {(a, b) for a, b, _ in G.bucket_pairs(ids, hashes, threshold=5)}
    assert full == truth  # random 128-bit hashes are ~64 bits apart
    windowed = {(a, b) for a, b, _ in G.bucket_pairs(ids, hashes, threshold=5, max_bucket=10, window=4)}
    assert windowed == truth  # first byte intact: sort neighbours
    distances = [d for _, _, d in G.bucket_pairs(ids, hashes, threshold=5)]
    assert set(distances) == {3}


def test_greedy_keep_never_chains():
    # a - b - c: b is near both, a and c are not near each other
    adj = {"a": [("b", 5)], "b": [("a", 5), ("c", 6)], "c": [("b", 6)]}
    order = sorted(adj, key=lambda n: G.rank_key(0, n))
    decided = G.greedy_keep(adj.items(), seed=0)
    for node, (rep, _) in decided.items():
        if rep != node:
            assert decided[rep][0] == rep and rep in dict(adj[node])  # the kept image is a direct neighbour
    assert decided[order[0]] == (order[0], 0)
    kept = [n for n, (r, _) in decided.items() if r == n]
    assert not any(m in kept for k in kept for m, _ in adj[k])  # no two kept images are neighbours


def test_components_and_labels_are_seeded_and_deterministic():
    comp = G.components(["a", "b", "c", "d"], [("a", "b"), ("b", "c")])
    assert comp["a"] == comp["b"] == comp["c"] != comp["d"]
    assert G.key_id(G.rank_key(3, "img")) == "img"
    assert G.rank_key(0, "x") != G.rank_key(1, "x")


def test_the_beam_clustering_equals_the_one_worker_reference():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from uvd.quality.pipeline import ClusterImages

    rng = np.random.default_rng(3)
    hashes, ids = [], []
    for b in range(40):  # 40 families of 4: a base and 3 nearby copies
        base = rng.integers(0, 256, 16, dtype=np.uint8)
        for k in range(4):
            hashes.append(base if k == 0 else _flip(base, (8 + rng.choice(120, 4 * k, replace=False)).tolist()))
            ids.append(f"f{b}-{k}")
    sigs = [(i, {"hash": h.tobytes()}) for i, h in zip(ids, hashes)]
    edges = set()
    for key in {k for h in hashes for k in G.band_keys(h, 16)}:
        members = [i for i, h in enumerate(hashes) if key in G.band_keys(h, 16)]
        edges |= {
            (a, b, d)
            for a, b, d in G.bucket_pairs([ids[m] for m in members], np.stack([hashes[m] for m in members]), 20)
        }
    adj: dict = {}
    for a, b, d in edges:
        adj.setdefault(a, []).append((b, d))
        adj.setdefault(b, []).append((a, d))
    expected = sorted((i, r, d) for i, (r, d) in G.greedy_keep(adj.items(), seed=5).items())
    assert any(r != i for i, r, _ in expected) and any(r == i for i, r, _ in expected)
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create(sigs)
            | ClusterImages(bands=16, threshold=20, max_bucket=4096, window=64, rounds=4, seed=5)
            | beam.Map(lambda kv: (kv[0], kv[1]["rep"], kv[1]["dist"]))
        )
        assert_that(out, equal_to(expected))

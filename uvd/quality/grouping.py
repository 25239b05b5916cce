"""Near-duplicate grouping without an all-pairs pass: LSH bands, bounded buckets, cluster labels.

Banding (Indyk & Motwani; Manku et al. 2007 for hashes): cut each hash into `bands` slices; two
images become a candidate pair only if some slice is identical, so work is spent inside buckets
(band, slice value) and never across the whole set. A bucket holds the images of one slice value;
up to `max_bucket` images it is compared all-pairs (one vectorised popcount), beyond that as a keyed
sort: order by the whole hash and compare each image with its `window` successors, so a huge bucket
(a flat slice shared by many bland images) costs n*window, not n^2. Pairs within `threshold` bits
are edges. Clusters are connected components of the edges; the kept image of a cluster is its
smallest key (a seeded hash of the image id), the same on any runner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from uvd.quality.fingerprint import hamming


def band_slices(nbytes: int, bands: int) -> list[slice]:
    """Byte ranges of each band of a hash of `nbytes` bytes (bands must divide the bytes)."""
    if bands < 1 or nbytes % bands:
        raise ValueError(f"bands must divide the hash's {nbytes} bytes, got {bands}")
    step = nbytes // bands
    return [slice(i * step, (i + 1) * step) for i in range(bands)]


def band_start(key: str, nbytes: int, bands: int) -> int:
    """The byte after a bucket key's slice: where a sorted bucket of that band starts its sort key."""
    return ((int(key.split(":", 1)[0]) + 1) * (nbytes // bands)) % nbytes


def band_keys(h: np.ndarray, bands: int) -> list[str]:
    """One packed hash -> its bucket keys 'band:hexslice'."""
    h = np.asarray(h, dtype=np.uint8)
    return [f"{b}:{h[s].tobytes().hex()}" for b, s in enumerate(band_slices(h.size, bands))]


def bucket_pairs(
    ids: Sequence[str], hashes: np.ndarray, threshold: int, max_bucket: int = 4096, window: int = 64, start: int = 0
) -> Iterator[tuple[str, str, int]]:
    """Pairs (a, b, distance), a < b, within `threshold` bits among the images of one bucket.

    A sorted bucket orders by the hash's bytes from `start` on (then wrapping round): give each band
    its own start (the byte after its slice) so that each band's sort brings different pairs together.
    """
    n = len(ids)
    if n < 2:
        return
    hashes = np.asarray(hashes, dtype=np.uint8)
    if n <= max_bucket:
        d = hamming(hashes[:, None, :], hashes[None, :, :])
        ii, jj = np.nonzero(np.triu(d <= threshold, 1))
        for i, j in zip(ii.tolist(), jj.tolist()):
            a, b = sorted((ids[i], ids[j]))
            yield a, b, int(d[i, j])
        return
    rotated = np.roll(hashes, -start, axis=1)
    order = np.lexsort(rotated.T[::-1])  # keyed sort by the whole hash, byte `start` major
    sorted_h = hashes[order]
    for offset in range(1, min(window, n - 1) + 1):
        d = hamming(sorted_h[:-offset], sorted_h[offset:])
        for k in np.nonzero(d <= threshold)[0].tolist():
            a, b = sorted((ids[order[k]], ids[order[k + offset]]))
            yield a, b, int(d[k])


def components(
    nodes: Iterable[str], edges: Iterable[tuple[str, str]], key: dict[str, float] | None = None
) -> dict[str, str]:
    """Union-find reference: node -> the smallest-key node of its component (tests, the benchmark)."""
    parent: dict[str, str] = {n: n for n in nodes}
    rank = key or {}

    def k(x: str) -> tuple[float, str]:
        return (rank.get(x, 0.0), x)

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if k(ra) <= k(rb) else (rb, ra)
            parent[hi] = lo
    return {n: find(n) for n in parent}


def min_label(own: tuple[float, str], neighbours: Iterable[tuple[float, str]]) -> tuple[float, str]:
    """One round of label propagation: the smallest (key, id) label among a node and its neighbours."""
    return min([own, *neighbours])


def rank_key(seed: int, item_id: str) -> str:
    """A seeded order on ids that ends with the id itself: min() of keys names the kept image."""
    return hashlib.blake2b(f"{seed}\x1fkeep\x1f{item_id}".encode(), digest_size=8).hexdigest() + item_id


def key_id(key: str) -> str:
    return key[16:]


def greedy_keep(nodes: Iterable[tuple[str, Sequence[tuple[str, int]]]], seed: int) -> dict[str, tuple[str, int]]:
    """Keep one image per neighbourhood: in key order, an image with no kept neighbour is kept,
    any other is dropped naming its smallest-key kept neighbour (always an edge, so always within
    the threshold: clusters never chain distinct images together). Returns id -> (kept id, bits)
    with (id, 0) for kept images. Neighbours outside `nodes` are ignored (they are decided in
    another group; keeping both is the safe side)."""
    nodes = dict(nodes)
    decided: dict[str, tuple[str, int]] = {}
    for node in sorted(nodes, key=lambda n: rank_key(seed, n)):
        kept = [(rank_key(seed, m), m, d) for m, d in nodes[node] if m in decided and decided[m][0] == m]
        decided[node] = (min(kept)[1], min(kept)[2]) if kept else (node, 0)
    return decided

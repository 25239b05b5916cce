"""Data-quality checks (uvd/quality): fingerprint and grouping throughput per core beside imagehash's
phash, near-duplicate recall / false positives on a labelled generated set, the code-grid hash the
issue asks to compare against, scene-cut precision/recall, and what learnability costs per image.

    .venv/bin/python benchmarks/bench_quality.py [--procedural 300] [--code-bases 24]

The set (uvd/quality/testset.py): the sample photos plus seeded procedural pictures, each with 15
edits (JPEG q90/70/50/30, down-up resizes to 128 and 96 px, crops of 2-5 % of a side, colour shifts,
corner and band watermarks, crop + JPEG). Edits of a base are its near-duplicates; different bases
are distinct. Recall: an edit is linked (one LSH edge, distance within threshold) to its base.
False-positive rate: distinct pairs linked / distinct pairs. Single process, one thread.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from uvd.quality import fingerprint as F  # noqa: E402
from uvd.quality import grouping as G  # noqa: E402
from uvd.quality import sequence, testset  # noqa: E402

CONFIGS = [  # (bits, bands, threshold, max_bucket): max_bucket 2 = every bucket sorted, as at web scale
    (64, 4, 12, 4096),
    (64, 8, 14, 4096),
    (128, 8, 32, 4096),
    (128, 16, 32, 4096),
    (128, 16, 40, 4096),
    (256, 16, 64, 4096),
    (128, 16, 32, 2),
]


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s ({seconds / n * 1e6:,.0f} us each)"


def edges_by_lsh(
    hashes: np.ndarray, ids: list[str], bands: int, threshold: int, max_bucket: int = 4096, window: int = 64
) -> tuple[dict, int]:
    """LSH edges {(a, b): d} and the number of candidate pairs compared (what ClusterImages does)."""
    buckets = collections.defaultdict(list)
    for i, h in enumerate(hashes):
        for k in G.band_keys(h, bands):
            buckets[k].append(i)
    edges, compared = {}, 0
    for key, members in buckets.items():
        n = len(members)
        compared += n * (n - 1) // 2 if n <= max_bucket else n * min(window, n - 1)
        start = G.band_start(key, hashes.shape[1], bands)
        for a, b, d in G.bucket_pairs([ids[m] for m in members], hashes[members], threshold, max_bucket, window, start):
            edges[(a, b)] = d
    return edges, compared


def score(edges: dict, labels: np.ndarray, kinds: list[str], ids: list[str]) -> dict:
    index = {s: i for i, s in enumerate(ids)}
    base = {labels[i]: ids[i] for i in range(len(ids)) if kinds[i] == ""}
    linked = collections.defaultdict(set)
    for a, b in edges:
        linked[a].add(b)
        linked[b].add(a)
    edits = [i for i in range(len(ids)) if kinds[i]]
    recall = np.mean([base[labels[i]] in linked[ids[i]] for i in edits])
    per_edit = collections.defaultdict(list)
    for i in edits:
        per_edit[kinds[i]].append(base[labels[i]] in linked[ids[i]])
    n = len(ids)
    same = sum(c * (c - 1) // 2 for c in collections.Counter(labels.tolist()).values())
    false = sum(1 for a, b in edges if labels[index[a]] != labels[index[b]])
    decided = G.greedy_keep(((s, [(m, 0) for m in linked[s]]) for s in ids), seed=0)
    dropped = {s: r for s, (r, _) in decided.items() if r != s}
    wrong = sum(1 for s, r in dropped.items() if labels[index[s]] != labels[index[r]])
    worst = min(per_edit.items(), key=lambda kv: np.mean(kv[1]))
    return {
        "recall": recall,
        "fpr": false / (n * (n - 1) // 2 - same),
        "false_pairs": false,
        "kept": n - len(dropped),
        "wrong_drops": wrong,
        "worst": f"{worst[0]} {np.mean(worst[1]):.3f}",
    }


def bench_near_duplicates(images: np.ndarray, labels: np.ndarray, kinds: list[str]) -> None:
    n = len(images)
    ids = [f"i{i:05d}" for i in range(n)]
    print(f"\n-- near-duplicates: {n} images = {len(set(labels.tolist()))} bases x (1 + {len(testset.EDITS)} edits)")
    print(
        f"{'hash':>29} {'recall':>7} {'FPR':>9} {'false pairs':>11} {'kept':>5} {'wrong drops':>11} "
        f"{'compared/img':>12} {'group rate':>22}  worst edit"
    )
    for bits, bands, t, cap in CONFIGS:
        h = F.dct_hash(images, bits)
        start = time.process_time()
        edges, compared = edges_by_lsh(h, ids, bands, t, cap)
        secs = time.process_time() - start
        s = score(edges, labels, kinds, ids)
        name = f"dct {bits}b {bands}x{bits // bands}b <={t}" + (" sorted" if cap < 4096 else "")
        print(
            f"{name:>29} {s['recall']:7.4f} {s['fpr']:9.2e} "
            f"{s['false_pairs']:11d} {s['kept']:5d} {s['wrong_drops']:11d} {compared / n:12.1f} "
            f"{rate(n, secs):>22}  {s['worst']}"
        )
    try:
        import imagehash
        from PIL import Image
    except ImportError:
        print("imagehash not installed (pip install 'uvd[bench]'): no phash baseline")
        return
    ph = np.stack([np.packbits(imagehash.phash(Image.fromarray(im)).hash.flatten()) for im in images])
    for t in (10, 12, 14):
        d = F.hamming(ph[:, None], ph[None, :])  # all pairs: the baseline has no index
        ii, jj = np.nonzero(np.triu(d <= t, 1))
        s = score({(ids[i], ids[j]): int(d[i, j]) for i, j in zip(ii, jj)}, labels, kinds, ids)
        print(
            f"{f'imagehash phash <={t}':>29} {s['recall']:7.4f} {s['fpr']:9.2e} {s['false_pairs']:11d} "
            f"{s['kept']:5d} {s['wrong_drops']:11d} {n - 1:12.1f} {'(all pairs)':>22}  {s['worst']}"
        )


def bench_throughput(images: np.ndarray) -> None:
    from uvd.tokenize.stage import png_to_pixels
    from uvd.transforms.image import encode_png

    n = min(len(images), 2000)
    sub = images[:n]
    print(f"\n-- fingerprint throughput, one core, {n} images of 256x256")
    for bits in (64, 128):
        F.dct_hash(sub[:256], bits)  # warm: caches, page faults
        start = time.process_time()
        for i in range(0, n, 256):
            F.dct_hash(sub[i : i + 256], bits)
        print(f"dct_hash {bits:3d} bits, batches of 256: {rate(n, time.process_time() - start)}")
    start = time.process_time()
    for im in sub[:500]:
        F.dct_hash(im, 128)
        F.thumbnail(im)
    print(f"dct_hash 128 + thumbnail, one at a time (the pipeline's DoFn): {rate(500, time.process_time() - start)}")
    pngs = [encode_png(im) for im in sub[:300]]
    start = time.process_time()
    for p in pngs:
        png_to_pixels(p)
    print(f"PNG decode (paid once more by the fingerprint step): {rate(300, time.process_time() - start)}")
    try:
        import imagehash
        from PIL import Image
    except ImportError:
        return
    start = time.process_time()
    for im in sub[:500]:
        imagehash.phash(Image.fromarray(im))
    print(f"baseline imagehash.phash (64 bits, PIL resize + scipy DCT): {rate(500, time.process_time() - start)}")


def bench_grouping_scale(count: int = 50_000) -> None:
    """Grouping cost alone on many hashes: random 128-bit hashes with 10 % planted near-duplicates."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (count, 16), dtype=np.uint8)
    planted = count // 10
    flips = rng.integers(0, 128, (planted, 6))
    near = np.unpackbits(base[:planted], axis=1)
    np.bitwise_xor.at(near, (np.arange(planted)[:, None], flips), 1)
    hashes = np.concatenate([base, np.packbits(near, axis=1)])
    ids = [f"{i:07d}" for i in range(len(hashes))]
    print(f"\n-- grouping throughput, one core: {len(hashes):,} random 128-bit hashes, {planted:,} planted pairs")
    for bands in (8, 16):
        start = time.process_time()
        edges, compared = edges_by_lsh(hashes, ids, bands, 32)
        secs = time.process_time() - start
        found = sum(1 for i in range(planted) if (ids[i], ids[count + i]) in edges)
        print(
            f"{bands:2d} bands: {rate(len(hashes), secs)}, {compared / len(hashes):.1f} compared/img, "
            f"planted found {found / planted:.4f}, false edges {len(edges) - found}"
        )


def bench_code_grid(images: np.ndarray, labels: np.ndarray, kinds: list[str], bases: int) -> None:
    """The alternative the issue names: compare images by their VQGAN code grids (same tokenizer as the
    pipeline, shipped small model). Score: share of the 256 positions with the same code."""
    from uvd.tokenize import DEFAULT_CHECKPOINT, encode, load_vqgan

    keep = np.isin(labels, np.unique(labels)[:bases])
    imgs, labs = images[keep], labels[keep]
    knds = [k for k, m in zip(kinds, keep) if m]
    model = load_vqgan(DEFAULT_CHECKPOINT)
    start = time.process_time()
    codes = encode(model, imgs, batch_size=1)
    enc = time.process_time() - start
    agree = (codes[:, None, :] == codes[None, :, :]).mean(axis=2)
    dct = F.hamming(F.dct_hash(imgs, 128)[:, None], F.dct_hash(imgs, 128)[None, :])
    same = labs[:, None] == labs[None, :]
    iu = np.triu(np.ones_like(same), 1).astype(bool)
    base_of = {labs[i]: i for i in range(len(labs)) if knds[i] == ""}
    edit_idx = [i for i in range(len(labs)) if knds[i]]
    print(f"\n-- code-grid hash vs DCT hash on {len(labs)} images ({bases} bases); encode {rate(len(labs), enc)}")
    neg_codes, neg_dct = agree[~same & iu], dct[~same & iu]
    pos_codes = np.array([agree[i, base_of[labs[i]]] for i in edit_idx])
    pos_dct = np.array([dct[i, base_of[labs[i]]] for i in edit_idx])
    for name, pos, neg, better in (
        ("code agreement", pos_codes, neg_codes, "high"),
        ("dct128 bits", pos_dct, neg_dct, "low"),
    ):
        limit = np.max(neg) if better == "high" else np.min(neg)  # the strictest threshold with 0 FP
        hit = (pos > limit) if better == "high" else (pos < limit)
        print(
            f"{name:>15}: edits vs base median {np.median(pos):.3f}, distinct pairs best {limit:.3f}; "
            f"recall at zero false positives {hit.mean():.3f}"
        )
    by_kind = collections.defaultdict(list)
    for i in edit_idx:
        by_kind[knds[i]].append(agree[i, base_of[labs[i]]])
    print("   code agreement by edit: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in sorted(by_kind.items())))


def bench_cuts() -> None:
    bases = testset.sample_photos() + [testset.procedural(10_000 + i) for i in range(60)]
    frames, cuts = testset.cut_clips(bases, seed=1)
    thumbs = F.thumbnail(frames)
    tp = fp = fn = 0
    start = time.process_time()
    windows = 0
    for s in range(0, len(frames) - 15, 8):  # 16-frame windows, half overlapping
        rep = sequence.check_sequence(thumbs[s : s + 16])
        truth = {c - s for c in cuts if s < c < s + 16}
        got = set(rep.cuts)
        tp, fp, fn = tp + len(got & truth), fp + len(got - truth), fn + len(truth - got)
        windows += 1
    secs = time.process_time() - start
    print(f"\n-- scene cuts: {len(frames)} frames, {len(bases)} shots (pans of stills, JPEG q80), {windows} windows")
    print(
        f"precision {tp / max(tp + fp, 1):.3f} recall {tp / max(tp + fn, 1):.3f} (tp {tp}, fp {fp}, fn {fn}); "
        f"check_sequence {rate(windows, secs)} per 16-frame window"
    )
    real = _video_frames()
    if real is not None:
        frames, cut = real
        rep = sequence.check_sequence(F.thumbnail(frames))
        print(
            f"sample videos china_pan + coffee_zoom (a cut at {cut}), 16 frames at stride 10: cuts found "
            f"{rep.cuts}, frozen {rep.frozen}, blank {rep.blank}"
        )


def _video_frames() -> tuple[np.ndarray, int] | None:
    try:
        import cv2

        from uvd.transforms.image import resize_crop
    except ImportError:
        return None
    out = []
    for name, _count in (("china_pan.mp4", 9), ("coffee_zoom.mp4", 7)):
        cap = cv2.VideoCapture(str(testset.SAMPLE_IMAGES.parent / "videos" / name))
        i = 0
        while len(out) < (9 if name.startswith("china") else 16):
            ok, frame = cap.read()
            if not ok:
                break
            if i % 10 == 0:
                out.append(resize_crop(frame[..., ::-1].copy(), 256))
            i += 1
        cap.release()
    return (np.stack(out), 9) if len(out) == 16 else None


def bench_psnr_cost() -> None:
    from uvd.quality.learn import psnr
    from uvd.tokenize import DEFAULT_CHECKPOINT, decode, encode, load_vqgan

    model = load_vqgan(DEFAULT_CHECKPOINT)
    photos = np.stack(testset.sample_photos(8))
    ids = encode(model, photos, batch_size=1)
    decode(model, ids[:1], batch_size=1)
    start = time.process_time()
    out = decode(model, ids, batch_size=1)
    secs = time.process_time() - start
    values = [psnr(a, b) for a, b in zip(photos, out)]
    print(
        f"\n-- learnability: decode for PSNR {rate(len(ids), secs)} (small VQGAN, CPU); sample photos "
        f"PSNR {min(values):.1f}..{max(values):.1f} dB; distinct codes {[len(set(r.tolist())) for r in ids]}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procedural", type=int, default=300)
    ap.add_argument("--code-bases", type=int, default=16, help="bases (x16 images) tokenized for the code-grid test")
    ap.add_argument("--scale", type=int, default=50_000, help="random hashes for the grouping throughput")
    args = ap.parse_args()
    start = time.process_time()
    images, labels, kinds = testset.near_duplicate_set(args.procedural)
    print(
        f"generated {len(images)} images in {time.process_time() - start:.1f}s CPU; every rate below is per "
        "second of this process's CPU time (one thread), so a busy machine does not skew it"
    )
    bench_throughput(images)
    bench_near_duplicates(images, labels, kinds)
    bench_grouping_scale(args.scale)
    bench_cuts()
    bench_code_grid(images, labels, kinds, args.code_bases)
    bench_psnr_cost()


if __name__ == "__main__":
    main()

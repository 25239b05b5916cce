"""Tokenize throughput on CPU: the stage's batched path vs a naive per-image fp32 loop.

    .venv/bin/python benchmarks/bench_tokenize.py [--images 22] [--batch 32] [--checkpoint DIR]

Same model (the shipped small VQGAN unless --checkpoint), same PNG images (the sample photos at
256x256), same process and thread settings, measured one after the other in this run:
  * baseline: what the LVM's tokenize scripts do per image: decode, a (1, 3, 256, 256) float
    tensor, `model.encode(x)` (open-muse API: quantized states + ids) under no_grad, fp32;
  * stage: what `uvd tokenize` runs per worker: `png_to_pixels` then VQGANModelHandler
    .run_inference on batches (uint8 -> float on the device, `get_code`, inference_mode).
Both give the same ids up to rare near-tie flips between batch sizes (checked: >= 99%). For GPU numbers see benchmarks/gpu_tokenize.py.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from uvd.tokenize import DEFAULT_CHECKPOINT, load_vqgan  # noqa: E402
from uvd.tokenize.handler import VQGANModelHandler  # noqa: E402
from uvd.tokenize.stage import png_to_pixels  # noqa: E402
from uvd.tokenize.train_small import SAMPLE_IMAGES, fit_256  # noqa: E402


def sample_pngs(n: int) -> list[bytes]:
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))
    out = []
    for i in range(n):
        buf = io.BytesIO()
        pixels = fit_256(Image.open(paths[i % len(paths)]))
        Image.fromarray(pixels if i < len(paths) else pixels[:, ::-1].copy()).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def naive_loop(model, pngs: list[bytes]) -> np.ndarray:
    ids = []
    with torch.no_grad():
        for data in pngs:
            pixels = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
            x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255.0
            _, codes = model.encode(x)
            ids.append(codes[0].numpy().astype(np.uint16))
    return np.stack(ids)


def stage_path(handler: VQGANModelHandler, model, pngs: list[bytes], batch: int) -> np.ndarray:
    pixels = [png_to_pixels(data) for data in pngs]
    out = []
    for start in range(0, len(pixels), batch):
        out += handler.run_inference(pixels[start : start + batch], model)
    return np.stack(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    args = p.parse_args(argv)

    pngs = sample_pngs(args.images)
    handler = VQGANModelHandler(args.checkpoint, device="cpu", max_batch_size=args.batch)
    model = handler.load_model()  # the stage's model: channels_last, images walked one by one on CPU
    plain = load_vqgan(args.checkpoint)  # the naive loop's: the checkpoint as loaded, NCHW
    # Both at torch's default thread count and at one thread: on a shared box, batch-1 convs with
    # several OpenMP threads stall on each other, and that alone can decide the ratio.
    for threads in dict.fromkeys([torch.get_num_threads(), 1]):
        torch.set_num_threads(threads)
        naive_loop(plain, pngs[:2])  # warm up both paths (oneDNN primitive caches)
        stage_path(handler, model, pngs[:2], args.batch)
        t0 = time.perf_counter()
        ref = naive_loop(plain, pngs)
        t1 = time.perf_counter()
        ours = stage_path(handler, model, pngs, args.batch)
        t2 = time.perf_counter()
        agree = float((ref == ours).mean())  # oneDNN picks other kernels per batch size: rare near-tie flips
        if agree < 0.99:
            print(f"bench_tokenize: ids differ on {1 - agree:.2%} of tokens", file=sys.stderr)
            return 1
        base, fast = len(pngs) / (t1 - t0), len(pngs) / (t2 - t1)
        print(
            f"tokenize: {fast:.2f} img/s (stage: RunInference batches of {args.batch}, channels_last, per-image forward on CPU, get_code) vs baseline "
            f"{base:.2f} img/s (naive per-image fp32 model.encode) -> {fast / base:.2f}x "
            f"[{len(pngs)} images, {threads} threads, CPU, {100 * agree:.2f}% same ids]",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

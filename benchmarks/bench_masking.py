"""Document masking vs plain causal attention: what no cross-sentence attention costs.

    .venv/bin/python benchmarks/bench_masking.py [--seq 2048] [--steps 4]

Windows are packed by the real ShardLoader from synthetic shards in the UVDv1 mix (88% single
images of 258 tokens, the rest 16-image sentences of 4098 tokens), so the sentence boundaries are
the ones training sees. The tiny model, one thread, steps of every variant alternated so machine
load hits them alike. Figures: tokens/s of each variant and its ratio to plain causal attention
(1.0 = masking is free; > 1 = cheaper than causal, since a sentence attends only to itself).

- train (forward + backward): causal SDPA vs the document mask as `segments` (one causal SDPA per
  sentence, the CPU default), as a dense boolean mask (`sdpa`, the baseline: 0.66x on an H200), and
  on CUDA as FlexAttention (`flex`, the CUDA default). torch 2.13 has no FlexAttention backward on CPU.
- inference (forward only, no grad): the same, plus compiled FlexAttention on CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.bench_train import write_shards  # noqa: E402
from uvd.devices import autocast  # noqa: E402
from uvd.model.data import ShardLoader  # noqa: E402
from uvd.model.model import LVM, model_config  # noqa: E402


def timed(fn, rounds: int, variants: list[str]) -> dict[str, float]:
    """Seconds per call of fn(variant), variants interleaved; round 0 is warm-up (and compilation)."""
    total = dict.fromkeys(variants, 0.0)
    for r in range(rounds + 1):
        for v in variants:
            if r == 0:
                fn(v)
                continue
            t0 = time.perf_counter()
            fn(v)
            total[v] += time.perf_counter() - t0
    return {v: t / rounds for v, t in total.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--no_flex", action="store_true", help="skip compiled FlexAttention (CPU compile takes ~30 s)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        write_shards(Path(tmp), n=400)
        batch = next(iter(ShardLoader(tmp, args.seq, args.batch, split="train", seed=1)))
    tokens, targets, doc_ids = (batch[k].to(device) for k in ("tokens", "targets", "doc_ids"))
    sentences = (doc_ids.max(1).values - doc_ids.min(1).values + 1).float().mean().item()
    torch.manual_seed(0)
    model = LVM(model_config(args.model, max_seq_len=args.seq)).to(device)
    n_tokens = tokens.numel()
    where = f"{torch.cuda.get_device_name() if cuda else 'CPU, 1 thread'}, {args.model}, {args.batch} x {args.seq}"
    print(f"document masking ({where}; {sentences:.1f} sentences per window):")

    def step(variant: str, train: bool) -> None:
        model.attn_impl = variant if variant != "causal" else "auto"
        ids = None if variant == "causal" else doc_ids
        with autocast(device, "auto"), torch.set_grad_enabled(train):
            if train:
                model(tokens, targets=targets, doc_ids=ids).backward()
                model.zero_grad(set_to_none=True)
            else:
                model(tokens, doc_ids=ids)
        if cuda:
            torch.cuda.synchronize()

    train_variants = ["causal", "segments", "sdpa"] + (["flex"] if cuda else [])
    infer_variants = ["causal", "segments", "sdpa"] + ([] if args.no_flex and not cuda else ["flex"])
    for label, variants, train in (("train", train_variants, True), ("inference", infer_variants, False)):
        secs = timed(lambda v, train=train: step(v, train), args.steps, variants)
        base = secs["causal"]
        cells = [f"{v} {n_tokens / s:,.0f} tok/s ({base / s:.2f}x)" for v, s in secs.items()]
        print(f"  {label:9s}: " + " | ".join(cells))
        masked = secs["flex" if cuda else "segments"]
        print(
            f"  {label:9s}: masked/unmasked speed ratio {base / masked:.2f} "
            f"({'flex' if cuda else 'segments'} vs plain causal; dense-mask baseline {base / secs['sdpa']:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GPU training throughput of the LVM: 300m config, bf16, eager vs torch.compile; tokens/s and MFU.

For the lead to run once on an H100/H200 (about 4 minutes, no network, no data: random tokens,
since the loader is measured on its own in bench_train.py):
    python benchmarks/gpu_train.py                 # 300m, seq 4096, batch 8
    python benchmarks/gpu_train.py --smoke         # CPU, debug model, a few steps (CI checks it runs)
MFU = 6N + 12 L T d FLOPs per token x tokens/s / the device's dense bf16 peak (989 TFLOP/s on
H100/H200 SXM); the goal is >= 45%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from uvd import schema  # noqa: E402
from uvd.model.logger import peak_flops  # noqa: E402
from uvd.model.model import LVM, flops_per_token, model_config  # noqa: E402
from uvd.model.train import TrainConfig, build_optimizer, train_step  # noqa: E402


def run(
    name: str,
    seq_len: int,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    dtype: str,
    compile_blocks: bool,
    doc_mask: bool,
) -> tuple[float, float]:
    """(tokens/s, peak GiB) over `steps` optimizer steps after `warmup` (compilation included there)."""
    torch.manual_seed(0)
    cfg = model_config(name, max_seq_len=seq_len)
    with torch.device(device):
        model = LVM(cfg)
    if compile_blocks:
        for block in model.layers:
            block.compile()
    opt = build_optimizer(model, TrainConfig(lr=1.5e-4))
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, schema.CODEBOOK_SIZE, (batch, seq_len + 1), device=device, generator=g)
    doc = torch.arange(seq_len, device=device).div(1026, rounding_mode="floor").expand(batch, -1)  # 4-image sentences
    mb = [{"tokens": x[:, :-1], "targets": x[:, 1:], "doc_ids": doc}]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        train_step(model, opt, mb, device=device, amp_dtype=dtype, doc_mask=doc_mask)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, _ = train_step(model, opt, mb, device=device, amp_dtype=dtype, doc_mask=doc_mask)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    assert loss == loss, "loss is NaN"
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return steps * batch * seq_len / dt, mem


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="300m")
    ap.add_argument("--seq_len", type=int, default=4096)
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--doc_mask", action="store_true", help="also time the document-causal mask")
    ap.add_argument("--smoke", action="store_true", help="CPU, debug model, a few steps")
    args = ap.parse_args(argv)
    if args.smoke:
        args.model, args.seq_len, args.batch_size, args.steps, args.warmup = "debug", 128, 2, 2, 1
        args.compile = "off" if args.compile == "auto" else args.compile
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    else:
        print(f"device: cpu ({'smoke run' if args.smoke else 'no CUDA: numbers are not the GPU figures'})")
    dtype = "bfloat16" if device.type == "cuda" else "float32"
    cfg = model_config(args.model, max_seq_len=args.seq_len)
    fpt = flops_per_token(cfg, args.seq_len)
    peak = peak_flops(device)

    def report(label: str, tps: float, mem: float, base: float | None = None, base_label: str = "") -> None:
        mfu = f"MFU {100 * fpt * tps / peak:.1f}%" if peak else "MFU n/a (unknown peak)"
        ratio = f" -> {tps / base:.2f}x" if base else ""
        print(
            f"train {args.model} {label}: {tps:,.0f} tokens/s, {mfu}, peak mem {mem:.1f} GiB"
            + (f" vs baseline {base:,.0f} tokens/s ({base_label}){ratio}" if base else ""),
            flush=True,
        )

    common = dict(
        name=args.model,
        seq_len=args.seq_len,
        batch=args.batch_size,
        steps=args.steps,
        warmup=args.warmup,
        device=device,
        dtype=dtype,
    )
    eager, mem = run(**common, compile_blocks=False, doc_mask=False)
    report(f"{dtype} eager, seq {args.seq_len} x batch {args.batch_size}", eager, mem)
    best = eager
    if args.compile != "off":
        try:
            compiled, mem = run(**common, compile_blocks=True, doc_mask=False)
            report(f"{dtype} torch.compile", compiled, mem, eager, f"eager {dtype}")
            best = max(best, compiled)
        except Exception as exc:  # noqa: BLE001 - report, keep the eager figure
            print(f"torch.compile failed: {type(exc).__name__}: {exc}"[:300])
    if args.doc_mask:
        compiled_best = best != eager
        masked, mem = run(**common, compile_blocks=compiled_best, doc_mask=True)
        label = "torch.compile" if compiled_best else "eager"
        report(f"{dtype} {label} + document mask", masked, mem, best, f"{label} {dtype}, causal only")
    print(f"best: {best:,.0f} tokens/s" + (f", MFU {100 * fpt * best / peak:.1f}% (goal >= 45%)" if peak else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluation as in the LVM paper, plus the validation loss.

In-context task perplexity: for each task, prompts of 5 (input, output) image pairs and a query
input; the model's perplexity on the 256 tokens of the query's output image, and only those, is
averaged over the task's prompts. Prompts come from held-out annotated sentences (kind
`annotated`, source `ann/<task>`, images alternating input, output): the first 5 pairs are the
examples and the 6th pair is the query and its target.

Sequential prompting (uvd.model.sequential): next-frame perplexity given 1..15 frames on held-out
video sentences, a curve per checkpoint, plotted to `--plot`.

`python -m uvd.model.evaluate --checkpoint runs/x/step_00001000.pt [more checkpoints or HF ids] --data out/sample`
prints one line per task, the sequential curve and the validation loss of each checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from uvd import schema
from uvd.devices import autocast
from uvd.model.data import ShardLoader, resolve_shards

N_EXAMPLES = 5
T = schema.TOKENS_PER_IMAGE


def prompt_tokens(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    query: np.ndarray,
    target: np.ndarray,
    bos_id: int | None = schema.BOS_ID,
) -> tuple[np.ndarray, slice]:
    """[BOS] in1 out1 ... in5 out5 query target; returns the tokens and the target's positions.

    bos_id None (a model trained without BOS, such as the official LVM weights) starts with in1.
    """
    parts = [np.array([] if bos_id is None else [bos_id], np.int64)]
    for a, b in pairs:
        parts += [a, b]
    parts += [query, target]
    tokens = np.concatenate(parts).astype(np.int64)
    return tokens, slice(len(tokens) - len(target), len(tokens))


@torch.no_grad()
def target_nll(model, tokens: torch.Tensor, target: slice) -> torch.Tensor:
    """Mean NLL (nats) of tokens[:, target] given everything before; tokens (B, L), same layout."""
    logits = model(tokens[:, : target.stop - 1])  # the last target needs no successor
    pred = logits[:, target.start - 1 : target.stop - 1].float()
    return torch.nn.functional.cross_entropy(pred.transpose(1, 2), tokens[:, target], reduction="none").mean(1)


def prompts_from_shards(
    shards: str | list[str],
    split: str | None = "validation",
    max_per_task: int = 50,
    n_examples: int = N_EXAMPLES,
    skip_sources: tuple[str, ...] = ("ann/multi",),
    bos_id: int | None = schema.BOS_ID,
) -> dict[str, list[tuple[np.ndarray, slice]]]:
    """task -> prompts from annotated sentences with at least n_examples + 1 pairs.

    `ann/multi` sentences (m picks of one image's 1 + k annotations) are not (input, output) pairs.
    """
    need = 2 * (n_examples + 1)
    out: dict[str, list] = defaultdict(list)
    for path in resolve_shards(shards, split):
        table = pq.read_table(path, columns=["source", "kind", "num_images", "tokens"])
        for source, kind, k, toks in zip(
            *(table.column(c).to_pylist() for c in ("source", "kind", "num_images", "tokens"))
        ):
            if kind != "annotated" or k < need or source in skip_sources or len(out[source]) >= max_per_task:
                continue
            imgs = np.asarray(toks, np.int64).reshape(k, T)
            pairs = [(imgs[2 * i], imgs[2 * i + 1]) for i in range(n_examples)]
            out[source].append(prompt_tokens(pairs, imgs[2 * n_examples], imgs[2 * n_examples + 1], bos_id))
    return dict(out)


def task_perplexity(
    model, prompts: dict[str, list[tuple[np.ndarray, slice]]], device="cpu", batch_size: int = 8
) -> dict[str, dict[str, float]]:
    """task -> {perplexity (mean of per-prompt perplexities), nll, prompts}."""
    model.eval()
    results = {}
    for task, items in sorted(prompts.items()):
        nlls = []
        for i in range(0, len(items), batch_size):
            chunk = items[i : i + batch_size]
            tokens = torch.from_numpy(np.stack([t for t, _ in chunk])).to(device)
            nlls += target_nll(model, tokens, chunk[0][1]).tolist()
        results[task] = {"perplexity": float(np.mean(np.exp(nlls))), "nll": float(np.mean(nlls)), "prompts": len(nlls)}
    model.train()
    return results


@torch.no_grad()
def validation_loss(
    model, loader: ShardLoader, max_batches: int, device="cpu", amp_dtype="auto", doc_mask: bool = False
) -> float | None:
    """Mean next-token loss over up to max_batches packed batches of the held-out split.

    Every rank evaluates its own share. Under DDP/FSDP all ranks run the same number of forward
    passes (a sharded model's forward is a collective): a rank out of data runs a dummy batch that
    is not counted, and the loop ends when every rank is out.
    """
    distributed = torch.distributed.is_initialized()
    model.eval()
    total, count = torch.zeros((), device=device), torch.zeros((), device=device)
    batches = iter(loader)
    dummy: dict[str, torch.Tensor] = {}
    for _ in range(max_batches):
        batch = next(batches, None)
        if distributed:
            alive = torch.tensor(float(batch is not None), device=device)
            torch.distributed.all_reduce(alive)
            if alive.item() == 0:
                break
        if batch is None:
            if not distributed:
                break
            dummy = dummy or {
                k: torch.zeros(loader.batch_size, loader.seq_len, dtype=torch.long)
                for k in ("tokens", "targets", "doc_ids")
            }
        with autocast(device, amp_dtype):
            b: dict[str, torch.Tensor] = batch or dummy
            loss = model(
                b["tokens"].to(device),
                targets=b["targets"].to(device),
                doc_ids=b["doc_ids"].to(device) if doc_mask else None,
            )
        if batch is not None:
            total += loss.float()
            count += 1
    model.train()
    if distributed:
        torch.distributed.all_reduce(total)
        torch.distributed.all_reduce(count)
    return (total / count).item() if count.item() > 0 else None


def load_model(path: str, device="cpu", max_seq_len: int | None = None):
    """An LVM and its checkpoint dict from a uvd-train checkpoint (`*.pt`, which carries its model
    config) or a Hugging Face Llama folder / hub id (uvd.model.hf; the dict then has no train config).
    """
    from uvd.model import checkpoint, hf
    from uvd.model.model import LVM, ModelConfig

    if hf.is_hf(path):
        model = hf.load_hf(path, device, max_seq_len=max_seq_len)
        return model.eval(), {"model_config": vars(model.cfg), "config": {}, "source": path}
    ckpt = checkpoint.read(path)
    model = LVM(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def evaluate_checkpoint(
    path: str, data: str, split: str, max_per_task: int = 50, val_batches: int = 20, max_videos: int = 50, device="cpu"
) -> dict:
    """Task perplexities, the sequential-prompting curve and the validation loss of one checkpoint."""
    from uvd.model import sequential

    model, ckpt = load_model(path, device)
    bos = model.cfg.bos_id
    prompts = prompts_from_shards(data, split, max_per_task, bos_id=bos)
    results: dict = {"tasks": task_perplexity(model, prompts, device)}
    videos = sequential.video_sentences(data, split, max_sentences=max_videos)
    if len(videos) and model.cfg.max_seq_len >= videos.shape[1] * T + (bos is not None) - 1:
        results["sequential"] = sequential.curve(model, videos, device)
    seq_len = ckpt["config"].get("seq_len") or min(model.cfg.max_seq_len, schema.CONTEXT_LENGTH)
    try:
        loader = ShardLoader(
            data, seq_len, 4, split=split, shuffle=False, epochs=1, bos_id=bos, eos_id=model.cfg.eos_id
        )
        results["val_loss"] = validation_loss(model, loader, val_batches, device)
    except (FileNotFoundError, ValueError) as exc:
        print(f"{path}: no validation loss: {exc}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m uvd.model.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        help="uvd-train checkpoints (*.pt) and/or Hugging Face Llama folders / hub ids",
    )
    ap.add_argument("--data", required=True, help="shard dir / glob")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--max_per_task", type=int, default=50)
    ap.add_argument("--max_videos", type=int, default=50, help="video sentences for the sequential curve")
    ap.add_argument("--val_batches", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--plot", default="sequential.png", help="the sequential curves, one per checkpoint ('' = none)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    from uvd.devices import pick_device
    from uvd.model import sequential

    device = pick_device(args.device)
    everything = {}
    for path in args.checkpoint:
        r = everything[path] = evaluate_checkpoint(
            path, args.data, args.split, args.max_per_task, args.val_batches, args.max_videos, device
        )
        print(f"== {path}")
        for task, t in r["tasks"].items():
            print(f"{task:30s} perplexity {t['perplexity']:10.2f}  ({t['prompts']} prompts)")
        if "sequential" in r:
            c = r["sequential"]
            print(
                f"sequential ({c['sentences']} videos): next-frame perplexity at 1..15 context frames: "
                + " ".join(f"{p:.1f}" for p in c["perplexity"])
            )
        if r.get("val_loss") is not None:
            print(f"validation loss {r['val_loss']:.4f} (perplexity {math.exp(r['val_loss']):.1f})")
    curves = {Path(p).name or p: r["sequential"] for p, r in everything.items() if "sequential" in r}
    if curves and args.plot and (png := sequential.plot(curves, args.plot)):
        print(f"sequential curves: {png}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything if len(everything) > 1 else everything[args.checkpoint[0]], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

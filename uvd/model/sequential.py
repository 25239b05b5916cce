"""Sequential prompting, as in the LVM paper: next-frame perplexity given 1..15 frames of context.

For each held-out video sentence (source `video`, 16 frames) and each k in 1..15, the model's
perplexity on the 256 tokens of frame k + 1 given [BOS] + frames 1..k. A causal model computes all
15 in one forward pass over the whole sentence (the logits at frame k + 1's positions see exactly
frames 1..k), so the curve costs one pass per sentence. Per k, the curve averages per-sentence
perplexities (as the in-context task evaluation does). Falling perplexity with k is the paper's
evidence that the model uses temporal context.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from uvd import schema
from uvd.model.data import resolve_shards

T = schema.TOKENS_PER_IMAGE
MAX_CONTEXT = 15


def video_sentences(
    shards,
    split: str | None = "validation",
    frames: int = MAX_CONTEXT + 1,
    max_sentences: int = 50,
    sources: tuple[str, ...] = ("video",),
) -> np.ndarray:
    """(N, frames, 256) codes: the first `frames` frames of up to max_sentences `sequence` sentences."""
    out: list[np.ndarray] = []
    for path in resolve_shards(shards, split):
        table = pq.read_table(path, columns=["source", "kind", "num_images", "tokens"])
        cols = (table.column(c).to_pylist() for c in ("source", "kind", "num_images", "tokens"))
        for source, kind, k, toks in zip(*cols):
            if kind == "sequence" and source in sources and k >= frames and len(out) < max_sentences:
                out.append(np.asarray(toks, np.int64).reshape(k, T)[:frames])
    return np.stack(out) if out else np.zeros((0, frames, T), np.int64)


@torch.no_grad()
def frame_nll(model, sentences: np.ndarray, device="cpu", batch_size: int = 2) -> np.ndarray:
    """(N, F-1) mean NLL (nats) of frame k+1 given frames 1..k, k = 1..F-1, one forward per sentence."""
    bos = model.cfg.bos_id
    off = 0 if bos is None else 1
    n, frames = sentences.shape[:2]
    model.eval()
    rows = []
    for i in range(0, n, batch_size):
        codes = torch.from_numpy(sentences[i : i + batch_size].reshape(-1, frames * T)).to(device)
        if bos is not None:
            codes = torch.cat([torch.full((len(codes), 1), bos, dtype=codes.dtype, device=device), codes], 1)
        logits = model(codes[:, :-1])  # the last token needs no successor
        start = off + T  # frame 2's first token
        pred = logits[:, start - 1 :].float()
        nll = F.cross_entropy(pred.transpose(1, 2), codes[:, start:], reduction="none")  # (B, (F-1) * T)
        rows.append(nll.view(len(codes), frames - 1, T).mean(-1).cpu())
    return torch.cat(rows).numpy() if rows else np.zeros((0, frames - 1))


def curve(model, sentences: np.ndarray, device="cpu", batch_size: int = 2) -> dict:
    """{context_frames: [1..F-1], perplexity: mean per-sentence perplexity per k, nll, sentences}."""
    nll = frame_nll(model, sentences, device, batch_size)
    return {
        "context_frames": list(range(1, sentences.shape[1])),
        "perplexity": np.exp(nll).mean(0).tolist(),
        "nll": nll.mean(0).tolist(),
        "sentences": len(nll),
    }


def plot(curves: dict[str, dict], path: str | Path) -> Path | None:
    """One line per checkpoint: perplexity of the next frame against frames of context (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ax.plot(c["context_frames"], c["perplexity"], marker="o", label=f"{name} ({c['sentences']} videos)")
    ax.set_xlabel("context frames")
    ax.set_ylabel("next-frame perplexity")
    ax.set_title("Sequential prompting")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)

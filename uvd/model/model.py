"""The LVM: a LLaMA decoder over VQGAN codes (RMSNorm, SwiGLU, rotary embeddings, no biases).

One file a reader can hold in mind (nanoGPT). Sizes are one named table (torchtitan); `debug` and
`tiny` run on a laptop CPU, the others are the official LVM configs (DESIGN.md).

Attention is causal by default, or document-causal when the caller passes `doc_ids` (a token attends
only to earlier tokens of the same visual sentence). The document mask has three implementations
(`LVM.attn_impl`, see `ATTN_IMPLS`): FlexAttention with a block mask (fused, skips fully masked
tiles; CUDA, or CPU without gradients: torch 2.13 has no FlexAttention backward on CPU), one causal
SDPA call per sentence (`segments`: exact, costs what the sentences cost; the CPU default) and SDPA
with a dense boolean mask (the reference; rules out the flash kernels). Generation uses a
preallocated KV cache (`KVCache`), so each new token costs one position, not the prefix.

Grouped-query attention (n_kv_heads < n_heads) and tied embeddings exist for Hugging Face Llama
checkpoints (uvd.model.hf); the LVM configs use neither.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from uvd import schema


@dataclass(frozen=True)
class ModelConfig:
    dim: int
    n_layers: int
    n_heads: int
    ffn_dim: int
    vocab_size: int = schema.VOCAB_SIZE
    max_seq_len: int = schema.CONTEXT_LENGTH
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02
    n_kv_heads: int = 0  # 0: n_heads (no grouped-query attention)
    tie_embeddings: bool = False  # output head shares the embedding matrix
    bos_id: int | None = schema.BOS_ID  # None: sentences start without BOS (the official LVM weights)
    eos_id: int | None = schema.EOS_ID

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads


# name -> (dim, ffn, layers, heads). debug/tiny are ours (CPU tests, `make train`); the rest are the
# official LVM configs (vocab 8292, context 4096).
_SIZES: dict[str, tuple[int, int, int, int]] = {
    "debug": (64, 176, 2, 4),
    "tiny": (128, 352, 4, 4),
    "100m": (640, 1664, 22, 10),
    "300m": (1024, 2688, 22, 8),
    "600m": (1536, 4096, 22, 16),
    "1b": (2048, 5504, 22, 16),
    "3b": (3200, 8640, 26, 32),
    "7b": (4096, 11008, 32, 32),
}
MODEL_NAMES = tuple(_SIZES)


def model_config(name: str, **overrides) -> ModelConfig:
    """The named size, with optional field overrides (e.g. max_seq_len for a short CPU run)."""
    if name not in _SIZES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_SIZES)}")
    dim, ffn, layers, heads = _SIZES[name]
    return dataclasses.replace(ModelConfig(dim=dim, n_layers=layers, n_heads=heads, ffn_dim=ffn), **overrides)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 (as LLaMA) so bf16 activations do not lose the scale.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (max_len, head_dim/2): angle = pos * theta^(-2i/head_dim) for pair i."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of x (B, H, T, D) by the angles of its positions.

    cos/sin are (T, D/2), already sliced to the positions of x (LLaMA's complex form, in reals so
    torch.compile sees plain ops).
    """
    xf = x.float().unflatten(-1, (-1, 2))
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class KVCache:
    """Preallocated keys/values for every layer: (layers, B, H, max_len, D); `pos` tokens filled."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, device, dtype):
        shape = (cfg.n_layers, batch, cfg.kv_heads, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0
        self.max_len = max_len

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = k.shape[2]
        if self.pos + t > self.max_len:
            raise ValueError(f"KV cache full: {self.pos} + {t} > {self.max_len}")
        self.k[layer, :, :, self.pos : self.pos + t] = k
        self.v[layer, :, :, self.pos : self.pos + t] = v
        end = self.pos + t
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


ATTN_IMPLS = ("auto", "flex", "segments", "sdpa")


def document_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) sentence index per token -> (B, 1, T, T) bool: causal and within the same sentence."""
    t = doc_ids.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=doc_ids.device).tril()
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    return (same & causal)[:, None]


@dataclass(frozen=True)
class Segments:
    """Per batch row, the (start, end) of each sentence: the `segments` document mask."""

    rows: tuple[tuple[tuple[int, int], ...], ...]


def doc_segments(doc_ids: torch.Tensor) -> Segments:
    """Contiguous runs of equal doc_ids per row (the loader's sentences are contiguous)."""
    d = doc_ids.cpu()
    rows = []
    for row in d:
        cuts = (torch.nonzero(row[1:] != row[:-1]).flatten() + 1).tolist()
        bounds = [0, *cuts, len(row)]
        rows.append(tuple(zip(bounds[:-1], bounds[1:])))
    return Segments(tuple(rows))


def flex_block_mask(doc_ids: torch.Tensor):
    """FlexAttention BlockMask for document-causal attention: tiles with no allowed pair are skipped."""
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b, h, q, k):
        return (q >= k) & (doc_ids[b, q] == doc_ids[b, k])

    b, t = doc_ids.shape
    return create_block_mask(mask_mod, b, None, t, t, device=doc_ids.device)


_FLEX = None


def flex_attention(q, k, v, block_mask):
    """Compiled FlexAttention (eager flex materialises the scores; compiled it is one fused kernel)."""
    global _FLEX
    from torch.nn.attention.flex_attention import flex_attention as flex

    if torch.compiler.is_compiling():  # inside a compiled block: inline, the outer compile fuses it
        return flex(q, k, v, block_mask=block_mask)
    if _FLEX is None:
        _FLEX = torch.compile(flex, dynamic=False)
    return _FLEX(q, k, v, block_mask=block_mask)


def segment_attention(q, k, v, segments: Segments) -> torch.Tensor:
    """Causal SDPA within each sentence: exact document masking at the cost of the sentences alone."""
    rows = []
    for b, segs in enumerate(segments.rows):
        parts = [
            F.scaled_dot_product_attention(
                q[b : b + 1, :, s:e], k[b : b + 1, :, s:e], v[b : b + 1, :, s:e], is_causal=True
            )
            for s, e in segs
        ]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    return torch.cat(rows, dim=0)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, (cfg.n_heads + 2 * cfg.kv_heads) * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask=None, cache: KVCache | None = None, layer: int = 0):
        b, t, _ = x.shape
        qkv = self.wqkv(x).view(b, t, self.n_heads + 2 * self.n_kv, self.head_dim).transpose(1, 2)
        q, k, v = qkv.split([self.n_heads, self.n_kv, self.n_kv], dim=1)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        start = 0
        if cache is not None:
            start = cache.pos
            k, v = cache.update(layer, k, v)
        if self.n_kv != self.n_heads:  # grouped-query attention: each kv head serves n_heads / n_kv heads
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        if isinstance(mask, Segments):
            y = segment_attention(q, k, v, mask)
        elif mask is not None and not isinstance(mask, torch.Tensor):  # a FlexAttention BlockMask
            y = flex_attention(q, k, v, mask)
        elif mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        elif start == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif t == 1:
            y = F.scaled_dot_product_attention(q, k, v)  # one new token sees the whole cache
        else:  # a chunk appended to a cache: query i sees keys 0..start+i
            keep = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(diagonal=start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, cos, sin, mask=None, cache=None, layer=0):
        x = x + self.attention(self.attention_norm(x), cos, sin, mask, cache, layer)
        return x + self.feed_forward(self.ffn_norm(x))


class LVM(nn.Module):
    rope_cos: torch.Tensor  # buffers, registered in __init__
    rope_sin: torch.Tensor

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)  # untied, as LLaMA
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        self.attn_impl = "auto"  # how doc_ids are applied (ATTN_IMPLS); not part of the weights
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Normal(0.02); residual output projections scaled by 1/sqrt(2 * layers) (GPT-2)."""
        std = self.cfg.init_std
        for name, p in self.named_parameters():  # a tied head is listed once, as the embedding
            if p.ndim == 1:
                nn.init.ones_(p)
            elif name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.cfg.n_layers))
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor | None = None,
        doc_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ):
        """Logits (B, T, V), or the mean cross-entropy over targets != -100 when targets are given.

        doc_ids (B, T) turns on the document-causal mask; cache appends to a KV cache (generation).
        """
        t = tokens.shape[1]
        start = cache.pos if cache is not None else 0
        if start + t > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start + t} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[start : start + t], self.rope_sin[start : start + t]
        mask = self.doc_mask(doc_ids) if doc_ids is not None else None
        x = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.pos += t
        logits = self.output(self.norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)

    def resolved_attn_impl(self, device: torch.device) -> str:
        """'auto': FlexAttention on CUDA, per-sentence SDPA on CPU (no FlexAttention backward there)."""
        if self.attn_impl != "auto":
            return self.attn_impl
        return "flex" if device.type == "cuda" else "segments"

    def doc_mask(self, doc_ids: torch.Tensor):
        """The document-causal mask in the form the chosen implementation takes (one per forward)."""
        impl = self.resolved_attn_impl(doc_ids.device)
        if impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {', '.join(ATTN_IMPLS)}, got {impl!r}")
        if impl == "flex":
            return flex_block_mask(doc_ids)
        if impl == "segments":
            return doc_segments(doc_ids)
        return document_mask(doc_ids)

    def num_params(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n if embeddings else n - self.tok_embeddings.weight.numel()


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward): 6 N + 12 L T d (PaLM appendix B).

    N counts every matmul weight (blocks + output head), not the embedding lookup.
    """
    per_layer = 2 * cfg.dim * cfg.dim + 2 * cfg.dim * cfg.kv_heads * cfg.head_dim + 3 * cfg.dim * cfg.ffn_dim
    n = cfg.n_layers * per_layer + cfg.dim * cfg.vocab_size
    return 6 * n + 12 * cfg.n_layers * seq_len * cfg.dim

"""Hugging Face Llama interop: `LlamaForCausalLM` checkpoints in and out of `uvd.model.LVM`.

The official LVM weights are a converted EasyLM model in this format, and transformers / vLLM serve
it, so uvd reads and writes it directly (no transformers import: config.json + safetensors / .bin).

Layout differences handled
- q/k/v: separate `q_proj`, `k_proj`, `v_proj` (Llama) or a fused `qkv_proj`; ours is one fused
  `wqkv` (q rows, then k, then v). Same for `gate_proj`/`up_proj` or a fused `gate_up_proj`.
- Rotary convention: HF Llama rotates the halves of each head (dim i with dim i + head_dim/2, the
  `rotate_half` form); ours (Meta's) rotates interleaved pairs (2i, 2i+1). Both use the frequency
  theta^(-2i/head_dim) for pair i, so the conversion is the permutation of q and k rows that sends
  HF dim i to 2i and dim i + head_dim/2 to 2i + 1 (`rope_permute`), the inverse of transformers'
  own Meta -> HF conversion. Attention scores are unchanged because q and k move alike.
- Tied or untied output head (`tie_word_embeddings`), `rms_norm_eps`, `rope_theta`, grouped-query
  attention (`num_key_value_heads`), vocabulary size.
- BOS/EOS: taken from config.json when they are special tokens (>= 8192, outside the image codes);
  otherwise the model is prompted without BOS, as the official LVM demo does (`bos_id=None`).

`python -m uvd.model.hf export --checkpoint runs/x/step_00001000.pt --out hf/lvm` writes a folder
that `LlamaForCausalLM.from_pretrained` (and vLLM) loads; `... show <folder or hub id>` prints the
uvd view of a Hugging Face checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from uvd import schema
from uvd.config import ConfigError
from uvd.model.model import LVM, ModelConfig

SAFE_INDEX, SAFE_ONE = "model.safetensors.index.json", "model.safetensors"
BIN_INDEX, BIN_ONE = "pytorch_model.bin.index.json", "pytorch_model.bin"


# --- finding and reading the files ----------------------------------------------------------------
def resolve(path_or_id: str, revision: str | None = None) -> Path:
    """A local folder as given; else a hub id fetched through the normal hub cache (HF_HOME, offline mode).

    `owner/name/sub/folder` reads a checkpoint kept in a subfolder of the repo, `owner/name@rev` a
    revision. Safetensors are preferred; `.bin` files are downloaded only when there are none.
    """
    local = Path(path_or_id).expanduser()
    if local.is_dir():
        return local
    if local.suffix in (".pt", ".json") or path_or_id.startswith((".", "/")) or path_or_id.count("/") < 1:
        raise FileNotFoundError(f"{path_or_id}: no such Hugging Face folder (or owner/name hub id)")
    from huggingface_hub import snapshot_download

    spec, _, rev = path_or_id.partition("@")
    owner, name, *sub = spec.split("/")
    prefix = "/".join(sub) + "/" if sub else ""
    for kinds in (["*.safetensors"], ["*.bin"]):
        patterns = [prefix + p for p in ["*.json", *kinds]]
        folder = Path(snapshot_download(f"{owner}/{name}", revision=rev or revision, allow_patterns=patterns))
        folder = folder / prefix if prefix else folder
        if list(folder.glob(kinds[0])):
            return folder
    raise FileNotFoundError(f"{path_or_id}: no safetensors or .bin weights in the repo")


def weight_files(folder: Path) -> list[Path]:
    for index, one in ((SAFE_INDEX, SAFE_ONE), (BIN_INDEX, BIN_ONE)):
        if (folder / index).exists():
            names = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            return [folder / n for n in names]
        if (folder / one).exists():
            return [folder / one]
    raise FileNotFoundError(f"{folder}: no {SAFE_ONE}, {SAFE_INDEX}, {BIN_ONE} or {BIN_INDEX}")


def read_weights(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint on CPU; .bin through torch.load(weights_only=True) (no pickled code)."""
    out: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            out.update(load_file(str(f)))
        else:
            out.update(torch.load(f, map_location="cpu", weights_only=True, mmap=True))
    return out


# --- config ---------------------------------------------------------------------------------------
def _special(value) -> int | None:
    """A BOS/EOS id from config.json if it is a special token (not an image code), else None."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) and value >= schema.CODEBOOK_SIZE else None


def config_from_hf(hf: dict, max_seq_len: int | None = None) -> ModelConfig:
    """uvd ModelConfig from a Llama config.json dict; unsupported variants raise ConfigError."""
    arch = hf.get("architectures") or ["LlamaForCausalLM"]
    if hf.get("model_type", "llama") != "llama" or "LlamaForCausalLM" not in arch:
        raise ConfigError(f"hf: model_type {hf.get('model_type')!r} / {arch}: only LlamaForCausalLM checkpoints load")
    for key in ("attention_bias", "mlp_bias"):
        if hf.get(key):
            raise ConfigError(f"hf.{key}: biases are not supported (the LVM has none)")
    if hf.get("hidden_act", "silu") != "silu":
        raise ConfigError(f"hf.hidden_act: {hf['hidden_act']!r}; only silu (SwiGLU) is supported")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        raise ConfigError(f"hf.rope_scaling: {rope!r}; only plain RoPE is supported")
    dim, heads = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim") not in (None, dim // heads):
        raise ConfigError(f"hf.head_dim: {hf['head_dim']} != hidden_size / heads = {dim // heads}")
    kv = hf.get("num_key_value_heads") or heads
    return ModelConfig(
        dim=dim,
        n_layers=hf["num_hidden_layers"],
        n_heads=heads,
        ffn_dim=hf["intermediate_size"],
        vocab_size=hf["vocab_size"],
        max_seq_len=max_seq_len or hf.get("max_position_embeddings", schema.CONTEXT_LENGTH),
        rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        init_std=float(hf.get("initializer_range", 0.02)),
        n_kv_heads=0 if kv == heads else kv,
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        bos_id=_special(hf.get("bos_token_id")),
        eos_id=_special(hf.get("eos_token_id")),
    )


def config_to_hf(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> dict:
    """config.json for LlamaForCausalLM (read by transformers 4.x and 5.x, and vLLM)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": cfg.init_std,
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
        "pad_token_id": None,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "use_cache": True,
    }


# --- weights --------------------------------------------------------------------------------------
def rope_permute(w: torch.Tensor, heads: int, to_hf: bool) -> torch.Tensor:
    """Reorder q/k rows between the interleaved (uvd, Meta) and half-split (HF) rotary layouts."""
    rows, cols = w.shape
    hd = rows // heads
    if to_hf:  # ours (pairs 2i, 2i+1) -> HF (i, i + hd/2)
        return w.view(heads, hd // 2, 2, cols).transpose(1, 2).reshape(rows, cols)
    return w.view(heads, 2, hd // 2, cols).transpose(1, 2).reshape(rows, cols)


def state_from_hf(weights: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """HF tensor names/layouts -> an LVM state_dict (see the module docstring)."""
    w = {k.removeprefix("model."): v for k, v in weights.items()}
    q_rows, kv_rows = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    out = {"tok_embeddings.weight": w["embed_tokens.weight"], "norm.weight": w["norm.weight"]}
    head = weights.get("lm_head.weight")
    out["output.weight"] = w["embed_tokens.weight"] if cfg.tie_embeddings or head is None else head
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        if p + "self_attn.qkv_proj.weight" in w:
            q, k, v = w[p + "self_attn.qkv_proj.weight"].split([q_rows, kv_rows, kv_rows])
        else:
            q, k, v = (w[p + f"self_attn.{n}_proj.weight"] for n in "qkv")
        q, k = rope_permute(q, cfg.n_heads, to_hf=False), rope_permute(k, cfg.kv_heads, to_hf=False)
        if p + "mlp.gate_up_proj.weight" in w:
            gate, up = w[p + "mlp.gate_up_proj.weight"].chunk(2)
        else:
            gate, up = w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]
        out.update(
            {
                p + "attention.wqkv.weight": torch.cat([q, k, v]),
                p + "attention.wo.weight": w[p + "self_attn.o_proj.weight"],
                p + "feed_forward.w1.weight": gate,
                p + "feed_forward.w3.weight": up,
                p + "feed_forward.w2.weight": w[p + "mlp.down_proj.weight"],
                p + "attention_norm.weight": w[p + "input_layernorm.weight"],
                p + "ffn_norm.weight": w[p + "post_attention_layernorm.weight"],
            }
        )
    return out


def state_to_hf(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """An LVM state_dict -> LlamaForCausalLM tensor names (separate q/k/v, HF rotary layout)."""
    q_rows, kv_rows = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    out = {"model.embed_tokens.weight": state["tok_embeddings.weight"], "model.norm.weight": state["norm.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = state["output.weight"]
    for i in range(cfg.n_layers):
        p, h = f"layers.{i}.", f"model.layers.{i}."
        q, k, v = state[p + "attention.wqkv.weight"].split([q_rows, kv_rows, kv_rows])
        out.update(
            {
                h + "self_attn.q_proj.weight": rope_permute(q, cfg.n_heads, to_hf=True),
                h + "self_attn.k_proj.weight": rope_permute(k, cfg.kv_heads, to_hf=True),
                h + "self_attn.v_proj.weight": v,
                h + "self_attn.o_proj.weight": state[p + "attention.wo.weight"],
                h + "mlp.gate_proj.weight": state[p + "feed_forward.w1.weight"],
                h + "mlp.up_proj.weight": state[p + "feed_forward.w3.weight"],
                h + "mlp.down_proj.weight": state[p + "feed_forward.w2.weight"],
                h + "input_layernorm.weight": state[p + "attention_norm.weight"],
                h + "post_attention_layernorm.weight": state[p + "ffn_norm.weight"],
            }
        )
    return out


# --- the two entry points -------------------------------------------------------------------------
def load_hf(
    path_or_id: str,
    device="cpu",
    max_seq_len: int | None = None,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> LVM:
    """An LVM holding a Hugging Face LlamaForCausalLM checkpoint (folder or hub id)."""
    folder = resolve(path_or_id, revision)
    cfg = config_from_hf(json.loads((folder / "config.json").read_text()), max_seq_len)
    with torch.device("meta"):
        model = LVM(cfg)
    state = {k: v.to(dtype) for k, v in state_from_hf(read_weights(weight_files(folder)), cfg).items()}
    model.load_state_dict(state, strict=True, assign=True)
    if cfg.tie_embeddings:
        model.output.weight = model.tok_embeddings.weight
    model.rope_cos, model.rope_sin = _rope(cfg)
    return model.to(device)


def _rope(cfg: ModelConfig):
    from uvd.model.model import rope_tables

    return rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)


def export_hf(
    model: LVM, out_dir: str | os.PathLike, dtype: torch.dtype | None = None, max_shard_bytes: int = 5 * 2**30
) -> Path:
    """Write `model` as a LlamaForCausalLM folder: config.json, generation_config.json, safetensors."""
    from safetensors.torch import save_file

    cfg, out = model.cfg, Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype or v.dtype) for k, v in model.state_dict().items()}
    tensors = {k: v.contiguous().clone() for k, v in state_to_hf(state, cfg).items()}  # no shared storage
    dtype = next(iter(tensors.values())).dtype
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], str(out / SAFE_ONE), metadata=meta)
    else:
        weight_map = {}
        for i, shard in enumerate(shards):
            name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(out / name), metadata=meta)
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / SAFE_INDEX).write_text(json.dumps(index, indent=2))
    (out / "config.json").write_text(json.dumps(config_to_hf(cfg, dtype), indent=2))
    gen = {
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
        "suppress_tokens": list(range(schema.CODEBOOK_SIZE, cfg.vocab_size)),
    }  # sample image codes only
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    return out


def is_hf(path: str) -> bool:
    """A uvd-train checkpoint is one `.pt` file; anything else is a HF folder or hub id."""
    return not str(path).endswith(".pt")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m uvd.model.hf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="a uvd-train checkpoint -> a LlamaForCausalLM folder")
    ex.add_argument("--checkpoint", required=True)
    ex.add_argument("--out", required=True)
    ex.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    show = sub.add_parser("show", help="download (hub id) or read a HF folder; print the uvd config")
    show.add_argument("source")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        from uvd.model import checkpoint

        ckpt = checkpoint.read(args.checkpoint)
        model = LVM(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        print(export_hf(model, args.out, getattr(torch, args.dtype)))
    else:
        model = load_hf(args.source)
        print(json.dumps({**vars(model.cfg), "params": model.num_params()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

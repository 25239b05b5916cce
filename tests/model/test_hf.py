"""Hugging Face Llama interop against transformers itself: load, export, KV-cache greedy generation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uvd import schema
from uvd.model import hf
from uvd.model.generate import generate
from uvd.model.model import LVM, model_config

transformers = pytest.importorskip("transformers")


def tiny_llama(tmp_path, name="llama", **kw):
    """A random LlamaForCausalLM (grouped-query attention, non-default theta/eps), saved with save_pretrained."""
    torch.manual_seed(0)
    kw = {"bos_token_id": schema.BOS_ID, "eos_token_id": schema.EOS_ID, **kw}
    cfg = transformers.LlamaConfig(
        vocab_size=schema.VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_theta=500.0,
        **kw,
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # HF initialises norms to 1: perturb them so a swapped norm would show
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path / name)
    return model, tmp_path / name


def sentence(codes: np.ndarray, images: int) -> torch.Tensor:
    """Real VQGAN codes of sample photos as loader-style sequences: [BOS] img1 ... imgk [EOS] [BOS] ..."""
    body = np.concatenate([[schema.BOS_ID], codes[:images].reshape(-1), [schema.EOS_ID, schema.BOS_ID], codes[images]])
    return torch.from_numpy(body)[None]


def test_loaded_logits_match_transformers(tmp_path, real_codes):
    ref, folder = tiny_llama(tmp_path)
    model = hf.load_hf(str(folder)).eval()
    assert (model.cfg.n_kv_heads, model.cfg.norm_eps, model.cfg.rope_theta) == (2, 1e-5, 500.0)
    assert (model.cfg.bos_id, model.cfg.eos_id, model.cfg.tie_embeddings) == (schema.BOS_ID, schema.EOS_ID, False)
    x = torch.cat([sentence(real_codes, 2), sentence(np.roll(real_codes, 1, 0), 2)])
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x).logits, atol=1e-4, rtol=1e-4)


def test_export_round_trip_and_tied_weights(tmp_path, real_codes):
    ref, folder = tiny_llama(tmp_path, "tied", tie_word_embeddings=True)
    model = hf.load_hf(str(folder)).eval()
    assert model.cfg.tie_embeddings and model.output.weight is model.tok_embeddings.weight
    x = sentence(real_codes, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x).logits, atol=1e-4, rtol=1e-4)
    # a uvd model (fused qkv, interleaved rope, untied) exported, then read by transformers
    torch.manual_seed(1)
    ours = LVM(model_config("debug", max_seq_len=1024)).eval()
    out = hf.export_hf(ours, tmp_path / "export")
    back = transformers.LlamaForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, ours(x), atol=1e-4, rtol=1e-4)
    assert json.loads((out / "config.json").read_text())["bos_token_id"] == schema.BOS_ID
    again = hf.load_hf(str(out))  # and back into uvd: bit-identical weights
    for k, v in ours.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, atol=0, rtol=0)


def test_sharded_bin_and_fused_layout(tmp_path, real_codes):
    """Sharded pytorch_model-*.bin (read with weights_only) and a fused qkv_proj/gate_up_proj checkpoint."""
    ref, folder = tiny_llama(tmp_path)
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    for i in range(2):
        p = f"model.layers.{i}."
        sd[p + "self_attn.qkv_proj.weight"] = torch.cat([sd.pop(p + f"self_attn.{n}_proj.weight") for n in "qkv"])
        gate, up = sd.pop(p + "mlp.gate_proj.weight"), sd.pop(p + "mlp.up_proj.weight")
        sd[p + "mlp.gate_up_proj.weight"] = torch.cat([gate, up])
    bins = tmp_path / "bin"
    bins.mkdir()
    (bins / "config.json").write_text((folder / "config.json").read_text())
    names = sorted(sd)
    half = len(names) // 2
    halves = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
    for file, keys in halves.items():
        torch.save({k: sd[k] for k in keys}, bins / file)
    (bins / hf.BIN_INDEX).write_text(json.dumps({"weight_map": {k: f for f, ks in halves.items() for k in ks}}))
    model = hf.load_hf(str(bins)).eval()
    x = sentence(real_codes, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x).logits, atol=1e-4, rtol=1e-4)


def test_kv_cache_generation_matches_transformers_greedy(tmp_path, real_codes):
    ref, folder = tiny_llama(tmp_path)
    model = hf.load_hf(str(folder)).eval()
    prompt = torch.from_numpy(np.concatenate([[schema.BOS_ID], real_codes[0]]))[None]
    new = 40
    with torch.no_grad():
        want = ref.generate(
            prompt,
            max_new_tokens=new,
            do_sample=False,
            min_new_tokens=new,
            suppress_tokens=list(range(schema.CODEBOOK_SIZE, schema.VOCAB_SIZE)),
            pad_token_id=schema.EOS_ID,
        )[:, prompt.shape[1] :]
    got = generate(model, prompt, new, temperature=0)
    assert got.tolist() == want.tolist()


def test_hub_id_resolves_through_the_hub_cache_offline(tmp_path, monkeypatch, real_codes):
    """`owner/name/subfolder` is read from the normal hub cache layout (offline: no network in CI)."""
    import shutil

    import huggingface_hub.constants as hub

    ref, folder = tiny_llama(tmp_path)
    repo = tmp_path / "hub" / "models--uvd-test--lvm"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit / "7b")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    model = hf.load_hf("uvd-test/lvm/7b").eval()
    x = sentence(real_codes, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x).logits, atol=1e-4, rtol=1e-4)
    with pytest.raises(FileNotFoundError):
        hf.load_hf("runs/missing/step_00000001.pt")


def test_bos_ids_that_are_image_codes_mean_no_bos(tmp_path, real_codes):
    """Llama's default BOS/EOS (1, 2) are image codes here: prompts and packed windows then carry no specials."""
    from tests.model.conftest import synthetic_rows, write_shards
    from uvd.model.data import ShardLoader
    from uvd.model.evaluate import prompt_tokens
    from uvd.model.generate import prompt_from_images

    _, folder = tiny_llama(tmp_path, "nobos", bos_token_id=1, eos_token_id=2)
    cfg = hf.load_hf(str(folder)).cfg
    assert cfg.bos_id is None and cfg.eos_id is None
    tokens, target = prompt_tokens([(real_codes[0], real_codes[1])], real_codes[2], real_codes[3], bos_id=cfg.bos_id)
    assert len(tokens) == 4 * 256 and tokens[target.start] == real_codes[3][0]
    assert prompt_from_images([real_codes[0]], cfg.bos_id).shape == (1, 256)
    write_shards(tmp_path / "d", "train", synthetic_rows(8), n_files=1)
    batch = next(iter(ShardLoader(tmp_path / "d", 64, 2, split="train", bos_id=None, eos_id=None)))
    assert int(batch["tokens"].max()) < schema.CODEBOOK_SIZE and int(batch["doc_ids"].max()) == 0

"""Checkpoint folders: round trips, the safetensors-first rule, hub cache, and the clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.tokenize.make_reference_fixture import TINY, fill_weights
from uvd.tokenize.load import CheckpointError, load_vqgan, read_config, save_vqgan
from uvd.tokenize.vqgan import VQGANConfig, VQGANModel

CONFIG = VQGANConfig(**TINY["attn"])


@pytest.fixture()
def model() -> VQGANModel:
    m = VQGANModel(CONFIG).eval()
    fill_weights(m, seed=3)
    return m


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_round_trip(tmp_path, model, fmt):
    path = save_vqgan(model, tmp_path / "ckpt", fmt=fmt)
    assert path.name == {"safetensors": "model.safetensors", "bin": "pytorch_model.bin"}[fmt]
    loaded = load_vqgan(tmp_path / "ckpt")
    assert loaded.config == CONFIG and not loaded.training
    assert same_weights(model, loaded)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.get_code(x), loaded.get_code(x))


def test_safetensors_wins_over_bin(tmp_path, model):
    save_vqgan(model, tmp_path, fmt="safetensors")
    other = VQGANModel(CONFIG)
    fill_weights(other, seed=4)
    torch.save(other.state_dict(), tmp_path / "pytorch_model.bin")
    assert same_weights(load_vqgan(tmp_path), model)


def test_open_muse_style_config_json(tmp_path, model, caplog):
    """What open-muse's save_pretrained writes: metadata, derived values, maybe newer keys."""
    save_vqgan(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(
        {
            "_class_name": "VQGANModel",
            "_version": "0.0.1",
            "num_resolutions": 3,
            "reduction_factor": 4,
            "latent_size": 8,
            "some_future_option": 1,
        }
    )
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert load_vqgan(tmp_path).config == CONFIG
    assert "some_future_option" in caplog.text
    cfg["latent_size"] = 16
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="latent_size=16"):
        read_config(tmp_path)


def test_mismatched_config_names_the_mis_shaped_keys(tmp_path, model):
    save_vqgan(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["quantized_embed_dim"] = 16
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        load_vqgan(tmp_path)
    msg = str(err.value)
    assert "mis-shaped" in msg and "quantize.embedding.weight: checkpoint (64, 8) vs model (64, 16)" in msg
    assert "model.safetensors" in msg


def test_missing_and_unexpected_keys_are_named(tmp_path, model):
    state = model.state_dict()
    state["decoder.conv_out.extra"] = state.pop("decoder.conv_out.bias")
    save_vqgan(model, tmp_path)
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError) as err:
        load_vqgan(tmp_path)
    assert "1 missing: decoder.conv_out.bias" in str(err.value)
    assert "1 unexpected: decoder.conv_out.extra" in str(err.value)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_corrupt_weights_file(tmp_path, model, name):
    save_vqgan(model, tmp_path, fmt="safetensors" if name.endswith("safetensors") else "bin")
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 3])  # a truncated download
    with pytest.raises(CheckpointError, match=f"{name}: cannot read weights"):
        load_vqgan(tmp_path)


def test_pickle_with_code_is_refused(tmp_path, model):
    save_vqgan(model, tmp_path, fmt="bin")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_vqgan(tmp_path)


def test_folder_errors(tmp_path, model):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_vqgan(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_vqgan(tmp_path)
    save_vqgan(model, tmp_path / "sub")
    (tmp_path / "config.json").unlink()
    assert load_vqgan(tmp_path).config == CONFIG  # one checkpoint in a subfolder is found
    (tmp_path / "sub" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights file"):
        load_vqgan(tmp_path / "sub")
    with pytest.raises(CheckpointError, match="not a hub id"):
        load_vqgan(tmp_path / "does-not-exist")


def test_hub_id_from_cache_when_offline(tmp_path, model):
    """A hub id resolves from the local cache with the hub unreachable, and fails clearly if absent."""
    snapshot = tmp_path / "cache" / "models--someone--vqgan" / "snapshots" / ("a" * 40)
    save_vqgan(model, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    script = textwrap.dedent(f"""
        from uvd.tokenize.load import CheckpointError, load_vqgan
        m = load_vqgan("someone/vqgan", cache_dir={str(tmp_path / "cache")!r})
        print("loaded", m.config.num_embeddings)
        try:
            load_vqgan("someone/absent", cache_dir={str(tmp_path / "cache")!r})
        except CheckpointError as exc:
            print("error", exc)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert "loaded 64" in out.stdout
    assert "error someone/absent: not reachable on the hub" in out.stdout and "not in the local cache" in out.stdout

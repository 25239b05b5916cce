"""The model's layout and numerics against open-muse's VQGANModel (fixtures made from its code)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tokenize.make_reference_fixture import TINY, fill_weights, reference_input
from uvd.tokenize.vqgan import LVM_CONFIG, SMALL_CONFIG, VQGANConfig, VQGANModel, build, num_params

FIXTURES = Path(__file__).parent / "fixtures"


def test_lvm_state_dict_names_and_shapes_match_open_muse():
    ref = json.loads((FIXTURES / "open_muse_lvm_state_dict.json").read_text())
    assert VQGANConfig(**ref["config"]) == LVM_CONFIG
    model = build("lvm", device="meta")  # no 585 MB allocation
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == ref["state_dict"]  # same names, same shapes, same order
    assert num_params(model) == ref["num_params"] == 146_244_675
    assert len(ours) == 277


def test_lvm_strict_load_of_a_reference_shaped_state_dict():
    ref = json.loads((FIXTURES / "open_muse_lvm_state_dict.json").read_text())
    state = {k: torch.empty(shape, device="meta") for k, shape in ref["state_dict"]}
    model = build("lvm", device="meta")
    model.load_state_dict(state, strict=True, assign=True)  # raises on any name/shape difference


@pytest.mark.parametrize("name", sorted(TINY))
def test_numerics_match_open_muse(name):
    ref = np.load(FIXTURES / "open_muse_numerics.npz")
    model = VQGANModel(VQGANConfig(**TINY[name])).eval()
    keys = [f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items()]
    assert keys == list(ref[f"{name}/keys"])
    fill_weights(model)
    x = reference_input(TINY[name]["resolution"])
    with torch.no_grad():
        latents = model.encode_latents(x)
        z_q, ids = model.encode(x)
        recon = model.decode(z_q)
        from_ids = model.decode_code(ids)
        codes = model.get_code(x)
    np.testing.assert_allclose(latents.numpy(), ref[f"{name}/latents"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ids.numpy(), ref[f"{name}/ids"])
    np.testing.assert_array_equal(codes.numpy(), ref[f"{name}/ids"])
    np.testing.assert_allclose(recon.numpy(), ref[f"{name}/recon"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(from_ids.numpy(), ref[f"{name}/decode_code"], rtol=1e-4, atol=1e-4)


def test_quantizer_picks_the_nearest_code_like_brute_force():
    torch.manual_seed(0)
    model = VQGANModel(VQGANConfig(**TINY["attn"]))
    q = model.quantize
    with torch.no_grad():
        q.embedding.weight.normal_()
    z = torch.randn(3, q.embedding_dim, 5, 7)
    flat = z.permute(0, 2, 3, 1).reshape(-1, q.embedding_dim)
    brute = ((flat[:, None, :] - q.embedding.weight[None]) ** 2).sum(-1).argmin(1).reshape(3, -1)
    assert torch.equal(q.get_code(z), brute)
    z_q, ids, _ = q(z)
    assert torch.equal(ids, brute)
    # the quantized vectors are exactly the chosen codebook rows, in raster order
    assert torch.equal(z_q.permute(0, 2, 3, 1).reshape(-1, q.embedding_dim), q.embedding.weight[brute.flatten()])
    # row chunking does not change the answer
    assert torch.equal(q.nearest(flat, chunk_rows=7), brute.flatten())


def test_quantizer_distances_stay_fp32_under_bf16_autocast():
    torch.manual_seed(1)
    model = VQGANModel(VQGANConfig(**TINY["attn"]))
    with torch.no_grad():
        model.quantize.embedding.weight.normal_()
    z = torch.randn(2, model.quantize.embedding_dim, 8, 8)
    expected = model.quantize.get_code(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(model.quantize.get_code(z), expected)


def test_training_losses_and_straight_through_gradient():
    torch.manual_seed(0)
    model = VQGANModel(VQGANConfig(**TINY["attn"]))
    x = torch.rand(2, 3, 32, 32)
    recon, z_q, ids, loss = model(x, return_loss=True)
    assert recon.shape == x.shape and ids.shape == (2, 64) and loss.ndim == 0 and loss > 0
    ((recon - x) ** 2).mean().add(loss).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0  # reached through the quantizer
    assert model.quantize.embedding.weight.grad.abs().sum() > 0  # codebook loss


def test_configs_and_errors():
    assert SMALL_CONFIG.tokens_per_image == LVM_CONFIG.tokens_per_image == 256
    assert SMALL_CONFIG.num_embeddings == LVM_CONFIG.num_embeddings == 8192
    assert VQGANConfig(channel_mult=[1, 2]).channel_mult == (1, 2)  # JSON lists become tuples
    with pytest.raises(ValueError, match="multiple of 32"):
        VQGANConfig(hidden_channels=48)
    with pytest.raises(ValueError, match="unknown VQGAN config"):
        build("huge")

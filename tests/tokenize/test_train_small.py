"""The pieces of train_small: data, codebook care and the reported statistics."""

from __future__ import annotations

import numpy as np
import torch

from tests.tokenize.make_reference_fixture import TINY
from uvd.tokenize.train_small import (
    PHOTO_SCALES,
    CropSampler,
    EmaCodebook,
    code_stats,
    is_held_out,
    load_photos,
    procedural_image,
    psnr,
    seed_codebook,
)
from uvd.tokenize.vqgan import VQGANConfig, VQGANModel


def test_procedural_images_are_seeded_and_varied():
    a = procedural_image(np.random.default_rng(5))
    b = procedural_image(np.random.default_rng(5))
    c = procedural_image(np.random.default_rng(6))
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std() > 5


def test_crops_and_held_out_split():
    images = [np.arange(96 * 128 * 3, dtype=np.uint32).reshape(96, 128, 3).astype(np.uint8)]
    batch = CropSampler(images, crop=32, seed=0).batch(10)
    assert batch.shape == (10, 32, 32, 3)
    assert is_held_out("x.jpg") == is_held_out("x.jpg")
    train, held = load_photos()
    assert held and len(train) % len(PHOTO_SCALES) == 0  # every train photo at each scale
    assert all(h.shape == (256, 256, 3) for h in held)


def test_ema_codebook_moves_codes_to_the_mean_of_their_latents():
    codes = torch.zeros(4, 2)
    codes[1] = torch.tensor([10.0, 10.0])
    ema = EmaCodebook(codes, decay=0.5)
    flat = torch.tensor([[1.0, 1.0], [3.0, 3.0], [9.0, 9.0]])
    ids = torch.tensor([0, 0, 1])
    ema.update(codes, flat, ids)
    # code 0: (0.5 * 0 + 0.5 * (1 + 3)) / (0.5 * 1 + 0.5 * 2); code 1: (5 + 4.5) / 1; codes 2, 3 stay
    assert torch.allclose(codes[0], torch.tensor([4 / 3, 4 / 3]))
    assert torch.allclose(codes[1], torch.tensor([9.5, 9.5]))
    assert torch.equal(codes[2:], torch.zeros(2, 2))


def test_dead_codes_restart_from_encoder_outputs():
    model = VQGANModel(VQGANConfig(**TINY["attn"]))
    codes = model.quantize.embedding.weight
    codes.requires_grad_(False)
    ema = EmaCodebook(codes)
    ema.size[:10] = 0.0
    latents = 5 + torch.randn(256, 8)  # far from the initial codebook
    before = codes.clone()
    n = ema.restart_dead(codes, latents, torch.Generator().manual_seed(0))
    assert n == 10
    assert torch.equal(codes[10:], before[10:])
    assert (codes[:10].mean(1) > 3).all()  # now inside the data
    assert (ema.size[:10] > 0.5).all()
    ema.update(codes, latents, model.quantize.nearest(latents))
    assert torch.isfinite(codes).all()


def test_seeded_codebook_covers_the_latents():
    model = VQGANModel(VQGANConfig(**TINY["attn"]))
    latents = 3 + torch.randn(2, 8, 8, 8)
    seed_codebook(model, latents, torch.Generator().manual_seed(0))
    ids = model.quantize.get_code(latents.permute(0, 3, 1, 2))
    assert len(torch.unique(ids)) > 20  # many codes in use from the start


def test_code_stats_and_psnr():
    stats = code_stats(np.array([[0, 0, 1, 2]]), num_codes=8)
    assert stats["codes_used"] == 3 and stats["usage"] == 3 / 8
    p = np.array([0.5, 0.25, 0.25])
    assert np.isclose(stats["perplexity"], np.exp(-(p * np.log(p)).sum()))
    a = np.zeros((4, 4, 3), np.uint8)
    assert np.isclose(psnr(a, a + 1), 20 * np.log10(255))


def test_a_weaker_run_does_not_replace_a_better_checkpoint(tmp_path):
    import json
    from pathlib import Path

    from uvd.tokenize.train_small import choose_output

    out = tmp_path / "vqgan-small"
    assert choose_output(out, 10.0, force=False) == out  # nothing there yet
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"_uvd": {"psnr_held_out": 20.0}}))
    assert choose_output(out, 21.0, force=False) == out
    assert choose_output(out, 15.0, force=False) == Path("runs") / "vqgan-small"
    assert choose_output(out, 15.0, force=True) == out


def test_cli_flags_parse():
    import pytest

    from uvd.tokenize.train_small import parse

    args = parse(["--minutes", "0.5", "--crop", "96", "--force"])
    assert args.minutes == 0.5 and args.crop == 96 and args.force and args.device == "cpu"
    with pytest.raises(SystemExit):
        parse(["--crop", "100"])

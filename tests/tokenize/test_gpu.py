"""CUDA path of the tokenizer (skipped without a GPU): bf16 + channels_last vs fp32."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_cuda_bf16_encode_agrees_with_fp32_and_decodes():
    import torch
    from PIL import Image

    import uvd.tokenize as tok
    from uvd.tokenize.train_small import SAMPLE_IMAGES, fit_256

    images = np.stack([fit_256(Image.open(p)) for p in sorted(SAMPLE_IMAGES.glob("*.jpg"))[:8]])
    cpu = tok.load_vqgan(tok.DEFAULT_CHECKPOINT)
    gpu = tok.load_vqgan(tok.DEFAULT_CHECKPOINT, device="cuda").to(memory_format=torch.channels_last)
    ref = tok.encode(cpu, images, precision="fp32")
    fp32 = tok.encode(gpu, images, precision="fp32")  # TF32 off; cuDNN's summation order differs
    print(f"CUDA fp32 vs CPU fp32 token agreement: {100 * (fp32 == ref).mean():.2f}%")
    assert (fp32 == ref).mean() > 0.98
    bf16 = tok.encode(gpu, images, batch_size=4)  # auto: bf16 autocast on CUDA
    agree = (bf16 == ref).mean()
    print(f"bf16 vs fp32 token agreement on the shipped model: {100 * agree:.2f}%")
    assert agree > 0.8
    pixels = tok.decode(gpu, bf16)
    assert pixels.shape == (8, 256, 256, 3) and pixels.dtype == np.uint8


def test_cuda_compiled_handler_matches_eager():
    """Not yet run on a GPU by its author (device time ran out): the --compile path of the stage."""
    pytest.importorskip("apache_beam")
    from uvd.tokenize import DEFAULT_CHECKPOINT
    from uvd.tokenize.handler import VQGANModelHandler

    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (5, 256, 256, 3), dtype=np.uint8))
    eager = VQGANModelHandler(DEFAULT_CHECKPOINT, device="cuda", max_batch_size=8)
    compiled = VQGANModelHandler(DEFAULT_CHECKPOINT, device="cuda", max_batch_size=8, compile=True)
    a = np.stack(list(eager.run_inference(images, eager.load_model())))
    b = np.stack(list(compiled.run_inference(images, compiled.load_model())))
    assert b.shape == (5, 256) and (a == b).mean() > 0.95

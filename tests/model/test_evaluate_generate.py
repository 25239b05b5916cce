"""Paper-style evaluation scores only the target image; generation with and without KV cache agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model.conftest import synthetic_rows, write_shards
from uvd import schema
from uvd.model.evaluate import prompt_tokens, prompts_from_shards, target_nll, task_perplexity
from uvd.model.generate import analogy_order, generate, prompt_from_images
from uvd.model.model import LVM, model_config

T = schema.TOKENS_PER_IMAGE


@pytest.fixture(scope="module")
def model() -> LVM:
    torch.manual_seed(0)
    return LVM(model_config("debug", max_seq_len=12 * T + 1)).eval()


def random_image(rng) -> np.ndarray:
    return rng.integers(0, schema.CODEBOOK_SIZE, T)


def test_prompt_layout_is_five_pairs_query_target():
    rng = np.random.default_rng(0)
    pairs = [(random_image(rng), random_image(rng)) for _ in range(5)]
    query, target = random_image(rng), random_image(rng)
    tokens, where = prompt_tokens(pairs, query, target)
    assert len(tokens) == 1 + 12 * T and tokens[0] == schema.BOS_ID
    np.testing.assert_array_equal(tokens[where], target)
    np.testing.assert_array_equal(tokens[where.start - T : where.start], query)
    assert where.stop - where.start == T


def test_eval_scores_only_the_target_tokens(model):
    rng = np.random.default_rng(1)
    pairs = [(random_image(rng), random_image(rng)) for _ in range(5)]
    tokens, where = prompt_tokens(pairs, random_image(rng), random_image(rng))
    x = torch.from_numpy(tokens)[None]
    nll = target_nll(model, x, where)
    with torch.no_grad():  # reference: full logits, log-softmax, pick exactly the 256 target positions
        logp = torch.log_softmax(model(x).float(), -1)[0]
    positions = torch.arange(where.start, where.stop)
    manual = -logp[positions - 1, x[0, positions]].mean()
    torch.testing.assert_close(nll[0], manual, atol=1e-5, rtol=1e-5)
    # Changing a context token changes the score, changing a target token changes it, and the
    # score of all tokens (what a plain LM loss would report) is a different number.
    for pos in (where.start - 1, where.start + 3):  # the query's last token; a target token
        y = x.clone()
        y[0, pos] = (y[0, pos] + 1) % schema.CODEBOOK_SIZE
        assert not torch.equal(target_nll(model, y, where), nll)
    all_tokens = -logp[torch.arange(len(tokens) - 1), x[0, 1:]].mean()
    assert not torch.isclose(all_tokens, manual)


def test_task_perplexity_from_annotated_shards(tmp_path, model):
    rows = synthetic_rows(6, seed=3, max_images=1, prefix="a", kind="annotated", source="ann/depth")
    for r in rows:
        r["num_images"], r["tokens"] = 16, np.tile(r["tokens"][:T], 16)
    rows += synthetic_rows(4, seed=4, max_images=1, prefix="b")  # single images: not prompts
    short = synthetic_rows(1, seed=5, max_images=1, prefix="c", kind="annotated", source="ann/edges")
    short[0]["num_images"], short[0]["tokens"] = 4, np.tile(short[0]["tokens"][:T], 4)  # < 6 pairs
    write_shards(tmp_path, "validation", rows + short, n_files=1)
    prompts = prompts_from_shards(tmp_path, "validation", max_per_task=3)
    assert list(prompts) == ["ann/depth"] and len(prompts["ann/depth"]) == 3
    result = task_perplexity(model, prompts, batch_size=2)["ann/depth"]
    assert result["prompts"] == 3
    assert 1.0 < result["perplexity"] < 3 * schema.VOCAB_SIZE  # an untrained model: near uniform
    assert result["perplexity"] >= np.exp(result["nll"]) - 1e-6  # mean of exp >= exp of mean


@pytest.mark.parametrize("temperature,top_k", [(0.0, 0), (1.0, 50)])
def test_generation_with_and_without_kv_cache_agree(model, temperature, top_k):
    rng = np.random.default_rng(2)
    prompt = prompt_from_images([random_image(rng)[:48]])
    prompt = torch.cat([prompt, prompt])  # a batch of two
    a = generate(model, prompt, 24, temperature, top_k, use_cache=True, generator=torch.Generator().manual_seed(0))
    b = generate(model, prompt, 24, temperature, top_k, use_cache=False, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 24)
    torch.testing.assert_close(a, b)
    assert int(a.max()) < schema.CODEBOOK_SIZE  # only image codes are ever sampled


def test_cached_logits_match_full_forward(model):
    from uvd.model.model import KVCache

    x = torch.randint(0, schema.CODEBOOK_SIZE, (1, 30))
    with torch.no_grad():
        full = model(x)
        cache = KVCache(model.cfg, 1, 30, "cpu", torch.float32)
        parts = [model(x[:, :10], cache=cache), model(x[:, 10:17], cache=cache)]
        parts += [model(x[:, i : i + 1], cache=cache) for i in range(17, 30)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-4)


def test_analogy_prompt_interleaves_pairs_then_query():
    a1, b1, a2, b2, q = (np.full(T, i) for i in range(5))
    order = analogy_order([(a1, b1), (a2, b2)], q)
    np.testing.assert_array_equal(np.concatenate(order), np.repeat(np.arange(5), T))


def test_uvd_generate_cli_writes_a_png_through_the_vqgan(tmp_path):
    """A checkpoint + a shard row -> prompt image and one generated image, decoded by the default VQGAN."""
    from PIL import Image

    from uvd.model import checkpoint
    from uvd.model.generate import main

    torch.manual_seed(0)
    lvm = LVM(model_config("debug"))
    opt = torch.optim.AdamW(lvm.parameters())
    ckpt = tmp_path / "step_00000000.pt"
    checkpoint.save(ckpt, lvm, opt, 0, {"seq_len": 64}, vars(lvm.cfg), {})
    (shard,) = write_shards(tmp_path, "validation", synthetic_rows(2, seed=6, max_images=3), n_files=1)
    out = tmp_path / "g.png"
    assert (
        main(
            [
                "--checkpoint",
                str(ckpt),
                "--shard",
                str(shard),
                "--row",
                "1",
                "--prompt_images",
                "1",
                "--top_k",
                "20",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert Image.open(out).size == (2 * schema.IMAGE_SIZE, schema.IMAGE_SIZE)
    npy = tmp_path / "g.npy"  # codes only, no VQGAN needed
    main(
        [
            "--checkpoint",
            str(ckpt),
            "--shard",
            str(shard),
            "--row",
            "1",
            "--prompt_images",
            "1",
            "--temperature",
            "0",
            "--out",
            str(npy),
            "--device",
            "cpu",
        ]
    )
    codes = np.load(npy)
    assert codes.shape == (2, T) and codes.dtype == np.uint16 and codes.max() < schema.CODEBOOK_SIZE


def video_rows(n: int, seed: int = 0) -> list[dict]:
    """16-frame `video` sentences whose frames drift slowly: later frames are predictable from earlier ones."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        frame = rng.integers(0, schema.CODEBOOK_SIZE, T)
        frames = []
        for _ in range(16):
            frame = frame.copy()
            frame[rng.integers(0, T, 8)] = rng.integers(0, schema.CODEBOOK_SIZE, 8)
            frames.append(frame)
        rows.append(
            {
                "sentence_id": f"v{i}",
                "source": "video",
                "kind": "sequence",
                "num_images": 16,
                "tokens": np.concatenate(frames).astype(np.uint16),
            }
        )
    return rows


def test_sequential_curve_one_pass_equals_prompting_each_context():
    """The curve's point k is the NLL of frame k+1 given [BOS] + frames 1..k exactly (causality)."""
    from uvd.model import sequential

    torch.manual_seed(0)
    model = LVM(model_config("debug", max_seq_len=16 * T + 1)).eval()
    videos = np.stack([np.asarray(r["tokens"], np.int64).reshape(16, T) for r in video_rows(2)])
    nll = sequential.frame_nll(model, videos, batch_size=2)
    assert nll.shape == (2, 15)
    for k in (1, 7, 15):
        prompt = torch.from_numpy(np.concatenate([[schema.BOS_ID], videos[0, : k + 1].reshape(-1)]))[None]
        want = target_nll(model, prompt, slice(1 + k * T, 1 + (k + 1) * T))
        assert nll[0, k - 1] == pytest.approx(float(want), rel=1e-4)


def test_evaluate_cli_curves_for_a_uvd_and_a_hf_checkpoint(tmp_path):
    import dataclasses
    import json

    from uvd.model import hf
    from uvd.model.evaluate import main

    write_shards(tmp_path / "d", "validation", video_rows(3) + synthetic_rows(4, max_images=2), n_files=1)
    torch.manual_seed(0)
    model = LVM(model_config("debug", max_seq_len=16 * T + 1))
    pt = tmp_path / "step_00000001.pt"
    torch.save(
        {"model": model.state_dict(), "model_config": dataclasses.asdict(model.cfg), "config": {"seq_len": 256}}, pt
    )
    folder = hf.export_hf(model, tmp_path / "hf")
    out, png = tmp_path / "r.json", tmp_path / "seq.png"
    assert (
        main(
            [
                "--checkpoint",
                str(pt),
                str(folder),
                "--data",
                str(tmp_path / "d"),
                "--json",
                str(out),
                "--plot",
                str(png),
                "--val_batches",
                "1",
                "--device",
                "cpu",
                "--max_videos",
                "2",
            ]
        )
        == 0
    )
    results = json.loads(out.read_text())
    a, b = (results[str(p)]["sequential"] for p in (pt, folder))
    assert a["context_frames"] == list(range(1, 16)) and a["sentences"] == 2
    assert a["perplexity"] == pytest.approx(b["perplexity"], rel=1e-4)  # the exported copy is the same model
    assert png.stat().st_size > 1000

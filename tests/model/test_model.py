"""The LLaMA model: causality, rotary embeddings against their formula, the document mask."""

from __future__ import annotations

import math

import pytest
import torch

from uvd import schema
from uvd.model.model import LVM, MODEL_NAMES, apply_rope, flops_per_token, model_config, rope_tables


@pytest.fixture(scope="module")
def model() -> LVM:
    torch.manual_seed(0)
    return LVM(model_config("debug", max_seq_len=128)).eval()


def test_future_tokens_do_not_change_past_logits(model):
    x = torch.randint(0, schema.CODEBOOK_SIZE, (2, 40))
    y = x.clone()
    y[:, 25:] = torch.randint(0, schema.CODEBOOK_SIZE, (2, 15))
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])  # and the future does change the future


def test_rope_matches_direct_rotation_formula():
    head_dim, max_len, theta = 8, 16, 10000.0
    cos, sin = rope_tables(head_dim, max_len, theta)
    x = torch.randn(1, 1, max_len, head_dim)
    got = apply_rope(x, cos, sin)
    expected = torch.empty_like(x)
    for pos in range(max_len):
        for i in range(head_dim // 2):
            angle = pos * theta ** (-2 * i / head_dim)
            c, s = math.cos(angle), math.sin(angle)
            a, b = x[0, 0, pos, 2 * i].item(), x[0, 0, pos, 2 * i + 1].item()
            expected[0, 0, pos, 2 * i] = a * c - b * s
            expected[0, 0, pos, 2 * i + 1] = a * s + b * c
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_rope_scores_depend_only_on_relative_position():
    cos, sin = rope_tables(16, 64, 10000.0)
    q, k = torch.randn(16), torch.randn(16)

    def score(m: int, n: int) -> float:
        qm = apply_rope(q.expand(1, 1, 64, 16), cos, sin)[0, 0, m]
        kn = apply_rope(k.expand(1, 1, 64, 16), cos, sin)[0, 0, n]
        return float(qm @ kn)

    assert score(10, 3) == pytest.approx(score(40, 33), abs=1e-4)
    assert score(10, 3) != pytest.approx(score(10, 9), abs=1e-4)


def test_document_mask_isolates_sentences(model):
    """With doc_ids, the second sentence's logits equal those of that sentence run alone."""
    first = torch.randint(0, schema.CODEBOOK_SIZE, (1, 20))
    second = torch.randint(0, schema.CODEBOOK_SIZE, (1, 12))
    packed = torch.cat([first, second], 1)
    doc_ids = torch.tensor([[0] * 20 + [1] * 12])
    with torch.no_grad():
        masked = model(packed, doc_ids=doc_ids)[:, 20:]
        alone = model(second)
        plain = model(packed)[:, 20:]
    torch.testing.assert_close(masked, alone, atol=1e-5, rtol=1e-4)  # RoPE is relative: offset is harmless
    assert not torch.allclose(plain, alone, atol=1e-3)


def test_loss_is_cross_entropy_and_ignores_minus_100(model):
    x = torch.randint(0, schema.CODEBOOK_SIZE, (2, 16))
    t = x.roll(-1, 1)
    t[:, -4:] = -100
    with torch.no_grad():
        logits = model(x)
        loss = model(x, targets=t)
    ref = torch.nn.functional.cross_entropy(logits[:, :-4].reshape(-1, logits.shape[-1]), t[:, :-4].reshape(-1))
    torch.testing.assert_close(loss, ref)


def test_official_sizes_and_vocab():
    assert {"debug", "tiny", "100m", "300m", "600m", "1b", "3b", "7b"} <= set(MODEL_NAMES)
    with torch.device("meta"):
        m = LVM(model_config("300m"))
    cfg = m.cfg
    assert (cfg.dim, cfg.ffn_dim, cfg.n_layers, cfg.n_heads) == (1024, 2688, 22, 8)
    assert cfg.vocab_size == schema.VOCAB_SIZE == 8292 and cfg.max_seq_len == 4096
    assert m.output.weight is not m.tok_embeddings.weight
    assert all(not name.endswith("bias") for name, _ in m.named_parameters())
    assert 250e6 < m.num_params(embeddings=False) < 350e6
    assert flops_per_token(cfg, 4096) > 6 * m.num_params(embeddings=False)
    with pytest.raises(ValueError, match="unknown model"):
        model_config("13b")


def _packed(lengths_per_row: list[list[int]]):
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, schema.CODEBOOK_SIZE, (len(lengths_per_row), sum(lengths_per_row[0])), generator=g)
    doc_ids = torch.tensor([[i for i, n in enumerate(row) for _ in range(n)] for row in lengths_per_row])
    return tokens, doc_ids


@pytest.mark.parametrize("impl", ["segments", "sdpa", pytest.param("flex", marks=pytest.mark.slow)])
def test_document_mask_implementations_agree_with_sentences_run_alone(model, impl):
    """Every sentence of a packed window sees only itself; the first sentence is what plain causal gives."""
    tokens, doc_ids = _packed([[20, 7, 13], [5, 35]])
    model.attn_impl = impl
    try:
        with torch.no_grad():
            masked = model(tokens, doc_ids=doc_ids)
            plain = model(tokens)
    finally:
        model.attn_impl = "auto"
    for b in range(2):
        for d in doc_ids[b].unique():
            where = doc_ids[b] == d
            with torch.no_grad():
                alone = model(tokens[b : b + 1, where])[0]
            torch.testing.assert_close(masked[b, where], alone, atol=2e-5, rtol=1e-4)
        first = doc_ids[b] == 0
        torch.testing.assert_close(masked[b, first], plain[b, first], atol=2e-5, rtol=1e-4)
    assert not torch.allclose(masked[0, 20:], plain[0, 20:], atol=1e-3)  # later sentences differ from causal


def test_segment_attention_gradients_match_the_dense_mask():
    tokens, doc_ids = _packed([[9, 16, 7], [32]])
    grads = []
    for impl in ("segments", "sdpa"):
        torch.manual_seed(0)
        m = LVM(model_config("debug", max_seq_len=64))
        m.attn_impl = impl
        m(tokens, targets=tokens.roll(-1, 1), doc_ids=doc_ids).backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][name], atol=1e-5, rtol=1e-4, msg=name)

"""Shard loader: disjoint complete sharding, lossless packing, exact resume, document ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model.conftest import write_shards
from uvd import schema
from uvd.model.data import (
    Packer,
    ShardLoader,
    assign_units,
    doc_ids_for,
    list_row_groups,
    read_sentences,
    resolve_shards,
)


def id_rows(n: int, seed: int = 0) -> list[dict]:
    """Sentences whose first two codes spell the row number, so a reader's rows can be named."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(1, 3))
        codes = rng.integers(0, schema.CODEBOOK_SIZE, k * schema.TOKENS_PER_IMAGE).astype(np.uint16)
        codes[0], codes[1] = i % 8192, i // 8192
        rows.append({"sentence_id": str(i), "source": "x", "kind": "single", "num_images": k, "tokens": codes})
    return rows


def row_ids(codes: np.ndarray, offsets: np.ndarray) -> list[int]:
    return [int(codes[s]) + 8192 * int(codes[s + 1]) for s in offsets[:-1]]


@pytest.mark.parametrize("n_rows,row_group_size", [(70, 4), (5, 8)])  # many row groups; fewer than readers
def test_every_row_read_exactly_once_across_ranks_and_workers(tmp_path, n_rows, row_group_size):
    files = [str(p) for p in write_shards(tmp_path, "train", id_rows(n_rows), n_files=3, row_group_size=row_group_size)]
    groups = list_row_groups(files)
    world, workers = 2, 3
    for epoch in range(2):
        seen: list[int] = []
        per_reader = []
        for rank in range(world):
            for worker in range(workers):
                units = assign_units(groups, rank * workers + worker, world * workers, seed=7, epoch=epoch)
                ids = row_ids(*read_sentences(files, units))
                per_reader.append(ids)
                seen += ids
        assert sorted(seen) == list(range(n_rows))  # all rows, none twice
        if n_rows > 40:
            assert all(per_reader), "every reader gets work when there are enough row groups"


def test_loader_ranks_and_dataloader_workers_read_disjoint_rows(tmp_path):
    """End to end through torch DataLoader workers: no sentence reaches two readers."""
    write_shards(tmp_path, "train", id_rows(60), n_files=2, row_group_size=4)
    found: list[int] = []
    for rank in range(2):
        loader = ShardLoader(
            tmp_path, seq_len=128, batch_size=2, split="train", rank=rank, world_size=2, num_workers=2, epochs=1
        )
        stream = np.concatenate([b["tokens"].numpy().reshape(-1) for b in loader])
        for start in np.flatnonzero(stream == schema.BOS_ID):
            if start + 2 < len(stream):
                found.append(int(stream[start + 1]) + 8192 * int(stream[start + 2]))
    assert len(found) == len(set(found))  # disjoint
    assert len(found) >= 60 - 2 * 2 * 2  # only each reader's unfinished tail is missing


def test_packing_keeps_every_token_in_order():
    rng = np.random.default_rng(0)
    sentences = [rng.integers(0, 8192, int(n) * 256) for n in rng.integers(1, 17, 20)]
    packer, windows = Packer(seq_len=300), []
    for s in sentences:
        packer.add(s)
        windows += packer.take()
    stream = np.concatenate([np.concatenate([[schema.BOS_ID], s, [schema.EOS_ID]]) for s in sentences])
    assert all(len(w) == 301 for w in windows)
    rebuilt = np.concatenate([w[:-1] for w in windows] + [packer.buf])
    np.testing.assert_array_equal(rebuilt, stream)
    assert len(packer.buf) <= 300


def test_sixteen_image_sentence_fits_one_window_at_4096():
    """BOS + 4096 codes are the window's inputs/targets; EOS is the next window's first target."""
    codes = np.arange(16 * 256) % 8192
    packer = Packer(seq_len=4096)
    packer.add(codes)
    (w,) = packer.take()
    inputs, targets = w[:-1], w[1:]
    assert inputs[0] == schema.BOS_ID
    np.testing.assert_array_equal(targets, codes)  # every code predicted, with its whole sentence before it
    np.testing.assert_array_equal(packer.buf, [codes[-1], schema.EOS_ID])


def test_doc_ids_increment_at_bos():
    x = np.array([[5, schema.EOS_ID, schema.BOS_ID, 1, 2, schema.EOS_ID, schema.BOS_ID, 3]])
    np.testing.assert_array_equal(doc_ids_for(x), [[0, 0, 1, 1, 1, 1, 2, 2]])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resume_gives_the_same_batches(tmp_path, num_workers):
    write_shards(tmp_path, "train", id_rows(40, seed=3), n_files=2, row_group_size=3)

    def make():
        return ShardLoader(
            tmp_path, seq_len=200, batch_size=2, split="train", num_workers=num_workers, seed=5, shuffle_rowgroups=2
        )

    full = make()
    it = iter(full)
    reference = [next(it)["tokens"] for _ in range(9)]
    first = make()
    it = iter(first)
    for _ in range(4):
        next(it)
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    it = iter(resumed)
    for want in reference[4:]:
        torch.testing.assert_close(next(it)["tokens"], want)


def test_shuffle_is_seeded(tmp_path):
    write_shards(tmp_path, "train", id_rows(30), n_files=1, row_group_size=5)

    def first_batch(seed):
        return next(iter(ShardLoader(tmp_path, 128, 4, split="train", seed=seed)))["tokens"]

    torch.testing.assert_close(first_batch(1), first_batch(1))
    assert not torch.equal(first_batch(1), first_batch(2))


def test_resolve_shards_by_split_and_glob(tmp_path):
    write_shards(tmp_path, "train", id_rows(4), n_files=2)
    write_shards(tmp_path, "validation", id_rows(4), n_files=1)
    assert len(resolve_shards(str(tmp_path), "train")) == 2
    assert len(resolve_shards(str(tmp_path), "val")) == 1  # alias
    assert len(resolve_shards(f"{tmp_path}/*.parquet")) == 3
    assert resolve_shards(str(tmp_path), "test") == []
    with pytest.raises(FileNotFoundError, match="no shards"):
        ShardLoader(str(tmp_path / "missing"), 64, 1, split="train")
    mem = "memory://uvd-test/shards"  # an fsspec URL
    import fsspec

    fs = fsspec.filesystem("memory")
    for p in resolve_shards(str(tmp_path), "train"):
        fs.put(p, f"{mem}/{Path(p).name}")
    remote = ShardLoader(mem, 64, 2, split="train", shuffle=False)
    local = ShardLoader(str(tmp_path), 64, 2, split="train", shuffle=False)
    torch.testing.assert_close(next(iter(remote))["tokens"], next(iter(local))["tokens"])


def _steps(loaders: list[ShardLoader], n: int, accum: int) -> list[list[tuple[int, bytes]]]:
    """Per optimizer step, the (canonical id, window bytes) of every window all ranks served."""
    its = [iter(ld) for ld in loaders]
    out = []
    for _ in range(n):
        step = []
        for it in its:
            for _ in range(accum):
                b = next(it)
                windows = torch.cat([b["tokens"], b["targets"][:, -1:]], 1)
                step += [(int(i), w.numpy().tobytes()) for i, w in zip(b["sample_ids"], windows)]
        out.append(sorted(step))
    return out


def test_elastic_resume_across_world_sizes_and_workers(tmp_path):
    """Saved on 2 ranks x 2 workers, resumed on 3 x 1 and on 1 x 0 (accumulating): the same windows per step."""
    write_shards(tmp_path, "train", id_rows(80, seed=4), n_files=2, row_group_size=3)
    kw = dict(seq_len=96, split="train", seed=3, shuffle_rowgroups=2, partitions=6)

    def ranks(world, workers, batch, accum=1):
        return [
            ShardLoader(
                tmp_path, batch_size=batch, rank=r, world_size=world, num_workers=workers, grad_accum=accum, **kw
            )
            for r in range(world)
        ]

    reference = _steps(ranks(1, 0, 6), 7, 1)  # uninterrupted, 6 windows per step
    first = ranks(2, 2, 3)
    assert _steps(first, 3, 1) == reference[:3]
    saved = [ld.state_dict() for ld in first]
    for world, workers, batch, accum in ((3, 1, 2, 1), (1, 0, 3, 2)):
        resumed = ranks(world, workers, batch, accum)
        for ld in resumed:
            ld.load_state_dict(saved)
        assert _steps(resumed, 4, accum) == reference[3:], (world, workers)
    ids = [i for step in reference for i, _ in step]
    assert sorted(ids) == list(range(42))  # ids are n * P + p: dense, no repeats
    with pytest.raises(ValueError, match="windows_per_step"):  # a different global batch is refused
        ranks(1, 0, 12, 1)[0].load_state_dict(saved)

"""Synthetic shards in the shard contract (uvd.schema.SHARD_SCHEMA), written with pyarrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uvd import schema


def synthetic_rows(
    n: int, seed: int = 0, max_images: int = 4, prefix: str = "s", kind: str = "single", source: str = "synthetic"
) -> list[dict]:
    """Learnable sentences: each image repeats a short random motif of codes (a low-entropy stream)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(1, max_images + 1))
        motif = rng.integers(0, 64, size=8)
        codes = np.tile(motif, k * schema.TOKENS_PER_IMAGE // 8).astype(np.uint16)
        rows.append({"sentence_id": f"{prefix}{i}", "source": source, "kind": kind, "num_images": k, "tokens": codes})
    return rows


def write_shards(
    directory: Path, split: str, rows: list[dict], n_files: int = 2, row_group_size: int = 8
) -> list[Path]:
    """`<split>-0000i-of-0000n.parquet` files (the shard writer's names), rows dealt round-robin."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(n_files):
        part = rows[f::n_files]
        path = directory / f"{split}-{f:05d}-of-{n_files:05d}.parquet"
        pq.write_table(
            pa.Table.from_pylist(part, schema=schema.SHARD_SCHEMA),
            path,
            row_group_size=row_group_size,
            compression="zstd",
        )
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls on a shared 2-core box: one thread is ~10x faster than two contending ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    write_shards(tmp_path / "shards", "train", synthetic_rows(96, seed=1))
    write_shards(tmp_path / "shards", "validation", synthetic_rows(16, seed=2, prefix="v"), n_files=1)
    return tmp_path / "shards"


@pytest.fixture(scope="session")
def real_codes() -> np.ndarray:
    """VQGAN codes (N, 256) of the shipped sample photos, encoded with the shipped small VQGAN."""
    import torch
    from PIL import Image

    import uvd.tokenize as tok

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    paths = sorted((Path(__file__).resolve().parents[2] / "uvd/sample/images").glob("*.jpg"))[:6]
    size = schema.IMAGE_SIZE
    images = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in paths])
    codes = tok.encode(tok.load_vqgan(tok.DEFAULT_CHECKPOINT), images).astype(np.int64)
    torch.set_num_threads(threads)
    return codes

"""Loader vs trainer throughput on this CPU, and packed training vs a plain padded baseline.

    .venv/bin/python benchmarks/bench_train.py

Data: synthetic shards in the UVDv1 mix (88% single images of 258 tokens, the rest 16-image
sentences of 4098 tokens), random codes. Everything runs on one thread so the figures are per core.
1. loader: ShardLoader (Parquet -> shuffle -> BOS/EOS -> packed 512-token windows) tokens/s, against
   training tokens/s of the tiny model on the same windows (goal: loader >= 10x).
2. training: useful (non-padding) target tokens/s of packed windows, against the plain baseline
   (eager fp32, no packing: one sentence per row, padded / truncated to seq_len).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from uvd import schema  # noqa: E402
from uvd.model.data import ShardLoader, resolve_shards  # noqa: E402
from uvd.model.model import LVM, model_config  # noqa: E402
from uvd.model.train import TrainConfig, build_optimizer, train_step  # noqa: E402

SEQ, BATCH = 512, 4


def write_shards(directory: Path, n: int = 3000) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        k = 1 if rng.random() < 0.88 else 16
        rows.append(
            {
                "sentence_id": str(i),
                "source": "bench",
                "kind": "single" if k == 1 else "sequence",
                "num_images": k,
                "tokens": rng.integers(0, 8192, k * 256).astype(np.uint16),
            }
        )
    for f in range(4):
        table = pa.Table.from_pylist(rows[f::4], schema=schema.SHARD_SCHEMA)
        pq.write_table(table, directory / f"train-{f:05d}-of-00004.parquet", row_group_size=100, compression="zstd")


def loader_tokens_per_s(directory: Path, seconds: float = 4.0) -> float:
    loader = ShardLoader(directory, SEQ, 16, split="train", num_workers=0)
    it, n, t0 = iter(loader), 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += next(it)["tokens"].numel()
    return n / (time.perf_counter() - t0)


def interleaved_training(packed: list[dict], padded: list[dict]) -> tuple[float, float]:
    """Seconds per step of each variant, steps alternated so machine load hits both alike."""
    torch.manual_seed(0)
    runs = []
    for _ in range(2):
        model = LVM(model_config("tiny", max_seq_len=SEQ))
        runs.append((model, build_optimizer(model, TrainConfig(lr=1e-3))))
    cpu, times = torch.device("cpu"), [0.0, 0.0]
    for i, pair in enumerate(zip(packed, padded)):
        for j, ((model, opt), batch) in enumerate(zip(runs, pair)):
            t0 = time.perf_counter()
            train_step(model, opt, [batch], device=cpu, amp_dtype="float32")
            if i:  # step 0 is warm-up
                times[j] += time.perf_counter() - t0
    return times[0], times[1]


def padded_batches(directory: Path, n: int) -> tuple[list[dict], int]:
    """The baseline's batches: one sentence per row, [BOS] codes [EOS] padded/truncated to SEQ + 1."""
    table = pq.read_table(resolve_shards(str(directory), "train")[0], columns=["tokens"])
    out, useful = [], 0
    rows = table.column("tokens").to_pylist()
    for i in range(n):
        x = np.full((BATCH, SEQ + 1), 0, np.int64)
        y_mask = np.zeros((BATCH, SEQ), bool)
        for r in range(BATCH):
            s = np.concatenate([[schema.BOS_ID], rows[(i * BATCH + r) % len(rows)], [schema.EOS_ID]])[: SEQ + 1]
            x[r, : len(s)] = s
            y_mask[r, : len(s) - 1] = True
        t = torch.from_numpy(x)
        targets = t[:, 1:].clone()
        targets[~torch.from_numpy(y_mask)] = -100
        useful += int(y_mask.sum()) if i else 0
        out.append({"tokens": t[:, :-1], "targets": targets, "doc_ids": torch.zeros(BATCH, SEQ, dtype=torch.long)})
    return out, useful


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_shards(d)
        loader_tps = loader_tokens_per_s(d)
        it = iter(ShardLoader(d, SEQ, BATCH, split="train", num_workers=0))
        steps = 6
        packed = [next(it) for _ in range(steps + 1)]
        padded, useful = padded_batches(d, steps + 1)
        packed_s, padded_s = interleaved_training(packed, padded)
        packed_tps, padded_tps = steps * BATCH * SEQ / packed_s, useful / padded_s
    print(
        f"loader: {loader_tps:,.0f} tokens/s/core vs tiny-model training {packed_tps:,.0f} tokens/s/core "
        f"(packed, fp32 eager) -> {loader_tps / packed_tps:.1f}x (goal >= 10x)"
    )
    print(
        f"train tiny: {packed_tps:,.0f} useful tokens/s/core (packed windows) vs baseline {padded_tps:,.0f} "
        f"useful tokens/s/core (eager fp32, no packing: padded rows) -> {packed_tps / padded_tps:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

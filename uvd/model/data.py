"""Streaming shard loader: Parquet rows -> BOS/EOS sentences -> packed (tokens, targets) windows.

How rows are split: canonical partitions
    The data is cut into P partitions, P fixed for the run (default: the global batch in windows,
    G = batch_size x grad_accum x world_size; any P with P | G works). Partition p is one reader
    of the pre-elastic loader: the unit of reading is a Parquet row group; each epoch the list of
    (file, row group) units is permuted with the seed and unit i goes to partition i mod P. With
    fewer units than partitions (a tiny sample) every partition opens every unit and keeps rows
    r mod P == p instead. Either way each row is read by exactly one partition per epoch.

Shuffling
    A partition takes its units `shuffle_rowgroups` at a time (the shuffle buffer), concatenates their
    sentences and visits them in a permutation seeded by (seed, epoch, reader, window). The buffer's
    position is therefore a cursor, (epoch, window, row), and the state is exact without storing
    the buffer itself.

Packing
    Each sentence becomes [BOS] + codes + [EOS] and is appended to one token stream. Windows of
    seq_len + 1 tokens are cut with stride seq_len (one token of overlap), giving
    inputs = w[:-1] and targets = w[1:]; so every token of the stream is a target exactly once and
    nothing is padded or dropped. A 16-image sentence is 4096 + 2 tokens: at seq_len 4096 a window
    that starts at its BOS holds BOS and all 4096 codes, so every code is predicted with the full
    sentence before it; its EOS is the first target of the next window. In general a window starts
    anywhere in the stream, and a sentence's tail continues in the next window (its earlier tokens
    are then out of context, as in any packed LM).

Attention reset
    Every window carries doc_ids (B, T): the index of the sentence each input token belongs to
    (BOS starts a new one). With `doc_mask`, the model attends only within a sentence.

Elastic resume (the rule)
    Each partition is a deterministic stream of packed windows that depends only on (shards, seed,
    P, seq_len). Optimizer step s consumes windows s*c .. s*c + c - 1 of every partition, c = G / P;
    the n-th window of partition p has the canonical id n * P + p. Which process computes it is a
    detail: on W ranks, rank r streams partitions r*P/W .. (r+1)*P/W - 1, and its K loader workers
    take those round-robin (worker k: the rank's k-th, (k+K)-th, ... partition). So the set of
    windows in step s is the same for every W and K; the state is each partition's cursor (epoch,
    window, row, the < 1 window of packed tokens not yet emitted) after the last complete step, and
    a run saved on W1 x K1 resumes on any W2 x K2 with W2 | P and the same G (batch_size x
    grad_accum x W2 = G, e.g. 2 ranks x 3 windows -> 3 ranks x 2 or 1 rank x 6 or 1 x 3 x accum 2).
    Memory: a rank holds P / W shuffle buffers of `shuffle_rowgroups` row groups.
"""

from __future__ import annotations

import glob as globlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from uvd import schema

SPLIT_ALIASES = {"val": ("val", "validation"), "validation": ("validation", "val")}


def resolve_shards(spec: str | os.PathLike | list, split: str | None = None) -> list[str]:
    """Shard files from a list, a glob, a single file, or a directory (+ split prefix).

    A directory `d` with split `s` gives `d/s-*.parquet` (the shard writer's names), else
    `d/s/*.parquet`, else (split None) `d/*.parquet`. Local paths or any fsspec URL (gs://, s3://).
    """
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in resolve_shards(s, split)]
    spec = os.fspath(spec)
    remote = "://" in spec and not spec.startswith("file://")

    def expand(pattern: str) -> list[str]:
        if not remote:
            return sorted(globlib.glob(pattern.removeprefix("file://")))
        import fsspec

        fs, _, paths = fsspec.get_fs_token_paths(pattern)
        proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return sorted(p if "://" in p else f"{proto}://{p.lstrip('/')}" for p in paths)

    if any(c in spec for c in "*?["):
        return expand(spec)
    if spec.endswith(".parquet"):
        return [spec]
    base = spec.rstrip("/")
    if (
        not remote
        and os.path.isdir(os.path.join(base, "stats"))
        and not os.path.exists(os.path.join(base, schema.COMPLETE_MARKER))
    ):  # a uvd dataset folder whose build did not finish
        raise FileNotFoundError(f"{base}: no {schema.COMPLETE_MARKER}: an unfinished `uvd dataset` build; rerun it")
    names = SPLIT_ALIASES.get(split, (split,)) if split else (None,)
    for name in names:
        patterns = [f"{base}/{name}-*.parquet", f"{base}/{name}/*.parquet"] if name else [f"{base}/*.parquet"]
        for pattern in patterns:
            files = expand(pattern)
            if files:
                return files
    return []


def _open(path: str):
    if "://" in path:
        import fsspec

        return fsspec.open(path, "rb").open()
    return path


@dataclass(frozen=True)
class Unit:
    """What one reader reads from one row group: rows offset, offset + stride, ... of it."""

    file: int
    row_group: int
    offset: int = 0
    stride: int = 1


def list_row_groups(files: list[str]) -> list[tuple[int, int]]:
    """(file index, row group index) for every non-empty row group, in file order."""
    out = []
    for i, path in enumerate(files):
        meta = pq.ParquetFile(_open(path)).metadata
        out += [(i, g) for g in range(meta.num_row_groups) if meta.row_group(g).num_rows > 0]
    return out


def assign_units(
    row_groups: list[tuple[int, int]], reader: int, n_readers: int, seed: int, epoch: int, shuffle: bool = True
) -> list[Unit]:
    """This reader's units for `epoch` (see the module docstring): disjoint, covering every row."""
    order = (
        np.random.default_rng([seed, epoch, 0x5EED]).permutation(len(row_groups))
        if shuffle
        else np.arange(len(row_groups))
    )
    ordered = [row_groups[i] for i in order]
    if len(ordered) >= n_readers:
        return [Unit(f, g) for f, g in ordered[reader::n_readers]]
    return [Unit(f, g, offset=reader, stride=n_readers) for f, g in ordered]


def read_sentences(files: list[str], units: list[Unit]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated codes (uint16) and sentence offsets (len = sentences + 1) of the given units."""
    values, lengths = [], []
    for u in units:
        table = pq.ParquetFile(_open(files[u.file])).read_row_group(u.row_group, columns=["tokens"])
        col = table.column("tokens").combine_chunks()
        if u.stride > 1:
            col = col.take(pa.array(np.arange(u.offset, len(col), u.stride)))
        offsets = col.offsets.to_numpy()
        values.append(col.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]].astype(np.uint16, copy=False))
        lengths.append(np.diff(offsets))
    if not values:
        return np.zeros(0, np.uint16), np.zeros(1, np.int64)
    lens = np.concatenate(lengths)
    return np.concatenate(values), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)


class Packer:
    """Token stream -> windows of seq_len + 1 with stride seq_len (see module docstring)."""

    def __init__(
        self,
        seq_len: int,
        carry: np.ndarray | None = None,
        bos_id: int | None = schema.BOS_ID,
        eos_id: int | None = schema.EOS_ID,
    ):
        self.seq_len = seq_len
        self.buf = np.zeros(0, np.int32) if carry is None else np.asarray(carry, np.int32)
        self.head = [] if bos_id is None else [bos_id]
        self.tail = [] if eos_id is None else [eos_id]

    def add(self, codes: np.ndarray) -> None:
        sentence = np.concatenate(
            [np.asarray(self.head, np.int32), np.asarray(codes, np.int32), np.asarray(self.tail, np.int32)]
        )
        self.buf = np.concatenate([self.buf, sentence])

    def take(self) -> list[np.ndarray]:
        """Every complete window; the buffer keeps the rest, starting at the next window's start."""
        n = self.seq_len
        k = (len(self.buf) - 1) // n if len(self.buf) > n else 0
        out = [self.buf[i * n : i * n + n + 1] for i in range(k)]
        if k:
            self.buf = self.buf[k * n :].copy()
        return out


def doc_ids_for(inputs: np.ndarray, bos_id: int | None = schema.BOS_ID) -> np.ndarray:
    """Sentence index of each input token: increments at each BOS (tokens before the first BOS: 0).

    Without BOS (bos_id None) sentences cannot be told apart: one document per window.
    """
    if bos_id is None:
        return np.zeros(inputs.shape, np.int32)
    return np.cumsum(inputs == bos_id, axis=-1).astype(np.int32)


@dataclass
class ReaderState:
    epoch: int = 0
    window: int = 0
    row: int = 0
    carry: list[int] | None = None


class ShardStream:
    """One reader's infinite (or `epochs`-long) stream of packed batches, with exact state."""

    def __init__(
        self,
        files: list[str],
        row_groups: list[tuple[int, int]],
        reader: int,
        n_readers: int,
        seq_len: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_rowgroups: int = 8,
        epochs: int | None = None,
        state: ReaderState | None = None,
        bos_id: int | None = schema.BOS_ID,
        eos_id: int | None = schema.EOS_ID,
    ):
        self.files, self.row_groups = files, row_groups
        self.reader, self.n_readers = reader, n_readers
        self.seq_len, self.batch_size = seq_len, batch_size
        self.seed, self.shuffle, self.window_units = seed, shuffle, max(1, shuffle_rowgroups)
        self.epochs = epochs
        self.state = state or ReaderState()
        self.bos_id, self.eos_id = bos_id, eos_id

    def __iter__(self) -> Iterator[tuple[np.ndarray, ReaderState]]:
        st = self.state
        packer = Packer(self.seq_len, np.asarray(st.carry or [], np.int32), self.bos_id, self.eos_id)
        rows: list[np.ndarray] = []
        epoch, window, row = st.epoch, st.window, st.row
        while self.epochs is None or epoch < self.epochs:
            units = assign_units(self.row_groups, self.reader, self.n_readers, self.seed, epoch, self.shuffle)
            n_windows = -(-len(units) // self.window_units)
            sentences, whole_epoch = 0, window == 0 and row == 0
            while window < n_windows:
                chunk = units[window * self.window_units : (window + 1) * self.window_units]
                codes, offsets = read_sentences(self.files, chunk)
                n = len(offsets) - 1
                sentences += n
                order = np.arange(n)
                if self.shuffle:
                    order = np.random.default_rng([self.seed, epoch, self.reader, window]).permutation(n)
                while row < n:
                    j = order[row]
                    packer.add(codes[offsets[j] : offsets[j + 1]])
                    row += 1
                    ready = packer.take()
                    for i, w in enumerate(ready):
                        rows.append(w)
                        if len(rows) == self.batch_size:
                            # State = where the next batch starts: windows cut but not yet batched
                            # go back into the carry, ahead of the packer's tail (overlap removed).
                            carry = np.concatenate([r[:-1] for r in ready[i + 1 :]] + [packer.buf])
                            yield np.stack(rows), ReaderState(epoch, window, row, carry.tolist())
                            rows = []
                window, row = window + 1, 0
            if sentences == 0 and whole_epoch and self.epochs is None:
                raise ValueError(f"reader {self.reader} of {self.n_readers} has no rows: fewer rows than readers")
            epoch, window = epoch + 1, 0


class _Dataset(IterableDataset):
    """Torch IterableDataset: DataLoader worker k streams partitions local[k::K], one part per step."""

    def __init__(self, loader: ShardLoader):
        self.loader = loader

    def __iter__(self):
        info = get_worker_info()
        worker, n = (0, 1) if info is None else (info.id, info.num_workers)
        yield from self.loader.parts(self.loader.local_partitions[worker::n])


class ShardLoader:
    """Micro-batches of packed windows for one rank: dict(tokens, targets, doc_ids, sample_ids), (B, seq_len).

    Elastic: the data order is a function of the step only, not of the world size or the worker
    count (see "Elastic resume" in the module docstring), so `state_dict()` saved on W1 ranks x K1
    workers restores on W2 x K2 (`load_state_dict` takes every rank's saved state).
    """

    def __init__(
        self,
        shards: str | list[str],
        seq_len: int,
        batch_size: int,
        *,
        split: str | None = None,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_rowgroups: int = 8,
        epochs: int | None = None,
        grad_accum: int = 1,
        partitions: int = 0,
        bos_id: int | None = schema.BOS_ID,
        eos_id: int | None = schema.EOS_ID,
    ):
        self.files = resolve_shards(shards, split)
        if not self.files:
            raise FileNotFoundError(f"no shards found for {shards!r} (split {split!r})")
        self.row_groups = list_row_groups(self.files)
        if not self.row_groups:
            raise ValueError(f"the shards of {shards!r} hold no rows")
        self.seq_len, self.batch_size, self.grad_accum = seq_len, batch_size, grad_accum
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.seed, self.shuffle, self.shuffle_rowgroups, self.epochs = seed, shuffle, shuffle_rowgroups, epochs
        self.bos_id, self.eos_id = bos_id, eos_id
        self.windows_per_step = batch_size * grad_accum * world_size
        self.num_partitions = partitions or self.windows_per_step
        if self.windows_per_step % self.num_partitions or self.num_partitions % world_size:
            raise ValueError(
                f"partitions {self.num_partitions} must divide the {self.windows_per_step} windows per "
                f"step (batch_size x grad_accum x world_size) and be a multiple of world_size "
                f"{world_size}"
            )
        self.per_partition = self.windows_per_step // self.num_partitions  # windows of each partition per step
        per_rank = self.num_partitions // world_size
        self.local_partitions = list(range(rank * per_rank, (rank + 1) * per_rank))
        self.partition_states: dict[int, ReaderState] = {}
        self.step = 0
        self._it: Any = None

    def stream(self, partition: int) -> ShardStream:
        return ShardStream(
            self.files,
            self.row_groups,
            reader=partition,
            n_readers=self.num_partitions,
            seq_len=self.seq_len,
            batch_size=self.per_partition,
            seed=self.seed,
            shuffle=self.shuffle,
            shuffle_rowgroups=self.shuffle_rowgroups,
            epochs=self.epochs,
            state=self.partition_states.get(partition),
            bos_id=self.bos_id,
            eos_id=self.eos_id,
        )

    def parts(self, partitions: list[int]):
        """Per step: (partitions, their windows stacked in partition order, their states after the step)."""
        streams = [iter(self.stream(p)) for p in partitions]
        while True:
            got = [next(s, None) for s in streams]
            ready = [g for g in got if g is not None]
            if len(ready) < len(got):
                return
            yield partitions, np.concatenate([w for w, _ in ready]), [st for _, st in ready]

    def __iter__(self):
        local = self.local_partitions
        workers = min(self.num_workers, len(local))
        if workers == 0:
            source = self.parts(local)
        else:
            # fork where there is one: also under a spawned parent (which would make workers re-import torch)
            ctx = "fork" if sys.platform == "linux" else None
            source = iter(
                DataLoader(
                    _Dataset(self),
                    batch_size=None,
                    num_workers=workers,
                    prefetch_factor=4,
                    pin_memory=torch.cuda.is_available(),
                    multiprocessing_context=ctx,
                )
            )
        c, n_parts = self.per_partition, self.num_partitions
        while True:
            # One part from every worker (DataLoader serves its workers round-robin, in order).
            got = [next(source, None) for _ in range(max(1, workers))]
            parts = [p for p in got if p is not None]
            if len(parts) < len(got):  # finite (epochs): the step ends with the first empty partition
                return
            by_partition = {}
            for partitions, windows, states in parts:
                for i, (p, st) in enumerate(zip(partitions, states)):
                    by_partition[p] = (windows[i * c : (i + 1) * c], st)
            if sorted(by_partition) != local:  # a finite stream ended: its worker dropped out of the rotation
                return
            windows = torch.from_numpy(np.concatenate([by_partition[p][0] for p in local]).astype(np.int64))
            # canonical window id: the n-th window of partition p is n * P + p (independent of the layout)
            n = self.step * c + np.arange(c)
            ids = torch.from_numpy(np.concatenate([n * n_parts + p for p in local]).astype(np.int64))
            b = self.batch_size
            for i in range(self.grad_accum):
                if i == self.grad_accum - 1:  # the step is complete once its last micro-batch is served
                    self.partition_states.update({p: st for p, (_, st) in by_partition.items()})
                    self.step += 1
                w = windows[i * b : (i + 1) * b]
                inputs = w[:, :-1]
                yield {
                    "tokens": inputs,
                    "targets": w[:, 1:],
                    "sample_ids": ids[i * b : (i + 1) * b],
                    "doc_ids": torch.from_numpy(doc_ids_for(inputs.numpy(), self.bos_id)),
                }

    def __next__(self):
        if self._it is None:
            self._it = iter(self)
        return next(self._it)

    def state_dict(self) -> dict:
        """This rank's partitions' cursors after the last complete step (plus what must not change)."""
        mine = {p: vars(self.partition_states[p]).copy() for p in self.local_partitions if p in self.partition_states}
        return {
            "version": 2,
            "step": self.step,
            "partitions": mine,
            "num_partitions": self.num_partitions,
            "windows_per_step": self.windows_per_step,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "files": list(self.files),
        }

    def load_state_dict(self, state: dict | list[dict]) -> None:
        """Resume from one rank's state or the list of every rank's (a checkpoint's `loader`), any layout."""
        states = state if isinstance(state, list) else [state]
        if any("partitions" not in s for s in states):
            raise ValueError(
                "loader state predates elastic resume (uvd < issue 21); restart the data order with "
                "--resume=<checkpoint> after deleting its 'loader' entry, or retrain"
            )
        first = states[0]
        for key in ("num_partitions", "windows_per_step", "seed", "seq_len", "files"):
            mine = getattr(self, key)
            if first[key] != mine:
                raise ValueError(
                    f"loader state has {key}={first[key]!r}, this loader {mine!r}: the global batch "
                    "(batch_size x grad_accum x world_size), partitions, seed, seq_len and shards "
                    "must stay"
                )
        merged: dict[int, ReaderState] = {}
        for s in states:
            if s["step"] != first["step"]:
                raise ValueError(f"ranks saved different steps: {s['step']} != {first['step']}")
            merged.update({int(p): ReaderState(**v) for p, v in s["partitions"].items()})
        if first["step"] and not set(self.local_partitions) <= set(merged):
            raise ValueError(f"loader state lacks partitions {sorted(set(self.local_partitions) - set(merged))}")
        self.partition_states, self.step, self._it = merged, first["step"], None

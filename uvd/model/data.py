"""Streaming shard loader: Parquet rows -> BOS/EOS sentences -> packed (tokens, targets) windows.

How rows are split among readers
    The unit of reading is a Parquet row group. Each epoch, the list of (file, row group) units is
    permuted with the seed (same permutation everywhere) and unit i goes to reader i mod R, where
    R = world_size * num_workers and reader = rank * num_workers + worker. When there are fewer
    units than readers (a tiny sample), every reader opens every unit and keeps rows
    r mod R == reader instead. Either way each row is read by exactly one reader per epoch.

Shuffling
    A reader takes its units `shuffle_rowgroups` at a time (the shuffle buffer), concatenates their
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

Resume
    State per reader = (epoch, window, row) plus the few packed tokens not yet emitted. `ShardLoader`
    records the state each batch was cut at and which reader serves next, so loading the state
    makes the loader produce exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass
from typing import Iterator

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
    if not remote and os.path.isdir(os.path.join(base, "stats")) and not os.path.exists(
            os.path.join(base, schema.COMPLETE_MARKER)):  # a uvd dataset folder whose build did not finish
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
    order = np.random.default_rng([seed, epoch, 0x5EED]).permutation(len(row_groups)) if shuffle \
        else np.arange(len(row_groups))
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

    def __init__(self, seq_len: int, carry: np.ndarray | None = None):
        self.seq_len = seq_len
        self.buf = np.zeros(0, np.int32) if carry is None else np.asarray(carry, np.int32)

    def add(self, codes: np.ndarray) -> None:
        sentence = np.empty(len(codes) + 2, np.int32)
        sentence[0], sentence[-1] = schema.BOS_ID, schema.EOS_ID
        sentence[1:-1] = codes
        self.buf = np.concatenate([self.buf, sentence])

    def take(self) -> list[np.ndarray]:
        """Every complete window; the buffer keeps the rest, starting at the next window's start."""
        n = self.seq_len
        k = (len(self.buf) - 1) // n if len(self.buf) > n else 0
        out = [self.buf[i * n : i * n + n + 1] for i in range(k)]
        if k:
            self.buf = self.buf[k * n :].copy()
        return out


def doc_ids_for(inputs: np.ndarray) -> np.ndarray:
    """Sentence index of each input token: increments at each BOS (tokens before the first BOS: 0)."""
    return np.cumsum(inputs == schema.BOS_ID, axis=-1).astype(np.int32)


@dataclass
class ReaderState:
    epoch: int = 0
    window: int = 0
    row: int = 0
    carry: list[int] | None = None


class ShardStream:
    """One reader's infinite (or `epochs`-long) stream of packed batches, with exact state."""

    def __init__(
        self, files: list[str], row_groups: list[tuple[int, int]], reader: int, n_readers: int,
        seq_len: int, batch_size: int, seed: int = 0, shuffle: bool = True, shuffle_rowgroups: int = 8,
        epochs: int | None = None, state: ReaderState | None = None,
    ):
        self.files, self.row_groups = files, row_groups
        self.reader, self.n_readers = reader, n_readers
        self.seq_len, self.batch_size = seq_len, batch_size
        self.seed, self.shuffle, self.window_units = seed, shuffle, max(1, shuffle_rowgroups)
        self.epochs = epochs
        self.state = state or ReaderState()

    def __iter__(self) -> Iterator[tuple[np.ndarray, ReaderState]]:
        st = self.state
        packer = Packer(self.seq_len, np.asarray(st.carry or [], np.int32))
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
    """Torch IterableDataset around ShardStreams: one per DataLoader worker; yields whole batches."""

    def __init__(self, loader: "ShardLoader"):
        self.loader = loader

    def __iter__(self):
        info = get_worker_info()
        n_workers = max(1, self.loader.num_workers)
        worker = 0 if info is None else info.id
        logical = (worker + self.loader.rotation) % n_workers  # who serves next resumes first
        stream = self.loader.stream(logical)
        for batch, state in stream:
            yield torch.from_numpy(batch.astype(np.int64)), logical, state


class ShardLoader:
    """Batches of packed windows for one rank: dict(tokens, targets, doc_ids) of shape (B, seq_len).

    `state_dict()` / `load_state_dict()` make it resumable; see the module docstring.
    """

    def __init__(
        self, shards: str | list[str], seq_len: int, batch_size: int, *, split: str | None = None,
        rank: int = 0, world_size: int = 1, num_workers: int = 0, seed: int = 0, shuffle: bool = True,
        shuffle_rowgroups: int = 8, epochs: int | None = None,
    ):
        self.files = resolve_shards(shards, split)
        if not self.files:
            raise FileNotFoundError(f"no shards found for {shards!r} (split {split!r})")
        self.row_groups = list_row_groups(self.files)
        if not self.row_groups:
            raise ValueError(f"the shards of {shards!r} hold no rows")
        self.seq_len, self.batch_size = seq_len, batch_size
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.seed, self.shuffle, self.shuffle_rowgroups, self.epochs = seed, shuffle, shuffle_rowgroups, epochs
        self.reader_states: dict[int, ReaderState] = {}
        self.rotation = 0
        self.served = 0
        self._it = None

    def stream(self, logical_worker: int) -> ShardStream:
        n = max(1, self.num_workers)
        return ShardStream(
            self.files, self.row_groups, reader=self.rank * n + logical_worker, n_readers=self.world_size * n,
            seq_len=self.seq_len, batch_size=self.batch_size, seed=self.seed, shuffle=self.shuffle,
            shuffle_rowgroups=self.shuffle_rowgroups, epochs=self.epochs, state=self.reader_states.get(logical_worker),
        )

    def __iter__(self):
        if self.num_workers == 0:
            source = ((torch.from_numpy(b.astype(np.int64)), 0, s) for b, s in self.stream(0))
        else:
            source = iter(DataLoader(_Dataset(self), batch_size=None, num_workers=self.num_workers,
                                     prefetch_factor=4, pin_memory=torch.cuda.is_available()))
        for windows, logical, state in source:
            self.reader_states[logical] = state
            self.served += 1
            inputs = windows[:, :-1]
            yield {"tokens": inputs, "targets": windows[:, 1:], "doc_ids": torch.from_numpy(doc_ids_for(inputs.numpy()))}

    def __next__(self):
        if self._it is None:
            self._it = iter(self)
        return next(self._it)

    def state_dict(self) -> dict:
        n = max(1, self.num_workers)
        return {
            "readers": {k: vars(v).copy() for k, v in self.reader_states.items()},
            "rotation": (self.rotation + self.served) % n,
            "num_workers": self.num_workers, "world_size": self.world_size, "rank": self.rank,
            "seed": self.seed, "files": list(self.files),
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume; the reader layout (world size, workers, files) must match the saved one."""
        for key in ("num_workers", "world_size", "files"):
            if state[key] != getattr(self, key):
                raise ValueError(f"loader state has {key}={state[key]!r}, this loader {getattr(self, key)!r}")
        self.reader_states = {int(k): ReaderState(**v) for k, v in state["readers"].items()}
        self.rotation, self.served, self._it = state["rotation"], 0, None

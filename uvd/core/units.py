"""Work units with completion records: a rerun skips what an earlier (killed) run finished.

A unit is one input element of a source step (a video decode task, a mesh, an annotation item, a
fake record in tests): RunSource calls `Units.rows(element, compute)`. The unit's key is a hash of
the step, the stage options, the uvd data version and the element's identity, where a local file
in the element counts by path, size and modification time, so a changed input file invalidates its
units only. Results (the `(tag, row)` pairs the step yielded, failures included) are written under
the key, then a small completion record, last; a unit counts as done only when its record exists.
Reused rows are replayed through the same counters as computed ones, so cards and Beam metrics
do not depend on what was reused; `uvd.units` counters say how many were reused and computed.

The scope (cache folder, options) is set on the driver by `uvd dataset` around each entry's graph
construction (`scope(...)`); a RunSource built inside captures it, so stages need no edits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

import uvd
from uvd.core.files import atomic_write

# Bump when what a stage writes for the same input changes meaning (a new column, a fixed bug).
DATA_VERSION = "1"
MODES = ("resume", "fresh", "reuse_only")
_SCOPES: list[Units] = []


def digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def describe(obj: Any, depth: int = 0) -> Any:
    """A JSON-able identity of an element: local files by (path, size, mtime), bytes by their hash."""
    if depth > 6:
        return repr(obj)
    if isinstance(obj, str):
        if "://" not in obj and len(obj) < 4096 and os.sep in obj and os.path.isfile(obj):
            st = os.stat(obj)
            return {"file": obj, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        return obj
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"bytes": hashlib.blake2b(bytes(obj), digest_size=16).hexdigest()}
    if hasattr(obj, "tobytes") and hasattr(obj, "dtype"):  # numpy arrays
        return {
            "array": hashlib.blake2b(obj.tobytes(), digest_size=16).hexdigest(),
            "dtype": str(obj.dtype),
            "shape": list(getattr(obj, "shape", ())),
        }
    if isinstance(obj, dict):
        return {str(k): describe(v, depth + 1) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, tuple) or (isinstance(obj, list) and depth == 0):
        return [describe(v, depth + 1) for v in obj]
    if isinstance(obj, (list, set, frozenset)):
        # Nested lists count as multisets: a GroupByKey hands its values over in the runner's order
        # (imagenet's (class, members)), and a step must not depend on that order anyway.
        return {"values": sorted((describe(v, depth + 1) for v in obj), key=lambda d: json.dumps(d, default=str))}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            type(obj).__name__: describe({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, depth + 1)
        }
    if hasattr(obj, "_asdict"):
        return {type(obj).__name__: describe(obj._asdict(), depth + 1)}
    if hasattr(obj, "__dict__"):
        return {type(obj).__name__: describe(vars(obj), depth + 1)}
    if isinstance(obj, Iterable):  # other GroupByKey value iterables, as lists above
        return {"values": sorted((describe(v, depth + 1) for v in obj), key=lambda d: json.dumps(d, default=str))}
    return repr(obj)  # may hold an address: then the unit is simply never reused


class UnitNotCached(RuntimeError):
    """`reuse_only` (uvd remix) met a unit no earlier build completed."""


@dataclasses.dataclass(frozen=True)
class Units:
    """Where one manifest entry's units live and how to use them (picklable: it travels to workers)."""

    root: str  # <cache>/units/<entry>/<options hash>
    mode: str = "resume"  # resume: reuse done units; fresh: recompute all; reuse_only: never compute

    def for_step(self, step: str) -> _StepUnits:
        return _StepUnits(self, step)


class _StepUnits:
    """The worker side of one RunSource step: look up, replay or compute-and-record units."""

    def __init__(self, units: Units, step: str) -> None:
        self.units, self.step = units, step
        self.folder = FileSystems.join(units.root, "".join(c if c.isalnum() or c in "._-" else "_" for c in step))
        self.reused = Metrics.counter("uvd.units", "reused")
        self.computed = Metrics.counter("uvd.units", "computed")

    def key(self, element: Any) -> str:
        return digest(self.step, describe(element))

    def _paths(self, key: str) -> tuple[str, str]:
        base = FileSystems.join(self.folder, key[:2], key)
        return base + ".pkl", base + ".done.json"

    def load(self, key: str) -> list[tuple[str, dict]] | None:
        rows_path, done_path = self._paths(key)
        if not FileSystems.exists(done_path):
            return None
        try:
            with FileSystems.open(rows_path) as f:
                return pickle.loads(f.read())
        except Exception:  # noqa: BLE001 - an unreadable unit is recomputed, never trusted
            return None

    def save(self, key: str, element: Any, rows: list[tuple[str, dict]]) -> None:
        rows_path, done_path = self._paths(key)
        data = pickle.dumps(rows, protocol=4)
        atomic_write(rows_path, lambda f: f.write(data))
        counts: dict[str, int] = {}
        for tag, _ in rows:
            counts[tag] = counts.get(tag, 0) + 1
        record = {"step": self.step, "element": describe(element), "rows": counts, "uvd": uvd.__version__}
        done = json.dumps(record, sort_keys=True, default=str).encode()
        atomic_write(done_path, lambda f: f.write(done))  # last

    def rows(self, element: Any, compute: Callable[[], list[tuple[str, dict]]]) -> list[tuple[str, dict]]:
        key = self.key(element)
        if self.units.mode != "fresh":
            cached = self.load(key)
            if cached is not None:
                self.reused.inc()
                return cached
            if self.units.mode == "reuse_only":
                raise UnitNotCached(
                    f"{self.step}: unit {key} ({str(describe(element))[:200]}) is not in the cache "
                    f"{self.units.root}; run `uvd dataset` on this manifest first"
                )
        rows = compute()
        self.save(key, element, rows)
        self.computed.inc()
        return rows


@contextlib.contextmanager
def scope(cache: str, entry: str, options: dict, mode: str = "resume") -> Iterator[Units]:
    """Graph construction inside this block gives RunSource steps these units (driver side only)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    key = digest(entry, describe(options), uvd.__version__, DATA_VERSION)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in entry)
    units = Units(FileSystems.join(cache, "units", safe, key), mode)
    _SCOPES.append(units)
    try:
        yield units
    finally:
        _SCOPES.pop()


def current() -> Units | None:
    return _SCOPES[-1] if _SCOPES else None

"""Atomic publication of a dataset folder: readers see a whole build or know it is not one.

Shards, failures, stats and the card are each written atomically (temp name + rename), but a build
is many files. `begin()` removes the completion marker of a previous build (and stale temp files
of killed runs) before anything is written; `complete()` writes the marker last, listing every
published file with its size. A folder without the marker is a build in progress or a killed one:
`uvd.model`'s shard loader and `uvd preview` refuse it, and the next `uvd dataset` replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from apache_beam.io.filesystems import FileSystems

import uvd
from uvd import schema

PLAN_FILE = "shard_plan.json"  # stats/: split -> number of shards of the latest run
TEMP_NAME = re.compile(r"^\.tmp-")
# where the writers put their temp files (shards and card at the top, stats/ and failures/ below)
TEMP_FOLDERS = ("", "stats", "failures")


class IncompleteDataset(RuntimeError):
    """A dataset folder without its completion marker (a killed or running build)."""


def marker_path(output: str) -> str:
    return FileSystems.join(output, schema.COMPLETE_MARKER)


def _files(pattern: str) -> list:
    return FileSystems.match([pattern])[0].metadata_list


def remove_stale_temp(output: str) -> list[str]:
    """Delete `.tmp-*` files left by killed writers (nothing else writes that name)."""
    stale = []
    for folder in TEMP_FOLDERS:
        base = FileSystems.join(output, folder) if folder else output
        stale += [
            m.path for m in _files(FileSystems.join(base, ".tmp-*")) if TEMP_NAME.match(m.path.rsplit("/", 1)[-1])
        ]
    if stale:
        FileSystems.delete(stale)
    return stale


def begin(output: str) -> list[str]:
    """Before a build writes into `output`: the old marker goes first, then stale temp files."""
    if FileSystems.exists(marker_path(output)):
        FileSystems.delete([marker_path(output)])
    if not FileSystems.exists(output):
        return []
    old_failures = [m.path for m in _files(FileSystems.join(output, "failures", "part-*.parquet"))]
    if old_failures:  # rewritten whole by every build; other part counts must not linger
        FileSystems.delete(old_failures)
    return remove_stale_temp(output)


def published_files(output: str) -> dict[str, int]:
    """Every file of the build (shards, card, failures/, stats/) -> size; the cache is not published."""
    out: dict[str, int] = {}
    for pattern in ("*.parquet", "README.md", "failures/*.parquet", "stats/*.json"):
        for m in _files(FileSystems.join(output, pattern)):
            rel = m.path[len(output.rstrip("/")) + 1 :]
            if not TEMP_NAME.match(rel.rsplit("/", 1)[-1]):
                out[rel] = m.size_in_bytes
    return dict(sorted(out.items()))


def complete(output: str) -> dict:
    """Write the completion marker, last. Its content depends only on the published files."""
    from uvd.core.files import write_json

    record = {"uvd version": uvd.__version__, "files": published_files(output)}
    write_json(marker_path(output), record)
    return record


def is_complete(output: str) -> bool:
    return FileSystems.exists(marker_path(output))


def require_complete(output: str) -> None:
    if not is_complete(output):
        raise IncompleteDataset(
            f"{output}: no {schema.COMPLETE_MARKER}, so this is not a finished uvd dataset (a build that was "
            "killed or is still running); rerun `uvd dataset --output` into it (it resumes) or pick another folder"
        )


def remove_stale_shards(output: str, written: Iterable[str]) -> list[str]:
    """Delete shard files of an earlier run (other shard counts) so the folder holds one dataset."""
    keep = set(written)
    stale = []
    for meta in FileSystems.match([FileSystems.join(output, "*-of-*.parquet")])[0].metadata_list:
        name = meta.path.rsplit("/", 1)[-1]
        if schema.SHARD_NAME.match(name) and name not in keep:
            stale.append(meta.path)
    for stats in FileSystems.match([FileSystems.join(output, "stats", "*-of-*.parquet.json")])[0].metadata_list:
        if stats.path.rsplit("/", 1)[-1][: -len(".json")] not in keep:
            stale.append(stats.path)
    if stale:
        FileSystems.delete(stale)
    return stale

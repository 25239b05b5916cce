"""Where a Hugging Face dataset lives, which shards it has, and its rows as plain dicts.

Layouts (config `format`, "auto" picks from the path):
    disk     a `save_to_disk` folder: a Dataset (state.json + data-*.arrow) or a DatasetDict
             (dataset_dict.json + one such folder per split)
    parquet  a .parquet file, a glob, or a folder of them (a hub repo checkout, `to_parquet` output);
             the split of a file is `<split>-00000-of-00004.parquet` or its folder's name
    arrow    .arrow files (IPC stream, as `save_to_disk` writes them), same split rules
    hub      a hub id ("owner/name", or `hf://datasets/owner/name`, the form a manifest needs: a
             URL passes its local-path check), resolved to its snapshot in the local hub cache
             (huggingface_hub.snapshot_download, local files only unless `offline` is false;
             `huggingface-cli download --repo-type dataset ID` fills the cache). The snapshot's
             Parquet/Arrow files are then read as above; a snapshot without any is streamed
    stream   anything `datasets.load_dataset(input, streaming=True)` understands (a local
             imagefolder/CSV/JSON folder, a repo folder); one shard per stream shard (n_shards)

The unit of parallel work is a `Shard`: one Parquet row group, one Arrow file, or one of the
streaming dataset's `n_shards`. `list_shards` only lists (names and row-group counts, no rows);
`read_shard` yields one shard's rows on a worker, a record batch at a time, with image bytes
undecoded. Nothing ever loads a whole dataset on one machine.

Rows are pyarrow's Python values: an Image column is {"bytes", "path"}, a ClassLabel an int, a
Sequence of structs a dict of lists (or a list of dicts), Array2D nested lists.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from uvd.config import ConfigError

FORMATS = ("auto", "disk", "parquet", "arrow", "hub", "stream")
HUB_PREFIX = "hf://datasets/"
BATCH_ROWS = 64  # rows per record batch read (image bytes: a few MB)
_SPLIT_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)-\d{5}-of-\d{5}")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_SPLIT_DIRS = ("train", "validation", "valid", "val", "test", "dev")


@dataclass(frozen=True)
class Shard:
    """One element of parallel work: a file (part -1), a Parquet row group, or a stream shard."""

    format: str  # "arrow" | "parquet" | "stream"
    path: str  # file path, or what load_dataset is given
    split: str | None
    part: int = -1  # parquet row group, or stream shard index
    parts: int = 1  # stream: n_shards
    config_name: str | None = None
    name: str = ""  # the file relative to the dataset folder: unique, readable record ids

    @property
    def shard_id(self) -> str:
        if self.format == "stream":
            return f"{posixpath.basename(self.path.rstrip('/'))}/{self.split}/shard{self.part}"
        base = self.name or posixpath.basename(self.path.rstrip("/"))
        return f"{base}:rg{self.part}" if self.part >= 0 else base


@dataclass
class Layout:
    """What the driver learns before the pipeline starts: format, splits, shards, features."""

    format: str
    shards: list[Shard]
    features: Any  # datasets.Features (the first shard's), or None if unknown
    splits: list[str | None]

    @property
    def columns(self) -> list[str]:
        return list(self.features) if self.features is not None else []


# --- files -----------------------------------------------------------------------------------------
def _is_local(path: str) -> bool:
    return "://" not in path


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:  # noqa: BLE001 - a malformed hub id is "not a path", not an error here
        return False


def _read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.loads(f.read())


def _match(pattern: str) -> list[str]:
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def _files_with(input_: str, ext: str) -> list[str]:
    """Files ending in `ext`: the input itself, a glob, or everything under a folder."""
    if any(c in input_ for c in "*?["):
        return [p for p in _match(input_) if p.endswith(ext)]
    if input_.endswith(ext):
        return [input_] if _exists(input_) else []
    return [p for p in _match(FileSystems.join(input_.rstrip("/"), "**")) if p.endswith(ext)]


def _relative(path: str, input_: str) -> str:
    """`path` below the input folder, or below a glob's folder before its first wildcard
    ('/'-separated); a single file's name. Never the bare file name of a glob match: `a/data.parquet`
    and `b/data.parquet` would name one shard (and its rows' record ids) twice."""
    wild = next((i for i, c in enumerate(input_) if c in "*?["), None)
    folder = posixpath.dirname(input_[:wild]) if wild is not None else input_
    root = folder.rstrip("/") + "/"
    return path[len(root) :].replace("\\", "/") if root != "/" and path.startswith(root) else posixpath.basename(path)


def split_of(path: str) -> str | None:
    """The split a data file belongs to: `train-00000-of-00002.parquet`, or a folder named `test`."""
    found = _SPLIT_FILE.match(posixpath.basename(path))
    if found:
        return found.group("split")
    for part in reversed(path.replace("\\", "/").split("/")[:-1]):
        if part in _SPLIT_DIRS:
            return part
    return None


def hub_id(input_: str) -> str:
    """`hf://datasets/owner/name` -> `owner/name` (anything else unchanged)."""
    return input_[len(HUB_PREFIX) :].rstrip("/") if input_.startswith(HUB_PREFIX) else input_


def detect_format(input_: str) -> str:
    """disk | parquet | arrow | hub, from what the path holds; a hub id is "name" or "owner/name"."""
    if input_.startswith(HUB_PREFIX):
        return "hub"
    if input_.endswith(".parquet"):
        return "parquet"
    if input_.endswith(".arrow"):
        return "arrow"
    root = input_.rstrip("/")
    if _exists(FileSystems.join(root, "dataset_dict.json")) or _exists(FileSystems.join(root, "state.json")):
        return "disk"
    if any(c in input_ for c in "*?[") or (_is_local(input_) and os.path.isdir(input_)) or _exists(input_):
        if _files_with(input_, ".parquet"):
            return "parquet"
        if _files_with(input_, ".arrow"):
            return "arrow"
        raise ConfigError(
            f"input: {input_!r} holds no save_to_disk dataset, .parquet or .arrow files "
            "(format: stream reads what datasets.load_dataset understands)"
        )
    if _HUB_ID.match(input_):
        return "hub"
    raise ConfigError(f"input: nothing at {input_!r}: not a file, folder or glob, nor a hub id (owner/name)")


# --- listing ---------------------------------------------------------------------------------------
def _disk_files(input_: str) -> list[tuple[str, str | None]]:
    """(arrow file, split) of a save_to_disk Dataset or DatasetDict folder."""
    root = input_.rstrip("/")
    dict_json = FileSystems.join(root, "dataset_dict.json")
    if _exists(dict_json):
        out = []
        for split in _read_json(dict_json).get("splits", []):
            out += [(f, split) for f, _ in _disk_files(FileSystems.join(root, split))]
        return out
    state = _read_json(FileSystems.join(root, "state.json"))
    split = state.get("_split")
    return [(FileSystems.join(root, d["filename"]), split) for d in state.get("_data_files", [])]


def _features_of(schema: pa.Schema):
    from datasets import Features

    try:
        return Features.from_arrow_schema(schema)
    except Exception:  # noqa: BLE001 - a plain Parquet file without HF metadata still has columns
        return Features({name: _value_feature(schema.field(name).type) for name in schema.names})


def _value_feature(type_: pa.DataType):
    from datasets import Value

    try:
        return Value(str(type_))
    except Exception:  # noqa: BLE001
        return Value("null")


def _arrow_schema(path: str) -> pa.Schema:
    with FileSystems.open(path) as f:
        return pa.ipc.open_stream(f).schema


def _stream(path: str, config_name: str | None, split: str | None):
    import datasets

    return datasets.load_dataset(path, name=config_name, split=split, streaming=True)


def hub_snapshot(input_: str, revision: str | None = None, cache_dir: str | None = None, offline: bool = True) -> str:
    """The local snapshot folder of hub dataset `input_` (downloaded first when not offline)."""
    from huggingface_hub import snapshot_download

    repo = hub_id(input_)
    try:
        return snapshot_download(
            repo, repo_type="dataset", revision=revision, cache_dir=cache_dir, local_files_only=offline
        )
    except Exception as exc:  # noqa: BLE001 - not cached / no network: a config problem, said plainly
        hint = (
            f"download it first (`huggingface-cli download --repo-type dataset {repo}`), give cache_dir, "
            "or set offline: false"
            if offline
            else "check the id and your network/token"
        )
        raise ConfigError(
            f"input: hub dataset {repo!r} (revision {revision or 'main'}) is not available "
            f"({type(exc).__name__}); {hint}"
        ) from None


def list_shards(
    input_: str,
    format_: str = "auto",
    split: str | None = None,
    config_name: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    offline: bool = True,
) -> Layout:
    """The dataset's shards (of `split`, or of every split) and its features; ConfigError if none."""
    fmt = detect_format(input_) if format_ == "auto" else format_
    if fmt == "hub":
        folder = hub_snapshot(input_, revision, cache_dir, offline)
        for files_fmt in ("parquet", "arrow"):
            if _files_with(folder, "." + files_fmt):
                return list_shards(folder, files_fmt, split)
        return _list_stream(folder, split, config_name)
    if fmt == "stream":
        return _list_stream(input_, split, config_name)
    if fmt == "disk":
        files = _disk_files(input_)
    else:
        files = [(p, split_of(p)) for p in _files_with(input_, "." + fmt)]
    available = sorted({s for _, s in files if s is not None})
    if split is not None:
        files = [(p, s) for p, s in files if s == split]
        if not files:
            raise ConfigError(f"split: no {split!r} split in {input_!r}; available splits: {available or ['(none)']}")
    if not files:
        raise ConfigError(f"input: no {fmt} data files in {input_!r}")
    shards: list[Shard] = []
    features = None
    for path, file_split in files:
        try:
            if fmt == "parquet":
                meta = pq.read_metadata(path) if _is_local(path) else pq.ParquetFile(FileSystems.open(path)).metadata
                features = features if features is not None else _features_of(meta.schema.to_arrow_schema())
                shards += [
                    Shard("parquet", path, file_split, rg, name=_relative(path, input_))
                    for rg in range(meta.num_row_groups)
                ]
                continue
            features = features if features is not None else _features_of(_arrow_schema(path))
            shards.append(Shard("arrow", path, file_split, name=_relative(path, input_)))
        except (OSError, pa.ArrowException):
            # A corrupt file is one shard that fails on its worker (a failure row), not a failed job.
            shards.append(Shard(fmt, path, file_split, name=_relative(path, input_)))
    if features is None:
        raise ConfigError(f"input: none of the {len(files)} {fmt} files of {input_!r} can be read")
    return Layout(fmt, shards, features, sorted({s.split for s in shards}, key=str))


def _list_stream(path: str, split: str | None, config_name: str | None) -> Layout:
    try:
        loaded = _stream(path, config_name, split)
    except Exception as exc:  # noqa: BLE001 - any loader error is a config problem here
        raise ConfigError(
            f"input: datasets.load_dataset({path!r}, streaming=True) failed: {type(exc).__name__}: {exc}"[:600]
        ) from None
    streams = {split: loaded} if split is not None else dict(loaded)
    shards, features = [], None
    for name, stream in streams.items():
        features = features if features is not None else stream.features
        shards += [Shard("stream", path, name, i, stream.n_shards, config_name) for i in range(stream.n_shards)]
    return Layout("stream", shards, features, list(streams))


# --- reading ---------------------------------------------------------------------------------------
def read_shard(shard: Shard, columns: list[str]) -> Iterator[tuple[int, dict]]:
    """(row index within the shard, row with the wanted top-level columns it has) for one shard.

    A column this shard lacks is simply absent from its rows (the caller names it in a failure).
    """
    if shard.format == "stream":
        stream = _stream(shard.path, shard.config_name, shard.split).decode(False)
        stream = stream.shard(num_shards=shard.parts, index=shard.part)
        for i, row in enumerate(stream):
            yield i, {c: row[c] for c in columns if c in row}
        return
    with open(shard.path, "rb") if _is_local(shard.path) else FileSystems.open(shard.path) as f:
        if shard.format == "parquet":
            pf = pq.ParquetFile(f)
            present = [c for c in columns if c in pf.schema_arrow.names]
            groups = [shard.part] if shard.part >= 0 else list(range(pf.metadata.num_row_groups))
            batches = pf.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, columns=present)
        else:
            reader = pa.ipc.open_stream(f)
            present = [c for c in columns if c in reader.schema.names]
            batches = (b.select(present) for b in reader)
        i = 0
        for batch in batches:
            for row in batch.to_pylist():
                yield i, row
                i += 1


def column_value(row: dict, column: str) -> Any:
    """A (possibly dotted) column's value: "objects.bbox" reads field bbox of struct column objects,
    through a list of structs too. KeyError names the missing part."""
    value: Any = row
    for part in column.split("."):
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            value = [v[part] for v in value]
        elif isinstance(value, dict):
            if part not in value:
                raise KeyError(part)
            value = value[part]
        else:
            raise KeyError(part)
    return value

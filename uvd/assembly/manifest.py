"""Mixture manifests (manifests/*.yaml): which sources, with what options and weights.

A manifest is checked completely on load, before any work: unknown keys, unknown stages, weights
that are not positive, missing or unmatched inputs all raise ConfigError naming the field and the
fix. `check_stage_options` goes one step further and validates every entry's `options` against its
stage module's `Config` (docs/architecture.md), which imports the stage modules.

    name: sample
    weights_by: sentences        # weights are shares of sentences, or of tokens
    total: null                  # mixture size in that unit; null = largest with no repeats
    seed: 0                      # mixing, shuffle and split hashes
    validation_fraction: 0.1     # of groups, for sentences whose source fixes no split
    tokenizer: {checkpoint: default, batch_size: 32}
    shards: {target_shard_mb: 256, row_group_mb: 4}
    quality: {near_duplicates: {policy: report}, ...}   # uvd/quality/config.py; all off by default
    sources:
      laion:                     # entry name (sentences keep their own `source` column)
        stage: laion             # a source stage of uvd/registry.py STAGES
        input: ../uvd/sample/laion/metadata.parquet   # relative to this file's folder
        weight: 88.5             # relative; normalised over all entries
        replacement: false       # may this entry be repeated to reach its weight?
        options: {...}           # the stage's Config fields
"""

from __future__ import annotations

import glob
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from uvd import hashing
from uvd.config import ConfigError, from_dict, require
from uvd.quality import config as quality_config
from uvd.registry import SOURCE_STAGES, STAGES

WEIGHT_UNITS = ("sentences", "tokens")
DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "sample.yaml"


@dataclass
class SourceEntry:
    stage: str
    input: str
    weight: float
    replacement: bool = False
    options: dict = field(default_factory=dict)

    def validate(self) -> None:
        require(
            self.stage in SOURCE_STAGES,
            "stage",
            f"unknown source stage {self.stage!r}; choose one of: {', '.join(SOURCE_STAGES)}",
        )
        require(bool(self.input), "input", "is empty; give a path or glob of this source's input")
        require(
            math_ok(self.weight) and self.weight > 0,
            "weight",
            f"must be a positive number, got {self.weight!r}; weights are relative shares "
            "(drop the entry to leave a source out)",
        )


@dataclass
class TokenizerSpec:
    checkpoint: str = "default"
    batch_size: int = 32
    device: str = "auto"  # auto: CUDA where the worker has it
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    accelerator: str | None = None  # resource hint for the tokenize step only (Dataflow GPU workers)
    compile: bool = False  # torch.compile the encoder (GPU: ~3x measured on an H200)

    def validate(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(
            self.precision in ("auto", "fp32", "bf16"),
            "precision",
            f"must be auto, fp32 or bf16, got {self.precision!r}",
        )
        from uvd.tokenize.load import CheckpointError, check_checkpoint, is_hub_id

        spec = self.checkpoint
        looks_local = spec.startswith((".", "/", "~")) or os.sep in spec or Path(spec).expanduser().exists()
        if spec != "default" and looks_local and not is_hub_id(spec):  # a local folder: found and
            try:  # readable before any work
                check_checkpoint(self.checkpoint)
            except CheckpointError as exc:
                raise ConfigError(
                    f"checkpoint: {exc}; give a folder with config.json + weights, a cached hub id, "
                    "or `default` (the shipped small VQGAN)"
                ) from None

    def handler_options(self) -> dict:
        return {
            "device": self.device,
            "precision": self.precision,
            "accelerator": self.accelerator,
            "compile": self.compile,
        }


@dataclass
class ShardSpec:
    target_shard_mb: float = 256.0
    row_group_mb: float = 4.0

    def validate(self) -> None:
        require(self.target_shard_mb > 0, "target_shard_mb", f"must be > 0, got {self.target_shard_mb}")
        require(
            0 < self.row_group_mb <= self.target_shard_mb,
            "row_group_mb",
            f"must be in (0, target_shard_mb], got {self.row_group_mb}",
        )


@dataclass
class Manifest:
    name: str
    sources: dict
    description: str = ""
    weights_by: str = "sentences"
    total: float | None = None
    seed: int = 0
    validation_fraction: float = 0.01
    tokenizer: dict = field(default_factory=dict)
    shards: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)  # uvd/quality/config.py: near-duplicates, decontamination...
    viewer: dict | bool | None = None  # also write <output>/viewer (uvd view); a dict of its options, or true
    # filled by load():
    text: str = ""
    path: str = ""

    def validate(self) -> None:
        require(
            self.weights_by in WEIGHT_UNITS,
            "weights_by",
            f"must be one of {', '.join(WEIGHT_UNITS)}, got {self.weights_by!r}",
        )
        require(self.total is None or self.total > 0, "total", f"must be > 0 or null, got {self.total!r}")
        require(
            0 <= self.validation_fraction < 1,
            "validation_fraction",
            f"must be in [0, 1), got {self.validation_fraction}",
        )
        require(
            isinstance(self.sources, dict) and len(self.sources) > 0,
            "sources",
            "needs at least one entry: `sources: {name: {stage: ..., input: ..., weight: ...}}`",
        )

    # typed views, built once by load()
    entries: dict[str, SourceEntry] = field(default_factory=dict)
    tokenizer_spec: TokenizerSpec = field(default_factory=TokenizerSpec)
    shard_spec: ShardSpec = field(default_factory=ShardSpec)
    quality_spec: quality_config.Quality = field(default_factory=quality_config.Quality)

    @property
    def hash(self) -> str:
        return hashing.text_hash(self.text) or ""

    def stage_config(self, name: str) -> dict[str, Any]:
        """What the stage's `source_transform(config)` gets: its options plus the resolved input."""
        entry = self.entries[name]
        return {**entry.options, "input": entry.input}


def math_ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and x not in (float("inf"),)


def _has_scheme(path: str) -> bool:
    return "://" in path


def resolve_input(path: str, base: Path) -> str:
    """Relative local inputs are relative to the manifest's folder; URLs (gs://...) pass unchanged."""
    if _has_scheme(path):
        return path
    # normalised, so one input spelled two ways is one input (work units and remix snapshots key on it)
    return os.path.normpath(path if os.path.isabs(path) else str(base / path))


def parse(data: dict, text: str = "", base: Path | None = None, check_inputs: bool = True) -> Manifest:
    """Validate a manifest dict; `base` resolves relative inputs (the manifest's folder)."""
    if not isinstance(data, dict):
        raise ConfigError("manifest: expected a YAML mapping at the top level (name, sources, ...)")
    reserved = {"text", "path", "entries", "tokenizer_spec", "shard_spec", "quality_spec"} & set(data)
    if reserved:
        raise ConfigError(f"{sorted(reserved)[0]}: reserved name, not a manifest option")
    manifest = from_dict(Manifest, data)
    base = base or Path.cwd()
    for name, raw in manifest.sources.items():
        where = f"sources.{name}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with stage, input and weight")
        entry = from_dict(SourceEntry, raw, where=where)
        entry.input = resolve_input(entry.input, base)
        if check_inputs and not _has_scheme(entry.input) and not glob.glob(entry.input):
            raise ConfigError(
                f"{where}.input: nothing matches {raw['input']!r} (resolved to {entry.input}); fix the path "
                "(relative paths are relative to the manifest's folder) or build the input first"
            )
        manifest.entries[name] = entry
    manifest.tokenizer_spec = from_dict(TokenizerSpec, manifest.tokenizer, where="tokenizer")
    manifest.shard_spec = from_dict(ShardSpec, manifest.shards, where="shards")
    manifest.quality_spec = quality_config.parse(manifest.quality, base, check_inputs)
    manifest.text = text
    return manifest


def load(path: str | os.PathLike, check_inputs: bool = True) -> Manifest:
    """Read and validate a manifest file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--manifest: no such file {str(path)!r}; see manifests/ for examples")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    manifest = parse(data, text=text, base=path.resolve().parent, check_inputs=check_inputs)
    manifest.path = str(path)
    return manifest


def stage_module(stage: str):
    """Import a source stage's module (only when a manifest uses it: heavy imports stay lazy)."""
    module_name = STAGES[stage][0]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"stage {stage!r}: cannot import {module_name} ({exc})") from None


def check_stage_options(manifest: Manifest) -> dict[str, Any]:
    """Validate each entry's options with its stage's Config; returns name -> stage module."""
    modules = {}
    for name, entry in manifest.entries.items():
        module = stage_module(entry.stage)
        if not hasattr(module, "source_transform"):
            raise ConfigError(
                f"sources.{name}.stage: {module.__name__} has no source_transform(config); "
                "it cannot be part of a mixture yet"
            )
        config_cls = getattr(module, "Config", None)
        if config_cls is not None:
            try:
                from_dict(config_cls, manifest.stage_config(name), where=f"sources.{name}.options")
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a validate() that reads the input on a filesystem not installed
                raise ConfigError(
                    f"sources.{name}.options: the {entry.stage} stage could not check its options "
                    f"({type(exc).__name__}: {str(exc)[:300]})"
                ) from None
        modules[name] = module
    return modules

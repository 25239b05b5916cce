"""One runner for every source stage's CLI: flags from its Config, checked, then the pipeline and its tables.

    argv --flags from Config--> Config (checked: exit 2 on a mistake) --> log --> Beam pipeline
         --> SourceOutputs --> images (deduplicated) / sentences / failures under --output

A stage module declares a `SourceStage` and its `run(argv)` is `run_source_stage(STAGE_SPEC, argv)`;
what differs between stages (a file flag, a one-item debug path without Beam) is a hook, not a copy.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from uvd.config import ConfigError, add_config_flags, config_from_flags, from_dict
from uvd.core.files import check_input_exists
from uvd.core.options import setup_logging, split_args
from uvd.core.summary import stage_summary
from uvd.core.tables import write_source_tables

log = logging.getLogger("uvd")


@dataclass(frozen=True)
class SourceStage:
    """What `uvd <name>` needs to know about a source stage."""

    name: str  # the CLI name and the config's `where`
    config: type  # the stage's Config dataclass
    transform: Callable[[Any], beam.PTransform]  # Config -> PTransform(PBegin) -> SourceOutputs
    doc: str = ""  # the module docstring (its first line is the description)
    # Extra flags a stage adds itself (a debug path, a file that fills a structured field).
    add_flags: Callable[[argparse.ArgumentParser], None] | None = None
    # args -> extra Config values (e.g. adapters read from --config FILE).
    extra_values: Callable[[argparse.Namespace], dict] | None = None
    # (args, config) -> exit code, for paths that bypass Beam (one URL, one image); None -> the pipeline.
    alone: Callable[[argparse.Namespace, Any], int | None] | None = None
    # The Config field that names a local file/folder/glob, checked to exist before any work (None: the
    # input may be something else, e.g. a hub id).
    input_field: str | None = "input"
    # A deeper look at an existing input before any work (e.g. LAION: Parquet with a URL column).
    check_inputs: Callable[[Any], None] | None = None
    # Beam flags the stage runs best with locally, used unless the user names a runner or its mode.
    local_flags: tuple[str, ...] = ()

    def check_input(self, cfg: Any) -> None:
        value = getattr(cfg, self.input_field, None) if self.input_field else None
        if isinstance(value, str):
            check_input_exists(value, self.input_field or "input")
        if self.check_inputs is not None:
            self.check_inputs(cfg)

    def run(self, argv: list[str] | None = None) -> int:
        """`uvd <name> --output OUT [flags]`: the stage alone (see run_source_stage)."""
        return run_source_stage(self, argv)

    def source_transform(self, options: dict) -> beam.PTransform:
        """The stage as a source of `uvd dataset`: the manifest entry's options checked before any work."""
        where = f"sources.{self.name}.options"
        try:
            cfg = from_dict(self.config, options, where=where)  # field errors first, then the input
            self.check_input(cfg)
        except ConfigError as exc:
            raise ConfigError(str(exc) if str(exc).startswith(where) else f"{where}.{exc}") from None
        return self.transform(cfg)


def stage_parser(stage: SourceStage) -> argparse.ArgumentParser:
    """Flags = the Config's fields + --output + the stage's own extras."""
    description = (stage.doc or "").strip().split("\n")[0]
    parser = argparse.ArgumentParser(prog=f"uvd {stage.name}", description=description, allow_abbrev=False)
    parser.add_argument("--output", required=True, help="folder for the images/, sentences/ and failures/ tables")
    add_config_flags(parser, stage.config)
    if stage.add_flags is not None:
        stage.add_flags(parser)
    return parser


def parse_stage_args(stage: SourceStage, argv: list[str] | None) -> tuple[Any, argparse.Namespace, PipelineOptions]:
    """argv -> (checked Config, the stage's own args, Beam options for the rest)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if stage.local_flags and not any(
        a.startswith(("--runner", "--direct_running_mode", "--direct_num_workers")) for a in argv
    ):
        argv += stage.local_flags
    args, options = split_args(stage_parser(stage), argv)
    extra = stage.extra_values(args) if stage.extra_values is not None else {}
    cfg = config_from_flags(stage.config, args, where=stage.name, **extra)
    try:
        stage.check_input(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{stage.name}.{exc}") from None
    return cfg, args, options


def run_source_stage(stage: SourceStage, argv: list[str] | None = None) -> int:
    """parse -> validate -> log -> pipeline -> write tables; a ConfigError propagates to the CLI (exit 2)."""
    cfg, args, options = parse_stage_args(stage, argv)
    setup_logging()
    if stage.alone is not None:
        code = stage.alone(args, cfg)
        if code is not None:
            return code
    log.info("%s config: %s", stage.name, json.dumps(asdict(cfg), default=str, sort_keys=True))
    p = beam.Pipeline(options=options)
    write_source_tables(p | stage.name.title() >> stage.transform(cfg), args.output)
    result = p.run()
    result.wait_until_finish()
    print(stage_summary(result, stage.name, args.output), file=sys.stderr)
    return 0

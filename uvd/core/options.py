"""Pipeline options for every stage: a stage's own flags, the rest to Beam, the local default runner."""

from __future__ import annotations

import argparse
import difflib
import logging
import sys

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, _BeamArgumentParser

from uvd.config import ConfigError
from uvd.core.runners import prepare_options

# Local default runner, measured by benchmarks/bench_runner.py on the LAION sample (2 cores):
# in_memory 14.8 s, multi_threading 15.5 s, multi_processing 31.7 s (process start-up and pickling
# dominate small jobs). multi_threading keeps in_memory's speed and overlaps I/O-bound stages.
DEFAULT_LOCAL_FLAGS = {
    "runner": "DirectRunner",
    "direct_running_mode": "multi_threading",
    "direct_num_workers": 2,
}


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """PipelineOptions from the flags a stage did not consume, with the local default runner.

    Any runner flag (--runner, --direct_num_workers, --project, --temp_location...) passes through
    untouched; only when no --runner is given do we choose the local one.
    """
    options = PipelineOptions(beam_args)
    std = options.view_as(StandardOptions)
    if std.runner is None:
        std.runner = DEFAULT_LOCAL_FLAGS["runner"]
        direct = options.view_as(DirectOptions)
        given = " ".join(beam_args)
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = DEFAULT_LOCAL_FLAGS["direct_running_mode"]
        if "--direct_num_workers" not in given:
            direct.direct_num_workers = DEFAULT_LOCAL_FLAGS["direct_num_workers"]
    return prepare_options(options)


def split_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, PipelineOptions]:
    """Parse a stage's own flags; the rest become Beam pipeline options.

    A flag neither the stage nor Beam knows is a ConfigError naming the closest valid flag (Beam alone
    would log "discarding unparseable args" and run with the default).
    """
    known, beam_args = parser.parse_known_args(argv)
    check_beam_flags(beam_args, _parser_flags(parser))
    return known, pipeline_options(beam_args)


def _parser_flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def beam_flags() -> list[str]:
    """Every `--flag` some PipelineOptions class defines (the runners' options included)."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    subset: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        subset.setdefault(str(cls), cls)
    for cls in subset.values():
        cls._add_argparse_args(parser)  # the same registry Beam's own parsing uses
    return _parser_flags(parser)


def check_beam_flags(beam_args: list[str], stage_flags: list[str]) -> None:
    """Reject `--flags` in `beam_args` that no Beam options class knows."""
    known = set(beam_flags())
    for arg in beam_args:
        if not arg.startswith("--") or arg == "--":
            continue
        name = arg.split("=", 1)[0]
        if name in known:
            continue
        close = difflib.get_close_matches(name, stage_flags + sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see --help for the stage's flags"
        raise ConfigError(f"{name[2:]}: unknown flag {name} (neither the stage nor Beam knows it); {hint}")


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)

"""Pipeline options for every stage: a stage's own flags, the rest to Beam, the local default runner."""

from __future__ import annotations

import argparse
import logging
import sys

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

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
    """Parse a stage's own flags; everything else becomes Beam pipeline options."""
    known, beam_args = parser.parse_known_args(argv)
    return known, pipeline_options(beam_args)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)



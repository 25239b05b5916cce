"""`uvd remix --manifest NEW.yaml --from OUT_OR_CACHE --output NEW_OUT`: re-mix without re-ingesting.

New weights, splits, seed or shard sizes over the same entries (same stage, input files and
options): the entries' sentences, failures and image ids come from the snapshots a finished
`uvd dataset` left in its cache, tokens from the tokens cache. No source stage runs (no download,
decode or render) and no image is encoded; the output is byte for byte what `uvd dataset` would
write for NEW.yaml over the same inputs. An entry the cache does not have is a ConfigError.
"""

from __future__ import annotations

import argparse
import sys

from uvd.assembly import cache
from uvd.assembly import manifest as manifest_lib
from uvd.assembly.dataset import build_dataset, print_summary
from uvd.config import ConfigError
from uvd.core.options import setup_logging, split_args


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd remix", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the new mixture manifest YAML")
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        help="a dataset folder built by uvd dataset (its cache/) or a --cache folder",
    )
    parser.add_argument("--output", required=True, help="folder for the new shards, card, failures/ and stats/")
    args, options = split_args(parser, argv)
    setup_logging()
    try:
        m = manifest_lib.load(args.manifest)
        modules = manifest_lib.check_stage_options(m)
        summary = build_dataset(m, args.output, options, modules, cache_dir=cache.resolve_from(args.source), remix=True)
    except ConfigError as exc:
        print(f"uvd remix: {exc}", file=sys.stderr)
        return 2
    print_summary("uvd remix", args.output, summary)
    return 0

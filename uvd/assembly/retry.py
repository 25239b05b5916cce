"""`uvd retry --manifest M --output OUT`: run again only the work units whose failures may pass now.

A failure is retriable when its reason says the input was not at fault: a timeout, a connection
error, HTTP 429 or 5xx (RETRIABLE). Every work unit in the build's cache with such a failure row
loses its completion record; then the build resumes (`uvd dataset`): those units run again, every
other unit is reused, and the shards, failures table, stats and card are rewritten from the merged
results. Failures that are the input's fault (404, truncated files, bad annotations) stay as they are.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys

from apache_beam.io.filesystems import FileSystems

from uvd.assembly import cache
from uvd.assembly import manifest as manifest_lib
from uvd.assembly.dataset import build_dataset, print_summary
from uvd.config import ConfigError
from uvd.core.options import setup_logging, split_args
from uvd.core.outputs import FAILURES

RETRIABLE = re.compile(r"^(timeout|connection_error|http_429|http_5\d\d|http_5xx)$|timeout")


def retriable(row: dict) -> bool:
    return row.get("status") == "failed" and bool(RETRIABLE.search(row.get("reason") or ""))


def invalidate_retriable(cache_dir: str) -> tuple[int, int]:
    """Drop the completion record of every unit with a retriable failure; returns (units seen, dropped)."""
    done = FileSystems.match([FileSystems.join(cache_dir, "units", "**.done.json")])[0].metadata_list
    dropped = 0
    for meta in done:
        rows_path = meta.path[: -len(".done.json")] + ".pkl"
        try:
            with FileSystems.open(rows_path) as f:
                rows = pickle.loads(f.read())
        except Exception:  # noqa: BLE001 - unreadable: recompute it too
            rows = [(FAILURES, {"status": "failed", "reason": "timeout"})]
        if any(tag == FAILURES and retriable(row) for tag, row in rows):
            FileSystems.delete([meta.path])
            dropped += 1
    return len(done), dropped


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd retry", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the manifest the build used")
    parser.add_argument("--output", required=True, help="the dataset folder to retry into")
    parser.add_argument("--cache", default=None, help="the build's cache (default: <output>/cache)")
    args, options = split_args(parser, argv)
    setup_logging()
    try:
        m = manifest_lib.load(args.manifest)
        modules = manifest_lib.check_stage_options(m)
    except ConfigError as exc:
        print(f"uvd retry: {exc}", file=sys.stderr)
        return 2
    seen, dropped = invalidate_retriable(cache.cache_for(args.output, args.cache))
    print(f"[uvd retry] {dropped} of {seen} work units had retriable failures; running them again")
    summary = build_dataset(m, args.output, options, modules, cache_dir=args.cache)
    print_summary("uvd retry", args.output, summary)
    return 0

"""`uvd <stage> [flags]`: one subcommand per stage; each stage module has `run(argv)`.

Stage modules are imported only when chosen, so `uvd --help` is fast and a stage's heavy imports
(Beam, OpenCV, renderers, torch) load only for that stage. Flags a stage does not know are passed
to Beam as pipeline options (--runner, --direct_num_workers, --project...).
"""

from __future__ import annotations

import importlib
import sys

from uvd.config import ConfigError
from uvd.registry import STAGES


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: uvd <stage> [flags]   (uvd <stage> --help for a stage's flags)", "", "stages:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in STAGES.items()]
    lines += ["", "Unknown flags go to Apache Beam, e.g. --runner=DataflowRunner --direct_num_workers=2."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in STAGES:
        print(f"uvd: unknown stage {name!r}; choose one of: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(STAGES[name][0])
    except ImportError as exc:
        if getattr(exc, "extra", None) is None:  # a stage's optional extra is missing: say how to install it
            raise
        print(f"uvd {name}: {exc}", file=sys.stderr)
        return 2
    try:
        result = module.run(rest)
    except ConfigError as exc:  # a mistake in flags or config: the field and the fix, no traceback
        print(f"uvd {name}: error: {exc}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Adapter folder listings: every file is an input, and a stem names one file only.

Paired folders match files by stem (relative path without extension). Two files of one stem
(`a.jpg` beside `a.png`) would silently keep one of them, so both become failure items
(`ambiguous_stem`); a file of another type in the folder becomes a skipped item
(`unsupported_format`). Ids keep the stem: the pair's two sides agree on it.
"""

from __future__ import annotations

from uvd.core import files


def by_stem(
    folder: str, exts: tuple[str, ...], adapter: str, dataset: str, where: str = ""
) -> tuple[dict[str, str], list[dict]]:
    """({stem: path} of the usable files under `folder`, failure items for the others)."""
    wanted = tuple(e.lower() for e in exts)
    stems: dict[str, list[str]] = {}
    failures = []
    prefix = f"{dataset}/{where}/" if where else f"{dataset}/"
    for path in files.list_files(folder):
        if not path.lower().endswith(wanted):
            failures.append(
                {
                    "adapter": adapter,
                    "dataset": dataset,
                    "status": "skipped",
                    "record_id": prefix + files.relative(path, folder),
                    "failure": "unsupported_format",
                    "detail": f"{path}: not one of {', '.join(exts)}",
                }
            )
            continue
        stems.setdefault(files.stem(path, folder), []).append(path)
    for stem, paths in sorted(stems.items()):
        if len(paths) > 1:
            failures += [
                {
                    "adapter": adapter,
                    "dataset": dataset,
                    "record_id": prefix + files.relative(p, folder),
                    "failure": "ambiguous_stem",
                    "detail": f"{len(paths)} files are {stem!r}: {paths}"[:300],
                }
                for p in paths
            ]
    return {s: p[0] for s, p in stems.items() if len(p) == 1}, failures

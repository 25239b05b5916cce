"""Benchmark resume and remix against a full build of the embedded sample (one run, ratios).

1. Resume: a full `uvd dataset` takes T; a second build is SIGKILLed once 80% of its work units and
   80% of its tokens are recorded in the cache (~80% of the work), and rerun into the same folder.
   Figure: rerun time / T (lower is better;
   1.0 would mean nothing was reused).
2. Remix: `uvd remix` of the sample with one weight changed, from the first build's cache, versus
   a full `uvd dataset` of that changed manifest (fresh folder, fresh cache). Figure: remix / full.
Every build's published files are compared byte for byte with its uninterrupted counterpart.

    .venv/bin/python benchmarks/bench_resume.py [--manifest manifests/sample.yaml]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = ["-m", "uvd.cli"]
PUBLISHED = ("*.parquet", "README.md", "_COMPLETE.json", "failures/*", "stats/*")


def done_units(out: Path) -> int:
    return len(glob.glob(str(out / "cache" / "units" / "**" / "*.done.json"), recursive=True))


def token_rows(out: Path) -> int:
    from uvd.assembly.cache import FLUSH_ROWS  # files of FLUSH_ROWS rows (the last of a bundle may hold fewer)

    return FLUSH_ROWS * len(glob.glob(str(out / "cache" / "tokens" / "*" / "*.parquet")))


def uvd(*args: str, kill_when=None) -> tuple[float, str]:
    """Run the CLI; with `kill_when`, SIGKILL it as soon as that holds (80% of the work units done)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, *CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    if kill_when is not None:
        while proc.poll() is None and not kill_when():
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        return time.monotonic() - start, ""
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"uvd {' '.join(args)} failed ({proc.returncode})")
    return time.monotonic() - start, out


def published(folder: Path) -> dict[str, bytes]:
    return {
        os.path.relpath(f, folder): open(f, "rb").read() for p in PUBLISHED for f in sorted(glob.glob(str(folder / p)))
    }


def compare(a: Path, b: Path) -> str:
    """'True', or which published files differ (kept for a look: the bench then leaves the folders)."""
    pa, pb = published(a), published(b)
    differ = sorted(k for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k))
    return "True" if not differ else f"False ({', '.join(differ)})"


def work_line(stdout: str) -> str:
    return next((line for line in stdout.splitlines() if "work units" in line), "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", default=str(ROOT / "manifests" / "sample.yaml"))
    args = parser.parse_args()
    manifest = Path(args.manifest).resolve()
    with tempfile.TemporaryDirectory(prefix="uvd-bench-resume-") as tmp:
        tmp = Path(tmp)
        full_s, out = uvd("dataset", "--manifest", str(manifest), "--output", str(tmp / "full"))
        print(f"full build            {full_s:6.1f} s   {work_line(out)}")
        units = int(out.split(" computed;")[0].rsplit(" ", 1)[-1].replace(",", ""))
        tokens = int(out.split(" encoded")[0].rsplit(" ", 1)[-1].replace(",", ""))
        killed_s, _ = uvd(
            "dataset",
            "--manifest",
            str(manifest),
            "--output",
            str(tmp / "killed"),
            kill_when=lambda: done_units(tmp / "killed") >= 0.8 * units and token_rows(tmp / "killed") >= 0.8 * tokens,
        )
        rerun_s, out = uvd("dataset", "--manifest", str(manifest), "--output", str(tmp / "killed"))
        same = compare(tmp / "killed", tmp / "full")
        print(f"killed at {killed_s:5.1f} s, rerun {rerun_s:6.1f} s   {work_line(out)}   same bytes: {same}")
        text = manifest.read_text()
        base = str(manifest.parent)
        changed = tmp / "changed.yaml"  # inputs made absolute so the copy resolves them like the original
        changed.write_text(text.replace("input: ../", f"input: {base}/../").replace("weight: 20", "weight: 10", 1))
        remix_s, out = uvd(
            "remix", "--manifest", str(changed), "--from", str(tmp / "full"), "--output", str(tmp / "remix")
        )
        print(f"remix                 {remix_s:6.1f} s   {work_line(out)}")
        full2_s, _ = uvd("dataset", "--manifest", str(changed), "--output", str(tmp / "full2"))
        same_remix = compare(tmp / "remix", tmp / "full2")
        if same_remix != "True" or same != "True":
            keep = Path(tempfile.mkdtemp(prefix="uvd-bench-resume-kept-"))
            for name in ("full", "killed", "remix", "full2"):
                shutil.copytree(tmp / name, keep / name, ignore=shutil.ignore_patterns("cache"))
            print(f"differing builds kept in {keep}")
        print(f"full build of it      {full2_s:6.1f} s   same bytes as the remix: {same_remix}")
        print(
            f"RESULT rerun after a kill at 80% / full build: {rerun_s / full_s:.2f}; "
            f"remix / full build: {remix_s / full2_s:.2f}"
        )


if __name__ == "__main__":
    main()

"""Issue 17: a real SIGKILL of `uvd dataset` during sources, tokenization and shard writing, then a
rerun: the same bytes as an uninterrupted build, with the completed units and tokens reused.

A small manifest over the embedded sample (LAION rows, ImageNet classes, videos at one stride)
keeps each build to ~15-30 s on 2 cores; the module takes ~2-3 min (marked slow).
"""

from __future__ import annotations

import filecmp
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uvd import schema

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "uvd" / "sample"
MANIFEST = f"""
name: resume-small
seed: 0
validation_fraction: 0.2
tokenizer: {{checkpoint: default, batch_size: 8}}
sources:
  laion: {{stage: laion, input: {SAMPLE}/laion/laion_sample.parquet, weight: 4, options: {{download_threads: 2}}}}
  imagenet: {{stage: imagenet, input: {SAMPLE}/imagenet, weight: 1}}
  video: {{stage: video, input: {SAMPLE}/videos, weight: 1, options: {{strides: [10]}}}}
"""
CLI = ["-m", "uvd.cli"]  # exactly as `make dataset` runs it
PUBLISHED = ("*.parquet", "README.md", "failures/*.parquet", "stats/*.json", schema.COMPLETE_MARKER)


def _cmd(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, *CLI, "dataset", "--manifest", str(manifest), "--output", str(out), *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _build(manifest: Path, out: Path, *extra: str) -> str:
    done = subprocess.run(_cmd(manifest, out, *extra), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _work(stdout: str) -> dict[str, int]:
    m = re.search(
        r"work units: ([\d,]+) reused, ([\d,]+) computed; tokens: ([\d,]+) from the cache, ([\d,]+) encoded", stdout
    )
    assert m, stdout
    return dict(
        zip(("reused", "computed", "tokens_cached", "tokens_encoded"), (int(g.replace(",", "")) for g in m.groups()))
    )


def _published(out: Path) -> dict[str, bytes]:
    files = sorted({f for pattern in PUBLISHED for f in glob.glob(str(out / pattern))})
    return {os.path.relpath(f, out): open(f, "rb").read() for f in files}


def _kill_when(manifest: Path, out: Path, ready) -> float:
    """Start a build, SIGKILL it as soon as `ready(out)` holds; returns the seconds it ran."""
    start = time.monotonic()
    proc = subprocess.Popen(_cmd(manifest, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not ready(out):
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before the kill point"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return time.monotonic() - start


def _units_done(n: int):
    return lambda out: len(glob.glob(str(out / "cache" / "units" / "**" / "*.done.json"), recursive=True)) >= n


def _token_files(out: Path) -> bool:
    return bool(glob.glob(str(out / "cache" / "tokens" / "*" / "*.parquet")))


def _shard_step(out: Path) -> bool:
    return (out / "stats" / "shard_plan.json").exists() or bool(glob.glob(str(out / "*-of-*.parquet")))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    manifest = tmp / "small.yaml"
    manifest.write_text(MANIFEST)
    out = tmp / "reference"
    start = time.monotonic()
    work = _work(_build(manifest, out))
    return manifest, out, _published(out), work, time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize(
    "point,ready", [("sources", _units_done(3)), ("tokenize", _token_files), ("shards", _shard_step)]
)
def test_killed_build_reruns_to_the_same_bytes_reusing_finished_work(reference, tmp_path, point, ready):
    manifest, _, expected, full_work, _ = reference
    out = tmp_path / "out"
    _kill_when(manifest, out, ready)
    assert not (out / schema.COMPLETE_MARKER).exists()  # a killed build never looks finished
    work = _work(_build(manifest, out))
    assert _published(out) == expected
    assert not glob.glob(str(out / ".tmp-*")) and not glob.glob(str(out / "stats" / ".tmp-*"))
    assert work["reused"] + work["computed"] == full_work["computed"] and work["reused"] >= 3
    if point == "tokenize":
        assert work["tokens_cached"] >= 1
    if point == "shards":  # the shard plan needs every row: every source unit and token was done
        assert work["computed"] == 0 and work["tokens_encoded"] == 0


@pytest.mark.slow
def test_remix_of_a_new_weight_equals_a_full_build_and_ingests_nothing(reference, tmp_path):
    manifest, base, _, _, _ = reference
    new = tmp_path / "new.yaml"
    new.write_text(manifest.read_text().replace("weight: 4", "weight: 2").replace("seed: 0", "seed: 3"))
    remixed = tmp_path / "remixed"
    cmd = [sys.executable, *CLI, "remix", "--manifest", str(new), "--from", str(base), "--output", str(remixed)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    work = _work(done.stdout)
    assert work["reused"] == work["computed"] == work["tokens_encoded"] == 0 and work["tokens_cached"] > 0
    full = tmp_path / "full"
    _build(new, full)
    assert _published(remixed) == _published(full)
    assert not filecmp.cmp(str(remixed / "README.md"), str(base / "README.md"), shallow=False)


@pytest.mark.slow
def test_a_changed_input_file_invalidates_only_its_units(reference, tmp_path):
    manifest, base, _, full_work, _ = reference
    out = tmp_path / "out"
    shutil.copytree(base, out)  # the finished build with its cache
    touched = SAMPLE / "videos" / "coffee_zoom.mp4"
    st = touched.stat()
    try:
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "changed": same path, new mtime
        work = _work(_build(manifest, out))
    finally:
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert 1 <= work["computed"] <= 3  # that video's decode tasks only (one stride, few clips)
    assert work["reused"] == full_work["computed"] - work["computed"]

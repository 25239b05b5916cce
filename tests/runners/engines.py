"""What the runner tests compare and inspect: shard bytes, failure rows, Spark event logs, job server logs.

The clusters themselves are scripts/runners/cluster.sh (the same ones `make dataset RUNNER=...` starts);
these helpers only start builds against them and read back what the engines recorded.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "manifests" / "sample.yaml"
CLUSTER = REPO / "scripts" / "runners" / "cluster.sh"


def free_port() -> int:
    """A port nothing listens on now, with the one below it free too (job port - 1 = artifact port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port - 1))
            except OSError:
                continue
        return port


def cluster(env: dict[str, str], *args: str, timeout: int = 900) -> None:
    """scripts/runners/cluster.sh ARGS with the test's ports and state folder; raise with its log tail."""
    proc = subprocess.run(["bash", str(CLUSTER), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def build_command(output: Path, *beam_args: str) -> list[str]:
    # faulthandler: a crash of the SDK workers (they run in this process) leaves its Python stacks.
    return [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "uvd.cli",
        "dataset",
        "--manifest",
        str(SAMPLE),
        "--output",
        str(output),
        *beam_args,
    ]


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def build_sample(output: Path, *beam_args: str, timeout: int = 1200) -> float:
    """`uvd dataset` on the embedded sample in a subprocess; returns its wall time in seconds."""
    start = time.monotonic()
    proc = subprocess.run(
        build_command(output, *beam_args), env=build_env(), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    (output.parent / f"{output.name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"uvd dataset {' '.join(beam_args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return time.monotonic() - start


def shard_digests(output: Path) -> dict[str, str]:
    """Every shard file (the dataset itself, by split) -> its sha256."""
    files = sorted(glob.glob(str(output / "*.parquet")))
    return {os.path.basename(f): hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}


def failure_rows(output: Path) -> Counter:
    """The failure rows as a multiset: workers may split them across part files in any order."""
    rows: Counter = Counter()
    for f in sorted(glob.glob(str(output / "failures" / "*.parquet"))):
        for r in pq.read_table(f).to_pylist():
            rows[tuple(sorted(r.items()))] += 1
    return rows


def card_summary(output: Path) -> dict:
    return json.loads((output / "stats" / "dataset.json").read_text())


def reconciles(summary: dict) -> bool:
    """Each source stage's inputs all reached an outcome, and none ended with no output at all."""
    records = summary.get("records") or {}
    return bool(records) and all(
        v["inputs"] == sum(n for k, n in v.items() if k.startswith("records_")) and not v.get("records_no_output")
        for v in records.values()
    )


def overcounted(records: dict, reference: dict) -> set[str]:
    """Stages whose counters exceed the reference run's; asserts none has fewer (nothing lost)."""
    assert records.keys() == reference.keys()
    for stage, ref in reference.items():
        assert records[stage].keys() == ref.keys(), stage
        assert all(records[stage][name] >= n for name, n in ref.items()), (stage, records[stage], ref)
    return {stage for stage, ref in reference.items() if records[stage] != ref}


# --- Spark: which executors ran tasks, on which worker --------------------------------------------
def spark_event_logs(home: Path) -> list[Path]:
    return sorted((home / "spark" / "events").glob("app-*"), key=os.path.getmtime)


def spark_tasks(event_log: Path) -> dict:
    """From a Spark event log: executors added/removed and successful tasks per executor id."""
    added, removed, tasks = {}, {}, Counter()
    for line in event_log.read_text().splitlines():
        e = json.loads(line)
        kind = e["Event"]
        if kind == "SparkListenerExecutorAdded":
            added[e["Executor ID"]] = e["Executor Info"]["Host"]
        elif kind == "SparkListenerExecutorRemoved":
            removed[e["Executor ID"]] = e.get("Removed Reason", "")
        elif kind == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] == "Success":
            tasks[e["Task Info"]["Executor ID"]] += 1
    return {"added": added, "removed": removed, "tasks": tasks}


def executor_workers(home: Path, app_id: str) -> dict[str, str]:
    """Executor id -> the worker that launched it (each worker keeps one work folder per executor)."""
    out = {}
    for d in glob.glob(str(home / "spark" / "work" / "worker*" / app_id / "*")):
        out[os.path.basename(d)] = Path(d).parent.parent.name
    return out

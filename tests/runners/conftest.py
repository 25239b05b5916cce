"""Fixtures: one DirectRunner reference build per session; one Spark cluster and one Flink job server.

Each engine starts once, for the one test module that uses it (so they never run at the same time),
through scripts/runners/cluster.sh (fetching the job server jars with Maven the first time) on free
loopback ports, with its logs, pid files and event logs in a temp folder, and is stopped by the
fixture's teardown whatever the tests did.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runners import engines

# The wall time of each sample build, printed at the end of the session (the per-runner timings).
TIMINGS: dict[str, float] = {}


@dataclass
class Engine:
    home: Path  # UVD_RUNNERS_HOME of this engine: logs/, pids/, spark/events/, spark/work/
    endpoint: str  # the Beam job server, host:port
    env: dict[str, str]  # what cluster.sh was called with (ports, state folder)
    ui_port: int | None = None


def _engine_env(home: Path, **ports: int) -> dict[str, str]:
    env = dict(os.environ, UVD_RUNNERS_HOME=str(home), PY=sys.executable)
    env.update({k: str(v) for k, v in ports.items()})
    return env


@pytest.fixture(scope="session")
def direct_sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("direct") / "sample"
    TIMINGS["DirectRunner"] = engines.build_sample(out)
    return out


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    home = tmp_path_factory.mktemp("spark-cluster")
    ports = {
        "SPARK_PORT": engines.free_port(),
        "SPARK_UI_PORT": engines.free_port(),
        "SPARK_JOB_PORT": engines.free_port(),
    }
    env = _engine_env(home, SPARK_WORKERS=2, **ports)
    try:
        engines.cluster(env, "spark", "up")
        yield Engine(home, f"127.0.0.1:{ports['SPARK_JOB_PORT']}", env, ports["SPARK_UI_PORT"])
    finally:
        engines.cluster(env, "spark", "down", timeout=120)


@pytest.fixture(scope="module")
def flink(tmp_path_factory):
    home = tmp_path_factory.mktemp("flink-jobserver")
    port = engines.free_port()
    env = _engine_env(home, FLINK_JOB_PORT=port)
    try:
        engines.cluster(env, "flink", "up")
        yield Engine(home, f"127.0.0.1:{port}", env)
    finally:
        engines.cluster(env, "flink", "down", timeout=120)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_line(
            "sample build wall time: " + ", ".join(f"{name} {secs:.0f} s" for name, secs in TIMINGS.items())
        )

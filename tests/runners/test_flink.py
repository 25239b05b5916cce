"""The embedded sample on Apache Flink (Beam's Flink job server, a [local] Flink cluster in its JVM)."""

from __future__ import annotations

import re

import pytest

from tests.runners import engines
from tests.runners.conftest import TIMINGS

# Each test may carry a session fixture's cost (the reference build, an engine start, a build on it).
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def flink_sample(flink, tmp_path_factory):
    out = tmp_path_factory.mktemp("flink") / "sample"
    TIMINGS["FlinkRunner"] = engines.build_sample(
        out, "--runner=FlinkRunner", f"--job_endpoint={flink.endpoint}", "--parallelism=2"
    )
    return out


def test_flink_builds_the_same_dataset_as_the_direct_runner(flink_sample, direct_sample):
    assert engines.shard_digests(flink_sample) == engines.shard_digests(direct_sample) != {}
    assert engines.failure_rows(flink_sample) == engines.failure_rows(direct_sample)
    flink_card, direct_card = engines.card_summary(flink_sample), engines.card_summary(direct_sample)
    assert engines.reconciles(flink_card)
    assert flink_card["records"] == direct_card["records"]
    assert flink_card["totals"] == direct_card["totals"]


def test_the_job_ran_on_flink(flink, flink_sample):
    """The job server's log: Flink took the job, ran its tasks on 2 parallel subtasks and finished it."""
    log = (flink.home / "logs" / "flink-jobserver.log").read_text()
    jobs = re.findall(r"Job (BeamApp-\S+) \((\w+)\) switched from state RUNNING to FINISHED", log)
    assert len(jobs) == 1, jobs
    finished = re.findall(r"\((\d)/2\)#\d+ \S+ switched from RUNNING to FINISHED", log)
    assert {"1", "2"} <= set(finished)  # both subtasks of the parallel operators did work
    assert "switched from state RUNNING to FAILED" not in log

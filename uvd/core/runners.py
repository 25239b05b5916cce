"""Runner choice by pipeline options alone: check a runner's required flags before any work.

uvd never schedules work itself: Dataflow, Spark (via its job server) and the local runners get the
same pipeline; these checks only turn a missing flag into an error that names it and the fix, and
fill in how the package reaches the workers (--setup_file, unless a custom container is given).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from uvd.config import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_RUNNERS = {"DirectRunner", "FnApiRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"}
PORTABLE_RUNNERS = {"PortableRunner", "SparkRunner", "FlinkRunner"}
DATAFLOW_RUNNERS = {"DataflowRunner"}
ENGINE_RUNNERS = {"SparkRunner", "FlinkRunner"}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    return runner if isinstance(runner, str) else type(runner).__name__


def prepare_options(options: PipelineOptions) -> PipelineOptions:
    """Validate runner flags and ship the package to remote workers. Returns the same object."""
    runner = _runner_name(options)
    if runner in LOCAL_RUNNERS or runner.endswith("DirectRunner"):
        return options
    setup = options.view_as(SetupOptions)
    container = options.view_as(WorkerOptions).sdk_container_image
    if runner in DATAFLOW_RUNNERS:
        gcp = options.view_as(GoogleCloudOptions)
        if not gcp.project:
            raise ConfigError(
                "project: DataflowRunner needs a GCP project; add --project=MY_PROJECT "
                "(make dataset PROJECT=MY_PROJECT)"
            )
        if not gcp.region:
            raise ConfigError(
                "region: DataflowRunner needs a region; add --region=us-central1 (make dataset REGION=us-central1)"
            )
        temp = gcp.temp_location or gcp.staging_location
        if not temp or not temp.startswith("gs://"):
            raise ConfigError(
                "temp_location: DataflowRunner needs a gs:// temp folder; add "
                "--temp_location=gs://BUCKET/tmp (make dataset TEMP=gs://BUCKET/tmp)"
            )
    elif runner in PORTABLE_RUNNERS:
        portable = options.view_as(PortableOptions)
        if runner == "PortableRunner" and not portable.job_endpoint:
            raise ConfigError(
                "job_endpoint: PortableRunner needs a job server; add --job_endpoint=HOST:8099 "
                "(Spark/Flink job server) or --job_endpoint=embed for the in-process one"
            )
        flags = options.get_all_options()
        master = flags.get("spark_master_url") or ""
        if (
            runner == "SparkRunner"
            and not portable.job_endpoint
            and master.startswith("local")
            and not flags.get("spark_job_server_jar")
        ):
            # Beam's default local[4] starts a job server from a jar it downloads: say so up front.
            raise ConfigError(
                "spark_master_url: SparkRunner needs a cluster, --spark_master_url=spark://HOST:7077, "
                "or a running job server, --job_endpoint=HOST:8099 (or a local "
                "--spark_job_server_jar=PATH for local[N])"
            )
        if runner in ENGINE_RUNNERS and not portable.environment_type and not container and on_loopback(options):
            # A job server on this machine (scripts/runners/cluster.sh): its executors call the SDK
            # workers in this process. A remote cluster needs DOCKER or EXTERNAL workers, said explicitly.
            portable.environment_type = "LOOPBACK"
    if not container and not setup.setup_file and runner not in LOCAL_RUNNERS:
        # Remote workers install uvd from this checkout (built with `python -m build`).
        if not (portable_loopback(options)):
            setup.setup_file = str(REPO_ROOT / "pyproject.toml")
    return options


def portable_loopback(options: PipelineOptions) -> bool:
    """LOOPBACK runs the workers in this process: they already have uvd."""
    return (options.view_as(PortableOptions).environment_type or "").upper() == "LOOPBACK"


def on_loopback(options: PipelineOptions) -> bool:
    """True when the job server (or the Spark/Flink master it would start for) is on this machine."""
    flags = options.get_all_options()
    endpoint = options.view_as(PortableOptions).job_endpoint or ""
    for address in (endpoint, flags.get("spark_master_url") or "", flags.get("flink_master") or ""):
        if not address or address in {"embed", "[auto]", "[local]"} or address.startswith("local"):
            continue
        host = urlsplit(address if "://" in address else f"//{address}").hostname or ""
        if host not in LOOPBACK_HOSTS and not host.startswith("127."):
            return False
    return bool(endpoint) and endpoint != "embed"

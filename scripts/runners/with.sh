#!/usr/bin/env bash
# Run a command with a local engine up, and stop it afterwards even when the command fails:
#   scripts/runners/with.sh spark [spark://HOST:PORT] -- CMD...   no master: a local master + 2 workers
#   scripts/runners/with.sh flink -- CMD...                       Flink [local] inside the job server
# (what `make dataset RUNNER=SparkRunner|FlinkRunner` calls; the job server listens on env.sh's port).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
engine=${1:?usage: with.sh spark|flink [MASTER] -- CMD...}; shift
master=""
if [[ "${1:-}" != "--" ]]; then master=${1:-}; shift || true; fi
[[ "${1:-}" == "--" ]] && shift
case "$engine" in
  spark) if [[ -n "$master" ]]; then what=spark-jobserver; else what=spark; fi ;;
  flink) what=flink ;;
  *) echo "with.sh: engine must be spark or flink, not '$engine'" >&2; exit 2 ;;
esac
trap 'bash "$here/cluster.sh" "$what" down' EXIT
bash "$here/cluster.sh" "$what" up $master
"$@"

#!/usr/bin/env bash
# Local engines for Beam's portable runners, all on loopback:
#   scripts/runners/cluster.sh spark up|down   Spark standalone master + $SPARK_WORKERS workers + Beam's Spark job server
#   scripts/runners/cluster.sh flink up|down   Beam's Flink job server with its [local] Flink mini-cluster
#   scripts/runners/cluster.sh spark-jobserver up MASTER_URL   only the job server, in front of an existing Spark master
# Ports, logs (out/runners/logs), pid files (out/runners/pids), Spark work dirs and event logs are in
# env.sh; `down` stops whatever `up` started and is safe to repeat. `up` stops what it started when a
# step fails, so a failed start leaves nothing running.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
what=${1:?usage: cluster.sh spark|flink|spark-jobserver up|down}
action=${2:?usage: cluster.sh spark|flink|spark-jobserver up|down}

spark_jobserver_up() {
  local master=$1 lib sh
  lib=$("$here/jars.sh" spark)
  sh=$(spark_home)
  mkdir -p "$UVD_RUNNERS_HOME/spark/events" "$UVD_RUNNERS_HOME/spark/tmp"
  # The job server is the Spark driver: an event log per application (the test's proof of which
  # executors ran tasks), driver ports on loopback, and Beam's classpath staged to the executors.
  start_bg spark-jobserver java "${JAVA_MODULE_OPTS[@]}" -Xmx1g \
    -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -Djava.io.tmpdir="$UVD_RUNNERS_HOME/spark/tmp" \
    -Dspark.eventLog.enabled=true -Dspark.eventLog.dir="file://$UVD_RUNNERS_HOME/spark/events" \
    -Dspark.driver.host="$HOST" -Dspark.driver.bindAddress="$HOST" -Dspark.ui.enabled=false \
    -Dspark.executor.memory=1g -Dspark.local.dir="$UVD_RUNNERS_HOME/spark/tmp" \
    -cp "$lib/*:$sh/jars/*" org.apache.beam.runners.spark.SparkJobServerDriver \
    --spark-master-url="$master" --job-host="$HOST" --job-port="$SPARK_JOB_PORT" \
    --artifact-port=$((SPARK_JOB_PORT - 1)) --expansion-port=0
  wait_port "$SPARK_JOB_PORT" 120 "$UVD_RUNNERS_HOME/pids/spark-jobserver.pid"
  echo "[runners] Spark job server on $HOST:$SPARK_JOB_PORT for $master" >&2
}

spark_up() {
  local sh i alive
  sh=$(spark_home)
  export SPARK_HOME="$sh" SPARK_LOCAL_IP="$HOST" SPARK_LOG_DIR="$UVD_RUNNERS_HOME/logs"
  export SPARK_WORKER_DIR="$UVD_RUNNERS_HOME/spark/work"
  "$here/jars.sh" spark >/dev/null   # fetch first: a slow download must not count against the waits
  mkdir -p "$SPARK_WORKER_DIR"
  start_bg spark-master "$sh/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host "$HOST" --port "$SPARK_PORT" --webui-port "$SPARK_UI_PORT"
  wait_port "$SPARK_UI_PORT" 120 "$UVD_RUNNERS_HOME/pids/spark-master.pid"
  for ((i = 1; i <= SPARK_WORKERS; i++)); do
    start_bg "spark-worker$i" "$sh/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host "$HOST" --cores 1 --memory "$SPARK_WORKER_MEMORY" --webui-port 0 \
      --work-dir "$SPARK_WORKER_DIR/worker$i" "spark://$HOST:$SPARK_PORT"
  done
  for ((i = 0; i < 240; i++)); do
    alive=$("$PY" -c 'import json, sys, urllib.request as u; print(json.load(u.urlopen(sys.argv[1], timeout=5))["aliveworkers"])' \
      "http://$HOST:$SPARK_UI_PORT/json/" 2>/dev/null || echo 0)
    [[ "$alive" -ge "$SPARK_WORKERS" ]] && break
    sleep 0.5
  done
  if [[ "$alive" -lt "$SPARK_WORKERS" ]]; then
    echo "[runners] only $alive of $SPARK_WORKERS Spark workers registered; see $UVD_RUNNERS_HOME/logs" >&2; return 1
  fi
  echo "[runners] Spark master spark://$HOST:$SPARK_PORT (UI/REST http://$HOST:$SPARK_UI_PORT) with $alive workers" >&2
  spark_jobserver_up "spark://$HOST:$SPARK_PORT"
}

spark_down() {
  local pidfile name
  stop_pid spark-jobserver
  # Workers first (they stop their executors), then the master.
  for pidfile in "$UVD_RUNNERS_HOME"/pids/spark-worker*.pid; do
    [[ -e "$pidfile" ]] || continue
    name=$(basename "$pidfile" .pid); stop_pid "$name"
  done
  stop_pid spark-master
  rm -rf "$UVD_RUNNERS_HOME/spark/work" "$UVD_RUNNERS_HOME/spark/tmp"   # staged jars: ~400 MB per executor
}

flink_up() {
  local lib
  lib=$("$here/jars.sh" flink)
  mkdir -p "$UVD_RUNNERS_HOME/flink/tmp" "$UVD_RUNNERS_HOME/flink/conf"
  # The mini-cluster's default network memory (64 MB, 2048 buffers) runs out on uvd's graph at
  # parallelism 2 ("Insufficient number of network buffers"): give it 256 MB.
  printf 'taskmanager.memory.network.min: 256mb\ntaskmanager.memory.network.max: 256mb\n' \
    > "$UVD_RUNNERS_HOME/flink/conf/flink-conf.yaml"
  start_bg flink-jobserver java -Xmx2g -Djava.io.tmpdir="$UVD_RUNNERS_HOME/flink/tmp" \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$lib/*" org.apache.beam.runners.flink.FlinkJobServerDriver \
    --flink-master='[local]' --flink-conf-dir="$UVD_RUNNERS_HOME/flink/conf" \
    --job-host="$HOST" --job-port="$FLINK_JOB_PORT" \
    --artifact-port=$((FLINK_JOB_PORT - 1)) --expansion-port=0
  wait_port "$FLINK_JOB_PORT" 120 "$UVD_RUNNERS_HOME/pids/flink-jobserver.pid"
  echo "[runners] Flink job server ([local] mini-cluster) on $HOST:$FLINK_JOB_PORT" >&2
}

flink_down() {
  stop_pid flink-jobserver
  rm -rf "$UVD_RUNNERS_HOME/flink/tmp"
}

case "$what:$action" in
  spark:up) spark_up || { spark_down; exit 1; } ;;
  spark:down) spark_down ;;
  spark-jobserver:up) spark_jobserver_up "${3:?usage: cluster.sh spark-jobserver up spark://HOST:PORT}" \
                        || { stop_pid spark-jobserver; exit 1; } ;;
  spark-jobserver:down) stop_pid spark-jobserver ;;
  flink:up) flink_up || { flink_down; exit 1; } ;;
  flink:down) flink_down ;;
  *) echo "cluster.sh: unknown '$what $action' (spark|flink|spark-jobserver up|down)" >&2; exit 2 ;;
esac

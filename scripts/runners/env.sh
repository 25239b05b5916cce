# Shared settings of scripts/runners/*.sh (sourced). Every value can be overridden from the environment.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The Java side of Beam: the newest release whose Spark and Flink runners resolve from Maven Central
# with all their dependencies (see pom.xml); the Python SDK is pinned to the same release.
BEAM_JAVA_VERSION=${BEAM_JAVA_VERSION:-2.62.0}
UVD_JARS_HOME=${UVD_JARS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/uvd/beam-$BEAM_JAVA_VERSION}
# Logs, pid files, Spark work dirs and event logs of the clusters started here.
UVD_RUNNERS_HOME=${UVD_RUNNERS_HOME:-$REPO_ROOT/out/runners}
PY=${PY:-$REPO_ROOT/.venv/bin/python}
HOST=127.0.0.1
# Spark standalone on loopback: master, its web UI (REST: /json), N workers of 1 core each.
SPARK_PORT=${SPARK_PORT:-7077}
SPARK_UI_PORT=${SPARK_UI_PORT:-8080}
SPARK_WORKERS=${SPARK_WORKERS:-2}
SPARK_WORKER_MEMORY=${SPARK_WORKER_MEMORY:-2g}
# Beam job servers (job API port; the artifact port is the one below it).
SPARK_JOB_PORT=${SPARK_JOB_PORT:-8099}
FLINK_JOB_PORT=${FLINK_JOB_PORT:-8199}
# Java 17 closes the JDK internals Spark uses; spark-submit opens them the same way.
JAVA_MODULE_OPTS=(-XX:+IgnoreUnrecognizedVMOptions -Djdk.reflect.useDirectMethodHandle=false)
for m in java.lang java.lang.invoke java.lang.reflect java.io java.net java.nio java.util java.util.concurrent \
  java.util.concurrent.atomic sun.nio.ch sun.nio.cs sun.security.action sun.util.calendar; do
  JAVA_MODULE_OPTS+=("--add-opens=java.base/$m=ALL-UNNAMED")
done

need_java_tools() {
  # A fresh Debian machine: the JDK and Maven from apt (root, or sudo).
  if command -v java >/dev/null && command -v mvn >/dev/null; then return; fi
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "[runners] apt-get install openjdk-17-jdk-headless maven" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >&2
}

spark_home() {
  # The Spark distribution inside the pyspark wheel (the version Beam's Spark 3 runner is tested with).
  "$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

wait_port() {  # wait_port PORT SECONDS PIDFILE: until something listens on 127.0.0.1:PORT
  local port=$1 secs=$2 pidfile=$3 i
  for ((i = 0; i < secs * 2; i++)); do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then return 0; fi
    if [[ -n "$pidfile" ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "[runners] process of $pidfile died; see its log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "[runners] nothing listens on $HOST:$port after ${secs}s" >&2; return 1
}

start_bg() {  # start_bg NAME CMD...: run in the background, log to NAME.log, pid to NAME.pid
  local name=$1; shift
  mkdir -p "$UVD_RUNNERS_HOME/logs" "$UVD_RUNNERS_HOME/pids"
  local pidfile="$UVD_RUNNERS_HOME/pids/$name.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "[runners] $name already running (pid $(cat "$pidfile"))" >&2; return 0
  fi
  nohup "$@" >"$UVD_RUNNERS_HOME/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

stop_pid() {  # stop_pid NAME: TERM the process of NAME.pid, KILL after 15 s, remove the pid file
  local pidfile="$UVD_RUNNERS_HOME/pids/$1.pid" pid i
  [[ -f "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

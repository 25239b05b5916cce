#!/usr/bin/env bash
# Fetch one Beam job server's Java classpath with Maven: scripts/runners/jars.sh spark|flink
# Prints the lib folder. Idempotent (a finished folder is reused); needs a JDK and Maven, installed
# here with apt when missing. The folder is shared by every checkout: ~/.cache/uvd/beam-VERSION/RUNNER.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
runner=${1:?usage: jars.sh spark|flink}
case "$runner" in spark|flink) ;; *) echo "jars.sh: runner must be spark or flink, not '$runner'" >&2; exit 2;; esac
need_java_tools
lib="$UVD_JARS_HOME/$runner"
if [[ ! -f "$lib/.complete" ]]; then
  rm -rf "$lib.part" && mkdir -p "$lib.part"
  echo "[runners] mvn: Beam $BEAM_JAVA_VERSION $runner job server classpath -> $lib" >&2
  if ! mvn -B -q -Dstyle.color=never -f "$here/pom.xml" -P "$runner" -Dbeam.version="$BEAM_JAVA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib.part" >"$lib.part.log" 2>&1; then
    tail -n 30 "$lib.part.log" >&2; exit 1
  fi
  if [[ "$runner" == spark ]]; then
    # Spark's own slf4j 2 API (from the distribution) must win over Beam's 1.7 one, or nothing logs.
    rm -f "$lib.part"/slf4j-api-1.*.jar
  fi
  touch "$lib.part/.complete"
  rm -rf "$lib" "$lib.part.log" && mv "$lib.part" "$lib"
fi
echo "$lib"

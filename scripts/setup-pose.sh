#!/usr/bin/env bash
# Install the uvd[pose] extra (MMPose top-down inference, CPU) into an existing uvd venv.
# Usage: scripts/setup-pose.sh [VENV]      (make setup-pose; run scripts/setup.sh first)
#
# Why a script and not a pyproject extra: pip cannot express the recipe. The OpenMMLab wheels must
# go in with --no-deps (their declared opencv-python and chumpy break this env), and xtcocotools
# must be compiled against the venv's numpy 2 (its PyPI wheels are numpy-1 builds). Steps:
#   1. constraints = the venv's installed versions, so nothing there is up- or downgraded;
#   2. xtcocotools wheel built in a throwaway build venv with the venv's exact numpy;
#   3. requirements/pose.txt + that wheel installed with --no-deps under the constraints;
#   4. a check that mmpose imports and numpy/torch/pyarrow are the versions they were.
# Idempotent: a second run finds everything installed and only re-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY="$VENV/bin/python"
[[ -x "$PY" ]] || { echo "[setup-pose] no venv at $VENV: run scripts/setup.sh (make setup) first" >&2; exit 1; }
start=$(date +%s)

versions() { "$PY" -c 'import numpy, torch, pyarrow; print(numpy.__version__, torch.__version__, pyarrow.__version__)'; }
before=$(versions)

check='import uvd.sources.pose.model as m; print(m.import_mmpose())'
if found=$("$PY" -c "$check" 2>/dev/null); then
  echo "[setup-pose] already installed: $found"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # 1. Everything installed now is pinned (setuptools is not listed by pip freeze: pose.txt caps it).
  "$PY" -m pip freeze --exclude-editable | grep -v '^-e ' | grep -v ' @ file://' > "$work/constraints.txt"
  numpy_pin=$(grep -i '^numpy==' "$work/constraints.txt")

  # 2. Source builds, in a build venv of the same interpreter, against the same numpy.
  # A source build is redone unless that exact version is installed and its extension imports.
  missing_src=()
  for req in $(grep -v '^\s*#' requirements/pose-source.txt); do
    name=${req%%==*} version=${req##*==}
    "$PY" -c "import importlib.metadata as md, importlib; assert md.version('$name') == '$version'; \
importlib.import_module('$name.coco')" >/dev/null 2>&1 || missing_src+=("$req")
  done
  if ((${#missing_src[@]})); then
    echo "[setup-pose] building ${missing_src[*]} against $numpy_pin"
    "$PY" -m venv "$work/build"
    "$work/build/bin/python" -m pip install -q -r requirements/pose-build.txt "$numpy_pin"
    "$work/build/bin/python" -m pip wheel -q --no-deps --no-build-isolation --no-binary :all: \
      -w "$work/wheels" "${missing_src[@]}"
    "$PY" -m pip install -q --no-deps --force-reinstall "$work"/wheels/*.whl
  fi

  # 3. The pure-Python packages, no dependency resolution, nothing installed may change.
  echo "[setup-pose] installing requirements/pose.txt"
  "$PY" -m pip install -q --no-deps -c "$work/constraints.txt" -r requirements/pose.txt
fi

# 4. Checks.
after=$(versions)
if [[ "$before" != "$after" ]]; then
  echo "[setup-pose] numpy/torch/pyarrow changed: '$before' -> '$after'" >&2
  exit 1
fi
if [[ -z "${found:-}" ]]; then
  found=$("$PY" -c "$check")  # fails the script (set -e) when mmpose still does not import
  echo "[setup-pose] ok: $found"
fi
echo "[setup-pose] done in $(( $(date +%s) - start )) s (numpy torch pyarrow: $after)"

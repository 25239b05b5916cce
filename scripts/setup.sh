#!/usr/bin/env bash
# Install everything uvd needs on a fresh Debian/Ubuntu machine: apt packages, a venv, the package.
# Idempotent: packages already present are not reinstalled. Usage: scripts/setup.sh [VENV] [EXTRAS]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
EXTRAS=${2:-all}
PYTHON=${PYTHON:-python3}

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/apt-packages.txt
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  echo "[setup] apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first, pinned: 2.13.0 is the CPU build this project is tested with (a GPU box may pin its own).
"$VENV/bin/python" -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
"$VENV/bin/python" -m pip install -q -e ".[${EXTRAS}]"
# pyrender pins PyOpenGL==3.1.0, whose OSMesa binding lacks OSMesaCreateContextAttribs; EGL works
# with either. 3.1.7 (no-deps, past the pin) makes PYOPENGL_PLATFORM=osmesa work too.
if "$VENV/bin/python" -c "import pyrender" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --no-deps "PyOpenGL==3.1.7"
fi
echo "[setup] ok: $("$VENV/bin/python" -c 'import uvd, sys; print("uvd", uvd.__version__, "python", sys.version.split()[0])')"

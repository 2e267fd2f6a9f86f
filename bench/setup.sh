#!/usr/bin/env bash
# npm run bench:setup: the PyTorch side of the benchmarks (bench/*/reference.py), never installed by `npm ci`.
# Debian's python3-torch and python3-numpy for /usr/bin/python3, and libopenblas0-pthread, without which apt leaves
# their sgemm on the netlib BLAS (~20x slower; see bench/openblas.py). Does nothing when the references' own check
# already passes; otherwise installs with apt-get (as root, or through sudo) and runs that check again.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(python3-torch python3-numpy libopenblas0-pthread)

# The check every reference runs before it is timed (bench/openblas.py's require_openblas), with the interpreter and
# OPENBLAS_CORETYPE the bench runners give them; prints what it found.
check() {
  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 - <<'EOF'
import sys
sys.path.insert(0, "bench")
import numpy, torch
from openblas import openblas_info, require_openblas
require_openblas("bench:setup")
core, threads = openblas_info()
print(f"torch {torch.__version__}, numpy {numpy.__version__}, BLAS: OpenBLAS ({core} kernel, {threads} threads)")
EOF
}

if found=$(check 2>&1); then
  echo "bench:setup: already set up: $found"
  exit 0
fi
echo "bench:setup: /usr/bin/python3 fails the references' check ($(tail -n 1 <<<"$found")); installing ${PACKAGES[*]}"

if ! command -v apt-get >/dev/null; then
  echo "bench:setup: needs Debian's apt-get (the references are measured on Debian's python3-torch)" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
else
  echo "bench:setup: installing needs root (not root, no sudo); run as root, then npm run bench:setup again:" >&2
  echo "  apt-get update && apt-get install -y ${PACKAGES[*]}" >&2
  exit 1
fi
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}"

if ! found=$(check 2>&1); then
  echo "bench:setup: installed, but /usr/bin/python3 still fails the references' check:" >&2
  echo "$found" >&2
  exit 1
fi
echo "bench:setup: $found"

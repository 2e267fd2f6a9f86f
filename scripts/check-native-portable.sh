#!/usr/bin/env bash
# Compiles the addon's portable sources (binding.gyp's main target, no ISA-specific files) for another target, to
# check that nothing x86-only leaks out of the guarded *_avx512 / *_avx2 files: by default for arm64 with clang and
# with GCC's cross compiler, whichever are installed (Debian: apt-get install clang g++-aarch64-linux-gnu).
# Not part of `npm test` (CI has no cross compilers). Usage: scripts/check-native-portable.sh [compiler command ...]
set -euo pipefail
cd "$(dirname "$0")/.."
inc="$(dirname "$(command -v node)")/../include/node"
[ -f "$inc/node_api.h" ] || inc=/usr/include/node
sources=$(node -e 'const g = JSON.parse(require("fs").readFileSync("binding.gyp", "utf8").replace(/#.*$/gm, "")); console.log(g.targets[0].sources.join(" "))')
if [ $# -gt 0 ]; then compilers=("$@"); else
  compilers=()
  command -v clang++ >/dev/null && compilers+=("clang++ --target=aarch64-linux-gnu")
  command -v aarch64-linux-gnu-g++ >/dev/null && compilers+=("aarch64-linux-gnu-g++")
fi
[ ${#compilers[@]} -gt 0 ] || { echo "no cross compiler found (apt-get install clang g++-aarch64-linux-gnu)"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for cc in "${compilers[@]}"; do
  for f in $sources; do
    $cc -std=c++17 -O2 -Wall -Wextra -Werror -fPIC -I"$inc" -c "$f" -o "$out/$(basename "$f").o"
  done
  echo "ok: $cc compiled $(echo $sources | wc -w) portable sources ($(file -b "$out/$(basename "${sources%% *}").o" | cut -d, -f1-2))"
done

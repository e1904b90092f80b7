#!/bin/sh
# tests/test_warnings.sh — every source compiles warning-free (-Wall -Wextra -Wshadow -Werror)
# under gcc and under clang (when installed), as the project requires.
cd "$(dirname "$0")/.." || exit 1
flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -ffp-contract=off -march=native -fopenmp -I. -I/usr/include/stb $(pkg-config --cflags libpng libcjson icu-uc 2>/dev/null)"
passed=0; failed=0
for cc in gcc clang; do
  if ! command -v $cc >/dev/null 2>&1; then echo "skip warnings/$cc: not installed"; continue; fi
  ok=1
  for f in core/*.c text/*.c dit/*.c vae/*.c guidance/*.c sampler/*.c tools/*.c tests/*.c; do
    [ -f "$f" ] || continue
    $cc $flags -fsyntax-only "$f" || { echo "  FAIL $cc: $f"; ok=0; }
  done
  if [ $ok = 1 ]; then passed=$((passed + 1)); echo "ok   warnings/$cc"; else failed=$((failed + 1)); echo "FAIL warnings/$cc"; fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]

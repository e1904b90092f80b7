#!/bin/sh
# tests/run.sh PROGRAM... — runs each test program (C binaries and tests/test_*.sh), sums their
# "N passed, N failed" closing lines and prints the total as the last line. Exit 1 on any failure,
# on a program that crashes, or on one that prints no closing line.
passed=0; failed=0; skipped=0; status=0
log=$(mktemp); trap 'rm -f "$log"' EXIT
# A hung test must not hang CI: each program gets at most this many seconds.
limit=${DIT_TEST_TIMEOUT:-600}
run() { if command -v timeout >/dev/null 2>&1; then timeout "$limit" "$@"; else "$@"; fi; }
for prog in "$@"; do
  echo "== $prog"
  case "$prog" in *.sh) run sh "$prog" >"$log" 2>&1 ;; *) run "$prog" >"$log" 2>&1 ;; esac
  rc=$?
  cat "$log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $prog: exit $rc without a closing 'N passed, N failed' line"
    failed=$((failed + 1)); status=1; continue
  fi
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $prog: exit $rc"; failed=$((failed + 1))
  fi
  [ "$rc" -ne 0 ] && status=1
done
echo
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"
else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ] && exit $status
exit 1

#!/bin/sh
# tests/test_encoders_check.sh — `dit check` on every golden case folder under clip_text/ and t5/
# of $DIT_GOLDEN (default ../shared/golden): each must print PASS as its last line and exit 0
# (f32 path within the case's suggested tolerance, bf16 path within 2e-2, every output).
# Also: a case whose bound is too tight gives FAIL. Under CI=true a missing golden folder fails.
cd "$(dirname "$0")/.." || exit 1
bin=${DIT_BIN:-build/dit}
golden=${DIT_GOLDEN:-../shared/golden}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   encoders_check/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL encoders_check/$1"; }
if [ ! -d "$golden" ]; then
  if [ "$CI" = true ]; then echo "FAIL encoders_check: golden folder $golden is missing (CI=true)"; echo "0 passed, 1 failed"; exit 1; fi
  echo "skip encoders_check: golden folder $golden not found"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
n=0
for dir in "$golden"/clip_text/* "$golden"/t5/*; do
  [ -f "$dir/case.json" ] || continue
  n=$((n + 1))
  name=$(echo "$dir" | sed "s|^$golden/||")
  out=$("$bin" check "$dir" 2>&1); rc=$?
  last=$(printf '%s\n' "$out" | tail -n 1)
  if [ $rc -eq 0 ] && [ "$last" = PASS ]; then ok "$name"; else printf '%s\n' "$out"; bad "$name"; fi
done
[ $n -ge 3 ] && ok "cases_found_$n" || bad "cases_found_$n"

# A too tight expectation must give FAIL and exit 1: a copy of a case whose f32 bound is 1e-12.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r "$golden/t5/t5_tiny" "$tmp/case" && chmod -R u+w "$tmp/case"
sed 's/"f32_impl": [0-9.e-]*/"f32_impl": 1e-12/' "$golden/t5/t5_tiny/case.json" >"$tmp/case/case.json"
out=$("$bin" check --f32-only "$tmp/case" 2>&1); rc=$?
last=$(printf '%s\n' "$out" | tail -n 1)
if [ $rc -eq 1 ] && [ "$last" = FAIL ] && printf '%s\n' "$out" | grep -q "last_hidden_state .*FAIL"; then ok strict_case_fails; else printf '%s\n' "$out"; bad strict_case_fails; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]

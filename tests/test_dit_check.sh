#!/bin/sh
# tests/test_dit_check.sh — `dit check` on every golden case folder under flux/, sd3/, dit/ and
# schedules/ (the Euler sampling trajectories) of $DIT_GOLDEN (default ../shared/golden): each must print PASS as its last line and exit 0
# (f32 path within the case's tolerance, bf16 path within 2e-2). Also: the verdict can be FAIL
# (a case whose bounds are too tight), `dit inspect` names the detected family, and
# usage errors exit 2. Under CI=true a missing golden folder is a failure.
cd "$(dirname "$0")/.." || exit 1
bin=${DIT_BIN:-build/dit}
golden=${DIT_GOLDEN:-../shared/golden}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   dit_check/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL dit_check/$1"; }
if [ ! -d "$golden" ]; then
  if [ "$CI" = true ]; then echo "FAIL dit_check: golden folder $golden is missing (CI=true)"; echo "0 passed, 1 failed"; exit 1; fi
  echo "skip dit_check: golden folder $golden not found"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
n=0
for dir in "$golden"/flux/* "$golden"/sd3/* "$golden"/dit/* "$golden"/schedules/*; do
  [ -f "$dir/case.json" ] || continue
  n=$((n + 1))
  name=$(echo "$dir" | sed "s|^$golden/||")
  out=$("$bin" check "$dir" 2>&1); rc=$?
  last=$(printf '%s\n' "$out" | tail -n 1)
  if [ $rc -eq 0 ] && [ "$last" = PASS ]; then ok "$name"; else printf '%s\n' "$out"; bad "$name"; fi
done
[ $n -ge 9 ] && ok "cases_found_$n" || bad "cases_found_$n"

# A too tight expectation must give FAIL and exit 1: a copy of a case whose f32 bounds are 1e-12.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r "$golden/dit/sit_xl2_like" "$tmp/case" && chmod -R u+w "$tmp/case"
sed 's/"rel_to_max": 1e-05/"rel_to_max": 1e-12/' "$golden/dit/sit_xl2_like/case.json" >"$tmp/case/case.json"
out=$("$bin" check "$tmp/case" 2>&1); rc=$?
last=$(printf '%s\n' "$out" | tail -n 1)
if [ $rc -eq 1 ] && [ "$last" = FAIL ] && printf '%s\n' "$out" | grep -q "v .*FAIL"; then ok strict_case_fails; else printf '%s\n' "$out"; bad strict_case_fails; fi

# dit inspect names the family; usage errors exit 2; a folder that is no case exits 1.
"$bin" inspect "$golden/sd3/sd3.5_medium/model.safetensors" | grep -q "^model: sd3 sd3.5-medium" && ok inspect_family || bad inspect_family
"$bin" check >/dev/null 2>&1; [ $? -eq 2 ] && ok usage_no_dir || bad usage_no_dir
"$bin" check --bogus "$golden/dit/dit_xl2_like" >/dev/null 2>&1; [ $? -eq 2 ] && ok usage_bad_flag || bad usage_bad_flag
"$bin" check "$tmp" >/dev/null 2>&1; [ $? -eq 1 ] && ok not_a_case || bad not_a_case
# dit synth writes what the loader reads (the tensor list comes from the loader's tables), and
# dit bench --model runs a forward of it.
for p in sd3.5-medium sd3-medium flux-dev dit-xl2; do
  h=256; [ $p = dit-xl2 ] && h=144
  if "$bin" synth $p --depth 2 --hidden $h -o "$tmp/$p.safetensors" >/dev/null &&
     "$bin" inspect "$tmp/$p.safetensors" | grep -q "^model: .*hidden $h"; then ok synth_$p; else bad synth_$p; fi
done
out=$("$bin" bench --model "$tmp/sd3.5-medium.safetensors" --sizes 64 --reps 1 2>&1)
if printf '%s\n' "$out" | grep -q "^64x64 (16 image + 154 text tokens): .* of peak"; then ok bench_model; else printf '%s\n' "$out"; bad bench_model; fi
"$bin" synth nosuch -o "$tmp/x.safetensors" >/dev/null 2>&1; [ $? -eq 2 ] && [ ! -e "$tmp/x.safetensors" ] && ok synth_bad_preset || bad synth_bad_preset
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]

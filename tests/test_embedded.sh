#!/bin/sh
# tests/test_embedded.sh — the embedded default model (weights/default.safetensors) in the C engine:
# `dit check` on tests/cases/embedded/{dit,clip,vae} (each must PASS: f32 path within the case's
# tolerances, bf16 path within 2e-2 of the float64 PyTorch reference of tools/train/model.py), the
# cases were made for this very file (case.json weights.sha256), `dit inspect` finds an SD3 model,
# `dit vae info kl:` the VAE, and a too-tight copy of a case FAILs. Without the weights file the test
# skips (it is made by `make train`); with torch (PY, default /usr/bin/python3) `dit generate` is also
# compared with the PyTorch pipeline (tools/train/compare_generate.py). Needs $DIT_BIN (the Makefile passes the ASan build).
cd "$(dirname "$0")/.." || exit 1
DIT=${DIT_BIN:-build/dit}
W=${DIT_EMBEDDED:-weights/default.safetensors}
CASES=tests/cases/embedded
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   embedded/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL embedded/$1"; }
finish() { echo "$passed passed, $failed failed"; [ $failed = 0 ]; exit $?; }

if [ ! -f "$W" ]; then
  echo "skip embedded: $W not found (make train writes it)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# the cases belong to this weights file
sha=$(sha256sum "$W" | cut -d' ' -f1)
for c in dit clip vae; do
  if [ ! -f "$CASES/$c/case.json" ]; then bad "$c: $CASES/$c/case.json missing"; continue; fi
  if grep -q "\"sha256\": \"$sha\"" "$CASES/$c/case.json"; then ok "$c: cases made for $W"
  else bad "$c: stale cases (made for other weights): run tools/train/make_golden.py"; fi
done

for c in dit clip vae; do
  [ -f "$CASES/$c/case.json" ] || continue
  "$DIT" check "$CASES/$c" >"$tmp/check" 2>&1; rc=$?
  if [ $rc = 0 ] && [ "$(tail -n 1 "$tmp/check")" = PASS ]; then ok "check $c"
  else tail -n 30 "$tmp/check"; bad "check $c (exit $rc)"; fi
done

"$DIT" inspect "$W" >"$tmp/insp" 2>&1
if grep -q "^model: sd3 sd3.5-large" "$tmp/insp" && grep -q "dit.text *= clip-words" "$tmp/insp"; then ok "inspect: SD3 model, clip-words"
else tail -n 5 "$tmp/insp"; bad "inspect"; fi
"$DIT" vae info "kl:$W" >"$tmp/vae" 2>&1
if grep -q "^vae: *AutoencoderKL" "$tmp/vae"; then ok "vae info: AutoencoderKL"; else cat "$tmp/vae"; bad "vae info"; fi

# end to end: dit generate (f32 and bf16) against the same pipeline in PyTorch (tools/train), where
# the training tools' Python (torch + numpy) is there
PY=${PY:-/usr/bin/python3}
if "$PY" -c "import torch, numpy" >/dev/null 2>&1; then
  "$PY" tools/train/compare_generate.py --weights "$W" --dit "$DIT" >"$tmp/gen" 2>&1; rc=$?
  cat "$tmp/gen"
  if [ $rc = 0 ] && [ "$(tail -n 1 "$tmp/gen")" = PASS ]; then ok "dit generate = PyTorch pipeline"; else bad "dit generate vs PyTorch"; fi
else echo "skip embedded/dit generate vs PyTorch: no torch for $PY"; fi

# the checks can fail: the dit case with every relative bound set to 1e-12
mkdir -p "$tmp/strict"
cp "$CASES/dit/io.safetensors" "$tmp/strict/"
ln -s "$(cd "$(dirname "$W")" && pwd)/$(basename "$W")" "$tmp/strict/w.safetensors"
sed -e 's/"rel_to_max": [0-9.e-]*/"rel_to_max": 1e-12/g' -e 's|"file": "[^"]*"|"file": "w.safetensors"|' \
  "$CASES/dit/case.json" >"$tmp/strict/case.json"
"$DIT" check --f32-only "$tmp/strict" >"$tmp/out" 2>&1; rc=$?
if [ $rc = 1 ] && [ "$(tail -n 1 "$tmp/out")" = FAIL ] && grep -q "v .*FAIL" "$tmp/out"; then ok "a too-tight case FAILs"
else cat "$tmp/out"; bad "strict case"; fi
finish

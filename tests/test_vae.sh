#!/bin/sh
# tests/test_vae.sh — `dit check` on every vae/ and taef2/ golden case folder (each must PASS), and
# `dit vae` as users run it: decode -> encode -> decode round trip through TAEF2, tiles and memory
# budget, info, synth, and the errors (one line naming the file or flag; exit 2 for usage, 1 for
# bad input; no output file left behind). Needs $DIT_BIN (the Makefile passes the ASan build) and
# $DIT_GOLDEN (default ../shared/golden; missing = skip, failure under CI=true).
cd "$(dirname "$0")/.." || exit 1
DIT=${DIT_BIN:-build/dit}
G=${DIT_GOLDEN:-../shared/golden}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   vae_cli/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL vae_cli/$1"; }
finish() { echo "$passed passed, $failed failed"; [ $failed = 0 ]; exit $?; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

if [ ! -d "$G" ]; then
  if [ "$CI" = true ]; then bad "golden folder $G is missing (CI=true)"; finish; fi
  echo "skip vae_cli: golden folder $G not found (set DIT_GOLDEN)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi

# expect NAME RC NEEDLE CMD...: exit status RC, and (when NEEDLE is not empty) NEEDLE in the output,
# which must then be one line on stderr.
expect() {
  name=$1; want=$2; needle=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ $rc != "$want" ]; then echo "  exit $rc, wanted $want: $*"; cat "$tmp/out" "$tmp/err" | head -5; bad "$name"; return; fi
  if [ -n "$needle" ]; then
    if ! grep -qF -- "$needle" "$tmp/err" || [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
      echo "  wanted one line on stderr with '$needle', got:"; cat "$tmp/err"; bad "$name"; return
    fi
    echo "  $name: $(cat "$tmp/err")"
  fi
  ok "$name"
}

# ---- every golden case folder through `dit check`
n=0
for d in "$G"/vae/*/ "$G"/taef2/*/; do
  [ -f "$d/case.json" ] || continue
  n=$((n + 1))
  "$DIT" check "$d" >"$tmp/check" 2>&1; rc=$?
  if [ $rc = 0 ] && [ "$(tail -n 1 "$tmp/check")" = PASS ]; then ok "check $(basename "$d")"
  else tail -n 25 "$tmp/check"; bad "check $d (exit $rc)"; fi
done
if [ $n -ge 3 ]; then ok "check: $n case folders"; else bad "check: only $n case folders under $G/vae, $G/taef2"; fi

# ---- round trip through the real TAEF2: decode a latent, encode the PNG, decode again
DEC=$G/taef2/taef2_decoder.safetensors
expect "decode a latent of an io file" 0 "" "$DIT" vae decode "$G/taef2/astronaut_256/io.safetensors" --tensor out.latent \
  -o "$tmp/a.png" --vae "taesd:$DEC"
expect "encode the PNG (encoder found next to the decoder)" 0 "" "$DIT" vae encode "$tmp/a.png" -o "$tmp/z.safetensors" --vae "$DEC"
"$DIT" inspect "$tmp/z.safetensors" >"$tmp/insp" 2>&1
if grep -q "latent .*\[1, 32, 32, 32\]" "$tmp/insp" && grep -q "vae .*taef2" "$tmp/insp"; then ok "latent file: [1, 32, 32, 32] + VAE metadata"
else cat "$tmp/insp"; bad "latent file contents"; fi
expect "decode the latent file" 0 "" "$DIT" vae decode "$tmp/z.safetensors" -o "$tmp/b.png" --vae "taesd:$DEC" --f32
expect "decode in tiles" 0 "" "$DIT" vae decode "$tmp/z.safetensors" -o "$tmp/c.png" --vae "taesd:$DEC" --vae-tile 128
if [ -s "$tmp/b.png" ] && [ -s "$tmp/c.png" ]; then ok "PNGs written"; else bad "PNGs written"; fi
"$DIT" vae info "taesd:$DEC" --max-memory 64M >"$tmp/info" 2>&1
if grep -q "32 channels, 8 pixels per cell" "$tmp/info" && grep -q "decode 1024^2: .* tiles of" "$tmp/info"; then
  ok "info: facts, tiles under --max-memory"
else cat "$tmp/info"; bad "info"; fi
expect "synth a TAESD" 0 "" "$DIT" vae synth -o "$tmp/s.safetensors" --kind taesd --z 4 --no-pool --dtype f16
"$DIT" vae info "$tmp/s.safetensors" >"$tmp/info" 2>&1
if grep -q "4 latent channels" "$tmp/info"; then ok "synthesized TAESD detected by its tensor names"; else cat "$tmp/info"; bad "synth info"; fi

# the encoder's conv_in gives the base ch, level 0 widens it (ch_mult[0] = 2 here, with a shortcut)
"$DIT" vae synth -o "$tmp/m2.safetensors" --ch 32 --ch-mult 2,4 --z 16 >/dev/null 2>&1
"$DIT" inspect "$tmp/m2.safetensors" >"$tmp/insp" 2>&1
"$DIT" vae info "kl:$tmp/m2.safetensors" >"$tmp/info" 2>&1
if grep -q "^encoder.conv_in.weight .*\[32, 3, 3, 3\]" "$tmp/insp" && grep -q "^encoder.down.0.block.0.nin_shortcut.weight .*\[64, 32, 1, 1\]" "$tmp/insp" &&
   grep -q "ch 32 x \[2,4\]" "$tmp/info"; then ok "ch_mult[0] = 2: conv_in gives ch, level 0 widens it"
else cat "$tmp/info"; bad "ch_mult[0] = 2"; fi
expect "ch_mult[0] = 2: encode runs" 0 "" "$DIT" vae encode "$tmp/a.png" -o "$tmp/m2z.safetensors" --vae "kl:$tmp/m2.safetensors"

# ---- errors
expect "no subcommand" 2 "" "$DIT" vae
expect "unknown subcommand" 2 "unknown subcommand 'frobnicate'" "$DIT" vae frobnicate
expect "unknown option" 2 "unknown option '--bogus'" "$DIT" vae decode "$tmp/z.safetensors" --bogus
expect "missing --vae" 2 "needs --vae SPEC" "$DIT" vae encode "$tmp/a.png" -o "$tmp/x.safetensors"
expect "bad --max-memory" 2 "--max-memory lots" "$DIT" vae decode "$tmp/z.safetensors" -o "$tmp/x.png" --vae "$DEC" --max-memory lots
expect "bad --vae-tile" 2 "--vae-tile x" "$DIT" vae decode "$tmp/z.safetensors" -o "$tmp/x.png" --vae "$DEC" --vae-tile x
expect "bad --family" 2 "--family sdxl" "$DIT" vae encode "$tmp/a.png" -o "$tmp/x.safetensors" --vae "$DEC" --family sdxl
expect "missing image" 1 "$tmp/missing.png" "$DIT" vae encode "$tmp/missing.png" -o "$tmp/x.safetensors" --vae "$DEC"
expect "missing VAE file" 1 "$tmp/nope.safetensors" "$DIT" vae encode "$tmp/a.png" -o "$tmp/x.safetensors" --vae "$tmp/nope.safetensors"
expect "not a VAE" 1 "not a VAE" "$DIT" vae encode "$tmp/a.png" -o "$tmp/x.safetensors" --vae "$tmp/z.safetensors"
expect "latent of the wrong width" 1 "has 32 channels, the VAE takes 3" "$DIT" vae decode "$tmp/z.safetensors" -o "$tmp/x.png" --vae pixel
expect "no latent tensor" 1 "use --tensor NAME" "$DIT" vae decode "$G/taef2/astronaut_256/io.safetensors" -o "$tmp/x.png" --vae "$DEC"
"$DIT" vae synth -o "$tmp/d.safetensors" --kind taesd --decoder-only >/dev/null 2>&1
expect "decoder only" 1 "has no encoder weights" "$DIT" vae encode "$tmp/a.png" -o "$tmp/x.safetensors" --vae "$tmp/d.safetensors"
expect "halves that disagree" 1 "the encoder gives 4 latent channels" "$DIT" vae info "taesd:$tmp/s.safetensors,$DEC"
if [ -e "$tmp/x.safetensors" ] || [ -e "$tmp/x.png" ] || ls "$tmp" | grep -q tmp; then ls "$tmp"; bad "failed runs left files behind"
else ok "failed runs leave no output files"; fi
finish

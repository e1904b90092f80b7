#!/bin/sh
# tests/test_generate.sh — `dit generate` end to end on tiny model folders the test assembles in
# diffusers layout: the golden tiny CLIP-L / CLIP-G / T5 encoders, the real CLIP BPE and T5
# SentencePiece files and the tiny AutoencoderKL from $DIT_GOLDEN (linked, never copied), and a
# random-weight transformer from `dit synth` with the encoders' widths (SD3: context 64 = CLIP-L 32 +
# CLIP-G 32, pooled 64; FLUX-dev: context 32 = T5, pooled 32 = CLIP-L).
# Checked: image size, determinism (same seed and threads: the same PNG, byte for byte), --from
# regenerating the image bit for bit, 1 vs 2 threads within 2/255 per pixel, batches (image k of a
# batch = a single run with seed + k - 1), the metadata (A1111 parameters, the JSON settings, the
# model hash against sha256sum), and the errors (one line naming the flag or file, exit 2 for
# usage, 1 for runtime, no output file left behind).
cd "$(dirname "$0")/.." || exit 1
DIT=${DIT_BIN:-build/dit}
G=${DIT_GOLDEN:-../shared/golden}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   generate/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL generate/$1"; }
finish() { echo "$passed passed, $failed failed"; [ $failed = 0 ]; exit $?; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

if [ ! -d "$G" ]; then
  if [ "$CI" = true ]; then bad "golden folder $G is missing (CI=true)"; finish; fi
  echo "skip generate: golden folder $G not found (set DIT_GOLDEN)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
G=$(cd "$G" && pwd)

# expect NAME RC NEEDLE CMD...: exit status RC, and (when NEEDLE is not empty) NEEDLE in the one
# line on stderr.
expect() {
  name=$1; want=$2; needle=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ $rc != "$want" ]; then echo "  exit $rc, wanted $want: $*"; cat "$tmp/out" "$tmp/err" | head -5; bad "$name"; return 1; fi
  if [ -n "$needle" ]; then
    if ! grep -qF -- "$needle" "$tmp/err" || [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
      echo "  wanted one line on stderr with '$needle', got:"; cat "$tmp/err"; bad "$name"; return 1
    fi
    echo "  $name: $(cat "$tmp/err")"
  fi
  ok "$name"
}

# pixels A B: the largest per-channel difference of two PNGs (8-bit RGB, any filters), by Python's
# zlib, independent of the PNG code under test
maxdiff() {
  python3 - "$1" "$2" <<'EOF'
import struct, sys, zlib
def pixels(path):
    d = open(path, 'rb').read(); i = 8; idat = b''; w = h = 0
    while i < len(d):
        n, t = struct.unpack('>I', d[i:i + 4])[0], d[i + 4:i + 8]
        if t == b'IHDR': w, h = struct.unpack('>II', d[i + 8:i + 16]); assert d[i + 16] == 8 and d[i + 17] == 2
        if t == b'IDAT': idat += d[i + 8:i + 8 + n]
        i += 12 + n
    raw, bpp, stride, out, prev = zlib.decompress(idat), 3, 3 * w, [], bytearray(3 * w)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line)); prev = line
    return (w, h), b''.join(out)
(sa, a), (sb, b) = pixels(sys.argv[1]), pixels(sys.argv[2])
print(max(abs(x - y) for x, y in zip(a, b)) if sa == sb else 999)
EOF
}

# ---- the tiny model folders
link() { mkdir -p "$(dirname "$2")" && ln -s "$1" "$2"; }
sd3=$tmp/sd3; flux=$tmp/flux
mkdir -p "$sd3/transformer"
"$DIT" synth sd3.5-medium --depth 2 --hidden 128 --ctx 64 --vec 64 --pos 16 --seed 3 \
  -o "$sd3/transformer/diffusion_pytorch_model.safetensors" >/dev/null || { bad "synth sd3"; finish; }
link "$G/clip_text/clip_l_tiny/model.safetensors" "$sd3/text_encoder/model.safetensors"
link "$G/clip_text/clip_g_tiny/model.safetensors" "$sd3/text_encoder_2/model.safetensors"
link "$G/t5/t5_tiny/model.safetensors" "$sd3/text_encoder_3/model.safetensors"
echo '{"num_attention_heads": 2, "hidden_act": "quick_gelu"}' >"$sd3/text_encoder/config.json"
echo '{"num_attention_heads": 4, "hidden_act": "gelu"}' >"$sd3/text_encoder_2/config.json"
echo '{"num_heads": 2, "relative_attention_max_distance": 128}' >"$sd3/text_encoder_3/config.json"
link "$G/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz" "$sd3/tokenizer/bpe_simple_vocab_16e6.txt.gz"
link "$G/tokenizers/t5/spiece.model" "$sd3/tokenizer_3/spiece.model"
link "$G/vae/ae_tiny/model.safetensors" "$sd3/vae/diffusion_pytorch_model.safetensors"
mkdir -p "$flux/transformer"
"$DIT" synth flux-dev --depth 1 --hidden 256 --ctx 32 --vec 32 --seed 5 \
  -o "$flux/transformer/diffusion_pytorch_model.safetensors" >/dev/null || { bad "synth flux"; finish; }
link "$sd3/text_encoder" "$flux/text_encoder"
link "$sd3/text_encoder_3" "$flux/text_encoder_2"
link "$sd3/tokenizer" "$flux/tokenizer"
link "$sd3/tokenizer_3" "$flux/tokenizer_2"
link "$sd3/vae" "$flux/vae"

gen() { "$DIT" generate -q "$@"; }
out=$tmp/o; mkdir -p "$out"

# ---- SD3: runs, size, determinism, --from, threads
if gen -m "$sd3" -p "a red circle left of a blue square" -W 64 -H 48 --steps 4 -s 42 -t 2 -o "$out/a.png" 2>"$tmp/err"; then
  "$DIT" inspect "$out/a.png" >"$tmp/meta"
  if grep -q "PNG 64x48, 3 channels" "$tmp/meta"; then ok "sd3 64x48"; else bad "sd3 64x48"; cat "$tmp/meta"; fi
  gen -m "$sd3" -p "a red circle left of a blue square" -W 64 -H 48 --steps 4 -s 42 -t 2 -o "$out/b.png"
  if cmp -s "$out/a.png" "$out/b.png"; then ok "same seed, same threads: the same PNG"; else bad "determinism"; fi
  gen --from "$out/a.png" -o "$out/from.png"
  if cmp -s "$out/a.png" "$out/from.png"; then ok "--from regenerates it bit for bit"; else bad "--from"; fi
  gen -m "$sd3" -p "a red circle left of a blue square" -W 64 -H 48 --steps 4 -s 43 -t 2 -o "$out/c.png"
  d=$(maxdiff "$out/a.png" "$out/c.png")
  if [ "$d" -gt 8 ] 2>/dev/null; then ok "another seed, another image (max diff $d)"; else bad "seed has no effect ($d)"; fi
  gen --from "$out/a.png" -t 1 -o "$out/t1.png"
  d=$(maxdiff "$out/a.png" "$out/t1.png")
  if [ "$d" -le 2 ] 2>/dev/null; then ok "1 vs 2 threads: max pixel diff $d <= 2"; else bad "1 vs 2 threads: $d"; fi
  # metadata: A1111 parameters and the JSON settings
  grep -qF "Steps: 4, Sampler: DPM++ 2M, Schedule type: SD3, CFG scale: 5, Shift: 3, Seed: 42, Size: 64x48" "$tmp/meta" &&
    grep -q '"prompt":"a red circle left of a blue square"' "$tmp/meta" && grep -q '"seed":"42"' "$tmp/meta" &&
    grep -q '"threads":2' "$tmp/meta" && grep -q '"sigmas_used":\[1,' "$tmp/meta" &&
    ok "metadata: parameters and settings" || { bad "metadata"; cat "$tmp/meta"; }
  want=$(dd if="$sd3/transformer/diffusion_pytorch_model.safetensors" bs=65536 skip=16 count=1 2>/dev/null | sha256sum | cut -c1-8)
  if grep -q "Model hash: $want," "$tmp/meta" && grep -q "\"model_hash\":\"$want\"" "$tmp/meta"; then ok "model hash = sha256sum of 64 KiB at 1 MiB ($want)"
  else bad "model hash (want $want)"; grep "hash" "$tmp/meta"; fi
  # a flag overrides what --from says
  gen --from "$out/a.png" -s 43 -o "$out/from43.png"
  if cmp -s "$out/c.png" "$out/from43.png"; then ok "--from with -s 43 = the seed-43 image"; else bad "--from override"; fi
else
  bad "sd3 generate"; cat "$tmp/err"
fi

# ---- batches: image k is the single run with seed + k - 1
if gen -m "$sd3" -p "a red circle left of a blue square" -W 64 -H 48 --steps 4 -s 42 -t 2 -b 2 -o "$out/batch_%d.png" &&
   cmp -s "$out/a.png" "$out/batch_1.png" && cmp -s "$out/c.png" "$out/batch_2.png"; then ok "--batch-count 2 with %d"
else bad "--batch-count"; fi
gen -m "$sd3" -p "x" -W 32 -H 32 --steps 1 -s 1 -b 2 -o "$out/plain.png" && [ -f "$out/plain_1.png" ] && [ -f "$out/plain_2.png" ] &&
  [ ! -f "$out/plain.png" ] && ok "--batch-count without %d: _1, _2" || bad "batch names"

# ---- samplers, custom sigmas, f32, no CFG, no T5
for s in euler heun rf-solver; do
  gen -m "$sd3" -p "a cat" -W 32 -H 32 --steps 2 -s 1 --sampler $s -o "$out/$s.png" && "$DIT" inspect "$out/$s.png" | grep -q "\"sampler\":\"$s\"" &&
    ok "--sampler $s" || bad "--sampler $s"
done
gen -m "$sd3" -p "a cat" -W 32 -H 32 --sigmas 1,0.5,0.2,0 -s 1 --cfg-scale 1 --precision f32 -o "$out/sig.png" &&
  "$DIT" inspect "$out/sig.png" | grep -qF '"steps":3,"cfg_scale":1' && "$DIT" inspect "$out/sig.png" | grep -qF '"sigmas_used":[1,0.5,0.200000003,0]' &&
  ok "--sigmas, --cfg-scale 1, --precision f32" || bad "--sigmas"
nt5=$tmp/sd3_no_t5; mkdir -p "$nt5"
for d in transformer text_encoder text_encoder_2 tokenizer vae; do ln -s "$sd3/$d" "$nt5/$d"; done
"$DIT" generate -m "$nt5" -p "a cat" -W 32 -H 32 --steps 1 -s 1 -o "$out/not5.png" 2>"$tmp/err" && [ -f "$out/not5.png" ] &&
  grep -q "warning: no T5 encoder" "$tmp/err" && ok "SD3 without T5: zeros and a warning" || { bad "SD3 without T5"; cat "$tmp/err"; }

# ---- one SD3 checkpoint holding everything (as sd3_medium_incl_clips_t5xxlfp16.safetensors):
# the parts under their released prefixes, merged by Python's json and struct
python3 - "$tmp/all.safetensors" "$sd3/transformer/diffusion_pytorch_model.safetensors" "" \
  "$sd3/text_encoder/model.safetensors" text_encoders.clip_l.transformer. \
  "$sd3/text_encoder_2/model.safetensors" text_encoders.clip_g.transformer. \
  "$sd3/text_encoder_3/model.safetensors" text_encoders.t5xxl.transformer. \
  "$sd3/vae/diffusion_pytorch_model.safetensors" first_stage_model. <<'EOF'
import json, struct, sys
head, blobs, off = {}, [], 0
for path, prefix in zip(sys.argv[2::2], sys.argv[3::2]):
    d = open(path, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n]); base = 8 + n
    for k, v in h.items():
        if k == '__metadata__': continue
        b, e = v['data_offsets']; blobs.append(d[base + b:base + e])
        head[prefix + k] = {'dtype': v['dtype'], 'shape': v['shape'], 'data_offsets': [off, off + e - b]}; off += e - b
hj = json.dumps(head).encode(); hj += b' ' * (-len(hj) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(blobs))
EOF
tk=$tmp/tokenizers; mkdir -p "$tk"
ln -s "$G/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz" "$G/tokenizers/t5/spiece.model" "$tk/"
# The tiny CLIPs' head counts are not in their tensors (a released checkpoint's encoders have the
# released geometry): --clip-l/--clip-g name the folders with config.json; T5 and the VAE must come
# from the file.
if gen -m "$tmp/all.safetensors" --clip-l "$sd3/text_encoder" --clip-g "$sd3/text_encoder_2" --tokenizers "$tk" \
     -p "a red circle left of a blue square" -W 64 -H 48 --steps 4 -s 42 -t 2 -o "$out/all.png" 2>"$tmp/err"; then
  "$DIT" inspect "$out/all.png" >"$tmp/ameta"
  grep -qF "\"t5xxl\":\"$tmp/all.safetensors\"" "$tmp/ameta" && grep -qF "\"vae\":\"kl:$tmp/all.safetensors\"" "$tmp/ameta" &&
    ok "single-file checkpoint: T5 and VAE found inside it" || { bad "single file components"; cat "$tmp/ameta"; }
  d=$(maxdiff "$out/a.png" "$out/all.png")
  if [ "$d" = 0 ]; then ok "single file = diffusers folder, pixel for pixel"; else bad "single file vs folder: $d"; fi
else
  bad "single-file checkpoint"; cat "$tmp/err"
fi

# ---- FLUX-dev: distilled guidance, mu schedule
if gen -m "$flux" -p "a photo of a cat" -W 64 -H 48 --steps 3 -s 7 -o "$out/flux.png"; then
  "$DIT" inspect "$out/flux.png" >"$tmp/fmeta"
  grep -q "PNG 64x48" "$tmp/fmeta" && grep -qF "Schedule type: FLUX (mu), CFG scale: 1, Distilled CFG Scale: 3.5" "$tmp/fmeta" &&
    ok "flux-dev 64x48" || { bad "flux metadata"; cat "$tmp/fmeta"; }
  gen --from "$out/flux.png" -o "$out/flux2.png" && cmp -s "$out/flux.png" "$out/flux2.png" && ok "flux --from" || bad "flux --from"
  gen -m "$flux" -p "a photo of a cat" -n "blurry" --cfg-scale 2 -W 32 -H 32 --steps 2 -s 7 -o "$out/fluxcfg.png" &&
    ok "flux true CFG with a negative prompt" || bad "flux true CFG"
else
  bad "flux generate"
fi

# ---- the embedded model's layout: SD3 + one CLIP with its word vocabulary + KL VAE in one file, the
# generation defaults and the latent normalisation in its metadata (tests/ref/words_model.py)
"$DIT" synth sd3.5-large --depth 2 --hidden 128 --ctx 32 --vec 32 --pos 16 -o "$tmp/w_dit.safetensors" >/dev/null &&
  python3 tests/ref/words_model.py "$tmp/words.safetensors" "$tmp/w_dit.safetensors" "$G/vae/ae_tiny/model.safetensors" ||
  bad "words model fixture"
if "$DIT" generate -m "$tmp/words.safetensors" -p "A red circle, left of a blue square" -s 3 -o "$out/w.png" 2>"$tmp/err"; then
  "$DIT" inspect "$out/w.png" >"$tmp/wmeta"
  grep -q "PNG 32x48" "$tmp/wmeta" && grep -qF "Steps: 3, Sampler: Heun, Schedule type: SD3, CFG scale: 3, Shift: 2," "$tmp/wmeta" &&
    ! grep -q "warning" "$tmp/err" && ok "words model: defaults from its metadata (32x48, 3 heun steps, cfg 3, shift 2)" ||
    { bad "words model metadata defaults"; cat "$tmp/wmeta" "$tmp/err"; }
  gen --from "$out/w.png" -o "$out/w2.png" && cmp -s "$out/w.png" "$out/w2.png" && ok "words model --from" || bad "words model --from"
  gen -m "$tmp/words.safetensors" -p "a red circle left of a blue square" -s 3 -o "$out/w3.png" &&
    [ "$(maxdiff "$out/w.png" "$out/w3.png")" = 0 ] && ok "words model: case and punctuation do not matter" || bad "words normalisation"
  "$DIT" generate -m "$tmp/words.safetensors" -p "a green circle" -s 3 -o "$out/w4.png" 2>"$tmp/err" &&
    grep -qF 'warning: 1 word of the prompt is not in the model'"'"'s vocabulary ("green")' "$tmp/err" &&
    ok "words model: unknown words are named" || { bad "unknown word warning"; cat "$tmp/err"; }
  "$DIT" vae info "kl:$tmp/words.safetensors" | grep -qF "(raw - 0.1) * 0.5" && ok "VAE normalisation from the file's metadata" ||
    bad "vae metadata factors"
else
  bad "words model generate"; cat "$tmp/err"
fi

# ---- dit eval on the words model (random weights: the numbers are whatever they are; checked: the
# shape of the report, fixed seeds, --json, --out, errors)
printf 'a red circle left of a blue square\n# a comment\n\na blue square\n' >"$tmp/prompts.txt"
if "$DIT" eval "$tmp/prompts.txt" -m "$tmp/words.safetensors" --seeds 2 -W 32 -H 32 >"$tmp/ev1" 2>/dev/null &&
   "$DIT" eval "$tmp/prompts.txt" -m "$tmp/words.safetensors" --seeds 2 -W 32 -H 32 >"$tmp/ev2" 2>/dev/null; then
  [ "$(wc -l <"$tmp/ev1")" = 4 ] && grep -qE '^[01]\.[0-9]{3}  [0-9]+/4 objects, [0-9]+/2 images all right  a red circle left of a blue square$' "$tmp/ev1" &&
    tail -n 1 "$tmp/ev1" | grep -qE '^accuracy [01]\.[0-9]{3}$' && cmp -s "$tmp/ev1" "$tmp/ev2" &&
    ok "eval: a line per prompt, the last 'accuracy X.XXX', same seeds same report" || { bad "eval report"; cat "$tmp/ev1"; }
  "$DIT" eval "$tmp/prompts.txt" -m "$tmp/words.safetensors" --seeds 2 -W 32 -H 32 --json --out "$tmp/evout" 2>/dev/null >"$tmp/ev.json" &&
    python3 -c "
import json, sys
r = json.load(open(sys.argv[1])); acc = float(sys.argv[2].split()[1])
assert len(r['prompts']) == 2 and r['seeds'] == 2 and r['tally']['images'] == 4
assert r['tally']['object']['n'] == 6 and abs(r['accuracy'] - acc) < 6e-4
" "$tmp/ev.json" "$(tail -n 1 "$tmp/ev1")" && [ "$(ls "$tmp/evout" | wc -l)" = 4 ] && [ -f "$tmp/evout/p0001_s1.png" ] &&
    ok "eval --json (same accuracy) and --out (4 images)" || { bad "eval --json/--out"; cat "$tmp/ev.json"; }
else
  bad "eval runs"
fi
printf 'a zebra\n' >"$tmp/bad_prompts.txt"
expect "eval: prompt outside the grammar" 1 "bad_prompts.txt:1" "$DIT" eval "$tmp/bad_prompts.txt" -m "$tmp/words.safetensors"
expect "eval: -p is not an eval option" 2 "-p is not an eval option" "$DIT" eval "$tmp/prompts.txt" -p x
expect "eval: bad --seeds" 2 "--seeds 0" "$DIT" eval "$tmp/prompts.txt" --seeds 0

# ---- the noise generators: torch CPU (default) and torch CUDA's Philox
gen -m "$sd3" -p "a cat" -W 32 -H 32 --steps 2 -s 5 --rng cuda -o "$out/nv.png" && gen -m "$sd3" -p "a cat" -W 32 -H 32 --steps 2 -s 5 -o "$out/cpu.png" &&
  "$DIT" inspect "$out/nv.png" | grep -q "RNG: NV" && [ "$(maxdiff "$out/nv.png" "$out/cpu.png")" -gt 8 ] &&
  gen --from "$out/nv.png" -o "$out/nv2.png" && cmp -s "$out/nv.png" "$out/nv2.png" && ok "--rng cuda: other noise, recorded, --from" || bad "--rng cuda"
expect "bad rng" 2 "--rng" "$DIT" generate -m "$sd3" -p x --rng std_default -o "$tmp/e_rng.png"

# ---- class-conditional DiT (eps prediction): DDPM and DDIM, a 4-channel KL VAE
"$DIT" synth dit-xl2 --depth 2 --hidden 144 --pos 4 -o "$tmp/dit.safetensors" >/dev/null &&
  "$DIT" vae synth --ch 32 --ch-mult 1,2,2,2 --res-blocks 1 --z 4 -o "$tmp/vae4.safetensors" >/dev/null || bad "synth dit"
if gen -m "$tmp/dit.safetensors" --vae "$tmp/vae4.safetensors" --class 3 --steps 5 -s 1 -o "$out/dit.png"; then
  "$DIT" inspect "$out/dit.png" >"$tmp/dmeta"
  grep -q "PNG 64x64" "$tmp/dmeta" && grep -qF "Steps: 5, Sampler: DDPM, Schedule type: DDPM linear, CFG scale: 4" "$tmp/dmeta" &&
    grep -qF '"class":3' "$tmp/dmeta" && ok "DiT: ddpm, cfg 4, class 3, 64x64" || { bad "DiT metadata"; cat "$tmp/dmeta"; }
  gen --from "$out/dit.png" -o "$out/dit2.png" && cmp -s "$out/dit.png" "$out/dit2.png" && ok "DiT --from (DDPM noise included)" || bad "DiT --from"
  gen --from "$out/dit.png" --sampler ddim -o "$out/ddim.png" && [ "$(maxdiff "$out/dit.png" "$out/ddim.png")" -gt 0 ] &&
    ok "DiT --sampler ddim" || bad "DiT ddim"
else
  bad "DiT generate"
fi
expect "DiT without a class" 2 "--class" "$DIT" generate -m "$tmp/dit.safetensors" --vae "$tmp/vae4.safetensors" -o "$tmp/e_dit.png"
expect "DiT class out of range" 2 "0..999" "$DIT" generate -m "$tmp/dit.safetensors" --vae "$tmp/vae4.safetensors" --class 1000 -o "$tmp/e_dit.png"
expect "DiT with a flow sampler" 2 "ddpm or ddim" "$DIT" generate -m "$tmp/dit.safetensors" --vae "$tmp/vae4.safetensors" --class 1 --sampler euler -o "$tmp/e_dit.png"
expect "DiT at another size" 2 "64x64 images only" "$DIT" generate -m "$tmp/dit.safetensors" --vae "$tmp/vae4.safetensors" --class 1 -W 128 -o "$tmp/e_dit.png"
expect "flow model with ddpm" 2 "euler, heun, rf-solver or dpm++2m" "$DIT" generate -m "$sd3" -p x --sampler ddpm -o "$tmp/e_dit.png"
if ls "$tmp"/e_*.png >/dev/null 2>&1; then bad "files left by the DiT errors"; else ok "no files left by the DiT errors"; fi

# ---- errors: before any work, one line, exit 2 (usage) or 1 (runtime), nothing written
e=$tmp/e; mkdir -p "$e"
expect "width not a multiple of 16" 2 "multiple of 16" "$DIT" generate -m "$sd3" -p x -W 50 -o "$e/x.png"
expect "height not a number" 2 "-H abc" "$DIT" generate -m "$sd3" -p x -H abc -o "$e/x.png"
expect "unknown flag" 2 "--frobnicate" "$DIT" generate -m "$sd3" -p x --frobnicate 1 -o "$e/x.png"
expect "bad sampler" 2 "--sampler" "$DIT" generate -m "$sd3" -p x --sampler dpm9 -o "$e/x.png"
expect "bad sigmas" 2 "--sigmas" "$DIT" generate -m "$sd3" -p x --sigmas 1,2,0 -o "$e/x.png"
expect "no prompt" 2 "no prompt" "$DIT" generate -m "$sd3" -o "$e/x.png"
expect "missing model" 1 "nothing.safetensors" "$DIT" generate -m "$tmp/nothing.safetensors" -p x -o "$e/x.png"
nog=$tmp/sd3_no_g; mkdir -p "$nog"
for d in transformer text_encoder text_encoder_3 tokenizer tokenizer_3 vae; do ln -s "$sd3/$d" "$nog/$d"; done
expect "missing CLIP-G" 2 "--clip-g" "$DIT" generate -m "$nog" -p x -o "$e/x.png"
nov=$tmp/sd3_no_vae; mkdir -p "$nov"
for d in transformer text_encoder text_encoder_2 text_encoder_3 tokenizer tokenizer_3; do ln -s "$sd3/$d" "$nov/$d"; done
expect "missing VAE" 2 "--vae" "$DIT" generate -m "$nov" -p x -o "$e/x.png"
expect "VAE of the wrong family" 2 "latent channels" "$DIT" generate -m "$sd3" -p x --vae "taesd:$G/taef2/taef2_decoder.safetensors" -o "$e/x.png"
expect "not a CLIP encoder" 2 "t5_tiny/model.safetensors: not a CLIP" "$DIT" generate -m "$sd3" -p x -W 32 -H 32 --clip-l "$G/t5/t5_tiny/model.safetensors" -o "$e/x.png"
expect "not a T5 encoder" 2 "text_encoder: not a T5" "$DIT" generate -m "$flux" -p x -W 32 -H 32 --t5xxl "$sd3/text_encoder" -o "$e/x.png"
f40=$tmp/flux40; mkdir -p "$f40/transformer"
for d in text_encoder text_encoder_2 tokenizer tokenizer_2 vae; do ln -s "$flux/$d" "$f40/$d"; done
"$DIT" synth flux-dev --depth 1 --hidden 256 --ctx 32 --vec 40 -o "$f40/transformer/diffusion_pytorch_model.safetensors" >/dev/null
expect "encoders of the wrong width" 2 "do not fit" "$DIT" generate -m "$f40" -p x -W 32 -H 32 -o "$e/x.png"
expect "unwritable output" 2 "-o $tmp/none/x.png" "$DIT" generate -m "$sd3" -p x -W 32 -H 32 -o "$tmp/none/x.png"
expect "output is a folder" 2 "is a folder" "$DIT" generate -m "$sd3" -p x -W 32 -H 32 -o "$e"
expect "memory budget" 2 "--max-memory" "$DIT" generate -m "$sd3" -p x -W 64 -H 64 --max-memory 1M -o "$e/x.png"
expect "too large for the position grid" 2 "up to 64x64" "$DIT" generate -m "$sd3" -p x -W 128 -H 128 -o "$e/x.png"
python3 -c "
import struct, sys, zlib
chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
sys.stdout.buffer.write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 2, 8, 2, 0, 0, 0)) +
                        chunk(b'IDAT', zlib.compress(b'\\0' * 7 * 2)) + chunk(b'IEND', b''))" >"$tmp/plain.png"
expect "--from without settings" 1 "no 'dit' settings" "$DIT" generate --from "$tmp/plain.png" -o "$e/x.png"
expect "--help" 0 "" "$DIT" generate --help
if [ -z "$(ls -A "$e")" ]; then ok "no output left by the failures"; else bad "files left: $(ls "$e")"; fi
"$DIT" generate --help | grep -q -- "--max-memory SIZE" && "$DIT" generate --help | grep -q "sd3.5-large 4.5" &&
  ok "--help shows flags and family defaults" || bad "--help"
finish

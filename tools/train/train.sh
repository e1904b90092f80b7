#!/bin/sh
# tools/train/train.sh — the embedded default model in one command (also `make train`):
#   dataset -> vocabulary -> VAE -> latents -> DiT + text encoder -> weights/default.safetensors
#   -> golden cases (tests/cases/embedded) -> checks in the C engine -> preview samples.
# Every stage skips when its output is there, so re-running continues: the VAE and the DiT resume
# from RUN/vae/ckpt.pt and RUN/dit/ckpt.pt until their total step targets (VAE_STEPS, DIT_STEPS),
# each run spending at most its minute budget (VAE_MINUTES, DIT_MINUTES; 0 = no limit). The VAE
# must reach VAE_STEPS before the latents are made (a VAE stopped by its budget ends the run: run
# again to continue it); the DiT is exported after every run, finished or not.
# Seeds are fixed (SEED): batches and noise come from generators seeded by (seed, step).
# Knobs (environment or make variables): see the block below. Example, a 6-hour CPU run:
#   make train VAE_MINUTES=60 DIT_MINUTES=300
# and later, to continue the DiT for two more hours:  make train DIT_MINUTES=120
# On a GPU:  make train DEVICE=cuda THREADS=0
set -e
cd "$(dirname "$0")/../.."

PY=${PY:-/usr/bin/python3}          # Python with torch (Debian python3-torch) and numpy
DIT=${DIT:-build/dit}                # the C engine (dataset generator, checks)
RUN=${RUN:-runs/default}             # work folder (checkpoints, dataset, latents, samples)
DATA=${DATA:-$RUN/data/train}        # dataset prefix (DATA.rgb + DATA.jsonl)
COUNT=${COUNT:-50000}                # training images
SIZE=${SIZE:-128}                    # image size
SEED=${SEED:-0}
DEVICE=${DEVICE:-cpu}                # cpu or cuda
THREADS=${THREADS:-2}                # torch CPU threads (0 = torch's default)
BF16=${BF16:-1}                      # bf16 autocast for training (5x faster DiT steps on this CPU)
VAE_STEPS=${VAE_STEPS:-20000}        # total VAE optimizer steps (batch VAE_BATCH of 64px crops)
VAE_BATCH=${VAE_BATCH:-8}
VAE_MINUTES=${VAE_MINUTES:-75}       # budget of this run for the VAE
DIT_STEPS=${DIT_STEPS:-60000}        # total DiT optimizer steps (batch DIT_BATCH; ~240 min on this CPU)
DIT_DECAY=${DIT_DECAY:-$((DIT_STEPS / 5))}  # the learning rate falls linearly to 0 over the last DIT_DECAY steps
DIT_BATCH=${DIT_BATCH:-32}
DIT_MINUTES=${DIT_MINUTES:-240}      # budget of this run for the DiT
WEIGHTS=${WEIGHTS:-weights/default.safetensors}
CASES=${CASES:-tests/cases/embedded}
FAKE_DATA=${FAKE_DATA:-0}            # 1: a fake dataset (random blocks, random words) for smoke tests
STEPS=${STEPS:-20}                   # generation defaults written into the file's metadata
CFG_SCALE=${CFG_SCALE:-4.0}
SHIFT=${SHIFT:-1.0}

T="$PY tools/train/train.py"
bf=""; [ "$BF16" = 1 ] && bf="--bf16"
dev="--device $DEVICE --threads $THREADS --seed $SEED"
say() { echo "== train.sh: $*"; }
mkdir -p "$(dirname "$DATA")" "$RUN"

# 1. dataset
if [ ! -f "$DATA.rgb" ] || [ ! -f "$DATA.jsonl" ]; then
  if [ "$FAKE_DATA" = 1 ]; then
    say "fake dataset ($COUNT images) -> $DATA"
    $PY tools/train/fake_data.py --out "$DATA" --count "$COUNT" --size "$SIZE" --seed "$SEED"
  elif "$DIT" scene --help 2>&1 | grep -q -- --dataset; then
    say "dataset ($COUNT images) -> $DATA"
    "$DIT" scene --dataset "$DATA" --count "$COUNT" --size "$SIZE" --split train --seed "$SEED"
  else  # a generator without --dataset: PNG + JSON scenes, converted
    say "dataset ($COUNT images, through PNG files) -> $DATA"
    rm -rf "$DATA.scenes" && mkdir -p "$DATA.scenes"
    "$DIT" scene --out "$DATA.scenes" --count "$COUNT" --size "$SIZE" --split train --seed "$SEED"
    $PY tools/train/scene_to_dataset.py --scenes "$DATA.scenes" --out "$DATA" --size "$SIZE"
    rm -rf "$DATA.scenes"
  fi
else say "dataset $DATA: there"; fi

# 2. vocabulary: the grammar's words (dit scene --vocab), else the captions' words
if [ ! -f "$RUN/vocab.json" ]; then
  if [ "$FAKE_DATA" != 1 ] && "$DIT" scene --vocab >"$RUN/words.txt" 2>/dev/null && [ -s "$RUN/words.txt" ]; then
    $T vocab --data "$DATA" --image-size "$SIZE" --words "$RUN/words.txt" --out "$RUN/vocab.json"
  else
    $T vocab --data "$DATA" --image-size "$SIZE" --out "$RUN/vocab.json"
  fi
else say "vocabulary $RUN/vocab.json: there"; fi

# 3. VAE (resumes; nothing to do once at VAE_STEPS)
$T vae --data "$DATA" --image-size "$SIZE" --out "$RUN/vae" $dev $bf --steps "$VAE_STEPS" --minutes "$VAE_MINUTES" \
  --batch "$VAE_BATCH"
vae_step=$($PY -c "import torch; print(torch.load('$RUN/vae/ckpt.pt', map_location='cpu')['step'])")
if [ "$vae_step" -lt "$VAE_STEPS" ]; then
  say "the VAE is at step $vae_step of $VAE_STEPS: run again to continue it (the latents need the final VAE)"
  exit 0
fi

# 4. latents (posterior means) and their normalisation, once per VAE
if [ ! -f "$RUN/latents/latents.f16.npy" ] || [ "$RUN/vae/ckpt.pt" -nt "$RUN/latents/latents.f16.npy" ]; then
  $T latents --data "$DATA" --image-size "$SIZE" --vae "$RUN/vae" --out "$RUN/latents" $dev
else say "latents $RUN/latents: there"; fi

# 5. DiT + text encoder (resumes; nothing to do once at DIT_STEPS)
$T dit --data "$DATA" --image-size "$SIZE" --latents "$RUN/latents" --vocab "$RUN/vocab.json" --out "$RUN/dit" $dev $bf \
  --steps "$DIT_STEPS" --decay "$DIT_DECAY" --minutes "$DIT_MINUTES" --batch "$DIT_BATCH"

# 6. export (EMA weights, F16, <= 16,000,000 bytes)
if [ ! -f "$WEIGHTS" ] || [ "$RUN/dit/ckpt.pt" -nt "$WEIGHTS" ] || [ "$RUN/vae/ckpt.pt" -nt "$WEIGHTS" ]; then
  $PY tools/train/export.py --vae "$RUN/vae" --dit "$RUN/dit" --out "$WEIGHTS" --steps "$STEPS" --cfg-scale "$CFG_SCALE" \
    --shift "$SHIFT"
else say "$WEIGHTS: up to date"; fi

# 7. golden cases for the C engine, computed from the exported file
if [ ! -f "$CASES/dit/case.json" ] || [ "$WEIGHTS" -nt "$CASES/dit/case.json" ]; then
  $PY tools/train/make_golden.py --weights "$WEIGHTS" --out "$CASES" --data "$DATA" --image-size "$SIZE"
else say "$CASES: up to date"; fi

# 8. the C engine loads the file and reproduces the PyTorch model
"$DIT" inspect "$WEIGHTS" | grep "^model:"
"$DIT" vae info "kl:$WEIGHTS" | head -n 2
for c in clip dit vae; do
  if "$DIT" check "$CASES/$c" >"$RUN/check_$c.txt" 2>&1; then say "dit check $CASES/$c: PASS"
  else cat "$RUN/check_$c.txt"; say "dit check $CASES/$c: FAIL"; exit 1; fi
done

# 9. preview samples (PyTorch, the exported weights); with the checker (dit score): their scores, and
# the VAE's reconstructions of the last 200 training images scored against the originals
if "$DIT" score --help >/dev/null 2>&1; then
  $PY tools/train/sample.py --weights "$WEIGHTS" --out "$RUN/samples" --threads "$THREADS" --score "$DIT"
  $PY tools/train/vae_eval.py --data "$DATA" --image-size "$SIZE" --weights "$WEIGHTS" --first -1 --count 200 \
    --out "$RUN/vae_eval" --dit "$DIT" --threads "$THREADS"
else
  $PY tools/train/sample.py --weights "$WEIGHTS" --out "$RUN/samples" --threads "$THREADS"
fi
say "done"

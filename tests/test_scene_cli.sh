#!/bin/sh
# tests/test_scene_cli.sh — `dit scene` and `dit score` as users run them: the files a dataset run
# writes (PNG with its caption in a text chunk, JSON truth, captions.txt), the same bytes for the
# same seed, the vocabulary, a scene scored against its own captions (all right) and against a
# wrong one (judged wrong), --json, and the errors (one line naming the flag or file; exit 2 for
# usage, 1 for runtime; nothing left behind). Needs $DIT_BIN (the Makefile passes the ASan build).
cd "$(dirname "$0")/.." || exit 1
DIT=${DIT_BIN:-build/dit}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   scene_cli/$1"; }
bad() { failed=$((failed + 1)); echo "FAIL scene_cli/$1"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# expect NAME RC NEEDLE CMD...: exit status RC, and (when NEEDLE is not empty) NEEDLE in the output,
# which must then be one line on stderr and nothing on stdout.
expect() {
  name=$1; want=$2; needle=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ $rc != "$want" ]; then echo "  exit $rc, wanted $want: $*"; cat "$tmp/out" "$tmp/err" | head -5; bad "$name"; return; fi
  if [ -n "$needle" ]; then
    if ! grep -qF -- "$needle" "$tmp/err" || [ "$(wc -l <"$tmp/err")" -ne 1 ] || [ -s "$tmp/out" ]; then
      echo "  wanted one line on stderr with '$needle' and no output, got:"; cat "$tmp/out" "$tmp/err"; bad "$name"; return
    fi
    echo "  $name: $(cat "$tmp/err")"
  fi
  ok "$name"
}

# ---- a small dataset
expect "write 6 scenes" 0 "" "$DIT" scene --seed 40 --count 6 --size 128x112 --out "$tmp/d"
n_png=$(ls "$tmp/d"/*.png 2>/dev/null | wc -l); n_json=$(ls "$tmp/d"/*.json 2>/dev/null | wc -l)
if [ "$n_png" = 6 ] && [ "$n_json" = 6 ] && [ -f "$tmp/d/00005.png" ] && [ -f "$tmp/d/captions.txt" ]; then ok "files: 6 PNG, 6 JSON, captions.txt"
else ls -la "$tmp/d"; bad "files"; fi
if [ "$(wc -l <"$tmp/d/captions.txt")" = 18 ] && [ "$(cut -f1 "$tmp/d/captions.txt" | sort -u | wc -l)" = 6 ]; then ok "captions.txt: 3 captions per image"
else cat "$tmp/d/captions.txt"; bad "captions.txt"; fi
"$DIT" inspect "$tmp/d/00000.png" >"$tmp/insp" 2>&1
first=$(sed -n 1p "$tmp/d/captions.txt" | cut -f2)
if grep -q "128x112" "$tmp/insp" && grep -qF "$first" "$tmp/insp" && grep -q "seed" "$tmp/insp"; then ok "PNG: size, caption and seed in text chunks"
else cat "$tmp/insp"; bad "PNG text chunks"; fi
if grep -q '"width":[[:space:]]*128' "$tmp/d/00000.json" && grep -q '"objects"' "$tmp/d/00000.json" && grep -q '"depth"' "$tmp/d/00000.json" &&
   grep -qF "$first" "$tmp/d/00000.json"; then ok "JSON: size, objects, captions"
else cat "$tmp/d/00000.json"; bad "JSON"; fi
expect "same seed again" 0 "" "$DIT" scene --seed 40 --count 6 --size 128x112 --out "$tmp/e"
if cmp -s "$tmp/d/00003.png" "$tmp/e/00003.png" && cmp -s "$tmp/d/captions.txt" "$tmp/e/captions.txt"; then ok "same seed, same bytes"
else bad "same seed, same bytes"; fi
expect "heldout split" 0 "" "$DIT" scene --count 3 --split heldout --out "$tmp/h"
if grep -q '"split":[[:space:]]*"heldout"' "$tmp/h/00000.json" && ! grep -q '"heldout":[[:space:]]*false' "$tmp/h"/*.json; then ok "heldout: only held-out objects"
else bad "heldout JSON"; fi

# ---- the vocabulary
"$DIT" scene --vocab >"$tmp/vocab"; rc=$?
if [ $rc = 0 ] && [ "$(wc -l <"$tmp/vocab")" -ge 40 ] && grep -qx "striped" "$tmp/vocab" && grep -qx "behind" "$tmp/vocab"; then ok "vocab: $(wc -l <"$tmp/vocab") words"
else bad "vocab"; fi
words_ok=1
for w in $(cut -f2 "$tmp/d/captions.txt" "$tmp/h/captions.txt" | tr ' ,' '\n\n' | sort -u); do
  grep -qx -- "$w" "$tmp/vocab" || { echo "  '$w' not in the vocabulary"; words_ok=0; }
done
[ $words_ok = 1 ] && ok "caption words in the vocabulary" || bad "caption words in the vocabulary"

# ---- score: each image against its own captions (all right), one against a wrong caption
all=1
while IFS="$(printf '\t')" read -r file caption; do
  "$DIT" score "$tmp/d/$file" -p "$caption" >"$tmp/score" 2>&1 || { cat "$tmp/score"; all=0; }
  grep -q "all correct: yes" "$tmp/score" || { echo "  $file: '$caption'"; cat "$tmp/score"; all=0; }
done <"$tmp/d/captions.txt"
[ $all = 1 ] && ok "score: every caption of its image all right" || bad "score own captions"
"$DIT" scene --seed 7 --out "$tmp/s" >/dev/null
colours=$(grep -o '"colour":[[:space:]]*"[a-z]*"' "$tmp/s/00000.json" | sed 's/.*"\([a-z]*\)"$/\1/' | sort -u)
absent=$(for c in red green blue yellow orange purple white black; do echo "$colours" | grep -qx $c || { echo $c; break; }; done)
shape=$(grep -o '"shape":[[:space:]]*"[a-z]*"' "$tmp/s/00000.json" | head -1 | sed 's/.*"\([a-z]*\)"$/\1/')
"$DIT" score "$tmp/s/00000.png" -p "a $absent $shape" >"$tmp/score" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "all correct: no" "$tmp/score" && grep -q "FAIL" "$tmp/score"; then ok "score: a $absent $shape is wrong"
else cat "$tmp/score"; bad "score wrong caption"; fi
"$DIT" score "$tmp/s/00000.png" -p "a $shape" --json >"$tmp/json" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q '"all_correct":[[:space:]]*true' "$tmp/json" && grep -q '"objects"' "$tmp/json" &&
   python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/json" 2>/dev/null; then ok "score --json"
else cat "$tmp/json"; bad "score --json"; fi
expect "score without a prompt lists objects" 0 "" "$DIT" score "$tmp/s/00000.png"

# ---- --dataset: the same scenes as the PNG files, in PREFIX.rgb + PREFIX.jsonl (read by Python here)
if "$DIT" scene --dataset "$tmp/ds" --count 3 --seed 0 && [ "$(wc -l <"$tmp/ds.jsonl")" = 3 ] &&
   [ "$(wc -c <"$tmp/ds.rgb")" = $((3 * 128 * 128 * 3)) ] && [ ! -e "$tmp/ds.rgb.tmp" ] &&
   "$DIT" scene --count 3 --seed 0 --out "$tmp/ds_png" >/dev/null &&
   python3 - "$tmp/ds" "$tmp/ds_png" <<'PYEOF'
import json, sys
pre, png = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(pre + '.jsonl')]
for i, l in enumerate(lines):
    truth = json.load(open('%s/%05d.json' % (png, i)))
    assert l['index'] == i and l['captions'] == truth['captions'] and l['objects'] == truth['objects'], i
rgb = open(pre + '.rgb', 'rb').read()
assert len(set(rgb[:128 * 128 * 3])) > 2 and rgb[:49152] != rgb[49152:98304]
PYEOF
then ok "--dataset: rgb + jsonl, the scenes of --out"; else bad "--dataset"; fi
expect "scene: --dataset in a missing folder" 1 "$tmp/none/d" "$DIT" scene --dataset "$tmp/none/d" --count 2
[ ! -e "$tmp/none" ] && ok "--dataset failure leaves nothing" || bad "--dataset failure left files"

# ---- errors
expect "scene: bad --size" 2 "--size 20" "$DIT" scene --size 20 --out "$tmp/x"
expect "scene: bad --split" 2 "--split test" "$DIT" scene --split test --out "$tmp/x"
expect "scene: bad --count" 2 "--count 0" "$DIT" scene --count 0 --out "$tmp/x"
expect "scene: --seed without value" 2 "--seed needs a value" "$DIT" scene --seed
expect "scene: unknown option" 2 "'--colour'" "$DIT" scene --colour red
[ ! -e "$tmp/x" ] && ok "usage errors write nothing" || bad "usage errors write nothing"
touch "$tmp/file"
expect "scene: --out under a file" 1 "$tmp/file/sub" "$DIT" scene --out "$tmp/file/sub"
mkdir "$tmp/ro" && chmod 555 "$tmp/ro"
if [ "$(id -u)" != 0 ]; then
  expect "scene: read-only folder" 1 "$tmp/ro" "$DIT" scene --count 3 --out "$tmp/ro"
  [ -z "$(ls "$tmp/ro")" ] && ok "read-only folder: nothing left" || bad "read-only folder: files left"
fi
mkdir -p "$tmp/f/captions.txt"   # the list cannot be written: the run fails and takes back what it wrote
expect "scene: captions.txt cannot be written" 1 "captions.txt" "$DIT" scene --count 3 --out "$tmp/f"
[ "$(ls "$tmp/f")" = captions.txt ] && ok "failed run: nothing left" || { ls "$tmp/f"; bad "failed run: files left"; }
expect "score: no image" 2 "needs an IMAGE" "$DIT" score -p "a red circle"
expect "score: missing file" 1 "$tmp/none.png" "$DIT" score "$tmp/none.png" -p "a red circle"
expect "score: prompt outside the grammar" 2 "-p: prompt: unknown word 'blob'" "$DIT" score "$tmp/s/00000.png" -p "a red blob"
expect "score: -p without value" 2 "-p needs a value" "$DIT" score "$tmp/s/00000.png" -p
expect "score: unknown option" 2 "'--fast'" "$DIT" score "$tmp/s/00000.png" --fast

echo "$passed passed, $failed failed"
[ $failed = 0 ]

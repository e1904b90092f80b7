#!/bin/sh
# tests/test_check_tokenizers.sh — `dit check` passes the golden tokenizer case sets
# ($DIT_GOLDEN/tokenizers/clip and .../t5), and `dit tokenize` prints the ids a user expects.
# Under CI=true a missing golden folder is a failure; elsewhere the tests skip.
cd "$(dirname "$0")/.." || exit 1
bin=${DIT_BIN:-build/dit}
golden=${DIT_GOLDEN:-../shared/golden}
passed=0; failed=0; skipped=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
if [ ! -d "$golden/tokenizers" ]; then
  if [ "$CI" = true ]; then fail "check_tokenizers: $golden/tokenizers is missing (CI=true)"
  else skipped=$((skipped + 1)); echo "skip check_tokenizers: $golden/tokenizers not found (set DIT_GOLDEN)"; fi
  echo "$passed passed, $failed failed, $skipped skipped"
  [ $failed = 0 ]; exit
fi
for kind in clip t5; do
  out=$("$bin" check "$golden/tokenizers/$kind" 2>&1); rc=$?
  last=$(echo "$out" | tail -n 1)
  if [ $rc = 0 ] && [ "$last" = PASS ] && ! echo "$out" | grep -q '^FAIL '; then ok "check tokenizers/$kind"
  else echo "$out" | tail -n 20; fail "check tokenizers/$kind (exit $rc, last line '$last')"; fi
done
# A case set with a declared field dropped from one case, or one id changed, must FAIL.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for variant in dropped changed; do
  mkdir -p "$tmp/$variant" && cp "$golden/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz" "$tmp/$variant/"
  if [ $variant = dropped ]; then sed '54{/"flux_clip_l": \[/d}' "$golden/tokenizers/clip/cases.json" >"$tmp/$variant/cases.json"
  else sed '54s/"flux_clip_l": \[49406, 320/"flux_clip_l": [49406, 321/' "$golden/tokenizers/clip/cases.json" >"$tmp/$variant/cases.json"; fi
  if cmp -s "$golden/tokenizers/clip/cases.json" "$tmp/$variant/cases.json"; then fail "check: $variant did not change the copy"; continue; fi
  out=$("$bin" check "$tmp/$variant" 2>&1); rc=$?
  if [ $rc = 1 ] && [ "$(echo "$out" | tail -n 1)" = FAIL ] && echo "$out" | grep -q "^FAIL .*flux_clip_l"; then ok "check: a $variant field fails"
  else echo "$out" | tail -n 5; fail "check: a $variant field fails"; fi
done
expect() { # name, expected output, command...
  name=$1; want=$2; shift 2
  got=$("$@" 2>&1)
  if [ "$got" = "$want" ]; then ok "$name"; else echo "  got: $got"; echo "  expected: $want"; fail "$name"; fi
}
expect "tokenize clip raw" "320 1125 539 320 2368" "$bin" tokenize --tokenizer "$golden/tokenizers/clip" "a photo of a cat"
expect "tokenize t5 raw" "3 9 1202 13 3 9 1712" "$bin" tokenize --tokenizer "$golden/tokenizers/t5/spiece.model" "a photo of a cat"
expect "tokenize t5 flux" "3 9 1712 1 0 0 0 0" "$bin" tokenize --tokenizer "$golden/tokenizers/t5" --mode flux --max-length 8 "a cat"
if "$bin" tokenize --tokenizer "$golden/tokenizers" "x" >/dev/null 2>&1; then fail "tokenize: a folder without a tokenizer must fail"
else ok "tokenize: no tokenizer in folder"; fi
"$bin" tokenize --mode nope --tokenizer x y >/dev/null 2>&1
if [ $? = 2 ]; then ok "tokenize: usage error exits 2"; else fail "tokenize: usage error exits 2"; fi
echo "$passed passed, $failed failed"
[ $failed = 0 ]

#!/bin/sh
# tests/test_layers.sh — module dependencies run one way:
#   core <- text, dit, vae <- guidance <- sampler <- tools
# Every #include "dir/..." in a module must name the module itself or one it may depend on.
cd "$(dirname "$0")/.." || exit 1
allowed() {
  case "$1" in
    core) echo "core" ;;
    text|dit|vae) echo "core $1" ;;
    guidance) echo "core text dit vae guidance" ;;
    sampler) echo "core text dit vae guidance sampler" ;;
    *) echo "core text dit vae guidance sampler tools tests" ;;
  esac
}
passed=0; failed=0
for mod in core text dit vae guidance sampler tools; do
  ok=1
  for f in $(ls $mod/*.c $mod/*.h 2>/dev/null); do
    for dep in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\)\/.*/\1/p' "$f" | sort -u); do
      case " $(allowed $mod) " in
        *" $dep "*) ;;
        *) echo "  FAIL $f includes $dep/ (a $mod file may include: $(allowed $mod))"; ok=0 ;;
      esac
    done
  done
  if [ $ok = 1 ]; then passed=$((passed + 1)); echo "ok   layers/$mod"; else failed=$((failed + 1)); echo "FAIL layers/$mod"; fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]

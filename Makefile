# dit — Makefile. `make` builds build/dit and build/libdit.a; `make test` runs every test under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make bench` prints kernel throughput; `make deps`
# installs the Debian packages the build needs.
#
# Knobs: CC=clang, NATIVE=0 (portable -O2 without -march=native), OPENMP=0, V=1.

CC       ?= cc
NATIVE   ?= 1
OPENMP   ?= 1
BUILD    ?= build
ASAN_DIR := $(BUILD)/asan

# Library modules in dependency order: core <- text, dit, vae <- guidance <- sampler <- tools.
MODULES  := core text dit vae guidance sampler
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
TOOL_SRC := $(wildcard tools/*.c)
TEST_SRC := $(wildcard tests/test_*.c)

PKGS      := libpng libcjson icu-uc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# -ffp-contract=off: gcc already keeps a*b+c unfused under -std=c11; clang would fuse it, giving other bits.
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unknown-pragmas -ffp-contract=off -I. -I/usr/include/stb -MMD -MP
ifeq ($(NATIVE),1)
  CFLAGS_BASE += -march=native
endif
ifeq ($(OPENMP),1)
  CFLAGS_BASE += -fopenmp
  OMP_LIBS := -fopenmp
endif
# No fast-math flags: the golden tolerances need IEEE arithmetic (and -std=c11 keeps FMA contraction off in gcc).
CFLAGS   ?= -O3 -g
LIBS     := -ldnnl $(PKG_LIBS) -lpng -lcjson -lz -lm $(OMP_LIBS)
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_OBJ      := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ     := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
ASAN_LIB_OBJ := $(LIB_SRC:%.c=$(ASAN_DIR)/obj/%.o)
ASAN_TOOL_OBJ:= $(TOOL_SRC:%.c=$(ASAN_DIR)/obj/%.o)
TEST_BIN     := $(TEST_SRC:tests/%.c=$(ASAN_DIR)/tests/%)

.SECONDARY:
.PHONY: all test bench bench-text demo eval deps clean info check-clang train
all: $(BUILD)/dit $(BUILD)/libdit.a

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  CC      $<";) $(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(ASAN_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  CC asan $<";) $(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -O1 -g $(SANITIZE) -c $< -o $@

$(BUILD)/libdit.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(ASAN_DIR)/libdit.a: $(ASAN_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dit: $(TOOL_OBJ) $(BUILD)/libdit.a
	$(CC) $(CFLAGS) $(TOOL_OBJ) $(BUILD)/libdit.a $(LIBS) -o $@

$(ASAN_DIR)/dit: $(ASAN_TOOL_OBJ) $(ASAN_DIR)/libdit.a
	$(CC) $(SANITIZE) $(ASAN_TOOL_OBJ) $(ASAN_DIR)/libdit.a $(LIBS) -o $@

# Library code that lives in tools/ (the scene generator and the checker): the dit binary links it
# with the other tools, test programs through this archive.
TOOL_LIB_SRC      := tools/scene.c tools/caption.c tools/checker.c
ASAN_TOOL_LIB_OBJ := $(TOOL_LIB_SRC:%.c=$(ASAN_DIR)/obj/%.o)
$(ASAN_DIR)/libdittools.a: $(ASAN_TOOL_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(ASAN_DIR)/tests/%: $(ASAN_DIR)/obj/tests/%.o $(ASAN_DIR)/libdittools.a $(ASAN_DIR)/libdit.a
	@mkdir -p $(dir $@)
	$(CC) $(SANITIZE) $< $(ASAN_DIR)/libdittools.a $(ASAN_DIR)/libdit.a $(LIBS) -o $@

# Every test program and tests/test_*.sh runs; the last line sums them as "N passed, N failed".
test: $(TEST_BIN) $(ASAN_DIR)/dit
	@DIT_BIN=$(ASAN_DIR)/dit sh tests/run.sh $(TEST_BIN) $(wildcard tests/test_*.sh)

# Kernels, then one forward of an SD3.5-medium-geometry model (random weights from `dit synth`,
# written once to $(BUILD)/bench/, about 5 GB) at 512^2 and 1024^2.
BENCH_MODEL := $(BUILD)/bench/sd3.5-medium.safetensors
bench: $(BUILD)/dit $(BENCH_MODEL)
	$(BUILD)/dit bench
	$(BUILD)/dit bench --model $(BENCH_MODEL) --sizes 512,1024

$(BENCH_MODEL): | $(BUILD)/dit
	@mkdir -p $(dir $@)
	$(BUILD)/dit synth sd3.5-medium -o $@

# One T5-XXL-geometry encode (24 blocks, d_model 4096; random weights from `dit synth t5xxl`, about
# 9.5 GB on disk and 9.3 GB of packed weights in memory) on 256 tokens. Not part of `make bench`.
BENCH_T5 := $(BUILD)/bench/t5xxl.safetensors
bench-text: $(BUILD)/dit $(BENCH_T5)
	$(BUILD)/dit bench --text $(BENCH_T5) --tokens 256

$(BENCH_T5): | $(BUILD)/dit
	@mkdir -p $(dir $@)
	$(BUILD)/dit synth t5xxl -o $@

# The main job: text to image with the embedded default model (weights/default.safetensors, trained by
# `make train`), 128x128 with the defaults stored in the file. Change the picture with
# make demo DEMO_PROMPT="two green stars above a striped purple ring" DEMO_SEED=3
DEMO_PROMPT ?= a large red circle to the left of a small blue square
DEMO_SEED   ?= 1
demo: deps all
	@if [ -f weights/default.safetensors ]; then \
	  $(BUILD)/dit generate -p "$(DEMO_PROMPT)" -s $(DEMO_SEED) -o demo.png; \
	else \
	  echo "make demo: the embedded default model (weights/default.safetensors) is missing; make train makes it"; \
	  exit 1; \
	fi

# The embedded model's quality bar: dit eval on the 300 held-out captions (object-level accuracy, last line).
EVAL_PROMPTS ?= tools/train/heldout_prompts.txt
EVAL_SEEDS   ?= 1
eval: $(BUILD)/dit
	$(BUILD)/dit eval $(EVAL_PROMPTS) --seeds $(EVAL_SEEDS)

info: $(BUILD)/dit
	$(BUILD)/dit info

# Warning check with clang (the build must be warning-free under gcc and clang).
check-clang:
	@for f in $(LIB_SRC) $(TOOL_SRC) $(TEST_SRC); do \
	  clang $(filter-out -MMD -MP,$(CFLAGS_BASE)) $(PKG_CFLAGS) -Werror -fsyntax-only $$f || exit 1; done; echo "clang: no warnings"

DEB_PKGS := gcc make pkg-config clang libomp-dev libdnnl-dev libfftw3-dev libpng-dev libstb-dev \
            libcjson-dev zlib1g-dev libicu-dev
# The embedded default model weights/default.safetensors, trained by the project: dataset (dit scene)
# -> VAE -> latents -> MM-DiT + text encoder -> export -> golden cases -> dit check (tools/train/train.sh,
# PyTorch from Debian's python3-torch). Every stage resumes or skips, so running it again continues.
# Budgets and knobs are variables: make train VAE_MINUTES=60 DIT_MINUTES=300 [DEVICE=cuda THREADS=0]
train: $(BUILD)/dit
	DIT=$(BUILD)/dit sh tools/train/train.sh

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(ASAN_LIB_OBJ:.o=.d) $(ASAN_TOOL_OBJ:.o=.d) $(TEST_SRC:tests/%.c=$(ASAN_DIR)/obj/tests/%.d)

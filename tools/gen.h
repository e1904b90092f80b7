/* tools/gen.h — the text-to-image pipeline of `dit generate` in steps, for the commands that run it
 * many times (dit eval): settings and checks once, encoders and model loaded once.
 *
 *   gen *g = gen_new("dit eval");
 *   if ((rc = gen_prepare(g, argc, argv, 0))) ...;       // generate's flags; -1: --help was printed
 *   gen_text_load(g); gen_model_load(g);
 *   for each prompt: gen_encode(g, prompt); for each seed: gen_sample(g, seed, &im); ...
 *   gen_free(g);
 *
 * Every function returns 0, or 1 after printing one line "CMD: problem" (gen_prepare: 2 for usage
 * errors). Settings, defaults and metadata: tools/generate.c. */
#ifndef DIT_TOOLS_GEN_H
#define DIT_TOOLS_GEN_H

#include <stdint.h>

#include "core/image.h"

typedef struct gen gen;

enum { GEN_NEED_PROMPT = 1, GEN_CHECK_OUTPUT = 2 }; /* gen_prepare: -p required; -o must be writable */

gen *gen_new(const char *cmd); /* cmd names the command in messages; NULL when out of memory */
void gen_free(gen *g);         /* NULL is fine */
int gen_prepare(gen *g, int argc, char **argv, unsigned flags);
int gen_text_load(gen *g);     /* no-op for class-conditional models */
int gen_encode(gen *g, const char *prompt); /* prompt NULL: the -p one; the negative is -n's */
void gen_text_free(gen *g);
int gen_model_load(gen *g);
int gen_sample(gen *g, uint64_t seed, image *im);                         /* 8-bit RGB */
int gen_save(const gen *g, const image *im, const char *path, uint64_t seed); /* with the settings */
uint64_t gen_seed(const gen *g); /* -s, or the random one drawn */
int gen_quiet(const gen *g);
void gen_summary(const gen *g);  /* time per phase and peak memory on stderr, unless quiet */

#endif

/* tools/cli.h — the subcommands of the `dit` binary. Each returns the process exit code:
 * 0 success, 1 runtime error (bad file, failed computation), 2 usage error. Errors are one line
 * on stderr, "dit CMD: ..." naming the file or flag and what was wrong. */
#ifndef DIT_TOOLS_CLI_H
#define DIT_TOOLS_CLI_H

#define DIT_VERSION "0.1.0"

int cmd_info(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_synth(int argc, char **argv);
/* tools/text_tools.c: the text-encoder presets of synth and bench */
int synth_t5(const char *out, int depth, unsigned long seed);
int bench_text(const char *path, int n_tok, int reps);
int cmd_tokenize(int argc, char **argv);
int cmd_vae(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* tools/bench_vae.c: `dit bench --vae` (decoders at 1024x1024). */
int bench_vae(int reps);
/* tools/scene_cmd.c: the embedded model's dataset and its scorer */
int cmd_scene(int argc, char **argv);
int cmd_score(int argc, char **argv);

#endif

/* tools/dit.c — the `dit` command: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} subcommand;

static const subcommand COMMANDS[] = {
    { "generate", cmd_generate, "-p PROMPT [-m MODEL] -o OUT.png: text to image (see dit generate --help)" },
    { "eval", cmd_eval, "PROMPTS.txt [--seeds N] [--json]: generate and score scene prompts (object accuracy)" },
    { "info", cmd_info, "version, build options, CPU features, threads, oneDNN and the matmul path" },
    { "inspect", cmd_inspect, "FILE.safetensors | model.safetensors.index.json: list tensors and metadata" },
    { "check", cmd_check, "CASE_DIR: run a golden case folder and compare with the reference (PASS/FAIL)" },
    { "synth", cmd_synth, "PRESET -o FILE: a random-weight model at a released geometry (for benchmarks)" },
    { "tokenize", cmd_tokenize, "--tokenizer PATH TEXT: the CLIP or T5 token ids of a prompt (raw, SD3, FLUX)" },
    { "vae", cmd_vae, "encode IMAGE | decode LATENT | info SPEC | synth: images <-> latents through a VAE" },
    { "scene", cmd_scene, "[--count N --size W --split train|heldout --out DIR]: shape scenes, truth, captions" },
    { "score", cmd_score, "IMAGE -p PROMPT [--json]: the shapes in an image and its score against a caption" },
    { "bench", cmd_bench, "kernel throughput vs the bf16 peak; --model FILE: one forward, seconds and utilisation" },
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f, "dit %s — diffusion-transformer image generator\n\nusage: dit COMMAND [ARGS]\n\ncommands:\n",
            DIT_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\n'dit COMMAND --help' shows a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dit %s\n", DIT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dit: unknown command '%s' (try 'dit --help')\n", argv[1]);
    return 2;
}

/* tools/generate.c — `dit generate`: a prompt in, a PNG out (text encoders -> sampler with
 * guidance -> VAE), with the settings written into the PNG so `--from` can make it again.
 *
 * Settings come from four layers, later ones winning: the family's defaults (METHODS.md 2.1-2.3),
 * the model file's metadata (dit.steps, dit.cfg_scale, dit.guidance, dit.shift, dit.sampler,
 * dit.width, dit.height), a PNG's metadata (--from), the command line.
 *
 * Order of work: everything that can be checked cheaply is checked first (flags, files, families,
 * output path, memory budget), then text encoders are loaded, run and freed, then the diffusion
 * model samples each image and the VAE decodes it, so the text encoders and the diffusion model
 * are never in memory together. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "core/cpu.h"
#include "core/image.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "dit/dit.h"
#include "guidance/guidance.h"
#include "sampler/sampler.h"
#include "sampler/schedule.h"
#include "text/cond.h"
#include "text/prompt.h"
#include "text/word.h"
#include "tools/cli.h"
#include "tools/gen.h"
#include "vae/vae.h"

#define UNSET_I INT_MIN
#define MAX_STEPS 10000
#define MAX_BATCH 10000
#define SD3_T5_ROWS 256 /* T5 ids of an SD3 prompt: 226 code points at most, one piece or more each */
#define META_KEY "dit"  /* the PNG text chunk holding the JSON settings */
#define WORDS_PREFIX "text_encoders.clip.transformer." /* the embedded model's CLIP (dit.text = clip-words) */
#define WORDS_MAX_POS 1024



/* ---- settings --------------------------------------------------------------------------------- */

typedef struct {
    const char *cmd; /* "dit generate", "dit eval": the prefix of messages */
    const char *model, *clip_l, *clip_g, *t5, *vae, *tokenizers;
    const char *prompt, *negative, *out, *from, *sampler, *sigmas, *rng, *precision, *hash;
    int width, height, steps, batch, threads, quiet, label;
    double cfg, guidance, shift, max_memory; /* NAN = unset */
    int have_seed;
    long long seed;
} settings;

static settings settings_unset(void)
{
    settings s;
    memset(&s, 0, sizeof s);
    s.width = s.height = s.steps = s.batch = s.threads = s.label = UNSET_I;
    s.cfg = s.guidance = s.shift = s.max_memory = NAN;
    s.cmd = "dit generate";
    return s;
}

/* One line on stderr: "dit generate: " (or the command's name) and the message. */
static void say(const settings *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", s->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Family defaults (METHODS.md 2.1 table: the sd3.5 reference's CONFIGS for the released SD3
 * models, DPM-Solver++(2M) included; the diffusers pipeline for other SD3 geometries; 2.2 FLUX;
 * 2.3 DiT/SiT). */
typedef struct {
    const char *variant, *sampler;
    int steps;
    float cfg, guidance, shift; /* shift 0: the family's own rule (FLUX mu, none for schnell) */
} family_defaults;

static const family_defaults DEFAULTS[] = {
    { "sd3-medium", "dpm++2m", 50, 5.0f, 0, 1.0f }, /* sd3_infer.py CONFIGS: shift 1.0 (sic) */
    { "sd3.5-medium", "dpm++2m", 50, 5.0f, 0, 3.0f },
    { "sd3.5-large", "dpm++2m", 40, 4.5f, 0, 3.0f },
    { "sd3", "euler", 28, 7.0f, 0, 3.0f },           /* diffusers StableDiffusion3Pipeline */
    { "flux-dev", "euler", 28, 1.0f, 3.5f, 0 },      /* diffusers FluxPipeline: guidance 3.5, 28 steps */
    { "flux-schnell", "euler", 4, 1.0f, 0, 0 },      /* BFL cli: 4 steps, no shift */
    { "dit", "ddpm", 250, 4.0f, 0, 0 },              /* DiT / SiT sample.py visuals */
    { "sit", "euler", 250, 4.0f, 0, 0 },
};

static const family_defaults *defaults_for(const dit_config *c)
{
    for (size_t i = 0; i < sizeof DEFAULTS / sizeof DEFAULTS[0]; i++)
        if (!strcmp(DEFAULTS[i].variant, c->variant)) return &DEFAULTS[i];
    return c->family == DIT_FLUX ? &DEFAULTS[4] : c->family == DIT_SD3 ? &DEFAULTS[3] : &DEFAULTS[6];
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: dit generate [-m MODEL] -p PROMPT [options]\n\n"
        "Text to image with an SD3/SD3.5, FLUX.1 or class-conditional DiT/SiT model: text encoders, a\n"
        "rectified-flow sampler with guidance, a VAE, and a PNG whose metadata regenerates it (--from).\n\n"
        "model and components (found inside the model file or folder when they are there):\n"
        "  -m, --model PATH        .safetensors file, sharded .index.json or diffusers folder\n"
        "                          [the embedded default model in weights/]\n"
        "  --clip-l PATH           CLIP-L text encoder (SD3, FLUX)\n"
        "  --clip-g PATH           CLIP-G text encoder (SD3)\n"
        "  --t5xxl PATH            T5-XXL text encoder (FLUX; optional for SD3: zeros without it)\n"
        "  --vae SPEC              kl:PATH, taesd:PATH, pixel[:P] or PATH (see dit vae --help)\n"
        "  --tokenizers DIR        folder with the CLIP BPE (bpe_simple_vocab_16e6.txt.gz or vocab.json +\n"
        "                          merges.txt) and T5 spiece.model, or diffusers tokenizer*/ folders\n"
        "                          [the model's folder]\n"
        "prompt:\n"
        "  -p, --prompt TEXT       what to draw (DiT/SiT: a class index, or use --class)\n"
        "  -n, --negative-prompt T the negative prompt for CFG [\"\"]\n"
        "  --class N               DiT/SiT class label\n"
        "sampling:\n"
        "  -W, --width N           image width, a multiple of 16 [1024; DiT/SiT: the model's size]\n"
        "  -H, --height N          image height, a multiple of 16 [1024; DiT/SiT: the model's size]\n"
        "  --steps N               sampling steps [sd3-medium 50, sd3.5-medium 50, sd3.5-large 40,\n"
        "                          other SD3 28, flux-dev 28, flux-schnell 4, DiT/SiT 250]\n"
        "  --cfg-scale S           classifier-free guidance; 1 = off [sd3-medium 5.0, sd3.5-medium 5.0,\n"
        "                          sd3.5-large 4.5, other SD3 7.0, FLUX 1.0 (true CFG above 1), DiT/SiT 4.0]\n"
        "  --guidance G            FLUX-dev distilled guidance [3.5]\n"
        "  --sampler NAME          euler, heun, rf-solver or dpm++2m; DiT: ddpm or ddim [sd3-medium,\n"
        "                          sd3.5-medium, sd3.5-large dpm++2m (as the sd3.5 reference); other SD3,\n"
        "                          FLUX, SiT euler; DiT ddpm]\n"
        "  --shift S               schedule shift [sd3-medium 1.0, SD3.5 and other SD3 3.0; FLUX-dev:\n"
        "                          from the image size (mu); schnell, DiT/SiT: none]\n"
        "  --sigmas LIST           custom schedule \"1,0.75,0.5,0.25,0\" (replaces --steps and --shift)\n"
        "  -s, --seed N            seed; -1 = random, printed [-1]\n"
        "  --rng NAME              noise: cpu (torch.randn on the CPU, mt19937) or cuda (torch.randn on\n"
        "                          CUDA, Philox; as the webui's NV source) [cpu]\n"
        "  -b, --batch-count N     images, seeds SEED, SEED+1, ... [1]\n"
        "output:\n"
        "  -o, --output FILE       PNG path; with --batch-count > 1, %%d in it becomes 1..N (else _1.._N\n"
        "                          goes before the extension) [output.png]\n"
        "  --from IMAGE.png        take every setting from a PNG this command wrote (flags given\n"
        "                          override it); same machine and threads: the same image, bit for bit\n"
        "  --hash fast|full        model hash in the metadata: A1111's legacy one (SHA-256 of 64 KiB at\n"
        "                          1 MiB, 8 hex) or the whole file's SHA-256 (AutoV2, 10 hex) [fast]\n"
        "runtime:\n"
        "  -t, --threads N         threads [all cores or OMP_NUM_THREADS]\n"
        "  --precision P           bf16 (fast path) or f32 [bf16]\n"
        "  --max-memory SIZE       budget for weights and activations, e.g. 8G or 512M; sizes that would\n"
        "                          not fit are refused before any work, the VAE tiles to fit\n"
        "                          [half the physical memory]\n"
        "  -q, --quiet             no progress, no summary (errors and warnings still print)\n\n"
        "Exit status: 0 done, 1 runtime error (a file that cannot be read, a failed computation), 2 usage\n"
        "error (bad or missing flag or component). On failure no partial output file is left.\n");
}

static int fail_usage(const settings *s, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", s->cmd);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 2;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* "8G", "512M", "1.5GiB", "1000000" -> bytes (binary units) */
static int parse_size(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return -1;
    const char u = (char)(*end | 0x20);
    if (*end) {
        if (u == 'k') v *= 1024.0;
        else if (u == 'm') v *= 1048576.0;
        else if (u == 'g') v *= 1073741824.0;
        else if (u == 't') v *= 1099511627776.0;
        else return -1;
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "ib")) end += 2;
        else if (*end == 'B' || *end == 'b') end++;
        if (*end) return -1;
    }
    if (v < 1 || v > 1e18) return -1;
    *out = floor(v);
    return 0;
}

static int is_flag(const char *a, const char *x, const char *y)
{
    return !strcmp(a, x) || (y && !strcmp(a, y));
}

/* argv -> settings; returns 0, 2 (usage error, printed) or -1 (--help printed) */
static int parse_args(int argc, char **argv, settings *s)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            s->quiet = 1;
            continue;
        }
        if (a[0] != '-') return fail_usage(s, "unexpected argument '%s' (the prompt goes after -p)%s", a, "");
        if (i + 1 >= argc) return fail_usage(s, "%s needs a value%s", a, "");
        const char *v = argv[++i];
        long long n;
        double d;
#define IS(x, y) is_flag(a, x, y)
#define INT_FLAG(field, lo, hi, what)                                                                   \
    do {                                                                                                \
        if (parse_int(v, lo, hi, &n)) return fail_usage(s, "%s %s: " what, a, v);                          \
        field = (int)n;                                                                                 \
    } while (0)
#define NUM_FLAG(field, what)                                                                           \
    do {                                                                                                \
        if (parse_num(v, &d)) return fail_usage(s, "%s %s: " what, a, v);                                  \
        field = d;                                                                                      \
    } while (0)
        if (IS("-m", "--model")) s->model = v;
        else if (IS("--clip-l", NULL) || IS("--clip_l", NULL)) s->clip_l = v;
        else if (IS("--clip-g", NULL) || IS("--clip_g", NULL)) s->clip_g = v;
        else if (IS("--t5xxl", NULL)) s->t5 = v;
        else if (IS("--vae", NULL)) s->vae = v;
        else if (IS("--tokenizers", NULL)) s->tokenizers = v;
        else if (IS("-p", "--prompt")) s->prompt = v;
        else if (IS("-n", "--negative-prompt")) s->negative = v;
        else if (IS("-o", "--output")) s->out = v;
        else if (IS("--from", NULL)) s->from = v;
        else if (IS("--sampler", "--sampling-method")) s->sampler = v;
        else if (IS("--sigmas", NULL)) s->sigmas = v;
        else if (IS("--rng", NULL)) s->rng = v;
        else if (IS("--precision", NULL)) s->precision = v;
        else if (IS("--hash", NULL)) s->hash = v;
        else if (IS("-W", "--width")) INT_FLAG(s->width, 16, 32768, "the width must be a number of pixels (16..32768)");
        else if (IS("-H", "--height")) INT_FLAG(s->height, 16, 32768, "the height must be a number of pixels (16..32768)");
        else if (IS("--steps", NULL)) INT_FLAG(s->steps, 1, MAX_STEPS, "steps must be 1..10000");
        else if (IS("-b", "--batch-count")) INT_FLAG(s->batch, 1, MAX_BATCH, "the batch count must be 1..10000");
        else if (IS("-t", "--threads")) INT_FLAG(s->threads, 1, 4096, "threads must be 1..4096");
        else if (IS("--class", NULL)) INT_FLAG(s->label, 0, 1 << 20, "the class must be a label 0..N-1");
        else if (IS("--cfg-scale", NULL)) NUM_FLAG(s->cfg, "the CFG scale must be a number");
        else if (IS("--guidance", NULL)) NUM_FLAG(s->guidance, "the guidance must be a number");
        else if (IS("--shift", "--flow-shift")) NUM_FLAG(s->shift, "the shift must be a number");
        else if (IS("-s", "--seed")) {
            if (parse_int(v, -1, LLONG_MAX, &n)) return fail_usage(s, "%s %s: the seed must be -1 or 0..2^63", a, v);
            s->seed = n, s->have_seed = 1;
        } else if (IS("--max-memory", NULL)) {
            if (parse_size(v, &d)) return fail_usage(s, "%s %s: a size like 8G, 512M or a number of bytes", a, v);
            s->max_memory = d;
        } else {
            return fail_usage(s, "unknown option '%s'%s (try --help)", a, "");
        }
#undef IS
#undef INT_FLAG
#undef NUM_FLAG
    }
    return 0;
}

/* --from: the JSON a previous run wrote; fills what the command line left unset. doc owns the
 * strings (kept until the end). Returns 0, 1 (runtime error, printed) or 2. */
static int settings_from_png(const char *path, settings *s, cJSON **doc)
{
    img_text *t = NULL;
    int n = 0;
    dit_err e = { 0 };
    if (img_read_png_text(path, &t, &n, &e)) {
        say(s, "--from %s\n", e.msg);
        return 1;
    }
    const char *json = NULL;
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].key, META_KEY)) json = t[i].value;
    *doc = json ? cJSON_Parse(json) : NULL;
    img_free_text(t, n);
    if (!*doc || !cJSON_IsObject(*doc)) {
        say(s, "--from %s: no '%s' settings chunk (not written by dit generate)\n", path, META_KEY);
        return 1;
    }
    const cJSON *j = *doc;
#define STR(field, key)                                                                                 \
    do {                                                                                                \
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);                                      \
        if (!s->field && cJSON_IsString(x)) s->field = x->valuestring;                                  \
    } while (0)
#define INT(field, key)                                                                                 \
    do {                                                                                                \
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);                                      \
        if (s->field == UNSET_I && cJSON_IsNumber(x)) s->field = (int)x->valuedouble;                   \
    } while (0)
#define NUM(field, key)                                                                                 \
    do {                                                                                                \
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);                                      \
        if (isnan(s->field) && cJSON_IsNumber(x)) s->field = x->valuedouble;                            \
    } while (0)
    STR(model, "model");
    STR(clip_l, "clip_l");
    STR(clip_g, "clip_g");
    STR(t5, "t5xxl");
    STR(vae, "vae");
    STR(tokenizers, "tokenizers");
    STR(prompt, "prompt");
    STR(negative, "negative_prompt");
    STR(sampler, "sampler");
    STR(sigmas, "sigmas");
    STR(rng, "rng");
    STR(precision, "precision");
    INT(width, "width");
    INT(height, "height");
    INT(steps, "steps");
    INT(threads, "threads");
    INT(label, "class");
    NUM(cfg, "cfg_scale");
    NUM(guidance, "guidance");
    NUM(shift, "shift");
    NUM(max_memory, "max_memory");
#undef STR
#undef INT
#undef NUM
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (!s->have_seed && cJSON_IsString(seed)) { /* a string: seeds above 2^53 stay exact */
        long long v;
        if (!parse_int(seed->valuestring, 0, LLONG_MAX, &v)) s->seed = v, s->have_seed = 1;
    }
    if (!s->model) {
        say(s, "--from %s: the settings name no model\n", path);
        return 1;
    }
    return 0;
}

/* ---- components ------------------------------------------------------------------------------- */

typedef struct {
    char path[PATH_MAX];
    const char *prefix; /* inside a file holding several parts, else NULL */
} part;

typedef struct {
    char model[PATH_MAX];    /* as resolved: the path dit_load takes */
    char weights[PATH_MAX];  /* the weights file (hash, size) */
    int folder;              /* diffusers folder */
    part clip_l, clip_g, t5; /* path[0] == 0: absent */
    char vae[PATH_MAX + 16]; /* spec */
    char tok_clip[PATH_MAX], tok_t5[PATH_MAX];
} components;

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
    struct stat st;
    return !stat(p, &st);
}

/* dir/sub when it exists */
static int sub_path(char *out, size_t cap, const char *dir, const char *sub)
{
    snprintf(out, cap, "%s/%s", dir, sub);
    if (exists(out)) return 1;
    out[0] = 0;
    return 0;
}

static int set_has_prefix(const st_set *set, const char *prefix)
{
    const size_t n = strlen(prefix);
    for (int i = 0; i < st_set_count(set); i++)
        if (!strncmp(st_set_at(set, i)->name, prefix, n)) return 1;
    return 0;
}

/* The embedded default model: weights/default.safetensors beside the binary's build folder, or in
 * the current directory's weights/. */
static int default_model(char out[PATH_MAX], size_t cap)
{
    char exe[PATH_MAX - 64];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        for (int up = 0; slash && up < 3; up++) { /* build/dit, build/asan/dit */
            *slash = 0;
            snprintf(out, cap, "%s/weights/default.safetensors", exe);
            if (exists(out)) return 1;
            slash = strrchr(exe, '/');
        }
    }
    snprintf(out, cap, "weights/default.safetensors");
    return exists(out);
}

static void copy_path(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* Where every component is, from the flags, the model folder, or the model file itself.
 * Returns 0, 1 (runtime) or 2 (usage), printed. */
static int find_components(const settings *s, const dit_config *c, components *k)
{
    const dit_config none = { .family = DIT_DIT };
    if (!c) c = &none; /* only the VAE to find (the embedded model's text is handled by the caller) */
    dit_err e = { 0 };
    const char *dir = NULL;
    char model_dir[PATH_MAX];
    if (is_dir(k->model)) { /* a diffusers pipeline folder, or its transformer/ folder */
        k->folder = 1;
        copy_path(model_dir, sizeof model_dir, k->model);
        size_t L = strlen(model_dir);
        while (L > 1 && model_dir[L - 1] == '/') model_dir[--L] = 0;
        const char *base = strrchr(model_dir, '/');
        if (base && !strcmp(base + 1, "transformer")) model_dir[base - model_dir] = 0;
        else if (!base && !strcmp(model_dir, "transformer")) copy_path(model_dir, sizeof model_dir, ".");
        dir = model_dir;
    } else {
        copy_path(model_dir, sizeof model_dir, k->model);
        char *slash = strrchr(model_dir, '/');
        if (slash) *slash = 0;
        else copy_path(model_dir, sizeof model_dir, ".");
    }
    if (dit_resolve_path(k->model, k->weights, sizeof k->weights, &e)) {
        say(s, "%s\n", e.msg);
        return 1;
    }
    st_set *set = NULL;
    if (!k->folder && st_set_open(&set, k->model, &e)) {
        say(s, "%s\n", e.msg);
        return 1;
    }
    /* text encoders: flag, else the folder's text_encoder*, else inside the file */
    const int sd3 = c->family == DIT_SD3, flux = c->family == DIT_FLUX;
    struct {
        part *p;
        const char *flag, *sub, *prefix;
        int wanted;
    } enc[] = {
        { &k->clip_l, s->clip_l, "text_encoder", TEXT_PREFIX_CLIP_L, sd3 || flux },
        { &k->clip_g, s->clip_g, "text_encoder_2", TEXT_PREFIX_CLIP_G, sd3 },
        { &k->t5, s->t5, sd3 ? "text_encoder_3" : "text_encoder_2", TEXT_PREFIX_T5XXL, sd3 || flux },
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        if (!enc[i].wanted) continue;
        if (enc[i].flag) copy_path(enc[i].p->path, sizeof enc[i].p->path, enc[i].flag);
        else if (dir) sub_path(enc[i].p->path, sizeof enc[i].p->path, dir, enc[i].sub);
        else if (set && set_has_prefix(set, enc[i].prefix)) {
            copy_path(enc[i].p->path, sizeof enc[i].p->path, k->model);
            enc[i].p->prefix = enc[i].prefix;
        }
    }
    /* VAE: flag, else the folder's vae/, else inside an SD3 file (first_stage_model.) */
    if (s->vae) copy_path(k->vae, sizeof k->vae, s->vae);
    else if (dir) sub_path(k->vae, sizeof k->vae, dir, "vae");
    else if (set && (set_has_prefix(set, "first_stage_model.") || set_has_prefix(set, "vae.")))
        snprintf(k->vae, sizeof k->vae, "kl:%s", k->model);
    st_set_close(set);
    /* tokenizers: --tokenizers (a folder with the files, or with diffusers tokenizer folders),
     * else the model's folder the same way */
    if (sd3 || flux) {
        const char *tdir = s->tokenizers ? s->tokenizers : dir ? dir : model_dir;
        if (s->tokenizers && !is_dir(s->tokenizers)) {
            say(s, "--tokenizers %s: not a folder\n", s->tokenizers);
            return 2;
        }
        static const char *const clip_files[] = { "bpe_simple_vocab_16e6.txt.gz", "vocab.json", "tokenizer.json" };
        for (size_t i = 0; i < 3 && !k->tok_clip[0]; i++)
            if (sub_path(k->tok_clip, sizeof k->tok_clip, tdir, clip_files[i])) copy_path(k->tok_clip, sizeof k->tok_clip, tdir);
        if (!k->tok_clip[0]) sub_path(k->tok_clip, sizeof k->tok_clip, tdir, "tokenizer");
        if (sub_path(k->tok_t5, sizeof k->tok_t5, tdir, "spiece.model")) copy_path(k->tok_t5, sizeof k->tok_t5, tdir);
        else if (!sub_path(k->tok_t5, sizeof k->tok_t5, tdir, sd3 ? "tokenizer_3" : "tokenizer_2") && k->tok_clip[0] &&
                 strcmp(k->tok_clip, tdir) && exists(k->tok_clip)) {
            /* a tokenizer.json in the CLIP folder cannot serve T5; nothing more to try */
        }
    }
    return 0;
}

/* ---- hashes and metadata ---------------------------------------------------------------------- */

/* A1111's legacy model hash (modules/sd_models.py model_hash: SHA-256 of the 64 KiB at offset
 * 1 MiB, 8 hex digits) or the whole file's (AutoV2: 10 hex digits). */
static int model_hash(const char *path, int full, char *out, dit_err *e)
{
    unsigned char d[32];
    if (sha256_file_range(path, full ? 0 : 0x100000, full ? SIZE_MAX : 0x10000, d, e)) return -1;
    sha256_hex(d, full ? 10 : 8, out);
    return 0;
}

static char *abs_path(const char *p)
{
    char *r = realpath(p, NULL);
    return r ? r : strdup(p);
}

/* ---- the run ---------------------------------------------------------------------------------- */

typedef struct {
    clip_tok *ct;
    t5_tok *tt;
    word_tok *wt;
    clip_model *cl, *cg;
    t5_model *t5;
    clip_state *ls, *gs;
    t5_state *ts;
} text_set;

struct gen {
    settings s;
    cJSON *from_doc;         /* --from's settings (owns strings s points to) */
    components k;
    dit_config c;
    const family_defaults *fd;
    ops_prec prec;
    int lh, lw;              /* latent size */
    float *sigmas;
    int n_sigmas;
    const char *schedule;    /* how the sigmas were made, for the metadata */
    sampler_kind sk;
    rng_kind rng_kind;
    int words;               /* the embedded model: one CLIP with its word vocabulary, in the file (text/word.h) */
    ddpm_schedule *ddpm;     /* DiT */
    uint64_t seed;
    char hash[16];
    int hash_full;
    vae *v;
    /* text (text_load) and model (model_load) */
    text_set tx;
    int n_pos, t5_len;       /* text rows: the word model's positions, T5's */
    int warned_t5, quiet_words;
    dit_model *m;
    dit_state *st;
    guidance *gd;
    float *x, *img;          /* latent, decoded image */
    /* conditioning */
    float *ctx[2], *pooled[2];
    int n_ctx[2];
    int n_conds;
    float guidance_value;
    phase_timer ph;
    progress bar;
};

/* One dimension of tensor key of a text encoder part, read from the file headers only (-1 when the
 * tensor is not there): the widths the model must agree with, known before anything loads. */
/* The tensors of a part's file (an encoder folder: its model.safetensors or shard index), headers only. */
static dit_status part_open(const part *p, st_set **set, dit_err *e)
{
    char file[PATH_MAX + 40];
    copy_path(file, sizeof file, p->path);
    if (is_dir(p->path)) {
        snprintf(file, sizeof file, "%s/model.safetensors", p->path);
        if (!exists(file)) snprintf(file, sizeof file, "%s/model.safetensors.index.json", p->path);
    }
    return st_set_open(set, file, e);
}

static int part_dim(const part *p, const char *key, int dim, dit_err *e)
{
    char name[512];
    st_set *set = NULL;
    if (part_open(p, &set, e)) return -2;
    snprintf(name, sizeof name, "%s%s", p->prefix ? p->prefix : "", key);
    const st_tensor *t = st_set_find(set, name);
    const int v = t && dim < t->nd ? (int)t->shape[dim] : -1;
    st_set_close(set);
    return v;
}

/* Parameters of a text encoder part (tensors under its prefix), from the headers. */
static double part_params(const part *p)
{
    if (!p->path[0]) return 0;
    st_set *set = NULL;
    dit_err e = { 0 };
    if (part_open(p, &set, &e)) return 0;
    const size_t n = p->prefix ? strlen(p->prefix) : 0;
    double params = 0;
    for (int i = 0; i < st_set_count(set); i++) {
        const st_tensor *t = st_set_at(set, i);
        if (!n || !strncmp(t->name, p->prefix, n)) params += (double)t->numel;
    }
    st_set_close(set);
    return params;
}

/* The encoders' widths against the model's context and pooled widths (text/cond.h). */
static int check_text_widths(const gen *g)
{
    const settings *s = &g->s;
    dit_err e = { 0 };
    const int sd3 = g->c.family == DIT_SD3;
    const int dl = part_dim(&g->k.clip_l, "text_model.final_layer_norm.weight", 0, &e);
    const int dg = sd3 ? part_dim(&g->k.clip_g, "text_model.final_layer_norm.weight", 0, &e) : 0;
    const int pg = sd3 ? part_dim(&g->k.clip_g, "text_projection.weight", 0, &e) : 0;
    const int dt = g->k.t5.path[0] ? part_dim(&g->k.t5, "encoder.final_layer_norm.weight", 0, &e) : 0;
    if (dl == -2 || dg == -2 || pg == -2 || dt == -2) {
        say(s, "%s\n", e.msg);
        return 1;
    }
    const char *what = NULL;
    char buf[PATH_MAX + 128];
    if (dl < 1) snprintf(buf, sizeof buf, "%s: not a CLIP text encoder (CLIP-L)", g->k.clip_l.path), what = buf;
    else if (sd3 && (dg < 1 || pg < 1))
        snprintf(buf, sizeof buf, "%s: not a CLIP-G text encoder with a text projection", g->k.clip_g.path), what = buf;
    else if (g->k.t5.path[0] && dt < 1) snprintf(buf, sizeof buf, "%s: not a T5 encoder", g->k.t5.path), what = buf;
    else if (sd3 && (dl + pg != g->c.vec_dim || dl + dg > g->c.ctx_dim || dt > g->c.ctx_dim)) {
        snprintf(buf, sizeof buf, "the text encoders (CLIP-L %d, CLIP-G %d projected to %d, T5 %d) do not fit %s (context %d, pooled %d)",
                 dl, dg, pg, dt, g->c.variant, g->c.ctx_dim, g->c.vec_dim);
        what = buf;
    } else if (!sd3 && (dl != g->c.vec_dim || dt != g->c.ctx_dim)) {
        snprintf(buf, sizeof buf, "the text encoders (CLIP-L %d, T5 %d) do not fit %s (context %d, pooled %d)", dl, dt,
                 g->c.variant, g->c.ctx_dim, g->c.vec_dim);
        what = buf;
    }
    if (what) {
        say(s, "%s\n", what);
        return 2;
    }
    return 0;
}

static void text_free(gen *g);
static void model_free(gen *g);

void gen_free(gen *g)
{
    if (!g) return;
    text_free(g);
    model_free(g);
    cJSON_Delete(g->from_doc);
    free(g->sigmas);
    free(g->ddpm);
    for (int i = 0; i < 2; i++) free(g->ctx[i]), free(g->pooled[i]);
    vae_free(g->v);
    free(g);
}

/* Text conditioning for the prompt and (with CFG) the negative prompt; every encoder freed after. */
/* The initial noise of image seed: torch.randn(1, C, h, w) with a CPU generator or (cuda) the
 * Philox one of torch on CUDA. */
static void noise(const gen *g, rng *r, uint64_t seed, float *x, size_t n)
{
    dit_err e = { 0 };
    rng_init(r, g->rng_kind, seed, &e); /* the kind was checked when parsed */
    rng_randn(r, x, n);
}

static char *output_name(const char *pattern, int index, int batch)
{
    const size_t cap = strlen(pattern) + 32;
    char *out = malloc(cap);
    if (!out) return NULL;
    const char *pd = strstr(pattern, "%d");
    if (pd) snprintf(out, cap, "%.*s%d%s", (int)(pd - pattern), pattern, index, pd + 2);
    else if (batch > 1) {
        const char *dot = strrchr(pattern, '.'), *slash = strrchr(pattern, '/');
        if (!dot || (slash && dot < slash)) dot = pattern + strlen(pattern);
        snprintf(out, cap, "%.*s_%d%s", (int)(dot - pattern), pattern, index, dot);
    } else snprintf(out, cap, "%s", pattern);
    return out;
}

/* Can a file be created at path? (a probe file in its folder, removed at once) */
static int check_writable(const char *path, char *why, size_t cap)
{
    if (is_dir(path)) return snprintf(why, cap, "is a folder"), -1;
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s.probe-XXXXXX", path);
    const int fd = mkstemp(probe);
    if (fd < 0) return snprintf(why, cap, "cannot create a file there: %s", strerror(errno)), -1;
    close(fd);
    unlink(probe);
    return 0;
}

static cJSON *settings_json(const gen *g, uint64_t seed)
{
    const settings *s = &g->s;
    cJSON *j = cJSON_CreateObject();
    char buf[64];
    char *p;
    cJSON_AddStringToObject(j, "generator", "dit " DIT_VERSION);
    cJSON_AddStringToObject(j, "prompt", s->prompt ? s->prompt : "");
    cJSON_AddStringToObject(j, "negative_prompt", s->negative ? s->negative : "");
    if (g->c.family == DIT_DIT || g->c.family == DIT_SIT) cJSON_AddNumberToObject(j, "class", s->label);
    cJSON_AddNumberToObject(j, "width", s->width);
    cJSON_AddNumberToObject(j, "height", s->height);
    cJSON_AddNumberToObject(j, "steps", s->steps);
    cJSON_AddNumberToObject(j, "cfg_scale", s->cfg);
    if (g->c.guidance_embed) cJSON_AddNumberToObject(j, "guidance", s->guidance);
    cJSON_AddStringToObject(j, "sampler", sampler_kind_name(g->sk));
    if (!isnan(s->shift)) cJSON_AddNumberToObject(j, "shift", s->shift);
    cJSON_AddStringToObject(j, "schedule", g->schedule);
    if (s->sigmas) cJSON_AddStringToObject(j, "sigmas", s->sigmas);
    cJSON *sig = g->n_sigmas ? cJSON_AddArrayToObject(j, "sigmas_used") : NULL;
    for (int i = 0; i < g->n_sigmas; i++) {
        snprintf(buf, sizeof buf, "%.9g", (double)g->sigmas[i]);
        cJSON_AddItemToArray(sig, cJSON_CreateRaw(buf));
    }
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    cJSON_AddStringToObject(j, "seed", buf);
    cJSON_AddStringToObject(j, "rng", rng_kind_name(g->rng_kind));
    cJSON_AddNumberToObject(j, "threads", s->threads);
    cJSON_AddStringToObject(j, "precision", g->prec == OPS_F32 ? "f32" : "bf16");
    cJSON_AddNumberToObject(j, "max_memory", s->max_memory);
    cJSON_AddStringToObject(j, "model", (p = abs_path(g->k.model)));
    free(p);
    cJSON_AddStringToObject(j, "model_family", g->c.variant);
    cJSON_AddStringToObject(j, "model_hash", g->hash);
    cJSON_AddStringToObject(j, "model_hash_kind", g->hash_full ? "sha256 of the file, 10 hex (AutoV2)"
                                                               : "sha256 of 64 KiB at 1 MiB, 8 hex (A1111 legacy)");
    const struct { const char *key, *path; } comp[] = {
        { "clip_l", g->words ? "" : g->k.clip_l.path }, { "clip_g", g->k.clip_g.path }, { "t5xxl", g->k.t5.path },
        { "vae", g->k.vae }, { "tokenizers", g->s.tokenizers },
    };
    for (size_t i = 0; i < sizeof comp / sizeof comp[0]; i++)
        if (comp[i].path && comp[i].path[0]) {
            /* a vae spec keeps its kind: "kl:" + the absolute path */
            const char *colon = strchr(comp[i].path, ':');
            if (colon && colon - comp[i].path <= 5 && !exists(comp[i].path)) {
                char *ap = abs_path(colon + 1);
                char *spec = malloc(strlen(ap) + 8);
                if (spec) sprintf(spec, "%.*s%s", (int)(colon - comp[i].path + 1), comp[i].path, ap);
                cJSON_AddStringToObject(j, comp[i].key, spec ? spec : comp[i].path);
                free(spec), free(ap);
            } else {
                cJSON_AddStringToObject(j, comp[i].key, (p = abs_path(comp[i].path)));
                free(p);
            }
        }
    cpu_info ci;
    cpu_detect(&ci);
    cJSON_AddStringToObject(j, "cpu", ci.brand);
    return j;
}

/* A1111's "parameters": prompt, "Negative prompt: ...", then "Key: value, ..." */
static char *a1111_parameters(const gen *g, uint64_t seed)
{
    const settings *s = &g->s;
    static const char *const sampler_names[] = { "Euler", "Heun", "RF-Solver", "DDIM", "DDPM", "DPM++ 2M" };
    char mbuf[PATH_MAX];
    copy_path(mbuf, sizeof mbuf, g->k.folder ? g->k.model : g->k.weights); /* a diffusers folder: its name */
    for (size_t L = strlen(mbuf); L > 1 && mbuf[L - 1] == '/'; L--) mbuf[L - 1] = 0;
    char *model = strrchr(mbuf, '/');
    model = model ? model + 1 : mbuf;
    char *ext = strstr(model, ".safetensors");
    if (ext) *ext = 0;
    char guid[64] = "";
    if (g->c.guidance_embed) snprintf(guid, sizeof guid, ", Distilled CFG Scale: %g", s->guidance);
    char shift[64] = "";
    if (!isnan(s->shift)) snprintf(shift, sizeof shift, ", Shift: %g", s->shift);
    const size_t cap = strlen(s->prompt ? s->prompt : "") + strlen(s->negative ? s->negative : "") + strlen(model) + 512;
    char *out = malloc(cap);
    if (!out) return NULL;
    int n = g->c.family == DIT_DIT || g->c.family == DIT_SIT ? snprintf(out, cap, "class %d\n", s->label)
                                                           : snprintf(out, cap, "%s\n", s->prompt ? s->prompt : "");
    if (s->negative && s->negative[0]) n += snprintf(out + n, cap - n, "Negative prompt: %s\n", s->negative);
    snprintf(out + n, cap - n,
             "Steps: %d, Sampler: %s, Schedule type: %s, CFG scale: %g%s%s, Seed: %llu, Size: %dx%d, Model hash: %s, "
             "Model: %s, RNG: %s, Version: dit %s",
             s->steps, sampler_names[g->sk], g->schedule, s->cfg, guid, shift, (unsigned long long)seed, s->width,
             s->height, g->hash, model, g->rng_kind == RNG_CUDA ? "NV" : "CPU", DIT_VERSION);
    return out;
}

/* ---- text: encoders loaded once (text_load), run per prompt (text_encode), freed (text_free) ---- */

/* Rows and width of the conditioning the model gets, whatever the prompt. */
static void text_shape(const gen *g, int *rows, int *width, int *pooled)
{
    const int sd3 = g->c.family == DIT_SD3;
    *width = g->c.ctx_dim, *pooled = g->c.vec_dim;
    *rows = g->words ? g->n_pos : sd3 ? TEXT_CLIP_TOKENS + SD3_T5_ROWS : g->t5_len;
}

static void text_free(gen *g)
{
    text_set *t = &g->tx;
    clip_state_free(t->ls), clip_state_free(t->gs), t5_state_free(t->ts);
    clip_free(t->cl), clip_free(t->cg), t5_free(t->t5);
    clip_tok_close(t->ct), t5_tok_close(t->tt), word_tok_close(t->wt);
    memset(t, 0, sizeof *t);
}

/* Tokenizers, encoders and their states; the conditioning buffers. 0, or 1 (printed). */
static int text_load(gen *g)
{
    const settings *s = &g->s;
    text_set *t = &g->tx;
    const int sd3 = g->c.family == DIT_SD3;
    dit_err e = { 0 };
    const double t0 = progress_now();
    text_load_opts lo = text_load_defaults();
    lo.prec = g->prec;
    dit_status r;
    if (g->words) { /* the embedded model: its word vocabulary and CLIP, both in the model file */
        lo.prefix = WORDS_PREFIX;
        r = word_tok_open(&t->wt, g->k.weights, &e);
        if (!r) r = clip_load(&t->cl, g->k.weights, &lo, &e);
        if (!r && word_tok_size(t->wt) != clip_model_config(t->cl)->vocab)
            r = err_set(&e, DIT_E_FORMAT, "%s: text.vocab has %d words for %d token embeddings", g->k.weights,
                        word_tok_size(t->wt), clip_model_config(t->cl)->vocab);
        if (!r) g->n_pos = clip_model_config(t->cl)->n_pos;
    } else {
        r = clip_tok_open(&t->ct, g->k.tok_clip, &e);
        if (!r && g->k.t5.path[0]) r = t5_tok_open(&t->tt, g->k.tok_t5, &e);
        lo.prefix = g->k.clip_l.prefix;
        if (!r) r = clip_load(&t->cl, g->k.clip_l.path, &lo, &e);
        lo.prefix = g->k.clip_g.prefix;
        if (!r && sd3) r = clip_load(&t->cg, g->k.clip_g.path, &lo, &e);
        lo.prefix = g->k.t5.prefix;
        if (!r && g->k.t5.path[0]) r = t5_load(&t->t5, g->k.t5.path, &lo, &e);
        g->t5_len = sd3 ? SD3_T5_ROWS : g->c.guidance_embed ? 512 : 256;
    }
    if (!r && (!(t->ls = clip_state_new(t->cl, &e)) || (t->cg && !(t->gs = clip_state_new(t->cg, &e))) ||
               (t->t5 && !(t->ts = t5_state_new(t->t5, g->t5_len, &e)))))
        r = e.code ? e.code : DIT_E_OOM;
    int rows, width, pdim;
    text_shape(g, &rows, &width, &pdim);
    for (int i = 0; !r && i < 2; i++) {
        g->ctx[i] = malloc(sizeof(float) * (size_t)rows * width);
        g->pooled[i] = malloc(sizeof(float) * (size_t)pdim);
        if (!g->ctx[i] || !g->pooled[i]) r = err_set(&e, DIT_E_OOM, "out of memory for the text conditioning");
    }
    if (r) {
        say(s, "%s\n", e.msg);
        text_free(g);
        return 1;
    }
    phase_add(&g->ph, "load", progress_now() - t0);
    return 0;
}

/* The conditioning of s->prompt and (with CFG) s->negative. 0, or 1 (printed). */
static int text_encode(gen *g)
{
    const settings *s = &g->s;
    text_set *t = &g->tx;
    dit_err e = { 0 };
    const double t0 = progress_now();
    int rows, width, pdim;
    text_shape(g, &rows, &width, &pdim);
    text_encoders te = { t->cl, t->ls, t->cg, t->gs, t->t5, t->ts, g->c.ctx_dim };
    const text_tokenizers tk = { t->ct, t->tt };
    for (int i = 0; i < g->n_conds; i++) {
        const char *text = i == 0 ? (s->prompt ? s->prompt : "") : (s->negative ? s->negative : "");
        text_cond_info info = { 0 };
        dit_status r;
        if (g->words) {
            int32_t ids[WORDS_MAX_POS];
            char unk[WORD_TOK_MAX_WORD + 1];
            int n_unk = 0;
            r = rows > WORDS_MAX_POS ? err_set(&e, DIT_E_UNSUPPORTED, "%s: %d text positions (at most %d)", g->k.weights, rows,
                                               WORDS_MAX_POS)
                                     : word_tok_encode(t->wt, text, ids, rows, &n_unk, unk, sizeof unk, &e);
            if (!r) r = text_words_condition(t->cl, t->ls, ids, rows, g->ctx[i], g->pooled[i], &e);
            if (!r && n_unk && !g->quiet_words)
                say(s, "warning: %d word%s of the %s %s not in the model's vocabulary (\"%s\"%s)\n", n_unk, n_unk > 1 ? "s" : "",
                    i ? "negative prompt" : "prompt", n_unk > 1 ? "are" : "is", unk, n_unk > 1 ? ", ..." : "");
            info.n_ctx = rows;
        } else if (g->c.family == DIT_SD3) {
            r = text_sd3_prompt(&te, &tk, text, NULL, g->ctx[i], rows, g->pooled[i], &info, &e);
        } else {
            r = text_flux_prompt(&te, &tk, text, g->t5_len, NULL, g->ctx[i], g->pooled[i], &info, &e);
        }
        if (r) {
            say(s, "%s\n", e.msg);
            return 1;
        }
        g->n_ctx[i] = info.n_ctx;
        if (i == 0 && info.t5_missing && !g->warned_t5) {
            say(s, "warning: no T5 encoder (--t5xxl): its part of the context is zeros\n");
            g->warned_t5 = 1;
        }
    }
    phase_add(&g->ph, "text encode", progress_now() - t0);
    return 0;
}

static void on_step(void *user, const guidance_step *st, const float *x, const float *const *v, int n_pass,
                    const float *v_out)
{
    (void)x, (void)v, (void)n_pass, (void)v_out;
    gen *g = user;
    if (st->step > 0) progress_step(&g->bar, st->step);
}

/* ---- the model: loaded once (model_load), one image per call (sample_one) ---------------------- */

static void model_free(gen *g)
{
    free(g->x), free(g->img);
    guidance_free(g->gd);
    dit_state_free(g->st);
    dit_free(g->m);
    g->x = g->img = NULL, g->gd = NULL, g->st = NULL, g->m = NULL;
}

static int model_load(gen *g)
{
    const settings *s = &g->s;
    dit_err e = { 0 };
    const double t0 = progress_now();
    dit_load_opts lo = dit_load_defaults();
    lo.prec = g->prec;
    lo.family = g->c.family == DIT_SIT ? DIT_SIT : -1;
    int rows = 0, width, pdim;
    if (g->c.family == DIT_SD3 || g->c.family == DIT_FLUX) text_shape(g, &rows, &width, &pdim);
    const size_t n = (size_t)g->c.in_ch * g->lh * g->lw;
    const int ih = g->lh * g->v->scale, iw = g->lw * g->v->scale;
    if (dit_load(&g->m, g->k.model, &lo, &e) || !(g->st = dit_state_new(g->m, g->lh, g->lw, rows, &e)) ||
        !(g->gd = guidance_cfg_new((float)s->cfg, &e))) {
        say(s, "%s\n", e.msg);
        model_free(g);
        return 1;
    }
    g->x = malloc(sizeof(float) * n);
    g->img = malloc(sizeof(float) * 3 * (size_t)ih * iw);
    if (!g->x || !g->img) {
        say(s, "out of memory for a %dx%d image\n", iw, ih);
        model_free(g);
        return 1;
    }
    phase_add(&g->ph, "load", progress_now() - t0);
    return 0;
}

/* The image of seed for the current conditioning, as 8-bit RGB. 0, or 1 (printed). */
static int sample_one(gen *g, uint64_t seed, image *im)
{
    const settings *s = &g->s;
    dit_err e = { 0 };
    const size_t n = (size_t)g->c.in_ch * g->lh * g->lw;
    const int ih = g->lh * g->v->scale, iw = g->lw * g->v->scale;
    dit_input conds[2];
    int labels[2] = { s->label, g->c.num_classes };
    for (int i = 0; i < 2; i++) {
        conds[i] = (dit_input){ .batch = 1 };
        const int ci = i < g->n_conds ? i : 0;
        conds[i].context = g->ctx[ci], conds[i].n_ctx = g->n_ctx[ci], conds[i].pooled = g->pooled[ci];
        if (g->c.guidance_embed) conds[i].guidance = &g->guidance_value;
        if (g->c.family == DIT_DIT || g->c.family == DIT_SIT) conds[i].labels = &labels[i];
    }
    rng gen_rng;
    sampler_opts so = { .kind = g->sk, .sigmas = g->sigmas, .n_steps = g->n_sigmas - 1,
                        .t_scale = g->c.family == DIT_SD3 ? 1000.0f : 1.0f, .data_at_one = g->c.family == DIT_SIT,
                        .ddpm = g->ddpm, .noise = &gen_rng, .g = g->gd, .conds = conds, .n_conds = 2,
                        .on_step = on_step, .user = g };
    double t1 = progress_now();
    noise(g, &gen_rng, seed, g->x, n); /* DDPM draws its step noise from the same generator after */
    if (!g->ddpm)
        for (size_t i = 0; i < n; i++) g->x[i] *= g->sigmas[0];
    progress_begin(&g->bar, stderr, s->steps, s->quiet);
    dit_status r = sampler_run(g->m, g->st, &so, g->x, g->lh, g->lw, &e);
    if (!r) progress_step(&g->bar, s->steps);
    progress_end(&g->bar);
    phase_add(&g->ph, "sampling", progress_now() - t1);
    t1 = progress_now();
    if (!r) r = vae_decode(g->v, g->x, g->lh, g->lw, g->img, NULL, &e);
    if (!r) r = vae_to_image(im, g->img, ih, iw, &e);
    phase_add(&g->ph, "decode", progress_now() - t1);
    if (r) {
        say(s, "%s\n", e.msg);
        return 1;
    }
    return 0;
}

/* im with the settings of seed as PNG text chunks (A1111 parameters, the JSON settings). */
static int save_png(const gen *g, const image *im, const char *path, uint64_t seed)
{
    dit_err e = { 0 };
    cJSON *j = settings_json(g, seed);
    char *json = j ? cJSON_PrintUnformatted(j) : NULL;
    char *params = a1111_parameters(g, seed);
    const img_text meta[] = { { "parameters", params ? params : "" }, { META_KEY, json ? json : "{}" } };
    const dit_status r = json && params ? img_save_png(im, path, meta, 2, &e) : err_set(&e, DIT_E_OOM, "out of memory");
    free(params), free(json), cJSON_Delete(j);
    if (r) say(&g->s, "%s\n", e.msg);
    return r ? 1 : 0;
}

/* Everything before the heavy work: flags, --from, the model's family and metadata defaults,
 * components, VAE, sizes, schedule, output path, memory budget, threads, seed, hash. g->s.cmd names
 * the command in messages. Returns 0, -1 (--help printed), 1 or 2 (printed). */
int gen_prepare(gen *g, int argc, char **argv, unsigned flags)
{
    settings *s = &g->s;
    int rc = parse_args(argc, argv, s);
    if (rc) return rc;
    if (s->from && (rc = settings_from_png(s->from, s, &g->from_doc))) goto out;
    rc = 2;
    dit_err e = { 0 };

    /* the model and its family */
    if (s->model) copy_path(g->k.model, sizeof g->k.model, s->model);
    else if (!default_model(g->k.model, sizeof g->k.model)) {
        say(s, "no -m MODEL given and no embedded default model (weights/default.safetensors)\n");
        goto out;
    }
    dit_load_opts lo = dit_load_defaults();
    if (dit_probe(g->k.model, &lo, &g->c, &e)) {
        say(s, "%s\n", e.msg);
        rc = 1;
        goto out;
    }
    const int text_model = g->c.family == DIT_SD3 || g->c.family == DIT_FLUX;
    g->fd = defaults_for(&g->c);
    /* the file's own defaults (dit.* metadata), under what --from and the flags said */
    {
        char wfile[PATH_MAX];
        st_set *set = NULL;
        if (!dit_resolve_path(g->k.model, wfile, sizeof wfile, &e) && !st_set_open(&set, wfile, &e)) {
            const struct { const char *key; double *num; int *i; const char **str; } md[] = {
                { "dit.steps", NULL, &s->steps, NULL }, { "dit.cfg_scale", &s->cfg, NULL, NULL },
                { "dit.guidance", &s->guidance, NULL, NULL }, { "dit.shift", &s->shift, NULL, NULL },
                { "dit.width", NULL, &s->width, NULL }, { "dit.height", NULL, &s->height, NULL },
                { "dit.sampler", NULL, NULL, &s->sampler },
            };
            for (size_t i = 0; i < sizeof md / sizeof md[0]; i++) {
                const char *v = st_set_meta_get(set, md[i].key);
                double d;
                if (!v) continue;
                if (md[i].str) { /* copied: the set closes below */
                    if (!*md[i].str && sampler_kind_parse(v) != SAMPLER_COUNT)
                        *md[i].str = sampler_kind_name(sampler_kind_parse(v));
                } else if (!parse_num(v, &d)) {
                    if (md[i].num && isnan(*md[i].num)) *md[i].num = d;
                    if (md[i].i && *md[i].i == UNSET_I && d >= 1 && d <= 32768) *md[i].i = (int)d;
                }
            }
            const char *txt = st_set_meta_get(set, "dit.text");
            g->words = txt && !strcmp(txt, "clip-words");
            st_set_close(set);
        }
    }
    /* sizes: latent = image / VAE scale; checked against the model's patch and position grid */
    const int fixed = g->c.family == DIT_DIT || g->c.family == DIT_SIT; /* a fixed token grid */
    if (s->width != UNSET_I && s->width % 16) {
        say(s, "-W %d: the width must be a multiple of 16\n", s->width);
        goto out;
    }
    if (s->height != UNSET_I && s->height % 16) {
        say(s, "-H %d: the height must be a multiple of 16\n", s->height);
        goto out;
    }
    if (s->steps == UNSET_I) s->steps = g->fd->steps;
    if (isnan(s->cfg)) s->cfg = g->fd->cfg;
    if (isnan(s->guidance)) s->guidance = g->fd->guidance;
    if (s->batch == UNSET_I) s->batch = 1;
    if (!s->out) s->out = "output.png";
    if (!(s->cfg >= 0 && s->cfg <= 1000)) {
        say(s, "--cfg-scale %g: must be 0..1000\n", s->cfg);
        goto out;
    }
    if (!(s->guidance >= 0 && s->guidance <= 1000)) {
        say(s, "--guidance %g: must be 0..1000\n", s->guidance);
        goto out;
    }
    g->guidance_value = (float)s->guidance;
    g->sk = sampler_kind_parse(s->sampler ? s->sampler : g->fd->sampler);
    if (g->sk == SAMPLER_COUNT || sampler_kind_is_ddpm(g->sk) != (g->c.family == DIT_DIT)) {
        say(s, "--sampler %s: %s takes %s\n", s->sampler, g->c.variant,
                g->c.family == DIT_DIT ? "ddpm or ddim (an eps-prediction model)" : "euler, heun, rf-solver or dpm++2m");
        goto out;
    }
    g->sigmas = malloc(sizeof(float) * (MAX_STEPS + 1));
    if (!g->sigmas) goto out;
    if (s->sigmas) {
        char why[128];
        g->n_sigmas = sched_parse(g->sigmas, MAX_STEPS + 1, s->sigmas, why, sizeof why);
        if (g->n_sigmas < 2) {
            say(s, "--sigmas %s: %s\n", s->sigmas, why);
            goto out;
        }
    }
    if (!s->rng) s->rng = "cpu";
    g->rng_kind = rng_kind_parse(s->rng);
    if (g->rng_kind == RNG_KIND_COUNT) {
        say(s, "--rng %s: must be cpu (torch's CPU generator) or cuda (torch's on CUDA)\n", s->rng);
        goto out;
    }
    s->rng = rng_kind_name(g->rng_kind);
    if (!s->precision) s->precision = "bf16";
    if (!strcmp(s->precision, "bf16")) g->prec = OPS_BF16;
    else if (!strcmp(s->precision, "f32")) g->prec = OPS_F32;
    else {
        say(s, "--precision %s: must be bf16 or f32\n", s->precision);
        goto out;
    }
    if (s->hash && strcmp(s->hash, "fast") && strcmp(s->hash, "full")) {
        say(s, "--hash %s: must be fast or full\n", s->hash);
        goto out;
    }
    g->hash_full = s->hash && !strcmp(s->hash, "full");
    if (s->batch > 1 && s->out && strstr(s->out, "%d") && strstr(strstr(s->out, "%d") + 2, "%")) {
        say(s, "-o %s: one %%d at most\n", s->out);
        goto out;
    }
    if ((flags & GEN_NEED_PROMPT) && text_model && !s->prompt && !s->from) {
        say(s, "no prompt (-p \"...\")\n");
        goto out;
    }
    if (fixed) { /* DiT/SiT: a class label, from --class or a numeric prompt */
        long long lab;
        if (s->label == UNSET_I && s->prompt && !parse_int(s->prompt, 0, INT_MAX, &lab)) s->label = (int)lab;
        if (s->label == UNSET_I) {
            say(s, "%s is class-conditional: give a class 0..%d with --class N\n", g->c.variant,
                    g->c.num_classes - 1);
            goto out;
        }
        if (s->label >= g->c.num_classes) {
            say(s, "--class %d: %s has classes 0..%d\n", s->label, g->c.variant, g->c.num_classes - 1);
            goto out;
        }
    }

    /* components, then the VAE: its latent must be the model's */
    if ((rc = find_components(s, g->words ? NULL : &g->c, &g->k))) goto out;
    rc = 2;
    if (g->words) { /* the text encoder and its vocabulary are inside the model file */
        copy_path(g->k.clip_l.path, sizeof g->k.clip_l.path, g->k.weights);
        g->k.clip_l.prefix = WORDS_PREFIX;
        const int d = part_dim(&g->k.clip_l, "text_model.final_layer_norm.weight", 0, &e);
        if (d < 1 || d != g->c.ctx_dim || d != g->c.vec_dim) {
            say(s, "%s: %s\n", g->k.weights,
                    d == -2 ? e.msg : "dit.text is clip-words but its CLIP (text_encoders.clip.transformer.) is missing or "
                                      "does not fit the model's context and pooled widths");
            rc = d == -2 ? 1 : 2;
            goto out;
        }
    } else if (text_model) {
        const char *missing = !g->k.clip_l.path[0] ? "a CLIP-L text encoder (--clip-l)"
                              : g->c.family == DIT_SD3 && !g->k.clip_g.path[0] ? "a CLIP-G text encoder (--clip-g)"
                              : g->c.family == DIT_FLUX && !g->k.t5.path[0] ? "a T5-XXL text encoder (--t5xxl)"
                              : !g->k.tok_clip[0] ? "the CLIP tokenizer (--tokenizers DIR)"
                              : g->k.t5.path[0] && !g->k.tok_t5[0] ? "the T5 tokenizer (spiece.model in --tokenizers DIR)"
                                                                 : NULL;
        if (missing) {
            say(s, "%s needs %s\n", g->k.model, missing);
            goto out;
        }
        const char *paths[] = { g->k.clip_l.path, g->k.clip_g.path, g->k.t5.path };
        for (int i = 0; i < 3; i++)
            if (paths[i][0] && !exists(paths[i])) {
                say(s, "%s: no such file or folder\n", paths[i]);
                goto out;
            }
        if ((rc = check_text_widths(g))) goto out;
        rc = 2;
    }
    if (!g->k.vae[0]) {
        say(s, "%s needs a VAE (--vae)\n", g->k.model);
        goto out;
    }
    vae_opts vo = vae_opts_default();
    vo.prec = g->prec;
    if (isnan(s->max_memory)) /* half the physical memory, as the VAE's own default */
        s->max_memory = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 2;
    vo.max_memory = (size_t)s->max_memory;
    /* A KL file that carries no normalisation of its own (no diffusers config.json beside it, not
     * inside an SD3 checkpoint) gets the model family's (golden README vae/). */
    {
        char cfg[sizeof g->k.vae + 16];
        const char *vpath = strncmp(g->k.vae, "kl:", 3) ? g->k.vae : g->k.vae + 3;
        snprintf(cfg, sizeof cfg, "%.*s/config.json", (int)sizeof g->k.vae, vpath);
        if (is_dir(vpath) && exists(cfg)) vo.family = NULL;
        else if (!strcmp(vpath, g->k.model)) vo.family = NULL; /* first_stage_model. inside the checkpoint */
        else vo.family = g->c.family == DIT_SD3 ? "sd3" : g->c.family == DIT_FLUX ? "flux" : "sd";
    }
    if (vae_open(&g->v, g->k.vae, &vo, &e)) {
        say(s, "%s\n", e.msg);
        rc = 1;
        goto out;
    }
    if (g->v->z_channels != g->c.in_ch || !g->v->can_decode) {
        say(s, "--vae %s: %s latents for a model of %d latent channels (%s)\n", g->k.vae,
                g->v->can_decode ? "makes" : "cannot decode", g->c.in_ch, g->c.variant);
        goto out;
    }
    {
        const int unit = g->v->scale * g->c.patch;
        /* default size: 1024, or what the position grid allows (DiT/SiT: exactly its grid) */
        const int grid_side = g->c.pos_max * unit, dflt = fixed || (g->c.family == DIT_SD3 && grid_side < 1024) ? grid_side : 1024;
        if (s->width == UNSET_I) s->width = dflt;
        if (s->height == UNSET_I) s->height = dflt;
        if (s->width % unit || s->height % unit) {
            say(s, "%dx%d: sides must be multiples of %d for this model and VAE\n", s->width, s->height, unit);
            goto out;
        }
        g->lw = s->width / g->v->scale, g->lh = s->height / g->v->scale;
        const int gw = g->lw / g->c.patch, gh = g->lh / g->c.patch;
        if (fixed && (gw != g->c.pos_max || gh != g->c.pos_max)) {
            say(s, "%dx%d: %s makes %dx%d images only\n", s->width, s->height, g->c.variant,
                    g->c.pos_max * unit, g->c.pos_max * unit);
            goto out;
        }
        if (g->c.family == DIT_SD3 && (gw > g->c.pos_max || gh > g->c.pos_max)) {
            say(s, "%dx%d: %s makes images up to %dx%d\n", s->width, s->height, g->c.variant,
                    g->c.pos_max * unit, g->c.pos_max * unit);
            goto out;
        }
    }

    /* the schedule */
    if (g->c.family == DIT_DIT) { /* DiT's respaced DDPM steps (sampler/ddpm.h) */
        if (s->sigmas || !isnan(s->shift)) {
            say(s, "%s: --sigmas and --shift are for flow models; DiT takes --steps 1..%d\n",
                    s->sigmas ? "--sigmas" : "--shift", DDPM_MAX_STEPS);
            goto out;
        }
        g->ddpm = malloc(sizeof *g->ddpm);
        if (!g->ddpm || ddpm_schedule_linear(g->ddpm, 1000, s->steps, &e)) {
            say(s, "--steps %d: %s\n", s->steps, g->ddpm ? e.msg : "out of memory");
            goto out;
        }
        g->n_sigmas = 0, g->schedule = "DDPM linear";
    } else if (s->sigmas) {
        s->steps = g->n_sigmas - 1; /* parsed above */
        g->schedule = "custom";
    } else {
        int r;
        g->n_sigmas = s->steps + 1;
        if (!isnan(s->shift) && !(s->shift > 0 && s->shift <= 100)) {
            say(s, "--shift %g: must be in (0, 100]\n", s->shift);
            goto out;
        }
        if (g->c.family == DIT_SD3) {
            if (isnan(s->shift)) s->shift = g->fd->shift;
            r = sched_sd3(g->sigmas, s->steps, (float)s->shift), g->schedule = "SD3";
        } else if (g->c.family == DIT_FLUX && isnan(s->shift)) {
            const int tokens = ((s->height + 15) / 16) * ((s->width + 15) / 16);
            r = sched_flux(g->sigmas, s->steps, tokens, g->c.guidance_embed, 0.5, 1.15);
            g->schedule = g->c.guidance_embed ? "FLUX (mu)" : "FLUX (no shift)";
        } else {
            r = sched_linear(g->sigmas, s->steps, isnan(s->shift) ? 1.0f : (float)s->shift), g->schedule = "linear";
        }
        if (r) {
            say(s, "cannot make a schedule of %d steps\n", s->steps);
            goto out;
        }
    }
    g->n_conds = s->cfg == 1.0 ? 1 : 2;

    /* the output path, the budget, threads, the seed */
    {
        char why[256];
        char *first = output_name(s->out, 1, s->batch);
        const int bad = !first || ((flags & GEN_CHECK_OUTPUT) && check_writable(first, why, sizeof why));
        if (bad) say(s, "-o %s: %s\n", first ? first : s->out, first ? why : "out of memory");
        free(first);
        if (bad) goto out;
    }
    {
        const size_t budget = (size_t)s->max_memory;
        const int max_ctx = g->c.family == DIT_SD3 ? TEXT_CLIP_TOKENS + SD3_T5_ROWS : g->c.guidance_embed ? 512 : 256;
        const size_t need = dit_memory_estimate(&g->c, g->prec, g->lh, g->lw, text_model ? max_ctx : 0);
        vae_tiling t;
        /* the text phase runs alone (its encoders are freed before the model loads) */
        const double text_need = (part_params(&g->k.clip_l) + part_params(&g->k.clip_g) + part_params(&g->k.t5)) *
                                 (g->prec == OPS_BF16 ? 2 : 4);
        if (text_need >= (double)budget) {
            say(s, "the text encoders need about %.1f MiB; --max-memory is %.1f MiB\n",
                    text_need / 1048576.0, budget / 1048576.0);
            goto out;
        }
        if (need >= budget) {
            say(s, "%dx%d needs about %.1f MiB for %s and its activations; --max-memory is %.1f MiB\n",
                    s->width, s->height, need / 1048576.0, g->c.variant, budget / 1048576.0);
            goto out;
        }
        g->v->max_memory = budget - need;
        if (vae_plan(g->v, VAE_DECODE, g->lh, g->lw, &t, &e)) {
            say(s, "%dx%d: %s (--max-memory %.2f GiB, %.2f GiB of it for the model)\n", s->width,
                    s->height, e.msg, budget / 1073741824.0, need / 1073741824.0);
            goto out;
        }
    }
    if (s->threads == UNSET_I) s->threads = cpu_threads();
    cpu_set_threads(s->threads);
    if (!s->have_seed || s->seed < 0) {
        uint64_t r = 0;
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(&r, sizeof r, 1, f) != 1) r = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
        if (f) fclose(f);
        s->seed = (long long)(r & 0x7fffffff), s->have_seed = 1;
        if (!s->quiet) fprintf(stderr, "seed: %lld\n", s->seed);
    }
    g->seed = (uint64_t)s->seed;
    if (model_hash(g->k.weights, g->hash_full, g->hash, &e)) {
        say(s, "%s\n", e.msg);
        rc = 1;
        goto out;
    }
    if (!s->quiet) {
        char desc[512];
        dit_config_describe(&g->c, desc, sizeof desc);
        fprintf(stderr, "%s\n%dx%d, %d steps (%s, %s), cfg %g%s, seed %lld, %d threads, %s\n", desc, s->width, s->height,
                s->steps, sampler_kind_name(g->sk), g->schedule, s->cfg, g->c.guidance_embed ? ", distilled guidance" : "",
                s->seed, s->threads, s->precision);
    }
    rc = 0;
out:
    return rc;
}

gen *gen_new(const char *cmd)
{
    gen *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->s = settings_unset();
    g->s.cmd = cmd;
    return g;
}

int gen_text_load(gen *g)
{
    return g->c.family == DIT_SD3 || g->c.family == DIT_FLUX ? text_load(g) : 0;
}

int gen_encode(gen *g, const char *prompt)
{
    if (prompt) g->s.prompt = prompt;
    return g->c.family == DIT_SD3 || g->c.family == DIT_FLUX ? text_encode(g) : 0;
}

void gen_text_free(gen *g)
{
    text_free(g);
}

int gen_model_load(gen *g)
{
    return model_load(g);
}

int gen_sample(gen *g, uint64_t seed, image *im)
{
    return sample_one(g, seed, im);
}

int gen_save(const gen *g, const image *im, const char *path, uint64_t seed)
{
    return save_png(g, im, path, seed);
}

uint64_t gen_seed(const gen *g)
{
    return g->seed;
}

int gen_quiet(const gen *g)
{
    return g->s.quiet;
}

void gen_summary(const gen *g)
{
    if (!g->s.quiet) phase_summary(&g->ph, stderr);
}

int cmd_generate(int argc, char **argv)
{
    gen *g = gen_new("dit generate");
    if (!g) {
        fprintf(stderr, "dit generate: out of memory\n");
        return 1;
    }
    const settings *s = &g->s;
    int rc = gen_prepare(g, argc, argv, GEN_NEED_PROMPT | GEN_CHECK_OUTPUT);
    if (rc) {
        gen_free(g);
        return rc < 0 ? 0 : rc;
    }
    rc = 1;
    /* the text encoders are loaded, run and freed before the model loads */
    if (gen_text_load(g) || gen_encode(g, NULL)) goto out;
    gen_text_free(g);
    if (gen_model_load(g)) goto out;
    for (int b = 0; b < s->batch; b++) {
        const uint64_t seed = g->seed + (uint64_t)b;
        char *path = output_name(s->out, b + 1, s->batch);
        if (!path) goto out;
        if (!s->quiet && s->batch > 1) fprintf(stderr, "image %d/%d, seed %llu\n", b + 1, s->batch, (unsigned long long)seed);
        image im = { 0 };
        const int bad = gen_sample(g, seed, &im) || gen_save(g, &im, path, seed);
        img_free(&im);
        if (!bad && !s->quiet) fprintf(stderr, "wrote %s\n", path);
        free(path);
        if (bad) goto out;
    }
    gen_summary(g);
    rc = 0;
out:
    gen_free(g);
    return rc;
}

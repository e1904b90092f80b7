/* tools/eval.c — `dit eval PROMPTS.txt`: generate every prompt with fixed seeds, score each image
 * with the checker (tools/checker.h) and report per prompt and overall. The accuracy is object-level:
 * requested objects found with every attribute the prompt gives them, over all requested objects
 * (tools/SCENE.md, "scoring"), summed over prompts and seeds.
 *
 * Diversity of what the prompt leaves open (for CFG sweeps): for each requested object matched in
 * at least two images of a prompt, the standard deviation across seeds of its centre (as a fraction
 * of the image side, x and y averaged), and for each attribute the prompt does not give, the number
 * of distinct values seen over the most there could be (min(seeds, values)); both averaged. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "tools/checker.h"
#include "tools/cli.h"
#include "tools/gen.h"
#include "tools/scene.h"

#define MAX_PROMPTS 100000
#define MAX_SEEDS 1000

static void usage(FILE *f)
{
    fprintf(f, "usage: dit eval PROMPTS.txt [--seeds N] [--out DIR] [--json] [generate options]\n\n"
               "Generate every prompt of PROMPTS.txt (one per line; blank lines and lines starting with #\n"
               "skipped; - = stdin) with seeds S, S+1, ..., S+N-1, score each image against its prompt with the\n"
               "scene checker, print one line per prompt and a last line 'accuracy X.XXX' (object-level: requested\n"
               "objects found with every attribute the prompt gives them, over all requested objects).\n\n"
               "options:\n"
               "  --seeds N      images per prompt [4]\n"
               "  --out DIR      also write every image there as pNNNN_sSEED.png (with its settings)\n"
               "  --json         a machine-readable report on stdout instead of the lines\n"
               "  -s, --seed S   the first seed [0]\n"
               "  other options  as dit generate (-m, --steps, --cfg-scale, --sampler, -W, -H, ...); the model\n"
               "                 defaults to the embedded one\n\n"
               "Prompts must be in the scene grammar (dit scene --vocab lists its words). Exit status: 0 done,\n"
               "1 runtime error, 2 usage error.\n");
}

typedef struct {
    char *text;
    int line;
    scene_prompt p;
} prompt;

/* Tallies over images; a field per checker_score tally. */
typedef struct {
    checker_tally shape, colour, size, fill, count, relation, occlusion, object;
    int images, all_correct;
} totals;

static void tally_add(checker_tally *a, checker_tally b)
{
    a->ok += b.ok, a->n += b.n;
}

static void totals_add(totals *t, const checker_score *s)
{
    tally_add(&t->shape, s->shape), tally_add(&t->colour, s->colour), tally_add(&t->size, s->size);
    tally_add(&t->fill, s->fill), tally_add(&t->count, s->count), tally_add(&t->relation, s->relation);
    tally_add(&t->occlusion, s->occlusion), tally_add(&t->object, s->object);
    t->images++, t->all_correct += s->all_correct;
}

static double frac(checker_tally t)
{
    return t.n ? (double)t.ok / t.n : NAN;
}

static cJSON *totals_json(const totals *t)
{
    cJSON *j = cJSON_CreateObject();
    const struct { const char *name; checker_tally v; } f[] = {
        { "shape", t->shape }, { "colour", t->colour }, { "size", t->size }, { "fill", t->fill }, { "count", t->count },
        { "relation", t->relation }, { "occlusion", t->occlusion }, { "object", t->object },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        cJSON *o = cJSON_AddObjectToObject(j, f[i].name);
        cJSON_AddNumberToObject(o, "ok", f[i].v.ok);
        cJSON_AddNumberToObject(o, "n", f[i].v.n);
    }
    cJSON_AddNumberToObject(j, "images", t->images);
    cJSON_AddNumberToObject(j, "all_correct", t->all_correct);
    return j;
}

/* Diversity accumulators of one prompt: per requested object, sums over the seeds it was matched in. */
typedef struct {
    int n[SCENE_MAX_OBJECTS];
    double sx[SCENE_MAX_OBJECTS], sy[SCENE_MAX_OBJECTS], sxx[SCENE_MAX_OBJECTS], syy[SCENE_MAX_OBJECTS];
    unsigned seen[SCENE_MAX_OBJECTS][4]; /* bit v: value v of attribute (shape, colour, size, fill) seen */
} spread;

static int read_prompts(const char *path, prompt **out, int *n_out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "dit eval: %s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    prompt *ps = NULL;
    int n = 0, cap = 0, line = 0, rc = 0;
    char buf[4096];
    while (fgets(buf, sizeof buf, f)) {
        line++;
        size_t L = strlen(buf);
        if (L == sizeof buf - 1 && buf[L - 1] != '\n') {
            fprintf(stderr, "dit eval: %s:%d: line longer than %zu bytes\n", path, line, sizeof buf - 2);
            rc = 1;
            break;
        }
        while (L && (buf[L - 1] == '\n' || buf[L - 1] == '\r' || buf[L - 1] == ' ' || buf[L - 1] == '\t')) buf[--L] = 0;
        const char *t = buf + strspn(buf, " \t");
        if (!*t || *t == '#') continue;
        if (n == MAX_PROMPTS) {
            fprintf(stderr, "dit eval: %s: more than %d prompts\n", path, MAX_PROMPTS);
            rc = 1;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            prompt *np = realloc(ps, sizeof *ps * cap);
            if (!np) {
                fprintf(stderr, "dit eval: out of memory\n");
                rc = 1;
                break;
            }
            ps = np;
        }
        dit_err e = { 0 };
        ps[n].line = line;
        if (scene_parse(t, &ps[n].p, &e)) {
            fprintf(stderr, "dit eval: %s:%d: %s\n", path, line, e.msg);
            rc = 1;
            break;
        }
        if (!(ps[n].text = strdup(t))) {
            fprintf(stderr, "dit eval: out of memory\n");
            rc = 1;
            break;
        }
        n++;
    }
    if (f != stdin) fclose(f);
    if (!rc && !n) {
        fprintf(stderr, "dit eval: %s: no prompts\n", path);
        rc = 1;
    }
    if (rc) {
        for (int i = 0; i < n; i++) free(ps[i].text);
        free(ps);
        return rc;
    }
    *out = ps, *n_out = n;
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *file = NULL, *out_dir = NULL;
    int seeds = 4, json = 0, has_seed = 0;
    /* our flags out, the rest for gen_prepare (with -q, and -s 0 unless a seed is given) */
    char **fargv = calloc((size_t)argc + 4, sizeof *fargv);
    if (!fargv) return 1;
    int fargc = 0;
    fargv[fargc++] = "eval";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(fargv);
            return 0;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--seeds") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dit eval: %s needs a value\n", a);
                free(fargv);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) out_dir = v;
            else {
                char *end;
                const long k = strtol(v, &end, 10);
                if (end == v || *end || k < 1 || k > MAX_SEEDS) {
                    fprintf(stderr, "dit eval: --seeds %s: must be 1..%d\n", v, MAX_SEEDS);
                    free(fargv);
                    return 2;
                }
                seeds = (int)k;
            }
        } else if (a[0] != '-' || !strcmp(a, "-")) {
            if (file) {
                fprintf(stderr, "dit eval: one PROMPTS file expected, got '%s' and '%s'\n", file, a);
                free(fargv);
                return 2;
            }
            file = a;
        } else {
            if (!strcmp(a, "-s") || !strcmp(a, "--seed")) has_seed = 1;
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
                !strcmp(a, "-b") || !strcmp(a, "--batch-count") || !strcmp(a, "--from")) {
                fprintf(stderr, "dit eval: %s is not an eval option (prompts come from the file, seeds from --seeds)\n", a);
                free(fargv);
                return 2;
            }
            fargv[fargc++] = argv[i];
            if (i + 1 < argc && strcmp(a, "-q") && strcmp(a, "--quiet")) fargv[fargc++] = argv[++i];
        }
    }
    if (!file) {
        usage(stderr);
        free(fargv);
        return 2;
    }
    fargv[fargc++] = "-q";
    if (!has_seed) fargv[fargc++] = "-s", fargv[fargc++] = "0";
    if (out_dir && mkdir(out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "dit eval: --out %s: cannot create the folder: %s\n", out_dir, strerror(errno));
        free(fargv);
        return 2;
    }
    prompt *ps = NULL;
    int n_prompts = 0;
    int rc = read_prompts(file, &ps, &n_prompts);
    gen *g = rc ? NULL : gen_new("dit eval");
    if (!rc && !g) rc = 1;
    if (!rc && (rc = gen_prepare(g, fargc, fargv, 0)) < 0) rc = 0; /* cannot happen: --help is ours */
    if (!rc && (gen_text_load(g) || gen_model_load(g))) rc = 1;
    totals all = { 0 };
    double pos_sd = 0, distinct = 0;
    int n_pos_sd = 0, n_distinct = 0;
    cJSON *report = json && !rc ? cJSON_CreateObject() : NULL, *jp = report ? cJSON_AddArrayToObject(report, "prompts") : NULL;
    const uint64_t base = rc ? 0 : gen_seed(g);
    for (int i = 0; !rc && i < n_prompts; i++) {
        if (gen_encode(g, ps[i].text)) {
            rc = 1;
            break;
        }
        totals t = { 0 };
        spread sp;
        memset(&sp, 0, sizeof sp);
        for (int k = 0; k < seeds && !rc; k++) {
            const uint64_t seed = base + (uint64_t)k;
            image im = { 0 };
            checker_result d;
            checker_score sc;
            dit_err e = { 0 };
            if (gen_sample(g, seed, &im)) rc = 1;
            else if (checker_detect(&im, &d, &e)) {
                fprintf(stderr, "dit eval: %s\n", e.msg);
                rc = 1;
            } else {
                checker_score_prompt(&d, &ps[i].p, &sc);
                totals_add(&t, &sc);
                for (int r = 0; r < sc.n_requested && r < SCENE_MAX_OBJECTS; r++) {
                    const int di = sc.det_of[r];
                    if (di < 0) continue;
                    const checker_object *o = &d.obj[di];
                    const double x = o->cx / d.w, y = o->cy / d.h;
                    sp.n[r]++, sp.sx[r] += x, sp.sy[r] += y, sp.sxx[r] += x * x, sp.syy[r] += y * y;
                    const int v[4] = { o->shape, o->colour, o->size, o->fill };
                    for (int a = 0; a < 4; a++) sp.seen[r][a] |= 1u << v[a];
                }
                if (out_dir) {
                    char path[4200];
                    snprintf(path, sizeof path, "%s/p%04d_s%llu.png", out_dir, i, (unsigned long long)seed);
                    if (gen_save(g, &im, path, seed)) rc = 1;
                }
            }
            img_free(&im);
        }
        if (rc) break;
        /* diversity of this prompt */
        for (int r = 0; r < SCENE_MAX_OBJECTS; r++) {
            if (sp.n[r] >= 2) {
                const double m = sp.n[r];
                const double vx = fmax(0, sp.sxx[r] / m - (sp.sx[r] / m) * (sp.sx[r] / m));
                const double vy = fmax(0, sp.syy[r] / m - (sp.sy[r] / m) * (sp.sy[r] / m));
                pos_sd += 0.5 * (sqrt(vx) + sqrt(vy)), n_pos_sd++;
            }
        }
        for (int r = 0; r < SCENE_MAX_OBJECTS; r++) {
            if (sp.n[r] < 2) continue;
            /* which mention requested object r came from: the first mentions expand by count */
            int mention = -1, acc = 0;
            for (int m = 0; m < ps[i].p.n_mentions && mention < 0; m++) {
                acc += ps[i].p.m[m].count;
                if (r < acc) mention = m;
            }
            if (mention < 0) continue;
            const scene_mention *mm = &ps[i].p.m[mention];
            const int said[4] = { mm->shape, mm->colour, mm->size, mm->fill };
            const int n_values[4] = { SHAPE_COUNT, COLOUR_COUNT, SIZE_COUNT, FILL_COUNT };
            for (int a = 0; a < 4; a++) {
                if (said[a] >= 0) continue;
                const int most = sp.n[r] < n_values[a] ? sp.n[r] : n_values[a];
                int bits = 0;
                for (unsigned b = sp.seen[r][a]; b; b &= b - 1) bits++;
                distinct += (double)bits / most, n_distinct++;
            }
        }
        if (!json)
            printf("%.3f  %d/%d objects, %d/%d images all right  %s\n", frac(t.object), t.object.ok, t.object.n, t.all_correct,
                   t.images, ps[i].text);
        else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", ps[i].text);
            cJSON_AddNumberToObject(o, "line", ps[i].line);
            cJSON_AddItemToObject(o, "tally", totals_json(&t));
            cJSON_AddItemToArray(jp, o);
        }
        fflush(stdout);
        all.shape.ok += t.shape.ok, all.shape.n += t.shape.n, all.colour.ok += t.colour.ok, all.colour.n += t.colour.n;
        all.size.ok += t.size.ok, all.size.n += t.size.n, all.fill.ok += t.fill.ok, all.fill.n += t.fill.n;
        all.count.ok += t.count.ok, all.count.n += t.count.n, all.relation.ok += t.relation.ok, all.relation.n += t.relation.n;
        all.occlusion.ok += t.occlusion.ok, all.occlusion.n += t.occlusion.n, all.object.ok += t.object.ok;
        all.object.n += t.object.n, all.images += t.images, all.all_correct += t.all_correct;
    }
    if (!rc) {
        const double acc = all.object.n ? (double)all.object.ok / all.object.n : 0;
        const double psd = n_pos_sd ? pos_sd / n_pos_sd : NAN, dst = n_distinct ? distinct / n_distinct : NAN;
        if (json) {
            cJSON_AddNumberToObject(report, "seeds", seeds);
            cJSON_AddNumberToObject(report, "first_seed", (double)base);
            cJSON_AddItemToObject(report, "tally", totals_json(&all));
            cJSON *dv = cJSON_AddObjectToObject(report, "diversity");
            cJSON_AddNumberToObject(dv, "position_sd", isnan(psd) ? -1 : psd);
            cJSON_AddNumberToObject(dv, "unspecified_distinct", isnan(dst) ? -1 : dst);
            cJSON_AddNumberToObject(report, "accuracy", acc);
            char *txt = cJSON_Print(report);
            if (txt) puts(txt);
            free(txt);
        } else {
            printf("shape %.3f, colour %.3f, size %.3f, fill %.3f, count %.3f, relation %.3f, occlusion %.3f; "
                   "images all right %d/%d; diversity: position sd %.3f, unspecified attributes %.3f\n",
                   frac(all.shape), frac(all.colour), frac(all.size), frac(all.fill), frac(all.count), frac(all.relation),
                   frac(all.occlusion), all.all_correct, all.images, psd, dst);
            printf("accuracy %.3f\n", acc);
        }
    }
    cJSON_Delete(report);
    gen_free(g);
    for (int i = 0; i < n_prompts; i++) free(ps[i].text);
    free(ps);
    free(fargv);
    return rc;
}

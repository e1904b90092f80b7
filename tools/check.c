/* tools/check.c — `dit check CASE_DIR`: dispatch a golden case folder to its family's checker
 * and print the verdict (see check.h). */
#include "tools/check.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "tools/cli.h"

/* case.json "family" -> checker. Folders without case.json but with cases.json are tokenizer
 * case sets (text). */
static const struct {
    const char *family;
    check_fn fn;
} FAMILIES[] = {
    { "flux", check_dit },      { "sd3", check_dit }, { "dit", check_dit },    { "clip_text", check_encoders },
    { "t5", check_encoders },       { "vae", check_vae }, { "taef2", check_vae },
};

double check_rel_to_max(const float *got, const float *ref, size_t n, double *max_abs)
{
    double mabs = 0, mref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d == d)) d = INFINITY; /* NaN never passes */
        if (d > mabs) mabs = d;
        const double a = fabs((double)ref[i]);
        if (a > mref) mref = a;
    }
    if (max_abs) *max_abs = mabs;
    if (mabs == 0) return 0;
    return mref > 0 ? mabs / mref : INFINITY;
}

static int report_line(check_run *r, const char *path, const char *name, double mabs, double rel, double bound,
                       int is_abs)
{
    const int ok = (is_abs ? mabs : rel) <= bound;
    r->compared++;
    if (!ok) r->failed++;
    fprintf(r->out, "%-5s %-22s max_abs %.1e  rel %.1e  bound %.1e%s  %s\n", path, name, mabs, rel, bound,
            is_abs ? " abs" : "", ok ? "ok" : "FAIL");
    return ok;
}

int check_report(check_run *r, const char *path, const char *name, const float *got, const float *ref, size_t n,
                 double bound)
{
    double mabs;
    const double rel = check_rel_to_max(got, ref, n, &mabs);
    return report_line(r, path, name, mabs, rel, bound, 0);
}

int check_report_abs(check_run *r, const char *path, const char *name, const float *got, const float *ref,
                     size_t n, double bound)
{
    double mabs;
    const double rel = check_rel_to_max(got, ref, n, &mabs);
    return report_line(r, path, name, mabs, rel, bound, 1);
}

void check_error(check_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", r->out);
    vfprintf(r->out, fmt, ap);
    fputc('\n', r->out);
    va_end(ap);
    r->failed++;
}

double check_tolerance(const check_run *r, const char *name, double dflt, int *is_abs)
{
    if (is_abs) *is_abs = 0;
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(r->json, "tolerance");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(tol, "per_tensor");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(pt, name);
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(t, "rel_to_max");
    if (cJSON_IsNumber(rel) && rel->valuedouble > 0) return rel->valuedouble;
    const cJSON *abs_ = cJSON_GetObjectItemCaseSensitive(t, "max_abs");
    if (cJSON_IsNumber(abs_) && abs_->valuedouble > 0) {
        if (is_abs) *is_abs = 1;
        return abs_->valuedouble;
    }
    return dflt;
}

const float *check_io_f32(check_run *r, const st_file *io, const char *name, size_t numel)
{
    const st_tensor *t = st_find(io, name);
    if (!t) {
        check_error(r, "%s: no tensor '%s'", st_path(io), name);
        return NULL;
    }
    if (t->dtype != ST_F32 || t->numel != numel) {
        check_error(r, "%s: tensor '%s' is %s with %llu elements, expected F32 with %zu", st_path(io), name,
                    st_dtype_name(t->dtype), (unsigned long long)t->numel, numel);
        return NULL;
    }
    return (const float *)t->data;
}

int check_io_shape(const st_file *io, const char *name, int nd, int64_t *shape)
{
    const st_tensor *t = st_find(io, name);
    if (!t || t->nd != nd) return -1;
    for (int i = 0; i < nd; i++) shape[i] = t->shape[i];
    return 0;
}

const char *check_path(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dit check [-v] [--f32-only | --fast-only] CASE_DIR\n"
            "\n"
            "Run one golden case folder (a folder of ../shared/golden, e.g. flux/dev, sd3/sd3.5_medium,\n"
            "dit/sit_xl2_like) and compare every output with the expected values.\n"
            "The f32 path must be within the case's tolerance (case.json \"tolerance\", per tensor,\n"
            "max|got - ref| / max|ref|) and the fast bf16 path within %.0e of the same reference.\n"
            "Prints one line per compared tensor, the first block whose hidden state diverges, and\n"
            "as the last line PASS or FAIL.\n"
            "\n"
            "options:\n"
            "  -v            also list every intermediate tensor\n"
            "  --f32-only    run only the f32 reference path\n"
            "  --fast-only   run only the fast (bf16) path\n"
            "  -h, --help    show this help\n"
            "\n"
            "exit status: 0 PASS, 1 FAIL or unreadable case, 2 usage error\n",
            CHECK_FAST_BOUND);
}

int cmd_check(int argc, char **argv)
{
    check_run r = { .out = stdout };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v")) r.verbose = 1;
        else if (!strcmp(a, "--f32-only")) r.ref_only = 1;
        else if (!strcmp(a, "--fast-only")) r.fast_only = 1;
        else if (a[0] == '-') {
            fprintf(stderr, "dit check: unknown option '%s' (try --help)\n", a);
            return 2;
        } else if (r.dir) {
            fprintf(stderr, "dit check: more than one case folder ('%s', '%s')\n", r.dir, a);
            return 2;
        } else r.dir = a;
    }
    if (!r.dir) {
        usage(stderr);
        return 2;
    }
    if (r.ref_only && r.fast_only) {
        fprintf(stderr, "dit check: --f32-only and --fast-only exclude each other\n");
        return 2;
    }
    struct stat st;
    if (stat(r.dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "dit check: %s: not a folder\n", r.dir);
        return 1;
    }
    char path[4096];
    check_fn fn = NULL;
    cJSON *j = NULL;
    dit_err e = { 0 };
    int got = json_read_file(check_path(path, sizeof path, r.dir, "case.json"), JSON_MAX_CASE, &j, &e);
    if (got > 0) {
        const cJSON *fam = cJSON_GetObjectItemCaseSensitive(j, "family");
        const char *name = cJSON_IsString(fam) ? fam->valuestring : "";
        for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
            if (!strcmp(name, FAMILIES[i].family)) fn = FAMILIES[i].fn;
        if (!fn) {
            fprintf(stderr, "dit check: %s: unknown case family '%s'\n", path, name);
            cJSON_Delete(j);
            return 1;
        }
    } else if (got < 0 || (got = json_read_file(check_path(path, sizeof path, r.dir, "cases.json"), JSON_MAX_CASE, &j, &e)) < 0) {
        fprintf(stderr, "dit check: %s\n", e.msg);
        return 1;
    } else if (got > 0) {
        fn = check_text;
    } else {
        fprintf(stderr, "dit check: %s: no case.json or cases.json (is it a golden case folder?)\n", r.dir);
        return 1;
    }
    r.json = j;
    const int ran = fn(&r) == 0;
    cJSON_Delete(j);
    if (ran && r.compared == 0) {
        fprintf(r.out, "error: nothing was compared\n");
        r.failed++;
    }
    const int pass = ran && r.failed == 0;
    fprintf(r.out, "%s\n", pass ? "PASS" : "FAIL");
    return pass ? 0 : 1;
}

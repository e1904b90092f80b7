/* tests/test.h — the test harness. One test program per tests/test_*.c file.
 *
 *   static void t_layernorm(tctx *t) { ...; CHECK(t, err < 1e-5, "max err %g", err); }
 *   int main(void) { tctx t = test_begin("ops"); RUN(&t, t_layernorm); return test_end(&t); }
 *
 * Every CHECK counts one assertion; a test passes when none of its CHECKs failed.
 * test_end() prints "N passed, N failed" (tests, not assertions) and returns the exit code.
 */
#ifndef DIT_TESTS_TEST_H
#define DIT_TESTS_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *suite, *current;
    int passed, failed, skipped;
    int cur_fail, cur_checks, cur_skip;
} tctx;

static inline tctx test_begin(const char *suite)
{
    tctx t = { .suite = suite };
    return t;
}

#define CHECK(t, cond, ...)                                                        \
    do {                                                                           \
        (t)->cur_checks++;                                                         \
        if (!(cond)) {                                                             \
            (t)->cur_fail++;                                                       \
            fprintf(stderr, "  FAIL %s/%s %s:%d: %s: ", (t)->suite, (t)->current,  \
                    __FILE__, __LINE__, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

/* Mark the running test as skipped (e.g. golden folder absent outside CI). */
#define SKIP(t, ...)                                                               \
    do {                                                                           \
        (t)->cur_skip = 1;                                                         \
        fprintf(stderr, "  SKIP %s/%s: ", (t)->suite, (t)->current);              \
        fprintf(stderr, __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                       \
    } while (0)

#define RUN(t, fn) test_run((t), #fn, fn)

static inline void test_run(tctx *t, const char *name, void (*fn)(tctx *))
{
    t->current = name;
    t->cur_fail = t->cur_checks = t->cur_skip = 0;
    fn(t);
    if (t->cur_skip && !t->cur_fail) {
        t->skipped++;
        printf("skip %s/%s\n", t->suite, name);
    } else if (t->cur_fail || t->cur_checks == 0) {
        if (t->cur_checks == 0) fprintf(stderr, "  FAIL %s/%s: test made no assertion\n", t->suite, name);
        t->failed++;
        printf("FAIL %s/%s\n", t->suite, name);
    } else {
        t->passed++;
        printf("ok   %s/%s (%d checks)\n", t->suite, name, t->cur_checks);
    }
    fflush(stdout);
}

static inline int test_end(tctx *t)
{
    if (t->skipped) printf("%d passed, %d failed, %d skipped\n", t->passed, t->failed, t->skipped);
    else printf("%d passed, %d failed\n", t->passed, t->failed);
    return t->failed ? 1 : 0;
}

/* Deterministic test RNG (splitmix64), so a failure can be reproduced. */
typedef struct { uint64_t s; } trng;
static inline uint64_t trng_u64(trng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* A test's seed: `dflt`, so runs are reproducible, unless DIT_TEST_SEED is set, which gives
 * fresh inputs (e.g. DIT_TEST_SEED=$RANDOM make test); a failure prints the seed to rerun. */
static inline uint64_t test_seed(uint64_t dflt)
{
    const char *s = getenv("DIT_TEST_SEED");
    if (!s || !*s) return dflt;
    return dflt ^ (strtoull(s, NULL, 10) * 0x9e3779b97f4a7c15ull);
}
static inline void test_print_seed(void)
{
    const char *s = getenv("DIT_TEST_SEED");
    printf("  inputs: %s\n", s && *s ? s : "default seeds (set DIT_TEST_SEED for fresh ones)");
}

/* Uniform in [lo, hi). */
static inline float trng_uniform(trng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((trng_u64(r) >> 40) * (1.0 / 16777216.0));
}
static inline void trng_fill(trng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = trng_uniform(r, lo, hi);
}

/* max |a-b| / (atol + rtol*|b|) over n; <= 1 means within tolerance. Also reports max abs err. */
static inline double test_err_ratio(const float *a, const float *b, size_t n, double atol, double rtol,
                                    double *max_abs)
{
    double worst = 0, mabs = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d == d)) d = INFINITY; /* NaN never passes */
        if (d > mabs) mabs = d;
        double r = d / (atol + rtol * fabs((double)b[i]));
        if (r > worst) worst = r;
    }
    if (max_abs) *max_abs = mabs;
    return worst;
}

/* Golden folder: $DIT_GOLDEN or ../shared/golden. Returns NULL when absent; under CI=true
 * the caller must treat that as a failure (see test_golden_missing). */
static inline const char *test_golden_dir(void)
{
    const char *g = getenv("DIT_GOLDEN");
    return (g && *g) ? g : "../shared/golden";
}
static inline int test_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci && strcmp(ci, "true") == 0;
}
/* A whole file, NUL-terminated, owned by the caller (free); NULL when unreadable. len may be NULL. */
static inline char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (buf && len) *len = (size_t)n;
    return buf;
}

/* 1 when the golden folder exists. Otherwise the running test fails under CI=true (a missing
 * folder must not pass silently) and is skipped elsewhere. */
static inline int test_golden_present(tctx *t)
{
    struct stat st;
    if (!stat(test_golden_dir(), &st) && S_ISDIR(st.st_mode)) return 1;
    if (test_in_ci()) CHECK(t, 0, "golden folder %s is missing (CI=true)", test_golden_dir());
    else SKIP(t, "golden folder %s not found (set DIT_GOLDEN)", test_golden_dir());
    return 0;
}

#endif

/* tools/check.h — `dit check CASE_DIR`: run one golden case folder of ../shared/golden and compare.
 *
 * tools/check.c reads the folder (case.json, or cases.json for tokenizer folders), picks the
 * checker for its family and prints the verdict as the last line, PASS or FAIL. Each family's
 * checker lives in its own file (check_dit.c: flux/ sd3/ dit/; check_text.c: tokenizers/;
 * check_encoders.c: clip_text/, t5/; check_vae.c: vae/, taef2/) and reports through the helpers below, so every
 * case prints the same kind of table:
 *
 *   f32   out.v          max_abs 2.1e-06  rel 8.0e-07  bound 1.0e-05  ok
 *   bf16  out.v          max_abs 3.3e-03  rel 1.2e-03  bound 2.0e-02  ok
 *
 * Metric (golden README section 3): rel = max|got - ref| / max|ref|, compared with the case's
 * per-tensor bound (f32 path) or CHECK_FAST_BOUND (bf16 path, against the same golden data).
 */
#ifndef DIT_TOOLS_CHECK_H
#define DIT_TOOLS_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

#include "core/safetensors.h"

#define CHECK_FAST_BOUND 2e-2 /* bf16 path vs golden, max|err| / max|ref| */

typedef struct {
    const char *dir;      /* the case folder */
    const cJSON *json;    /* case.json or cases.json, parsed */
    int verbose;          /* -v: also every intermediate tensor */
    int fast_only, ref_only;
    FILE *out;            /* the report (stdout) */
    int failed;           /* number of comparisons out of bounds, plus errors */
    int compared;         /* number of comparisons made */
} check_run;

/* A checker: returns 0 when it ran (pass or fail is in r->failed), 1 when the case could not be
 * run (its message already printed as "error: ..."). */
typedef int (*check_fn)(check_run *r);
int check_dit(check_run *r);
int check_text(check_run *r);
int check_encoders(check_run *r); /* clip_text/, t5/ (check_encoders.c) */
int check_vae(check_run *r);

/* max|got - ref| / max|ref| (0 when both are all zero; inf for NaN); *max_abs = max|got - ref|. */
double check_rel_to_max(const float *got, const float *ref, size_t n, double *max_abs);
/* One report line; counts a failure when rel > bound. Returns 1 when within the bound. */
int check_report(check_run *r, const char *path, const char *name, const float *got, const float *ref, size_t n,
                 double bound);
/* The same for an absolute bound (max|got - ref| <= bound), e.g. the golden *_freq sinusoids. */
int check_report_abs(check_run *r, const char *path, const char *name, const float *got, const float *ref,
                     size_t n, double bound);
/* Print "error: ..." and count a failure. */
void check_error(check_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* case.json "tolerance": per_tensor[name].rel_to_max (or max_abs with *is_abs = 1), else dflt. */
double check_tolerance(const check_run *r, const char *name, double dflt, int *is_abs);

/* An F32 tensor of an io file with exactly the given number of elements, or NULL (error printed). */
const float *check_io_f32(check_run *r, const st_file *io, const char *name, size_t numel);
/* The shape of a tensor of an io file (nd dims), 0 when present with nd dims, -1 otherwise. */
int check_io_shape(const st_file *io, const char *name, int nd, int64_t *shape);

/* dir/name into buf; returns buf. */
const char *check_path(char *buf, size_t cap, const char *dir, const char *name);

#endif

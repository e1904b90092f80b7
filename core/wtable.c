/* core/wtable.c — see wtable.h. */
#include "wtable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WT_NAME_CAP 512
#define WT_MAX_PIECES 8

/* ---- store ------------------------------------------------------------------------------------ */

static void *store_alloc(wt_loader *L, size_t bytes)
{
    wt_store *s = L->store;
    if (s->n_bufs == s->cap_bufs) {
        const int cap = s->cap_bufs ? 2 * s->cap_bufs : 64;
        void **b = realloc(s->bufs, sizeof *b * cap);
        if (!b) return NULL;
        s->bufs = b, s->cap_bufs = cap;
    }
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) return NULL;
    s->bufs[s->n_bufs++] = p;
    s->bytes += bytes;
    return p;
}

static int store_packed(wt_loader *L, ops_weight *w)
{
    wt_store *s = L->store;
    if (s->n_packed == s->cap_packed) {
        const int cap = s->cap_packed ? 2 * s->cap_packed : 64;
        ops_weight **b = realloc(s->packed, sizeof *b * cap);
        if (!b) return -1;
        s->packed = b, s->cap_packed = cap;
    }
    s->packed[s->n_packed++] = w;
    s->bytes += ops_weight_bytes(w);
    return 0;
}

void wt_store_free(wt_store *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_bufs; i++) free(s->bufs[i]);
    for (int i = 0; i < s->n_packed; i++) ops_weight_free(s->packed[i]);
    free(s->bufs);
    free(s->packed);
    memset(s, 0, sizeof *s);
}

/* ---- loader ----------------------------------------------------------------------------------- */

dit_status wt_loader_init(wt_loader *L, const st_set *set, const char *prefix, int naming, ops_ctx *ctx,
                          ops_prec prec, wt_store *store, const int *dims, dit_err *e)
{
    memset(L, 0, sizeof *L);
    L->set = set, L->prefix = prefix ? prefix : "", L->naming = naming, L->ctx = ctx, L->prec = prec;
    L->store = store, L->dims = dims, L->e = e;
    const int n = st_set_count(set);
    L->used = calloc(n > 0 ? (size_t)n : 1, 1);
    if (!L->used) return err_set(e, DIT_E_OOM, "%s: out of memory", st_set_path(set));
    return DIT_OK;
}

void wt_loader_free(wt_loader *L)
{
    free(L->used);
    L->used = NULL;
}

const st_tensor *wt_find(const wt_loader *L, const char *name)
{
    char full[WT_NAME_CAP];
    if (snprintf(full, sizeof full, "%s%s", L->prefix, name) >= (int)sizeof full) return NULL;
    return st_set_find(L->set, full);
}

static void mark_used(wt_loader *L, const char *name)
{
    char full[WT_NAME_CAP];
    snprintf(full, sizeof full, "%s%s", L->prefix, name);
    const int i = st_set_index_of(L->set, full);
    if (i >= 0) L->used[i] = 1;
}

dit_status wt_loader_finish(wt_loader *L)
{
    const size_t plen = strlen(L->prefix);
    int extra = 0, first = -1;
    for (int i = 0; i < st_set_count(L->set); i++) {
        const st_tensor *t = st_set_at(L->set, i);
        if (L->used[i] || strncmp(t->name, L->prefix, plen)) continue;
        if (first < 0) first = i;
        extra++;
    }
    if (!extra) return DIT_OK;
    const st_tensor *t = st_set_at(L->set, first);
    char shape[128] = "[";
    for (int d = 0; d < t->nd; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    strcat(shape, "]");
    return err_set(L->e, DIT_E_SHAPE, "%s: unexpected tensor '%s' %s (%d tensor%s not used by the model)",
                   st_set_path(L->set), t->name, shape, extra, extra == 1 ? "" : "s");
}

/* ---- names ------------------------------------------------------------------------------------ */

/* The pieces of one alternative: "p{x,y}s" -> "pxs", "pys" (+ suffix). Returns the count, 0 on a
 * malformed or too long name. */
static int expand(const char *alt, size_t alt_len, const char *suffix, char out[][WT_NAME_CAP])
{
    char a[WT_NAME_CAP];
    if (alt_len >= sizeof a) return 0;
    memcpy(a, alt, alt_len);
    a[alt_len] = 0;
    char *lb = strchr(a, '{'), *rb = lb ? strchr(lb, '}') : NULL;
    if (!lb) return snprintf(out[0], WT_NAME_CAP, "%s%s", a, suffix) < WT_NAME_CAP ? 1 : 0;
    if (!rb) return 0;
    *lb = 0, *rb = 0;
    int n = 0;
    for (char *p = lb + 1; n < WT_MAX_PIECES;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (snprintf(out[n++], WT_NAME_CAP, "%s%s%s%s", a, p, rb + 1, suffix) >= WT_NAME_CAP) return 0;
        if (!comma) break;
        p = comma + 1;
    }
    return n;
}

typedef struct {
    int n;
    char name[WT_MAX_PIECES][WT_NAME_CAP];
    const st_tensor *t[WT_MAX_PIECES];
    int swap;
} pieces;

/* Resolve a formatted name (with |, {} and :swap) and a suffix (".weight" or "") to present
 * pieces. Returns 1 found, 0 absent; *first gets the first alternative's first piece name for
 * messages. */
static int resolve(const wt_loader *L, const char *fmt_name, const char *suffix, pieces *P, char *first)
{
    char name[WT_NAME_CAP];
    snprintf(name, sizeof name, "%s", fmt_name);
    P->swap = 0;
    const size_t len = strlen(name);
    if (len > 5 && !strcmp(name + len - 5, ":swap")) P->swap = 1, name[len - 5] = 0;
    first[0] = 0;
    for (const char *alt = name; alt;) {
        const char *bar = strchr(alt, '|');
        const size_t alen = bar ? (size_t)(bar - alt) : strlen(alt);
        P->n = expand(alt, alen, suffix, P->name);
        if (!first[0] && P->n) snprintf(first, WT_NAME_CAP, "%s", P->name[0]);
        int all = P->n > 0;
        for (int i = 0; all && i < P->n; i++) all = (P->t[i] = wt_find(L, P->name[i])) != NULL;
        if (all) return 1;
        alt = bar ? bar + 1 : NULL;
    }
    return 0;
}

static void shape_text(char *buf, size_t cap, int nd, const int64_t *shape)
{
    int o = snprintf(buf, cap, "[");
    for (int d = 0; d < nd && o < (int)cap; d++) o += snprintf(buf + o, cap - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (o < (int)cap) snprintf(buf + o, cap - o, "]");
}

/* Check the pieces: same dtype (F32/F16/BF16) and trailing dims; their concatenation along dim 0
 * must have the expected shape. */
/* nd of t after dropping trailing dims of size 1 down to nd (WT_SQUEEZE), else its own nd. */
static int squeezed_nd(const st_tensor *t, int nd, int squeeze)
{
    int n = t->nd;
    while (squeeze && n > nd && t->shape[n - 1] == 1) n--;
    return n;
}

static dit_status check_pieces(wt_loader *L, const pieces *P, int nd, const int64_t *want, dtype *dt, int squeeze)
{
    int64_t got[ST_MAX_DIMS] = { 0 };
    const st_tensor *t0 = P->t[0];
    const int nd0 = squeezed_nd(t0, nd, squeeze);
    int same = 1;
    for (int i = 0; i < P->n; i++) {
        const st_tensor *t = P->t[i];
        if (!st_dtype_to_core(t->dtype, dt) || (i && t->dtype != t0->dtype))
            return err_set(L->e, DIT_E_SHAPE, "%s: tensor '%s%s' has dtype %s, expected F32, F16 or BF16%s",
                           st_set_path(L->set), L->prefix, P->name[i], st_dtype_name(t->dtype),
                           i ? " like the other parts" : "");
        if (squeezed_nd(t, nd, squeeze) != nd0) same = 0;
        for (int d = 1; same && d < nd0; d++) same = t->shape[d] == t0->shape[d];
        got[0] += t->nd ? t->shape[0] : 1;
    }
    for (int d = 1; d < t0->nd; d++) got[d] = t0->shape[d];
    int ok = same && nd0 == nd && !(P->swap && got[0] % 2);
    for (int d = 0; ok && d < nd; d++) ok = got[d] == want[d];
    if (ok) return DIT_OK;
    char gs[128], ws[128];
    shape_text(gs, sizeof gs, t0->nd, got);
    shape_text(ws, sizeof ws, nd, want);
    if (P->n == 1)
        return err_set(L->e, DIT_E_SHAPE, "%s: tensor '%s%s' has shape %s, expected %s", st_set_path(L->set),
                       L->prefix, P->name[0], gs, ws);
    return err_set(L->e, DIT_E_SHAPE, "%s: tensors '%s%s' .. '%s' (%d parts) give shape %s%s, expected %s",
                   st_set_path(L->set), L->prefix, P->name[0], P->name[P->n - 1], P->n, gs,
                   same ? "" : " (parts disagree)", ws);
}

/* Concatenate the pieces (rows of cols elements) into dst converted to dtype out (F32 or BF16, or
 * the pieces' own dtype), exchanging the halves when P->swap. */
static void gather(const pieces *P, void *dst, dtype out, int64_t cols)
{
    int64_t rows = 0;
    for (int i = 0; i < P->n; i++) rows += P->t[i]->nd ? P->t[i]->shape[0] : 1;
    const int64_t half = rows / 2;
    const size_t es = dtype_size(out);
    int64_t r = 0;
    for (int i = 0; i < P->n; i++) {
        dtype in;
        st_dtype_to_core(P->t[i]->dtype, &in);
        const int64_t n = P->t[i]->nd ? P->t[i]->shape[0] : 1;
        for (int64_t k = 0; k < n; k++, r++) {
            const int64_t dr = P->swap ? (r < half ? r + half : r - half) : r;
            const unsigned char *src = (const unsigned char *)P->t[i]->data + (size_t)k * cols * dtype_size(in);
            unsigned char *d = (unsigned char *)dst + (size_t)dr * cols * es;
            if (in == out) memcpy(d, src, (size_t)cols * es);
            else if (out == DT_F32) cvt_to_f32((float *)d, src, in, (size_t)cols);
            else { /* BF16 from F32 or F16 */
                for (int64_t c = 0; c < cols; c++) {
                    const float v = in == DT_F32 ? ((const float *)src)[c] : f16_to_f32(((const uint16_t *)src)[c]);
                    ((uint16_t *)d)[c] = f32_to_bf16(v);
                }
            }
        }
    }
}

static dit_status oom(wt_loader *L, const char *name)
{
    return err_set(L->e, DIT_E_OOM, "%s: out of memory loading '%s'", st_set_path(L->set), name);
}

static void mark_pieces(wt_loader *L, const pieces *P)
{
    for (int i = 0; i < P->n; i++) mark_used(L, P->name[i]);
}

/* f32 copy of the pieces; *out owned by the store. */
static dit_status load_f32(wt_loader *L, const pieces *P, int64_t rows, int64_t cols, float **out)
{
    float *f = store_alloc(L, sizeof(float) * (size_t)(rows * cols));
    if (!f) return oom(L, P->name[0]);
    gather(P, f, DT_F32, cols);
    *out = f;
    return DIT_OK;
}

static dit_status load_linear(wt_loader *L, const wt_spec *s, const char *fmt_name, wt_lin *lin)
{
    const int64_t out = (int64_t)s->dim[0].mul * (s->dim[0].sym ? L->dims[s->dim[0].sym] : 1);
    const int64_t in = (int64_t)s->dim[1].mul * (s->dim[1].sym ? L->dims[s->dim[1].sym] : 1);
    pieces W, B;
    char first[WT_NAME_CAP];
    memset(lin, 0, sizeof *lin);
    if (!resolve(L, fmt_name, ".weight", &W, first)) {
        if (s->flags & WT_OPTIONAL) return DIT_OK;
        return err_set(L->e, DIT_E_SHAPE, "%s: missing tensor '%s%s' (expected [%lld, %lld])", st_set_path(L->set),
                       L->prefix, first, (long long)out, (long long)in);
    }
    dtype dt;
    const int64_t wshape[2] = { out, in };
    dit_status r = check_pieces(L, &W, 2, wshape, &dt, s->flags & WT_SQUEEZE);
    if (r) return r;
    lin->in = (int)in, lin->out = (int)out;
    if (!(s->flags & WT_NOBIAS)) {
        if (!resolve(L, fmt_name, ".bias", &B, first))
            return err_set(L->e, DIT_E_SHAPE, "%s: missing tensor '%s%s' (expected [%lld])", st_set_path(L->set),
                           L->prefix, first, (long long)out);
        dtype bt;
        if ((r = check_pieces(L, &B, 1, &out, &bt, 0))) return r;
        float *b;
        if ((r = load_f32(L, &B, out, 1, &b))) return r;
        lin->b = b;
        mark_pieces(L, &B);
    }
    if (L->prec == OPS_BF16) {
        tensor src;
        void *tmp = NULL;
        if (W.n == 1 && !W.swap) src = tensor_make(dt, (void *)W.t[0]->data, 2, wshape);
        else {
            tmp = aligned_alloc(64, ((size_t)(out * in) * 2 + 63) / 64 * 64);
            if (!tmp) return oom(L, W.name[0]);
            gather(&W, tmp, DT_BF16, in);
            src = tensor_make(DT_BF16, tmp, 2, wshape);
        }
        ops_weight *pw = NULL;
        r = ops_weight_pack(L->ctx, &src, &pw);
        free(tmp);
        if (r) return err_set(L->e, r, "%s: '%s%s': %s", st_set_path(L->set), L->prefix, W.name[0],
                              ops_ctx_err(L->ctx)->msg);
        if (store_packed(L, pw)) {
            ops_weight_free(pw);
            return oom(L, W.name[0]);
        }
        lin->packed = pw;
    } else {
        float *w;
        if ((r = load_f32(L, &W, out, in, &w))) return r;
        lin->w = w;
    }
    mark_pieces(L, &W);
    return DIT_OK;
}

static dit_status load_plain(wt_loader *L, const wt_spec *s, const char *fmt_name, void *field)
{
    int64_t want[WT_MAX_DIMS];
    for (int d = 0; d < s->nd; d++) want[d] = (int64_t)s->dim[d].mul * (s->dim[d].sym ? L->dims[s->dim[d].sym] : 1);
    pieces P;
    char first[WT_NAME_CAP];
    if (!resolve(L, fmt_name, "", &P, first)) {
        if (s->flags & WT_OPTIONAL) return DIT_OK;
        char ws[128];
        shape_text(ws, sizeof ws, s->nd, want);
        return err_set(L->e, DIT_E_SHAPE, "%s: missing tensor '%s%s' (expected %s)", st_set_path(L->set), L->prefix,
                       first, ws);
    }
    dtype dt;
    dit_status r = check_pieces(L, &P, s->nd, want, &dt, s->flags & WT_SQUEEZE);
    if (r) return r;
    int64_t rows = s->nd ? want[0] : 1, cols = 1;
    for (int d = 1; d < s->nd; d++) cols *= want[d];
    if (s->kind == WT_VEC) {
        if ((r = load_f32(L, &P, rows, cols, (float **)field))) return r;
    } else {
        tensor *t = field;
        const dtype to = (s->flags & WT_AS_PREC) ? (L->prec == OPS_BF16 ? DT_BF16 : DT_F32) : dt;
        if (P.n == 1 && !P.swap && to == dt) *t = tensor_make(dt, (void *)P.t[0]->data, s->nd, want);
        else {
            void *buf = store_alloc(L, dtype_size(to) * (size_t)(rows * cols));
            if (!buf) return oom(L, P.name[0]);
            gather(&P, buf, to, cols);
            *t = tensor_make(to, buf, s->nd, want);
        }
    }
    mark_pieces(L, &P);
    return DIT_OK;
}

dit_status wt_load(wt_loader *L, void *obj, const wt_spec *spec, int n, int i0, int i1)
{
    for (int i = 0; i < n; i++) {
        const wt_spec *s = &spec[i];
        const char *fmt = s->name[L->naming] ? s->name[L->naming] : s->name[0];
        char name[WT_NAME_CAP];
        snprintf(name, sizeof name, fmt, i0, i1);
        void *field = (char *)obj + s->off;
        const dit_status r = s->kind == WT_LINEAR ? load_linear(L, s, name, field) : load_plain(L, s, name, field);
        if (r) return r;
    }
    return DIT_OK;
}

/* ---- use -------------------------------------------------------------------------------------- */

dit_status wt_linear(ops_ctx *c, ops_prec p, float *y, const float *x, int64_t M, const wt_lin *l)
{
    if (l->packed) return ops_linear_packed(c, y, x, M, l->packed, l->b);
    const tensor W = tensor_make(DT_F32, (void *)l->w, 2, (int64_t[]){ l->out, l->in });
    return ops_linear(c, p == OPS_BF16 ? OPS_F32 : p, y, x, M, l->in, &W, l->b, l->out);
}

dit_status wt_linear_bf16(ops_ctx *c, float *y, const uint16_t *xb, int64_t M, const wt_lin *l)
{
    return ops_linear_packed_bf16(c, y, xb, M, l->packed, l->b);
}

void wt_rows_f32(float *dst, const tensor *t, int64_t r0, int64_t n)
{
    const int64_t cols = t->nd > 1 ? t->shape[1] : 1;
    cvt_to_f32(dst, (const unsigned char *)t->data + (size_t)(r0 * cols) * dtype_size(t->type), t->type,
               (size_t)(n * cols));
}

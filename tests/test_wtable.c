/* tests/test_wtable.c — table-driven weight loading: names (alternatives, {a,b} concatenation,
 * :swap), 1x1 convolutions read as linears (WT_FLAT), shape and dtype checks with messages naming the tensor and both shapes, unused tensors,
 * and the prepared linears against ops_ref_linear on the raw tensors. */
#include <stddef.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "core/wtable.h"
#include "tests/test.h"

enum { HID = 1, OUT3, N_SYMS };

typedef struct {
    wt_lin qkv, proj, sq;
    float *scale, *mod;
    tensor table;
} blk;

/* naming 0: one fused tensor; naming 1: the parts */
static const wt_spec SPEC[] = {
    { { "b.%d.qkv", "b.%d.{to_q,to_k,to_v}" }, offsetof(blk, qkv), WT_LINEAR, 0, 2, { WD(3, HID), WD(1, HID) } },
    { { "b.%d.proj", NULL }, offsetof(blk, proj), WT_LINEAR, WT_NOBIAS, 2, { WD(1, HID), WD(1, HID) } },
    { { "b.%d.scale|b.%d.alt_scale", NULL }, offsetof(blk, scale), WT_VEC, 0, 1, { WD(1, HID) } },
    { { "b.%d.mod", "b.%d.mod_swapped:swap" }, offsetof(blk, mod), WT_VEC, 0, 1, { WLIT(4) } },
    { { "b.%d.table", NULL }, offsetof(blk, table), WT_TENSOR, 0, 2, { WLIT(5), WD(1, HID) } },
    /* naming 0 stores it as a 1x1 conv [H, H, 1, 1], naming 1 as a linear [H, H] */
    { { "b.%d.sq", NULL }, offsetof(blk, sq), WT_LINEAR, WT_NOBIAS | WT_FLAT, 2, { WD(1, HID), WD(1, HID) } },
};

#define H 4
static float qkv_w[3 * H * H], qkv_b[3 * H], proj_w[H * H], scale[H], mod[4], table[5 * H];
static uint16_t qkv_w16[3 * H * H];

static void fill(void)
{
    trng r = { test_seed(7) };
    trng_fill(&r, qkv_w, 3 * H * H, -1, 1);
    trng_fill(&r, qkv_b, 3 * H, -1, 1);
    trng_fill(&r, proj_w, H * H, -1, 1);
    trng_fill(&r, scale, H, -1, 1);
    trng_fill(&r, mod, 4, -1, 1);
    trng_fill(&r, table, 5 * H, -1, 1);
    for (int i = 0; i < 3 * H * H; i++) qkv_w16[i] = f32_to_f16(qkv_w[i]);
}

/* Write a file for naming 0 (fused) or 1 (parts, swapped mod, alternative scale name). extra adds
 * a tensor no table uses; bad_shape 1 writes proj as [H, H+1], 2 writes sq as [H, H, 2]. */
static void write_file(const char *path, int naming, int extra, int bad_shape, int f16)
{
    st_writer *w = st_writer_new();
    dit_err e = { 0 };
    const int64_t s3hh[2] = { 3 * H, H }, shh[2] = { H, H }, shh1[2] = { H, H + 1 }, sh[1] = { H }, s3h[1] = { 3 * H },
                  sq[2] = { H, H }, s4[1] = { 4 }, s5h[2] = { 5, H };
    static float bad[H * H * 2];
    if (naming == 0) {
        st_writer_add(w, "b.0.qkv.weight", f16 ? ST_F16 : ST_F32, 2, s3hh, f16 ? (void *)qkv_w16 : (void *)qkv_w, &e);
        st_writer_add(w, "b.0.qkv.bias", ST_F32, 1, s3h, qkv_b, &e);
        st_writer_add(w, "b.0.scale", ST_F32, 1, sh, scale, &e);
        st_writer_add(w, "b.0.mod", ST_F32, 1, s4, mod, &e);
    } else {
        static const char *const part[3] = { "to_q", "to_k", "to_v" };
        char n[64];
        for (int p = 0; p < 3; p++) {
            snprintf(n, sizeof n, "b.0.%s.weight", part[p]);
            st_writer_add(w, n, ST_F32, 2, sq, qkv_w + p * H * H, &e);
            snprintf(n, sizeof n, "b.0.%s.bias", part[p]);
            st_writer_add(w, n, ST_F32, 1, sh, qkv_b + p * H, &e);
        }
        static float swapped[4];
        swapped[0] = mod[2], swapped[1] = mod[3], swapped[2] = mod[0], swapped[3] = mod[1];
        st_writer_add(w, "b.0.alt_scale", ST_F32, 1, sh, scale, &e);
        st_writer_add(w, "b.0.mod_swapped", ST_F32, 1, s4, swapped, &e);
    }
    const int64_t sq4[4] = { H, H, 1, 1 }, sq3[3] = { H, H, 2 };
    if (bad_shape == 2) st_writer_add(w, "b.0.sq.weight", ST_F32, 3, sq3, bad, &e); /* not a 1x1 */
    else st_writer_add(w, "b.0.sq.weight", ST_F32, naming ? 2 : 4, naming ? shh : sq4, proj_w, &e);
    if (bad_shape == 1) st_writer_add(w, "b.0.proj.weight", ST_F32, 2, shh1, bad, &e);
    else st_writer_add(w, "b.0.proj.weight", ST_F32, 2, shh, proj_w, &e);
    st_writer_add(w, "b.0.table", ST_F32, 2, s5h, table, &e);
    if (extra == 1) st_writer_add(w, "b.0.stray", ST_F32, 1, sh, scale, &e);
    if (extra == 2 && naming == 0) st_writer_add(w, "b.0.alt_scale", ST_F32, 1, sh, scale, &e); /* tied: both names */
    st_writer_save(w, path, &e);
    st_writer_free(w);
}

typedef struct {
    st_set *set;
    ops_ctx *ctx;
    wt_store store;
    blk b;
    dit_err e;
    dit_status load, finish;
} loaded;

static void load(loaded *l, const char *path, int naming, ops_prec p)
{
    memset(l, 0, sizeof *l);
    const int dims[N_SYMS] = { 0, H, 3 * H };
    l->ctx = ops_ctx_new(&l->e);
    if (st_set_open(&l->set, path, &l->e)) {
        l->load = l->e.code;
        return;
    }
    wt_loader L;
    wt_loader_init(&L, l->set, "", naming, l->ctx, p, &l->store, dims, &l->e);
    l->load = wt_load(&L, &l->b, SPEC, N_ELEMS(SPEC), 0, 0);
    l->finish = l->load ? DIT_E_ARG : wt_loader_finish(&L);
    wt_loader_free(&L);
}

static void unload(loaded *l)
{
    wt_store_free(&l->store);
    st_set_close(l->set);
    ops_ctx_free(l->ctx);
}

static const char *tmp_path(char *buf, const char *name)
{
    snprintf(buf, 256, "/tmp/dit_test_wtable_%d_%s.safetensors", (int)getpid(), name);
    return buf;
}

static void t_names_and_values(tctx *t)
{
    fill();
    char path[256];
    for (int naming = 0; naming < 2; naming++)
        for (int pi = 0; pi < 2; pi++) {
            const ops_prec p = pi ? OPS_BF16 : OPS_F32;
            write_file(tmp_path(path, "ok"), naming, 0, 0, 0);
            loaded l;
            load(&l, path, naming, p);
            CHECK(t, l.load == DIT_OK && l.finish == DIT_OK, "naming %d %s: %s", naming, ops_prec_name(p), l.e.msg);
            if (l.load) {
                unload(&l);
                continue;
            }
            /* vectors exact, swap undone, alternative name found */
            CHECK(t, !memcmp(l.b.scale, scale, sizeof scale), "scale");
            CHECK(t, !memcmp(l.b.mod, mod, sizeof mod), "mod (naming %d)", naming);
            CHECK(t, l.b.table.type == DT_F32 && l.b.table.shape[0] == 5 && !memcmp(l.b.table.data, table, sizeof table),
                  "table view");
            CHECK(t, l.b.proj.b == NULL && l.b.qkv.b && !memcmp(l.b.qkv.b, qkv_b, sizeof qkv_b), "biases");
            CHECK(t, l.b.sq.in == H && l.b.sq.out == H && (p == OPS_BF16 || !memcmp(l.b.sq.w, proj_w, sizeof proj_w)),
                  "1x1 conv read as a linear (naming %d)", naming);
            /* the prepared linear against the reference on the raw weights */
            float x[3 * H], y[3 * 3 * H], ref[3 * 3 * H];
            trng r = { 99 };
            trng_fill(&r, x, 3 * H, -1, 1);
            const tensor W = tensor_make(DT_F32, qkv_w, 2, (int64_t[]){ 3 * H, H });
            ops_ref_linear(ref, x, 3, H, &W, qkv_b, 3 * H);
            CHECK(t, wt_linear(l.ctx, p, y, x, 3, &l.b.qkv) == DIT_OK, "linear");
            double mabs;
            const double tol = p == OPS_BF16 ? 3e-2 : 1e-5; /* bf16: x and W rounded to 8 bits */
            const double err = test_err_ratio(y, ref, 9 * H, tol, tol, &mabs);
            CHECK(t, err <= 1, "linear err %g (max abs %g)", err, mabs);
            unload(&l);
        }
    unlink(path);
}

static void t_f16_converted(tctx *t)
{
    fill();
    char path[256];
    write_file(tmp_path(path, "f16"), 0, 0, 0, 1);
    loaded l;
    load(&l, path, 0, OPS_F32);
    CHECK(t, l.load == DIT_OK, "%s", l.e.msg);
    if (!l.load) {
        int same = 1;
        for (int i = 0; i < 3 * H * H; i++) same &= l.b.qkv.w[i] == f16_to_f32(qkv_w16[i]);
        CHECK(t, same, "f16 weights converted exactly to f32");
    }
    unload(&l);
    unlink(path);
}

static void t_errors(tctx *t)
{
    fill();
    char path[256];
    loaded l;
    /* mis-shaped: names the tensor and both shapes */
    write_file(tmp_path(path, "bad"), 0, 0, 1, 0);
    load(&l, path, 0, OPS_F32);
    CHECK(t, l.load == DIT_E_SHAPE && strstr(l.e.msg, "'b.0.proj.weight'") && strstr(l.e.msg, "[4, 5]") &&
                 strstr(l.e.msg, "expected [4, 4]"),
          "shape message: %s", l.e.msg);
    unload(&l);
    /* WT_FLAT reads [4, 4, 2] as [4, 8]: not the [4, 4] linear wanted */
    write_file(path, 0, 0, 2, 0);
    load(&l, path, 0, OPS_F32);
    CHECK(t, l.load == DIT_E_SHAPE && strstr(l.e.msg, "'b.0.sq.weight'") && strstr(l.e.msg, "[4, 4, 2]"),
          "squeeze message: %s", l.e.msg);
    unload(&l);
    /* unused tensor */
    write_file(path, 0, 1, 0, 0);
    load(&l, path, 0, OPS_F32);
    CHECK(t, l.load == DIT_OK && l.finish == DIT_E_SHAPE && strstr(l.e.msg, "'b.0.stray'"), "extra: %s", l.e.msg);
    unload(&l);
    /* the same tensor under both alternative names (T5's tied shared / embed_tokens) is not "extra" */
    write_file(path, 0, 2, 0, 0);
    load(&l, path, 0, OPS_F32);
    CHECK(t, l.load == DIT_OK && l.finish == DIT_OK, "tied alternatives: %s", l.e.msg);
    unload(&l);
    /* missing: the fused file read with the parts naming */
    write_file(path, 0, 0, 0, 0);
    load(&l, path, 1, OPS_F32);
    CHECK(t, l.load == DIT_E_SHAPE && strstr(l.e.msg, "missing tensor 'b.0.to_q.weight'") && strstr(l.e.msg, "[12, 4]"),
          "missing: %s", l.e.msg);
    unload(&l);
    unlink(path);
}

int main(void)
{
    tctx t = test_begin("wtable");
    test_print_seed();
    RUN(&t, t_names_and_values);
    RUN(&t, t_f16_converted);
    RUN(&t, t_errors);
    return test_end(&t);
}

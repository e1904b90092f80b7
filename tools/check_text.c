/* tools/check_text.c — `dit check` for the tokenizer case sets tokenizers/clip and tokenizers/t5
 * (a cases.json next to the real tokenizer file). The clip_text/ and t5/ encoder cases are
 * tools/check_encoders.c's.
 *
 * Every field a case gives is compared exactly (ids, pieces, SD3 emphasis weights, EOS index):
 * one line per case that differs, naming the first differing position, then one summary line
 * per field:
 *
 *   FAIL long_a  sd3_clip_l: first difference at [45]: got 320, expected 539 (77 / 77 values)
 *   tokens  sd3_clip_l                  67/67 ok
 */
#include <stdlib.h>
#include <string.h>

#include "text/clip_tok.h"
#include "text/t5_tok.h"
#include "tools/check.h"

#define MAX_FIELDS 24

typedef struct {
    check_run *r;
    const char *case_id;
    struct {
        const char *name;
        int cases, failed;
    } field[MAX_FIELDS];
    int n_fields;
} tally;

/* Count one comparison of field; returns its slot. */
static int count(tally *t, const char *name, int ok)
{
    int i = 0;
    while (i < t->n_fields && strcmp(t->field[i].name, name)) i++;
    if (i == t->n_fields && t->n_fields < MAX_FIELDS) t->field[t->n_fields++].name = name;
    if (i < MAX_FIELDS) {
        t->field[i].cases++;
        t->field[i].failed += !ok;
    }
    t->r->compared++;
    if (!ok) t->r->failed++;
    return i;
}

/* A field the case set declares ("fields" of cases.json; "eos_index_*" covers its family) but
 * this case lacks: a failure, so a renamed or dropped field cannot pass silently. */
static void missing(tally *t, const char *field)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(t->r->json, "fields");
    for (const cJSON *f = fields ? fields->child : NULL; f; f = f->next) {
        const size_t n = strlen(f->string);
        const int match = !strcmp(f->string, field) || (n && f->string[n - 1] == '*' && !strncmp(f->string, field, n - 1));
        if (!match) continue;
        count(t, field, 0);
        fprintf(t->r->out, "FAIL %s  %s: missing from the case\n", t->case_id, field);
        return;
    }
}

static void mismatch(tally *t, const char *field, size_t at, const char *got, const char *want, size_t n_got,
                     size_t n_want)
{
    fprintf(t->r->out, "FAIL %s  %s: first difference at [%zu]: got %s, expected %s (%zu / %zu values)\n",
            t->case_id, field, at, got, want, n_got, n_want);
}

/* ids against a JSON array of integers (a declared field the case lacks fails). */
static void cmp_ids(tally *t, const cJSON *c, const char *field, const int32_t *got, size_t n)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!ref) {
        missing(t, field);
        return;
    }
    const size_t m = cJSON_IsArray(ref) ? (size_t)cJSON_GetArraySize(ref) : 0;
    size_t i = 0;
    const cJSON *x = cJSON_IsArray(ref) ? ref->child : NULL;
    for (; i < n && x && cJSON_IsNumber(x) && x->valuedouble == got[i]; i++) x = x->next;
    const int ok = i == n && i == m && cJSON_IsArray(ref);
    count(t, field, ok);
    if (ok) return;
    char g[24] = "(end)", w[24] = "(end)";
    if (i < n) snprintf(g, sizeof g, "%d", got[i]);
    if (x) snprintf(w, sizeof w, "%.17g", x->valuedouble);
    mismatch(t, field, i, g, w, n, m);
}

/* Rows of ids against a JSON array of arrays (compared as one flat list). */
static void cmp_rows(tally *t, const cJSON *c, const char *field, const int32_t *got, size_t n)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!ref) {
        missing(t, field);
        return;
    }
    size_t i = 0, m = 0;
    int ok = cJSON_IsArray(ref), diff = 0;
    char g[24] = "(end)", w[24] = "(end)";
    for (const cJSON *row = ok ? ref->child : NULL; row; row = row->next) {
        if (!cJSON_IsArray(row)) ok = 0;
        for (const cJSON *x = cJSON_IsArray(row) ? row->child : NULL; x; x = x->next, m++) {
            if (!diff && (i >= n || !cJSON_IsNumber(x) || x->valuedouble != got[i])) {
                diff = 1;
                if (i < n) snprintf(g, sizeof g, "%d", got[i]);
                snprintf(w, sizeof w, "%.17g", x->valuedouble);
            }
            if (!diff) i++;
        }
    }
    if (!diff && i < n) diff = 1, snprintf(g, sizeof g, "%d", got[i]);
    ok = ok && !diff;
    count(t, field, ok);
    if (!ok) mismatch(t, field, i, g, w, n, m);
}

/* SD3 emphasis weights: exact doubles (both sides are Python's arithmetic). */
static void cmp_weights(tally *t, const cJSON *c, const char *field, const double *got, size_t n)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!ref) {
        missing(t, field);
        return;
    }
    const size_t m = cJSON_IsArray(ref) ? (size_t)cJSON_GetArraySize(ref) : 0;
    size_t i = 0;
    const cJSON *x = cJSON_IsArray(ref) ? ref->child : NULL;
    for (; i < n && x && cJSON_IsNumber(x) && x->valuedouble == got[i]; i++) x = x->next;
    const int ok = i == n && i == m;
    count(t, field, ok);
    if (ok) return;
    char g[32] = "(end)", w[32] = "(end)";
    if (i < n) snprintf(g, sizeof g, "%.17g", got[i]);
    if (x) snprintf(w, sizeof w, "%.17g", x->valuedouble);
    mismatch(t, field, i, g, w, n, m);
}

/* Piece strings of ids against a JSON array of strings. */
static void cmp_pieces(tally *t, const cJSON *c, const char *field, const int32_t *ids, size_t n,
                       const char *(*piece)(const void *tok, int32_t id), const void *tok)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!ref) {
        missing(t, field);
        return;
    }
    const size_t m = cJSON_IsArray(ref) ? (size_t)cJSON_GetArraySize(ref) : 0;
    size_t i = 0;
    const cJSON *x = cJSON_IsArray(ref) ? ref->child : NULL;
    for (; i < n && x && cJSON_IsString(x) && piece(tok, ids[i]) && !strcmp(x->valuestring, piece(tok, ids[i])); i++)
        x = x->next;
    const int ok = i == n && i == m;
    count(t, field, ok);
    if (ok) return;
    char g[80] = "(end)", w[80] = "(end)";
    if (i < n) snprintf(g, sizeof g, "'%.60s'", piece(tok, ids[i]) ? piece(tok, ids[i]) : "?");
    if (x) snprintf(w, sizeof w, "'%.60s'", cJSON_IsString(x) ? x->valuestring : "?");
    mismatch(t, field, i, g, w, n, m);
}

static void cmp_int(tally *t, const cJSON *c, const char *field, long got)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!ref) {
        missing(t, field);
        return;
    }
    const int ok = cJSON_IsNumber(ref) && ref->valuedouble == (double)got;
    count(t, field, ok);
    if (ok) return;
    char g[24], w[24];
    snprintf(g, sizeof g, "%ld", got);
    snprintf(w, sizeof w, "%.17g", cJSON_IsNumber(ref) ? ref->valuedouble : -1.0);
    mismatch(t, field, 0, g, w, 1, 1);
}

static void cmp_text(tally *t, const cJSON *c, const char *field, const char *got, size_t n)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!ref) {
        missing(t, field);
        return;
    }
    /* cJSON's string ends at an escaped NUL ("\u0000"): compared up to it, where ours has that NUL */
    const size_t m = cJSON_IsString(ref) ? strlen(ref->valuestring) : 0;
    const int ok = cJSON_IsString(ref) && (m == n || (m < n && got[m] == 0)) && !memcmp(ref->valuestring, got, m);
    count(t, field, ok);
    if (!ok) mismatch(t, field, 0, "(the cut text)", "(another text)", n, m);
}

/* argmax (first maximum) of ids: the row CLIP pools (golden README eos_index_*). */
static long argmax(const int32_t *ids, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (ids[i] > ids[best]) best = i;
    return (long)best;
}

/* The case text from text_utf8_hex (JSON strings cannot carry every byte through cJSON). */
static char *case_text(const cJSON *c, size_t *len)
{
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive(c, "text_utf8_hex");
    const cJSON *txt = cJSON_GetObjectItemCaseSensitive(c, "text");
    if (!cJSON_IsString(hex)) {
        if (!cJSON_IsString(txt)) return NULL;
        *len = strlen(txt->valuestring);
        return strdup(txt->valuestring);
    }
    const size_t n = strlen(hex->valuestring);
    if (n % 2) return NULL;
    char *s = malloc(n / 2 + 1);
    for (size_t i = 0; s && i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex->valuestring + 2 * i, "%2x", &v) != 1) {
            free(s);
            return NULL;
        }
        s[i] = (char)v;
    }
    if (s) s[n / 2] = 0;
    *len = n / 2;
    return s;
}

static const char *clip_piece(const void *tok, int32_t id)
{
    return clip_tok_piece(tok, id);
}

static const char *t5_piece(const void *tok, int32_t id)
{
    return t5_tok_piece(tok, id);
}

static void case_clip(tally *t, const clip_tok *tok, const cJSON *c, const char *text, size_t len)
{
    tok_ids raw = { 0 }, l = { 0 }, g = { 0 }, fx = { 0 };
    dit_err e = { 0 };
    if (clip_tok_encode(tok, text, len, &raw, &e) || clip_tok_sd3(tok, text, len, clip_tok_eos(tok), &l, &e) ||
        clip_tok_sd3(tok, text, len, CLIP_TOK_PAD_G, &g, &e) || clip_tok_flux(tok, text, len, CLIP_TOK_ROW, &fx, &e))
        check_error(t->r, "case %s: %s", t->case_id, e.msg);
    else {
        const size_t row = CLIP_TOK_ROW;
        cmp_ids(t, c, "bpe_ids", raw.id, raw.n);
        cmp_pieces(t, c, "bpe_tokens", raw.id, raw.n, clip_piece, tok);
        cmp_ids(t, c, "sd3_clip_l", l.id, l.n < row ? l.n : row);
        cmp_ids(t, c, "sd3_clip_g", g.id, g.n < row ? g.n : row);
        cmp_rows(t, c, "sd3_clip_l_chunks", l.id, l.n);
        cmp_rows(t, c, "sd3_clip_g_chunks", g.id, g.n);
        cmp_weights(t, c, "sd3_clip_weights_chunk0", l.weight, l.n < row ? l.n : row);
        cmp_ids(t, c, "flux_clip_l", fx.id, fx.n);
        cmp_int(t, c, "eos_index_sd3_clip_l", argmax(l.id, l.n < row ? l.n : row));
        cmp_int(t, c, "eos_index_flux_clip_l", argmax(fx.id, fx.n));
    }
    tok_ids_free(&raw), tok_ids_free(&l), tok_ids_free(&g), tok_ids_free(&fx);
}

static void case_t5(tally *t, const t5_tok *tok, const cJSON *c, const char *text, size_t len)
{
    tok_ids raw = { 0 }, sd3 = { 0 }, s256 = { 0 }, d512 = { 0 };
    dit_err e = { 0 };
    if (t5_tok_encode(tok, text, len, &raw, &e) || t5_tok_sd3(tok, text, len, &sd3, &e) ||
        t5_tok_flux(tok, text, len, 256, &s256, &e) || t5_tok_flux(tok, text, len, 512, &d512, &e))
        check_error(t->r, "case %s: %s", t->case_id, e.msg);
    else {
        size_t cut = 0, cps = 0; /* text[:226] in code points (the text is valid UTF-8 here) */
        while (cut < len && cps < T5_TOK_SD3_CHARS) {
            cut++;
            while (cut < len && ((unsigned char)text[cut] & 0xC0) == 0x80) cut++;
            cps++;
        }
        cmp_ids(t, c, "sp_ids", raw.id, raw.n);
        cmp_pieces(t, c, "sp_pieces", raw.id, raw.n, t5_piece, tok);
        cmp_text(t, c, "sd3_t5_input_text", text, cut);
        cmp_ids(t, c, "sd3_t5", sd3.id, sd3.n);
        cmp_ids(t, c, "flux_schnell_256", s256.id, s256.n);
        cmp_ids(t, c, "flux_dev_512", d512.id, d512.n);
    }
    tok_ids_free(&raw), tok_ids_free(&sd3), tok_ids_free(&s256), tok_ids_free(&d512);
}

/* Fields cases.json documents that this checker does not compare: say so, do not skip silently. */
static void note_unchecked(check_run *r, const tally *t)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(r->json, "fields");
    for (const cJSON *f = fields ? fields->child : NULL; f; f = f->next) {
        int seen = 0;
        for (int i = 0; i < t->n_fields; i++) seen |= !strcmp(t->field[i].name, f->string);
        if (!strcmp(f->string, "eos_index_*"))
            for (int i = 0; i < t->n_fields; i++) seen |= !strncmp(t->field[i].name, "eos_index_", 10);
        if (seen) continue;
        if (!strcmp(f->string, "variants"))
            fprintf(r->out, "note: 'variants' not compared (openai / hf_ftfy cleaning needs ftfy); "
                            "every other field is the primary variant\n");
        else fprintf(r->out, "note: field '%s' not compared by this checker\n", f->string);
    }
}

static int check_tokenizer_cases(check_run *r)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(r->json, "format");
    const char *format = cJSON_IsString(fmt) ? fmt->valuestring : "";
    const int is_clip = !strncmp(format, "golden-tokenizer-clip/", 22);
    const int is_t5 = !strncmp(format, "golden-tokenizer-t5/", 20);
    if (!is_clip && !is_t5) {
        check_error(r, "%s/cases.json: unknown format '%s' (golden-tokenizer-clip/1 or golden-tokenizer-t5/1)", r->dir,
                    format);
        return 1;
    }
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(r->json, is_clip ? "vocab_file" : "model_file");
    char path[4096];
    if (cJSON_IsString(file)) check_path(path, sizeof path, r->dir, file->valuestring);
    else snprintf(path, sizeof path, "%s", r->dir); /* the folder: the tokenizer finds its file */
    dit_err e = { 0 };
    clip_tok *clip = NULL;
    t5_tok *t5 = NULL;
    if ((is_clip ? clip_tok_open(&clip, path, &e) : t5_tok_open(&t5, path, &e)) != DIT_OK) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(r->json, "cases");
    fprintf(r->out, "tokenizer  %s  %s  %d cases\n", is_clip ? "clip" : "t5", path,
            cJSON_IsArray(cases) ? cJSON_GetArraySize(cases) : 0);
    tally t = { .r = r };
    for (const cJSON *c = cJSON_IsArray(cases) ? cases->child : NULL; c; c = c->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
        t.case_id = cJSON_IsString(id) ? id->valuestring : "?";
        size_t len = 0;
        char *text = case_text(c, &len);
        if (!text) {
            check_error(r, "case %s: no text (text_utf8_hex or text)", t.case_id);
            continue;
        }
        if (is_clip) case_clip(&t, clip, c, text, len);
        else case_t5(&t, t5, c, text, len);
        free(text);
    }
    for (int i = 0; i < t.n_fields; i++)
        fprintf(r->out, "tokens  %-24s %d/%d %s\n", t.field[i].name, t.field[i].cases - t.field[i].failed,
                t.field[i].cases, t.field[i].failed ? "FAIL" : "ok");
    note_unchecked(r, &t);
    clip_tok_close(clip);
    t5_tok_close(t5);
    return 0;
}

int check_text(check_run *r)
{
    return check_tokenizer_cases(r); /* a cases.json (tools/check.c sends case.json families elsewhere) */
}

/* tests/test_tokenizers.c — text/clip_tok and text/t5_tok: every case of the golden
 * tokenizers/clip and tokenizers/t5 cases.json through the library (all fields), the other file
 * forms (vocab.json + merges.txt, tokenizer.json) built from the golden files, and unit tests of
 * the pieces: BPE merge order, the pre-tokenization regex, Unicode lowering, SD3 emphasis parsing
 * and Python float(), SD3 row chunking, Viterbi on a tiny hand-made unigram model (both file
 * forms, a hand-made charsmap, user-defined and byte pieces), malformed and truncated files.
 * Under CI=true a missing golden folder is a failure; elsewhere those tests skip. */
#include <cJSON.h>
#include <dirent.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/test.h"
#include "text/clip_tok.h"
#include "text/t5_tok.h"
#include "text/tok.h"
#include "text/unicode.h"

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct {
    char path[512];
} tmpdir;

static int tmp_make(tmpdir *d)
{
    const char *t = getenv("TMPDIR");
    snprintf(d->path, sizeof d->path, "%s/dit-test-tok-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(d->path) != NULL;
}

/* Remove the folder and what is in it (one level of subfolders). */
static void tmp_remove_dir(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *de;
    char p[1024];
    while (dir && (de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (unlink(p)) tmp_remove_dir(p);
    }
    if (dir) closedir(dir);
    rmdir(path);
}

/* Write data to d/name; the path into out. Returns out, NULL on failure. */
static const char *tmp_write(const tmpdir *d, const char *name, const void *data, size_t len, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", d->path, name);
    FILE *f = fopen(out, "wb");
    if (!f) return NULL;
    const int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? out : NULL;
}

/* $DIT_GOLDEN/tokenizers/kind/cases.json, parsed; dir gets the folder. */
static cJSON *golden_cases(const char *kind, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/tokenizers/%s", test_golden_dir(), kind);
    char p[1200];
    snprintf(p, sizeof p, "%s/cases.json", dir);
    char *text = test_read_file(p, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

/* The exact bytes of a case's text (text_utf8_hex; the JSON string may hold NUL). */
static char *case_text(const cJSON *c, size_t *len)
{
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive(c, "text_utf8_hex");
    if (!cJSON_IsString(hex)) return NULL;
    const size_t n = strlen(hex->valuestring) / 2;
    char *s = malloc(n + 1);
    for (size_t i = 0; s && i < n; i++) {
        unsigned v = 0;
        sscanf(hex->valuestring + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    if (s) s[n] = 0;
    *len = n;
    return s;
}

static const char *case_id(const cJSON *c)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
    return cJSON_IsString(id) ? id->valuestring : "?";
}

/* -1 when ids[0..n) equals the JSON integer array (rows of arrays flattened), else the first
 * position that differs. */
static long ids_diff(const int32_t *ids, size_t n, const cJSON *arr)
{
    size_t i = 0;
    for (const cJSON *x = cJSON_IsArray(arr) ? arr->child : NULL; x; x = x->next) {
        if (cJSON_IsArray(x)) {
            for (const cJSON *y = x->child; y; y = y->next, i++)
                if (i >= n || !cJSON_IsNumber(y) || y->valuedouble != ids[i]) return (long)i;
        } else if (i >= n || !cJSON_IsNumber(x) || x->valuedouble != ids[i++]) return (long)(i ? i - 1 : 0);
    }
    return cJSON_IsArray(arr) && i == n ? -1 : (long)i;
}

static long argmax(const int32_t *ids, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (ids[i] > ids[best]) best = i;
    return (long)best;
}

static const cJSON *field(const cJSON *c, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(c, name);
}

/* ---- golden cases ------------------------------------------------------------------------ */

static void t_clip_cases(tctx *t)
{
    if (!test_golden_present(t)) return;
    char dir[1024], path[1200];
    cJSON *j = golden_cases("clip", dir, sizeof dir);
    CHECK(t, j != NULL, "cannot read %s/cases.json", dir);
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
    clip_tok *tok = NULL;
    dit_err e = { 0 };
    CHECK(t, clip_tok_open(&tok, path, &e) == DIT_OK, "%s", e.msg);
    if (!j || !tok) goto done;
    CHECK(t, clip_tok_vocab_size(tok) == 49408 && clip_tok_bos(tok) == 49406 && clip_tok_eos(tok) == 49407,
          "vocab %d bos %d eos %d", clip_tok_vocab_size(tok), clip_tok_bos(tok), clip_tok_eos(tok));
    int n = 0;
    const cJSON *cases = field(j, "cases");
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next, n++) {
        size_t len;
        char *text = case_text(c, &len);
        tok_ids raw = { 0 }, l = { 0 }, g = { 0 }, fx = { 0 };
        const dit_status rc = clip_tok_encode(tok, text, len, &raw, &e) || clip_tok_sd3(tok, text, len, 49407, &l, &e) ||
                              clip_tok_sd3(tok, text, len, CLIP_TOK_PAD_G, &g, &e) ||
                              clip_tok_flux(tok, text, len, CLIP_TOK_ROW, &fx, &e);
        CHECK(t, text && rc == DIT_OK, "case %s: %s", case_id(c), e.msg);
        if (text && rc == DIT_OK) {
            long d;
            CHECK(t, (d = ids_diff(raw.id, raw.n, field(c, "bpe_ids"))) < 0, "case %s bpe_ids: at %ld", case_id(c), d);
            CHECK(t, l.n % 77 == 0 && g.n == l.n, "case %s: %zu / %zu ids, not rows of 77", case_id(c), l.n, g.n);
            CHECK(t, (d = ids_diff(l.id, 77, field(c, "sd3_clip_l"))) < 0, "case %s sd3_clip_l: at %ld", case_id(c), d);
            CHECK(t, (d = ids_diff(g.id, 77, field(c, "sd3_clip_g"))) < 0, "case %s sd3_clip_g: at %ld", case_id(c), d);
            CHECK(t, (d = ids_diff(l.id, l.n, field(c, "sd3_clip_l_chunks"))) < 0, "case %s sd3_clip_l_chunks: at %ld",
                  case_id(c), d);
            CHECK(t, (d = ids_diff(g.id, g.n, field(c, "sd3_clip_g_chunks"))) < 0, "case %s sd3_clip_g_chunks: at %ld",
                  case_id(c), d);
            CHECK(t, (d = ids_diff(fx.id, fx.n, field(c, "flux_clip_l"))) < 0, "case %s flux_clip_l: at %ld", case_id(c), d);
            const cJSON *w = field(c, "sd3_clip_weights_chunk0");
            size_t i = 0;
            for (const cJSON *x = w ? w->child : NULL; x && i < 77 && x->valuedouble == l.weight[i]; x = x->next) i++;
            CHECK(t, i == 77 && cJSON_GetArraySize(w) == 77, "case %s weights: at %zu got %.17g", case_id(c), i,
                  i < 77 ? l.weight[i] : 0.0);
            CHECK(t, argmax(l.id, 77) == field(c, "eos_index_sd3_clip_l")->valueint, "case %s eos_index_sd3", case_id(c));
            CHECK(t, argmax(fx.id, fx.n) == field(c, "eos_index_flux_clip_l")->valueint, "case %s eos_index_flux",
                  case_id(c));
        }
        tok_ids_free(&raw), tok_ids_free(&l), tok_ids_free(&g), tok_ids_free(&fx);
        free(text);
    }
    CHECK(t, n > 0 && n == cJSON_GetArraySize(cases), "%d cases", n);
    printf("  %d CLIP cases\n", n);
done:
    clip_tok_close(tok);
    cJSON_Delete(j);
}

static void t_t5_cases(tctx *t)
{
    if (!test_golden_present(t)) return;
    char dir[1024], path[1200];
    cJSON *j = golden_cases("t5", dir, sizeof dir);
    CHECK(t, j != NULL, "cannot read %s/cases.json", dir);
    snprintf(path, sizeof path, "%s/spiece.model", dir);
    t5_tok *tok = NULL;
    dit_err e = { 0 };
    CHECK(t, t5_tok_open(&tok, path, &e) == DIT_OK, "%s", e.msg);
    if (!j || !tok) goto done;
    CHECK(t, t5_tok_vocab_size(tok) == 32000 && t5_tok_eos(tok) == 1 && t5_tok_pad(tok) == 0 && t5_tok_unk(tok) == 2,
          "pieces %d eos %d pad %d unk %d", t5_tok_vocab_size(tok), t5_tok_eos(tok), t5_tok_pad(tok), t5_tok_unk(tok));
    int n = 0;
    const cJSON *cases = field(j, "cases");
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next, n++) {
        size_t len;
        char *text = case_text(c, &len);
        tok_ids raw = { 0 }, sd3 = { 0 }, s = { 0 }, d = { 0 };
        const dit_status rc = t5_tok_encode(tok, text, len, &raw, &e) || t5_tok_sd3(tok, text, len, &sd3, &e) ||
                              t5_tok_flux(tok, text, len, 256, &s, &e) || t5_tok_flux(tok, text, len, 512, &d, &e);
        CHECK(t, text && rc == DIT_OK, "case %s: %s", case_id(c), e.msg);
        if (text && rc == DIT_OK) {
            long at;
            CHECK(t, (at = ids_diff(raw.id, raw.n, field(c, "sp_ids"))) < 0, "case %s sp_ids: at %ld", case_id(c), at);
            CHECK(t, (at = ids_diff(sd3.id, sd3.n, field(c, "sd3_t5"))) < 0, "case %s sd3_t5: at %ld", case_id(c), at);
            CHECK(t, sd3.n >= 77, "case %s: sd3_t5 of %zu ids", case_id(c), sd3.n);
            CHECK(t, (at = ids_diff(s.id, s.n, field(c, "flux_schnell_256"))) < 0, "case %s flux_schnell_256: at %ld",
                  case_id(c), at);
            CHECK(t, (at = ids_diff(d.id, d.n, field(c, "flux_dev_512"))) < 0, "case %s flux_dev_512: at %ld", case_id(c), at);
        }
        tok_ids_free(&raw), tok_ids_free(&sd3), tok_ids_free(&s), tok_ids_free(&d);
        free(text);
    }
    CHECK(t, n > 0 && n == cJSON_GetArraySize(cases), "%d cases", n);
    printf("  %d T5 cases\n", n);
done:
    t5_tok_close(tok);
    cJSON_Delete(j);
}

/* ---- the other file forms, built from the golden files ----------------------------------- */

/* ids of every case text under tok equal to bpe_ids / sp_ids. */
static int all_cases_match(tctx *t, const cJSON *cases, const void *tok, int is_clip, const char *what)
{
    int bad = 0;
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
        size_t len;
        char *text = case_text(c, &len);
        tok_ids ids = { 0 };
        dit_err e = { 0 };
        const dit_status rc = is_clip ? clip_tok_encode(tok, text, len, &ids, &e) : t5_tok_encode(tok, text, len, &ids, &e);
        const long d = rc == DIT_OK ? ids_diff(ids.id, ids.n, field(c, is_clip ? "bpe_ids" : "sp_ids")) : 0;
        CHECK(t, rc == DIT_OK && d < 0, "%s: case %s: %s at %ld", what, case_id(c), e.msg, d);
        bad += rc != DIT_OK || d >= 0;
        tok_ids_free(&ids);
        free(text);
    }
    return bad;
}

static void t_clip_file_forms(tctx *t)
{
    if (!test_golden_present(t)) return;
    char dir[1024], gz[1200], p[1200];
    cJSON *j = golden_cases("clip", dir, sizeof dir);
    snprintf(gz, sizeof gz, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
    clip_tok *ref = NULL, *tok = NULL;
    dit_err e = { 0 };
    char *text = NULL;
    size_t len = 0;
    tmpdir d;
    CHECK(t, j && clip_tok_open(&ref, gz, &e) == DIT_OK && tok_read_file(gz, 0, &text, &len, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, tmp_make(&d), "mkdtemp");
    if (!ref || !text) goto done;
    /* diffusers tokenizer/: vocab.json (piece -> id) and merges.txt ("#version" header) */
    cJSON *vocab = cJSON_CreateObject(), *model = cJSON_CreateObject(), *merges = cJSON_CreateArray();
    for (int32_t id = 0; id < clip_tok_vocab_size(ref); id++) cJSON_AddNumberToObject(vocab, clip_tok_piece(ref, id), id);
    char *vj = cJSON_PrintUnformatted(vocab);
    const char *body = strchr(text, '\n') + 1; /* after the openai header line */
    size_t n_lines = 0, blen = 0;
    while (body + blen < text + len && n_lines < CLIP_TOK_MERGES) {
        const char *nl = strchr(body + blen, '\n');
        const size_t l = nl ? (size_t)(nl - body - blen) : strlen(body + blen);
        char pair[256];
        snprintf(pair, sizeof pair, "%.*s", (int)l, body + blen);
        char *sp = strchr(pair, ' ');
        if (sp) {
            *sp = 0;
            cJSON *m = cJSON_CreateArray(); /* the newer tokenizer.json form: ["a", "b"] */
            cJSON_AddItemToArray(m, cJSON_CreateString(pair));
            cJSON_AddItemToArray(m, cJSON_CreateString(sp + 1));
            cJSON_AddItemToArray(merges, m);
        }
        blen += l + 1;
        n_lines++;
    }
    char *mt = malloc(blen + 32);
    snprintf(mt, blen + 32, "#version: 0.2\n%.*s", (int)blen, body);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/tokenizer", d.path);
    mkdir(sub, 0700);
    CHECK(t, tmp_write(&d, "tokenizer/vocab.json", vj, strlen(vj), p, sizeof p) &&
                 tmp_write(&d, "tokenizer/merges.txt", mt, strlen(mt), p, sizeof p), "writing %s", p);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    cJSON *tj = cJSON_CreateObject();
    cJSON_AddItemToObject(tj, "model", model);
    char *tjs = cJSON_PrintUnformatted(tj);
    CHECK(t, tmp_write(&d, "tokenizer.json", tjs, strlen(tjs), p, sizeof p), "writing %s", p);
    const cJSON *cases = field(j, "cases");
    const char *forms[3] = { "tokenizer", "tokenizer/merges.txt", "tokenizer.json" };
    for (int f = 0; f < 3; f++) {
        snprintf(p, sizeof p, "%s/%s", d.path, forms[f]);
        CHECK(t, tok_detect(p, &e) == TOK_CLIP, "detect %s: %s", p, e.msg);
        CHECK(t, clip_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
        if (!tok) continue;
        CHECK(t, clip_tok_vocab_size(tok) == 49408 && clip_tok_eos(tok) == 49407, "%s", forms[f]);
        CHECK(t, all_cases_match(t, cases, tok, 1, forms[f]) == 0, "%s", forms[f]);
        clip_tok_close(tok);
        tok = NULL;
    }
    free(vj), free(mt), free(tjs);
    cJSON_Delete(tj);
done:
    tmp_remove_dir(d.path);
    free(text);
    clip_tok_close(ref);
    cJSON_Delete(j);
}

static void b64(const uint8_t *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[k++] = A[v >> 18], out[k++] = A[(v >> 12) & 63];
        out[k++] = i + 1 < n ? A[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? A[v & 63] : '=';
    }
    out[k] = 0;
}

/* A length-delimited protobuf field inside buf[0..n): its bytes, or NULL. */
static const uint8_t *pb_find(const uint8_t *buf, size_t n, unsigned field_no, size_t *len)
{
    size_t i = 0;
    while (i < n) {
        uint64_t key = 0, v = 0;
        for (int s = 0; i < n; s += 7) {
            key |= (uint64_t)(buf[i] & 0x7f) << s;
            if (!(buf[i++] & 0x80)) break;
        }
        const int wire = (int)(key & 7);
        if (wire == 0) {
            while (i < n && (buf[i++] & 0x80)) {
            }
            continue;
        }
        if (wire == 5 || wire == 1) {
            i += wire == 5 ? 4 : 8;
            continue;
        }
        for (int s = 0; i < n; s += 7) {
            v |= (uint64_t)(buf[i] & 0x7f) << s;
            if (!(buf[i++] & 0x80)) break;
        }
        if ((key >> 3) == field_no) {
            *len = (size_t)v;
            return buf + i;
        }
        i += (size_t)v;
    }
    return NULL;
}

static void t_t5_tokenizer_json(tctx *t)
{
    if (!test_golden_present(t)) return;
    char dir[1024], model[1200], p[1200];
    cJSON *j = golden_cases("t5", dir, sizeof dir);
    snprintf(model, sizeof model, "%s/spiece.model", dir);
    t5_tok *ref = NULL, *tok = NULL;
    dit_err e = { 0 };
    size_t len = 0, nlen = 0, clen = 0;
    char *buf = test_read_file(model, &len);
    const uint8_t *norm = buf ? pb_find((const uint8_t *)buf, len, 3, &nlen) : NULL;
    const uint8_t *cmap = norm ? pb_find(norm, nlen, 2, &clen) : NULL;
    tmpdir d;
    CHECK(t, j && cmap && t5_tok_open(&ref, model, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, tmp_make(&d), "mkdtemp");
    if (!ref || !cmap) goto done;
    /* transformers' form: vocab [[piece, score]], specials in added_tokens, charsmap in base64 */
    cJSON *tj = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(tj, "model"), *added = cJSON_AddArrayToObject(tj, "added_tokens");
    cJSON_AddStringToObject(m, "type", "Unigram");
    cJSON_AddNumberToObject(m, "unk_id", 2);
    cJSON *vocab = cJSON_AddArrayToObject(m, "vocab");
    for (int32_t id = 0; id < t5_tok_vocab_size(ref); id++) {
        cJSON *v = cJSON_CreateArray();
        cJSON_AddItemToArray(v, cJSON_CreateString(t5_tok_piece(ref, id)));
        cJSON_AddItemToArray(v, cJSON_CreateNumber(t5_tok_score(ref, id)));
        cJSON_AddItemToArray(vocab, v);
    }
    for (int id = 0; id < 3; id++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", id);
        cJSON_AddStringToObject(a, "content", t5_tok_piece(ref, id));
        cJSON_AddTrueToObject(a, "special");
        cJSON_AddItemToArray(added, a);
    }
    char *b = malloc(clen / 3 * 4 + 8);
    b64(cmap, clen, b);
    cJSON *nz = cJSON_AddObjectToObject(tj, "normalizer"), *list = cJSON_AddArrayToObject(nz, "normalizers");
    cJSON_AddStringToObject(nz, "type", "Sequence");
    cJSON *pc = cJSON_CreateObject();
    cJSON_AddStringToObject(pc, "type", "Precompiled");
    cJSON_AddStringToObject(pc, "precompiled_charsmap", b);
    cJSON_AddItemToArray(list, pc);
    char *s = cJSON_PrintUnformatted(tj);
    CHECK(t, tmp_write(&d, "tokenizer.json", s, strlen(s), p, sizeof p), "writing %s", p);
    CHECK(t, tok_detect(p, &e) == TOK_T5 && tok_detect(d.path, &e) == TOK_T5, "detect %s: %s", p, e.msg);
    CHECK(t, t5_tok_open(&tok, d.path, &e) == DIT_OK, "%s", e.msg);
    if (tok) {
        CHECK(t, t5_tok_vocab_size(tok) == 32000 && t5_tok_eos(tok) == 1 && t5_tok_unk(tok) == 2, "tokenizer.json specials");
        CHECK(t, all_cases_match(t, field(j, "cases"), tok, 0, "tokenizer.json") == 0, "tokenizer.json");
    }
    free(b), free(s);
    cJSON_Delete(tj);
done:
    tmp_remove_dir(d.path);
    t5_tok_close(tok);
    t5_tok_close(ref);
    free(buf);
    cJSON_Delete(j);
}

/* ---- BPE and the pre-tokenization regex on tiny vocabularies ------------------------------ */

/* A tokenizer in the openai form (header line + merges), written to a temporary file. */
static clip_tok *tiny_clip(tctx *t, const char *merges)
{
    tmpdir d;
    char p[1024], text[1024];
    snprintf(text, sizeof text, "#version: 0.2\n%s", merges);
    clip_tok *tok = NULL;
    dit_err e = { 0 };
    if (!tmp_make(&d)) return NULL;
    if (tmp_write(&d, "bpe.txt", text, strlen(text), p, sizeof p))
        CHECK(t, clip_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    tmp_remove_dir(d.path);
    return tok;
}

/* The byte behind a byte symbol (inverse of bytes_to_unicode). */
static int symbol_byte(uint32_t cp)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        const int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable && cp == (uint32_t)b) return b;
        if (!printable && cp == 256u + (uint32_t)n++) return b;
    }
    return '?';
}

/* The pieces of text as plain text, each "</w>" shown as '|' and EOS as "<EOS>|". */
static const char *split(const clip_tok *tok, const char *text, char *out, size_t cap)
{
    tok_ids ids = { 0 };
    dit_err e = { 0 };
    size_t k = 0;
    out[0] = 0;
    if (clip_tok_encode(tok, text, strlen(text), &ids, &e) != DIT_OK) snprintf(out, cap, "error: %s", e.msg);
    for (size_t i = 0; i < ids.n && k + 8 < cap; i++) {
        const char *p = clip_tok_piece(tok, ids.id[i]);
        if (ids.id[i] == clip_tok_eos(tok)) {
            k += (size_t)snprintf(out + k, cap - k, "<EOS>|");
            continue;
        }
        size_t len = strlen(p), pos = 0;
        const int end = len >= 4 && !strcmp(p + len - 4, "</w>");
        if (end) len -= 4;
        uint32_t cp;
        while (pos < len && uni_utf8_next(p, len, &pos, &cp) && k + 2 < cap) out[k++] = (char)symbol_byte(cp);
        if (end) out[k++] = '|';
        out[k] = 0;
    }
    tok_ids_free(&ids);
    return out;
}

static void t_bpe_merge_order(tctx *t)
{
    /* ranks: (b c) 0, (a b) 1, (bc d</w>) 2, (a a) 3, (aa a</w>) 4 */
    clip_tok *tok = tiny_clip(t, "b c\na b\nbc d</w>\na a\naa a</w>\n");
    if (!tok) return;
    CHECK(t, clip_tok_vocab_size(tok) == 512 + 5 + 2, "vocab %d", clip_tok_vocab_size(tok));
    struct {
        const char *text, *pieces;
    } cases[] = {
        { "abcd", "a bcd</w>" },    /* (b c) has the lowest rank, so (a b) never applies */
        { "aaa", "aaa</w>" },       /* (a a), then (aa a</w>) */
        { "aaaa", "aa a a</w>" },   /* every (a a) left to right in one pass: aa a a</w> */
        { "abd", "ab d</w>" },
        { "b", "b</w>" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tok_ids ids = { 0 };
        dit_err e = { 0 };
        char got[256] = "";
        CHECK(t, clip_tok_encode(tok, cases[c].text, strlen(cases[c].text), &ids, &e) == DIT_OK, "%s", e.msg);
        for (size_t i = 0; i < ids.n; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), i ? " %s" : "%s", clip_tok_piece(tok, ids.id[i]));
        CHECK(t, !strcmp(got, cases[c].pieces), "'%s' -> '%s', expected '%s'", cases[c].text, got, cases[c].pieces);
        tok_ids_free(&ids);
    }
    clip_tok_close(tok);
}

static void t_regex_split(tctx *t)
{
    clip_tok *tok = tiny_clip(t, ""); /* no merges: every pre-token shows as its bytes */
    if (!tok) return;
    /* Expected values from Python: transformers BasicTokenizer cleaning + regex.findall */
    static const struct {
        const char *text, *split;
    } cases[] = {
        { "abc 123", "abc|1|2|3|" },                   /* every digit alone */
        { "hello!!! ...", "hello|!!!|...|" },           /* a punctuation run is one token */
        { "don't stop", "don|'t|stop|" },
        { "'90s", "'|9|0|s|" },                        /* a contraction only where a match starts */
        { "we'd've", "we|'d|'ve|" },
        { "I'M HERE", "i|'m|here|" },
        { "a,b;c", "a|,|b|;|c|" },
        { "https://x.org", "https|://|x|.|org|" },
        { "''s", "''|s|" },
        { "under_score", "under|_|score|" },
        { "x\xcd\x85y", "x|y|" },                      /* U+0345: no alternative matches (IGNORECASE) */
        { "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87",
          "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8|\xe0\xa5\x8d|\xe0\xa4\xa4|\xe0\xa5\x87|" }, /* marks are not \p{L} */
        { "\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82|" },         /* final sigma */
        { "\xc4\xb0stanbul", "i|\xcc\x87|stanbul|" },                                        /* İ -> i + U+0307 */
        { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe3\x82\xab\xe3\x82\xbf",
          "\xe6\x97\xa5|\xe6\x9c\xac|\xe8\xaa\x9e|\xe3\x82\xab\xe3\x82\xbf|" },             /* CJK spaced, kana not */
        { "x\xc2\xb2 \xc2\xbd", "x|\xc2\xb2|\xc2\xbd|" },
        { "a\tb\nc", "a|b|c|" },
        { "a\x07" "b", "ab|" },                                                             /* Cc dropped */
        { "zero\xe2\x80\x8bwidth", "zerowidth|" },                                          /* Cf dropped */
        { "non\xc2\xa0" "breaking", "non|breaking|" },                                      /* Zs is a space */
        { "'\xc5\xbf", "'\xc5\xbf|" },                                                      /* 'ſ matches 's */
        { "<|ENDOFTEXT|>x", "<EOS>|x|" },          /* lowercased, then the regex's special alternative */
        { "cafe\xcc\x81", "caf\xc3\xa9|" },        /* NFC */
        { "a<|endoftext|>b", "a|<EOS>|b|" },
    };
    char got[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        CHECK(t, !strcmp(split(tok, cases[c].text, got, sizeof got), cases[c].split), "'%s' -> '%s', expected '%s'",
              cases[c].text, got, cases[c].split);
    clip_tok_close(tok);
}

static void t_unicode(tctx *t)
{
    dit_err e = { 0 };
    struct {
        uint32_t in[4], out[4];
    } low[] = {
        { { 0x130 }, { 0x69, 0x307 } },              /* İ */
        { { 0x39F, 0x394, 0x39F, 0x3A3 }, { 0x3BF, 0x3B4, 0x3BF, 0x3C2 } }, /* ΟΔΟΣ -> οδος */
        { { 0x3A3, 0x391 }, { 0x3C3, 0x3B1 } },      /* ΣΑ: not final */
        { { 0x3A3 }, { 0x3C3 } },                    /* Σ alone: nothing cased before it */
        { { 0x41, 0x2E, 0x3A3 }, { 0x61, 0x2E, 0x3C2 } }, /* '.' is case-ignorable */
        { { 0x1C5 }, { 0x1C6 } },                    /* ǅ -> ǆ */
        { { 0x1E9E }, { 0xDF } },                    /* ẞ -> ß */
    };
    for (size_t c = 0; c < sizeof low / sizeof low[0]; c++) {
        size_t n = 0, m = 0;
        while (n < 4 && low[c].in[n]) n++;
        while (m < 4 && low[c].out[m]) m++;
        uni_buf out = { 0 };
        uni_py_lower(low[c].in, n, &out, &e);
        CHECK(t, out.n == m && !memcmp(out.cp, low[c].out, m * 4), "lower case %zu: %zu code points", c, out.n);
        uni_buf_free(&out);
    }
    const uint32_t nfd[] = { 0x65, 0x301, 0x41, 0x30A };
    uni_buf out = { 0 };
    uni_nfc(nfd, 4, &out, &e);
    CHECK(t, out.n == 2 && out.cp[0] == 0xE9 && out.cp[1] == 0xC5, "NFC");
    uni_buf_free(&out);
    CHECK(t, !strcmp(uni_category(0x41), "Lu") && !strcmp(uni_category(0x345), "Mn") && !strcmp(uni_category(0x200B), "Cf"),
          "categories");
    CHECK(t, uni_data_major() >= UNI_PY_MAJOR, "ICU knows Unicode %d, older than Python 3.11's %d", uni_data_major(),
          UNI_PY_MAJOR);
    CHECK(t, !strcmp(uni_category(0x1FAE8), "Cn"), "U+1FAE8 (Unicode 15) is unassigned for Python 3.11: %s",
          uni_category(0x1FAE8));
    CHECK(t, uni_py_isspace(0x2028) && uni_py_isspace(0x1C) && !uni_py_isspace(0x200B), "isspace");
    CHECK(t, uni_case_any(0x345, 'L') && !uni_case_any(0x24D0, 'L') && uni_decimal(0x661) == 1, "case variants, digits");
}

/* ---- SD3 emphasis, Python float(), rows -------------------------------------------------- */

static void t_emphasis(tctx *t)
{
    /* Expected values from sd3.5 other_impls.py token_weights (Python 3.11). */
    static const struct {
        const char *text;
        int n;
        const char *seg[3];
        double w[3];
    } cases[] = {
        { "a (red:1.5) car", 3, { "a ", "red", " car" }, { 1.0, 1.5, 1.0 } },
        { "((shiny))", 1, { "shiny" }, { 1.2100000000000002 } },
        { "smile :) and sad :( faces", 1, { "smile :) and sad :( faces" }, { 1.0 } },
        { "escaped \\(parens\\) stay", 1, { "escaped (parens) stay" }, { 1.0 } },
        { "(unclosed group", 1, { "(unclosed group" }, { 1.0 } },
        { "(a (b)", 2, { "a ", "(b" }, { 1.1, 1.1 } },
        { "(x:abc)", 1, { "x:abc" }, { 1.1 } },
        { "(x: 2 )", 1, { "x" }, { 2.0 } },
        { "(:2)", 1, { ":2" }, { 1.1 } },
        { "(x:1_0)", 1, { "x" }, { 10.0 } },
        { "(x:1__0)", 1, { "x:1__0" }, { 1.1 } },
        { "(x:\xd9\xa1.\xd9\xa5)", 1, { "x" }, { 1.5 } }, /* Arabic-Indic digits */
        { "((a:2)b)", 2, { "a", "b" }, { 2.0, 1.1 } },
        { "(a:b:3)", 1, { "a:b" }, { 3.0 } },
        { "x)(y", 1, { "x)(y" }, { 1.0 } },
        { "()", 0, { NULL }, { 0 } },
        { "(( ))", 1, { " " }, { 1.2100000000000002 } },
        { "a\\\\(b)", 1, { "a\\(b)" }, { 1.0 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tok_segment *seg;
        size_t n;
        dit_err e = { 0 };
        CHECK(t, tok_emphasis(cases[c].text, strlen(cases[c].text), &seg, &n, &e) == DIT_OK, "%s", e.msg);
        int ok = (int)n == cases[c].n;
        for (size_t i = 0; ok && i < n; i++)
            ok = seg[i].len == strlen(cases[c].seg[i]) && !memcmp(seg[i].text, cases[c].seg[i], seg[i].len) &&
                 seg[i].weight == cases[c].w[i];
        CHECK(t, ok, "'%s': %zu segments, first '%.*s' %.17g", cases[c].text, n, n ? (int)seg[0].len : 0, n ? seg[0].text : "",
              n ? seg[0].weight : 0.0);
        tok_segments_free(seg, n);
    }
    /* (x:-inf) gives -inf; nesting deeper than TOK_MAX_NESTING is refused, not a stack overflow */
    tok_segment *seg;
    size_t n;
    dit_err e = { 0 };
    CHECK(t, tok_emphasis("(x:-inf)", 8, &seg, &n, &e) == DIT_OK && n == 1 && isinf(seg[0].weight) && seg[0].weight < 0,
          "-inf weight");
    tok_segments_free(seg, n);
    enum { DEEP = 5000 };
    char *deep = malloc(2 * DEEP + 2);
    memset(deep, '(', DEEP);
    deep[DEEP] = 'x';
    memset(deep + DEEP + 1, ')', DEEP);
    CHECK(t, tok_emphasis(deep, 2 * DEEP + 1, &seg, &n, &e) == DIT_E_ARG, "deep nesting: %s", e.msg);
    free(deep);
}

static void t_py_float(tctx *t)
{
    /* Expected values from Python 3.11 float(). */
    static const struct {
        const char *s;
        int ok;
        double v;
    } cases[] = {
        { " 1.5 ", 1, 1.5 },   { "1e", 0, 0 },        { "1e5", 1, 1e5 },    { ".5", 1, 0.5 },     { "5.", 1, 5.0 },
        { ".", 0, 0 },         { "+inf", 1, INFINITY }, { "-Infinity", 1, -INFINITY }, { "infinit", 0, 0 },
        { "1_000", 1, 1000 },  { "_1", 0, 0 },        { "1_", 0, 0 },       { "1__0", 0, 0 },     { "0x10", 0, 0 },
        { "\xef\xbc\x91", 1, 1 }, { "\xc2\xa0" "1\xc2\xa0", 1, 1 }, { "1 2", 0, 0 }, { "", 0, 0 }, { "e5", 0, 0 },
        { "1.5e-3", 1, 1.5e-3 }, { "+-1", 0, 0 },     { "\xd9\xa1\xd9\xa2", 1, 12 }, { "1_.5", 0, 0 }, { "1._5", 0, 0 },
        { "1e_5", 0, 0 },      { "1e1_0", 1, 1e10 },  { "\xe2\x80\x83-2\xe3\x80\x80", 1, -2 }, { "\x1c" "3", 0, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double v = 0;
        const int ok = tok_py_float(cases[c].s, strlen(cases[c].s), &v);
        CHECK(t, ok == cases[c].ok && (!ok || v == cases[c].v), "float('%s'): %d %.17g", cases[c].s, ok, v);
    }
    double v;
    CHECK(t, tok_py_float("nan", 3, &v) && v != v, "nan");
}

/* A fake tokenizer for the row rules: a word "N" is N tokens 100, 101, ...; "-" is none. */
static dit_status count_word(const void *tok, const char *word, size_t len, tok_ids *out, dit_err *e)
{
    (void)tok;
    char num[16] = "";
    snprintf(num, sizeof num, "%.*s", (int)(len < 15 ? len : 15), word);
    const int n = atoi(num);
    for (int i = 0; i < n; i++)
        if (tok_ids_push(out, 100 + i, 1.0, e) != DIT_OK) return DIT_E_OOM;
    return DIT_OK;
}

static int rows_are(const tok_ids *got, const int32_t *want, size_t n)
{
    return got->n == n && !memcmp(got->id, want, n * sizeof *want);
}

static void t_sd3_chunking(tctx *t)
{
    /* CLIP rule with rows of 10 (BOS 1, EOS 2, pad 0): [BOS] words [EOS] pad */
    const tok_sd3_rule clip = { .bos = 1, .eos = 2, .pad = 0, .row = 10, .pad_to_row = 1 };
    static const struct {
        const char *text;
        size_t n;
        int32_t ids[30];
    } cases[] = {
        /* a 4-token word does not fit after 3 + 3: the row ends, it moves whole */
        { "3 3 4", 20, { 1, 100, 101, 102, 100, 101, 102, 2, 0, 0, 1, 100, 101, 102, 103, 2, 0, 0, 0, 0 } },
        /* an 8-token word is split to fill the row exactly */
        { "3 8", 20, { 1, 100, 101, 102, 100, 101, 102, 103, 104, 2, 1, 105, 106, 107, 2, 0, 0, 0, 0, 0 } },
        /* a 20-token word over three rows */
        { "20", 30, { 1, 100, 101, 102, 103, 104, 105, 106, 107, 2, 1, 108, 109, 110, 111, 112, 113, 114, 115, 2,
                      1, 116, 117, 118, 119, 2, 0, 0, 0, 0 } },
        { "8", 10, { 1, 100, 101, 102, 103, 104, 105, 106, 107, 2 } }, /* fills the row exactly */
        { "8 1", 20, { 1, 100, 101, 102, 103, 104, 105, 106, 107, 2, 1, 100, 2, 0, 0, 0, 0, 0, 0, 0 } },
        { "7 7", 20, { 1, 100, 101, 102, 103, 104, 105, 106, 2, 0, 1, 100, 101, 102, 103, 104, 105, 106, 2, 0 } },
        { "  \n 2\n\n-  ", 10, { 1, 100, 101, 2, 0, 0, 0, 0, 0, 0 } }, /* empty words dropped */
        { "", 10, { 1, 2, 0, 0, 0, 0, 0, 0, 0, 0 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tok_ids out = { 0 };
        dit_err e = { 0 };
        CHECK(t, tok_sd3_rows(&clip, cases[c].text, strlen(cases[c].text), count_word, NULL, &out, &e) == DIT_OK, "%s", e.msg);
        CHECK(t, rows_are(&out, cases[c].ids, cases[c].n), "'%s': %zu ids (first row ends %d)", cases[c].text, out.n,
              out.n >= 10 ? out.id[9] : -1);
        tok_ids_free(&out);
    }
    /* T5 rule: no BOS, never split, padded with 0 to at least 12 here (77 in SD3) */
    const tok_sd3_rule t5 = { .bos = -1, .eos = 1, .pad = 0, .row = 0, .min_len = 12 };
    tok_ids out = { 0 };
    dit_err e = { 0 };
    tok_sd3_rows(&t5, "5 9", 3, count_word, NULL, &out, &e);
    CHECK(t, out.n == 15 && out.id[14] == 1 && out.id[13] == 108, "T5 long: %zu ids", out.n);
    tok_ids_free(&out);
    tok_sd3_rows(&t5, "(3:2) 1", 7, count_word, NULL, &out, &e);
    const int32_t want[12] = { 100, 101, 102, 100, 1, 0, 0, 0, 0, 0, 0, 0 };
    CHECK(t, rows_are(&out, want, 12), "T5 short: %zu ids", out.n);
    CHECK(t, out.n == 12 && out.weight[0] == 2.0 && out.weight[2] == 2.0 && out.weight[3] == 1.0 && out.weight[4] == 1.0,
          "weights");
    tok_ids_free(&out);
}

/* ---- a tiny unigram model, in both file forms --------------------------------------------- */

typedef struct {
    const char *piece;
    float score;
    int type; /* 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte */
} tiny_piece;

static const tiny_piece TINY[] = {
    { "<pad>", 0, 3 }, { "</s>", 0, 3 }, { "<unk>", 0, 2 }, { "\xe2\x96\x81", -3, 1 }, { "a", -2, 1 },
    { "b", -2, 1 },    { "ab", -3.5f, 1 }, { "\xe2\x96\x81" "a", -2.5f, 1 }, { "\xe2\x96\x81" "ab", -5, 1 },
    { "c", -2, 1 },    { "d", -2, 1 },    { "cd", -4, 1 }, { "bc", -1, 1 },
};
#define N_TINY ((int)(sizeof TINY / sizeof TINY[0]))

typedef struct {
    uint8_t *b;
    size_t n, cap;
} pbw;

static void pbw_raw(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void pbw_varint(pbw *w, uint64_t v)
{
    do {
        const uint8_t b = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        pbw_raw(w, &b, 1);
        v >>= 7;
    } while (v);
}
static void pbw_bytes(pbw *w, unsigned field_no, const void *p, size_t n)
{
    pbw_varint(w, field_no << 3 | 2);
    pbw_varint(w, n);
    pbw_raw(w, p, n);
}
static void pbw_uint(pbw *w, unsigned field_no, uint64_t v)
{
    pbw_varint(w, field_no << 3);
    pbw_varint(w, v);
}

/* spiece.model bytes of the pieces (plus extra normal pieces), optional charsmap, byte fallback. */
static pbw tiny_model(const tiny_piece *pieces, int n, const uint8_t *charsmap, size_t cm_len, int byte_fallback)
{
    pbw m = { 0 };
    for (int i = 0; i < n; i++) {
        pbw p = { 0 };
        pbw_bytes(&p, 1, pieces[i].piece, strlen(pieces[i].piece));
        uint8_t f[5] = { 2 << 3 | 5 };
        memcpy(f + 1, &pieces[i].score, 4);
        pbw_raw(&p, f, 5);
        if (pieces[i].type != 1) pbw_uint(&p, 3, (uint64_t)pieces[i].type);
        pbw_bytes(&m, 1, p.b, p.n);
        free(p.b);
    }
    pbw ts = { 0 }, ns = { 0 };
    pbw_uint(&ts, 3, 1); /* unigram */
    if (byte_fallback) pbw_uint(&ts, 35, 1);
    pbw_bytes(&ts, 47, "</s>", 4);
    pbw_bytes(&m, 2, ts.b, ts.n);
    pbw_bytes(&ns, 1, charsmap ? "nmt_nfkc" : "identity", 8);
    if (charsmap) pbw_bytes(&ns, 2, charsmap, cm_len);
    pbw_bytes(&m, 3, ns.b, ns.n);
    free(ts.b), free(ns.b);
    return m;
}

/* ids of text under tok as "7 5 ..." */
static const char *t5_ids(const t5_tok *tok, const char *text, size_t len, char *out, size_t cap)
{
    tok_ids ids = { 0 };
    dit_err e = { 0 };
    out[0] = 0;
    if (t5_tok_encode(tok, text, len, &ids, &e) != DIT_OK) snprintf(out, cap, "error: %s", e.msg);
    for (size_t i = 0; i < ids.n; i++) snprintf(out + strlen(out), cap - strlen(out), i ? " %d" : "%d", ids.id[i]);
    tok_ids_free(&ids);
    return out;
}

static void tiny_viterbi_checks(tctx *t, const t5_tok *tok, const char *form)
{
    static const struct {
        const char *text, *ids;
    } cases[] = {
        { "ab", "7 5" },       /* ▁a b (-4.5) beats the longer ▁ab (-5): not greedy */
        { "abc", "7 12" },     /* ▁a bc (-3.5) */
        { "axyzb", "7 2 5" },  /* x y z unknown: one <unk> */
        { "x", "3 2" },        /* the usual "▁ <unk>" */
        { "  a   b  ", "7 3 5" }, /* extra whitespace removed: ▁a▁b */
        { "cd", "3 11" },      /* ▁ c d = ▁ cd = -7: the candidate starting earlier wins */
        { "", "" },
        { "   ", "" },
    };
    char got[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        CHECK(t, !strcmp(t5_ids(tok, cases[c].text, strlen(cases[c].text), got, sizeof got), cases[c].ids),
              "%s: '%s' -> '%s', expected '%s'", form, cases[c].text, got, cases[c].ids);
    tok_ids r = { 0 };
    dit_err e = { 0 };
    CHECK(t, t5_tok_sd3(tok, "ab (cd:2)", 9, &r, &e) == DIT_OK, "%s", e.msg);
    const int32_t want[5] = { 7, 5, 3, 11, 1 };
    CHECK(t, r.n == 77 && !memcmp(r.id, want, sizeof want) && r.id[76] == 0 && r.weight[2] == 2.0 && r.weight[1] == 1.0,
          "%s: sd3 row of %zu", form, r.n);
    tok_ids_free(&r);
    CHECK(t, t5_tok_flux(tok, "ab cd", 5, 4, &r, &e) == DIT_OK, "%s", e.msg);
    const int32_t want_flux[4] = { 7, 5, 3, 1 };
    CHECK(t, r.n == 4 && !memcmp(r.id, want_flux, sizeof want_flux), "%s: flux row of %zu", form, r.n);
    tok_ids_free(&r);
}

static void t_viterbi_tiny(tctx *t)
{
    tmpdir d;
    char p[1024];
    dit_err e = { 0 };
    t5_tok *tok = NULL;
    CHECK(t, tmp_make(&d), "mkdtemp");
    /* spiece.model */
    pbw m = tiny_model(TINY, N_TINY, NULL, 0, 0);
    tmp_write(&d, "spiece.model", m.b, m.n, p, sizeof p);
    CHECK(t, t5_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    if (tok) tiny_viterbi_checks(t, tok, "spiece.model");
    t5_tok_close(tok);
    tok = NULL;
    free(m.b);
    /* tokenizer.json */
    char json[2048] = "{\"model\":{\"type\":\"Unigram\",\"unk_id\":2,\"vocab\":[";
    for (int i = 0; i < N_TINY; i++)
        snprintf(json + strlen(json), sizeof json - strlen(json), "%s[\"%s\",%g]", i ? "," : "", TINY[i].piece,
                 (double)TINY[i].score);
    strcat(json, "]},\"added_tokens\":[{\"id\":0,\"special\":true},{\"id\":1,\"special\":true},{\"id\":2,\"special\":true}]}");
    tmp_write(&d, "tokenizer.json", json, strlen(json), p, sizeof p);
    CHECK(t, t5_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    if (tok) tiny_viterbi_checks(t, tok, "tokenizer.json");
    t5_tok_close(tok);
    tok = NULL;

    /* a user-defined piece is matched whole, before normalization and over unknown characters */
    tiny_piece more[N_TINY + 1];
    memcpy(more, TINY, sizeof TINY);
    more[N_TINY] = (tiny_piece){ "<X>", 0, 4 };
    m = tiny_model(more, N_TINY + 1, NULL, 0, 0);
    tmp_write(&d, "user.model", m.b, m.n, p, sizeof p);
    free(m.b);
    char got[256];
    CHECK(t, t5_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    if (tok) CHECK(t, !strcmp(t5_ids(tok, "a<X>b", 5, got, sizeof got), "7 13 5"), "user-defined: %s", got);
    t5_tok_close(tok);
    tok = NULL;

    /* byte fallback: each byte of an unknown character becomes its <0xNN> piece, no merging */
    tiny_piece *bytes = malloc((N_TINY + 256) * sizeof *bytes);
    char names[256][8];
    memcpy(bytes, TINY, sizeof TINY);
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        bytes[N_TINY + b] = (tiny_piece){ names[b], 0, 6 };
    }
    m = tiny_model(bytes, N_TINY + 256, NULL, 0, 1);
    tmp_write(&d, "bytes.model", m.b, m.n, p, sizeof p);
    free(m.b);
    free(bytes);
    CHECK(t, t5_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    char want[64];
    snprintf(want, sizeof want, "3 %d %d", N_TINY + 'x', N_TINY + 'y');
    if (tok) CHECK(t, !strcmp(t5_ids(tok, "xy", 2, got, sizeof got), want), "byte fallback: %s, expected %s", got, want);
    t5_tok_close(tok);
    tok = NULL;
    tmp_remove_dir(d.path);
}

/* A hand-made precompiled charsmap: a darts-clone trie with the one key "a" -> replacements[value]. */
static size_t tiny_charsmap(uint8_t *blob, uint32_t value, const char *repl, size_t repl_len)
{
    uint32_t units[512] = { 0 };
    units[0] = 256u << 10;                  /* root: children at 256 ^ label */
    units[256 ^ 'a'] = 'a' | 1u << 8 | 1u << 10; /* label 'a', has a leaf at (256 ^ 'a') ^ 1 */
    units[(256 ^ 'a') ^ 1] = 1u << 31 | value;   /* the leaf: the replacement's offset */
    const uint32_t size = sizeof units;
    memcpy(blob, &size, 4);
    memcpy(blob + 4, units, sizeof units);
    memcpy(blob + 4 + sizeof units, repl, repl_len);
    return 4 + sizeof units + repl_len;
}

static void t_charsmap(tctx *t)
{
    tmpdir d;
    char p[1024], got[256];
    dit_err e = { 0 };
    t5_tok *tok = NULL;
    static uint8_t blob[4 + 2048 + 16];
    CHECK(t, tmp_make(&d), "mkdtemp");
    size_t n = tiny_charsmap(blob, 0, "b\0", 2); /* "a" -> "b" */
    pbw m = tiny_model(TINY, N_TINY, blob, n, 0);
    tmp_write(&d, "map.model", m.b, m.n, p, sizeof p);
    free(m.b);
    CHECK(t, t5_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    if (tok) CHECK(t, !strcmp(t5_ids(tok, "ab", 2, got, sizeof got), "3 5 5"), "a -> b: %s", got);
    t5_tok_close(tok);
    tok = NULL;
    n = tiny_charsmap(blob, 1000, "b\0", 2); /* replacement offset outside the strings */
    m = tiny_model(TINY, N_TINY, blob, n, 0);
    tmp_write(&d, "bad.model", m.b, m.n, p, sizeof p);
    free(m.b);
    CHECK(t, t5_tok_open(&tok, p, &e) == DIT_OK, "%s", e.msg);
    tok_ids ids = { 0 };
    if (tok)
        CHECK(t, t5_tok_encode(tok, "ab", 2, &ids, &e) == DIT_E_FORMAT && strstr(e.msg, p), "bad offset: %s", e.msg);
    tok_ids_free(&ids);
    t5_tok_close(tok);
    tmp_remove_dir(d.path);
}

/* ---- malformed files --------------------------------------------------------------------- */

/* Opening path must fail with a one-line message naming the file (and mentioning what, if given). */
static void expect_fail(tctx *t, int is_clip, const char *path, const char *what)
{
    dit_err e = { 0 };
    clip_tok *c = NULL;
    t5_tok *s = NULL;
    const dit_status rc = is_clip ? clip_tok_open(&c, path, &e) : t5_tok_open(&s, path, &e);
    CHECK(t, rc != DIT_OK && c == NULL && s == NULL, "%s opened", path);
    CHECK(t, strstr(e.msg, path) && !strchr(e.msg, '\n') && (!what || strstr(e.msg, what)), "message '%s' (expected '%s')",
          e.msg, what ? what : path);
    clip_tok_close(c);
    t5_tok_close(s);
}

static void t_malformed_clip(tctx *t)
{
    tmpdir d;
    char p[1024];
    CHECK(t, tmp_make(&d), "mkdtemp");
    static const struct {
        const char *name, *data, *what;
    } files[] = {
        { "three.txt", "#version: 0.2\na b c\n", "line 2" },
        { "nul.txt", "#version: 0.2\na\0 b\n", "line 2" }, /* data cut at the NUL: "a" alone */
        { "unknown.txt", "#version: 0.2\na b\nab zz\n", "not in the vocabulary" },
        { "vocab.json", "[1, 2]", "not a JSON object" },
        { "merges.txt", "#version: 0.2\n", NULL },
    };
    for (size_t i = 0; i < 4; i++) {
        tmp_write(&d, files[i].name, files[i].data, strlen(files[i].data) + (i == 1 ? 5 : 0), p, sizeof p);
        expect_fail(t, 1, p, files[i].what);
    }
    tmp_write(&d, "merges.txt", files[4].data, strlen(files[4].data), p, sizeof p);
    snprintf(p, sizeof p, "%s/vocab.json", d.path);
    expect_fail(t, 1, p, "not a JSON object");
    static const char *const vocabs[][2] = {
        { "{\"a\": 1.5}", "not an integer" },
        { "{\"a\": -1}", "not an integer" },
        { "{\"a\": 99999999}", "not an integer" },
        { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1}", "lacks the symbol of byte 0x00" },
        { "{\"a\": ", "not valid JSON" },
    };
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) {
        tmp_write(&d, "vocab.json", vocabs[i][0], strlen(vocabs[i][0]), p, sizeof p);
        expect_fail(t, 1, p, vocabs[i][1]);
    }
    const char *bpe_json = "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}";
    tmp_write(&d, "tokenizer.json", bpe_json, strlen(bpe_json), p, sizeof p);
    expect_fail(t, 1, p, "BPE");
    /* gzip: truncated, and contents over the size limit (a "zip bomb") */
    uLongf zlen = 0;
    uint8_t *z = NULL;
    {
        const size_t big = TOK_MAX_FILE + (1u << 20);
        char *zeros = calloc(1, big);
        z_stream s;
        memset(&s, 0, sizeof s);
        deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
        zlen = 1u << 20; /* zeros compress about 1000:1 */
        z = malloc(zlen);
        s.next_in = (Bytef *)zeros, s.avail_in = (uInt)big, s.next_out = z, s.avail_out = (uInt)zlen;
        deflate(&s, Z_FINISH);
        zlen = s.total_out;
        deflateEnd(&s);
        free(zeros);
    }
    tmp_write(&d, "bomb.txt.gz", z, zlen, p, sizeof p);
    expect_fail(t, 1, p, "larger than");
    tmp_write(&d, "cut.txt.gz", z, zlen / 2, p, sizeof p);
    expect_fail(t, 1, p, "truncated");
    free(z);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/empty", d.path);
    mkdir(sub, 0700);
    expect_fail(t, 1, sub, "no CLIP tokenizer");
    snprintf(p, sizeof p, "%s/missing.gz", d.path);
    expect_fail(t, 1, p, NULL);
    tmp_remove_dir(d.path);
}

static void t_malformed_t5(tctx *t)
{
    tmpdir d;
    char p[1024];
    CHECK(t, tmp_make(&d), "mkdtemp");
    static const struct {
        const char *name;
        uint8_t data[16];
        size_t n;
        const char *what;
    } raw[] = {
        { "overflow.model", { 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 12, "malformed" },
        { "long.model", { 0x0a, 0x05, 'a' }, 3, "malformed" },
        { "group.model", { 0x0b, 0x0c }, 2, "malformed" },
        { "empty.model", { 0 }, 0, "no pieces" },
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        tmp_write(&d, raw[i].name, raw[i].data, raw[i].n, p, sizeof p);
        expect_fail(t, 0, p, raw[i].what);
    }
    /* structurally valid models with wrong contents */
    tiny_piece bad[N_TINY];
    memcpy(bad, TINY, sizeof TINY);
    bad[5].type = 9;
    pbw m = tiny_model(bad, N_TINY, NULL, 0, 0);
    tmp_write(&d, "type.model", m.b, m.n, p, sizeof p);
    expect_fail(t, 0, p, "unknown type 9");
    free(m.b);
    memcpy(bad, TINY, sizeof TINY);
    bad[5].piece = "a";
    m = tiny_model(bad, N_TINY, NULL, 0, 0);
    tmp_write(&d, "dup.model", m.b, m.n, p, sizeof p);
    expect_fail(t, 0, p, "already defined");
    free(m.b);
    memcpy(bad, TINY, sizeof TINY);
    bad[2].type = 1;
    m = tiny_model(bad, N_TINY, NULL, 0, 0);
    tmp_write(&d, "nounk.model", m.b, m.n, p, sizeof p);
    expect_fail(t, 0, p, "no unknown piece");
    free(m.b);
    static uint8_t blob[4 + 2048 + 16];
    size_t n = tiny_charsmap(blob, 0, "b\0", 2);
    const uint32_t huge = 1u << 30;
    memcpy(blob, &huge, 4);
    m = tiny_model(TINY, N_TINY, blob, n, 0);
    tmp_write(&d, "charsmap.model", m.b, m.n, p, sizeof p);
    expect_fail(t, 0, p, "precompiled charsmap");
    free(m.b);
    /* every truncation of a valid model, and random byte flips: fail cleanly or load, never crash */
    m = tiny_model(TINY, N_TINY, NULL, 0, 0);
    int failed = 0;
    for (size_t cut = 0; cut < m.n; cut++) {
        tmp_write(&d, "cut.model", m.b, cut, p, sizeof p);
        dit_err e = { 0 };
        t5_tok *tok = NULL;
        if (t5_tok_open(&tok, p, &e) != DIT_OK) {
            failed++;
            CHECK(t, strstr(e.msg, p) != NULL, "cut at %zu: '%s'", cut, e.msg);
        }
        t5_tok_close(tok);
    }
    CHECK(t, failed > 0, "no truncation failed");
    trng r = { test_seed(7) };
    for (int k = 0; k < 300; k++) {
        uint8_t *x = malloc(m.n);
        memcpy(x, m.b, m.n);
        for (int f = 0; f < 3; f++) x[trng_u64(&r) % m.n] = (uint8_t)trng_u64(&r);
        tmp_write(&d, "flip.model", x, m.n, p, sizeof p);
        dit_err e = { 0 };
        t5_tok *tok = NULL;
        if (t5_tok_open(&tok, p, &e) == DIT_OK) {
            tok_ids ids = { 0 };
            t5_tok_encode(tok, "ab cd x", 7, &ids, &e);
            tok_ids_free(&ids);
        }
        t5_tok_close(tok);
        free(x);
    }
    free(m.b);
    static const char *const jsons[][2] = {
        { "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"a\"]]}}", "not [piece, score]" },
        { "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",-1]]}}", "unk_id" },
        { "{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", "Unigram" },
        { "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0],[\"</s>\",0]]},"
          "\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"@@@\"}}", "base64" },
    };
    for (size_t i = 0; i < sizeof jsons / sizeof jsons[0]; i++) {
        tmp_write(&d, "tokenizer.json", jsons[i][0], strlen(jsons[i][0]), p, sizeof p);
        expect_fail(t, 0, p, jsons[i][1]);
    }
    tmp_remove_dir(d.path);
}

static void t_invalid_text(tctx *t)
{
    clip_tok *c = tiny_clip(t, "");
    tmpdir d;
    char p[1024];
    dit_err e = { 0 };
    t5_tok *s = NULL;
    CHECK(t, tmp_make(&d), "mkdtemp");
    pbw m = tiny_model(TINY, N_TINY, NULL, 0, 0);
    tmp_write(&d, "spiece.model", m.b, m.n, p, sizeof p);
    free(m.b);
    CHECK(t, t5_tok_open(&s, p, &e) == DIT_OK, "%s", e.msg);
    static const char *const bad[] = { "\xff", "a\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xe2\x96" };
    for (size_t i = 0; c && s && i < sizeof bad / sizeof bad[0]; i++) {
        tok_ids ids = { 0 };
        CHECK(t, clip_tok_encode(c, bad[i], strlen(bad[i]), &ids, &e) == DIT_E_ARG && strstr(e.msg, "UTF-8"), "clip %zu", i);
        CHECK(t, t5_tok_encode(s, bad[i], strlen(bad[i]), &ids, &e) == DIT_E_ARG, "t5 %zu", i);
        CHECK(t, t5_tok_sd3(s, bad[i], strlen(bad[i]), &ids, &e) == DIT_E_ARG, "t5 sd3 %zu", i);
        tok_ids_free(&ids);
    }
    /* a NULL dit_err is allowed (err.h): the code alone comes back */
    tok_ids none = { 0 };
    t5_tok *missing = NULL;
    CHECK(t, c && s && clip_tok_encode(c, "\xff", 1, &none, NULL) == DIT_E_ARG && t5_tok_encode(s, "\xff", 1, &none, NULL) == DIT_E_ARG,
          "NULL dit_err");
    CHECK(t, t5_tok_open(&missing, "/nonexistent/spiece.model", NULL) == DIT_E_IO && !missing, "NULL dit_err on open");
    tmp_write(&d, "broken.model", "\x0a\x05" "a", 3, p, sizeof p);
    clip_tok *c2 = NULL;
    CHECK(t, t5_tok_open(&missing, p, NULL) == DIT_E_FORMAT && clip_tok_open(&c2, "/nonexistent", NULL) == DIT_E_IO && !c2,
          "NULL dit_err on a malformed file");
    tok_ids_free(&none);
    /* NUL is a character like any other (it is dropped by the CLIP cleaning) */
    tok_ids ids = { 0 };
    char got[64];
    CHECK(t, c && !strcmp(split(c, "a", got, sizeof got), "a|"), "split");
    CHECK(t, c && clip_tok_encode(c, "a\0b", 3, &ids, &e) == DIT_OK && ids.n == 2, "NUL: %zu ids", ids.n);
    tok_ids_free(&ids);
    clip_tok_close(c);
    t5_tok_close(s);
    tmp_remove_dir(d.path);
}

static void t_detect(tctx *t)
{
    if (!test_golden_present(t)) return;
    char p[1200];
    dit_err e = { 0 };
    snprintf(p, sizeof p, "%s/tokenizers/clip", test_golden_dir());
    CHECK(t, tok_detect(p, &e) == TOK_CLIP, "%s: %s", p, e.msg);
    snprintf(p, sizeof p, "%s/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz", test_golden_dir());
    CHECK(t, tok_detect(p, &e) == TOK_CLIP, "%s: %s", p, e.msg);
    snprintf(p, sizeof p, "%s/tokenizers/t5", test_golden_dir());
    CHECK(t, tok_detect(p, &e) == TOK_T5, "%s: %s", p, e.msg);
    snprintf(p, sizeof p, "%s/tokenizers/t5/spiece.model", test_golden_dir());
    CHECK(t, tok_detect(p, &e) == TOK_T5, "%s: %s", p, e.msg);
    snprintf(p, sizeof p, "%s/tokenizers/t5/cases.json", test_golden_dir());
    CHECK(t, tok_detect(p, &e) == TOK_UNKNOWN && strstr(e.msg, p), "%s is not a tokenizer: '%s'", p, e.msg);
    snprintf(p, sizeof p, "%s/tokenizers", test_golden_dir());
    CHECK(t, tok_detect(p, &e) == TOK_UNKNOWN, "%s holds no tokenizer", p);
}

int main(void)
{
    tctx t = test_begin("tokenizers");
    test_print_seed();
    RUN(&t, t_clip_cases);
    RUN(&t, t_t5_cases);
    RUN(&t, t_clip_file_forms);
    RUN(&t, t_t5_tokenizer_json);
    RUN(&t, t_bpe_merge_order);
    RUN(&t, t_regex_split);
    RUN(&t, t_unicode);
    RUN(&t, t_emphasis);
    RUN(&t, t_py_float);
    RUN(&t, t_sd3_chunking);
    RUN(&t, t_viterbi_tiny);
    RUN(&t, t_charsmap);
    RUN(&t, t_malformed_clip);
    RUN(&t, t_malformed_t5);
    RUN(&t, t_invalid_text);
    RUN(&t, t_detect);
    return test_end(&t);
}

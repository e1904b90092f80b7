/* text/tok.c — see tok.h. The SD3 functions are sd3.5 other_impls.py (escape_important,
 * parse_parentheses, token_weights, SDTokenizer.tokenize_with_weights) translated one to one;
 * they work on UTF-8 bytes, which is exact because every character they look at is ASCII. */
#include "tok.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "unicode.h"

/* ---- id lists ---------------------------------------------------------------------------- */

void tok_ids_free(tok_ids *t)
{
    free(t->id);
    free(t->weight);
    memset(t, 0, sizeof *t);
}

dit_status tok_ids_push(tok_ids *t, int32_t id, double weight, dit_err *e)
{
    if (t->n == t->cap) {
        const size_t cap = t->cap ? 2 * t->cap : 128;
        int32_t *ids = realloc(t->id, cap * sizeof *ids);
        if (ids) t->id = ids;
        double *w = ids ? realloc(t->weight, cap * sizeof *w) : NULL;
        if (!w) return err_set(e, DIT_E_OOM, "text: out of memory (%zu token ids)", cap);
        t->weight = w;
        t->cap = cap;
    }
    t->id[t->n] = id;
    t->weight[t->n++] = weight;
    return DIT_OK;
}

/* ---- SD3 emphasis ------------------------------------------------------------------------ */

typedef struct {
    tok_segment *seg;
    size_t n, cap;
} seg_list;

static dit_status seg_push(seg_list *l, const char *s, size_t len, double w, dit_err *e)
{
    if (l->n == l->cap) {
        const size_t cap = l->cap ? 2 * l->cap : 16;
        tok_segment *p = realloc(l->seg, cap * sizeof *p);
        if (!p) return err_set(e, DIT_E_OOM, "text: out of memory (%zu prompt segments)", cap);
        l->seg = p;
        l->cap = cap;
    }
    /* unescape_important: "\0\1" -> ")" then "\0\2" -> "(" (each shortens, so len bytes suffice) */
    char *t = malloc(len + 1);
    if (!t) return err_set(e, DIT_E_OOM, "text: out of memory (prompt segment of %zu bytes)", len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 0 && i + 1 < len && s[i + 1] == 1) t[n++] = ')', i++;
        else t[n++] = s[i];
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == 0 && i + 1 < n && t[i + 1] == 2) t[m++] = '(', i++;
        else t[m++] = t[i];
    }
    t[m] = 0;
    l->seg[l->n++] = (tok_segment){ t, m, w };
    return DIT_OK;
}

/* token_weights(s, w): parse_parentheses splits s into consecutive items (a top-level group
 * "( ... )" or the text between groups); a group is unwrapped, weighted and parsed again. */
static dit_status token_weights(const char *s, size_t len, double w, int depth, seg_list *out, dit_err *e)
{
    if (depth > TOK_MAX_NESTING)
        return err_set(e, DIT_E_ARG, "text: emphasis groups nested more than %d deep", TOK_MAX_NESTING);
    size_t start = 0;
    long level = 0;
    for (size_t i = 0; i <= len; i++) {
        size_t end = 0; /* an item s[start..end) is complete */
        if (i == len) end = len;
        else if (s[i] == '(') {
            if (level == 0 && i > start) end = i; /* text before a group */
            level++;
        } else if (s[i] == ')') {
            level--;
            if (level == 0) end = i + 1; /* a group closes (a ')' at depth 0 goes to -1: literal) */
        }
        if (end <= start) continue;
        const char *x = s + start;
        const size_t n = end - start;
        start = end;
        if (n >= 2 && x[0] == '(' && x[n - 1] == ')') {
            const char *in = x + 1;
            size_t in_len = n - 2;
            double wg = w * 1.1;
            size_t colon = in_len;
            while (colon > 0 && in[colon - 1] != ':') colon--;
            if (colon > 1) { /* rfind(':') > 0 */
                double v;
                if (tok_py_float(in + colon, in_len - colon, &v)) wg = v, in_len = colon - 1;
            }
            const dit_status rc = token_weights(in, in_len, wg, depth + 1, out, e);
            if (rc != DIT_OK) return rc;
        } else if (seg_push(out, x, n, w, e) != DIT_OK) return DIT_E_OOM;
    }
    return DIT_OK;
}

void tok_segments_free(tok_segment *segs, size_t n)
{
    for (size_t i = 0; segs && i < n; i++) free(segs[i].text);
    free(segs);
}

dit_status tok_emphasis(const char *text, size_t len, tok_segment **segs, size_t *n, dit_err *e)
{
    *segs = NULL;
    *n = 0;
    /* escape_important: "\)" -> "\0\1", then "\(" -> "\0\2" (same length) */
    char *esc = malloc(len + 1);
    if (!esc) return err_set(e, DIT_E_OOM, "text: out of memory (prompt of %zu bytes)", len);
    memcpy(esc, text, len);
    for (int pass = 0; pass < 2; pass++) {
        const char paren = pass ? '(' : ')', code = pass ? 2 : 1;
        for (size_t i = 0; i + 1 < len; i++)
            if (esc[i] == '\\' && esc[i + 1] == paren) esc[i] = 0, esc[i + 1] = code, i++;
    }
    seg_list l = { 0 };
    const dit_status rc = token_weights(esc, len, 1.0, 0, &l, e);
    free(esc);
    if (rc != DIT_OK) {
        tok_segments_free(l.seg, l.n);
        return rc;
    }
    *segs = l.seg;
    *n = l.n;
    return DIT_OK;
}

/* ---- Python float() ---------------------------------------------------------------------- */

static int ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int match_ci(const char *s, const char *word)
{
    for (; *word; s++, word++)
        if (*s != *word && *s != *word - 'a' + 'A') return 0;
    return 1;
}

/* CPython PyFloat_FromString: _PyUnicode_TransformDecimalAndSpaceToASCII, then
 * _Py_string_to_number_with_underscores, float_from_string_inner (strip ASCII whitespace) and
 * _PyOS_ascii_strtod (_Py_dg_strtod decimal syntax, else inf / infinity / nan). */
int tok_py_float(const char *s, size_t len, double *v)
{
    char *a = malloc(len + 1);
    if (!a) return 0;
    size_t n = 0, pos = 0;
    int ok = 1;
    while (ok && pos < len) {
        uint32_t cp;
        if (!uni_utf8_next(s, len, &pos, &cp)) ok = 0;
        else if (cp == 0) ok = 0; /* would end the C string: Python rejects it too */
        else if (cp < 127) a[n++] = (char)cp;
        else if (uni_py_isspace(cp)) a[n++] = ' ';
        else if (uni_decimal(cp) >= 0) a[n++] = (char)('0' + uni_decimal(cp));
        else ok = 0;
    }
    /* Underscores only between digits; then dropped. */
    size_t m = 0;
    char prev = 0;
    for (size_t i = 0; ok && i < n; i++) {
        const char c = a[i];
        if (c == '_' && !is_digit(prev)) ok = 0;
        else if (c != '_' && prev == '_' && !is_digit(c)) ok = 0;
        else if (c != '_') a[m++] = c;
        prev = c;
    }
    if (prev == '_') ok = 0;
    a[m] = 0;
    char *p = a, *end = a + m;
    while (p < end && ascii_space(*p)) p++;
    while (end > p && ascii_space(end[-1])) end--;
    *end = 0;
    if (!ok || p == end) {
        free(a);
        return 0;
    }
    const char *q = p + (*p == '+' || *p == '-');
    size_t digits = 0;
    while (is_digit(*q)) q++, digits++;
    if (*q == '.') {
        q++;
        while (is_digit(*q)) q++, digits++;
    }
    if (digits > 0 && (*q == 'e' || *q == 'E')) { /* an exponent needs digits, else it is not consumed */
        const char *x = q + 1 + (q[1] == '+' || q[1] == '-');
        if (is_digit(*x)) {
            while (is_digit(*x)) x++;
            q = x;
        }
    }
    if (digits > 0) ok = q == end;
    else {
        q = p + (*p == '+' || *p == '-');
        ok = (match_ci(q, "infinity") && q + 8 == end) || (match_ci(q, "inf") && q + 3 == end) ||
             (match_ci(q, "nan") && q + 3 == end);
    }
    if (ok) *v = strtod(p, NULL); /* C locale: the library never calls setlocale */
    free(a);
    return ok;
}

/* ---- SD3 rows ---------------------------------------------------------------------------- */

dit_status tok_sd3_rows(const tok_sd3_rule *rule, const char *text, size_t len, tok_word_fn word,
                        const void *tok, tok_ids *out, dit_err *e)
{
    enum { MAX_WORD_LENGTH = 8 }; /* SDTokenizer.max_word_length */
    tok_segment *seg;
    size_t n_seg;
    dit_status rc = tok_emphasis(text, len, &seg, &n_seg, e);
    if (rc != DIT_OK) return rc;
    tok_ids w = { 0 };
    size_t row_start = out->n;
    const size_t row = rule->row;
    if (rule->bos >= 0) rc = tok_ids_push(out, rule->bos, 1.0, e);
    for (size_t s = 0; rc == DIT_OK && s < n_seg; s++) {
        char *t = seg[s].text;
        for (size_t i = 0; i < seg[s].len; i++)
            if (t[i] == '\n') t[i] = ' ';
        for (size_t a = 0, b; rc == DIT_OK && a < seg[s].len; a = b + 1) {
            for (b = a; b < seg[s].len && t[b] != ' '; b++) {
            }
            if (b == a) continue; /* empty word */
            w.n = 0;
            if ((rc = word(tok, t + a, b - a, &w, e)) != DIT_OK) break;
            const int is_large = w.n >= MAX_WORD_LENGTH;
            size_t g = 0; /* ids of this word still to place: w.id[g..w.n) */
            while (rc == DIT_OK && g < w.n) {
                const size_t used = out->n - row_start;
                if (row && (w.n - g) + used > row - 1) {
                    const size_t remaining = row - used - 1;
                    if (is_large) { /* break the word in two */
                        for (size_t k = 0; rc == DIT_OK && k < remaining; k++)
                            rc = tok_ids_push(out, w.id[g + k], seg[s].weight, e);
                        g += remaining;
                        if (rc == DIT_OK) rc = tok_ids_push(out, rule->eos, 1.0, e);
                    } else { /* end the row; the word goes whole to the next one */
                        rc = tok_ids_push(out, rule->eos, 1.0, e);
                        for (size_t k = 0; rc == DIT_OK && rule->pad_to_row && k < remaining; k++)
                            rc = tok_ids_push(out, rule->pad, 1.0, e);
                    }
                    row_start = out->n;
                    if (rc == DIT_OK && rule->bos >= 0) rc = tok_ids_push(out, rule->bos, 1.0, e);
                } else {
                    for (; rc == DIT_OK && g < w.n; g++) rc = tok_ids_push(out, w.id[g], seg[s].weight, e);
                }
            }
        }
    }
    if (rc == DIT_OK) rc = tok_ids_push(out, rule->eos, 1.0, e);
    while (rc == DIT_OK && rule->pad_to_row && out->n - row_start < row) rc = tok_ids_push(out, rule->pad, 1.0, e);
    while (rc == DIT_OK && out->n - row_start < rule->min_len) rc = tok_ids_push(out, rule->pad, 1.0, e);
    tok_ids_free(&w);
    tok_segments_free(seg, n_seg);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------- */

/* Inflate a gzip file's data; with max_lines > 0 it stops once that many lines are out. */
static dit_status gunzip(const char *path, const unsigned char *in, size_t n, size_t max_lines, char **buf,
                         size_t *len, dit_err *e)
{
    enum { STEP = 1 << 18 }; /* bytes inflated between two line counts */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return err_set(e, DIT_E_BACKEND, "%s: zlib init failed", path);
    size_t cap = n < TOK_MAX_FILE / 4 ? n * 4 + 1024 : TOK_MAX_FILE, got = 0, lines = 0;
    char *out = malloc(cap + 1);
    dit_status rc = out ? DIT_OK : err_set(e, DIT_E_OOM, "%s: out of memory", path);
    z.next_in = (unsigned char *)in;
    size_t in_left = n;
    while (rc == DIT_OK) {
        if (got == cap) {
            if (cap >= TOK_MAX_FILE) {
                rc = err_set(e, DIT_E_FORMAT, "%s: gzip contents larger than %u bytes", path, TOK_MAX_FILE);
                break;
            }
            cap = cap * 2 > TOK_MAX_FILE ? TOK_MAX_FILE : cap * 2;
            char *p = realloc(out, cap + 1);
            if (!p) {
                rc = err_set(e, DIT_E_OOM, "%s: out of memory (%zu bytes)", path, cap);
                break;
            }
            out = p;
        }
        const unsigned chunk_in = in_left > (1u << 30) ? (1u << 30) : (unsigned)in_left;
        const unsigned chunk_out = cap - got > STEP ? STEP : (unsigned)(cap - got);
        z.avail_in = chunk_in;
        z.next_out = (unsigned char *)out + got;
        z.avail_out = chunk_out;
        const int r = inflate(&z, Z_NO_FLUSH);
        in_left -= chunk_in - z.avail_in;
        for (size_t i = got; max_lines && i < got + (chunk_out - z.avail_out); i++) lines += out[i] == '\n';
        got += chunk_out - z.avail_out;
        if (max_lines && lines >= max_lines) break; /* the caller needs no more */
        if (r == Z_STREAM_END) {
            /* Concatenated gzip members are read on (as Python's gzip module does). */
            if (in_left >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b) {
                inflateReset(&z);
                continue;
            }
            break;
        }
        if (r == Z_BUF_ERROR && z.avail_out == 0) continue; /* grow and go on */
        if (r != Z_OK) {
            rc = err_set(e, DIT_E_FORMAT, "%s: broken gzip data (%s)", path,
                         r == Z_BUF_ERROR ? "truncated" : z.msg ? z.msg : "inflate failed");
            break;
        }
        if (in_left == 0 && z.avail_out != 0) {
            rc = err_set(e, DIT_E_FORMAT, "%s: broken gzip data (truncated)", path);
            break;
        }
    }
    inflateEnd(&z);
    if (rc != DIT_OK) {
        free(out);
        return rc;
    }
    out[got] = 0;
    *buf = out;
    *len = got;
    return DIT_OK;
}

dit_status tok_read_file(const char *path, size_t max_lines, char **buf, size_t *len, dit_err *e)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, DIT_E_IO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set(e, DIT_E_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > TOK_MAX_FILE) {
        fclose(f);
        return err_set(e, DIT_E_FORMAT, "%s: %lld bytes, larger than the %u bytes a tokenizer file may have",
                       path, (long long)st.st_size, TOK_MAX_FILE);
    }
    const size_t n = (size_t)st.st_size;
    char *data = malloc(n + 1);
    if (!data) {
        fclose(f);
        return err_set(e, DIT_E_OOM, "%s: out of memory (%zu bytes)", path, n);
    }
    const size_t got = fread(data, 1, n, f);
    fclose(f);
    if (got != n) {
        free(data);
        return err_set(e, DIT_E_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    data[n] = 0;
    if (n >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b) {
        const dit_status rc = gunzip(path, (const unsigned char *)data, n, max_lines, buf, len, e);
        free(data);
        return rc;
    }
    *buf = data;
    *len = n;
    return DIT_OK;
}

int tok_find_in(const char *dir, const char *name, char *buf, size_t cap)
{
    struct stat st;
    const int w = snprintf(buf, cap, "%s/%s", dir, name);
    return w > 0 && (size_t)w < cap && !stat(buf, &st) && S_ISREG(st.st_mode);
}

/* A tokenizer.json's model type ("BPE", "Unigram"), or "" when the JSON has none. */
static tok_kind json_kind(const char *path, const char *buf, dit_err *e)
{
    cJSON *j = cJSON_Parse(buf);
    if (!j) {
        err_set(e, DIT_E_FORMAT, "%s: not valid JSON", path);
        return TOK_UNKNOWN;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    tok_kind k = TOK_UNKNOWN;
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "BPE")) k = TOK_CLIP;
    else if (cJSON_IsString(type) && !strcmp(type->valuestring, "Unigram")) k = TOK_T5;
    else if (!model && cJSON_IsObject(j) && cJSON_IsNumber(j->child)) k = TOK_CLIP; /* vocab.json: piece -> id */
    else if (!model) err_set(e, DIT_E_FORMAT, "%s: JSON, but neither a tokenizer.json nor a vocab.json", path);
    else err_set(e, DIT_E_UNSUPPORTED, "%s: tokenizer model type '%s' (BPE or Unigram expected)", path,
                 cJSON_IsString(type) ? type->valuestring : "?");
    cJSON_Delete(j);
    return k;
}

tok_kind tok_detect(const char *path, dit_err *e)
{
    struct stat st;
    if (stat(path, &st)) {
        err_set(e, DIT_E_IO, "%s: cannot open (%s)", path, strerror(errno));
        return TOK_UNKNOWN;
    }
    char p[4096];
    if (S_ISDIR(st.st_mode)) {
        if (tok_find_in(path, "spiece.model", p, sizeof p)) return TOK_T5;
        if (tok_find_in(path, "vocab.json", p, sizeof p) && tok_find_in(path, "merges.txt", p, sizeof p))
            return TOK_CLIP;
        if (tok_find_in(path, "bpe_simple_vocab_16e6.txt.gz", p, sizeof p)) return TOK_CLIP;
        if (tok_find_in(path, "tokenizer.json", p, sizeof p)) return tok_detect(p, e);
        err_set(e, DIT_E_FORMAT,
                "%s: no tokenizer inside (spiece.model, vocab.json + merges.txt, bpe_simple_vocab_16e6.txt.gz "
                "or tokenizer.json)", path);
        return TOK_UNKNOWN;
    }
    char *buf;
    size_t len;
    if (tok_read_file(path, 1, &buf, &len, e) != DIT_OK) return TOK_UNKNOWN; /* a gzip file: its first line */
    tok_kind k = TOK_UNKNOWN;
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
    if (i < len && buf[i] == '{') k = json_kind(path, buf, e);
    else if (len > 0 && buf[0] == 0x0a) k = TOK_T5; /* protobuf: field 1 (pieces), length-delimited */
    else if (memchr(buf, 0, len) == NULL && memchr(buf, ' ', len < 4096 ? len : 4096)) k = TOK_CLIP; /* merges */
    else err_set(e, DIT_E_FORMAT, "%s: not a tokenizer file this program knows", path);
    free(buf);
    return k;
}

/* ---- string -> id table ------------------------------------------------------------------ */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

dit_status tok_map_init(tok_map *m, size_t n, const char *const *str, const uint32_t *len, dit_err *e)
{
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot) return err_set(e, DIT_E_OOM, "text: out of memory (table of %zu strings)", n);
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    m->mask = cap - 1;
    m->str = str;
    m->len = len;
    return DIT_OK;
}

int32_t tok_map_add(tok_map *m, int32_t id)
{
    const char *s = m->str[id];
    const size_t n = m->len[id];
    for (size_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        const int32_t at = m->slot[i];
        if (at < 0) {
            m->slot[i] = id;
            return -1;
        }
        if (m->len[at] == n && !memcmp(m->str[at], s, n)) {
            m->slot[i] = id;
            return at;
        }
    }
}

int32_t tok_map_get(const tok_map *m, const char *s, size_t n)
{
    for (size_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        const int32_t at = m->slot[i];
        if (at < 0) return -1;
        if (m->len[at] == n && !memcmp(m->str[at], s, n)) return at;
    }
}

void tok_map_free(tok_map *m)
{
    free(m->slot);
    m->slot = NULL;
}

/* text/clip_tok.c — see clip_tok.h. Mirrors openai/CLIP simple_tokenizer.py (bytes_to_unicode,
 * the vocabulary built from the merges, bpe) and transformers' CLIPTokenizer without ftfy
 * (BasicTokenizer: _clean_text, _tokenize_chinese_chars, NFC, whitespace split, lower), the
 * `hf_noftfy` variant of golden README tokenizers/clip.
 *
 * Layout of an open tokenizer: every vocabulary string in one pool, a string -> id table, and a
 * pair table (left id, right id) -> (merge rank, merged id), so BPE works on ids only.
 */
#include "clip_tok.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unicode.h"

#define MAX_ID (1 << 20) /* vocabulary ids a file may use (CLIP has 49408): bounds the tables a small file can force */

typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    int32_t rank, merged;
} merge_slot;

struct clip_tok {
    int32_t n_vocab;
    char **piece;        /* [n_vocab] into pool; NULL for ids a vocab.json skips */
    uint32_t *piece_len; /* [n_vocab] */
    char *pool;
    tok_map vocab;
    merge_slot *merge;   /* [merge_mask + 1] */
    size_t merge_mask;
    int32_t byte_sym[256], byte_end[256]; /* id of byte b's symbol, and of symbol + "</w>" */
    int32_t bos, eos;
};

/* ---- bytes_to_unicode -------------------------------------------------------------------- */

/* The symbol of byte b: printable Latin-1 bytes (33..126, 161..172, 174..255) stand for
 * themselves, the 68 others map in increasing order to U+0100, U+0101, ... */
static uint32_t byte_symbol(int b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    uint32_t n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256 + n;
}

/* Vocabulary order of the byte symbols: the printable bytes first, then the others. */
static void byte_order(int order[256])
{
    int k = 0;
    for (int b = 0; b < 256; b++)
        if (byte_symbol(b) == (uint32_t)b) order[k++] = b;
    for (int b = 0; b < 256; b++)
        if (byte_symbol(b) != (uint32_t)b) order[k++] = b;
}

/* ---- building the vocabulary ------------------------------------------------------------- */

typedef struct {
    const char *a, *b; /* the two halves (not NUL-terminated) */
    uint32_t alen, blen;
    size_t line;       /* for messages */
} merge_text;

typedef struct {
    const char *path;        /* for messages about the vocabulary */
    const char *merges_path; /* and about the merges (the same file but for vocab.json + merges.txt) */
    char *pool;
    size_t pool_n, pool_cap;
    uint32_t *off, *len; /* by id; off = UINT32_MAX: no string */
    int32_t n, cap;
    merge_text *merges;
    size_t n_merges, merges_cap;
} builder;

static dit_status b_set(builder *b, int32_t id, const char *s1, size_t n1, const char *s2, size_t n2, dit_err *e)
{
    if (id < 0 || id >= MAX_ID) return err_set(e, DIT_E_FORMAT, "%s: token id %d out of range", b->path, id);
    if (id >= b->cap) {
        int32_t cap = b->cap ? b->cap : 1024;
        while (cap <= id) cap *= 2;
        uint32_t *off = realloc(b->off, (size_t)cap * sizeof *off);
        if (off) b->off = off;
        uint32_t *len = off ? realloc(b->len, (size_t)cap * sizeof *len) : NULL;
        if (!len) return err_set(e, DIT_E_OOM, "%s: out of memory (%d tokens)", b->path, cap);
        b->len = len;
        for (int32_t i = b->cap; i < cap; i++) b->off[i] = UINT32_MAX, b->len[i] = 0;
        b->cap = cap;
    }
    if (b->pool_n + n1 + n2 + 1 > b->pool_cap) {
        size_t cap = b->pool_cap ? b->pool_cap : 1 << 16;
        while (cap < b->pool_n + n1 + n2 + 1) cap *= 2;
        if (cap > UINT32_MAX) return err_set(e, DIT_E_FORMAT, "%s: vocabulary strings too long", b->path);
        char *p = realloc(b->pool, cap);
        if (!p) return err_set(e, DIT_E_OOM, "%s: out of memory (%zu bytes of vocabulary)", b->path, cap);
        b->pool = p;
        b->pool_cap = cap;
    }
    b->off[id] = (uint32_t)b->pool_n;
    b->len[id] = (uint32_t)(n1 + n2);
    memcpy(b->pool + b->pool_n, s1, n1);
    if (n2) memcpy(b->pool + b->pool_n + n1, s2, n2);
    b->pool_n += n1 + n2;
    b->pool[b->pool_n++] = 0;
    if (id >= b->n) b->n = id + 1;
    return DIT_OK;
}

static dit_status b_merge(builder *b, const char *a, size_t alen, const char *s, size_t slen, size_t line,
                          dit_err *e)
{
    if (alen > UINT32_MAX / 2 || slen > UINT32_MAX / 2)
        return err_set(e, DIT_E_FORMAT, "%s: merge %zu too long", b->path, line);
    if (b->n_merges == b->merges_cap) {
        const size_t cap = b->merges_cap ? 2 * b->merges_cap : 1024;
        merge_text *p = realloc(b->merges, cap * sizeof *p);
        if (!p) return err_set(e, DIT_E_OOM, "%s: out of memory (%zu merges)", b->path, cap);
        b->merges = p;
        b->merges_cap = cap;
    }
    b->merges[b->n_merges++] = (merge_text){ a, s, (uint32_t)alen, (uint32_t)slen, line };
    return DIT_OK;
}

static void b_free(builder *b)
{
    free(b->pool);
    free(b->off);
    free(b->len);
    free(b->merges);
}

/* One merge line "a b" (split on ASCII whitespace, as Python's str.split() does for these
 * symbols); returns 0 when it does not hold exactly two. */
static int split_merge(const char *s, size_t n, const char **a, size_t *alen, const char **b, size_t *blen)
{
    const char *parts[2];
    size_t lens[2], k = 0, i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f')) i++;
        if (i == n) break;
        const size_t start = i;
        while (i < n && !(s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f')) i++;
        if (k == 2) return 0;
        parts[k] = s + start;
        lens[k++] = i - start;
    }
    if (k != 2) return 0;
    *a = parts[0], *alen = lens[0], *b = parts[1], *blen = lens[1];
    return 1;
}

static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') return 0;
    return 1;
}

/* Merge lines of a text buffer: line 0 is a header ("#version: 0.2"), skipped as both reference
 * implementations do; then at most CLIP_TOK_MERGES lines. */
static dit_status read_merge_lines(builder *b, const char *buf, size_t len, dit_err *e)
{
    size_t i = 0, line = 0;
    while (i < len && line <= CLIP_TOK_MERGES) {
        const char *nl = memchr(buf + i, '\n', len - i);
        const size_t end = nl ? (size_t)(nl - buf) : len;
        if (line > 0 && end == i && !only_space(buf + end, len - end))
            return err_set(e, DIT_E_FORMAT, "%s: line %zu: an empty line between merges (the references would shift every later id)",
                           b->merges_path, line + 1);
        if (line > 0 && end > i) { /* empty lines only end the file (Python strips the text) */
            const char *a, *s;
            size_t alen, slen;
            if (memchr(buf + i, 0, end - i) || !split_merge(buf + i, end - i, &a, &alen, &s, &slen))
                return err_set(e, DIT_E_FORMAT, "%s: line %zu: a merge must be two symbols separated by a space",
                               b->merges_path, line + 1);
            const dit_status rc = b_merge(b, a, alen, s, slen, line + 1, e);
            if (rc != DIT_OK) return rc;
        }
        line++;
        i = end + 1;
    }
    return DIT_OK;
}

/* ---- finishing: tables ------------------------------------------------------------------- */

static size_t merge_hash(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & mask;
}

static const merge_slot *merge_find(const clip_tok *t, int32_t a, int32_t b)
{
    const uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = merge_hash(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        const merge_slot *s = &t->merge[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

static int32_t lookup(const clip_tok *t, const char *s, size_t n)
{
    return tok_map_get(&t->vocab, s, n);
}

/* Take over the builder's pool, build the string table, resolve merges, find the byte symbols
 * and the special tokens. */
static dit_status finish(clip_tok *t, builder *b, dit_err *e)
{
    const char *path = b->path;
    if (b->n == 0) return err_set(e, DIT_E_FORMAT, "%s: empty vocabulary", path);
    t->n_vocab = b->n;
    t->pool = b->pool;
    b->pool = NULL;
    t->piece = calloc((size_t)t->n_vocab, sizeof *t->piece);
    t->piece_len = malloc((size_t)t->n_vocab * sizeof *t->piece_len);
    if (!t->piece || !t->piece_len) return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->piece_len[i] = b->len[i];
        if (b->off[i] != UINT32_MAX) t->piece[i] = t->pool + b->off[i];
    }
    if (tok_map_init(&t->vocab, (size_t)t->n_vocab, (const char *const *)t->piece, t->piece_len, e) != DIT_OK)
        return DIT_E_OOM;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->piece[i]) tok_map_add(&t->vocab, i); /* a repeated string: the later id wins (Python dict) */

    size_t cap = 64;
    while (cap < 2 * b->n_merges) cap *= 2;
    t->merge = malloc(cap * sizeof *t->merge);
    if (!t->merge) return err_set(e, DIT_E_OOM, "%s: out of memory (%zu merges)", path, b->n_merges);
    for (size_t i = 0; i < cap; i++) t->merge[i].key = UINT64_MAX;
    t->merge_mask = cap - 1;
    size_t scratch_cap = 0;
    char *scratch = NULL;
    dit_status rc = DIT_OK;
    for (size_t r = 0; r < b->n_merges && rc == DIT_OK; r++) {
        const merge_text *m = &b->merges[r];
        const int32_t a = lookup(t, m->a, m->alen), c = lookup(t, m->b, m->blen);
        if (m->alen + m->blen > scratch_cap) {
            scratch_cap = 2 * (m->alen + m->blen);
            free(scratch);
            if (!(scratch = malloc(scratch_cap))) {
                rc = err_set(e, DIT_E_OOM, "%s: out of memory", path);
                break;
            }
        }
        memcpy(scratch, m->a, m->alen);
        memcpy(scratch + m->alen, m->b, m->blen);
        const int32_t merged = lookup(t, scratch, m->alen + m->blen);
        if (a < 0 || c < 0 || merged < 0) {
            rc = err_set(e, DIT_E_FORMAT, "%s: merge %zu: '%.*s' is not in the vocabulary", b->merges_path, m->line,
                         a < 0 ? (int)m->alen : c < 0 ? (int)m->blen : (int)(m->alen + m->blen),
                         a < 0 ? m->a : c < 0 ? m->b : scratch);
            break;
        }
        /* bpe_ranks = dict(zip(merges, range(...))): a repeated pair keeps its later rank */
        const uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
        size_t i = merge_hash(key, t->merge_mask);
        while (t->merge[i].key != UINT64_MAX && t->merge[i].key != key) i = (i + 1) & t->merge_mask;
        t->merge[i] = (merge_slot){ key, (int32_t)r, merged };
    }
    free(scratch);
    if (rc != DIT_OK) return rc;

    for (int byte = 0; byte < 256; byte++) {
        char sym[8];
        const int n = uni_utf8_put(sym, byte_symbol(byte));
        memcpy(sym + n, "</w>", 4);
        t->byte_sym[byte] = lookup(t, sym, (size_t)n);
        t->byte_end[byte] = lookup(t, sym, (size_t)n + 4);
        if (t->byte_sym[byte] < 0 || t->byte_end[byte] < 0)
            return err_set(e, DIT_E_FORMAT, "%s: the vocabulary lacks the symbol of byte 0x%02x%s", path, byte,
                           t->byte_sym[byte] < 0 ? "" : " + </w>");
    }
    t->bos = lookup(t, "<|startoftext|>", 15);
    t->eos = lookup(t, "<|endoftext|>", 13);
    if (t->bos < 0 || t->eos < 0)
        return err_set(e, DIT_E_FORMAT, "%s: the vocabulary lacks %s", path,
                       t->bos < 0 ? "<|startoftext|>" : "<|endoftext|>");
    return DIT_OK;
}

/* ---- the three file forms ---------------------------------------------------------------- */

/* openai bpe_simple_vocab_16e6.txt(.gz): the vocabulary is the 256 byte symbols, the same with
 * "</w>", one string per merge, then <|startoftext|> and <|endoftext|>. */
static dit_status load_openai(clip_tok *t, builder *b, const char *buf, size_t len, dit_err *e)
{
    dit_status rc = read_merge_lines(b, buf, len, e);
    int order[256];
    byte_order(order);
    for (int i = 0; rc == DIT_OK && i < 256; i++) {
        char sym[4];
        const int n = uni_utf8_put(sym, byte_symbol(order[i]));
        if ((rc = b_set(b, i, sym, (size_t)n, NULL, 0, e)) == DIT_OK) rc = b_set(b, 256 + i, sym, (size_t)n, "</w>", 4, e);
    }
    int32_t id = 512;
    for (size_t r = 0; rc == DIT_OK && r < b->n_merges; r++, id++)
        rc = b_set(b, id, b->merges[r].a, b->merges[r].alen, b->merges[r].b, b->merges[r].blen, e);
    if (rc == DIT_OK) rc = b_set(b, id, "<|startoftext|>", 15, NULL, 0, e);
    if (rc == DIT_OK) rc = b_set(b, id + 1, "<|endoftext|>", 13, NULL, 0, e);
    return rc == DIT_OK ? finish(t, b, e) : rc;
}

/* A JSON object piece -> id (vocab.json, or tokenizer.json's model.vocab). */
static dit_status load_vocab_object(builder *b, const char *path, const cJSON *vocab, dit_err *e)
{
    if (!cJSON_IsObject(vocab)) return err_set(e, DIT_E_FORMAT, "%s: the vocabulary is not a JSON object", path);
    for (const cJSON *it = vocab->child; it; it = it->next) {
        const double v = it->valuedouble;
        if (!cJSON_IsNumber(it) || !(v >= 0 && v < MAX_ID) || v != (double)(int32_t)v)
            return err_set(e, DIT_E_FORMAT, "%s: token '%.40s': id is not an integer in [0, %d)", path,
                           it->string ? it->string : "?", MAX_ID);
        const dit_status rc = b_set(b, (int32_t)v, it->string, strlen(it->string), NULL, 0, e);
        if (rc != DIT_OK) return rc;
    }
    return DIT_OK;
}

/* The file parsed into *j (cJSON_Delete), its text in *buf (free). */
static dit_status parse_json(const char *path, char **buf, cJSON **j, dit_err *e)
{
    size_t len;
    *j = NULL;
    const dit_status rc = tok_read_file(path, 0, buf, &len, e);
    if (rc != DIT_OK) return rc;
    if (!(*j = cJSON_ParseWithLength(*buf, len))) return err_set(e, DIT_E_FORMAT, "%s: not valid JSON", path);
    return DIT_OK;
}

/* diffusers tokenizer/: vocab.json + merges.txt */
static dit_status load_hf(clip_tok *t, builder *b, const char *vocab_path, const char *merges_path, dit_err *e)
{
    char *vbuf = NULL, *mbuf = NULL;
    size_t mlen;
    cJSON *j;
    dit_status rc = parse_json(vocab_path, &vbuf, &j, e);
    b->path = vocab_path;
    b->merges_path = merges_path;
    if (rc == DIT_OK) rc = load_vocab_object(b, vocab_path, j, e);
    if (rc == DIT_OK) rc = tok_read_file(merges_path, CLIP_TOK_MERGES + 1, &mbuf, &mlen, e);
    if (rc == DIT_OK) {
        size_t i = 0; /* Python strips the whole file before splitting lines */
        while (i < mlen && (mbuf[i] == ' ' || mbuf[i] == '\n' || mbuf[i] == '\r' || mbuf[i] == '\t')) i++;
        rc = read_merge_lines(b, mbuf + i, mlen - i, e);
    }
    if (rc == DIT_OK) rc = finish(t, b, e);
    cJSON_Delete(j);
    free(vbuf);
    free(mbuf);
    return rc;
}

/* tokenizer.json (transformers fast tokenizer): model.vocab and model.merges ("a b" or ["a", "b"]). */
static dit_status load_tokenizer_json(clip_tok *t, builder *b, const char *path, dit_err *e)
{
    char *buf = NULL;
    b->path = b->merges_path = path;
    cJSON *j;
    dit_status rc = parse_json(path, &buf, &j, e);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (rc == DIT_OK && !(cJSON_IsString(type) && !strcmp(type->valuestring, "BPE")))
        rc = err_set(e, DIT_E_FORMAT, "%s: model.type is not \"BPE\" (not a CLIP tokenizer)", path);
    if (rc == DIT_OK) rc = load_vocab_object(b, path, cJSON_GetObjectItemCaseSensitive(model, "vocab"), e);
    if (rc == DIT_OK && !cJSON_IsArray(merges)) rc = err_set(e, DIT_E_FORMAT, "%s: model.merges is not an array", path);
    size_t line = 0;
    for (const cJSON *m = merges ? merges->child : NULL; rc == DIT_OK && m && line < CLIP_TOK_MERGES; m = m->next) {
        line++;
        const char *a, *s;
        size_t alen, slen;
        const cJSON *m0 = cJSON_IsArray(m) ? cJSON_GetArrayItem(m, 0) : NULL;
        const cJSON *m1 = cJSON_IsArray(m) ? cJSON_GetArrayItem(m, 1) : NULL;
        if (cJSON_IsString(m) && split_merge(m->valuestring, strlen(m->valuestring), &a, &alen, &s, &slen)) {
        } else if (cJSON_IsString(m0) && cJSON_IsString(m1) && cJSON_GetArraySize(m) == 2) {
            a = m0->valuestring, alen = strlen(a), s = m1->valuestring, slen = strlen(s);
        } else {
            rc = err_set(e, DIT_E_FORMAT, "%s: model.merges[%zu] is not a pair of symbols", path, line - 1);
            break;
        }
        rc = b_merge(b, a, alen, s, slen, line, e);
    }
    if (rc == DIT_OK) rc = finish(t, b, e);
    cJSON_Delete(j);
    free(buf);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* dir of path + "/" + name into out. */
static void sibling(char *out, size_t cap, const char *path, const char *name)
{
    const char *base = base_name(path);
    snprintf(out, cap, "%.*s%s", (int)(base - path), path, name);
}

dit_status clip_tok_open(clip_tok **out, const char *path, dit_err *e)
{
    *out = NULL;
    clip_tok *t = calloc(1, sizeof *t);
    if (!t) return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    builder b = { .path = path, .merges_path = path };
    char p1[4096], p2[4096];
    struct stat st;
    dit_status rc;
    if (stat(path, &st)) rc = err_set(e, DIT_E_IO, "%s: cannot open", path);
    else if (S_ISDIR(st.st_mode)) {
        if (tok_find_in(path, "vocab.json", p1, sizeof p1) && tok_find_in(path, "merges.txt", p2, sizeof p2))
            rc = load_hf(t, &b, p1, p2, e);
        else if (tok_find_in(path, "bpe_simple_vocab_16e6.txt.gz", p1, sizeof p1)) {
            char *buf;
            size_t len;
            b.path = b.merges_path = p1;
            rc = tok_read_file(p1, CLIP_TOK_MERGES + 1, &buf, &len, e);
            if (rc == DIT_OK) rc = load_openai(t, &b, buf, len, e);
            free(buf); /* the merges pointed into it until finish() copied them */
        } else if (tok_find_in(path, "tokenizer.json", p1, sizeof p1)) rc = load_tokenizer_json(t, &b, p1, e);
        else
            rc = err_set(e, DIT_E_FORMAT, "%s: no CLIP tokenizer inside (vocab.json + merges.txt, "
                                          "bpe_simple_vocab_16e6.txt.gz or tokenizer.json)", path);
    } else if (!strcmp(base_name(path), "vocab.json") || !strcmp(base_name(path), "merges.txt")) {
        sibling(p1, sizeof p1, path, "vocab.json");
        sibling(p2, sizeof p2, path, "merges.txt");
        rc = load_hf(t, &b, p1, p2, e);
    } else {
        char *buf;
        size_t len;
        rc = tok_read_file(path, CLIP_TOK_MERGES + 1, &buf, &len, e);
        size_t i = 0;
        while (rc == DIT_OK && i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
        if (rc == DIT_OK && i < len && buf[i] == '{') {
            free(buf);
            buf = NULL;
            rc = load_tokenizer_json(t, &b, path, e);
        } else if (rc == DIT_OK) rc = load_openai(t, &b, buf, len, e);
        free(buf);
    }
    b_free(&b);
    if (rc != DIT_OK) {
        clip_tok_close(t);
        return rc;
    }
    *out = t;
    return DIT_OK;
}

void clip_tok_close(clip_tok *t)
{
    if (!t) return;
    tok_map_free(&t->vocab);
    free(t->merge);
    free(t->piece);
    free(t->piece_len);
    free(t->pool);
    free(t);
}

int32_t clip_tok_bos(const clip_tok *t)
{
    return t->bos;
}

int32_t clip_tok_eos(const clip_tok *t)
{
    return t->eos;
}

int32_t clip_tok_vocab_size(const clip_tok *t)
{
    return t->n_vocab;
}

const char *clip_tok_piece(const clip_tok *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? t->piece[id] : NULL;
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* Scratch buffers of one encode call. */
typedef struct {
    uni_buf clean, nfc, low;
    int32_t *sym;
    size_t sym_cap;
    char *bytes;
    size_t bytes_cap;
} work;

static void work_free(work *w)
{
    uni_buf_free(&w->clean);
    uni_buf_free(&w->nfc);
    uni_buf_free(&w->low);
    free(w->sym);
    free(w->bytes);
}

/* simple_tokenizer.bpe on one pre-token: byte symbols with "</w>" on the last, then repeatedly
 * the adjacent pair of LOWEST merge rank is merged at every occurrence, left to right. */
static dit_status bpe(const clip_tok *t, work *w, const uint32_t *cp, size_t n, tok_ids *out, dit_err *e)
{
    size_t nb = 0;
    if (4 * n > w->bytes_cap) {
        free(w->bytes);
        w->bytes_cap = 4 * n;
        if (!(w->bytes = malloc(w->bytes_cap))) return err_set(e, DIT_E_OOM, "text: out of memory");
    }
    for (size_t i = 0; i < n; i++) nb += (size_t)uni_utf8_put(w->bytes + nb, cp[i]);
    if (nb > w->sym_cap) {
        free(w->sym);
        w->sym_cap = nb;
        if (!(w->sym = malloc(nb * sizeof *w->sym))) return err_set(e, DIT_E_OOM, "text: out of memory");
    }
    int32_t *s = w->sym;
    for (size_t i = 0; i < nb; i++) {
        const unsigned char byte = (unsigned char)w->bytes[i];
        s[i] = i + 1 < nb ? t->byte_sym[byte] : t->byte_end[byte];
    }
    size_t ns = nb;
    while (ns > 1) {
        const merge_slot *best = NULL;
        for (size_t i = 0; i + 1 < ns; i++) {
            const merge_slot *m = merge_find(t, s[i], s[i + 1]);
            if (m && (!best || m->rank < best->rank)) best = m;
        }
        if (!best) break;
        const int32_t a = (int32_t)(best->key >> 32), b = (int32_t)(uint32_t)best->key;
        size_t k = 0;
        for (size_t i = 0; i < ns;) {
            if (i + 1 < ns && s[i] == a && s[i + 1] == b) s[k++] = best->merged, i += 2;
            else s[k++] = s[i++];
        }
        ns = k;
    }
    for (size_t i = 0; i < ns; i++)
        if (tok_ids_push(out, s[i], 1.0, e) != DIT_OK) return DIT_E_OOM;
    return DIT_OK;
}

/* Case-insensitive match of a pattern letter as the `regex` module does it (simple case
 * folding): also U+017F (long s) folds to 's', U+212A (Kelvin) to 'k'. */
static int ci_eq(uint32_t c, char p)
{
    if (c == (uint32_t)p) return 1;
    if (p >= 'a' && p <= 'z' && c == (uint32_t)(p - 'a' + 'A')) return 1;
    return (p == 's' && c == 0x17F) || (p == 'k' && c == 0x212A);
}

/* Length of pattern pat matched at c[0..n) case-insensitively; 0 when it does not match. */
static size_t match_ci(const uint32_t *c, size_t n, const char *pat, int *exact)
{
    size_t k = 0;
    *exact = 1;
    for (; pat[k]; k++) {
        if (k >= n || !ci_eq(c[k], pat[k])) return 0;
        if (c[k] != (uint32_t)pat[k]) *exact = 0;
    }
    return k;
}

static int is_letter(uint32_t c)
{
    return uni_category(c)[0] == 'L';
}

static int is_number(uint32_t c)
{
    return uni_category(c)[0] == 'N';
}

/* [^\s\p{L}\p{N}] under IGNORECASE: no case variant is a letter or a number (uni_case_any). */
static int is_other(uint32_t c)
{
    return !uni_py_isspace(c) && !uni_case_any(c, 'L') && !uni_case_any(c, 'N');
}

/* The CLIP pre-tokenization regex on one lowercased word, each match through BPE. */
static dit_status pretokenize(const clip_tok *t, work *w, const uint32_t *c, size_t n, tok_ids *out, dit_err *e)
{
    static const char *const CONTRACTIONS[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
    size_t i = 0;
    while (i < n) {
        int exact;
        size_t k = match_ci(c + i, n - i, "<|startoftext|>", &exact);
        if (!k) k = match_ci(c + i, n - i, "<|endoftext|>", &exact);
        if (k) { /* the special strings: their own id (bpe's cache), unless matched by case folding */
            if (exact && tok_ids_push(out, k == 15 ? t->bos : t->eos, 1.0, e) != DIT_OK) return DIT_E_OOM;
            dit_status rc;
            if (!exact && (rc = bpe(t, w, c + i, k, out, e)) != DIT_OK) return rc;
            i += k;
            continue;
        }
        for (size_t j = 0; !k && c[i] == '\'' && j < sizeof CONTRACTIONS / sizeof *CONTRACTIONS; j++)
            k = match_ci(c + i, n - i, CONTRACTIONS[j], &exact);
        if (!k && is_letter(c[i]))
            while (i + k < n && is_letter(c[i + k])) k++;          /* [\p{L}]+ */
        else if (!k && is_number(c[i])) k = 1;                     /* [\p{N}]: one digit */
        else if (!k)
            while (i + k < n && is_other(c[i + k])) k++;           /* [^\s\p{L}\p{N}]+ */
        if (!k) { /* whitespace, or U+0345: no alternative matches */
            i++;
            continue;
        }
        const dit_status rc = bpe(t, w, c + i, k, out, e);
        if (rc != DIT_OK) return rc;
        i += k;
    }
    return DIT_OK;
}

/* transformers BasicTokenizer._is_chinese_char: CJK ideograph blocks (not kana, not hangul). */
static int is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* One piece of text between special-token strings: clean, CJK spacing, NFC, words, lower, regex. */
static dit_status encode_piece(const clip_tok *t, work *w, const uint32_t *c, size_t n, tok_ids *out, dit_err *e)
{
    w->clean.n = w->nfc.n = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t x = c[i];
        const char *cat = uni_category(x);
        dit_status rc = DIT_OK;
        if (x == 0 || x == 0xFFFD || (cat[0] == 'C' && x != '\t' && x != '\n' && x != '\r')) continue;
        if (x == '\t' || x == '\n' || x == '\r' || !strcmp(cat, "Zs")) rc = uni_buf_push(&w->clean, ' ', e);
        else if (is_cjk(x)) {
            if ((rc = uni_buf_push(&w->clean, ' ', e)) == DIT_OK && (rc = uni_buf_push(&w->clean, x, e)) == DIT_OK)
                rc = uni_buf_push(&w->clean, ' ', e);
        } else rc = uni_buf_push(&w->clean, x, e);
        if (rc != DIT_OK) return rc;
    }
    dit_status rc = uni_nfc(w->clean.cp, w->clean.n, &w->nfc, e);
    if (rc != DIT_OK) return rc;
    const uint32_t *s = w->nfc.cp;
    const size_t m = w->nfc.n;
    for (size_t a = 0, b; a < m; a = b) {
        while (a < m && uni_py_isspace(s[a])) a++;
        for (b = a; b < m && !uni_py_isspace(s[b]); b++) {
        }
        if (b == a) break;
        w->low.n = 0;
        if ((rc = uni_py_lower(s + a, b - a, &w->low, e)) != DIT_OK) return rc;
        if ((rc = pretokenize(t, w, w->low.cp, w->low.n, out, e)) != DIT_OK) return rc;
    }
    return DIT_OK;
}

static const uint32_t SOT[] = { '<', '|', 's', 't', 'a', 'r', 't', 'o', 'f', 't', 'e', 'x', 't', '|', '>' };
static const uint32_t EOT[] = { '<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>' };

dit_status clip_tok_encode(const clip_tok *t, const char *text, size_t len, tok_ids *out, dit_err *e)
{
    if (len > TOK_MAX_TEXT) return err_set(e, DIT_E_ARG, "text: %zu bytes of text, more than the %u a prompt may have", len, TOK_MAX_TEXT);
    uni_buf cps = { 0 };
    work w = { 0 };
    dit_status rc = uni_utf8_decode(text, len, &cps, e);
    size_t start = 0;
    /* Special-token strings are split out first (exact, case-sensitive), then each piece. */
    for (size_t i = 0; rc == DIT_OK && i <= cps.n;) {
        size_t k = 0;
        int32_t special = -1;
        if (i + 15 <= cps.n && !memcmp(cps.cp + i, SOT, sizeof SOT)) k = 15, special = t->bos;
        else if (i + 13 <= cps.n && !memcmp(cps.cp + i, EOT, sizeof EOT)) k = 13, special = t->eos;
        if (!k && i < cps.n) {
            i++;
            continue;
        }
        if (i > start) rc = encode_piece(t, &w, cps.cp + start, i - start, out, e);
        if (rc == DIT_OK && k) rc = tok_ids_push(out, special, 1.0, e);
        i += k ? k : 1;
        start = i;
    }
    uni_buf_free(&cps);
    work_free(&w);
    return rc;
}

static dit_status encode_word(const void *tok, const char *word, size_t len, tok_ids *out, dit_err *e)
{
    return clip_tok_encode(tok, word, len, out, e);
}

dit_status clip_tok_sd3(const clip_tok *t, const char *text, size_t len, int32_t pad, tok_ids *out, dit_err *e)
{
    const tok_sd3_rule rule = { .bos = t->bos, .eos = t->eos, .pad = pad, .row = CLIP_TOK_ROW, .pad_to_row = 1 };
    return tok_sd3_rows(&rule, text, len, encode_word, t, out, e);
}

dit_status clip_tok_flux(const clip_tok *t, const char *text, size_t len, size_t max_len, tok_ids *out, dit_err *e)
{
    if (max_len < 2) return err_set(e, DIT_E_ARG, "clip: max_len %zu leaves no room for BOS and EOS", max_len);
    tok_ids ids = { 0 };
    dit_status rc = clip_tok_encode(t, text, len, &ids, e);
    if (rc == DIT_OK) rc = tok_ids_push(out, t->bos, 1.0, e);
    for (size_t i = 0; rc == DIT_OK && i < ids.n && i < max_len - 2; i++) rc = tok_ids_push(out, ids.id[i], 1.0, e);
    if (rc == DIT_OK) rc = tok_ids_push(out, t->eos, 1.0, e);
    for (size_t i = (ids.n < max_len - 2 ? ids.n : max_len - 2) + 2; rc == DIT_OK && i < max_len; i++)
        rc = tok_ids_push(out, t->eos, 1.0, e);
    tok_ids_free(&ids);
    return rc;
}

/* text/t5_tok.c — see t5_tok.h. Mirrors sentencepiece (0.1.9x): model_interface.cc
 * InitializePieces, normalizer.cc Normalize / NormalizePrefix / DecodePrecompiledCharsMap,
 * unigram_model.cc EncodeOptimized, sentencepiece_processor.cc PopulateSentencePieceText
 * (unknown runs merged, byte fallback), and darts-clone's DoubleArray::commonPrefixSearch.
 *
 * Pieces live in one pool with a string -> id table; the Viterbi pass looks up every prefix of
 * the rest of the sentence up to the longest piece, shortest first, which visits candidates in
 * the order sentencepiece's trie yields them.
 */
#include "t5_tok.h"

#include <cJSON.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unicode.h"

/* sentencepiece_model.proto ModelProto.SentencePiece.Type */
enum { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER_DEFINED = 4, SP_UNUSED = 5, SP_BYTE = 6 };

#define MAX_PIECES (1 << 24)
#define T5_MAX_PIECE 256 /* bytes per piece (T5's longest is 16 characters): bounds Viterbi's prefix search */
#define CHARSMAP_RESULTS 32 /* sentencepiece Normalizer::kMaxTrieResultsSize */

struct t5_tok {
    char *path;           /* for messages at encode time */
    int32_t n;
    char **piece;         /* [n] into pool */
    uint32_t *piece_len;  /* [n] */
    float *score;         /* [n] */
    uint8_t *type;        /* [n] SP_* */
    char *pool;
    tok_map map;
    size_t max_len, max_user_len; /* bytes of the longest trie piece / user-defined piece */
    float min_score, max_score;   /* over NORMAL pieces */
    int32_t unk, eos, pad;
    int byte_fallback;
    int32_t byte_id[256];
    /* normalizer */
    uint32_t *trie;       /* darts-clone units; NULL: no charsmap (identity) */
    size_t n_units;
    char *repl;           /* replacement strings, NUL-terminated, one NUL appended */
    size_t repl_len;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
};

/* ---- protobuf wire format ---------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *start, *end;
} pb;

typedef struct {
    uint32_t num;
    int wire;
    uint64_t v;          /* varint, fixed32 or fixed64 value */
    const uint8_t *data; /* wire 2: the bytes */
    size_t len;
} pb_field;

static int pb_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return 0;
        const uint8_t b = *r->p++;
        if (shift == 63 && b > 1) return 0;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static int pb_next(pb *r, pb_field *f)
{
    uint64_t key;
    if (!pb_varint(r, &key) || key >> 32 || (key >> 3) == 0) return 0;
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    const size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case 0: return pb_varint(r, &f->v);
    case 1:
    case 5: {
        const size_t n = f->wire == 1 ? 8 : 4;
        if (left < n) return 0;
        f->v = 0;
        for (size_t i = 0; i < n; i++) f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case 2:
        if (!pb_varint(r, &f->v) || f->v > (uint64_t)(r->end - r->p)) return 0;
        f->data = r->p;
        f->len = (size_t)f->v;
        r->p += f->len;
        return 1;
    default: return 0; /* groups and reserved wire types: never in a sentencepiece model */
    }
}

static float pb_float(const pb_field *f)
{
    const uint32_t u = (uint32_t)f->v;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- building ---------------------------------------------------------------------------- */

static dit_status alloc_pieces(t5_tok *t, size_t n, size_t bytes, dit_err *e)
{
    if (n == 0) return err_set(e, DIT_E_FORMAT, "%s: no pieces", t->path);
    if (n > MAX_PIECES) return err_set(e, DIT_E_FORMAT, "%s: %zu pieces (at most %d)", t->path, n, MAX_PIECES);
    t->piece = calloc(n, sizeof *t->piece);
    t->piece_len = calloc(n, sizeof *t->piece_len);
    t->score = calloc(n, sizeof *t->score);
    t->type = calloc(n, sizeof *t->type);
    t->pool = malloc(bytes + n);
    if (!t->piece || !t->piece_len || !t->score || !t->type || !t->pool)
        return err_set(e, DIT_E_OOM, "%s: out of memory (%zu pieces)", t->path, n);
    return DIT_OK;
}

/* Append piece id (its string copied into the pool at *pool_n). */
static void set_piece(t5_tok *t, int32_t id, const char *s, size_t len, float score, int type, size_t *pool_n)
{
    t->piece[id] = t->pool + *pool_n;
    memcpy(t->piece[id], s, len);
    t->piece[id][len] = 0;
    *pool_n += len + 1;
    t->piece_len[id] = (uint32_t)len;
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
}

static int in_trie(int type)
{
    return type == SP_NORMAL || type == SP_USER_DEFINED || type == SP_UNUSED;
}

/* After the pieces: the table, scores, the special ids (sentencepiece InitializePieces and
 * unigram Model::Model). */
static dit_status finish(t5_tok *t, const char *eos_piece, size_t eos_len, const char *pad_piece, size_t pad_len,
                         dit_err *e)
{
    if (tok_map_init(&t->map, (size_t)t->n, (const char *const *)t->piece, t->piece_len, e) != DIT_OK)
        return DIT_E_OOM;
    t->unk = -1;
    t->min_score = FLT_MAX;
    t->max_score = FLT_MIN; /* sic: sentencepiece starts from FLT_MIN, the smallest positive float */
    for (int32_t i = 0; i < t->n; i++) {
        if (t->piece_len[i] == 0) return err_set(e, DIT_E_FORMAT, "%s: piece %d is empty", t->path, i);
        if (t->piece_len[i] > T5_MAX_PIECE) /* Viterbi tries every prefix up to the longest piece */
            return err_set(e, DIT_E_FORMAT, "%s: piece %d is %u bytes long (at most %d)", t->path, i, t->piece_len[i], T5_MAX_PIECE);
        if (tok_map_add(&t->map, i) >= 0)
            return err_set(e, DIT_E_FORMAT, "%s: piece %d '%.40s' is already defined", t->path, i, t->piece[i]);
        if (t->type[i] == SP_UNKNOWN) {
            if (t->unk >= 0) return err_set(e, DIT_E_FORMAT, "%s: unk is already defined (pieces %d and %d)", t->path, t->unk, i);
            t->unk = i;
        }
        if (t->type[i] == SP_NORMAL) {
            if (t->score[i] < t->min_score) t->min_score = t->score[i];
            if (t->score[i] > t->max_score) t->max_score = t->score[i];
        }
        if (in_trie(t->type[i]) && t->piece_len[i] > t->max_len) t->max_len = t->piece_len[i];
        if (t->type[i] == SP_USER_DEFINED && t->piece_len[i] > t->max_user_len) t->max_user_len = t->piece_len[i];
        if (t->type[i] == SP_BYTE && !t->byte_fallback)
            return err_set(e, DIT_E_FORMAT, "%s: byte piece %.40s although byte_fallback is false", t->path, t->piece[i]);
    }
    if (t->unk < 0) return err_set(e, DIT_E_FORMAT, "%s: no unknown piece (<unk>)", t->path);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        const int32_t id = tok_map_get(&t->map, name, 6);
        t->byte_id[b] = id >= 0 && t->type[id] == SP_BYTE ? id : t->unk;
    }
    t->eos = tok_map_get(&t->map, eos_piece, eos_len);
    t->pad = tok_map_get(&t->map, pad_piece, pad_len);
    if (t->eos < 0) return err_set(e, DIT_E_FORMAT, "%s: no end-of-sequence piece '%.*s'", t->path, (int)eos_len, eos_piece);
    if (t->pad < 0) t->pad = 0; /* transformers' T5 pads with id 0 */
    return DIT_OK;
}

/* sentencepiece DecodePrecompiledCharsMap: u32 LE trie size, the darts-clone units, then the
 * NUL-terminated replacement strings. */
static dit_status set_charsmap(t5_tok *t, const uint8_t *blob, size_t n, dit_err *e)
{
    if (n <= 4) return err_set(e, DIT_E_FORMAT, "%s: precompiled charsmap of %zu bytes is broken", t->path, n);
    const uint32_t trie_bytes = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                                (uint32_t)blob[3] << 24;
    if (trie_bytes > n - 4 || trie_bytes < 4)
        return err_set(e, DIT_E_FORMAT, "%s: precompiled charsmap: trie of %u bytes in a blob of %zu", t->path,
                       trie_bytes, n);
    t->n_units = trie_bytes / 4;
    t->trie = malloc(t->n_units * sizeof *t->trie);
    t->repl_len = n - 4 - trie_bytes;
    t->repl = malloc(t->repl_len + 1);
    if (!t->trie || !t->repl) return err_set(e, DIT_E_OOM, "%s: out of memory (charsmap)", t->path);
    for (size_t i = 0; i < t->n_units; i++) {
        const uint8_t *u = blob + 4 + 4 * i;
        t->trie[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(t->repl, blob + 4 + trie_bytes, t->repl_len);
    t->repl[t->repl_len] = 0;
    return DIT_OK;
}

static dit_status load_model(t5_tok *t, const uint8_t *buf, size_t len, dit_err *e)
{
    pb r = { buf, buf, buf + len };
    pb_field f;
    size_t n = 0, bytes = 0;
    const uint8_t *trainer = NULL, *norm = NULL;
    size_t trainer_len = 0, norm_len = 0;
    while (r.p < r.end) { /* pass 1: count the pieces, find the specs */
        const size_t at = (size_t)(r.p - r.start);
        if (!pb_next(&r, &f)) return err_set(e, DIT_E_FORMAT, "%s: malformed protobuf at byte %zu", t->path, at);
        if ((f.num == 1 || f.num == 2 || f.num == 3) && f.wire != 2)
            return err_set(e, DIT_E_FORMAT, "%s: ModelProto field %u has wire type %d", t->path, f.num, f.wire);
        if (f.num == 1) n++, bytes += f.len;
        if (f.num == 2) trainer = f.data, trainer_len = f.len;
        if (f.num == 3) norm = f.data, norm_len = f.len;
    }
    /* TrainerSpec: model type, byte fallback, special piece strings */
    const char *eos_piece = "</s>", *pad_piece = "<pad>";
    size_t eos_len = 4, pad_len = 5;
    for (pb s = { trainer, trainer, trainer + trainer_len }; trainer && s.p < s.end;) {
        if (!pb_next(&s, &f)) return err_set(e, DIT_E_FORMAT, "%s: malformed trainer_spec", t->path);
        if (f.num == 3 && f.wire == 0 && f.v != 1)
            return err_set(e, DIT_E_UNSUPPORTED, "%s: model type %llu (only unigram, 1, is supported)", t->path,
                           (unsigned long long)f.v);
        if (f.num == 24 && f.wire == 0 && f.v)
            return err_set(e, DIT_E_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported", t->path);
        if (f.num == 35 && f.wire == 0) t->byte_fallback = f.v != 0;
        if (f.num == 47 && f.wire == 2) eos_piece = (const char *)f.data, eos_len = f.len;
        if (f.num == 48 && f.wire == 2) pad_piece = (const char *)f.data, pad_len = f.len;
    }
    /* NormalizerSpec */
    t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = 1;
    const uint8_t *name = NULL, *charsmap = NULL;
    size_t name_len = 0, charsmap_len = 0;
    for (pb s = { norm, norm, norm + norm_len }; norm && s.p < s.end;) {
        if (!pb_next(&s, &f)) return err_set(e, DIT_E_FORMAT, "%s: malformed normalizer_spec", t->path);
        if (f.num == 1 && f.wire == 2) name = f.data, name_len = f.len;
        if (f.num == 2 && f.wire == 2) charsmap = f.data, charsmap_len = f.len;
        if (f.num == 3 && f.wire == 0) t->add_dummy_prefix = f.v != 0;
        if (f.num == 4 && f.wire == 0) t->remove_extra_ws = f.v != 0;
        if (f.num == 5 && f.wire == 0) t->escape_ws = f.v != 0;
    }
    if (charsmap_len > 0) {
        const dit_status rc = set_charsmap(t, charsmap, charsmap_len, e);
        if (rc != DIT_OK) return rc;
    } else if (name_len > 0 && !(name_len == 8 && !memcmp(name, "identity", 8)))
        return err_set(e, DIT_E_UNSUPPORTED, "%s: normalizer '%.*s' without a precompiled charsmap", t->path,
                       (int)name_len, (const char *)name);
    /* pass 2: the pieces */
    const dit_status rc = alloc_pieces(t, n, bytes, e);
    if (rc != DIT_OK) return rc;
    t->n = (int32_t)n;
    size_t pool_n = 0;
    int32_t id = 0;
    r.p = r.start;
    while (r.p < r.end) {
        pb_next(&r, &f); /* checked in pass 1 */
        if (f.num != 1) continue;
        const char *s = "";
        size_t slen = 0;
        float score = 0;
        uint64_t type = SP_NORMAL;
        pb_field g;
        for (pb p = { f.data, f.data, f.data + f.len }; p.p < p.end;) {
            if (!pb_next(&p, &g)) return err_set(e, DIT_E_FORMAT, "%s: piece %d: malformed protobuf", t->path, id);
            if (g.num == 1 && g.wire == 2) s = (const char *)g.data, slen = g.len;
            else if (g.num == 2 && g.wire == 5) score = pb_float(&g);
            else if (g.num == 3 && g.wire == 0) type = g.v;
            else if (g.num <= 3)
                return err_set(e, DIT_E_FORMAT, "%s: piece %d: field %u has wire type %d", t->path, id, g.num, g.wire);
        }
        if (type < SP_NORMAL || type > SP_BYTE)
            return err_set(e, DIT_E_FORMAT, "%s: piece %d: unknown type %llu", t->path, id, (unsigned long long)type);
        if (!(score == score)) return err_set(e, DIT_E_FORMAT, "%s: piece %d: score is NaN", t->path, id);
        set_piece(t, id++, s, slen, score, (int)type, &pool_n);
    }
    return finish(t, eos_piece, eos_len, pad_piece, pad_len, e);
}

/* ---- tokenizer.json ---------------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 (padding optional); NULL on a bad character. *n: decoded length. */
static uint8_t *b64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '=') len--;
    uint8_t *out = malloc(len / 4 * 3 + 3);
    if (!out || len % 4 == 1) {
        free(out);
        return NULL;
    }
    uint32_t acc = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        const int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[k++] = (uint8_t)(acc >> 16), out[k++] = (uint8_t)(acc >> 8), out[k++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) out[k++] = (uint8_t)(acc >> 4);
    if (len % 4 == 3) out[k++] = (uint8_t)(acc >> 10), out[k++] = (uint8_t)(acc >> 2);
    *n = k;
    return out;
}

static const cJSON *find_precompiled(const cJSON *node, int depth)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(node, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "Precompiled")) return node;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, "normalizers");
    for (const cJSON *c = cJSON_IsArray(list) && depth < 8 ? list->child : NULL; c; c = c->next) {
        const cJSON *found = find_precompiled(c, depth + 1);
        if (found) return found;
    }
    return NULL;
}

/* transformers tokenizer.json of a T5 (Unigram) model. Pieces that added_tokens marks special
 * are control symbols as in spiece.model (out of the Viterbi search); model.unk_id is <unk>. */
static dit_status load_json(t5_tok *t, const char *buf, size_t len, dit_err *e)
{
    cJSON *j = cJSON_ParseWithLength(buf, len);
    if (!j) return err_set(e, DIT_E_FORMAT, "%s: not valid JSON", t->path);
    dit_status rc = DIT_OK;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    size_t n = 0, bytes = 0;
    if (!(cJSON_IsString(type) && !strcmp(type->valuestring, "Unigram")))
        rc = err_set(e, DIT_E_FORMAT, "%s: model.type is not \"Unigram\" (not a T5 tokenizer)", t->path);
    else if (!cJSON_IsArray(vocab)) rc = err_set(e, DIT_E_FORMAT, "%s: model.vocab is not an array", t->path);
    for (const cJSON *v = rc == DIT_OK ? vocab->child : NULL; v; v = v->next, n++) {
        const cJSON *p = cJSON_GetArrayItem(v, 0), *s = cJSON_GetArrayItem(v, 1);
        if (!cJSON_IsArray(v) || !cJSON_IsString(p) || !cJSON_IsNumber(s)) {
            rc = err_set(e, DIT_E_FORMAT, "%s: model.vocab[%zu] is not [piece, score]", t->path, n);
            break;
        }
        bytes += strlen(p->valuestring);
    }
    if (rc == DIT_OK) rc = alloc_pieces(t, n, bytes, e);
    size_t pool_n = 0;
    int32_t id = 0;
    if (rc == DIT_OK) t->n = (int32_t)n;
    for (const cJSON *v = rc == DIT_OK ? vocab->child : NULL; v; v = v->next, id++) {
        const char *s = cJSON_GetArrayItem(v, 0)->valuestring;
        set_piece(t, id, s, strlen(s), (float)cJSON_GetArrayItem(v, 1)->valuedouble, SP_NORMAL, &pool_n);
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    for (const cJSON *a = rc == DIT_OK && cJSON_IsArray(added) ? added->child : NULL; a; a = a->next) {
        const cJSON *aid = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special")) && cJSON_IsNumber(aid) &&
            aid->valuedouble >= 0 && aid->valuedouble < (double)t->n)
            t->type[(int32_t)aid->valuedouble] = SP_CONTROL;
    }
    if (rc == DIT_OK) {
        if (!cJSON_IsNumber(unk) || !(unk->valuedouble >= 0 && unk->valuedouble < (double)t->n))
            rc = err_set(e, DIT_E_FORMAT, "%s: model.unk_id is missing or out of range", t->path);
        else t->type[(int32_t)unk->valuedouble] = SP_UNKNOWN;
    }
    t->byte_fallback = cJSON_IsTrue(bf);
    for (int32_t i = 0; rc == DIT_OK && t->byte_fallback && i < t->n; i++) {
        unsigned x;
        char tail;
        if (t->type[i] == SP_NORMAL && t->piece_len[i] == 6 && sscanf(t->piece[i], "<0x%2X%c", &x, &tail) == 2 &&
            tail == '>')
            t->type[i] = SP_BYTE;
    }
    /* normalizer: the precompiled charsmap; whitespace as sentencepiece's defaults for T5 */
    t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = 1;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(pre, "add_prefix_space");
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(pre, "prepend_scheme");
    if (cJSON_IsBool(prefix)) t->add_dummy_prefix = cJSON_IsTrue(prefix);
    if (cJSON_IsString(scheme)) t->add_dummy_prefix = strcmp(scheme->valuestring, "never") != 0;
    const cJSON *pc = find_precompiled(cJSON_GetObjectItemCaseSensitive(j, "normalizer"), 0);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(pc, "precompiled_charsmap");
    if (rc == DIT_OK && cJSON_IsString(map)) {
        size_t blob_len;
        uint8_t *blob = b64_decode(map->valuestring, &blob_len);
        if (!blob) rc = err_set(e, DIT_E_FORMAT, "%s: precompiled_charsmap is not valid base64", t->path);
        else rc = set_charsmap(t, blob, blob_len, e);
        free(blob);
    }
    if (rc == DIT_OK) rc = finish(t, "</s>", 4, "<pad>", 5, e);
    cJSON_Delete(j);
    return rc;
}

dit_status t5_tok_open(t5_tok **out, const char *path, dit_err *e)
{
    *out = NULL;
    char p[4096];
    struct stat st;
    if (stat(path, &st)) return err_set(e, DIT_E_IO, "%s: cannot open", path);
    if (S_ISDIR(st.st_mode)) {
        if (!tok_find_in(path, "spiece.model", p, sizeof p) && !tok_find_in(path, "tokenizer.json", p, sizeof p))
            return err_set(e, DIT_E_FORMAT, "%s: no T5 tokenizer inside (spiece.model or tokenizer.json)", path);
        path = p;
    }
    t5_tok *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    }
    char *buf;
    size_t len;
    dit_status rc = tok_read_file(path, 0, &buf, &len, e);
    if (rc == DIT_OK) {
        size_t i = 0;
        while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
        rc = i < len && buf[i] == '{' ? load_json(t, buf, len, e) : load_model(t, (const uint8_t *)buf, len, e);
        free(buf);
    }
    if (rc != DIT_OK) {
        t5_tok_close(t);
        return rc;
    }
    *out = t;
    return DIT_OK;
}

void t5_tok_close(t5_tok *t)
{
    if (!t) return;
    tok_map_free(&t->map);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->pool);
    free(t->trie);
    free(t->repl);
    free(t->path);
    free(t);
}

int32_t t5_tok_eos(const t5_tok *t)
{
    return t->eos;
}

int32_t t5_tok_pad(const t5_tok *t)
{
    return t->pad;
}

int32_t t5_tok_unk(const t5_tok *t)
{
    return t->unk;
}

int32_t t5_tok_vocab_size(const t5_tok *t)
{
    return t->n;
}

const char *t5_tok_piece(const t5_tok *t, int32_t id)
{
    return id >= 0 && id < t->n ? t->piece[id] : NULL;
}

float t5_tok_score(const t5_tok *t, int32_t id)
{
    return id >= 0 && id < t->n ? t->score[id] : 0.0f;
}

/* ---- normalization ----------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static dit_status sb_add(sbuf *b, const char *s, size_t n, dit_err *e)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return err_set(e, DIT_E_OOM, "t5: out of memory (%zu bytes)", cap);
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return DIT_OK;
}

/* darts-clone DoubleArrayUnit */
static uint32_t unit_offset(uint32_t u)
{
    return (u >> 10) << ((u & (1u << 9)) >> 6);
}
static uint32_t unit_label(uint32_t u)
{
    return u & ((1u << 31) | 0xFF);
}

/* The charsmap rule for the longest prefix of s[0..n) (among the first CHARSMAP_RESULTS matches,
 * as sentencepiece keeps them); *len = 0 when none. A transition outside the units (only a
 * corrupt trie leads there) ends the search. */
static void charsmap_match(const t5_tok *t, const char *s, size_t n, size_t *len, uint32_t *value)
{
    *len = 0;
    size_t id = unit_offset(t->trie[0]), found = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        id ^= c;
        if (id >= t->n_units) return;
        const uint32_t u = t->trie[id];
        if (unit_label(u) != c) return;
        id ^= unit_offset(u);
        if ((u >> 8) & 1) { /* has_leaf */
            if (id >= t->n_units) return;
            if (found++ < CHARSMAP_RESULTS) *len = i + 1, *value = t->trie[id] & 0x7fffffffu;
        }
    }
}

/* Normalizer::NormalizePrefix: a user-defined piece verbatim (longest), else the charsmap
 * rewrite of the longest matching prefix, else one character as it is. */
static dit_status norm_prefix(const t5_tok *t, const char *s, size_t n, const char **rep, size_t *rep_len,
                              size_t *used, dit_err *e)
{
    size_t best = 0;
    for (size_t k = 1; t->max_user_len && k <= n && k <= t->max_user_len; k++) {
        const int32_t id = tok_map_get(&t->map, s, k);
        if (id >= 0 && t->type[id] == SP_USER_DEFINED) best = k;
    }
    if (best) {
        *rep = s, *rep_len = *used = best;
        return DIT_OK;
    }
    size_t len = 0;
    uint32_t value = 0;
    if (t->trie) charsmap_match(t, s, n, &len, &value);
    if (len) {
        if (value >= t->repl_len)
            return err_set(e, DIT_E_FORMAT, "%s: precompiled charsmap: replacement offset %u out of range", t->path,
                           value);
        *rep = t->repl + value;
        *rep_len = strlen(*rep); /* stops at the string's NUL (one is appended to the pool) */
        *used = len;
        return DIT_OK;
    }
    size_t pos = 0;
    uint32_t cp;
    if (!uni_utf8_next(s, n, &pos, &cp)) pos = 1; /* cannot happen: the text was validated */
    *rep = s, *rep_len = *used = pos;
    return DIT_OK;
}

static const char SPACE[] = "\xe2\x96\x81"; /* U+2581 LOWER ONE EIGHTH BLOCK, "▁" */

/* Normalizer::Normalize (no treat_whitespace_as_suffix). */
static dit_status normalize(const t5_tok *t, const char *s, size_t n, sbuf *out, dit_err *e)
{
    const char *rep;
    size_t rep_len, used;
    const char *ws = t->escape_ws ? SPACE : " ";
    const size_t ws_len = t->escape_ws ? 3 : 1;
    out->n = 0;
    if (sb_add(out, "", 0, e) != DIT_OK) return DIT_E_OOM;
    dit_status rc;
    while (t->remove_extra_ws && n > 0) { /* heading spaces */
        if ((rc = norm_prefix(t, s, n, &rep, &rep_len, &used, e)) != DIT_OK) return rc;
        if (!(rep_len == 1 && rep[0] == ' ')) break;
        s += used, n -= used;
    }
    if (n == 0) return DIT_OK;
    if (t->add_dummy_prefix && sb_add(out, ws, ws_len, e) != DIT_OK) return DIT_E_OOM;
    int prev_space = t->remove_extra_ws;
    while (n > 0) {
        if ((rc = norm_prefix(t, s, n, &rep, &rep_len, &used, e)) != DIT_OK) return rc;
        while (prev_space && rep_len > 0 && rep[0] == ' ') rep++, rep_len--;
        if (rep_len > 0) {
            for (size_t i = 0; i < rep_len; i++)
                if (sb_add(out, rep[i] == ' ' ? ws : rep + i, rep[i] == ' ' ? ws_len : 1, e) != DIT_OK) return DIT_E_OOM;
            prev_space = rep[rep_len - 1] == ' ';
        }
        s += used, n -= used;
        if (!t->remove_extra_ws) prev_space = 0;
    }
    while (t->remove_extra_ws && out->n >= ws_len && !memcmp(out->s + out->n - ws_len, ws, ws_len)) out->n -= ws_len;
    return DIT_OK;
}

/* ---- Viterbi ----------------------------------------------------------------------------- */

static size_t one_char_len(unsigned char c) /* sentencepiece string_util::OneCharLen */
{
    static const unsigned char len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len[c >> 4];
}

/* unigram Model::EncodeOptimized on normalized s[0..n), then PopulateSentencePieceText: runs of
 * unknown pieces merge into one (or, with byte fallback, become one byte piece per byte). */
static dit_status viterbi(const t5_tok *t, const char *s, size_t n, tok_ids *out, dit_err *e)
{
    if (n == 0) return DIT_OK;
    float *score = malloc((n + 1) * sizeof *score);
    long *start = malloc((n + 1) * sizeof *start);
    int32_t *id = malloc((n + 1) * sizeof *id);
    if (!score || !start || !id) {
        free(score), free(start), free(id);
        return err_set(e, DIT_E_OOM, "t5: out of memory (text of %zu bytes)", n);
    }
    for (size_t i = 0; i <= n; i++) score[i] = 0, start[i] = -1, id[i] = -1;
    const float unk_score = t->min_score - 10.0f; /* kUnkPenalty */
    for (size_t at = 0; at < n;) {
        const float till = score[at];
        const size_t mblen = one_char_len((unsigned char)s[at]) < n - at ? one_char_len((unsigned char)s[at]) : n - at;
        int has_single = 0;
        for (size_t len = 1; len <= t->max_len && at + len <= n; len++) {
            const int32_t p = tok_map_get(&t->map, s + at, len);
            if (p < 0 || !in_trie(t->type[p]) || t->type[p] == SP_UNUSED) continue;
            /* The candidate is a double (the user-defined bonus is), compared with the stored float. */
            const double sc = t->type[p] == SP_USER_DEFINED ? (double)((float)len * t->max_score) - 0.1 : (double)t->score[p];
            const double cand = sc + (double)till;
            if (start[at + len] == -1 || cand > (double)score[at + len])
                score[at + len] = (float)cand, start[at + len] = (long)at, id[at + len] = p;
            if (len == mblen) has_single = 1;
        }
        if (!has_single) {
            const float cand = unk_score + till;
            if (start[at + mblen] == -1 || cand > score[at + mblen])
                score[at + mblen] = cand, start[at + mblen] = (long)at, id[at + mblen] = t->unk;
        }
        at += mblen;
    }
    /* Backtrack: pieces come out last first; count, then emit in order. */
    size_t k = 0;
    for (long end = (long)n; end > 0; end = start[end]) k++;
    long *ends = malloc(k * sizeof *ends);
    dit_status rc = ends ? DIT_OK : err_set(e, DIT_E_OOM, "t5: out of memory");
    size_t m = k;
    for (long end = (long)n; ends && end > 0; end = start[end]) ends[--m] = end;
    int prev_unk = 0;
    for (size_t i = 0; rc == DIT_OK && i < k; i++) {
        const long end = ends[i], beg = start[end];
        const int32_t p = id[end];
        const int is_unk = p == t->unk;
        if (is_unk && t->byte_fallback) {
            for (long b = beg; rc == DIT_OK && b < end; b++) rc = tok_ids_push(out, t->byte_id[(unsigned char)s[b]], 1.0, e);
        } else if (!(is_unk && prev_unk)) rc = tok_ids_push(out, p, 1.0, e);
        prev_unk = is_unk;
    }
    free(ends);
    free(score), free(start), free(id);
    return rc;
}

/* ---- public encoders --------------------------------------------------------------------- */

dit_status t5_tok_encode(const t5_tok *t, const char *text, size_t len, tok_ids *out, dit_err *e)
{
    if (len > TOK_MAX_TEXT) return err_set(e, DIT_E_ARG, "text: %zu bytes of text, more than the %u a prompt may have", len, TOK_MAX_TEXT);
    size_t pos = 0;
    uint32_t cp;
    while (pos < len)
        if (!uni_utf8_next(text, len, &pos, &cp))
            return err_set(e, DIT_E_ARG, "text: not valid UTF-8 at byte %zu (0x%02x)", pos,
                           (unsigned)(unsigned char)text[pos]);
    sbuf norm = { 0 };
    dit_status rc = normalize(t, text, len, &norm, e);
    if (rc == DIT_OK) rc = viterbi(t, norm.s, norm.n, out, e);
    free(norm.s);
    return rc;
}

static dit_status encode_word(const void *tok, const char *word, size_t len, tok_ids *out, dit_err *e)
{
    return t5_tok_encode(tok, word, len, out, e);
}

dit_status t5_tok_sd3(const t5_tok *t, const char *text, size_t len, tok_ids *out, dit_err *e)
{
    size_t pos = 0;
    uint32_t cp;
    while (pos < len)
        if (!uni_utf8_next(text, len, &pos, &cp))
            return err_set(e, DIT_E_ARG, "text: not valid UTF-8 at byte %zu (0x%02x)", pos,
                           (unsigned)(unsigned char)text[pos]);
    /* SDTokenizer(pad_with_end=False: pad 0, has_start_token=False, pad_to_max_length=False,
     * max_length=99999999, min_length=77) on text[:226] */
    const tok_sd3_rule rule = { .bos = -1, .eos = t->eos, .pad = 0, .row = 0, .pad_to_row = 0, .min_len = T5_TOK_SD3_MIN };
    return tok_sd3_rows(&rule, text, uni_utf8_prefix(text, len, T5_TOK_SD3_CHARS), encode_word, t, out, e);
}

dit_status t5_tok_flux(const t5_tok *t, const char *text, size_t len, size_t max_len, tok_ids *out, dit_err *e)
{
    if (max_len < 1) return err_set(e, DIT_E_ARG, "t5: max_len 0 leaves no room for EOS");
    tok_ids ids = { 0 };
    dit_status rc = t5_tok_encode(t, text, len, &ids, e);
    const size_t keep = ids.n < max_len - 1 ? ids.n : max_len - 1;
    for (size_t i = 0; rc == DIT_OK && i < keep; i++) rc = tok_ids_push(out, ids.id[i], 1.0, e);
    if (rc == DIT_OK) rc = tok_ids_push(out, t->eos, 1.0, e);
    for (size_t i = keep + 1; rc == DIT_OK && i < max_len; i++) rc = tok_ids_push(out, t->pad, 1.0, e);
    tok_ids_free(&ids);
    return rc;
}

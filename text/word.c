/* text/word.c — see word.h. */
#include "text/word.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "core/safetensors.h"

struct word_tok {
    int n;
    char **words;     /* [n] by id */
    struct entry {
        const char *word; /* = words[id] */
        int32_t id;
    } *sorted;        /* the plain words, sorted (binary search) */
    int n_sorted;
    int32_t unk, bos, eos;
};

static int by_word(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->word, ((const struct entry *)b)->word);
}

void word_tok_close(word_tok *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) free(t->words[i]);
    free(t->words);
    free(t->sorted);
    free(t);
}

static int plain_word(const char *w)
{
    if (!*w) return 0;
    for (; *w; w++)
        if (!((*w >= 'a' && *w <= 'z') || (*w >= '0' && *w <= '9'))) return 0;
    return 1;
}

dit_status word_tok_from_json(word_tok **out, const char *json, const char *what, dit_err *e)
{
    *out = NULL;
    cJSON *j = cJSON_Parse(json);
    const int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
    if (n < 4 || n > WORD_TOK_MAX_VOCAB) {
        cJSON_Delete(j);
        return err_set(e, DIT_E_FORMAT, "%s: text.vocab must be a JSON array of 4..%d words", what, WORD_TOK_MAX_VOCAB);
    }
    word_tok *t = calloc(1, sizeof *t);
    if (t) t->words = calloc((size_t)n, sizeof *t->words), t->sorted = malloc(sizeof *t->sorted * n);
    if (!t || !t->words || !t->sorted) {
        cJSON_Delete(j);
        word_tok_close(t);
        return err_set(e, DIT_E_OOM, "%s: out of memory", what);
    }
    t->n = n, t->unk = t->bos = t->eos = -1;
    dit_status r = DIT_OK;
    for (int i = 0; i < n && !r; i++) {
        const cJSON *w = cJSON_GetArrayItem(j, i);
        const char *s = cJSON_IsString(w) ? w->valuestring : NULL;
        if (!s || strlen(s) > WORD_TOK_MAX_WORD) {
            r = err_set(e, DIT_E_FORMAT, "%s: text.vocab entry %d is not a word of 1..%d bytes", what, i, WORD_TOK_MAX_WORD);
            break;
        }
        if (!(t->words[i] = strdup(s))) r = err_set(e, DIT_E_OOM, "%s: out of memory", what);
        else if (!strcmp(s, "<unk>")) t->unk = i;
        else if (!strcmp(s, "<bos>")) t->bos = i;
        else if (!strcmp(s, "<eos>")) t->eos = i;
        else if (!plain_word(s))
            r = err_set(e, DIT_E_FORMAT, "%s: text.vocab entry %d '%s' is not a lowercase [a-z0-9] word", what, i, s);
        else t->sorted[t->n_sorted++] = (struct entry){ t->words[i], i };
    }
    cJSON_Delete(j);
    if (!r && (t->unk < 0 || t->bos < 0 || t->eos != n - 1))
        r = err_set(e, DIT_E_FORMAT, "%s: text.vocab needs <unk>, <bos> and <eos> as the last (largest) id", what);
    if (!r) {
        qsort(t->sorted, (size_t)t->n_sorted, sizeof *t->sorted, by_word);
        for (int i = 1; i < t->n_sorted && !r; i++)
            if (!strcmp(t->sorted[i].word, t->sorted[i - 1].word))
                r = err_set(e, DIT_E_FORMAT, "%s: text.vocab has '%s' twice", what, t->sorted[i].word);
    }
    if (r) {
        word_tok_close(t);
        return r;
    }
    *out = t;
    return DIT_OK;
}

dit_status word_tok_open(word_tok **out, const char *path, dit_err *e)
{
    *out = NULL;
    st_set *set = NULL;
    dit_status r = st_set_open(&set, path, e);
    if (r) return r;
    const char *v = st_set_meta_get(set, "text.vocab");
    r = v ? word_tok_from_json(out, v, path, e) : err_set(e, DIT_E_FORMAT, "%s: no text.vocab in the metadata", path);
    st_set_close(set);
    return r;
}

int word_tok_size(const word_tok *t)
{
    return t->n;
}

int32_t word_tok_id(const word_tok *t, const char *word)
{
    int lo = 0, hi = t->n_sorted - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2, c = strcmp(word, t->sorted[mid].word);
        if (!c) return t->sorted[mid].id;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

const char *word_tok_word(const word_tok *t, int32_t id)
{
    return id >= 0 && id < t->n ? t->words[id] : NULL;
}

dit_status word_tok_encode(const word_tok *t, const char *text, int32_t *ids, int n, int *unknown, char *first_unknown,
                           int cap, dit_err *e)
{
    if (n < 2) return err_set(e, DIT_E_ARG, "word_tok: rows need 2 or more ids, not %d", n);
    int k = 0, unk = 0;
    ids[k++] = t->bos;
    if (first_unknown && cap > 0) first_unknown[0] = 0;
    const char *p = text ? text : "";
    for (;;) {
        char w[WORD_TOK_MAX_WORD + 1];
        int len = 0, cut = 0;
        while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) p++;
        if (!*p) break;
        for (; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'); p++) {
            if (len < WORD_TOK_MAX_WORD) w[len++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            else cut = 1;
        }
        w[len] = 0;
        int32_t id = cut ? -1 : word_tok_id(t, w);
        if (id < 0) {
            if (!unk && first_unknown && cap > 0) snprintf(first_unknown, (size_t)cap, "%s", w);
            unk++, id = t->unk;
        }
        if (k < n - 1) ids[k++] = id;
    }
    while (k < n) ids[k++] = t->eos;
    if (unknown) *unknown = unk;
    return DIT_OK;
}

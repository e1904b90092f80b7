/* tools/caption.c — the caption grammar (tools/SCENE.md, "captions"): captions written from a
 * scene, always true of it; the parser that reads them, and user prompts, back into mentions and
 * relations; the vocabulary.
 *
 * A caption is an optional intro and parts joined by ",", "and" or ", and". A part is a noun
 * phrase (a mention), "NP [is] REL NP", "NP [is] REL it" (it = the subject of the part before)
 * or "NP with NP REL it" (it = this part's subject). A noun phrase is a determiner (a, an, one,
 * two, three, four, the), any of size, fill and colour once each, and a shape; "the" refers back
 * to the one earlier single mention that says every attribute it says, else it starts a new one.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tools/scene.h"

enum { A_SHAPE = 1, A_COLOUR = 2, A_SIZE = 4, A_FILL = 8, A_ALL = 15 };

static const char *const SHAPE_PLURAL[SHAPE_COUNT] = { "circles", "squares", "triangles", "stars", "rings", "crosses" };
static const char *const NUMBER_WORD[SCENE_MAX_OBJECTS + 1] = { NULL, "one", "two", "three", "four" };

static const char *const VOCAB[] = {
    "a", "an", "the", "one", "two", "three", "four",
    "small", "large", "solid", "striped", "dotted", "outlined",
    "red", "green", "blue", "yellow", "orange", "purple", "white", "black",
    "circle", "square", "triangle", "star", "ring", "cross",
    "circles", "squares", "triangles", "stars", "rings", "crosses",
    "there", "is", "are", "picture", "image", "of", "with", "and", ",",
    "to", "on", "left", "right", "above", "below", "in", "front", "behind", "it",
};

int scene_vocab(const char *const **words)
{
    *words = VOCAB;
    return (int)(sizeof VOCAB / sizeof VOCAB[0]);
}

/* The ways each relation is said. */
static const char *const REL_PHRASES[REL_COUNT][3] = {
    { "to the left of", "left of", "on the left of" },
    { "to the right of", "right of", "on the right of" },
    { "above", NULL, NULL },
    { "below", NULL, NULL },
    { "in front of", NULL, NULL },
    { "behind", NULL, NULL },
};

static scene_rel inverse(scene_rel r)
{
    static const scene_rel INV[REL_COUNT] = { REL_RIGHT, REL_LEFT, REL_BELOW, REL_ABOVE, REL_BEHIND, REL_FRONT };
    return INV[r];
}

int scene_prompt_equal(const scene_prompt *a, const scene_prompt *b)
{
    if (a->n_mentions != b->n_mentions || a->n_relations != b->n_relations) return 0;
    for (int i = 0; i < a->n_mentions; i++) {
        const scene_mention *x = &a->m[i], *y = &b->m[i];
        if (x->count != y->count || x->shape != y->shape || x->colour != y->colour || x->size != y->size ||
            x->fill != y->fill)
            return 0;
    }
    for (int i = 0; i < a->n_relations; i++)
        if (a->r[i].a != b->r[i].a || a->r[i].b != b->r[i].b || a->r[i].rel != b->r[i].rel) return 0;
    return 1;
}

/* ---- writing captions ------------------------------------------------------------------------ */

typedef struct {
    const scene *s;
    scene_metrics m;
    scene_rng *r;
    int heldout;
    char text[SCENE_CAPTION_MAX];
    size_t len;
    int overflow;
    scene_prompt p;
    int object_of[SCENE_MAX_OBJECTS]; /* mention index -> object index (single mentions) */
} writer;

static void put(writer *w, const char *word)
{
    const size_t n = strlen(word);
    const int space = w->len > 0 && strcmp(word, ",") != 0;
    if (w->len + (size_t)space + n + 1 > sizeof w->text) {
        w->overflow = 1;
        return;
    }
    if (space) w->text[w->len++] = ' ';
    memcpy(w->text + w->len, word, n + 1);
    w->len += n;
}

static void put_words(writer *w, const char *words)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", words);
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) put(w, t);
}

static int chance(writer *w, double p)
{
    return scene_rng_unit(w->r) < p;
}

static scene_mention describe(const scene_object *o, unsigned mask, int count)
{
    scene_mention m = { count, -1, -1, -1, -1 };
    if (mask & A_SHAPE) m.shape = (int)o->shape;
    if (mask & A_COLOUR) m.colour = (int)o->colour;
    if (mask & A_SIZE) m.size = (int)o->size;
    if (mask & A_FILL) m.fill = (int)o->fill;
    return m;
}

static int same_description(const scene_mention *a, const scene_mention *b)
{
    return a->shape == b->shape && a->colour == b->colour && a->size == b->size && a->fill == b->fill;
}

static int n_matching(const scene *s, const scene_mention *m)
{
    int n = 0;
    for (int i = 0; i < s->n; i++) n += scene_mention_matches(m, &s->obj[i]);
    return n;
}

/* Which attributes a new description says: the shape always; held-out captions always name the
 * (shape, colour, fill) triple. */
static unsigned random_mask(writer *w)
{
    unsigned mask = A_SHAPE;
    if (w->heldout) mask |= A_COLOUR | A_FILL;
    if (chance(w, 0.85)) mask |= A_COLOUR;
    if (chance(w, 0.5)) mask |= A_FILL;
    if (chance(w, 0.4)) mask |= A_SIZE;
    return mask;
}

/* One more attribute for a description that does not single out its objects. */
static unsigned widen(unsigned mask)
{
    static const unsigned ORDER[] = { A_COLOUR, A_FILL, A_SIZE };
    for (int i = 0; i < 3; i++)
        if (!(mask & ORDER[i])) return mask | ORDER[i];
    return mask;
}

/* A description of object i that no other object of the scene fits; 0 when it has a twin. */
static int unique_mention(writer *w, int i, scene_mention *out)
{
    for (unsigned mask = random_mask(w);; mask = widen(mask)) {
        *out = describe(&w->s->obj[i], mask, 1);
        if (n_matching(w->s, out) == 1) return 1;
        if (mask == A_ALL) return 0;
    }
}

static void put_np(writer *w, const scene_mention *m, int definite, int say_one)
{
    const char *adj[3];
    int na = 0;
    if (m->size >= 0) adj[na++] = SCENE_SIZE_NAME[m->size];
    if (m->fill >= 0) adj[na++] = SCENE_FILL_NAME[m->fill];
    if (m->colour >= 0) adj[na++] = SCENE_COLOUR_NAME[m->colour];
    const char *noun = m->count > 1 ? SHAPE_PLURAL[m->shape] : SCENE_SHAPE_NAME[m->shape];
    const char *next = na ? adj[0] : noun;
    if (definite) put(w, "the");
    else if (m->count > 1 || say_one) put(w, NUMBER_WORD[m->count]);
    else put(w, strchr("aeiou", next[0]) ? "an" : "a");
    for (int i = 0; i < na; i++) put(w, adj[i]);
    put(w, noun);
}

static int add_mention(writer *w, const scene_mention *m, int obj)
{
    const int k = w->p.n_mentions++;
    w->p.m[k] = *m;
    w->object_of[k] = obj;
    return k;
}

static void add_relation(writer *w, int a, scene_rel rel, int b)
{
    if (w->p.n_relations < SCENE_MAX_RELATIONS) w->p.r[w->p.n_relations++] = (scene_relation){ a, b, rel };
    else w->overflow = 1;
}

static void put_rel(writer *w, scene_rel rel)
{
    int n = 0;
    while (n < 3 && REL_PHRASES[rel][n]) n++;
    put_words(w, REL_PHRASES[rel][scene_rng_int(w->r, n)]);
}

/* Exact mentions for the objects in *set: each says how many objects it stands for, and the
 * scene holds exactly that many with its attributes (so mentions never share an object).
 * Objects identical in every attribute to a listed one join *set. Returns the mention count. */
static int list_mentions(writer *w, unsigned *set, scene_mention *out, int *first_obj)
{
    const scene *s = w->s;
    unsigned mask[SCENE_MAX_OBJECTS];
    int order[SCENE_MAX_OBJECTS];
    for (int i = 0; i < s->n; i++) {
        mask[i] = random_mask(w);
        order[i] = i;
    }
    for (int i = s->n - 1; i > 0; i--) {
        const int j = scene_rng_int(w->r, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (;;) {
        int nm = 0;
        unsigned members[SCENE_MAX_OBJECTS] = { 0 };
        for (int k = 0; k < s->n; k++) {
            const int i = order[k];
            if (!(*set >> i & 1)) continue;
            const scene_mention d = describe(&s->obj[i], mask[i], 1);
            int j = 0;
            while (j < nm && !same_description(&out[j], &d)) j++;
            if (j == nm) {
                out[nm] = d;
                first_obj[nm++] = i;
            } else {
                out[j].count++;
            }
            members[j] |= 1u << i;
        }
        int exact = 1;
        for (int j = 0; j < nm; j++) {
            if (n_matching(s, &out[j]) == out[j].count) continue;
            exact = 0;
            for (int i = 0; i < s->n; i++) {
                if (!(members[j] >> i & 1)) continue;
                if (mask[i] != A_ALL) {
                    mask[i] = widen(mask[i]);
                    continue;
                }
                for (int t = 0; t < s->n; t++) /* a full description still fits others: list them too */
                    if (scene_mention_matches(&out[j], &s->obj[t]) && !(*set >> t & 1)) {
                        *set |= 1u << t;
                        mask[t] = A_ALL;
                    }
            }
        }
        if (exact) return nm;
    }
}

static void put_intro(writer *w, int plural)
{
    switch (scene_rng_int(w->r, 8)) {
    case 0: case 1: put_words(w, plural ? "there are" : "there is"); break;
    case 2: put_words(w, "a picture of"); break;
    case 3: put_words(w, "an image of"); break;
    case 4: put_words(w, "an image with"); break;
    default: break; /* no intro */
    }
}

/* Mentions of the objects in set, as a list ("a red circle, two blue squares and a star"). */
static void write_list(writer *w, unsigned set, int intro)
{
    scene_mention ms[SCENE_MAX_OBJECTS];
    int first_obj[SCENE_MAX_OBJECTS];
    const int nm = list_mentions(w, &set, ms, first_obj);
    int plural = 0;
    for (int j = 0; j < nm; j++) plural |= ms[j].count > 1;
    if (intro) put_intro(w, ms[0].count > 1);
    const int oxford = chance(w, 0.5);
    for (int j = 0; j < nm; j++) {
        if (j > 0 && j < nm - 1) put(w, ",");
        if (j > 0 && j == nm - 1) {
            if (nm > 2 && oxford) put(w, ",");
            put(w, "and");
        }
        put_np(w, &ms[j], 0, plural && ms[j].count == 1 && chance(w, 0.3));
        add_mention(w, &ms[j], ms[j].count == 1 ? first_obj[j] : -1);
    }
}

/* Is it visible which of objects a and b is in front? Their contour bands (painted whatever the
 * fill) must share at least metrics.min_overlap_px pixel centres half a pixel away from the
 * bands' edges, and the shapes must overlap at least 1.5 outline widths deep (no grazing). */
static int overlap_visible(const scene *s, const scene_metrics *m, int a, int b)
{
    const scene_object *p = &s->obj[a], *q = &s->obj[b];
    const int x0 = (int)fmaxf(0.0f, floorf(fmaxf(p->x0, q->x0))), x1 = (int)fminf((float)s->w - 1, ceilf(fminf(p->x1, q->x1)));
    const int y0 = (int)fmaxf(0.0f, floorf(fmaxf(p->y0, q->y0))), y1 = (int)fminf((float)s->h - 1, ceilf(fminf(p->y1, q->y1)));
    const float lo = 0.5f - m->outline, hi = -0.5f;
    int n = 0;
    float depth = 0.0f;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const float px = (float)x + 0.5f, py = (float)y + 0.5f, dp = scene_sdf(p, px, py), dq = scene_sdf(q, px, py);
            n += dp >= lo && dp <= hi && dq >= lo && dq <= hi;
            depth = fmaxf(depth, fminf(-dp, -dq));
        }
    return (float)n >= m->min_overlap_px && depth >= 1.5f * m->outline;
}

typedef struct {
    int a, b;
    scene_rel rel;
} fact;

/* Every relation that holds with the margin: left/right/above/below from the centres, in front
 * of/behind where the contours share enough pixels. */
static int true_facts(const scene *s, const scene_metrics *m, fact *out)
{
    int n = 0;
    for (int a = 0; a < s->n; a++)
        for (int b = 0; b < s->n; b++) {
            if (a == b) continue;
            const float dx = s->obj[b].cx - s->obj[a].cx, dy = s->obj[b].cy - s->obj[a].cy;
            if (dx >= m->rel_margin) out[n++] = (fact){ a, b, REL_LEFT };
            if (-dx >= m->rel_margin) out[n++] = (fact){ a, b, REL_RIGHT };
            if (dy >= m->rel_margin) out[n++] = (fact){ a, b, REL_ABOVE };
            if (-dy >= m->rel_margin) out[n++] = (fact){ a, b, REL_BELOW };
            if (overlap_visible(s, m, a, b)) out[n++] = (fact){ a, b, a > b ? REL_FRONT : REL_BEHIND };
        }
    return n;
}

/* A fact pick: occlusion facts get half the chances when there are any. */
static const fact *pick_fact(writer *w, const fact *f, int n, int about_obj, int skip_mask)
{
    const fact *pool[SCENE_MAX_OBJECTS * SCENE_MAX_OBJECTS * 3];
    int np = 0, nocc = 0;
    for (int i = 0; i < n; i++) {
        if (about_obj >= 0 && (f[i].b != about_obj || (skip_mask >> f[i].a & 1))) continue;
        pool[np++] = &f[i];
        nocc += f[i].rel >= REL_FRONT;
    }
    if (!np) return NULL;
    if (nocc && nocc < np && chance(w, 0.5)) { /* pick among the occlusion facts */
        int k = scene_rng_int(w->r, nocc);
        for (int i = 0; i < np; i++)
            if (pool[i]->rel >= REL_FRONT && k-- == 0) return pool[i];
    }
    return pool[scene_rng_int(w->r, np)];
}

/* A re-mention "the X'" of single mention x: the fewest of x's attributes (the shape always)
 * that no other single mention so far also says. */
static scene_mention short_form(const writer *w, int x)
{
    const scene_mention *full = &w->p.m[x];
    scene_mention best = *full;
    int best_n = 4;
    for (unsigned extra = 0; extra < 8; extra++) { /* bits: colour, fill, size */
        const scene_mention m = { 1, full->shape, extra & 1 ? full->colour : -1, extra & 4 ? full->size : -1,
                                  extra & 2 ? full->fill : -1 };
        const int n = (m.colour >= 0) + (m.fill >= 0) + (m.size >= 0);
        if ((extra & 1 && full->colour < 0) || (extra & 2 && full->fill < 0) || (extra & 4 && full->size < 0) ||
            n >= best_n)
            continue;
        int others = 0;
        for (int j = 0; j < w->p.n_mentions; j++) {
            const scene_mention *o = &w->p.m[j];
            if (j == x || o->count != 1) continue;
            others += o->shape == m.shape && (m.colour < 0 || m.colour == o->colour) &&
                      (m.size < 0 || m.size == o->size) && (m.fill < 0 || m.fill == o->fill);
        }
        if (!others) best = m, best_n = n;
    }
    return best;
}

/* A caption built around fact f, in one of seven templates, maybe followed by more parts about
 * the objects not yet mentioned. Returns 0 when an object of f has a twin (no unique mention). */
static int write_relation(writer *w, const fact *f, const fact *facts, int nfacts)
{
    scene_mention ma, mb;
    if (!unique_mention(w, f->a, &ma) || !unique_mention(w, f->b, &mb)) return 0;
    const scene_rel inv = inverse(f->rel);
    int x, y;
    switch (scene_rng_int(w->r, 7)) {
    case 0:
    case 1: { /* [intro] X [is] REL Y */
        const int intro = chance(w, 0.4);
        if (intro) put_intro(w, 0);
        put_np(w, &ma, 0, 0);
        x = add_mention(w, &ma, f->a);
        if (!intro && chance(w, 0.5)) put(w, "is");
        put_rel(w, f->rel);
        put_np(w, &mb, 0, 0);
        y = add_mention(w, &mb, f->b);
        add_relation(w, x, f->rel, y);
        break;
    }
    case 2: /* there is X, and Y REL' it */
        put_words(w, "there is");
        put_np(w, &ma, 0, 0);
        x = add_mention(w, &ma, f->a);
        put_words(w, chance(w, 0.5) ? ", and" : "and");
        put_np(w, &mb, 0, 0);
        y = add_mention(w, &mb, f->b);
        put_rel(w, inv);
        put(w, "it");
        add_relation(w, y, inv, x);
        break;
    case 3: /* [intro] X with Y REL' it */
        if (chance(w, 0.4)) put_intro(w, 0);
        put_np(w, &ma, 0, 0);
        x = add_mention(w, &ma, f->a);
        put(w, "with");
        put_np(w, &mb, 0, 0);
        y = add_mention(w, &mb, f->b);
        put_rel(w, inv);
        put(w, "it");
        add_relation(w, y, inv, x);
        break;
    case 4: /* the X is REL the Y */
        put_np(w, &ma, 1, 0);
        x = add_mention(w, &ma, f->a);
        put(w, "is");
        put_rel(w, f->rel);
        put_np(w, &mb, 1, 0);
        y = add_mention(w, &mb, f->b);
        add_relation(w, x, f->rel, y);
        break;
    case 5: { /* X and Y, and the X' is REL the Y' */
        put_np(w, &ma, 0, 0);
        x = add_mention(w, &ma, f->a);
        put(w, "and");
        put_np(w, &mb, 0, 0);
        y = add_mention(w, &mb, f->b);
        put_words(w, chance(w, 0.5) ? ", and" : ",");
        const scene_mention sx = short_form(w, x), sy = short_form(w, y);
        put_np(w, &sx, 1, 0);
        put(w, "is");
        put_rel(w, f->rel);
        put_np(w, &sy, 1, 0);
        add_relation(w, x, f->rel, y);
        break;
    }
    default: /* Y is REL' X, said from the other side */
        put_np(w, &mb, 0, 0);
        y = add_mention(w, &mb, f->b);
        put(w, "is");
        put_rel(w, inv);
        put_np(w, &ma, 0, 0);
        x = add_mention(w, &ma, f->a);
        add_relation(w, y, inv, x);
        break;
    }
    /* more parts: ", and Z REL the X'" about a mentioned object, or ", and" the rest as a list */
    unsigned said = (1u << f->a) | (1u << f->b);
    const unsigned all = (1u << w->s->n) - 1;
    while (said != all && chance(w, 0.5)) {
        put_words(w, ", and");
        const fact *g = NULL;
        scene_mention mz;
        if (chance(w, 0.5)) {
            const int k = scene_rng_int(w->r, w->p.n_mentions); /* the mention to relate to */
            if (w->object_of[k] >= 0) g = pick_fact(w, facts, nfacts, w->object_of[k], (int)said);
            if (g && !unique_mention(w, g->a, &mz)) g = NULL;
            if (g) {
                put_np(w, &mz, 0, 0);
                const int z = add_mention(w, &mz, g->a);
                put_rel(w, g->rel);
                const scene_mention sk = short_form(w, k);
                put_np(w, &sk, 1, 0);
                add_relation(w, z, g->rel, k);
                said |= 1u << g->a;
            }
        }
        if (!g) {
            write_list(w, all & ~said, 0);
            said = all;
        }
    }
    return 1;
}

void scene_write_captions(scene *s, scene_rng *rng)
{
    writer w;
    const scene_metrics m = scene_metrics_for(s->w, s->h);
    fact facts[SCENE_MAX_OBJECTS * SCENE_MAX_OBJECTS * 3];
    const int nfacts = true_facts(s, &m, facts);
    s->n_captions = 0;
    for (int c = 0; c < SCENE_MAX_CAPTIONS; c++) {
        for (int attempt = 0; attempt < 8; attempt++) {
            memset(&w, 0, sizeof w);
            w.s = s;
            w.m = m;
            w.r = rng;
            w.heldout = s->split == SPLIT_HELDOUT;
            const unsigned all = (1u << s->n) - 1;
            /* caption 0 lists every object; 1 is about a relation when one holds; 2 either */
            const int relation = c == 1 || (c == 2 && chance(&w, 0.5));
            const fact *f = relation && attempt < 4 ? pick_fact(&w, facts, nfacts, -1, 0) : NULL;
            if (!f || !write_relation(&w, f, facts, nfacts)) {
                memset(w.text, 0, sizeof w.text);
                w.len = 0;
                memset(&w.p, 0, sizeof w.p);
                unsigned set = all;
                if (c > 0) /* a random non-empty subset */
                    while (!(set = (unsigned)scene_rng_int(rng, 1 << s->n) & all)) {}
                write_list(&w, set, 1);
            }
            if (!w.overflow) break;
        }
        snprintf(s->caption[c], SCENE_CAPTION_MAX, "%s", w.text);
        s->prompt[c] = w.p;
        s->n_captions++;
    }
}

/* ---- parsing ----------------------------------------------------------------------------------- */

#define MAX_WORDS 96
#define WORD_MAX 24

typedef struct {
    char word[MAX_WORDS][WORD_MAX];
    int n, pos;
    scene_prompt *p;
    int objects; /* sum of the mentions' counts */
    dit_err *e;
} parser;

static int find(const char *const *names, int n, const char *w)
{
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], w)) return i;
    return -1;
}

static const char *peek(const parser *ps, int ahead)
{
    return ps->pos + ahead < ps->n ? ps->word[ps->pos + ahead] : "";
}

static int is(const parser *ps, int ahead, const char *w)
{
    return !strcmp(peek(ps, ahead), w);
}

static const char *last_word(const parser *ps)
{
    return ps->pos > 0 ? ps->word[ps->pos - 1] : "";
}

static dit_status fail(parser *ps, const char *what)
{
    if (ps->pos < ps->n)
        return err_set(ps->e, DIT_E_ARG, "prompt word %d '%s': %s", ps->pos + 1, ps->word[ps->pos], what);
    return err_set(ps->e, DIT_E_ARG, "prompt ends after '%s': %s", last_word(ps), what);
}

/* A full stop with only white space after it ends the prompt. */
static int final_stop(const char *c)
{
    return *c == '.' && !c[1 + strspn(c + 1, " \t\n\r")];
}

static dit_status tokenize(parser *ps, const char *text)
{
    ps->n = 0;
    const char *c = text;
    for (;;) {
        while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') c++;
        if (!*c) break;
        if (ps->n == MAX_WORDS) return err_set(ps->e, DIT_E_ARG, "prompt: more than %d words", MAX_WORDS);
        char *w = ps->word[ps->n];
        if (*c == ',') {
            strcpy(w, ",");
            c++;
        } else if (final_stop(c)) {
            break;
        } else {
            size_t len = 0;
            while (*c && !strchr(" \t\n\r,", *c) && !final_stop(c)) {
                if (!isalpha((unsigned char)*c) || len + 1 >= WORD_MAX) {
                    size_t n = strcspn(c - len, " \t\n\r,");
                    return err_set(ps->e, DIT_E_ARG, "prompt: unknown word '%.*s'", (int)(n > 40 ? 40 : n), c - len);
                }
                w[len++] = (char)tolower((unsigned char)*c++);
            }
            w[len] = 0;
        }
        const char *const *vocab;
        const int nv = scene_vocab(&vocab);
        if (find(vocab, nv, w) < 0) return err_set(ps->e, DIT_E_ARG, "prompt: unknown word '%s'", w);
        ps->n++;
    }
    if (!ps->n) return err_set(ps->e, DIT_E_ARG, "prompt: empty");
    return DIT_OK;
}

typedef struct {
    scene_mention m;
    int definite;
} noun_phrase;

static dit_status parse_np(parser *ps, noun_phrase *np)
{
    np->m = (scene_mention){ 1, -1, -1, -1, -1 };
    np->definite = 0;
    const char *d = peek(ps, 0);
    const int number = find(NUMBER_WORD, SCENE_MAX_OBJECTS + 1, d);
    if (!strcmp(d, "the")) np->definite = 1;
    else if (number > 0) np->m.count = number;
    else if (strcmp(d, "a") && strcmp(d, "an")) return fail(ps, "expected a, an, the or a number before an object");
    ps->pos++;
    for (;;) {
        const char *w = peek(ps, 0);
        int *slot = NULL, v;
        if ((v = find(SCENE_SIZE_NAME, SIZE_COUNT, w)) >= 0) slot = &np->m.size;
        else if ((v = find(SCENE_FILL_NAME, FILL_COUNT, w)) >= 0) slot = &np->m.fill;
        else if ((v = find(SCENE_COLOUR_NAME, COLOUR_COUNT, w)) >= 0) slot = &np->m.colour;
        if (!slot) break;
        if (*slot >= 0) return fail(ps, "a second word of the same kind (size, fill or colour)");
        *slot = v;
        ps->pos++;
    }
    const char *w = peek(ps, 0);
    int shape = find(SCENE_SHAPE_NAME, SHAPE_COUNT, w), plural = 0;
    if (shape < 0 && (shape = find(SHAPE_PLURAL, SHAPE_COUNT, w)) >= 0) plural = 1;
    if (shape < 0) return fail(ps, "expected a shape (circle, square, triangle, star, ring, cross)");
    if (plural != (np->m.count > 1))
        return fail(ps, plural ? "a plural shape needs two, three or four" : "two, three or four need a plural shape");
    np->m.shape = shape;
    ps->pos++;
    return DIT_OK;
}

/* The mention a noun phrase stands for: "the X" is the one earlier single mention that says
 * every attribute X says (the first, if several do); anything else is a new mention. */
static int resolve(parser *ps, const noun_phrase *np, dit_status *st)
{
    const scene_mention *x = &np->m;
    if (np->definite)
        for (int j = 0; j < ps->p->n_mentions; j++) {
            const scene_mention *o = &ps->p->m[j];
            if (o->count == 1 && o->shape == x->shape && (x->colour < 0 || x->colour == o->colour) &&
                (x->size < 0 || x->size == o->size) && (x->fill < 0 || x->fill == o->fill))
                return j;
        }
    if (ps->objects + x->count > SCENE_MAX_OBJECTS || ps->p->n_mentions == SCENE_MAX_OBJECTS) {
        *st = err_set(ps->e, DIT_E_ARG, "prompt: more than %d objects", SCENE_MAX_OBJECTS);
        return -1;
    }
    ps->objects += x->count;
    ps->p->m[ps->p->n_mentions] = *x;
    return ps->p->n_mentions++;
}

static int rel_starts(const parser *ps)
{
    static const char *const FIRST[] = { "to", "on", "left", "right", "above", "below", "in", "behind" };
    return find(FIRST, 8, peek(ps, 0)) >= 0;
}

static dit_status parse_rel(parser *ps, scene_rel *rel)
{
    const char *w = peek(ps, 0);
    if (!strcmp(w, "above")) *rel = REL_ABOVE;
    else if (!strcmp(w, "below")) *rel = REL_BELOW;
    else if (!strcmp(w, "behind")) *rel = REL_BEHIND;
    else if (!strcmp(w, "in")) {
        ps->pos++;
        if (!is(ps, 0, "front")) return fail(ps, "expected 'front' (in front of)");
        ps->pos++;
        if (!is(ps, 0, "of")) return fail(ps, "expected 'of' (in front of)");
        *rel = REL_FRONT;
    } else {
        if (!strcmp(w, "to") || !strcmp(w, "on")) {
            ps->pos++;
            if (!is(ps, 0, "the")) return fail(ps, "expected 'the' (to the left of)");
            ps->pos++;
        }
        if (is(ps, 0, "left")) *rel = REL_LEFT;
        else if (is(ps, 0, "right")) *rel = REL_RIGHT;
        else return fail(ps, "expected left or right");
        ps->pos++;
        if (!is(ps, 0, "of")) return fail(ps, "expected 'of' (left of, right of)");
    }
    ps->pos++;
    return DIT_OK;
}

static dit_status relate(parser *ps, int a, scene_rel rel, int b)
{
    if (ps->p->m[a].count != 1 || ps->p->m[b].count != 1)
        return err_set(ps->e, DIT_E_ARG, "prompt: relations need single objects (near '%s')", last_word(ps));
    if (a == b) return err_set(ps->e, DIT_E_ARG, "prompt: an object related to itself (near '%s')", last_word(ps));
    if (ps->p->n_relations == SCENE_MAX_RELATIONS)
        return err_set(ps->e, DIT_E_ARG, "prompt: more than %d relations", SCENE_MAX_RELATIONS);
    ps->p->r[ps->p->n_relations++] = (scene_relation){ a, b, rel };
    return DIT_OK;
}

/* One part; *subject is the part before's subject on entry, this part's on return. */
static dit_status parse_part(parser *ps, int *subject)
{
    noun_phrase np1, np2;
    dit_status st = DIT_OK;
    scene_rel rel;
    if ((st = parse_np(ps, &np1))) return st;
    const int s = resolve(ps, &np1, &st);
    if (s < 0) return st;
    if (is(ps, 0, "with")) { /* X with Y REL it */
        ps->pos++;
        if ((st = parse_np(ps, &np2))) return st;
        const int y = resolve(ps, &np2, &st);
        if (y < 0) return st;
        if ((st = parse_rel(ps, &rel))) return st;
        if (!is(ps, 0, "it")) return fail(ps, "expected 'it' (X with Y above it)");
        ps->pos++;
        if ((st = relate(ps, y, rel, s))) return st;
    } else if (is(ps, 0, "is") || rel_starts(ps)) { /* X [is] REL Y | X [is] REL it */
        if (is(ps, 0, "is")) ps->pos++;
        if ((st = parse_rel(ps, &rel))) return st;
        int y;
        if (is(ps, 0, "it")) {
            if (*subject < 0) return fail(ps, "'it' with nothing before it");
            y = *subject;
            ps->pos++;
        } else {
            if ((st = parse_np(ps, &np2))) return st;
            if ((y = resolve(ps, &np2, &st)) < 0) return st;
        }
        if ((st = relate(ps, s, rel, y))) return st;
    }
    *subject = s;
    return DIT_OK;
}

dit_status scene_parse(const char *text, scene_prompt *p, dit_err *e)
{
    parser ps;
    memset(p, 0, sizeof *p);
    ps.p = p;
    ps.e = e;
    ps.pos = ps.objects = 0;
    dit_status st = tokenize(&ps, text);
    if (st) return st;
    if (is(&ps, 0, "there")) {
        ps.pos++;
        if (!is(&ps, 0, "is") && !is(&ps, 0, "are")) return fail(&ps, "expected 'is' or 'are' after 'there'");
        ps.pos++;
    } else if ((is(&ps, 0, "a") || is(&ps, 0, "an")) && (is(&ps, 1, "picture") || is(&ps, 1, "image"))) {
        ps.pos += 2;
        if (!is(&ps, 0, "of") && !is(&ps, 0, "with")) return fail(&ps, "expected 'of' or 'with'");
        ps.pos++;
    }
    int subject = -1;
    for (;;) {
        if ((st = parse_part(&ps, &subject))) return st;
        if (ps.pos == ps.n) break;
        int sep = 0;
        if (is(&ps, 0, ",")) ps.pos++, sep = 1;
        if (is(&ps, 0, "and")) ps.pos++, sep = 1;
        if (!sep) return fail(&ps, "expected ',' or 'and' between parts");
    }
    return DIT_OK;
}

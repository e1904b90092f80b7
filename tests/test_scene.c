/* tests/test_scene.c — tools/scene.c, tools/caption.c, tools/checker.c: scenes are deterministic
 * and keep the held-out split; captions parse back to what they mean and are true of the scene
 * (checked here against the ground truth, with the test's own rules); hand-written prompts parse
 * as the grammar says; the checker reads rendered scenes back (>= 99% of objects fully right at
 * 128x128 and 256x256, shape, colour and size at 64x64) and judges wrong captions wrong.
 * ONLY=name runs one test. */
#include <time.h>

#include "tests/test.h"
#include "tools/checker.h"
#include "tools/scene.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double rgb_dist(const unsigned char *a, const unsigned char *b)
{
    const double dr = a[0] - b[0], dg = a[1] - b[1], db = a[2] - b[2];
    return sqrt(dr * dr + dg * dg + db * db);
}

static scene_opts opts(int size, scene_split split, int aa)
{
    scene_opts o = scene_opts_default();
    o.w = o.h = size;
    o.split = split;
    o.antialias = aa;
    return o;
}

/* The palette promises of scene.h: object colours apart, background tones (and blends of two)
 * away from every object colour. */
static void t_palette(tctx *t)
{
    double obj = 1e9, bg = 1e9, blend = 1e9;
    for (int a = 0; a < COLOUR_COUNT; a++)
        for (int b = a + 1; b < COLOUR_COUNT; b++) obj = fmin(obj, rgb_dist(SCENE_PALETTE[a], SCENE_PALETTE[b]));
    for (int a = 0; a < SCENE_N_BACKGROUNDS; a++)
        for (int c = 0; c < COLOUR_COUNT; c++) bg = fmin(bg, rgb_dist(SCENE_BACKGROUND[a], SCENE_PALETTE[c]));
    for (int a = 0; a < SCENE_N_BACKGROUNDS; a++)
        for (int b = a + 1; b < SCENE_N_BACKGROUNDS; b++)
            for (int k = 0; k <= 20; k++) {
                unsigned char m[3];
                for (int i = 0; i < 3; i++)
                    m[i] = (unsigned char)lrint(SCENE_BACKGROUND[a][i] + (SCENE_BACKGROUND[b][i] - SCENE_BACKGROUND[a][i]) * k / 20.0);
                for (int c = 0; c < COLOUR_COUNT; c++) blend = fmin(blend, rgb_dist(m, SCENE_PALETTE[c]));
            }
    CHECK(t, obj >= 92, "object colours %.1f apart", obj);
    CHECK(t, bg >= 96, "background tones %.1f from an object colour", bg);
    CHECK(t, blend >= 84, "background blends %.1f from an object colour", blend);
}

/* Same seed and options: the same scene and pixels; other seeds or the other split: others. */
static void t_determinism(tctx *t)
{
    dit_err e = { 0 };
    const scene_opts o = opts(128, SPLIT_TRAIN, 1);
    scene a, b, c, d;
    image ia = { 0 }, ib = { 0 }, ic = { 0 };
    CHECK(t, !scene_generate(7, &o, &a, &e) && !scene_generate(7, &o, &b, &e), "%s", e.msg);
    CHECK(t, !scene_generate(8, &o, &c, &e), "%s", e.msg);
    const scene_opts oh = opts(128, SPLIT_HELDOUT, 1);
    CHECK(t, !scene_generate(7, &oh, &d, &e), "%s", e.msg);
    CHECK(t, !scene_render(&a, &ia, &e) && !scene_render(&b, &ib, &e) && !scene_render(&c, &ic, &e), "%s", e.msg);
    CHECK(t, !memcmp(&a, &b, sizeof a), "seed 7 twice: different scenes");
    CHECK(t, ia.px && ib.px && !memcmp(ia.px, ib.px, 128 * 128 * 3), "seed 7 twice: different pixels");
    CHECK(t, ic.px && memcmp(ia.px, ic.px, 128 * 128 * 3), "seeds 7 and 8 drew the same picture");
    CHECK(t, memcmp(a.obj, d.obj, sizeof a.obj) || a.n != d.n, "train and heldout seed 7 are the same scene");
    img_free(&ia), img_free(&ib), img_free(&ic);
    scene_opts bad = opts(32, SPLIT_TRAIN, 1);
    CHECK(t, scene_generate(1, &bad, &a, &e) == DIT_E_ARG && strstr(e.msg, "32x32"), "32x32 accepted: %s", e.msg);
    bad = opts(128, SPLIT_TRAIN, 1);
    bad.max_objects = 5;
    CHECK(t, scene_generate(1, &bad, &a, &e) == DIT_E_ARG, "5 objects accepted");
}

/* The held-out rule: a minority of triples; every pair of attributes still seen in training;
 * train scenes never hold a held-out triple, held-out scenes only those, and their captions name
 * shape, colour and fill of every object they mention. */
static void t_heldout(tctx *t)
{
    int n = 0, pair_sc[SHAPE_COUNT][COLOUR_COUNT] = { { 0 } }, pair_sf[SHAPE_COUNT][FILL_COUNT] = { { 0 } },
        pair_cf[COLOUR_COUNT][FILL_COUNT] = { { 0 } }, held_s[SHAPE_COUNT] = { 0 }, held_c[COLOUR_COUNT] = { 0 },
        held_f[FILL_COUNT] = { 0 };
    for (int s = 0; s < SHAPE_COUNT; s++)
        for (int c = 0; c < COLOUR_COUNT; c++)
            for (int f = 0; f < FILL_COUNT; f++) {
                if (scene_is_heldout((scene_shape)s, (scene_colour)c, (scene_fill)f)) {
                    n++, held_s[s]++, held_c[c]++, held_f[f]++;
                    continue;
                }
                pair_sc[s][c]++, pair_sf[s][f]++, pair_cf[c][f]++;
            }
    CHECK(t, n >= 15 && n <= 30, "%d held-out triples of 192", n);
    int missing = 0;
    for (int s = 0; s < SHAPE_COUNT; s++) {
        for (int c = 0; c < COLOUR_COUNT; c++) missing += !pair_sc[s][c];
        for (int f = 0; f < FILL_COUNT; f++) missing += !pair_sf[s][f];
        missing += !held_s[s];
    }
    for (int c = 0; c < COLOUR_COUNT; c++) {
        for (int f = 0; f < FILL_COUNT; f++) missing += !pair_cf[c][f];
        missing += !held_c[c];
    }
    for (int f = 0; f < FILL_COUNT; f++) missing += !held_f[f];
    CHECK(t, missing == 0, "%d attribute pairs never in training or values never held out", missing);

    dit_err e = { 0 };
    int bad_train = 0, bad_held = 0, bad_caption = 0;
    for (int i = 0; i < 400; i++) {
        const scene_split split = i & 1 ? SPLIT_HELDOUT : SPLIT_TRAIN;
        const scene_opts o = opts(128, split, 1);
        scene s;
        if (scene_generate(test_seed(5000) + (uint64_t)i, &o, &s, &e)) {
            CHECK(t, 0, "%s", e.msg);
            return;
        }
        for (int k = 0; k < s.n; k++) {
            const int h = scene_is_heldout(s.obj[k].shape, s.obj[k].colour, s.obj[k].fill);
            bad_train += split == SPLIT_TRAIN && h;
            bad_held += split == SPLIT_HELDOUT && !h;
        }
        for (int c = 0; c < s.n_captions && split == SPLIT_HELDOUT; c++)
            for (int m = 0; m < s.prompt[c].n_mentions; m++) {
                const scene_mention *x = &s.prompt[c].m[m];
                bad_caption += x->shape < 0 || x->colour < 0 || x->fill < 0;
            }
    }
    CHECK(t, !bad_train && !bad_held, "held-out triples in train scenes: %d; others in held-out scenes: %d", bad_train,
          bad_held);
    CHECK(t, !bad_caption, "%d held-out mentions without the full triple", bad_caption);
}

/* ---- captions: true of the scene (the test's own reading of the rules) ------------------------- */

static int fits(const scene_mention *m, const scene_object *o)
{
    return (m->shape < 0 || m->shape == (int)o->shape) && (m->colour < 0 || m->colour == (int)o->colour) &&
           (m->size < 0 || m->size == (int)o->size) && (m->fill < 0 || m->fill == (int)o->fill);
}

/* Pixels where both silhouettes are, sampled at pixel centres. */
static int shared_pixels(const scene *s, const scene_object *a, const scene_object *b)
{
    int n = 0;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            n += scene_sdf(a, x + 0.5f, y + 0.5f) <= 0 && scene_sdf(b, x + 0.5f, y + 0.5f) <= 0;
    return n;
}

/* NULL when prompt p is true of scene s, else what is wrong. */
static const char *untrue(const scene *s, const scene_prompt *p)
{
    const scene_metrics m = scene_metrics_for(s->w, s->h);
    int total = 0, obj_of[SCENE_MAX_OBJECTS];
    for (int i = 0; i < p->n_mentions; i++) {
        int n = 0;
        obj_of[i] = -1;
        for (int k = 0; k < s->n; k++)
            if (fits(&p->m[i], &s->obj[k])) n++, obj_of[i] = k;
        if (n != p->m[i].count) return "a mention's count is not the number of objects that fit it";
        total += n;
    }
    if (total > s->n) return "mentions share objects";
    for (int i = 0; i < p->n_relations; i++) {
        const scene_relation *r = &p->r[i];
        if (p->m[r->a].count != 1 || p->m[r->b].count != 1) return "a relation between plural mentions";
        const scene_object *a = &s->obj[obj_of[r->a]], *b = &s->obj[obj_of[r->b]];
        const float dx = b->cx - a->cx, dy = b->cy - a->cy;
        switch (r->rel) {
        case REL_LEFT: if (dx < m.rel_margin) return "left of is not true with the margin"; break;
        case REL_RIGHT: if (-dx < m.rel_margin) return "right of is not true with the margin"; break;
        case REL_ABOVE: if (dy < m.rel_margin) return "above is not true with the margin"; break;
        case REL_BELOW: if (-dy < m.rel_margin) return "below is not true with the margin"; break;
        case REL_FRONT:
        case REL_BEHIND: {
            /* painter's order: a later object is drawn over an earlier one */
            const int a_later = obj_of[r->a] > obj_of[r->b];
            if ((r->rel == REL_FRONT) != a_later) return "in front of / behind contradicts the drawing order";
            if (shared_pixels(s, a, b) < 10) return "in front of / behind for objects that barely overlap";
            break;
        }
        default: return "unknown relation";
        }
    }
    return NULL;
}

/* Every caption parses back to its meaning and is true; every caption word is in the vocabulary
 * and every vocabulary word is used; every template and phrase occurs. */
static void t_captions(tctx *t)
{
    const char *const *vocab;
    const int nv = scene_vocab(&vocab);
    int used[128] = { 0 }, n_caps = 0, parse_fail = 0, false_caps = 0, outside_vocab = 0;
    static const char *const PHRASES[] = {
        "there is ", "there are ", "a picture of ", "an image of ", "an image with ", " with ", " it", "the ",
        " is ", "to the left of", " left of", "on the left of", "to the right of", " right of", "on the right of",
        "above", "below", "in front of", "behind", "one ", "two ", "three ", "four ", ", and ", "an orange", "an outlined",
    };
    const int np = (int)(sizeof PHRASES / sizeof PHRASES[0]);
    int seen_phrase[32] = { 0 };
    dit_err e = { 0 };
    for (int i = 0; i < 1500; i++) {
        const scene_opts o = opts(128, i % 3 == 2 ? SPLIT_HELDOUT : SPLIT_TRAIN, 1);
        scene s;
        if (scene_generate(test_seed(20000) + (uint64_t)i, &o, &s, &e)) {
            CHECK(t, 0, "%s", e.msg);
            return;
        }
        for (int c = 0; c < s.n_captions; c++) {
            const char *cap = s.caption[c];
            n_caps++;
            scene_prompt p;
            if (scene_parse(cap, &p, &e) || !scene_prompt_equal(&p, &s.prompt[c])) {
                if (parse_fail++ < 3) fprintf(stderr, "  parse: '%s': %s\n", cap, e.msg);
            }
            const char *why = untrue(&s, &s.prompt[c]);
            if (why && false_caps++ < 3) fprintf(stderr, "  untrue (seed %llu): '%s': %s\n", (unsigned long long)s.seed, cap, why);
            for (int k = 0; k < np; k++) seen_phrase[k] |= strstr(cap, PHRASES[k]) != NULL;
            char buf[SCENE_CAPTION_MAX];
            snprintf(buf, sizeof buf, "%s", cap);
            for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) {
                const size_t len = strlen(w);
                const int comma = len > 1 && w[len - 1] == ',';
                if (comma) w[len - 1] = 0;
                int k = 0;
                while (k < nv && strcmp(vocab[k], w)) k++;
                if (k == nv) outside_vocab++;
                else used[k] = 1;
                if (comma) {
                    k = 0;
                    while (k < nv && strcmp(vocab[k], ",")) k++;
                    if (k < nv) used[k] = 1;
                }
            }
        }
    }
    CHECK(t, !parse_fail, "%d of %d captions do not parse back to their meaning", parse_fail, n_caps);
    CHECK(t, !false_caps, "%d of %d captions are not true of their scene", false_caps, n_caps);
    CHECK(t, !outside_vocab, "%d caption words outside the vocabulary", outside_vocab);
    int unused = 0;
    for (int k = 0; k < nv; k++)
        if (!used[k]) unused++, fprintf(stderr, "  vocabulary word never used: '%s'\n", vocab[k]);
    CHECK(t, !unused && nv <= 128, "%d of %d vocabulary words never used", unused, nv);
    for (int k = 0; k < np; k++) CHECK(t, seen_phrase[k], "no caption has '%s'", PHRASES[k]);
    printf("  %d captions, vocabulary of %d words\n", n_caps, nv);
}

/* ---- hand-written prompts ---------------------------------------------------------------------- */

static scene_mention M(int count, int shape, int colour, int size, int fill)
{
    return (scene_mention){ count, shape, colour, size, fill };
}

static void expect_parse(tctx *t, const char *text, int nm, const scene_mention *m, int nr, const scene_relation *r)
{
    scene_prompt want = { .n_mentions = nm, .n_relations = nr }, got;
    for (int i = 0; i < nm; i++) want.m[i] = m[i];
    for (int i = 0; i < nr; i++) want.r[i] = r[i];
    dit_err e = { 0 };
    const dit_status st = scene_parse(text, &got, &e);
    CHECK(t, !st && scene_prompt_equal(&got, &want), "'%s': %s (%d mentions, %d relations)", text, st ? e.msg : "other meaning",
          got.n_mentions, got.n_relations);
}

static void expect_error(tctx *t, const char *text, const char *needle)
{
    scene_prompt p;
    dit_err e = { 0 };
    CHECK(t, scene_parse(text, &p, &e) == DIT_E_ARG && strstr(e.msg, needle), "'%s': '%s', wanted '%s'", text, e.msg, needle);
}

static void t_parse_templates(tctx *t)
{
    const int N = -1;
    const scene_mention red_circle = M(1, SHAPE_CIRCLE, COLOUR_RED, N, N), blue_square = M(1, SHAPE_SQUARE, COLOUR_BLUE, N, N);
    const scene_mention both[2] = { red_circle, blue_square };
    expect_parse(t, "a large striped red star", 1, (scene_mention[]){ M(1, SHAPE_STAR, COLOUR_RED, SIZE_LARGE, FILL_STRIPED) }, 0, NULL);
    expect_parse(t, "A Large STRIPED red star.", 1, (scene_mention[]){ M(1, SHAPE_STAR, COLOUR_RED, SIZE_LARGE, FILL_STRIPED) }, 0, NULL);
    expect_parse(t, "an outlined orange ring", 1, (scene_mention[]){ M(1, SHAPE_RING, COLOUR_ORANGE, N, FILL_OUTLINED) }, 0, NULL);
    expect_parse(t, "there are two red circles and a blue square", 2,
                 (scene_mention[]){ M(2, SHAPE_CIRCLE, COLOUR_RED, N, N), blue_square }, 0, NULL);
    expect_parse(t, "a picture of one small cross, three dotted triangles", 2,
                 (scene_mention[]){ M(1, SHAPE_CROSS, N, SIZE_SMALL, N), M(3, SHAPE_TRIANGLE, N, N, FILL_DOTTED) }, 0, NULL);
    expect_parse(t, "an image with four white crosses", 1, (scene_mention[]){ M(4, SHAPE_CROSS, COLOUR_WHITE, N, N) }, 0, NULL);
    expect_parse(t, "a red circle, a blue square, and a star", 3, (scene_mention[]){ red_circle, blue_square, M(1, SHAPE_STAR, N, N, N) }, 0, NULL);
    /* the relation templates */
    const scene_relation left01 = { 0, 1, REL_LEFT };
    expect_parse(t, "a red circle to the left of a blue square", 2, both, 1, &left01);
    expect_parse(t, "a red circle left of a blue square", 2, both, 1, &left01);
    expect_parse(t, "a red circle is on the left of a blue square", 2, both, 1, &left01);
    expect_parse(t, "there is a red circle to the left of a blue square", 2, both, 1, &left01);
    expect_parse(t, "an image of a red circle right of a blue square", 2, both, 1, &(scene_relation){ 0, 1, REL_RIGHT });
    expect_parse(t, "there is a red circle, and a blue square above it", 2, both, 1, &(scene_relation){ 1, 0, REL_ABOVE });
    expect_parse(t, "there is a red circle and a blue square below it", 2, both, 1, &(scene_relation){ 1, 0, REL_BELOW });
    expect_parse(t, "a red circle with a blue square in front of it", 2, both, 1, &(scene_relation){ 1, 0, REL_FRONT });
    expect_parse(t, "the red circle is behind the blue square", 2, both, 1, &(scene_relation){ 0, 1, REL_BEHIND });
    expect_parse(t, "a red circle and a blue square, and the circle is to the right of the square", 2, both, 1,
                 &(scene_relation){ 0, 1, REL_RIGHT });
    expect_parse(t, "a red circle and a blue square, the square is above the red circle", 2, both, 1,
                 &(scene_relation){ 1, 0, REL_ABOVE });
    /* more parts after a relation: a list, and a relation to a mentioned object by "the" */
    expect_parse(t, "a red circle left of a blue square, and two stars", 3, (scene_mention[]){ red_circle, blue_square, M(2, SHAPE_STAR, N, N, N) },
                 1, &left01);
    expect_parse(t, "a red circle left of a blue square, and a green star below the circle", 3,
                 (scene_mention[]){ red_circle, blue_square, M(1, SHAPE_STAR, COLOUR_GREEN, N, N) }, 2,
                 (scene_relation[]){ left01, { 2, 0, REL_BELOW } });
    /* "the" with no earlier mention it fits starts a new one */
    expect_parse(t, "the circle is left of the square", 2, (scene_mention[]){ M(1, SHAPE_CIRCLE, N, N, N), M(1, SHAPE_SQUARE, N, N, N) }, 1,
                 &left01);
    /* errors name the word */
    expect_error(t, "a red blob", "'blob'");
    expect_error(t, "two red circle", "plural");
    expect_error(t, "a red circles", "plural");
    expect_error(t, "a red blue circle", "same kind");
    expect_error(t, "a circle left of it", "'it' with nothing before");
    expect_error(t, "two circles left of a square", "single objects");
    expect_error(t, "a circle and two squares and two stars", "more than 4 objects");
    expect_error(t, "five circles", "'five'");
    expect_error(t, "a circle a square", "',' or 'and'");
    expect_error(t, "a red", "expected a shape");
    expect_error(t, "   ", "empty");
    expect_error(t, "a circle; a square", "unknown word");
}

/* ---- the checker --------------------------------------------------------------------------------- */

static scene_object object(scene_shape shape, scene_colour colour, scene_size size, scene_fill fill, float cx, float cy, int side)
{
    const scene_metrics m = scene_metrics_for(side, side);
    scene_object o = { shape, colour, size, fill, cx, cy, size == SIZE_LARGE ? m.r_large : m.r_small, 0, 0, 0, 0 };
    float b[4];
    scene_shape_box(shape, b);
    o.x0 = cx + o.r * b[0], o.y0 = cy + o.r * b[1], o.x1 = cx + o.r * b[2], o.y1 = cy + o.r * b[3];
    return o;
}

/* A hand-made scene: a solid blue square half under an outlined red circle (drawn later), a
 * small striped yellow star alone, a dotted green ring alone; what the checker must see. */
static void t_known_scene(tctx *t)
{
    scene s = { .w = 128, .h = 128, .antialias = 1, .bg_kind = BG_VERTICAL, .bg = { 0, 3 }, .bg_pos = 0.5f, .n = 4 };
    s.obj[0] = object(SHAPE_SQUARE, COLOUR_BLUE, SIZE_LARGE, FILL_SOLID, 40, 40, 128);
    s.obj[1] = object(SHAPE_CIRCLE, COLOUR_RED, SIZE_SMALL, FILL_OUTLINED, 66, 58, 128);
    s.obj[2] = object(SHAPE_STAR, COLOUR_YELLOW, SIZE_SMALL, FILL_STRIPED, 98, 100, 128);
    s.obj[3] = object(SHAPE_RING, COLOUR_GREEN, SIZE_LARGE, FILL_DOTTED, 35, 95, 128);
    image im = { 0 };
    dit_err e = { 0 };
    CHECK(t, !scene_render(&s, &im, &e), "%s", e.msg);
    checker_result d;
    CHECK(t, !checker_detect(&im, &d, &e), "%s", e.msg);
    CHECK(t, d.n == 4, "%d objects found, wanted 4", d.n);
    int found[4] = { -1, -1, -1, -1 };
    for (int i = 0; i < d.n; i++)
        for (int k = 0; k < 4; k++)
            if (d.obj[i].colour == s.obj[k].colour) found[k] = i;
    for (int k = 0; k < 4; k++) {
        const scene_object *g = &s.obj[k];
        if (found[k] < 0) {
            CHECK(t, 0, "no %s object", SCENE_COLOUR_NAME[g->colour]);
            continue;
        }
        const checker_object *c = &d.obj[found[k]];
        CHECK(t, c->shape == g->shape && c->size == g->size && c->fill == g->fill, "%s: found %s %s %s, wanted %s %s %s",
              SCENE_COLOUR_NAME[g->colour], SCENE_SIZE_NAME[c->size], SCENE_FILL_NAME[c->fill], SCENE_SHAPE_NAME[c->shape],
              SCENE_SIZE_NAME[g->size], SCENE_FILL_NAME[g->fill], SCENE_SHAPE_NAME[g->shape]);
        CHECK(t, fabsf(c->cx - g->cx) <= 1.5f && fabsf(c->cy - g->cy) <= 1.5f && fabsf(c->r - g->r) <= 1.5f,
              "%s: centre (%.1f, %.1f) r %.1f, wanted (%.1f, %.1f) r %.1f", SCENE_COLOUR_NAME[g->colour], c->cx, c->cy, c->r,
              g->cx, g->cy, g->r);
    }
    if (found[0] >= 0 && found[1] >= 0)
        CHECK(t, d.front[found[1]][found[0]] == 1 && d.front[found[0]][found[1]] == -1, "the red circle is not seen in front of the square");
    CHECK(t, found[2] < 0 || found[3] < 0 || d.front[found[2]][found[3]] == 0, "the star and the ring do not overlap");

    /* captions about it: true ones right, each kind of wrong one wrong */
    static const struct {
        const char *prompt;
        int all_correct;
    } CASES[] = {
        { "a large solid blue square and a small outlined red circle", 1 },
        { "an outlined red circle in front of a blue square", 1 },
        { "a blue square behind a red circle", 1 },
        { "a striped yellow star to the right of a green ring, and a blue square above the ring", 1 },
        { "the yellow star is below the red circle", 1 },
        { "a large dotted green ring", 1 },
        { "a green ring is to the left of a yellow star", 1 },
        { "a small outlined purple circle", 0 },  /* colour */
        { "a small outlined red square", 0 },     /* shape */
        { "a large outlined red circle", 0 },     /* size */
        { "a small solid red circle", 0 },        /* fill */
        { "a blue square in front of a red circle", 0 }, /* occlusion */
        { "a green ring to the right of a yellow star", 0 }, /* relation */
        { "a yellow star above a blue square", 0 },
        { "two blue squares", 0 },                /* count */
        { "a yellow star in front of a green ring", 0 }, /* they do not overlap */
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        scene_prompt p;
        checker_score sc;
        if (scene_parse(CASES[i].prompt, &p, &e)) {
            CHECK(t, 0, "'%s': %s", CASES[i].prompt, e.msg);
            continue;
        }
        checker_score_prompt(&d, &p, &sc);
        CHECK(t, sc.all_correct == CASES[i].all_correct, "'%s' judged %s", CASES[i].prompt, sc.all_correct ? "right" : "wrong");
    }
    /* the same from planar floats */
    float *chw = malloc(sizeof(float) * 3 * 128 * 128);
    checker_result d2;
    if (chw) {
        img_to_chw(&im, chw);
        CHECK(t, !checker_detect_chw(chw, 128, 128, &d2, &e) && d2.n == d.n && !memcmp(d2.obj, d.obj, sizeof d.obj),
              "checker_detect_chw differs");
    }
    free(chw);
    img_free(&im);
}

/* The test's own reading of a picture against its ground truth: each object matched to the
 * detection of its colour with the nearest centre; right when shape, size and fill agree and the
 * centre is within 0.15 r + 1.5 pixels. Occlusion: for overlapping objects (50+ shared silhouette
 * pixels) whose order the checker decides, is it right. */
typedef struct {
    int objects, right, shape, size, fill, found, extra;
    int fill_small, fill_small_n;
    int occl, occl_right;
    int cap_objects, cap_objects_right, captions, captions_right;
    double gen_s, check_s;
} tally;

static void read_back(tctx *t, int size, int count, int aa_every, uint64_t seed0, tally *a)
{
    memset(a, 0, sizeof *a);
    dit_err e = { 0 };
    for (int i = 0; i < count; i++) {
        const scene_opts o = opts(size, i & 1 ? SPLIT_HELDOUT : SPLIT_TRAIN, i % aa_every != aa_every - 1);
        scene s;
        image im = { 0 };
        checker_result d;
        const double t0 = now_s();
        if (scene_generate(seed0 + (uint64_t)i, &o, &s, &e) || scene_render(&s, &im, &e)) {
            CHECK(t, 0, "%s", e.msg);
            return;
        }
        const double t1 = now_s();
        if (checker_detect(&im, &d, &e)) {
            CHECK(t, 0, "%s", e.msg);
            img_free(&im);
            return;
        }
        a->gen_s += t1 - t0;
        a->check_s += now_s() - t1;
        img_free(&im);
        int used[CHECKER_MAX_OBJECTS], det[SCENE_MAX_OBJECTS];
        float dist[SCENE_MAX_OBJECTS];
        a->found += checker_match_truth(&d, &s, det, dist, used);
        for (int k = 0; k < s.n; k++) {
            const scene_object *g = &s.obj[k];
            a->objects++;
            if (det[k] < 0) continue;
            const checker_object *c = &d.obj[det[k]];
            a->shape += c->shape == g->shape;
            a->size += c->size == g->size;
            a->fill += c->fill == g->fill;
            if (g->size == SIZE_SMALL) a->fill_small_n++, a->fill_small += c->fill == g->fill;
            a->right += c->shape == g->shape && c->size == g->size && c->fill == g->fill && checker_position_ok(g, dist[k]);
        }
        for (int j = 0; j < d.n; j++) a->extra += !used[j];
        for (int p = 0; p < s.n; p++)
            for (int q = p + 1; q < s.n; q++) {
                if (det[p] < 0 || det[q] < 0 || !d.front[det[q]][det[p]]) continue;
                if (shared_pixels(&s, &s.obj[p], &s.obj[q]) < 50) continue;
                a->occl++;
                a->occl_right += d.front[det[q]][det[p]] == 1; /* q is drawn later: in front */
            }
        for (int c = 0; c < s.n_captions; c++) {
            checker_score sc;
            checker_score_prompt(&d, &s.prompt[c], &sc);
            a->captions++;
            a->captions_right += sc.all_correct;
            a->cap_objects += sc.object.n;
            a->cap_objects_right += sc.object.ok;
        }
    }
}

static void report(const char *what, const tally *a, int count)
{
    printf("  %s: %d objects, all right %.4f (shape %.4f, size %.4f, fill %.4f, small-object fill %.4f; colour: "
           "%d of %d found); %d extra; occlusion %d/%d; captions all right %.4f, caption objects %.4f; "
           "%.2f ms to make, %.2f ms to check an image (this build)\n",
           what, a->objects, (double)a->right / a->objects, (double)a->shape / a->objects, (double)a->size / a->objects,
           (double)a->fill / a->objects, a->fill_small_n ? (double)a->fill_small / a->fill_small_n : 1.0, a->found,
           a->objects, a->extra, a->occl_right, a->occl, (double)a->captions_right / a->captions,
           (double)a->cap_objects_right / a->cap_objects, 1e3 * a->gen_s / count, 1e3 * a->check_s / count);
}

static void t_read_back_128(tctx *t)
{
    tally a;
    read_back(t, 128, 800, 4, test_seed(1000), &a); /* every 4th without anti-aliasing */
    report("128x128", &a, 800);
    CHECK(t, a.right >= 0.99 * a.objects, "objects fully right %d/%d", a.right, a.objects);
    CHECK(t, a.cap_objects_right >= 0.99 * a.cap_objects, "caption objects right %d/%d", a.cap_objects_right, a.cap_objects);
    CHECK(t, a.captions_right >= 0.98 * a.captions, "captions all right %d/%d", a.captions_right, a.captions);
    CHECK(t, a.occl_right >= 0.95 * a.occl && a.occl >= 20, "occlusion right %d/%d", a.occl_right, a.occl);
    CHECK(t, a.extra <= a.objects / 100, "%d detections that are no object", a.extra);
}

static void t_read_back_256(tctx *t)
{
    tally a;
    read_back(t, 256, 200, 4, test_seed(300000), &a);
    report("256x256", &a, 200);
    CHECK(t, a.right >= 0.99 * a.objects, "objects fully right %d/%d", a.right, a.objects);
    CHECK(t, a.cap_objects_right >= 0.99 * a.cap_objects, "caption objects right %d/%d", a.cap_objects_right, a.cap_objects);
}

/* At 64x64 a small object's inside is some twenty pixels: its fill is not reliably readable
 * (tools/SCENE.md). Shape, colour and size are; so is the fill of large objects. */
static void t_read_back_64(tctx *t)
{
    tally a;
    read_back(t, 64, 400, 4, test_seed(600000), &a);
    report("64x64", &a, 400);
    CHECK(t, a.found == a.objects && a.shape >= 0.99 * a.objects && a.size >= 0.99 * a.objects,
          "found %d, shape %d, size %d of %d", a.found, a.shape, a.size, a.objects);
    const int large_n = a.objects - a.fill_small_n, large_ok = a.fill - a.fill_small;
    CHECK(t, large_ok >= 0.95 * large_n, "fill of large objects %d/%d", large_ok, large_n);
}

/* Captions with one thing changed must be judged wrong: a colour or shape no object of the scene
 * has, a spatial relation turned around, a count one higher. */
static void t_wrong_captions(tctx *t)
{
    dit_err e = { 0 };
    int tried[4] = { 0 }, caught[4] = { 0 };
    for (int i = 0; i < 150; i++) {
        const scene_opts o = opts(128, SPLIT_TRAIN, 1);
        scene s;
        image im = { 0 };
        checker_result d;
        if (scene_generate(test_seed(90000) + (uint64_t)i, &o, &s, &e) || scene_render(&s, &im, &e) || checker_detect(&im, &d, &e)) {
            CHECK(t, 0, "%s", e.msg);
            img_free(&im);
            return;
        }
        img_free(&im);
        for (int c = 0; c < s.n_captions; c++) {
            scene_prompt p = s.prompt[c];
            checker_score sc;
            int colours = 0, shapes = 0;
            for (int k = 0; k < s.n; k++) colours |= 1 << s.obj[k].colour, shapes |= 1 << s.obj[k].shape;
            int absent_colour = 0, absent_shape = 0;
            while (colours >> absent_colour & 1) absent_colour++;
            while (shapes >> absent_shape & 1) absent_shape++;
            /* colour */
            p.m[0].colour = absent_colour;
            checker_score_prompt(&d, &p, &sc);
            tried[0]++, caught[0] += !sc.all_correct && sc.object.ok < sc.object.n;
            /* shape */
            if (absent_shape < SHAPE_COUNT) {
                p = s.prompt[c];
                p.m[0].shape = absent_shape;
                checker_score_prompt(&d, &p, &sc);
                tried[1]++, caught[1] += !sc.all_correct && sc.object.ok < sc.object.n;
            }
            /* a spatial relation turned around */
            for (int r = 0; r < s.prompt[c].n_relations; r++) {
                if (s.prompt[c].r[r].rel >= REL_FRONT) continue;
                p = s.prompt[c];
                p.r[r].rel = (scene_rel)(p.r[r].rel ^ 1); /* left <-> right, above <-> below */
                checker_score_prompt(&d, &p, &sc);
                tried[2]++, caught[2] += !sc.all_correct && !sc.relation_ok[r];
            }
            /* a count one higher (when the scene has room for it) */
            p = s.prompt[c];
            int total = 0;
            for (int m = 0; m < p.n_mentions; m++) total += p.m[m].count;
            if (total < SCENE_MAX_OBJECTS && p.m[0].count >= 2) {
                p.m[0].count++;
                checker_score_prompt(&d, &p, &sc);
                tried[3]++, caught[3] += !sc.all_correct;
            }
        }
    }
    static const char *const WHAT[4] = { "colour", "shape", "relation", "count" };
    for (int k = 0; k < 4; k++) {
        printf("  wrong %s: %d of %d judged wrong\n", WHAT[k], caught[k], tried[k]);
        CHECK(t, tried[k] >= 10 && caught[k] == tried[k], "wrong %s: %d of %d judged wrong", WHAT[k], caught[k], tried[k]);
    }
}

/* JSON out and back: the same objects (to 0.01 pixel), captions and meanings. */
static void t_json(tctx *t)
{
    dit_err e = { 0 };
    const scene_opts o = opts(160, SPLIT_TRAIN, 1);
    scene s, r;
    CHECK(t, !scene_generate(test_seed(77), &o, &s, &e), "%s", e.msg);
    char *text = scene_to_json(&s);
    CHECK(t, text != NULL, "no JSON");
    if (!text) return;
    const dit_status st = scene_from_json(text, &r, &e);
    CHECK(t, !st, "read back: %s", e.msg);
    CHECK(t, r.w == s.w && r.h == s.h && r.n == s.n && r.seed == s.seed && r.bg_kind == s.bg_kind && r.n_captions == s.n_captions,
          "scene fields differ");
    for (int k = 0; k < s.n && k < r.n; k++)
        CHECK(t, r.obj[k].shape == s.obj[k].shape && r.obj[k].colour == s.obj[k].colour && r.obj[k].size == s.obj[k].size &&
                     r.obj[k].fill == s.obj[k].fill && fabsf(r.obj[k].cx - s.obj[k].cx) <= 0.006f &&
                     fabsf(r.obj[k].r - s.obj[k].r) <= 0.006f,
              "object %d differs", k);
    for (int c = 0; c < s.n_captions && c < r.n_captions; c++)
        CHECK(t, !strcmp(r.caption[c], s.caption[c]) && scene_prompt_equal(&r.prompt[c], &s.prompt[c]), "caption %d differs", c);
    free(text);
    CHECK(t, scene_from_json("{\"width\": 128}", &r, &e) == DIT_E_FORMAT, "a broken JSON accepted");
}

/* Anything in, no crash: noise, a flat image, a tiny one. */
static void t_checker_robust(tctx *t)
{
    dit_err e = { 0 };
    image im = { 0 };
    checker_result d;
    CHECK(t, !img_alloc(&im, 96, 80, 3, &e), "%s", e.msg);
    trng r = { test_seed(3) };
    for (int i = 0; i < 96 * 80 * 3; i++) im.px[i] = (unsigned char)(trng_u64(&r) >> 56);
    CHECK(t, !checker_detect(&im, &d, &e) && d.n <= CHECKER_MAX_OBJECTS, "noise: %s", e.msg);
    memset(im.px, 0, 96 * 80 * 3);
    CHECK(t, !checker_detect(&im, &d, &e) && d.n == 1 && d.obj[0].colour == COLOUR_BLACK, "black image: %d objects", d.n);
    img_free(&im);
    CHECK(t, !img_alloc(&im, 8, 8, 3, &e), "%s", e.msg);
    CHECK(t, checker_detect(&im, &d, &e) == DIT_E_ARG, "8x8 accepted");
    img_free(&im);
}

int main(void)
{
    tctx t = test_begin("scene");
    const char *only = getenv("ONLY");
#define RUN_ONLY(fn) \
    if (!only || !strcmp(only, #fn)) RUN(&t, fn)
    test_print_seed();
    RUN_ONLY(t_palette);
    RUN_ONLY(t_determinism);
    RUN_ONLY(t_heldout);
    RUN_ONLY(t_captions);
    RUN_ONLY(t_parse_templates);
    RUN_ONLY(t_known_scene);
    RUN_ONLY(t_wrong_captions);
    RUN_ONLY(t_json);
    RUN_ONLY(t_checker_robust);
    RUN_ONLY(t_read_back_128);
    RUN_ONLY(t_read_back_256);
    RUN_ONLY(t_read_back_64);
    return test_end(&t);
}

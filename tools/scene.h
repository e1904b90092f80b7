/* tools/scene.h — procedural scenes for the embedded model: 1–4 flat shapes on a plain or two-tone
 * background, their ground truth, and captions from a small grammar that are true of the picture.
 * tools/checker.h reads such pictures back (and scores any image against a caption).
 *
 *   scene_opts o = scene_opts_default();          // 128x128, train split, anti-aliased
 *   scene s;
 *   if (scene_generate(42, &o, &s, &e)) ...;       // same seed + options -> same scene, bit for bit
 *   image im = {0};
 *   if (scene_render(&s, &im, &e)) ...;            // 8-bit RGB
 *   char *json = scene_to_json(&s);                // ground truth + captions; free()
 *   printf("%s\n", s.caption[0]);                  // "a large striped red star and two blue circles"
 *
 *   scene_prompt p;
 *   if (scene_parse("a red circle to the left of a blue square", &p, &e)) ...;
 *
 * Conventions (tools/SCENE.md has the full list): x right, y down, pixel (i, j) covers
 * [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5). Every length is a fraction of
 * S = min(width, height) (scene_metrics). Objects are kept in painter's order: obj[0] is drawn
 * first (backmost), obj[n-1] last (frontmost); "depth" in the JSON is that index.
 * Nothing here keeps global mutable state, prints or exits; the random numbers come from the
 * seed through the PRNG below (not libc rand).
 */
#ifndef DIT_TOOLS_SCENE_H
#define DIT_TOOLS_SCENE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/image.h"

#define SCENE_MAX_OBJECTS 4
#define SCENE_MAX_CAPTIONS 3
#define SCENE_MAX_RELATIONS 4
#define SCENE_CAPTION_MAX 320 /* bytes of one caption, NUL included */
#define SCENE_MIN_SIDE 64
#define SCENE_MAX_SIDE 4096
#define SCENE_RING_HOLE 0.4f /* radius of a ring's hole, in units of its radius */

typedef enum { SHAPE_CIRCLE, SHAPE_SQUARE, SHAPE_TRIANGLE, SHAPE_STAR, SHAPE_RING, SHAPE_CROSS, SHAPE_COUNT } scene_shape;
typedef enum {
    COLOUR_RED, COLOUR_GREEN, COLOUR_BLUE, COLOUR_YELLOW, COLOUR_ORANGE, COLOUR_PURPLE, COLOUR_WHITE, COLOUR_BLACK,
    COLOUR_COUNT
} scene_colour;
typedef enum { SIZE_SMALL, SIZE_LARGE, SIZE_COUNT } scene_size;
typedef enum { FILL_SOLID, FILL_STRIPED, FILL_DOTTED, FILL_OUTLINED, FILL_COUNT } scene_fill;
/* "A REL B": A left of B, ..., A in front of B (A drawn over B where they overlap). */
typedef enum { REL_LEFT, REL_RIGHT, REL_ABOVE, REL_BELOW, REL_FRONT, REL_BEHIND, REL_COUNT } scene_rel;
typedef enum { SPLIT_TRAIN, SPLIT_HELDOUT } scene_split;
/* Background: one colour, or two split by a line (vertical, horizontal or either diagonal). */
typedef enum { BG_PLAIN, BG_VERTICAL, BG_HORIZONTAL, BG_DIAGONAL, BG_ANTIDIAGONAL, BG_KIND_COUNT } scene_bg_kind;

#define SCENE_N_BACKGROUNDS 6

/* Names as the captions and the JSON spell them ("circle", "red", "small", "striped", "left"). */
extern const char *const SCENE_SHAPE_NAME[SHAPE_COUNT];
extern const char *const SCENE_COLOUR_NAME[COLOUR_COUNT];
extern const char *const SCENE_SIZE_NAME[SIZE_COUNT];
extern const char *const SCENE_FILL_NAME[FILL_COUNT];
extern const char *const SCENE_REL_NAME[REL_COUNT];
extern const char *const SCENE_BG_KIND_NAME[BG_KIND_COUNT];
extern const char *const SCENE_BACKGROUND_NAME[SCENE_N_BACKGROUNDS];
/* Object colours (sRGB, pairwise at least 92 apart in RGB) and background tones (greys and
 * pastels, each at least 96 from every object colour, and every blend of two of them at least 84
 * from every object colour), so the colour of a pixel tells object from background. */
extern const unsigned char SCENE_PALETTE[COLOUR_COUNT][3];
extern const unsigned char SCENE_BACKGROUND[SCENE_N_BACKGROUNDS][3];

/* The pixel sizes of everything, for an image of side S = min(w, h). */
typedef struct {
    float side;             /* S */
    float r_small, r_large; /* nominal radius of each size (jittered by +-6% per object) */
    float r_split;          /* radius above which an object is large: sqrt(r_small * r_large) */
    float outline;          /* width of the contour drawn by outlined, striped and dotted fills */
    float period;           /* stripe and dot period */
    int link;               /* same-colour pixels at most 2*link apart (Chebyshev gap) are one object */
    float same_gap;         /* smallest gap between the bounding circles of two same-colour objects */
    float rel_margin;       /* left/right/above/below are said only with centres this far apart */
    float rel_margin_check; /* ... and judged true by the checker from this distance on */
    float min_overlap_px;   /* "in front of" is said only for this many shared contour pixels */
} scene_metrics;

scene_metrics scene_metrics_for(int w, int h);

/* ---- the PRNG: xoshiro256** seeded through splitmix64 ---------------------------------------- */

static inline uint64_t scene_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
typedef struct {
    uint64_t s[4];
} scene_rng;

static inline void scene_rng_seed(scene_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = scene_splitmix64(&seed);
}
static inline uint64_t scene_rng_next(scene_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
/* Uniform in [0, 1) with 53 bits. */
static inline double scene_rng_unit(scene_rng *r)
{
    return (double)(scene_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
/* Uniform in 0..n-1 (1 <= n < 2^31; the product method is biased by less than n / 2^32). */
static inline int scene_rng_int(scene_rng *r, int n)
{
    return (int)(((scene_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* One object. (cx, cy) is the centre of the 2r x 2r box the shape is drawn in (the circumcentre
 * for circle, ring and star); r is in pixels. The box of the shape itself is [x0, x1] x [y0, y1]. */
typedef struct {
    scene_shape shape;
    scene_colour colour;
    scene_size size;
    scene_fill fill;
    float cx, cy, r;
    float x0, y0, x1, y1;
} scene_object;

/* A caption's meaning: mentions (each stands for `count` objects with the attributes it names;
 * -1 = attribute not said) and relations between mentions of one object each. */
typedef struct {
    int count;
    int shape, colour, size, fill;
} scene_mention;

typedef struct {
    int a, b; /* mention indices: mention a REL mention b */
    scene_rel rel;
} scene_relation;

typedef struct {
    int n_mentions, n_relations;
    scene_mention m[SCENE_MAX_OBJECTS];
    scene_relation r[SCENE_MAX_RELATIONS];
} scene_prompt;

typedef struct {
    int w, h;
    scene_split split;
    int antialias;
    uint64_t seed;
    scene_bg_kind bg_kind;
    int bg[2];    /* SCENE_BACKGROUND indices; bg[1] lies on the far side of the split line */
    float bg_pos; /* where the line crosses the middle of the image, as a fraction of w (or h) */
    int n;
    scene_object obj[SCENE_MAX_OBJECTS]; /* painter's order: obj[0] backmost */
    int n_captions;
    char caption[SCENE_MAX_CAPTIONS][SCENE_CAPTION_MAX];
    scene_prompt prompt[SCENE_MAX_CAPTIONS]; /* what each caption means (scene_parse gives it back) */
} scene;

typedef struct {
    int w, h;           /* SCENE_MIN_SIDE..SCENE_MAX_SIDE [128] */
    scene_split split;  /* [SPLIT_TRAIN] */
    int antialias;      /* edges get coverage from the signed distance [1] */
    int min_objects, max_objects; /* 1..SCENE_MAX_OBJECTS [1, 4] */
} scene_opts;

scene_opts scene_opts_default(void);

/* A scene from a seed. Train scenes never contain a held-out (shape, colour, fill) triple;
 * held-out scenes contain only such triples and their captions name shape, colour and fill of
 * every object they mention. Errors: DIT_E_ARG (bad options). */
dit_status scene_generate(uint64_t seed, const scene_opts *o, scene *s, dit_err *e);

/* The picture as a new 8-bit RGB image (img_free). */
dit_status scene_render(const scene *s, image *im, dit_err *e);

/* Ground truth and captions as a JSON object (tools/SCENE.md shows it); malloc'd, NULL when out
 * of memory. scene_from_json reads it back (captions' meanings are parsed from their text). */
char *scene_to_json(const scene *s);
dit_status scene_from_json(const char *text, scene *s, dit_err *e);

/* 1 when (shape, colour, fill) is held out of the training split: (shape + 2 colour + 3 fill)
 * mod 8 == 0. Every pair of those attributes still occurs in training. */
int scene_is_heldout(scene_shape shape, scene_colour colour, scene_fill fill);

/* Signed distance from (x, y) to the object's silhouette in pixels (negative inside). */
float scene_sdf(const scene_object *o, float x, float y);
/* Signed distance to what the object paints (its fill pattern inside the silhouette). */
float scene_paint_sdf(const scene_object *o, const scene_metrics *m, float x, float y);
/* The silhouette's box, in units of r around the centre (x0, y0, x1, y1), for each shape. */
void scene_shape_box(scene_shape shape, float box[4]);
/* The silhouette's outline as a closed polygon in units of r (y down); circle and ring give 0
 * (they are round). *v points into constant data. */
int scene_shape_polygon(scene_shape shape, const float (**v)[2]);

/* Does object o have every attribute mention m names? */
int scene_mention_matches(const scene_mention *m, const scene_object *o);

/* ---- the caption grammar (tools/caption.c) ------------------------------------------------ */

/* Parse a caption or a user prompt written in the grammar (tools/SCENE.md) into its meaning.
 * Words are case-insensitive; "," is a word; a final "." is ignored. Errors (DIT_E_ARG) name the
 * word: unknown words, a shape missing, a number that does not agree with the noun, "it" with
 * nothing before it, relations between plural mentions, more than SCENE_MAX_OBJECTS objects. */
dit_status scene_parse(const char *text, scene_prompt *p, dit_err *e);

/* Every word the grammar can emit, in a fixed order; returns the count. Points to constant data. */
int scene_vocab(const char *const **words);

/* 1 when two prompts mean the same (same mentions in the same order, same relations). */
int scene_prompt_equal(const scene_prompt *a, const scene_prompt *b);

/* Fill s->caption and s->prompt from the objects: SCENE_MAX_CAPTIONS captions, true of the
 * scene (tools/SCENE.md). scene_generate calls it; it is here for tools that build scenes by hand. */
void scene_write_captions(scene *s, scene_rng *rng);

#endif

/* tools/checker.h — reads a picture of flat shapes back into objects (shape, colour, size, fill,
 * centre, who is in front of whom) and scores it against a caption in the grammar of
 * tools/scene.h. Made for the scenes of tools/scene.c and for images generated from their
 * captions; tools/SCENE.md has the method, the thresholds and the exact scoring rules.
 *
 *   checker_result d;
 *   if (checker_detect(&im, &d, &e)) ...;            // im: 8-bit RGB (or RGBA, gray)
 *   scene_prompt p;
 *   if (scene_parse("two red circles left of a blue square", &p, &e)) ...;
 *   checker_score sc;
 *   checker_score_prompt(&d, &p, &sc);               // sc.object.ok / sc.object.n, sc.all_correct
 *
 * No global state; each call allocates its own work buffers (a few bytes per pixel).
 */
#ifndef DIT_TOOLS_CHECKER_H
#define DIT_TOOLS_CHECKER_H

#include "core/err.h"
#include "core/image.h"
#include "tools/scene.h"

#define CHECKER_MAX_OBJECTS 12 /* the largest this many are kept */

typedef struct {
    scene_shape shape;
    scene_colour colour;
    scene_size size;
    scene_fill fill;
    float cx, cy, r;    /* the fitted shape, in scene_object's conventions */
    int x0, y0, x1, y1; /* box of the object's pixels (inclusive pixel indices) */
    int n_px;           /* pixels of its colour */
    float fit;          /* agreement of the fitted outline with the pixels, 0..1 */
    float coverage;     /* share of the inside (within the contour band) painted in its colour */
    float continuation; /* share of painted inside pixels still painted 0.6 period further along
                           the best of four directions (stripes: high; dots: low; 0 when the
                           inside is too narrow for the step) */
} checker_object;

typedef struct {
    int w, h, n;
    checker_object obj[CHECKER_MAX_OBJECTS]; /* largest first */
    /* front[i][j]: 1 when i is seen in front of j where their contours cross, -1 behind, 0 when
     * their contours do not visibly cross */
    signed char front[CHECKER_MAX_OBJECTS][CHECKER_MAX_OBJECTS];
} checker_result;

/* Find the objects of an image (any size from 16x16 to IMG_MAX_SIDE; 1 to 4 channels, alpha
 * ignored). Errors: DIT_E_ARG (bad image), DIT_E_OOM. */
dit_status checker_detect(const image *im, checker_result *r, dit_err *e);
/* The same for planar floats [3, h, w] in [-1, 1] (a VAE's output), converted as img_from_chw. */
dit_status checker_detect_chw(const float *chw, int h, int w, checker_result *r, dit_err *e);

typedef struct {
    int ok, n;
} checker_tally;

/* The score of a picture against a prompt (tools/SCENE.md, "scoring"). Requested objects are the
 * prompt's mentions expanded by their counts; each is matched to a different detected object
 * (the assignment with the most correct objects, then relations, then attributes). */
typedef struct {
    checker_tally shape, colour, size, fill; /* over requested objects that say the attribute */
    checker_tally count;                     /* mentions with two, three or four: exactly that many fit */
    checker_tally relation;                  /* left of, right of, above, below */
    checker_tally occlusion;                 /* in front of, behind */
    checker_tally object;                    /* requested objects found with every said attribute */
    int all_correct;                         /* every object, count, relation and occlusion right */
    int n_requested;
    int mention_of[SCENE_MAX_OBJECTS]; /* requested object -> mention */
    int det_of[SCENE_MAX_OBJECTS];     /* requested object -> detected object, -1 when none */
    signed char object_ok[SCENE_MAX_OBJECTS];
    signed char relation_ok[SCENE_MAX_RELATIONS];
    signed char count_ok[SCENE_MAX_OBJECTS]; /* per mention; -1 when it has no count to check */
} checker_score;

void checker_score_prompt(const checker_result *d, const scene_prompt *p, checker_score *s);

/* Ground truth -> detections, for measuring the checker on rendered scenes: for each object of s in
 * order, the nearest unused detection of the same colour (det[k], -1 when none; dist[k] its centre
 * distance in pixels); used[j] = 1 for the detections taken. Returns how many were found. */
int checker_match_truth(const checker_result *d, const scene *s, int det[SCENE_MAX_OBJECTS],
                        float dist[SCENE_MAX_OBJECTS], int used[CHECKER_MAX_OBJECTS]);

/* The position rule of those measurements: centre within 15% of the radius plus 1.5 pixels. */
static inline int checker_position_ok(const scene_object *g, float dist) { return dist <= 0.15f * g->r + 1.5f; }

/* Does the relation hold between two detected objects? (the rule checker_score_prompt uses) */
int checker_relation_holds(const checker_result *d, int a, scene_rel rel, int b);

#endif

/* tools/scene.c — procedural scenes: attributes, layout under the rules that keep a picture
 * readable, rendering from signed distances, and the ground truth as JSON. The caption grammar
 * is in tools/caption.c; the conventions are in tools/SCENE.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "tools/scene.h"

const char *const SCENE_SHAPE_NAME[SHAPE_COUNT] = { "circle", "square", "triangle", "star", "ring", "cross" };
const char *const SCENE_COLOUR_NAME[COLOUR_COUNT] = { "red", "green", "blue", "yellow", "orange", "purple", "white", "black" };
const char *const SCENE_SIZE_NAME[SIZE_COUNT] = { "small", "large" };
const char *const SCENE_FILL_NAME[FILL_COUNT] = { "solid", "striped", "dotted", "outlined" };
const char *const SCENE_REL_NAME[REL_COUNT] = { "left", "right", "above", "below", "front", "behind" };
const char *const SCENE_BG_KIND_NAME[BG_KIND_COUNT] = { "plain", "vertical", "horizontal", "diagonal", "antidiagonal" };
const char *const SCENE_BACKGROUND_NAME[SCENE_N_BACKGROUNDS] = { "grey", "beige", "sky", "sage", "rose", "slate" };

const unsigned char SCENE_PALETTE[COLOUR_COUNT][3] = {
    { 215, 35, 35 },  { 35, 165, 55 },  { 35, 75, 215 },   { 245, 220, 40 },
    { 245, 130, 20 }, { 145, 55, 185 }, { 250, 250, 250 }, { 20, 20, 20 },
};
const unsigned char SCENE_BACKGROUND[SCENE_N_BACKGROUNDS][3] = {
    { 140, 140, 140 }, { 212, 196, 160 }, { 160, 182, 212 }, { 160, 200, 160 }, { 215, 168, 180 }, { 80, 92, 104 },
};

scene_metrics scene_metrics_for(int w, int h)
{
    scene_metrics m;
    const float s = (float)(w < h ? w : h);
    m.side = s;
    m.r_small = 0.13f * s;
    m.r_large = 0.22f * s;
    m.r_split = sqrtf(m.r_small * m.r_large);
    m.outline = fmaxf(2.5f, s / 48.0f);
    m.period = fmaxf(5.0f, s / 20.0f);
    m.link = (int)lrintf(fmaxf(4.0f, 0.05f * s) * 0.5f);
    m.same_gap = 4.0f * (float)m.link + 3.0f;
    m.rel_margin = 0.10f * s;
    m.rel_margin_check = 0.03f * s;
    m.min_overlap_px = fmaxf(4.0f, 0.6f * m.outline * m.outline);
    return m;
}

int scene_is_heldout(scene_shape shape, scene_colour colour, scene_fill fill)
{
    return ((int)shape + 2 * (int)colour + 3 * (int)fill) % 8 == 0;
}

/* ---- geometry: shapes in units of r around (0, 0), y down ------------------------------------ */

static const float SQUARE_V[][2] = { { -0.86f, -0.86f }, { 0.86f, -0.86f }, { 0.86f, 0.86f }, { -0.86f, 0.86f } };
static const float TRIANGLE_V[][2] = { { 0.0f, -0.9f }, { 0.98f, 0.9f }, { -0.98f, 0.9f } };
/* Five points at radius 1 (the first straight up), inner corners at radius 0.45. */
static const float STAR_V[][2] = {
    { 0.000000f, -1.000000f }, { 0.264503f, -0.364058f }, { 0.951057f, -0.309017f }, { 0.427975f, 0.139058f },
    { 0.587785f, 0.809017f },  { 0.000000f, 0.450000f },  { -0.587785f, 0.809017f }, { -0.427975f, 0.139058f },
    { -0.951057f, -0.309017f }, { -0.264503f, -0.364058f },
};
/* A plus sign: arms 0.6 wide reaching 0.95 from the centre. */
static const float CROSS_V[][2] = {
    { -0.3f, -0.95f }, { 0.3f, -0.95f }, { 0.3f, -0.3f },  { 0.95f, -0.3f }, { 0.95f, 0.3f },  { 0.3f, 0.3f },
    { 0.3f, 0.95f },   { -0.3f, 0.95f }, { -0.3f, 0.3f }, { -0.95f, 0.3f }, { -0.95f, -0.3f }, { -0.3f, -0.3f },
};

int scene_shape_polygon(scene_shape shape, const float (**v)[2])
{
    switch (shape) {
    case SHAPE_SQUARE: *v = SQUARE_V; return 4;
    case SHAPE_TRIANGLE: *v = TRIANGLE_V; return 3;
    case SHAPE_STAR: *v = STAR_V; return 10;
    case SHAPE_CROSS: *v = CROSS_V; return 12;
    default: *v = NULL; return 0;
    }
}

void scene_shape_box(scene_shape shape, float box[4])
{
    const float (*v)[2];
    const int n = scene_shape_polygon(shape, &v);
    if (!n) {
        box[0] = box[1] = -1.0f;
        box[2] = box[3] = 1.0f;
        return;
    }
    box[0] = box[2] = v[0][0];
    box[1] = box[3] = v[0][1];
    for (int i = 1; i < n; i++) {
        box[0] = fminf(box[0], v[i][0]);
        box[2] = fmaxf(box[2], v[i][0]);
        box[1] = fminf(box[1], v[i][1]);
        box[3] = fmaxf(box[3], v[i][1]);
    }
}

/* Radius of the circle around the centre that holds the shape, in units of r. */
static float shape_reach(scene_shape shape)
{
    const float (*v)[2];
    const int n = scene_shape_polygon(shape, &v);
    float reach = 1.0f;
    for (int i = 0; i < n; i++) reach = fmaxf(reach, hypotf(v[i][0], v[i][1]));
    return reach;
}

/* Exact signed distance to a simple polygon (negative inside): the nearest edge gives the
 * distance, the crossing count of a ray gives the sign (after Inigo Quilez's sdPolygon). */
static float polygon_sdf(const float (*v)[2], int n, float px, float py)
{
    float d = (px - v[0][0]) * (px - v[0][0]) + (py - v[0][1]) * (py - v[0][1]);
    float sign = 1.0f;
    for (int i = 0, j = n - 1; i < n; j = i, i++) {
        const float ex = v[j][0] - v[i][0], ey = v[j][1] - v[i][1];
        const float wx = px - v[i][0], wy = py - v[i][1];
        float t = (wx * ex + wy * ey) / (ex * ex + ey * ey);
        t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
        const float bx = wx - ex * t, by = wy - ey * t;
        const float dd = bx * bx + by * by;
        d = dd < d ? dd : d; /* not fminf: a libm call without -ffast-math, in the hottest loop */
        const int c1 = py >= v[i][1], c2 = py < v[j][1], c3 = ex * wy > ey * wx;
        if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) sign = -sign;
    }
    return sign * sqrtf(d);
}

static float unit_sdf(scene_shape shape, float x, float y)
{
    switch (shape) {
    case SHAPE_CIRCLE: return hypotf(x, y) - 1.0f;
    case SHAPE_RING: return fabsf(hypotf(x, y) - 0.5f * (1.0f + SCENE_RING_HOLE)) - 0.5f * (1.0f - SCENE_RING_HOLE);
    default: {
        const float (*v)[2];
        const int n = scene_shape_polygon(shape, &v);
        return polygon_sdf(v, n, x, y);
    }
    }
}

float scene_sdf(const scene_object *o, float x, float y)
{
    return o->r * unit_sdf(o->shape, (x - o->cx) / o->r, (y - o->cy) / o->r);
}

/* Outlined: a band of width `outline` inside the silhouette. Striped: that band plus diagonal
 * stripes half a period wide, one through the centre. Dotted: the band plus dots of radius
 * 0.3 period on a square grid through the centre (a ring: on circles around its middle, about
 * 1.5 periods apart, one at the top). Unions are min, intersections max. */
float scene_paint_sdf(const scene_object *o, const scene_metrics *m, float x, float y)
{
    const float d = scene_sdf(o, x, y);
    if (o->fill == FILL_SOLID) return d;
    const float half = 0.5f * m->outline, band = fabsf(d + half) - half;
    if (o->fill == FILL_OUTLINED) return band;
    const float p = m->period, dx = x - o->cx, dy = y - o->cy;
    float pattern;
    if (o->fill == FILL_STRIPED) {
        const float u = (dx + dy) * 0.70710678f;
        pattern = fabsf(u - p * roundf(u / p)) - 0.25f * p;
    } else if (o->shape == SHAPE_RING) {
        /* beads 1.5 periods apart on the middle circle of the band, or on two circles a period
         * apart when the band leaves room for them (a grid would miss a narrow band) */
        const float mid = 0.5f * (1.0f + SCENE_RING_HOLE) * o->r, room = (1.0f - SCENE_RING_HOLE) * o->r - 2.0f * m->outline;
        const float rho = hypotf(dx, dy), row = room >= 1.5f * p ? (rho < mid ? mid - 0.5f * p : mid + 0.5f * p) : mid;
        const int n = (int)fmaxf(6.0f, roundf(6.2831853f * row / (1.5f * p)));
        const float step = 6.2831853f / (float)n, a = step * roundf((atan2f(dy, dx) + 1.5707963f) / step) - 1.5707963f;
        pattern = hypotf(dx - row * cosf(a), dy - row * sinf(a)) - 0.3f * p;
    } else {
        const float gx = dx - p * roundf(dx / p), gy = dy - p * roundf(dy / p);
        pattern = hypotf(gx, gy) - 0.3f * p;
    }
    return fminf(band, fmaxf(pattern, d));
}

static void object_box(scene_object *o)
{
    float b[4];
    scene_shape_box(o->shape, b);
    o->x0 = o->cx + o->r * b[0];
    o->y0 = o->cy + o->r * b[1];
    o->x1 = o->cx + o->r * b[2];
    o->y1 = o->cy + o->r * b[3];
}

int scene_mention_matches(const scene_mention *m, const scene_object *o)
{
    return (m->shape < 0 || m->shape == (int)o->shape) && (m->colour < 0 || m->colour == (int)o->colour) &&
           (m->size < 0 || m->size == (int)o->size) && (m->fill < 0 || m->fill == (int)o->fill);
}

/* ---- generation -------------------------------------------------------------------------------- */

scene_opts scene_opts_default(void)
{
    scene_opts o = { .w = 128, .h = 128, .split = SPLIT_TRAIN, .antialias = 1, .min_objects = 1, .max_objects = 4 };
    return o;
}

static void pick_attributes(scene *s, scene_rng *r)
{
    const int all_twins = scene_rng_unit(r) < 0.1; /* one scene in ten: all of one shape and colour */
    for (int i = 0; i < s->n; i++) {
        scene_object *o = &s->obj[i];
        if (i > 0 && (all_twins || scene_rng_unit(r) < 0.25)) { /* a twin of an earlier object, so counts occur */
            const scene_object *src = &s->obj[all_twins ? 0 : scene_rng_int(r, i)];
            o->shape = src->shape;
            o->colour = src->colour;
            o->size = scene_rng_unit(r) < 0.5 ? src->size : (scene_size)scene_rng_int(r, SIZE_COUNT);
            o->fill = scene_rng_unit(r) < 0.5 ? src->fill : (scene_fill)scene_rng_int(r, FILL_COUNT);
            if ((s->split == SPLIT_HELDOUT) == scene_is_heldout(o->shape, o->colour, o->fill)) continue;
            o->fill = src->fill; /* the twin's own triple is in the split */
            continue;
        }
        do {
            o->shape = (scene_shape)scene_rng_int(r, SHAPE_COUNT);
            o->colour = (scene_colour)scene_rng_int(r, COLOUR_COUNT);
            o->fill = (scene_fill)scene_rng_int(r, FILL_COUNT);
        } while ((s->split == SPLIT_HELDOUT) != scene_is_heldout(o->shape, o->colour, o->fill));
        o->size = (scene_size)scene_rng_int(r, SIZE_COUNT);
    }
}

/* Work buffers of the pixel checks (w*h each). */
typedef struct {
    signed char *top_silhouette, *top_paint;
    int *stack;
} layout_scratch;

/* Are the visible paint pixels of object i one group, when gaps up to 2*link pixels (Chebyshev)
 * are bridged? The checker links same-colour pixels that way; this uses link-1 for a margin. */
static int paint_connected(const scene *s, const layout_scratch *ws, int i, int link, unsigned char *seen)
{
    const int w = s->w, h = s->h, reach = 2 * (link - 1) + 1;
    const scene_object *o = &s->obj[i];
    const int x0 = (int)fmaxf(0, floorf(o->x0) - 1), x1 = (int)fminf((float)w - 1, ceilf(o->x1) + 1);
    const int y0 = (int)fmaxf(0, floorf(o->y0) - 1), y1 = (int)fminf((float)h - 1, ceilf(o->y1) + 1);
    int start = -1, total = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            if (ws->top_paint[y * w + x] == i) {
                seen[y * w + x] = 0;
                if (start < 0) start = y * w + x;
                total++;
            }
    if (start < 0) return 0;
    int top = 0, reached = 1;
    ws->stack[top++] = start;
    seen[start] = 1;
    while (top) {
        const int p = ws->stack[--top], px = p % w, py = p / w;
        for (int y = py - reach < y0 ? y0 : py - reach; y <= py + reach && y <= y1; y++)
            for (int x = px - reach < x0 ? x0 : px - reach; x <= px + reach && x <= x1; x++) {
                const int q = y * w + x;
                if (ws->top_paint[q] == i && !seen[q]) {
                    seen[q] = 1;
                    ws->stack[top++] = q;
                    reached++;
                }
            }
    }
    return reached == total;
}

/* The rules every layout keeps (tools/SCENE.md, "layout"). Returns 1 when s is acceptable. */
static int layout_ok(const scene *s, const scene_metrics *m, const layout_scratch *ws, unsigned char *seen)
{
    int overlaps = 0;
    for (int i = 0; i < s->n; i++)
        for (int j = i + 1; j < s->n; j++) {
            const scene_object *a = &s->obj[i], *b = &s->obj[j]; /* b is drawn over a */
            const float dist = hypotf(a->cx - b->cx, a->cy - b->cy);
            const float reach = shape_reach(a->shape) * a->r + shape_reach(b->shape) * b->r;
            if (a->colour == b->colour && dist < reach + m->same_gap) return 0;
            if (dist >= reach) continue;
            overlaps = 1;
            /* the middle of the back object stays uncovered (a ring's: its hole and inner edge) */
            const float keep = a->shape == SHAPE_RING ? SCENE_RING_HOLE * a->r + m->outline + 1.0f : 0.3f * a->r;
            if (scene_sdf(b, a->cx, a->cy) < keep) return 0;
        }
    if (!overlaps) return 1;
    const int w = s->w, h = s->h;
    int sil_total[SCENE_MAX_OBJECTS] = { 0 }, sil_seen[SCENE_MAX_OBJECTS] = { 0 };
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float px = (float)x + 0.5f, py = (float)y + 0.5f;
            int top_sil = -1, top_paint = -1;
            for (int i = s->n - 1; i >= 0; i--) {
                const scene_object *o = &s->obj[i];
                if (px < o->x0 - 1 || px > o->x1 + 1 || py < o->y0 - 1 || py > o->y1 + 1) continue;
                if (scene_sdf(o, px, py) <= 0) {
                    sil_total[i]++;
                    if (top_sil < 0) top_sil = i;
                    if (top_paint < 0 && scene_paint_sdf(o, m, px, py) <= 0) top_paint = i;
                }
            }
            ws->top_silhouette[y * w + x] = (signed char)top_sil;
            ws->top_paint[y * w + x] = (signed char)top_paint;
            if (top_sil >= 0) sil_seen[top_sil]++;
        }
    for (int i = 0; i < s->n; i++) {
        if (sil_seen[i] < 0.7f * (float)sil_total[i]) return 0;
        if (i < s->n - 1 && !paint_connected(s, ws, i, m->link, seen)) return 0;
    }
    return 1;
}

static void place(scene *s, const scene_metrics *m, scene_rng *r)
{
    const float margin = fmaxf(2.0f, 0.02f * m->side);
    for (int i = 0; i < s->n; i++) {
        scene_object *o = &s->obj[i];
        const float nominal = o->size == SIZE_LARGE ? m->r_large : m->r_small;
        o->r = nominal * (float)(1.0 + 0.06 * (2.0 * scene_rng_unit(r) - 1.0));
        float b[4];
        scene_shape_box(o->shape, b);
        const float lo_x = margin - o->r * b[0], hi_x = (float)s->w - margin - o->r * b[2];
        const float lo_y = margin - o->r * b[1], hi_y = (float)s->h - margin - o->r * b[3];
        o->cx = lo_x + (hi_x - lo_x) * (float)scene_rng_unit(r);
        o->cy = lo_y + (hi_y - lo_y) * (float)scene_rng_unit(r);
        if (i > 0 && scene_rng_unit(r) < 0.4) { /* next to an earlier object, overlapping it */
            const scene_object *t = &s->obj[scene_rng_int(r, i)];
            const float reach = shape_reach(o->shape) * o->r + shape_reach(t->shape) * t->r;
            const float d = reach * (float)(0.5 + 0.35 * scene_rng_unit(r)), a = 6.2831853f * (float)scene_rng_unit(r);
            const float x = t->cx + d * cosf(a), y = t->cy + d * sinf(a);
            if (x >= lo_x && x <= hi_x && y >= lo_y && y <= hi_y) o->cx = x, o->cy = y;
        }
        object_box(o);
    }
    for (int i = s->n - 1; i > 0; i--) { /* a random painter's order */
        const int j = scene_rng_int(r, i + 1);
        const scene_object t = s->obj[i];
        s->obj[i] = s->obj[j];
        s->obj[j] = t;
    }
}

dit_status scene_generate(uint64_t seed, const scene_opts *o, scene *s, dit_err *e)
{
    if (o->w < SCENE_MIN_SIDE || o->h < SCENE_MIN_SIDE || o->w > SCENE_MAX_SIDE || o->h > SCENE_MAX_SIDE)
        return err_set(e, DIT_E_ARG, "scene size %dx%d: each side must be %d to %d", o->w, o->h, SCENE_MIN_SIDE,
                       SCENE_MAX_SIDE);
    if (o->min_objects < 1 || o->max_objects > SCENE_MAX_OBJECTS || o->min_objects > o->max_objects)
        return err_set(e, DIT_E_ARG, "objects per scene %d..%d: must lie within 1..%d", o->min_objects,
                       o->max_objects, SCENE_MAX_OBJECTS);
    if (o->split != SPLIT_TRAIN && o->split != SPLIT_HELDOUT) return err_set(e, DIT_E_ARG, "unknown split %d", o->split);
    memset(s, 0, sizeof *s);
    s->w = o->w;
    s->h = o->h;
    s->split = o->split;
    s->antialias = !!o->antialias;
    s->seed = seed;
    const scene_metrics m = scene_metrics_for(s->w, s->h);
    scene_rng r;
    scene_rng_seed(&r, seed ^ (o->split == SPLIT_HELDOUT ? 0x5bd1e9955bd1e995ull : 0));

    const size_t npx = (size_t)s->w * (size_t)s->h;
    layout_scratch ws = { malloc(npx), malloc(npx), malloc(npx * sizeof(int)) };
    unsigned char *seen = malloc(npx);
    if (!ws.top_silhouette || !ws.top_paint || !ws.stack || !seen) {
        free(ws.top_silhouette), free(ws.top_paint), free(ws.stack), free(seen);
        return err_set(e, DIT_E_OOM, "scene %dx%d: out of memory", s->w, s->h);
    }

    s->n = o->min_objects + scene_rng_int(&r, o->max_objects - o->min_objects + 1);
    pick_attributes(s, &r);
    /* Crowded draws fail the rules: after every 60 failed layouts one large object becomes small;
     * once all are small, the last object goes, or (at min_objects) the attributes are drawn anew. */
    for (int attempt = 1;; attempt++) {
        place(s, &m, &r);
        if (layout_ok(s, &m, &ws, seen)) break;
        if (attempt % 60) continue;
        int shrunk = 0;
        for (int i = 0; i < s->n && !shrunk; i++)
            if (s->obj[i].size == SIZE_LARGE) s->obj[i].size = SIZE_SMALL, shrunk = 1;
        if (shrunk) continue;
        if (s->n > o->min_objects) s->n--;
        else pick_attributes(s, &r);
    }
    free(ws.top_silhouette), free(ws.top_paint), free(ws.stack), free(seen);

    if (scene_rng_unit(&r) < 0.5) {
        s->bg_kind = BG_PLAIN;
        s->bg[0] = s->bg[1] = scene_rng_int(&r, SCENE_N_BACKGROUNDS);
        s->bg_pos = 0.5f;
    } else {
        s->bg_kind = (scene_bg_kind)(1 + scene_rng_int(&r, BG_KIND_COUNT - 1));
        s->bg[0] = scene_rng_int(&r, SCENE_N_BACKGROUNDS);
        s->bg[1] = (s->bg[0] + 1 + scene_rng_int(&r, SCENE_N_BACKGROUNDS - 1)) % SCENE_N_BACKGROUNDS;
        s->bg_pos = 0.3f + 0.4f * (float)scene_rng_unit(&r);
    }
    scene_write_captions(s, &r);
    return DIT_OK;
}

/* ---- rendering ------------------------------------------------------------------------------- */

/* Signed distance of pixel centre (px, py) to the background's split line, positive on bg[1]'s side. */
static float split_distance(const scene *s, float px, float py)
{
    const float ax = s->bg_pos * (float)s->w, ay = s->bg_pos * (float)s->h;
    switch (s->bg_kind) {
    case BG_VERTICAL: return px - ax;
    case BG_HORIZONTAL: return py - ay;
    case BG_DIAGONAL: return ((px - ax) - (py - 0.5f * (float)s->h)) * 0.70710678f;
    case BG_ANTIDIAGONAL: return ((px - ax) + (py - 0.5f * (float)s->h)) * 0.70710678f;
    default: return -1e9f;
    }
}

/* Paint coverage from a signed distance: a one-pixel ramp when anti-aliased, else the centre. */
static float coverage(float d, int antialias)
{
    if (!antialias) return d <= 0.0f ? 1.0f : 0.0f;
    const float c = 0.5f - d;
    return c < 0.0f ? 0.0f : c > 1.0f ? 1.0f : c;
}

dit_status scene_render(const scene *s, image *im, dit_err *e)
{
    dit_status st = img_alloc(im, s->w, s->h, 3, e);
    if (st) return st;
    const scene_metrics m = scene_metrics_for(s->w, s->h);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            const float px = (float)x + 0.5f, py = (float)y + 0.5f;
            const float t = coverage(-split_distance(s, px, py), s->antialias);
            float rgb[3];
            for (int c = 0; c < 3; c++)
                rgb[c] = (float)SCENE_BACKGROUND[s->bg[0]][c] * (1.0f - t) + (float)SCENE_BACKGROUND[s->bg[1]][c] * t;
            for (int i = 0; i < s->n; i++) {
                const scene_object *o = &s->obj[i];
                if (px < o->x0 - 1 || px > o->x1 + 1 || py < o->y0 - 1 || py > o->y1 + 1) continue;
                const float a = coverage(scene_paint_sdf(o, &m, px, py), s->antialias);
                for (int c = 0; c < 3; c++) rgb[c] += a * ((float)SCENE_PALETTE[o->colour][c] - rgb[c]);
            }
            unsigned char *out = im->px + 3 * ((size_t)y * (size_t)s->w + (size_t)x);
            for (int c = 0; c < 3; c++) out[c] = (unsigned char)lrintf(rgb[c]);
        }
    return DIT_OK;
}

/* ---- JSON -------------------------------------------------------------------------------------- */

static double round2(float v)
{
    return round((double)v * 100.0) / 100.0;
}

char *scene_to_json(const scene *s)
{
    cJSON *root = cJSON_CreateObject(), *bg = cJSON_CreateObject(), *objs = cJSON_CreateArray(),
          *caps = cJSON_CreateArray();
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    cJSON_AddNumberToObject(root, "width", s->w);
    cJSON_AddNumberToObject(root, "height", s->h);
    cJSON_AddStringToObject(root, "seed", seed);
    cJSON_AddStringToObject(root, "split", s->split == SPLIT_HELDOUT ? "heldout" : "train");
    cJSON_AddBoolToObject(root, "antialias", s->antialias);
    cJSON_AddStringToObject(bg, "kind", SCENE_BG_KIND_NAME[s->bg_kind]);
    cJSON *bgc = cJSON_AddArrayToObject(bg, "colours");
    for (int i = 0; i < (s->bg_kind == BG_PLAIN ? 1 : 2); i++)
        cJSON_AddItemToArray(bgc, cJSON_CreateString(SCENE_BACKGROUND_NAME[s->bg[i]]));
    if (s->bg_kind != BG_PLAIN) cJSON_AddNumberToObject(bg, "position", round((double)s->bg_pos * 1000.0) / 1000.0);
    cJSON_AddItemToObject(root, "background", bg);
    for (int i = 0; i < s->n; i++) {
        const scene_object *o = &s->obj[i];
        cJSON *jo = cJSON_CreateObject();
        cJSON_AddStringToObject(jo, "shape", SCENE_SHAPE_NAME[o->shape]);
        cJSON_AddStringToObject(jo, "colour", SCENE_COLOUR_NAME[o->colour]);
        cJSON_AddStringToObject(jo, "size", SCENE_SIZE_NAME[o->size]);
        cJSON_AddStringToObject(jo, "fill", SCENE_FILL_NAME[o->fill]);
        cJSON_AddNumberToObject(jo, "x", round2(o->cx));
        cJSON_AddNumberToObject(jo, "y", round2(o->cy));
        cJSON_AddNumberToObject(jo, "r", round2(o->r));
        const double box[4] = { round2(o->x0), round2(o->y0), round2(o->x1), round2(o->y1) };
        cJSON_AddItemToObject(jo, "bbox", cJSON_CreateDoubleArray(box, 4));
        cJSON_AddNumberToObject(jo, "depth", i);
        cJSON_AddBoolToObject(jo, "heldout", scene_is_heldout(o->shape, o->colour, o->fill));
        cJSON_AddItemToArray(objs, jo);
    }
    cJSON_AddItemToObject(root, "objects", objs);
    for (int i = 0; i < s->n_captions; i++) cJSON_AddItemToArray(caps, cJSON_CreateString(s->caption[i]));
    cJSON_AddItemToObject(root, "captions", caps);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static int name_index(const char *const *names, int n, const cJSON *item)
{
    if (!cJSON_IsString(item)) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], item->valuestring)) return i;
    return -1;
}

dit_status scene_from_json(const char *text, scene *s, dit_err *e)
{
    memset(s, 0, sizeof *s);
    cJSON *root = cJSON_Parse(text);
    if (!root) return err_set(e, DIT_E_FORMAT, "scene JSON: not JSON");
    dit_status st = DIT_OK;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "width"), *h = cJSON_GetObjectItemCaseSensitive(root, "height");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed"), *split = cJSON_GetObjectItemCaseSensitive(root, "split");
    const cJSON *bg = cJSON_GetObjectItemCaseSensitive(root, "background");
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(root, "objects"), *caps = cJSON_GetObjectItemCaseSensitive(root, "captions");
    if (!cJSON_IsNumber(w) || !cJSON_IsNumber(h) || w->valuedouble < SCENE_MIN_SIDE || h->valuedouble < SCENE_MIN_SIDE ||
        w->valuedouble > SCENE_MAX_SIDE || h->valuedouble > SCENE_MAX_SIDE) {
        st = err_set(e, DIT_E_FORMAT, "scene JSON: width/height missing or outside %d..%d", SCENE_MIN_SIDE, SCENE_MAX_SIDE);
        goto done;
    }
    s->w = w->valueint;
    s->h = h->valueint;
    s->seed = cJSON_IsString(seed) ? strtoull(seed->valuestring, NULL, 10) : 0;
    s->split = cJSON_IsString(split) && !strcmp(split->valuestring, "heldout") ? SPLIT_HELDOUT : SPLIT_TRAIN;
    s->antialias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "antialias"));
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(bg, "kind"), *bgc = cJSON_GetObjectItemCaseSensitive(bg, "colours");
    const int k = name_index(SCENE_BG_KIND_NAME, BG_KIND_COUNT, kind);
    const int nbg = k == BG_PLAIN ? 1 : 2;
    if (k < 0 || !cJSON_IsArray(bgc) || cJSON_GetArraySize(bgc) != nbg) {
        st = err_set(e, DIT_E_FORMAT, "scene JSON: bad background");
        goto done;
    }
    s->bg_kind = (scene_bg_kind)k;
    for (int i = 0; i < nbg; i++)
        if ((s->bg[i] = name_index(SCENE_BACKGROUND_NAME, SCENE_N_BACKGROUNDS, cJSON_GetArrayItem(bgc, i))) < 0) {
            st = err_set(e, DIT_E_FORMAT, "scene JSON: unknown background colour");
            goto done;
        }
    if (nbg == 1) s->bg[1] = s->bg[0];
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(bg, "position");
    s->bg_pos = cJSON_IsNumber(pos) ? (float)pos->valuedouble : 0.5f;
    if (!cJSON_IsArray(objs) || cJSON_GetArraySize(objs) < 1 || cJSON_GetArraySize(objs) > SCENE_MAX_OBJECTS) {
        st = err_set(e, DIT_E_FORMAT, "scene JSON: objects must be an array of 1 to %d", SCENE_MAX_OBJECTS);
        goto done;
    }
    s->n = cJSON_GetArraySize(objs);
    for (int i = 0; i < s->n; i++) {
        const cJSON *jo = cJSON_GetArrayItem(objs, i);
        scene_object *o = &s->obj[i];
        const int sh = name_index(SCENE_SHAPE_NAME, SHAPE_COUNT, cJSON_GetObjectItemCaseSensitive(jo, "shape"));
        const int co = name_index(SCENE_COLOUR_NAME, COLOUR_COUNT, cJSON_GetObjectItemCaseSensitive(jo, "colour"));
        const int sz = name_index(SCENE_SIZE_NAME, SIZE_COUNT, cJSON_GetObjectItemCaseSensitive(jo, "size"));
        const int fi = name_index(SCENE_FILL_NAME, FILL_COUNT, cJSON_GetObjectItemCaseSensitive(jo, "fill"));
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(jo, "x"), *y = cJSON_GetObjectItemCaseSensitive(jo, "y"),
                    *r = cJSON_GetObjectItemCaseSensitive(jo, "r");
        if (sh < 0 || co < 0 || sz < 0 || fi < 0 || !cJSON_IsNumber(x) || !cJSON_IsNumber(y) || !cJSON_IsNumber(r) ||
            !(r->valuedouble > 0)) {
            st = err_set(e, DIT_E_FORMAT, "scene JSON: object %d: bad or missing shape/colour/size/fill/x/y/r", i);
            goto done;
        }
        o->shape = (scene_shape)sh;
        o->colour = (scene_colour)co;
        o->size = (scene_size)sz;
        o->fill = (scene_fill)fi;
        o->cx = (float)x->valuedouble;
        o->cy = (float)y->valuedouble;
        o->r = (float)r->valuedouble;
        object_box(o);
    }
    const int ncap = cJSON_IsArray(caps) ? cJSON_GetArraySize(caps) : 0;
    for (int i = 0; i < ncap && i < SCENE_MAX_CAPTIONS; i++) {
        const cJSON *c = cJSON_GetArrayItem(caps, i);
        if (!cJSON_IsString(c) || strlen(c->valuestring) >= SCENE_CAPTION_MAX) {
            st = err_set(e, DIT_E_FORMAT, "scene JSON: caption %d is not a string under %d bytes", i, SCENE_CAPTION_MAX);
            goto done;
        }
        strcpy(s->caption[i], c->valuestring);
        if ((st = scene_parse(s->caption[i], &s->prompt[i], e))) goto done;
        s->n_captions++;
    }
done:
    cJSON_Delete(root);
    return st;
}

/* tools/checker.c — objects from pixels, and the score of a picture against a prompt
 * (tools/SCENE.md, "The checker", has the numbers).
 *
 * 1. Labels: each pixel takes the nearest of the 8 object colours and the background tones
 *    (RGB distance); background, and anything farther than FAR_COLOUR from every object colour,
 *    is no object. A 2x2 opening then drops object pixels that are in no 2x2 block of their
 *    colour: the one-pixel seams an anti-aliased edge between two colours leaves (red over yellow
 *    blends to orange), while every stroke the scenes draw is at least 2.5 pixels wide.
 * 2. Groups: pixels of one colour at most 2*link pixels apart (Chebyshev) are one object, so
 *    stripes, dots and a contour cut by a crossing stroke stay together; nested groups of one
 *    colour merge; groups under MIN_AREA of S^2 are noise.
 * 3. Shape: circle, square, triangle, star and cross are each fitted to the group (centre and
 *    radius, compass search from its box); a fit scores precision (the group's edge pixels inside
 *    the shape) times boundary agreement (probes just inside the outline show the colour, just
 *    outside do not; probes on another object's colour do not count, it may cover this one).
 *    Poor fits restart from more places; a piece of a colour inside another's good fit joins it.
 *    A circle with an empty middle and a painted inner edge at the ring's hole radius is a ring.
 * 4. Size: fitted radius against metrics.r_split.
 * 5. Occlusion: where two fitted objects both paint whatever their fill (contour bands, solid
 *    silhouettes), the colour seen is the front one's.
 * 6. Fill: the share of the inside (deeper than the contour band) painted in the object's colour,
 *    objects in front not counted: solid, outlined (about none), else striped when the colour
 *    continues along some direction for 0.6 period (stripes), dotted when not.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/checker.h"

#define LABEL_BG 8
#define LABEL_NONE 9
#define FAR_COLOUR 110   /* RGB distance: farther from every object colour is no object */
#define MIN_AREA 0.003f  /* smallest object, as a share of S^2 */
#define MAX_GROUPS 64

/* Fill thresholds on the inside coverage and the stripe continuation (tools/SCENE.md). */
#define SOLID_COVERAGE 0.80f
#define OUTLINED_COVERAGE 0.12f
#define STRIPE_CONTINUATION 0.68f
/* Ring: middle (radius 0.28 r) nearly empty, inner edge mostly painted. */
#define RING_MIDDLE_MAX 0.15f
#define RING_EDGE_MIN 0.6f

typedef struct {
    int colour, n_px, x0, y0, x1, y1;
    int first; /* its pixels are px[first .. first + n_px) */
} group;

typedef struct {
    int w, h;
    scene_metrics m;
    unsigned char *label;
    unsigned char *scratch; /* w*h bytes */
    int *px;     /* 2*w*h: group pixel lists, then merged lists appended */
    int px_used;
    int n_groups;
    group g[MAX_GROUPS];
} work;

/* ---- 1. labels ------------------------------------------------------------------------------- */

static void label_pixels(const image *im, unsigned char *label)
{
    const int n = im->w * im->h;
    int last_key = -1;
    unsigned char last = LABEL_BG;
    for (int i = 0; i < n; i++) {
        const unsigned char *p = im->px + (size_t)i * (size_t)im->c;
        const int r = p[0], g = im->c >= 3 ? p[1] : p[0], b = im->c >= 3 ? p[2] : p[0];
        const int key = r << 16 | g << 8 | b;
        if (key != last_key) {
            int best = LABEL_NONE, best_d = INT_MAX;
            for (int c = 0; c < COLOUR_COUNT; c++) {
                const int dr = r - SCENE_PALETTE[c][0], dg = g - SCENE_PALETTE[c][1], db = b - SCENE_PALETTE[c][2];
                const int d = dr * dr + dg * dg + db * db;
                if (d < best_d) best_d = d, best = c;
            }
            if (best_d > FAR_COLOUR * FAR_COLOUR) best = LABEL_NONE;
            for (int c = 0; c < SCENE_N_BACKGROUNDS; c++) {
                const int dr = r - SCENE_BACKGROUND[c][0], dg = g - SCENE_BACKGROUND[c][1], db = b - SCENE_BACKGROUND[c][2];
                const int d = dr * dr + dg * dg + db * db;
                if (d < best_d) best_d = d, best = LABEL_BG;
            }
            last = (unsigned char)best;
            last_key = key;
        }
        label[i] = last;
    }
}

/* Object pixels in no 2x2 block of their colour become LABEL_NONE. */
static void open_2x2(unsigned char *label, unsigned char *keep, int w, int h)
{
    memset(keep, 0, (size_t)w * (size_t)h);
    for (int y = 0; y + 1 < h; y++)
        for (int x = 0; x + 1 < w; x++) {
            const int i = y * w + x, l = label[i];
            if (l < COLOUR_COUNT && label[i + 1] == l && label[i + w] == l && label[i + w + 1] == l)
                keep[i] = keep[i + 1] = keep[i + w] = keep[i + w + 1] = 1;
        }
    for (int i = 0; i < w * h; i++)
        if (label[i] < COLOUR_COUNT && !keep[i]) label[i] = LABEL_NONE;
}

/* ---- 2. groups --------------------------------------------------------------------------------- */

/* out = pixels within Chebyshev distance k of a pixel of `colour` (two box passes). */
static void dilate(const unsigned char *label, int colour, int k, int w, int h, unsigned char *tmp, unsigned char *out)
{
    for (int y = 0; y < h; y++) {
        const unsigned char *row = label + (size_t)y * (size_t)w;
        int count = 0;
        for (int x = 0; x < k && x < w; x++) count += row[x] == colour;
        for (int x = 0; x < w; x++) {
            if (x + k < w) count += row[x + k] == colour;
            if (x - k - 1 >= 0) count -= row[x - k - 1] == colour;
            tmp[y * w + x] = count > 0;
        }
    }
    for (int x = 0; x < w; x++) {
        int count = 0;
        for (int y = 0; y < k && y < h; y++) count += tmp[y * w + x];
        for (int y = 0; y < h; y++) {
            if (y + k < h) count += tmp[(y + k) * w + x];
            if (y - k - 1 >= 0) count -= tmp[(y - k - 1) * w + x];
            out[y * w + x] = count > 0;
        }
    }
}

static int by_size(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->n_px != y->n_px) return y->n_px - x->n_px;
    return x->first - y->first;
}

/* Groups of each colour: 8-connected regions of the dilated colour mask. */
static dit_status find_groups(work *wk, dit_err *e)
{
    const int w = wk->w, h = wk->h, n = w * h;
    unsigned char *tmp = malloc((size_t)n), *mask = malloc((size_t)n);
    int *comp = malloc((size_t)n * sizeof(int)), *stack = malloc((size_t)n * sizeof(int));
    int *gid = malloc((size_t)n * sizeof(int));
    dit_status st = DIT_OK;
    if (!tmp || !mask || !comp || !stack || !gid) {
        st = err_set(e, DIT_E_OOM, "checker: out of memory for a %dx%d image", w, h);
        goto done;
    }
    int count[COLOUR_COUNT] = { 0 };
    for (int i = 0; i < n; i++) {
        gid[i] = -1;
        if (wk->label[i] < COLOUR_COUNT) count[wk->label[i]]++;
    }
    const int min_px = (int)fmaxf(12.0f, MIN_AREA * wk->m.side * wk->m.side);
    group found[4 * MAX_GROUPS];
    int nfound = 0;
    for (int c = 0; c < COLOUR_COUNT; c++) {
        if (count[c] < min_px) continue;
        dilate(wk->label, c, wk->m.link, w, h, tmp, mask);
        for (int i = 0; i < n; i++) comp[i] = -1;
        int ncomp = 0;
        for (int i = 0; i < n; i++) {
            if (!mask[i] || comp[i] >= 0) continue;
            int top = 0;
            stack[top++] = i;
            comp[i] = ncomp;
            while (top) {
                const int p = stack[--top], px = p % w, py = p / w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        const int qx = px + dx, qy = py + dy;
                        if (qx < 0 || qy < 0 || qx >= w || qy >= h) continue;
                        const int q = qy * w + qx;
                        if (mask[q] && comp[q] < 0) comp[q] = ncomp, stack[top++] = q;
                    }
            }
            ncomp++;
        }
        /* components -> groups (only those holding enough pixels of the colour) */
        const int base = nfound;
        for (int i = 0; i < n; i++) {
            if (wk->label[i] != c) continue;
            const int k = comp[i];
            int j = base;
            while (j < nfound && found[j].first != k) j++;
            if (j == nfound) {
                if (nfound == 4 * MAX_GROUPS) continue; /* a noise image: the rest is dropped */
                found[nfound++] = (group){ c, 0, w, h, -1, -1, k };
            }
            group *g = &found[j];
            g->n_px++;
            g->x0 = i % w < g->x0 ? i % w : g->x0;
            g->x1 = i % w > g->x1 ? i % w : g->x1;
            g->y0 = i / w < g->y0 ? i / w : g->y0;
            g->y1 = i / w > g->y1 ? i / w : g->y1;
            gid[i] = j;
        }
        for (int j = base; j < nfound; j++) found[j].first = j; /* from here on: its index in found[] */
    }
    /* Parts of one object farther apart than the link (the two contours of a large outlined
     * ring) are nested: the middle of one's box lies in the other's box. Two same-colour objects
     * never are (their bounding circles keep metrics.same_gap apart). */
    int parent[4 * MAX_GROUPS];
    for (int j = 0; j < nfound; j++) parent[j] = j;
    for (int merged = 1; merged;) {
        merged = 0;
        for (int a = 0; a < nfound; a++)
            for (int b = 0; b < nfound; b++) {
                group *ga = &found[a], *gb = &found[b];
                if (a == b || parent[a] != a || parent[b] != b || ga->colour != gb->colour) continue;
                const int mx = gb->x0 + gb->x1, my = gb->y0 + gb->y1; /* twice the middle */
                if (mx < 2 * ga->x0 || mx > 2 * ga->x1 || my < 2 * ga->y0 || my > 2 * ga->y1) continue;
                ga->n_px += gb->n_px;
                ga->x0 = gb->x0 < ga->x0 ? gb->x0 : ga->x0;
                ga->y0 = gb->y0 < ga->y0 ? gb->y0 : ga->y0;
                ga->x1 = gb->x1 > ga->x1 ? gb->x1 : ga->x1;
                ga->y1 = gb->y1 > ga->y1 ? gb->y1 : ga->y1;
                gb->n_px = 0;
                parent[b] = a;
                merged = 1;
            }
    }
    for (int i = 0; i < n; i++)
        if (gid[i] >= 0)
            while (parent[gid[i]] != gid[i]) gid[i] = parent[gid[i]];
    /* keep the large ones, largest first; then pixel lists by counting sort */
    group order[4 * MAX_GROUPS];
    memcpy(order, found, (size_t)nfound * sizeof(group));
    qsort(order, (size_t)nfound, sizeof(group), by_size);
    int remap[4 * MAX_GROUPS];
    for (int j = 0; j < nfound; j++) remap[j] = -1;
    wk->n_groups = 0;
    for (int j = 0; j < nfound && wk->n_groups < CHECKER_MAX_OBJECTS; j++) {
        if (order[j].n_px < min_px) break;
        remap[order[j].first] = wk->n_groups;
        wk->g[wk->n_groups++] = order[j];
    }
    int at = 0;
    for (int j = 0; j < wk->n_groups; j++) {
        wk->g[j].first = at;
        at += wk->g[j].n_px;
        wk->g[j].n_px = 0;
    }
    for (int i = 0; i < n; i++) {
        if (gid[i] < 0 || remap[gid[i]] < 0) continue;
        group *g = &wk->g[remap[gid[i]]];
        wk->px[g->first + g->n_px++] = i;
    }
    wk->px_used = at;
done:
    free(tmp), free(mask), free(comp), free(stack), free(gid);
    return st;
}

/* ---- 3. shape fitting -------------------------------------------------------------------------- */

static const scene_shape FIT_SHAPES[] = { SHAPE_CIRCLE, SHAPE_SQUARE, SHAPE_TRIANGLE, SHAPE_STAR, SHAPE_CROSS };
#define N_FIT_SHAPES 5
#define MAX_SAMPLES 200
#define GOOD_FIT 0.85f    /* below this, the fit starts again from more places */
#define RESTARTS 4
#define PROBE_DEPTH 1.25f  /* pixels between the outline and its probes */
#define FIT_TOLERANCE 0.5f /* pixels of the group may lie this far outside the fitted shape */

#define MAX_PROBES 800

typedef struct {
    const work *wk;
    const group *g;
    scene_object o; /* the hypothesis: shape, cx, cy, r */
    const float (*v)[2];
    int nv;
    float normal[12][2]; /* inward unit normal of each edge (unit space) */
    int sample[MAX_SAMPLES], n_sample;
    /* probes for the current shape and radius, as offsets from the centre (pixels); side -1 inside */
    float probe_x[MAX_PROBES], probe_y[MAX_PROBES];
    signed char probe_side[MAX_PROBES];
    int n_probes;
    float probes_r;
    int probes_shape;
} fitter;

static int label_at(const work *wk, float x, float y)
{
    const int ix = (int)floorf(x), iy = (int)floorf(y);
    if (ix < 0 || iy < 0 || ix >= wk->w || iy >= wk->h) return -1;
    return wk->label[iy * wk->w + ix];
}

/* Crossing-number test in unit space. */
static int inside_polygon(const float (*v)[2], int n, float x, float y)
{
    int in = 0;
    for (int i = 0, j = n - 1; i < n; j = i++)
        if ((v[i][1] > y) != (v[j][1] > y) && x < (v[j][0] - v[i][0]) * (y - v[i][1]) / (v[j][1] - v[i][1]) + v[i][0])
            in = !in;
    return in;
}

/* Precision: share of the sampled edge pixels of the group inside the hypothesis (FIT_TOLERANCE). */
static float precision(const fitter *f)
{
    const scene_object *o = &f->o;
    const int w = f->wk->w;
    int in = 0;
    for (int k = 0; k < f->n_sample; k++) {
        const int p = f->sample[k];
        const float x = (float)(p % w) + 0.5f, y = (float)(p / w) + 0.5f;
        if (!f->nv) {
            in += hypotf(x - o->cx, y - o->cy) <= o->r + FIT_TOLERANCE;
            continue;
        }
        if (inside_polygon(f->v, f->nv, (x - o->cx) / o->r, (y - o->cy) / o->r) || scene_sdf(o, x, y) <= FIT_TOLERANCE) in++;
    }
    return f->n_sample ? (float)in / (float)f->n_sample : 0.0f;
}

/* Squared distance from (x, y) to the segment a-b. */
static float segment_dist2(float x, float y, const float a[2], const float b[2])
{
    const float ex = b[0] - a[0], ey = b[1] - a[1], wx = x - a[0], wy = y - a[1];
    float t = (wx * ex + wy * ey) / (ex * ex + ey * ey);
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    const float dx = wx - ex * t, dy = wy - ey * t;
    return dx * dx + dy * dy;
}

/* Is unit-space point (x, y), a probe off edge i, closer than `limit` to edge i-1 or i+1 (where
 * a tip or a corner makes the shape, or the outside, thinner than the probe needs)? */
static int near_neighbour_edge(const fitter *f, int i, float x, float y, float limit)
{
    const int n = f->nv, prev = (i + n - 1) % n, next = (i + 1) % n, after = (i + 2) % n;
    return segment_dist2(x, y, f->v[prev], f->v[i]) < limit * limit ||
           segment_dist2(x, y, f->v[next], f->v[after]) < limit * limit;
}

/* Probes every ~1.5 pixels along the outline (fewer on huge shapes), PROBE_DEPTH inside
 * (side -1: should show the colour) and outside (+1: should not). Probes closer than a pixel to
 * a neighbouring edge (sharp tips, which the 2x2 opening trims; inner corners) are left out. (The
 * shapes are nowhere else thinner than 2 pixels.) They depend
 * on the shape and radius only, so they are made again only when those change. */
static void make_probes(fitter *f)
{
    const scene_object *o = &f->o;
    f->n_probes = 0;
    f->probes_r = o->r;
    f->probes_shape = (int)o->shape;
    const float spacing = fmaxf(1.5f, 8.0f * o->r / (float)(MAX_PROBES / 2)); /* perimeters are below 8 r */
    if (!f->nv) {
        const int n = (int)(6.2831853f * o->r / spacing) + 8;
        for (int k = 0; k < n && f->n_probes + 2 <= MAX_PROBES; k++) {
            const float a = 6.2831853f * ((float)k + 0.5f) / (float)n, c = cosf(a), s = sinf(a);
            for (int side = -1; side <= 1; side += 2) {
                f->probe_x[f->n_probes] = (o->r + (float)side * PROBE_DEPTH) * c;
                f->probe_y[f->n_probes] = (o->r + (float)side * PROBE_DEPTH) * s;
                f->probe_side[f->n_probes++] = (signed char)side;
            }
        }
        return;
    }
    for (int i = 0; i < f->nv; i++) {
        const int j = (i + 1) % f->nv;
        const float ex = f->v[j][0] - f->v[i][0], ey = f->v[j][1] - f->v[i][1];
        const int n = (int)(hypotf(ex, ey) * o->r / spacing) + 1;
        for (int k = 0; k < n; k++) {
            const float t = ((float)k + 0.5f) / (float)n;
            const float x = o->r * (f->v[i][0] + ex * t), y = o->r * (f->v[i][1] + ey * t);
            for (int side = -1; side <= 1; side += 2) {
                const float px = x - (float)side * PROBE_DEPTH * f->normal[i][0];
                const float py = y - (float)side * PROBE_DEPTH * f->normal[i][1];
                if (near_neighbour_edge(f, i, px / o->r, py / o->r, 1.0f / o->r) || f->n_probes == MAX_PROBES) continue;
                f->probe_x[f->n_probes] = px;
                f->probe_y[f->n_probes] = py;
                f->probe_side[f->n_probes++] = (signed char)side;
            }
        }
    }
}

/* Boundary agreement: the share of good inside probes times the share of good outside probes.
 * Probes on another object's colour (it may cover this one) or off the image do not count. */
static float boundary(fitter *f, int *n_seen)
{
    if (f->probes_r != f->o.r || f->probes_shape != (int)f->o.shape) make_probes(f);
    int seen[2] = { 0, 0 }, good[2] = { 0, 0 };
    for (int k = 0; k < f->n_probes; k++) {
        const int l = label_at(f->wk, f->o.cx + f->probe_x[k], f->o.cy + f->probe_y[k]);
        if (l < 0 || (l < COLOUR_COUNT && l != f->g->colour)) continue;
        const int out = f->probe_side[k] > 0;
        seen[out]++;
        good[out] += (l == f->g->colour) != out;
    }
    *n_seen = seen[0];
    if (!seen[0]) return 0.0f;
    return (float)good[0] / (float)seen[0] * (seen[1] ? (float)good[1] / (float)seen[1] : 1.0f);
}

static float fit_score(fitter *f)
{
    int seen;
    const float b = boundary(f, &seen);
    if (seen < 8) return 0.0f;
    return b * precision(f);
}

static void set_shape(fitter *f, scene_shape shape)
{
    f->o.shape = shape;
    f->nv = scene_shape_polygon(shape, &f->v);
    /* inward normals: the side of each edge where the middle of the polygon's area lies */
    float area = 0.0f;
    for (int i = 0; i < f->nv; i++) {
        const int j = (i + 1) % f->nv;
        area += f->v[i][0] * f->v[j][1] - f->v[j][0] * f->v[i][1];
    }
    for (int i = 0; i < f->nv; i++) {
        const int j = (i + 1) % f->nv;
        const float ex = f->v[j][0] - f->v[i][0], ey = f->v[j][1] - f->v[i][1], len = hypotf(ex, ey);
        /* with a positive signed area (counter-clockwise in x-right/y-up terms) the inside is left */
        const float s = area > 0 ? 1.0f : -1.0f;
        f->normal[i][0] = -s * ey / len;
        f->normal[i][1] = s * ex / len;
    }
}

/* Compass search over centre and radius from the hypothesis in f->o. */
static float refine(fitter *f, float step_c, float step_r, float min_step)
{
    float best = fit_score(f);
    while (step_c >= min_step) {
        int moved = 0;
        for (int k = 0; k < 6; k++) {
            scene_object save = f->o;
            if (k == 0) f->o.cx += step_c;
            if (k == 1) f->o.cx -= step_c;
            if (k == 2) f->o.cy += step_c;
            if (k == 3) f->o.cy -= step_c;
            if (k == 4) f->o.r += step_r;
            if (k == 5) f->o.r -= step_r;
            if (f->o.r < 2.0f) {
                f->o = save;
                continue;
            }
            const float s = fit_score(f);
            if (s > best + 1e-6f) best = s, moved = 1;
            else f->o = save;
        }
        if (!moved) step_c *= 0.5f, step_r *= 0.5f;
    }
    return best;
}

/* A start for the hypothesis's shape from the group's box: radius from the box (the larger of
 * the width and height estimates) times grow, and the shape's box pinned to the left, middle or
 * right (px = 0, 1, 2) and top, middle or bottom (py) of it. */
static void start(fitter *f, const group *g, int px, int py, float grow)
{
    float box[4];
    scene_shape_box(f->o.shape, box);
    const float x0 = (float)g->x0, x1 = (float)(g->x1 + 1), y0 = (float)g->y0, y1 = (float)(g->y1 + 1);
    const float r = grow * fmaxf((x1 - x0) / (box[2] - box[0]), (y1 - y0) / (box[3] - box[1]));
    f->o.r = r;
    f->o.cx = px == 0 ? x0 - r * box[0] : px == 2 ? x1 - r * box[2] : 0.5f * (x0 + x1) - 0.5f * r * (box[0] + box[2]);
    f->o.cy = py == 0 ? y0 - r * box[1] : py == 2 ? y1 - r * box[3] : 0.5f * (y0 + y1) - 0.5f * r * (box[1] + box[3]);
}

/* Share of the pixels in the annulus [r0, r1] around (cx, cy) that show the colour, pixels of
 * other object colours not counted; -1 when none can be seen. */
static float annulus_coverage(const work *wk, const checker_object *d, float r0, float r1)
{
    int hit = 0, seen = 0;
    const int x0 = (int)floorf(d->cx - r1), x1 = (int)ceilf(d->cx + r1);
    const int y0 = (int)floorf(d->cy - r1), y1 = (int)ceilf(d->cy + r1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const float rr = hypotf((float)x + 0.5f - d->cx, (float)y + 0.5f - d->cy);
            if (rr < r0 || rr > r1) continue;
            const int l = label_at(wk, (float)x + 0.5f, (float)y + 0.5f);
            if (l < 0 || (l < COLOUR_COUNT && l != (int)d->colour)) continue;
            seen++;
            hit += l == (int)d->colour;
        }
    return seen ? (float)hit / (float)seen : -1.0f;
}

static void fit_group(const work *wk, const group *g, checker_object *d)
{
    fitter f = { .wk = wk, .g = g }; /* about 8 KB */
    /* precision samples: edge pixels (a 4-neighbour of another label), evenly spread */
    int n_edge = 0;
    for (int pass = 0; pass < 2; pass++) {
        const int step = pass && n_edge > MAX_SAMPLES ? n_edge / MAX_SAMPLES + 1 : 1;
        int k = 0;
        for (int i = 0; i < g->n_px; i++) {
            const int p = wk->px[g->first + i], x = p % wk->w, y = p / wk->w;
            const int edge = x == 0 || y == 0 || x == wk->w - 1 || y == wk->h - 1 || wk->label[p - 1] != g->colour ||
                             wk->label[p + 1] != g->colour || wk->label[p - wk->w] != g->colour ||
                             wk->label[p + wk->w] != g->colour;
            if (!edge) continue;
            if (!pass) n_edge++;
            else if (k++ % step == 0 && f.n_sample < MAX_SAMPLES) f.sample[f.n_sample++] = p;
        }
    }
    f.o.colour = (scene_colour)g->colour;
    /* Each shape from its box: the radius is the larger estimate (a covered side only shrinks the
     * box), the centre the box's middle. When no fit is good (a part is covered), every shape
     * starts again 1, 1.25 and 1.5 times as large, pinned to each side and corner of the box; the
     * best few distinct starts are refined. */
    float best = -1.0f;
    scene_object best_o = { 0 };
    for (int s = 0; s < N_FIT_SHAPES; s++) {
        set_shape(&f, FIT_SHAPES[s]);
        start(&f, g, 1, 1, 1.0f);
        const float sc = refine(&f, fmaxf(1.0f, 0.1f * f.o.r), 0.05f * f.o.r, 0.25f);
        if (sc > best) best = sc, best_o = f.o;
    }
    if (best < GOOD_FIT) {
        scene_object cand[RESTARTS];
        float cand_score[RESTARTS];
        int n_cand = 0;
        for (int s = 0; s < N_FIT_SHAPES; s++) {
            set_shape(&f, FIT_SHAPES[s]);
            for (int pin = 0; pin < 27; pin++) {
                start(&f, g, pin % 3, pin / 3 % 3, 1.0f + 0.25f * (float)(pin / 9));
                const float sc = fit_score(&f);
                int dup = 0;
                for (int k = 0; k < n_cand; k++)
                    dup |= cand[k].shape == f.o.shape && fabsf(cand[k].cx - f.o.cx) < 0.5f &&
                           fabsf(cand[k].cy - f.o.cy) < 0.5f && fabsf(cand[k].r - f.o.r) < 0.5f;
                if (dup) continue;
                if (n_cand == RESTARTS && sc <= cand_score[RESTARTS - 1]) continue; /* kept sorted, best first */
                int k = n_cand < RESTARTS ? n_cand++ : RESTARTS - 1;
                for (; k > 0 && cand_score[k - 1] < sc; k--) cand[k] = cand[k - 1], cand_score[k] = cand_score[k - 1];
                cand[k] = f.o, cand_score[k] = sc;
            }
        }
        for (int k = 0; k < n_cand; k++) {
            set_shape(&f, cand[k].shape);
            f.o = cand[k];
            const float sc = refine(&f, fmaxf(1.0f, 0.1f * f.o.r), 0.05f * f.o.r, 0.25f);
            if (sc > best) best = sc, best_o = f.o;
        }
    }
    d->shape = best_o.shape;
    d->colour = (scene_colour)g->colour;
    d->cx = best_o.cx;
    d->cy = best_o.cy;
    d->r = best_o.r;
    d->fit = best;
    d->x0 = g->x0, d->y0 = g->y0, d->x1 = g->x1, d->y1 = g->y1;
    d->n_px = g->n_px;
    if (d->shape == SHAPE_CIRCLE) {
        const float middle = annulus_coverage(wk, d, 0.0f, 0.28f * d->r);
        const float r0 = SCENE_RING_HOLE * d->r + 0.5f, edge = annulus_coverage(wk, d, r0, r0 + fmaxf(1.2f, 0.8f * wk->m.outline));
        if (middle >= 0 && middle <= RING_MIDDLE_MAX && edge >= RING_EDGE_MIN) d->shape = SHAPE_RING;
    }
    d->size = d->r >= wk->m.r_split ? SIZE_LARGE : SIZE_SMALL;
}

/* ---- 5. occlusion -------------------------------------------------------------------------------- */

static scene_object as_object(const checker_object *d)
{
    scene_object o = { .shape = d->shape, .colour = d->colour, .cx = d->cx, .cy = d->cy, .r = d->r };
    float b[4];
    scene_shape_box(d->shape, b);
    o.x0 = o.cx + o.r * b[0], o.y0 = o.cy + o.r * b[1], o.x1 = o.cx + o.r * b[2], o.y1 = o.cy + o.r * b[3];
    return o;
}

/* A piece cut off an object (by an object in front whose gaps show too little of it) lies inside
 * the object's fitted shape: a smaller group of the same colour with 80% of its pixels within a
 * pixel of a well fitted (GOOD_FIT) shape joins it, and the shape is fitted again. Returns 1 when
 * it merged two groups. */
static int absorb(work *wk, checker_result *r)
{
    for (int a = 0; a < r->n; a++) {
        if (r->obj[a].fit < GOOD_FIT) continue;
        const scene_object o = as_object(&r->obj[a]);
        for (int b = 0; b < r->n; b++) {
            group *ga = &wk->g[a], *gb = &wk->g[b];
            if (a == b || ga->colour != gb->colour || gb->n_px > ga->n_px) continue;
            int in = 0;
            for (int k = 0; k < gb->n_px; k++) {
                const int p = wk->px[gb->first + k];
                in += scene_sdf(&o, (float)(p % wk->w) + 0.5f, (float)(p / wk->w) + 0.5f) <= 1.0f;
            }
            if ((float)in < 0.8f * (float)gb->n_px || wk->px_used + ga->n_px + gb->n_px > 2 * wk->w * wk->h) continue;
            /* the merged list goes after everything so far (px holds 2*w*h entries) */
            const int first = wk->px_used;
            memcpy(wk->px + first, wk->px + ga->first, (size_t)ga->n_px * sizeof(int));
            memcpy(wk->px + first + ga->n_px, wk->px + gb->first, (size_t)gb->n_px * sizeof(int));
            ga->first = first;
            ga->n_px += gb->n_px;
            wk->px_used += ga->n_px;
            ga->x0 = gb->x0 < ga->x0 ? gb->x0 : ga->x0;
            ga->y0 = gb->y0 < ga->y0 ? gb->y0 : ga->y0;
            ga->x1 = gb->x1 > ga->x1 ? gb->x1 : ga->x1;
            ga->y1 = gb->y1 > ga->y1 ? gb->y1 : ga->y1;
            for (int k = b; k + 1 < r->n; k++) wk->g[k] = wk->g[k + 1], r->obj[k] = r->obj[k + 1];
            r->n--;
            wk->n_groups--;
            const int at = b < a ? a - 1 : a;
            fit_group(wk, &wk->g[at], &r->obj[at]);
            return 1;
        }
    }
    return 0;
}

/* Where both objects paint whatever their fill (the contour band; all of a solid object's
 * silhouette, by the fill estimated with every other colour counted as covering), the front one
 * shows. Half a pixel is kept off the edges of those regions (anti-aliased blends, fit errors).
 * i is in front of j when it holds at least twice the pixels there, three at least. */
static void occlusion(const work *wk, checker_result *r)
{
    const float band = wk->m.outline;
    for (int i = 0; i < r->n; i++)
        for (int j = i + 1; j < r->n; j++) {
            const scene_object a = as_object(&r->obj[i]), b = as_object(&r->obj[j]);
            const int solid_a = r->obj[i].fill == FILL_SOLID, solid_b = r->obj[j].fill == FILL_SOLID;
            const int x0 = (int)fmaxf(0.0f, floorf(fmaxf(a.x0, b.x0))), x1 = (int)fminf((float)wk->w - 1, ceilf(fminf(a.x1, b.x1)));
            const int y0 = (int)fmaxf(0.0f, floorf(fmaxf(a.y0, b.y0))), y1 = (int)fminf((float)wk->h - 1, ceilf(fminf(a.y1, b.y1)));
            int na = 0, nb = 0;
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++) {
                    const float px = (float)x + 0.5f, py = (float)y + 0.5f;
                    const float da = scene_sdf(&a, px, py), db = scene_sdf(&b, px, py);
                    if (da > -0.5f || db > -0.5f || (da < 0.5f - band && !solid_a) || (db < 0.5f - band && !solid_b))
                        continue;
                    const int l = wk->label[y * wk->w + x];
                    na += l == (int)a.colour;
                    nb += l == (int)b.colour;
                }
            signed char v = 0;
            if (na + nb >= 3 && na >= 2 * nb) v = 1;
            if (na + nb >= 3 && nb >= 2 * na) v = -1;
            r->front[i][j] = v;
            r->front[j][i] = (signed char)-v;
        }
}

/* ---- 6. fill ------------------------------------------------------------------------------------ */

/* Inside pixels of the box: 0 not inside (or off the image), 1 covered by an object in front,
 * 2 unpainted, 3 painted in the object's colour. */
enum { IN_NO, IN_COVERED, IN_BARE, IN_PAINTED };

static void classify_fill(const work *wk, checker_result *r, int i)
{
    checker_object *d = &r->obj[i];
    const scene_object o = as_object(d);
    const float inset = wk->m.outline + 0.5f;
    /* colours of objects in front of this one (or of unknown order) cover it; the colours of
     * objects behind show through its gaps and count as unpainted */
    int covers[COLOUR_COUNT] = { 0 };
    for (int j = 0; j < r->n; j++)
        if (j != i && r->front[i][j] <= 0) covers[r->obj[j].colour] = 1;
    for (int j = 0; j < r->n; j++)
        if (j != i && r->front[i][j] > 0 && r->obj[j].colour != d->colour) covers[r->obj[j].colour] = 0;
    const int x0 = (int)fmaxf(0.0f, floorf(o.x0)), x1 = (int)fminf((float)wk->w - 1, ceilf(o.x1));
    const int y0 = (int)fmaxf(0.0f, floorf(o.y0)), y1 = (int)fminf((float)wk->h - 1, ceilf(o.y1));
    if (x1 < x0 || y1 < y0) {
        d->fill = FILL_SOLID, d->coverage = 1.0f, d->continuation = 1.0f;
        return;
    }
    const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    unsigned char *state = wk->scratch;
    int painted = 0, seen = 0;
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            unsigned char *st = &state[y * bw + x];
            *st = IN_NO;
            if (scene_sdf(&o, (float)(x0 + x) + 0.5f, (float)(y0 + y) + 0.5f) > -inset) continue;
            const int l = wk->label[(y0 + y) * wk->w + x0 + x];
            const int v = l == (int)d->colour ? IN_PAINTED : l < COLOUR_COUNT && covers[l] ? IN_COVERED : IN_BARE;
            *st = (unsigned char)v;
            seen += v != IN_COVERED;
            painted += v == IN_PAINTED;
        }

    /* continuation: from painted pixels, 0.6 period along x, y and both diagonals */
    const int step_axis = (int)lrintf(0.6f * wk->m.period), step_diag = (int)lrintf(0.42f * wk->m.period);
    const int dirs[4][2] = { { step_axis, 0 }, { 0, step_axis }, { step_diag, step_diag }, { step_diag, -step_diag } };
    int cont[4] = { 0 }, cont_seen[4] = { 0 };
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            if (state[y * bw + x] != IN_PAINTED) continue;
            for (int k = 0; k < 4; k++) {
                const int qx = x + dirs[k][0], qy = y + dirs[k][1];
                if (qx < 0 || qy < 0 || qx >= bw || qy >= bh) continue;
                const int sq = state[qy * bw + qx];
                if (sq == IN_NO || sq == IN_COVERED) continue;
                cont_seen[k]++;
                cont[k] += sq == IN_PAINTED;
            }
        }
    float continuation = 0.0f;
    for (int k = 0; k < 4; k++)
        if (cont_seen[k] >= 4) continuation = fmaxf(continuation, (float)cont[k] / (float)cont_seen[k]);
    d->coverage = seen ? (float)painted / (float)seen : 1.0f;
    d->continuation = continuation;
    if (d->coverage >= SOLID_COVERAGE) d->fill = FILL_SOLID;
    else if (d->coverage <= OUTLINED_COVERAGE) d->fill = FILL_OUTLINED;
    else d->fill = continuation >= STRIPE_CONTINUATION ? FILL_STRIPED : FILL_DOTTED;
}

/* ---- detection ----------------------------------------------------------------------------------- */

dit_status checker_detect(const image *im, checker_result *r, dit_err *e)
{
    memset(r, 0, sizeof *r);
    if (!im || !im->px || im->w < 16 || im->h < 16 || im->w > IMG_MAX_SIDE || im->h > IMG_MAX_SIDE || im->c < 1 ||
        im->c > 4)
        return err_set(e, DIT_E_ARG, "checker: the image must be 16 to %d pixels a side with 1 to 4 channels",
                       IMG_MAX_SIDE);
    work wk = { .w = im->w, .h = im->h, .m = scene_metrics_for(im->w, im->h) };
    const size_t n = (size_t)im->w * (size_t)im->h;
    wk.label = malloc(n);
    wk.scratch = malloc(n);
    wk.px = malloc(2 * n * sizeof(int));
    dit_status st = DIT_OK;
    if (!wk.label || !wk.scratch || !wk.px) {
        st = err_set(e, DIT_E_OOM, "checker: out of memory for a %dx%d image", im->w, im->h);
        goto done;
    }
    label_pixels(im, wk.label);
    open_2x2(wk.label, wk.scratch, wk.w, wk.h);
    if ((st = find_groups(&wk, e))) goto done;
    r->w = im->w;
    r->h = im->h;
    r->n = wk.n_groups;
    for (int i = 0; i < r->n; i++) fit_group(&wk, &wk.g[i], &r->obj[i]);
    while (absorb(&wk, r)) {}
    for (int i = 0; i < r->n; i++) classify_fill(&wk, r, i); /* front[][] all 0: others cover */
    occlusion(&wk, r);
    for (int i = 0; i < r->n; i++) classify_fill(&wk, r, i);
done:
    free(wk.label), free(wk.scratch), free(wk.px);
    return st;
}

dit_status checker_detect_chw(const float *chw, int h, int w, checker_result *r, dit_err *e)
{
    image im = { 0 };
    dit_status st = img_from_chw(&im, chw, 3, h, w, e);
    if (st) return st;
    st = checker_detect(&im, r, e);
    img_free(&im);
    return st;
}

/* ---- scoring ------------------------------------------------------------------------------------- */

int checker_match_truth(const checker_result *d, const scene *s, int det[SCENE_MAX_OBJECTS],
                        float dist[SCENE_MAX_OBJECTS], int used[CHECKER_MAX_OBJECTS])
{
    int found = 0;
    for (int j = 0; j < CHECKER_MAX_OBJECTS; j++) used[j] = 0;
    for (int k = 0; k < s->n; k++) {
        const scene_object *g = &s->obj[k];
        int best = -1;
        float bd = 1e9f;
        for (int j = 0; j < d->n; j++) {
            const float dd = hypotf(d->obj[j].cx - g->cx, d->obj[j].cy - g->cy);
            if (!used[j] && d->obj[j].colour == g->colour && dd < bd) bd = dd, best = j;
        }
        det[k] = best, dist[k] = bd;
        if (best >= 0) used[best] = 1, found++;
    }
    return found;
}

static int matches(const scene_mention *m, const checker_object *d)
{
    return (m->shape < 0 || m->shape == (int)d->shape) && (m->colour < 0 || m->colour == (int)d->colour) &&
           (m->size < 0 || m->size == (int)d->size) && (m->fill < 0 || m->fill == (int)d->fill);
}

int checker_relation_holds(const checker_result *d, int a, scene_rel rel, int b)
{
    const checker_object *p = &d->obj[a], *q = &d->obj[b];
    const float margin = scene_metrics_for(d->w, d->h).rel_margin_check;
    switch (rel) {
    case REL_LEFT: return q->cx - p->cx >= margin;
    case REL_RIGHT: return p->cx - q->cx >= margin;
    case REL_ABOVE: return q->cy - p->cy >= margin;
    case REL_BELOW: return p->cy - q->cy >= margin;
    case REL_FRONT: return d->front[a][b] > 0;
    case REL_BEHIND: return d->front[a][b] < 0;
    default: return 0;
    }
}

typedef struct {
    const checker_result *d;
    const scene_prompt *p;
    checker_score *s;
    int first_of[SCENE_MAX_OBJECTS]; /* mention -> its first requested object */
    int cur[SCENE_MAX_OBJECTS], best[SCENE_MAX_OBJECTS];
    long best_value;
} assigner;

/* Objects right, then relations right, then attributes right (lexicographic). */
static long assignment_value(const assigner *a)
{
    long objects = 0, relations = 0, attributes = 0;
    for (int k = 0; k < a->s->n_requested; k++) {
        if (a->cur[k] < 0) continue;
        const scene_mention *m = &a->p->m[a->s->mention_of[k]];
        const checker_object *o = &a->d->obj[a->cur[k]];
        objects += matches(m, o);
        attributes += (m->shape < 0 || m->shape == (int)o->shape) + (m->colour < 0 || m->colour == (int)o->colour) +
                      (m->size < 0 || m->size == (int)o->size) + (m->fill < 0 || m->fill == (int)o->fill);
    }
    for (int i = 0; i < a->p->n_relations; i++) {
        const int x = a->cur[a->first_of[a->p->r[i].a]], y = a->cur[a->first_of[a->p->r[i].b]];
        relations += x >= 0 && y >= 0 && checker_relation_holds(a->d, x, a->p->r[i].rel, y);
    }
    return objects * 1000000L + relations * 1000L + attributes;
}

static void assign(assigner *a, int k, unsigned used)
{
    if (k >= a->s->n_requested || k >= SCENE_MAX_OBJECTS) {
        const long v = assignment_value(a);
        if (v > a->best_value) a->best_value = v, memcpy(a->best, a->cur, sizeof a->cur);
        return;
    }
    for (int j = -1; j < a->d->n; j++) {
        if (j >= 0 && (used >> j & 1)) continue;
        /* "none" only when too few detections are left for the requested objects still to come */
        if (j < 0 && a->d->n - __builtin_popcount(used) > a->s->n_requested - k - 1) continue;
        a->cur[k] = j;
        assign(a, k + 1, j >= 0 ? used | 1u << j : used);
    }
}

static void tally(checker_tally *t, int ok)
{
    t->n++;
    t->ok += !!ok;
}

void checker_score_prompt(const checker_result *d, const scene_prompt *p, checker_score *s)
{
    memset(s, 0, sizeof *s);
    assigner a = { .d = d, .p = p, .s = s, .best_value = -1 };
    for (int i = 0; i < p->n_mentions; i++) {
        a.first_of[i] = s->n_requested;
        for (int c = 0; c < p->m[i].count && s->n_requested < SCENE_MAX_OBJECTS; c++) s->mention_of[s->n_requested++] = i;
    }
    for (int k = 0; k < SCENE_MAX_OBJECTS; k++) a.cur[k] = a.best[k] = -1;
    assign(&a, 0, 0);
    int all = 1;
    for (int k = 0; k < s->n_requested; k++) {
        const scene_mention *m = &p->m[s->mention_of[k]];
        const int j = s->det_of[k] = a.best[k];
        const checker_object *o = j >= 0 ? &d->obj[j] : NULL;
        if (m->shape >= 0) tally(&s->shape, o && (int)o->shape == m->shape);
        if (m->colour >= 0) tally(&s->colour, o && (int)o->colour == m->colour);
        if (m->size >= 0) tally(&s->size, o && (int)o->size == m->size);
        if (m->fill >= 0) tally(&s->fill, o && (int)o->fill == m->fill);
        s->object_ok[k] = (signed char)(o && matches(m, o));
        tally(&s->object, s->object_ok[k]);
        all &= s->object_ok[k];
    }
    for (int i = 0; i < p->n_mentions; i++) {
        s->count_ok[i] = -1;
        if (p->m[i].count < 2) continue;
        int fit = 0;
        for (int j = 0; j < d->n; j++) fit += matches(&p->m[i], &d->obj[j]);
        s->count_ok[i] = (signed char)(fit == p->m[i].count);
        tally(&s->count, s->count_ok[i]);
        all &= s->count_ok[i];
    }
    for (int i = 0; i < p->n_relations; i++) {
        const scene_relation *rel = &p->r[i];
        const int x = s->det_of[a.first_of[rel->a]], y = s->det_of[a.first_of[rel->b]];
        s->relation_ok[i] = (signed char)(x >= 0 && y >= 0 && checker_relation_holds(d, x, rel->rel, y));
        tally(rel->rel >= REL_FRONT ? &s->occlusion : &s->relation, s->relation_ok[i]);
        all &= s->relation_ok[i];
    }
    s->all_correct = all;
}

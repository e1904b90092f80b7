/* tools/scene_cmd.c — `dit scene` (the embedded model's dataset: pictures, ground truth,
 * captions) and `dit score` (how well a picture matches a caption, by tools/checker.c).
 *
 *   dit scene --seed 0 --count 1000 --size 128 --split train --out data/train
 *   dit scene --vocab
 *   dit score out.png -p "a red circle to the left of a blue square" [--json]
 *
 * Errors are one line naming the flag or file; exit 2 for usage, 1 for everything else. A failed
 * `dit scene` removes every file it wrote.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "core/image.h"
#include "tools/checker.h"
#include "tools/cli.h"
#include "tools/scene.h"

#define MAX_COUNT 10000000

static void scene_usage(FILE *f)
{
    fprintf(f,
            "usage: dit scene [--seed S] [--count N] [--size W[xH]] [--split train|heldout] [--out DIR]\n"
            "       dit scene --vocab\n"
            "\n"
            "Write N procedural scenes (1-4 shapes on a plain or two-tone background) for training and\n"
            "evaluating the embedded model: DIR/NNNNN.png (scene i from seed S+i; its first caption and\n"
            "seed in PNG text chunks), DIR/NNNNN.json (ground truth: every object's shape, colour, size,\n"
            "fill, centre, radius, box and depth, and three captions) and DIR/captions.txt (one line per\n"
            "caption: file name, a tab, the caption). Train scenes never hold a held-out (shape, colour,\n"
            "fill) combination; held-out scenes hold only those. tools/SCENE.md describes it all.\n"
            "\n"
            "options:\n"
            "  --seed S          first seed [0]\n"
            "  --count N         number of scenes [1]\n"
            "  --size W[xH]      image size, each side %d..%d [128]\n"
            "  --split NAME      train or heldout [train]\n"
            "  --out DIR         output folder, created if missing (its parent must exist) [.]\n"
            "  --dataset PREFIX  instead of PNG files: PREFIX.rgb (N x H x W x 3 bytes) and PREFIX.jsonl\n"
            "                    (a line per scene: index, captions, objects, seed), for tools/train/\n"
            "  --no-aa           hard edges (no anti-aliasing)\n"
            "  --vocab           print every word the captions can use, one a line, and exit\n"
            "  --check           write nothing: read the N scenes back with the checker (dit score) and\n"
            "                    print how many objects and captions it gets right, and the time taken\n"
            "  -h, --help        show this help\n"
            "\n"
            "exit status: 0 ok, 1 cannot write, 2 usage error\n",
            SCENE_MIN_SIDE, SCENE_MAX_SIDE);
}

static void score_usage(FILE *f)
{
    fprintf(f,
            "usage: dit score IMAGE [-p PROMPT] [--json]\n"
            "\n"
            "Find the shapes in IMAGE (PNG, JPEG, BMP, TGA) and, with -p, score the image against PROMPT,\n"
            "a caption in the scene grammar (`dit scene --vocab` lists its words): every requested object\n"
            "matched to a different detected one; per attribute, count, relation and occlusion, which are\n"
            "right; object-level correctness (requested objects found with every attribute the prompt\n"
            "gives) and whether everything is right. tools/SCENE.md has the exact rules.\n"
            "\n"
            "options:\n"
            "  -p, --prompt TEXT   the caption to score against\n"
            "  --json              print one JSON object instead of text\n"
            "  -h, --help          show this help\n"
            "\n"
            "exit status: 0 scored (whatever the score), 1 unreadable image, 2 usage error or a prompt\n"
            "outside the grammar\n");
}

/* "128" or "128x96". */
static int parse_size(const char *s, int *w, int *h)
{
    char *end;
    errno = 0;
    const long a = strtol(s, &end, 10);
    if (errno || end == s || a < SCENE_MIN_SIDE || a > SCENE_MAX_SIDE) return 0;
    long b = a;
    if (*end == 'x') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (errno || end == t || b < SCENE_MIN_SIDE || b > SCENE_MAX_SIDE) return 0;
    }
    if (*end) return 0;
    *w = (int)a, *h = (int)b;
    return 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') return 0;
    const unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Write text to path through a temporary file and a rename (complete or absent). */
static int write_text(const char *path, const char *text, dit_err *e)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set(e, DIT_E_IO, "%s: cannot create file: %s", path, strerror(errno));
    const size_t n = strlen(text);
    const int ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) || !ok || rename(tmp, path)) {
        const int err = errno;
        unlink(tmp);
        return err_set(e, DIT_E_IO, "%s: cannot write: %s", path, strerror(err));
    }
    return DIT_OK;
}

typedef struct {
    char **names;
    size_t n, cap;
} written;

static int remember(written *w, const char *path)
{
    if (w->n == w->cap) {
        const size_t cap = w->cap ? 2 * w->cap : 256;
        char **p = realloc(w->names, cap * sizeof *p);
        if (!p) return 0;
        w->names = p, w->cap = cap;
    }
    return (w->names[w->n] = strdup(path)) ? (w->n++, 1) : 0;
}

static void forget(written *w, int remove_files)
{
    for (size_t i = 0; i < w->n; i++) {
        if (remove_files) unlink(w->names[i]);
        free(w->names[i]);
    }
    free(w->names);
    memset(w, 0, sizeof *w);
}

/* Append s to a growing buffer (NULL-safe: a failed growth leaves *buf NULL). */
static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    if (!*buf) return;
    const size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = *cap * 2;
        while (*len + n + 1 > c) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = p, *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* --check: N scenes made in memory and read back by the checker; per attribute, the share of
 * objects read right (each object matched to the detection of its colour nearest its centre; a
 * position is right within 0.15 r + 1.5 pixels), the captions judged all right, and the time. */
static int check_scenes(uint64_t seed, int count, const scene_opts *o)
{
    long objects = 0, shape = 0, size = 0, fill = 0, position = 0, all = 0, found = 0, extra = 0;
    long captions = 0, captions_right = 0, cap_objects = 0, cap_objects_right = 0;
    double t_make = 0, t_check = 0;
    dit_err e = { 0 };
    for (int i = 0; i < count; i++) {
        scene s;
        image im = { 0 };
        checker_result d;
        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (scene_generate(seed + (uint64_t)i, o, &s, &e) || scene_render(&s, &im, &e)) {
            fprintf(stderr, "dit scene: %s\n", e.msg);
            img_free(&im);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const dit_status st = checker_detect(&im, &d, &e);
        clock_gettime(CLOCK_MONOTONIC, &t2);
        img_free(&im);
        if (st) {
            fprintf(stderr, "dit scene: %s\n", e.msg);
            return 1;
        }
        t_make += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        t_check += (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec);
        int used[CHECKER_MAX_OBJECTS], det[SCENE_MAX_OBJECTS];
        float dist[SCENE_MAX_OBJECTS];
        found += checker_match_truth(&d, &s, det, dist, used);
        for (int k = 0; k < s.n; k++) {
            const scene_object *g = &s.obj[k];
            objects++;
            if (det[k] < 0) continue;
            const checker_object *c = &d.obj[det[k]];
            const int pos = checker_position_ok(g, dist[k]);
            shape += c->shape == g->shape, size += c->size == g->size, fill += c->fill == g->fill, position += pos;
            all += c->shape == g->shape && c->size == g->size && c->fill == g->fill && pos;
        }
        for (int j = 0; j < d.n; j++) extra += !used[j];
        for (int c = 0; c < s.n_captions; c++) {
            checker_score sc;
            checker_score_prompt(&d, &s.prompt[c], &sc);
            captions++, captions_right += sc.all_correct;
            cap_objects += sc.object.n, cap_objects_right += sc.object.ok;
        }
    }
    const double n = (double)objects;
    printf("%d scenes (%s, %dx%d%s), %ld objects\n", count, o->split == SPLIT_HELDOUT ? "heldout" : "train", o->w, o->h,
           o->antialias ? "" : ", no anti-aliasing", objects);
    printf("objects read fully right %.4f: colour (found) %.4f, shape %.4f, size %.4f, fill %.4f, position %.4f; "
           "%ld detections of no object\n",
           all / n, found / n, shape / n, size / n, fill / n, position / n, extra);
    printf("captions judged all right %.4f (%ld); caption objects right %.4f\n", (double)captions_right / (double)captions,
           captions, (double)cap_objects_right / (double)cap_objects);
    printf("%.2f ms to make and draw a scene, %.2f ms to check it\n", 1e3 * t_make / count, 1e3 * t_check / count);
    return 0;
}

/* --dataset PREFIX: the training set in two files, PREFIX.rgb (N x H x W x 3 bytes, rows top to
 * bottom, RGB) and PREFIX.jsonl (a line per scene: {"index": i, "captions": [...], "objects": [...],
 * "seed": "..."}), written to temporary names and renamed when complete. No PNG per scene: fast to
 * make and to read (tools/train/). */
static int write_dataset(const char *prefix, uint64_t seed, int count, const scene_opts *o)
{
    const size_t L = strlen(prefix);
    char *rgb = malloc(L + 16), *jsl = malloc(L + 16), *rgb_tmp = malloc(L + 16), *jsl_tmp = malloc(L + 16);
    if (!rgb || !jsl || !rgb_tmp || !jsl_tmp) {
        free(rgb), free(jsl), free(rgb_tmp), free(jsl_tmp);
        fprintf(stderr, "dit scene: out of memory\n");
        return 1;
    }
    sprintf(rgb, "%s.rgb", prefix), sprintf(jsl, "%s.jsonl", prefix);
    sprintf(rgb_tmp, "%s.rgb.tmp", prefix), sprintf(jsl_tmp, "%s.jsonl.tmp", prefix);
    FILE *fr = fopen(rgb_tmp, "wb"), *fj = fr ? fopen(jsl_tmp, "w") : NULL;
    int rc = 0;
    if (!fr || !fj) {
        fprintf(stderr, "dit scene: --dataset %s: cannot create %s: %s\n", prefix, fr ? jsl_tmp : rgb_tmp, strerror(errno));
        rc = 1;
    }
    dit_err e = { 0 };
    for (int i = 0; i < count && !rc; i++) {
        scene s;
        image im = { 0 };
        if (scene_generate(seed + (uint64_t)i, o, &s, &e) || scene_render(&s, &im, &e)) {
            fprintf(stderr, "dit scene: %s\n", e.msg);
            rc = 1;
            break;
        }
        char *text = scene_to_json(&s);
        cJSON *j = text ? cJSON_Parse(text) : NULL, *line = cJSON_CreateObject();
        char *out = NULL;
        if (j && line) {
            cJSON_AddNumberToObject(line, "index", i);
            const char *keys[] = { "captions", "objects", "seed" };
            for (int k = 0; k < 3; k++) {
                cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(j, keys[k]);
                if (v) cJSON_AddItemToObject(line, keys[k], v);
            }
            out = cJSON_PrintUnformatted(line);
        }
        if (!out) {
            fprintf(stderr, "dit scene: out of memory\n");
            rc = 1;
        } else if (fwrite(im.px, 1, (size_t)im.w * im.h * 3, fr) != (size_t)im.w * im.h * 3 || fprintf(fj, "%s\n", out) < 0) {
            fprintf(stderr, "dit scene: --dataset %s: write error: %s\n", prefix, strerror(errno));
            rc = 1;
        }
        free(out), free(text), cJSON_Delete(j), cJSON_Delete(line);
        img_free(&im);
    }
    if (fr && fclose(fr) && !rc) rc = 1, fprintf(stderr, "dit scene: --dataset %s: write error\n", prefix);
    if (fj && fclose(fj) && !rc) rc = 1, fprintf(stderr, "dit scene: --dataset %s: write error\n", prefix);
    if (!rc && (rename(rgb_tmp, rgb) || rename(jsl_tmp, jsl))) {
        fprintf(stderr, "dit scene: --dataset %s: cannot rename: %s\n", prefix, strerror(errno));
        rc = 1;
    }
    if (rc) remove(rgb_tmp), remove(jsl_tmp), remove(rgb);
    free(rgb), free(jsl), free(rgb_tmp), free(jsl_tmp);
    return rc;
}

int cmd_scene(int argc, char **argv)
{
    scene_opts o = scene_opts_default();
    uint64_t seed = 0;
    int count = 1, vocab = 0, check = 0;
    const char *out = ".", *dataset = NULL;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        const int takes = !strcmp(s, "--seed") || !strcmp(s, "--count") || !strcmp(s, "--size") ||
                          !strcmp(s, "--split") || !strcmp(s, "--out") || !strcmp(s, "--dataset");
        if (takes && !val) {
            fprintf(stderr, "dit scene: %s needs a value (try --help)\n", s);
            return 2;
        }
        if (takes) i++;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            scene_usage(stdout);
            return 0;
        } else if (!strcmp(s, "--seed")) {
            if (!parse_u64(val, &seed)) {
                fprintf(stderr, "dit scene: --seed %s: must be an integer 0..2^64-1\n", val);
                return 2;
            }
        } else if (!strcmp(s, "--count")) {
            char *end;
            errno = 0;
            const long v = strtol(val, &end, 10);
            if (errno || end == val || *end || v < 1 || v > MAX_COUNT) {
                fprintf(stderr, "dit scene: --count %s: must be 1..%d\n", val, MAX_COUNT);
                return 2;
            }
            count = (int)v;
        } else if (!strcmp(s, "--size")) {
            if (!parse_size(val, &o.w, &o.h)) {
                fprintf(stderr, "dit scene: --size %s: must be W or WxH, each %d..%d\n", val, SCENE_MIN_SIDE, SCENE_MAX_SIDE);
                return 2;
            }
        } else if (!strcmp(s, "--split")) {
            if (strcmp(val, "train") && strcmp(val, "heldout")) {
                fprintf(stderr, "dit scene: --split %s: must be train or heldout\n", val);
                return 2;
            }
            o.split = strcmp(val, "train") ? SPLIT_HELDOUT : SPLIT_TRAIN;
        } else if (!strcmp(s, "--out")) {
            out = val;
        } else if (!strcmp(s, "--dataset")) {
            dataset = val;
        } else if (!strcmp(s, "--no-aa")) {
            o.antialias = 0;
        } else if (!strcmp(s, "--vocab")) {
            vocab = 1;
        } else if (!strcmp(s, "--check")) {
            check = 1;
        } else {
            fprintf(stderr, "dit scene: %s '%s' (try --help)\n", s[0] == '-' ? "unknown option" : "unexpected argument", s);
            return 2;
        }
    }
    if (vocab) {
        const char *const *words;
        const int n = scene_vocab(&words);
        for (int i = 0; i < n; i++) printf("%s\n", words[i]);
        return 0;
    }
    if (check) return check_scenes(seed, count, &o);
    if (dataset) return write_dataset(dataset, seed, count, &o);
    if (strlen(out) > 4000) {
        fprintf(stderr, "dit scene: --out: path too long\n");
        return 2;
    }
    const int created = !mkdir(out, 0777);
    if (!created && errno != EEXIST) {
        fprintf(stderr, "dit scene: --out %s: cannot create folder: %s\n", out, strerror(errno));
        return 1;
    }
    struct stat st;
    if (stat(out, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "dit scene: --out %s: not a folder\n", out);
        return 1;
    }

    written files = { 0 };
    size_t list_len = 0, list_cap = 1 << 16;
    char *list = malloc(list_cap);
    dit_err e = { 0 };
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        scene s;
        image im = { 0 };
        char png[4100], json[4100], name[32], seed_text[24], line[SCENE_CAPTION_MAX + 48];
        snprintf(name, sizeof name, "%05d", i);
        snprintf(png, sizeof png, "%s/%s.png", out, name);
        snprintf(json, sizeof json, "%s/%s.json", out, name);
        if (scene_generate(seed + (uint64_t)i, &o, &s, &e) || scene_render(&s, &im, &e)) {
            fprintf(stderr, "dit scene: %s\n", e.msg);
            rc = 1;
            break;
        }
        snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)s.seed);
        const img_text meta[] = { { "caption", s.caption[0] }, { "seed", seed_text },
                                  { "split", s.split == SPLIT_HELDOUT ? "heldout" : "train" } };
        char *text = scene_to_json(&s);
        if (!text || !list) {
            fprintf(stderr, "dit scene: out of memory\n");
            rc = 1;
        } else if (img_save_png(&im, png, meta, 3, &e) || !remember(&files, png) || write_text(json, text, &e) ||
                   !remember(&files, json)) {
            fprintf(stderr, "dit scene: %s\n", e.code ? e.msg : "out of memory");
            rc = 1;
        }
        free(text);
        img_free(&im);
        for (int c = 0; c < s.n_captions && !rc; c++) {
            snprintf(line, sizeof line, "%s.png\t%s\n", name, s.caption[c]);
            append(&list, &list_len, &list_cap, line);
        }
    }
    char path[4100];
    snprintf(path, sizeof path, "%s/captions.txt", out);
    if (!rc && !list) {
        fprintf(stderr, "dit scene: out of memory\n");
        rc = 1;
    }
    if (!rc && write_text(path, list, &e)) {
        fprintf(stderr, "dit scene: %s\n", e.msg);
        rc = 1;
    }
    forget(&files, rc != 0);
    if (rc && created) rmdir(out);
    free(list);
    if (!rc)
        printf("%d scene%s (%s, %dx%d) in %s: NNNNN.png, NNNNN.json, captions.txt\n", count, count == 1 ? "" : "s",
               o.split == SPLIT_HELDOUT ? "heldout" : "train", o.w, o.h, out);
    return rc;
}

/* ---- dit score ---------------------------------------------------------------------------------- */

static const char *describe(const checker_object *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s %s %s", SCENE_SIZE_NAME[o->size], SCENE_FILL_NAME[o->fill], SCENE_COLOUR_NAME[o->colour],
             SCENE_SHAPE_NAME[o->shape]);
    return buf;
}

static const char *mention_text(const scene_mention *m, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s%s%s%s%s", m->size >= 0 ? SCENE_SIZE_NAME[m->size] : "", m->size >= 0 ? " " : "",
             m->fill >= 0 ? SCENE_FILL_NAME[m->fill] : "", m->fill >= 0 ? " " : "",
             m->colour >= 0 ? SCENE_COLOUR_NAME[m->colour] : "", m->colour >= 0 ? " " : "", SCENE_SHAPE_NAME[m->shape]);
    return buf;
}

static void tally_json(cJSON *parent, const char *name, checker_tally t)
{
    cJSON *o = cJSON_AddObjectToObject(parent, name);
    cJSON_AddNumberToObject(o, "ok", t.ok);
    cJSON_AddNumberToObject(o, "n", t.n);
}

static int print_json(const char *path, const checker_result *d, const scene_prompt *p, const char *prompt,
                      const checker_score *sc)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "image", path);
    cJSON_AddNumberToObject(root, "width", d->w);
    cJSON_AddNumberToObject(root, "height", d->h);
    cJSON *objs = cJSON_AddArrayToObject(root, "objects");
    for (int i = 0; i < d->n; i++) {
        const checker_object *o = &d->obj[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "shape", SCENE_SHAPE_NAME[o->shape]);
        cJSON_AddStringToObject(j, "colour", SCENE_COLOUR_NAME[o->colour]);
        cJSON_AddStringToObject(j, "size", SCENE_SIZE_NAME[o->size]);
        cJSON_AddStringToObject(j, "fill", SCENE_FILL_NAME[o->fill]);
        cJSON_AddNumberToObject(j, "x", (double)(int)(o->cx * 100.0f + 0.5f) / 100.0);
        cJSON_AddNumberToObject(j, "y", (double)(int)(o->cy * 100.0f + 0.5f) / 100.0);
        cJSON_AddNumberToObject(j, "r", (double)(int)(o->r * 100.0f + 0.5f) / 100.0);
        const double box[4] = { o->x0, o->y0, o->x1, o->y1 };
        cJSON_AddItemToObject(j, "bbox", cJSON_CreateDoubleArray(box, 4));
        cJSON_AddNumberToObject(j, "pixels", o->n_px);
        cJSON_AddNumberToObject(j, "fit", (double)(int)(o->fit * 1000.0f + 0.5f) / 1000.0);
        cJSON_AddItemToArray(objs, j);
    }
    cJSON *front = cJSON_AddArrayToObject(root, "in_front");
    for (int i = 0; i < d->n; i++)
        for (int j = 0; j < d->n; j++)
            if (d->front[i][j] > 0) {
                const int pair[2] = { i, j };
                cJSON_AddItemToArray(front, cJSON_CreateIntArray(pair, 2));
            }
    if (p) {
        cJSON *s = cJSON_AddObjectToObject(root, "score");
        cJSON_AddStringToObject(s, "prompt", prompt);
        tally_json(s, "object", sc->object);
        tally_json(s, "shape", sc->shape);
        tally_json(s, "colour", sc->colour);
        tally_json(s, "size", sc->size);
        tally_json(s, "fill", sc->fill);
        tally_json(s, "count", sc->count);
        tally_json(s, "relation", sc->relation);
        tally_json(s, "occlusion", sc->occlusion);
        cJSON_AddNumberToObject(s, "object_accuracy", sc->object.n ? (double)sc->object.ok / sc->object.n : 0.0);
        cJSON_AddBoolToObject(s, "all_correct", sc->all_correct);
        cJSON *req = cJSON_AddArrayToObject(s, "requested");
        for (int k = 0; k < sc->n_requested; k++) {
            char buf[96];
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "object", mention_text(&p->m[sc->mention_of[k]], buf, sizeof buf));
            cJSON_AddNumberToObject(r, "detected", sc->det_of[k]);
            cJSON_AddBoolToObject(r, "ok", sc->object_ok[k]);
            cJSON_AddItemToArray(req, r);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "dit score: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static void print_text(const char *path, const checker_result *d, const scene_prompt *p, const char *prompt,
                       const checker_score *sc)
{
    char buf[128];
    printf("%s: %dx%d, %d object%s\n", path, d->w, d->h, d->n, d->n == 1 ? "" : "s");
    for (int i = 0; i < d->n; i++) {
        const checker_object *o = &d->obj[i];
        printf("  %2d  %-34s centre (%6.1f, %6.1f)  r %5.1f  fit %.2f\n", i, describe(o, buf, sizeof buf), o->cx, o->cy,
               o->r, o->fit);
    }
    for (int i = 0; i < d->n; i++)
        for (int j = 0; j < d->n; j++)
            if (d->front[i][j] > 0) printf("  %d is in front of %d\n", i, j);
    if (!p) return;
    printf("prompt: %s\n", prompt);
    for (int k = 0; k < sc->n_requested; k++) {
        const int j = sc->det_of[k];
        printf("  %-4s %s", sc->object_ok[k] ? "ok" : "FAIL", mention_text(&p->m[sc->mention_of[k]], buf, sizeof buf));
        if (j >= 0) printf(" -> object %d (%s)\n", j, describe(&d->obj[j], buf, sizeof buf));
        else printf(" -> no object\n");
    }
    for (int i = 0; i < p->n_mentions; i++)
        if (sc->count_ok[i] >= 0)
            printf("  %-4s exactly %d %s\n", sc->count_ok[i] ? "ok" : "FAIL", p->m[i].count,
                   mention_text(&p->m[i], buf, sizeof buf));
    static const char *const REL_WORDS[REL_COUNT] = { "left of", "right of", "above", "below", "in front of", "behind" };
    for (int i = 0; i < p->n_relations; i++) {
        char other[96];
        printf("  %-4s %s %s %s\n", sc->relation_ok[i] ? "ok" : "FAIL", mention_text(&p->m[p->r[i].a], buf, sizeof buf),
               REL_WORDS[p->r[i].rel], mention_text(&p->m[p->r[i].b], other, sizeof other));
    }
    printf("objects %d/%d  shape %d/%d  colour %d/%d  size %d/%d  fill %d/%d  count %d/%d  relation %d/%d  "
           "occlusion %d/%d\n",
           sc->object.ok, sc->object.n, sc->shape.ok, sc->shape.n, sc->colour.ok, sc->colour.n, sc->size.ok, sc->size.n,
           sc->fill.ok, sc->fill.n, sc->count.ok, sc->count.n, sc->relation.ok, sc->relation.n, sc->occlusion.ok,
           sc->occlusion.n);
    printf("object accuracy %.3f, all correct: %s\n", sc->object.n ? (double)sc->object.ok / sc->object.n : 0.0,
           sc->all_correct ? "yes" : "no");
}

int cmd_score(int argc, char **argv)
{
    const char *path = NULL, *prompt = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            score_usage(stdout);
            return 0;
        } else if (!strcmp(s, "-p") || !strcmp(s, "--prompt")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dit score: %s needs a value (try --help)\n", s);
                return 2;
            }
            prompt = argv[++i];
        } else if (!strcmp(s, "--json")) {
            json = 1;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "dit score: unknown option '%s' (try --help)\n", s);
            return 2;
        } else if (!path) {
            path = s;
        } else {
            fprintf(stderr, "dit score: unexpected argument '%s' (try --help)\n", s);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "dit score: needs an IMAGE (try --help)\n");
        return 2;
    }
    dit_err e = { 0 };
    scene_prompt p;
    if (prompt && scene_parse(prompt, &p, &e)) {
        fprintf(stderr, "dit score: -p: %s\n", e.msg);
        return 2;
    }
    image im = { 0 };
    if (img_load(&im, path, 3, &e)) {
        fprintf(stderr, "dit score: %s\n", e.msg);
        return 1;
    }
    checker_result d;
    const dit_status st = checker_detect(&im, &d, &e);
    img_free(&im);
    if (st) {
        fprintf(stderr, "dit score: %s: %s\n", path, e.msg);
        return 1;
    }
    checker_score sc;
    memset(&sc, 0, sizeof sc);
    if (prompt) checker_score_prompt(&d, &p, &sc);
    if (json) return print_json(path, &d, prompt ? &p : NULL, prompt, &sc);
    print_text(path, &d, prompt ? &p : NULL, prompt, &sc);
    return 0;
}

/* text/enc.c — see enc.h: load options and finding an encoder in a file or folder. */
#include "text/enc.h"

#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *text_act_name(text_act a)
{
    static const char *const names[TEXT_ACT_COUNT] = { "quick_gelu", "gelu" };
    return (unsigned)a < TEXT_ACT_COUNT ? names[a] : "auto";
}

text_load_opts text_load_defaults(void)
{
    text_load_opts o;
    memset(&o, 0, sizeof o);
    o.prec = OPS_BF16;
    o.act = TEXT_ACT_AUTO;
    return o;
}

static int is_dir(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

dit_status text__open(text__file *f, const char *path, const char *probe_key, const char *const *prefixes, int n_prefixes,
                      const text_load_opts *o, const char *what, dit_err *e)
{
    memset(f, 0, sizeof *f);
    char file[4200];
    snprintf(file, sizeof file, "%s", path);
    if (is_dir(path)) { /* a diffusers encoder folder */
        static const char *const NAMES[] = { "model.safetensors.index.json", "model.safetensors" };
        int found = 0;
        for (int i = 0; i < 2 && !found; i++) {
            snprintf(file, sizeof file, "%s/%s", path, NAMES[i]);
            found = is_file(file);
        }
        if (!found)
            return err_set(e, DIT_E_IO, "%s: a folder without model.safetensors (or model.safetensors.index.json)", path);
        char cfg[4200];
        snprintf(cfg, sizeof cfg, "%s/config.json", path);
        if (json_read_file(cfg, JSON_MAX_CONFIG, &f->config, e) < 0) return e ? e->code : DIT_E_FORMAT; /* present but broken */
    }
    dit_status r = st_set_open(&f->set, file, e);
    if (r) {
        text__close(f);
        return r;
    }
    char full[600];
    if (o && o->prefix) {
        f->prefix = o->prefix;
        snprintf(full, sizeof full, "%s%s", f->prefix, probe_key);
        if (st_set_find(f->set, full)) return DIT_OK;
        r = err_set(e, DIT_E_FORMAT, "%s: no %s under the prefix '%s' (no tensor '%s')", file, what, f->prefix, full);
        text__close(f);
        return r;
    }
    int n_found = 0;
    const char *other = NULL;
    for (int i = 0; i < n_prefixes; i++) {
        snprintf(full, sizeof full, "%s%s", prefixes[i], probe_key);
        if (!st_set_find(f->set, full)) continue;
        if (n_found++) other = prefixes[i];
        else f->prefix = prefixes[i];
    }
    if (n_found == 1) return DIT_OK;
    if (n_found) r = err_set(e, DIT_E_ARG, "%s: holds several %s models (under '%s' and '%s'): choose one with a prefix", file, what,
                             f->prefix, other);
    else r = err_set(e, DIT_E_FORMAT, "%s: not a %s model (no tensor '%s' under any known prefix)", file, what, probe_key);
    text__close(f);
    return r;
}

void text__close(text__file *f)
{
    st_set_close(f->set);
    cJSON_Delete(f->config);
    f->set = NULL, f->config = NULL;
}

const st_tensor *text__find(const text__file *f, const char *fmt, int i)
{
    char name[512], full[600];
    snprintf(name, sizeof name, fmt, i);
    snprintf(full, sizeof full, "%s%s", f->prefix, name);
    return st_set_find(f->set, full);
}

int64_t text__dim(const text__file *f, const char *fmt, int i, int d)
{
    const st_tensor *t = text__find(f, fmt, i);
    return t && d < t->nd ? t->shape[d] : -1;
}

int text__count(const text__file *f, const char *fmt, int max)
{
    int n = 0;
    while (n <= max && text__find(f, fmt, n)) n++;
    return n;
}

int text__int(const text__file *f, const char *meta_key, const char *json_key, int dflt)
{
    const char *v = st_set_meta_get(f->set, meta_key);
    if (v && *v) {
        char *end;
        const long x = strtol(v, &end, 10);
        if (!*end && x > 0 && x < 1 << 20) return (int)x;
    }
    const cJSON *j = json_key ? cJSON_GetObjectItemCaseSensitive(f->config, json_key) : NULL;
    if (cJSON_IsNumber(j) && j->valuedouble > 0 && j->valuedouble < 1 << 20) return (int)j->valuedouble;
    return dflt;
}

const char *text__str(const text__file *f, const char *meta_key, const char *json_key)
{
    const char *v = st_set_meta_get(f->set, meta_key);
    if (v && *v) return v;
    const cJSON *j = json_key ? cJSON_GetObjectItemCaseSensitive(f->config, json_key) : NULL;
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

void text__ignore(wt_loader *L, const char *name)
{
    char full[600];
    snprintf(full, sizeof full, "%s%s", L->prefix, name);
    const int i = st_set_index_of(L->set, full);
    if (i >= 0) L->used[i] = 1;
}

/* core/json.c — see json.h. */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int json_read_file(const char *path, size_t max_bytes, cJSON **out, dit_err *e)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        err_set(e, DIT_E_IO, "%s: cannot open", path);
        return -1;
    }
    char *buf = NULL;
    long n = -1;
    int ok = !fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET);
    if (ok && (size_t)n > max_bytes) {
        fclose(f);
        err_set(e, DIT_E_FORMAT, "%s: %ld bytes, more than the %zu a JSON file here may have", path, n, max_bytes);
        return -1;
    }
    ok = ok && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        free(buf);
        err_set(e, DIT_E_IO, "%s: cannot read", path);
        return -1;
    }
    buf[n] = 0;
    *out = cJSON_ParseWithLength(buf, (size_t)n);
    free(buf);
    if (!*out) {
        err_set(e, DIT_E_FORMAT, "%s: not valid JSON", path);
        return -1;
    }
    return 1;
}

/* tests/test_json.c — core/json.c: absent files are not errors, present ones must be readable,
 * small enough and valid JSON (errors name the file). */
#include <unistd.h>

#include "core/json.h"
#include "tests/test.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void t_json_read_file(tctx *t)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/dit_test_json_%d.json", (int)getpid());
    cJSON *j = NULL;
    dit_err e = { 0 };
    unlink(path);
    CHECK(t, json_read_file(path, 1024, &j, &e) == 0 && !j, "absent file");
    write_text(path, "{\"axes_dims_rope\": [16, 56, 56]}");
    CHECK(t, json_read_file(path, 1024, &j, &e) == 1 && j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "axes_dims_rope")) == 3,
          "valid: %s", e.msg);
    cJSON_Delete(j);
    write_text(path, "{\"a\": [1, 2,");
    CHECK(t, json_read_file(path, 1024, &j, &e) == -1 && !j && strstr(e.msg, path) && strstr(e.msg, "not valid JSON"), "broken: %s",
          e.msg);
    write_text(path, "{\"a\": \"0123456789\"}");
    CHECK(t, json_read_file(path, 8, &j, &e) == -1 && !j && strstr(e.msg, "more than the 8"), "too large: %s", e.msg);
    CHECK(t, json_read_file("/tmp", 1024, &j, &e) == -1, "a folder: %s", e.msg);
    unlink(path);
}

int main(void)
{
    tctx t = test_begin("json");
    RUN(&t, t_json_read_file);
    return test_end(&t);
}

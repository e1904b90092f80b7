/* tests/test_progress.c — core/progress.c: the line and bar forms, one line per step on a pipe,
 * nothing when quiet, and the phase summary. */
#include <unistd.h>

#include "core/progress.h"
#include "tests/test.h"

static void t_format(tctx *t)
{
    char b[160];
    progress_format(b, sizeof b, 7, 28, 14.0, 0);
    CHECK(t, !strcmp(b, "step 7/28: 2.00 s/it, ETA 42 s"), "line: '%s'", b);
    progress_format(b, sizeof b, 7, 28, 14.0, 1);
    CHECK(t, !strcmp(b, "  7/28 [#####...............] 2.00 s/it, ETA 42 s"), "bar: '%s'", b);
    progress_format(b, sizeof b, 28, 28, 56.0, 1);
    CHECK(t, strstr(b, "[####################]") && strstr(b, "ETA 0 s"), "done: '%s'", b);
}

static void t_pipe_and_quiet(tctx *t)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/dit_test_progress_%d.txt", (int)getpid());
    FILE *f = fopen(path, "w+");
    progress p;
    progress_begin(&p, f, 3, 0);
    for (int i = 1; i <= 3; i++) progress_step(&p, i);
    progress_end(&p);
    progress_begin(&p, f, 3, 1); /* quiet: nothing */
    progress_step(&p, 1);
    progress_end(&p);
    phase_timer ph = { 0 };
    phase_add(&ph, "load", 1.25);
    phase_add(&ph, "sampling", 2.0);
    phase_add(&ph, "load", 0.25);
    phase_summary(&ph, f);
    fclose(f);
    char *text = test_read_file(path, NULL);
    int lines = 0;
    for (const char *c = text; c && *c; c++) lines += *c == '\n';
    CHECK(t, text && lines == 4 && strstr(text, "step 1/3: ") && strstr(text, "step 3/3: ") && !strchr(text, '\r'), "pipe: %s", text);
    CHECK(t, text && strstr(text, "load 1.5 s, sampling 2.0 s; total 3.5 s; peak memory "), "summary: %s", text);
    free(text);
    unlink(path);
}

int main(void)
{
    tctx t = test_begin("progress");
    RUN(&t, t_format);
    RUN(&t, t_pipe_and_quiet);
    return test_end(&t);
}

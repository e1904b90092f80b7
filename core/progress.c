/* core/progress.c — see progress.h. */
#include "progress.h"

#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double progress_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void progress_begin(progress *p, FILE *f, int total, int quiet)
{
    p->f = f, p->total = total, p->quiet = quiet;
    p->tty = f && isatty(fileno(f));
    p->t0 = p->last = progress_now();
}

void progress_format(char *buf, size_t cap, int done, int total, double elapsed, int tty)
{
    const double per = done > 0 ? elapsed / done : 0, eta = per * (total - done);
    if (!tty) {
        snprintf(buf, cap, "step %d/%d: %.2f s/it, ETA %.0f s", done, total, per, eta);
        return;
    }
    enum { WIDTH = 20 };
    char bar[WIDTH + 1];
    const int fill = total > 0 ? done * WIDTH / total : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    snprintf(buf, cap, "%3d/%d [%s] %.2f s/it, ETA %.0f s", done, total, bar, per, eta);
}

void progress_step(progress *p, int done)
{
    if (p->quiet || !p->f) return;
    char line[160];
    const double now = progress_now();
    progress_format(line, sizeof line, done, p->total, now - p->t0, p->tty);
    if (p->tty) fprintf(p->f, "\r%s\033[K", line); /* redraw in place, clear the rest of the line */
    else fprintf(p->f, "%s\n", line);
    fflush(p->f);
    p->last = now;
}

void progress_end(progress *p)
{
    if (!p->quiet && p->f && p->tty) fputc('\n', p->f);
}

void phase_add(phase_timer *ph, const char *name, double seconds)
{
    for (int i = 0; i < ph->n; i++)
        if (!strcmp(ph->name[i], name)) {
            ph->seconds[i] += seconds;
            return;
        }
    if (ph->n == PHASE_MAX) return;
    ph->name[ph->n] = name, ph->seconds[ph->n++] = seconds;
}

void phase_summary(const phase_timer *ph, FILE *f)
{
    double total = 0;
    for (int i = 0; i < ph->n; i++) {
        fprintf(f, "%s%s %.1f s", i ? ", " : "", ph->name[i], ph->seconds[i]);
        total += ph->seconds[i];
    }
    struct rusage ru;
    const double peak = getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_maxrss / 1048576.0; /* KiB -> GiB */
    fprintf(f, "%stotal %.1f s; peak memory %.2f GiB\n", ph->n ? "; " : "", total, peak);
}

/* core/progress.h — progress and timing on stderr for long runs (dit generate):
 *
 *   progress p;
 *   progress_begin(&p, stderr, n_steps, quiet);        // a bar on a terminal, else one line a step
 *   for (i...) { ...; progress_step(&p, i + 1); }
 *   progress_end(&p);
 *   phase_timer ph = { 0 };  phase_add(&ph, "sampling", seconds);  phase_summary(&ph, stderr);
 *
 * A terminal gets "  7/28 [#######.............] 1.92 s/it, ETA 40 s" redrawn in place with \r;
 * a pipe or file gets "step 7/28: 1.92 s/it, ETA 40 s" lines, so logs stay readable. */
#ifndef DIT_CORE_PROGRESS_H
#define DIT_CORE_PROGRESS_H

#include <stdio.h>

typedef struct {
    FILE *f;
    int total, tty, quiet;
    double t0, last;
} progress;

void progress_begin(progress *p, FILE *f, int total, int quiet);
/* done steps of total have finished */
void progress_step(progress *p, int done);
void progress_end(progress *p);
/* the line progress_step prints for done of total after elapsed seconds (tty: the bar form) */
void progress_format(char *buf, size_t cap, int done, int total, double elapsed, int tty);

#define PHASE_MAX 8
typedef struct {
    const char *name[PHASE_MAX];
    double seconds[PHASE_MAX];
    int n;
} phase_timer;

void phase_add(phase_timer *ph, const char *name, double seconds); /* adds to a phase of that name */
/* "load 3.1 s, text encode 0.9 s, sampling 41.0 s, decode 5.2 s; total 50.2 s; peak memory 7.9 GB" */
void phase_summary(const phase_timer *ph, FILE *f);
double progress_now(void);

#endif

/* core/err.h — status codes plus a message on the object (SQLite style).
 *
 *   dit_err e = {0};
 *   if (st_open(&f, path, &e) != DIT_OK) fprintf(stderr, "%s\n", e.msg);
 *
 * The library never exits and never prints: a failing call fills the dit_err the
 * caller passed in and returns its code. Only tools/ turns a code into an exit status.
 */
#ifndef DIT_CORE_ERR_H
#define DIT_CORE_ERR_H

#include <stddef.h>

typedef enum {
    DIT_OK = 0,
    DIT_E_IO,          /* open/read/write/mmap failed */
    DIT_E_FORMAT,      /* malformed file contents */
    DIT_E_SHAPE,       /* tensor shape or dtype not what the model expects */
    DIT_E_OOM,         /* allocation failed */
    DIT_E_ARG,         /* bad argument from the caller */
    DIT_E_UNSUPPORTED, /* valid, but not implemented here */
    DIT_E_BACKEND,     /* oneDNN (or another library) refused */
    DIT_STATUS_COUNT
} dit_status;

typedef struct {
    dit_status code;
    char msg[512];
} dit_err;

/* Fill e (if not NULL) and return code. Message is one line, no trailing newline. */
dit_status err_set(dit_err *e, dit_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *err_status_name(dit_status code);

#endif

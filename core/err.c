/* core/err.c — see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

dit_status err_set(dit_err *e, dit_status code, const char *fmt, ...)
{
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    /* Keep the message on one line: a file name with a newline must not split it. */
    for (char *p = e->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return code;
}

const char *err_status_name(dit_status code)
{
    static const char *const names[DIT_STATUS_COUNT] = {
        "ok", "io", "format", "shape", "out of memory", "argument", "unsupported", "backend",
    };
    return (unsigned)code < DIT_STATUS_COUNT ? names[code] : "unknown";
}

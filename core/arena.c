/* core/arena.c — see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

arena arena_measure(void)
{
    return (arena){ 0 };
}

dit_status arena_init(arena *a, size_t cap, dit_err *e)
{
    *a = (arena){ 0 };
    if (cap == 0) cap = ARENA_ALIGN;
    if (cap > SIZE_MAX - ARENA_ALIGN) return err_set(e, DIT_E_OOM, "arena: %zu bytes is too large", cap);
    cap = (cap + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    a->base = aligned_alloc(ARENA_ALIGN, cap);
    if (!a->base) return err_set(e, DIT_E_OOM, "arena: cannot allocate %zu bytes", cap);
    a->cap = cap;
    return DIT_OK;
}

void *arena_alloc(arena *a, size_t bytes)
{
    if (a->used > SIZE_MAX - ARENA_ALIGN) return NULL;
    size_t start = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (bytes > SIZE_MAX - ARENA_ALIGN - start) { /* overflow: a measurement too large to allocate */
        a->used = SIZE_MAX;
        return NULL;
    }
    if (!a->base) { /* measuring */
        a->used = start + bytes;
        return NULL;
    }
    if (start + bytes > a->cap) return NULL;
    a->used = start + bytes;
    void *p = a->base + start;
    memset(p, 0, bytes);
    return p;
}

void arena_reset(arena *a)
{
    a->used = 0;
}

void arena_free(arena *a)
{
    free(a->base);
    *a = (arena){ 0 };
}

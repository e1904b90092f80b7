/* core/arena.h — one buffer carved into aligned pieces (run state, converted weights).
 *
 * Size it in advance with a measuring pass, then allocate once:
 *
 *   arena a = arena_measure();               // no memory, only counts
 *   plan(&a);                                // calls arena_alloc() for every buffer
 *   size_t need = a.used;
 *   if (arena_init(&a, need, &e)) ...;       // one allocation
 *   plan(&a);                                // same calls, now real pointers
 *   ...
 *   arena_free(&a);
 *
 * The arena owns its buffer; pieces are never freed one by one.
 */
#ifndef DIT_CORE_ARENA_H
#define DIT_CORE_ARENA_H

#include <stddef.h>

#include "err.h"

#define ARENA_ALIGN 64

typedef struct {
    unsigned char *base; /* NULL while measuring */
    size_t cap, used;
} arena;

arena arena_measure(void);
dit_status arena_init(arena *a, size_t cap, dit_err *e);
/* 64-byte aligned, zeroed when real. Returns NULL when measuring or when the arena is full.
 * A request that overflows size_t sets used to SIZE_MAX, which arena_init then refuses. */
void *arena_alloc(arena *a, size_t bytes);
void arena_reset(arena *a);
void arena_free(arena *a);

#endif

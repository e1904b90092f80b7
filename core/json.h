/* core/json.h — small JSON files (diffusers config.json, golden case.json) read whole and parsed.
 *
 *   cJSON *cfg = NULL;
 *   int got = json_read_file("transformer/config.json", JSON_MAX_CONFIG, &cfg, &e);
 *   if (got < 0) return e.code;          // present but unreadable, too large or not JSON
 *   if (got) { ...; cJSON_Delete(cfg); } // absent (0) is not an error: callers fall back
 *
 * Not reentrant across threads: cJSON 1.7.15 keeps its parse error in a global (see safetensors.h). */
#ifndef DIT_CORE_JSON_H
#define DIT_CORE_JSON_H

#include <stddef.h>

#include <cJSON.h>

#include "err.h"

#define JSON_MAX_CONFIG (1u << 20) /* bytes of a config.json */
#define JSON_MAX_CASE (64u << 20)  /* bytes of a golden case.json / cases.json */

/* 1 with *out parsed (the caller deletes it), 0 when path does not exist (*out NULL), -1 when it
 * exists but cannot be read, is larger than max_bytes or is not JSON (e names the file). */
int json_read_file(const char *path, size_t max_bytes, cJSON **out, dit_err *e);

#endif

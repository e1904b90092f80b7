/* core/sha256.h — SHA-256 (FIPS 180-4), for model hashes in image metadata.
 *
 *   sha256 h;  sha256_init(&h);  sha256_update(&h, data, n);  ...;  sha256_final(&h, digest);
 *   sha256_file_range("model.safetensors", 0x100000, 0x10000, digest, &e);
 */
#ifndef DIT_CORE_SHA256_H
#define DIT_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;          /* bytes so far */
    unsigned char buf[64];
    size_t fill;
} sha256;

void sha256_init(sha256 *s);
void sha256_update(sha256 *s, const void *data, size_t n);
void sha256_final(sha256 *s, unsigned char digest[32]);
/* The digest of bytes [offset, offset + n) of a file (fewer when the file ends sooner; n =
 * SIZE_MAX: to the end). Errors name the file. */
dit_status sha256_file_range(const char *path, uint64_t offset, size_t n, unsigned char digest[32], dit_err *e);
/* digest -> lowercase hex, the first n_hex characters (<= 64) and a NUL. */
void sha256_hex(const unsigned char digest[32], int n_hex, char *out);

#endif

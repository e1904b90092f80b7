/* core/sha256.c — see sha256.h. */
#include "core/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void block(sha256 *s, const unsigned char *p)
{
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        const uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, s->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        const uint32_t S1 = ror(a[4], 6) ^ ror(a[4], 11) ^ ror(a[4], 25);
        const uint32_t ch = (a[4] & a[5]) ^ (~a[4] & a[6]);
        const uint32_t t1 = a[7] + S1 + ch + K[i] + w[i];
        const uint32_t S0 = ror(a[0], 2) ^ ror(a[0], 13) ^ ror(a[0], 22);
        const uint32_t maj = (a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]);
        memmove(a + 1, a, sizeof(uint32_t) * 7);
        a[4] += t1;
        a[0] = t1 + S0 + maj;
    }
    for (int i = 0; i < 8; i++) s->h[i] += a[i];
}

void sha256_init(sha256 *s)
{
    static const uint32_t H0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, H0, sizeof H0);
    s->len = 0, s->fill = 0;
}

void sha256_update(sha256 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->len += n;
    while (n) {
        if (!s->fill && n >= 64) {
            block(s, p);
            p += 64, n -= 64;
            continue;
        }
        const size_t k = n < 64 - s->fill ? n : 64 - s->fill;
        memcpy(s->buf + s->fill, p, k);
        s->fill += k, p += k, n -= k;
        if (s->fill == 64) block(s, s->buf), s->fill = 0;
    }
}

void sha256_final(sha256 *s, unsigned char digest[32])
{
    const uint64_t bits = s->len * 8;
    unsigned char pad[72] = { 0x80 };
    const size_t npad = (s->fill < 56 ? 56 : 120) - s->fill;
    for (int i = 0; i < 8; i++) pad[npad + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, pad, npad + 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) digest[4 * i + j] = (unsigned char)(s->h[i] >> (24 - 8 * j));
}

dit_status sha256_file_range(const char *path, uint64_t offset, size_t n, unsigned char digest[32], dit_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, DIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseeko(f, (off_t)offset, SEEK_SET)) {
        fclose(f);
        return err_set(e, DIT_E_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    }
    sha256 s;
    sha256_init(&s);
    size_t left = n, got;
    while (left && (got = fread(buf, 1, left < CHUNK ? left : CHUNK, f)) > 0) sha256_update(&s, buf, got), left -= got;
    const int bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return err_set(e, DIT_E_IO, "%s: read error", path);
    sha256_final(&s, digest);
    return DIT_OK;
}

void sha256_hex(const unsigned char digest[32], int n_hex, char *out)
{
    static const char hex[] = "0123456789abcdef";
    if (n_hex > 64) n_hex = 64;
    for (int i = 0; i < n_hex; i++) out[i] = hex[(digest[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n_hex < 0 ? 0 : n_hex] = 0;
}

/* core/tensor.c — see tensor.h. */
#include "tensor.h"

size_t dtype_size(dtype t)
{
    static const size_t sizes[DT_COUNT] = { 4, 2, 2 };
    return (unsigned)t < DT_COUNT ? sizes[t] : 0;
}

const char *dtype_name(dtype t)
{
    static const char *const names[DT_COUNT] = { "F32", "F16", "BF16" };
    return (unsigned)t < DT_COUNT ? names[t] : "?";
}

tensor tensor_make(dtype type, void *data, int nd, const int64_t *shape)
{
    tensor t = { .type = type, .nd = nd, .data = data };
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

int64_t tensor_numel(const tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->nd; i++) n *= t->shape[i];
    return n;
}

int tensor_is_contiguous(const tensor *t)
{
    int64_t s = 1;
    for (int i = t->nd - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

float tensor_get_f32(const tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->nd; i++) off += idx[i] * t->stride[i];
    switch (t->type) {
    case DT_F32: return ((const float *)t->data)[off];
    case DT_F16: return f16_to_f32(((const uint16_t *)t->data)[off]);
    case DT_BF16: return bf16_to_f32(((const uint16_t *)t->data)[off]);
    default: return 0.0f;
    }
}

uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;            /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00;           /* rounds to inf */
    if (a < 0x38800000u) {                                /* subnormal or zero in f16 */
        if (a < 0x33000000u) return sign;                 /* below half the smallest subnormal */
        uint32_t man = (a & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(a >> 23);                 /* 14..24 */
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return sign | (uint16_t)r;
    }
    uint32_t r = a - 0x38000000u;                         /* rebias exponent 127 -> 15 */
    r += 0xfff + ((r >> 13) & 1);                         /* round to nearest even */
    return sign | (uint16_t)(r >> 13);
}

void cvt_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

/* Same rounding as f32_to_bf16, written without branches so the compiler vectorises it. */
void cvt_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1)) >> 16, quiet_nan = (u >> 16) | 0x40;
        dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
    }
}

void cvt_f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

void cvt_to_f32(float *dst, const void *src, dtype type, size_t n)
{
    switch (type) {
    case DT_F32: memmove(dst, src, n * 4); break;
    case DT_F16: cvt_f16_to_f32(dst, src, n); break;
    case DT_BF16: cvt_bf16_to_f32(dst, src, n); break;
    default: break;
    }
}

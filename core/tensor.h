/* core/tensor.h — tensor views and the scalar types we compute with.
 *
 * A tensor is a view: dtype + shape + strides (in elements) + a pointer it does not own.
 * Weights point into an mmapped file; activations point into a run-state arena.
 *
 *   tensor t = tensor_make(DT_F32, buf, 2, (int64_t[]){rows, cols});   // contiguous row-major
 *   float v = tensor_get_f32(&t, (int64_t[]){r, c});
 */
#ifndef DIT_CORE_TENSOR_H
#define DIT_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TENSOR_MAX_DIMS 8

typedef enum { DT_F32 = 0, DT_F16, DT_BF16, DT_COUNT } dtype;

typedef struct {
    dtype type;
    int nd;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS]; /* elements, not bytes; row-major when contiguous */
    void *data;                      /* not owned */
} tensor;

size_t dtype_size(dtype t);
const char *dtype_name(dtype t);

/* Contiguous row-major view of data with the given shape. nd <= TENSOR_MAX_DIMS. */
tensor tensor_make(dtype type, void *data, int nd, const int64_t *shape);
int64_t tensor_numel(const tensor *t);
int tensor_is_contiguous(const tensor *t);
/* Element at idx[0..nd-1], converted to f32. */
float tensor_get_f32(const tensor *t, const int64_t *idx);

/* Scalar conversions. bf16 is the upper half of an f32 (golden README §2); rounding is
 * round-to-nearest-even, NaN stays NaN. f16 is IEEE binary16 with subnormals. */
static inline float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

/* Row conversions (n elements). */
void cvt_bf16_to_f32(float *dst, const uint16_t *src, size_t n);
void cvt_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void cvt_f16_to_f32(float *dst, const uint16_t *src, size_t n);
/* Any dtype to f32 (contiguous). */
void cvt_to_f32(float *dst, const void *src, dtype type, size_t n);

#endif

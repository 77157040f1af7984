/* gc-dtype.h — element types found in checkpoint files, and conversions to float32.
 *
 * Weights stay in the precision of their file (an fp16 checkpoint stays fp16 in memory) and are
 * widened to float32 where an op uses them. All conversions round to nearest even.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum {
  GC_DTYPE_F16,
  GC_DTYPE_BF16,
  GC_DTYPE_F32,
  GC_DTYPE_F64,
  GC_DTYPE_I64,
  GC_DTYPE_I32,
  GC_DTYPE_I16,
  GC_DTYPE_I8,
  GC_DTYPE_U8,
  GC_DTYPE_BOOL,
  GC_DTYPE_COUNT
} gc_dtype;

/* Bytes per element. */
size_t gc_dtype_size (gc_dtype dtype);

/* The safetensors spelling ("F16"), or NULL for an out-of-range value. */
const char *gc_dtype_name (gc_dtype dtype);

/* Parses a safetensors dtype name of length len; returns 0 and sets *out, or -1 if unknown. */
int gc_dtype_parse (const char *name, size_t len, gc_dtype *out);

/* True for F16, BF16, F32 and F64. */
int gc_dtype_is_float (gc_dtype dtype);

float gc_f16_to_f32 (uint16_t h);
uint16_t gc_f32_to_f16 (float f);
uint16_t gc_f64_to_f16 (double d); /* rounds once, directly from double (as numpy does) */
float gc_bf16_to_f32 (uint16_t b);
uint16_t gc_f32_to_bf16 (float f);

/* dst[i] = (float) src[i] for n elements of any dtype (integers and bools convert by value). */
void gc_convert_to_f32 (float *dst, const void *src, gc_dtype dtype, size_t n);

/* dst (of dtype F16, BF16, F32 or F64) [i] = src[i]. */
void gc_convert_from_f32 (void *dst, gc_dtype dtype, const float *src, size_t n);

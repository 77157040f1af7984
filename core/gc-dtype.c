#include "gc-dtype.h"

#include <math.h>
#include <string.h>

#include <cpuid.h>
#include <immintrin.h>
#include <stdbool.h>

static const struct {
  const char *name;
  size_t size;
} dtype_info[GC_DTYPE_COUNT] = {
  [GC_DTYPE_F16] = { "F16", 2 },  [GC_DTYPE_BF16] = { "BF16", 2 }, [GC_DTYPE_F32] = { "F32", 4 },
  [GC_DTYPE_F64] = { "F64", 8 },  [GC_DTYPE_I64] = { "I64", 8 },   [GC_DTYPE_I32] = { "I32", 4 },
  [GC_DTYPE_I16] = { "I16", 2 },  [GC_DTYPE_I8] = { "I8", 1 },     [GC_DTYPE_U8] = { "U8", 1 },
  [GC_DTYPE_BOOL] = { "BOOL", 1 },
};

size_t
gc_dtype_size (gc_dtype dtype)
{
  return (unsigned) dtype < GC_DTYPE_COUNT ? dtype_info[dtype].size : 0;
}

const char *
gc_dtype_name (gc_dtype dtype)
{
  return (unsigned) dtype < GC_DTYPE_COUNT ? dtype_info[dtype].name : NULL;
}

int
gc_dtype_parse (const char *name, size_t len, gc_dtype *out)
{
  for (int i = 0; i < GC_DTYPE_COUNT; i++)
    if (strlen (dtype_info[i].name) == len && memcmp (dtype_info[i].name, name, len) == 0)
      {
        *out = (gc_dtype) i;
        return 0;
      }
  return -1;
}

int
gc_dtype_is_float (gc_dtype dtype)
{
  return dtype == GC_DTYPE_F16 || dtype == GC_DTYPE_BF16 || dtype == GC_DTYPE_F32
         || dtype == GC_DTYPE_F64;
}

float
gc_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f)
    bits = sign | 0x7f800000u | (mantissa << 13);
  else if (exponent != 0)
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  else if (mantissa == 0)
    bits = sign;
  else
    {
      /* subnormal half: value = mantissa · 2⁻²⁴, exact in float */
      float value = (float) mantissa * 0x1p-24f;
      return sign ? -value : value;
    }
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

uint16_t
gc_f64_to_f16 (double d)
{
  uint64_t bits;
  memcpy (&bits, &d, sizeof bits);
  uint16_t sign = (uint16_t) ((bits >> 48) & 0x8000);
  double a = fabs (d);
  if (isnan (d))
    return sign | 0x7e00;
  if (a >= 65520.0) /* rounds to infinity */
    return sign | 0x7c00;
  if (a < 0x1p-14)
    {
      /* subnormal range: units of 2⁻²⁴, round half to even */
      double units = a * 0x1p24;
      double r = nearbyint (units); /* default rounding mode is nearest-even */
      return sign | (uint16_t) r;
    }
  int e;
  double m = frexp (a, &e); /* a = m·2^e, m in [0.5, 1) */
  /* 11 significant bits: scale m to [1024, 2048) */
  double scaled = nearbyint (m * 2048.0);
  if (scaled >= 2048.0)
    {
      scaled /= 2.0;
      e += 1;
    }
  int exponent = e - 1 + 15; /* a = (scaled/1024)·2^(e-1) */
  if (exponent >= 31)
    return sign | 0x7c00;
  return sign | (uint16_t) (exponent << 10) | (uint16_t) ((uint32_t) scaled - 1024);
}

uint16_t
gc_f32_to_f16 (float f)
{
  /* every float is exactly representable as a double, so rounding once from there is exact */
  return gc_f64_to_f16 ((double) f);
}

float
gc_bf16_to_f32 (uint16_t b)
{
  uint32_t bits = (uint32_t) b << 16;
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

uint16_t
gc_f32_to_bf16 (float f)
{
  uint32_t bits;
  memcpy (&bits, &f, sizeof bits);
  if (isnan (f))
    return (uint16_t) ((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return (uint16_t) (bits >> 16);
}

__attribute__ ((target ("avx2,f16c"))) static void
f16_to_f32_f16c (float *dst, const uint16_t *src, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (dst + i, _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (src + i))));
  for (; i < n; i++)
    dst[i] = gc_f16_to_f32 (src[i]);
}

/* Round to nearest even, as gc_f32_to_f16; dst may be unaligned. */
__attribute__ ((target ("avx2,f16c"))) static void
f32_to_f16_f16c (unsigned char *dst, const float *src, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128 ((__m128i *) (dst + 2 * i),
                      _mm256_cvtps_ph (_mm256_loadu_ps (src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++)
    {
      uint16_t h = gc_f32_to_f16 (src[i]);
      memcpy (dst + 2 * i, &h, 2);
    }
}

static bool
has_f16c (void)
{
  static int known = -1;
  if (known < 0)
    {
      /* CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c") */
      unsigned eax, ebx, ecx, edx;
      bool f16c = __get_cpuid (1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
      known = f16c && __builtin_cpu_supports ("avx2");
    }
  return known;
}

static void
f16_to_f32 (float *dst, const uint16_t *src, size_t n)
{
  if (has_f16c ())
    {
      f16_to_f32_f16c (dst, src, n);
      return;
    }
  for (size_t i = 0; i < n; i++)
    dst[i] = gc_f16_to_f32 (src[i]);
}

void
gc_convert_to_f32 (float *dst, const void *src, gc_dtype dtype, size_t n)
{
  /* Sources may be unaligned (safetensors offsets need not be): read through memcpy. */
  const unsigned char *bytes = src;
  switch (dtype)
    {
    case GC_DTYPE_F16:
      if (((uintptr_t) src & 1) == 0)
        f16_to_f32 (dst, src, n);
      else
        for (size_t i = 0; i < n; i++)
          {
            uint16_t h;
            memcpy (&h, bytes + 2 * i, 2);
            dst[i] = gc_f16_to_f32 (h);
          }
      break;
    case GC_DTYPE_BF16:
      for (size_t i = 0; i < n; i++)
        {
          uint16_t b;
          memcpy (&b, bytes + 2 * i, 2);
          dst[i] = gc_bf16_to_f32 (b);
        }
      break;
    case GC_DTYPE_F32:
      memmove (dst, src, n * sizeof (float));
      break;
    case GC_DTYPE_F64:
      for (size_t i = 0; i < n; i++)
        {
          double d;
          memcpy (&d, bytes + 8 * i, 8);
          dst[i] = (float) d;
        }
      break;
    case GC_DTYPE_I64:
      for (size_t i = 0; i < n; i++)
        {
          int64_t v;
          memcpy (&v, bytes + 8 * i, 8);
          dst[i] = (float) v;
        }
      break;
    case GC_DTYPE_I32:
      for (size_t i = 0; i < n; i++)
        {
          int32_t v;
          memcpy (&v, bytes + 4 * i, 4);
          dst[i] = (float) v;
        }
      break;
    case GC_DTYPE_I16:
      for (size_t i = 0; i < n; i++)
        {
          int16_t v;
          memcpy (&v, bytes + 2 * i, 2);
          dst[i] = (float) v;
        }
      break;
    case GC_DTYPE_I8:
      for (size_t i = 0; i < n; i++)
        dst[i] = (float) (int8_t) bytes[i];
      break;
    case GC_DTYPE_U8:
      for (size_t i = 0; i < n; i++)
        dst[i] = (float) bytes[i];
      break;
    case GC_DTYPE_BOOL:
      for (size_t i = 0; i < n; i++)
        dst[i] = bytes[i] ? 1.0f : 0.0f;
      break;
    case GC_DTYPE_COUNT:
      break;
    }
}

void
gc_convert_from_f32 (void *dst, gc_dtype dtype, const float *src, size_t n)
{
  unsigned char *bytes = dst;
  if (dtype == GC_DTYPE_F16 && has_f16c ())
    {
      f32_to_f16_f16c (bytes, src, n);
      return;
    }
  for (size_t i = 0; i < n; i++)
    switch (dtype)
      {
      case GC_DTYPE_F16:
        {
          uint16_t h = gc_f32_to_f16 (src[i]);
          memcpy (bytes + 2 * i, &h, 2);
          break;
        }
      case GC_DTYPE_BF16:
        {
          uint16_t b = gc_f32_to_bf16 (src[i]);
          memcpy (bytes + 2 * i, &b, 2);
          break;
        }
      case GC_DTYPE_F32:
        memcpy (bytes + 4 * i, &src[i], 4);
        break;
      case GC_DTYPE_F64:
        {
          double d = src[i];
          memcpy (bytes + 8 * i, &d, 8);
          break;
        }
      default:
        return;
      }
}

/* Conversions between file precisions and float32: a wrong rounding would shift every weight. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "gc-dtype.h"

static void
test_f16_round_trip (void)
{
  /* Every finite half converts to float and back unchanged. */
  for (uint32_t h = 0; h < 0x10000; h++)
    {
      if ((h & 0x7c00) == 0x7c00)
        continue;
      float f = gc_f16_to_f32 ((uint16_t) h);
      g_assert_cmpuint (gc_f32_to_f16 (f), ==, h);
    }
}

static void
test_f16_rounding (void)
{
  g_assert_cmpfloat (gc_f16_to_f32 (gc_f32_to_f16 (1.0f)), ==, 1.0f);
  /* 1 + 2⁻¹¹ lies halfway between 1 and 1 + 2⁻¹⁰: ties go to even (1). */
  g_assert_cmpuint (gc_f64_to_f16 (1.0 + 0x1p-11), ==, 0x3c00);
  g_assert_cmpuint (gc_f64_to_f16 (1.0 + 3 * 0x1p-11), ==, 0x3c02);
  /* Rounding directly from double differs from rounding through float here:
   * 1 + 2⁻¹¹ + 2⁻³⁰ is above the tie, but becomes the tie as a float. */
  g_assert_cmpuint (gc_f64_to_f16 (1.0 + 0x1p-11 + 0x1p-30), ==, 0x3c01);
  g_assert_cmpuint (gc_f64_to_f16 (65504.0), ==, 0x7bff);
  g_assert_cmpuint (gc_f64_to_f16 (65520.0), ==, 0x7c00);
  g_assert_cmpuint (gc_f64_to_f16 (-0x1p-24), ==, 0x8001);
  g_assert_cmpuint (gc_f64_to_f16 (0x1p-25), ==, 0x0000);
  g_assert_cmpfloat (gc_f16_to_f32 (0x0001), ==, 0x1p-24f);
  g_assert_true (isinf (gc_f16_to_f32 (0x7c00)));
}

static void
test_bf16 (void)
{
  g_assert_cmpuint (gc_f32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmpfloat (gc_bf16_to_f32 (0xc040), ==, -3.0f);
  /* 1 + 2⁻⁸ is the tie between 1 and 1 + 2⁻⁷: to even. */
  g_assert_cmpuint (gc_f32_to_bf16 (1.0f + 0x1p-8f), ==, 0x3f80);
}

static void
test_convert_all_dtypes (void)
{
  float out[3];
  const int64_t i64[3] = { -5, 0, 7 };
  gc_convert_to_f32 (out, i64, GC_DTYPE_I64, 3);
  g_assert_cmpfloat (out[0], ==, -5.0f);
  g_assert_cmpfloat (out[2], ==, 7.0f);
  const uint8_t flags[3] = { 0, 1, 2 };
  gc_convert_to_f32 (out, flags, GC_DTYPE_BOOL, 3);
  g_assert_cmpfloat (out[1], ==, 1.0f);
  const int8_t i8[3] = { -128, 0, 127 };
  gc_convert_to_f32 (out, i8, GC_DTYPE_I8, 3);
  g_assert_cmpfloat (out[0], ==, -128.0f);
  /* The vector fp16 path and the scalar one agree, aligned or not. */
  uint16_t halves[33];
  for (int i = 0; i < 33; i++)
    halves[i] = gc_f32_to_f16 ((float) i * 0.37f - 5.0f);
  float fast[32], slow[32];
  gc_convert_to_f32 (fast, halves + 1, GC_DTYPE_F16, 32);
  for (int i = 0; i < 32; i++)
    slow[i] = gc_f16_to_f32 (halves[i + 1]);
  g_assert_cmpmem (fast, sizeof fast, slow, sizeof slow);
  gc_dtype parsed;
  g_assert_cmpint (gc_dtype_parse ("BF16", 4, &parsed), ==, 0);
  g_assert_cmpint (parsed, ==, GC_DTYPE_BF16);
  g_assert_cmpint (gc_dtype_parse ("F8", 2, &parsed), ==, -1);
}

/* Arrays convert to fp16 (with F16C where the CPU has it) exactly as value by value. */
static void
test_f16_array_rounding (void)
{
  enum { N = 4096 };
  static float src[N];
  static uint16_t half[N + 1];
  for (uint64_t base = 0; base < (1ull << 32); base += 4099ull * N)
    {
      for (int i = 0; i < N; i++)
        {
          uint32_t bits = (uint32_t) (base + 4099ull * (uint64_t) i);
          memcpy (&src[i], &bits, sizeof bits);
        }
      gc_convert_from_f32 ((char *) half + 1, GC_DTYPE_F16, src, N); /* unaligned on purpose */
      for (int i = 0; i < N; i++)
        {
          uint16_t h;
          memcpy (&h, (char *) half + 1 + 2 * i, 2);
          if (isnan (src[i]))
            g_assert_true ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
          else
            g_assert_cmphex (h, ==, gc_f32_to_f16 (src[i]));
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/dtype/f16-round-trip", test_f16_round_trip);
  g_test_add_func ("/core/dtype/f16-rounding", test_f16_rounding);
  g_test_add_func ("/core/dtype/bf16", test_bf16);
  g_test_add_func ("/core/dtype/convert", test_convert_all_dtypes);
  g_test_add_func ("/core/dtype/f16-array-rounding", test_f16_array_rounding);
  return g_test_run ();
}

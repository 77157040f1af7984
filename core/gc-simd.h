/* gc-simd.h — vector helpers shared by the elementwise kernels (internal).
 *
 * The kernels are compiled twice: for AVX2+FMA (any x86-64 machine from the last decade) and
 * as plain C; gc_cpu_has_avx2 () picks one at run time. Vector exp is accurate to 2 ulp over
 * the float range (Cody–Waite reduction, degree-6 polynomial), so kernels that use it agree
 * with their libm-based naive twins to ~1e-7 relative.
 */
#pragma once

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include <immintrin.h>

#define GC_AVX2 __attribute__ ((target ("avx2,fma")))
#define GC_AVX512 __attribute__ ((target ("avx512f,avx512dq")))

bool gc_cpu_has_avx2 (void);
bool gc_cpu_has_avx512 (void);

/* row[i] = exp(row[i] − max row) for the softmax of a row; returns Σ row (in double), 0 for a
 * row of −∞ (fully masked). Vectorised with the widest instructions the CPU has. */
double gc_exp_row (float *row, int64_t n);

/* e^x for 8 floats; inputs below −87.3 give 0, above 88.7 give +inf. */
GC_AVX2 static inline __m256
gc_exp8 (__m256 x)
{
  const __m256 max_x = _mm256_set1_ps (88.72283935546875f);
  const __m256 min_x = _mm256_set1_ps (-87.33654022216797f);
  __m256 too_small = _mm256_cmp_ps (x, min_x, _CMP_LT_OQ);
  x = _mm256_min_ps (_mm256_max_ps (x, min_x), max_x);
  __m256 n = _mm256_round_ps (_mm256_mul_ps (x, _mm256_set1_ps (1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  /* r = x − n·ln2 in two parts so the reduction is exact */
  __m256 r = _mm256_fnmadd_ps (n, _mm256_set1_ps (0.693359375f), x);
  r = _mm256_fnmadd_ps (n, _mm256_set1_ps (-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps (1.9875691500e-4f);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.3981999507e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (8.3334519073e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (4.1665795894e-2f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.6666665459e-1f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps (r, r);
  p = _mm256_fmadd_ps (p, r2, _mm256_add_ps (r, _mm256_set1_ps (1.0f)));
  /* 2^n, built in two halves so that n = 128 (x near the top) does not overflow the exponent */
  __m256i ni = _mm256_cvtps_epi32 (n);
  __m256i half = _mm256_srai_epi32 (ni, 1);
  __m256 scale_a = _mm256_castsi256_ps (
    _mm256_slli_epi32 (_mm256_add_epi32 (half, _mm256_set1_epi32 (127)), 23));
  __m256 scale_b = _mm256_castsi256_ps (_mm256_slli_epi32 (
    _mm256_add_epi32 (_mm256_sub_epi32 (ni, half), _mm256_set1_epi32 (127)), 23));
  __m256 result = _mm256_mul_ps (_mm256_mul_ps (p, scale_a), scale_b);
  return _mm256_andnot_ps (too_small, result);
}

/* Horizontal sum of 8 floats. */
GC_AVX2 static inline float
gc_hsum8 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

/* e^x for 16 floats, the same polynomial as gc_exp8; scalef applies 2^n without overflow. */
GC_AVX512 static inline __m512
gc_exp16 (__m512 x)
{
  const __m512 min_x = _mm512_set1_ps (-87.33654022216797f);
  __mmask16 too_small = _mm512_cmp_ps_mask (x, min_x, _CMP_LT_OQ);
  x = _mm512_min_ps (_mm512_max_ps (x, min_x), _mm512_set1_ps (88.72283935546875f));
  __m512 n = _mm512_roundscale_ps (_mm512_mul_ps (x, _mm512_set1_ps (1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps (n, _mm512_set1_ps (0.693359375f), x);
  r = _mm512_fnmadd_ps (n, _mm512_set1_ps (-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps (1.9875691500e-4f);
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.3981999507e-3f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (8.3334519073e-3f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (4.1665795894e-2f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.6666665459e-1f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (5.0000001201e-1f));
  p = _mm512_fmadd_ps (p, _mm512_mul_ps (r, r), _mm512_add_ps (r, _mm512_set1_ps (1.0f)));
  return _mm512_maskz_mov_ps ((__mmask16) ~too_small, _mm512_scalef_ps (p, n));
}

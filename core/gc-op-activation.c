/* Elementwise activations, GEGLU and softmax. The AVX2 kernels use the vector exp of gc-simd.h;
 * the naive twins use libm. */
#include "gc-ops.h"

#include <math.h>
#include <string.h>

#include "gc-simd.h"
#include "gc-threads.h"

bool
gc_cpu_has_avx2 (void)
{
  static int cached = -1;
  if (cached < 0)
    cached = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
  return cached;
}

bool
gc_cpu_has_avx512 (void)
{
  static int cached = -1;
  if (cached < 0)
    cached = __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512dq");
  return cached;
}

static float
sigmoid (float x)
{
  return 1.0f / (1.0f + expf (-x));
}

/* erf to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), the same formula in both kernels. */
static float
erf_approx (float x)
{
  float a = fabsf (x);
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
               + t * (-1.453152027f + t * 1.061405429f))));
  float y = 1.0f - poly * expf (-a * a);
  return copysignf (y, x);
}

static float
activation_scalar (float x, gc_activation act)
{
  switch (act)
    {
    case GC_ACT_SILU: return x * sigmoid (x);
    case GC_ACT_GELU: return 0.5f * x * (1.0f + erf_approx (x * (float) M_SQRT1_2));
    case GC_ACT_QUICK_GELU: return x * sigmoid (1.702f * x);
    }
  return x;
}

GC_AVX2 static __m256
sigmoid8 (__m256 x)
{
  __m256 one = _mm256_set1_ps (1.0f);
  return _mm256_div_ps (one, _mm256_add_ps (one, gc_exp8 (_mm256_sub_ps (_mm256_setzero_ps (), x))));
}

GC_AVX2 static __m256
gelu8 (__m256 x)
{
  __m256 z = _mm256_mul_ps (x, _mm256_set1_ps ((float) M_SQRT1_2));
  __m256 sign = _mm256_and_ps (z, _mm256_set1_ps (-0.0f));
  __m256 a = _mm256_andnot_ps (_mm256_set1_ps (-0.0f), z);
  __m256 one = _mm256_set1_ps (1.0f);
  __m256 t = _mm256_div_ps (one, _mm256_fmadd_ps (_mm256_set1_ps (0.3275911f), a, one));
  __m256 p = _mm256_set1_ps (1.061405429f);
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (-1.453152027f));
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (1.421413741f));
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (-0.284496736f));
  p = _mm256_fmadd_ps (p, t, _mm256_set1_ps (0.254829592f));
  p = _mm256_mul_ps (p, t);
  __m256 e = gc_exp8 (_mm256_sub_ps (_mm256_setzero_ps (), _mm256_mul_ps (a, a)));
  __m256 erf = _mm256_or_ps (_mm256_fnmadd_ps (p, e, one), sign);
  return _mm256_mul_ps (_mm256_mul_ps (_mm256_set1_ps (0.5f), x), _mm256_add_ps (one, erf));
}

GC_AVX2 static void
activation_avx2 (float *out, const float *x, int64_t count, gc_activation act)
{
  int64_t i = 0;
  for (; i + 8 <= count; i += 8)
    {
      __m256 v = _mm256_loadu_ps (x + i);
      __m256 y;
      switch (act)
        {
        case GC_ACT_SILU: y = _mm256_mul_ps (v, sigmoid8 (v)); break;
        case GC_ACT_QUICK_GELU:
          y = _mm256_mul_ps (v, sigmoid8 (_mm256_mul_ps (v, _mm256_set1_ps (1.702f))));
          break;
        default: y = gelu8 (v); break;
        }
      _mm256_storeu_ps (out + i, y);
    }
  for (; i < count; i++)
    out[i] = activation_scalar (x[i], act);
}

typedef struct {
  float *out;
  const float *x;
  gc_activation act;
} activation_job;

static void
activation_range (void *ctx, int64_t begin, int64_t end)
{
  const activation_job *j = ctx;
  if (gc_cpu_has_avx2 ())
    activation_avx2 (j->out + begin, j->x + begin, end - begin, j->act);
  else
    for (int64_t i = begin; i < end; i++)
      j->out[i] = activation_scalar (j->x[i], j->act);
}

void
gc_activation_forward (float *out, const float *x, int64_t count, gc_activation act)
{
  activation_job job = { out, x, act };
  gc_parallel_for (count, 1 << 15, activation_range, &job);
}

void
gc_activation_forward_naive (float *out, const float *x, int64_t count, gc_activation act)
{
  for (int64_t i = 0; i < count; i++)
    {
      double v = x[i];
      double y = act == GC_ACT_SILU         ? v / (1 + exp (-v))
                 : act == GC_ACT_QUICK_GELU ? v / (1 + exp (-1.702 * v))
                                            : 0.5 * v * (1 + erf (v * M_SQRT1_2));
      out[i] = (float) y;
    }
}

static double
activation_derivative (double v, gc_activation act)
{
  switch (act)
    {
    case GC_ACT_SILU:
      {
        double s = 1 / (1 + exp (-v));
        return s * (1 + v * (1 - s));
      }
    case GC_ACT_QUICK_GELU:
      {
        double s = 1 / (1 + exp (-1.702 * v));
        return s * (1 + 1.702 * v * (1 - s));
      }
    case GC_ACT_GELU:
      return 0.5 * (1 + erf (v * M_SQRT1_2)) + v * exp (-0.5 * v * v) / sqrt (2 * M_PI);
    }
  return 1;
}

/* The backwards of this file: d_x += f'(x)·d_out, element by element or row by row. */
typedef struct {
  float *d_x;
  const float *d_out;
  const float *x; /* the forward's input; softmax: its output */
  int64_t dim;
  gc_activation act;
} backward_job;

static void
activation_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const backward_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    j->d_x[i] += (float) (j->d_out[i] * activation_derivative (j->x[i], j->act));
}

void
gc_activation_backward (float *d_x, const float *d_out, const float *x, int64_t count,
                        gc_activation act)
{
  if (d_x == NULL)
    return;
  backward_job job = { .d_x = d_x, .d_out = d_out, .x = x, .act = act };
  gc_parallel_for (count, 1 << 14, activation_backward_range, &job);
}

typedef struct {
  float *out;
  const float *x;
  int64_t dim;
} geglu_job;

static void
geglu_range (void *ctx, int64_t begin, int64_t end)
{
  const geglu_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    {
      const float *a = j->x + r * 2 * j->dim, *g = a + j->dim;
      float *o = j->out + r * j->dim;
      activation_range (&(activation_job) { o, g, GC_ACT_GELU }, 0, j->dim);
      for (int64_t i = 0; i < j->dim; i++)
        o[i] *= a[i];
    }
}

void
gc_geglu_forward (float *out, const float *x, int64_t rows, int64_t dim)
{
  geglu_job job = { out, x, dim };
  gc_parallel_for (rows, 1 + 16384 / (dim + 1), geglu_range, &job);
}

void
gc_geglu_forward_naive (float *out, const float *x, int64_t rows, int64_t dim)
{
  for (int64_t r = 0; r < rows; r++)
    {
      gc_activation_forward_naive (out + r * dim, x + r * 2 * dim + dim, dim, GC_ACT_GELU);
      for (int64_t i = 0; i < dim; i++)
        out[r * dim + i] *= x[r * 2 * dim + i];
    }
}

static void
geglu_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const backward_job *j = ctx;
  int64_t dim = j->dim;
  for (int64_t r = begin; r < end; r++)
    for (int64_t i = 0; i < dim; i++)
      {
        double a = j->x[r * 2 * dim + i], g = j->x[r * 2 * dim + dim + i];
        double dy = j->d_out[r * dim + i];
        double gelu = 0.5 * g * (1 + erf (g * M_SQRT1_2));
        j->d_x[r * 2 * dim + i] += (float) (dy * gelu);
        j->d_x[r * 2 * dim + dim + i] += (float) (dy * a * activation_derivative (g, GC_ACT_GELU));
      }
}

void
gc_geglu_backward (float *d_x, const float *d_out, const float *x, int64_t rows, int64_t dim)
{
  if (d_x == NULL)
    return;
  backward_job job = { .d_x = d_x, .d_out = d_out, .x = x, .dim = dim };
  gc_parallel_for (rows, 1 + 4096 / (dim + 1), geglu_backward_range, &job);
}

/* row[i] = exp(row[i] − max row); returns the sum (in double). */
GC_AVX2 static double
exp_row_avx2 (float *row, int64_t n)
{
  float max = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    max = row[i] > max ? row[i] : max;
  if (max == -INFINITY)
    return 0;
  __m256 vmax = _mm256_set1_ps (max);
  __m256d acc_lo = _mm256_setzero_pd (), acc_hi = _mm256_setzero_pd ();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    {
      __m256 e = gc_exp8 (_mm256_sub_ps (_mm256_loadu_ps (row + i), vmax));
      _mm256_storeu_ps (row + i, e);
      acc_lo = _mm256_add_pd (acc_lo, _mm256_cvtps_pd (_mm256_castps256_ps128 (e)));
      acc_hi = _mm256_add_pd (acc_hi, _mm256_cvtps_pd (_mm256_extractf128_ps (e, 1)));
    }
  double lanes[4];
  _mm256_storeu_pd (lanes, _mm256_add_pd (acc_lo, acc_hi));
  double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; i++)
    {
      row[i] = expf (row[i] - max);
      sum += row[i];
    }
  return sum;
}

GC_AVX512 static double
exp_row_avx512 (float *row, int64_t n)
{
  __m512 vmax = _mm512_set1_ps (-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    vmax = _mm512_max_ps (vmax, _mm512_loadu_ps (row + i));
  float max = _mm512_reduce_max_ps (vmax);
  for (; i < n; i++)
    max = row[i] > max ? row[i] : max;
  if (max == -INFINITY)
    return 0;
  vmax = _mm512_set1_ps (max);
  __m512d acc_lo = _mm512_setzero_pd (), acc_hi = _mm512_setzero_pd ();
  for (i = 0; i + 16 <= n; i += 16)
    {
      __m512 e = gc_exp16 (_mm512_sub_ps (_mm512_loadu_ps (row + i), vmax));
      _mm512_storeu_ps (row + i, e);
      acc_lo = _mm512_add_pd (acc_lo, _mm512_cvtps_pd (_mm512_castps512_ps256 (e)));
      acc_hi = _mm512_add_pd (acc_hi, _mm512_cvtps_pd (_mm512_extractf32x8_ps (e, 1)));
    }
  double sum = _mm512_reduce_add_pd (_mm512_add_pd (acc_lo, acc_hi));
  for (; i < n; i++)
    {
      row[i] = expf (row[i] - max);
      sum += row[i];
    }
  return sum;
}

double
gc_exp_row (float *row, int64_t n)
{
  if (gc_cpu_has_avx512 ())
    return exp_row_avx512 (row, n);
  if (gc_cpu_has_avx2 ())
    return exp_row_avx2 (row, n);
  float max = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    max = row[i] > max ? row[i] : max;
  if (max == -INFINITY)
    return 0;
  double sum = 0;
  for (int64_t i = 0; i < n; i++)
    {
      row[i] = expf (row[i] - max);
      sum += row[i];
    }
  return sum;
}

/* One row: subtract the maximum, exponentiate, normalise by the sum (a fully masked row, all
 * −∞, gives zeros rather than NaN). */
static void
softmax_row (float *out, const float *x, int64_t dim)
{
  if (out != x)
    memcpy (out, x, sizeof (float) * (size_t) dim);
  double sum = gc_exp_row (out, dim);
  float inverse = sum > 0 ? (float) (1.0 / sum) : 0.0f;
  for (int64_t i = 0; i < dim; i++)
    out[i] = sum > 0 ? out[i] * inverse : 0.0f;
}

typedef struct {
  float *out;
  const float *x;
  int64_t dim;
} softmax_job;

static void
softmax_range (void *ctx, int64_t begin, int64_t end)
{
  const softmax_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    softmax_row (j->out + r * j->dim, j->x + r * j->dim, j->dim);
}

void
gc_softmax_forward (float *out, const float *x, int64_t rows, int64_t dim)
{
  softmax_job job = { out, x, dim };
  gc_parallel_for (rows, 1 + 16384 / (dim + 1), softmax_range, &job);
}

void
gc_softmax_forward_naive (float *out, const float *x, int64_t rows, int64_t dim)
{
  for (int64_t r = 0; r < rows; r++)
    {
      double max = -INFINITY, sum = 0;
      for (int64_t i = 0; i < dim; i++)
        max = fmax (max, x[r * dim + i]);
      if (max == -INFINITY)
        max = 0;
      for (int64_t i = 0; i < dim; i++)
        sum += exp (x[r * dim + i] - max);
      for (int64_t i = 0; i < dim; i++)
        out[r * dim + i] = sum > 0 ? (float) (exp (x[r * dim + i] - max) / sum) : 0.0f;
    }
}

static void
softmax_backward_range (void *ctx, int64_t begin, int64_t end)
{
  /* dx = y ⊙ (dy − Σ dy·y) */
  const backward_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    {
      const float *y = j->x + r * j->dim, *dy = j->d_out + r * j->dim;
      float *dx = j->d_x + r * j->dim;
      double dot = 0;
      for (int64_t i = 0; i < j->dim; i++)
        dot += (double) dy[i] * y[i];
      for (int64_t i = 0; i < j->dim; i++)
        dx[i] += (float) (y[i] * (dy[i] - dot));
    }
}

void
gc_softmax_backward (float *d_x, const float *d_out, const float *out, int64_t rows, int64_t dim)
{
  if (d_x == NULL)
    return;
  backward_job job = { .d_x = d_x, .d_out = d_out, .x = out, .dim = dim };
  gc_parallel_for (rows, 1 + 16384 / (dim + 1), softmax_backward_range, &job);
}

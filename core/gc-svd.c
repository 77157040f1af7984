#include "gc-svd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc-matmul.h"

enum { OVERSAMPLE = 8, POWER_ITERATIONS = 2, MAX_SWEEPS = 64, RESIDUAL_ROWS = 64 };

/* Standard normal numbers from a fixed xorshift64* stream (Box–Muller). */
static void
fill_normal (float *out, int64_t count)
{
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < count; i += 2)
    {
      double u[2];
      for (int k = 0; k < 2; k++)
        {
          state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
          u[k] = ((state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
        }
      double r = sqrt (-2 * log (1 - u[0])), angle = 2 * M_PI * u[1];
      out[i] = (float) (r * cos (angle));
      if (i + 1 < count)
        out[i + 1] = (float) (r * sin (angle));
    }
}

/* Makes the l columns of x[rows, l] orthonormal (modified Gram–Schmidt, two passes); columns
 * that are (numerically) dependent on earlier ones become zero. */
static void
orthonormalize (float *x, int64_t rows, int64_t l, double *column)
{
  for (int64_t j = 0; j < l; j++)
    {
      for (int64_t r = 0; r < rows; r++)
        column[r] = x[r * l + j];
      double first = 0;
      for (int64_t r = 0; r < rows; r++)
        first += column[r] * column[r];
      for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < j; i++)
          {
            double dot = 0;
            for (int64_t r = 0; r < rows; r++)
              dot += column[r] * x[r * l + i];
            for (int64_t r = 0; r < rows; r++)
              column[r] -= dot * x[r * l + i];
          }
      double norm = 0;
      for (int64_t r = 0; r < rows; r++)
        norm += column[r] * column[r];
      double keep = norm > 1e-10 * first && norm > 0 ? 1 / sqrt (norm) : 0;
      for (int64_t r = 0; r < rows; r++)
        x[r * l + j] = (float) (column[r] * keep);
    }
}

/* Eigen-decomposition of the symmetric a[l, l] by cyclic Jacobi rotations: the diagonal of a
 * becomes the eigenvalues, the columns of v the eigenvectors. */
static void
jacobi (double *a, double *v, int64_t l)
{
  for (int64_t i = 0; i < l * l; i++)
    v[i] = i % (l + 1) == 0;
  for (int sweep = 0; sweep < MAX_SWEEPS; sweep++)
    {
      double off = 0, diagonal = 0;
      for (int64_t p = 0; p < l; p++)
        {
          diagonal += a[p * l + p] * a[p * l + p];
          for (int64_t q = p + 1; q < l; q++)
            off += a[p * l + q] * a[p * l + q];
        }
      if (off <= 1e-30 * diagonal)
        break;
      for (int64_t p = 0; p < l; p++)
        for (int64_t q = p + 1; q < l; q++)
          {
            double apq = a[p * l + q];
            if (apq == 0)
              continue;
            double theta = (a[q * l + q] - a[p * l + p]) / (2 * apq);
            double t = (theta >= 0 ? 1 : -1) / (fabs (theta) + sqrt (theta * theta + 1));
            double c = 1 / sqrt (t * t + 1), s = t * c;
            for (int64_t k = 0; k < l; k++)
              {
                double akp = a[k * l + p], akq = a[k * l + q];
                a[k * l + p] = c * akp - s * akq;
                a[k * l + q] = s * akp + c * akq;
              }
            for (int64_t k = 0; k < l; k++)
              {
                double apk = a[p * l + k], aqk = a[q * l + k];
                a[p * l + k] = c * apk - s * aqk;
                a[q * l + k] = s * apk + c * aqk;
              }
            for (int64_t k = 0; k < l; k++)
              {
                double vkp = v[k * l + p], vkq = v[k * l + q];
                v[k * l + p] = c * vkp - s * vkq;
                v[k * l + q] = s * vkp + c * vkq;
              }
          }
    }
}

typedef struct {
  float *omega, *y, *z, *b, *wk, *us, *rows;
  double *g, *v, *column;
  int64_t *order;
} workspace;

static void
free_workspace (workspace *w)
{
  free (w->omega), free (w->y), free (w->z), free (w->b), free (w->wk), free (w->us);
  free (w->rows);
  free (w->g), free (w->v), free (w->column), free (w->order);
}

static bool
alloc_workspace (workspace *w, int64_t m, int64_t n, int64_t l, int64_t k)
{
  int64_t longest = m > n ? m : n;
  w->omega = malloc (sizeof (float) * (size_t) (n * l));
  w->y = malloc (sizeof (float) * (size_t) (m * l));
  w->z = malloc (sizeof (float) * (size_t) (n * l));
  w->b = malloc (sizeof (float) * (size_t) (l * n));
  w->wk = malloc (sizeof (float) * (size_t) (l * k));
  w->us = malloc (sizeof (float) * (size_t) (m * k));
  w->rows = malloc (sizeof (float) * (size_t) (RESIDUAL_ROWS * n));
  w->g = malloc (sizeof (double) * (size_t) (l * l));
  w->v = malloc (sizeof (double) * (size_t) (l * l));
  w->column = malloc (sizeof (double) * (size_t) longest);
  w->order = malloc (sizeof (int64_t) * (size_t) l);
  return w->omega && w->y && w->z && w->b && w->wk && w->us && w->rows && w->g && w->v
         && w->column && w->order;
}

/* Q[m, l]: an orthonormal basis of the range of (A·Aᵀ)^q·A·Ω, in w->y. */
static void
range_finder (workspace *w, const float *a, int64_t m, int64_t n, int64_t l)
{
  fill_normal (w->omega, n * l);
  gc_matmul (w->y, l, a, n, false, w->omega, l, false, m, l, n, 1, 0);
  orthonormalize (w->y, m, l, w->column);
  for (int q = 0; q < POWER_ITERATIONS; q++)
    {
      gc_matmul (w->z, l, a, n, true, w->y, l, false, n, l, m, 1, 0);
      orthonormalize (w->z, n, l, w->column);
      gc_matmul (w->y, l, a, n, false, w->z, l, false, m, l, n, 1, 0);
      orthonormalize (w->y, m, l, w->column);
    }
}

/* ‖A − U·diag(s)·Vᵀ‖_F², the product formed in float32 (one row block at a time) and the
 * differences summed in double. */
static double
residual (const float *u, const float *s, const float *vt, const float *a, int64_t m, int64_t n,
          int64_t k, float *us, float *rows)
{
  for (int64_t r = 0; r < m; r++)
    for (int64_t i = 0; i < k; i++)
      us[r * k + i] = u[r * k + i] * s[i];
  double sum = 0;
  for (int64_t r0 = 0; r0 < m; r0 += RESIDUAL_ROWS)
    {
      int64_t count = m - r0 < RESIDUAL_ROWS ? m - r0 : RESIDUAL_ROWS;
      gc_matmul (rows, n, us + r0 * k, k, false, vt, n, false, count, n, k, 1, 0);
      for (int64_t i = 0; i < count * n; i++)
        {
          double d = (double) a[r0 * n + i] - rows[i];
          sum += d * d;
        }
    }
  return sum;
}

gc_status
gc_svd_truncated (float *u, float *s, float *vt, double *tail, const float *a, int64_t m,
                  int64_t n, int64_t k, gc_error *err)
{
  int64_t smaller = m < n ? m : n;
  if (k < 1 || k > smaller)
    return gc_error_set (err, GC_ERR_INVALID, "rank %lld is not in 1..%lld", (long long) k,
                         (long long) smaller);
  int64_t l = k + OVERSAMPLE < smaller ? k + OVERSAMPLE : smaller;
  workspace w = { 0 };
  if (!alloc_workspace (&w, m, n, l, k))
    {
      free_workspace (&w);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory decomposing a %lldx%lld matrix",
                           (long long) m, (long long) n);
    }
  range_finder (&w, a, m, n, l);
  /* B[l, n] = Qᵀ·A; B·Bᵀ = W·Λ·Wᵀ */
  gc_matmul (w.b, n, w.y, l, true, a, n, false, l, n, m, 1, 0);
  for (int64_t i = 0; i < l; i++)
    for (int64_t j = i; j < l; j++)
      {
        double dot = 0;
        for (int64_t c = 0; c < n; c++)
          dot += (double) w.b[i * n + c] * w.b[j * n + c];
        w.g[i * l + j] = w.g[j * l + i] = dot;
      }
  jacobi (w.g, w.v, l);
  for (int64_t i = 0; i < l; i++) /* eigenvalues in descending order */
    {
      int64_t j = i;
      for (; j > 0 && w.g[w.order[j - 1] * (l + 1)] < w.g[i * (l + 1)]; j--)
        w.order[j] = w.order[j - 1];
      w.order[j] = i;
    }
  for (int64_t i = 0; i < k; i++)
    {
      s[i] = (float) sqrt (fmax (w.g[w.order[i] * (l + 1)], 0));
      for (int64_t j = 0; j < l; j++)
        w.wk[j * k + i] = (float) w.v[j * l + w.order[i]];
    }
  /* U = Q·W_k; Vᵀ = diag(1/s)·W_kᵀ·B */
  gc_matmul (u, k, w.y, l, false, w.wk, k, false, m, k, l, 1, 0);
  gc_matmul (vt, n, w.wk, k, true, w.b, n, false, k, n, l, 1, 0);
  for (int64_t i = 0; i < k; i++)
    for (int64_t c = 0; c < n; c++)
      vt[i * n + c] = s[i] > 0 ? vt[i * n + c] / s[i] : 0;
  *tail = residual (u, s, vt, a, m, n, k, w.us, w.rows);
  free_workspace (&w);
  return GC_OK;
}

/* The truncated SVD that compresses baked blends: exact on matrices of low rank, and on others
 * the error of the best rank-k approximation (the tail of the singular values), checked on
 * matrices built with a known spectrum. */
#include <glib.h>
#include <math.h>

#include "gc-matmul.h"
#include "gc-svd.h"

/* q[rows, cols] with orthonormal columns (Gram–Schmidt of random vectors). */
static float *
orthonormal (GRand *rand, int rows, int cols)
{
  double *q = g_new (double, rows * cols);
  for (int i = 0; i < rows * cols; i++)
    q[i] = g_rand_double_range (rand, -1, 1);
  for (int j = 0; j < cols; j++)
    {
      for (int i = 0; i < j; i++)
        {
          double dot = 0;
          for (int r = 0; r < rows; r++)
            dot += q[r * cols + j] * q[r * cols + i];
          for (int r = 0; r < rows; r++)
            q[r * cols + j] -= dot * q[r * cols + i];
        }
      double norm = 0;
      for (int r = 0; r < rows; r++)
        norm += q[r * cols + j] * q[r * cols + j];
      for (int r = 0; r < rows; r++)
        q[r * cols + j] /= sqrt (norm);
    }
  float *out = g_new (float, rows * cols);
  for (int i = 0; i < rows * cols; i++)
    out[i] = (float) q[i];
  g_free (q);
  return out;
}

/* a[m, n] = U·diag(sigma)·Vᵀ for random orthonormal U [m, p], V [n, p] */
static float *
with_spectrum (int m, int n, int p, const double *sigma)
{
  GRand *rand = g_rand_new_with_seed (7);
  g_autofree float *u = orthonormal (rand, m, p), *v = orthonormal (rand, n, p);
  for (int r = 0; r < m; r++)
    for (int i = 0; i < p; i++)
      u[r * p + i] *= (float) sigma[i];
  float *a = g_new (float, m * n);
  gc_matmul_naive (a, n, u, p, false, v, p, true, m, n, p, 1, 0);
  g_rand_free (rand);
  return a;
}

static void
check (int m, int n, int p, int k)
{
  g_autofree double *sigma = g_new (double, p);
  double tail = 0, total = 0;
  for (int i = 0; i < p; i++)
    {
      sigma[i] = pow (0.8, i) * 3;
      total += sigma[i] * sigma[i];
      tail += i >= k ? sigma[i] * sigma[i] : 0;
    }
  g_autofree float *a = with_spectrum (m, n, p, sigma);
  g_autofree float *u = g_new (float, m * k), *s = g_new (float, k), *vt = g_new (float, k * n);
  double error2;
  gc_error err = { 0 };
  g_assert_cmpint (gc_svd_truncated (u, s, vt, &error2, a, m, n, k, &err), ==, GC_OK);
  for (int i = 0; i < k && i < p; i++)
    g_assert_cmpfloat (fabs (s[i] - sigma[i]), <, 1e-4 * sigma[0]);
  /* the best possible error, and what the reconstruction really misses */
  g_assert_cmpfloat (sqrt (error2 / total), <, sqrt (tail / total) * 1.01 + 1e-5);
  g_autofree float *us = g_new (float, m * k), *back = g_new (float, m * n);
  for (int r = 0; r < m; r++)
    for (int i = 0; i < k; i++)
      us[r * k + i] = u[r * k + i] * s[i];
  gc_matmul_naive (back, n, us, k, false, vt, n, false, m, n, k, 1, 0);
  double miss = 0;
  for (int i = 0; i < m * n; i++)
    miss += ((double) a[i] - back[i]) * ((double) a[i] - back[i]);
  g_assert_cmpfloat (fabs (miss - error2), <, 1e-6 * total);
}

static void
test_exact_on_low_rank (void)
{
  check (120, 70, 6, 6);  /* rank 6 kept whole */
  check (40, 300, 5, 12); /* more kept than the rank */
}

static void
test_best_approximation (void)
{
  check (90, 64, 40, 8);
  check (64, 576, 64, 16); /* a 3×3 convolution's shape */
}

static void
test_bad_rank (void)
{
  float a[4] = { 1, 2, 3, 4 }, u[4], s[2], vt[4];
  double tail;
  gc_error err = { 0 };
  g_assert_cmpint (gc_svd_truncated (u, s, vt, &tail, a, 2, 2, 3, &err), ==, GC_ERR_INVALID);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/svd/exact-on-low-rank", test_exact_on_low_rank);
  g_test_add_func ("/core/svd/best-approximation", test_best_approximation);
  g_test_add_func ("/core/svd/bad-rank", test_bad_rank);
  return g_test_run ();
}

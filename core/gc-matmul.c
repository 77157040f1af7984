#include "gc-matmul.h"

#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#include "gc-threads.h"

typedef struct {
  float *c;
  int64_t ldc;
  const float *a;
  int64_t lda;
  bool trans_a;
  const float *b;
  int64_t ldb;
  bool trans_b;
  int64_t m, n, k;
  float alpha, beta;
  bool split_rows;
} matmul_job;

static void
blas (float *c, int64_t ldc, const float *a, int64_t lda, bool trans_a, const float *b,
      int64_t ldb, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, float beta)
{
  cblas_sgemm (CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
               trans_b ? CblasTrans : CblasNoTrans, (blasint) m, (blasint) n, (blasint) k, alpha,
               a, (blasint) lda, b, (blasint) ldb, beta, c, (blasint) ldc);
}

/* Blocks of 16 rows or columns keep the BLAS micro-kernels on full vectors. */
static int64_t
align_block (int64_t index, int64_t total)
{
  int64_t aligned = (index + 8) / 16 * 16;
  return aligned > total ? total : aligned;
}

static void
matmul_range (void *ctx, int64_t begin, int64_t end)
{
  const matmul_job *j = ctx;
  int64_t total = j->split_rows ? j->m : j->n;
  int64_t from = begin == 0 ? 0 : align_block (begin, total);
  int64_t to = end == total ? total : align_block (end, total);
  if (from >= to)
    return;
  if (j->split_rows)
    {
      const float *a = j->trans_a ? j->a + from : j->a + from * j->lda;
      blas (j->c + from * j->ldc, j->ldc, a, j->lda, j->trans_a, j->b, j->ldb, j->trans_b,
            to - from, j->n, j->k, j->alpha, j->beta);
    }
  else
    {
      const float *b = j->trans_b ? j->b + from * j->ldb : j->b + from;
      blas (j->c + from, j->ldc, j->a, j->lda, j->trans_a, b, j->ldb, j->trans_b, j->m,
            to - from, j->k, j->alpha, j->beta);
    }
}

void
gc_matmul (float *c, int64_t ldc, const float *a, int64_t lda, bool trans_a, const float *b,
           int64_t ldb, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, float beta)
{
  if (m <= 0 || n <= 0)
    return;
  matmul_job job = { c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta, m > n };
  int64_t total = job.split_rows ? m : n;
  /* Below ~2 MFLOP per thread the wake-up costs more than it saves. */
  int64_t grain = total * (1 << 21) / (2 * m * n * (k > 0 ? k : 1) + 1) + 16;
  gc_parallel_for (total, grain, matmul_range, &job);
}

void
gc_matmul_naive (float *c, int64_t ldc, const float *a, int64_t lda, bool trans_a,
                 const float *b, int64_t ldb, bool trans_b, int64_t m, int64_t n, int64_t k,
                 float alpha, float beta)
{
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++)
      {
        double sum = 0;
        for (int64_t p = 0; p < k; p++)
          {
            float av = trans_a ? a[p * lda + i] : a[i * lda + p];
            float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
            sum += (double) av * bv;
          }
        float prior = beta == 0 ? 0 : beta * c[i * ldc + j];
        c[i * ldc + j] = (float) (alpha * sum) + prior;
      }
}

static double
now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double
gc_matmul_measure_gflops (int n, double seconds)
{
  size_t count = (size_t) n * n;
  float *a = malloc (count * sizeof (float));
  float *b = malloc (count * sizeof (float));
  float *c = malloc (count * sizeof (float));
  if (!a || !b || !c)
    {
      free (a);
      free (b);
      free (c);
      return 0;
    }
  for (size_t i = 0; i < count; i++)
    {
      a[i] = (float) ((i * 7919) % 1000) * 1e-3f - 0.5f;
      b[i] = (float) ((i * 104729) % 1000) * 1e-3f - 0.5f;
    }
  gc_matmul (c, n, a, n, false, b, n, false, n, n, n, 1, 0); /* warm-up */
  double best = 0;
  double start = now_seconds ();
  do
    {
      double t0 = now_seconds ();
      gc_matmul (c, n, a, n, false, b, n, false, n, n, n, 1, 0);
      double rate = 2.0 * n * n * (double) n / (now_seconds () - t0) * 1e-9;
      if (rate > best)
        best = rate;
    }
  while (now_seconds () - start < seconds);
  free (a);
  free (b);
  free (c);
  return best;
}

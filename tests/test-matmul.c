/* The engine's one matrix product against plain loops, on odd shapes and every transpose. */
#include <glib.h>
#include <math.h>

#include "gc-matmul.h"
#include "gc-threads.h"

static void
fill (float *x, size_t n, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rand, -1, 1);
  g_rand_free (rand);
}

static double
max_abs_diff (const float *a, const float *b, size_t n)
{
  double worst = 0;
  for (size_t i = 0; i < n; i++)
    worst = fmax (worst, fabs ((double) a[i] - b[i]));
  return worst;
}

static void
test_against_naive (void)
{
  const int shapes[][3] = { { 1, 1, 1 }, { 7, 13, 5 }, { 33, 1, 17 }, { 1, 97, 3 },
                            { 130, 67, 45 }, { 19, 300, 1 }, { 257, 129, 64 } };
  for (int threads = 1; threads <= 3; threads++)
    {
      gc_threads_set (threads);
      for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
        for (int variant = 0; variant < 8; variant++)
          {
            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            bool ta = variant & 1, tb = variant & 2, accumulate = variant & 4;
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
            float *a = g_new (float, (size_t) lda * (ta ? k : m));
            float *b = g_new (float, (size_t) ldb * (tb ? n : k));
            float *fast = g_new (float, (size_t) ldc * m);
            float *slow = g_new (float, (size_t) ldc * m);
            fill (a, (size_t) lda * (ta ? k : m), 1);
            fill (b, (size_t) ldb * (tb ? n : k), 2);
            fill (fast, (size_t) ldc * m, 3);
            memcpy (slow, fast, sizeof (float) * ldc * m);
            float beta = accumulate ? 0.5f : 0.0f;
            gc_matmul (fast, ldc, a, lda, ta, b, ldb, tb, m, n, k, 1.5f, beta);
            gc_matmul_naive (slow, ldc, a, lda, ta, b, ldb, tb, m, n, k, 1.5f, beta);
            g_assert_cmpfloat (max_abs_diff (fast, slow, (size_t) ldc * m), <, 1e-4 * sqrt (k));
            g_free (a);
            g_free (b);
            g_free (fast);
            g_free (slow);
          }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/matmul/against-naive", test_against_naive);
  return g_test_run ();
}

/* Every fast op against its naive twin, on odd shapes that catch tiling and edge mistakes. */
#include <glib.h>
#include <math.h>

#include "gc-ops.h"
#include "gc-threads.h"

static float *
random_floats (size_t n, guint32 seed, double range)
{
  float *x = g_new (float, n);
  GRand *rand = g_rand_new_with_seed (seed);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rand, -range, range);
  g_rand_free (rand);
  return x;
}

/* max |a − b| / (max |b| + tiny): a scale-free error */
static double
relative_error (const float *a, const float *b, size_t n)
{
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < n; i++)
    {
      worst = fmax (worst, fabs ((double) a[i] - b[i]));
      scale = fmax (scale, fabs ((double) b[i]));
    }
  return worst / scale;
}

static void
test_linear (void)
{
  const int64_t shapes[][3] = { { 1, 1, 1 }, { 5, 7, 3 }, { 77, 64, 256 }, { 130, 33, 17 } };
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      int64_t rows = shapes[s][0], in_f = shapes[s][1], out_f = shapes[s][2];
      float *in = random_floats (rows * in_f, 1, 1), *w = random_floats (out_f * in_f, 2, 1);
      float *bias = random_floats (out_f, 3, 1);
      float *fast = g_new (float, rows * out_f), *slow = g_new (float, rows * out_f);
      gc_linear_forward (fast, in, w, bias, rows, in_f, out_f);
      gc_linear_forward_naive (slow, in, w, bias, rows, in_f, out_f);
      g_assert_cmpfloat (relative_error (fast, slow, rows * out_f), <, 1e-6);
      g_free (in), g_free (w), g_free (bias), g_free (fast), g_free (slow);
    }
}

static void
check_conv (gc_conv2d_shape s)
{
  gc_arena scratch;
  gc_arena_init (&scratch, 1 << 20);
  int64_t oh = gc_conv2d_out_h (&s), ow = gc_conv2d_out_w (&s);
  size_t in_n = s.n * s.c_in * s.h * s.w, out_n = s.n * s.c_out * oh * ow;
  float *in = random_floats (in_n, 4, 1);
  float *w = random_floats (s.c_out * s.c_in * s.kh * s.kw, 5, 0.5);
  float *bias = random_floats (s.c_out, 6, 1);
  float *fast = g_new (float, out_n), *slow = g_new (float, out_n);
  gc_conv2d_forward (&scratch, fast, in, w, bias, &s);
  gc_conv2d_forward_naive (slow, in, w, bias, &s);
  g_assert_cmpfloat (relative_error (fast, slow, out_n), <, 1e-5);
  g_assert_cmpuint (scratch.in_use, ==, 0);
  g_free (in), g_free (w), g_free (bias), g_free (fast), g_free (slow);
  gc_arena_free (&scratch);
}

static void
test_conv2d (void)
{
  for (int threads = 1; threads <= 3; threads += 2)
    {
      gc_threads_set (threads);
      check_conv (gc_conv2d_square (1, 3, 7, 5, 4, 3, 1, 1));   /* 3×3 same */
      check_conv (gc_conv2d_square (2, 5, 9, 13, 6, 3, 2, 1));  /* downsampling */
      check_conv (gc_conv2d_square (1, 4, 6, 6, 3, 1, 1, 0));   /* pointwise */
      check_conv (gc_conv2d_square (2, 3, 11, 4, 2, 5, 1, 2));  /* 5×5 */
      check_conv (gc_conv2d_square (1, 2, 8, 8, 3, 3, 1, 0));   /* valid */
      /* Images of over 2048 output pixels per thread take the banded paths (stride 1 by kernel
       * taps, other strides by im2col bands); smaller ones one im2col product. */
      check_conv (gc_conv2d_square (1, 3, 300, 7, 2, 3, 1, 1)); /* many bands */
      check_conv (gc_conv2d_square (1, 2, 130, 70, 3, 3, 2, 1)); /* strided bands */
      check_conv (gc_conv2d_square (1, 2, 5, 5, 3, 1, 2, 0));   /* strided pointwise */
      gc_conv2d_shape asymmetric = { 1, 3, 8, 6, 4, 3, 3, 2, 0, 1, 0, 1 }; /* VAE encoder */
      check_conv (asymmetric);
      gc_conv2d_shape rect = { 1, 2, 6, 9, 3, 1, 3, 1, 0, 0, 1, 1 };
      check_conv (rect);
    }
  gc_threads_set (0);
}

static void
test_group_norm (void)
{
  const int64_t n = 2, c = 12, hw = 35, groups = 4;
  float *x = random_floats (n * c * hw, 7, 3), *gamma = random_floats (c, 8, 1);
  float *beta = random_floats (c, 9, 1);
  for (size_t i = 0; i < n * c * hw; i++)
    x[i] += 100.0f; /* a large mean: one-pass variance would lose digits here */
  float *fast = g_new (float, n * c * hw), *slow = g_new (float, n * c * hw);
  gc_group_norm_forward (fast, NULL, x, gamma, beta, n, c, hw, groups, 1e-6f);
  gc_group_norm_forward_naive (slow, x, gamma, beta, n, c, hw, groups, 1e-6f);
  g_assert_cmpfloat (relative_error (fast, slow, n * c * hw), <, 1e-5);
  /* the fused SiLU variant equals norm then SiLU */
  gc_group_norm_silu_forward (fast, x, gamma, beta, n, c, hw, groups, 1e-6f);
  gc_activation_forward_naive (slow, slow, n * c * hw, GC_ACT_SILU);
  g_assert_cmpfloat (relative_error (fast, slow, n * c * hw), <, 1e-5);
  g_free (x), g_free (gamma), g_free (beta), g_free (fast), g_free (slow);
}

static void
test_layer_norm (void)
{
  const int64_t rows = 9, dim = 67;
  float *x = random_floats (rows * dim, 10, 2), *gamma = random_floats (dim, 11, 1);
  float *beta = random_floats (dim, 12, 1);
  float *fast = g_new (float, rows * dim), *slow = g_new (float, rows * dim);
  gc_layer_norm_forward (fast, NULL, x, gamma, beta, rows, dim, 1e-5f);
  gc_layer_norm_forward_naive (slow, x, gamma, beta, rows, dim, 1e-5f);
  g_assert_cmpfloat (relative_error (fast, slow, rows * dim), <, 1e-5);
  g_free (x), g_free (gamma), g_free (beta), g_free (fast), g_free (slow);
}

static void
test_activations (void)
{
  const int64_t count = 1001;
  float *x = random_floats (count, 13, 12);
  x[0] = 0, x[1] = -90, x[2] = 90, x[3] = -1e-20f;
  float *fast = g_new (float, count), *slow = g_new (float, count);
  for (int act = GC_ACT_SILU; act <= GC_ACT_QUICK_GELU; act++)
    {
      gc_activation_forward (fast, x, count, act);
      gc_activation_forward_naive (slow, x, count, act);
      for (int64_t i = 0; i < count; i++)
        g_assert_cmpfloat (fabs (fast[i] - slow[i]), <=, 2e-6 * fmax (1, fabs (slow[i])));
    }
  float *pairs = random_floats (3 * 2 * 37, 14, 4);
  float *gf = g_new (float, 3 * 37), *gs = g_new (float, 3 * 37);
  gc_geglu_forward (gf, pairs, 3, 37);
  gc_geglu_forward_naive (gs, pairs, 3, 37);
  g_assert_cmpfloat (relative_error (gf, gs, 3 * 37), <, 2e-6);
  g_free (x), g_free (fast), g_free (slow), g_free (pairs), g_free (gf), g_free (gs);
}

static void
test_softmax (void)
{
  const int64_t rows = 5, dim = 77;
  float *x = random_floats (rows * dim, 15, 30);
  for (int64_t i = 0; i < dim; i++)
    x[i] = -INFINITY; /* a fully masked row stays finite (zeros) */
  float *fast = g_new (float, rows * dim), *slow = g_new (float, rows * dim);
  gc_softmax_forward (fast, x, rows, dim);
  gc_softmax_forward_naive (slow, x, rows, dim);
  g_assert_cmpfloat (relative_error (fast, slow, rows * dim), <, 1e-6);
  for (int64_t i = 0; i < dim; i++)
    g_assert_cmpfloat (fast[i], ==, 0.0f);
  g_free (x), g_free (fast), g_free (slow);
}

static void
check_attention (gc_attention_shape s)
{
  gc_arena scratch;
  gc_arena_init (&scratch, 1 << 20);
  float *q = random_floats (s.batch * s.tq * s.q_stride, 16, 2);
  float *k = random_floats (s.batch * s.tk * s.k_stride, 17, 2);
  float *v = random_floats (s.batch * s.tk * s.v_stride, 18, 1);
  size_t out_n = s.batch * s.tq * s.heads * s.dh;
  float *fast = g_new (float, out_n), *slow = g_new (float, out_n);
  gc_attention_forward (&scratch, fast, q, k, v, &s);
  gc_attention_forward_naive (slow, q, k, v, &s);
  g_assert_cmpfloat (relative_error (fast, slow, out_n), <, 1e-5);
  g_free (q), g_free (k), g_free (v), g_free (fast), g_free (slow);
  gc_arena_free (&scratch);
}

static void
test_attention (void)
{
  /* self-attention over more tokens than a tile, with a q/k/v stride of a fused projection */
  check_attention ((gc_attention_shape) { 2, 130, 130, 3, 8, 3 * 24, 3 * 24, 3 * 24, false });
  /* cross-attention on 77 text tokens */
  check_attention ((gc_attention_shape) { 1, 67, 77, 2, 5, 10, 10, 10, false });
  /* causal, as the text encoder uses */
  check_attention ((gc_attention_shape) { 3, 77, 77, 1, 64, 64, 64, 64, true });
}

static void
test_layout (void)
{
  const int64_t n = 2, c = 37, h = 3, w = 5;
  float *x = random_floats (n * c * h * w, 19, 1);
  float *tokens = g_new (float, n * c * h * w), *back = g_new (float, n * c * h * w);
  gc_nchw_to_tokens (tokens, x, n, c, h * w);
  g_assert_cmpfloat (tokens[(1 * h * w + 7) * c + 30], ==, x[(1 * c + 30) * h * w + 7]);
  gc_tokens_to_nchw (back, tokens, n, c, h * w);
  g_assert_cmpmem (back, sizeof (float) * n * c * h * w, x, sizeof (float) * n * c * h * w);
  float *up = g_new (float, n * c * 4 * h * w);
  gc_upsample2x_forward (up, x, n, c, h, w);
  g_assert_cmpfloat (up[(c + 2) * 4 * h * w + (2 * 2 + 1) * 2 * w + 2 * 4 + 1], ==,
                     x[(c + 2) * h * w + 2 * w + 4]);
  g_free (x), g_free (tokens), g_free (back), g_free (up);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gc_threads_set (0);
  g_test_add_func ("/core/ops/linear/forward", test_linear);
  g_test_add_func ("/core/ops/conv2d/forward", test_conv2d);
  g_test_add_func ("/core/ops/groupnorm/forward", test_group_norm);
  g_test_add_func ("/core/ops/layernorm/forward", test_layer_norm);
  g_test_add_func ("/core/ops/activation/forward", test_activations);
  g_test_add_func ("/core/ops/softmax/forward", test_softmax);
  g_test_add_func ("/core/ops/attention/forward", test_attention);
  g_test_add_func ("/core/ops/layout", test_layout);
  return g_test_run ();
}

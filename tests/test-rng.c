/* torch-compatible randn: a seed must give the same noise here as torch's CPU generator, bit for
 * bit, or an artist's seed would not reproduce an image made with another tool. The expected
 * values are torch.randn outputs stored in ref_tiny_rng.safetensors. (The float64 draws have no
 * stored values: test-sampler's Euler a and LCM reference pipelines check them.) */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gc-rng.h"
#include "gc-safetensors.h"

static gc_safetensors *
open_reference (void)
{
  const char *dir = g_getenv ("GOUACHE_TEST_DATA");
  g_assert_nonnull (dir);
  g_autofree char *path = g_build_filename (dir, "ref_tiny_rng.safetensors", NULL);
  gc_safetensors *file = NULL;
  gc_error err = { 0 };
  gc_status status = gc_safetensors_open (&file, path, &err);
  if (status != GC_OK)
    g_error ("%s: %s", path, err.message);
  return file;
}

/* The named float32 tensor as a newly allocated array; *count gets its length. */
static float *
load_floats (gc_safetensors *file, const char *name, int64_t *count)
{
  const gc_st_tensor *t = gc_safetensors_find (file, name);
  if (!t)
    g_error ("reference tensor %s is missing", name);
  g_assert_cmpint (t->dtype, ==, GC_DTYPE_F32);
  *count = (int64_t) (t->nbytes / sizeof (float));
  float *values = g_new (float, *count);
  memcpy (values, t->data, t->nbytes); /* the mapping may be unaligned */
  return values;
}

/* Bit equality, reporting the first difference. */
static void
assert_same_floats (const char *what, const float *got, const float *want, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    if (memcmp (&got[i], &want[i], sizeof (float)) != 0)
      g_error ("%s[%" PRId64 "]: got %.9g, torch gives %.9g", what, i, got[i], want[i]);
}

static void
test_mt19937_known_outputs (void)
{
  /* The reference MT19937 seeded 5489: first output and the 10000th (C++11 [rand.predef]). */
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 5489);
  g_assert_cmpuint (gc_torch_rng_u32 (&rng), ==, 3499211612u);
  for (int i = 1; i < 9999; i++)
    gc_torch_rng_u32 (&rng);
  g_assert_cmpuint (gc_torch_rng_u32 (&rng), ==, 4123659995u);
}

static void
test_u64_is_high_then_low (void)
{
  gc_torch_rng a, b;
  gc_torch_rng_seed (&a, 1);
  gc_torch_rng_seed (&b, 1);
  uint64_t hi = gc_torch_rng_u32 (&b);
  uint64_t lo = gc_torch_rng_u32 (&b);
  g_assert_cmpuint (gc_torch_rng_u64 (&a), ==, (hi << 32) | lo);
}

static void
test_seed_uses_low_32_bits (void)
{
  /* As torch: manual_seed(42) and manual_seed(42 + 2³²) give the same stream. */
  gc_torch_rng a, b;
  gc_torch_rng_seed (&a, 42);
  gc_torch_rng_seed (&b, 42 + (UINT64_C (1) << 32));
  float x[32], y[32];
  gc_torch_randn (&a, x, 32);
  gc_torch_randn (&b, y, 32);
  assert_same_floats ("high seed bits", x, y, 32);
}

/* Every rng.seed{S}.n{N} case: a fresh generator, one draw. */
static void
test_randn_reference (void)
{
  gc_safetensors *file = open_reference ();
  int cases = 0;
  for (size_t i = 0; i < gc_safetensors_count (file); i++)
    {
      const char *name = gc_safetensors_at (file, i)->name;
      uint64_t seed;
      int n;
      if (sscanf (name, "rng.seed%" SCNu64 ".n%d", &seed, &n) != 2)
        continue;
      int64_t count;
      g_autofree float *want = load_floats (file, name, &count);
      g_assert_cmpint (count, ==, n);
      g_autofree float *got = g_new (float, n);
      gc_torch_rng rng;
      gc_torch_rng_seed (&rng, seed);
      gc_torch_randn (&rng, got, n);
      assert_same_floats (name, got, want, n);
      cases++;
    }
  /* n = 7 (serial path), 16, 23 (redrawn tail), 100, 256, 16384. */
  g_assert_cmpint (cases, >=, 6);
  gc_safetensors_close (file);
}

static void
test_randn_successive_draws (void)
{
  gc_safetensors *file = open_reference ();
  int64_t n1, n2;
  g_autofree float *first = load_floats (file, "rng.seed7.first", &n1);
  g_autofree float *second = load_floats (file, "rng.seed7.second", &n2);
  g_assert_cmpint (n1, ==, 256);
  g_assert_cmpint (n2, ==, 256);
  float got[256];
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 7);
  gc_torch_randn (&rng, got, 256);
  assert_same_floats ("rng.seed7.first", got, first, 256);
  gc_torch_randn (&rng, got, 256);
  assert_same_floats ("rng.seed7.second", got, second, 256);
  gc_safetensors_close (file);
}

static void
test_cached_normal_spans_calls (void)
{
  /* Below 16 values torch draws pairs and keeps the second value in the generator:
   * randn(3) then randn(3) is randn(6). */
  gc_torch_rng a, b;
  gc_torch_rng_seed (&a, 42);
  gc_torch_rng_seed (&b, 42);
  float split[6], whole[6];
  gc_torch_randn (&a, split, 3);
  gc_torch_randn (&a, split + 3, 3);
  gc_torch_randn (&b, whole, 6);
  assert_same_floats ("randn(3) + randn(3)", split, whole, 6);
}

static void
test_fill_path_keeps_cached_normal (void)
{
  /* The 16-wide path neither uses nor clears the pending value: randn(1), randn(16), randn(1)
   * returns the first pair's second value last. */
  gc_torch_rng a, b;
  gc_torch_rng_seed (&a, 42);
  gc_torch_rng_seed (&b, 42);
  float one[1], block[16], last[1], pair[2];
  gc_torch_randn (&a, one, 1);
  gc_torch_randn (&a, block, 16);
  gc_torch_randn (&a, last, 1);
  gc_torch_randn (&b, pair, 2);
  assert_same_floats ("first value", one, pair, 1);
  assert_same_floats ("cached value", last, pair + 1, 1);
}

static void
test_randn_f64_draws (void)
{
  /* Below 16 values float32 and float64 share the serial double path. */
  gc_torch_rng a, b;
  gc_torch_rng_seed (&a, 42);
  gc_torch_rng_seed (&b, 42);
  float x[7], y[7];
  gc_torch_randn (&a, x, 7);
  gc_torch_randn_f64 (&b, y, 7);
  assert_same_floats ("randn_f64(7)", y, x, 7);

  /* From 16 on: two 32-bit words per uniform, n of them plus a redrawn block of 16 when n is
   * not a multiple of 16. */
  static const int sizes[] = { 16, 23, 256 };
  for (size_t k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      int n = sizes[k];
      float out[256];
      gc_torch_rng_seed (&a, 3);
      gc_torch_rng_seed (&b, 3);
      gc_torch_randn_f64 (&a, out, n);
      int uniforms = n + (n % 16 ? 16 : 0);
      for (int i = 0; i < 2 * uniforms; i++)
        gc_torch_rng_u32 (&b);
      g_assert_cmpuint (gc_torch_rng_u32 (&a), ==, gc_torch_rng_u32 (&b));
      /* Standard normal values, none of them float32's (the uniforms differ). */
      double sum = 0;
      for (int i = 0; i < n; i++)
        sum += out[i] * out[i];
      g_assert_cmpfloat (sum / n, >, 0.3);
      g_assert_cmpfloat (sum / n, <, 3.0);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/rng/mt19937/known-outputs", test_mt19937_known_outputs);
  g_test_add_func ("/core/rng/mt19937/u64", test_u64_is_high_then_low);
  g_test_add_func ("/core/rng/seed/low-32-bits", test_seed_uses_low_32_bits);
  g_test_add_func ("/core/rng/randn/reference", test_randn_reference);
  g_test_add_func ("/core/rng/randn/successive", test_randn_successive_draws);
  g_test_add_func ("/core/rng/randn/cached-normal", test_cached_normal_spans_calls);
  g_test_add_func ("/core/rng/randn/fill-keeps-cache", test_fill_path_keeps_cached_normal);
  g_test_add_func ("/core/rng/randn-f64/draws", test_randn_f64_draws);
  return g_test_run ();
}

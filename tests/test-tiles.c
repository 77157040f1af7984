/* Tiled decoding: blending the tiles of a local function must give exactly its untiled output,
 * whatever the tile size, overlap and image size — otherwise seams would show in large images. */
#include <glib.h>
#include <math.h>

#include "gc-tiles.h"

/* A local stand-in for the decoder: each input cell becomes a scale × scale block, two output
 * channels per input channel. */
static gc_status
blocky (void *ctx, float *out, const float *in, int64_t th, int64_t tw, gc_error *err)
{
  int64_t scale = *(const int64_t *) ctx;
  for (int64_t c = 0; c < 2; c++)
    for (int64_t y = 0; y < th * scale; y++)
      for (int64_t x = 0; x < tw * scale; x++)
        out[(c * th * scale + y) * tw * scale + x] = in[(y / scale) * tw + x / scale] * (c + 1);
  return GC_OK;
}

static void
test_tiled_equals_whole (void)
{
  const int64_t cases[][4] = { /* h, w, tile, overlap */
                               { 20, 20, 8, 2 }, { 17, 9, 6, 3 }, { 5, 40, 16, 4 },
                               { 8, 8, 8, 2 }, { 33, 33, 10, 9 } };
  int64_t scale = 4;
  for (size_t k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      int64_t h = cases[k][0], w = cases[k][1];
      float *in = g_new (float, h * w);
      for (int64_t i = 0; i < h * w; i++)
        in[i] = (float) sin (0.37 * i) + 0.1f * (float) (i % 7);
      float *whole = g_new (float, 2 * h * w * scale * scale);
      float *tiled = g_new (float, 2 * h * w * scale * scale);
      gc_error err = { 0 };
      g_assert_cmpint (blocky (&scale, whole, in, h, w, &err), ==, GC_OK);
      g_assert_cmpint (gc_tiled_apply (tiled, 2, scale, in, 1, h, w, cases[k][2], cases[k][3],
                                       blocky, &scale, &err), ==, GC_OK);
      for (int64_t i = 0; i < 2 * h * w * scale * scale; i++)
        g_assert_cmpfloat_with_epsilon (tiled[i], whole[i], 1e-5);
      g_free (in), g_free (whole), g_free (tiled);
    }
}

static int calls;

static gc_status
failing (void *ctx, float *out, const float *in, int64_t th, int64_t tw, gc_error *err)
{
  return ++calls == 2 ? gc_error_set (err, GC_ERR_CANCELLED, "cancelled") : blocky (ctx, out, in, th, tw, err);
}

static void
test_error_stops (void)
{
  int64_t scale = 2;
  float in[16 * 16] = { 0 }, out[2 * 32 * 32];
  gc_error err = { 0 };
  calls = 0;
  g_assert_cmpint (gc_tiled_apply (out, 2, scale, in, 1, 16, 16, 8, 2, failing, &scale, &err), ==,
                   GC_ERR_CANCELLED);
  g_assert_cmpint (calls, ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/tiles/equals-whole", test_tiled_equals_whole);
  g_test_add_func ("/core/tiles/error-stops", test_error_stops);
  return g_test_run ();
}

/* The C port of sdrand.py: the deterministic test checkpoints must come out byte for byte as
 * the Python reference writes them (their sha256 is published with the reference vectors). */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-dtype.h"
#include "gc-random-checkpoint.h"
#include "gc-safetensors.h"
#include "gc-sha256.h"

static char *
keys_path (const char *name)
{
  const char *data = g_getenv ("GOUACHE_TEST_DATA");
  g_assert_nonnull (data);
  return g_build_filename (data, name, NULL);
}

static void
check_sha256 (gconstpointer data)
{
  const char *const *c = data; /* keys file name, expected hash */
  g_autofree char *dir = g_dir_make_tmp ("gc-random-checkpoint-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *keys = keys_path (c[0]);
  gc_error err = { 0 };
  if (gc_random_checkpoint_write (keys, out, &err) != GC_OK)
    g_error ("%s", err.message);
  char hex[65];
  g_assert_cmpint (gc_sha256_file (out, hex, &err), ==, GC_OK);
  g_assert_cmpstr (hex, ==, c[1]);
  g_remove (out);
  g_rmdir (dir);
}

static void
test_values_follow_the_rule (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gc-random-checkpoint-XXXXXX", NULL);
  g_autofree char *keys = g_build_filename (dir, "keys.json", NULL);
  g_autofree char *out = g_build_filename (dir, "model.safetensors", NULL);
  const char *spec = "{\"tensors\": [[\"down.conv.weight\", [4, 3, 3, 3], \"F32\"],"
                     " [\"ln_final.weight\", [8], \"BF16\"], [\"fc.bias\", [8], \"F64\"],"
                     " [\"pos.position_ids\", [1, 5], \"I64\"], [\"scale\", [], \"F16\"],"
                     " [\"betas\", [1000], \"F32\"], [\"alphas_cumprod_prev\", [1000], \"F64\"]],"
                     " \"metadata\": {\"name\": \"test\", \"version\": 2, \"flag\": true}}";
  g_assert_true (g_file_set_contents (keys, spec, -1, NULL));
  gc_error err = { 0 };
  if (gc_random_checkpoint_write (keys, out, &err) != GC_OK)
    g_error ("%s", err.message);
  gc_safetensors *file;
  g_assert_cmpint (gc_safetensors_open (&file, out, &err), ==, GC_OK);

  /* u·√(3/fan_in) with fan_in = 3·3·3 */
  const gc_st_tensor *conv = gc_safetensors_find (file, "down.conv.weight");
  float f;
  memcpy (&f, (const char *) conv->data + 5 * sizeof f, sizeof f);
  g_assert_cmpfloat (f, ==, (float) (gc_random_checkpoint_uniform ("down.conv.weight", 5)
                                     * sqrt (3.0 / 27.0)));
  /* norm weights sit around 1 */
  const gc_st_tensor *ln = gc_safetensors_find (file, "ln_final.weight");
  guint16 b;
  memcpy (&b, ln->data, sizeof b);
  g_assert_cmpfloat (gc_bf16_to_f32 (b), ==,
                     gc_bf16_to_f32 (gc_f32_to_bf16 ((float) (1.0 + 0.1 * gc_random_checkpoint_uniform ("ln_final.weight", 0)))));
  double d;
  memcpy (&d, (const char *) gc_safetensors_find (file, "fc.bias")->data + 7 * sizeof d, sizeof d);
  g_assert_cmpfloat (d, ==, 0.05 * gc_random_checkpoint_uniform ("fc.bias", 7));
  gint64 ids[5];
  memcpy (ids, gc_safetensors_find (file, "pos.position_ids")->data, sizeof ids);
  g_assert_cmpint (ids[4], ==, 4);
  const gc_st_tensor *scale = gc_safetensors_find (file, "scale");
  g_assert_cmpint (scale->ndim, ==, 0);
  g_assert_cmpuint (scale->nbytes, ==, 2);
  /* the schedule: betas from 0.00085 to 0.012, cumulative products starting at 1 */
  memcpy (&f, gc_safetensors_find (file, "betas")->data, sizeof f);
  g_assert_cmpfloat_with_epsilon (f, 0.00085, 1e-9);
  memcpy (&f, (const char *) gc_safetensors_find (file, "betas")->data + 999 * sizeof f, sizeof f);
  g_assert_cmpfloat (f, ==, (float) 0.012);
  memcpy (&d, gc_safetensors_find (file, "alphas_cumprod_prev")->data, sizeof d);
  g_assert_cmpfloat (d, ==, 1.0);
  memcpy (&d, (const char *) gc_safetensors_find (file, "alphas_cumprod_prev")->data + sizeof d,
          sizeof d);
  g_assert_cmpfloat_with_epsilon (d, 1.0 - 0.00085, 1e-15);
  /* metadata values become strings, spelled as Python's str() */
  g_assert_cmpstr (gc_safetensors_metadata (file, "version"), ==, "2");
  g_assert_cmpstr (gc_safetensors_metadata (file, "flag"), ==, "True");
  g_assert_cmpstr (gc_safetensors_metadata_key (file, 0), ==, "name");
  gc_safetensors_close (file);
  g_remove (out);
  g_remove (keys);
  g_rmdir (dir);
}

static void
test_bad_key_lists (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gc-random-checkpoint-XXXXXX", NULL);
  g_autofree char *keys = g_build_filename (dir, "keys.json", NULL);
  g_autofree char *out = g_build_filename (dir, "model.safetensors", NULL);
  gc_error err = { 0 };
  g_assert_cmpint (gc_random_checkpoint_write (keys, out, &err), ==, GC_ERR_IO);
  g_assert_nonnull (strstr (err.message, keys));
  struct {
    const char *spec;
    gc_status code;
    const char *fragment;
  } cases[] = {
    { "{\"tensors\": [[\"a\", [2]]]}", GC_ERR_FORMAT, "tensors[0]" },
    { "{\"tensors\": [[\"a\", [2], \"U8\"]]}", GC_ERR_UNSUPPORTED, "'U8'" },
    { "{\"tensors\": [[\"a\", [-2], \"F16\"]]}", GC_ERR_FORMAT, "shape" },
    { "{\"tensors\": [[\"betas\", [10], \"F32\"]]}", GC_ERR_INVALID, "schedule" },
    { "{\"tensors\": [], \"metadata\": {\"x\": 0.5}}", GC_ERR_UNSUPPORTED, "metadata 'x'" },
    { "[]", GC_ERR_FORMAT, "expected" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_true (g_file_set_contents (keys, cases[i].spec, -1, NULL));
      g_assert_cmpint (gc_random_checkpoint_write (keys, out, &err), ==, cases[i].code);
      if (!strstr (err.message, cases[i].fragment))
        g_error ("%s: '%s'", cases[i].spec, err.message);
      g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
    }
  g_remove (keys);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  static const char *const tiny[] = {
    "keys_tiny.json", "20ec38b8277c595cc3050766634f9aefb84626917f17e0ab94ee808eefc84537"
  };
  static const char *const tiny2[] = {
    "keys_tiny2.json", "a610f7aca50e632ca8b5c119ec6715a9b25aae678a72709563fb2cc7c4d1f72b"
  };
  static const char *const tinyxl[] = {
    "keys_tinyxl.json", "cfa9a6f6550d18ce03a2cbfd0404e10c16a58bb88cabda62c8c6f41abe238861"
  };
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/core/random-checkpoint/sha256/tiny", tiny, check_sha256);
  g_test_add_data_func ("/core/random-checkpoint/sha256/tiny2", tiny2, check_sha256);
  g_test_add_data_func ("/core/random-checkpoint/sha256/tinyxl", tinyxl, check_sha256);
  g_test_add_func ("/core/random-checkpoint/values", test_values_follow_the_rule);
  g_test_add_func ("/core/random-checkpoint/bad-key-lists", test_bad_key_lists);
  return g_test_run ();
}

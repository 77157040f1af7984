/* gouache-cli as users run it with styles, on the tiny model and the two tiny reference LoRAs:
 * an image made with --lora A:0.7 --lora B:0.3 and one made with their baked blend at 1.0 (or
 * with the checkpoint it was merged into) differ by at most 2 levels per pixel; presets make the
 * round trip save → list → export → delete → import; bench reports the blend latency. */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>

#include "gc-safetensors.h"
#include "gouache-png.h"

typedef struct {
  char *dir;
  char *tiny, *style_a, *style_b;
  char *out, *err; /* of the last run */
} fixture;

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("test-styles-cli-XXXXXX", NULL);
  f->tiny = g_strdup (g_getenv ("GOUACHE_TINY_MODEL"));
  f->style_a = g_build_filename (g_getenv ("GOUACHE_TEST_DATA"), "lora_tiny_style_a.safetensors", NULL);
  f->style_b = g_build_filename (g_getenv ("GOUACHE_TEST_DATA"), "lora_tiny_style_b.safetensors", NULL);
  g_assert_nonnull (f->tiny);
  /* hashes are cached under XDG_CACHE_HOME, presets default to XDG_DATA_HOME: keep both here */
  g_autofree char *cache = g_build_filename (f->dir, "cache", NULL);
  g_autofree char *store = g_build_filename (f->dir, "presets.db", NULL);
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  g_setenv ("GOUACHE_PRESET_STORE", store, TRUE);
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while ((name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      g_rmdir (path);
    }
  else
    g_remove (path);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  remove_tree (f->dir);
  g_free (f->dir), g_free (f->tiny), g_free (f->style_a), g_free (f->style_b);
  g_free (f->out), g_free (f->err);
}

/* Runs gouache-cli with the NULL-terminated arguments; returns its exit status. */
static int
run (fixture *f, const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) g_getenv ("GOUACHE_CLI"));
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  g_clear_pointer (&f->out, g_free);
  g_clear_pointer (&f->err, g_free);
  int status;
  g_autoptr (GError) error = NULL;
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &f->out,
                     &f->err, &status, &error))
    g_error ("%s", error->message);
  return g_spawn_check_wait_status (status, NULL) ? 0 : WEXITSTATUS (status);
}

static int
cli (fixture *f, ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  va_list ap;
  va_start (ap, f);
  for (const char *a; (a = va_arg (ap, const char *));)
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return run (f, (const char *const *) args->pdata);
}

static char *
in_dir (fixture *f, const char *name)
{
  return g_build_filename (f->dir, name, NULL);
}

static char *
style (const char *path, const char *weight)
{
  return g_strconcat (path, ":", weight, NULL);
}

/* A 64×64 image in 4 steps of seed 7, with up to two styles. */
static void
generate (fixture *f, const char *model, const char *lora1, const char *lora2, const char *png)
{
  const char *args[20] = { "generate", "--model", model, "--prompt", "a lighthouse at dusk",
                           "--steps", "4", "--seed", "7", "--width", "64", "--height", "64",
                           "--output", png };
  int n = 15;
  for (const char *const *lora = (const char *const[]) { lora1, lora2, NULL }; *lora; lora++)
    args[n++] = "--lora", args[n++] = *lora;
  args[n] = NULL;
  if (run (f, args) != 0)
    g_error ("generate failed: %s", f->err);
}

static int
largest_difference (const char *a, const char *b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GouachePngImage) x = gouache_png_load (a, &error);
  g_autoptr (GouachePngImage) y = gouache_png_load (b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (x->width, ==, y->width);
  g_assert_cmpuint (x->height, ==, y->height);
  int worst = 0;
  for (guint i = 0; i < 3 * x->width * x->height; i++)
    worst = MAX (worst, ABS ((int) x->pixels[i] - (int) y->pixels[i]));
  return worst;
}

static void
test_baked_blend_draws_the_same (fixture *f, gconstpointer data)
{
  g_autofree char *a = style (f->style_a, "0.7"), *b = style (f->style_b, "0.3");
  g_autofree char *blend_png = in_dir (f, "blend.png"), *plain_png = in_dir (f, "plain.png");
  g_autofree char *baked = in_dir (f, "baked.safetensors"), *merged = in_dir (f, "merged.safetensors");
  generate (f, f->tiny, a, b, blend_png);
  g_assert_nonnull (strstr (f->err, "style lora_tiny_style_a: 612 of 612 tensors applied"));
  g_autoptr (GouachePngImage) image = gouache_png_load (blend_png, NULL);
  const char *parameters = g_hash_table_lookup (image->text, "parameters");
  g_assert_nonnull (strstr (parameters, "Lora hashes: \"lora_tiny_style_a: "));
  generate (f, f->tiny, NULL, NULL, plain_png);
  g_assert_cmpint (largest_difference (blend_png, plain_png), >, 20); /* the styles show */

  g_assert_cmpint (cli (f, "blend", "--model", f->tiny, "--lora", a, "--lora", b, "--output",
                        baked, "--merge-checkpoint", merged, NULL), ==, 0);
  g_assert_nonnull (strstr (f->out, "rank 12, exact"));
  g_autofree char *baked_png = in_dir (f, "baked.png"), *merged_png = in_dir (f, "merged.png");
  g_autofree char *baked1 = style (baked, "1");
  generate (f, f->tiny, baked1, NULL, baked_png);
  g_assert_cmpint (largest_difference (blend_png, baked_png), <=, 2);
  generate (f, merged, NULL, NULL, merged_png);
  g_assert_cmpint (largest_difference (blend_png, merged_png), <=, 2);

  g_autofree char *compressed = in_dir (f, "rank8.safetensors");
  g_assert_cmpint (cli (f, "blend", "--model", f->tiny, "--lora", a, "--lora", b, "--output",
                        compressed, "--rank", "8", NULL), ==, 0);
  g_assert_nonnull (strstr (f->out, "rank 8, reconstruction error "));
}

static void
test_bad_styles (fixture *f, gconstpointer data)
{
  g_autofree char *png = in_dir (f, "x.png"), *heavy = style (f->style_a, "3");
  g_assert_cmpint (cli (f, "generate", "--model", f->tiny, "--prompt", "x", "--lora", heavy,
                        "--output", png, NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "-2 to 2"));
  /* a text-encoder LoRA for a 768-wide model */
  g_autofree char *wide = in_dir (f, "wide.safetensors");
  static float zeros[768 * 4];
  gc_st_entry entries[] = {
    { "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", GC_DTYPE_F32, 2, { 4, 768 } },
    { "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", GC_DTYPE_F32, 2, { 768, 4 } },
  };
  const void *bytes[] = { zeros, zeros };
  g_assert_cmpint (gc_safetensors_write (wide, entries, bytes, 2, NULL, 0, NULL), ==, GC_OK);
  g_autofree char *wide1 = style (wide, "1");
  g_assert_cmpint (cli (f, "generate", "--model", f->tiny, "--prompt", "x", "--lora", wide1,
                        "--output", png, NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "does not fit this SD 1.x model"));
  g_assert_false (g_file_test (png, G_FILE_TEST_EXISTS));
}

static void
test_presets (fixture *f, gconstpointer data)
{
  g_autofree char *a = style (f->style_a, "0.7"), *b = style (f->style_b, "0.3");
  g_autofree char *json = in_dir (f, "ink.json");
  g_assert_cmpint (cli (f, "preset", "save", "--name", "ink wash", "--model", f->tiny, "--lora", a,
                        "--lora", b, "--prompt", "a lighthouse", "--negative", "blurry",
                        "--sampler", "dpmpp_2m", "--schedule", "karras", "--steps", "12",
                        "--cfg", "6.5", "--seed", "42", NULL), ==, 0);
  g_assert_cmpint (cli (f, "preset", "save", "--name", "plain", "--model", f->tiny, NULL), ==, 0);
  g_assert_cmpint (cli (f, "preset", "list", NULL), ==, 0);
  g_assert_cmpstr (f->out, ==, "ink wash\nplain\n");
  g_assert_cmpint (cli (f, "preset", "export", "--name", "ink wash", "--output", json, NULL), ==, 0);
  g_assert_cmpint (cli (f, "preset", "delete", "--name", "ink wash", NULL), ==, 0);
  g_assert_cmpint (cli (f, "preset", "list", NULL), ==, 0);
  g_assert_cmpstr (f->out, ==, "plain\n");
  g_assert_cmpint (cli (f, "preset", "import", "--input", json, NULL), ==, 0);
  g_assert_cmpint (cli (f, "preset", "list", NULL), ==, 0);
  g_assert_cmpstr (f->out, ==, "ink wash\nplain\n");
  g_assert_cmpint (cli (f, "preset", "show", "--name", "ink wash", NULL), ==, 0);
  g_assert_nonnull (strstr (f->out, "lora_tiny_style_b.safetensors (04deba6d3a55) at 0.3"));
  g_assert_nonnull (strstr (f->out, "dpmpp_2m, karras schedule, 12 steps, CFG 6.5"));
  g_assert_nonnull (strstr (f->out, "(20ec38b827)"));
  /* importing again collides; errors are one line with status 1 */
  g_assert_cmpint (cli (f, "preset", "import", "--input", json, NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "already exists"));
  g_assert_cmpint (cli (f, "preset", "delete", "--name", "nope", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "no preset named “nope”"));
  g_assert_cmpint (cli (f, "preset", "rename", "--name", "plain", "--new-name", "plainer", NULL), ==, 0);
  g_assert_cmpint (cli (f, "preset", "list", NULL), ==, 0);
  g_assert_cmpstr (f->out, ==, "ink wash\nplainer\n");
}

static void
test_bench_and_random_lora (fixture *f, gconstpointer data)
{
  g_autofree char *lora = in_dir (f, "random.safetensors"), *json = in_dir (f, "bench.json");
  g_assert_cmpint (cli (f, "random-lora", "--model", f->tiny, "--rank", "4", "--output", lora,
                        NULL), ==, 0);
  g_autofree char *lora1 = style (lora, "0.5");
  g_assert_cmpint (cli (f, "bench", "--model", f->tiny, "--width", "64", "--height", "64",
                        "--steps", "1", "--lora", lora1, "--blend-latency", "--json", json, NULL),
                   ==, 0);
  g_assert_nonnull (strstr (f->err, "612 of 612 tensors applied (192 UNet and 12 text-encoder"));
  g_assert_nonnull (strstr (f->out, "blend latency"));
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, json, NULL));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_has_member (root, "blend_latency_s"));
  double latency = json_object_get_double_member (root, "blend_latency_s");
  g_assert_cmpfloat (latency, >=, 0);
  g_assert_cmpfloat (latency, <, 0.5);
  g_assert_true (json_object_has_member (root, "styles_s_per_eval"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/cli/styles/baked-blend-draws-the-same", test_baked_blend_draws_the_same);
  ADD ("/cli/styles/bad-styles", test_bad_styles);
  ADD ("/cli/styles/presets", test_presets);
  ADD ("/cli/styles/bench-and-random-lora", test_bench_and_random_lora);
#undef ADD
  return g_test_run ();
}

/* Baking the blend 0.7·A + 0.3·B of the two tiny reference LoRAs: into one LoRA (exactly, and
 * compressed to a rank) whose weights at 1.0 are those of the blend, and into a checkpoint
 * whose weights are the blended ones. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-bake.h"
#include "gc-model.h"
#include "gc-param.h"
#include "gc-safetensors.h"
#include "gc-sha256.h"

typedef struct {
  gc_model *model;
  char *dir;
} fixture;

static char *
data_file (const char *name)
{
  return g_build_filename (g_getenv ("GOUACHE_TEST_DATA"), name, NULL);
}

static gc_model *
open_model (const char *path)
{
  g_autofree char *vocab = g_build_filename (g_getenv ("GOUACHE_DATA_DIR"),
                                             "bpe_simple_vocab_16e6.txt.gz", NULL);
  gc_model *m;
  gc_error err = { 0 };
  if (gc_model_open (&m, path, vocab, &err))
    g_error ("%s", err.message);
  return m;
}

static void
add_style (gc_model *m, const char *path, double weight)
{
  gc_lora *lora;
  gc_error err = { 0 };
  if (gc_lora_open (&lora, path, gc_model_checkpoint (m), &err)
      || gc_styles_add (gc_model_styles (m), lora, weight, weight, &err))
    g_error ("%s", err.message);
}

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  f->model = open_model (g_getenv ("GOUACHE_TINY_MODEL"));
  g_autofree char *a = data_file ("lora_tiny_style_a.safetensors");
  g_autofree char *b = data_file ("lora_tiny_style_b.safetensors");
  add_style (f->model, a, 0.7);
  add_style (f->model, b, 0.3);
  f->dir = g_dir_make_tmp ("test-bake-XXXXXX", NULL);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  gc_model_free (f->model);
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_remove (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
}

/* The weight under key as the model computes it now (W₀ + the styles). */
static float *
styled (gc_model *m, const char *key)
{
  const gc_st_tensor *t = gc_checkpoint_find (gc_model_checkpoint (m), key);
  gc_param p;
  gc_error err = { 0 };
  if (gc_param_bind (&p, gc_model_checkpoint (m), key, t->ndim, t->shape, &err))
    g_error ("%s", err.message);
  gc_arena scratch;
  gc_arena_init (&scratch, 0);
  float *copy = g_memdup2 (gc_param_f32 (&scratch, &p), sizeof (float) * gc_param_numel (&p));
  gc_arena_free (&scratch);
  return copy;
}

/* Every styled weight of `blend` and of `baked` agree to within tolerance of the change. */
static void
assert_same_weights (gc_model *blend, gc_model *baked, double tolerance)
{
  const gc_checkpoint *c = gc_model_checkpoint (blend);
  size_t compared = 0;
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      if (*gc_checkpoint_patch_slot (c, key) == NULL)
        continue;
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      g_autofree float *w0 = g_new (float, t->nbytes / 2);
      gc_weight view = gc_st_tensor_weight (t);
      gc_weight_to_f32 (w0, &view);
      g_autofree float *a = styled (blend, key), *b = styled (baked, key);
      double worst = 0, change = 0;
      for (int64_t k = 0; k < gc_weight_numel (&view); k++)
        {
          worst = fmax (worst, fabs (a[k] - b[k]));
          change = fmax (change, fabs (a[k] - w0[k]));
        }
      g_assert_cmpfloat (change, >, 0);
      g_assert_cmpfloat (worst, <=, tolerance * change);
      compared++;
    }
  g_assert_cmpuint (compared, ==, 204);
}

static gc_bake_report
bake (fixture *f, int64_t rank, const char *path)
{
  const char *metadata[] = { "ss_output_name", "blend" };
  gc_bake_report report;
  gc_error err = { 0 };
  if (gc_bake_lora (gc_model_checkpoint (f->model), rank, path, metadata, 1, &report, &err))
    g_error ("%s", err.message);
  return report;
}

static void
test_exact (fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "baked.safetensors", NULL);
  gc_bake_report report = bake (f, 0, path);
  g_assert_cmpuint (report.weights, ==, 204);
  g_assert_cmpint (report.rank, ==, 4 + 8);
  gc_model *baked = open_model (g_getenv ("GOUACHE_TINY_MODEL"));
  add_style (baked, path, 1);
  assert_same_weights (f->model, baked, 2e-3); /* fp16 factors */
  gc_model_free (baked);

  gc_safetensors *file;
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_open (&file, path, &err), ==, GC_OK);
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_output_name"), ==, "blend");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_network_dim"), ==, "12");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_network_alpha"), ==, "12");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_base_model_version"), ==, "sd_v1");
  size_t size;
  const void *section = gc_safetensors_data_section (file, &size);
  gc_sha256 ctx;
  unsigned char digest[32];
  char hex[65];
  gc_sha256_init (&ctx);
  gc_sha256_update (&ctx, section, size);
  gc_sha256_final (&ctx, digest);
  gc_sha256_hex (digest, hex);
  g_assert_cmpstr (gc_safetensors_metadata (file, "sshs_model_hash"), ==, hex);
  g_assert_nonnull (gc_safetensors_find (file, "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"));
  gc_safetensors_close (file);
}

static void
test_rank (fixture *f, gconstpointer data)
{
  g_autofree char *full = g_build_filename (f->dir, "rank12.safetensors", NULL);
  gc_bake_report report = bake (f, 12, full);
  g_assert_cmpfloat (report.relative_error, <, 1e-5); /* the blend has rank 12 */
  gc_model *baked = open_model (g_getenv ("GOUACHE_TINY_MODEL"));
  add_style (baked, full, 1);
  assert_same_weights (f->model, baked, 2e-3);
  gc_model_free (baked);

  g_autofree char *small = g_build_filename (f->dir, "rank4.safetensors", NULL);
  report = bake (f, 4, small);
  g_assert_cmpint (report.rank, ==, 4);
  g_assert_cmpfloat (report.relative_error, >, 0.05);
  g_assert_cmpfloat (report.relative_error, <, 1);
  g_assert_cmpfloat (report.worst_error, >=, report.relative_error);
  g_assert_true (g_str_has_prefix (report.worst_weight, "model.") || g_str_has_prefix (report.worst_weight, "cond_"));
}

static void
test_exact_needs_low_rank (fixture *f, gconstpointer data)
{
  /* a LoHa style does not stack */
  float w[2 * 64];
  for (int i = 0; i < 2 * 64; i++)
    w[i] = 0.01f * (float) (i % 7);
  const char *module = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
  g_autofree char *a1 = g_strconcat (module, ".hada_w1_a", NULL), *b1 = g_strconcat (module, ".hada_w1_b", NULL);
  g_autofree char *a2 = g_strconcat (module, ".hada_w2_a", NULL), *b2 = g_strconcat (module, ".hada_w2_b", NULL);
  gc_st_entry entries[] = {
    { a1, GC_DTYPE_F32, 2, { 64, 2 } }, { b1, GC_DTYPE_F32, 2, { 2, 64 } },
    { a2, GC_DTYPE_F32, 2, { 64, 2 } }, { b2, GC_DTYPE_F32, 2, { 2, 64 } },
  };
  const void *data4[] = { w, w, w, w };
  g_autofree char *loha = g_build_filename (f->dir, "loha.safetensors", NULL);
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_write (loha, entries, data4, 4, NULL, 0, &err), ==, GC_OK);
  add_style (f->model, loha, 1);
  g_autofree char *path = g_build_filename (f->dir, "refused.safetensors", NULL);
  gc_bake_report report;
  g_assert_cmpint (gc_bake_lora (gc_model_checkpoint (f->model), 0, path, NULL, 0, &report, &err),
                   ==, GC_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "rank"));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  /* with a rank it bakes */
  g_assert_cmpint (gc_bake_lora (gc_model_checkpoint (f->model), 16, path, NULL, 0, &report, &err),
                   ==, GC_OK);
}

static void
test_checkpoint (fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "merged.safetensors", NULL);
  const char *metadata[] = { "gouache.blend", "test" };
  gc_error err = { 0 };
  if (gc_bake_checkpoint (gc_model_checkpoint (f->model), path, metadata, 1, &err))
    g_error ("%s", err.message);
  gc_model *merged = open_model (path);
  const gc_checkpoint *c = gc_model_checkpoint (f->model), *m = gc_model_checkpoint (merged);
  g_assert_cmpuint (gc_checkpoint_count (m), ==, gc_checkpoint_count (c));
  g_assert_cmpstr (gc_checkpoint_metadata (m, "gouache.blend"), ==, "test");
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      const gc_st_tensor *before = gc_checkpoint_tensor (c, i), *after = gc_checkpoint_find (m, key);
      g_assert_nonnull (after);
      g_assert_cmpint (after->dtype, ==, before->dtype); /* fp16 stays fp16, F32 schedules too */
      if (*gc_checkpoint_patch_slot (c, key) == NULL)
        {
          g_assert_cmpmem (after->data, after->nbytes, before->data, before->nbytes);
          continue;
        }
      g_autofree float *w = styled (f->model, key);
      g_autofree uint16_t *expected = g_new (uint16_t, after->nbytes / 2);
      gc_convert_from_f32 (expected, GC_DTYPE_F16, w, after->nbytes / 2);
      g_assert_cmpmem (after->data, after->nbytes, expected, after->nbytes);
    }
  gc_model_free (merged);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/core/bake/exact", test_exact);
  ADD ("/core/bake/rank", test_rank);
  ADD ("/core/bake/exact-needs-low-rank", test_exact_needs_low_rank);
  ADD ("/core/bake/checkpoint", test_checkpoint);
#undef ADD
  return g_test_run ();
}

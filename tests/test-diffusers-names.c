/* Diffusers names ↔ LDM names: every weight of the tiny model round-trips, and a diffusers
 * folder written from the tiny LDM file (each tensor under its diffusers name, in the three
 * component files) loads and computes exactly what the LDM file computes. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-diffusers-names.h"
#include "gc-model.h"
#include "gc-pipeline.h"
#include "gc-safetensors.h"

static const char *
tiny_path (void)
{
  const char *tiny = g_getenv ("GOUACHE_TINY_MODEL");
  g_assert_nonnull (tiny);
  return tiny;
}

static gc_checkpoint *
open_tiny (void)
{
  gc_checkpoint *c;
  gc_error err = { 0 };
  if (gc_checkpoint_open (&c, tiny_path (), &err))
    g_error ("%s", err.message);
  return c;
}

static gboolean
in_a_component (const char *key)
{
  return g_str_has_prefix (key, "model.diffusion_model.") || g_str_has_prefix (key, "first_stage_model.")
         || g_str_has_prefix (key, "cond_stage_model.transformer.");
}

static void
test_round_trip (void)
{
  gc_checkpoint *c = open_tiny ();
  gc_diffusers_layout layout = gc_diffusers_layout_of_ldm (c);
  g_assert_cmpint (layout.layers_per_block, ==, 2);
  g_assert_cmpint (layout.vae_levels, ==, 4);
  g_assert_false (layout.up_has_attention[0]);
  g_assert_true (layout.up_has_attention[1]);
  size_t checked = 0;
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      char diffusers[256], back[256];
      gc_diffusers_component component;
      if (!in_a_component (key))
        continue;
      if (!gc_ldm_key_to_diffusers (&layout, key, &component, diffusers, sizeof diffusers))
        g_error ("%s has no diffusers name", key);
      if (!gc_diffusers_key_to_ldm (&layout, component, diffusers, back, sizeof back))
        g_error ("%s (from %s) has no LDM name", diffusers, key);
      g_assert_cmpstr (back, ==, key);
      checked++;
    }
  g_assert_cmpuint (checked, ==, gc_checkpoint_count (c) - 3); /* all but the schedule buffers */
  char out[256];
  gc_diffusers_component component;
  g_assert_true (gc_ldm_key_to_diffusers (&layout, "model.diffusion_model.output_blocks.2.1.conv.weight",
                                          &component, out, sizeof out));
  g_assert_cmpstr (out, ==, "up_blocks.0.upsamplers.0.conv.weight");
  g_assert_true (gc_ldm_key_to_diffusers (&layout, "first_stage_model.decoder.up.3.block.0.conv1.bias",
                                          &component, out, sizeof out));
  g_assert_cmpstr (out, ==, "decoder.up_blocks.0.resnets.0.conv1.bias");
  g_assert_false (gc_ldm_key_to_diffusers (&layout, "betas", &component, out, sizeof out));
  gc_checkpoint_close (c);
}

/* ------------------------------------------------------------------ the folder */

static const char *const component_files[] = {
  [GC_DIFFUSERS_UNET] = "unet/diffusion_pytorch_model.safetensors",
  [GC_DIFFUSERS_VAE] = "vae/diffusion_pytorch_model.safetensors",
  [GC_DIFFUSERS_TEXT_ENCODER] = "text_encoder/model.safetensors",
};

/* Writes the three component files of a diffusers folder from the LDM checkpoint: VAE
 * attention projections become linear [c, c] weights, as diffusers stores them. */
static void
write_folder (const char *folder)
{
  gc_checkpoint *c = open_tiny ();
  gc_diffusers_layout layout = gc_diffusers_layout_of_ldm (c);
  GArray *entries[3], *data[3];
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (int k = 0; k < 3; k++)
    {
      entries[k] = g_array_new (FALSE, TRUE, sizeof (gc_st_entry));
      data[k] = g_array_new (FALSE, TRUE, sizeof (const void *));
    }
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      char name[256];
      gc_diffusers_component component;
      if (!in_a_component (key)
          || !gc_ldm_key_to_diffusers (&layout, key, &component, name, sizeof name))
        continue;
      g_ptr_array_add (names, g_strdup (name));
      gc_st_entry e = { g_ptr_array_index (names, names->len - 1), t->dtype, t->ndim };
      memcpy (e.shape, t->shape, sizeof e.shape);
      if (component == GC_DIFFUSERS_VAE && strstr (name, "attentions.0.to_") && t->ndim == 4)
        e.ndim = 2;
      g_array_append_val (entries[component], e);
      g_array_append_val (data[component], t->data);
    }
  for (int k = 0; k < 3; k++)
    {
      g_autofree char *path = g_build_filename (folder, component_files[k], NULL);
      g_autofree char *dir = g_path_get_dirname (path);
      g_mkdir_with_parents (dir, 0700);
      gc_error err = { 0 };
      if (gc_safetensors_write (path, (const gc_st_entry *) entries[k]->data,
                                (const void *const *) data[k]->data, entries[k]->len, NULL, 0, &err))
        g_error ("%s", err.message);
      g_array_unref (entries[k]);
      g_array_unref (data[k]);
    }
  gc_checkpoint_close (c);
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
assert_same (const float *a, const float *b, size_t n)
{
  double worst = 0, largest = 0;
  for (size_t i = 0; i < n; i++)
    {
      worst = fmax (worst, fabs ((double) a[i] - b[i]));
      largest = fmax (largest, fabs (b[i]));
    }
  g_assert_cmpfloat (largest, >, 0);
  g_assert_cmpfloat (worst, <=, 1e-6 * largest);
}

static void
test_folder_computes_the_same (void)
{
  g_autofree char *folder = g_dir_make_tmp ("test-diffusers-XXXXXX", NULL);
  write_folder (folder);
  gc_model *ldm = open_model (tiny_path ()), *diffusers = open_model (folder);
  g_assert_cmpint (gc_model_get_info (diffusers)->family, ==, GC_FAMILY_SD1);
  gc_error err = { 0 };

  /* text encoder */
  float *ctx_ldm = NULL, *ctx_diff = NULL;
  int64_t tokens = 0, tokens2 = 0;
  const char *prompt = "a watercolor lighthouse at dusk";
  if (gc_encode_prompt (ldm, prompt, 0, &ctx_ldm, &tokens, &err)
      || gc_encode_prompt (diffusers, prompt, 0, &ctx_diff, &tokens2, &err))
    g_error ("%s", err.message);
  int64_t dim = gc_model_get_info (ldm)->context_dim;
  g_assert_cmpint (tokens, ==, tokens2);
  assert_same (ctx_diff, ctx_ldm, (size_t) (tokens * dim));

  /* UNet on a 16×16 latent */
  enum { C = 4, H = 16, W = 16 };
  float x[C * H * W], out_ldm[C * H * W], out_diff[C * H * W];
  for (int i = 0; i < C * H * W; i++)
    x[i] = sinf ((float) i * 0.37f);
  double t = 500;
  gc_unet_cond cond = { ctx_ldm, tokens, NULL, NULL, NULL };
  if (gc_unet_forward (gc_model_unet (ldm), gc_model_scratch (ldm), out_ldm, x, 1, H, W, &t, &cond, NULL, &err)
      || gc_unet_forward (gc_model_unet (diffusers), gc_model_scratch (diffusers), out_diff, x, 1, H, W, &t, &cond, NULL, &err))
    g_error ("%s", err.message);
  assert_same (out_diff, out_ldm, C * H * W);

  /* VAE decoder */
  g_autofree float *img_ldm = g_new (float, 3 * 8 * H * 8 * W);
  g_autofree float *img_diff = g_new (float, 3 * 8 * H * 8 * W);
  if (gc_vae_decode (gc_model_vae (ldm), gc_model_scratch (ldm), img_ldm, x, 1, H, W, NULL, &err)
      || gc_vae_decode (gc_model_vae (diffusers), gc_model_scratch (diffusers), img_diff, x, 1, H, W, NULL, &err))
    g_error ("%s", err.message);
  assert_same (img_diff, img_ldm, 3 * 8 * H * 8 * W);

  free (ctx_ldm);
  free (ctx_diff);
  gc_model_free (ldm);
  gc_model_free (diffusers);
  for (int k = 0; k < 3; k++)
    {
      g_autofree char *path = g_build_filename (folder, component_files[k], NULL);
      g_autofree char *dir = g_path_get_dirname (path);
      g_remove (path);
      g_rmdir (dir);
    }
  g_rmdir (folder);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/diffusers-names/round-trip", test_round_trip);
  g_test_add_func ("/core/diffusers-names/folder-computes-the-same", test_folder_computes_the_same);
  return g_test_run ();
}

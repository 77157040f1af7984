/* Diffusers folders of SD 2.x and SDXL. A folder is written here from each tiny LDM checkpoint
 * the way the diffusers conversion lays it out: the UNet and VAE under their diffusers names,
 * the CLIP-L encoder as it is, and the OpenCLIP encoder (SD 2.x's, SDXL's second) converted to
 * a Hugging Face CLIPTextModel(WithProjection): fused in_proj split into q/k/v, ln_1/ln_2 →
 * layer_norm1/2, c_fc/c_proj → fc1/fc2, ln_final → final_layer_norm, text_projection [D, P]
 * (used as x·P) → a linear weight [P, D], and for SD 2.x without the last block, which SD 2.x
 * never uses. The folder must load as the same family and compute what the LDM file computes
 * (text context, SDXL's pooled vector, one UNet evaluation with its conditioning, one VAE
 * decode, the same LoRA applied); broken folders are refused with a message that says why. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-bake.h"
#include "gc-diffusers-names.h"
#include "gc-model.h"
#include "gc-pipeline.h"
#include "gc-random-lora.h"
#include "gc-safetensors.h"

enum { N_COMPONENTS = 4, SIDE = 16 };

static const char *const component_files[N_COMPONENTS] = {
  [GC_DIFFUSERS_UNET] = "unet/diffusion_pytorch_model.safetensors",
  [GC_DIFFUSERS_VAE] = "vae/diffusion_pytorch_model.safetensors",
  [GC_DIFFUSERS_TEXT_ENCODER] = "text_encoder/model.safetensors",
  [GC_DIFFUSERS_TEXT_ENCODER_2] = "text_encoder_2/model.safetensors",
};

/* The tiny LDM files and the folders written from them (in main). */
static const char *sd2_file, *sdxl_file;
static char *sd2_folder, *sdxl_folder;

static gc_checkpoint *
open_checkpoint (const char *path)
{
  gc_checkpoint *c;
  gc_error err = { 0 };
  if (gc_checkpoint_open (&c, path, &err))
    g_error ("%s", err.message);
  return c;
}

static gc_status
try_open_model (gc_model **out, const char *path, gc_error *err)
{
  g_autofree char *vocab = g_build_filename (g_getenv ("GOUACHE_DATA_DIR"),
                                             "bpe_simple_vocab_16e6.txt.gz", NULL);
  return gc_model_open (out, path, vocab, err);
}

static gc_model *
open_model (const char *path)
{
  gc_model *m;
  gc_error err = { 0 };
  if (try_open_model (&m, path, &err))
    g_error ("%s", err.message);
  return m;
}

/* ------------------------------------------------------------------ writing a folder */

typedef struct {
  GArray *entries[N_COMPONENTS]; /* gc_st_entry */
  GArray *data[N_COMPONENTS];    /* const void *: each entry's bytes */
  GPtrArray *owned;              /* names and converted tensors */
} folder_writer;

static void
add_tensor (folder_writer *w, gc_diffusers_component component, const char *name,
            gc_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
  char *copy = g_strdup (name);
  g_ptr_array_add (w->owned, copy);
  gc_st_entry e = { copy, dtype, ndim, { 0 } };
  memcpy (e.shape, shape, sizeof (int64_t) * (size_t) ndim);
  g_array_append_val (w->entries[component], e);
  g_array_append_val (w->data[component], data);
}

/* [D, P] → [P, D], elements of any size */
static const void *
transposed (folder_writer *w, const gc_st_tensor *t)
{
  size_t size = gc_dtype_size (t->dtype);
  int64_t rows = t->shape[0], cols = t->shape[1];
  char *out = g_malloc (t->nbytes);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      memcpy (out + (size_t) (j * rows + i) * size,
              (const char *) t->data + (size_t) (i * cols + j) * size, size);
  g_ptr_array_add (w->owned, out);
  return out;
}

/* q, k and v as rows of OpenCLIP's in_proj_weight [3D, D] / in_proj_bias [3D] */
static void
add_split_in_proj (folder_writer *w, gc_diffusers_component component, const char *layer,
                   const char *suffix, const gc_st_tensor *t)
{
  static const char *const parts[] = { "q_proj", "k_proj", "v_proj" };
  int64_t shape[2] = { t->shape[0] / 3, t->ndim == 2 ? t->shape[1] : 0 };
  for (int s = 0; s < 3; s++)
    {
      g_autofree char *name = g_strdup_printf ("%sself_attn.%s.%s", layer, parts[s], suffix);
      add_tensor (w, component, name, t->dtype, t->ndim, shape,
                  (const char *) t->data + s * t->nbytes / 3);
    }
}

/* One tensor of an OpenCLIP transformer block (rest after resblocks.N.) */
static void
add_open_clip_block_tensor (folder_writer *w, gc_diffusers_component component, int block,
                            const char *rest, const gc_st_tensor *t)
{
  static const struct {
    const char *open_clip, *hf;
  } renames[] = {
    { "ln_1.", "layer_norm1." },
    { "ln_2.", "layer_norm2." },
    { "attn.out_proj.", "self_attn.out_proj." },
    { "mlp.c_fc.", "mlp.fc1." },
    { "mlp.c_proj.", "mlp.fc2." },
  };
  g_autofree char *layer = g_strdup_printf ("text_model.encoder.layers.%d.", block);
  if (strcmp (rest, "attn.in_proj_weight") == 0 || strcmp (rest, "attn.in_proj_bias") == 0)
    {
      add_split_in_proj (w, component, layer, t->ndim == 2 ? "weight" : "bias", t);
      return;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (renames); i++)
    if (g_str_has_prefix (rest, renames[i].open_clip))
      {
        g_autofree char *name = g_strdup_printf ("%s%s%s", layer, renames[i].hf,
                                                 rest + strlen (renames[i].open_clip));
        add_tensor (w, component, name, t->dtype, t->ndim, t->shape, t->data);
        return;
      }
  g_error ("unexpected OpenCLIP tensor %s", rest);
}

/* One tensor of an OpenCLIP encoder (rest after its root) under its Hugging Face name; blocks
 * from `blocks` on are left out; the projection is kept when the model has one. */
static void
add_open_clip_tensor (folder_writer *w, gc_diffusers_component component, const char *rest,
                      const gc_st_tensor *t, int blocks, gboolean projection)
{
  static const struct {
    const char *open_clip, *hf;
  } renames[] = {
    { "token_embedding.weight", "text_model.embeddings.token_embedding.weight" },
    { "positional_embedding", "text_model.embeddings.position_embedding.weight" },
    { "ln_final.weight", "text_model.final_layer_norm.weight" },
    { "ln_final.bias", "text_model.final_layer_norm.bias" },
  };
  int block, used = 0;
  if (sscanf (rest, "transformer.resblocks.%d.%n", &block, &used) == 1 && used > 0)
    {
      if (block < blocks)
        add_open_clip_block_tensor (w, component, block, rest + used, t);
      return;
    }
  if (strcmp (rest, "text_projection") == 0)
    {
      if (projection)
        add_tensor (w, component, "text_projection.weight", t->dtype, 2,
                    (int64_t[]) { t->shape[1], t->shape[0] }, transposed (w, t));
      return;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (renames); i++)
    if (strcmp (rest, renames[i].open_clip) == 0)
      {
        add_tensor (w, component, renames[i].hf, t->dtype, t->ndim, t->shape, t->data);
        return;
      }
  g_assert_cmpstr (rest, ==, "logit_scale"); /* CLIP's training temperature: not exported */
}

static int
count_open_clip_blocks (const gc_checkpoint *c, const char *root)
{
  int n = 0;
  for (;; n++)
    {
      g_autofree char *key = g_strdup_printf ("%stransformer.resblocks.%d.ln_1.weight", root, n);
      if (gc_checkpoint_find (c, key) == NULL)
        return n;
    }
}

/* transformers files also carry the position ids, an I64 buffer nothing needs */
static void
add_position_ids (folder_writer *w, gc_diffusers_component component)
{
  int64_t *ids = g_new (int64_t, 77);
  for (int i = 0; i < 77; i++)
    ids[i] = i;
  g_ptr_array_add (w->owned, ids);
  add_tensor (w, component, "text_model.embeddings.position_ids", GC_DTYPE_I64, 2,
              (int64_t[]) { 1, 77 }, ids);
}

static void
write_text (const char *folder, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (folder, name, NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_mkdir_with_parents (dir, 0700);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
write_scheduler (const char *folder, const char *prediction_type)
{
  g_autofree char *text = g_strdup_printf ("{\"_class_name\": \"EulerDiscreteScheduler\", "
                                           "\"num_train_timesteps\": 1000, "
                                           "\"prediction_type\": \"%s\"}\n",
                                           prediction_type);
  write_text (folder, "scheduler/scheduler_config.json", text);
}

static void
write_components (folder_writer *w, const char *folder)
{
  for (int k = 0; k < N_COMPONENTS; k++)
    {
      if (w->entries[k]->len == 0)
        continue;
      g_autofree char *path = g_build_filename (folder, component_files[k], NULL);
      g_autofree char *dir = g_path_get_dirname (path);
      g_mkdir_with_parents (dir, 0700);
      gc_error err = { 0 };
      if (gc_safetensors_write (path, (const gc_st_entry *) w->entries[k]->data,
                                (const void *const *) w->data[k]->data, w->entries[k]->len,
                                NULL, 0, &err))
        g_error ("%s", err.message);
    }
}

/* The diffusers folder of the LDM checkpoint at ldm_path. */
static char *
write_folder (const char *ldm_path)
{
  char *folder = g_dir_make_tmp ("test-diffusers-families-XXXXXX", NULL);
  gc_checkpoint *c = open_checkpoint (ldm_path);
  gc_family family = gc_checkpoint_family (c);
  gboolean xl = family == GC_FAMILY_SDXL;
  const char *open_clip_root = xl ? "conditioner.embedders.1.model." : "cond_stage_model.model.";
  gc_diffusers_component open_clip = xl ? GC_DIFFUSERS_TEXT_ENCODER_2 : GC_DIFFUSERS_TEXT_ENCODER;
  int blocks = count_open_clip_blocks (c, open_clip_root) - (xl ? 0 : 1);
  gc_diffusers_layout layout = gc_diffusers_layout_of_ldm (c);
  folder_writer w = { .owned = g_ptr_array_new_with_free_func (g_free) };
  for (int k = 0; k < N_COMPONENTS; k++)
    {
      w.entries[k] = g_array_new (FALSE, TRUE, sizeof (gc_st_entry));
      w.data[k] = g_array_new (FALSE, TRUE, sizeof (const void *));
    }
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      char name[256];
      gc_diffusers_component component;
      if (g_str_has_prefix (key, open_clip_root))
        add_open_clip_tensor (&w, open_clip, key + strlen (open_clip_root), t, blocks, xl);
      else if (gc_ldm_key_to_diffusers (&layout, key, &component, name, sizeof name))
        {
          /* diffusers keeps the VAE's attention projections as linear [c, c] weights */
          gboolean linear = component == GC_DIFFUSERS_VAE && strstr (name, "attentions.0.to_")
                            && t->ndim == 4;
          add_tensor (&w, component, name, t->dtype, linear ? 2 : t->ndim, t->shape, t->data);
        }
    }
  add_position_ids (&w, open_clip);
  write_components (&w, folder);
  write_scheduler (folder, "epsilon");
  write_text (folder, "model_index.json",
              xl ? "{\"_class_name\": \"StableDiffusionXLPipeline\"}\n"
                 : "{\"_class_name\": \"StableDiffusionPipeline\"}\n");
  for (int k = 0; k < N_COMPONENTS; k++)
    {
      g_array_unref (w.entries[k]);
      g_array_unref (w.data[k]);
    }
  g_ptr_array_unref (w.owned);
  gc_checkpoint_close (c);
  return folder;
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
  g_dir_close (dir);
  g_rmdir (path);
}

/* ------------------------------------------------------------------ comparing */

/* The folder's text encoders compute q, k and v as three products and the projection from its
 * transpose: the context differs from the file's by float rounding (≈ 3e-7 of its size), which
 * the UNet carries into its output (≈ 2e-6). */
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
  g_assert_cmpfloat (worst, <=, 1e-5 * largest);
}

/* The latent both models are given: x[4, SIDE, SIDE] */
static void
fill_latent (float *x)
{
  for (int i = 0; i < 4 * SIDE * SIDE; i++)
    x[i] = sinf ((float) i * 0.37f);
}

/* What a model computes for one prompt and one latent. */
typedef struct {
  float *context, *pooled; /* pooled: SDXL only */
  int64_t tokens, context_dim, pooled_dim;
  float unet[4 * SIDE * SIDE];
  float *image; /* [3, 8·SIDE, 8·SIDE] */
} outputs;

static void
outputs_clear (outputs *o)
{
  free (o->context);
  free (o->pooled);
  g_free (o->image);
}

/* The UNet's conditioning as the pipeline builds it: the context, and for SDXL the pooled
 * vector with the size embeddings of a 128×128 image. */
static void
run_unet (gc_model *m, outputs *o)
{
  gc_unet *unet = gc_model_unet (m);
  int64_t adm_dim = gc_unet_get_config (unet)->adm_dim;
  g_autofree float *adm = adm_dim ? g_new (float, adm_dim) : NULL;
  if (adm)
    gc_size_conditioning (adm, o->pooled, o->pooled_dim, adm_dim,
                          (const double[6]) { 128, 128, 0, 0, 128, 128 });
  float x[4 * SIDE * SIDE];
  fill_latent (x);
  double t = 500;
  gc_unet_cond cond = { o->context, o->tokens, adm, NULL, NULL };
  gc_error err = { 0 };
  if (gc_unet_forward (unet, gc_model_scratch (m), o->unet, x, 1, SIDE, SIDE, &t, &cond, NULL,
                       &err))
    g_error ("%s", err.message);
}

static outputs
run_model (gc_model *m, gboolean decode)
{
  outputs o = { .context_dim = gc_model_get_info (m)->context_dim };
  gc_error err = { 0 };
  gboolean xl = gc_model_get_info (m)->family == GC_FAMILY_SDXL;
  if (gc_encode_prompt_pooled (m, "a watercolor lighthouse at dusk", 0, &o.context, &o.tokens,
                               xl ? &o.pooled : NULL, &err))
    g_error ("%s", err.message);
  if (xl)
    o.pooled_dim = gc_text_encoder_get_config (gc_model_text_encoder2 (m))->projection;
  run_unet (m, &o);
  if (decode)
    {
      float z[4 * SIDE * SIDE];
      fill_latent (z);
      o.image = g_new (float, 3 * 64 * SIDE * SIDE);
      if (gc_vae_decode (gc_model_vae (m), gc_model_scratch (m), o.image, z, 1, SIDE, SIDE, NULL,
                         &err))
        g_error ("%s", err.message);
    }
  return o;
}

static void
assert_same_outputs (const outputs *folder, const outputs *file)
{
  g_assert_cmpint (folder->tokens, ==, file->tokens);
  g_assert_cmpint (folder->context_dim, ==, file->context_dim);
  assert_same (folder->context, file->context, (size_t) (file->tokens * file->context_dim));
  g_assert_cmpint (folder->pooled_dim, ==, file->pooled_dim);
  if (file->pooled)
    assert_same (folder->pooled, file->pooled, (size_t) file->pooled_dim);
  assert_same (folder->unet, file->unet, G_N_ELEMENTS (file->unet));
  if (file->image)
    assert_same (folder->image, file->image, 3 * 64 * SIDE * SIDE);
}

static void
assert_same_info (const gc_model_info *folder, const gc_model_info *file)
{
  g_assert_cmpint (folder->family, ==, file->family);
  g_assert_cmpint (folder->prediction, ==, file->prediction);
  g_assert_cmpint (folder->pixel_multiple, ==, file->pixel_multiple);
  g_assert_cmpint (folder->pad_id, ==, file->pad_id);
  g_assert_cmpint (folder->context_dim, ==, file->context_dim);
  g_assert_cmpint (folder->latent_channels, ==, file->latent_channels);
  g_assert_cmpfloat (folder->latent_scale, ==, file->latent_scale);
  g_assert_cmpint (folder->prediction_source, ==, GC_PREDICTION_FROM_METADATA);
}

/* ------------------------------------------------------------------ tests */

static void
test_sd2_computes_the_same (void)
{
  gc_model *file = open_model (sd2_file), *folder = open_model (sd2_folder);
  const gc_model_info *info = gc_model_get_info (folder);
  assert_same_info (info, gc_model_get_info (file));
  g_assert_cmpint (info->family, ==, GC_FAMILY_SD2);
  /* the folder's encoder stops one block earlier: its last block is the file's penultimate */
  g_assert_cmpint (gc_model_get_info (file)->default_clip_skip, ==, 2);
  g_assert_cmpint (info->default_clip_skip, ==, 1);
  const gc_text_encoder_config *te = gc_text_encoder_get_config (gc_model_text_encoder (folder));
  g_assert_false (te->open_clip);
  g_assert_cmpint (te->activation, ==, GC_ACT_GELU);
  g_assert_cmpint (te->layers + 1, ==,
                   gc_text_encoder_get_config (gc_model_text_encoder (file))->layers);
  outputs a = run_model (folder, TRUE), b = run_model (file, TRUE);
  assert_same_outputs (&a, &b);
  outputs_clear (&a);
  outputs_clear (&b);
  gc_model_free (file);
  gc_model_free (folder);
}

static void
test_sdxl_computes_the_same (void)
{
  gc_model *file = open_model (sdxl_file), *folder = open_model (sdxl_folder);
  const gc_model_info *info = gc_model_get_info (folder);
  assert_same_info (info, gc_model_get_info (file));
  g_assert_cmpint (info->family, ==, GC_FAMILY_SDXL);
  g_assert_cmpint (info->default_clip_skip, ==, 2);
  const gc_text_encoder_config *te1 = gc_text_encoder_get_config (gc_model_text_encoder (folder));
  const gc_text_encoder_config *te2 = gc_text_encoder_get_config (gc_model_text_encoder2 (folder));
  g_assert_cmpint (te1->activation, ==, GC_ACT_QUICK_GELU);
  g_assert_cmpint (te2->activation, ==, GC_ACT_GELU);
  g_assert_false (te2->open_clip);
  g_assert_cmpint (te2->projection, >, 0);
  outputs a = run_model (folder, TRUE), b = run_model (file, TRUE);
  assert_same_outputs (&a, &b);
  outputs_clear (&a);
  outputs_clear (&b);
  gc_model_free (file);
  gc_model_free (folder);
}

/* Every weight of the folder has a diffusers name that leads back to its LDM name, in the
 * component whose file holds it. */
static void
check_names_round_trip (const char *folder)
{
  gc_checkpoint *c = open_checkpoint (folder);
  gc_diffusers_layout layout = gc_diffusers_layout_of_ldm (c);
  gc_safetensors *files[N_COMPONENTS] = { NULL };
  for (int k = 0; k < N_COMPONENTS; k++)
    {
      g_autofree char *path = g_build_filename (folder, component_files[k], NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        g_assert_cmpint (gc_safetensors_open (&files[k], path, NULL), ==, GC_OK);
    }
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      char diffusers[256], back[256];
      gc_diffusers_component component;
      if (!gc_ldm_key_to_diffusers (&layout, key, &component, diffusers, sizeof diffusers))
        g_error ("%s has no diffusers name", key);
      g_assert_nonnull (files[component]);
      const gc_st_tensor *t = gc_safetensors_find (files[component], diffusers);
      if (t == NULL)
        g_error ("%s is not %s in %s", key, diffusers, component_files[component]);
      g_assert_cmpmem (t->data, t->nbytes, gc_checkpoint_tensor (c, i)->data,
                       gc_checkpoint_tensor (c, i)->nbytes);
      g_assert_true (gc_diffusers_key_to_ldm (&layout, component, diffusers, back, sizeof back));
      g_assert_cmpstr (back, ==, key);
    }
  for (int k = 0; k < N_COMPONENTS; k++)
    gc_safetensors_close (files[k]);
  gc_checkpoint_close (c);
}

static void
test_names_round_trip (void)
{
  check_names_round_trip (sd2_folder);
  check_names_round_trip (sdxl_folder);
  char out[256];
  gc_diffusers_layout layout = { .family = GC_FAMILY_SDXL };
  g_assert_true (gc_diffusers_key_to_ldm (&layout, GC_DIFFUSERS_TEXT_ENCODER_2,
                                          "text_projection.weight", out, sizeof out));
  g_assert_cmpstr (out, ==, "conditioner.embedders.1.model.text_projection.weight");
  layout.family = GC_FAMILY_SD2;
  g_assert_true (gc_diffusers_key_to_ldm (&layout, GC_DIFFUSERS_TEXT_ENCODER,
                                          "text_model.encoder.layers.0.mlp.fc1.weight", out,
                                          sizeof out));
  g_assert_cmpstr (out, ==, "cond_stage_model.model.text_model.encoder.layers.0.mlp.fc1.weight");
  gc_diffusers_component component;
  g_assert_false (gc_ldm_key_to_diffusers (
    &layout, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", &component, out,
    sizeof out));
}

/* A random kohya LoRA made for the LDM file applies to the folder (all but the modules of the
 * block SD 2.x's folder does not have) and changes both the same way. */
static void
check_lora (const char *ldm_path, const char *folder_path, size_t unmatched)
{
  g_autofree char *dir = g_dir_make_tmp ("test-diffusers-families-lora-XXXXXX", NULL);
  g_autofree char *lora_path = g_build_filename (dir, "style.safetensors", NULL);
  gc_model *file = open_model (ldm_path), *folder = open_model (folder_path);
  gc_error err = { 0 };
  if (gc_random_lora_write (gc_model_checkpoint (file), 4, 7, lora_path, &err))
    g_error ("%s", err.message);
  gc_model *models[2] = { file, folder };
  for (int i = 0; i < 2; i++)
    {
      gc_lora *lora;
      if (gc_lora_open (&lora, lora_path, gc_model_checkpoint (models[i]), &err))
        g_error ("%s", err.message);
      gc_lora_report report = gc_lora_get_report (lora);
      g_assert_cmpuint (report.unmatched, ==, i == 0 ? 0 : unmatched);
      g_assert_cmpuint (report.text_weights, >, 0);
      if (gc_styles_add (gc_model_styles (models[i]), lora, 1.0, 1.0, &err))
        g_error ("%s", err.message);
    }
  outputs a = run_model (folder, FALSE), b = run_model (file, FALSE);
  assert_same_outputs (&a, &b);
  outputs_clear (&a);
  outputs_clear (&b);
  gc_model_free (file);
  gc_model_free (folder);
  g_remove (lora_path);
  g_rmdir (dir);
}

static void
test_sd2_lora (void)
{
  /* q, k, v, out, fc1 and fc2 of the dropped block: down, up and alpha each */
  check_lora (sd2_file, sd2_folder, 6 * 3);
}

static void
test_sdxl_lora (void)
{
  check_lora (sdxl_file, sdxl_folder, 0);
}

static void
assert_prediction (const char *folder, gc_prediction prediction, gc_prediction_source source)
{
  gc_model *m = open_model (folder);
  g_assert_cmpint (gc_model_get_info (m)->prediction, ==, prediction);
  g_assert_cmpint (gc_model_get_info (m)->prediction_source, ==, source);
  gc_model_free (m);
}

static void
assert_refused (const char *folder, gc_status code, const char *const *phrases)
{
  gc_model *m = NULL;
  gc_error err = { 0 };
  g_assert_cmpint (try_open_model (&m, folder, &err), ==, code);
  g_assert_null (m);
  for (; *phrases; phrases++)
    if (strstr (err.message, *phrases) == NULL)
      g_error ("'%s' does not say '%s'", err.message, *phrases);
}

/* The scheduler's prediction_type is the prediction metadata; without it SD 2.x is probed. */
static void
test_prediction_from_scheduler (void)
{
  write_scheduler (sd2_folder, "v_prediction");
  assert_prediction (sd2_folder, GC_PREDICTION_V, GC_PREDICTION_FROM_METADATA);
  g_autofree char *config = g_build_filename (sd2_folder, "scheduler", "scheduler_config.json",
                                              NULL);
  g_remove (config);
  assert_prediction (sd2_folder, GC_PREDICTION_EPSILON, GC_PREDICTION_FROM_PROBE);
  write_text (sd2_folder, "scheduler/scheduler_config.json", "{\"prediction_type\": ");
  assert_refused (sd2_folder, GC_ERR_FORMAT,
                  (const char *[]) { "scheduler/scheduler_config.json", NULL });
  write_scheduler (sd2_folder, "epsilon");
}

/* Moves folder/from to folder/to (to restore, call again the other way round). */
static void
move (const char *folder, const char *from, const char *to)
{
  g_autofree char *a = g_build_filename (folder, from, NULL);
  g_autofree char *b = g_build_filename (folder, to, NULL);
  g_assert_cmpint (g_rename (a, b), ==, 0);
}

static void
test_broken_folders (void)
{
  const char *second = "text_encoder_2/model.safetensors";
  move (sdxl_folder, second, "text_encoder_2/model.bin");
  assert_refused (sdxl_folder, GC_ERR_UNSUPPORTED,
                  (const char *[]) { "not a diffusers model", second, "missing", NULL });
  move (sdxl_folder, "text_encoder_2/model.bin", second);

  /* without its second encoder an SDXL folder reads as SD 2.x, whose widths do not fit */
  move (sdxl_folder, "text_encoder_2", "text_encoder_2.away");
  assert_refused (sdxl_folder, GC_ERR_MISMATCH,
                  (const char *[]) { "64 wide", "192-wide", "different models", NULL });
  move (sdxl_folder, "text_encoder_2.away", "text_encoder_2");

  /* a VAE where the UNet belongs */
  move (sd2_folder, component_files[GC_DIFFUSERS_UNET], "unet/unet.away");
  move (sd2_folder, component_files[GC_DIFFUSERS_VAE], component_files[GC_DIFFUSERS_UNET]);
  assert_refused (sd2_folder, GC_ERR_UNSUPPORTED,
                  (const char *[]) { component_files[GC_DIFFUSERS_UNET], "not the UNet",
                                     "conv_in.weight", NULL });
  move (sd2_folder, component_files[GC_DIFFUSERS_UNET], component_files[GC_DIFFUSERS_VAE]);
  move (sd2_folder, "unet/unet.away", component_files[GC_DIFFUSERS_UNET]);

  /* the restored folders open again */
  gc_model *m = open_model (sdxl_folder);
  gc_model_free (m);
  m = open_model (sd2_folder);
  gc_model_free (m);
}

/* A whole-checkpoint bake would write the OpenCLIP encoder in names no LDM file uses. */
static void
test_bake_refused (void)
{
  g_autofree char *dir = g_dir_make_tmp ("test-diffusers-families-bake-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "merged.safetensors", NULL);
  gc_model *m = open_model (sd2_folder);
  gc_error err = { 0 };
  g_assert_cmpint (gc_bake_checkpoint (gc_model_checkpoint (m), path, NULL, 0, &err), ==,
                   GC_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "LoRA"));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  gc_model_free (m);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  sd2_file = g_getenv ("GOUACHE_TINY2_MODEL");
  sdxl_file = g_getenv ("GOUACHE_TINYXL_MODEL");
  g_assert_nonnull (sd2_file);
  g_assert_nonnull (sdxl_file);
  sd2_folder = write_folder (sd2_file);
  sdxl_folder = write_folder (sdxl_file);
  g_test_add_func ("/core/diffusers-families/sd2/computes-the-same", test_sd2_computes_the_same);
  g_test_add_func ("/core/diffusers-families/sdxl/computes-the-same",
                   test_sdxl_computes_the_same);
  g_test_add_func ("/core/diffusers-families/names-round-trip", test_names_round_trip);
  g_test_add_func ("/core/diffusers-families/sd2/lora", test_sd2_lora);
  g_test_add_func ("/core/diffusers-families/sdxl/lora", test_sdxl_lora);
  g_test_add_func ("/core/diffusers-families/sd2/prediction-from-scheduler",
                   test_prediction_from_scheduler);
  g_test_add_func ("/core/diffusers-families/broken-folders", test_broken_folders);
  g_test_add_func ("/core/diffusers-families/bake-refused", test_bake_refused);
  int status = g_test_run ();
  remove_tree (sd2_folder);
  remove_tree (sdxl_folder);
  g_free (sd2_folder);
  g_free (sdxl_folder);
  return status;
}

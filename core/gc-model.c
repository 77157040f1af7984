#include "gc-model.h"

#include <stdlib.h>
#include <string.h>

struct gc_model {
  gc_model_info info;
  gc_checkpoint *checkpoint;
  gc_tokenizer *tokenizer;
  gc_text_encoder *text_encoder;  /* CLIP (SD 1.x, SDXL's first) or OpenCLIP (SD 2.x) */
  gc_text_encoder *text_encoder2; /* SDXL's second encoder (OpenCLIP bigG); NULL otherwise */
  gc_unet *unet;
  gc_vae *vae;
  gc_styles *styles;
  gc_arena scratch;
};

/* A1111's test for SD 2.x v-prediction: the mean of unet(x = 0.5, t = 999, context = 0.5) − x is
 * below −1 for v models (they predict about −x there) and near 0 for ε models. */
static gc_status
probe_prediction (gc_model *m, gc_prediction *out, gc_error *err)
{
  int64_t c = gc_unet_get_config (m->unet)->in_channels, dim = m->info.context_dim;
  int64_t side = m->info.pixel_multiple / gc_vae_downscale (m->vae);
  int64_t n = c * side * side;
  float *x = malloc (sizeof (float) * (size_t) n), *y = malloc (sizeof (float) * (size_t) n);
  float *context = malloc (sizeof (float) * (size_t) (GC_CONTEXT_TOKENS * dim));
  gc_status s = x && y && context ? GC_OK : gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  for (int64_t i = 0; s == GC_OK && i < n; i++)
    x[i] = 0.5f;
  for (int64_t i = 0; s == GC_OK && i < GC_CONTEXT_TOKENS * dim; i++)
    context[i] = 0.5f;
  double t = 999;
  gc_unet_cond cond = { context, GC_CONTEXT_TOKENS, NULL, NULL, NULL };
  if (s == GC_OK)
    s = gc_unet_forward (m->unet, &m->scratch, y, x, 1, side, side, &t, &cond, NULL, err);
  double mean = 0;
  for (int64_t i = 0; s == GC_OK && i < n; i++)
    mean += (y[i] - x[i]) / (double) n;
  *out = mean < -1 ? GC_PREDICTION_V : GC_PREDICTION_EPSILON;
  free (x);
  free (y);
  free (context);
  return s;
}

static bool
metadata_prediction (const gc_checkpoint *c, gc_prediction *out)
{
  const char *type = gc_checkpoint_prediction_type (c);
  if (gc_checkpoint_find (c, "v_pred") || (type && strncmp (type, "v", 1) == 0))
    *out = GC_PREDICTION_V;
  else if (type && strcmp (type, "epsilon") == 0)
    *out = GC_PREDICTION_EPSILON;
  else
    return false;
  return true;
}

static gc_status
decide_prediction (gc_model *m, gc_error *err)
{
  gc_model_info *info = &m->info;
  if (metadata_prediction (m->checkpoint, &info->prediction))
    info->prediction_source = GC_PREDICTION_FROM_METADATA;
  else if (info->family == GC_FAMILY_SD2)
    {
      info->prediction_source = GC_PREDICTION_FROM_PROBE;
      return probe_prediction (m, &info->prediction, err);
    }
  else
    {
      info->prediction = GC_PREDICTION_EPSILON;
      info->prediction_source = GC_PREDICTION_FROM_FAMILY;
    }
  return GC_OK;
}

/* The block whose output conditions the UNet, counted back from the last block in the file:
 * SD 1.x uses the last, SDXL the penultimate. SD 2.x uses the penultimate of OpenCLIP ViT-H's
 * 24 blocks: the LDM file (OpenCLIP names) keeps all 24, while the diffusers export (Hugging
 * Face names) drops the unused 24th, which makes the same block the last one there. */
static int
default_clip_skip (const gc_model *m)
{
  switch (m->info.family)
    {
    case GC_FAMILY_SD1: return 1;
    case GC_FAMILY_SD2: return gc_text_encoder_get_config (m->text_encoder)->open_clip ? 2 : 1;
    case GC_FAMILY_SDXL: return 2;
    }
  return 1;
}

static void
configure (gc_model *m)
{
  gc_model_info *info = &m->info;
  info->family = gc_checkpoint_family (m->checkpoint);
  info->latent_scale = info->family == GC_FAMILY_SDXL ? 0.13025 : 0.18215;
  /* SDXL's first encoder is CLIP like SD 1.x: pads with the end token; OpenCLIP pads with 0 */
  info->pad_id = info->family == GC_FAMILY_SD2 ? 0 : GC_TOKEN_END;
  info->default_clip_skip = default_clip_skip (m);
  info->context_dim = gc_unet_get_config (m->unet)->context_dim;
  info->latent_channels = gc_vae_latent_channels (m->vae);
  info->pixel_multiple
    = gc_vae_downscale (m->vae) * ((int64_t) 1 << gc_unet_get_config (m->unet)->downsamplings);
}

/* A text encoder of a family: where its weights are, and the activation of the model it is
 * (the file's naming does not say: SD 2.x's OpenCLIP encoder comes in either naming). */
typedef struct {
  const char *prefix;
  gc_activation activation;
} encoder_role;

static encoder_role
first_encoder (gc_family family)
{
  switch (family)
    {
    case GC_FAMILY_SD1: /* OpenAI CLIP ViT-L */
      return (encoder_role) { "cond_stage_model.transformer.", GC_ACT_QUICK_GELU };
    case GC_FAMILY_SD2: /* OpenCLIP ViT-H */
      return (encoder_role) { "cond_stage_model.model.", GC_ACT_GELU };
    case GC_FAMILY_SDXL: /* OpenAI CLIP ViT-L */
      return (encoder_role) { "conditioner.embedders.0.transformer.", GC_ACT_QUICK_GELU };
    }
  return (encoder_role) { "", GC_ACT_QUICK_GELU };
}

/* SDXL's second encoder, OpenCLIP ViT-bigG */
static const encoder_role sdxl_second_encoder = { "conditioner.embedders.1.model.", GC_ACT_GELU };

/* The UNet attends to the encoders' states side by side: their widths must add up to its
 * context size (a diffusers folder can mix components of different models). */
static gc_status
check_context_width (const gc_model *m, gc_error *err)
{
  int64_t width = gc_text_encoder_get_config (m->text_encoder)->width;
  if (m->text_encoder2)
    width += gc_text_encoder_get_config (m->text_encoder2)->width;
  int64_t context = gc_unet_get_config (m->unet)->context_dim;
  if (width != context)
    return gc_error_set (err, GC_ERR_MISMATCH,
                         "the text encoding is %lld wide but the UNet attends to a %lld-wide "
                         "context: they come from different models",
                         (long long) width, (long long) context);
  return GC_OK;
}

static gc_status
load_text_encoders (gc_model *m, gc_error *err)
{
  gc_family family = gc_checkpoint_family (m->checkpoint);
  encoder_role first = first_encoder (family);
  gc_status s = gc_text_encoder_load (&m->text_encoder, m->checkpoint, first.prefix,
                                      first.activation, err);
  if (s == GC_OK && family == GC_FAMILY_SDXL)
    s = gc_text_encoder_load (&m->text_encoder2, m->checkpoint, sdxl_second_encoder.prefix,
                              sdxl_second_encoder.activation, err);
  if (s == GC_OK && m->text_encoder2 && gc_text_encoder_get_config (m->text_encoder2)->projection == 0)
    s = gc_error_set (err, GC_ERR_FORMAT, "SDXL's second text encoder has no text_projection");
  return s;
}

gc_status
gc_model_open (gc_model **out, const char *checkpoint_path, const char *vocab_path,
               gc_error *err)
{
  *out = NULL;
  gc_model *m = calloc (1, sizeof *m);
  if (m == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory opening %s", checkpoint_path);
  gc_arena_init (&m->scratch, 0);
  gc_status s = gc_checkpoint_open (&m->checkpoint, checkpoint_path, err);
  if (s == GC_OK)
    s = gc_tokenizer_load (&m->tokenizer, vocab_path, err);
  if (s == GC_OK)
    s = load_text_encoders (m, err);
  if (s == GC_OK)
    s = gc_unet_load (&m->unet, m->checkpoint, err);
  if (s == GC_OK)
    s = check_context_width (m, err);
  if (s == GC_OK)
    s = gc_vae_load (&m->vae, m->checkpoint, err);
  if (s == GC_OK)
    s = gc_styles_new (&m->styles, m->checkpoint, err);
  if (s == GC_OK)
    {
      configure (m);
      s = decide_prediction (m, err);
    }
  if (s != GC_OK)
    {
      gc_model_free (m);
      return s;
    }
  *out = m;
  return GC_OK;
}

void
gc_model_set_prediction (gc_model *m, gc_prediction prediction)
{
  m->info.prediction = prediction;
  m->info.prediction_source = GC_PREDICTION_FROM_USER;
}

const char *
gc_prediction_name (gc_prediction prediction)
{
  return prediction == GC_PREDICTION_V ? "v" : "epsilon";
}

const char *
gc_prediction_source_name (gc_prediction_source source)
{
  switch (source)
    {
    case GC_PREDICTION_FROM_FAMILY: return "family default";
    case GC_PREDICTION_FROM_METADATA: return "metadata";
    case GC_PREDICTION_FROM_PROBE: return "probe evaluation";
    case GC_PREDICTION_FROM_USER: return "set by the user";
    }
  return "unknown";
}

void
gc_model_free (gc_model *m)
{
  if (m == NULL)
    return;
  gc_styles_free (m->styles);
  gc_vae_free (m->vae);
  gc_unet_free (m->unet);
  gc_text_encoder_free (m->text_encoder);
  gc_text_encoder_free (m->text_encoder2);
  gc_tokenizer_free (m->tokenizer);
  gc_checkpoint_close (m->checkpoint);
  gc_arena_free (&m->scratch);
  free (m);
}

const gc_model_info *
gc_model_get_info (const gc_model *m)
{
  return &m->info;
}

const gc_checkpoint *
gc_model_checkpoint (const gc_model *m)
{
  return m->checkpoint;
}

const gc_tokenizer *
gc_model_tokenizer (const gc_model *m)
{
  return m->tokenizer;
}

gc_text_encoder *
gc_model_text_encoder (gc_model *m)
{
  return m->text_encoder;
}

gc_text_encoder *
gc_model_text_encoder2 (gc_model *m)
{
  return m->text_encoder2;
}

gc_unet *
gc_model_unet (gc_model *m)
{
  return m->unet;
}

gc_vae *
gc_model_vae (gc_model *m)
{
  return m->vae;
}

gc_styles *
gc_model_styles (gc_model *m)
{
  return m->styles;
}

gc_arena *
gc_model_scratch (gc_model *m)
{
  return &m->scratch;
}

void
gc_model_release_weights (gc_model *m)
{
  gc_styles_release (m->styles);
  gc_checkpoint_release_pages (m->checkpoint);
}

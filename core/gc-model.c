#include "gc-model.h"

#include <stdlib.h>

struct gc_model {
  gc_model_info info;
  gc_checkpoint *checkpoint;
  gc_tokenizer *tokenizer;
  gc_text_encoder *text_encoder;
  gc_unet *unet;
  gc_vae *vae;
  gc_arena scratch;
};

static void
configure (gc_model *m)
{
  gc_model_info *info = &m->info;
  info->family = gc_checkpoint_family (m->checkpoint);
  info->latent_scale = info->family == GC_FAMILY_SDXL ? 0.13025 : 0.18215;
  info->prediction = GC_PREDICTION_EPSILON;
  info->pad_id = info->family == GC_FAMILY_SD1 ? GC_TOKEN_END : 0;
  info->default_clip_skip = info->family == GC_FAMILY_SD1 ? 1 : 2;
  info->context_dim = gc_unet_get_config (m->unet)->context_dim;
  info->latent_channels = gc_vae_latent_channels (m->vae);
  info->pixel_multiple
    = gc_vae_downscale (m->vae) * ((int64_t) 1 << gc_unet_get_config (m->unet)->downsamplings);
}

static const char *
text_encoder_prefix (gc_family family)
{
  return family == GC_FAMILY_SD1 ? "cond_stage_model.transformer." : "cond_stage_model.model.";
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
  if (s == GC_OK && gc_checkpoint_family (m->checkpoint) == GC_FAMILY_SDXL)
    s = gc_error_set (err, GC_ERR_UNSUPPORTED, "%s is an SDXL model, which this version of "
                      "Gouache cannot run yet (SD 1.x and 2.x work)", checkpoint_path);
  if (s == GC_OK)
    s = gc_tokenizer_load (&m->tokenizer, vocab_path, err);
  if (s == GC_OK)
    s = gc_text_encoder_load (&m->text_encoder, m->checkpoint,
                              text_encoder_prefix (gc_checkpoint_family (m->checkpoint)), err);
  if (s == GC_OK)
    s = gc_unet_load (&m->unet, m->checkpoint, err);
  if (s == GC_OK)
    s = gc_vae_load (&m->vae, m->checkpoint, err);
  if (s != GC_OK)
    {
      gc_model_free (m);
      return s;
    }
  configure (m);
  *out = m;
  return GC_OK;
}

void
gc_model_free (gc_model *m)
{
  if (m == NULL)
    return;
  gc_vae_free (m->vae);
  gc_unet_free (m->unet);
  gc_text_encoder_free (m->text_encoder);
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

gc_arena *
gc_model_scratch (gc_model *m)
{
  return &m->scratch;
}

void
gc_model_release_weights (gc_model *m)
{
  gc_checkpoint_release_pages (m->checkpoint);
}

#include "gc-pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc-prompt.h"
#include "gc-tiles.h"

gc_status
gc_encode_prompt (gc_model *m, const char *prompt, int clip_skip, float **context,
                  int64_t *tokens, gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (m);
  gc_prompt_tokens windows;
  gc_status s = gc_prompt_tokenize (gc_model_tokenizer (m), prompt, info->pad_id, &windows, err);
  if (s != GC_OK)
    return s;
  int64_t dim = gc_text_encoder_get_config (gc_model_text_encoder (m))->width;
  int64_t rows = windows.windows * GC_CONTEXT_TOKENS;
  float *hidden = malloc (sizeof (float) * (size_t) (rows * dim));
  if (hidden == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding the prompt");
  gc_text_output output = { clip_skip > 0 ? clip_skip : info->default_clip_skip, true };
  if (s == GC_OK)
    s = gc_text_encoder_forward (gc_model_text_encoder (m), gc_model_scratch (m), hidden, NULL,
                                 windows.ids, windows.windows, output, err);
  for (int64_t w = 0; s == GC_OK && w < windows.windows; w++)
    gc_prompt_apply_weights (hidden + w * GC_CONTEXT_TOKENS * dim,
                             windows.weights + w * GC_CONTEXT_TOKENS, dim);
  gc_prompt_tokens_free (&windows);
  if (s != GC_OK)
    {
      free (hidden);
      return s;
    }
  *context = hidden;
  *tokens = rows;
  return GC_OK;
}

/* What the sampler's model callback needs: the two contexts side by side and the CFG scale. */
typedef struct {
  gc_model *model;
  const float *contexts; /* [2, tokens, dim]: unconditional, conditional (or just [1, …]) */
  int64_t tokens;
  double cfg;
  int64_t channels, lh, lw;
  float *batch_in;  /* [2, c, lh, lw] */
  float *batch_out; /* [2, c, lh, lw] */
  const volatile int *cancel;
} guidance;

static gc_status
guided_denoise (void *ctx, float *out, const float *x, double timestep, gc_error *err)
{
  guidance *g = ctx;
  int64_t n = g->channels * g->lh * g->lw;
  bool guided = g->cfg != 1.0;
  int64_t batch = guided ? 2 : 1;
  double timesteps[2] = { timestep, timestep };
  memcpy (g->batch_in, x, sizeof (float) * (size_t) n);
  if (guided)
    memcpy (g->batch_in + n, x, sizeof (float) * (size_t) n);
  gc_unet_cond cond = { guided ? g->contexts : g->contexts + g->tokens * gc_model_get_info (g->model)->context_dim,
                        g->tokens, NULL };
  gc_status s = gc_unet_forward (gc_model_unet (g->model), gc_model_scratch (g->model), g->batch_out,
                                 g->batch_in, batch, g->lh, g->lw, timesteps, &cond, g->cancel, err);
  if (s != GC_OK)
    return s;
  if (!guided)
    {
      memcpy (out, g->batch_out, sizeof (float) * (size_t) n);
      return GC_OK;
    }
  /* out = uncond + cfg · (cond − uncond) */
  const float *uncond = g->batch_out, *cond_out = g->batch_out + n;
  for (int64_t i = 0; i < n; i++)
    out[i] = (float) (uncond[i] + g->cfg * ((double) cond_out[i] - uncond[i]));
  return GC_OK;
}

/* Both prompts' encodings with equal token counts: the shorter is padded with encodings of the
 * empty prompt, as A1111 does, so they can run as one batch. */
static gc_status
encode_pair (gc_model *m, const gc_generate_params *p, float **contexts, int64_t *tokens,
             gc_error *err)
{
  int64_t dim = gc_model_get_info (m)->context_dim;
  float *neg = NULL, *pos = NULL, *empty = NULL;
  int64_t neg_rows = 0, pos_rows = 0, empty_rows = 0;
  gc_status s = gc_encode_prompt (m, p->prompt, p->clip_skip, &pos, &pos_rows, err);
  if (s == GC_OK)
    s = gc_encode_prompt (m, p->negative ? p->negative : "", p->clip_skip, &neg, &neg_rows, err);
  if (s == GC_OK && neg_rows != pos_rows)
    s = gc_encode_prompt (m, "", p->clip_skip, &empty, &empty_rows, err);
  int64_t rows = pos_rows > neg_rows ? pos_rows : neg_rows;
  float *both = s == GC_OK ? malloc (sizeof (float) * (size_t) (2 * rows * dim)) : NULL;
  if (s == GC_OK && both == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding the prompts");
  if (s == GC_OK)
    {
      const float *parts[2] = { neg, pos };
      int64_t lengths[2] = { neg_rows, pos_rows };
      for (int k = 0; k < 2; k++)
        {
          float *dst = both + k * rows * dim;
          memcpy (dst, parts[k], sizeof (float) * (size_t) (lengths[k] * dim));
          for (int64_t r = lengths[k]; r < rows; r += empty_rows)
            memcpy (dst + r * dim, empty, sizeof (float) * (size_t) (empty_rows * dim));
        }
      *contexts = both;
      *tokens = rows;
    }
  free (neg);
  free (pos);
  free (empty);
  return s;
}

gc_status
gc_generate_validate (const gc_model *m, const gc_generate_params *p, gc_error *err)
{
  int64_t multiple = gc_model_get_info (m)->pixel_multiple;
  if (p->width < multiple || p->height < multiple || p->width % multiple || p->height % multiple
      || p->width > 8192 || p->height > 8192)
    return gc_error_set (err, GC_ERR_INVALID,
                         "image size %lldx%lld is not possible: width and height must be "
                         "multiples of %lld between %lld and 8192",
                         (long long) p->width, (long long) p->height, (long long) multiple,
                         (long long) multiple);
  if (!(p->cfg >= 0 && p->cfg <= 100))
    return gc_error_set (err, GC_ERR_INVALID, "CFG scale %g is outside 0..100", p->cfg);
  if (p->init_image && !(p->strength > 0 && p->strength <= 1))
    return gc_error_set (err, GC_ERR_INVALID, "strength %g is outside (0, 1]", p->strength);
  gc_torch_rng unused;
  gc_sample_params plan = { .sampler = p->sampler, .schedule = p->schedule, .steps = p->steps,
                            .prediction = gc_model_get_info (m)->prediction,
                            .init = p->init_image, .strength = p->strength, .rng = &unused };
  gc_schedule schedule;
  int first;
  return gc_sample_plan (&schedule, &first, &plan, err);
}

typedef struct {
  gc_generate_progress_fn fn;
  void *ctx;
  int64_t lh, lw;
} progress_relay;

static void
relay_progress (void *ctx, int step, int steps, const float *denoised)
{
  progress_relay *r = ctx;
  if (r->fn)
    r->fn (r->ctx, step, steps, denoised, r->lh, r->lw);
}

gc_status
gc_generate_latent (gc_model *m, const gc_generate_params *p, float *latent,
                    gc_generate_progress_fn progress, void *progress_ctx,
                    const volatile int *cancel, gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (m);
  gc_status s = gc_generate_validate (m, p, err);
  if (s != GC_OK)
    return s;
  int64_t scale = gc_vae_downscale (gc_model_vae (m));
  int64_t lh = p->height / scale, lw = p->width / scale, c = info->latent_channels;
  int64_t n = c * lh * lw;
  guidance g = { m, NULL, 0, p->cfg, c, lh, lw, NULL, NULL, cancel };
  float *init = p->init_image ? malloc (sizeof (float) * (size_t) n) : NULL;
  g.batch_in = malloc (sizeof (float) * (size_t) (2 * n));
  g.batch_out = malloc (sizeof (float) * (size_t) (2 * n));
  if (!g.batch_in || !g.batch_out || (p->init_image && !init))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory for a %lldx%lld image",
                      (long long) p->width, (long long) p->height);
  if (s == GC_OK)
    s = encode_pair (m, p, (float **) &g.contexts, &g.tokens, err);
  if (s == GC_OK && init)
    s = gc_encode_image (m, init, p->init_image, p->height, p->width, err);
  gc_torch_rng rng;
  if (p->generator)
    rng = *p->generator;
  else
    gc_torch_rng_seed (&rng, p->seed);
  gc_sample_params sp = { .sampler = p->sampler, .schedule = p->schedule, .steps = p->steps,
                          .prediction = info->prediction, .init = init, .strength = p->strength,
                          .rng = &rng, .noise_dtype = p->noise_dtype, .noise = p->noise };
  progress_relay relay = { progress, progress_ctx, lh, lw };
  if (s == GC_OK)
    s = gc_sample (latent, n, &sp, guided_denoise, &g, relay_progress, &relay, cancel, err);
  free ((void *) g.contexts);
  free (g.batch_in);
  free (g.batch_out);
  free (init);
  return s;
}

gc_status
gc_generate (gc_model *m, const gc_generate_params *p, float *image,
             gc_generate_progress_fn progress, void *progress_ctx, const volatile int *cancel,
             gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (m);
  int64_t scale = gc_vae_downscale (gc_model_vae (m));
  int64_t lh = p->height / scale, lw = p->width / scale;
  float *latent = malloc (sizeof (float) * (size_t) (info->latent_channels * lh * lw + 1));
  if (latent == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory for a %lldx%lld image",
                         (long long) p->width, (long long) p->height);
  gc_status s = gc_generate_latent (m, p, latent, progress, progress_ctx, cancel, err);
  if (s == GC_OK)
    {
      /* Large images: the UNet's weights are not needed while decoding, and dropping their
       * pages keeps them and the VAE's activations from being resident at once. */
      if (p->width * p->height >= 512 * 512)
        gc_model_release_weights (m);
      s = gc_decode_latent (m, image, latent, lh, lw, cancel, err);
    }
  free (latent);
  return s;
}

typedef struct {
  gc_model *model;
  const volatile int *cancel;
} tile_decoder;

static gc_status
decode_tile (void *ctx, float *out, const float *in, int64_t th, int64_t tw, gc_error *err)
{
  tile_decoder *d = ctx;
  return gc_vae_decode (gc_model_vae (d->model), gc_model_scratch (d->model), out, in, 1, th, tw,
                        d->cancel, err);
}

enum { TILE_FROM = 128 * 128, TILE_SIZE = 64, TILE_OVERLAP = 16 }; /* latent cells */

gc_status
gc_decode_latent_tiled (gc_model *m, float *image, const float *latent, int64_t lh, int64_t lw,
                        int64_t tile, const volatile int *cancel, gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (m);
  int64_t n = info->latent_channels * lh * lw;
  float *z = malloc (sizeof (float) * (size_t) n);
  if (z == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory decoding the image");
  for (int64_t i = 0; i < n; i++)
    z[i] = (float) (latent[i] / info->latent_scale);
  tile_decoder decoder = { m, cancel };
  gc_status s = tile > 0 ? gc_tiled_apply (image, 3, gc_vae_downscale (gc_model_vae (m)), z,
                                           info->latent_channels, lh, lw, tile, TILE_OVERLAP,
                                           decode_tile, &decoder, err)
                         : decode_tile (&decoder, image, z, lh, lw, err);
  free (z);
  return s;
}

gc_status
gc_decode_latent (gc_model *m, float *image, const float *latent, int64_t lh, int64_t lw,
                  const volatile int *cancel, gc_error *err)
{
  return gc_decode_latent_tiled (m, image, latent, lh, lw, lh * lw >= TILE_FROM ? TILE_SIZE : 0,
                                 cancel, err);
}

gc_status
gc_encode_image (gc_model *m, float *latent, const float *image, int64_t h, int64_t w,
                 gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (m);
  int64_t scale = gc_vae_downscale (gc_model_vae (m));
  int64_t n = info->latent_channels * (h / scale) * (w / scale);
  float *logvar = malloc (sizeof (float) * (size_t) n);
  if (logvar == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding the image");
  gc_status s = gc_vae_encode (gc_model_vae (m), gc_model_scratch (m), latent, logvar, image, 1, h,
                               w, err);
  for (int64_t i = 0; s == GC_OK && i < n; i++)
    latent[i] = (float) (latent[i] * info->latent_scale);
  free (logvar);
  return s;
}

void
gc_latent_to_rgb (uint8_t *rgb, const float *latent, int64_t lh, int64_t lw)
{
  /* rgb = Σc latent[c]·P[c] (SD 1.x factors), mapped from −1..1 to 0..255 */
  static const float projection[4][3] = { { 0.3512f, 0.2297f, 0.3227f },
                                          { 0.3250f, 0.4974f, 0.2350f },
                                          { -0.2829f, 0.1762f, 0.2721f },
                                          { -0.2120f, -0.2616f, -0.7177f } };
  int64_t plane = lh * lw;
  for (int64_t i = 0; i < plane; i++)
    for (int k = 0; k < 3; k++)
      {
        float v = 0;
        for (int c = 0; c < 4; c++)
          v += latent[c * plane + i] * projection[c][k];
        float scaled = (v + 1.0f) * 127.5f;
        rgb[i * 3 + k] = (uint8_t) (scaled < 0 ? 0 : scaled > 255 ? 255 : lrintf (scaled));
      }
}

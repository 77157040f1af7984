#include "gc-pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc-prompt.h"
#include "gc-tiles.h"

/* One encoder's view of a prompt: hidden[windows·77, width] with the emphasis applied, and
 * optionally the pooled projection of the first window (malloc'd). */
static gc_status
encode_windows (gc_model *m, gc_text_encoder *encoder, const char *prompt, int32_t pad_id,
                gc_text_output output, float **hidden, int64_t *rows, float **pooled,
                gc_error *err)
{
  gc_prompt_tokens windows;
  gc_status s = gc_prompt_tokenize (gc_model_tokenizer (m), prompt, pad_id, &windows, err);
  if (s != GC_OK)
    return s;
  const gc_text_encoder_config *cfg = gc_text_encoder_get_config (encoder);
  *rows = windows.windows * GC_CONTEXT_TOKENS;
  *hidden = malloc (sizeof (float) * (size_t) (*rows * cfg->width));
  float *pooled_all = pooled ? malloc (sizeof (float) * (size_t) (windows.windows * cfg->projection)) : NULL;
  if (*hidden == NULL || (pooled && pooled_all == NULL))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding the prompt");
  if (s == GC_OK)
    s = gc_text_encoder_forward (encoder, gc_model_scratch (m), *hidden, pooled_all, windows.ids,
                                 windows.windows, output, err);
  for (int64_t w = 0; s == GC_OK && w < windows.windows; w++)
    gc_prompt_apply_weights (*hidden + w * GC_CONTEXT_TOKENS * cfg->width,
                             windows.weights + w * GC_CONTEXT_TOKENS, cfg->width);
  gc_prompt_tokens_free (&windows);
  if (s != GC_OK)
    {
      free (*hidden);
      free (pooled_all);
      *hidden = NULL;
      return s;
    }
  if (pooled)
    *pooled = pooled_all; /* the first window's vector leads: what other tools use */
  return GC_OK;
}

gc_status
gc_encode_prompt_pooled (gc_model *m, const char *prompt, int clip_skip, float **context,
                         int64_t *tokens, float **pooled, gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (m);
  int skip = clip_skip > 0 ? clip_skip : info->default_clip_skip;
  gc_text_encoder *second = gc_model_text_encoder2 (m);
  if (second == NULL)
    {
      if (pooled)
        *pooled = NULL;
      return encode_windows (m, gc_model_text_encoder (m), prompt, info->pad_id,
                             (gc_text_output) { skip, true }, context, tokens, NULL, err);
    }
  /* SDXL: both encoders' penultimate states, without their final norms, side by side */
  float *first_hidden = NULL, *second_hidden = NULL, *second_pooled = NULL;
  int64_t rows = 0, rows2 = 0;
  gc_text_output output = { skip, false };
  gc_status s = encode_windows (m, gc_model_text_encoder (m), prompt, GC_TOKEN_END, output,
                                &first_hidden, &rows, NULL, err);
  if (s == GC_OK)
    s = encode_windows (m, second, prompt, 0, output, &second_hidden, &rows2, &second_pooled, err);
  int64_t d1 = gc_text_encoder_get_config (gc_model_text_encoder (m))->width;
  int64_t d2 = gc_text_encoder_get_config (second)->width;
  float *joined = s == GC_OK ? malloc (sizeof (float) * (size_t) (rows * (d1 + d2))) : NULL;
  if (s == GC_OK && joined == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding the prompt");
  for (int64_t r = 0; s == GC_OK && r < rows; r++)
    {
      memcpy (joined + r * (d1 + d2), first_hidden + r * d1, sizeof (float) * (size_t) d1);
      memcpy (joined + r * (d1 + d2) + d1, second_hidden + r * d2, sizeof (float) * (size_t) d2);
    }
  free (first_hidden);
  free (second_hidden);
  if (s != GC_OK)
    {
      free (second_pooled);
      return s;
    }
  *context = joined;
  *tokens = rows;
  if (pooled)
    *pooled = second_pooled;
  else
    free (second_pooled);
  return GC_OK;
}

gc_status
gc_encode_prompt (gc_model *m, const char *prompt, int clip_skip, float **context,
                  int64_t *tokens, gc_error *err)
{
  return gc_encode_prompt_pooled (m, prompt, clip_skip, context, tokens, NULL, err);
}

void
gc_size_conditioning (float *adm, const float *pooled, int64_t pooled_dim, int64_t adm_dim,
                      const double time_ids[6])
{
  memcpy (adm, pooled, sizeof (float) * (size_t) pooled_dim);
  gc_timestep_embedding (adm + pooled_dim, time_ids, 6, (adm_dim - pooled_dim) / 6);
}

/* What the sampler's model callback needs: the two contexts side by side and the CFG scale. */
typedef struct {
  gc_model *model;
  const float *contexts; /* [2, tokens, dim]: unconditional, conditional (or just [1, …]) */
  int64_t tokens;
  const float *adm;      /* SDXL: [2, adm_dim] in the same order; NULL otherwise */
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
  int64_t adm_dim = gc_unet_get_config (gc_model_unet (g->model))->adm_dim;
  gc_unet_cond cond = { guided ? g->contexts : g->contexts + g->tokens * gc_model_get_info (g->model)->context_dim,
                        g->tokens, g->adm ? (guided ? g->adm : g->adm + adm_dim) : NULL, NULL, NULL };
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
 * empty prompt, as A1111 does, so they can run as one batch. SDXL also gets its size
 * conditioning, and an empty negative prompt is all zeros there, as SDXL was trained. */
static gc_status
encode_pair (gc_model *m, const gc_generate_params *p, guidance *g, gc_error *err)
{
  int64_t dim = gc_model_get_info (m)->context_dim;
  bool xl = gc_model_text_encoder2 (m) != NULL;
  const char *negative = p->negative ? p->negative : "";
  bool zero_negative = xl && negative[0] == '\0';
  float *neg = NULL, *pos = NULL, *empty = NULL, *neg_pooled = NULL, *pos_pooled = NULL;
  int64_t neg_rows = 0, pos_rows = 0, empty_rows = 0;
  gc_status s = gc_encode_prompt_pooled (m, p->prompt, p->clip_skip, &pos, &pos_rows,
                                         xl ? &pos_pooled : NULL, err);
  if (s == GC_OK && !zero_negative)
    s = gc_encode_prompt_pooled (m, negative, p->clip_skip, &neg, &neg_rows,
                                 xl ? &neg_pooled : NULL, err);
  if (s == GC_OK && zero_negative)
    neg_rows = pos_rows;
  if (s == GC_OK && neg_rows != pos_rows)
    s = gc_encode_prompt (m, "", p->clip_skip, &empty, &empty_rows, err);
  int64_t rows = pos_rows > neg_rows ? pos_rows : neg_rows;
  float *both = s == GC_OK ? calloc ((size_t) (2 * rows * dim), sizeof (float)) : NULL;
  if (s == GC_OK && both == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding the prompts");
  if (s == GC_OK)
    {
      const float *parts[2] = { neg, pos };
      int64_t lengths[2] = { neg_rows, pos_rows };
      for (int k = 0; k < 2; k++)
        {
          float *dst = both + k * rows * dim;
          if (parts[k] == NULL)
            continue; /* SDXL's zero negative */
          memcpy (dst, parts[k], sizeof (float) * (size_t) (lengths[k] * dim));
          for (int64_t r = lengths[k]; r < rows; r += empty_rows)
            memcpy (dst + r * dim, empty, sizeof (float) * (size_t) (empty_rows * dim));
        }
      g->contexts = both;
      g->tokens = rows;
    }
  if (s == GC_OK && xl)
    {
      int64_t adm_dim = gc_unet_get_config (gc_model_unet (m))->adm_dim;
      int64_t pooled_dim = gc_text_encoder_get_config (gc_model_text_encoder2 (m))->projection;
      float *adm = calloc ((size_t) (2 * adm_dim), sizeof (float));
      float *zeros = calloc ((size_t) pooled_dim, sizeof (float));
      if (adm == NULL || zeros == NULL || adm_dim <= pooled_dim)
        s = adm && zeros ? gc_error_set (err, GC_ERR_FORMAT, "the UNet's size conditioning "
                                         "(%lld) does not fit the pooled text (%lld)",
                                         (long long) adm_dim, (long long) pooled_dim)
                         : gc_error_set (err, GC_ERR_NOMEM, "out of memory");
      if (s == GC_OK)
        {
          /* no cropping, and the target size is the size drawn */
          const double ids[6] = { (double) p->height, (double) p->width, 0, 0,
                                  (double) p->height, (double) p->width };
          gc_size_conditioning (adm, neg_pooled ? neg_pooled : zeros, pooled_dim, adm_dim, ids);
          gc_size_conditioning (adm + adm_dim, pos_pooled, pooled_dim, adm_dim, ids);
          g->adm = adm;
        }
      else
        free (adm);
      free (zeros);
    }
  free (neg);
  free (pos);
  free (empty);
  free (neg_pooled);
  free (pos_pooled);
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
  guidance g = { .model = m, .cfg = p->cfg, .channels = c, .lh = lh, .lw = lw, .cancel = cancel };
  float *init = p->init_image ? malloc (sizeof (float) * (size_t) n) : NULL;
  g.batch_in = malloc (sizeof (float) * (size_t) (2 * n));
  g.batch_out = malloc (sizeof (float) * (size_t) (2 * n));
  if (!g.batch_in || !g.batch_out || (p->init_image && !init))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory for a %lldx%lld image",
                      (long long) p->width, (long long) p->height);
  if (s == GC_OK)
    s = encode_pair (m, p, &g, err);
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
  free ((void *) g.adm);
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

/* Latent cells: images from 1024² pixels are decoded in tiles of at most 80 cells (640 px),
 * overlapping by 16 (128 px). */
enum { TILE_FROM = 128 * 128, TILE_MAX = 80, TILE_OVERLAP = 16 };

/* The smallest tile that covers a side of `size` cells with as few tiles as TILE_MAX allows:
 * fewer, larger tiles decode fewer overlapping cells twice. */
static int64_t
tile_for (int64_t size)
{
  if (size <= TILE_MAX)
    return size;
  int64_t tiles = (size - TILE_OVERLAP + TILE_MAX - TILE_OVERLAP - 1) / (TILE_MAX - TILE_OVERLAP);
  return (size + (tiles - 1) * TILE_OVERLAP + tiles - 1) / tiles;
}

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
  int64_t tile = tile_for (lh) > tile_for (lw) ? tile_for (lh) : tile_for (lw);
  return gc_decode_latent_tiled (m, image, latent, lh, lw, lh * lw >= TILE_FROM ? tile : 0,
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

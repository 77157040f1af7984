/* gc-pipeline.h — text-to-image and image-to-image with a loaded model.
 *
 * gc_generate: prompt and negative prompt → token windows (A1111 emphasis, 75-token chunks,
 * BREAK) → text encoder → the sampler, whose model callback runs the UNet on the unconditional
 * and conditional contexts as one batch and mixes them by the CFG scale → VAE decode. The seed
 * drives a torch-compatible generator, so the starting noise equals that of PyTorch tools on
 * the CPU. Progress is reported per model evaluation with the current x̂₀ latent (for previews).
 */
#pragma once

#include <stdint.h>

#include "gc-model.h"

typedef struct {
  const char *prompt;
  const char *negative;     /* "" for none */
  gc_sampler sampler;
  gc_schedule_type schedule;
  int steps;
  double cfg;               /* 1 = no guidance (the negative prompt is not evaluated) */
  uint64_t seed;
  int64_t width, height;    /* pixels, multiples of gc_model_info.pixel_multiple */
  int clip_skip;            /* 0 = the model's default */
  const float *init_image;  /* img2img: [3, height, width] in −1..1; NULL for text-to-image */
  double strength;          /* img2img: how much of the image is replaced, (0, 1] */
  const float *noise;       /* optional initial noise [4, h/8, w/8] instead of the seed's */
  gc_noise_dtype noise_dtype; /* float32 (as A1111/ComfyUI on the CPU) unless reproducing a
                               * float64 reference run */
  const gc_torch_rng *generator; /* optional: continue from this generator state (copied)
                                  * instead of seeding a new one from seed */
} gc_generate_params;

/* Called after each model evaluation: step (0-based) of steps, and x̂₀ [channels, lh, lw]. */
typedef void (*gc_generate_progress_fn) (void *ctx, int step, int steps, const float *denoised,
                                         int64_t lh, int64_t lw);

/* Checks the parameters against the model (image size, CFG, strength, sampler and schedule)
 * without running anything: GC_ERR_INVALID with a message saying what to change. */
gc_status gc_generate_validate (const gc_model *model, const gc_generate_params *params,
                                gc_error *err);

/* The sampling part of gc_generate: latent[channels, height/8, width/8] before decoding. */
gc_status gc_generate_latent (gc_model *model, const gc_generate_params *params, float *latent,
                              gc_generate_progress_fn progress, void *progress_ctx,
                              const volatile int *cancel, gc_error *err);

/* image[3, height, width] in about −1..1. cancel is checked between model evaluations and
 * between the VAE's blocks. Errors: GC_ERR_INVALID with the reason for bad parameters. */
gc_status gc_generate (gc_model *model, const gc_generate_params *params, float *image,
                       gc_generate_progress_fn progress, void *progress_ctx,
                       const volatile int *cancel, gc_error *err);

/* Encodes a prompt with emphasis into context[windows·77, context_dim] (malloc'd). For SDXL the
 * context is both encoders' states side by side, and pooled (when not NULL) receives the second
 * encoder's projected vector [projection] of the first window (malloc'd; NULL for SD 1.x/2.x). */
gc_status gc_encode_prompt_pooled (gc_model *model, const char *prompt, int clip_skip,
                                   float **context, int64_t *tokens, float **pooled,
                                   gc_error *err);
gc_status gc_encode_prompt (gc_model *model, const char *prompt, int clip_skip, float **context,
                            int64_t *tokens, gc_error *err);

/* SDXL's added conditioning adm[adm_dim] = [pooled[pooled_dim], the sinusoidal embeddings of
 * time_ids = (original height, width, crop top, crop left, target height, width)]. */
void gc_size_conditioning (float *adm, const float *pooled, int64_t pooled_dim, int64_t adm_dim,
                           const double time_ids[6]);

/* image[3, lh·8, lw·8] = VAE decode of latent[c, lh, lw] / latent_scale. Images of 1024² pixels
 * and more are decoded in overlapping tiles of at most 640² (gc-tiles.h) so their activations
 * fit in memory; smaller ones whole. */
gc_status gc_decode_latent (gc_model *model, float *image, const float *latent, int64_t lh,
                            int64_t lw, const volatile int *cancel, gc_error *err);

/* The same, choosing: tile = 0 decodes whole, otherwise tiles of tile × tile latent cells. */
gc_status gc_decode_latent_tiled (gc_model *model, float *image, const float *latent,
                                  int64_t lh, int64_t lw, int64_t tile,
                                  const volatile int *cancel, gc_error *err);

/* latent[c, h/8, w/8] = latent_scale × mean of the VAE encoding of image[3, h, w]. */
gc_status gc_encode_image (gc_model *model, float *latent, const float *image, int64_t h,
                           int64_t w, gc_error *err);

/* A cheap RGB preview of a latent[4, lh, lw] (no VAE): rgb[lh·lw·3] bytes, by the SD 1.x
 * latent-to-RGB projection applied to each latent pixel. */
void gc_latent_to_rgb (uint8_t *rgb, const float *latent, int64_t lh, int64_t lw);

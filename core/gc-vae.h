/* gc-vae.h — the autoencoder between pixels and latents (LDM "first_stage_model").
 *
 * Decoder: post_quant_conv, conv_in, mid (ResNet, single-head attention, ResNet), up levels from
 * the deepest (each a few ResNets then a 2× nearest upsample and conv), GroupNorm + SiLU,
 * conv_out. Encoder: the mirror with stride-2 downsampling (padded bottom/right), ending in the
 * mean and log-variance of the latent distribution. Sizes come from tensor shapes. Latent
 * scaling (0.18215 for SD 1.x/2.x) is the caller's business: these functions work on raw
 * latents.
 */
#pragma once

#include <stdint.h>

#include "gc-checkpoint.h"
#include "gc-tensor.h"

typedef struct gc_vae gc_vae;

gc_status gc_vae_load (gc_vae **out, const gc_checkpoint *checkpoint, gc_error *err);
void gc_vae_free (gc_vae *vae);

/* Pixels per latent cell along each side (8). */
int64_t gc_vae_downscale (const gc_vae *vae);
int64_t gc_vae_latent_channels (const gc_vae *vae);

/* image[b, 3, h·8, w·8] (about −1..1) = decoder(post_quant_conv(z[b, c, h, w])) */
gc_status gc_vae_decode (gc_vae *vae, gc_arena *scratch, float *image, const float *z,
                         int64_t batch, int64_t h, int64_t w, const volatile int *cancel,
                         gc_error *err);

/* mean and logvar [b, c, H/8, W/8] of quant_conv(encoder(image[b, 3, H, W])), logvar clamped to
 * [−30, 20] as the reference does. H and W must be multiples of 8. */
gc_status gc_vae_encode (gc_vae *vae, gc_arena *scratch, float *mean, float *logvar,
                         const float *image, int64_t batch, int64_t h, int64_t w,
                         gc_error *err);

/* 2 × multiply-adds of one decode of one image from an h × w latent. */
double gc_vae_decode_flops (const gc_vae *vae, int64_t h, int64_t w);

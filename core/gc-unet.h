/* gc-unet.h — the denoising UNet of Stable Diffusion (SD 1.x, 2.x and SDXL topologies).
 *
 * The block sequence is read from the checkpoint's LDM keys: input_blocks.N are ResNet blocks
 * (with a spatial transformer when N.1 exists) or downsamplers (N.0.op); middle_block is
 * ResNet–transformer–ResNet; output_blocks.N concatenate the matching skip connection, then
 * ResNet, optional transformer, optional upsampler. Channels, context size, transformer depth
 * and projection kind (1×1 conv or linear) come from tensor shapes; heads are 8 for SD 1.x and
 * channels/64 otherwise. SDXL's label_emb adds the pooled text + size conditioning to the time
 * embedding.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gc-checkpoint.h"
#include "gc-grad.h"
#include "gc-tensor.h"

typedef struct gc_unet gc_unet;

typedef struct {
  int64_t in_channels;    /* 4 */
  int64_t out_channels;   /* 4 */
  int64_t model_channels; /* 320 for SD */
  int64_t time_dim;       /* 4·model_channels */
  int64_t context_dim;    /* 768 (SD1), 1024 (SD2), 2048 (SDXL) */
  int64_t adm_dim;        /* SDXL: label_emb input size (2816); 0 otherwise */
  int64_t downsamplings;  /* latent sizes must be multiples of 2^downsamplings */
} gc_unet_config;

gc_status gc_unet_load (gc_unet **out, const gc_checkpoint *checkpoint, gc_error *err);
void gc_unet_free (gc_unet *unet);
const gc_unet_config *gc_unet_get_config (const gc_unet *unet);

/* The conditioning of one evaluation. */
typedef struct {
  const float *context;   /* [batch, tokens, context_dim] */
  int64_t tokens;
  const float *adm;       /* SDXL: [batch, adm_dim]; NULL otherwise */
  /* For checking against reference activations: called with the output of each block as
   * diffusers groups them ("conv_in", "time_embedding", "down_blocks.N", "mid_block",
   * "up_blocks.N"); NULL normally. */
  void (*observe) (void *ctx, const char *name, const float *data, int64_t count);
  void *observe_ctx;
} gc_unet_cond;

/* out[batch, out_channels, h, w] = unet(x[batch, in_channels, h, w], timesteps[batch], cond).
 * h and w must be multiples of 2^downsamplings. A non-NULL cancel flag is checked between
 * blocks (GC_ERR_CANCELLED). scratch holds the activations and is reset before returning. */
gc_status gc_unet_forward (gc_unet *unet, gc_arena *scratch, float *out, const float *x,
                           int64_t batch, int64_t h, int64_t w, const double *timesteps,
                           const gc_unet_cond *cond, const volatile int *cancel, gc_error *err);

/* ---- training ----
 * The same pass, keeping what its backward needs: gc_unet_train_forward computes out exactly as
 * gc_unet_forward does and returns a tape; gc_unet_backward takes dL/d out and hands dL/dW of
 * every weight the sink wants to the sink (gc-grad.h), optionally also dL/dx and dL/d context.
 * With checkpointing, the forward keeps only the block boundaries (the skip connections, the
 * inputs of the middle and output blocks) and the backward runs each block again, recording
 * its activations, just before going back through it: one more forward in total, and one
 * block's activations in memory at a time. Without, every activation is kept (faster, about
 * a dozen copies of the largest feature maps per block).
 * The tape lives in scratch after what the caller had allocated there, and x, timesteps and
 * cond must stay valid until the backward: gc_unet_backward (or gc_unet_tape_free, to drop a
 * tape without a backward) resets scratch to where the forward found it. */
typedef struct gc_unet_tape gc_unet_tape;

gc_status gc_unet_train_forward (gc_unet *unet, gc_arena *scratch, gc_unet_tape **tape,
                                 float *out, const float *x, int64_t batch, int64_t h, int64_t w,
                                 const double *timesteps, const gc_unet_cond *cond,
                                 bool checkpointing, const volatile int *cancel, gc_error *err);

/* d_out[batch, out_channels, h, w] = dL/d out. d_x [batch, in_channels, h, w] and d_context
 * [batch, tokens, context_dim] are accumulated (+=) when not NULL. Frees the tape, also on
 * failure; GC_ERR_CANCELLED when cancel is raised between blocks. */
gc_status gc_unet_backward (gc_unet_tape *tape, const float *d_out, float *d_x, float *d_context,
                            const gc_grad_sink *grads, const volatile int *cancel, gc_error *err);

void gc_unet_tape_free (gc_unet_tape *tape);

/* emb[n, dim]: the sinusoidal embedding of n values (cosines first, then sines), as the UNet
 * embeds timesteps and SDXL embeds image sizes. */
void gc_timestep_embedding (float *emb, const double *values, int64_t n, int64_t dim);

/* About how many bytes a training forward without checkpointing keeps in scratch beyond what
 * a checkpointed one keeps (the blocks' inner activations), for a batch at latent size h × w:
 * what choosing checkpointing saves. An estimate from the block shapes, within about 20%. */
double gc_unet_tape_bytes (const gc_unet *unet, int64_t batch, int64_t h, int64_t w,
                           int64_t tokens);

/* Multiply-adds ×2 of one evaluation of one image at latent size h × w (for GFLOP/s reports). */
double gc_unet_flops (const gc_unet *unet, int64_t h, int64_t w, int64_t tokens);

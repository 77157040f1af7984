/* gc-train-lora.h — a LoRA being trained, applied to its model as one of its styles.
 *
 * The network is the one kohya's trainer makes (networks.lora): for each targeted weight
 * W₀ [out, in(, kh, kw)] of the UNet, with n = in·kh·kw, two factors
 *     down [rank, n]   initialised uniform in ±1/√n (kaiming_uniform with a = √5, torch's
 *                      default for a Linear of n inputs)
 *     up   [out, rank] initialised to zero, so training starts from the base model exactly,
 * and the layer computes with W = W₀ + (alpha / rank) · up · down. The factors are put into the
 * model as a style of weight 1 (gc-styles.h, whose LoRA representation they use), so every
 * pass of the model, sampling included, sees the LoRA as it is at that moment; the styles
 * merge ΔW into the weight where it is used, the model code is unchanged.
 *
 * The factors of every module sit in one float32 parameter vector (module by module: up, then
 * down), with a gradient vector of the same layout; gc_train_lora_sink is the gradient sink
 * for gc_unet_backward that turns each dL/dW into
 *     dL/d up += s · dL/dW · downᵀ,   dL/d down += s · upᵀ · dL/dW,   s = alpha / rank.
 * The result is written as a kohya LoRA by the styles' own writer (gc-bake.h), which folds the
 * scale into the factors: the file's alpha equals its rank, and it gives exactly the same ΔW.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-grad.h"
#include "gc-model.h"
#include "gc-rng.h"

/* Which weights of the UNet get factors (kohya's target modules). */
typedef enum {
  GC_TRAIN_TARGET_ATTENTION = 1 << 0, /* to_q, to_k, to_v, to_out.0 of every attention */
  GC_TRAIN_TARGET_FF = 1 << 1,        /* ff.net.0.proj and ff.net.2 of the transformer blocks */
  GC_TRAIN_TARGET_PROJ = 1 << 2,      /* proj_in and proj_out of the spatial transformers */
  GC_TRAIN_TARGET_RESNET = 1 << 3,    /* ResBlock convolutions, skip and time projections */
  GC_TRAIN_TARGET_SAMPLE = 1 << 4,    /* down- and upsampling convolutions */
  GC_TRAIN_TARGET_STEM = 1 << 5,      /* conv_in, conv_out and the time embedding MLP */
  GC_TRAIN_TARGET_ALL = (1 << 6) - 1, /* every linear and convolution weight (tests) */
} gc_train_target;

/* The default of kohya's networks.lora for the UNet: attention and projections, plus FF. */
#define GC_TRAIN_TARGET_DEFAULT (GC_TRAIN_TARGET_ATTENTION | GC_TRAIN_TARGET_FF | GC_TRAIN_TARGET_PROJ)

typedef struct gc_train_lora gc_train_lora;

/* Makes factors of the given rank (1..1024) and alpha (> 0) on every UNet weight of the kinds in
 * targets, draws down from rng, and adds the LoRA to the model's styles at weight 1. The model
 * must outlive it. GC_ERR_INVALID for a bad rank or alpha, or targets that select nothing. */
gc_status gc_train_lora_new (gc_train_lora **out, gc_model *model, unsigned targets, int64_t rank,
                             double alpha, gc_torch_rng *rng, gc_error *err);
/* Removes the LoRA from the model's styles and frees it. */
void gc_train_lora_free (gc_train_lora *lora);

int64_t gc_train_lora_rank (const gc_train_lora *lora);
double gc_train_lora_alpha (const gc_train_lora *lora);
size_t gc_train_lora_module_count (const gc_train_lora *lora);
/* The LDM key of the index-th module's weight. */
const char *gc_train_lora_module_target (const gc_train_lora *lora, size_t index);
/* Where the index-th module's factors start in the parameter vector, and their shapes. */
void gc_train_lora_module_layout (const gc_train_lora *lora, size_t index, int64_t *offset,
                                  int64_t *out, int64_t *n);

/* The parameter vector and its gradient ([gc_train_lora_size] floats each). Parameters may be
 * changed in place between passes (the optimizer, a checkpoint being restored). */
int64_t gc_train_lora_size (const gc_train_lora *lora);
float *gc_train_lora_params (gc_train_lora *lora);
float *gc_train_lora_grads (gc_train_lora *lora);
void gc_train_lora_zero_grads (gc_train_lora *lora);

/* The sink that accumulates into the gradient vector (valid as long as the LoRA). */
const gc_grad_sink *gc_train_lora_sink (gc_train_lora *lora);

/* Writes the LoRA as a kohya file (fp16 factors, lora_unet_… names) with the metadata pairs
 * given (metadata[2i] = key, metadata[2i+1] = value) and the ones the writer computes
 * (ss_network_dim/alpha/module, sshs_model_hash…). It must be the only active style of its
 * model. */
gc_status gc_train_lora_write (gc_train_lora *lora, const char *path, const char *const *metadata,
                               size_t n_metadata, gc_error *err);

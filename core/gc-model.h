/* gc-model.h — a loaded Stable Diffusion model: checkpoint, tokenizer, text encoder, UNet and
 * VAE, configured for the family its keys reveal, plus the scratch memory its passes use.
 *
 * This is the engine's front door: open a model, then encode prompts, sample and decode
 * (gc-pipeline.h). A model is used by one thread at a time.
 */
#pragma once

#include <stdint.h>

#include "gc-checkpoint.h"
#include "gc-sampler.h"
#include "gc-styles.h"
#include "gc-text-encoder.h"
#include "gc-tokenizer.h"
#include "gc-unet.h"
#include "gc-vae.h"

typedef struct gc_model gc_model;

/* How the model's prediction type was decided. */
typedef enum {
  GC_PREDICTION_FROM_FAMILY,   /* SD 1.x and SDXL are ε models */
  GC_PREDICTION_FROM_METADATA, /* gc_checkpoint_prediction_type, or a v_pred marker tensor */
  GC_PREDICTION_FROM_PROBE,    /* one evaluation on a test input, as A1111 does for SD 2.x */
  GC_PREDICTION_FROM_USER,     /* gc_model_set_prediction */
} gc_prediction_source;

typedef struct {
  gc_family family;
  double latent_scale;       /* VAE latents × this = UNet latents (0.18215 for SD 1.x/2.x) */
  gc_prediction prediction;  /* what the UNet predicts: it cannot be read from the shapes */
  gc_prediction_source prediction_source;
  int32_t pad_id;            /* token after the end token in a window (first encoder) */
  int default_clip_skip;     /* 1 = last block (SD 1.x); 2 = penultimate (SDXL, SD 2.x's single
                              * file; its diffusers export drops the last block: 1 there) */
  int64_t context_dim;
  int64_t latent_channels;
  int64_t pixel_multiple;    /* image sides must be multiples of this (64 for SD 1.x) */
} gc_model_info;

/* Opens the checkpoint (file or diffusers folder) and binds every component. vocab_path is the
 * CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz). */
gc_status gc_model_open (gc_model **out, const char *checkpoint_path, const char *vocab_path,
                         gc_error *err);
void gc_model_free (gc_model *model);

const gc_model_info *gc_model_get_info (const gc_model *model);
const gc_checkpoint *gc_model_checkpoint (const gc_model *model);
const gc_tokenizer *gc_model_tokenizer (const gc_model *model);
gc_text_encoder *gc_model_text_encoder (gc_model *model);
/* SDXL's second text encoder (OpenCLIP bigG, pads with 0, gives the pooled vector); NULL for
 * the other families. */
gc_text_encoder *gc_model_text_encoder2 (gc_model *model);
gc_unet *gc_model_unet (gc_model *model);
gc_vae *gc_model_vae (gc_model *model);

/* The LoRA styles applied to the text encoder and UNet (empty after opening; gc-styles.h). */
gc_styles *gc_model_styles (gc_model *model);

/* Overrides the detected prediction type (a model whose metadata is missing or wrong). */
void gc_model_set_prediction (gc_model *model, gc_prediction prediction);
const char *gc_prediction_name (gc_prediction prediction);           /* "epsilon", "v" */
const char *gc_prediction_source_name (gc_prediction_source source); /* "metadata", … */

/* Scratch memory for activations, reused between passes. */
gc_arena *gc_model_scratch (gc_model *model);

/* Returns the resident pages of the checkpoint mapping to the system (they are re-read from the
 * page cache on next use) and frees the styles' kept merges: called between sampling and
 * decoding so that the UNet weights and the VAE activations are not resident at once. */
void gc_model_release_weights (gc_model *model);

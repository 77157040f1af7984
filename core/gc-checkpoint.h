/* gc-checkpoint.h — a Stable Diffusion checkpoint as one table of named weights.
 *
 * Two layouts are accepted:
 *  - a single .safetensors file in the original ("LDM") layout: model.diffusion_model.*,
 *    first_stage_model.*, cond_stage_model.* (SD 1.x/2.x) or conditioner.embedders.* (SDXL);
 *  - a diffusers folder: unet/diffusion_pytorch_model[.fp16].safetensors,
 *    vae/diffusion_pytorch_model[.fp16].safetensors, text_encoder/model[.fp16].safetensors and,
 *    for SDXL, text_encoder_2/model[.fp16].safetensors. Its names are translated once, at open,
 *    to the LDM names the model code looks up; the text encoders keep their Hugging Face names
 *    under the family's LDM root (gc-diffusers-names.h).
 * Weights stay in the file mapping in their stored precision. The family is read from the keys
 * and shapes, never from the file name: for a folder, SDXL has text_encoder_2/, SD 2.x's UNet
 * has linear (2-D) proj_in weights, and the rest is SD 1.x. Pickle checkpoints (.ckpt, .pt) are
 * refused with a reason.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gc-error.h"
#include "gc-safetensors.h"

typedef enum {
  GC_FAMILY_SD1,  /* CLIP ViT-L text encoder, 768-d context */
  GC_FAMILY_SD2,  /* OpenCLIP ViT-H text encoder, head dim 64, often v-prediction */
  GC_FAMILY_SDXL, /* two text encoders, micro-conditioning */
} gc_family;

typedef struct gc_checkpoint gc_checkpoint;

/* Opens a checkpoint file or diffusers folder and checks it holds a UNet, a VAE and a text
 * encoder of a known family (GC_ERR_UNSUPPORTED naming what is missing otherwise, or for a
 * folder the component file that is missing or holds something else; a LoRA file is recognised
 * and the message says to add it as a style). */
gc_status gc_checkpoint_open (gc_checkpoint **out, const char *path, gc_error *err);
void gc_checkpoint_close (gc_checkpoint *checkpoint);

gc_family gc_checkpoint_family (const gc_checkpoint *checkpoint);
const char *gc_family_name (gc_family family); /* "SD 1.x" */

/* The tensor stored under an LDM key, or NULL. */
const gc_st_tensor *gc_checkpoint_find (const gc_checkpoint *checkpoint, const char *key);

/* All tensors, with their LDM keys (for matching LoRA targets). */
size_t gc_checkpoint_count (const gc_checkpoint *checkpoint);
const char *gc_checkpoint_key (const gc_checkpoint *checkpoint, size_t index);
const gc_st_tensor *gc_checkpoint_tensor (const gc_checkpoint *checkpoint, size_t index);

/* Styles change model parameters through one slot per tensor: a parameter bound to a tensor
 * reads the tensor's slot wherever it is used (gc-param.h), so a style set (gc-styles.h) swaps
 * what every user of a weight sees without touching the model code. NULL for an unknown key. */
typedef struct gc_param_patch gc_param_patch;
gc_param_patch **gc_checkpoint_patch_slot (const gc_checkpoint *checkpoint, const char *key);

/* Drops the resident pages of the mapped files (clean, file-backed: they are read back from
 * the page cache when next touched). Lowers the resident memory between pipeline phases. */
void gc_checkpoint_release_pages (gc_checkpoint *checkpoint);

/* The same for the whole pages inside [data, data + size) of one of its tensors (ignored when
 * the range is not in the checkpoint's mapped data). */
void gc_checkpoint_release_range (const gc_checkpoint *checkpoint, const void *data, size_t size);

/* Metadata of the (first) file: e.g. "modelspec.prediction_type". NULL if absent. */
const char *gc_checkpoint_metadata (const gc_checkpoint *checkpoint, const char *key);

/* What the checkpoint says its UNet predicts, as written: the prediction_type of a diffusers
 * folder's scheduler/scheduler_config.json ("epsilon", "v_prediction"), else the file's
 * modelspec.prediction_type metadata ("epsilon", "v"). NULL if it says nothing. */
const char *gc_checkpoint_prediction_type (const gc_checkpoint *checkpoint);

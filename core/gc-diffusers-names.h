/* gc-diffusers-names.h — diffusers module names ↔ LDM checkpoint names (internal).
 *
 * The text encoders of a diffusers folder are Hugging Face transformers models (text_model.…,
 * and text_projection.weight for SDXL's second). Their names are kept and put under the root
 * where the family's LDM file keeps that encoder:
 *   SD 1.x  text_encoder/    cond_stage_model.transformer.
 *   SD 2.x  text_encoder/    cond_stage_model.model.
 *   SDXL    text_encoder/    conditioner.embedders.0.transformer.
 *           text_encoder_2/  conditioner.embedders.1.model.
 * So an OpenCLIP encoder (SD 2.x, SDXL's second) is found under its usual root in Hugging Face
 * names (separate q/k/v, fc1/fc2) instead of OpenCLIP's (fused in_proj, c_fc/c_proj); the text
 * encoder reads either naming (gc-text-encoder.h).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "gc-checkpoint.h"

enum { GC_DIFFUSERS_MAX_LEVELS = 8 };

typedef enum {
  GC_DIFFUSERS_UNET,
  GC_DIFFUSERS_VAE,
  GC_DIFFUSERS_TEXT_ENCODER,
  GC_DIFFUSERS_TEXT_ENCODER_2, /* SDXL's second (OpenCLIP bigG) */
} gc_diffusers_component;

/* What the numbering depends on, read from the diffusers keys themselves. */
typedef struct {
  int layers_per_block;                          /* resnets per UNet encoder level */
  bool up_has_attention[GC_DIFFUSERS_MAX_LEVELS]; /* per UNet decoder level */
  int vae_levels;
  gc_family family; /* where text_encoder/ goes (the roots above) */
} gc_diffusers_layout;

/* Writes the LDM key of a diffusers key of the component; false if it has none. */
bool gc_diffusers_key_to_ldm (const gc_diffusers_layout *layout,
                              gc_diffusers_component component, const char *key, char *out,
                              size_t out_size);

/* The numbering of a checkpoint whose keys are LDM names (a single file, or a diffusers folder
 * after its translation at open). */
gc_diffusers_layout gc_diffusers_layout_of_ldm (const gc_checkpoint *checkpoint);

/* The inverse of gc_diffusers_key_to_ldm: writes the diffusers key of an LDM key and its
 * component; false for keys outside the UNet, VAE and text encoders (schedule buffers) and for
 * encoder weights in OpenCLIP names, which diffusers folders do not use. */
bool gc_ldm_key_to_diffusers (const gc_diffusers_layout *layout, const char *key,
                              gc_diffusers_component *component, char *out, size_t out_size);

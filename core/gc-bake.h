/* gc-bake.h — a blend of styles written as one file: a LoRA, or a whole checkpoint.
 *
 * Both read the styles applied to a checkpoint (gc_model_styles of the model that opened it),
 * at their current weights: ΔW = Σᵢ wᵢ·ΔWᵢ (text weights for text-encoder weights).
 *
 * gc_bake_lora writes one kohya LoRA (the module names kohya uses for the model's family,
 * gc-lora-names.h, so q, k and v of an OpenCLIP in_proj are three modules; fp16 factors) equal
 * to the blend at weight 1:
 *  - exactly (rank 0): per module the styles' factors side by side, up = [c₁·up₁ | c₂·up₂ …]
 *    and down = [down₁; down₂; …] with cᵢ = wᵢ·alphaᵢ/rankᵢ (split as √|cᵢ| on each side so
 *    fp16 keeps its range), alpha = the summed rank (scale 1). Only plain LoRA factors stack:
 *    a LoHa, LoKr, full-difference or DoRA style needs a rank;
 *  - compressed (rank R): per module the dense ΔW is reduced to its best rank-R approximation
 *    (gc-svd.h), up = U·√s, down = √s·Vᵀ, alpha = R, and the error is reported.
 * A change of a bias (styles with diff_b) is written whole, as the module's diff_b.
 * The metadata given is written with kohya's keys that follow from the result:
 * ss_network_module, ss_network_dim, ss_network_alpha, ss_base_model_version, ss_v2 and
 * sshs_model_hash (the SHA-256 of the tensor data, A1111's "addnet" hash).
 *
 * gc_bake_checkpoint writes the checkpoint as one LDM .safetensors file with W₀ + ΔW in place
 * of every styled weight, streamed tensor by tensor (a 2 GB model never sits in memory):
 * floating-point weights of the UNet, VAE and text encoder in fp16, other tensors (schedule
 * buffers, position ids) as stored. Other tools load it as any checkpoint. An SD 2.x or SDXL
 * model opened from a diffusers folder is refused (GC_ERR_UNSUPPORTED): its OpenCLIP encoder is
 * in Hugging Face names there, which single-file checkpoints do not use.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-checkpoint.h"

typedef struct {
  size_t weights;          /* modules the LoRA changes (weights, or rows of one) */
  int64_t rank;            /* the largest rank written */
  double relative_error;   /* ‖ΔW − baked‖_F / ‖ΔW‖_F over every weight (rank R only) */
  double worst_error;      /* the largest relative error of one weight */
  char worst_weight[256];  /* its LDM key */
} gc_bake_report;

/* metadata: n_metadata key/value pairs (metadata[2i], metadata[2i+1]). GC_ERR_INVALID when no
 * style is active; GC_ERR_UNSUPPORTED for an exact bake of LoHa/LoKr/DoRA styles. */
gc_status gc_bake_lora (const gc_checkpoint *checkpoint, int64_t rank, const char *path,
                        const char *const *metadata, size_t n_metadata, gc_bake_report *report,
                        gc_error *err);

gc_status gc_bake_checkpoint (const gc_checkpoint *checkpoint, const char *path,
                              const char *const *metadata, size_t n_metadata, gc_error *err);

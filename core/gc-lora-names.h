/* gc-lora-names.h — the names LoRA files give a model's weights (internal).
 *
 * A LoRA names the layer it changes (a "module") in one of these ways, for the LDM weight
 * model.diffusion_model.input_blocks.1.1.proj_in.weight of an SD 1.x checkpoint:
 *   kohya      lora_unet_down_blocks_0_attentions_0_proj_in   (diffusers path, '.' → '_')
 *   kohya/LDM  lora_unet_input_blocks_1_1_proj_in             (LDM path, '.' → '_'; what
 *                                                             kohya's SDXL trainer writes)
 *   PEFT       unet.down_blocks.0.attentions.0.proj_in        (also without "unet.")
 * Old diffusers attention processors (….attn1.processor.to_q_lora) name the same layers.
 *
 * Text encoders are named by their Hugging Face (transformers) module paths,
 * text_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, mlp.fc1, mlp.fc2}:
 *   SD 1.x  CLIP      cond_stage_model.transformer.*          lora_te_…   text_encoder.…
 *   SD 2.x  OpenCLIP  cond_stage_model.model.*                lora_te_…   text_encoder.…
 *   SDXL    CLIP-L    conditioner.embedders.0.transformer.*   lora_te1_…  text_encoder.…
 *           OpenCLIP  conditioner.embedders.1.model.*         lora_te2_…  text_encoder_2.…
 * (the single encoder of SD 1.x and 2.x also without a prefix). A diffusers folder keeps those
 * names under the same roots (gc-diffusers-names.h). An OpenCLIP checkpoint stores
 * those layers as transformer.resblocks.N.{attn.in_proj_weight, attn.out_proj, mlp.c_fc,
 * mlp.c_proj}, with q, k and v stacked by rows in in_proj_weight [3D, D] (and in_proj_bias
 * [3D]): q_proj is rows 0…D−1 of it, k_proj rows D…2D−1, v_proj rows 2D…3D−1. So a module is a
 * block of rows of a weight (all of them for every other layer), and of its bias.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gc-checkpoint.h"

/* One module a LoRA may change. */
typedef struct {
  const char *weight;  /* LDM key of the weight [rows of it ⊂ out, in(, kh, kw)] */
  const char *bias;    /* LDM key of its bias, or NULL when the layer has none */
  const char *kohya;   /* the module's name in the files kohya's trainers write */
  int64_t row, rows;   /* the module is rows row … row + rows − 1 of weight and bias */
  bool text;           /* of a text encoder */
} gc_lora_target;

typedef struct gc_lora_names gc_lora_names;

/* Indexes every linear and convolution weight of the checkpoint's UNet and text encoders under
 * all the names above. */
gc_status gc_lora_names_build (gc_lora_names **out, const gc_checkpoint *checkpoint,
                               gc_error *err);
void gc_lora_names_free (gc_lora_names *names);

/* The modules, sorted by weight key and row. */
size_t gc_lora_names_count (const gc_lora_names *names);
const gc_lora_target *gc_lora_names_at (const gc_lora_names *names, size_t index);

/* The module a name designates, or NULL. */
const gc_lora_target *gc_lora_names_find (const gc_lora_names *names, const char *module);

/* The kohya name of an LDM weight key changed as a whole, or NULL for a weight outside the
 * index or split in several modules (an OpenCLIP in_proj_weight). */
const char *gc_lora_names_kohya (const gc_lora_names *names, const char *key);

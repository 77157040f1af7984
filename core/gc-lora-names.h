/* gc-lora-names.h — the names LoRA files give a model's weights (internal).
 *
 * A LoRA names the layer it changes (a "module") in one of these ways, for the LDM weight
 * model.diffusion_model.input_blocks.1.1.proj_in.weight of an SD 1.x checkpoint:
 *   kohya      lora_unet_down_blocks_0_attentions_0_proj_in   (diffusers path, '.' → '_')
 *   kohya/LDM  lora_unet_input_blocks_1_1_proj_in             (LDM path, '.' → '_')
 *   PEFT       unet.down_blocks.0.attentions.0.proj_in        (also without "unet.")
 * and for the text encoder lora_te_text_model_encoder_layers_0_self_attn_q_proj or
 * text_encoder.text_model.encoder.layers.0.self_attn.q_proj. Old diffusers attention
 * processors (….attn1.processor.to_q_lora) name the same layers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gc-checkpoint.h"

typedef struct gc_lora_names gc_lora_names;

/* Indexes every linear and convolution weight of the checkpoint's UNet and text encoder under
 * all the names above. */
gc_status gc_lora_names_build (gc_lora_names **out, const gc_checkpoint *checkpoint,
                               gc_error *err);
void gc_lora_names_free (gc_lora_names *names);

/* The LDM key of the weight a module name designates, or NULL; *text tells whether it belongs
 * to the text encoder. */
const char *gc_lora_names_find (const gc_lora_names *names, const char *module, bool *text);

/* The kohya module name of an LDM weight key (the diffusers form, as kohya's trainer writes
 * it), or NULL for a weight outside the index. */
const char *gc_lora_names_kohya (const gc_lora_names *names, const char *key);

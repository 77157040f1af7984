/* gc-lora.h — LoRA "style" files: which weights of a model they change, and by how much.
 *
 * A LoRA file holds, per targeted weight W [out, in(, kh, kw)] of the UNet or the text encoder,
 * a compact change ΔW. Every format Gouache reads keeps ΔW compact; it is expanded per layer
 * where the weight is used (gc-styles.h). With in·kh·kw = n, ΔW is seen as [out, n]:
 *
 *  - LoRA (kohya, also "LoCon" for 1×1 and 3×3 convolutions):
 *      <module>.lora_up.weight [out, r(, 1, 1)], <module>.lora_down.weight [r, in(, kh, kw)],
 *      optional <module>.lora_mid.weight [r, r, kh, kw] (Tucker: down is then [r, in, 1, 1]),
 *      <module>.alpha (0-D; absent or 0 means alpha = r):
 *      ΔW = (alpha / r) · up · down
 *    PEFT/diffusers spellings of up/down are accepted: .lora_B/.lora_A(.default).weight,
 *    .lora.up/.lora.down.weight, .lora_linear_layer.up/down.weight, _lora.up/_lora.down.weight.
 *  - LyCORIS LoHa: hada_w1_a [out, r], hada_w1_b [r, n], hada_w2_a, hada_w2_b:
 *      ΔW = (alpha / r) · (w1_a·w1_b) ⊙ (w2_a·w2_b)
 *    With Tucker cores hada_t1/hada_t2 [r, r, kh, kw], w*_a is [r, out] and w*_b [r, in], and
 *    each product is einsum("i j k l, j r, i p -> p r k l", t, w_b, w_a).
 *  - LyCORIS LoKr: ΔW = scale · kron(w1 [o1, i1], w2 [o2, n / i1]) with o1·o2 = out, where
 *    w1 = lokr_w1 or lokr_w1_a·lokr_w1_b, w2 = lokr_w2, lokr_w2_a·lokr_w2_b, or the Tucker form
 *    with lokr_t2; scale = alpha / r of the factored pair (w2's if both are), 1 when neither is.
 *  - LyCORIS full: ΔW = <module>.diff [out, in(, kh, kw)].
 *  - DoRA (dora_scale beside any of the above, LyCORIS's weight decomposition): the style's
 *    weight is Wd = (W₀ + ΔW) · dora_scale / ‖W₀ + ΔW‖, the norm taken per output row when
 *    dora_scale has `out` rows, per input channel otherwise; its change is Wd − W₀ (so weight w
 *    gives W₀ + w·(Wd − W₀), as ComfyUI blends it).
 *  - A bias change <module>.diff_b [out] beside any of them (or alone) changes the layer's bias
 *    by Δb = diff_b, weighted as ΔW is; on a layer without a bias it is listed as unmatched.
 *
 * Module names (gc-lora-names.h): kohya's lora_unet_<diffusers module path, '.'→'_'>, the same
 * with LDM paths (lora_unet_input_blocks_4_1_…, what kohya writes for SDXL), and PEFT/diffusers
 * dotted paths (unet.down_blocks.1…); text encoders by their Hugging Face paths:
 * lora_te_text_model_encoder_layers_N_… for SD 1.x and 2.x, lora_te1_… and lora_te2_… for
 * SDXL's two (text_encoder. and text_encoder_2. in PEFT files). SD 2.x's encoder and SDXL's
 * second are OpenCLIP, whose q, k and v share one weight attn.in_proj_weight [3D, D]: a
 * self_attn_q_proj module changes rows 0…D−1 of it (and of in_proj_bias), k_proj the next D,
 * v_proj the last D; mlp_fc1/fc2 change mlp.c_fc/c_proj, self_attn_out_proj attn.out_proj.
 *
 * Files are untrusted: shapes are checked against the model before anything is used, and a file
 * that does not fit is refused as a whole, never half-applied: one for another family (read
 * from its module names and shapes: SDXL's two text encoders and three-level UNet, SD 1.x's
 * convolutional proj_in, the standard widths) with a message naming both families, and one
 * whose shapes differ from the model's naming the module and both shapes. Tensors whose names
 * match no weight of the model are ignored and listed.
 */
#pragma once

#include <stddef.h>

#include "gc-checkpoint.h"
#include "gc-error.h"

typedef struct gc_lora gc_lora;

/* Opens the LoRA at path and binds it to the checkpoint's weights (it must not outlive the
 * checkpoint). GC_ERR_MISMATCH when it was made for another model: another family ("x is a
 * LoRA for SDXL, the model is SD 1.x"), other shapes (naming the module, the model's weight and
 * both shapes), or none of its weights; GC_ERR_FORMAT for malformed modules (an up without a
 * down, a non-scalar alpha...). */
gc_status gc_lora_open (gc_lora **out, const char *path, const gc_checkpoint *checkpoint,
                        gc_error *err);

/* The same for a file image in memory (it must outlive the LoRA), named name in messages. */
gc_status gc_lora_open_memory (gc_lora **out, const void *bytes, size_t size, const char *name,
                               const gc_checkpoint *checkpoint, gc_error *err);
void gc_lora_free (gc_lora *lora);

const char *gc_lora_path (const gc_lora *lora);

/* Metadata of the file ("ss_output_name", "ss_tag_frequency"...), or NULL. */
const char *gc_lora_metadata (const gc_lora *lora, const char *key);

typedef struct {
  size_t tensors;      /* in the file */
  size_t applied;      /* of those, the ones used */
  size_t unet_weights; /* UNet weights (and biases) the style changes, per module */
  size_t text_weights; /* text-encoder weights (and biases) it changes, per module */
  size_t unmatched;    /* tensors that matched no weight (tensors − applied) */
} gc_lora_report;

gc_lora_report gc_lora_get_report (const gc_lora *lora);

/* Name of the index-th tensor that matched nothing (index < report.unmatched), in name order. */
const char *gc_lora_unmatched (const gc_lora *lora, size_t index);

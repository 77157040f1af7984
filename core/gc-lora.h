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
 *  - DoRA (dora_scale beside any of the above, LyCORIS's weight decomposition): the style's
 *    weight is Wd = (W₀ + ΔW) · dora_scale / ‖W₀ + ΔW‖, the norm taken per output row when
 *    dora_scale has `out` rows, per input channel otherwise; its change is Wd − W₀ (so weight w
 *    gives W₀ + w·(Wd − W₀), as ComfyUI blends it).
 *
 * Module names: kohya's lora_unet_<diffusers module path, '.'→'_'> and
 * lora_te_text_model_encoder_layers_N_…, the same with LDM paths (lora_unet_input_blocks_1_1_…),
 * and PEFT/diffusers dotted paths (unet.down_blocks.0…, text_encoder.text_model…). SDXL files
 * (lora_te1_/lora_te2_) are refused until SDXL runs.
 *
 * Files are untrusted: shapes are checked against the model before anything is used, and a file
 * whose shapes do not fit (a LoRA for another model) is refused as a whole, never half-applied.
 * Tensors whose names match no weight of the model are ignored and listed.
 */
#pragma once

#include <stddef.h>

#include "gc-checkpoint.h"
#include "gc-error.h"

typedef struct gc_lora gc_lora;

/* Opens the LoRA at path and binds it to the checkpoint's weights (it must not outlive the
 * checkpoint). GC_ERR_MISMATCH (naming the
 * module, the model's weight and both shapes) when it was made for another model, or when it
 * matches none of its weights; GC_ERR_UNSUPPORTED for SDXL files; GC_ERR_FORMAT for malformed
 * modules (an up without a down, a non-scalar alpha...). */
gc_status gc_lora_open (gc_lora **out, const char *path, const gc_checkpoint *checkpoint,
                        gc_error *err);
void gc_lora_free (gc_lora *lora);

const char *gc_lora_path (const gc_lora *lora);

/* Metadata of the file ("ss_output_name", "ss_tag_frequency"...), or NULL. */
const char *gc_lora_metadata (const gc_lora *lora, const char *key);

typedef struct {
  size_t tensors;      /* in the file */
  size_t applied;      /* of those, the ones used */
  size_t unet_weights; /* UNet weights the style changes */
  size_t text_weights; /* text-encoder weights it changes */
  size_t unmatched;    /* tensors that matched no weight (tensors − applied) */
} gc_lora_report;

gc_lora_report gc_lora_get_report (const gc_lora *lora);

/* Name of the index-th tensor that matched nothing (index < report.unmatched), in name order. */
const char *gc_lora_unmatched (const gc_lora *lora, size_t index);

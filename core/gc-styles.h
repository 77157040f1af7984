/* gc-styles.h — LoRA styles blended into a model, changed without reloading it.
 *
 * A model's styles (gc_model_styles) are an ordered list of LoRAs, each with a weight w for the
 * UNet and a text weight for the text encoder, both in [−2, 2]. Every weight W₀ of the
 * checkpoint that a style changes is then used as
 *
 *     W = W₀ + Σᵢ wᵢ·ΔWᵢ
 *
 * The trade-off chosen: W is formed per layer at the moment the layer runs, never stored.
 * W₀ stays in the mapped checkpoint, untouched (it is the kept copy), and each ΔWᵢ stays in the
 * compact form of its file (low-rank factors, read from the mapped LoRA file). Where the
 * layer's weight is widened to float32 for its matrix product anyway, each active style adds
 * its ΔW with one sgemm of out·n·r multiply-adds (n = in·kh·kw, r its rank). So:
 *  - a weight change takes effect at the next pass, with no merge and no reload; adding a
 *    style costs opening its file;
 *  - styles take no memory beyond their factors. Stored float32 merges of every weight
 *    attention-only LoRAs touch in SD 1.5 (352 M values) would take 1.4 GB, 0.7 GB more than
 *    the fp16 file data they replace, which breaks the 3 GB budget; fp16 merges would fit but
 *    round W to fp16 (≈ 3e-4 relative, above the 1e-4 the reference checks allow) and need a
 *    full re-merge, over 0.5 s on two cores, for every slider move;
 *  - each pass pays 2·out·n·r FLOP per styled layer: with three rank-32 LoRAs on every
 *    attention and text layer of SD 1.5, ≈ 51 GFLOP per UNet evaluation (≈ 0.5 s on two
 *    cores: a few percent of a 512² guided step, more at small preview sizes) and 16 GFLOP
 *    per prompt in the text encoder.
 * Styles must not change while a pass runs on the model (the model is used by one thread).
 */
#pragma once

#include <stddef.h>

#include "gc-lora.h"

typedef struct gc_styles gc_styles;

/* The weight range a style takes. */
#define GC_STYLE_WEIGHT_MAX 2.0

/* An empty style list for the checkpoint (a model makes its own: gc_model_styles). */
gc_status gc_styles_new (gc_styles **out, const gc_checkpoint *checkpoint, gc_error *err);
/* Removes every style (the model computes with W₀ again) and frees the list. */
void gc_styles_free (gc_styles *styles);

/* Appends a style opened against the same checkpoint; the list owns lora from then on (it is
 * freed on failure too). GC_ERR_INVALID for a weight outside [−2, 2]. */
gc_status gc_styles_add (gc_styles *styles, gc_lora *lora, double weight, double text_weight,
                         gc_error *err);

/* Changes the weights of the index-th style; immediate (see above). */
gc_status gc_styles_set_weights (gc_styles *styles, size_t index, double weight,
                                 double text_weight, gc_error *err);

/* Removes (and frees) the index-th style. */
void gc_styles_remove (gc_styles *styles, size_t index);

size_t gc_styles_count (const gc_styles *styles);
const gc_lora *gc_styles_lora (const gc_styles *styles, size_t index);
double gc_styles_weight (const gc_styles *styles, size_t index);
double gc_styles_text_weight (const gc_styles *styles, size_t index);

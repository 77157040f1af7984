/* gc-styles.h — LoRA styles blended into a model, changed without reloading it.
 *
 * A model's styles (gc_model_styles) are an ordered list of LoRAs, each with a weight w for the
 * UNet and a text weight for the text encoder, both in [−2, 2]. Every weight W₀ of the
 * checkpoint that a style changes is then used as
 *
 *     W = W₀ + Σᵢ wᵢ·ΔWᵢ
 *
 * How, and the trade-off chosen. W₀ stays in the mapped checkpoint, untouched (it is the kept
 * copy of W₀), and each ΔWᵢ stays in the compact form of its file (low-rank factors, read from
 * the mapped LoRA file). A change of weights only marks the weights that style touches as
 * stale: it takes about a microsecond, and nothing is reloaded. The next pass merges each stale
 * weight where its layer runs: W₀ widened to float32 (as every fp16 weight is for its matrix
 * product) plus the styles' factors stacked into one sgemm of out·n·Σrᵢ multiply-adds, exact
 * in float32. That result is used, and kept in the checkpoint's precision (fp16 for fp16
 * files): later passes widen the kept copy instead of W₀, at no extra cost, and W₀'s pages
 * are released until the next change, so the kept copies take the room of the file data they
 * stand for. So:
 *  - memory: about nothing beyond the factors. Float32 merges of the 352 M weights that
 *    attention-only LoRAs touch in SD 1.5 would take 1.4 GB, 0.7 GB more than the fp16 data
 *    they replace: with the mapped weights that breaks the 3 GB budget;
 *  - precision: the first pass after a change is exact; later ones use the merge rounded to
 *    fp16, as the checkpoint's own weights are (the rounding other tools' fp16 merges make);
 *  - time: the first pass after a change pays the merge, 2·out·n·Σrᵢ FLOP per styled weight:
 *    with three rank-32 LoRAs on every attention and text layer of SD 1.5, ≈ 51 GFLOP in the
 *    UNet (about 0.5 s on two cores) and 16 GFLOP in the text encoder; the passes after it
 *    cost what they cost without styles.
 * gc_styles_release drops the kept copies (the model does it with its weights' pages before
 * decoding large images), and the next pass merges again.
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

/* Frees the kept merges (see above). */
void gc_styles_release (gc_styles *styles);

size_t gc_styles_count (const gc_styles *styles);
const gc_lora *gc_styles_lora (const gc_styles *styles, size_t index);
double gc_styles_weight (const gc_styles *styles, size_t index);
double gc_styles_text_weight (const gc_styles *styles, size_t index);

/* gc-text-encoder.h — the CLIP / OpenCLIP text transformer that turns token windows into the
 * context the UNet attends to.
 *
 * One implementation serves every family; the naming is read from the checkpoint:
 *  - Hugging Face (transformers) names: <prefix>text_model.…, separate q/k/v projections,
 *    final_layer_norm, text_projection.weight [P, D] used as a linear layer (SD 1.x and SDXL's
 *    first encoder in single files; every encoder of a diffusers folder);
 *  - OpenCLIP names (SD 2.x and SDXL's second encoder in single files):
 *    <prefix>transformer.resblocks.N.…, fused in_proj, ln_final, text_projection [D, P] used as
 *    x·P.
 * The MLP's activation is not part of the naming (an OpenCLIP model exported in Hugging Face
 * names still uses GELU): the caller, who knows which model this is, chooses it: quick-GELU for
 * OpenAI's CLIP ViT-L (SD 1.x, SDXL's first encoder), GELU for OpenCLIP's ViT-H and bigG
 * (SD 2.x, SDXL's second). Sizes (width, layers, MLP width, vocabulary, positions) come from
 * tensor shapes; heads are width / 64. Attention is causal; tokens are embedded with learned
 * positions.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gc-checkpoint.h"
#include "gc-ops.h"
#include "gc-tensor.h"

typedef struct gc_text_encoder gc_text_encoder;

typedef struct {
  int64_t width;        /* hidden size D */
  int64_t layers;       /* transformer blocks in the file */
  int64_t mlp_width;
  int64_t heads;
  int64_t vocab;
  int64_t positions;    /* 77 */
  int64_t projection;   /* text_projection output size, 0 if none */
  bool open_clip;       /* OpenCLIP names rather than Hugging Face ones */
  gc_activation activation; /* of the MLP, as the caller chose */
} gc_text_encoder_config;

/* Binds the encoder whose tensors start with prefix (e.g. "cond_stage_model.transformer." or
 * "cond_stage_model.model."), with the MLP activation of that model (GC_ACT_QUICK_GELU or
 * GC_ACT_GELU). */
gc_status gc_text_encoder_load (gc_text_encoder **out, const gc_checkpoint *checkpoint,
                                const char *prefix, gc_activation activation, gc_error *err);
void gc_text_encoder_free (gc_text_encoder *encoder);
const gc_text_encoder_config *gc_text_encoder_get_config (const gc_text_encoder *encoder);

typedef struct {
  int skip;          /* 1 = output of the last block, 2 = the one before ("clip skip 2"), … */
  bool final_norm;   /* pass the chosen output through the final layer norm */
} gc_text_output;

/* hidden[windows, positions, width] for ids[windows, positions] (each window encoded on its
 * own, as other tools do for prompts longer than one window). When pooled is not NULL it
 * receives [windows, projection]: the final-normed state at each window's first end token
 * (the highest id) times text_projection (SDXL's pooled vector). scratch holds temporaries and
 * is reset before returning. */
gc_status gc_text_encoder_forward (gc_text_encoder *encoder, gc_arena *scratch, float *hidden,
                                   float *pooled, const int32_t *ids, int64_t windows,
                                   gc_text_output output, gc_error *err);

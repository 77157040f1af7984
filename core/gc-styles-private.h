/* gc-styles-private.h — the styles on one weight, read by the code that bakes them (gc-bake.c). */
#pragma once

#include "gc-lora-private.h"
#include "gc-param.h"

/* w[numel] (W₀ in float32) += Σ wᵢ·ΔWᵢ of the styles in patch, computed exactly (no kept
 * copy). false when scratch is exhausted. */
bool gc_param_patch_apply (gc_arena *scratch, const gc_param_patch *patch, float *w);

/* Terms of a patch: the module of one style and the weight it has now (its text weight for a
 * text-encoder module). */
size_t gc_param_patch_terms (const gc_param_patch *patch);
const gc_lora_module *gc_param_patch_term (const gc_param_patch *patch, size_t index,
                                           float *coefficient);

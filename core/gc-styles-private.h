/* gc-styles-private.h — the styles on one weight, read by the code that bakes them (gc-bake.c). */
#pragma once

#include "gc-lora-private.h"
#include "gc-param.h"

/* Terms of a patch: the module of one style and the weight it has now (its text weight for a
 * text-encoder module). */
size_t gc_param_patch_terms (const gc_param_patch *patch);
const gc_lora_module *gc_param_patch_term (const gc_param_patch *patch, size_t index,
                                           float *coefficient);

/* gc-param.h — a model parameter: a checkpoint tensor W₀ plus the styles applied to it. Model
 * structs hold gc_param fields with shape comments; ops read them through gc_param_f32, which
 * widens fp16/bf16 weights where they are used and, when styles change the tensor, returns
 * W₀ + Σ wᵢ·ΔWᵢ instead (merged where the layer runs, gc-styles.h; W₀ is never modified). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gc-checkpoint.h"
#include "gc-tensor.h"

typedef struct {
  gc_weight weight;                    /* W₀, as stored in the file */
  gc_param_patch *const *patch;        /* the tensor's styles slot in the checkpoint */
} gc_param;

/* W₀ + Σ wᵢ·ΔWᵢ of the styles in patch as float32 in scratch (gc-styles.h says how it is
 * merged and kept). NULL when memory is exhausted. Defined with the styles (gc-styles.c). */
const float *gc_param_patch_weight (gc_arena *scratch, gc_param_patch *patch,
                                    const gc_weight *w0);

/* Binds p to the tensor named key, checking its shape: shape[i] = -1 accepts any size in that
 * dimension (the caller reads it back from p->weight.shape). Missing key or wrong shape is
 * GC_ERR_FORMAT naming the key and both shapes. */
gc_status gc_param_bind (gc_param *p, const gc_checkpoint *checkpoint, const char *key, int ndim,
                         const int64_t *shape, gc_error *err);

/* The same with the key built printf-style. */
gc_status gc_param_bindf (gc_param *p, const gc_checkpoint *checkpoint, int ndim,
                          const int64_t *shape, gc_error *err, const char *format, ...)
  __attribute__ ((format (printf, 6, 7)));

/* True if the checkpoint has a tensor of that name (printf-style). */
bool gc_checkpoint_hasf (const gc_checkpoint *checkpoint, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

/* True while styles change this parameter. */
bool gc_param_is_patched (const gc_param *p);

/* The parameter as float32 with the styles applied: the file data itself when it is aligned F32
 * and unstyled, otherwise a conversion into scratch (valid until the caller resets scratch).
 * NULL when scratch is exhausted. */
const float *gc_param_f32 (gc_arena *scratch, const gc_param *p);

int64_t gc_param_numel (const gc_param *p);

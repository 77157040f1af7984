/* gc-param.h — a model parameter: a checkpoint tensor plus, while styles are applied, a float32
 * replacement holding W₀ + Σ wᵢ·ΔWᵢ. Model structs hold gc_param fields with shape comments;
 * ops read them through gc_param_f32, which widens fp16/bf16 weights where they are used. */
#pragma once

#include <stdint.h>

#include "gc-checkpoint.h"
#include "gc-tensor.h"

typedef struct {
  gc_weight weight; /* as stored in the file */
  float *merged;    /* float32 [numel] with styles applied, or NULL */
} gc_param;

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

/* The parameter as float32: the merged copy, the file data itself when it is aligned F32, or
 * a conversion into scratch (valid until the caller resets scratch). NULL when scratch is
 * exhausted. */
const float *gc_param_f32 (gc_arena *scratch, const gc_param *p);

int64_t gc_param_numel (const gc_param *p);

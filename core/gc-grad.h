/* gc-grad.h — where the backward passes of the models deliver the gradients of their weights.
 *
 * The models' weights are frozen checkpoint tensors; what training changes is something that
 * feeds them, such as the factors of a LoRA applied as a style (gc-train-lora.h), which make a
 * layer compute with W = W₀ + ΔW. A backward pass therefore hands out dL/dW, the gradient of
 * the loss with respect to the weight a layer actually used, to a sink that says which weights
 * it wants: the sink turns dL/dW into the gradients of its own parameters (for a LoRA,
 * dL/d up = s·dL/dW·downᵀ and dL/d down = s·upᵀ·dL/dW). Weights nobody wants cost nothing
 * beyond the gradient of the activations that the backward needs anyway.
 */
#pragma once

#include <stdbool.h>

#include "gc-param.h"

typedef struct {
  /* True when the backward should compute dL/dW for this parameter. */
  bool (*wants) (void *ctx, const gc_param *param);
  /* d_weight holds dL/dW of one use of the parameter, float32 in the weight's layout
   * ([out, in(, kh, kw)], [c] for norms and biases); it is only valid during the call. Called
   * once for every use of a wanted parameter (the sink accumulates). */
  void (*accumulate) (void *ctx, const gc_param *param, const float *d_weight);
  void *ctx;
} gc_grad_sink;

static inline bool
gc_grad_wants (const gc_grad_sink *sink, const gc_param *param)
{
  return sink != NULL && param != NULL && sink->wants (sink->ctx, param);
}

/* gc-adamw.h — the AdamW optimizer (Loshchilov & Hutter), as torch.optim.AdamW computes it.
 *
 * For each parameter p with gradient g, at step t (1, 2, …):
 *     p ← p·(1 − lr·λ)                          (decoupled weight decay)
 *     m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
 *     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 * in float32, with the bias corrections in double. The moments and the step count are the
 * optimizer's whole state: saving them (with the parameters) and restoring them continues a
 * run exactly.
 */
#pragma once

#include <stdint.h>

#include "gc-error.h"

typedef struct {
  double beta1, beta2;  /* 0.9, 0.999 */
  double eps;           /* 1e-8 */
  double weight_decay;  /* λ, 0.01 */
} gc_adamw_params;

typedef struct {
  int64_t count;        /* parameters */
  int64_t step;         /* steps taken */
  float *m, *v;         /* [count] first and second moments */
} gc_adamw;

/* torch's defaults: β = (0.9, 0.999), ε = 1e-8, λ = 0.01. */
gc_adamw_params gc_adamw_defaults (void);

/* Zero moments for count parameters. */
gc_status gc_adamw_init (gc_adamw *opt, int64_t count, gc_error *err);
void gc_adamw_free (gc_adamw *opt);

/* One step at learning rate lr: params[count] updated from grads[count]. */
void gc_adamw_step (gc_adamw *opt, float *params, const float *grads, double lr,
                    const gc_adamw_params *hp);

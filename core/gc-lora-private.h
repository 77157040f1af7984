/* gc-lora-private.h — the parsed form of a LoRA file, shared by the styles (gc-styles.c) and
 * the code that bakes blends into files (gc-bake.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gc-lora.h"
#include "gc-safetensors.h"
#include "gc-tensor.h"

typedef enum {
  GC_DELTA_LOW_RANK,  /* ΔW = scale · a[out, r] · b[r, n] */
  GC_DELTA_HADAMARD,  /* ΔW = scale · (a[out, r]·b[r, n]) ⊙ (a2[out, r2]·b2[r2, n]) */
  GC_DELTA_KRONECKER, /* ΔW = scale · kron(a[o1, i1], b[out / o1, n / i1]) */
  GC_DELTA_DENSE,     /* ΔW = scale · a[out, n] (a full difference, or a bias change) */
} gc_delta_kind;

/* One changed weight or bias. ΔW is seen as [out, n] with n = in·kh·kw, the layout of the
 * weight (n = 1 for a bias); it changes rows row … row + out − 1 of the target (all of its
 * rows, or q, k or v of an OpenCLIP in_proj). Factors are 2-D views: into the mapped file when
 * usable as stored, or of float32 buffers the LoRA owns (Tucker forms and LoKr products,
 * computed once when the file is opened). */
typedef struct {
  const char *target;  /* LDM key of the weight or bias */
  bool text;           /* of a text encoder (it follows the style's text weight) */
  gc_delta_kind kind;
  int64_t row;         /* the first row of the target ΔW changes */
  int64_t out, n;
  int64_t in_channels; /* n / (kh·kw): DoRA's input axis */
  double scale;
  gc_weight a, b, a2, b2;
  bool dora;           /* dora_scale present */
  bool dora_on_output; /* dora_scale holds `out` values (else in_channels) */
  gc_weight dora_scale;
} gc_lora_module;

struct gc_lora {
  char *path;
  const gc_checkpoint *checkpoint; /* whose keys the modules' targets are */
  gc_safetensors *file;
  gc_lora_module *modules;
  size_t n_modules;
  float **owned;       /* buffers behind factors computed at open */
  size_t n_owned;
  const char **unmatched; /* names owned by the file */
  gc_lora_report report;
};

/* w[out, n] += coefficient · ΔW of the module (DoRA not included: see below), where w points
 * at the module's first row of the target. false when scratch is exhausted; scratch is left
 * as it was found. */
bool gc_lora_module_add_delta (gc_arena *scratch, const gc_lora_module *m, float coefficient,
                               float *w);

/* w[out, n] += Σᵢ coefficients[i] · ΔWᵢ for count plain low-rank modules (no DoRA) of one
 * weight, as a single product of their stacked factors: one pass over w and one sgemm of
 * depth Σ rᵢ, instead of one of each per module. */
bool gc_lora_modules_add_low_rank (gc_arena *scratch, const gc_lora_module *const *modules,
                                   const float *coefficients, size_t count, float *w);

/* w[out, n] += coefficient · (Wd − W₀) for a DoRA module, where w0 holds W₀ (w and w0 may not
 * overlap). */
bool gc_lora_module_add_dora (gc_arena *scratch, const gc_lora_module *m, float coefficient,
                              const float *w0, float *w);

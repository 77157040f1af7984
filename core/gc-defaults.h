/* gc-defaults.h — sampling settings that suit a model.
 *
 * Base models want 20 or more guided steps; few-step distilled models want their own sampler
 * and no guidance: SD-Turbo and SDXL-Turbo (adversarial distillation) draw in 1–4 Euler ancestral
 * steps on trailing timesteps without CFG, LCM models and LCM-LoRAs in about 4 LCM steps. The
 * weights do not say which kind a model is: its metadata or its name does, as other tools read
 * them.
 */
#pragma once

#include <stddef.h>

#include "gc-checkpoint.h"
#include "gc-sampler.h"

typedef enum {
  GC_DISTILL_NONE,
  GC_DISTILL_TURBO, /* SD-Turbo, SDXL-Turbo */
  GC_DISTILL_LCM,   /* latent consistency models and LCM-LoRAs */
} gc_distillation;

/* What names and the checkpoint's metadata (modelspec.title, modelspec.architecture,
 * ss_output_name, …) say: "turbo" or "lcm" as a word part, case-insensitive. names are file
 * names (the checkpoint's and its styles'); checkpoint may be NULL. */
gc_distillation gc_detect_distillation (const char *const *names, size_t n_names,
                                        const gc_checkpoint *checkpoint);

const char *gc_distillation_name (gc_distillation distillation); /* "SD-Turbo", "LCM", "base" */

typedef struct {
  gc_sampler sampler;
  gc_schedule_type schedule;
  int steps;
  double cfg;
} gc_sampling_defaults;

gc_sampling_defaults gc_sampling_defaults_for (gc_family family, gc_distillation distillation);

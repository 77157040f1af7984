/* gc-sampler.h — the sampling loop: from noise (or a noised image) to a clean latent.
 *
 * The sampler knows nothing of UNets, prompts or guidance. It owns the latent, the schedule
 * and every random draw, and reaches the model through one callback that returns the (guided)
 * model output for a given input and timestep. Each sampler reproduces the diffusers scheduler
 * of the same name step for step, so that with a torch-identical model callback and seed it
 * produces diffusers' latents (checked against diffusers' own runs: tests/test-sampler.c):
 *
 *   sampler    diffusers scheduler                        model input    random draws
 *   Euler      EulerDiscreteScheduler                     x / √(σ² + 1)  initial noise
 *   Euler a    EulerAncestralDiscreteScheduler            x / √(σ² + 1)  initial + one per step
 *   DDIM       DDIMScheduler, η = 0                       x              initial noise
 *   DPM++ 2M   DPMSolverMultistepScheduler (dpmsolver++,  x              initial noise
 *              order 2, midpoint, lower_order_final)
 *   Heun       HeunDiscreteScheduler                      x / √(σ² + 1)  initial noise
 *   LCM        LCMScheduler                               x              initial + one per step
 *                                                                        but the last
 *
 * Every draw is torch.randn of the whole latent from the caller's generator (gc-rng.h), in
 * the order diffusers draws: the initial noise first, then the steps' noise.
 * Text-to-image starts from noise·init_σ. init_σ is 1 for DDIM, DPM++ 2M and LCM; for the
 * σ samplers it is σ_max with trailing/Karras/exponential and √(σ_max² + 1) with the default
 * ("leading") spacing, diffusers' rule. Image-to-image runs the last int(steps·strength) steps
 * (LCM: folds the strength into its timesteps) and starts from the init latent noised to the
 * first step run: x = √ᾱ·init + √(1 − ᾱ)·noise for DDIM, LCM and DPM++ 2M, x = init + σ·noise
 * for the σ samplers. (diffusers' img2img pipelines sample the VAE posterior with the same
 * generator before drawing that noise; a caller that wants their exact numbers does that
 * draw itself before calling, or passes the posterior mean as the references do.)
 *
 * Memory: besides the caller's latent, at most five latent-sized float buffers.
 * Not thread-safe on one rng; independent calls with their own rng may run in parallel.
 */
#pragma once

#include <stdint.h>

#include "gc-error.h"
#include "gc-rng.h"
#include "gc-schedule.h"

typedef enum {
  GC_SAMPLER_EULER,
  GC_SAMPLER_EULER_A,
  GC_SAMPLER_DDIM,
  GC_SAMPLER_DPMPP_2M,
  GC_SAMPLER_HEUN,
  GC_SAMPLER_LCM,
  GC_SAMPLER_COUNT,
} gc_sampler;

/* The schedule choice a user makes. "Default" is, per sampler, what diffusers runs with
 * SD 1.5's scheduler config: "leading" spacing with steps_offset 1 for Euler, Euler a, DDIM
 * and Heun; "linspace" for DPM++ 2M (its own default); LCM's own schedule for LCM.
 * Trailing starts at t = 999 (for zero-terminal-SNR and v-prediction models). Karras and
 * exponential span the full σ range and need a σ-stepping sampler (Euler, Euler a, Heun,
 * DPM++ 2M). LCM accepts only the default. */
typedef enum {
  GC_SCHEDULE_DEFAULT,
  GC_SCHEDULE_TRAILING,
  GC_SCHEDULE_KARRAS,
  GC_SCHEDULE_EXPONENTIAL,
  GC_SCHEDULE_COUNT,
} gc_schedule_type;

/* The dtype torch draws noise in, which changes the numbers a seed gives (see gc-rng.h). */
typedef enum {
  GC_NOISE_F32, /* torch.randn in float32: diffusers in float32, A1111 and ComfyUI on the CPU */
  GC_NOISE_F64, /* torch.randn in float64: diffusers run in float64 (the reference vectors) */
} gc_noise_dtype;

/* What the model predicts: ε (SD 1.x, SD 2.x base 512) or v = √ᾱ·ε − √(1 − ᾱ)·x₀ (SD 2.x 768). */
typedef enum {
  GC_PREDICTION_EPSILON,
  GC_PREDICTION_V,
} gc_prediction;

/* Evaluates the guided model: out = model output (epsilon or v, per request) for input x
 * (already scaled the way the sampler's scale_model_input does) at the given timestep.
 * Returns GC_OK, or an error/GC_ERR_CANCELLED that aborts sampling.
 * out and x are latent-sized ([numel]) and never overlap; the timestep is the exact value
 * diffusers passes to the UNet: an integer for DDIM, DPM++ 2M and LCM, a float32 value for
 * the σ samplers (fractional with Karras and exponential schedules). */
typedef gc_status (*gc_denoise_fn) (void *ctx, float *out, const float *x, double timestep,
                                    gc_error *err);

/* Called after each model evaluation with its index (0-based), the number of evaluations of
 * this run (see gc_sample_evaluations) and the current prediction of the clean latent x̂₀
 * [numel] (for live previews; valid only during the call). May be NULL. */
typedef void (*gc_progress_fn) (void *ctx, int step, int steps, const float *denoised);

typedef struct {
  gc_sampler sampler;
  gc_schedule_type schedule;
  int steps;                /* 1..GC_MAX_STEPS: the schedule's length, before strength */
  gc_prediction prediction;
  const float *init;        /* img2img: the clean init latent [numel] (VAE mean × 0.18215);
                             * NULL for text-to-image */
  double strength;          /* img2img only: in (0, 1]; 1 replaces the image entirely */
  gc_torch_rng *rng;        /* source of every random draw; advanced by the run */
  gc_noise_dtype noise_dtype; /* the dtype of those draws */
  const float *noise;       /* optional: the starting noise [numel] to use instead of the
                             * generator's first draw (noise made elsewhere, reference runs);
                             * later draws still come from rng */
} gc_sample_params;

/* Samples one latent of numel floats (any shape, e.g. [B, 4, H/8, W/8]; B > 1 draws its
 * noise as one tensor, as diffusers does for a batch with one generator).
 * latent: out, the final latent (its input content is ignored).
 * cancel: may be NULL; otherwise read before every model evaluation, and a nonzero value stops
 * the run with GC_ERR_CANCELLED. On any error the content of latent is unspecified.
 * GC_ERR_INVALID for an unsupported sampler/schedule pair, a strength that leaves no step,
 * or a bad step count; GC_ERR_NOMEM; or whatever denoise returned. */
gc_status gc_sample (float *latent, int64_t numel, const gc_sample_params *params,
                     gc_denoise_fn denoise, void *denoise_ctx, gc_progress_fn progress,
                     void *progress_ctx, const volatile int *cancel, gc_error *err);

/* The schedule gc_sample follows for params, and the index of the first step it runs
 * (0 for text-to-image). Checks params as gc_sample does. */
gc_status gc_sample_plan (gc_schedule *schedule, int *first_step,
                          const gc_sample_params *params, gc_error *err);

/* Model evaluations gc_sample makes for params (steps run, or 2·steps − 1 for Heun); 0 if
 * params are invalid. */
int gc_sample_evaluations (const gc_sample_params *params);

/* Names. Display names are A1111's ("Euler a", "DPM++ 2M"; schedule types "Automatic",
 * "Trailing", "Karras", "Exponential"), for metadata; CLI names are lower-case identifiers
 * (euler, euler_a, ddim, dpmpp_2m, heun, lcm; default, trailing, karras, exponential).
 * The parsers accept either form, case-insensitively, and return GC_ERR_INVALID with the
 * list of valid names otherwise. */
const char *gc_sampler_display_name (gc_sampler sampler);
const char *gc_sampler_cli_name (gc_sampler sampler);
gc_status gc_sampler_parse (gc_sampler *out, const char *name, gc_error *err);

const char *gc_schedule_display_name (gc_schedule_type schedule);
const char *gc_schedule_cli_name (gc_schedule_type schedule);
gc_status gc_schedule_parse (gc_schedule_type *out, const char *name, gc_error *err);

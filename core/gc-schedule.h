/* gc-schedule.h — Stable Diffusion noise schedules: training ᾱ and σ, inference timesteps.
 *
 * Stable Diffusion 1.x/2.x were trained on one discrete schedule: 1000 timesteps with
 * "scaled linear" betas, βₜ = (√0.00085 + t·(√0.012 − √0.00085)/999)², ᾱₜ = Πₛ≤ₜ (1 − βₛ).
 * A noisy latent at timestep t is x = √ᾱₜ·x₀ + √(1 − ᾱₜ)·ε ("VP" form), or, divided by √ᾱₜ,
 * x = x₀ + σₜ·ε with σₜ = √((1 − ᾱₜ)/ᾱₜ) (the k-diffusion form Euler and Heun integrate in).
 *
 * Sampling runs through N of those levels. Which ones, and which timestep value the model is
 * given at each, differs between samplers and follows here exactly what the diffusers scheduler
 * of each kind computes, rounding included: the training tables are float32 values as torch
 * makes them (its float linspace, a cumulative product carried in double), σ interpolation and
 * Karras/exponential spacing are done in double as numpy does and rounded to float32 at the
 * end, as diffusers stores them. Reference vectors of diffusers runs check this to the bit.
 */
#pragma once

#include <stdint.h>

#include "gc-error.h"

enum {
  GC_TRAIN_STEPS = 1000,
  GC_MAX_STEPS = 500, /* inference steps; "leading" spacing breaks down at 1000 (t = 1000) */
};

/* The training schedule, as float32 tables indexed by timestep (as diffusers holds them). */
typedef struct {
  float alphas_cumprod[GC_TRAIN_STEPS]; /* ᾱₜ */
  float sigmas[GC_TRAIN_STEPS];         /* σₜ = √((1 − ᾱₜ)/ᾱₜ), increasing in t */
  float log_sigmas[GC_TRAIN_STEPS];     /* ln σₜ, for mapping a σ back to a timestep */
} gc_train_schedule;

/* Fills the SD 1.x/2.x schedule (scaled linear betas 0.00085..0.012, 1000 steps). */
void gc_train_schedule_init_sd (gc_train_schedule *train);

/* Which diffusers scheduler's rules pick the timesteps; the samplers map onto these. */
typedef enum {
  GC_SCHEDULER_DDIM,  /* DDIMScheduler: N integer timesteps */
  GC_SCHEDULER_EULER, /* Euler, Euler ancestral, Heun: N float timesteps, σ interpolated in t */
  GC_SCHEDULER_DPM,   /* DPMSolverMultistep: grids of N + 1 points less the last, integers */
  GC_SCHEDULER_LCM,   /* LCMScheduler: N of the 50-step "original" schedule's timesteps */
} gc_scheduler_kind;

/* How the N timesteps are spaced over the 1000 (the "timestep_spacing" of diffusers). */
typedef enum {
  GC_SPACING_LEADING,  /* multiples of 1000/N from 0, plus steps_offset 1: SD's own configs */
  GC_SPACING_TRAILING, /* multiples of 1000/N down from 1000, minus 1: starts at t = 999 */
  GC_SPACING_LINSPACE, /* evenly from 999 to 0 */
} gc_spacing;

/* Where the σ of each step come from. Karras and exponential need a σ-stepping scheduler
 * (Euler or DPM) and ignore the spacing: they always span the whole training range,
 * σ₉₉₉ down to σ₀ (what diffusers computes with "linspace" spacing, and what A1111 does). */
typedef enum {
  GC_SIGMAS_INTERPOLATED, /* σ at each spaced timestep, linearly interpolated in t */
  GC_SIGMAS_KARRAS,       /* Karras et al. 2022, ρ = 7; timesteps mapped back from σ */
  GC_SIGMAS_EXPONENTIAL,  /* evenly spaced in ln σ; timesteps mapped back from σ */
} gc_sigma_kind;

/* An inference schedule: what the sampler visits, step by step. */
typedef struct {
  int steps; /* N */
  /* The value handed to the model at step i, exactly as diffusers passes it to the UNet:
   * integers for DDIM, DPM and LCM (DPM's exponential σ map to truncated integers, as its int64
   * cast does); float32 values for the Euler scheduler, fractional for Karras and exponential. */
  double timesteps[GC_MAX_STEPS];
  /* Noise level at step i in k-diffusion form; sigmas[N] = 0 is the clean end. For DDIM and
   * LCM these are σ of the timesteps, for information: their steps use the ᾱ below. */
  float sigmas[GC_MAX_STEPS + 1];
  /* ᾱ at step i, and the ᾱ the step moves to. DDIM: table values, the target at t − 1000/N
   * (ᾱ₀ past the start, as diffusers with set_alpha_to_one = false); LCM: table values, the
   * target at the next timestep; Euler and DPM: 1/(1 + σ²) of sigmas[i] and sigmas[i + 1]. */
  float alphas[GC_MAX_STEPS];
  float alphas_next[GC_MAX_STEPS];
} gc_schedule;

/* Builds the schedule of `steps` (1..GC_MAX_STEPS) steps. lcm_strength is the img2img strength
 * for the LCM scheduler, which folds it into its timesteps (1 for text-to-image; ignored by the
 * others, whose img2img skips leading steps instead: see gc_schedule_first_step).
 * GC_ERR_INVALID for a step count out of range, Karras/exponential with DDIM or LCM, or an LCM
 * step count above the 50·strength timesteps it picks from. */
gc_status gc_schedule_make (gc_schedule *out, const gc_train_schedule *train,
                            gc_scheduler_kind scheduler, gc_spacing spacing, gc_sigma_kind sigmas,
                            int steps, double lcm_strength, gc_error *err);

/* img2img with diffusers' pipelines runs the last int(steps·strength) steps of the schedule:
 * the index of the first one run. Strength in (0, 1]; the caller rejects strengths that leave
 * no step (the result would be steps). */
int gc_schedule_first_step (int steps, double strength);

/* The timestep (fractional) whose interpolated log σ is ln sigma, clamped to [0, 999]: the
 * inverse of the training σ table, as diffusers' _sigma_to_t computes it. */
double gc_sigma_to_timestep (const gc_train_schedule *train, double sigma);

/* gc-sampler-private.h — what gc-sampler.c (entry, plan, names) shares with
 * gc-sampler-steps.c (one loop per sampler). */
#pragma once

#include "gc-sampler.h"

/* One sampling run. The latent x is in the form the sampler steps in: x₀ + σ·ε for the σ
 * samplers (Euler, Euler a, Heun), √ᾱ·x₀ + √(1 − ᾱ)·ε for DDIM, DPM++ 2M and LCM. */
typedef struct {
  const gc_sample_params *params;
  const gc_schedule *schedule;
  int first;        /* first step run */
  int64_t n;        /* latent size */
  float *x;         /* [n] the latent being sampled (the caller's buffer) */
  float *model_in;  /* [n] the model's input; also holds fresh noise between uses */
  float *model_out; /* [n] the model's output (ε or v) */
  float *denoised;  /* [n] the current x̂₀ */
  float *saved;     /* [n] DPM++ 2M: the previous x̂₀; Heun: the sample before the step */
  float *slope;     /* [n] Heun: dx/dσ at the start of the step */
  gc_denoise_fn denoise;
  void *denoise_ctx;
  gc_progress_fn progress;
  void *progress_ctx;
  const volatile int *cancel;
  int evaluation;   /* evaluations done so far */
  int evaluations;  /* evaluations this run makes */
} _gc_sample_run;

/* Calls the model on input at timestep t, into run->model_out, after checking the cancel flag. */
gc_status _gc_sample_evaluate (_gc_sample_run *run, const float *input, double t, gc_error *err);

/* out[n] = the next noise from the run's generator, in the requested dtype. */
void _gc_sample_draw_noise (_gc_sample_run *run, float *out);

/* Reports run->denoised to the progress callback as the evaluation just made. */
void _gc_sample_report (_gc_sample_run *run);

gc_status _gc_sample_euler (_gc_sample_run *run, gc_error *err);
gc_status _gc_sample_euler_ancestral (_gc_sample_run *run, gc_error *err);
gc_status _gc_sample_heun (_gc_sample_run *run, gc_error *err);
gc_status _gc_sample_ddim (_gc_sample_run *run, gc_error *err);
gc_status _gc_sample_dpmpp_2m (_gc_sample_run *run, gc_error *err);
gc_status _gc_sample_lcm (_gc_sample_run *run, gc_error *err);

/* gc-sampler-steps.c — one loop per sampler, each the step() of its diffusers scheduler.
 *
 * Scalars that diffusers keeps as float32 tensors (σ, ᾱ and what is computed from them
 * element-wise) are float here too, so that the latents follow diffusers' rounding closely;
 * the DPM++ coefficients are formed in double from σ ratios (diffusers goes through float32
 * logs), a difference far below the model's own rounding. */
#include "gc-sampler-private.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- σ samplers: x = x₀ + σ·ε, the model sees x / √(σ² + 1) ---- */

static void
scale_model_input (_gc_sample_run *run, const float *x, float sigma)
{
  float scale = sqrtf (sigma * sigma + 1.0f);
  for (int64_t i = 0; i < run->n; i++)
    run->model_in[i] = x[i] / scale;
}

/* x̂₀ from the model output at noise level sigma, for sample x. */
static void
denoise_sigma (_gc_sample_run *run, const float *x, float sigma)
{
  const float *out = run->model_out;
  float *d = run->denoised;
  if (run->params->prediction == GC_PREDICTION_EPSILON)
    {
      for (int64_t i = 0; i < run->n; i++)
        d[i] = x[i] - sigma * out[i];
      return;
    }
  float c_out = -sigma / sqrtf (sigma * sigma + 1.0f);
  float c_skip_divisor = sigma * sigma + 1.0f;
  for (int64_t i = 0; i < run->n; i++)
    d[i] = out[i] * c_out + x[i] / c_skip_divisor;
}

/* Evaluates the model on x at step i's σ and timestep; leaves x̂₀ in run->denoised. */
static gc_status
predict_sigma (_gc_sample_run *run, const float *x, float sigma, double t, gc_error *err)
{
  scale_model_input (run, x, sigma);
  gc_status status = _gc_sample_evaluate (run, run->model_in, t, err);
  if (status != GC_OK)
    return status;
  denoise_sigma (run, x, sigma);
  _gc_sample_report (run);
  return GC_OK;
}

gc_status
_gc_sample_euler (_gc_sample_run *run, gc_error *err)
{
  const gc_schedule *s = run->schedule;
  float *x = run->x;
  for (int step = run->first; step < s->steps; step++)
    {
      float sigma = s->sigmas[step];
      gc_status status = predict_sigma (run, x, sigma, s->timesteps[step], err);
      if (status != GC_OK)
        return status;
      float dt = s->sigmas[step + 1] - sigma;
      for (int64_t i = 0; i < run->n; i++)
        x[i] = x[i] + (x[i] - run->denoised[i]) / sigma * dt;
    }
  return GC_OK;
}

/* Euler a: an Euler step down to σ_down, then fresh noise of size σ_up, with
 * σ_down² + σ_up² = σ_next² and σ_up chosen as k-diffusion's η = 1 ancestral step. */
gc_status
_gc_sample_euler_ancestral (_gc_sample_run *run, gc_error *err)
{
  const gc_schedule *s = run->schedule;
  float *x = run->x;
  for (int step = run->first; step < s->steps; step++)
    {
      float from = s->sigmas[step];
      float to = s->sigmas[step + 1];
      gc_status status = predict_sigma (run, x, from, s->timesteps[step], err);
      if (status != GC_OK)
        return status;
      float up = sqrtf (to * to * (from * from - to * to) / (from * from));
      float down = sqrtf (to * to - up * up);
      float dt = down - from;
      for (int64_t i = 0; i < run->n; i++)
        x[i] = x[i] + (x[i] - run->denoised[i]) / from * dt;
      /* diffusers draws the step's noise after the update, on the last step too. */
      float *noise = run->model_in;
      _gc_sample_draw_noise (run, noise);
      for (int64_t i = 0; i < run->n; i++)
        x[i] = x[i] + noise[i] * up;
    }
  return GC_OK;
}

/* Heun: an Euler step to σ_next, a second evaluation there, and the step redone with the
 * mean of both slopes. The last step (to σ = 0) stays a plain Euler step. */
gc_status
_gc_sample_heun (_gc_sample_run *run, gc_error *err)
{
  const gc_schedule *s = run->schedule;
  float *x = run->x;
  for (int step = run->first; step < s->steps; step++)
    {
      float sigma = s->sigmas[step];
      float next = s->sigmas[step + 1];
      float dt = next - sigma;
      gc_status status = predict_sigma (run, x, sigma, s->timesteps[step], err);
      if (status != GC_OK)
        return status;
      for (int64_t i = 0; i < run->n; i++)
        run->slope[i] = (x[i] - run->denoised[i]) / sigma;
      if (step == s->steps - 1)
        {
          for (int64_t i = 0; i < run->n; i++)
            x[i] = x[i] + run->slope[i] * dt;
          break;
        }
      memcpy (run->saved, x, (size_t) run->n * sizeof *x);
      for (int64_t i = 0; i < run->n; i++)
        x[i] = x[i] + run->slope[i] * dt;
      status = predict_sigma (run, x, next, s->timesteps[step + 1], err);
      if (status != GC_OK)
        return status;
      for (int64_t i = 0; i < run->n; i++)
        {
          float slope_next = (x[i] - run->denoised[i]) / next;
          float mean_slope = (run->slope[i] + slope_next) / 2.0f;
          x[i] = run->saved[i] + mean_slope * dt;
        }
    }
  return GC_OK;
}

/* ---- ᾱ samplers: x = √ᾱ·x₀ + √(1 − ᾱ)·ε, the model sees x itself ---- */

/* x̂₀ into run->denoised and ε into run->model_out (replacing v when the model predicts v). */
static void
split_alpha (_gc_sample_run *run, float alpha_bar)
{
  float a = sqrtf (alpha_bar);
  float b = sqrtf (1.0f - alpha_bar);
  const float *x = run->x;
  float *out = run->model_out;
  float *d = run->denoised;
  for (int64_t i = 0; i < run->n; i++)
    {
      if (run->params->prediction == GC_PREDICTION_EPSILON)
        d[i] = (x[i] - b * out[i]) / a;
      else
        {
          float v = out[i];
          d[i] = a * x[i] - b * v;
          out[i] = a * v + b * x[i];
        }
    }
}

static gc_status
predict_alpha (_gc_sample_run *run, float alpha_bar, double t, gc_error *err)
{
  gc_status status = _gc_sample_evaluate (run, run->x, t, err);
  if (status != GC_OK)
    return status;
  split_alpha (run, alpha_bar);
  return GC_OK;
}

/* DDIM with η = 0: keep x̂₀ and ε, and recombine them at the next level. */
gc_status
_gc_sample_ddim (_gc_sample_run *run, gc_error *err)
{
  const gc_schedule *s = run->schedule;
  float *x = run->x;
  for (int step = run->first; step < s->steps; step++)
    {
      gc_status status = predict_alpha (run, s->alphas[step], s->timesteps[step], err);
      if (status != GC_OK)
        return status;
      _gc_sample_report (run);
      float a = sqrtf (s->alphas_next[step]);
      float b = sqrtf (1.0f - s->alphas_next[step]);
      for (int64_t i = 0; i < run->n; i++)
        x[i] = a * run->denoised[i] + b * run->model_out[i];
    }
  return GC_OK;
}

/* DPM-Solver++(2M) in data-prediction form. In terms of the σ of x₀ + σ·ε, with
 * h = ln(σ_s/σ_t): x_t = (σ_t^vp/σ_s^vp)·x_s − α_t·(σ_t/σ_s − 1)·D, where D is x̂₀ (first
 * order: the first step run and the last) or x̂₀ + (x̂₀ − x̂₀_prev)/(2r), r = h_prev/h
 * (second order, midpoint form). */
gc_status
_gc_sample_dpmpp_2m (_gc_sample_run *run, gc_error *err)
{
  const gc_schedule *s = run->schedule;
  float *x = run->x;
  float *previous = run->saved;
  for (int step = run->first; step < s->steps; step++)
    {
      double sigma = s->sigmas[step];
      double next = s->sigmas[step + 1];
      double alpha_bar = 1.0 / (sigma * sigma + 1.0);
      gc_status status = predict_alpha (run, (float) alpha_bar, s->timesteps[step], err);
      if (status != GC_OK)
        return status;
      _gc_sample_report (run);

      double alpha_s = 1.0 / sqrt (sigma * sigma + 1.0);
      double alpha_t = 1.0 / sqrt (next * next + 1.0);
      double keep = (next * alpha_t) / (sigma * alpha_s); /* σ_t^vp / σ_s^vp */
      double gain = -alpha_t * (next / sigma - 1.0);       /* −α_t·(e^−h − 1) */
      bool second_order = step > run->first && step < s->steps - 1;
      double correction = 0.0;
      if (second_order)
        {
          double prev = s->sigmas[step - 1];
          double r = log (prev / sigma) / log (sigma / next);
          correction = 0.5 * gain / r;
        }
      for (int64_t i = 0; i < run->n; i++)
        {
          double d0 = run->denoised[i];
          double d1 = second_order ? d0 - previous[i] : 0.0;
          x[i] = (float) (keep * x[i] + gain * d0 + correction * d1);
        }
      memcpy (previous, run->denoised, (size_t) run->n * sizeof *previous);
    }
  return GC_OK;
}

/* LCM: the consistency function's x̂₀ (boundary-condition mix of the model's x̂₀ and x),
 * re-noised to the next timestep with fresh noise; the last step returns x̂₀ itself. */
gc_status
_gc_sample_lcm (_gc_sample_run *run, gc_error *err)
{
  const gc_schedule *s = run->schedule;
  float *x = run->x;
  const double sigma_data = 0.5, timestep_scaling = 10.0;
  for (int step = run->first; step < s->steps; step++)
    {
      double t = s->timesteps[step];
      gc_status status = predict_alpha (run, s->alphas[step], t, err);
      if (status != GC_OK)
        return status;
      double scaled = t * timestep_scaling;
      double squares = scaled * scaled + sigma_data * sigma_data;
      float c_skip = (float) (sigma_data * sigma_data / squares);
      float c_out = (float) (scaled / sqrt (squares));
      for (int64_t i = 0; i < run->n; i++)
        run->denoised[i] = c_out * run->denoised[i] + c_skip * x[i];
      _gc_sample_report (run);
      if (step == s->steps - 1)
        {
          memcpy (x, run->denoised, (size_t) run->n * sizeof *x);
          break;
        }
      float *noise = run->model_in;
      _gc_sample_draw_noise (run, noise);
      float a = sqrtf (s->alphas_next[step]);
      float b = sqrtf (1.0f - s->alphas_next[step]);
      for (int64_t i = 0; i < run->n; i++)
        x[i] = a * run->denoised[i] + b * noise[i];
    }
  return GC_OK;
}

/* gc-schedule.c — training tables and the timestep/σ rules of each diffusers scheduler.
 *
 * Each rule below names the numpy expression it reproduces; rounding is part of the contract
 * (the UNet sees these exact timesteps), so every quirk that changes a value is kept, and the
 * one that would change the number of steps is not (see spaced_trailing). */
#include "gc-schedule.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>

enum { LCM_ORIGINAL_STEPS = 50 };

void
gc_train_schedule_init_sd (gc_train_schedule *train)
{
  /* torch.linspace(√0.00085, √0.012, 1000, dtype=float32): in float, the first half counted
   * up from the start and the second half down from the end. */
  const float start = (float) sqrt (0.00085);
  const float end = (float) sqrt (0.012);
  const float step = (end - start) / (float) (GC_TRAIN_STEPS - 1);
  /* torch.cumprod accumulates float tensors in double and rounds each prefix to float. */
  double product = 1.0;
  for (int t = 0; t < GC_TRAIN_STEPS; t++)
    {
      float root = t < GC_TRAIN_STEPS / 2 ? start + step * (float) t
                                          : end - step * (float) (GC_TRAIN_STEPS - 1 - t);
      float beta = root * root;
      product *= (double) (1.0f - beta);
      float alpha_bar = (float) product;
      float sigma = sqrtf ((1.0f - alpha_bar) / alpha_bar);
      train->alphas_cumprod[t] = alpha_bar;
      train->sigmas[t] = sigma;
      train->log_sigmas[t] = (float) log ((double) sigma);
    }
}

/* np.interp(t, arange(1000), sigmas): linear in t, clamped at both ends. */
static double
interpolate_sigma (const gc_train_schedule *train, double t)
{
  if (t <= 0.0)
    return train->sigmas[0];
  if (t >= GC_TRAIN_STEPS - 1)
    return train->sigmas[GC_TRAIN_STEPS - 1];
  int j = (int) floor (t);
  double lo = train->sigmas[j];
  double slope = (double) train->sigmas[j + 1] - lo;
  return slope * (t - j) + lo;
}

double
gc_sigma_to_timestep (const gc_train_schedule *train, double sigma)
{
  double log_sigma = log (fmax (sigma, 1e-10));
  /* The last training level at or below sigma, kept below the top so that there is a pair. */
  int low = 0;
  for (int t = 0; t < GC_TRAIN_STEPS; t++)
    if (log_sigma - (double) train->log_sigmas[t] >= 0.0)
      low = t;
  if (low > GC_TRAIN_STEPS - 2)
    low = GC_TRAIN_STEPS - 2;
  float lo = train->log_sigmas[low];
  float hi = train->log_sigmas[low + 1];
  /* numpy subtracts the two float32 table entries in float32. */
  float span = lo - hi;
  double w = ((double) lo - log_sigma) / (double) span;
  w = fmin (fmax (w, 0.0), 1.0);
  return (1.0 - w) * low + w * (low + 1);
}

/* np.linspace(a, b, n)[i]: i·step + a, the last point exactly b; a single point is a. */
static double
linspace_at (double a, double b, int n, int i)
{
  if (n == 1)
    return a;
  if (i == n - 1)
    return b;
  return i * ((b - a) / (n - 1)) + a;
}

/* (arange(0, n)·(1000 // n))[::-1][i] + 1: SD's "leading" spacing with steps_offset 1. */
static double
spaced_leading (int n, int i)
{
  int ratio = GC_TRAIN_STEPS / n;
  return (double) (n - 1 - i) * ratio + 1;
}

/* round(arange(1000, 0, −1000/n)) − 1. numpy's arange adds i·δ to the start, with δ taken
 * back from its second element; for some n (61, 103, …) it also yields an (n+1)-th element
 * near 0, which diffusers would turn into a step at t = −1: only the first n are used. */
static double
spaced_trailing (int n, int i)
{
  double delta = ((double) GC_TRAIN_STEPS + (-(double) GC_TRAIN_STEPS / n)) - GC_TRAIN_STEPS;
  return nearbyint (GC_TRAIN_STEPS + i * delta) - 1;
}

static double
spaced_timestep (gc_scheduler_kind scheduler, gc_spacing spacing, int n, int i)
{
  switch (spacing)
    {
    case GC_SPACING_LEADING:
      /* DPM spaces N + 1 points and drops the last (t = 1). */
      return scheduler == GC_SCHEDULER_DPM ? spaced_leading (n + 1, i) : spaced_leading (n, i);
    case GC_SPACING_TRAILING:
      return spaced_trailing (n, i);
    case GC_SPACING_LINSPACE:
      if (scheduler == GC_SCHEDULER_DPM) /* linspace(0, 999, N + 1).round()[::-1][:-1] */
        return nearbyint (linspace_at (0, GC_TRAIN_STEPS - 1, n + 1, n - i));
      if (scheduler == GC_SCHEDULER_EULER) /* linspace(0, 999, N, dtype=float32)[::-1], unrounded */
        return (float) linspace_at (0, GC_TRAIN_STEPS - 1, n, n - 1 - i);
      return nearbyint (linspace_at (0, GC_TRAIN_STEPS - 1, n, n - 1 - i));
    }
  assert (0 && "unknown spacing");
  return 0;
}

/* Karras et al.: σ evenly spaced in σ^(1/ρ) from σ_max to σ_min, ρ = 7. */
static double
karras_sigma (const gc_train_schedule *train, int n, int i)
{
  const double rho = 7.0;
  double max_inv_rho = pow ((double) train->sigmas[GC_TRAIN_STEPS - 1], 1.0 / rho);
  double min_inv_rho = pow ((double) train->sigmas[0], 1.0 / rho);
  double ramp = linspace_at (0.0, 1.0, n, i);
  return pow (max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho);
}

static double
exponential_sigma (const gc_train_schedule *train, int n, int i)
{
  return exp (linspace_at (log ((double) train->sigmas[GC_TRAIN_STEPS - 1]),
                           log ((double) train->sigmas[0]), n, i));
}

/* σ-first schedules (Karras, exponential): the σ, then the timestep that has it. */
static void
fill_from_sigmas (gc_schedule *out, const gc_train_schedule *train, gc_scheduler_kind scheduler,
                  gc_sigma_kind kind)
{
  int n = out->steps;
  for (int i = 0; i < n; i++)
    {
      double sigma = kind == GC_SIGMAS_KARRAS ? karras_sigma (train, n, i)
                                              : exponential_sigma (train, n, i);
      double t = gc_sigma_to_timestep (train, sigma);
      if (scheduler == GC_SCHEDULER_DPM) /* Karras rounds; exponential meets the int64 cast */
        t = kind == GC_SIGMAS_KARRAS ? nearbyint (t) : trunc (t);
      else
        t = (float) t;
      out->timesteps[i] = t;
      out->sigmas[i] = (float) sigma;
    }
}

static void
fill_spaced (gc_schedule *out, const gc_train_schedule *train, gc_scheduler_kind scheduler,
             gc_spacing spacing)
{
  int n = out->steps;
  for (int i = 0; i < n; i++)
    {
      double t = spaced_timestep (scheduler, spacing, n, i);
      out->timesteps[i] = t;
      out->sigmas[i] = (float) interpolate_sigma (train, t);
    }
}

/* DDIM steps from t to t − 1000/N whatever the spacing; before t = 0 lies ᾱ₀ itself. */
static void
fill_ddim_alphas (gc_schedule *out, const gc_train_schedule *train)
{
  int n = out->steps;
  for (int i = 0; i < n; i++)
    {
      int t = (int) out->timesteps[i];
      int prev = t - GC_TRAIN_STEPS / n;
      out->alphas[i] = train->alphas_cumprod[t];
      out->alphas_next[i] = train->alphas_cumprod[prev >= 0 ? prev : 0];
    }
}

/* LCM: of the 50 "original" timesteps 20k − 1 (k = 1 … int(50·strength)), from the top,
 * the ones at floor(linspace(0, count, N, endpoint=False)). */
static gc_status
fill_lcm (gc_schedule *out, const gc_train_schedule *train, double strength, gc_error *err)
{
  int n = out->steps;
  if (!(strength > 0.0 && strength <= 1.0))
    return gc_error_set (err, GC_ERR_INVALID, "strength %g is outside (0, 1]", strength);
  int count = (int) (LCM_ORIGINAL_STEPS * strength);
  if (count < n)
    return gc_error_set (err, GC_ERR_INVALID,
                         "LCM picks its %d steps from %d timesteps (50 × strength %g): "
                         "use at most %d steps", n, count, strength, count);
  int stride = GC_TRAIN_STEPS / LCM_ORIGINAL_STEPS;
  for (int i = 0; i < n; i++)
    {
      int index = (int) floor (i * ((double) count / n));
      int t = (count - index) * stride - 1;
      out->timesteps[i] = t;
      out->sigmas[i] = train->sigmas[t];
      out->alphas[i] = train->alphas_cumprod[t];
    }
  for (int i = 0; i < n; i++)
    out->alphas_next[i] = out->alphas[i + 1 < n ? i + 1 : i];
  return GC_OK;
}

/* The σ samplers step in σ; their ᾱ are only the same levels in the other form. */
static void
fill_alphas_from_sigmas (gc_schedule *out)
{
  for (int i = 0; i < out->steps; i++)
    {
      double sigma = out->sigmas[i], next = out->sigmas[i + 1];
      out->alphas[i] = (float) (1.0 / (1.0 + sigma * sigma));
      out->alphas_next[i] = (float) (1.0 / (1.0 + next * next));
    }
}

gc_status
gc_schedule_make (gc_schedule *out, const gc_train_schedule *train, gc_scheduler_kind scheduler,
                  gc_spacing spacing, gc_sigma_kind sigmas, int steps, double lcm_strength,
                  gc_error *err)
{
  if (steps < 1 || steps > GC_MAX_STEPS)
    return gc_error_set (err, GC_ERR_INVALID, "%d steps: the step count must be 1 to %d", steps,
                         GC_MAX_STEPS);
  bool sigma_first = sigmas != GC_SIGMAS_INTERPOLATED;
  if (sigma_first && (scheduler == GC_SCHEDULER_DDIM || scheduler == GC_SCHEDULER_LCM))
    return gc_error_set (err, GC_ERR_INVALID,
                         "Karras and exponential schedules need a sampler that steps in σ "
                         "(Euler, Euler a, Heun, DPM++ 2M), not DDIM or LCM");
  out->steps = steps;
  out->sigmas[steps] = 0.0f;
  if (scheduler == GC_SCHEDULER_LCM)
    return fill_lcm (out, train, lcm_strength, err);
  if (sigma_first)
    fill_from_sigmas (out, train, scheduler, sigmas);
  else
    fill_spaced (out, train, scheduler, spacing);
  if (scheduler == GC_SCHEDULER_DDIM)
    fill_ddim_alphas (out, train);
  else
    fill_alphas_from_sigmas (out);
  return GC_OK;
}

int
gc_schedule_first_step (int steps, double strength)
{
  int kept = (int) (steps * strength);
  if (kept > steps)
    kept = steps;
  return kept > 0 ? steps - kept : steps;
}

/* Samplers, checked against denoisers whose answers are known in closed form (no UNet needed):
 *
 *  - point mass: all data is one latent x₀, so the ideal model's x̂₀ is x₀ at every level and
 *    every sampler must end on x₀ (DDIM, which stops at ᾱ₀ rather than σ = 0, on
 *    √ᾱ₀·x₀ + √(1 − ᾱ₀)·ε: it keeps the ε of its first step exactly);
 *  - Gaussian data N(μ, s²): the probability-flow ODE has the exact solution
 *    x(σ) − μ ∝ √(s² + σ²), so the deterministic samplers must converge to it at their order
 *    (1 for Euler and DDIM, 2 for Heun and DPM++ 2M), and Euler a must sample N(μ, s²).
 * Plus the order and number of random draws (diffusers': initial noise first, then one per
 * step for Euler a and LCM), progress, cancellation and argument checks; and, with the
 * engine's UNet on the deterministic tiny checkpoints, the latents of diffusers' reference
 * pipelines (ref_tiny*.safetensors). */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "gc-checkpoint.h"
#include "gc-random-checkpoint.h"
#include "gc-safetensors.h"
#include "gc-sampler.h"
#include "gc-unet.h"
#include "gc-vae.h"

static gc_train_schedule train;

/* ᾱ of the level the sampler puts the model at for timestep t: the table at integer t,
 * log-linear σ between entries (the inverse of the fractional Karras/exponential timesteps). */
static double
alpha_bar_at (double t)
{
  if (t == floor (t))
    return train.alphas_cumprod[(int) t];
  int j = (int) floor (t);
  double w = t - j;
  double sigma = exp ((1 - w) * train.log_sigmas[j] + w * train.log_sigmas[j + 1]);
  return 1.0 / (1.0 + sigma * sigma);
}

/* A model that knows the data distribution: N(mu, s²) per element (s = 0: a point mass, mu
 * per element). Records what it was asked. */
typedef struct {
  const double *mu; /* [n] */
  double s;
  gc_prediction prediction;
  int64_t n;
  int calls;
  int record_call;  /* the call whose input is kept in recorded (−1: none) */
  float *recorded;  /* [n] */
  double recorded_t;
} ideal_model;

static gc_status
ideal_denoise (void *ctx, float *out, const float *x, double t, gc_error *err)
{
  ideal_model *m = ctx;
  double a = alpha_bar_at (t);
  double sigma2 = (1 - a) / a;
  for (int64_t i = 0; i < m->n; i++)
    {
      /* E[x₀ | x] in k-diffusion form x/√ᾱ = x₀ + σ·ε. */
      double xk = x[i] / sqrt (a);
      double x0 = m->mu[i] + m->s * m->s / (m->s * m->s + sigma2) * (xk - m->mu[i]);
      double eps = (x[i] - sqrt (a) * x0) / sqrt (1 - a);
      out[i] = (float) (m->prediction == GC_PREDICTION_EPSILON
                          ? eps : sqrt (a) * eps - sqrt (1 - a) * x0);
    }
  if (m->calls == m->record_call)
    {
      memcpy (m->recorded, x, (size_t) m->n * sizeof *x);
      m->recorded_t = t;
    }
  m->calls++;
  return GC_OK;
}

static bool
combination_valid (gc_sampler sampler, gc_schedule_type schedule)
{
  if (sampler == GC_SAMPLER_LCM)
    return schedule == GC_SCHEDULE_DEFAULT;
  if (sampler == GC_SAMPLER_DDIM)
    return schedule == GC_SCHEDULE_DEFAULT || schedule == GC_SCHEDULE_TRAILING;
  return true;
}

static double
max_abs_difference (const float *a, const double *b, int64_t n)
{
  double worst = 0;
  for (int64_t i = 0; i < n; i++)
    worst = fmax (worst, fabs (a[i] - b[i]));
  return worst;
}

enum { POINT_N = 64 };

static void
point_mass_case (gc_sampler sampler, gc_schedule_type schedule, gc_prediction prediction,
                 int steps, bool img2img)
{
  double x0[POINT_N];
  float init[POINT_N];
  for (int i = 0; i < POINT_N; i++)
    init[i] = (float) (x0[i] = sin (i * 0.7) * 1.5);
  ideal_model model = { .mu = x0, .prediction = prediction, .n = POINT_N, .record_call = -1 };
  gc_torch_rng rng, copy;
  gc_torch_rng_seed (&rng, 1234);
  copy = rng;
  gc_sample_params params = {
    .sampler = sampler, .schedule = schedule, .steps = steps, .prediction = prediction,
    .init = img2img ? init : NULL, .strength = 0.5, .rng = &rng,
  };
  float latent[POINT_N];
  gc_error err = { 0 };
  gc_status status = gc_sample (latent, POINT_N, &params, ideal_denoise, &model, NULL, NULL,
                                NULL, &err);
  if (status != GC_OK)
    g_error ("%s/%s: %s", gc_sampler_cli_name (sampler), gc_schedule_cli_name (schedule),
             err.message);

  /* DDIM keeps the ε of its first step: the noise itself for img2img, whose start lies on
   * √ᾱ·x₀ + √(1 − ᾱ)·noise; for text-to-image, which starts at the noise,
   * (noise − √ᾱ·x₀)/√(1 − ᾱ). */
  g_autofree gc_schedule *plan = g_new (gc_schedule, 1);
  int first;
  g_assert_cmpint (gc_sample_plan (plan, &first, &params, NULL), ==, GC_OK);
  double a = plan->alphas[first], a0 = train.alphas_cumprod[0];
  double want[POINT_N];
  float noise[POINT_N];
  gc_torch_randn (&copy, noise, POINT_N);
  for (int i = 0; i < POINT_N; i++)
    {
      double eps = img2img ? noise[i] : (noise[i] - sqrt (a) * x0[i]) / sqrt (1 - a);
      want[i] = sampler == GC_SAMPLER_DDIM ? sqrt (a0) * x0[i] + sqrt (1 - a0) * eps : x0[i];
    }
  double error = max_abs_difference (latent, want, POINT_N);
  if (error > 2e-4)
    g_error ("%s/%s/%s, %d steps%s: ends %g away from the analytic answer",
             gc_sampler_cli_name (sampler), gc_schedule_cli_name (schedule),
             prediction == GC_PREDICTION_V ? "v" : "epsilon", steps,
             img2img ? " (img2img)" : "", error);
}

static void
test_point_mass (void)
{
  for (int sampler = 0; sampler < GC_SAMPLER_COUNT; sampler++)
    for (int schedule = 0; schedule < GC_SCHEDULE_COUNT; schedule++)
      {
        if (!combination_valid (sampler, schedule))
          continue;
        for (int prediction = GC_PREDICTION_EPSILON; prediction <= GC_PREDICTION_V; prediction++)
          for (int img2img = 0; img2img <= 1; img2img++)
            {
              point_mass_case (sampler, schedule, prediction, 4, img2img);
              point_mass_case (sampler, schedule, prediction, 25, img2img);
            }
      }
}

/* Final error of a deterministic sampler against the exact ODE solution, Gaussian data. */
static double
gaussian_ode_error (gc_sampler sampler, gc_schedule_type schedule, int steps)
{
  enum { N = 64 };
  const double mu = 0.7, s = 0.5;
  double mus[N];
  for (int i = 0; i < N; i++)
    mus[i] = mu;
  ideal_model model = { .mu = mus, .s = s, .n = N, .record_call = -1 };
  gc_torch_rng rng, copy;
  gc_torch_rng_seed (&rng, 1);
  copy = rng;
  gc_sample_params params = { .sampler = sampler, .schedule = schedule, .steps = steps,
                              .rng = &rng };
  float latent[N];
  gc_error err = { 0 };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL, &err),
                   ==, GC_OK);
  g_autofree gc_schedule *plan = g_new (gc_schedule, 1);
  int first;
  g_assert_cmpint (gc_sample_plan (plan, &first, &params, &err), ==, GC_OK);

  /* Where the run starts and ends, in k-diffusion form x₀ + σ·ε. The σ samplers scale the
   * noise by init_σ (√(σ² + 1) with the default spacing); DPM++ 2M and DDIM start from the
   * noise as a VP sample. The last step to σ = 0 is a plain denoising (x = x̂₀) in every
   * sampler but DDIM, which ends at ᾱ₀: that step's error does not shrink with N, so the
   * exact answer includes it. */
  float noise[N];
  gc_torch_randn (&copy, noise, N);
  double start_sigma, scale, end_sigma, end_scale = 1;
  bool final_denoise = sampler != GC_SAMPLER_DDIM;
  if (sampler == GC_SAMPLER_DDIM)
    {
      double a = plan->alphas[0];
      start_sigma = sqrt ((1 - a) / a);
      scale = 1 / sqrt (a);
      end_sigma = train.sigmas[0];
      end_scale = sqrt (train.alphas_cumprod[0]);
    }
  else
    {
      start_sigma = plan->sigmas[0];
      scale = sampler == GC_SAMPLER_DPMPP_2M || schedule == GC_SCHEDULE_DEFAULT
                ? sqrt (start_sigma * start_sigma + 1) : start_sigma;
      end_sigma = plan->sigmas[plan->steps - 1];
    }
  double want[N];
  for (int i = 0; i < N; i++)
    {
      double x = mu + (noise[i] * scale - mu) * sqrt (s * s + end_sigma * end_sigma)
                        / sqrt (s * s + start_sigma * start_sigma);
      if (final_denoise)
        x = mu + s * s / (s * s + end_sigma * end_sigma) * (x - mu);
      want[i] = x * end_scale;
    }
  return max_abs_difference (latent, want, N);
}

static void
check_order (gc_sampler sampler, gc_schedule_type schedule, double min_order, double max_order)
{
  double coarse = gaussian_ode_error (sampler, schedule, 40);
  double fine = gaussian_ode_error (sampler, schedule, 80);
  double order = log2 (coarse / fine);
  if (g_test_verbose ())
    g_test_message ("%s/%s: error %.3g at 40 steps, %.3g at 80: order %.2f",
                    gc_sampler_cli_name (sampler), gc_schedule_cli_name (schedule), coarse, fine,
                    order);
  if (!(order >= min_order && order <= max_order && fine < 0.1))
    g_error ("%s/%s converges at order %.2f (errors %.3g, %.3g), expected %.1f to %.1f",
             gc_sampler_cli_name (sampler), gc_schedule_cli_name (schedule), order, coarse, fine,
             min_order, max_order);
}

static void
test_gaussian_ode_order (void)
{
  check_order (GC_SAMPLER_EULER, GC_SCHEDULE_KARRAS, 0.85, 1.2);
  check_order (GC_SAMPLER_EULER, GC_SCHEDULE_EXPONENTIAL, 0.85, 1.2);
  check_order (GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT, 0.85, 1.2);
  check_order (GC_SAMPLER_HEUN, GC_SCHEDULE_DEFAULT, 1.7, 2.5);
  check_order (GC_SAMPLER_HEUN, GC_SCHEDULE_KARRAS, 1.7, 2.5);
  check_order (GC_SAMPLER_DPMPP_2M, GC_SCHEDULE_KARRAS, 1.6, 2.5);
}

static void
test_ancestral_samples_data (void)
{
  /* Euler a on N(0.7, 0.5²) data, 16384 draws: the samples' mean and spread. */
  enum { N = 16384 };
  const double mu = 0.7, s = 0.5;
  static double mus[N];
  static float latent[N];
  for (int i = 0; i < N; i++)
    mus[i] = mu;
  ideal_model model = { .mu = mus, .s = s, .n = N, .record_call = -1 };
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 3);
  gc_sample_params params = { .sampler = GC_SAMPLER_EULER_A, .schedule = GC_SCHEDULE_KARRAS,
                              .steps = 80, .rng = &rng };
  gc_error err = { 0 };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL, &err),
                   ==, GC_OK);
  double mean = 0, var = 0;
  for (int i = 0; i < N; i++)
    mean += latent[i];
  mean /= N;
  for (int i = 0; i < N; i++)
    var += (latent[i] - mean) * (latent[i] - mean);
  double spread = sqrt (var / N);
  g_assert_cmpfloat_with_epsilon (mean, mu, 0.015);
  /* First order in the step: 80 steps reach about 96 % of s. */
  g_assert_cmpfloat (spread, >, 0.46);
  g_assert_cmpfloat (spread, <, 0.51);
}

/* The generator after a run stands where k draws of the latent size leave a fresh one. */
static void
assert_draws (const gc_torch_rng *after, uint64_t seed, int64_t numel, int k, const char *what)
{
  gc_torch_rng expect;
  gc_torch_rng_seed (&expect, seed);
  g_autofree float *scratch = g_new (float, numel);
  for (int i = 0; i < k; i++)
    gc_torch_randn (&expect, scratch, numel);
  gc_torch_rng got = *after;
  for (int i = 0; i < 8; i++)
    if (gc_torch_rng_u32 (&got) != gc_torch_rng_u32 (&expect))
      g_error ("%s: the generator is not %d draws of %" G_GINT64_FORMAT " values on", what, k,
               numel);
  g_assert_cmpint (got.has_cached_normal, ==, expect.has_cached_normal);
}

static void
test_noise_draws (void)
{
  enum { N = 256 }; /* the reference pipelines' [1, 4, 8, 8] */
  double x0[N] = { 0 };
  float init[N] = { 0 };
  for (int sampler = 0; sampler < GC_SAMPLER_COUNT; sampler++)
    for (int img2img = 0; img2img <= 1; img2img++)
      {
        ideal_model model = { .mu = x0, .n = N, .record_call = -1 };
        gc_torch_rng rng;
        gc_torch_rng_seed (&rng, 42);
        gc_sample_params params = { .sampler = sampler, .steps = 10, .rng = &rng,
                                    .init = img2img ? init : NULL, .strength = 0.5 };
        float latent[N];
        gc_error err = { 0 };
        g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL,
                                    &err), ==, GC_OK);
        /* img2img runs 5 of the 10 steps, LCM all 10 over a shorter range. */
        int steps_run = img2img && sampler != GC_SAMPLER_LCM ? 5 : 10;
        int draws = 1;
        if (sampler == GC_SAMPLER_EULER_A)
          draws += steps_run;
        else if (sampler == GC_SAMPLER_LCM)
          draws += steps_run - 1;
        g_autofree char *what = g_strdup_printf ("%s%s", gc_sampler_cli_name (sampler),
                                                 img2img ? " img2img" : "");
        assert_draws (&rng, 42, N, draws, what);
      }
}

static void
test_initial_noise_comes_first (void)
{
  /* DDIM's first model input is the generator's first draw itself (init_σ = 1). */
  enum { N = 256 };
  double x0[N] = { 0 };
  float recorded[N], latent[N], noise[N];
  ideal_model model = { .mu = x0, .n = N, .record_call = 0, .recorded = recorded };
  gc_torch_rng rng, copy;
  gc_torch_rng_seed (&rng, 42);
  copy = rng;
  gc_sample_params params = { .sampler = GC_SAMPLER_DDIM, .steps = 4, .rng = &rng };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL, NULL),
                   ==, GC_OK);
  gc_torch_randn (&copy, noise, N);
  g_assert_cmpmem (recorded, sizeof recorded, noise, sizeof noise);
  g_assert_cmpfloat (model.recorded_t, ==, 751);
}

static void
test_euler_ancestral_step (void)
{
  /* Two steps on a point mass: after the first, x = x₀ + (x − x₀)·σ_down/σ₀ + σ_up·z with the
   * second draw z; the model sees it scaled by 1/√(σ₁² + 1) at the second timestep. */
  enum { N = 64 };
  double x0[N];
  for (int i = 0; i < N; i++)
    x0[i] = cos (i * 0.3);
  float recorded[N], latent[N], noise[N], z[N];
  ideal_model model = { .mu = x0, .n = N, .record_call = 1, .recorded = recorded };
  gc_torch_rng rng, copy;
  gc_torch_rng_seed (&rng, 5);
  copy = rng;
  gc_sample_params params = { .sampler = GC_SAMPLER_EULER_A, .steps = 2, .rng = &rng };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL, NULL),
                   ==, GC_OK);
  gc_torch_randn (&copy, noise, N);
  gc_torch_randn (&copy, z, N);
  g_autofree gc_schedule *plan = g_new (gc_schedule, 1);
  int first;
  g_assert_cmpint (gc_sample_plan (plan, &first, &params, NULL), ==, GC_OK);
  double s0 = plan->sigmas[0], s1 = plan->sigmas[1];
  double up = sqrt (s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0));
  double down = sqrt (s1 * s1 - up * up);
  double want[N];
  for (int i = 0; i < N; i++)
    {
      double x = noise[i] * sqrt (s0 * s0 + 1); /* default spacing: init_σ = √(σ₀² + 1) */
      double next = x0[i] + (x - x0[i]) * down / s0 + up * z[i];
      want[i] = next / sqrt (s1 * s1 + 1);
    }
  g_assert_cmpfloat (max_abs_difference (recorded, want, N), <, 1e-5);
  g_assert_cmpfloat (model.recorded_t, ==, plan->timesteps[1]);
}

static void
test_lcm_step (void)
{
  /* Two LCM steps on a point mass: x̂₀ = c_out·x₀ + c_skip·x, renoised with the second draw at
   * the next timestep; the last step returns its x̂₀. */
  enum { N = 64 };
  double x0[N];
  for (int i = 0; i < N; i++)
    x0[i] = sin (i * 0.45);
  float latent[N], noise[N], z[N];
  ideal_model model = { .mu = x0, .n = N, .record_call = -1 };
  gc_torch_rng rng, copy;
  gc_torch_rng_seed (&rng, 9);
  copy = rng;
  gc_sample_params params = { .sampler = GC_SAMPLER_LCM, .steps = 2, .rng = &rng };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL, NULL),
                   ==, GC_OK);
  gc_torch_randn (&copy, noise, N);
  gc_torch_randn (&copy, z, N);
  const int t0 = 999, t1 = 499; /* 50 original timesteps, indices 0 and 25 */
  double a1 = train.alphas_cumprod[t1];
  double want[N];
  for (int i = 0; i < N; i++)
    {
      double x = noise[i];
      for (int step = 0; step < 2; step++)
        {
          double scaled = (step == 0 ? t0 : t1) * 10.0;
          double c_skip = 0.25 / (scaled * scaled + 0.25);
          double c_out = scaled / sqrt (scaled * scaled + 0.25);
          double denoised = c_out * x0[i] + c_skip * x;
          x = step == 0 ? sqrt (a1) * denoised + sqrt (1 - a1) * z[i] : denoised;
        }
      want[i] = x;
    }
  g_assert_cmpfloat (max_abs_difference (latent, want, N), <, 1e-5);
}

typedef struct {
  int calls;
  int last_step;
  int steps;
  int cancel_after;
  volatile int *cancel;
} progress_log;

static void
log_progress (void *ctx, int step, int steps, const float *denoised)
{
  progress_log *log = ctx;
  g_assert_nonnull (denoised);
  g_assert_cmpint (step, ==, log->calls);
  log->calls++;
  log->last_step = step;
  log->steps = steps;
  if (log->cancel && log->calls == log->cancel_after)
    *log->cancel = 1;
}

static void
test_progress (void)
{
  enum { N = 16 };
  double x0[N] = { 0 };
  for (int sampler = 0; sampler < GC_SAMPLER_COUNT; sampler++)
    {
      ideal_model model = { .mu = x0, .n = N, .record_call = -1 };
      progress_log log = { 0 };
      gc_torch_rng rng;
      gc_torch_rng_seed (&rng, 1);
      float init[N] = { 0 }, latent[N];
      gc_sample_params params = { .sampler = sampler, .steps = 6, .rng = &rng, .init = init,
                                  .strength = 0.5 };
      int expected = sampler == GC_SAMPLER_HEUN ? 5 : sampler == GC_SAMPLER_LCM ? 6 : 3;
      g_assert_cmpint (gc_sample_evaluations (&params), ==, expected);
      g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, log_progress, &log,
                                  NULL, NULL), ==, GC_OK);
      g_assert_cmpint (log.calls, ==, expected);
      g_assert_cmpint (model.calls, ==, expected);
      g_assert_cmpint (log.steps, ==, expected);
    }
}

static void
test_cancel (void)
{
  enum { N = 16 };
  double x0[N] = { 0 };
  volatile int cancel = 0;
  ideal_model model = { .mu = x0, .n = N, .record_call = -1 };
  progress_log log = { .cancel_after = 2, .cancel = &cancel };
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 1);
  float latent[N];
  gc_sample_params params = { .sampler = GC_SAMPLER_EULER, .steps = 10, .rng = &rng };
  gc_error err = { 0 };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, log_progress, &log,
                              &cancel, &err), ==, GC_ERR_CANCELLED);
  g_assert_cmpint (model.calls, ==, 2);
  g_assert_nonnull (strstr (err.message, "cancelled"));
}

static gc_status
failing_denoise (void *ctx, float *out, const float *x, double t, gc_error *err)
{
  bool with_message = *(bool *) ctx;
  if (with_message)
    return gc_error_set (err, GC_ERR_NOMEM, "the UNet ran out of memory");
  return GC_ERR_NOMEM;
}

static void
test_model_error (void)
{
  enum { N = 16 };
  float latent[N];
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 1);
  gc_sample_params params = { .sampler = GC_SAMPLER_DPMPP_2M, .steps = 5, .rng = &rng };
  gc_error err = { 0 };
  bool with_message = true;
  g_assert_cmpint (gc_sample (latent, N, &params, failing_denoise, &with_message, NULL, NULL,
                              NULL, &err), ==, GC_ERR_NOMEM);
  g_assert_cmpstr (err.message, ==, "the UNet ran out of memory");
  with_message = false;
  g_assert_cmpint (gc_sample (latent, N, &params, failing_denoise, &with_message, NULL, NULL,
                              NULL, &err), ==, GC_ERR_NOMEM);
  g_assert_nonnull (strstr (err.message, "timestep 999"));
}

static void
test_in_place_img2img (void)
{
  /* The init latent may be the output buffer itself. */
  enum { N = 32 };
  double x0[N];
  float latent[N];
  for (int i = 0; i < N; i++)
    latent[i] = (float) (x0[i] = 0.5 - i * 0.03);
  ideal_model model = { .mu = x0, .n = N, .record_call = -1 };
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 11);
  gc_sample_params params = { .sampler = GC_SAMPLER_EULER, .steps = 8, .rng = &rng,
                              .init = latent, .strength = 0.75 };
  g_assert_cmpint (gc_sample (latent, N, &params, ideal_denoise, &model, NULL, NULL, NULL, NULL),
                   ==, GC_OK);
  g_assert_cmpfloat (max_abs_difference (latent, x0, N), <, 1e-5);
}

static void
expect_invalid (gc_sample_params params, const char *fragment)
{
  float latent[4];
  double x0[4] = { 0 };
  ideal_model model = { .mu = x0, .n = 4, .record_call = -1 };
  gc_error err = { 0 };
  g_assert_cmpint (gc_sample (latent, 4, &params, ideal_denoise, &model, NULL, NULL, NULL, &err),
                   ==, GC_ERR_INVALID);
  if (!strstr (err.message, fragment))
    g_error ("message \"%s\" lacks \"%s\"", err.message, fragment);
  g_assert_cmpint (model.calls, ==, 0);
}

static void
test_invalid_requests (void)
{
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 0);
  float init[4] = { 0 };
  gc_sample_params base = { .sampler = GC_SAMPLER_EULER, .steps = 4, .rng = &rng };
  gc_sample_params p = base;
  p.sampler = GC_SAMPLER_DDIM;
  p.schedule = GC_SCHEDULE_KARRAS;
  expect_invalid (p, "DDIM");
  p = base;
  p.sampler = GC_SAMPLER_LCM;
  p.schedule = GC_SCHEDULE_TRAILING;
  expect_invalid (p, "LCM");
  p = base;
  p.steps = 0;
  expect_invalid (p, "step count");
  p = base;
  p.init = init;
  p.strength = 0.2; /* int(4·0.2) = 0 steps */
  expect_invalid (p, "keeps none");
  p.strength = 1.5;
  expect_invalid (p, "strength");
  p = base;
  p.rng = NULL;
  expect_invalid (p, "random generator");
  p = base;
  p.sampler = GC_SAMPLER_COUNT;
  expect_invalid (p, "unknown sampler");
}

static void
test_names (void)
{
  static const char *display[GC_SAMPLER_COUNT] = { "Euler", "Euler a", "DDIM", "DPM++ 2M",
                                                   "Heun", "LCM" };
  static const char *cli[GC_SAMPLER_COUNT] = { "euler", "euler_a", "ddim", "dpmpp_2m", "heun",
                                               "lcm" };
  for (int i = 0; i < GC_SAMPLER_COUNT; i++)
    {
      g_assert_cmpstr (gc_sampler_display_name (i), ==, display[i]);
      g_assert_cmpstr (gc_sampler_cli_name (i), ==, cli[i]);
      gc_sampler parsed = GC_SAMPLER_COUNT;
      g_assert_cmpint (gc_sampler_parse (&parsed, cli[i], NULL), ==, GC_OK);
      g_assert_cmpint (parsed, ==, i);
      parsed = GC_SAMPLER_COUNT;
      g_assert_cmpint (gc_sampler_parse (&parsed, display[i], NULL), ==, GC_OK);
      g_assert_cmpint (parsed, ==, i);
    }
  static const char *schedule_display[GC_SCHEDULE_COUNT] = { "Automatic", "Trailing", "Karras",
                                                             "Exponential" };
  static const char *schedule_cli[GC_SCHEDULE_COUNT] = { "default", "trailing", "karras",
                                                         "exponential" };
  for (int i = 0; i < GC_SCHEDULE_COUNT; i++)
    {
      g_assert_cmpstr (gc_schedule_display_name (i), ==, schedule_display[i]);
      g_assert_cmpstr (gc_schedule_cli_name (i), ==, schedule_cli[i]);
      gc_schedule_type parsed = GC_SCHEDULE_COUNT;
      g_assert_cmpint (gc_schedule_parse (&parsed, schedule_display[i], NULL), ==, GC_OK);
      g_assert_cmpint (parsed, ==, i);
    }
  gc_sampler sampler;
  gc_error err = { 0 };
  g_assert_cmpint (gc_sampler_parse (&sampler, "EULER_A", NULL), ==, GC_OK);
  g_assert_cmpint (sampler, ==, GC_SAMPLER_EULER_A);
  g_assert_cmpint (gc_sampler_parse (&sampler, "plms", &err), ==, GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "dpmpp_2m"));
  gc_schedule_type schedule;
  g_assert_cmpint (gc_schedule_parse (&schedule, NULL, &err), ==, GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "karras"));
}

/* ---- diffusers' reference pipelines ----
 * The guided model of those runs: the UNet on [x, x] with contexts [uncond, cond] and
 * out = ε_u + cfg·(ε_c − ε_u), or on x with cond alone when cfg is 1 (LCM). The timestep is
 * passed on exactly as the sampler gives it. */

typedef struct {
  gc_unet *unet;
  gc_arena *arena;
  const float *contexts; /* [2, 77, dim]: uncond, cond */
  int64_t context_size;  /* 77·dim */
  double cfg;
  float *pair_in;        /* [2, 4, 8, 8] */
  float *pair_out;
} guided_unet;

enum { REF_NUMEL = 4 * 8 * 8, REF_TOKENS = 77 };

static gc_status
guided_denoise (void *ctx, float *out, const float *x, double t, gc_error *err)
{
  guided_unet *g = ctx;
  double timesteps[2] = { t, t };
  gc_unet_cond cond = { .tokens = REF_TOKENS };
  if (g->cfg == 1.0)
    {
      cond.context = g->contexts + g->context_size;
      return gc_unet_forward (g->unet, g->arena, out, x, 1, 8, 8, timesteps, &cond, NULL, err);
    }
  memcpy (g->pair_in, x, REF_NUMEL * sizeof *x);
  memcpy (g->pair_in + REF_NUMEL, x, REF_NUMEL * sizeof *x);
  cond.context = g->contexts;
  gc_status status = gc_unet_forward (g->unet, g->arena, g->pair_out, g->pair_in, 2, 8, 8,
                                      timesteps, &cond, NULL, err);
  if (status != GC_OK)
    return status;
  for (int i = 0; i < REF_NUMEL; i++)
    out[i] = g->pair_out[i] + (float) g->cfg * (g->pair_out[REF_NUMEL + i] - g->pair_out[i]);
  return GC_OK;
}

typedef struct {
  const char *name;     /* pipe.<name>.latents */
  const char *reference;
  const char *text;     /* the file holding text.last_hidden, the contexts */
  const char *keys;     /* the checkpoint's key list */
  gc_sampler sampler;
  gc_schedule_type schedule;
  int steps;
  gc_prediction prediction;
  double cfg;
  double strength;      /* > 0: img2img from pipe.init_image */
  bool seeded;          /* noise from seed 42 (ref_tiny_rng) rather than pipe.noise */
} pipeline_case;

#define TINY "ref_tiny.safetensors", "ref_tiny.safetensors", "keys_tiny.json"
#define TINY_RNG "ref_tiny_rng.safetensors", "ref_tiny.safetensors", "keys_tiny.json"
#define TINY2 "ref_tiny2.safetensors", "ref_tiny2.safetensors", "keys_tiny2.json"

static const pipeline_case pipeline_cases[] = {
  { "ddim", TINY, GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT, 4, GC_PREDICTION_EPSILON, 7.5, 0, false },
  { "euler", TINY, GC_SAMPLER_EULER, GC_SCHEDULE_DEFAULT, 4, GC_PREDICTION_EPSILON, 7.5, 0,
    false },
  { "dpmpp2m_karras", TINY, GC_SAMPLER_DPMPP_2M, GC_SCHEDULE_KARRAS, 4, GC_PREDICTION_EPSILON,
    7.5, 0, false },
  { "img2img_ddim", TINY, GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT, 10, GC_PREDICTION_EPSILON, 7.5,
    0.6, false },
  { "euler_a", TINY_RNG, GC_SAMPLER_EULER_A, GC_SCHEDULE_DEFAULT, 4, GC_PREDICTION_EPSILON, 7.5,
    0, true },
  { "lcm", TINY_RNG, GC_SAMPLER_LCM, GC_SCHEDULE_DEFAULT, 4, GC_PREDICTION_EPSILON, 1.0, 0,
    true },
  { "sd2_ddim", TINY2, GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT, 4, GC_PREDICTION_V, 7.5, 0, false },
  { "sd2_euler", TINY2, GC_SAMPLER_EULER, GC_SCHEDULE_DEFAULT, 4, GC_PREDICTION_V, 7.5, 0,
    false },
};

static char *
test_data_path (const char *name)
{
  const char *dir = g_getenv ("GOUACHE_TEST_DATA");
  g_assert_nonnull (dir);
  return g_build_filename (dir, name, NULL);
}

static float *
load_floats (gc_safetensors *file, const char *name, int64_t expected)
{
  const gc_st_tensor *t = gc_safetensors_find (file, name);
  if (!t)
    g_error ("reference tensor %s is missing", name);
  g_assert_cmpint (t->dtype, ==, GC_DTYPE_F32);
  g_assert_cmpuint (t->nbytes, ==, expected * sizeof (float));
  float *values = g_new (float, expected);
  memcpy (values, t->data, t->nbytes);
  return values;
}

static double
relative_l2 (const float *got, const float *want, int64_t n)
{
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; i++)
    {
      diff += ((double) got[i] - want[i]) * ((double) got[i] - want[i]);
      norm += (double) want[i] * want[i];
    }
  return sqrt (diff / norm);
}

/* The clean init latent of img2img: 0.18215 · the VAE posterior mean of pipe.init_image. */
static void
encode_init_image (const gc_checkpoint *checkpoint, gc_arena *arena, gc_safetensors *reference,
                   float *init)
{
  gc_vae *vae = NULL;
  gc_error err = { 0 };
  if (gc_vae_load (&vae, checkpoint, &err) != GC_OK)
    g_error ("%s", err.message);
  g_autofree float *image = load_floats (reference, "pipe.init_image", 3 * 64 * 64);
  float logvar[REF_NUMEL];
  if (gc_vae_encode (vae, arena, init, logvar, image, 1, 64, 64, &err) != GC_OK)
    g_error ("%s", err.message);
  for (int i = 0; i < REF_NUMEL; i++)
    init[i] *= 0.18215f;
  gc_vae_free (vae);
}

static void
test_reference_pipeline (gconstpointer data)
{
  const pipeline_case *c = data;
  g_autofree char *dir = g_dir_make_tmp ("gc-sampler-XXXXXX", NULL);
  g_autofree char *model_path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *keys = test_data_path (c->keys);
  g_autofree char *reference_path = test_data_path (c->reference);
  g_autofree char *text_path = test_data_path (c->text);
  gc_error err = { 0 };
  gc_checkpoint *checkpoint = NULL;
  gc_unet *unet = NULL;
  gc_safetensors *reference = NULL, *text_reference = NULL;
  if (gc_random_checkpoint_write (keys, model_path, &err) != GC_OK
      || gc_checkpoint_open (&checkpoint, model_path, &err) != GC_OK
      || gc_unet_load (&unet, checkpoint, &err) != GC_OK
      || gc_safetensors_open (&reference, reference_path, &err) != GC_OK
      || gc_safetensors_open (&text_reference, text_path, &err) != GC_OK)
    g_error ("%s", err.message);
  gc_arena arena;
  gc_arena_init (&arena, 0);

  /* text.last_hidden rows: 0 is the prompt, 1 the empty negative prompt. */
  const gc_st_tensor *text = gc_safetensors_find (text_reference, "text.last_hidden");
  g_assert_nonnull (text);
  int64_t context_size = REF_TOKENS * text->shape[2];
  g_autofree float *contexts = g_new (float, 2 * context_size);
  const char *rows = text->data; /* may be unaligned */
  memcpy (contexts, rows + context_size * sizeof (float), context_size * sizeof *contexts);
  memcpy (contexts + context_size, rows, context_size * sizeof *contexts);
  float pair_in[2 * REF_NUMEL], pair_out[2 * REF_NUMEL];
  guided_unet model = { .unet = unet, .arena = &arena, .contexts = contexts,
                        .context_size = context_size, .cfg = c->cfg, .pair_in = pair_in,
                        .pair_out = pair_out };

  /* ref_tiny(2): the starting noise is pipe.noise. ref_tiny_rng: generator seeded 42, starting
   * noise drawn in float32, the steps' noise drawn by the float64 pipeline in float64. */
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 42);
  float noise[REF_NUMEL], init[REF_NUMEL], latent[REF_NUMEL];
  if (c->seeded)
    gc_torch_randn (&rng, noise, REF_NUMEL);
  else
    {
      g_autofree float *stored = load_floats (reference, "pipe.noise", REF_NUMEL);
      memcpy (noise, stored, sizeof noise);
    }
  if (c->strength > 0)
    encode_init_image (checkpoint, &arena, reference, init);
  gc_sample_params params = {
    .sampler = c->sampler, .schedule = c->schedule, .steps = c->steps,
    .prediction = c->prediction, .init = c->strength > 0 ? init : NULL,
    .strength = c->strength, .rng = &rng, .noise_dtype = GC_NOISE_F64, .noise = noise,
  };
  if (gc_sample (latent, REF_NUMEL, &params, guided_denoise, &model, NULL, NULL, NULL, &err)
      != GC_OK)
    g_error ("%s", err.message);

  const char *prefix = g_str_has_prefix (c->name, "sd2_") ? c->name + 4 : c->name;
  g_autofree char *name = g_strdup_printf ("pipe.%s.latents", prefix);
  g_autofree float *want = load_floats (reference, name, REF_NUMEL);
  double error = relative_l2 (latent, want, REF_NUMEL);
  if (g_test_verbose ())
    g_test_message ("%s: relative L2 error %.3g", c->name, error);
  /* The reference's tolerance for multi-step pipelines (the float32 engine reaches ~3e-6). */
  g_assert_cmpfloat (error, <=, 1e-3);

  gc_arena_free (&arena);
  gc_safetensors_close (text_reference);
  gc_safetensors_close (reference);
  gc_unet_free (unet);
  gc_checkpoint_close (checkpoint);
  g_remove (model_path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gc_train_schedule_init_sd (&train);
  g_test_add_func ("/core/sampler/names", test_names);
  g_test_add_func ("/core/sampler/invalid", test_invalid_requests);
  g_test_add_func ("/core/sampler/point-mass", test_point_mass);
  g_test_add_func ("/core/sampler/gaussian-ode-order", test_gaussian_ode_order);
  g_test_add_func ("/core/sampler/euler-a/samples-data", test_ancestral_samples_data);
  g_test_add_func ("/core/sampler/euler-a/step", test_euler_ancestral_step);
  g_test_add_func ("/core/sampler/lcm/step", test_lcm_step);
  g_test_add_func ("/core/sampler/noise/draw-count", test_noise_draws);
  g_test_add_func ("/core/sampler/noise/initial-first", test_initial_noise_comes_first);
  g_test_add_func ("/core/sampler/progress", test_progress);
  g_test_add_func ("/core/sampler/cancel", test_cancel);
  g_test_add_func ("/core/sampler/model-error", test_model_error);
  g_test_add_func ("/core/sampler/img2img-in-place", test_in_place_img2img);
  for (size_t i = 0; i < G_N_ELEMENTS (pipeline_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/core/sampler/reference-pipeline/%s",
                                               pipeline_cases[i].name);
      g_test_add_data_func (path, &pipeline_cases[i], test_reference_pipeline);
    }
  return g_test_run ();
}

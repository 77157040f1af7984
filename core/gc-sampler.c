/* gc-sampler.c — the entry point: checks, plan, starting latent, names. The per-sampler
 * loops are in gc-sampler-steps.c. */
#include "gc-sampler-private.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
  const char *display; /* A1111's name, written to image metadata */
  const char *cli;
  gc_scheduler_kind scheduler;
  gc_spacing default_spacing;
  gc_status (*run) (_gc_sample_run *run, gc_error *err);
} sampler_info;

static const sampler_info samplers[GC_SAMPLER_COUNT] = {
  [GC_SAMPLER_EULER] = { "Euler", "euler", GC_SCHEDULER_EULER, GC_SPACING_LEADING,
                         _gc_sample_euler },
  [GC_SAMPLER_EULER_A] = { "Euler a", "euler_a", GC_SCHEDULER_EULER, GC_SPACING_LEADING,
                           _gc_sample_euler_ancestral },
  [GC_SAMPLER_DDIM] = { "DDIM", "ddim", GC_SCHEDULER_DDIM, GC_SPACING_LEADING, _gc_sample_ddim },
  [GC_SAMPLER_DPMPP_2M] = { "DPM++ 2M", "dpmpp_2m", GC_SCHEDULER_DPM, GC_SPACING_LINSPACE,
                            _gc_sample_dpmpp_2m },
  [GC_SAMPLER_HEUN] = { "Heun", "heun", GC_SCHEDULER_EULER, GC_SPACING_LEADING, _gc_sample_heun },
  [GC_SAMPLER_LCM] = { "LCM", "lcm", GC_SCHEDULER_LCM, GC_SPACING_LEADING, _gc_sample_lcm },
};

static const struct {
  const char *display;
  const char *cli;
} schedules[GC_SCHEDULE_COUNT] = {
  [GC_SCHEDULE_DEFAULT] = { "Automatic", "default" },
  [GC_SCHEDULE_TRAILING] = { "Trailing", "trailing" },
  [GC_SCHEDULE_KARRAS] = { "Karras", "karras" },
  [GC_SCHEDULE_EXPONENTIAL] = { "Exponential", "exponential" },
};

const char *
gc_sampler_display_name (gc_sampler sampler)
{
  return (unsigned) sampler < GC_SAMPLER_COUNT ? samplers[sampler].display : "?";
}

const char *
gc_sampler_cli_name (gc_sampler sampler)
{
  return (unsigned) sampler < GC_SAMPLER_COUNT ? samplers[sampler].cli : "?";
}

gc_status
gc_sampler_parse (gc_sampler *out, const char *name, gc_error *err)
{
  for (int i = 0; i < GC_SAMPLER_COUNT; i++)
    if (name && (strcasecmp (name, samplers[i].cli) == 0
                 || strcasecmp (name, samplers[i].display) == 0))
      {
        *out = (gc_sampler) i;
        return GC_OK;
      }
  return gc_error_set (err, GC_ERR_INVALID,
                       "unknown sampler '%s' (choose euler, euler_a, ddim, dpmpp_2m, heun or lcm)",
                       name ? name : "");
}

const char *
gc_schedule_display_name (gc_schedule_type schedule)
{
  return (unsigned) schedule < GC_SCHEDULE_COUNT ? schedules[schedule].display : "?";
}

const char *
gc_schedule_cli_name (gc_schedule_type schedule)
{
  return (unsigned) schedule < GC_SCHEDULE_COUNT ? schedules[schedule].cli : "?";
}

gc_status
gc_schedule_parse (gc_schedule_type *out, const char *name, gc_error *err)
{
  for (int i = 0; i < GC_SCHEDULE_COUNT; i++)
    if (name && (strcasecmp (name, schedules[i].cli) == 0
                 || strcasecmp (name, schedules[i].display) == 0))
      {
        *out = (gc_schedule_type) i;
        return GC_OK;
      }
  return gc_error_set (err, GC_ERR_INVALID,
                       "unknown schedule '%s' (choose default, trailing, karras or exponential)",
                       name ? name : "");
}

static gc_status
check_params (const gc_sample_params *p, gc_error *err)
{
  if (!p || !p->rng)
    return gc_error_set (err, GC_ERR_INVALID, "sampling needs parameters and a random generator");
  if ((unsigned) p->sampler >= GC_SAMPLER_COUNT)
    return gc_error_set (err, GC_ERR_INVALID, "unknown sampler %d", (int) p->sampler);
  if ((unsigned) p->schedule >= GC_SCHEDULE_COUNT)
    return gc_error_set (err, GC_ERR_INVALID, "unknown schedule %d", (int) p->schedule);
  if (p->prediction != GC_PREDICTION_EPSILON && p->prediction != GC_PREDICTION_V)
    return gc_error_set (err, GC_ERR_INVALID, "unknown prediction type %d", (int) p->prediction);
  if (p->noise_dtype != GC_NOISE_F32 && p->noise_dtype != GC_NOISE_F64)
    return gc_error_set (err, GC_ERR_INVALID, "unknown noise dtype %d", (int) p->noise_dtype);
  const char *sampler = samplers[p->sampler].display;
  const char *schedule = schedules[p->schedule].display;
  if (p->sampler == GC_SAMPLER_LCM && p->schedule != GC_SCHEDULE_DEFAULT)
    return gc_error_set (err, GC_ERR_INVALID,
                         "LCM follows its own timesteps: the %s schedule does not apply to it",
                         schedule);
  if (p->sampler == GC_SAMPLER_DDIM
      && (p->schedule == GC_SCHEDULE_KARRAS || p->schedule == GC_SCHEDULE_EXPONENTIAL))
    return gc_error_set (err, GC_ERR_INVALID,
                         "%s steps between training timesteps and cannot follow the %s schedule: "
                         "use Euler, Euler a, Heun or DPM++ 2M for it", sampler, schedule);
  if (p->init && !(p->strength > 0.0 && p->strength <= 1.0))
    return gc_error_set (err, GC_ERR_INVALID, "img2img strength %g is outside (0, 1]",
                         p->strength);
  return GC_OK;
}

gc_status
gc_sample_plan (gc_schedule *schedule, int *first_step, const gc_sample_params *params,
                gc_error *err)
{
  gc_status status = check_params (params, err);
  if (status != GC_OK)
    return status;
  const sampler_info *info = &samplers[params->sampler];
  gc_spacing spacing = info->default_spacing;
  gc_sigma_kind kind = GC_SIGMAS_INTERPOLATED;
  if (params->schedule == GC_SCHEDULE_TRAILING)
    spacing = GC_SPACING_TRAILING;
  else if (params->schedule == GC_SCHEDULE_KARRAS)
    kind = GC_SIGMAS_KARRAS;
  else if (params->schedule == GC_SCHEDULE_EXPONENTIAL)
    kind = GC_SIGMAS_EXPONENTIAL;

  gc_train_schedule train;
  gc_train_schedule_init_sd (&train);
  bool img2img = params->init != NULL;
  double lcm_strength = img2img ? params->strength : 1.0;
  status = gc_schedule_make (schedule, &train, info->scheduler, spacing, kind, params->steps,
                             lcm_strength, err);
  if (status != GC_OK)
    return status;

  /* LCM has already folded the strength into its timesteps. */
  *first_step = img2img && info->scheduler != GC_SCHEDULER_LCM
                  ? gc_schedule_first_step (params->steps, params->strength) : 0;
  if (*first_step >= params->steps)
    return gc_error_set (err, GC_ERR_INVALID,
                         "strength %g keeps none of the %d steps: raise the strength or the steps",
                         params->strength, params->steps);
  return GC_OK;
}

static int
evaluations_of (gc_sampler sampler, int steps_run)
{
  return sampler == GC_SAMPLER_HEUN ? 2 * steps_run - 1 : steps_run;
}

int
gc_sample_evaluations (const gc_sample_params *params)
{
  gc_schedule *schedule = malloc (sizeof *schedule);
  int first = 0, count = 0;
  if (schedule && gc_sample_plan (schedule, &first, params, NULL) == GC_OK)
    count = evaluations_of (params->sampler, schedule->steps - first);
  free (schedule);
  return count;
}

gc_status
_gc_sample_evaluate (_gc_sample_run *run, const float *input, double t, gc_error *err)
{
  if (run->cancel && *run->cancel)
    return gc_error_set (err, GC_ERR_CANCELLED, "sampling cancelled at evaluation %d of %d",
                         run->evaluation + 1, run->evaluations);
  gc_error_clear (err);
  gc_status status = run->denoise (run->denoise_ctx, run->model_out, input, t, err);
  if (status != GC_OK && (!err || err->code != status))
    gc_error_set (err, status, "the model failed at timestep %g", t);
  return status;
}

void
_gc_sample_draw_noise (_gc_sample_run *run, float *out)
{
  if (run->params->noise_dtype == GC_NOISE_F64)
    gc_torch_randn_f64 (run->params->rng, out, run->n);
  else
    gc_torch_randn (run->params->rng, out, run->n);
}

void
_gc_sample_report (_gc_sample_run *run)
{
  if (run->progress)
    run->progress (run->progress_ctx, run->evaluation, run->evaluations, run->denoised);
  run->evaluation++;
}

/* The σ samplers' initial noise scale, diffusers' init_noise_sigma: σ_max, or √(σ_max² + 1)
 * with "leading" spacing (SD's configs), a quirk that every diffusers user's seed relies on. */
static float
initial_noise_scale (const gc_sample_params *p, const gc_schedule *s)
{
  if (samplers[p->sampler].scheduler != GC_SCHEDULER_EULER)
    return 1.0f;
  float sigma_max = s->sigmas[0];
  if (p->schedule == GC_SCHEDULE_DEFAULT)
    return sqrtf (sigma_max * sigma_max + 1.0f);
  return sigma_max;
}

/* The first draw from the generator is the noise, for text-to-image and img2img alike. */
static void
start_latent (_gc_sample_run *run)
{
  const gc_sample_params *p = run->params;
  const gc_schedule *s = run->schedule;
  float *noise = run->model_in;
  if (p->noise)
    memcpy (noise, p->noise, (size_t) run->n * sizeof *noise);
  else
    _gc_sample_draw_noise (run, noise);
  if (!p->init)
    {
      float scale = initial_noise_scale (p, s);
      for (int64_t i = 0; i < run->n; i++)
        run->x[i] = noise[i] * scale;
      return;
    }
  gc_scheduler_kind scheduler = samplers[p->sampler].scheduler;
  float sigma = s->sigmas[run->first];
  if (scheduler == GC_SCHEDULER_EULER)
    {
      for (int64_t i = 0; i < run->n; i++)
        run->x[i] = p->init[i] + noise[i] * sigma;
      return;
    }
  /* DDIM and LCM noise with the training ᾱ of the timestep, DPM with the α, σ of its σ. */
  float a, b;
  if (scheduler == GC_SCHEDULER_DPM)
    {
      a = 1.0f / sqrtf (sigma * sigma + 1.0f);
      b = sigma * a;
    }
  else
    {
      a = sqrtf (s->alphas[run->first]);
      b = sqrtf (1.0f - s->alphas[run->first]);
    }
  for (int64_t i = 0; i < run->n; i++)
    run->x[i] = a * p->init[i] + b * noise[i];
}

enum { WORK_BUFFERS = 5 };

gc_status
gc_sample (float *latent, int64_t numel, const gc_sample_params *params, gc_denoise_fn denoise,
           void *denoise_ctx, gc_progress_fn progress, void *progress_ctx,
           const volatile int *cancel, gc_error *err)
{
  if (!latent || numel <= 0 || !denoise)
    return gc_error_set (err, GC_ERR_INVALID, "sampling needs a latent and a model callback");
  if ((uint64_t) numel > SIZE_MAX / sizeof (float) / WORK_BUFFERS)
    return gc_error_set (err, GC_ERR_NOMEM, "a latent of %lld values is too large",
                         (long long) numel);
  gc_schedule *schedule = malloc (sizeof *schedule);
  float *work = malloc ((size_t) numel * WORK_BUFFERS * sizeof *work);
  gc_status status = GC_OK;
  int first = 0;
  if (!schedule || !work)
    status = gc_error_set (err, GC_ERR_NOMEM, "no memory for sampling buffers (%lld values)",
                           (long long) numel * WORK_BUFFERS);
  else
    status = gc_sample_plan (schedule, &first, params, err);
  if (status == GC_OK)
    {
      size_t n = (size_t) numel;
      _gc_sample_run run = {
        .params = params,
        .schedule = schedule,
        .first = first,
        .n = numel,
        .x = latent,
        .model_in = work,
        .model_out = work + n,
        .denoised = work + 2 * n,
        .saved = work + 3 * n,
        .slope = work + 4 * n,
        .denoise = denoise,
        .denoise_ctx = denoise_ctx,
        .progress = progress,
        .progress_ctx = progress_ctx,
        .cancel = cancel,
        .evaluations = evaluations_of (params->sampler, schedule->steps - first),
      };
      start_latent (&run);
      status = samplers[params->sampler].run (&run, err);
    }
  free (work);
  free (schedule);
  return status;
}

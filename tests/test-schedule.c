/* Noise schedules: the timesteps the UNet sees and the σ each step uses must be diffusers'
 * values to the bit (ref_tiny*.safetensors hold them for the reference pipelines). */
#include <glib.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "gc-safetensors.h"
#include "gc-sampler.h"
#include "gc-schedule.h"

static gc_train_schedule train;

static gc_safetensors *
open_reference (const char *file_name)
{
  const char *dir = g_getenv ("GOUACHE_TEST_DATA");
  g_assert_nonnull (dir);
  g_autofree char *path = g_build_filename (dir, file_name, NULL);
  gc_safetensors *file = NULL;
  gc_error err = { 0 };
  if (gc_safetensors_open (&file, path, &err) != GC_OK)
    g_error ("%s: %s", path, err.message);
  return file;
}

static float *
load_floats (gc_safetensors *file, const char *name, int64_t *count)
{
  const gc_st_tensor *t = gc_safetensors_find (file, name);
  if (!t)
    g_error ("reference tensor %s is missing", name);
  g_assert_cmpint (t->dtype, ==, GC_DTYPE_F32);
  *count = (int64_t) (t->nbytes / sizeof (float));
  float *values = g_new (float, *count);
  memcpy (values, t->data, t->nbytes);
  return values;
}

typedef struct {
  const char *file;
  const char *prefix;   /* pipe.<name> */
  gc_sampler sampler;
  gc_schedule_type schedule;
  int steps;
  double strength;      /* > 0: img2img */
  bool has_sigmas;
} reference_case;

static const reference_case reference_cases[] = {
  { "ref_tiny.safetensors", "pipe.ddim", GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT, 4, 0, false },
  { "ref_tiny.safetensors", "pipe.euler", GC_SAMPLER_EULER, GC_SCHEDULE_DEFAULT, 4, 0, true },
  { "ref_tiny.safetensors", "pipe.dpmpp2m_karras", GC_SAMPLER_DPMPP_2M, GC_SCHEDULE_KARRAS, 4, 0,
    true },
  { "ref_tiny.safetensors", "pipe.img2img_ddim", GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT, 10, 0.6,
    false },
  { "ref_tiny_rng.safetensors", "pipe.euler_a", GC_SAMPLER_EULER_A, GC_SCHEDULE_DEFAULT, 4, 0,
    false },
  { "ref_tiny_rng.safetensors", "pipe.lcm", GC_SAMPLER_LCM, GC_SCHEDULE_DEFAULT, 4, 0, false },
};

/* The plan gc_sample follows reproduces each reference pipeline's timesteps (the ones run) and
 * σ (the whole schedule, final 0 included). */
static void
test_reference_case (gconstpointer data)
{
  const reference_case *c = data;
  gc_safetensors *file = open_reference (c->file);
  static const float zero_init[1];
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 0);
  gc_sample_params params = {
    .sampler = c->sampler,
    .schedule = c->schedule,
    .steps = c->steps,
    .init = c->strength > 0 ? zero_init : NULL,
    .strength = c->strength,
    .rng = &rng,
  };
  g_autofree gc_schedule *schedule = g_new (gc_schedule, 1);
  int first = -1;
  gc_error err = { 0 };
  g_assert_cmpint (gc_sample_plan (schedule, &first, &params, &err), ==, GC_OK);

  g_autofree char *timesteps_name = g_strconcat (c->prefix, ".timesteps", NULL);
  int64_t count;
  g_autofree float *timesteps = load_floats (file, timesteps_name, &count);
  g_assert_cmpint (count, ==, schedule->steps - first);
  for (int64_t i = 0; i < count; i++)
    g_assert_cmpfloat (schedule->timesteps[first + i], ==, timesteps[i]);

  if (c->has_sigmas)
    {
      g_autofree char *sigmas_name = g_strconcat (c->prefix, ".sigmas", NULL);
      g_autofree float *sigmas = load_floats (file, sigmas_name, &count);
      g_assert_cmpint (count, ==, schedule->steps + 1);
      for (int64_t i = 0; i < count; i++)
        g_assert_cmpfloat (schedule->sigmas[i], ==, sigmas[i]);
    }
  gc_safetensors_close (file);
}

static void
test_training_table (void)
{
  /* Bit-exact anchors from diffusers' float32 tables (the first and last σ of
   * pipe.dpmpp2m_karras.sigmas); ᾱ falls strictly, σ rises strictly. */
  g_assert_cmpfloat (train.sigmas[0], ==, 0.029167532920837402f);
  g_assert_cmpfloat (train.sigmas[GC_TRAIN_STEPS - 1], ==, 14.614646911621094f);
  for (int t = 1; t < GC_TRAIN_STEPS; t++)
    {
      g_assert_cmpfloat (train.alphas_cumprod[t], <, train.alphas_cumprod[t - 1]);
      g_assert_cmpfloat (train.sigmas[t], >, train.sigmas[t - 1]);
    }
}

static void
test_sigma_to_timestep_inverts_table (void)
{
  for (int t = 0; t < GC_TRAIN_STEPS; t += 37)
    g_assert_cmpfloat_with_epsilon (gc_sigma_to_timestep (&train, train.sigmas[t]), t, 1e-3);
  /* Between two entries: log-linear interpolation. */
  double mid = exp (0.5 * (train.log_sigmas[500] + train.log_sigmas[501]));
  g_assert_cmpfloat_with_epsilon (gc_sigma_to_timestep (&train, mid), 500.5, 1e-3);
  /* Beyond the table: clamped. */
  g_assert_cmpfloat (gc_sigma_to_timestep (&train, 1e3), ==, GC_TRAIN_STEPS - 1);
  g_assert_cmpfloat (gc_sigma_to_timestep (&train, 1e-5), ==, 0);
}

static void
make (gc_schedule *s, gc_scheduler_kind scheduler, gc_spacing spacing, gc_sigma_kind kind,
      int steps)
{
  gc_error err = { 0 };
  if (gc_schedule_make (s, &train, scheduler, spacing, kind, steps, 1.0, &err) != GC_OK)
    g_error ("schedule of %d steps: %s", steps, err.message);
}

static void
test_spacings (void)
{
  g_autofree gc_schedule *s = g_new (gc_schedule, 1);
  /* Trailing with 3 steps: round(1000, 666.7, 333.3) − 1; DDIM still steps by 1000 // 3. */
  make (s, GC_SCHEDULER_DDIM, GC_SPACING_TRAILING, GC_SIGMAS_INTERPOLATED, 3);
  g_assert_cmpfloat (s->timesteps[0], ==, 999);
  g_assert_cmpfloat (s->timesteps[1], ==, 666);
  g_assert_cmpfloat (s->timesteps[2], ==, 332);
  g_assert_cmpfloat (s->alphas_next[1], ==, train.alphas_cumprod[333]);
  g_assert_cmpfloat (s->alphas_next[2], ==, train.alphas_cumprod[0]);
  /* DPM's linspace: 5 points over [0, 999], the last dropped; 499.5 rounds to even. */
  make (s, GC_SCHEDULER_DPM, GC_SPACING_LINSPACE, GC_SIGMAS_INTERPOLATED, 4);
  const double dpm[4] = { 999, 749, 500, 250 };
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (s->timesteps[i], ==, dpm[i]);
  /* DPM's leading: 1000 // 5 = 200 apart, plus 1. */
  make (s, GC_SCHEDULER_DPM, GC_SPACING_LEADING, GC_SIGMAS_INTERPOLATED, 4);
  g_assert_cmpfloat (s->timesteps[0], ==, 801);
  g_assert_cmpfloat (s->timesteps[3], ==, 201);
  /* Euler's linspace keeps fractional timesteps and interpolates σ between table entries. */
  make (s, GC_SCHEDULER_EULER, GC_SPACING_LINSPACE, GC_SIGMAS_INTERPOLATED, 3);
  g_assert_cmpfloat (s->timesteps[1], ==, 499.5);
  double between = 0.5 * ((double) train.sigmas[499] + train.sigmas[500]);
  g_assert_cmpfloat (s->sigmas[1], ==, (float) between);
}

/* For every step count, every reachable schedule falls strictly in σ from its first step to 0,
 * stays within the training range, and (trailing) has exactly N steps. */
static void
test_all_step_counts (void)
{
  static const struct {
    gc_scheduler_kind scheduler;
    gc_spacing spacing;
    gc_sigma_kind kind;
  } kinds[] = {
    { GC_SCHEDULER_DDIM, GC_SPACING_LEADING, GC_SIGMAS_INTERPOLATED },
    { GC_SCHEDULER_DDIM, GC_SPACING_TRAILING, GC_SIGMAS_INTERPOLATED },
    { GC_SCHEDULER_EULER, GC_SPACING_LEADING, GC_SIGMAS_INTERPOLATED },
    { GC_SCHEDULER_EULER, GC_SPACING_TRAILING, GC_SIGMAS_INTERPOLATED },
    { GC_SCHEDULER_EULER, GC_SPACING_LINSPACE, GC_SIGMAS_KARRAS },
    { GC_SCHEDULER_EULER, GC_SPACING_LINSPACE, GC_SIGMAS_EXPONENTIAL },
    { GC_SCHEDULER_DPM, GC_SPACING_LINSPACE, GC_SIGMAS_INTERPOLATED },
    { GC_SCHEDULER_DPM, GC_SPACING_TRAILING, GC_SIGMAS_INTERPOLATED },
    { GC_SCHEDULER_DPM, GC_SPACING_LINSPACE, GC_SIGMAS_KARRAS },
    { GC_SCHEDULER_DPM, GC_SPACING_LINSPACE, GC_SIGMAS_EXPONENTIAL },
  };
  g_autofree gc_schedule *s = g_new (gc_schedule, 1);
  for (size_t k = 0; k < G_N_ELEMENTS (kinds); k++)
    for (int n = 1; n <= GC_MAX_STEPS; n++)
      {
        make (s, kinds[k].scheduler, kinds[k].spacing, kinds[k].kind, n);
        g_assert_cmpint (s->steps, ==, n);
        g_assert_cmpfloat (s->sigmas[n], ==, 0.0f);
        for (int i = 0; i < n; i++)
          {
            g_assert_cmpfloat (s->timesteps[i], >=, 0);
            g_assert_cmpfloat (s->timesteps[i], <=, GC_TRAIN_STEPS - 1);
            g_assert_cmpfloat (s->sigmas[i], >, s->sigmas[i + 1]);
          }
      }
}

static void
test_lcm (void)
{
  g_autofree gc_schedule *s = g_new (gc_schedule, 1);
  gc_error err = { 0 };
  /* img2img at strength 0.6: 30 of the 50 original timesteps, 4 picked at 0, 7.5, 15, 22.5. */
  g_assert_cmpint (gc_schedule_make (s, &train, GC_SCHEDULER_LCM, GC_SPACING_LEADING,
                                     GC_SIGMAS_INTERPOLATED, 4, 0.6, &err), ==, GC_OK);
  const double want[4] = { 599, 459, 299, 159 };
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (s->timesteps[i], ==, want[i]);
  g_assert_cmpfloat (s->alphas_next[0], ==, train.alphas_cumprod[459]);
  /* More steps than original timesteps. */
  g_assert_cmpint (gc_schedule_make (s, &train, GC_SCHEDULER_LCM, GC_SPACING_LEADING,
                                     GC_SIGMAS_INTERPOLATED, 31, 0.6, &err), ==, GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "at most 30 steps"));
}

static void
test_invalid (void)
{
  g_autofree gc_schedule *s = g_new (gc_schedule, 1);
  gc_error err = { 0 };
  g_assert_cmpint (gc_schedule_make (s, &train, GC_SCHEDULER_EULER, GC_SPACING_LEADING,
                                     GC_SIGMAS_INTERPOLATED, 0, 1, &err), ==, GC_ERR_INVALID);
  g_assert_cmpint (gc_schedule_make (s, &train, GC_SCHEDULER_EULER, GC_SPACING_LEADING,
                                     GC_SIGMAS_INTERPOLATED, GC_MAX_STEPS + 1, 1, &err),
                   ==, GC_ERR_INVALID);
  g_assert_cmpint (gc_schedule_make (s, &train, GC_SCHEDULER_DDIM, GC_SPACING_LEADING,
                                     GC_SIGMAS_KARRAS, 10, 1, &err), ==, GC_ERR_INVALID);
}

static void
test_first_step (void)
{
  /* diffusers' get_timesteps: int(steps·strength) steps run. */
  g_assert_cmpint (gc_schedule_first_step (10, 0.6), ==, 4);
  g_assert_cmpint (gc_schedule_first_step (20, 1.0), ==, 0);
  g_assert_cmpint (gc_schedule_first_step (4, 0.3), ==, 3);
  g_assert_cmpint (gc_schedule_first_step (4, 0.2), ==, 4); /* nothing left */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gc_train_schedule_init_sd (&train);
  for (size_t i = 0; i < G_N_ELEMENTS (reference_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/core/schedule/reference/%s",
                                               reference_cases[i].prefix + strlen ("pipe."));
      g_test_add_data_func (path, &reference_cases[i], test_reference_case);
    }
  g_test_add_func ("/core/schedule/training-table", test_training_table);
  g_test_add_func ("/core/schedule/sigma-to-timestep", test_sigma_to_timestep_inverts_table);
  g_test_add_func ("/core/schedule/spacings", test_spacings);
  g_test_add_func ("/core/schedule/all-step-counts", test_all_step_counts);
  g_test_add_func ("/core/schedule/lcm", test_lcm);
  g_test_add_func ("/core/schedule/invalid", test_invalid);
  g_test_add_func ("/core/schedule/first-step", test_first_step);
  return g_test_run ();
}

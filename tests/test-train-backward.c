/* The UNet's backward pass against finite differences, through the whole tiny model.
 *
 * The model is the tiny random checkpoint written with float32 weights: with fp16 weights the
 * styles keep each merged weight rounded to fp16 after its first use (gc-styles.h), which the
 * backward's recomputation then sees, a rounding of about 5e-4 of the weight that blurs the
 * comparison with finite differences (which always see exact merges) by a few percent on
 * this tiny, noisy model.
 *
 * A LoRA of rank 2 sits on every linear and convolution weight of the UNet (attention,
 * feed-forward, projections, ResBlock convolutions and time projections, down/upsampling,
 * conv_in/conv_out, the time-embedding MLP), with both factors non-zero so that every
 * gradient path carries signal. The loss is L = Σ out·R for a fixed random R, summed in
 * double; dL/d out = R. The analytic gradients of a sample of LoRA parameters in every module,
 * and of the input latent and the text context, must match central differences; checkpointed
 * and fully recorded backwards must agree; the training forward must give the inference
 * output. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-model.h"
#include "gc-random-checkpoint.h"
#include "gc-rng.h"
#include "gc-threads.h"
#include "gc-train-lora.h"
#include "gc-unet.h"

enum { BATCH = 2, LH = 8, LW = 8, TOKENS = 77 };

typedef struct {
  gc_model *model;
  gc_unet *unet;
  gc_train_lora *lora;
  int64_t channels, out_channels, context_dim;
  float *x, *context, *r, *out;
  double timesteps[BATCH];
  gc_unet_cond cond;
} fixture;

static char *model_path;

/* The tiny checkpoint's key list with F32 in place of F16, written by the generator that makes
 * the tiny model (same names, shapes and values up to the dtype's rounding). */
static void
write_f32_model (const char *dir)
{
  g_autofree char *keys = g_build_filename (g_getenv ("GOUACHE_TEST_DATA"), "keys_tiny.json", NULL);
  g_autofree char *json = NULL;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (keys, &json, NULL, &error))
    g_error ("%s", error->message);
  g_auto (GStrv) parts = g_strsplit (json, "\"F16\"", -1);
  g_autofree char *f32 = g_strjoinv ("\"F32\"", parts);
  g_autofree char *f32_keys = g_build_filename (dir, "keys.json", NULL);
  model_path = g_build_filename (dir, "tiny32.safetensors", NULL);
  gc_error err = { 0 };
  if (!g_file_set_contents (f32_keys, f32, -1, &error))
    g_error ("%s", error->message);
  if (gc_random_checkpoint_write (f32_keys, model_path, &err))
    g_error ("%s", err.message);
  g_remove (f32_keys);
}

static gc_model *
open_model (void)
{
  g_autofree char *vocab = g_build_filename (g_getenv ("GOUACHE_DATA_DIR"),
                                             "bpe_simple_vocab_16e6.txt.gz", NULL);
  gc_model *m;
  gc_error err = { 0 };
  if (gc_model_open (&m, model_path, vocab, &err))
    g_error ("%s", err.message);
  return m;
}

static void
fill_normal (gc_torch_rng *rng, float *x, int64_t n, float scale)
{
  gc_torch_randn (rng, x, n);
  for (int64_t i = 0; i < n; i++)
    x[i] *= scale;
}

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  gc_threads_set (2);
  f->model = open_model ();
  f->unet = gc_model_unet (f->model);
  const gc_unet_config *cfg = gc_unet_get_config (f->unet);
  f->channels = cfg->in_channels;
  f->out_channels = cfg->out_channels;
  f->context_dim = cfg->context_dim;
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, 1234);
  gc_error err = { 0 };
  if (gc_train_lora_new (&f->lora, f->model, GC_TRAIN_TARGET_ALL, 2, 4.0, &rng, &err))
    g_error ("%s", err.message);
  /* both factors non-zero: up of the same size as down's kohya initialisation */
  float *p = gc_train_lora_params (f->lora);
  for (size_t i = 0; i < gc_train_lora_module_count (f->lora); i++)
    {
      int64_t at, out, n;
      gc_train_lora_module_layout (f->lora, i, &at, &out, &n);
      fill_normal (&rng, p + at, out * 2, 0.5f / sqrtf ((float) n));
    }
  int64_t xn = BATCH * f->channels * LH * LW, on = BATCH * f->out_channels * LH * LW;
  f->x = g_new (float, xn);
  f->context = g_new (float, BATCH * TOKENS * f->context_dim);
  f->r = g_new (float, on);
  f->out = g_new (float, on);
  fill_normal (&rng, f->x, xn, 1);
  fill_normal (&rng, f->context, BATCH * TOKENS * f->context_dim, 1);
  fill_normal (&rng, f->r, on, 1);
  f->timesteps[0] = 999, f->timesteps[1] = 37;
  f->cond = (gc_unet_cond) { f->context, TOKENS, NULL, NULL, NULL };
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  gc_train_lora_free (f->lora);
  gc_model_free (f->model);
  g_free (f->x), g_free (f->context), g_free (f->r), g_free (f->out);
}

/* The styles keep each merged weight after its first use: the factors changed, so the next
 * pass merges again. */
static void
factors_changed (fixture *f)
{
  gc_styles_release (gc_model_styles (f->model));
}

/* L = Σ out·R in double */
static double
loss (fixture *f)
{
  gc_error err = { 0 };
  factors_changed (f);
  if (gc_unet_forward (f->unet, gc_model_scratch (f->model), f->out, f->x, BATCH, LH, LW,
                       f->timesteps, &f->cond, NULL, &err))
    g_error ("%s", err.message);
  double sum = 0;
  for (int64_t i = 0; i < BATCH * f->out_channels * LH * LW; i++)
    sum += (double) f->out[i] * f->r[i];
  return sum;
}

/* The analytic gradients (LoRA parameters into the LoRA's gradient vector). */
static void
backward (fixture *f, bool checkpointing, float *d_x, float *d_context)
{
  gc_error err = { 0 };
  gc_unet_tape *tape;
  gc_train_lora_zero_grads (f->lora);
  factors_changed (f);
  if (gc_unet_train_forward (f->unet, gc_model_scratch (f->model), &tape, f->out, f->x, BATCH, LH,
                             LW, f->timesteps, &f->cond, checkpointing, NULL, &err)
      || gc_unet_backward (tape, f->r, d_x, d_context, gc_train_lora_sink (f->lora), NULL, &err))
    g_error ("%s", err.message);
}

/* The derivative of L along direction v[count] at x by central differences,
 * D(h) = (L(x + hv) − L(x − hv)) / 2h, Richardson-extrapolated: (4·D(h/2) − D(h)) / 3 cancels
 * the h² term. Single elements are too weak a signal next to the float32 rounding of a whole
 * UNet pass (≈ 1e-5 of L, ≈ 1e-3 after dividing by 2h); a random ±1 direction over a whole
 * module sums the gradients of all its elements. */
static double
central (fixture *f, float *x, const float *saved, const float *v, int64_t count, float h)
{
  for (int64_t i = 0; i < count; i++)
    x[i] = saved[i] + h * v[i];
  double plus = loss (f);
  for (int64_t i = 0; i < count; i++)
    x[i] = saved[i] - h * v[i];
  double minus = loss (f);
  return (plus - minus) / (2.0 * h);
}

static double
directional_difference (fixture *f, float *x, const float *v, int64_t count)
{
  g_autofree float *saved = g_memdup2 (x, sizeof (float) * (size_t) count);
  double coarse = central (f, x, saved, v, count, 2e-2f);
  double fine = central (f, x, saved, v, count, 1e-2f);
  memcpy (x, saved, sizeof (float) * (size_t) count);
  return (4 * fine - coarse) / 3;
}

static double
dot (const float *g, const float *v, int64_t count)
{
  double sum = 0;
  for (int64_t i = 0; i < count; i++)
    sum += (double) g[i] * v[i];
  return sum;
}

static float *
random_signs (GRand *rand, int64_t count)
{
  float *v = g_new (float, count);
  for (int64_t i = 0; i < count; i++)
    v[i] = g_rand_boolean (rand) ? 1.0f : -1.0f;
  return v;
}

typedef struct {
  int checked, failed;
  double worst;
} tally;

static void
compare (tally *t, const char *what, double analytic, double numeric)
{
  /* 1.5 % and the differences' noise floor */
  double error = fabs (analytic - numeric) / (fmax (fabs (analytic), fabs (numeric)) + 1);
  t->checked++;
  t->worst = fmax (t->worst, error);
  if (fabs (analytic - numeric) > 1.5e-2 * fmax (fabs (analytic), fabs (numeric)) + 1e-2)
    {
      t->failed++;
      g_test_message ("%s: analytic %.6g, numeric %.6g (relative error %.3g)", what, analytic,
                      numeric, error);
    }
}

static void
test_forward_matches_inference (fixture *f, gconstpointer data)
{
  int64_t on = BATCH * f->out_channels * LH * LW;
  loss (f);
  g_autofree float *reference = g_memdup2 (f->out, sizeof (float) * (size_t) on);
  for (int mode = 0; mode < 2; mode++)
    {
      gc_error err = { 0 };
      gc_unet_tape *tape;
      memset (f->out, 0, sizeof (float) * (size_t) on);
      factors_changed (f);
      if (gc_unet_train_forward (f->unet, gc_model_scratch (f->model), &tape, f->out, f->x, BATCH,
                                 LH, LW, f->timesteps, &f->cond, mode == 1, NULL, &err))
        g_error ("%s", err.message);
      gc_unet_tape_free (tape);
      for (int64_t i = 0; i < on; i++)
        if (fabsf (f->out[i] - reference[i]) > 1e-5f * (1 + fabsf (reference[i]))) g_error ("mode %d index %lld: %g vs %g", mode, (long long) i, f->out[i], reference[i]);
    }
}

static void
test_lora_gradients (fixture *f, gconstpointer data)
{
  backward (f, true, NULL, NULL);
  int64_t size = gc_train_lora_size (f->lora);
  g_autofree float *analytic = g_memdup2 (gc_train_lora_grads (f->lora), sizeof (float) * (size_t) size);
  float *p = gc_train_lora_params (f->lora);
  tally t = { 0 };
  size_t modules = gc_train_lora_module_count (f->lora);
  g_assert_cmpuint (modules, >, 100);
  GRand *rand = g_rand_new_with_seed (7);
  for (size_t i = 0; i < modules; i += 2)
    {
      /* every other module (they are sorted by key, so every kind and block is among them):
       * up [out, 2] and down [2, n], one direction over both */
      int64_t at, out, n;
      gc_train_lora_module_layout (f->lora, i, &at, &out, &n);
      int64_t count = 2 * (out + n);
      g_autofree float *v = random_signs (rand, count);
      compare (&t, gc_train_lora_module_target (f->lora, i), dot (analytic + at, v, count),
               directional_difference (f, p + at, v, count));
    }
  g_rand_free (rand);
  g_test_message ("%d modules checked, worst relative error %.3g", t.checked, t.worst);
  g_assert_cmpint (t.failed, ==, 0);
}

static void
test_input_gradients (fixture *f, gconstpointer data)
{
  int64_t xn = BATCH * f->channels * LH * LW, cn = BATCH * TOKENS * f->context_dim;
  g_autofree float *d_x = g_new0 (float, xn);
  g_autofree float *d_context = g_new0 (float, cn);
  backward (f, true, d_x, d_context);
  tally t = { 0 };
  GRand *rand = g_rand_new_with_seed (11);
  for (int k = 0; k < 4; k++)
    {
      g_autofree float *v = random_signs (rand, xn);
      compare (&t, "latent", dot (d_x, v, xn), directional_difference (f, f->x, v, xn));
      g_autofree float *w = random_signs (rand, cn);
      compare (&t, "context", dot (d_context, w, cn),
               directional_difference (f, f->context, w, cn));
    }
  g_rand_free (rand);
  g_test_message ("%d input gradients checked, worst relative error %.3g", t.checked, t.worst);
  g_assert_cmpint (t.failed, ==, 0);
}

/* Recomputing each block (checkpointing) gives the gradients of keeping everything. */
static void
test_checkpointing_agrees (fixture *f, gconstpointer data)
{
  int64_t size = gc_train_lora_size (f->lora);
  backward (f, false, NULL, NULL);
  g_autofree float *kept = g_memdup2 (gc_train_lora_grads (f->lora), sizeof (float) * (size_t) size);
  backward (f, true, NULL, NULL);
  const float *recomputed = gc_train_lora_grads (f->lora);
  double norm = 0, diff = 0;
  for (int64_t i = 0; i < size; i++)
    {
      norm += (double) kept[i] * kept[i];
      diff += ((double) kept[i] - recomputed[i]) * ((double) kept[i] - recomputed[i]);
    }
  g_assert_cmpfloat (norm, >, 0);
  g_test_message ("relative difference %.3g", sqrt (diff / norm));
  g_assert_cmpfloat (sqrt (diff / norm), <, 1e-5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autofree char *dir = g_dir_make_tmp ("test-train-backward-XXXXXX", NULL);
  write_f32_model (dir);
  g_test_add ("/core/train/backward/forward-matches-inference", fixture, NULL, fixture_set_up,
              test_forward_matches_inference, fixture_tear_down);
  g_test_add ("/core/train/backward/lora-finite-differences", fixture, NULL, fixture_set_up,
              test_lora_gradients, fixture_tear_down);
  g_test_add ("/core/train/backward/input-finite-differences", fixture, NULL, fixture_set_up,
              test_input_gradients, fixture_tear_down);
  g_test_add ("/core/train/backward/checkpointing-agrees", fixture, NULL, fixture_set_up,
              test_checkpointing_agrees, fixture_tear_down);
  int status = g_test_run ();
  g_remove (model_path);
  g_rmdir (dir);
  g_free (model_path);
  return status;
}

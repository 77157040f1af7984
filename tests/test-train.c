/* LoRA training on the tiny model: a style learnt from 16 images of one colour and texture
 * lowers the validation loss and changes what the trigger word generates; a run resumed from
 * its saved state ends with the weights of the uninterrupted run; cancelling keeps the state
 * of the last complete step. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-lora.h"
#include "gc-pipeline.h"
#include "gc-threads.h"
#include "gc-train.h"

enum { IMAGES = 16, SIDE = 64 };

typedef struct {
  gc_model *model;
  float *pixels[IMAGES];
  gc_train_image images[IMAGES];
  char *dir;
} fixture;

static gc_model *
open_model (void)
{
  g_autofree char *vocab = g_build_filename (g_getenv ("GOUACHE_DATA_DIR"),
                                             "bpe_simple_vocab_16e6.txt.gz", NULL);
  gc_model *m;
  gc_error err = { 0 };
  if (gc_model_open (&m, g_getenv ("GOUACHE_TINY_MODEL"), vocab, &err))
    g_error ("%s", err.message);
  return m;
}

/* Orange and deep blue diagonal stripes, each image shifted and with its own stripe width: one
 * look, sixteen pictures of it. */
static void
make_image (float *rgb, int index)
{
  static const float orange[3] = { 0.95f, 0.45f, -0.6f }, blue[3] = { -0.7f, -0.5f, 0.4f };
  int period = 8 + index % 5, shift = index * 3;
  for (int y = 0; y < SIDE; y++)
    for (int x = 0; x < SIDE; x++)
      {
        bool stripe = ((x + y + shift) % period) < period / 2;
        for (int c = 0; c < 3; c++)
          rgb[(c * SIDE + y) * SIDE + x] = stripe ? orange[c] : blue[c];
      }
}

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  gc_threads_set (2);
  f->model = open_model ();
  for (int i = 0; i < IMAGES; i++)
    {
      f->pixels[i] = g_new (float, 3 * SIDE * SIDE);
      make_image (f->pixels[i], i);
      f->images[i] = (gc_train_image) { f->pixels[i], SIDE, SIDE, "zqxstripes" };
    }
  f->dir = g_dir_make_tmp ("test-train-XXXXXX", NULL);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  gc_model_free (f->model);
  for (int i = 0; i < IMAGES; i++)
    g_free (f->pixels[i]);
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_remove (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
}

static void
config_for_test (gc_train_config *c)
{
  gc_train_config_defaults (c);
  c->rank = 4;
  c->alpha = 4;
  c->learning_rate = 3e-3;
  c->batch = 2;
  c->steps = 200;
  c->warmup = 10;
  c->schedule = GC_LR_COSINE;
  c->min_snr_gamma = 5;
  c->noise_offset = 0.05;
  c->flip = true;
  c->seed = 3;
  c->validate_every = 50;
}

static gc_trainer *
new_trainer (fixture *f, const gc_train_config *c)
{
  gc_trainer *t;
  gc_error err = { 0 };
  if (gc_trainer_new (&t, f->model, c, f->images, IMAGES, NULL, 0, NULL, NULL, &err))
    g_error ("%s", err.message);
  return t;
}

static void
run (gc_trainer *t)
{
  gc_error err = { 0 };
  if (gc_trainer_run (t, NULL, &err))
    g_error ("%s", err.message);
}

/* A generation from the prompt at 64×64, fixed seed. */
static float *
generate (gc_model *m, const char *prompt)
{
  float *image = g_new (float, 3 * SIDE * SIDE);
  gc_generate_params p = { .prompt = prompt, .negative = "", .sampler = GC_SAMPLER_EULER,
                           .steps = 8, .cfg = 5, .seed = 11, .width = SIDE, .height = SIDE };
  gc_error err = { 0 };
  if (gc_generate (m, &p, image, NULL, NULL, NULL, &err))
    g_error ("%s", err.message);
  return image;
}

/* The latent the prompt generates at 64×64 (8×8 cells), fixed seed. */
static float *
generate_latent (gc_model *m, const char *prompt)
{
  float *latent = g_new (float, 4 * 8 * 8);
  gc_generate_params p = { .prompt = prompt, .negative = "", .sampler = GC_SAMPLER_EULER,
                           .steps = 8, .cfg = 5, .seed = 11, .width = SIDE, .height = SIDE };
  gc_error err = { 0 };
  if (gc_generate_latent (m, &p, latent, NULL, NULL, NULL, &err))
    g_error ("%s", err.message);
  return latent;
}

/* Root mean square distance from the latent to the nearest latent of the dataset. */
static double
distance_to_dataset (fixture *f, const float *latent)
{
  double best = INFINITY;
  for (int i = 0; i < IMAGES; i++)
    {
      float encoded[4 * 8 * 8];
      gc_error err = { 0 };
      if (gc_encode_image (f->model, encoded, f->pixels[i], SIDE, SIDE, &err))
        g_error ("%s", err.message);
      double sum = 0;
      for (int k = 0; k < 4 * 8 * 8; k++)
        sum += ((double) encoded[k] - latent[k]) * ((double) encoded[k] - latent[k]);
      best = fmin (best, sqrt (sum / (4 * 8 * 8)));
    }
  return best;
}

static double
rms_difference (const float *a, const float *b, int64_t n)
{
  double sum = 0;
  for (int64_t i = 0; i < n; i++)
    sum += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
  return sqrt (sum / (double) n);
}

static void
test_learns_style (fixture *f, gconstpointer data)
{
  gc_train_config c;
  config_for_test (&c);
  g_autofree float *before = generate (f->model, "zqxstripes");
  g_autofree float *latent_before = generate_latent (f->model, "zqxstripes");
  gc_trainer *t = new_trainer (f, &c);
  g_assert_false (gc_trainer_checkpointing (t)); /* 64² images need little memory */
  run (t);
  double first = gc_trainer_first_validation (t), last = gc_trainer_last_validation (t);
  g_test_message ("validation loss %.5f -> %.5f (%.1f%%)", first, last, 100 * (last / first - 1));
  g_assert_cmpint (gc_trainer_step (t), ==, c.steps);
  g_assert_cmpfloat (last, <, 0.9 * first);
  /* the trained style changes what the trigger word generates */
  g_autofree float *after = generate (f->model, "zqxstripes");
  double change = rms_difference (before, after, 3 * SIDE * SIDE);
  g_test_message ("generation changed by %.4f rms", change);
  g_assert_cmpfloat (change, >, 0.02);
  /* towards the look it was shown: the generated latent comes closer to the dataset's */
  g_autofree float *latent_after = generate_latent (f->model, "zqxstripes");
  double far = distance_to_dataset (f, latent_before), near = distance_to_dataset (f, latent_after);
  g_test_message ("distance of the generated latent to the dataset: %.4f -> %.4f", far, near);
  g_assert_cmpfloat (near, <, 0.8 * far);
  /* written as a kohya LoRA that loads as a style and gives the same generation */
  g_autofree char *path = g_build_filename (f->dir, "style.safetensors", NULL);
  const char *meta[] = { "ss_output_name", "style" };
  gc_error err = { 0 };
  if (gc_trainer_write_lora (t, path, meta, 1, &err))
    g_error ("%s", err.message);
  gc_trainer_free (t);
  gc_lora *lora;
  if (gc_lora_open (&lora, path, gc_model_checkpoint (f->model), &err))
    g_error ("%s", err.message);
  g_assert_cmpstr (gc_lora_metadata (lora, "ss_network_module"), ==, "networks.lora");
  g_assert_cmpstr (gc_lora_metadata (lora, "ss_steps"), ==, "200");
  g_assert_cmpstr (gc_lora_metadata (lora, "ss_output_name"), ==, "style");
  g_assert_cmpuint (gc_lora_get_report (lora).unmatched, ==, 0);
  if (gc_styles_add (gc_model_styles (f->model), lora, 1.0, 1.0, &err))
    g_error ("%s", err.message);
  g_autofree float *loaded = generate (f->model, "zqxstripes");
  double error = rms_difference (after, loaded, 3 * SIDE * SIDE);
  g_test_message ("loaded style differs by %.5f rms (fp16 factors)", error);
  g_assert_cmpfloat (error, <, 0.1 * change);
}

/* Stops after `stop_after` steps by raising the cancel flag from the step callback. */
typedef struct {
  volatile int cancel;
  int64_t stop_after;
  int64_t checkpoints;
} stopper;

static void
on_step (void *ctx, const gc_train_progress *p)
{
  stopper *s = ctx;
  if (p->step == s->stop_after)
    s->cancel = 1;
}

static void
on_checkpoint (void *ctx, int64_t step, const char *path)
{
  ((stopper *) ctx)->checkpoints++;
}

static void
test_resume_is_exact (fixture *f, gconstpointer data)
{
  gc_train_config c;
  config_for_test (&c);
  c.steps = 24;
  c.accumulation = 2;
  c.validate_every = 0;
  c.checkpointing = GC_CHECKPOINTING_ON; /* the other test runs without (AUTO, small images) */
  g_autofree char *state = g_build_filename (f->dir, "state.safetensors", NULL);
  /* the uninterrupted run */
  gc_trainer *t = new_trainer (f, &c);
  run (t);
  int64_t size = gc_train_lora_size (gc_trainer_lora (t));
  g_autofree float *reference = g_memdup2 (gc_train_lora_params (gc_trainer_lora (t)),
                                           sizeof (float) * (size_t) size);
  double reference_val = gc_trainer_last_validation (t);
  gc_trainer_free (t);
  /* cancelled after 10 steps (mid-epoch: 16 images, 8 batches an epoch): the state is saved */
  c.state_path = state;
  c.checkpoint_every = 4;
  stopper stop = { 0, 10, 0 };
  gc_train_callbacks cb = { .step = on_step, .checkpoint = on_checkpoint, .ctx = &stop };
  gc_error err = { 0 };
  if (gc_trainer_new (&t, f->model, &c, f->images, IMAGES, NULL, 0, &cb, NULL, &err))
    g_error ("%s", err.message);
  g_assert_cmpint (gc_trainer_run (t, &stop.cancel, &err), ==, GC_ERR_CANCELLED);
  g_assert_cmpint (gc_trainer_step (t), ==, 10);
  g_assert_cmpint (stop.checkpoints, ==, 3); /* steps 4, 8 and the cancel at 10 */
  gc_trainer_free (t);
  /* resumed by a new trainer */
  t = new_trainer (f, &c);
  if (gc_trainer_resume (t, state, &err))
    g_error ("%s", err.message);
  g_assert_cmpint (gc_trainer_step (t), ==, 10);
  run (t);
  const float *resumed = gc_train_lora_params (gc_trainer_lora (t));
  g_assert_cmpint (memcmp (resumed, reference, sizeof (float) * (size_t) size), ==, 0);
  g_assert_cmpfloat (gc_trainer_last_validation (t), ==, reference_val);
  gc_trainer_free (t);
  /* another run's state is refused, saying what differs */
  c.rank = 8;
  t = new_trainer (f, &c);
  g_assert_cmpint (gc_trainer_resume (t, state, &err), ==, GC_ERR_MISMATCH);
  g_assert_nonnull (strstr (err.message, "rank=4"));
  gc_trainer_free (t);
}

static void
test_rejects_bad_input (fixture *f, gconstpointer data)
{
  gc_train_config c;
  config_for_test (&c);
  gc_trainer *t;
  gc_error err = { 0 };
  gc_train_image odd = f->images[0];
  odd.width = 60;
  g_assert_cmpint (gc_trainer_new (&t, f->model, &c, &odd, 1, NULL, 0, NULL, NULL, &err), ==,
                   GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "multiples of 64"));
  c.rank = 0;
  g_assert_cmpint (gc_trainer_new (&t, f->model, &c, f->images, 1, NULL, 0, NULL, NULL, &err), ==,
                   GC_ERR_INVALID);
  config_for_test (&c);
  c.learning_rate = 0;
  g_assert_cmpint (gc_trainer_new (&t, f->model, &c, f->images, 1, NULL, 0, NULL, NULL, &err), ==,
                   GC_ERR_INVALID);
  g_assert_cmpuint (gc_styles_count (gc_model_styles (f->model)), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/core/train/learns-style", fixture, NULL, fixture_set_up, test_learns_style,
              fixture_tear_down);
  g_test_add ("/core/train/resume-is-exact", fixture, NULL, fixture_set_up, test_resume_is_exact,
              fixture_tear_down);
  g_test_add ("/core/train/rejects-bad-input", fixture, NULL, fixture_set_up,
              test_rejects_bad_input, fixture_tear_down);
  return g_test_run ();
}

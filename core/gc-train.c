/* LoRA training: data, the step, validation, samples and the saved state (see gc-train.h). */
#include "gc-train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gc-adamw.h"
#include "gc-c-locale.h"
#include "gc-pipeline.h"
#include "gc-safetensors.h"
#include "gc-schedule.h"
#include "gc-sha256.h"
#include "gc-tokenizer.h"

enum { STATE_VERSION = 1 };

/* One image, cached: its latent (and its mirror's), and which caption encoding it uses. */
typedef struct {
  float *latent;    /* [c, lh, lw] */
  float *flipped;   /* [c, lh, lw] or NULL */
  int64_t lh, lw;
  size_t context;   /* index into contexts */
  size_t bucket;    /* images of one size share a bucket */
} sample;

struct gc_trainer {
  gc_model *model;
  gc_train_config config;
  char **prompts;           /* owned copies of config.sample_prompts */
  char *state_path;         /* owned copy of config.state_path */
  gc_train_callbacks cb;
  gc_train_lora *lora;
  gc_adamw opt;
  gc_adamw_params hp;
  gc_train_schedule schedule;
  gc_prediction prediction;
  int64_t channels, context_dim;
  sample *train, *val;
  size_t n_train, n_val, n_buckets;
  float **contexts;         /* [77, context_dim] per distinct caption */
  size_t n_contexts;
  float **val_noise;        /* per validation image [K, c, lh, lw] */
  bool checkpointing;       /* decided for AUTO */
  /* the run's state */
  int64_t step, epoch, position;
  gc_torch_rng rng;
  double first_val, last_val;
  /* the current epoch's batches: order[starts[b] … starts[b + 1]) */
  int64_t *order, *starts, n_batches;
  char settings[1024];      /* what a resumed run must share, as text */
  char data_hash[65];       /* of the images and captions */
};

void
gc_train_config_defaults (gc_train_config *c)
{
  *c = (gc_train_config) {
    .rank = 16, .alpha = 16, .targets = GC_TRAIN_TARGET_DEFAULT, .steps = 1000, .batch = 1,
    .accumulation = 1, .learning_rate = 1e-4, .schedule = GC_LR_CONSTANT, .weight_decay = 0.01,
    .checkpointing = GC_CHECKPOINTING_AUTO, .validation_timesteps = 4, .sample_steps = 20,
    .sample_cfg = 7, .sample_seed = 42, .sample_sampler = GC_SAMPLER_EULER_A,
  };
}

/* ------------------------------------------------------------------ setup */

static gc_status
check_config (const gc_train_config *c, gc_error *err)
{
  if (c->steps < 1)
    return gc_error_set (err, GC_ERR_INVALID, "the number of steps must be at least 1");
  if (c->batch < 1 || c->batch > 64)
    return gc_error_set (err, GC_ERR_INVALID, "the batch size goes from 1 to 64 (got %lld)",
                         (long long) c->batch);
  if (c->accumulation < 1 || c->accumulation > 1024)
    return gc_error_set (err, GC_ERR_INVALID,
                         "gradient accumulation goes from 1 to 1024 batches (got %lld)",
                         (long long) c->accumulation);
  if (!(c->learning_rate > 0 && c->learning_rate < 1))
    return gc_error_set (err, GC_ERR_INVALID, "the learning rate must be in (0, 1) (got %g)",
                         c->learning_rate);
  if (c->warmup < 0 || c->warmup > c->steps)
    return gc_error_set (err, GC_ERR_INVALID, "warm-up steps must be between 0 and the steps");
  if (!(c->weight_decay >= 0 && c->weight_decay < 1) || !(c->min_snr_gamma >= 0)
      || !(c->noise_offset >= 0 && c->noise_offset <= 1))
    return gc_error_set (err, GC_ERR_INVALID,
                         "weight decay must be in [0, 1), Min-SNR γ ≥ 0, noise offset in [0, 1]");
  if (c->validation_timesteps < 1 || c->validation_timesteps > 50)
    return gc_error_set (err, GC_ERR_INVALID, "validation noise levels go from 1 to 50");
  if (c->n_sample_prompts > 0 && (c->sample_steps < 1 || c->sample_steps > GC_MAX_STEPS))
    return gc_error_set (err, GC_ERR_INVALID, "sample steps go from 1 to %d", GC_MAX_STEPS);
  return GC_OK;
}

static gc_status
check_images (const gc_model *m, const gc_train_image *images, size_t n, const char *what,
              gc_error *err)
{
  int64_t multiple = gc_model_get_info (m)->pixel_multiple;
  for (size_t i = 0; i < n; i++)
    {
      const gc_train_image *im = &images[i];
      if (im->pixels == NULL || im->width < multiple || im->height < multiple
          || im->width % multiple || im->height % multiple || im->width > 4096
          || im->height > 4096)
        return gc_error_set (err, GC_ERR_INVALID,
                             "%s image %zu is %lldx%lld: sides must be multiples of %lld up to "
                             "4096",
                             what, i + 1, (long long) im->width, (long long) im->height,
                             (long long) multiple);
    }
  return GC_OK;
}

/* The caption's encoding: its first window, no emphasis syntax. */
static gc_status
encode_caption (gc_trainer *t, const char *caption, float *context, gc_error *err)
{
  const gc_model_info *info = gc_model_get_info (t->model);
  int32_t *ids = NULL;
  size_t count = 0;
  gc_status s = gc_tokenizer_encode (gc_model_tokenizer (t->model), caption ? caption : "", &ids,
                                     &count, err);
  if (s != GC_OK)
    return gc_error_prefix (err, "caption \"%s\"", caption);
  int32_t window[GC_CONTEXT_TOKENS];
  gc_tokens_window (window, ids, count < GC_CHUNK_TOKENS ? count : GC_CHUNK_TOKENS, info->pad_id);
  free (ids);
  int skip = t->config.clip_skip > 0 ? t->config.clip_skip : info->default_clip_skip;
  return gc_text_encoder_forward (gc_model_text_encoder (t->model), gc_model_scratch (t->model),
                                  context, NULL, window, 1, (gc_text_output) { skip, true }, err);
}

/* image[3, h, w] mirrored left to right */
static void
mirror (float *out, const float *in, int64_t h, int64_t w)
{
  for (int64_t c = 0; c < 3; c++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++)
        out[(c * h + y) * w + x] = in[(c * h + y) * w + (w - 1 - x)];
}

static gc_status
encode_sample (gc_trainer *t, const gc_train_image *im, bool flip, sample *out,
               const char **captions, size_t *n_captions, gc_error *err)
{
  int64_t scale = gc_vae_downscale (gc_model_vae (t->model));
  out->lh = im->height / scale, out->lw = im->width / scale;
  size_t n = (size_t) (t->channels * out->lh * out->lw);
  out->latent = malloc (sizeof (float) * n);
  out->flipped = flip ? malloc (sizeof (float) * n) : NULL;
  if (out->latent == NULL || (flip && out->flipped == NULL))
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory caching latents");
  gc_status s = gc_encode_image (t->model, out->latent, im->pixels, im->height, im->width, err);
  if (s == GC_OK && flip)
    {
      float *mirrored = malloc (sizeof (float) * (size_t) (3 * im->height * im->width));
      if (mirrored == NULL)
        return gc_error_set (err, GC_ERR_NOMEM, "out of memory caching latents");
      mirror (mirrored, im->pixels, im->height, im->width);
      s = gc_encode_image (t->model, out->flipped, mirrored, im->height, im->width, err);
      free (mirrored);
    }
  if (s != GC_OK)
    return s;
  /* the caption's encoding, shared with earlier images of the same caption */
  const char *caption = im->caption ? im->caption : "";
  size_t k = 0;
  while (k < *n_captions && strcmp (captions[k], caption) != 0)
    k++;
  out->context = k;
  if (k < *n_captions)
    return GC_OK;
  float *context = malloc (sizeof (float) * (size_t) (GC_CONTEXT_TOKENS * t->context_dim));
  if (context == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory encoding captions");
  t->contexts[k] = context;
  captions[k] = caption;
  *n_captions = t->n_contexts = k + 1;
  return encode_caption (t, caption, context, err);
}

/* The run's settings as text (a resumed run must have the same) and a hash of its data. */
static void
describe_run (gc_trainer *t, const gc_train_image *train, const gc_train_image *val, size_t n_val)
{
  const gc_train_config *c = &t->config;
  gc_c_snprintf (t->settings, sizeof t->settings,
            "rank=%" PRId64 " alpha=%.17g targets=%u modules=%zu steps=%" PRId64
            " batch=%" PRId64 " accumulation=%" PRId64 " lr=%.17g schedule=%d warmup=%" PRId64
            " weight_decay=%.17g min_snr_gamma=%.17g noise_offset=%.17g flip=%d seed=%" PRIu64
            " clip_skip=%d validation_timesteps=%d images=%zu validation_images=%zu",
            c->rank, c->alpha, c->targets, gc_train_lora_module_count (t->lora), c->steps,
            c->batch, c->accumulation, c->learning_rate, (int) c->schedule, c->warmup,
            c->weight_decay, c->min_snr_gamma, c->noise_offset, (int) c->flip, c->seed,
            c->clip_skip, c->validation_timesteps, t->n_train, n_val);
  gc_sha256 h;
  gc_sha256_init (&h);
  for (int part = 0; part < 2; part++)
    {
      const gc_train_image *images = part ? val : train;
      size_t n = part ? n_val : t->n_train;
      for (size_t i = 0; i < n; i++)
        {
          int64_t dims[2] = { images[i].width, images[i].height };
          const char *caption = images[i].caption ? images[i].caption : "";
          gc_sha256_update (&h, dims, sizeof dims);
          gc_sha256_update (&h, images[i].pixels,
                            sizeof (float) * (size_t) (3 * dims[0] * dims[1]));
          gc_sha256_update (&h, caption, strlen (caption) + 1);
        }
    }
  unsigned char digest[32];
  gc_sha256_final (&h, digest);
  gc_sha256_hex (digest, t->data_hash);
}

static double
physical_memory (void)
{
  long pages = sysconf (_SC_PHYS_PAGES), size = sysconf (_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (double) pages * (double) size : 0;
}

/* AUTO: keep the activations when they take at most a quarter of the memory (the largest
 * bucket at the full batch). */
static bool
choose_checkpointing (const gc_trainer *t)
{
  if (t->config.checkpointing != GC_CHECKPOINTING_AUTO)
    return t->config.checkpointing == GC_CHECKPOINTING_ON;
  int64_t area = 0, lh = 0, lw = 0;
  for (size_t i = 0; i < t->n_train; i++)
    if (t->train[i].lh * t->train[i].lw > area)
      area = t->train[i].lh * t->train[i].lw, lh = t->train[i].lh, lw = t->train[i].lw;
  double need = gc_unet_tape_bytes (gc_model_unet (t->model), t->config.batch, lh, lw,
                                    GC_CONTEXT_TOKENS);
  double memory = physical_memory ();
  return memory <= 0 || need > memory / 4;
}

static char *
copy_string (const char *s)
{
  return s ? strdup (s) : NULL;
}

gc_status
gc_trainer_new (gc_trainer **out, gc_model *model, const gc_train_config *config,
                const gc_train_image *train, size_t n_train, const gc_train_image *validation,
                size_t n_validation, const gc_train_callbacks *callbacks,
                const volatile int *cancel, gc_error *err)
{
  *out = NULL;
  const gc_model_info *info = gc_model_get_info (model);
  gc_status s = check_config (config, err);
  if (s == GC_OK && info->family == GC_FAMILY_SDXL)
    s = gc_error_set (err, GC_ERR_UNSUPPORTED, "training SDXL models is not supported yet");
  if (s == GC_OK && n_train == 0)
    s = gc_error_set (err, GC_ERR_INVALID, "there are no training images");
  if (s == GC_OK)
    s = check_images (model, train, n_train, "training", err);
  if (s == GC_OK)
    s = check_images (model, validation, n_validation, "validation", err);
  if (s != GC_OK)
    return s;
  gc_trainer *t = calloc (1, sizeof *t);
  if (t == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  t->model = model;
  t->config = *config;
  if (t->config.targets == 0)
    t->config.targets = GC_TRAIN_TARGET_DEFAULT;
  if (callbacks)
    t->cb = *callbacks;
  t->hp = gc_adamw_defaults ();
  t->hp.weight_decay = config->weight_decay;
  gc_train_schedule_init_sd (&t->schedule);
  t->prediction = info->prediction;
  t->channels = info->latent_channels;
  t->context_dim = info->context_dim;
  t->first_val = t->last_val = NAN;
  t->n_train = n_train;
  t->n_val = n_validation ? n_validation : n_train;
  const gc_train_image *val_images = n_validation ? validation : train;
  /* owned copies of the configuration's strings */
  t->state_path = copy_string (config->state_path);
  t->config.state_path = t->state_path;
  t->prompts = calloc (config->n_sample_prompts + 1, sizeof *t->prompts);
  bool ok = t->prompts && (config->state_path == NULL || t->state_path);
  for (size_t i = 0; ok && i < config->n_sample_prompts; i++)
    ok = (t->prompts[i] = copy_string (config->sample_prompts[i])) != NULL;
  t->config.sample_prompts = (const char *const *) t->prompts;
  t->train = calloc (n_train, sizeof *t->train);
  t->val = calloc (t->n_val, sizeof *t->val);
  t->val_noise = calloc (t->n_val, sizeof *t->val_noise);
  t->contexts = calloc (n_train + t->n_val, sizeof *t->contexts);
  const char **captions = calloc (n_train + t->n_val, sizeof *captions);
  t->order = calloc (n_train, sizeof *t->order);
  t->starts = calloc (n_train + 1, sizeof *t->starts);
  ok = ok && t->train && t->val && t->val_noise && t->contexts && captions && t->order
       && t->starts;
  if (!ok)
    {
      free (captions);
      gc_trainer_free (t);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
    }
  /* the LoRA: its initialisation is the first use of the run's generator */
  gc_torch_rng_seed (&t->rng, config->seed);
  s = gc_train_lora_new (&t->lora, model, t->config.targets, config->rank, config->alpha, &t->rng,
                         err);
  if (s == GC_OK)
    s = gc_adamw_init (&t->opt, gc_train_lora_size (t->lora), err);
  /* cached latents and captions (the LoRA starts at ΔW = 0: the text encoder is untouched) */
  size_t n_captions = 0, total = n_train + (n_validation ? n_validation : 0);
  for (size_t i = 0; s == GC_OK && i < total; i++)
    {
      if (cancel && *cancel)
        s = gc_error_set (err, GC_ERR_CANCELLED, "cancelled");
      else if (i < n_train)
        s = encode_sample (t, &train[i], config->flip, &t->train[i], captions, &n_captions, err);
      else
        s = encode_sample (t, &validation[i - n_train], false, &t->val[i - n_train], captions,
                           &n_captions, err);
      if (s == GC_OK && t->cb.prepare)
        t->cb.prepare (t->cb.ctx, (int64_t) i + 1, (int64_t) total);
    }
  free (captions);
  if (s == GC_OK && n_validation == 0)
    for (size_t i = 0; i < n_train; i++)
      t->val[i] = (sample) { t->train[i].latent, NULL, t->train[i].lh, t->train[i].lw,
                             t->train[i].context, 0 };
  /* buckets: one per latent size */
  for (size_t i = 0; s == GC_OK && i < n_train; i++)
    {
      size_t b = 0;
      while (b < i && (t->train[b].lh != t->train[i].lh || t->train[b].lw != t->train[i].lw))
        b++;
      t->train[i].bucket = b < i ? t->train[b].bucket : t->n_buckets++;
    }
  /* the validation noise, drawn once from the seed */
  gc_torch_rng noise_rng;
  gc_torch_rng_seed (&noise_rng, config->seed ^ 0x76616c6964ULL);
  for (size_t i = 0; s == GC_OK && i < t->n_val; i++)
    {
      int64_t n = config->validation_timesteps * t->channels * t->val[i].lh * t->val[i].lw;
      t->val_noise[i] = malloc (sizeof (float) * (size_t) n);
      if (t->val_noise[i] == NULL)
        s = gc_error_set (err, GC_ERR_NOMEM, "out of memory");
      else
        gc_torch_randn (&noise_rng, t->val_noise[i], n);
    }
  if (s == GC_OK)
    describe_run (t, train, val_images, n_validation);
  if (s == GC_OK)
    t->checkpointing = choose_checkpointing (t);
  if (s != GC_OK)
    {
      gc_trainer_free (t);
      return s;
    }
  *out = t;
  return GC_OK;
}

void
gc_trainer_free (gc_trainer *t)
{
  if (t == NULL)
    return;
  gc_train_lora_free (t->lora);
  gc_adamw_free (&t->opt);
  for (size_t i = 0; t->train && i < t->n_train; i++)
    free (t->train[i].latent), free (t->train[i].flipped);
  bool own_val = t->val && t->n_val && t->train && t->val[0].latent != t->train[0].latent;
  for (size_t i = 0; own_val && i < t->n_val; i++)
    free (t->val[i].latent);
  for (size_t i = 0; t->val_noise && i < t->n_val; i++)
    free (t->val_noise[i]);
  for (size_t i = 0; t->contexts && i < t->n_contexts; i++)
    free (t->contexts[i]);
  for (size_t i = 0; t->prompts && t->prompts[i]; i++)
    free (t->prompts[i]);
  free (t->prompts), free (t->state_path);
  free (t->train), free (t->val), free (t->val_noise), free (t->contexts);
  free (t->order), free (t->starts);
  free (t);
}

/* ------------------------------------------------------------------ data order */

/* The batches of an epoch: a permutation drawn from (seed, epoch), each image joining the
 * pending batch of its bucket, a batch leaving when full; the partial ones at the end. */
static void
plan_epoch (gc_trainer *t)
{
  gc_torch_rng rng;
  gc_torch_rng_seed (&rng, t->config.seed + 0x9E3779B97F4A7C15ULL * (uint64_t) (t->epoch + 1));
  int64_t n = (int64_t) t->n_train, b = t->config.batch;
  int64_t *perm = t->order; /* permuted in place, then regrouped below */
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--)
    {
      int64_t j = (int64_t) (gc_torch_rng_u32 (&rng) % (uint32_t) (i + 1));
      int64_t tmp = perm[i];
      perm[i] = perm[j], perm[j] = tmp;
    }
  int64_t *grouped = malloc (sizeof *grouped * (size_t) n);
  int64_t *pending = malloc (sizeof *pending * (size_t) (t->n_buckets * b));
  int64_t *count = calloc (t->n_buckets, sizeof *count);
  if (grouped == NULL || pending == NULL || count == NULL)
    {
      /* no memory for the grouping: one image per batch in permuted order */
      free (grouped), free (pending), free (count);
      for (int64_t i = 0; i <= n; i++)
        t->starts[i] = i;
      t->n_batches = n;
      return;
    }
  int64_t at = 0;
  t->n_batches = 0;
  for (int64_t i = 0; i < n; i++)
    {
      size_t k = t->train[perm[i]].bucket;
      pending[(int64_t) k * b + count[k]++] = perm[i];
      if (count[k] == b)
        {
          t->starts[t->n_batches++] = at;
          memcpy (grouped + at, pending + (int64_t) k * b, sizeof *grouped * (size_t) b);
          at += b, count[k] = 0;
        }
    }
  for (size_t k = 0; k < t->n_buckets; k++)
    if (count[k] > 0)
      {
        t->starts[t->n_batches++] = at;
        memcpy (grouped + at, pending + (int64_t) k * b, sizeof *grouped * (size_t) count[k]);
        at += count[k];
      }
  t->starts[t->n_batches] = at;
  memcpy (t->order, grouped, sizeof *grouped * (size_t) n);
  free (grouped), free (pending), free (count);
}

/* The next batch: order + *first, *count images. */
static void
next_batch (gc_trainer *t, int64_t *first, int64_t *count)
{
  if (t->position >= t->n_batches)
    {
      t->epoch++;
      t->position = 0;
      plan_epoch (t);
    }
  *first = t->starts[t->position];
  *count = t->starts[t->position + 1] - t->starts[t->position];
  t->position++;
}

/* ------------------------------------------------------------------ the step */

static double
learning_rate_at (const gc_train_config *c, int64_t step)
{
  if (step < c->warmup)
    return c->learning_rate * (double) (step + 1) / (double) c->warmup;
  if (c->schedule == GC_LR_CONSTANT || c->steps <= c->warmup)
    return c->learning_rate;
  double progress = (double) (step - c->warmup) / (double) (c->steps - c->warmup);
  return c->learning_rate * 0.5 * (1 + cos (M_PI * progress));
}

static double
snr_weight (const gc_trainer *t, int timestep)
{
  if (t->config.min_snr_gamma <= 0)
    return 1;
  double ab = t->schedule.alphas_cumprod[timestep], snr = ab / (1 - ab);
  double clipped = fmin (snr, t->config.min_snr_gamma);
  return t->prediction == GC_PREDICTION_V ? clipped / (snr + 1) : clipped / snr;
}

/* x_t and the target of the prediction for one latent: x_t = √ᾱ·x₀ + √(1 − ᾱ)·ε, target ε, or
 * v = √ᾱ·ε − √(1 − ᾱ)·x₀. */
static void
noisy (const gc_trainer *t, float *x_t, float *target, const float *x0, const float *noise,
       int timestep, int64_t n)
{
  double ab = t->schedule.alphas_cumprod[timestep];
  float a = (float) sqrt (ab), s = (float) sqrt (1 - ab);
  for (int64_t i = 0; i < n; i++)
    {
      x_t[i] = a * x0[i] + s * noise[i];
      target[i] = t->prediction == GC_PREDICTION_V ? a * noise[i] - s * x0[i] : noise[i];
    }
}

/* The UNet's inputs of one batch, allocated for its size. */
typedef struct {
  int64_t count, lh, lw, n;  /* images, latent size, values per image */
  float *x, *target, *pred, *d_out, *noise, *context;
  double timesteps[64];
  int steps[64];
} batch_buffers;

static void
batch_free (batch_buffers *b)
{
  free (b->x), free (b->target), free (b->pred), free (b->d_out), free (b->noise);
  free (b->context);
  memset (b, 0, sizeof *b);
}

static gc_status
batch_alloc (batch_buffers *b, int64_t count, int64_t n, int64_t context, gc_error *err)
{
  b->count = count, b->n = n;
  size_t size = sizeof (float) * (size_t) (count * n);
  b->x = malloc (size), b->target = malloc (size), b->pred = malloc (size);
  b->d_out = malloc (size), b->noise = malloc (size);
  b->context = malloc (sizeof (float) * (size_t) (count * context));
  if (!b->x || !b->target || !b->pred || !b->d_out || !b->noise || !b->context)
    {
      batch_free (b);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory for a training batch");
    }
  return GC_OK;
}

/* One batch forward and backward; adds its weighted loss (times scale) to *loss. */
static gc_status
train_batch (gc_trainer *t, double scale, double *loss, const volatile int *cancel, gc_error *err)
{
  int64_t first, count;
  next_batch (t, &first, &count);
  const sample *s0 = &t->train[t->order[first]];
  int64_t n = t->channels * s0->lh * s0->lw, ctx = GC_CONTEXT_TOKENS * t->context_dim;
  batch_buffers b;
  gc_status s = batch_alloc (&b, count, n, ctx, err);
  if (s != GC_OK)
    return s;
  /* the random draws, in a fixed order: flips, noise, noise offset, timesteps */
  bool flips[64] = { false };
  for (int64_t i = 0; i < count && t->config.flip; i++)
    flips[i] = gc_torch_rng_u32 (&t->rng) & 1;
  gc_torch_randn (&t->rng, b.noise, count * n);
  if (t->config.noise_offset > 0)
    {
      float offset[64 * 16];
      int64_t c = t->channels < 16 ? t->channels : 16;
      gc_torch_randn (&t->rng, offset, count * c);
      int64_t plane = s0->lh * s0->lw;
      for (int64_t i = 0; i < count; i++)
        for (int64_t k = 0; k < c; k++)
          for (int64_t p = 0; p < plane; p++)
            b.noise[i * n + k * plane + p] += (float) t->config.noise_offset * offset[i * c + k];
    }
  for (int64_t i = 0; i < count; i++)
    {
      b.steps[i] = (int) (gc_torch_rng_u32 (&t->rng) % GC_TRAIN_STEPS);
      b.timesteps[i] = b.steps[i];
      const sample *sm = &t->train[t->order[first + i]];
      const float *x0 = flips[i] && sm->flipped ? sm->flipped : sm->latent;
      noisy (t, b.x + i * n, b.target + i * n, x0, b.noise + i * n, b.steps[i], n);
      memcpy (b.context + i * ctx, t->contexts[sm->context], sizeof (float) * (size_t) ctx);
    }
  gc_unet_cond cond = { b.context, GC_CONTEXT_TOKENS, NULL, NULL, NULL };
  gc_unet_tape *tape;
  gc_unet *unet = gc_model_unet (t->model);
  s = gc_unet_train_forward (unet, gc_model_scratch (t->model), &tape, b.pred, b.x, count, s0->lh,
                             s0->lw, b.timesteps, &cond, t->checkpointing, cancel, err);
  if (s == GC_OK)
    {
      /* loss = scale · Σᵢ wᵢ · mean((pred − target)²) / count */
      for (int64_t i = 0; i < count; i++)
        {
          double w = snr_weight (t, b.steps[i]), sum = 0;
          float k = (float) (2 * w * scale / ((double) n * (double) count));
          for (int64_t j = i * n; j < (i + 1) * n; j++)
            {
              float d = b.pred[j] - b.target[j];
              sum += (double) d * d;
              b.d_out[j] = k * d;
            }
          *loss += scale * w * sum / ((double) n * (double) count);
        }
      s = gc_unet_backward (tape, b.d_out, NULL, NULL, gc_train_lora_sink (t->lora), cancel, err);
    }
  batch_free (&b);
  return s;
}

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One optimizer step. The state only changes when it completes. */
static gc_status
train_step (gc_trainer *t, gc_train_progress *progress, const volatile int *cancel,
            gc_error *err)
{
  double start = now (), loss = 0;
  /* a failed or cancelled step leaves the state as it was: data position and generator too */
  int64_t epoch = t->epoch, position = t->position;
  gc_torch_rng rng = t->rng;
  gc_train_lora_zero_grads (t->lora);
  /* The styles keep each merged weight (rounded to the file's precision) after its first use
   * until told that the factors changed: every step starts from exact merges, whatever ran
   * before it (validation, samples, a resume), so a resumed run computes what an
   * uninterrupted one does. */
  gc_styles *styles = gc_model_styles (t->model);
  gc_styles_release (styles);
  gc_status s = GC_OK;
  for (int64_t a = 0; s == GC_OK && a < t->config.accumulation; a++)
    s = train_batch (t, 1.0 / (double) t->config.accumulation, &loss, cancel, err);
  if (s != GC_OK)
    {
      bool replanned = t->epoch != epoch;
      t->epoch = epoch, t->position = position, t->rng = rng;
      if (replanned)
        plan_epoch (t);
      return s;
    }
  double lr = learning_rate_at (&t->config, t->step);
  gc_adamw_step (&t->opt, gc_train_lora_params (t->lora), gc_train_lora_grads (t->lora), lr,
                 &t->hp);
  gc_styles_release (styles);
  t->step++;
  *progress = (gc_train_progress) { t->step, t->config.steps, t->epoch, loss, lr, now () - start };
  return GC_OK;
}

/* ------------------------------------------------------------------ validation and samples */

gc_status
gc_trainer_validation_loss (gc_trainer *t, double *loss, const volatile int *cancel,
                            gc_error *err)
{
  int k = t->config.validation_timesteps;
  double total = 0;
  gc_status s = GC_OK;
  for (size_t v = 0; s == GC_OK && v < t->n_val; v++)
    {
      const sample *sm = &t->val[v];
      int64_t n = t->channels * sm->lh * sm->lw, ctx = GC_CONTEXT_TOKENS * t->context_dim;
      batch_buffers b;
      if ((s = batch_alloc (&b, k, n, ctx, err)))
        break;
      for (int i = 0; i < k; i++)
        {
          b.steps[i] = (int) (((double) i + 0.5) * GC_TRAIN_STEPS / k);
          b.timesteps[i] = b.steps[i];
          noisy (t, b.x + i * n, b.target + i * n, sm->latent, t->val_noise[v] + i * n,
                 b.steps[i], n);
          memcpy (b.context + i * ctx, t->contexts[sm->context], sizeof (float) * (size_t) ctx);
        }
      gc_unet_cond cond = { b.context, GC_CONTEXT_TOKENS, NULL, NULL, NULL };
      s = gc_unet_forward (gc_model_unet (t->model), gc_model_scratch (t->model), b.pred, b.x, k,
                           sm->lh, sm->lw, b.timesteps, &cond, cancel, err);
      for (int64_t j = 0; s == GC_OK && j < k * n; j++)
        {
          double d = (double) b.pred[j] - b.target[j];
          total += d * d / ((double) n * k);
        }
      batch_free (&b);
    }
  if (s == GC_OK)
    *loss = total / (double) t->n_val;
  return s;
}

static gc_status
validate (gc_trainer *t, const volatile int *cancel, gc_error *err)
{
  double loss;
  gc_status s = gc_trainer_validation_loss (t, &loss, cancel, err);
  if (s != GC_OK)
    return s;
  if (isnan (t->first_val))
    t->first_val = loss;
  t->last_val = loss;
  if (t->cb.validation)
    t->cb.validation (t->cb.ctx, t->step, loss);
  return GC_OK;
}

static gc_status
make_samples (gc_trainer *t, const volatile int *cancel, gc_error *err)
{
  const gc_train_config *c = &t->config;
  int64_t w = c->sample_width ? c->sample_width : t->train[0].lw * 8;
  int64_t h = c->sample_height ? c->sample_height : t->train[0].lh * 8;
  float *image = malloc (sizeof (float) * (size_t) (3 * w * h));
  if (image == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory for a sample image");
  gc_status s = GC_OK;
  for (size_t i = 0; s == GC_OK && i < c->n_sample_prompts; i++)
    {
      gc_generate_params p = {
        .prompt = c->sample_prompts[i], .negative = "", .sampler = c->sample_sampler,
        .schedule = GC_SCHEDULE_DEFAULT, .steps = c->sample_steps, .cfg = c->sample_cfg,
        .seed = c->sample_seed, .width = w, .height = h, .clip_skip = c->clip_skip,
      };
      s = gc_generate (t->model, &p, image, NULL, NULL, cancel, err);
      if (s == GC_OK && t->cb.sample)
        t->cb.sample (t->cb.ctx, t->step, i, image, w, h);
    }
  free (image);
  return s;
}

/* ------------------------------------------------------------------ the run */

static bool
due (int64_t every, int64_t step, int64_t steps)
{
  return step == steps || (every > 0 && step % every == 0);
}

gc_status
gc_trainer_run (gc_trainer *t, const volatile int *cancel, gc_error *err)
{
  const gc_train_config *c = &t->config;
  gc_status s = GC_OK;
  if (isnan (t->first_val))
    s = validate (t, cancel, err);
  int64_t saved = t->step;
  while (s == GC_OK && t->step < c->steps)
    {
      if (cancel && *cancel)
        {
          s = gc_error_set (err, GC_ERR_CANCELLED, "cancelled");
          break;
        }
      gc_train_progress progress;
      if ((s = train_step (t, &progress, cancel, err)))
        break;
      if (t->cb.step)
        t->cb.step (t->cb.ctx, &progress);
      if (due (c->validate_every, t->step, c->steps))
        s = validate (t, cancel, err);
      if (s == GC_OK && c->n_sample_prompts > 0 && due (c->sample_every, t->step, c->steps))
        s = make_samples (t, cancel, err);
      if (s == GC_OK && t->state_path && due (c->checkpoint_every, t->step, c->steps))
        {
          s = gc_trainer_save_state (t, t->state_path, err);
          saved = t->step;
          if (s == GC_OK && t->cb.checkpoint)
            t->cb.checkpoint (t->cb.ctx, t->step, t->state_path);
        }
    }
  if (s == GC_ERR_CANCELLED && t->state_path && saved != t->step)
    {
      /* keep what was done: the state of the last complete step */
      gc_error save_err = { 0 };
      if (gc_trainer_save_state (t, t->state_path, &save_err) == GC_OK && t->cb.checkpoint)
        t->cb.checkpoint (t->cb.ctx, t->step, t->state_path);
    }
  return s;
}

/* ------------------------------------------------------------------ the saved state */

static void
rng_to_hex (const gc_torch_rng *rng, char *hex)
{
  char *p = hex;
  for (int i = 0; i < GC_MT19937_N; i++)
    p += sprintf (p, "%08" PRIx32, rng->state[i]);
  uint64_t cached;
  memcpy (&cached, &rng->cached_normal, sizeof cached);
  sprintf (p, ":%d:%d:%016" PRIx64, rng->next, (int) rng->has_cached_normal, cached);
}

static bool
rng_from_hex (gc_torch_rng *rng, const char *hex)
{
  if (hex == NULL || strlen (hex) < 8 * GC_MT19937_N)
    return false;
  for (int i = 0; i < GC_MT19937_N; i++)
    {
      char word[9];
      memcpy (word, hex + 8 * i, 8);
      word[8] = '\0';
      char *end;
      rng->state[i] = (uint32_t) strtoul (word, &end, 16);
      if (*end != '\0')
        return false;
    }
  int next, has;
  uint64_t cached;
  if (sscanf (hex + 8 * GC_MT19937_N, ":%d:%d:%" SCNx64, &next, &has, &cached) != 3 || next < 0
      || next > GC_MT19937_N)
    return false;
  rng->next = next;
  rng->has_cached_normal = has != 0;
  memcpy (&rng->cached_normal, &cached, sizeof cached);
  return true;
}

gc_status
gc_trainer_save_state (gc_trainer *t, const char *path, gc_error *err)
{
  int64_t size = gc_train_lora_size (t->lora);
  gc_st_entry entries[3] = {
    { "lora", GC_DTYPE_F32, 1, { size } },
    { "adamw.m", GC_DTYPE_F32, 1, { size } },
    { "adamw.v", GC_DTYPE_F32, 1, { size } },
  };
  const void *data[3] = { gc_train_lora_params (t->lora), t->opt.m, t->opt.v };
  char version[16], step[32], adam[32], epoch[32], position[32], first[40], last[40];
  char *rng = malloc (8 * GC_MT19937_N + 64);
  if (rng == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  snprintf (version, sizeof version, "%d", STATE_VERSION);
  snprintf (step, sizeof step, "%" PRId64, t->step);
  snprintf (adam, sizeof adam, "%" PRId64, t->opt.step);
  snprintf (epoch, sizeof epoch, "%" PRId64, t->epoch);
  snprintf (position, sizeof position, "%" PRId64, t->position);
  gc_c_snprintf (first, sizeof first, "%.17g", t->first_val);
  gc_c_snprintf (last, sizeof last, "%.17g", t->last_val);
  rng_to_hex (&t->rng, rng);
  const char *metadata[] = {
    "gouache_train_state", version, "step", step, "adamw_step", adam, "epoch", epoch,
    "position", position, "rng", rng, "validation_first", first, "validation_last", last,
    "settings", t->settings, "data_sha256", t->data_hash,
  };
  gc_status s = gc_safetensors_write (path, entries, data, 3, metadata,
                                      sizeof metadata / sizeof *metadata / 2, err);
  free (rng);
  return s;
}

static bool
parse_int (const char *text, int64_t *out)
{
  char *end;
  if (text == NULL)
    return false;
  long long v = strtoll (text, &end, 10);
  *out = v;
  return *end == '\0' && end != text && v >= 0;
}

/* The first setting that differs ("rank=16" against "rank=8"), for the message. */
static void
first_difference (const char *a, const char *b, char *out, size_t size)
{
  size_t i = 0, start = 0;
  while (a[i] && a[i] == b[i])
    if (a[i++] == ' ')
      start = i;
  size_t ea = strcspn (a + start, " "), eb = strcspn (b + start, " ");
  snprintf (out, size, "saved %.*s, now %.*s", (int) eb, b + start, (int) ea, a + start);
}

gc_status
gc_trainer_resume (gc_trainer *t, const char *path, gc_error *err)
{
  gc_safetensors *file;
  gc_status s = gc_safetensors_open (&file, path, err);
  if (s != GC_OK)
    return s;
  int64_t size = gc_train_lora_size (t->lora), step = 0, adam = 0, epoch = 0, position = 0;
  const char *settings = gc_safetensors_metadata (file, "settings");
  const char *data = gc_safetensors_metadata (file, "data_sha256");
  const char *version = gc_safetensors_metadata (file, "gouache_train_state");
  const gc_st_tensor *tensors[3] = { gc_safetensors_find (file, "lora"),
                                     gc_safetensors_find (file, "adamw.m"),
                                     gc_safetensors_find (file, "adamw.v") };
  gc_torch_rng rng;
  if (version == NULL || strcmp (version, "1") != 0)
    s = gc_error_set (err, GC_ERR_FORMAT, "%s is not a Gouache training state", path);
  else if (settings == NULL || strcmp (settings, t->settings) != 0)
    {
      char what[256];
      first_difference (t->settings, settings ? settings : "", what, sizeof what);
      s = gc_error_set (err, GC_ERR_MISMATCH, "%s was saved by a run with other settings (%s)",
                        path, what);
    }
  else if (data == NULL || strcmp (data, t->data_hash) != 0)
    s = gc_error_set (err, GC_ERR_MISMATCH, "%s was saved by a run on other images or captions",
                      path);
  for (int i = 0; s == GC_OK && i < 3; i++)
    if (tensors[i] == NULL || tensors[i]->dtype != GC_DTYPE_F32 || tensors[i]->ndim != 1
        || tensors[i]->shape[0] != size)
      s = gc_error_set (err, GC_ERR_FORMAT, "%s: the saved LoRA or optimizer state is missing or "
                        "has the wrong size", path);
  if (s == GC_OK
      && (!parse_int (gc_safetensors_metadata (file, "step"), &step)
          || !parse_int (gc_safetensors_metadata (file, "adamw_step"), &adam)
          || !parse_int (gc_safetensors_metadata (file, "epoch"), &epoch)
          || !parse_int (gc_safetensors_metadata (file, "position"), &position)
          || !rng_from_hex (&rng, gc_safetensors_metadata (file, "rng"))
          || step > t->config.steps))
    s = gc_error_set (err, GC_ERR_FORMAT, "%s: the saved step, epoch or generator is malformed",
                      path);
  if (s == GC_OK)
    {
      memcpy (gc_train_lora_params (t->lora), tensors[0]->data, sizeof (float) * (size_t) size);
      memcpy (t->opt.m, tensors[1]->data, sizeof (float) * (size_t) size);
      memcpy (t->opt.v, tensors[2]->data, sizeof (float) * (size_t) size);
      t->opt.step = adam;
      t->step = step;
      t->epoch = epoch;
      t->rng = rng;
      /* epoch 0: no batch was drawn yet (the first one plans epoch 1) */
      t->n_batches = 0;
      if (epoch > 0)
        plan_epoch (t);
      t->position = position < t->n_batches ? position : t->n_batches;
      const char *first = gc_safetensors_metadata (file, "validation_first");
      const char *last = gc_safetensors_metadata (file, "validation_last");
      t->first_val = first ? gc_c_strtod (first, NULL) : NAN;
      t->last_val = last ? gc_c_strtod (last, NULL) : NAN;
      gc_styles_release (gc_model_styles (t->model));
    }
  gc_safetensors_close (file);
  return s;
}

/* ------------------------------------------------------------------ the result */

gc_status
gc_trainer_write_lora (gc_trainer *t, const char *path, const char *const *metadata,
                       size_t n_metadata, gc_error *err)
{
  const gc_train_config *c = &t->config;
  char steps[32], max_steps[32], lr[40], warmup[32], batch[32], accumulation[32], images[32];
  char gamma[40], offset[40], seed[32], epoch[32], optimizer[96], clip_skip[16], alpha[40];
  snprintf (steps, sizeof steps, "%" PRId64, t->step);
  snprintf (max_steps, sizeof max_steps, "%" PRId64, c->steps);
  gc_c_snprintf (lr, sizeof lr, "%g", c->learning_rate);
  snprintf (warmup, sizeof warmup, "%" PRId64, c->warmup);
  snprintf (batch, sizeof batch, "%" PRId64, c->batch);
  snprintf (accumulation, sizeof accumulation, "%" PRId64, c->accumulation);
  snprintf (images, sizeof images, "%zu", t->n_train);
  gc_c_snprintf (gamma, sizeof gamma, "%g", c->min_snr_gamma);
  gc_c_snprintf (offset, sizeof offset, "%g", c->noise_offset);
  snprintf (seed, sizeof seed, "%" PRIu64, c->seed);
  snprintf (epoch, sizeof epoch, "%" PRId64, t->epoch);
  gc_c_snprintf (optimizer, sizeof optimizer, "torch.optim.AdamW(weight_decay=%g)", c->weight_decay);
  snprintf (clip_skip, sizeof clip_skip, "%d",
            c->clip_skip ? c->clip_skip : gc_model_get_info (t->model)->default_clip_skip);
  gc_c_snprintf (alpha, sizeof alpha, "%g", c->alpha);
  const char *ours[] = {
    "ss_steps", steps, "ss_max_train_steps", max_steps, "ss_learning_rate", lr,
    "ss_unet_lr", lr, "ss_text_encoder_lr", "0", "ss_network_train_unet_only", "True",
    "ss_lr_scheduler", c->schedule == GC_LR_COSINE ? "cosine" : "constant",
    "ss_lr_warmup_steps", warmup, "ss_batch_size_per_device", batch,
    "ss_gradient_accumulation_steps", accumulation, "ss_num_train_images", images,
    "ss_num_reg_images", "0", "ss_min_snr_gamma", gamma, "ss_noise_offset", offset,
    "ss_seed", seed, "ss_epoch", epoch, "ss_optimizer", optimizer, "ss_clip_skip", clip_skip,
    "ss_flip_aug", c->flip ? "True" : "False", "ss_cache_latents", "True",
    "ss_mixed_precision", "no", "ss_gradient_checkpointing", t->checkpointing ? "True" : "False",
    "ss_training_comment", "trained with Gouache", "gouache_training_alpha", alpha,
  };
  size_t n_ours = sizeof ours / sizeof *ours / 2;
  const char **all = malloc (sizeof *all * 2 * (n_ours + n_metadata));
  if (all == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  memcpy (all, ours, sizeof ours);
  memcpy (all + 2 * n_ours, metadata, sizeof *all * 2 * n_metadata);
  gc_status s = gc_train_lora_write (t->lora, path, all, n_ours + n_metadata, err);
  free (all);
  return s;
}

int64_t
gc_trainer_step (const gc_trainer *t)
{
  return t->step;
}

double
gc_trainer_first_validation (const gc_trainer *t)
{
  return t->first_val;
}

double
gc_trainer_last_validation (const gc_trainer *t)
{
  return t->last_val;
}

gc_train_lora *
gc_trainer_lora (gc_trainer *t)
{
  return t->lora;
}

const gc_train_config *
gc_trainer_config (const gc_trainer *t)
{
  return &t->config;
}

bool
gc_trainer_checkpointing (const gc_trainer *t)
{
  return t->checkpointing;
}

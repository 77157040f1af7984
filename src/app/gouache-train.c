/* gouache-train.c: training a style, from a folder of images to a LoRA in the style library
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-train"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gc-threads.h"
#include "gouache-data.h"
#include "gouache-dataset.h"
#include "gouache-error.h"
#include "gouache-file-hash.h"
#include "gouache-png.h"
#include "gouache-train.h"

/* Requests ----------------------------------------------------------------- */

GouacheTrainRequest *
gouache_train_request_new (void)
{
  GouacheTrainRequest *r = g_new0 (GouacheTrainRequest, 1);
  gc_train_config c;

  gc_train_config_defaults (&c);
  r->resolution = 512;
  r->steps = c.steps;
  r->rank = c.rank;
  r->alpha = c.alpha;
  r->learning_rate = c.learning_rate;
  r->batch = c.batch;
  r->accumulation = c.accumulation;
  r->schedule = g_strdup ("constant");
  r->warmup = c.warmup;
  r->weight_decay = c.weight_decay;
  r->min_snr_gamma = c.min_snr_gamma;
  r->noise_offset = c.noise_offset;
  r->flip = c.flip;
  r->checkpointing = g_strdup ("auto");
  r->seed = c.seed;
  r->targets = g_strdup ("attention,ff,proj");
  r->validate_every = c.validate_every;
  r->validation_timesteps = c.validation_timesteps;
  r->sample_every = c.sample_every;
  r->sample_steps = c.sample_steps;
  r->checkpoint_every = 100;
  return r;
}

GouacheTrainRequest *
gouache_train_request_copy (const GouacheTrainRequest *request)
{
  GouacheTrainRequest *copy = g_memdup2 (request, sizeof *request);

  copy->model_path = g_strdup (request->model_path);
  copy->dataset_path = g_strdup (request->dataset_path);
  copy->output_path = g_strdup (request->output_path);
  copy->name = g_strdup (request->name);
  copy->trigger = g_strdup (request->trigger);
  copy->schedule = g_strdup (request->schedule);
  copy->checkpointing = g_strdup (request->checkpointing);
  copy->targets = g_strdup (request->targets);
  copy->sample_prompts = g_strdupv (request->sample_prompts);
  return copy;
}

void
gouache_train_request_free (GouacheTrainRequest *request)
{
  if (request == NULL)
    return;

  g_free (request->model_path);
  g_free (request->dataset_path);
  g_free (request->output_path);
  g_free (request->name);
  g_free (request->trigger);
  g_free (request->schedule);
  g_free (request->checkpointing);
  g_free (request->targets);
  g_strfreev (request->sample_prompts);
  g_free (request);
}

static void
add_string (JsonBuilder *b,
            const char  *key,
            const char  *value)
{
  json_builder_set_member_name (b, key);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_int (JsonBuilder *b,
         const char  *key,
         gint64       value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

static void
add_double (JsonBuilder *b,
            const char  *key,
            double       value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_double_value (b, value);
}

static void
add_bool (JsonBuilder *b,
          const char  *key,
          gboolean     value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_boolean_value (b, value);
}

char *
gouache_train_request_to_json (const GouacheTrainRequest *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, r->seed);

  json_builder_begin_object (b);
  add_string (b, "model", r->model_path);
  add_string (b, "dataset", r->dataset_path);
  add_string (b, "output", r->output_path);
  add_string (b, "name", r->name);
  add_string (b, "trigger", r->trigger);
  add_int (b, "resolution", r->resolution);
  add_int (b, "steps", r->steps);
  add_int (b, "rank", r->rank);
  add_double (b, "alpha", r->alpha);
  add_double (b, "learning_rate", r->learning_rate);
  add_int (b, "batch", r->batch);
  add_int (b, "accumulation", r->accumulation);
  add_string (b, "schedule", r->schedule);
  add_int (b, "warmup", r->warmup);
  add_double (b, "weight_decay", r->weight_decay);
  add_double (b, "min_snr_gamma", r->min_snr_gamma);
  add_double (b, "noise_offset", r->noise_offset);
  add_bool (b, "flip", r->flip);
  add_string (b, "checkpointing", r->checkpointing);
  add_string (b, "seed", seed); /* a string: JSON numbers do not hold every 64-bit seed */
  add_string (b, "targets", r->targets);
  add_int (b, "validate_every", r->validate_every);
  add_int (b, "validation_timesteps", r->validation_timesteps);
  json_builder_set_member_name (b, "sample_prompts");
  json_builder_begin_array (b);
  for (char **p = r->sample_prompts; p && *p; p++)
    json_builder_add_string_value (b, *p);
  json_builder_end_array (b);
  add_int (b, "sample_every", r->sample_every);
  add_int (b, "sample_steps", r->sample_steps);
  add_int (b, "checkpoint_every", r->checkpoint_every);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

static char *
get_string (JsonObject *o,
            const char *key,
            const char *fallback)
{
  JsonNode *node = json_object_get_member (o, key);

  if (node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  return g_strdup (fallback);
}

GouacheTrainRequest *
gouache_train_request_from_json (const char  *json,
                                 GError     **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GouacheTrainRequest) r = gouache_train_request_new ();
  g_autofree char *seed = NULL;
  JsonObject *o;
  JsonArray *prompts;

  if (!json_parser_load_from_data (parser, json, -1, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                           _("The training parameters are not a JSON object"));
      return NULL;
    }
  o = json_node_get_object (json_parser_get_root (parser));

#define INT(key, field) r->field = json_object_get_int_member_with_default (o, key, r->field)
#define DOUBLE(key, field) r->field = json_object_get_double_member_with_default (o, key, r->field)
#define BOOL(key, field) r->field = json_object_get_boolean_member_with_default (o, key, r->field)
  r->model_path = get_string (o, "model", NULL);
  r->dataset_path = get_string (o, "dataset", NULL);
  r->output_path = get_string (o, "output", NULL);
  r->name = get_string (o, "name", NULL);
  r->trigger = get_string (o, "trigger", NULL);
  INT ("resolution", resolution);
  INT ("steps", steps);
  INT ("rank", rank);
  DOUBLE ("alpha", alpha);
  DOUBLE ("learning_rate", learning_rate);
  INT ("batch", batch);
  INT ("accumulation", accumulation);
  g_free (r->schedule);
  r->schedule = get_string (o, "schedule", "constant");
  INT ("warmup", warmup);
  DOUBLE ("weight_decay", weight_decay);
  DOUBLE ("min_snr_gamma", min_snr_gamma);
  DOUBLE ("noise_offset", noise_offset);
  BOOL ("flip", flip);
  g_free (r->checkpointing);
  r->checkpointing = get_string (o, "checkpointing", "auto");
  seed = get_string (o, "seed", "0");
  r->seed = g_ascii_strtoull (seed, NULL, 10);
  g_free (r->targets);
  r->targets = get_string (o, "targets", "attention,ff,proj");
  INT ("validate_every", validate_every);
  INT ("validation_timesteps", validation_timesteps);
  INT ("sample_every", sample_every);
  INT ("sample_steps", sample_steps);
  INT ("checkpoint_every", checkpoint_every);
#undef INT
#undef DOUBLE
#undef BOOL
  prompts = json_object_has_member (o, "sample_prompts")
              ? json_object_get_array_member (o, "sample_prompts") : NULL;
  if (prompts && json_array_get_length (prompts) > 0)
    {
      r->sample_prompts = g_new0 (char *, json_array_get_length (prompts) + 1);
      for (guint i = 0; i < json_array_get_length (prompts); i++)
        r->sample_prompts[i] = g_strdup (json_array_get_string_element (prompts, i));
    }
  return g_steal_pointer (&r);
}

void
gouache_train_result_free (GouacheTrainResult *result)
{
  if (result == NULL)
    return;

  g_free (result->output_path);
  g_free (result->output_hash);
  g_free (result);
}

/* Checking a request --------------------------------------------------------- */

static gboolean
parse_targets (const char  *text,
               unsigned    *targets,
               GError     **error)
{
  static const struct { const char *name; unsigned bits; } kinds[] = {
    { "attention", GC_TRAIN_TARGET_ATTENTION }, { "ff", GC_TRAIN_TARGET_FF },
    { "proj", GC_TRAIN_TARGET_PROJ }, { "resnet", GC_TRAIN_TARGET_RESNET },
    { "sample", GC_TRAIN_TARGET_SAMPLE }, { "stem", GC_TRAIN_TARGET_STEM },
    { "all", GC_TRAIN_TARGET_ALL },
  };
  g_auto (GStrv) parts = g_strsplit (text ? text : "", ",", -1);

  *targets = 0;
  for (char **part = parts; *part; part++)
    {
      char *name = g_strstrip (*part);
      gsize k;

      if (*name == '\0')
        continue;
      for (k = 0; k < G_N_ELEMENTS (kinds) && strcmp (kinds[k].name, name) != 0; k++)
        ;
      if (k == G_N_ELEMENTS (kinds))
        {
          g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                       _("Unknown LoRA target “%s” (use attention, ff, proj, resnet, sample, stem or all)"),
                       name);
          return FALSE;
        }
      *targets |= kinds[k].bits;
    }
  if (*targets == 0)
    *targets = GC_TRAIN_TARGET_DEFAULT;
  return TRUE;
}

static gboolean
check_request (const GouacheTrainRequest  *r,
               GError                    **error)
{
  const char *missing = r->model_path == NULL ? _("Training needs a model")
                        : r->dataset_path == NULL ? _("Training needs a folder of images")
                        : r->output_path == NULL ? _("Training needs a file to write the style to")
                        : NULL;

  if (missing)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID, missing);
      return FALSE;
    }
  if (r->resolution < 64 || r->resolution > 2048 || r->resolution % 64 != 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("The resolution must be a multiple of 64 from 64 to 2048 (not %d)"),
                   r->resolution);
      return FALSE;
    }
  if (g_strcmp0 (r->checkpointing, "auto") != 0 && g_strcmp0 (r->checkpointing, "on") != 0 &&
      g_strcmp0 (r->checkpointing, "off") != 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("Gradient checkpointing is auto, on or off (not “%s”)"), r->checkpointing);
      return FALSE;
    }
  if (g_strcmp0 (r->schedule, "constant") != 0 && g_strcmp0 (r->schedule, "cosine") != 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("Unknown learning-rate schedule “%s” (use constant or cosine)"), r->schedule);
      return FALSE;
    }
  return TRUE;
}

/* AUTOMATIC1111's old model hash: SHA-256 of 64 KiB at 1 MiB into the file, 8 hex digits
 * (kohya's ss_sd_model_hash). */
static char *
legacy_model_hash (const char *path)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) stream = g_file_read (file, NULL, NULL);
  g_autofree guchar *block = g_malloc (0x10000);
  gsize got = 0;
  char *hex;

  if (stream == NULL || !g_seekable_seek (G_SEEKABLE (stream), 0x100000, G_SEEK_SET, NULL, NULL) ||
      !g_input_stream_read_all (G_INPUT_STREAM (stream), block, 0x10000, &got, NULL, NULL))
    return g_strdup ("");
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, block, got);
  hex[8] = '\0';
  return hex;
}

/* The file a model's hashes are taken of: the checkpoint, or a diffusers folder's UNet. */
static char *
hash_source (const char *model)
{
  if (!g_file_test (model, G_FILE_TEST_IS_DIR))
    return g_strdup (model);
  return g_build_filename (model, "unet", "diffusion_pytorch_model.safetensors", NULL);
}

/* The style's name: the request's, else the output's file name without ".safetensors". */
static char *
style_name (const GouacheTrainRequest *r)
{
  g_autofree char *base = NULL;

  if (r->name && r->name[0])
    return g_strdup (r->name);
  base = g_path_get_basename (r->output_path);
  if (g_str_has_suffix (base, ".safetensors"))
    base[strlen (base) - strlen (".safetensors")] = '\0';
  return g_steal_pointer (&base);
}

static void
absolute (char **path)
{
  char *full = *path ? g_canonicalize_filename (*path, NULL) : NULL;

  g_free (*path);
  *path = full;
}

/* The job ------------------------------------------------------------------- */

typedef struct {
  GouacheRunStore             *store;
  gint64                       run;
  char                        *folder;     /* runs/<id> */
  char                       **prompts;
  const GouacheTrainCallbacks *callbacks;
  double                       seconds;    /* summed over this job's steps */
  gint64                       steps;
} Job;

static void
job_stage (Job               *job,
           GouacheTrainStage  stage,
           gint64             done,
           gint64             total)
{
  if (job->callbacks && job->callbacks->stage)
    job->callbacks->stage (job->callbacks->data, stage, done, total);
}

static void
on_prepare (void    *ctx,
            int64_t  done,
            int64_t  total)
{
  job_stage (ctx, GOUACHE_TRAIN_STAGE_CACHING, done, total);
}

static void
on_step (void                    *ctx,
         const gc_train_progress *p)
{
  Job *job = ctx;
  GouacheRunLoss loss = { p->step, p->loss, p->learning_rate, p->seconds };
  g_autoptr (GError) error = NULL;

  job->seconds += p->seconds;
  job->steps++;
  if (!gouache_run_store_add_loss (job->store, job->run, &loss, &error))
    g_warning ("%s", error->message);
  if (job->callbacks && job->callbacks->step)
    job->callbacks->step (job->callbacks->data, p);
}

static void
on_validation (void    *ctx,
               int64_t  step,
               double   loss)
{
  Job *job = ctx;
  g_autoptr (GError) error = NULL;

  if (!gouache_run_store_add_validation (job->store, job->run, step, loss, &error))
    g_warning ("%s", error->message);
  if (job->callbacks && job->callbacks->validation)
    job->callbacks->validation (job->callbacks->data, step, loss);
}

static void
on_sample (void        *ctx,
           int64_t      step,
           size_t       index,
           const float *image,
           int64_t      width,
           int64_t      height)
{
  Job *job = ctx;
  g_autofree char *name = g_strdup_printf ("sample-%06" G_GINT64_FORMAT "-%02zu.png", step, index);
  g_autofree char *path = g_build_filename (job->folder, name, NULL);
  g_autofree guint8 *rgb = g_malloc ((gsize) width * height * 3);
  g_autoptr (GdkPixbuf) pixbuf = NULL;
  g_autoptr (GError) error = NULL;
  GouachePngText text = { "parameters", job->prompts[index] };
  GouacheRunSample sample = { step, (guint) index, job->prompts[index], path };

  gouache_png_rgb8_from_float (rgb, image, (guint) width, (guint) height);
  if (!gouache_png_save_rgb8 (path, rgb, (guint) width, (guint) height, &text, 1, &error) ||
      !gouache_run_store_add_sample (job->store, job->run, &sample, &error))
    {
      g_warning ("%s", error->message);
      return;
    }
  if (job->callbacks && job->callbacks->sample)
    {
      g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&rgb), (gsize) width * height * 3);

      pixbuf = gdk_pixbuf_new_from_bytes (bytes, GDK_COLORSPACE_RGB, FALSE, 8, (int) width,
                                          (int) height, (int) width * 3);
      job->callbacks->sample (job->callbacks->data, step, (guint) index, pixbuf, path);
    }
}

/* The configuration of the engine's trainer for the request. */
static void
config_of (const GouacheTrainRequest *r,
           unsigned                   targets,
           gc_train_config           *c)
{
  gc_train_config_defaults (c);
  c->rank = r->rank;
  c->alpha = r->alpha;
  c->targets = targets;
  c->steps = r->steps;
  c->batch = r->batch;
  c->accumulation = r->accumulation;
  c->learning_rate = r->learning_rate;
  c->schedule = g_strcmp0 (r->schedule, "cosine") == 0 ? GC_LR_COSINE : GC_LR_CONSTANT;
  c->warmup = r->warmup;
  c->weight_decay = r->weight_decay;
  c->min_snr_gamma = r->min_snr_gamma;
  c->noise_offset = r->noise_offset;
  c->flip = r->flip;
  c->checkpointing = g_strcmp0 (r->checkpointing, "on") == 0    ? GC_CHECKPOINTING_ON
                     : g_strcmp0 (r->checkpointing, "off") == 0 ? GC_CHECKPOINTING_OFF
                                                                : GC_CHECKPOINTING_AUTO;
  c->seed = r->seed;
  c->validate_every = r->validate_every;
  c->validation_timesteps = r->validation_timesteps;
  c->sample_prompts = (const char *const *) r->sample_prompts;
  c->n_sample_prompts = r->sample_prompts ? g_strv_length (r->sample_prompts) : 0;
  c->sample_every = r->sample_every;
  c->sample_steps = r->sample_steps;
  c->sample_width = c->sample_height = r->resolution;
  c->checkpoint_every = r->checkpoint_every;
}

/* Images of the dataset, loaded and captioned; the validation ones apart. */
typedef struct {
  GArray    *train;      /* gc_train_image */
  GArray    *validation;
  GPtrArray *owned;      /* pixels and captions */
  GPtrArray *files;      /* GouacheRunFile, in training order */
} LoadedImages;

static void
loaded_images_clear (LoadedImages *l)
{
  g_clear_pointer (&l->train, g_array_unref);
  g_clear_pointer (&l->validation, g_array_unref);
  g_clear_pointer (&l->owned, g_ptr_array_unref);
  g_clear_pointer (&l->files, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (LoadedImages, loaded_images_clear)

static gboolean
load_images (Job                       *job,
             const GouacheDataset      *dataset,
             const GouacheTrainRequest *r,
             int                        multiple,
             LoadedImages              *out,
             const volatile int        *cancel,
             GError                   **error)
{
  g_autoptr (GArray) buckets = gouache_dataset_buckets (r->resolution, multiple);
  guint n = dataset->images->len;
  gboolean hold_out = n >= 20;

  out->train = g_array_new (FALSE, FALSE, sizeof (gc_train_image));
  out->validation = g_array_new (FALSE, FALSE, sizeof (gc_train_image));
  out->owned = g_ptr_array_new_with_free_func (g_free);
  out->files = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_run_file_free);

  for (guint i = 0; i < n; i++)
    {
      const GouacheDatasetImage *image = g_ptr_array_index (dataset->images, i);
      GouacheBucket bucket = gouache_dataset_bucket_for (buckets, image->width, image->height);
      char *caption = gouache_dataset_caption (image, r->trigger);
      float *pixels;
      gc_train_image item;

      g_ptr_array_add (out->owned, caption);
      if (cancel && *cancel)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Cancelled"));
          return FALSE;
        }
      job_stage (job, GOUACHE_TRAIN_STAGE_LOADING, i, n);
      pixels = gouache_dataset_load (image, bucket, error);
      if (pixels == NULL)
        return FALSE;
      g_ptr_array_add (out->owned, pixels);
      item = (gc_train_image) { pixels, bucket.width, bucket.height, caption };
      if (hold_out && i % 10 == 9)
        g_array_append_val (out->validation, item);
      else
        {
          GouacheRunFile *file = g_new0 (GouacheRunFile, 1);

          file->path = g_strdup (image->path);
          file->sha256 = g_strdup (image->sha256);
          file->caption = g_strdup (caption);
          file->width = bucket.width;
          file->height = bucket.height;
          g_ptr_array_add (out->files, file);
          g_array_append_val (out->train, item);
        }
    }
  return TRUE;
}

/* The kohya metadata the app knows: names, hashes, the data. */
static GPtrArray *
lora_metadata (const GouacheTrainRequest *r,
               const GouacheDataset      *dataset,
               const char                *model_hash,
               gint64                     started)
{
  GPtrArray *m = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *name = style_name (r);
  g_autofree char *model_name = g_path_get_basename (r->model_path);
  g_autofree char *folder = g_path_get_basename (dataset->folder);
  g_autofree char *hashed = hash_source (r->model_path);


#define PAIR(k, v) (g_ptr_array_add (m, g_strdup (k)), g_ptr_array_add (m, (v)))
  PAIR ("ss_output_name", g_strdup (name));
  PAIR ("ss_sd_model_name", g_strdup (model_name));
  PAIR ("ss_sd_model_hash", legacy_model_hash (hashed));
  PAIR ("ss_new_sd_model_hash", g_strdup (model_hash));
  PAIR ("ss_tag_frequency", gouache_dataset_tag_frequency (dataset, r->trigger));
  PAIR ("ss_dataset_dirs",
        g_strdup_printf ("{\"%s\": {\"n_repeats\": 1, \"img_count\": %u}}", folder,
                         dataset->images->len));
  PAIR ("ss_resolution", g_strdup_printf ("(%d, %d)", r->resolution, r->resolution));
  PAIR ("ss_enable_bucket", g_strdup ("True"));
  PAIR ("ss_training_started_at", g_strdup_printf ("%" G_GINT64_FORMAT, started));
  PAIR ("ss_training_finished_at",
        g_strdup_printf ("%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC));
  PAIR ("gouache_dataset_sha256", g_strdup (dataset->hash));
#undef PAIR
  return m;
}

static void
finish_run (Job              *job,
            GouacheRunStatus  status,
            gc_trainer       *trainer,
            const char       *output,
            const char       *output_hash,
            const char       *message)
{
  GouacheRun run = { .id = job->run, .status = status,
                     .output_path = (char *) output, .output_hash = (char *) output_hash,
                     .steps = trainer ? gc_trainer_step (trainer) : 0,
                     .seconds_per_step = job->steps ? job->seconds / job->steps : 0,
                     .val_loss_first = trainer ? gc_trainer_first_validation (trainer) : NAN,
                     .val_loss_last = trainer ? gc_trainer_last_validation (trainer) : NAN,
                     .error = (char *) message };
  g_autoptr (GError) error = NULL;

  if (job->run && !gouache_run_store_finish (job->store, &run, &error))
    g_warning ("%s", error->message);
}

GouacheTrainResult *
gouache_train_run (const GouacheTrainRequest    *request_in,
                   GouacheRunStore              *store,
                   const GouacheTrainCallbacks  *callbacks,
                   const volatile int           *cancel,
                   GError                      **error)
{
  g_autoptr (GouacheTrainRequest) r = NULL;
  g_autoptr (GouacheRun) previous = NULL;
  g_autoptr (GouacheDataset) dataset = NULL;
  g_autofree char *vocabulary = gouache_data_file (GOUACHE_DATA_VOCABULARY);
  g_autofree char *model_hash = NULL;
  g_autofree char *hashed = NULL;
  g_autofree char *report = NULL;
  g_autofree char *state_path = NULL;
  g_autofree char *parameters = NULL;
  g_autofree char *runs_folder = NULL;
  g_autofree char *output_hash = NULL;
  g_autoptr (GPtrArray) metadata = NULL;
  g_auto (LoadedImages) images = { 0 };
  g_autoptr (GError) local = NULL;
  Job job = { .store = store, .callbacks = callbacks };
  gc_model *model = NULL;
  gc_trainer *trainer = NULL;
  gc_train_config config;
  gc_train_callbacks core_callbacks = { on_prepare, on_step, on_validation, on_sample, NULL, &job };
  gc_error err = { 0 };
  gc_status status;
  GouacheTrainResult *result = NULL;
  gint64 started = g_get_real_time () / G_USEC_PER_SEC;
  unsigned targets;

  g_return_val_if_fail (request_in != NULL, NULL);
  g_return_val_if_fail (GOUACHE_IS_RUN_STORE (store), NULL);

  /* a resumed run takes its own parameters */
  if (request_in->resume)
    {
      previous = gouache_run_store_get (store, request_in->resume, error);
      if (previous == NULL)
        return NULL;
      if (previous->status == GOUACHE_RUN_FINISHED)
        {
          g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                       _("Training run %lld is finished: there is nothing to resume"),
                       (long long) previous->id);
          return NULL;
        }
      r = gouache_train_request_from_json (previous->parameters, error);
      if (r == NULL)
        return NULL;
      r->threads = request_in->threads;
    }
  else
    {
      /* recorded with absolute paths, so that a resume works from anywhere */
      r = gouache_train_request_copy (request_in);
      absolute (&r->model_path);
      absolute (&r->dataset_path);
      absolute (&r->output_path);
    }

  if (!check_request (r, error) || !parse_targets (r->targets, &targets, error))
    return NULL;
  gc_threads_set (r->threads);

  job_stage (&job, GOUACHE_TRAIN_STAGE_LOADING, 0, 0);
  dataset = gouache_dataset_scan (r->dataset_path, r->resolution / 2, NULL, error);
  if (dataset == NULL)
    return NULL;
  if (dataset->images->len == 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("“%s” holds no usable image (PNG, JPEG or WebP, at least %d pixels on the shorter side)"),
                   r->dataset_path, r->resolution / 2);
      return NULL;
    }
  if (previous && g_strcmp0 (previous->dataset_hash, dataset->hash) != 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_MISMATCH,
                   _("The images or captions in “%s” changed since run %lld started: it cannot be resumed"),
                   r->dataset_path, (long long) previous->id);
      return NULL;
    }

  hashed = hash_source (r->model_path);
  model_hash = gouache_file_hash_get (hashed, GOUACHE_FILE_HASH_SHA256, NULL, error);
  if (model_hash == NULL)
    return NULL;
  if (previous && g_strcmp0 (previous->model_hash, model_hash) != 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_MISMATCH,
                   _("The model “%s” changed since run %lld started: it cannot be resumed"),
                   r->model_path, (long long) previous->id);
      return NULL;
    }
  if ((status = gc_model_open (&model, r->model_path, vocabulary, &err)) != GC_OK)
    {
      gouache_set_error_from_gc (error, &err, NULL);
      return NULL;
    }

  report = gouache_dataset_report (dataset, r->resolution,
                                   (int) gc_model_get_info (model)->pixel_multiple, r->trigger);
  if (!load_images (&job, dataset, r, (int) gc_model_get_info (model)->pixel_multiple, &images,
                    cancel, error))
    goto out;

  /* the run's record and folder */
  parameters = gouache_train_request_to_json (r);
  if (previous)
    {
      job.run = previous->id;
      if (!gouache_run_store_resume (store, job.run, error))
        goto out;
    }
  else
    {
      g_autofree char *name = style_name (r);
      GouacheRun run = { .name = name, .model_path = r->model_path, .model_hash = model_hash,
                         .dataset_path = r->dataset_path, .dataset_hash = dataset->hash,
                         .parameters = parameters };

      job.run = gouache_run_store_begin (store, &run, images.files, error);
      if (job.run == 0)
        goto out;
    }
  runs_folder = g_path_get_dirname (gouache_run_store_get_path (store));
  job.folder = g_strdup_printf ("%s/runs/%" G_GINT64_FORMAT, runs_folder, job.run);
  if (g_mkdir_with_parents (job.folder, 0700) != 0)
    {
      int saved_errno = errno;

      g_set_error (&local, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   _("Could not create the folder “%s”: %s"), job.folder, g_strerror (saved_errno));
      finish_run (&job, GOUACHE_RUN_FAILED, NULL, NULL, NULL, local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      goto out;
    }
  state_path = previous && previous->state_path ? g_strdup (previous->state_path)
                                                : g_build_filename (job.folder, "state.safetensors", NULL);
  if (!previous && !gouache_run_store_set_state_path (store, job.run, state_path, error))
    goto out;
  if (callbacks && callbacks->started)
    callbacks->started (callbacks->data, job.run, report);

  /* training */
  config_of (r, targets, &config);
  config.state_path = state_path;
  job.prompts = r->sample_prompts;
  job_stage (&job, GOUACHE_TRAIN_STAGE_CACHING, 0, 0);
  status = gc_trainer_new (&trainer, model, &config,
                           &g_array_index (images.train, gc_train_image, 0), images.train->len,
                           images.validation->len ? &g_array_index (images.validation, gc_train_image, 0) : NULL,
                           images.validation->len, &core_callbacks, cancel, &err);
  /* the trainer keeps latents: the pixels can go */
  g_clear_pointer (&images.owned, g_ptr_array_unref);
  /* a run stopped before its first saved state starts again from the beginning */
  if (status == GC_OK && previous && g_file_test (state_path, G_FILE_TEST_EXISTS))
    status = gc_trainer_resume (trainer, state_path, &err);
  if (status == GC_OK)
    {
      job_stage (&job, GOUACHE_TRAIN_STAGE_TRAINING, gc_trainer_step (trainer), r->steps);
      status = gc_trainer_run (trainer, cancel, &err);
    }
  if (status == GC_OK)
    {
      job_stage (&job, GOUACHE_TRAIN_STAGE_WRITING, 0, 0);
      metadata = lora_metadata (r, dataset, model_hash, previous ? previous->created : started);
      status = gc_trainer_write_lora (trainer, r->output_path, (const char *const *) metadata->pdata,
                                      metadata->len / 2, &err);
    }
  if (status == GC_ERR_CANCELLED)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Training was cancelled"));
      finish_run (&job, GOUACHE_RUN_CANCELLED, trainer, NULL, NULL, NULL);
      goto out;
    }
  if (status != GC_OK)
    {
      gouache_set_error_from_gc (&local, &err, NULL);
      finish_run (&job, GOUACHE_RUN_FAILED, trainer, NULL, NULL, local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      goto out;
    }
  output_hash = gouache_file_hash_compute (r->output_path, GOUACHE_FILE_HASH_SHA256, NULL, &local);
  if (output_hash == NULL)
    {
      finish_run (&job, GOUACHE_RUN_FAILED, trainer, NULL, NULL, local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      goto out;
    }
  finish_run (&job, GOUACHE_RUN_FINISHED, trainer, r->output_path, output_hash, NULL);
  job_stage (&job, GOUACHE_TRAIN_STAGE_FINISHED, 0, 0);

  result = g_new0 (GouacheTrainResult, 1);
  result->run = job.run;
  result->output_path = g_strdup (r->output_path);
  result->output_hash = g_steal_pointer (&output_hash);
  result->steps = gc_trainer_step (trainer);
  result->seconds_per_step = job.steps ? job.seconds / job.steps : 0;
  result->val_loss_first = gc_trainer_first_validation (trainer);
  result->val_loss_last = gc_trainer_last_validation (trainer);

out:
  gc_trainer_free (trainer);
  gc_model_free (model);
  g_free (job.folder);
  return result;
}

/* On a worker ------------------------------------------------------------------ */

typedef struct {
  GouacheTrainRequest   *request;
  GouacheRunStore       *store;
  GouacheTrainCallbacks  callbacks;
  volatile int           cancel;
  gulong                 handler;
  GCancellable          *cancellable;
} AsyncJob;

static void
async_job_free (AsyncJob *job)
{
  if (job->handler)
    g_cancellable_disconnect (job->cancellable, job->handler);
  g_clear_object (&job->cancellable);
  gouache_train_request_free (job->request);
  g_object_unref (job->store);
  g_free (job);
}

static void
cancelled_cb (GCancellable *cancellable,
              AsyncJob     *job)
{
  job->cancel = 1;
}

static void
train_thread (GTask        *task,
              gpointer      source,
              gpointer      data,
              GCancellable *cancellable)
{
  AsyncJob *job = data;
  GError *error = NULL;
  GouacheTrainResult *result = gouache_train_run (job->request, job->store, &job->callbacks,
                                                  &job->cancel, &error);

  if (result)
    g_task_return_pointer (task, result, (GDestroyNotify) gouache_train_result_free);
  else
    g_task_return_error (task, error);
}

void
gouache_train_async (const GouacheTrainRequest   *request,
                     GouacheRunStore             *store,
                     const GouacheTrainCallbacks *callbacks,
                     GCancellable                *cancellable,
                     GAsyncReadyCallback          callback,
                     gpointer                     user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  AsyncJob *job = g_new0 (AsyncJob, 1);

  job->request = gouache_train_request_copy (request);
  job->store = g_object_ref (store);
  if (callbacks)
    job->callbacks = *callbacks;
  if (cancellable)
    {
      job->cancellable = g_object_ref (cancellable);
      job->handler = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), job, NULL);
    }
  g_task_set_source_tag (task, gouache_train_async);
  g_task_set_task_data (task, job, (GDestroyNotify) async_job_free);
  /* the task's own check would return before the run is recorded as cancelled */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, train_thread);
}

GouacheTrainResult *
gouache_train_finish (GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

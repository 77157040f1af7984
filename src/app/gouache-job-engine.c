/* gouache-job-engine.c: the one loaded model, and the generations run with it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-job-engine"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "gc-lora.h"
#include "gc-pipeline.h"
#include "gc-styles.h"
#include "gc-prompt.h"
#include "gc-threads.h"
#include "gouache-error.h"
#include "gouache-file-hash.h"
#include "gouache-job-engine.h"

#include "gc-defaults.h"
#include "gouache-png.h"

/* Work for the engine's thread: fn runs there with the engine and the task (NULL for the
 * engine's own housekeeping). */
typedef void (*EngineWorkFunc) (GouacheJobEngine *self,
                                GTask            *task);

typedef struct {
  EngineWorkFunc  func;
  GTask          *task;
} EngineWork;

struct _GouacheJobEngine
{
  GObject       parent_instance;

  char         *vocabulary_path;
  GMainContext *context;         /* where the engine was made, and where it is finalized */
  GThreadPool  *pool;            /* one thread: every call that touches the model, in order */
  int           threads;         /* atomic: what gc_threads_set() should be */

  /* Set once by the engine's thread, then read-only for any thread */
  gc_tokenizer *tokenizer;       /* atomic pointer */

  /* The engine's thread only */
  gc_model     *model;
  char         *model_hash;
  char         *model_name;
  int           applied_threads;

  /* The main context only: what the last finished load gave */
  char                 *model_path;
  int                   pixel_multiple;
  gc_distillation       distillation;
  gc_sampling_defaults  defaults;
};

G_DEFINE_FINAL_TYPE (GouacheJobEngine, gouache_job_engine, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_MODEL_PATH,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Results ----------------------------------------------------------------- */

G_DEFINE_BOXED_TYPE (GouacheJobResult, gouache_job_result,
                     gouache_job_result_copy, gouache_job_result_free)

GouacheJobResult *
gouache_job_result_copy (const GouacheJobResult *result)
{
  GouacheJobResult *copy;

  g_return_val_if_fail (result != NULL, NULL);

  copy = g_memdup2 (result, sizeof *result);
  copy->request = gouache_job_request_copy (result->request);
  copy->rgb = g_bytes_ref (result->rgb);
  copy->info = gouache_generation_info_copy (result->info);
  return copy;
}

void
gouache_job_result_free (GouacheJobResult *result)
{
  if (result == NULL)
    return;

  g_clear_pointer (&result->request, gouache_job_request_free);
  g_clear_pointer (&result->rgb, g_bytes_unref);
  g_clear_pointer (&result->info, gouache_generation_info_free);
  g_free (result);
}

/**
 * gouache_job_result_to_pixbuf:
 * @result: a result
 *
 * Returns: (transfer full): the image, sharing the result's pixels
 */
GdkPixbuf *
gouache_job_result_to_pixbuf (const GouacheJobResult *result)
{
  g_return_val_if_fail (result != NULL, NULL);

  return gdk_pixbuf_new_from_bytes (result->rgb, GDK_COLORSPACE_RGB, FALSE, 8,
                                    result->width, result->height, result->width * 3);
}

/* The engine's thread ----------------------------------------------------- */

static gboolean
unref_task_cb (gpointer user_data)
{
  g_object_unref (user_data);
  return G_SOURCE_REMOVE;
}

static void
engine_thread_func (gpointer data,
                    gpointer user_data)
{
  GouacheJobEngine *self = user_data;
  EngineWork *work = data;

  work->func (self, work->task);

  /* The task holds the engine: its last reference goes in the engine's own context, so the
   * engine is never finalized on its thread, and finalize can wait for that thread. (An idle
   * source, not g_main_context_invoke(), which runs the function right here when this
   * thread manages to acquire a main context that is momentarily idle.) */
  if (work->task != NULL)
    {
      GSource *source = g_idle_source_new ();

      g_source_set_callback (source, unref_task_cb, work->task, NULL);
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
  g_free (work);
}

/* Queues func for the engine's thread; the work holds a reference on task (and through it
 * on the engine) until it has run. */
static void
engine_push (GouacheJobEngine *self,
             EngineWorkFunc    func,
             GTask            *task)
{
  EngineWork *work = g_new0 (EngineWork, 1);

  work->func = func;
  work->task = task ? g_object_ref (task) : NULL;
  g_thread_pool_push (self->pool, work, NULL);
}

static void
load_tokenizer_work (GouacheJobEngine *self,
                     GTask            *task)
{
  gc_tokenizer *tokenizer = NULL;
  gc_error err = { 0 };

  if (gc_tokenizer_load (&tokenizer, self->vocabulary_path, &err) != GC_OK)
    {
      g_warning ("The token counter is off: %s", err.message);
      return;
    }
  g_atomic_pointer_set (&self->tokenizer, tokenizer);
}

static void
apply_threads (GouacheJobEngine *self)
{
  int threads = g_atomic_int_get (&self->threads);

  if (threads != self->applied_threads)
    {
      gc_threads_set (threads);
      self->applied_threads = threads;
    }
}

static void
cancel_flag_cb (GCancellable *cancellable,
                gpointer      user_data)
{
  volatile int *flag = user_data;

  *flag = 1;
}

/* Loading ------------------------------------------------------------------ */

typedef struct {
  char                 *path;
  int                   pixel_multiple;
  gc_distillation       distillation;
  gc_sampling_defaults  defaults;
} LoadJob;

static void
load_job_free (gpointer data)
{
  LoadJob *job = data;

  g_free (job->path);
  g_free (job);
}

/* The file a model hash is taken of: the checkpoint, or a diffusers folder's UNet. */
static char *
hash_source (const char *path)
{
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return g_strdup (path);

  return g_build_filename (path, "unet", "diffusion_pytorch_model.safetensors", NULL);
}

static char *
model_name (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);

  if (g_str_has_suffix (base, ".safetensors"))
    base[strlen (base) - strlen (".safetensors")] = '\0';

  return g_steal_pointer (&base);
}

static void
load_model_work (GouacheJobEngine *self,
                 GTask            *task)
{
  LoadJob *job = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autofree char *display = g_filename_display_basename (job->path);
  g_autofree char *context = g_strdup_printf (_("Could not load “%s”"), display);
  g_autofree char *source = hash_source (job->path);
  g_autofree char *hash = NULL;
  g_autoptr(GError) error = NULL;
  gc_model *model = NULL;
  gc_error err = { 0 };

  if (g_task_return_error_if_cancelled (task))
    return;

  /* The old model goes first: two SD 1.5 models side by side would not fit everywhere. */
  g_clear_pointer (&self->model, gc_model_free);
  g_clear_pointer (&self->model_hash, g_free);
  g_clear_pointer (&self->model_name, g_free);

  if (gc_model_open (&model, job->path, self->vocabulary_path, &err) != GC_OK)
    {
      gouache_set_error_from_gc (&error, &err, context);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  /* Cached after the first time; hashing a 2 GB checkpoint takes seconds once. */
  hash = gouache_file_hash_model_hash (source, cancellable, &error);
  if (hash == NULL)
    {
      gc_model_free (model);
      g_prefix_error (&error, "%s: ", context);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  self->model = model;
  self->model_hash = g_steal_pointer (&hash);
  self->model_name = model_name (job->path);
  job->pixel_multiple = (int) gc_model_get_info (model)->pixel_multiple;
  {
    g_autofree char *name = g_path_get_basename (job->path);
    const char *names[] = { name };
    job->distillation = gc_detect_distillation (names, 1, gc_model_checkpoint (model));
    job->defaults = gc_sampling_defaults_for (gc_model_get_info (model)->family, job->distillation);
  }
  g_task_return_boolean (task, TRUE);
}

/* Generating --------------------------------------------------------------- */

typedef struct {
  GouacheJobRequest  *request;
  GouacheJobProgress *progress;
  volatile int        cancel;
  gint64              started;
} GenerateJob;

static void
generate_job_free (gpointer data)
{
  GenerateJob *job = data;

  gouache_job_request_free (job->request);
  g_clear_object (&job->progress);
  g_free (job);
}

static void
post_progress (GenerateJob     *job,
               GouacheJobStage  stage,
               guint            step,
               guint            n_steps,
               GdkPixbuf       *preview)
{
  if (job->progress != NULL)
    gouache_job_progress_post (job->progress, stage, step, n_steps, preview);
}

/* Called by the core after each model evaluation, on the engine's thread. */
static void
generate_step_cb (void        *ctx,
                  int          step,
                  int          steps,
                  const float *denoised,
                  int64_t      lh,
                  int64_t      lw)
{
  GenerateJob *job = ctx;
  g_autoptr(GdkPixbuf) preview = NULL;
  g_autoptr(GBytes) bytes = NULL;
  guint8 *rgb;

  if (job->progress == NULL)
    return;

  rgb = g_malloc ((gsize) (lh * lw * 3));
  gc_latent_to_rgb (rgb, denoised, lh, lw);
  bytes = g_bytes_new_take (rgb, (gsize) (lh * lw * 3));
  preview = gdk_pixbuf_new_from_bytes (bytes, GDK_COLORSPACE_RGB, FALSE, 8,
                                       (int) lw, (int) lh, (int) lw * 3);
  post_progress (job, GOUACHE_JOB_STAGE_SAMPLING, (guint) step + 1, (guint) steps, preview);
}

static gboolean
same_styles (gc_styles               *styles,
             const GouacheJobRequest *request)
{
  if (gc_styles_count (styles) != request->n_styles)
    return FALSE;

  for (guint i = 0; i < request->n_styles; i++)
    if (g_strcmp0 (gc_lora_path (gc_styles_lora (styles, i)), request->styles[i].path) != 0)
      return FALSE;

  return TRUE;
}

static void
clear_styles (gc_styles *styles)
{
  while (gc_styles_count (styles) > 0)
    gc_styles_remove (styles, gc_styles_count (styles) - 1);
}

/* Opens the request's styles against the model, in order, replacing the model's. */
static gboolean
load_styles (GouacheJobEngine         *self,
             const GouacheJobRequest  *request,
             GError                  **error)
{
  gc_styles *styles = gc_model_styles (self->model);
  gc_error err = { 0 };

  clear_styles (styles);
  for (guint i = 0; i < request->n_styles; i++)
    {
      const GouacheJobStyle *style = &request->styles[i];
      double weight = CLAMP (style->weight, -GC_STYLE_WEIGHT_MAX, GC_STYLE_WEIGHT_MAX);
      gc_lora *lora = NULL;

      if (gc_lora_open (&lora, style->path, gc_model_checkpoint (self->model), &err) != GC_OK ||
          gc_styles_add (styles, lora, weight, weight, &err) != GC_OK)
        {
          g_autofree char *display = g_filename_display_basename (style->path);
          g_autofree char *context = err.code == GC_ERR_MISMATCH
            ? g_strdup_printf (_("The style “%s” was made for another model"), display)
            : g_strdup_printf (_("The style “%s” cannot be used"), display);

          /* Never half a blend: the model goes back to its own weights. */
          clear_styles (styles);
          gouache_set_error_from_gc (error, &err, context);
          return FALSE;
        }
    }

  return TRUE;
}

/* Blends the request's styles into the model: W = W₀ + Σ wᵢ·ΔWᵢ. The same styles in the same
 * order only change their weights, which takes effect at the next pass without reloading
 * anything; another list reopens the styles (cheap: their files are mapped). */
static gboolean
apply_styles (GouacheJobEngine         *self,
              const GouacheJobRequest  *request,
              GError                  **error)
{
  gc_styles *styles = gc_model_styles (self->model);
  gc_error err = { 0 };

  if (!same_styles (styles, request))
    return load_styles (self, request, error);

  for (guint i = 0; i < request->n_styles; i++)
    {
      double weight = CLAMP (request->styles[i].weight, -GC_STYLE_WEIGHT_MAX, GC_STYLE_WEIGHT_MAX);

      if (gc_styles_weight (styles, i) == weight && gc_styles_text_weight (styles, i) == weight)
        continue;
      if (gc_styles_set_weights (styles, i, weight, weight, &err) != GC_OK)
        {
          gouache_set_error_from_gc (error, &err, _("Could not change a style’s weight"));
          return FALSE;
        }
    }

  return TRUE;
}

static GouacheGenerationInfo *
describe (GouacheJobEngine        *self,
          const GouacheJobRequest *request)
{
  GouacheGenerationInfo *info = gouache_generation_info_new ();

  info->prompt = g_strdup (request->prompt);
  info->negative_prompt = g_strdup (request->negative);
  info->steps = (guint) request->steps;
  info->sampler = g_strdup (gc_sampler_display_name (request->sampler));
  if (request->schedule != GC_SCHEDULE_DEFAULT)
    info->schedule_type = g_strdup (gc_schedule_display_name (request->schedule));
  info->cfg_scale = request->cfg;
  info->seed = request->seed;
  info->width = (guint) request->width;
  info->height = (guint) request->height;
  info->model_hash = g_strdup (self->model_hash);
  info->model_name = g_strdup (self->model_name);
  info->version = g_strdup (gouache_infotext_version ());

  for (guint i = 0; i < request->n_styles; i++)
    {
      g_autofree char *hash = gouache_file_hash_lora_hash (request->styles[i].path, NULL, NULL);

      if (hash != NULL)
        gouache_generation_info_add_lora_hash (info, request->styles[i].name, hash);
    }

  return info;
}

static gboolean
set_core_error (GError         **error,
                const gc_error  *err,
                const char      *context)
{
  if (err->code == GC_ERR_CANCELLED)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Cancelled"));
  else
    gouache_set_error_from_gc (error, err, context);

  return FALSE;
}

static gboolean
generate_pixels (GouacheJobEngine  *self,
                 GenerateJob       *job,
                 float             *image,
                 GError           **error)
{
  const GouacheJobRequest *r = job->request;
  const gc_model_info *info = gc_model_get_info (self->model);
  int64_t scale = gc_vae_downscale (gc_model_vae (self->model));
  int64_t lh = r->height / scale, lw = r->width / scale;
  g_autofree float *latent = g_try_new (float, (gsize) (info->latent_channels * lh * lw));
  gc_generate_params params = {
    .prompt = r->prompt, .negative = r->negative,
    .sampler = r->sampler, .schedule = r->schedule, .steps = r->steps,
    .cfg = r->cfg, .seed = r->seed, .width = r->width, .height = r->height,
  };
  gc_error err = { 0 };

  if (latent == NULL)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_NOMEM,
                   _("Not enough memory for a %d × %d image"), r->width, r->height);
      return FALSE;
    }

  if (gc_generate_latent (self->model, &params, latent, generate_step_cb, job,
                          &job->cancel, &err) != GC_OK)
    return set_core_error (error, &err, _("Could not draw the image"));

  post_progress (job, GOUACHE_JOB_STAGE_DECODING, (guint) r->steps, (guint) r->steps, NULL);
  /* As gc_generate does: the UNet's pages need not stay resident while the VAE works. */
  if ((gint64) r->width * r->height >= 512 * 512)
    gc_model_release_weights (self->model);
  if (gc_decode_latent (self->model, image, latent, lh, lw, &job->cancel, &err) != GC_OK)
    return set_core_error (error, &err, _("Could not decode the image"));

  return TRUE;
}

static GouacheJobResult *
generate_run (GouacheJobEngine  *self,
              GenerateJob       *job,
              GError           **error)
{
  const GouacheJobRequest *r = job->request;
  g_autofree float *image = NULL;
  GouacheJobResult *result;
  guint8 *rgb;

  if (self->model == NULL)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                           _("No model is loaded"));
      return NULL;
    }

  job->started = g_get_monotonic_time ();
  apply_threads (self);
  post_progress (job, GOUACHE_JOB_STAGE_PREPARING, 0, 0, NULL);
  if (!apply_styles (self, r, error))
    return NULL;

  image = g_try_new (float, (gsize) 3 * r->width * r->height);
  if (image == NULL)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_NOMEM,
                   _("Not enough memory for a %d × %d image"), r->width, r->height);
      return NULL;
    }
  if (!generate_pixels (self, job, image, error))
    return NULL;

  rgb = g_malloc ((gsize) 3 * r->width * r->height);
  gouache_png_rgb8_from_float (rgb, image, (guint) r->width, (guint) r->height);

  result = g_new0 (GouacheJobResult, 1);
  result->request = gouache_job_request_copy (r);
  result->rgb = g_bytes_new_take (rgb, (gsize) 3 * r->width * r->height);
  result->width = r->width;
  result->height = r->height;
  result->info = describe (self, r);
  result->seconds = (g_get_monotonic_time () - job->started) / (double) G_USEC_PER_SEC;
  post_progress (job, GOUACHE_JOB_STAGE_FINISHED, (guint) r->steps, (guint) r->steps, NULL);
  return result;
}

static void
generate_work (GouacheJobEngine *self,
               GTask            *task)
{
  GenerateJob *job = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr(GError) error = NULL;
  GouacheJobResult *result;
  gulong handler = 0;

  if (g_task_return_error_if_cancelled (task))
    return;

  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (cancel_flag_cb),
                                     (gpointer) &job->cancel, NULL);
  result = generate_run (self, job, &error);
  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, handler);

  if (result == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, result, (GDestroyNotify) gouache_job_result_free);
}

/* Styles ------------------------------------------------------------------- */

static void
inspect_style_work (GouacheJobEngine *self,
                    GTask            *task)
{
  const char *path = g_task_get_task_data (task);
  g_autofree char *display = g_filename_display_basename (path);
  g_autofree char *context = NULL;
  g_autoptr(GouacheStyleInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  gc_lora *lora = NULL;
  gc_lora_report report;
  gc_error err = { 0 };
  const char *name;

  if (g_task_return_error_if_cancelled (task))
    return;
  if (self->model == NULL)
    {
      g_task_return_new_error (task, GOUACHE_ERROR, GOUACHE_ERROR_INVALID, _("No model is loaded"));
      return;
    }

  if (gc_lora_open (&lora, path, gc_model_checkpoint (self->model), &err) != GC_OK)
    {
      context = err.code == GC_ERR_MISMATCH
                ? g_strdup_printf (_("The style “%s” was made for another model"), display)
                : g_strdup_printf (_("The style “%s” cannot be used"), display);
      gouache_set_error_from_gc (&error, &err, context);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  report = gc_lora_get_report (lora);
  name = gc_lora_metadata (lora, "ss_output_name");
  info = g_new0 (GouacheStyleInfo, 1);
  info->path = g_strdup (path);
  info->name = name != NULL && name[0] != '\0' && g_utf8_validate (name, -1, NULL)
               ? g_strdup (name) : gouache_style_name_from_path (path);
  info->trigger_words = gouache_style_trigger_words (gc_lora_metadata (lora, "ss_tag_frequency"));
  info->tensors = report.tensors;
  info->applied = report.applied;
  gc_lora_free (lora);

  g_task_return_pointer (task, g_steal_pointer (&info), (GDestroyNotify) gouache_style_info_free);
}

/* The object --------------------------------------------------------------- */

static void
gouache_job_engine_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  GouacheJobEngine *self = GOUACHE_JOB_ENGINE (object);

  switch (prop_id)
    {
    case PROP_MODEL_PATH:
      g_value_set_string (value, self->model_path);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_job_engine_finalize (GObject *object)
{
  GouacheJobEngine *self = GOUACHE_JOB_ENGINE (object);

  /* Every queued job holds a reference, so only the tokenizer's load can still run: wait
   * for it. Then nothing touches the model any more. */
  g_thread_pool_free (self->pool, TRUE, TRUE);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->model, gc_model_free);
  g_clear_pointer (&self->tokenizer, gc_tokenizer_free);
  g_clear_pointer (&self->model_hash, g_free);
  g_clear_pointer (&self->model_name, g_free);
  g_clear_pointer (&self->model_path, g_free);
  g_clear_pointer (&self->vocabulary_path, g_free);

  G_OBJECT_CLASS (gouache_job_engine_parent_class)->finalize (object);
}

static void
gouache_job_engine_class_init (GouacheJobEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gouache_job_engine_finalize;
  object_class->get_property = gouache_job_engine_get_property;

  /**
   * GouacheJobEngine:model-path:
   *
   * The model that the last successful gouache_job_engine_load_model_finish() reported,
   * or %NULL.
   */
  properties[PROP_MODEL_PATH] =
    g_param_spec_string ("model-path", NULL, NULL,
                         NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gouache_job_engine_init (GouacheJobEngine *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->pool = g_thread_pool_new (engine_thread_func, self, 1, FALSE, NULL);
  self->applied_threads = -1;
  self->pixel_multiple = 64;
}

/**
 * gouache_job_engine_new:
 * @vocabulary_path: the CLIP vocabulary (gouache_data_file (%GOUACHE_DATA_VOCABULARY))
 *
 * Creates an engine without a model. Its thread starts by loading the tokenizer, for
 * gouache_job_engine_count_tokens().
 *
 * Returns: (transfer full): a new #GouacheJobEngine
 */
GouacheJobEngine *
gouache_job_engine_new (const char *vocabulary_path)
{
  GouacheJobEngine *self;

  g_return_val_if_fail (vocabulary_path != NULL, NULL);

  self = g_object_new (GOUACHE_TYPE_JOB_ENGINE, NULL);
  self->vocabulary_path = g_strdup (vocabulary_path);
  engine_push (self, load_tokenizer_work, NULL);
  return self;
}

/**
 * gouache_job_engine_set_threads:
 * @self: a #GouacheJobEngine
 * @threads: CPU threads for the next jobs; 0 for every core
 */
void
gouache_job_engine_set_threads (GouacheJobEngine *self,
                                int               threads)
{
  g_return_if_fail (GOUACHE_IS_JOB_ENGINE (self));
  g_return_if_fail (threads >= 0);

  g_atomic_int_set (&self->threads, threads);
}

/**
 * gouache_job_engine_get_model_path:
 * @self: a #GouacheJobEngine
 *
 * Returns: (nullable): see #GouacheJobEngine:model-path
 */
const char *
gouache_job_engine_get_model_path (GouacheJobEngine *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), NULL);

  return self->model_path;
}

/**
 * gouache_job_engine_get_pixel_multiple:
 * @self: a #GouacheJobEngine
 *
 * Returns: what image sides must be multiples of with the loaded model (64 for SD 1.x)
 */
int
gouache_job_engine_get_pixel_multiple (GouacheJobEngine *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), 64);

  return self->pixel_multiple;
}

/**
 * gouache_job_engine_load_model_async:
 * @self: a #GouacheJobEngine
 * @path: a .safetensors checkpoint or a diffusers folder
 * @cancellable: (nullable): a #GCancellable, checked before the load starts
 * @callback: called in the caller's main context when the model is loaded or refused
 * @user_data: data for @callback
 *
 * Replaces the engine's model by @path, after the work queued before it. The old model is
 * unloaded first, also when the new one turns out to be unusable.
 */
void
gouache_job_engine_load_model_async (GouacheJobEngine    *self,
                                     const char          *path,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  LoadJob *job;

  g_return_if_fail (GOUACHE_IS_JOB_ENGINE (self));
  g_return_if_fail (path != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  job = g_new0 (LoadJob, 1);
  job->path = g_strdup (path);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gouache_job_engine_load_model_async);
  g_task_set_task_data (task, job, load_job_free);
  engine_push (self, load_model_work, task);
}

/**
 * gouache_job_engine_load_model_finish:
 * @self: a #GouacheJobEngine
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * On success, #GouacheJobEngine:model-path and the pixel multiple follow the new model; on
 * failure other than cancellation the engine has no model.
 *
 * Returns: %TRUE on success; %FALSE with @error set (%GOUACHE_ERROR or %G_IO_ERROR)
 */
gboolean
gouache_job_engine_load_model_finish (GouacheJobEngine  *self,
                                      GAsyncResult      *result,
                                      GError           **error)
{
  g_autoptr(GError) local_error = NULL;
  LoadJob *job;

  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gouache_job_engine_load_model_async, FALSE);

  job = g_task_get_task_data (G_TASK (result));
  if (!g_task_propagate_boolean (G_TASK (result), &local_error))
    {
      /* Cancelled: the caller has asked for another model since. Otherwise the old model
       * was unloaded before the new one failed. */
      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_clear_pointer (&self->model_path, g_free);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_PATH]);
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  g_free (self->model_path);
  self->model_path = g_strdup (job->path);
  self->pixel_multiple = job->pixel_multiple;
  self->distillation = job->distillation;
  self->defaults = job->defaults;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_PATH]);
  return TRUE;
}

/**
 * gouache_job_engine_get_sampling_defaults:
 * @self: a #GouacheJobEngine
 * @defaults: (out): the sampler, schedule, steps and CFG that suit the loaded model
 *
 * Returns: what kind of model it is: few-step Turbo and LCM models want their own settings,
 *   which also make them the fastest live previews
 */
gc_distillation
gouache_job_engine_get_sampling_defaults (GouacheJobEngine     *self,
                                          gc_sampling_defaults *defaults)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), GC_DISTILL_NONE);

  *defaults = self->defaults;
  return self->distillation;
}

/**
 * gouache_job_engine_generate_async:
 * @self: a #GouacheJobEngine
 * @request: what to draw; copied
 * @progress: (nullable): where the worker reports its steps and previews
 * @cancellable: (nullable): a #GCancellable that stops the job between steps
 * @callback: called in the caller's main context with the image or the error
 * @user_data: data for @callback
 *
 * Draws @request with the loaded model, after the work queued before it.
 */
void
gouache_job_engine_generate_async (GouacheJobEngine        *self,
                                   const GouacheJobRequest *request,
                                   GouacheJobProgress      *progress,
                                   GCancellable            *cancellable,
                                   GAsyncReadyCallback      callback,
                                   gpointer                 user_data)
{
  g_autoptr(GTask) task = NULL;
  GenerateJob *job;

  g_return_if_fail (GOUACHE_IS_JOB_ENGINE (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (progress == NULL || GOUACHE_IS_JOB_PROGRESS (progress));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  job = g_new0 (GenerateJob, 1);
  job->request = gouache_job_request_copy (request);
  job->progress = progress ? g_object_ref (progress) : NULL;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gouache_job_engine_generate_async);
  g_task_set_task_data (task, job, generate_job_free);
  engine_push (self, generate_work, task);
}

/**
 * gouache_job_engine_generate_finish:
 * @self: a #GouacheJobEngine
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the image, or %NULL with @error set: %G_IO_ERROR_CANCELLED when
 *   cancelled, otherwise %GOUACHE_ERROR (no model, bad settings, a style for another model,
 *   out of memory)
 */
GouacheJobResult *
gouache_job_engine_generate_finish (GouacheJobEngine  *self,
                                    GAsyncResult      *result,
                                    GError           **error)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gouache_job_engine_generate_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gouache_job_engine_inspect_style_async:
 * @self: a #GouacheJobEngine
 * @path: a LoRA file
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with what the style is, or why the loaded model cannot use it
 * @user_data: data for @callback
 *
 * Opens @path against the loaded model on the engine's thread: its name, trigger words and
 * how many of its tensors the model has a weight for.
 */
void
gouache_job_engine_inspect_style_async (GouacheJobEngine    *self,
                                        const char          *path,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (GOUACHE_IS_JOB_ENGINE (self));
  g_return_if_fail (path != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gouache_job_engine_inspect_style_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  engine_push (self, inspect_style_work, task);
}

/**
 * gouache_job_engine_inspect_style_finish:
 * @self: a #GouacheJobEngine
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the style, or %NULL with @error set: %GOUACHE_ERROR_MISMATCH
 *   for a style made for another model, %GOUACHE_ERROR_FORMAT or %GOUACHE_ERROR_IO for a
 *   damaged or unreadable file, %GOUACHE_ERROR_UNSUPPORTED for a kind Gouache cannot use
 */
GouacheStyleInfo *
gouache_job_engine_inspect_style_finish (GouacheJobEngine  *self,
                                         GAsyncResult      *result,
                                         GError           **error)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gouache_job_engine_count_tokens:
 * @self: a #GouacheJobEngine
 * @prompt: a prompt, with emphasis and BREAK
 * @tokens: (out): the prompt's tokens, without start, end and padding
 * @windows: (out): the 75-token windows the prompt is encoded in
 *
 * Counts as the engine will encode @prompt; fast enough to call on every key press. Any
 * thread may call it.
 *
 * Returns: %FALSE while the tokenizer is still loading (or failed to load)
 */
gboolean
gouache_job_engine_count_tokens (GouacheJobEngine *self,
                                 const char       *prompt,
                                 gsize            *tokens,
                                 gsize            *windows)
{
  gc_tokenizer *tokenizer;
  gc_prompt_tokens out = { 0 };
  gc_error err = { 0 };

  g_return_val_if_fail (GOUACHE_IS_JOB_ENGINE (self), FALSE);
  g_return_val_if_fail (prompt != NULL, FALSE);

  tokenizer = g_atomic_pointer_get (&self->tokenizer);
  if (tokenizer == NULL)
    return FALSE;
  if (gc_prompt_tokenize (tokenizer, prompt, GC_TOKEN_END, &out, &err) != GC_OK)
    return FALSE;

  *tokens = out.tokens;
  *windows = (gsize) out.windows;
  gc_prompt_tokens_free (&out);
  return TRUE;
}

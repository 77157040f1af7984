/* gouache-window-generate.c: controls → requests, the live preview, full generation, progress
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Any change of a prompt, a style or a setting schedules a live preview: after 250 ms
 * without further changes, a request at the preview size and steps of the preferences, on
 * the current seed, goes to the engine and cancels the preview before it. Each step's
 * projection of x̂₀ is drawn as it arrives, then the decoded image. Generate sends the same
 * request at full size and steps; its image is saved and added to the history.
 */

#define G_LOG_DOMAIN "gouache-window"

#include "config.h"

#include <glib/gi18n.h>

#include "gouache-config-keys.h"
#include "gouache-window-private.h"

/* How long the controls must rest before a preview starts. */
#define PREVIEW_DELAY_MS 250

/* A job in flight, as its callback needs it. */
typedef struct {
  GouacheWindow *window;      /* strong reference */
  GCancellable  *cancellable; /* identifies the job: a newer one replaces it in the window */
} JobContext;

static JobContext *
job_context_new (GouacheWindow *self,
                 GCancellable  *cancellable)
{
  JobContext *context = g_new0 (JobContext, 1);

  context->window = g_object_ref (self);
  context->cancellable = g_object_ref (cancellable);
  return context;
}

static void
job_context_free (JobContext *context)
{
  g_object_unref (context->window);
  g_object_unref (context->cancellable);
  g_free (context);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JobContext, job_context_free)

/* Choices ------------------------------------------------------------------- */

static void
fill_samplers (GouacheWindow *self)
{
  for (int i = 0; i < GC_SAMPLER_COUNT; i++)
    gtk_list_store_insert_with_values (self->sampler_store, NULL, -1,
                                       0, gc_sampler_cli_name (i),
                                       1, gc_sampler_display_name (i),
                                       2, TRUE,
                                       -1);
}

static const char *
schedule_label (gc_schedule_type schedule)
{
  /* Translators: the schedule type each sampler uses by default */
  return schedule == GC_SCHEDULE_DEFAULT ? _("Automatic") : gc_schedule_display_name (schedule);
}

static void
fill_schedules (GouacheWindow *self)
{
  for (int i = 0; i < GC_SCHEDULE_COUNT; i++)
    gtk_list_store_insert_with_values (self->schedule_store, NULL, -1,
                                       0, gc_schedule_cli_name (i),
                                       1, schedule_label (i),
                                       2, TRUE,
                                       -1);
}

static gc_sampler
current_sampler (GouacheWindow *self)
{
  const char *id = gtk_combo_box_get_active_id (self->sampler_combo);
  gc_sampler sampler = GC_SAMPLER_EULER_A;

  if (id != NULL)
    gc_sampler_parse (&sampler, id, NULL);
  return sampler;
}

static gc_schedule_type
current_schedule (GouacheWindow *self)
{
  const char *id = gtk_combo_box_get_active_id (self->schedule_combo);
  gc_schedule_type schedule = GC_SCHEDULE_DEFAULT;

  if (id != NULL)
    gc_schedule_parse (&schedule, id, NULL);
  return schedule;
}

/* Greys out the schedules the sampler cannot run, and leaves a refused one for Automatic. */
static void
update_schedules (GouacheWindow *self)
{
  gc_sampler sampler = current_sampler (self);
  GtkTreeModel *model = GTK_TREE_MODEL (self->schedule_store);
  GtkTreeIter iter;
  int i = 0;

  for (gboolean ok = gtk_tree_model_get_iter_first (model, &iter); ok;
       ok = gtk_tree_model_iter_next (model, &iter), i++)
    gtk_list_store_set (self->schedule_store, &iter,
                        2, gouache_job_request_schedule_allowed (sampler, i),
                        -1);

  if (!gouache_job_request_schedule_allowed (sampler, current_schedule (self)))
    gtk_combo_box_set_active_id (self->schedule_combo, gc_schedule_cli_name (GC_SCHEDULE_DEFAULT));
}

void
_gouache_window_sampler_changed_cb (GouacheWindow *self,
                                    GtkComboBox   *combo)
{
  update_schedules (self);
  _gouache_window_schedule_preview (self);
}

void
_gouache_window_setting_changed_cb (GouacheWindow *self)
{
  _gouache_window_schedule_preview (self);
}

/* Requests ------------------------------------------------------------------ */

/* The preview fits in the preferences' preview box, keeps the image's shape, and stays a
 * multiple of the model's pixel multiple. */
static void
preview_size (GouacheWindow *self,
              int            width,
              int            height,
              int           *preview_width,
              int           *preview_height)
{
  int box_width = g_settings_get_int (self->settings, GOUACHE_SETTINGS_PREVIEW_WIDTH);
  int box_height = g_settings_get_int (self->settings, GOUACHE_SETTINGS_PREVIEW_HEIGHT);
  int multiple = gouache_job_engine_get_pixel_multiple (self->engine);
  double scale = MIN (1.0, MIN ((double) box_width / width, (double) box_height / height));

  *preview_width = MAX (multiple, (int) (width * scale / multiple + 0.5) * multiple);
  *preview_height = MAX (multiple, (int) (height * scale / multiple + 0.5) * multiple);
}

/* Fills request from the controls; its strings and styles are to be freed with
 * _gouache_window_clear_request(). */
void
_gouache_window_build_request (GouacheWindow     *self,
                               GouacheJobKind     kind,
                               GouacheJobRequest *request)
{
  request->kind = kind;
  request->prompt = gouache_prompt_view_get_text (self->prompt_view);
  request->negative = gouache_prompt_view_get_text (self->negative_view);
  request->styles = _gouache_window_get_styles (self, &request->n_styles);
  request->sampler = current_sampler (self);
  request->schedule = current_schedule (self);
  request->steps = (int) gtk_adjustment_get_value (self->steps_adjustment);
  request->cfg = gtk_adjustment_get_value (self->cfg_adjustment);
  request->seed = (guint64) gtk_adjustment_get_value (self->seed_adjustment);
  request->width = (int) gtk_adjustment_get_value (self->width_adjustment);
  request->height = (int) gtk_adjustment_get_value (self->height_adjustment);

  if (kind == GOUACHE_JOB_PREVIEW)
    {
      int steps = g_settings_get_int (self->settings, GOUACHE_SETTINGS_PREVIEW_STEPS);

      request->steps = MIN (request->steps, steps);
      preview_size (self, request->width, request->height, &request->width, &request->height);
    }
}

void
_gouache_window_clear_request (GouacheJobRequest *request)
{
  g_free (request->prompt);
  g_free (request->negative);
  gouache_job_styles_free (request->styles, request->n_styles);
}

/* Progress ------------------------------------------------------------------ */

static char *
format_eta (double seconds)
{
  int rounded = (int) (seconds + 0.5);

  if (rounded < 60)
    /* Translators: time left, in seconds */
    return g_strdup_printf (_("about %d s left"), MAX (rounded, 1));

  /* Translators: time left, in minutes and seconds */
  return g_strdup_printf (_("about %d min %02d s left"), rounded / 60, rounded % 60);
}

static char *
progress_text (GouacheJobProgress *progress)
{
  double eta = gouache_job_progress_get_eta (progress);
  g_autofree char *left = eta >= 0 ? format_eta (eta) : NULL;

  switch (gouache_job_progress_get_stage (progress))
    {
    case GOUACHE_JOB_STAGE_WAITING:
      return g_strdup (_("Waiting for the engine…"));
    case GOUACHE_JOB_STAGE_PREPARING:
      return g_strdup (_("Reading the prompt…"));
    case GOUACHE_JOB_STAGE_SAMPLING:
      if (left != NULL)
        /* Translators: "Step 3 of 20 · about 12 s left" */
        return g_strdup_printf (_("Step %u of %u · %s"), gouache_job_progress_get_step (progress),
                                gouache_job_progress_get_n_steps (progress), left);
      return g_strdup_printf (_("Step %u of %u"), gouache_job_progress_get_step (progress),
                              gouache_job_progress_get_n_steps (progress));
    case GOUACHE_JOB_STAGE_DECODING:
      return g_strdup (_("Decoding the image…"));
    case GOUACHE_JOB_STAGE_FINISHED:
    default:
      return g_strdup (_("Done"));
    }
}

static void
progress_fraction_cb (GouacheWindow      *self,
                      GParamSpec         *pspec,
                      GouacheJobProgress *progress)
{
  g_autofree char *text = progress_text (progress);
  double fraction = gouache_job_progress_get_fraction (progress);

  gtk_progress_bar_set_fraction (self->progress_bar, fraction);
  gtk_progress_bar_set_fraction (self->preview_progress, fraction);
  gtk_label_set_text (self->progress_label, text);
}

/* Each step's x̂₀, stretched to the size of the image being made. */
static void
progress_preview_cb (GouacheWindow      *self,
                     GParamSpec         *pspec,
                     GouacheJobProgress *progress)
{
  GdkPixbuf *preview = gouache_job_progress_get_preview (progress);

  if (preview != NULL)
    gouache_preview_canvas_set_image (self->canvas, preview, self->job_width, self->job_height);
}

/* Makes the canvas and the progress bars follow progress (NULL: nothing). */
static void
follow_progress (GouacheWindow      *self,
                 GouacheJobProgress *progress,
                 int                 width,
                 int                 height)
{
  if (self->progress != NULL)
    g_signal_handlers_disconnect_by_data (self->progress, self);
  g_set_object (&self->progress, progress);

  self->job_width = width;
  self->job_height = height;
  gtk_progress_bar_set_fraction (self->progress_bar, 0.0);
  gtk_progress_bar_set_fraction (self->preview_progress, 0.0);
  gtk_label_set_text (self->progress_label, _("Waiting for the engine…"));

  if (progress == NULL)
    return;

  g_signal_connect_object (progress, "notify::fraction",
                           G_CALLBACK (progress_fraction_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (progress, "notify::preview",
                           G_CALLBACK (progress_preview_cb), self, G_CONNECT_SWAPPED);
}

static void
update_progress_widgets (GouacheWindow *self)
{
  gtk_revealer_set_reveal_child (self->progress_revealer, self->full_running);
  gtk_widget_set_visible (GTK_WIDGET (self->preview_progress), self->preview_running && !self->full_running);
  _gouache_window_update_actions (self);
}

/* The canvas ---------------------------------------------------------------- */

/* The hint over the empty canvas, or the spinner while a model loads. */
void
_gouache_window_update_placeholder (GouacheWindow *self)
{
  gboolean empty = gouache_preview_canvas_get_image (self->canvas) == NULL;

  gtk_widget_set_visible (self->canvas_placeholder, empty || self->loading);
  gtk_widget_set_visible (self->canvas_placeholder_icon, !self->loading);
  gtk_widget_set_visible (GTK_WIDGET (self->canvas_spinner), self->loading);
  if (self->loading)
    {
      gtk_spinner_start (self->canvas_spinner);
      gtk_label_set_text (self->canvas_placeholder_title, _("Loading the Model…"));
    }
  else
    {
      gtk_spinner_stop (self->canvas_spinner);
      gtk_label_set_text (self->canvas_placeholder_title, _("Nothing Drawn Yet"));
    }
}

static void
canvas_image_changed_cb (GouacheWindow *self)
{
  _gouache_window_update_placeholder (self);
}

/**
 * _gouache_window_show_image:
 * @self: a #GouacheWindow
 * @image: (nullable): a picture to show at its own size
 */
void
_gouache_window_show_image (GouacheWindow *self,
                            GdkPixbuf     *image)
{
  gouache_preview_canvas_set_image (self->canvas, image, 0, 0);
}

static void
show_result (GouacheWindow          *self,
             const GouacheJobResult *result)
{
  g_autoptr(GdkPixbuf) image = gouache_job_result_to_pixbuf (result);

  gouache_preview_canvas_set_image (self->canvas, image, self->job_width, self->job_height);
}

/* Live preview -------------------------------------------------------------- */

static void
preview_cb (GObject      *source,
            GAsyncResult *async,
            gpointer      user_data)
{
  g_autoptr(JobContext) context = user_data;
  GouacheWindow *self = context->window;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheJobResult) result = gouache_job_engine_generate_finish (GOUACHE_JOB_ENGINE (source), async, &error);

  /* A newer preview, a full generation or the window's closing took over. */
  if (context->cancellable != self->preview_cancellable)
    return;

  self->preview_running = FALSE;
  update_progress_widgets (self);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (result == NULL)
    {
      _gouache_window_show_error (self, error);
      return;
    }

  if (self->progress != NULL)
    g_signal_handlers_disconnect_by_data (self->progress, self);
  show_result (self, result);
  _gouache_window_emit_preview_finished (self);
}

static void
start_preview (GouacheWindow *self)
{
  g_autoptr(GouacheJobProgress) progress = gouache_job_progress_new ();
  GouacheJobRequest request = { 0 };

  if (self->preview_cancellable != NULL)
    g_cancellable_cancel (self->preview_cancellable);
  g_clear_object (&self->preview_cancellable);
  self->preview_cancellable = g_cancellable_new ();

  _gouache_window_build_request (self, GOUACHE_JOB_PREVIEW, &request);
  follow_progress (self, progress,
                   (int) gtk_adjustment_get_value (self->width_adjustment),
                   (int) gtk_adjustment_get_value (self->height_adjustment));
  gouache_job_engine_generate_async (self->engine, &request, progress, self->preview_cancellable,
                                     preview_cb, job_context_new (self, self->preview_cancellable));
  _gouache_window_clear_request (&request);

  self->preview_running = TRUE;
  update_progress_widgets (self);
}

static gboolean
preview_timeout_cb (gpointer user_data)
{
  GouacheWindow *self = user_data;

  self->preview_source = 0;
  /* A full generation has the engine; the next change after it schedules again. */
  if (!self->full_running)
    start_preview (self);

  return G_SOURCE_REMOVE;
}

/**
 * _gouache_window_schedule_preview:
 * @self: a #GouacheWindow
 *
 * Starts a live preview once the controls have rested for PREVIEW_DELAY_MS, if live
 * preview is on and a model is loaded.
 */
void
_gouache_window_schedule_preview (GouacheWindow *self)
{
  if (self->restoring || self->loading || !gtk_switch_get_active (self->live_switch) ||
      !gouache_window_get_model_loaded (self))
    return;

  g_clear_handle_id (&self->preview_source, g_source_remove);
  self->preview_source = g_timeout_add (PREVIEW_DELAY_MS, preview_timeout_cb, self);
}

static void
live_switch_changed_cb (GouacheWindow *self)
{
  if (gtk_switch_get_active (self->live_switch))
    _gouache_window_schedule_preview (self);
  else
    g_clear_handle_id (&self->preview_source, g_source_remove);
}

static void
preview_settings_changed_cb (GouacheWindow *self,
                             const char    *key,
                             GSettings     *settings)
{
  _gouache_window_schedule_preview (self);
}

/* Full generation ----------------------------------------------------------- */

static void
generate_cb (GObject      *source,
             GAsyncResult *async,
             gpointer      user_data)
{
  g_autoptr(JobContext) context = user_data;
  GouacheWindow *self = context->window;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheJobResult) result = gouache_job_engine_generate_finish (GOUACHE_JOB_ENGINE (source), async, &error);

  if (context->cancellable != self->full_cancellable)
    return;

  self->full_running = FALSE;
  g_clear_object (&self->full_cancellable);
  update_progress_widgets (self);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (result == NULL)
    {
      _gouache_window_show_error (self, error);
      return;
    }

  if (self->progress != NULL)
    g_signal_handlers_disconnect_by_data (self->progress, self);
  show_result (self, result);
  _gouache_window_history_save (self, result);
}

/**
 * _gouache_window_generate:
 * @self: a #GouacheWindow
 *
 * Draws the full image from the controls (win.generate, Ctrl+Enter), in place of any
 * preview.
 */
void
_gouache_window_generate (GouacheWindow *self)
{
  g_autoptr(GouacheJobProgress) progress = gouache_job_progress_new ();
  GouacheJobRequest request = { 0 };

  if (self->full_running || !gouache_window_get_model_loaded (self))
    return;

  g_clear_handle_id (&self->preview_source, g_source_remove);
  if (self->preview_cancellable != NULL)
    g_cancellable_cancel (self->preview_cancellable);
  self->preview_running = FALSE;

  self->full_cancellable = g_cancellable_new ();
  _gouache_window_build_request (self, GOUACHE_JOB_FULL, &request);
  follow_progress (self, progress, request.width, request.height);
  gouache_job_engine_generate_async (self->engine, &request, progress, self->full_cancellable,
                                     generate_cb, job_context_new (self, self->full_cancellable));
  _gouache_window_clear_request (&request);

  self->full_running = TRUE;
  _gouache_window_hide_message (self);
  update_progress_widgets (self);
}

/**
 * _gouache_window_cancel:
 * @self: a #GouacheWindow
 *
 * Stops the preview and the generation in flight (win.cancel, Escape).
 */
void
_gouache_window_cancel (GouacheWindow *self)
{
  g_clear_handle_id (&self->preview_source, g_source_remove);
  if (self->preview_cancellable != NULL)
    g_cancellable_cancel (self->preview_cancellable);
  if (self->full_cancellable != NULL)
    g_cancellable_cancel (self->full_cancellable);
}

void
_gouache_window_random_seed (GouacheWindow *self)
{
  gtk_adjustment_set_value (self->seed_adjustment, g_random_int ());
}

/* Sizes follow the model's pixel multiple; a fresh model gets a first preview. */
void
_gouache_window_model_loaded (GouacheWindow *self)
{
  int multiple = gouache_job_engine_get_pixel_multiple (self->engine);
  GtkAdjustment *sizes[] = { self->width_adjustment, self->height_adjustment };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      double value = gtk_adjustment_get_value (sizes[i]);

      gtk_adjustment_set_lower (sizes[i], multiple);
      gtk_adjustment_set_step_increment (sizes[i], multiple);
      gtk_adjustment_set_value (sizes[i], MAX (multiple, (int) (value / multiple + 0.5) * multiple));
    }

  /* Few-step models draw in 1–4 steps without guidance: set them up so, which also makes
   * their live previews the fastest. */
  gc_sampling_defaults defaults;
  if (gouache_job_engine_get_sampling_defaults (self->engine, &defaults) != GC_DISTILL_NONE)
    {
      gtk_combo_box_set_active_id (self->sampler_combo, gc_sampler_cli_name (defaults.sampler));
      gtk_combo_box_set_active_id (self->schedule_combo, gc_schedule_cli_name (defaults.schedule));
      gtk_adjustment_set_value (self->steps_adjustment, defaults.steps);
      gtk_adjustment_set_value (self->cfg_adjustment, defaults.cfg);
    }

  gouache_preview_canvas_set_image (self->canvas, NULL, 0, 0);
  _gouache_window_update_placeholder (self);
  _gouache_window_schedule_preview (self);
}

/* Restoring settings -------------------------------------------------------- */

static void
note (GString    *problems,
      const char *format,
      ...) G_GNUC_PRINTF (2, 3);

static void
note (GString    *problems,
      const char *format,
      ...)
{
  va_list args;

  if (problems->len > 0)
    g_string_append_c (problems, ' ');
  va_start (args, format);
  g_string_append_vprintf (problems, format, args);
  va_end (args);
}

static void
apply_sampler (GouacheWindow               *self,
               const GouacheGenerationInfo *info,
               GString                     *problems)
{
  gc_sampler sampler;
  gc_schedule_type schedule = GC_SCHEDULE_DEFAULT;

  if (info->sampler != NULL)
    {
      if (gc_sampler_parse (&sampler, info->sampler, NULL) == GC_OK)
        gtk_combo_box_set_active_id (self->sampler_combo, gc_sampler_cli_name (sampler));
      else
        note (problems, _("Gouache has no sampler “%s”."), info->sampler);
    }

  if (info->schedule_type != NULL && gc_schedule_parse (&schedule, info->schedule_type, NULL) != GC_OK)
    {
      note (problems, _("Gouache has no schedule type “%s”."), info->schedule_type);
      schedule = GC_SCHEDULE_DEFAULT;
    }
  if (gouache_job_request_schedule_allowed (current_sampler (self), schedule))
    gtk_combo_box_set_active_id (self->schedule_combo, gc_schedule_cli_name (schedule));
}

static void
apply_size (GouacheWindow               *self,
            const GouacheGenerationInfo *info,
            GString                     *problems)
{
  int multiple = gouache_job_engine_get_pixel_multiple (self->engine);
  int width = MAX (multiple, (int) (info->width / (double) multiple + 0.5) * multiple);
  int height = MAX (multiple, (int) (info->height / (double) multiple + 0.5) * multiple);

  if (info->width == 0 || info->height == 0)
    return;

  gtk_adjustment_set_value (self->width_adjustment, width);
  gtk_adjustment_set_value (self->height_adjustment, height);
  if ((guint) width != info->width || (guint) height != info->height)
    note (problems, _("Its size, %u × %u, became %d × %d: sides are multiples of %d."),
          info->width, info->height, width, height, multiple);
}

/**
 * _gouache_window_apply_info:
 * @self: a #GouacheWindow
 * @info: settings read from an image or the history
 * @problems: where to describe, in sentences, what could not be restored
 *
 * Sets every control @info names, without scheduling a preview.
 *
 * Returns: %TRUE when everything was restored as it was
 */
gboolean
_gouache_window_apply_info (GouacheWindow               *self,
                            const GouacheGenerationInfo *info,
                            GString                     *problems)
{
  gsize before = problems->len;

  self->restoring = TRUE;

  gouache_prompt_view_set_text (self->prompt_view, info->prompt);
  gouache_prompt_view_set_text (self->negative_view, info->negative_prompt);
  apply_sampler (self, info, problems);
  if (info->steps > 0)
    gtk_adjustment_set_value (self->steps_adjustment, info->steps);
  if (info->cfg_scale > 0)
    gtk_adjustment_set_value (self->cfg_adjustment, info->cfg_scale);
  if (info->seed > (guint64) gtk_adjustment_get_upper (self->seed_adjustment))
    {
      g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, info->seed);

      note (problems, _("Its seed, %s, is larger than Gouache takes."), seed);
    }
  else
    gtk_adjustment_set_value (self->seed_adjustment, (double) info->seed);
  apply_size (self, info, problems);

  self->restoring = FALSE;
  g_clear_handle_id (&self->preview_source, g_source_remove);

  return problems->len == before;
}

/* Setup --------------------------------------------------------------------- */

void
_gouache_window_generate_init (GouacheWindow *self)
{
  GtkAdjustment *adjustments[] = {
    self->steps_adjustment, self->cfg_adjustment, self->seed_adjustment,
    self->width_adjustment, self->height_adjustment,
  };

  fill_samplers (self);
  fill_schedules (self);
  gtk_combo_box_set_active_id (self->sampler_combo, gc_sampler_cli_name (GC_SAMPLER_EULER_A));
  gtk_combo_box_set_active_id (self->schedule_combo, gc_schedule_cli_name (GC_SCHEDULE_DEFAULT));
  _gouache_window_random_seed (self);

  gouache_prompt_view_set_engine (self->prompt_view, self->engine);
  gouache_prompt_view_set_engine (self->negative_view, self->engine);
  g_signal_connect_object (self->prompt_view, "notify::text",
                           G_CALLBACK (_gouache_window_setting_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->negative_view, "notify::text",
                           G_CALLBACK (_gouache_window_setting_changed_cb), self, G_CONNECT_SWAPPED);
  for (guint i = 0; i < G_N_ELEMENTS (adjustments); i++)
    g_signal_connect_object (adjustments[i], "value-changed",
                             G_CALLBACK (_gouache_window_setting_changed_cb), self, G_CONNECT_SWAPPED);

  g_settings_bind (self->settings, GOUACHE_SETTINGS_LIVE_PREVIEW,
                   self->live_switch, "active", G_SETTINGS_BIND_DEFAULT);
  g_signal_connect_object (self->live_switch, "notify::active",
                           G_CALLBACK (live_switch_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_PREVIEW_WIDTH,
                           G_CALLBACK (preview_settings_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_PREVIEW_HEIGHT,
                           G_CALLBACK (preview_settings_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_PREVIEW_STEPS,
                           G_CALLBACK (preview_settings_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->canvas, "notify::image",
                           G_CALLBACK (canvas_image_changed_cb), self, G_CONNECT_SWAPPED);

  _gouache_window_update_placeholder (self);
}

void
_gouache_window_generate_dispose (GouacheWindow *self)
{
  _gouache_window_cancel (self);
  if (self->progress != NULL)
    g_signal_handlers_disconnect_by_data (self->progress, self);
  g_clear_object (&self->progress);
  g_clear_object (&self->preview_cancellable);
  g_clear_object (&self->full_cancellable);
  g_clear_pointer (&self->unsaved, gouache_job_result_free);
}

/* gouache-training-page.c: the window's page for training a style from a folder of images
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Drop a folder → its report → settings → Train. The folder is read on a worker
 * (gouache_dataset_scan); training runs on another (gouache_train_async) with its own copy of
 * the model, and reports through a GouacheTrainProgress, whose properties and curves this page
 * shows: a progress bar with the time left, the loss plot (cairo: every step's loss, its
 * moving average, the validation losses) and the sample images. Stop keeps the run's state;
 * Continue then resumes it where it stopped. A finished style is announced with
 * ::style-trained, and the window puts it into the styles list.
 */

#define G_LOG_DOMAIN "gouache-training-page"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "gouache-config-keys.h"
#include "gouache-dataset.h"
#include "gouache-run-store.h"
#include "gouache-train-progress.h"
#include "gouache-training-page.h"

/* The longer side of the sample thumbnails. */
#define SAMPLE_SIZE 128

struct _GouacheTrainingPage
{
  GtkBox                parent_instance;

  /* Template widgets */
  GtkAdjustment        *accumulation_adjustment;
  GtkAdjustment        *alpha_adjustment;
  GtkWidget            *cancel_button;
  GtkSwitch            *checkpointing_switch;
  GtkFileChooserButton *dataset_button;
  GtkSwitch            *flip_switch;
  GtkAdjustment        *gamma_adjustment;
  GtkAdjustment        *lr_adjustment;
  GtkEntry             *name_entry;
  GtkAdjustment        *offset_adjustment;
  GtkLabel             *output_label;
  GtkWidget            *plot_area;
  GtkProgressBar       *progress_bar;
  GtkAdjustment        *rank_adjustment;
  GtkLabel             *report_label;
  GtkAdjustment        *resolution_adjustment;
  GtkEntry             *sample_entry;
  GtkAdjustment        *sample_every_adjustment;
  GtkBox               *samples_box;
  GtkAdjustment        *seed_adjustment;
  GtkWidget            *settings_grid;
  GtkComboBoxText      *schedule_combo;
  GtkAdjustment        *steps_adjustment;
  GtkAdjustment        *batch_adjustment;
  GtkLabel             *status_label;
  GtkWidget            *train_button;
  GtkEntry             *trigger_entry;
  GtkAdjustment        *warmup_adjustment;

  char                 *model_path;
  char                 *dataset;
  gboolean              dataset_usable;
  GCancellable         *scan_cancellable;
  GCancellable         *train_cancellable;
  GouacheTrainProgress *progress;      /* of the running (or last) job */
  GouacheRunStore      *store;         /* opened at the first training */
  gint64                resumable;     /* a stopped run that Continue resumes */
  char                 *output_path;   /* of the running job */
};

G_DEFINE_FINAL_TYPE (GouacheTrainingPage, gouache_training_page, GTK_TYPE_BOX)

enum {
  PROP_0,
  PROP_RUNNING,
  N_PROPS
};

enum {
  BACK,
  STYLE_TRAINED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* Where trained styles go: the first model folder, else Gouache's own styles folder. */
static char *
styles_folder (void)
{
  g_autoptr(GSettings) settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  g_auto(GStrv) folders = g_settings_get_strv (settings, GOUACHE_SETTINGS_MODEL_FOLDERS);

  if (folders[0] != NULL && g_file_test (folders[0], G_FILE_TEST_IS_DIR))
    return g_strdup (folders[0]);
  return g_build_filename (g_get_user_data_dir (), "gouache", "styles", NULL);
}

/* folder/name.safetensors, or name-2, name-3… when taken: training never replaces a style. */
static char *
output_path_for (const char *name)
{
  g_autofree char *folder = styles_folder ();
  g_autofree char *safe = g_strdelimit (g_strdup (name[0] ? name : "style"), "/\\:", '-');
  char *path = NULL;

  for (int i = 1; i < 1000; i++)
    {
      g_autofree char *file = i == 1 ? g_strdup_printf ("%s.safetensors", safe)
                                     : g_strdup_printf ("%s-%d.safetensors", safe, i);

      g_free (path);
      path = g_build_filename (folder, file, NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        break;
    }
  return path;
}

static char *
format_duration (double seconds)
{
  if (seconds < 60)
    return g_strdup_printf (ngettext ("%d second", "%d seconds", (gulong) seconds),
                            (int) seconds);
  if (seconds < 3600)
    return g_strdup_printf (ngettext ("%d minute", "%d minutes", (gulong) (seconds / 60)),
                            (int) (seconds / 60));
  return g_strdup_printf (_("%d h %02d min"), (int) (seconds / 3600), (int) fmod (seconds / 60, 60));
}

/* State --------------------------------------------------------------------- */

static void
gouache_training_page_update (GouacheTrainingPage *self)
{
  gboolean running = gouache_training_page_get_running (self);
  const char *name = gtk_entry_get_text (self->name_entry);
  g_autofree char *output = NULL;
  g_autofree char *where = NULL;

  gtk_widget_set_visible (self->cancel_button, running);
  gtk_widget_set_sensitive (self->train_button,
                            !running && self->model_path != NULL &&
                            (self->dataset_usable || self->resumable));
  gtk_button_set_label (GTK_BUTTON (self->train_button),
                        self->resumable ? _("_Continue") : _("_Train"));
  gtk_widget_set_sensitive (self->settings_grid, !running);
  gtk_widget_set_sensitive (GTK_WIDGET (self->dataset_button), !running);

  output = running && self->output_path ? g_strdup (self->output_path) : output_path_for (name);
  where = g_strdup_printf (_("The style will be saved as “%s”."), output);
  gtk_label_set_text (self->output_label, where);
}

static void scan_dataset (GouacheTrainingPage *self);

static void
setting_changed_cb (GouacheTrainingPage *self)
{
  gouache_training_page_update (self);
}

/* Images too small for the new resolution are set aside: the report is made again. */
static void
resolution_changed_cb (GouacheTrainingPage *self)
{
  if (self->dataset != NULL && !gouache_training_page_get_running (self))
    scan_dataset (self);
  gouache_training_page_update (self);
}

/* The dataset ---------------------------------------------------------------- */

typedef struct {
  char *folder;
  int   resolution;
} ScanJob;

static void
scan_job_free (ScanJob *job)
{
  g_free (job->folder);
  g_free (job);
}

typedef struct {
  GouacheDataset *dataset;
  char           *report;
} ScanResult;

static void
scan_result_free (ScanResult *result)
{
  gouache_dataset_free (result->dataset);
  g_free (result->report);
  g_free (result);
}

static void
scan_thread (GTask        *task,
             gpointer      source,
             gpointer      data,
             GCancellable *cancellable)
{
  const ScanJob *job = data;
  GError *error = NULL;
  GouacheDataset *dataset = gouache_dataset_scan (job->folder, job->resolution / 2, cancellable,
                                                  &error);
  ScanResult *result;

  if (dataset == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  result = g_new0 (ScanResult, 1);
  result->dataset = dataset;
  result->report = gouache_dataset_report (dataset, job->resolution, 64, NULL);
  g_task_return_pointer (task, result, (GDestroyNotify) scan_result_free);
}

static void
scan_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GouacheTrainingPage) self = user_data;
  g_autoptr(GError) error = NULL;
  ScanResult *scan = g_task_propagate_pointer (G_TASK (result), &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  if (scan == NULL)
    {
      gtk_label_set_text (self->report_label, error->message);
      self->dataset_usable = FALSE;
    }
  else
    {
      gtk_label_set_text (self->report_label, scan->report);
      self->dataset_usable = scan->dataset->images->len > 0;
      scan_result_free (scan);
    }
  gtk_label_set_text (self->status_label,
                      self->model_path == NULL ? _("Open a model first: a style is trained for a model.")
                      : self->dataset_usable ? _("Ready to train.")
                      : _("The folder holds no image to learn from."));
  gouache_training_page_update (self);
}

void
gouache_training_page_set_dataset (GouacheTrainingPage *self,
                                   const char          *folder)
{
  g_autofree char *base = NULL;
  g_autoptr(GFile) file = NULL;

  g_return_if_fail (GOUACHE_IS_TRAINING_PAGE (self));
  g_return_if_fail (folder != NULL);

  if (gouache_training_page_get_running (self))
    return;

  g_free (self->dataset);
  self->dataset = g_strdup (folder);
  self->resumable = 0;

  file = g_file_new_for_path (folder);
  gtk_file_chooser_set_current_folder_file (GTK_FILE_CHOOSER (self->dataset_button), file, NULL);
  gtk_file_chooser_select_file (GTK_FILE_CHOOSER (self->dataset_button), file, NULL);

  base = g_path_get_basename (folder);
  gtk_entry_set_text (self->name_entry, base);
  gtk_entry_set_text (self->trigger_entry, base);
  scan_dataset (self);
}

/* Reads the dataset on a worker, at the resolution set now. */
static void
scan_dataset (GouacheTrainingPage *self)
{
  g_autoptr(GTask) task = NULL;
  ScanJob *job = g_new0 (ScanJob, 1);

  self->dataset_usable = FALSE;
  gtk_label_set_text (self->report_label, _("Reading the images…"));
  gouache_training_page_update (self);

  if (self->scan_cancellable)
    g_cancellable_cancel (self->scan_cancellable);
  g_clear_object (&self->scan_cancellable);
  self->scan_cancellable = g_cancellable_new ();

  job->folder = g_strdup (self->dataset);
  job->resolution = (int) gtk_adjustment_get_value (self->resolution_adjustment) / 64 * 64;
  task = g_task_new (NULL, self->scan_cancellable, scan_cb, g_object_ref (self));
  g_task_set_source_tag (task, scan_dataset);
  g_task_set_task_data (task, job, (GDestroyNotify) scan_job_free);
  g_task_run_in_thread (task, scan_thread);
}

const char *
gouache_training_page_get_dataset (GouacheTrainingPage *self)
{
  g_return_val_if_fail (GOUACHE_IS_TRAINING_PAGE (self), NULL);

  return self->dataset;
}

static void
dataset_chosen_cb (GouacheTrainingPage  *self,
                   GtkFileChooserButton *button)
{
  g_autofree char *folder = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (button));

  if (folder != NULL && g_strcmp0 (folder, self->dataset) != 0)
    gouache_training_page_set_dataset (self, folder);
}

void
gouache_training_page_set_model_path (GouacheTrainingPage *self,
                                      const char          *path)
{
  g_return_if_fail (GOUACHE_IS_TRAINING_PAGE (self));

  if (g_strcmp0 (path, self->model_path) == 0)
    return;
  g_free (self->model_path);
  self->model_path = g_strdup (path);
  self->resumable = 0;
  gouache_training_page_update (self);
}

/* Progress --------------------------------------------------------------------- */

static void
progress_changed_cb (GouacheTrainingPage *self)
{
  GouacheTrainProgress *p = self->progress;
  gint64 done = gouache_train_progress_get_done (p), total = gouache_train_progress_get_total (p);
  g_autofree char *status = NULL;
  g_autofree char *left = NULL;
  double eta = gouache_train_progress_get_eta (p);

  switch (gouache_train_progress_get_stage (p))
    {
    case GOUACHE_TRAIN_STAGE_LOADING:
      status = g_strdup (_("Reading the images and the model…"));
      break;
    case GOUACHE_TRAIN_STAGE_CACHING:
      status = total > 0 ? g_strdup_printf (_("Encoding the images (%lld of %lld)…"),
                                            (long long) done, (long long) total)
                         : g_strdup (_("Encoding the images…"));
      break;
    case GOUACHE_TRAIN_STAGE_TRAINING:
      left = eta >= 0 ? format_duration (eta) : NULL;
      status = left ? g_strdup_printf (_("Step %lld of %lld · loss %.4f · %s left"),
                                       (long long) done, (long long) total,
                                       gouache_train_progress_get_loss (p), left)
                    : g_strdup_printf (_("Step %lld of %lld"), (long long) done, (long long) total);
      break;
    case GOUACHE_TRAIN_STAGE_WRITING:
      status = g_strdup (_("Saving the style…"));
      break;
    case GOUACHE_TRAIN_STAGE_FINISHED:
    default:
      break;
    }
  if (status)
    gtk_label_set_text (self->status_label, status);
  gtk_progress_bar_set_fraction (self->progress_bar,
                                 gouache_train_progress_get_stage (p) == GOUACHE_TRAIN_STAGE_TRAINING
                                   ? gouache_train_progress_get_fraction (p) : 0.0);
}

static void
report_changed_cb (GouacheTrainingPage *self)
{
  const char *report = gouache_train_progress_get_report (self->progress);

  if (report)
    gtk_label_set_text (self->report_label, report);
}

static void
curves_changed_cb (GouacheTrainingPage *self)
{
  gtk_widget_queue_draw (self->plot_area);
}

static void
sample_added_cb (GouacheTrainingPage *self,
                 GdkPixbuf           *sample)
{
  int width = gdk_pixbuf_get_width (sample), height = gdk_pixbuf_get_height (sample);
  double scale = (double) SAMPLE_SIZE / MAX (width, height);
  g_autoptr(GdkPixbuf) thumbnail = gdk_pixbuf_scale_simple (sample, MAX (1, (int) (width * scale)),
                                                            MAX (1, (int) (height * scale)),
                                                            GDK_INTERP_BILINEAR);
  GtkWidget *image = gtk_image_new_from_pixbuf (thumbnail);
  g_autofree char *tooltip = g_strdup_printf (_("After step %lld"),
                                              (long long) gouache_train_progress_get_done (self->progress));

  gtk_widget_set_tooltip_text (image, tooltip);
  gtk_widget_show (image);
  gtk_box_pack_start (self->samples_box, image, FALSE, FALSE, 0);
}

/* The loss plot ---------------------------------------------------------------- */

typedef struct {
  double x0, y0, width, height;  /* the plotting rectangle */
  double steps, low, high;       /* what it spans */
} Frame;

static double
frame_x (const Frame *f,
         double       step)
{
  return f->x0 + f->width * (f->steps > 0 ? step / f->steps : 0);
}

static double
frame_y (const Frame *f,
         double       loss)
{
  return f->y0 + f->height * (1 - (loss - f->low) / (f->high - f->low));
}

static gboolean
plot_draw_cb (GouacheTrainingPage *self,
              cairo_t             *cr,
              GtkWidget           *area)
{
  GtkStyleContext *style = gtk_widget_get_style_context (area);
  GArray *losses = self->progress ? gouache_train_progress_get_losses (self->progress) : NULL;
  GArray *validations = self->progress ? gouache_train_progress_get_validations (self->progress) : NULL;
  int width = gtk_widget_get_allocated_width (area), height = gtk_widget_get_allocated_height (area);
  PangoLayout *layout;
  GdkRGBA color;
  Frame f = { 48, 12, width - 60, height - 36, 1, INFINITY, -INFINITY };
  double average = 0;
  g_autofree char *text = NULL;

  gtk_style_context_get_color (style, gtk_style_context_get_state (style), &color);
  if ((losses == NULL || losses->len == 0) && (validations == NULL || validations->len == 0))
    {
      layout = gtk_widget_create_pango_layout (area, _("The loss appears here while training."));
      cairo_set_source_rgba (cr, color.red, color.green, color.blue, 0.5);
      cairo_move_to (cr, 12, height / 2.0 - 8);
      pango_cairo_show_layout (cr, layout);
      g_object_unref (layout);
      return FALSE;
    }

  /* the run's length while it trains, then as far as it got */
  if (gouache_train_progress_get_stage (self->progress) == GOUACHE_TRAIN_STAGE_TRAINING)
    f.steps = MAX (f.steps, gouache_train_progress_get_total (self->progress));
  for (guint i = 0; losses && i < losses->len; i++)
    {
      const GouacheRunLoss *l = &g_array_index (losses, GouacheRunLoss, i);

      f.low = fmin (f.low, l->loss), f.high = fmax (f.high, l->loss);
      f.steps = MAX (f.steps, l->step);
    }
  for (guint i = 0; validations && i < validations->len; i++)
    {
      const GouacheRunValidation *v = &g_array_index (validations, GouacheRunValidation, i);

      f.low = fmin (f.low, v->loss), f.high = fmax (f.high, v->loss);
      f.steps = MAX (f.steps, v->step);
    }
  if (f.high - f.low < 1e-9)
    f.high = f.low + 1e-3;
  /* a margin, and no negative losses */
  f.low = fmax (0, f.low - 0.05 * (f.high - f.low)), f.high += 0.05 * (f.high - f.low);

  /* axes and their ends */
  cairo_set_line_width (cr, 1);
  cairo_set_source_rgba (cr, color.red, color.green, color.blue, 0.25);
  cairo_rectangle (cr, f.x0 + 0.5, f.y0 + 0.5, f.width, f.height);
  cairo_stroke (cr);
  cairo_set_source_rgba (cr, color.red, color.green, color.blue, 0.7);
  text = g_strdup_printf ("%.3g", f.high);
  layout = gtk_widget_create_pango_layout (area, text);
  cairo_move_to (cr, 4, f.y0);
  pango_cairo_show_layout (cr, layout);
  g_object_unref (layout);
  g_free (text);
  text = g_strdup_printf ("%.3g", f.low);
  layout = gtk_widget_create_pango_layout (area, text);
  cairo_move_to (cr, 4, f.y0 + f.height - 16);
  pango_cairo_show_layout (cr, layout);
  g_object_unref (layout);
  g_free (text);
  text = g_strdup_printf (ngettext ("%lld step", "%lld steps", (gulong) f.steps), (long long) f.steps);
  layout = gtk_widget_create_pango_layout (area, text);
  cairo_move_to (cr, f.x0 + f.width - 80, f.y0 + f.height + 4);
  pango_cairo_show_layout (cr, layout);
  g_object_unref (layout);

  /* the legend */
  layout = gtk_widget_create_pango_layout (area, _("training loss (average)"));
  cairo_set_source_rgba (cr, 0.21, 0.52, 0.89, 1);
  cairo_move_to (cr, f.x0 + f.width - 200, f.y0 + 6);
  pango_cairo_show_layout (cr, layout);
  g_object_unref (layout);
  layout = gtk_widget_create_pango_layout (area, _("validation loss"));
  cairo_set_source_rgba (cr, 0.90, 0.38, 0.0, 1);
  cairo_move_to (cr, f.x0 + f.width - 200, f.y0 + 24);
  pango_cairo_show_layout (cr, layout);
  g_object_unref (layout);

  /* every step's loss, faint; its moving average over about 20 steps, solid */
  cairo_set_source_rgba (cr, 0.21, 0.52, 0.89, 0.35);
  for (guint i = 0; losses && i < losses->len; i++)
    {
      const GouacheRunLoss *l = &g_array_index (losses, GouacheRunLoss, i);

      cairo_arc (cr, frame_x (&f, l->step), frame_y (&f, l->loss), 1.5, 0, 2 * G_PI);
      cairo_fill (cr);
    }
  cairo_set_source_rgba (cr, 0.21, 0.52, 0.89, 1);
  cairo_set_line_width (cr, 2);
  for (guint i = 0; losses && i < losses->len; i++)
    {
      const GouacheRunLoss *l = &g_array_index (losses, GouacheRunLoss, i);

      average = i == 0 ? l->loss : 0.95 * average + 0.05 * l->loss;
      if (i == 0)
        cairo_move_to (cr, frame_x (&f, l->step), frame_y (&f, average));
      else
        cairo_line_to (cr, frame_x (&f, l->step), frame_y (&f, average));
    }
  cairo_stroke (cr);

  /* the validation losses */
  cairo_set_source_rgba (cr, 0.90, 0.38, 0.0, 1);
  for (guint i = 0; validations && i < validations->len; i++)
    {
      const GouacheRunValidation *v = &g_array_index (validations, GouacheRunValidation, i);

      if (i == 0)
        cairo_move_to (cr, frame_x (&f, v->step), frame_y (&f, v->loss));
      else
        cairo_line_to (cr, frame_x (&f, v->step), frame_y (&f, v->loss));
    }
  cairo_stroke (cr);
  for (guint i = 0; validations && i < validations->len; i++)
    {
      const GouacheRunValidation *v = &g_array_index (validations, GouacheRunValidation, i);

      cairo_arc (cr, frame_x (&f, v->step), frame_y (&f, v->loss), 4, 0, 2 * G_PI);
      cairo_fill (cr);
    }
  return FALSE;
}

/* Training -------------------------------------------------------------------- */

static void
train_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GouacheTrainingPage) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheTrainResult) trained = gouache_train_finish (result, &error);
  g_autofree char *message = NULL;

  g_clear_object (&self->train_cancellable);
  if (g_application_get_default () != NULL)
    g_application_release (g_application_get_default ());

  if (trained != NULL)
    {
      g_autofree char *base = g_path_get_basename (trained->output_path);
      g_autofree char *name = g_str_has_suffix (base, ".safetensors")
                                ? g_strndup (base, strlen (base) - strlen (".safetensors"))
                                : g_strdup (base);

      self->resumable = 0;
      message = g_strdup_printf (_("“%s” is ready: validation loss %.4f → %.4f. It was added to the styles."),
                                 name, trained->val_loss_first, trained->val_loss_last);
      gtk_progress_bar_set_fraction (self->progress_bar, 1.0);
      g_signal_emit (self, signals[STYLE_TRAINED], 0, trained->output_path);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      self->resumable = self->progress ? gouache_train_progress_get_run (self->progress) : 0;
      message = g_strdup (_("Stopped. What was learnt so far is kept: Continue resumes the training."));
    }
  else
    {
      self->resumable = 0;
      message = g_strdup_printf (_("Training failed: %s"), error->message);
    }
  /* the page may be gone with its window */
  if (gtk_widget_get_parent (GTK_WIDGET (self)) != NULL)
    gtk_label_set_text (self->status_label, message);
  g_clear_pointer (&self->output_path, g_free);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);
  gouache_training_page_update (self);
}

static void
clear_samples (GouacheTrainingPage *self)
{
  g_autoptr(GList) children = gtk_container_get_children (GTK_CONTAINER (self->samples_box));

  for (GList *l = children; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);
}

void
gouache_training_page_train (GouacheTrainingPage *self)
{
  g_autoptr(GouacheTrainRequest) request = gouache_train_request_new ();
  g_autoptr(GSettings) settings = NULL;
  g_autoptr(GError) error = NULL;
  const char *sample = gtk_entry_get_text (self->sample_entry);
  const char *trigger = gtk_entry_get_text (self->trigger_entry);
  const char *name = gtk_entry_get_text (self->name_entry);

  g_return_if_fail (GOUACHE_IS_TRAINING_PAGE (self));

  if (gouache_training_page_get_running (self) || self->model_path == NULL)
    return;

  if (self->store == NULL)
    {
      g_autofree char *path = gouache_run_store_default_path ();

      self->store = gouache_run_store_new (path, &error);
      if (self->store == NULL)
        {
          gtk_label_set_text (self->status_label, error->message);
          return;
        }
    }

  settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  request->threads = g_settings_get_int (settings, GOUACHE_SETTINGS_THREADS);
  if (self->resumable)
    request->resume = self->resumable;
  else
    {
      g_autofree char *folder = styles_folder ();

      if (g_mkdir_with_parents (folder, 0700) != 0)
        {
          g_autofree char *message = g_strdup_printf (_("Could not create the folder “%s”"), folder);

          gtk_label_set_text (self->status_label, message);
          return;
        }
      request->model_path = g_strdup (self->model_path);
      request->dataset_path = g_strdup (self->dataset);
      request->output_path = output_path_for (name);
      request->name = g_strdup (name[0] ? name : NULL);
      request->trigger = trigger[0] ? g_strdup (trigger) : NULL;
      request->steps = (gint64) gtk_adjustment_get_value (self->steps_adjustment);
      request->rank = (gint64) gtk_adjustment_get_value (self->rank_adjustment);
      request->alpha = gtk_adjustment_get_value (self->alpha_adjustment);
      request->learning_rate = gtk_adjustment_get_value (self->lr_adjustment);
      request->resolution = (int) gtk_adjustment_get_value (self->resolution_adjustment) / 64 * 64;
      request->batch = (gint64) gtk_adjustment_get_value (self->batch_adjustment);
      request->accumulation = (gint64) gtk_adjustment_get_value (self->accumulation_adjustment);
      g_free (request->schedule);
      request->schedule = g_strdup (gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->schedule_combo)));
      request->warmup = (gint64) gtk_adjustment_get_value (self->warmup_adjustment);
      request->min_snr_gamma = gtk_adjustment_get_value (self->gamma_adjustment);
      request->noise_offset = gtk_adjustment_get_value (self->offset_adjustment);
      request->seed = (guint64) gtk_adjustment_get_value (self->seed_adjustment);
      request->flip = gtk_switch_get_active (self->flip_switch);
      g_free (request->checkpointing);
      request->checkpointing = g_strdup (gtk_switch_get_active (self->checkpointing_switch) ? "on" : "auto");
      request->validate_every = MAX (1, request->steps / 10);
      request->checkpoint_every = MAX (1, MIN (100, request->steps / 10));
      if (sample[0] != '\0')
        {
          request->sample_prompts = g_new0 (char *, 2);
          request->sample_prompts[0] = g_strdup (sample);
          request->sample_every = (gint64) gtk_adjustment_get_value (self->sample_every_adjustment);
        }
      clear_samples (self);
    }

  g_clear_object (&self->progress);
  self->progress = gouache_train_progress_new ();
  g_signal_connect_object (self->progress, "notify::stage", G_CALLBACK (progress_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->progress, "notify::done", G_CALLBACK (progress_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->progress, "notify::eta", G_CALLBACK (progress_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->progress, "notify::report", G_CALLBACK (report_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->progress, "curves-changed", G_CALLBACK (curves_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->progress, "sample-added", G_CALLBACK (sample_added_cb), self, G_CONNECT_SWAPPED);

  /* a continued run shows its curve from the start */
  if (self->resumable)
    {
      g_autoptr(GArray) losses = gouache_run_store_losses (self->store, self->resumable, NULL);
      g_autoptr(GArray) validations = gouache_run_store_validations (self->store, self->resumable, NULL);
      g_autoptr(GouacheRun) run = gouache_run_store_get (self->store, self->resumable, NULL);
      g_autoptr(GouacheTrainRequest) resumed = run ? gouache_train_request_from_json (run->parameters, NULL) : NULL;

      gouache_train_progress_preload (self->progress, losses, validations);
      g_free (self->output_path);
      self->output_path = resumed ? g_strdup (resumed->output_path) : NULL;
    }

  if (request->output_path)
    {
      g_free (self->output_path);
      self->output_path = g_strdup (request->output_path);
    }
  self->train_cancellable = g_cancellable_new ();
  gtk_label_set_text (self->status_label, _("Starting…"));
  gtk_progress_bar_set_fraction (self->progress_bar, 0.0);
  gtk_widget_queue_draw (self->plot_area);

  /* the task keeps the progress object alive: the callbacks point into it; the application
   * stays until the job has stopped and saved its state, even when the window closes */
  if (g_application_get_default () != NULL)
    g_application_hold (g_application_get_default ());
  gouache_train_async (request, self->store, gouache_train_progress_get_callbacks (self->progress),
                       self->train_cancellable, train_cb, g_object_ref (self));
  g_object_set_data_full (G_OBJECT (self->train_cancellable), "gouache-progress",
                          g_object_ref (self->progress), g_object_unref);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);
  gouache_training_page_update (self);
}

void
gouache_training_page_stop (GouacheTrainingPage *self)
{
  g_return_if_fail (GOUACHE_IS_TRAINING_PAGE (self));

  if (self->train_cancellable != NULL)
    {
      g_cancellable_cancel (self->train_cancellable);
      gtk_label_set_text (self->status_label, _("Stopping after this step…"));
    }
}

gboolean
gouache_training_page_get_running (GouacheTrainingPage *self)
{
  g_return_val_if_fail (GOUACHE_IS_TRAINING_PAGE (self), FALSE);

  return self->train_cancellable != NULL;
}

static void
train_button_clicked_cb (GouacheTrainingPage *self)
{
  gouache_training_page_train (self);
}

static void
cancel_button_clicked_cb (GouacheTrainingPage *self)
{
  gouache_training_page_stop (self);
}

static void
back_button_clicked_cb (GouacheTrainingPage *self)
{
  g_signal_emit (self, signals[BACK], 0);
}

/* The object ------------------------------------------------------------------ */

static void
gouache_training_page_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  GouacheTrainingPage *self = GOUACHE_TRAINING_PAGE (object);

  switch (prop_id)
    {
    case PROP_RUNNING:
      g_value_set_boolean (value, gouache_training_page_get_running (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_training_page_dispose (GObject *object)
{
  GouacheTrainingPage *self = GOUACHE_TRAINING_PAGE (object);

  if (self->scan_cancellable)
    g_cancellable_cancel (self->scan_cancellable);
  if (self->train_cancellable)
    g_cancellable_cancel (self->train_cancellable);
  g_clear_object (&self->scan_cancellable);
  g_clear_object (&self->progress);
  g_clear_object (&self->store);

  G_OBJECT_CLASS (gouache_training_page_parent_class)->dispose (object);
}

static void
gouache_training_page_finalize (GObject *object)
{
  GouacheTrainingPage *self = GOUACHE_TRAINING_PAGE (object);

  g_clear_object (&self->train_cancellable);
  g_free (self->model_path);
  g_free (self->dataset);
  g_free (self->output_path);

  G_OBJECT_CLASS (gouache_training_page_parent_class)->finalize (object);
}

static void
gouache_training_page_class_init (GouacheTrainingPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = gouache_training_page_get_property;
  object_class->dispose = gouache_training_page_dispose;
  object_class->finalize = gouache_training_page_finalize;

  /**
   * GouacheTrainingPage:running:
   *
   * Whether a training job runs.
   */
  properties[PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GouacheTrainingPage::back:
   *
   * The Back button was clicked.
   */
  signals[BACK] =
    g_signal_new ("back", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * GouacheTrainingPage::style-trained:
   * @path: the new LoRA file
   *
   * A training job finished and wrote its style.
   */
  signals[STYLE_TRAINED] =
    g_signal_new ("style-trained", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-training-page.ui");
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, accumulation_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, alpha_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, batch_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, checkpointing_switch);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, dataset_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, flip_switch);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, gamma_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, lr_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, name_entry);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, offset_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, output_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, plot_area);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, rank_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, report_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, resolution_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, sample_entry);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, sample_every_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, samples_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, schedule_combo);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, seed_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, settings_grid);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, status_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, steps_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, train_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, trigger_entry);
  gtk_widget_class_bind_template_child (widget_class, GouacheTrainingPage, warmup_adjustment);
  gtk_widget_class_bind_template_callback (widget_class, back_button_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, cancel_button_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, dataset_chosen_cb);
  gtk_widget_class_bind_template_callback (widget_class, plot_draw_cb);
  gtk_widget_class_bind_template_callback (widget_class, resolution_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, setting_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, train_button_clicked_cb);
}

static void
gouache_training_page_init (GouacheTrainingPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_widget_set_name (GTK_WIDGET (self), "training-page");
  gouache_training_page_update (self);
}

GtkWidget *
gouache_training_page_new (void)
{
  return g_object_new (GOUACHE_TYPE_TRAINING_PAGE, NULL);
}

/* gouache-train-progress.c: how far a training job got, as the main loop sees it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-train-progress"

#include <math.h>

#include "gouache-train-progress.h"

/* What the worker posted since the last idle callback. */
typedef struct {
  GouacheTrainStage  stage;
  gint64             done;
  gint64             total;
  double             loss;
  gint64             run;
  char              *report;   /* owned; NULL when unchanged */
  GArray            *losses;   /* GouacheRunLoss, new points */
  GArray            *validations;
  GPtrArray         *samples;  /* GdkPixbuf */
  double             seconds;  /* summed step times of this job */
  gint64             steps;    /* steps this job ran */
} Pending;

struct _GouacheTrainProgress
{
  GObject                parent_instance;

  GMainContext          *context;
  GouacheTrainCallbacks  callbacks;

  /* Written by the worker, under the lock */
  GMutex                 lock;
  Pending                pending;
  gboolean               scheduled;

  /* Main context only */
  GouacheTrainStage      stage;
  gint64                 done;
  gint64                 total;
  double                 loss;
  double                 eta;
  gint64                 run;
  char                  *report;
  GArray                *losses;
  GArray                *validations;
  GPtrArray             *samples;
};

G_DEFINE_FINAL_TYPE (GouacheTrainProgress, gouache_train_progress, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (GouacheTrainStage, gouache_train_stage,
  G_DEFINE_ENUM_VALUE (GOUACHE_TRAIN_STAGE_LOADING, "loading"),
  G_DEFINE_ENUM_VALUE (GOUACHE_TRAIN_STAGE_CACHING, "caching"),
  G_DEFINE_ENUM_VALUE (GOUACHE_TRAIN_STAGE_TRAINING, "training"),
  G_DEFINE_ENUM_VALUE (GOUACHE_TRAIN_STAGE_WRITING, "writing"),
  G_DEFINE_ENUM_VALUE (GOUACHE_TRAIN_STAGE_FINISHED, "finished"))

enum {
  PROP_0,
  PROP_STAGE,
  PROP_DONE,
  PROP_TOTAL,
  PROP_FRACTION,
  PROP_ETA,
  PROP_LOSS,
  PROP_RUN,
  PROP_REPORT,
  N_PROPS
};

enum {
  CURVES_CHANGED,
  SAMPLE_ADDED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* Main context ------------------------------------------------------------- */

static gboolean
gouache_train_progress_apply (gpointer user_data)
{
  GouacheTrainProgress *self = user_data;
  Pending p;
  gboolean curves;

  g_mutex_lock (&self->lock);
  p = self->pending;
  self->pending.report = NULL;
  self->pending.losses = g_array_new (FALSE, FALSE, sizeof (GouacheRunLoss));
  self->pending.validations = g_array_new (FALSE, FALSE, sizeof (GouacheRunValidation));
  self->pending.samples = g_ptr_array_new_with_free_func (g_object_unref);
  self->scheduled = FALSE;
  g_mutex_unlock (&self->lock);

  g_object_freeze_notify (G_OBJECT (self));

  if (p.stage != self->stage)
    {
      self->stage = p.stage;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STAGE]);
    }
  if (p.done != self->done || p.total != self->total)
    {
      self->done = p.done;
      self->total = p.total;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DONE]);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOTAL]);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRACTION]);
    }
  if (p.loss != self->loss)
    {
      self->loss = p.loss;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOSS]);
    }
  if (p.run != self->run)
    {
      self->run = p.run;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUN]);
    }
  if (p.report)
    {
      g_free (self->report);
      self->report = p.report;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REPORT]);
    }
  /* the pace of this job's steps, for the steps left */
  self->eta = p.stage == GOUACHE_TRAIN_STAGE_TRAINING && p.steps > 0 && p.total > 0
                ? p.seconds / p.steps * (double) MAX (0, p.total - p.done) : -1.0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ETA]);

  curves = p.losses->len > 0 || p.validations->len > 0;
  g_array_append_vals (self->losses, p.losses->data, p.losses->len);
  g_array_append_vals (self->validations, p.validations->data, p.validations->len);
  g_array_unref (p.losses);
  g_array_unref (p.validations);

  g_object_thaw_notify (G_OBJECT (self));

  if (curves)
    g_signal_emit (self, signals[CURVES_CHANGED], 0);
  for (guint i = 0; i < p.samples->len; i++)
    {
      GdkPixbuf *sample = g_ptr_array_index (p.samples, i);

      g_ptr_array_add (self->samples, g_object_ref (sample));
      g_signal_emit (self, signals[SAMPLE_ADDED], 0, sample);
    }
  g_ptr_array_unref (p.samples);

  return G_SOURCE_REMOVE;
}

/* Called with the lock held. */
static void
schedule (GouacheTrainProgress *self)
{
  GSource *source;

  if (self->scheduled)
    return;
  self->scheduled = TRUE;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, gouache_train_progress_apply, g_object_ref (self), g_object_unref);
  g_source_set_static_name (source, "[gouache] train progress");
  g_source_attach (source, self->context);
  g_source_unref (source);
}

/* Worker ------------------------------------------------------------------- */

static void
on_stage (gpointer          data,
          GouacheTrainStage stage,
          gint64            done,
          gint64            total)
{
  GouacheTrainProgress *self = data;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  self->pending.stage = stage;
  self->pending.done = done;
  self->pending.total = total;
  schedule (self);
}

static void
on_started (gpointer    data,
            gint64      run,
            const char *report)
{
  GouacheTrainProgress *self = data;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  self->pending.run = run;
  g_free (self->pending.report);
  self->pending.report = g_strdup (report);
  schedule (self);
}

static void
on_step (gpointer                 data,
         const gc_train_progress *p)
{
  GouacheTrainProgress *self = data;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  GouacheRunLoss loss = { p->step, p->loss, p->learning_rate, p->seconds };

  self->pending.stage = GOUACHE_TRAIN_STAGE_TRAINING;
  self->pending.done = p->step;
  self->pending.total = p->steps;
  self->pending.loss = p->loss;
  self->pending.seconds += p->seconds;
  self->pending.steps++;
  g_array_append_val (self->pending.losses, loss);
  schedule (self);
}

static void
on_validation (gpointer data,
               gint64   step,
               double   loss)
{
  GouacheTrainProgress *self = data;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  GouacheRunValidation validation = { step, loss };

  g_array_append_val (self->pending.validations, validation);
  schedule (self);
}

static void
on_sample (gpointer    data,
           gint64      step,
           guint       index,
           GdkPixbuf  *image,
           const char *path)
{
  GouacheTrainProgress *self = data;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  g_ptr_array_add (self->pending.samples, g_object_ref (image));
  schedule (self);
}

/* The object --------------------------------------------------------------- */

static void
gouache_train_progress_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  GouacheTrainProgress *self = GOUACHE_TRAIN_PROGRESS (object);

  switch (prop_id)
    {
    case PROP_STAGE:
      g_value_set_enum (value, self->stage);
      break;
    case PROP_DONE:
      g_value_set_int64 (value, self->done);
      break;
    case PROP_TOTAL:
      g_value_set_int64 (value, self->total);
      break;
    case PROP_FRACTION:
      g_value_set_double (value, gouache_train_progress_get_fraction (self));
      break;
    case PROP_ETA:
      g_value_set_double (value, self->eta);
      break;
    case PROP_LOSS:
      g_value_set_double (value, self->loss);
      break;
    case PROP_RUN:
      g_value_set_int64 (value, self->run);
      break;
    case PROP_REPORT:
      g_value_set_string (value, self->report);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_train_progress_finalize (GObject *object)
{
  GouacheTrainProgress *self = GOUACHE_TRAIN_PROGRESS (object);

  g_free (self->pending.report);
  g_clear_pointer (&self->pending.losses, g_array_unref);
  g_clear_pointer (&self->pending.validations, g_array_unref);
  g_clear_pointer (&self->pending.samples, g_ptr_array_unref);
  g_mutex_clear (&self->lock);
  g_free (self->report);
  g_clear_pointer (&self->losses, g_array_unref);
  g_clear_pointer (&self->validations, g_array_unref);
  g_clear_pointer (&self->samples, g_ptr_array_unref);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (gouache_train_progress_parent_class)->finalize (object);
}

static void
gouache_train_progress_class_init (GouacheTrainProgressClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = gouache_train_progress_get_property;
  object_class->finalize = gouache_train_progress_finalize;

  properties[PROP_STAGE] =
    g_param_spec_enum ("stage", NULL, NULL, GOUACHE_TYPE_TRAIN_STAGE,
                       GOUACHE_TRAIN_STAGE_LOADING,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_DONE] =
    g_param_spec_int64 ("done", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_TOTAL] =
    g_param_spec_int64 ("total", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_FRACTION] =
    g_param_spec_double ("fraction", NULL, NULL, 0, 1, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_ETA] =
    g_param_spec_double ("eta", NULL, NULL, -1, G_MAXDOUBLE, -1,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_LOSS] =
    g_param_spec_double ("loss", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_RUN] =
    g_param_spec_int64 ("run", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_REPORT] =
    g_param_spec_string ("report", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GouacheTrainProgress::curves-changed:
   *
   * New loss or validation points arrived (gouache_train_progress_get_losses()).
   */
  signals[CURVES_CHANGED] =
    g_signal_new ("curves-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 0);

  /**
   * GouacheTrainProgress::sample-added:
   * @image: the new sample image
   */
  signals[SAMPLE_ADDED] =
    g_signal_new ("sample-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, GDK_TYPE_PIXBUF);
}

static void
gouache_train_progress_init (GouacheTrainProgress *self)
{
  g_mutex_init (&self->lock);
  self->context = g_main_context_ref_thread_default ();
  self->eta = -1.0;
  self->losses = g_array_new (FALSE, FALSE, sizeof (GouacheRunLoss));
  self->validations = g_array_new (FALSE, FALSE, sizeof (GouacheRunValidation));
  self->samples = g_ptr_array_new_with_free_func (g_object_unref);
  self->pending.losses = g_array_new (FALSE, FALSE, sizeof (GouacheRunLoss));
  self->pending.validations = g_array_new (FALSE, FALSE, sizeof (GouacheRunValidation));
  self->pending.samples = g_ptr_array_new_with_free_func (g_object_unref);
  self->callbacks = (GouacheTrainCallbacks) { on_stage, on_started, on_step, on_validation,
                                              on_sample, self };
}

GouacheTrainProgress *
gouache_train_progress_new (void)
{
  return g_object_new (GOUACHE_TYPE_TRAIN_PROGRESS, NULL);
}

const GouacheTrainCallbacks *
gouache_train_progress_get_callbacks (GouacheTrainProgress *self)
{
  g_return_val_if_fail (GOUACHE_IS_TRAIN_PROGRESS (self), NULL);

  return &self->callbacks;
}

GouacheTrainStage
gouache_train_progress_get_stage (GouacheTrainProgress *self)
{
  return self->stage;
}

gint64
gouache_train_progress_get_done (GouacheTrainProgress *self)
{
  return self->done;
}

gint64
gouache_train_progress_get_total (GouacheTrainProgress *self)
{
  return self->total;
}

double
gouache_train_progress_get_fraction (GouacheTrainProgress *self)
{
  if (self->stage == GOUACHE_TRAIN_STAGE_FINISHED)
    return 1.0;
  return self->total > 0 ? CLAMP ((double) self->done / self->total, 0.0, 1.0) : 0.0;
}

double
gouache_train_progress_get_eta (GouacheTrainProgress *self)
{
  return self->eta;
}

double
gouache_train_progress_get_loss (GouacheTrainProgress *self)
{
  return self->loss;
}

gint64
gouache_train_progress_get_run (GouacheTrainProgress *self)
{
  return self->run;
}

const char *
gouache_train_progress_get_report (GouacheTrainProgress *self)
{
  return self->report;
}

GArray *
gouache_train_progress_get_losses (GouacheTrainProgress *self)
{
  return self->losses;
}

GArray *
gouache_train_progress_get_validations (GouacheTrainProgress *self)
{
  return self->validations;
}

GPtrArray *
gouache_train_progress_get_samples (GouacheTrainProgress *self)
{
  return self->samples;
}

void
gouache_train_progress_preload (GouacheTrainProgress *self,
                                GArray               *losses,
                                GArray               *validations)
{
  g_return_if_fail (GOUACHE_IS_TRAIN_PROGRESS (self));

  if (losses)
    g_array_append_vals (self->losses, losses->data, losses->len);
  if (validations)
    g_array_append_vals (self->validations, validations->data, validations->len);
  g_signal_emit (self, signals[CURVES_CHANGED], 0);
}

/* gouache-job-progress.c: how far one generation got, as the main loop sees it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-job-progress"

#include "gouache-job-progress.h"

/* One posted state. */
typedef struct {
  GouacheJobStage  stage;
  guint            step;
  guint            n_steps;
  GdkPixbuf       *preview;
  gint64           time;    /* monotonic µs of the post */
  gint64           started; /* monotonic µs of the first post past waiting */
} ProgressState;

struct _GouacheJobProgress
{
  GObject        parent_instance;

  GMainContext  *context;

  /* Written by workers, under the lock */
  GMutex         lock;
  ProgressState  pending;
  gboolean       scheduled;

  /* Main context only */
  ProgressState  current;
  double         eta;
};

G_DEFINE_FINAL_TYPE (GouacheJobProgress, gouache_job_progress, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (GouacheJobStage, gouache_job_stage,
  G_DEFINE_ENUM_VALUE (GOUACHE_JOB_STAGE_WAITING, "waiting"),
  G_DEFINE_ENUM_VALUE (GOUACHE_JOB_STAGE_PREPARING, "preparing"),
  G_DEFINE_ENUM_VALUE (GOUACHE_JOB_STAGE_SAMPLING, "sampling"),
  G_DEFINE_ENUM_VALUE (GOUACHE_JOB_STAGE_DECODING, "decoding"),
  G_DEFINE_ENUM_VALUE (GOUACHE_JOB_STAGE_FINISHED, "finished"))

enum {
  PROP_0,
  PROP_STAGE,
  PROP_STEP,
  PROP_N_STEPS,
  PROP_FRACTION,
  PROP_ETA,
  PROP_PREVIEW,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Work units done out of the whole: each step is one, and decoding counts as one more. */
static double
progress_units (const ProgressState *state,
                double              *total)
{
  *total = state->n_steps + 1.0;

  switch (state->stage)
    {
    case GOUACHE_JOB_STAGE_SAMPLING:
      return state->step;
    case GOUACHE_JOB_STAGE_DECODING:
      return state->n_steps;
    case GOUACHE_JOB_STAGE_FINISHED:
      return *total;
    case GOUACHE_JOB_STAGE_WAITING:
    case GOUACHE_JOB_STAGE_PREPARING:
    default:
      return 0.0;
    }
}

/* Seconds left, from the pace of the steps so far; -1 until one step is done. */
static double
estimate_eta (GouacheJobProgress *self)
{
  double total, done = progress_units (&self->current, &total);
  double elapsed;

  if (self->current.stage == GOUACHE_JOB_STAGE_FINISHED)
    return 0.0;
  if (self->current.started == 0 || done < 1.0)
    return -1.0;

  /* The pace counts from the start of the work, preparation included. */
  elapsed = (self->current.time - self->current.started) / (double) G_USEC_PER_SEC;
  return elapsed / done * (total - done);
}

static gboolean
gouache_job_progress_apply (gpointer user_data)
{
  GouacheJobProgress *self = user_data;
  ProgressState state;

  g_mutex_lock (&self->lock);
  state = self->pending;
  self->pending.preview = state.preview ? g_object_ref (state.preview) : NULL;
  self->scheduled = FALSE;
  g_mutex_unlock (&self->lock);

  g_object_freeze_notify (G_OBJECT (self));

  if (state.preview != self->current.preview)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PREVIEW]);
  if (state.stage != self->current.stage)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STAGE]);
  if (state.step != self->current.step)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STEP]);
  if (state.n_steps != self->current.n_steps)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_STEPS]);

  g_clear_object (&self->current.preview);
  self->current = state;
  self->eta = estimate_eta (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRACTION]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ETA]);

  g_object_thaw_notify (G_OBJECT (self));

  return G_SOURCE_REMOVE;
}

static void
gouache_job_progress_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  GouacheJobProgress *self = GOUACHE_JOB_PROGRESS (object);

  switch (prop_id)
    {
    case PROP_STAGE:
      g_value_set_enum (value, self->current.stage);
      break;
    case PROP_STEP:
      g_value_set_uint (value, self->current.step);
      break;
    case PROP_N_STEPS:
      g_value_set_uint (value, self->current.n_steps);
      break;
    case PROP_FRACTION:
      g_value_set_double (value, gouache_job_progress_get_fraction (self));
      break;
    case PROP_ETA:
      g_value_set_double (value, self->eta);
      break;
    case PROP_PREVIEW:
      g_value_set_object (value, self->current.preview);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_job_progress_dispose (GObject *object)
{
  GouacheJobProgress *self = GOUACHE_JOB_PROGRESS (object);

  g_clear_object (&self->current.preview);
  g_mutex_lock (&self->lock);
  g_clear_object (&self->pending.preview);
  g_mutex_unlock (&self->lock);

  G_OBJECT_CLASS (gouache_job_progress_parent_class)->dispose (object);
}

static void
gouache_job_progress_finalize (GObject *object)
{
  GouacheJobProgress *self = GOUACHE_JOB_PROGRESS (object);

  g_mutex_clear (&self->lock);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (gouache_job_progress_parent_class)->finalize (object);
}

static void
gouache_job_progress_class_init (GouacheJobProgressClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = gouache_job_progress_dispose;
  object_class->finalize = gouache_job_progress_finalize;
  object_class->get_property = gouache_job_progress_get_property;

  properties[PROP_STAGE] =
    g_param_spec_enum ("stage", NULL, NULL,
                       GOUACHE_TYPE_JOB_STAGE, GOUACHE_JOB_STAGE_WAITING,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_STEP] =
    g_param_spec_uint ("step", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_STEPS] =
    g_param_spec_uint ("n-steps", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_FRACTION] =
    g_param_spec_double ("fraction", NULL, NULL,
                         0.0, 1.0, 0.0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_ETA] =
    g_param_spec_double ("eta", NULL, NULL,
                         -1.0, G_MAXDOUBLE, -1.0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_PREVIEW] =
    g_param_spec_object ("preview", NULL, NULL,
                         GDK_TYPE_PIXBUF,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gouache_job_progress_init (GouacheJobProgress *self)
{
  g_mutex_init (&self->lock);
  self->context = g_main_context_ref_thread_default ();
  self->eta = -1.0;
}

/**
 * gouache_job_progress_new:
 *
 * Creates a progress object whose properties change in the thread-default main context of
 * the caller.
 *
 * Returns: (transfer full): a new #GouacheJobProgress, waiting
 */
GouacheJobProgress *
gouache_job_progress_new (void)
{
  return g_object_new (GOUACHE_TYPE_JOB_PROGRESS, NULL);
}

GouacheJobStage
gouache_job_progress_get_stage (GouacheJobProgress *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_PROGRESS (self), GOUACHE_JOB_STAGE_WAITING);

  return self->current.stage;
}

/**
 * gouache_job_progress_get_step:
 * @self: a #GouacheJobProgress
 *
 * Returns: the model evaluations done so far
 */
guint
gouache_job_progress_get_step (GouacheJobProgress *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_PROGRESS (self), 0);

  return self->current.step;
}

/**
 * gouache_job_progress_get_n_steps:
 * @self: a #GouacheJobProgress
 *
 * Returns: the model evaluations of the whole run, or 0 before sampling starts
 */
guint
gouache_job_progress_get_n_steps (GouacheJobProgress *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_PROGRESS (self), 0);

  return self->current.n_steps;
}

/**
 * gouache_job_progress_get_fraction:
 * @self: a #GouacheJobProgress
 *
 * Returns: how much of the job is done, 0 to 1 (decoding counts as one step)
 */
double
gouache_job_progress_get_fraction (GouacheJobProgress *self)
{
  double total, done;

  g_return_val_if_fail (GOUACHE_IS_JOB_PROGRESS (self), 0.0);

  done = progress_units (&self->current, &total);
  return CLAMP (done / total, 0.0, 1.0);
}

/**
 * gouache_job_progress_get_eta:
 * @self: a #GouacheJobProgress
 *
 * Returns: an estimate of the seconds left, or -1 before the first step is done
 */
double
gouache_job_progress_get_eta (GouacheJobProgress *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_PROGRESS (self), -1.0);

  return self->eta;
}

/**
 * gouache_job_progress_get_preview:
 * @self: a #GouacheJobProgress
 *
 * Returns: (transfer none) (nullable): the newest predicted clean image, projected from the
 *   latent (one pixel per latent cell: the caller scales it up), or %NULL before the first step
 */
GdkPixbuf *
gouache_job_progress_get_preview (GouacheJobProgress *self)
{
  g_return_val_if_fail (GOUACHE_IS_JOB_PROGRESS (self), NULL);

  return self->current.preview;
}

/**
 * gouache_job_progress_post:
 * @self: a #GouacheJobProgress
 * @stage: the stage the job is in
 * @step: model evaluations done
 * @n_steps: model evaluations in all
 * @preview: (nullable): a new predicted clean image, or %NULL to keep the previous one
 *
 * Records the newest state of the job; called by workers from any thread. The properties
 * follow in the main context, once per main-loop turn at most, with the newest state posted
 * by then.
 */
void
gouache_job_progress_post (GouacheJobProgress *self,
                           GouacheJobStage     stage,
                           guint               step,
                           guint               n_steps,
                           GdkPixbuf          *preview)
{
  gboolean schedule;

  g_return_if_fail (GOUACHE_IS_JOB_PROGRESS (self));
  g_return_if_fail (preview == NULL || GDK_IS_PIXBUF (preview));

  g_mutex_lock (&self->lock);
  self->pending.stage = stage;
  self->pending.step = step;
  self->pending.n_steps = n_steps;
  self->pending.time = g_get_monotonic_time ();
  if (stage != GOUACHE_JOB_STAGE_WAITING && self->pending.started == 0)
    self->pending.started = self->pending.time;
  if (preview != NULL)
    g_set_object (&self->pending.preview, preview);
  schedule = !self->scheduled;
  self->scheduled = TRUE;
  g_mutex_unlock (&self->lock);

  /* One idle source per batch of posts; never g_main_context_invoke_full(), which would run
   * the update on this worker whenever it can acquire a momentarily idle main context. */
  if (schedule)
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, gouache_job_progress_apply, g_object_ref (self), g_object_unref);
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

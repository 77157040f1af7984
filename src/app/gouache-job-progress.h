/* gouache-job-progress.h: how far one generation got, as the main loop sees it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Progress crosses threads one way. The worker posts its latest state from its own thread with
 * gouache_job_progress_post(); the progress object keeps only the newest post and schedules at
 * most one idle callback at a time in the main context it was created in (an explicit source
 * rather than g_main_context_invoke_full(), which may run the callback on the worker itself
 * when the main context happens to be free), which copies that state into the properties and
 * notifies them. Readers on the main thread only ever
 * see the properties, never the worker's memory, and a slow main loop drops intermediate steps
 * instead of queueing them.
 */

#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>

G_BEGIN_DECLS

typedef enum {
  GOUACHE_JOB_STAGE_WAITING,   /* queued behind another job */
  GOUACHE_JOB_STAGE_PREPARING, /* blending styles, encoding the prompt */
  GOUACHE_JOB_STAGE_SAMPLING,  /* one model evaluation per step */
  GOUACHE_JOB_STAGE_DECODING,  /* the VAE turns the latent into pixels */
  GOUACHE_JOB_STAGE_FINISHED,
} GouacheJobStage;

#define GOUACHE_TYPE_JOB_STAGE    (gouache_job_stage_get_type ())
#define GOUACHE_TYPE_JOB_PROGRESS (gouache_job_progress_get_type ())

GType gouache_job_stage_get_type (void) G_GNUC_CONST;

G_DECLARE_FINAL_TYPE (GouacheJobProgress, gouache_job_progress, GOUACHE, JOB_PROGRESS, GObject)

GouacheJobProgress *gouache_job_progress_new          (void);
GouacheJobStage     gouache_job_progress_get_stage    (GouacheJobProgress *self);
guint               gouache_job_progress_get_step     (GouacheJobProgress *self);
guint               gouache_job_progress_get_n_steps  (GouacheJobProgress *self);
double              gouache_job_progress_get_fraction (GouacheJobProgress *self);
double              gouache_job_progress_get_eta      (GouacheJobProgress *self);
GdkPixbuf          *gouache_job_progress_get_preview  (GouacheJobProgress *self);

void                gouache_job_progress_post         (GouacheJobProgress *self,
                                                       GouacheJobStage     stage,
                                                       guint               step,
                                                       guint               n_steps,
                                                       GdkPixbuf          *preview);

G_END_DECLS

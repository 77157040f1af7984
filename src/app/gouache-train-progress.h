/* gouache-train-progress.h: how far a training job got, as the main loop sees it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The training worker reports through the GouacheTrainCallbacks this object hands out
 * (gouache_train_progress_get_callbacks). Each report is stored under a lock: the newest
 * stage and step replace older ones, new loss points, validation losses and sample images are
 * queued; at most one idle callback at a time, in the main context the object was created in,
 * then moves them into the properties and the curves and notifies. A slow main loop merges
 * steps instead of queueing callbacks, and never loses a point of the curves. Readers on the
 * main thread see only the properties and the curves, never the worker's memory.
 */

#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>

#include "gouache-train.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_TRAIN_STAGE    (gouache_train_stage_get_type ())
#define GOUACHE_TYPE_TRAIN_PROGRESS (gouache_train_progress_get_type ())

GType gouache_train_stage_get_type (void) G_GNUC_CONST;

G_DECLARE_FINAL_TYPE (GouacheTrainProgress, gouache_train_progress, GOUACHE, TRAIN_PROGRESS, GObject)

GouacheTrainProgress        *gouache_train_progress_new             (void);

/* For gouache_train_async (valid as long as the object, which the job must keep alive). */
const GouacheTrainCallbacks *gouache_train_progress_get_callbacks   (GouacheTrainProgress *self);

GouacheTrainStage            gouache_train_progress_get_stage       (GouacheTrainProgress *self);
/* Within the stage: images cached or steps trained, of how many. */
gint64                       gouache_train_progress_get_done        (GouacheTrainProgress *self);
gint64                       gouache_train_progress_get_total       (GouacheTrainProgress *self);
double                       gouache_train_progress_get_fraction    (GouacheTrainProgress *self);
/* Seconds left in training from the pace of the steps this job ran; -1 when unknown. */
double                       gouache_train_progress_get_eta         (GouacheTrainProgress *self);
double                       gouache_train_progress_get_loss        (GouacheTrainProgress *self);
gint64                       gouache_train_progress_get_run         (GouacheTrainProgress *self);
const char                  *gouache_train_progress_get_report      (GouacheTrainProgress *self);

/* The curves so far: GouacheRunLoss and GouacheRunValidation values; the sample images
 * (GdkPixbuf), newest last. */
GArray                      *gouache_train_progress_get_losses      (GouacheTrainProgress *self);
GArray                      *gouache_train_progress_get_validations (GouacheTrainProgress *self);
GPtrArray                   *gouache_train_progress_get_samples     (GouacheTrainProgress *self);

/* Main thread, before the job starts: the curves of the run a job resumes, as recorded. */
void                         gouache_train_progress_preload         (GouacheTrainProgress *self,
                                                                     GArray               *losses,
                                                                     GArray               *validations);

G_END_DECLS

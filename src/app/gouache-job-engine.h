/* gouache-job-engine.h: the one loaded model, and the generations run with it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The engine owns at most one loaded model and runs everything that touches it (loading,
 * generating) on one worker thread of its own, in the order it was asked: a model is used by
 * one thread at a time, and work never blocks the caller's main loop. Each call is a GTask
 * async/finish pair; the request is deep-copied into the task and never written again. The
 * GCancellable of a call is bound to the engine's cancel flag, which the core reads between
 * model evaluations and VAE blocks; a call whose cancellable fires finishes with
 * G_IO_ERROR_CANCELLED (also when it was still waiting for its turn). Progress reaches the
 * caller through a GouacheJobProgress (see its header). Every call returns exactly once.
 */

#pragma once

#include <gio/gio.h>

#include "gc-defaults.h"

#include "gouache-infotext.h"
#include "gouache-job-progress.h"
#include "gouache-job-request.h"
#include "gouache-job-style.h"

G_BEGIN_DECLS

/* What a generation drew. */
typedef struct {
  GouacheJobRequest     *request; /* the request it answers */
  GBytes                *rgb;     /* [height, width, 3] RGB8, rows packed */
  int                    width;
  int                    height;
  GouacheGenerationInfo *info;    /* the settings, for the PNG's "parameters" chunk */
  double                 seconds; /* from the start of the work to the decoded image */
} GouacheJobResult;

#define GOUACHE_TYPE_JOB_RESULT (gouache_job_result_get_type ())
#define GOUACHE_TYPE_JOB_ENGINE (gouache_job_engine_get_type ())

GType             gouache_job_result_get_type    (void) G_GNUC_CONST;
GouacheJobResult *gouache_job_result_copy        (const GouacheJobResult *result);
void              gouache_job_result_free        (GouacheJobResult       *result);
GdkPixbuf        *gouache_job_result_to_pixbuf   (const GouacheJobResult *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheJobResult, gouache_job_result_free)

G_DECLARE_FINAL_TYPE (GouacheJobEngine, gouache_job_engine, GOUACHE, JOB_ENGINE, GObject)

GouacheJobEngine *gouache_job_engine_new                (const char           *vocabulary_path);

void              gouache_job_engine_set_threads        (GouacheJobEngine     *self,
                                                         int                   threads);
const char       *gouache_job_engine_get_model_path     (GouacheJobEngine     *self);
int               gouache_job_engine_get_pixel_multiple (GouacheJobEngine     *self);
gc_distillation   gouache_job_engine_get_sampling_defaults (GouacheJobEngine     *self,
                                                            gc_sampling_defaults *defaults);

void              gouache_job_engine_load_model_async   (GouacheJobEngine     *self,
                                                         const char           *path,
                                                         GCancellable         *cancellable,
                                                         GAsyncReadyCallback   callback,
                                                         gpointer              user_data);
gboolean          gouache_job_engine_load_model_finish  (GouacheJobEngine     *self,
                                                         GAsyncResult         *result,
                                                         GError              **error);

void              gouache_job_engine_generate_async     (GouacheJobEngine     *self,
                                                         const GouacheJobRequest *request,
                                                         GouacheJobProgress   *progress,
                                                         GCancellable         *cancellable,
                                                         GAsyncReadyCallback   callback,
                                                         gpointer              user_data);
GouacheJobResult *gouache_job_engine_generate_finish    (GouacheJobEngine     *self,
                                                         GAsyncResult         *result,
                                                         GError              **error);

void              gouache_job_engine_inspect_style_async (GouacheJobEngine  *self,
                                                         const char           *path,
                                                         GCancellable         *cancellable,
                                                         GAsyncReadyCallback   callback,
                                                         gpointer              user_data);
GouacheStyleInfo *gouache_job_engine_inspect_style_finish (GouacheJobEngine *self,
                                                         GAsyncResult         *result,
                                                         GError              **error);

gboolean          gouache_job_engine_count_tokens       (GouacheJobEngine     *self,
                                                         const char           *prompt,
                                                         gsize                *tokens,
                                                         gsize                *windows);

G_END_DECLS

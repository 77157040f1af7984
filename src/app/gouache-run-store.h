/* gouache-run-store.h: every training run, its settings, data and curves, in SQLite
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Experiment tracking for style training: g_get_user_data_dir()/gouache/runs.db holds one row
 * per run (its parameters as JSON, the model's and the dataset's hashes, the output file and
 * its hash, where its resumable state is, how it ended), the list of its training files with
 * their hashes and captions, its loss at every step, its validation losses, and the sample
 * images it drew. The database runs in WAL mode with prepared statements and a schema version
 * (PRAGMA user_version); a newer version than this code knows is refused. One connection,
 * used by one thread at a time under a lock (the training worker writes while the window
 * reads).
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  GOUACHE_RUN_RUNNING,   /* started and not finished: also a run whose process died */
  GOUACHE_RUN_FINISHED,
  GOUACHE_RUN_CANCELLED, /* stopped by the user: resumable from its state */
  GOUACHE_RUN_FAILED,
} GouacheRunStatus;

typedef struct {
  gint64            id;
  gint64            created;          /* Unix time, seconds */
  gint64            finished;         /* 0 while running */
  GouacheRunStatus  status;
  char             *name;             /* the style's name */
  char             *model_path;
  char             *model_hash;       /* SHA-256 of the checkpoint file */
  char             *dataset_path;
  char             *dataset_hash;     /* gouache_dataset_scan's hash */
  char             *parameters;       /* JSON object (gouache-train.h) */
  char             *output_path;      /* the LoRA; NULL until written */
  char             *output_hash;      /* its SHA-256 */
  char             *state_path;       /* the resumable training state */
  gint64            steps;            /* steps done */
  double            seconds_per_step; /* mean, 0 when unknown */
  double            val_loss_first;   /* NAN when unknown */
  double            val_loss_last;
  char             *error;            /* why it failed, or NULL */
} GouacheRun;

typedef struct {
  char *path;
  char *sha256;
  char *caption;    /* as trained (with the trigger word) */
  int   width;
  int   height;
} GouacheRunFile;

typedef struct {
  gint64 step;
  double loss;
  double learning_rate;
  double seconds;
} GouacheRunLoss;

typedef struct {
  gint64 step;
  double loss;
} GouacheRunValidation;

typedef struct {
  gint64  step;
  guint   index;   /* of the sample prompt */
  char   *prompt;
  char   *path;    /* the PNG */
} GouacheRunSample;

#define GOUACHE_TYPE_RUN       (gouache_run_get_type ())
#define GOUACHE_TYPE_RUN_STORE (gouache_run_store_get_type ())

GType             gouache_run_get_type                (void) G_GNUC_CONST;
GouacheRun       *gouache_run_copy                    (const GouacheRun   *run);
void              gouache_run_free                    (GouacheRun         *run);
const char       *gouache_run_status_to_string        (GouacheRunStatus    status);

void              gouache_run_file_free               (GouacheRunFile     *file);
void              gouache_run_sample_free             (GouacheRunSample   *sample);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheRun, gouache_run_free)

G_DECLARE_FINAL_TYPE (GouacheRunStore, gouache_run_store, GOUACHE, RUN_STORE, GObject)

char             *gouache_run_store_default_path      (void);
GouacheRunStore  *gouache_run_store_new               (const char         *path,
                                                       GError            **error);
const char       *gouache_run_store_get_path          (GouacheRunStore    *self);

/* Records a new run (status running, created now) from run's name, model, dataset,
 * parameters and state path, with its files (GouacheRunFile); returns its id, or 0. */
gint64            gouache_run_store_begin             (GouacheRunStore    *self,
                                                       const GouacheRun   *run,
                                                       GPtrArray          *files,
                                                       GError            **error);
/* Where the run keeps its resumable state (set once its folder is known). */
gboolean          gouache_run_store_set_state_path    (GouacheRunStore    *self,
                                                       gint64              id,
                                                       const char         *state_path,
                                                       GError            **error);
/* Marks a run as running again (resumed). */
gboolean          gouache_run_store_resume            (GouacheRunStore    *self,
                                                       gint64              id,
                                                       GError            **error);
/* Curves: a step recorded twice (a run resumed from an earlier state) keeps the later values. */
gboolean          gouache_run_store_add_loss          (GouacheRunStore    *self,
                                                       gint64              id,
                                                       const GouacheRunLoss *loss,
                                                       GError            **error);
gboolean          gouache_run_store_add_validation    (GouacheRunStore    *self,
                                                       gint64              id,
                                                       gint64              step,
                                                       double              loss,
                                                       GError            **error);
gboolean          gouache_run_store_add_sample        (GouacheRunStore    *self,
                                                       gint64              id,
                                                       const GouacheRunSample *sample,
                                                       GError            **error);
/* Records how a run ended: status, steps done, pace, validation losses, the output and its
 * hash (NULL when none was written), and the error message of a failed run. */
gboolean          gouache_run_store_finish            (GouacheRunStore    *self,
                                                       const GouacheRun   *run,
                                                       GError            **error);

GouacheRun       *gouache_run_store_get               (GouacheRunStore    *self,
                                                       gint64              id,
                                                       GError            **error);
/* Every run, newest first. */
GPtrArray        *gouache_run_store_list              (GouacheRunStore    *self,
                                                       GError            **error);
/* GouacheRunFile, in training order; GouacheRunLoss and GouacheRunValidation by step;
 * GouacheRunSample by step and prompt. */
GPtrArray        *gouache_run_store_files             (GouacheRunStore    *self,
                                                       gint64              id,
                                                       GError            **error);
GArray           *gouache_run_store_losses            (GouacheRunStore    *self,
                                                       gint64              id,
                                                       GError            **error);
GArray           *gouache_run_store_validations       (GouacheRunStore    *self,
                                                       gint64              id,
                                                       GError            **error);
GPtrArray        *gouache_run_store_samples           (GouacheRunStore    *self,
                                                       gint64              id,
                                                       GError            **error);

G_END_DECLS

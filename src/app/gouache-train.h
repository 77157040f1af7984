/* gouache-train.h: training a style, from a folder of images to a LoRA in the style library
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * One training job: scan the dataset (gouache-dataset.h), open the model, load every usable
 * image into its aspect-ratio bucket with its caption (the trigger word when it has none),
 * train a LoRA with the engine (gc-train.h), and write it as a kohya LoRA with its ss_*
 * metadata: the base model's hashes, the dataset's tag frequencies, the training settings.
 * Everything is recorded in the run store (gouache-run-store.h): the parameters (as the JSON
 * of the request), the dataset's hash and files, each step's loss, the validation losses, the
 * sample images (PNG files in the run's folder) and the output's hash. Each run has a folder
 * beside the store, runs/<id>/, for its samples and its resumable state; a cancelled or
 * interrupted run resumes from there (request.resume = its id) and continues exactly as if it
 * had not stopped.
 *
 * Validation: with 20 usable images or more, one image in ten (every tenth in name order) is
 * held out for the validation loss; with fewer, the training images are the validation set.
 */

#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gio/gio.h>

#include "gc-train.h"
#include "gouache-run-store.h"

G_BEGIN_DECLS

typedef struct {
  char    *model_path;
  char    *dataset_path;
  char    *output_path;         /* the LoRA to write */
  char    *name;                /* the style's name (ss_output_name); NULL: from output_path */
  char    *trigger;             /* the trigger word, e.g. "inkwash"; may be NULL */
  int      resolution;          /* 512: buckets of about resolution² pixels */
  gint64   steps;
  gint64   rank;
  double   alpha;
  double   learning_rate;
  gint64   batch;
  gint64   accumulation;
  char    *schedule;            /* "constant" or "cosine" */
  gint64   warmup;
  double   weight_decay;
  double   min_snr_gamma;
  double   noise_offset;
  gboolean flip;
  char    *checkpointing;       /* "auto", "on" or "off" (gc_checkpointing) */
  guint64  seed;
  char    *targets;             /* comma-separated: attention, ff, proj, resnet, sample, stem, all */
  gint64   validate_every;
  int      validation_timesteps;
  char   **sample_prompts;      /* NULL-terminated, may be NULL */
  gint64   sample_every;
  int      sample_steps;
  gint64   checkpoint_every;
  int      threads;             /* 0: all cores */
  gint64   resume;              /* id of a run to continue; its parameters replace these */
} GouacheTrainRequest;

/* The defaults of gc_train_config_defaults, resolution 512, targets "attention,ff,proj". */
GouacheTrainRequest *gouache_train_request_new      (void);
GouacheTrainRequest *gouache_train_request_copy     (const GouacheTrainRequest *request);
void                 gouache_train_request_free     (GouacheTrainRequest       *request);
/* The parameters as stored with a run (JSON object), and back. */
char                *gouache_train_request_to_json  (const GouacheTrainRequest *request);
GouacheTrainRequest *gouache_train_request_from_json (const char               *json,
                                                      GError                  **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheTrainRequest, gouache_train_request_free)

typedef enum {
  GOUACHE_TRAIN_STAGE_LOADING,  /* scanning the dataset, opening the model, loading images */
  GOUACHE_TRAIN_STAGE_CACHING,  /* encoding latents and captions */
  GOUACHE_TRAIN_STAGE_TRAINING,
  GOUACHE_TRAIN_STAGE_WRITING,  /* the LoRA file */
  GOUACHE_TRAIN_STAGE_FINISHED,
} GouacheTrainStage;

/* Called on the training thread; any may be NULL. */
typedef struct {
  /* a new stage, or progress within one (done of total; 0 of 0 when unknown) */
  void     (*stage)      (gpointer data, GouacheTrainStage stage, gint64 done, gint64 total);
  /* the run's id once recorded, with the dataset's report */
  void     (*started)    (gpointer data, gint64 run, const char *report);
  void     (*step)       (gpointer data, const gc_train_progress *progress);
  void     (*validation) (gpointer data, gint64 step, double loss);
  void     (*sample)     (gpointer data, gint64 step, guint index, GdkPixbuf *image,
                          const char *path);
  gpointer   data;
} GouacheTrainCallbacks;

typedef struct {
  gint64  run;              /* its id in the store */
  char   *output_path;
  char   *output_hash;      /* SHA-256 of the file */
  gint64  steps;            /* done by this run, resumed ones included */
  double  seconds_per_step; /* mean over the steps this job ran */
  double  val_loss_first;
  double  val_loss_last;
} GouacheTrainResult;

void                 gouache_train_result_free      (GouacheTrainResult        *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheTrainResult, gouache_train_result_free)

/* Runs a whole job on the calling thread. cancel (may be NULL) is read between steps: the run
 * is then recorded as cancelled with its state saved, and the error is G_IO_ERROR_CANCELLED. */
GouacheTrainResult  *gouache_train_run              (const GouacheTrainRequest *request,
                                                     GouacheRunStore           *store,
                                                     const GouacheTrainCallbacks *callbacks,
                                                     const volatile int        *cancel,
                                                     GError                   **error);

/* The same on a worker thread (a GTask); cancellable stops it as above. The callbacks run on
 * the worker: relay them to the main loop (GouacheTrainProgress does). */
void                 gouache_train_async            (const GouacheTrainRequest *request,
                                                     GouacheRunStore           *store,
                                                     const GouacheTrainCallbacks *callbacks,
                                                     GCancellable              *cancellable,
                                                     GAsyncReadyCallback        callback,
                                                     gpointer                   user_data);
GouacheTrainResult  *gouache_train_finish           (GAsyncResult              *result,
                                                     GError                   **error);

G_END_DECLS

/* gouache-run-store.c: every training run, its settings, data and curves, in SQLite
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-run-store"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sqlite3.h>

#include "gouache-error.h"
#include "gouache-sqlite.h"
#include "gouache-run-store.h"

/* The schema this code writes; PRAGMA user_version holds it. */
#define SCHEMA_VERSION 1

static const char schema_v1[] =
  "CREATE TABLE runs ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  created INTEGER NOT NULL,"           /* Unix time, seconds */
  "  finished INTEGER NOT NULL DEFAULT 0,"
  "  status INTEGER NOT NULL,"            /* GouacheRunStatus */
  "  name TEXT NOT NULL,"
  "  model_path TEXT NOT NULL,"
  "  model_hash TEXT NOT NULL,"
  "  dataset_path TEXT NOT NULL,"
  "  dataset_hash TEXT NOT NULL,"
  "  parameters TEXT NOT NULL,"           /* JSON */
  "  output_path TEXT,"
  "  output_hash TEXT,"
  "  state_path TEXT,"
  "  steps INTEGER NOT NULL DEFAULT 0,"
  "  seconds_per_step REAL NOT NULL DEFAULT 0,"
  "  val_loss_first REAL,"
  "  val_loss_last REAL,"
  "  error TEXT"
  ");"
  "CREATE TABLE files ("
  "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  position INTEGER NOT NULL,"
  "  path TEXT NOT NULL,"
  "  sha256 TEXT NOT NULL,"
  "  caption TEXT NOT NULL,"
  "  width INTEGER NOT NULL,"
  "  height INTEGER NOT NULL,"
  "  PRIMARY KEY (run, position)"
  ");"
  "CREATE TABLE losses ("
  "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  step INTEGER NOT NULL,"
  "  loss REAL NOT NULL,"
  "  learning_rate REAL NOT NULL,"
  "  seconds REAL NOT NULL,"
  "  PRIMARY KEY (run, step)"
  ");"
  "CREATE TABLE validations ("
  "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  step INTEGER NOT NULL,"
  "  loss REAL NOT NULL,"
  "  PRIMARY KEY (run, step)"
  ");"
  "CREATE TABLE samples ("
  "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  step INTEGER NOT NULL,"
  "  prompt_index INTEGER NOT NULL,"
  "  prompt TEXT NOT NULL,"
  "  path TEXT NOT NULL,"
  "  PRIMARY KEY (run, step, prompt_index)"
  ");"
  "PRAGMA user_version = 1;";

enum {
  INSERT_RUN,
  INSERT_FILE,
  RESUME_RUN,
  SET_STATE_PATH,
  INSERT_LOSS,
  INSERT_VALIDATION,
  INSERT_SAMPLE,
  FINISH_RUN,
  GET_RUN,
  LIST_RUNS,
  LIST_FILES,
  LIST_LOSSES,
  LIST_VALIDATIONS,
  LIST_SAMPLES,
  N_STATEMENTS
};

static const char *const statement_sql[N_STATEMENTS] = {
  [INSERT_RUN] = "INSERT INTO runs (created, status, name, model_path, model_hash, dataset_path,"
                 " dataset_hash, parameters, state_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
  [INSERT_FILE] = "INSERT INTO files (run, position, path, sha256, caption, width, height)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
  [SET_STATE_PATH] = "UPDATE runs SET state_path = ?2 WHERE id = ?1",
  [RESUME_RUN] = "UPDATE runs SET status = ?2, finished = 0, error = NULL WHERE id = ?1",
  [INSERT_LOSS] = "INSERT OR REPLACE INTO losses (run, step, loss, learning_rate, seconds)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)",
  [INSERT_VALIDATION] = "INSERT OR REPLACE INTO validations (run, step, loss) VALUES (?1, ?2, ?3)",
  [INSERT_SAMPLE] = "INSERT OR REPLACE INTO samples (run, step, prompt_index, prompt, path)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
  [FINISH_RUN] = "UPDATE runs SET finished = ?2, status = ?3, output_path = ?4, output_hash = ?5,"
                 " steps = ?6, seconds_per_step = ?7, val_loss_first = ?8, val_loss_last = ?9,"
                 " error = ?10 WHERE id = ?1",
  [GET_RUN] = "SELECT id, created, finished, status, name, model_path, model_hash, dataset_path,"
              " dataset_hash, parameters, output_path, output_hash, state_path, steps,"
              " seconds_per_step, val_loss_first, val_loss_last, error FROM runs WHERE id = ?1",
  [LIST_RUNS] = "SELECT id, created, finished, status, name, model_path, model_hash, dataset_path,"
                " dataset_hash, parameters, output_path, output_hash, state_path, steps,"
                " seconds_per_step, val_loss_first, val_loss_last, error FROM runs"
                " ORDER BY created DESC, id DESC",
  [LIST_FILES] = "SELECT path, sha256, caption, width, height FROM files WHERE run = ?1"
                 " ORDER BY position",
  [LIST_LOSSES] = "SELECT step, loss, learning_rate, seconds FROM losses WHERE run = ?1"
                  " ORDER BY step",
  [LIST_VALIDATIONS] = "SELECT step, loss FROM validations WHERE run = ?1 ORDER BY step",
  [LIST_SAMPLES] = "SELECT step, prompt_index, prompt, path FROM samples WHERE run = ?1"
                   " ORDER BY step, prompt_index",
};

struct _GouacheRunStore
{
  GObject       parent_instance;

  char         *path;
  GMutex        lock;     /* the connection and its statements, one thread at a time */
  sqlite3      *db;
  sqlite3_stmt *statements[N_STATEMENTS];
};

G_DEFINE_FINAL_TYPE (GouacheRunStore, gouache_run_store, G_TYPE_OBJECT)

/* Records ------------------------------------------------------------------ */

G_DEFINE_BOXED_TYPE (GouacheRun, gouache_run, gouache_run_copy, gouache_run_free)

GouacheRun *
gouache_run_copy (const GouacheRun *run)
{
  GouacheRun *copy;

  g_return_val_if_fail (run != NULL, NULL);

  copy = g_memdup2 (run, sizeof *run);
  copy->name = g_strdup (run->name);
  copy->model_path = g_strdup (run->model_path);
  copy->model_hash = g_strdup (run->model_hash);
  copy->dataset_path = g_strdup (run->dataset_path);
  copy->dataset_hash = g_strdup (run->dataset_hash);
  copy->parameters = g_strdup (run->parameters);
  copy->output_path = g_strdup (run->output_path);
  copy->output_hash = g_strdup (run->output_hash);
  copy->state_path = g_strdup (run->state_path);
  copy->error = g_strdup (run->error);
  return copy;
}

void
gouache_run_free (GouacheRun *run)
{
  if (run == NULL)
    return;

  g_free (run->name);
  g_free (run->model_path);
  g_free (run->model_hash);
  g_free (run->dataset_path);
  g_free (run->dataset_hash);
  g_free (run->parameters);
  g_free (run->output_path);
  g_free (run->output_hash);
  g_free (run->state_path);
  g_free (run->error);
  g_free (run);
}

const char *
gouache_run_status_to_string (GouacheRunStatus status)
{
  switch (status)
    {
    case GOUACHE_RUN_RUNNING:
      return "running";
    case GOUACHE_RUN_FINISHED:
      return "finished";
    case GOUACHE_RUN_CANCELLED:
      return "cancelled";
    case GOUACHE_RUN_FAILED:
    default:
      return "failed";
    }
}

void
gouache_run_file_free (GouacheRunFile *file)
{
  if (file == NULL)
    return;

  g_free (file->path);
  g_free (file->sha256);
  g_free (file->caption);
  g_free (file);
}

void
gouache_run_sample_free (GouacheRunSample *sample)
{
  if (sample == NULL)
    return;

  g_free (sample->prompt);
  g_free (sample->path);
  g_free (sample);
}

/* SQLite -------------------------------------------------------------------- */

static gboolean
gouache_run_store_open (GouacheRunStore  *self,
                        GError          **error)
{
  static const GouacheSqliteMessages messages = {
    N_("Could not open the training runs"),
    N_("Could not read the training runs"),
    N_("The training runs in “%s” were written by a newer version of Gouache"),
  };

  self->db = gouache_sqlite_open (self->path, SCHEMA_VERSION, schema_v1, "PRAGMA foreign_keys = ON",
                                  &messages, error);
  if (self->db == NULL)
    return FALSE;

  for (int i = 0; i < N_STATEMENTS; i++)
    if (sqlite3_prepare_v3 (self->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &self->statements[i], NULL) != SQLITE_OK)
      return gouache_sqlite_error (self->db, _("Could not read the training runs"), error);

  return TRUE;
}

/* The statement, reset and cleared, for binding. Called with the lock held. */
static sqlite3_stmt *
statement (GouacheRunStore *self,
           int              which)
{
  sqlite3_stmt *s = self->statements[which];

  sqlite3_reset (s);
  sqlite3_clear_bindings (s);
  return s;
}

static void
bind_text (sqlite3_stmt *s,
           int           index,
           const char   *text)
{
  if (text)
    sqlite3_bind_text (s, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (s, index);
}

static void
bind_real (sqlite3_stmt *s,
           int           index,
           double        value)
{
  if (isnan (value))
    sqlite3_bind_null (s, index);
  else
    sqlite3_bind_double (s, index, value);
}

static char *
column_text (sqlite3_stmt *s,
             int           column)
{
  const unsigned char *text = sqlite3_column_text (s, column);

  return text ? g_strdup ((const char *) text) : NULL;
}

static double
column_real (sqlite3_stmt *s,
             int           column)
{
  return sqlite3_column_type (s, column) == SQLITE_NULL ? NAN : sqlite3_column_double (s, column);
}

/* Runs a statement that returns no rows. Called with the lock held. */
static gboolean
step_done (GouacheRunStore  *self,
           sqlite3_stmt     *s,
           GError          **error)
{
  gboolean ok = sqlite3_step (s) == SQLITE_DONE;

  if (!ok)
    gouache_sqlite_error (self->db, _("Could not save the training run"), error);
  sqlite3_reset (s);
  return ok;
}

/* The object --------------------------------------------------------------- */

static void
gouache_run_store_finalize (GObject *object)
{
  GouacheRunStore *self = GOUACHE_RUN_STORE (object);

  for (int i = 0; i < N_STATEMENTS; i++)
    sqlite3_finalize (self->statements[i]);
  sqlite3_close (self->db);
  g_mutex_clear (&self->lock);
  g_free (self->path);

  G_OBJECT_CLASS (gouache_run_store_parent_class)->finalize (object);
}

static void
gouache_run_store_class_init (GouacheRunStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gouache_run_store_finalize;
}

static void
gouache_run_store_init (GouacheRunStore *self)
{
  g_mutex_init (&self->lock);
}

char *
gouache_run_store_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "gouache", "runs.db", NULL);
}

GouacheRunStore *
gouache_run_store_new (const char  *path,
                       GError     **error)
{
  g_autoptr (GouacheRunStore) self = g_object_new (GOUACHE_TYPE_RUN_STORE, NULL);

  self->path = g_strdup (path);
  if (!gouache_run_store_open (self, error))
    return NULL;

  return g_steal_pointer (&self);
}

const char *
gouache_run_store_get_path (GouacheRunStore *self)
{
  g_return_val_if_fail (GOUACHE_IS_RUN_STORE (self), NULL);

  return self->path;
}

/* Writing ------------------------------------------------------------------- */

gint64
gouache_run_store_begin (GouacheRunStore   *self,
                         const GouacheRun  *run,
                         GPtrArray         *files,
                         GError           **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s;
  gint64 id;

  g_return_val_if_fail (GOUACHE_IS_RUN_STORE (self), 0);

  if (!gouache_sqlite_exec (self->db, "BEGIN IMMEDIATE", _("Could not save the training run"), error))
    return 0;

  s = statement (self, INSERT_RUN);
  sqlite3_bind_int64 (s, 1, g_get_real_time () / G_USEC_PER_SEC);
  sqlite3_bind_int (s, 2, GOUACHE_RUN_RUNNING);
  bind_text (s, 3, run->name ? run->name : "");
  bind_text (s, 4, run->model_path ? run->model_path : "");
  bind_text (s, 5, run->model_hash ? run->model_hash : "");
  bind_text (s, 6, run->dataset_path ? run->dataset_path : "");
  bind_text (s, 7, run->dataset_hash ? run->dataset_hash : "");
  bind_text (s, 8, run->parameters ? run->parameters : "{}");
  bind_text (s, 9, run->state_path);
  if (!step_done (self, s, error))
    goto rollback;
  id = sqlite3_last_insert_rowid (self->db);

  for (guint i = 0; files && i < files->len; i++)
    {
      const GouacheRunFile *file = g_ptr_array_index (files, i);

      s = statement (self, INSERT_FILE);
      sqlite3_bind_int64 (s, 1, id);
      sqlite3_bind_int (s, 2, (int) i);
      bind_text (s, 3, file->path);
      bind_text (s, 4, file->sha256);
      bind_text (s, 5, file->caption ? file->caption : "");
      sqlite3_bind_int (s, 6, file->width);
      sqlite3_bind_int (s, 7, file->height);
      if (!step_done (self, s, error))
        goto rollback;
    }

  if (!gouache_sqlite_exec (self->db, "COMMIT", _("Could not save the training run"), error))
    goto rollback;
  return id;

rollback:
  sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
  return 0;
}

gboolean
gouache_run_store_set_state_path (GouacheRunStore  *self,
                                  gint64            id,
                                  const char       *state_path,
                                  GError          **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, SET_STATE_PATH);

  sqlite3_bind_int64 (s, 1, id);
  bind_text (s, 2, state_path);
  return step_done (self, s, error);
}

gboolean
gouache_run_store_resume (GouacheRunStore  *self,
                          gint64            id,
                          GError          **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, RESUME_RUN);

  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int (s, 2, GOUACHE_RUN_RUNNING);
  return step_done (self, s, error);
}

gboolean
gouache_run_store_add_loss (GouacheRunStore       *self,
                            gint64                 id,
                            const GouacheRunLoss  *loss,
                            GError               **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, INSERT_LOSS);

  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, loss->step);
  sqlite3_bind_double (s, 3, loss->loss);
  sqlite3_bind_double (s, 4, loss->learning_rate);
  sqlite3_bind_double (s, 5, loss->seconds);
  return step_done (self, s, error);
}

gboolean
gouache_run_store_add_validation (GouacheRunStore  *self,
                                  gint64            id,
                                  gint64            step,
                                  double            loss,
                                  GError          **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, INSERT_VALIDATION);

  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, step);
  sqlite3_bind_double (s, 3, loss);
  return step_done (self, s, error);
}

gboolean
gouache_run_store_add_sample (GouacheRunStore         *self,
                              gint64                   id,
                              const GouacheRunSample  *sample,
                              GError                 **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, INSERT_SAMPLE);

  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, sample->step);
  sqlite3_bind_int (s, 3, (int) sample->index);
  bind_text (s, 4, sample->prompt ? sample->prompt : "");
  bind_text (s, 5, sample->path ? sample->path : "");
  return step_done (self, s, error);
}

gboolean
gouache_run_store_finish (GouacheRunStore   *self,
                          const GouacheRun  *run,
                          GError           **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, FINISH_RUN);

  sqlite3_bind_int64 (s, 1, run->id);
  sqlite3_bind_int64 (s, 2, g_get_real_time () / G_USEC_PER_SEC);
  sqlite3_bind_int (s, 3, run->status);
  bind_text (s, 4, run->output_path);
  bind_text (s, 5, run->output_hash);
  sqlite3_bind_int64 (s, 6, run->steps);
  sqlite3_bind_double (s, 7, run->seconds_per_step);
  bind_real (s, 8, run->val_loss_first);
  bind_real (s, 9, run->val_loss_last);
  bind_text (s, 10, run->error);
  return step_done (self, s, error);
}

/* Reading ------------------------------------------------------------------- */

static GouacheRun *
run_from_row (sqlite3_stmt *s)
{
  GouacheRun *run = g_new0 (GouacheRun, 1);

  run->id = sqlite3_column_int64 (s, 0);
  run->created = sqlite3_column_int64 (s, 1);
  run->finished = sqlite3_column_int64 (s, 2);
  run->status = CLAMP (sqlite3_column_int (s, 3), GOUACHE_RUN_RUNNING, GOUACHE_RUN_FAILED);
  run->name = column_text (s, 4);
  run->model_path = column_text (s, 5);
  run->model_hash = column_text (s, 6);
  run->dataset_path = column_text (s, 7);
  run->dataset_hash = column_text (s, 8);
  run->parameters = column_text (s, 9);
  run->output_path = column_text (s, 10);
  run->output_hash = column_text (s, 11);
  run->state_path = column_text (s, 12);
  run->steps = sqlite3_column_int64 (s, 13);
  run->seconds_per_step = sqlite3_column_double (s, 14);
  run->val_loss_first = column_real (s, 15);
  run->val_loss_last = column_real (s, 16);
  run->error = column_text (s, 17);
  return run;
}

/* Steps through a query's rows with row (the statement, its data) for each; FALSE on error. */
static gboolean
each_row (GouacheRunStore  *self,
          sqlite3_stmt     *s,
          void            (*row) (sqlite3_stmt *s, gpointer data),
          gpointer          data,
          GError          **error)
{
  int rc;

  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    row (s, data);
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return gouache_sqlite_error (self->db, _("Could not read the training runs"), error);
  return TRUE;
}

static void
add_run (sqlite3_stmt *s,
         gpointer      data)
{
  g_ptr_array_add (data, run_from_row (s));
}

GouacheRun *
gouache_run_store_get (GouacheRunStore  *self,
                       gint64            id,
                       GError          **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_run_free);
  sqlite3_stmt *s = statement (self, GET_RUN);

  sqlite3_bind_int64 (s, 1, id);
  if (!each_row (self, s, add_run, found, error))
    return NULL;
  if (found->len == 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("There is no training run %lld"), (long long) id);
      return NULL;
    }
  return g_ptr_array_steal_index (found, 0);
}

GPtrArray *
gouache_run_store_list (GouacheRunStore  *self,
                        GError          **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  g_autoptr (GPtrArray) runs = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_run_free);

  if (!each_row (self, statement (self, LIST_RUNS), add_run, runs, error))
    return NULL;
  return g_steal_pointer (&runs);
}

static void
add_file (sqlite3_stmt *s,
          gpointer      data)
{
  GouacheRunFile *file = g_new0 (GouacheRunFile, 1);

  file->path = column_text (s, 0);
  file->sha256 = column_text (s, 1);
  file->caption = column_text (s, 2);
  file->width = sqlite3_column_int (s, 3);
  file->height = sqlite3_column_int (s, 4);
  g_ptr_array_add (data, file);
}

static void
add_loss (sqlite3_stmt *s,
          gpointer      data)
{
  GouacheRunLoss loss = { sqlite3_column_int64 (s, 0), sqlite3_column_double (s, 1),
                          sqlite3_column_double (s, 2), sqlite3_column_double (s, 3) };

  g_array_append_val (data, loss);
}

static void
add_validation (sqlite3_stmt *s,
                gpointer      data)
{
  GouacheRunValidation validation = { sqlite3_column_int64 (s, 0), sqlite3_column_double (s, 1) };

  g_array_append_val (data, validation);
}

static void
add_sample (sqlite3_stmt *s,
            gpointer      data)
{
  GouacheRunSample *sample = g_new0 (GouacheRunSample, 1);

  sample->step = sqlite3_column_int64 (s, 0);
  sample->index = (guint) sqlite3_column_int (s, 1);
  sample->prompt = column_text (s, 2);
  sample->path = column_text (s, 3);
  g_ptr_array_add (data, sample);
}

/* A query of one run's rows into container (a GPtrArray or GArray). */
static gpointer
list_of (GouacheRunStore  *self,
         int               which,
         gint64            id,
         gpointer          container,
         void            (*row) (sqlite3_stmt *s, gpointer data),
         GError          **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  sqlite3_stmt *s = statement (self, which);

  sqlite3_bind_int64 (s, 1, id);
  if (!each_row (self, s, row, container, error))
    return NULL;
  return container;
}

GPtrArray *
gouache_run_store_files (GouacheRunStore  *self,
                         gint64            id,
                         GError          **error)
{
  GPtrArray *files = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_run_file_free);

  if (list_of (self, LIST_FILES, id, files, add_file, error) == NULL)
    g_clear_pointer (&files, g_ptr_array_unref);
  return files;
}

GArray *
gouache_run_store_losses (GouacheRunStore  *self,
                          gint64            id,
                          GError          **error)
{
  GArray *losses = g_array_new (FALSE, FALSE, sizeof (GouacheRunLoss));

  if (list_of (self, LIST_LOSSES, id, losses, add_loss, error) == NULL)
    g_clear_pointer (&losses, g_array_unref);
  return losses;
}

GArray *
gouache_run_store_validations (GouacheRunStore  *self,
                               gint64            id,
                               GError          **error)
{
  GArray *validations = g_array_new (FALSE, FALSE, sizeof (GouacheRunValidation));

  if (list_of (self, LIST_VALIDATIONS, id, validations, add_validation, error) == NULL)
    g_clear_pointer (&validations, g_array_unref);
  return validations;
}

GPtrArray *
gouache_run_store_samples (GouacheRunStore  *self,
                           gint64            id,
                           GError          **error)
{
  GPtrArray *samples = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_run_sample_free);

  if (list_of (self, LIST_SAMPLES, id, samples, add_sample, error) == NULL)
    g_clear_pointer (&samples, g_ptr_array_unref);
  return samples;
}

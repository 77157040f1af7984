/* The training-run store: a run's record, files, curves and samples round-trip; a resumed run
 * keeps its row and replaces the steps it trains again; WAL mode; a newer schema is refused. */
#include <glib/gstdio.h>
#include <math.h>
#include <sqlite3.h>

#include "gouache-error.h"
#include "gouache-run-store.h"

typedef struct {
  char *dir;
  char *path;
  GouacheRunStore *store;
} fixture;

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("test-run-store-XXXXXX", NULL);
  f->path = g_build_filename (f->dir, "sub", "runs.db", NULL);
  f->store = gouache_run_store_new (f->path, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  g_clear_object (&f->store);
  const char *suffixes[] = { "", "-wal", "-shm" };
  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *p = g_strconcat (f->path, suffixes[i], NULL);
      g_remove (p);
    }
  g_autofree char *sub = g_path_get_dirname (f->path);
  g_rmdir (sub);
  g_rmdir (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

static gint64
begin (fixture *f, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) files = g_ptr_array_new ();
  GouacheRunFile a = { "/data/a.png", "aa", "ink, a", 512, 512 };
  GouacheRunFile b = { "/data/b.png", "bb", "ink", 448, 576 };
  g_ptr_array_add (files, &a);
  g_ptr_array_add (files, &b);
  GouacheRun run = { .name = (char *) name, .model_path = "/m.safetensors", .model_hash = "mh",
                     .dataset_path = "/data", .dataset_hash = "dh",
                     .parameters = "{\"rank\":16,\"steps\":100}" };
  gint64 id = gouache_run_store_begin (f->store, &run, files, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  return id;
}

static void
test_round_trip (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gint64 id = begin (f, "ink");
  g_assert_true (gouache_run_store_set_state_path (f->store, id, "/runs/1/state.safetensors", &error));
  for (int step = 1; step <= 5; step++)
    {
      GouacheRunLoss loss = { step, 1.0 / step, 1e-4, 0.5 };
      g_assert_true (gouache_run_store_add_loss (f->store, id, &loss, &error));
    }
  g_assert_true (gouache_run_store_add_validation (f->store, id, 0, 0.9, &error));
  g_assert_true (gouache_run_store_add_validation (f->store, id, 5, 0.6, &error));
  GouacheRunSample sample = { 5, 0, "ink, a cat", "/runs/1/sample-000005-00.png" };
  g_assert_true (gouache_run_store_add_sample (f->store, id, &sample, &error));

  g_autoptr (GouacheRun) running = gouache_run_store_get (f->store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (running->status, ==, GOUACHE_RUN_RUNNING);
  g_assert_cmpint (running->finished, ==, 0);
  g_assert_true (isnan (running->val_loss_first));
  g_assert_null (running->output_path);
  g_assert_cmpstr (running->state_path, ==, "/runs/1/state.safetensors");

  GouacheRun end = { .id = id, .status = GOUACHE_RUN_FINISHED, .output_path = "/ink.safetensors",
                     .output_hash = "oh", .steps = 5, .seconds_per_step = 0.5,
                     .val_loss_first = 0.9, .val_loss_last = 0.6 };
  g_assert_true (gouache_run_store_finish (f->store, &end, &error));
  g_autoptr (GouacheRun) run = gouache_run_store_get (f->store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (run->name, ==, "ink");
  g_assert_cmpstr (run->model_hash, ==, "mh");
  g_assert_cmpstr (run->dataset_hash, ==, "dh");
  g_assert_cmpstr (run->parameters, ==, "{\"rank\":16,\"steps\":100}");
  g_assert_cmpstr (run->output_path, ==, "/ink.safetensors");
  g_assert_cmpstr (run->output_hash, ==, "oh");
  g_assert_cmpint (run->status, ==, GOUACHE_RUN_FINISHED);
  g_assert_cmpint (run->steps, ==, 5);
  g_assert_cmpint (run->finished, >=, run->created);
  g_assert_cmpfloat (run->val_loss_last, ==, 0.6);
  g_assert_null (run->error);

  g_autoptr (GPtrArray) files = gouache_run_store_files (f->store, id, &error);
  g_assert_cmpuint (files->len, ==, 2);
  g_assert_cmpstr (((GouacheRunFile *) g_ptr_array_index (files, 1))->caption, ==, "ink");
  g_assert_cmpint (((GouacheRunFile *) g_ptr_array_index (files, 1))->height, ==, 576);
  g_autoptr (GArray) losses = gouache_run_store_losses (f->store, id, &error);
  g_assert_cmpuint (losses->len, ==, 5);
  g_assert_cmpfloat (g_array_index (losses, GouacheRunLoss, 3).loss, ==, 0.25);
  g_autoptr (GArray) validations = gouache_run_store_validations (f->store, id, &error);
  g_assert_cmpuint (validations->len, ==, 2);
  g_autoptr (GPtrArray) samples = gouache_run_store_samples (f->store, id, &error);
  g_assert_cmpuint (samples->len, ==, 1);
  g_assert_cmpstr (((GouacheRunSample *) g_ptr_array_index (samples, 0))->prompt, ==, "ink, a cat");
}

static void
test_resume_replaces_steps (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gint64 id = begin (f, "ink");
  for (int step = 1; step <= 4; step++)
    {
      GouacheRunLoss loss = { step, 1.0, 1e-4, 0.5 };
      gouache_run_store_add_loss (f->store, id, &loss, &error);
    }
  GouacheRun cancelled = { .id = id, .status = GOUACHE_RUN_CANCELLED, .steps = 4,
                           .val_loss_first = NAN, .val_loss_last = NAN };
  g_assert_true (gouache_run_store_finish (f->store, &cancelled, &error));
  /* resumed from the state of step 2: steps 3 and 4 are trained again */
  g_assert_true (gouache_run_store_resume (f->store, id, &error));
  g_autoptr (GouacheRun) run = gouache_run_store_get (f->store, id, &error);
  g_assert_cmpint (run->status, ==, GOUACHE_RUN_RUNNING);
  GouacheRunLoss again = { 3, 0.5, 1e-4, 0.5 };
  g_assert_true (gouache_run_store_add_loss (f->store, id, &again, &error));
  g_autoptr (GArray) losses = gouache_run_store_losses (f->store, id, &error);
  g_assert_cmpuint (losses->len, ==, 4);
  g_assert_cmpfloat (g_array_index (losses, GouacheRunLoss, 2).loss, ==, 0.5);
}

static void
test_list_and_errors (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gint64 first = begin (f, "one"), second = begin (f, "two");
  g_autoptr (GPtrArray) runs = gouache_run_store_list (f->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (runs->len, ==, 2);
  /* newest first (same second: by id) */
  g_assert_cmpint (((GouacheRun *) g_ptr_array_index (runs, 0))->id, ==, second);
  g_assert_cmpint (((GouacheRun *) g_ptr_array_index (runs, 1))->id, ==, first);
  g_assert_null (gouache_run_store_get (f->store, 999, &error));
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
  g_clear_error (&error);
  GouacheRun failed = { .id = first, .status = GOUACHE_RUN_FAILED, .error = "out of memory",
                        .val_loss_first = NAN, .val_loss_last = NAN };
  g_assert_true (gouache_run_store_finish (f->store, &failed, &error));
  g_autoptr (GouacheRun) run = gouache_run_store_get (f->store, first, &error);
  g_assert_cmpstr (run->error, ==, "out of memory");
  g_assert_cmpstr (gouache_run_status_to_string (run->status), ==, "failed");
}

static void
test_wal_and_schema (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  begin (f, "ink");
  g_clear_object (&f->store);
  sqlite3 *db;
  sqlite3_stmt *s;
  g_assert_cmpint (sqlite3_open (f->path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA journal_mode", -1, &s, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (s), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (s, 0), ==, "wal");
  sqlite3_finalize (s);
  /* a store written by a newer Gouache is left alone */
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_assert_null (gouache_run_store_new (f->path, &error));
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/app/run-store/round-trip", fixture, NULL, fixture_set_up, test_round_trip,
              fixture_tear_down);
  g_test_add ("/app/run-store/resume-replaces-steps", fixture, NULL, fixture_set_up,
              test_resume_replaces_steps, fixture_tear_down);
  g_test_add ("/app/run-store/list-and-errors", fixture, NULL, fixture_set_up,
              test_list_and_errors, fixture_tear_down);
  g_test_add ("/app/run-store/wal-and-schema", fixture, NULL, fixture_set_up,
              test_wal_and_schema, fixture_tear_down);
  return g_test_run ();
}

/* test-job-engine.c: the job engine, the history store and the demo model
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Runs the real engine on the demo model (the tiny random checkpoint) at small sizes. XDG
 * folders are temporary (G_TEST_OPTION_ISOLATE_DIRS); GOUACHE_DATA_DIR points at data/.
 */

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "gc-checkpoint.h"
#include "gc-random-checkpoint.h"
#include "gc-random-lora.h"
#include "gouache-data.h"
#include "gouache-demo-model.h"
#include "gouache-error.h"
#include "gouache-history.h"
#include "gouache-job-engine.h"
#include "gouache-png.h"

static GouacheJobEngine *engine;

/* Helpers ------------------------------------------------------------------- */

static void
store_result_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Spins the main loop until *result is set (at most a minute). */
static void
wait_for_result (GAsyncResult **result)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (*result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (*result);
}

static GouacheJobRequest
small_request (const char *prompt,
               guint64     seed)
{
  GouacheJobRequest request = {
    .kind = GOUACHE_JOB_PREVIEW,
    .prompt = (char *) prompt,
    .negative = (char *) "blurry",
    .sampler = GC_SAMPLER_EULER_A,
    .schedule = GC_SCHEDULE_DEFAULT,
    .steps = 2,
    .cfg = 7.0,
    .seed = seed,
    .width = 64,
    .height = 64,
  };

  return request;
}

static GouacheJobResult *
generate (const GouacheJobRequest  *request,
          GouacheJobProgress       *progress,
          GCancellable             *cancellable,
          GError                  **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  gouache_job_engine_generate_async (engine, request, progress, cancellable,
                                     store_result_cb, &result);
  wait_for_result (&result);
  return gouache_job_engine_generate_finish (engine, result, error);
}

static gboolean
load_model (const char  *path,
            GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  gouache_job_engine_load_model_async (engine, path, NULL, store_result_cb, &result);
  wait_for_result (&result);
  return gouache_job_engine_load_model_finish (engine, result, error);
}

static char *
ensure_demo_model (void)
{
  g_autofree char *keys = gouache_data_file (GOUACHE_DATA_DEMO_MODEL_KEYS);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  char *path;

  gouache_demo_model_ensure_async (keys, NULL, store_result_cb, &result);
  wait_for_result (&result);
  path = gouache_demo_model_ensure_finish (result, &error);
  g_assert_no_error (error);
  return path;
}

/* Tests --------------------------------------------------------------------- */

static void
test_no_model (void)
{
  GouacheJobRequest request = small_request ("a cat", 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheJobResult) result = generate (&request, NULL, NULL, &error);

  g_assert_null (result);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
}

static void
test_bad_model (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-bad-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "broken.safetensors", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents (path, "not a model at all", -1, NULL));
  g_assert_false (load_model (path, &error));
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "broken.safetensors"));
  g_assert_null (gouache_job_engine_get_model_path (engine));
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_demo_model (void)
{
  g_autofree char *path = ensure_demo_model ();
  g_autofree char *again = NULL;
  GStatBuf before, after;
  g_autoptr(GError) error = NULL;

  g_assert_true (gouache_demo_model_is_demo (path));
  g_assert_cmpint (g_stat (path, &before), ==, 0);
  g_assert_cmpint (before.st_size, >, 30 * 1000 * 1000);

  /* A second call finds the file and leaves it alone. */
  again = ensure_demo_model ();
  g_assert_cmpstr (again, ==, path);
  g_assert_cmpint (g_stat (path, &after), ==, 0);
  g_assert_cmpint (after.st_mtime, ==, before.st_mtime);

  g_assert_true (load_model (path, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (gouache_job_engine_get_model_path (engine), ==, path);
  g_assert_cmpint (gouache_job_engine_get_pixel_multiple (engine), >, 0);
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  guint *count = user_data;

  (*count)++;
}

static void
test_generate (void)
{
  GouacheJobRequest request = small_request ("a lighthouse at dusk", 42);
  g_autoptr(GouacheJobProgress) progress = gouache_job_progress_new ();
  g_autoptr(GouacheJobResult) first = NULL, second = NULL, other = NULL;
  g_autoptr(GError) error = NULL;
  guint previews = 0;

  g_signal_connect (progress, "notify::preview", G_CALLBACK (count_notify_cb), &previews);
  first = generate (&request, progress, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (first);
  g_assert_cmpint (first->width, ==, 64);
  g_assert_cmpint (first->height, ==, 64);
  g_assert_cmpuint (g_bytes_get_size (first->rgb), ==, 64 * 64 * 3);
  g_assert_cmpstr (first->request->prompt, ==, "a lighthouse at dusk");
  g_assert_cmpuint (first->info->seed, ==, 42);
  g_assert_cmpstr (first->info->sampler, ==, "Euler a");
  g_assert_cmpstr (first->info->model_name, ==, "demo-random-tiny-v1");
  g_assert_cmpuint (strlen (first->info->model_hash), ==, 10);

  /* Each step's x̂₀ arrived as an 8×8 preview; the last state is "finished". */
  g_assert_cmpuint (previews, >=, 1);
  g_assert_cmpint (gdk_pixbuf_get_width (gouache_job_progress_get_preview (progress)), ==, 8);
  g_assert_cmpint (gouache_job_progress_get_stage (progress), ==, GOUACHE_JOB_STAGE_FINISHED);
  g_assert_cmpfloat (gouache_job_progress_get_fraction (progress), ==, 1.0);

  /* The same request draws the same pixels; another prompt, others. */
  second = generate (&request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (first->rgb, second->rgb));
  request.prompt = (char *) "a harbour at dawn";
  other = generate (&request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (g_bytes_equal (first->rgb, other->rgb));
}

static gpointer
post_many_cb (gpointer data)
{
  for (guint i = 1; i <= 100; i++)
    gouache_job_progress_post (data, GOUACHE_JOB_STAGE_SAMPLING, i, 100, NULL);
  return NULL;
}

/* A worker's posts reach the main thread coalesced: while the main loop is busy, a hundred
 * steps become one update with the newest state, never a callback on the worker. */
static void
test_progress_coalesced (void)
{
  g_autoptr(GouacheJobProgress) progress = gouache_job_progress_new ();
  guint notified = 0;

  g_signal_connect (progress, "notify::step", G_CALLBACK (count_notify_cb), &notified);
  g_thread_join (g_thread_new ("poster", post_many_cb, progress));
  g_assert_cmpuint (notified, ==, 0);
  g_assert_cmpuint (gouache_job_progress_get_step (progress), ==, 0);

  while (g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (notified, ==, 1);
  g_assert_cmpuint (gouache_job_progress_get_step (progress), ==, 100);
  g_assert_cmpfloat_with_epsilon (gouache_job_progress_get_fraction (progress), 100.0 / 101.0, 1e-12);
  g_assert_cmpfloat (gouache_job_progress_get_eta (progress), >=, 0.0);
}

static void
test_bad_request (void)
{
  GouacheJobRequest request = small_request ("a cat", 1);
  g_autoptr(GouacheJobResult) result = NULL;
  g_autoptr(GError) error = NULL;

  request.width = 100;
  result = generate (&request, NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
}

static void
cancel_on_step_cb (GObject    *object,
                   GParamSpec *pspec,
                   gpointer    user_data)
{
  if (gouache_job_progress_get_step (GOUACHE_JOB_PROGRESS (object)) >= 1)
    g_cancellable_cancel (user_data);
}

static void
test_cancel (void)
{
  GouacheJobRequest request = small_request ("a cat", 7);
  g_autoptr(GouacheJobProgress) progress = gouache_job_progress_new ();
  g_autoptr(GCancellable) running = g_cancellable_new ();
  g_autoptr(GCancellable) queued = g_cancellable_new ();
  g_autoptr(GAsyncResult) first = NULL, second = NULL;
  g_autoptr(GouacheJobResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* Cancelled between steps while it runs... */
  request.steps = 20;
  request.width = request.height = 128;
  g_signal_connect (progress, "notify::step", G_CALLBACK (cancel_on_step_cb), running);
  gouache_job_engine_generate_async (engine, &request, progress, running, store_result_cb, &first);
  /* ...and one cancelled while it waits for its turn. */
  gouache_job_engine_generate_async (engine, &request, NULL, queued, store_result_cb, &second);
  g_cancellable_cancel (queued);

  wait_for_result (&first);
  wait_for_result (&second);
  g_assert_null (gouache_job_engine_generate_finish (engine, first, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (gouache_job_progress_get_step (progress), <, 20);
  g_clear_error (&error);
  g_assert_null (gouache_job_engine_generate_finish (engine, second, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* The engine goes on working. */
  request = small_request ("a cat", 7);
  result = generate (&request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
}

static void
test_count_tokens (void)
{
  g_autoptr(GString) long_prompt = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  gsize tokens = 0, windows = 0;

  while (!gouache_job_engine_count_tokens (engine, "", &tokens, &windows))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }

  g_assert_true (gouache_job_engine_count_tokens (engine, "a cat", &tokens, &windows));
  g_assert_cmpuint (tokens, ==, 2);
  g_assert_cmpuint (windows, ==, 1);

  for (guint i = 0; i < 40; i++)
    g_string_append (long_prompt, "red cat, ");
  g_assert_true (gouache_job_engine_count_tokens (engine, long_prompt->str, &tokens, &windows));
  g_assert_cmpuint (tokens, ==, 120);
  g_assert_cmpuint (windows, ==, 2);

  g_assert_true (gouache_job_engine_count_tokens (engine, "a cat BREAK a dog", &tokens, &windows));
  g_assert_cmpuint (windows, ==, 2);
}

static GouacheStyleInfo *
inspect_style (const char  *path,
               GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  gouache_job_engine_inspect_style_async (engine, path, NULL, store_result_cb, &result);
  wait_for_result (&result);
  return gouache_job_engine_inspect_style_finish (engine, result, error);
}

static char *
test_data_file (const char *name)
{
  return g_build_filename (g_getenv ("GOUACHE_TEST_DATA"), name, NULL);
}

static GBytes *
draw_with_styles (const GouacheJobStyle *styles,
                  guint                  n_styles)
{
  GouacheJobRequest request = small_request ("a lighthouse at dusk", 5);
  g_autoptr(GouacheJobResult) result = NULL;
  g_autoptr(GError) error = NULL;

  request.styles = (GouacheJobStyle *) styles;
  request.n_styles = n_styles;
  result = generate (&request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (result->info->lora_hashes->len, ==, n_styles);
  return g_bytes_ref (result->rgb);
}

/* A LoRA made for the SD 2.x tiny model, which the SD 1.x demo model cannot take. */
static char *
write_foreign_lora (void)
{
  g_autofree char *keys = test_data_file ("keys_tiny2.json");
  g_autofree char *checkpoint_path = g_build_filename (g_get_tmp_dir (), "gouache-tiny2.safetensors", NULL);
  char *lora_path = g_build_filename (g_get_tmp_dir (), "gouache-foreign-lora.safetensors", NULL);
  gc_checkpoint *checkpoint = NULL;
  gc_error err = { 0 };

  g_assert_cmpint (gc_random_checkpoint_write (keys, checkpoint_path, &err), ==, GC_OK);
  g_assert_cmpint (gc_checkpoint_open (&checkpoint, checkpoint_path, &err), ==, GC_OK);
  g_assert_cmpint (gc_random_lora_write (checkpoint, 4, 1, lora_path, &err), ==, GC_OK);
  gc_checkpoint_close (checkpoint);
  g_unlink (checkpoint_path);
  return lora_path;
}

static void
test_styles (void)
{
  g_autofree char *a = test_data_file ("lora_tiny_style_a.safetensors");
  g_autofree char *b = test_data_file ("lora_tiny_style_b.safetensors");
  g_autofree char *foreign = write_foreign_lora ();
  GouacheJobStyle a1[] = { { a, (char *) "a", 1.0 } };
  GouacheJobStyle a05[] = { { a, (char *) "a", 0.5 } };
  GouacheJobStyle ab[] = { { a, (char *) "a", 1.0 }, { b, (char *) "b", 0.5 } };
  GouacheJobStyle bad[] = { { foreign, (char *) "foreign", 1.0 } };
  GouacheJobRequest request = small_request ("a lighthouse at dusk", 5);
  g_autoptr(GouacheStyleInfo) info = NULL;
  g_autoptr(GouacheJobResult) refused = NULL;
  g_autoptr(GBytes) plain = NULL, with_a = NULL, half_a = NULL, with_ab = NULL, again = NULL, after = NULL;
  g_autoptr(GError) error = NULL;

  info = inspect_style (a, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->name, ==, "lora_tiny_style_a");
  g_assert_null (info->trigger_words);
  g_assert_cmpuint (info->applied, >, 0);
  g_assert_cmpuint (info->applied, <=, info->tensors);

  /* W = W₀ + Σ wᵢ·ΔWᵢ: each style and each weight changes the picture; going back to a
   * blend gives its picture back. */
  plain = draw_with_styles (NULL, 0);
  with_a = draw_with_styles (a1, 1);
  half_a = draw_with_styles (a05, 1);
  with_ab = draw_with_styles (ab, 2);
  again = draw_with_styles (a1, 1);
  g_assert_false (g_bytes_equal (plain, with_a));
  g_assert_false (g_bytes_equal (with_a, half_a));
  g_assert_false (g_bytes_equal (with_a, with_ab));
  g_assert_true (g_bytes_equal (with_a, again));

  /* A style for another model is refused by name, before and during generation. */
  g_clear_pointer (&info, gouache_style_info_free);
  info = inspect_style (foreign, &error);
  g_assert_null (info);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_MISMATCH);
  g_assert_nonnull (strstr (error->message, "gouache-foreign-lora.safetensors"));
  g_clear_error (&error);
  request.styles = bad;
  request.n_styles = 1;
  refused = generate (&request, NULL, NULL, &error);
  g_assert_null (refused);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_MISMATCH);
  after = draw_with_styles (NULL, 0);
  g_assert_true (g_bytes_equal (plain, after));
  g_unlink (foreign);
}

static void
test_trigger_words (void)
{
  g_autofree char *words = gouache_style_trigger_words ("{\"10_ink\": {\"ink wash\": 40, \"mountain\": 12, \" mist \": 3},"
                                                         " \"5_sky\": {\"mountain\": 30, \"sky\": 2}}");
  g_autofree char *name = gouache_style_name_from_path ("/loras/Ink Wash v2.SAFETENSORS");

  g_assert_cmpstr (words, ==, "mountain, ink wash, mist, sky");
  g_assert_null (gouache_style_trigger_words ("not json"));
  g_assert_null (gouache_style_trigger_words ("{}"));
  g_assert_cmpstr (name, ==, "Ink Wash v2");
}

static void
test_request_styles_json (void)
{
  GouacheJobStyle styles[] = {
    { (char *) "/styles/ink wash.safetensors", (char *) "ink wash", 0.75 },
    { (char *) "/styles/\"quoted\".safetensors", (char *) "q", -1.5 },
  };
  GouacheJobRequest request = small_request ("a cat", 1);
  g_autofree char *json = NULL;
  g_autoptr(GError) error = NULL;
  GouacheJobStyle *back;
  guint n = 0;

  request.styles = styles;
  request.n_styles = G_N_ELEMENTS (styles);
  json = gouache_job_request_styles_to_json (&request);
  back = gouache_job_request_styles_from_json (json, &n, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (back[0].path, ==, styles[0].path);
  g_assert_cmpstr (back[1].path, ==, styles[1].path);
  g_assert_cmpstr (back[0].name, ==, "ink wash");
  g_assert_cmpfloat (back[1].weight, ==, -1.5);
  gouache_job_styles_free (back, n);

  g_assert_null (gouache_job_request_styles_from_json ("{\"path\": 1}", &n, &error));
  g_assert_nonnull (error);
  g_assert_true (gouache_job_request_schedule_allowed (GC_SAMPLER_EULER, GC_SCHEDULE_KARRAS));
  g_assert_false (gouache_job_request_schedule_allowed (GC_SAMPLER_DDIM, GC_SCHEDULE_KARRAS));
  g_assert_false (gouache_job_request_schedule_allowed (GC_SAMPLER_LCM, GC_SCHEDULE_TRAILING));
}

static GouacheHistoryEntry *
history_add (GouacheHistory          *history,
             const GouacheJobResult  *result,
             const char              *folder,
             GError                 **error)
{
  g_autoptr(GAsyncResult) async = NULL;

  gouache_history_add_async (history, result, folder, NULL, store_result_cb, &async);
  wait_for_result (&async);
  return gouache_history_add_finish (history, async, error);
}

static void
test_history (void)
{
  g_autofree char *db = gouache_history_default_path ();
  g_autofree char *folder = g_build_filename (g_get_user_special_dir (G_USER_DIRECTORY_PICTURES) ?: g_get_home_dir (), "Gouache", NULL);
  GouacheJobRequest request = small_request ("a quiet (lake:1.2), dusk", 99);
  g_autoptr(GouacheJobResult) result = NULL;
  g_autoptr(GouacheHistory) history = NULL;
  g_autoptr(GouacheHistoryEntry) first = NULL, second = NULL;
  g_autoptr(GouachePngImage) png = NULL;
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(GdkPixbuf) thumbnail = NULL;
  g_autoptr(GError) error = NULL;

  result = generate (&request, NULL, NULL, &error);
  g_assert_no_error (error);

  history = gouache_history_new (db, &error);
  g_assert_no_error (error);
  first = history_add (history, result, folder, &error);
  g_assert_no_error (error);
  second = history_add (history, result, folder, &error);
  g_assert_no_error (error);

  /* Two files: the second never overwrites the first. */
  g_assert_true (g_str_has_prefix (first->path, folder));
  g_assert_true (g_str_has_suffix (first->path, "-99.png"));
  g_assert_cmpstr (first->path, !=, second->path);
  g_assert_true (g_file_test (second->path, G_FILE_TEST_IS_REGULAR));
  png = gouache_png_load (first->path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (png->width, ==, 64);
  g_assert_cmpstr (g_hash_table_lookup (png->text, "parameters"), ==, first->parameters);
  g_assert_nonnull (strstr (first->parameters, "Seed: 99"));

  /* Listed newest first, after reopening. */
  g_clear_object (&history);
  history = gouache_history_new (db, &error);
  g_assert_no_error (error);
  entries = gouache_history_list (history, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (entries->len, ==, 2);
  g_assert_cmpint (((GouacheHistoryEntry *) entries->pdata[0])->id, ==, second->id);
  g_assert_cmpstr (((GouacheHistoryEntry *) entries->pdata[1])->styles, ==, "[]");
  thumbnail = gouache_history_entry_get_thumbnail (entries->pdata[0]);
  g_assert_nonnull (thumbnail);
  g_assert_cmpint (gdk_pixbuf_get_width (thumbnail), ==, 64);

  g_assert_true (gouache_history_remove (history, first->id, &error));
  g_clear_pointer (&entries, g_ptr_array_unref);
  entries = gouache_history_list (history, 10, &error);
  g_assert_cmpuint (entries->len, ==, 1);
  g_assert_true (g_file_test (first->path, G_FILE_TEST_IS_REGULAR));
}

static void
test_history_errors (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-history-XXXXXX", NULL);
  g_autofree char *damaged = g_build_filename (dir, "damaged.db", NULL);
  g_autofree char *newer = g_build_filename (dir, "newer.db", NULL);
  g_autoptr(GouacheHistory) history = NULL;
  g_autoptr(GError) error = NULL;
  sqlite3 *db = NULL;

  g_assert_true (g_file_set_contents (damaged, "this is not an SQLite database, not at all", -1, NULL));
  history = gouache_history_new (damaged, &error);
  g_assert_null (history);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_IO);
  g_clear_error (&error);

  /* A schema from the future is refused, not rewritten. */
  history = gouache_history_new (newer, &error);
  g_assert_no_error (error);
  g_clear_object (&history);
  g_assert_cmpint (sqlite3_open (newer, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version = 9", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  history = gouache_history_new (newer, &error);
  g_assert_null (history);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *vocabulary = NULL;
  int status;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  vocabulary = gouache_data_file (GOUACHE_DATA_VOCABULARY);
  engine = gouache_job_engine_new (vocabulary);
  gouache_job_engine_set_threads (engine, 2);

  g_test_add_func ("/app/job-engine/no-model", test_no_model);
  g_test_add_func ("/app/job-engine/bad-model", test_bad_model);
  g_test_add_func ("/app/job-engine/demo-model", test_demo_model);
  g_test_add_func ("/app/job-engine/generate", test_generate);
  g_test_add_func ("/app/job-engine/progress-coalesced", test_progress_coalesced);
  g_test_add_func ("/app/job-engine/bad-request", test_bad_request);
  g_test_add_func ("/app/job-engine/cancel", test_cancel);
  g_test_add_func ("/app/job-engine/count-tokens", test_count_tokens);
  g_test_add_func ("/app/job-engine/styles", test_styles);
  g_test_add_func ("/app/job-engine/trigger-words", test_trigger_words);
  g_test_add_func ("/app/job-engine/styles-json", test_request_styles_json);
  g_test_add_func ("/app/history/add-and-list", test_history);
  g_test_add_func ("/app/history/errors", test_history_errors);

  status = g_test_run ();
  g_clear_object (&engine);
  return status;
}

/* The presets store: a preset comes back as it was saved, through the database and through
 * JSON; bad JSON is refused with the field named; a writer killed mid-write leaves a readable
 * store holding every preset it had committed. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gouache-error.h"
#include "gouache-preset-store.h"

static const guint8 tiny_png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3, 4 };

typedef struct {
  char *dir, *path;
  GouachePresetStore *store;
} fixture;

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("test-presets-XXXXXX", NULL);
  f->path = g_build_filename (f->dir, "sub", "presets.db", NULL);
  g_autoptr (GError) error = NULL;
  f->store = gouache_preset_store_new (f->path, &error);
  g_assert_no_error (error);
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while ((name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      g_rmdir (path);
    }
  else
    g_remove (path);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  g_clear_object (&f->store);
  remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->path);
}

static GouachePreset *
sample (const char *name)
{
  GouachePreset *p = gouache_preset_new ();
  p->name = g_strdup (name);
  p->model_path = g_strdup ("/models/v1-5.safetensors");
  p->model_sha256 = g_strdup ("6CE0161689");
  gouache_preset_add_style (p, "/loras/ink.safetensors", "0123456789ab", 0.7, 0.5);
  gouache_preset_add_style (p, "/loras/paper.safetensors", NULL, -1.25, -1.25);
  g_free (p->prompt);
  p->prompt = g_strdup ("a lighthouse, \"ink\"\nBREAK (wash:1.2)");
  g_free (p->negative_prompt);
  p->negative_prompt = g_strdup ("blurry");
  g_free (p->sampler);
  p->sampler = g_strdup ("DPM++ 2M");
  g_free (p->schedule);
  p->schedule = g_strdup ("Karras");
  p->steps = 24;
  p->cfg_scale = 6.5;
  p->width = 640;
  p->height = 384;
  p->seed = 1234567890123;
  p->thumbnail = g_bytes_new_static (tiny_png, sizeof tiny_png);
  return p;
}

static void
assert_same_preset (const GouachePreset *a, const GouachePreset *b)
{
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_cmpstr (a->model_path, ==, b->model_path);
  g_assert_cmpstr (a->model_sha256, ==, b->model_sha256);
  g_assert_cmpuint (a->styles->len, ==, b->styles->len);
  for (guint i = 0; i < a->styles->len; i++)
    {
      const GouachePresetStyle *x = g_ptr_array_index (a->styles, i), *y = g_ptr_array_index (b->styles, i);
      g_assert_cmpstr (x->path, ==, y->path);
      g_assert_cmpstr (x->sha256, ==, y->sha256);
      g_assert_cmpfloat (x->weight, ==, y->weight);
      g_assert_cmpfloat (x->text_weight, ==, y->text_weight);
    }
  g_assert_cmpstr (a->prompt, ==, b->prompt);
  g_assert_cmpstr (a->negative_prompt, ==, b->negative_prompt);
  g_assert_cmpstr (a->sampler, ==, b->sampler);
  g_assert_cmpstr (a->schedule, ==, b->schedule);
  g_assert_cmpuint (a->steps, ==, b->steps);
  g_assert_cmpfloat (a->cfg_scale, ==, b->cfg_scale);
  g_assert_cmpuint (a->width, ==, b->width);
  g_assert_cmpuint (a->height, ==, b->height);
  g_assert_cmpint (a->seed, ==, b->seed);
  g_assert_true (g_bytes_equal (a->thumbnail, b->thumbnail));
  g_assert_cmpint (a->created, ==, b->created);
  g_assert_cmpint (a->updated, ==, b->updated);
}

static void
test_round_trip (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GouachePreset) saved = sample ("ink wash");
  g_assert_true (gouache_preset_store_save (f->store, saved, FALSE, &error));
  g_assert_cmpstr (saved->sampler, ==, "dpmpp_2m"); /* names are kept in their CLI spelling */
  g_assert_cmpstr (saved->schedule, ==, "karras");
  g_assert_cmpstr (saved->model_sha256, ==, "6ce0161689");
  g_assert_cmpint (saved->created, >, 0);
  g_autoptr (GouachePreset) got = gouache_preset_store_get (f->store, "ink wash", &error);
  g_assert_no_error (error);
  assert_same_preset (got, saved);

  /* through JSON into another store */
  g_autofree char *json = gouache_preset_store_export (f->store, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *other_path = g_build_filename (f->dir, "other.db", NULL);
  g_autoptr (GouachePresetStore) other = gouache_preset_store_new (other_path, &error);
  g_assert_cmpint (gouache_preset_store_import (other, json, FALSE, &error), ==, 1);
  g_autoptr (GouachePreset) imported = gouache_preset_store_get (other, "ink wash", &error);
  g_assert_no_error (error);
  imported->updated = saved->updated; /* the import is a new write */
  assert_same_preset (imported, saved);

  /* the name is taken until replaced */
  g_assert_false (gouache_preset_store_save (f->store, saved, FALSE, &error));
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
  g_clear_error (&error);
  saved->steps = 30;
  g_assert_true (gouache_preset_store_save (f->store, saved, TRUE, &error));
  g_autoptr (GouachePreset) replaced = gouache_preset_store_get (f->store, "ink wash", &error);
  g_assert_cmpuint (replaced->steps, ==, 30);
  g_assert_cmpuint (replaced->styles->len, ==, 2);
}

static void
test_rename_duplicate_delete (fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GouachePreset) a = sample ("a"), b = sample ("b");
  g_assert_true (gouache_preset_store_save (f->store, a, FALSE, &error));
  g_assert_true (gouache_preset_store_save (f->store, b, FALSE, &error));
  g_assert_false (gouache_preset_store_rename (f->store, "a", "b", &error));
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_true (gouache_preset_store_rename (f->store, "a", "c", &error));
  g_assert_true (gouache_preset_store_duplicate (f->store, "c", "d", &error));
  g_assert_true (gouache_preset_store_delete (f->store, "b", &error));
  g_assert_false (gouache_preset_store_delete (f->store, "b", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_autoptr (GPtrArray) list = gouache_preset_store_list (f->store, &error);
  g_assert_cmpuint (list->len, ==, 2);
  GouachePreset *c = g_ptr_array_index (list, 0), *d = g_ptr_array_index (list, 1);
  g_assert_cmpstr (c->name, ==, "c");
  g_assert_cmpstr (d->name, ==, "d");
  g_assert_cmpuint (d->styles->len, ==, 2);
  g_assert_cmpstr (d->prompt, ==, a->prompt);
}

/* Each bad document is refused, naming what is wrong, and stores nothing. */
static void
test_import_validation (fixture *f, gconstpointer data)
{
  static const struct {
    const char *json, *expected;
  } cases[] = {
    { "[1, 2]", "not a Gouache presets file" },
    { "{\"format\": \"gouache-presets\", \"version\": 9, \"presets\": []}", "newer" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"model\": {\"path\": \"m\"}}]}", "name" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}, \"sampler\": \"k_lms\"}]}", "unknown sampler 'k_lms'" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}, \"steps\": \"20\"}]}", "“steps” must be an integer" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}, \"width\": 100}]}", "multiples of 8" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}, \"cfg_scale\": 1e9}]}", "CFG" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}, \"styles\": [{\"path\": \"s\", \"weight\": 3}]}]}", "style 1: weights" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}, \"thumbnail\": \"aGVsbG8=\"}]}", "PNG" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\"}]}", "no model" },
    { "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}}, {\"name\": \"x\", \"model\": {\"path\": \"m\"}}]}", "two presets named “x”" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_cmpint (gouache_preset_store_import (f->store, cases[i].json, FALSE, &error), ==, -1);
      g_assert_nonnull (error);
      if (strstr (error->message, cases[i].expected) == NULL)
        g_error ("case %zu: “%s” does not say “%s”", i, error->message, cases[i].expected);
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = gouache_preset_store_list (f->store, &error);
  g_assert_cmpuint (list->len, ==, 0);
  /* a minimal preset takes the defaults */
  g_assert_cmpint (gouache_preset_store_import (f->store,
                   "{\"format\": \"gouache-presets\", \"presets\": [{\"name\": \"x\", \"model\": {\"path\": \"m\"}}]}",
                   FALSE, &error), ==, 1);
  g_autoptr (GouachePreset) x = gouache_preset_store_get (f->store, "x", &error);
  g_assert_cmpstr (x->sampler, ==, "euler_a");
  g_assert_cmpuint (x->steps, ==, 20);
  g_assert_cmpint (x->seed, ==, -1);
}

static int
user_version (const char *path)
{
  sqlite3 *db;
  sqlite3_stmt *stmt;
  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  int version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return version;
}

static void
test_schema_version (fixture *f, gconstpointer data)
{
  g_assert_cmpint (user_version (f->path), ==, 1);
  g_clear_object (&f->store);
  sqlite3 *db;
  g_assert_cmpint (sqlite3_open_v2 (f->path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_autoptr (GError) error = NULL;
  g_autoptr (GouachePresetStore) newer = gouache_preset_store_new (f->path, &error);
  g_assert_null (newer);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "newer"));
}

/* ------------------------------------------------------------------ killed mid-write */

/* Saves presets w00000, w00001… as fast as it can, printing each name once it is committed. */
static void G_GNUC_NORETURN
writer (const char *path, int out)
{
  g_autoptr (GouachePresetStore) store = gouache_preset_store_new (path, NULL);
  g_autofree guint8 *png = g_malloc (256 * 1024);
  memset (png, 0x5a, 256 * 1024);
  memcpy (png, tiny_png, 8);
  for (int i = 0; store; i++)
    {
      char name[32];
      g_snprintf (name, sizeof name, "w%05d", i);
      g_autoptr (GouachePreset) p = sample (name);
      g_bytes_unref (p->thumbnail);
      p->thumbnail = g_bytes_new_static (png, 256 * 1024);
      if (!gouache_preset_store_save (store, p, FALSE, NULL))
        break;
      char line[40];
      int len = g_snprintf (line, sizeof line, "%s\n", name);
      if (write (out, line, (size_t) len) != len)
        break;
    }
  _exit (1);
}

static void
test_killed_writer (fixture *f, gconstpointer data)
{
  g_clear_object (&f->store);
  int fds[2];
  g_assert_cmpint (pipe (fds), ==, 0);
  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      close (fds[0]);
      writer (f->path, fds[1]);
    }
  close (fds[1]);
  g_autoptr (GPtrArray) committed = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) pending = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (committed->len < 25 && g_get_monotonic_time () < deadline)
    {
      char buffer[256];
      ssize_t n = read (fds[0], buffer, sizeof buffer);
      if (n <= 0)
        break;
      g_string_append_len (pending, buffer, n);
      char *newline;
      while ((newline = strchr (pending->str, '\n')))
        {
          g_ptr_array_add (committed, g_strndup (pending->str, (gsize) (newline - pending->str)));
          g_string_erase (pending, 0, newline - pending->str + 1);
        }
    }
  kill (child, SIGKILL);
  int status;
  waitpid (child, &status, 0);
  g_assert_true (WIFSIGNALED (status));
  /* names the child printed after the ones read were committed too, but need not be known */
  close (fds[0]);
  g_assert_cmpuint (committed->len, >=, 25);

  g_autoptr (GError) error = NULL;
  g_autoptr (GouachePresetStore) store = gouache_preset_store_new (f->path, &error);
  g_assert_no_error (error);
  g_assert_true (gouache_preset_store_check (store, &error));
  g_autoptr (GPtrArray) list = gouache_preset_store_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, >=, committed->len);
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < list->len; i++)
    g_hash_table_add (names, ((GouachePreset *) g_ptr_array_index (list, i))->name);
  for (guint i = 0; i < committed->len; i++)
    g_assert_true (g_hash_table_contains (names, g_ptr_array_index (committed, i)));
  /* and every stored preset is whole */
  for (guint i = 0; i < list->len; i++)
    g_assert_cmpuint (((GouachePreset *) g_ptr_array_index (list, i))->styles->len, ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/app/preset-store/round-trip", test_round_trip);
  ADD ("/app/preset-store/rename-duplicate-delete", test_rename_duplicate_delete);
  ADD ("/app/preset-store/import-validation", test_import_validation);
  ADD ("/app/preset-store/schema-version", test_schema_version);
  ADD ("/app/preset-store/killed-writer", test_killed_writer);
#undef ADD
  return g_test_run ();
}

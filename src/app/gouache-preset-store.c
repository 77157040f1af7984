/* gouache-preset-store.c: saved blends in an SQLite database
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-preset-store"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <sqlite3.h>
#include <string.h>

#include "gouache-error.h"
#include "gouache-preset-store.h"

#define BUSY_TIMEOUT_MS 5000

struct _GouachePresetStore
{
  GObject parent_instance;

  char *path;
  sqlite3 *db;
};

G_DEFINE_FINAL_TYPE (GouachePresetStore, gouache_preset_store, G_TYPE_OBJECT)

/* Each migration brings the schema from version i to i + 1 (its index + 1), in one
 * transaction with the PRAGMA that records the new version. */
static const char *const migrations[] = {
  /* 1: presets, and their styles in blend order */
  "CREATE TABLE presets ("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE,"
  "  model_path TEXT NOT NULL,"
  "  model_sha256 TEXT,"
  "  prompt TEXT NOT NULL,"
  "  negative_prompt TEXT NOT NULL,"
  "  sampler TEXT NOT NULL,"
  "  schedule TEXT NOT NULL,"
  "  steps INTEGER NOT NULL,"
  "  cfg_scale REAL NOT NULL,"
  "  width INTEGER NOT NULL,"
  "  height INTEGER NOT NULL,"
  "  seed INTEGER NOT NULL,"
  "  thumbnail BLOB,"
  "  created INTEGER NOT NULL,"
  "  updated INTEGER NOT NULL);"
  "CREATE TABLE preset_styles ("
  "  preset_id INTEGER NOT NULL REFERENCES presets (id) ON DELETE CASCADE,"
  "  position INTEGER NOT NULL,"
  "  path TEXT NOT NULL,"
  "  sha256 TEXT,"
  "  weight REAL NOT NULL,"
  "  text_weight REAL NOT NULL,"
  "  PRIMARY KEY (preset_id, position));"
  "PRAGMA user_version = 1;",
};

#define PRESET_COLUMNS                                                                   \
  "id, name, model_path, model_sha256, prompt, negative_prompt, sampler, schedule, steps, " \
  "cfg_scale, width, height, seed, thumbnail, created, updated"

/* ------------------------------------------------------------------ SQL helpers */

static gboolean
sql_failed (GouachePresetStore *self, GError **error)
{
  g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_IO, _ ("presets database %s: %s"), self->path,
               sqlite3_errmsg (self->db));
  return FALSE;
}

static sqlite3_stmt *
prepare (GouachePresetStore *self, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
    {
      sql_failed (self, error);
      return NULL;
    }
  return stmt;
}

/* Runs every statement of a constant script (no values to bind), discarding rows. */
static gboolean
run_script (GouachePresetStore *self, const char *sql, GError **error)
{
  while (sql && *sql)
    {
      sqlite3_stmt *stmt = NULL;
      const char *tail = NULL;
      if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, &tail) != SQLITE_OK)
        return sql_failed (self, error);
      int rc = SQLITE_ROW;
      while (stmt && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
        ;
      sqlite3_finalize (stmt);
      if (rc != SQLITE_DONE)
        return sql_failed (self, error);
      sql = tail;
    }
  return TRUE;
}

static gboolean
begin (GouachePresetStore *self, GError **error)
{
  return run_script (self, "BEGIN IMMEDIATE", error);
}

/* Commits when ok, else rolls back (keeping the first error); returns the outcome. */
static gboolean
finish (GouachePresetStore *self, gboolean ok, GError **error)
{
  if (ok)
    return run_script (self, "COMMIT", error);
  run_script (self, "ROLLBACK", NULL);
  return FALSE;
}

static void
bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
  if (text)
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

static char *
column_text (sqlite3_stmt *stmt, int column)
{
  const unsigned char *text = sqlite3_column_text (stmt, column);
  return text ? g_strdup ((const char *) text) : NULL;
}

static gboolean
not_found (const char *name, GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _ ("there is no preset named “%s”"),
               name);
  return FALSE;
}

static gboolean
name_taken (const char *name, GError **error)
{
  g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
               _ ("a preset named “%s” already exists"), name);
  return FALSE;
}

/* ------------------------------------------------------------------ opening */

static gboolean
migrate (GouachePresetStore *self, GError **error)
{
  sqlite3_stmt *stmt = prepare (self, "PRAGMA user_version", error);
  if (stmt == NULL)
    return FALSE;
  int version = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : -1;
  sqlite3_finalize (stmt);
  if (version < 0)
    return sql_failed (self, error);
  if ((size_t) version > G_N_ELEMENTS (migrations))
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED,
                   _ ("presets database %s was written by a newer Gouache (schema %d; this one "
                   "knows up to %u)"), self->path, version, (guint) G_N_ELEMENTS (migrations));
      return FALSE;
    }
  for (size_t v = (size_t) version; v < G_N_ELEMENTS (migrations); v++)
    if (!begin (self, error) || !finish (self, run_script (self, migrations[v], error), error))
      return FALSE;
  return TRUE;
}

static gboolean
open_database (GouachePresetStore *self, GError **error)
{
  g_autofree char *folder = g_path_get_dirname (self->path);
  if (g_mkdir_with_parents (folder, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   _ ("cannot create %s: %s"), folder, g_strerror (saved));
      return FALSE;
    }
  if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
      != SQLITE_OK)
    return sql_failed (self, error);
  sqlite3_busy_timeout (self->db, BUSY_TIMEOUT_MS);
  return run_script (self, "PRAGMA journal_mode = WAL;"
                           "PRAGMA synchronous = FULL;"
                           "PRAGMA foreign_keys = ON;", error)
         && migrate (self, error);
}

static void
gouache_preset_store_finalize (GObject *object)
{
  GouachePresetStore *self = GOUACHE_PRESET_STORE (object);

  sqlite3_close_v2 (self->db);
  g_free (self->path);

  G_OBJECT_CLASS (gouache_preset_store_parent_class)->finalize (object);
}

static void
gouache_preset_store_class_init (GouachePresetStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gouache_preset_store_finalize;
}

static void
gouache_preset_store_init (GouachePresetStore *self)
{
}

char *
gouache_preset_store_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "gouache", "presets.db", NULL);
}

GouachePresetStore *
gouache_preset_store_new (const char  *path,
                          GError     **error)
{
  g_autoptr (GouachePresetStore) self = g_object_new (GOUACHE_TYPE_PRESET_STORE, NULL);
  self->path = g_strdup (path);
  return open_database (self, error) ? g_steal_pointer (&self) : NULL;
}

gboolean
gouache_preset_store_check (GouachePresetStore  *self,
                            GError             **error)
{
  sqlite3_stmt *stmt = prepare (self, "PRAGMA integrity_check", error);
  if (stmt == NULL)
    return FALSE;
  g_autofree char *result = sqlite3_step (stmt) == SQLITE_ROW ? column_text (stmt, 0) : NULL;
  sqlite3_finalize (stmt);
  if (result == NULL)
    return sql_failed (self, error);
  if (strcmp (result, "ok") != 0)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                   _ ("presets database %s is damaged: %s"), self->path, result);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ reading */

static gboolean
read_styles (GouachePresetStore *self, gint64 id, GouachePreset *preset, GError **error)
{
  sqlite3_stmt *stmt = prepare (self, "SELECT path, sha256, weight, text_weight FROM preset_styles "
                                      "WHERE preset_id = ? ORDER BY position", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    gouache_preset_add_style (preset, (const char *) sqlite3_column_text (stmt, 0),
                              (const char *) sqlite3_column_text (stmt, 1),
                              sqlite3_column_double (stmt, 2), sqlite3_column_double (stmt, 3));
  sqlite3_finalize (stmt);
  return rc == SQLITE_DONE || sql_failed (self, error);
}

/* The preset of the current row of a SELECT PRESET_COLUMNS. */
static GouachePreset *
read_row (GouachePresetStore *self, sqlite3_stmt *stmt, GError **error)
{
  g_autoptr (GouachePreset) p = gouache_preset_new ();
  g_free (p->prompt), g_free (p->negative_prompt), g_free (p->sampler), g_free (p->schedule);
  p->name = column_text (stmt, 1);
  p->model_path = column_text (stmt, 2);
  p->model_sha256 = column_text (stmt, 3);
  p->prompt = column_text (stmt, 4);
  p->negative_prompt = column_text (stmt, 5);
  p->sampler = column_text (stmt, 6);
  p->schedule = column_text (stmt, 7);
  p->steps = (guint) sqlite3_column_int (stmt, 8);
  p->cfg_scale = sqlite3_column_double (stmt, 9);
  p->width = (guint) sqlite3_column_int (stmt, 10);
  p->height = (guint) sqlite3_column_int (stmt, 11);
  p->seed = sqlite3_column_int64 (stmt, 12);
  if (sqlite3_column_type (stmt, 13) == SQLITE_BLOB)
    p->thumbnail = g_bytes_new (sqlite3_column_blob (stmt, 13),
                                (gsize) sqlite3_column_bytes (stmt, 13));
  p->created = sqlite3_column_int64 (stmt, 14);
  p->updated = sqlite3_column_int64 (stmt, 15);
  return read_styles (self, sqlite3_column_int64 (stmt, 0), p, error) ? g_steal_pointer (&p)
                                                                      : NULL;
}

static GouachePreset *
get_preset (GouachePresetStore *self, const char *name, GError **error)
{
  sqlite3_stmt *stmt = prepare (self, "SELECT " PRESET_COLUMNS " FROM presets WHERE name = ?",
                                error);
  if (stmt == NULL)
    return NULL;
  bind_text (stmt, 1, name);
  int rc = sqlite3_step (stmt);
  GouachePreset *preset = NULL;
  if (rc == SQLITE_ROW)
    preset = read_row (self, stmt, error);
  else if (rc == SQLITE_DONE)
    not_found (name, error);
  else
    sql_failed (self, error);
  sqlite3_finalize (stmt);
  return preset;
}

GouachePreset *
gouache_preset_store_get (GouachePresetStore  *self,
                          const char          *name,
                          GError             **error)
{
  return get_preset (self, name, error);
}

GPtrArray *
gouache_preset_store_list (GouachePresetStore  *self,
                           GError             **error)
{
  g_autoptr (GPtrArray) presets
    = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_preset_free);
  if (!run_script (self, "BEGIN", error))
    return NULL;
  sqlite3_stmt *stmt = prepare (self, "SELECT " PRESET_COLUMNS " FROM presets ORDER BY name",
                                error);
  int rc = SQLITE_ERROR;
  while (stmt && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      GouachePreset *preset = read_row (self, stmt, error);
      if (preset == NULL)
        break;
      g_ptr_array_add (presets, preset);
    }
  if (stmt && rc != SQLITE_DONE && rc != SQLITE_ROW)
    sql_failed (self, error);
  sqlite3_finalize (stmt);
  run_script (self, "COMMIT", NULL);
  return rc == SQLITE_DONE ? g_steal_pointer (&presets) : NULL;
}

/* ------------------------------------------------------------------ writing */

static gboolean
write_styles (GouachePresetStore *self, gint64 id, const GouachePreset *p, GError **error)
{
  sqlite3_stmt *del = prepare (self, "DELETE FROM preset_styles WHERE preset_id = ?", error);
  if (del == NULL)
    return FALSE;
  sqlite3_bind_int64 (del, 1, id);
  int rc = sqlite3_step (del);
  sqlite3_finalize (del);
  if (rc != SQLITE_DONE)
    return sql_failed (self, error);
  sqlite3_stmt *stmt = prepare (self, "INSERT INTO preset_styles (preset_id, position, path, "
                                      "sha256, weight, text_weight) VALUES (?, ?, ?, ?, ?, ?)",
                                error);
  if (stmt == NULL)
    return FALSE;
  for (guint i = 0; i < p->styles->len && rc == SQLITE_DONE; i++)
    {
      const GouachePresetStyle *s = g_ptr_array_index (p->styles, i);
      sqlite3_reset (stmt);
      sqlite3_bind_int64 (stmt, 1, id);
      sqlite3_bind_int (stmt, 2, (int) i);
      bind_text (stmt, 3, s->path);
      bind_text (stmt, 4, s->sha256);
      sqlite3_bind_double (stmt, 5, s->weight);
      sqlite3_bind_double (stmt, 6, s->text_weight);
      rc = sqlite3_step (stmt);
    }
  sqlite3_finalize (stmt);
  return rc == SQLITE_DONE || sql_failed (self, error);
}

/* The id and creation time of the preset named name; 0 when there is none. */
static gint64
find_preset (GouachePresetStore *self, const char *name, gint64 *created, GError **error)
{
  sqlite3_stmt *stmt = prepare (self, "SELECT id, created FROM presets WHERE name = ?", error);
  if (stmt == NULL)
    return -1;
  bind_text (stmt, 1, name);
  int rc = sqlite3_step (stmt);
  gint64 id = rc == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 0;
  if (rc == SQLITE_ROW)
    *created = sqlite3_column_int64 (stmt, 1);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      sql_failed (self, error);
      return -1;
    }
  return id;
}

/* Inside a transaction: stores the validated preset p (replacing one of the same name when
 * allowed), stamping it with now. */
static gboolean
write_preset (GouachePresetStore *self, GouachePreset *p, gboolean replace, gint64 now,
              GError **error)
{
  gint64 created = p->created > 0 ? p->created : now;
  gint64 id = find_preset (self, p->name, &created, error);
  if (id < 0)
    return FALSE;
  if (id > 0 && !replace)
    return name_taken (p->name, error);
  sqlite3_stmt *stmt = prepare (self, id > 0
    ? "UPDATE presets SET name = ?1, model_path = ?2, model_sha256 = ?3, prompt = ?4, "
      "negative_prompt = ?5, sampler = ?6, schedule = ?7, steps = ?8, cfg_scale = ?9, "
      "width = ?10, height = ?11, seed = ?12, thumbnail = ?13, created = ?14, updated = ?15 "
      "WHERE id = ?16"
    : "INSERT INTO presets (name, model_path, model_sha256, prompt, negative_prompt, sampler, "
      "schedule, steps, cfg_scale, width, height, seed, thumbnail, created, updated) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)", error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, p->name);
  bind_text (stmt, 2, p->model_path);
  bind_text (stmt, 3, p->model_sha256);
  bind_text (stmt, 4, p->prompt);
  bind_text (stmt, 5, p->negative_prompt);
  bind_text (stmt, 6, p->sampler);
  bind_text (stmt, 7, p->schedule);
  sqlite3_bind_int (stmt, 8, (int) p->steps);
  sqlite3_bind_double (stmt, 9, p->cfg_scale);
  sqlite3_bind_int (stmt, 10, (int) p->width);
  sqlite3_bind_int (stmt, 11, (int) p->height);
  sqlite3_bind_int64 (stmt, 12, p->seed);
  if (p->thumbnail)
    sqlite3_bind_blob (stmt, 13, g_bytes_get_data (p->thumbnail, NULL),
                       (int) g_bytes_get_size (p->thumbnail), SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, 13);
  sqlite3_bind_int64 (stmt, 14, created);
  sqlite3_bind_int64 (stmt, 15, now);
  if (id > 0)
    sqlite3_bind_int64 (stmt, 16, id);
  int rc = sqlite3_step (stmt);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    return sql_failed (self, error);
  if (id == 0)
    id = sqlite3_last_insert_rowid (self->db);
  p->created = created;
  p->updated = now;
  return write_styles (self, id, p, error);
}

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

gboolean
gouache_preset_store_save (GouachePresetStore  *self,
                           GouachePreset       *preset,
                           gboolean             replace,
                           GError             **error)
{
  if (!gouache_preset_validate (preset, error) || !begin (self, error))
    return FALSE;
  return finish (self, write_preset (self, preset, replace, now_seconds (), error), error);
}

/* Runs a one-row UPDATE or DELETE on the preset named name, in its own transaction. */
static gboolean
change_one (GouachePresetStore *self, const char *sql, const char *name, const char *new_name,
            GError **error)
{
  if (!begin (self, error))
    return FALSE;
  sqlite3_stmt *stmt = prepare (self, sql, error);
  gboolean ok = stmt != NULL;
  if (ok)
    {
      bind_text (stmt, 1, name);
      if (new_name)
        {
          bind_text (stmt, 2, new_name);
          sqlite3_bind_int64 (stmt, 3, now_seconds ());
        }
      int rc = sqlite3_step (stmt);
      if (rc == SQLITE_CONSTRAINT)
        ok = name_taken (new_name, error);
      else if (rc != SQLITE_DONE)
        ok = sql_failed (self, error);
      else if (sqlite3_changes (self->db) == 0)
        ok = not_found (name, error);
    }
  sqlite3_finalize (stmt);
  return finish (self, ok, error);
}

gboolean
gouache_preset_store_rename (GouachePresetStore  *self,
                             const char          *name,
                             const char          *new_name,
                             GError             **error)
{
  if (!gouache_preset_check_name (new_name, error))
    return FALSE;
  return change_one (self, "UPDATE presets SET name = ?2, updated = ?3 WHERE name = ?1", name,
                     new_name, error);
}

gboolean
gouache_preset_store_delete (GouachePresetStore  *self,
                             const char          *name,
                             GError             **error)
{
  return change_one (self, "DELETE FROM presets WHERE name = ?1", name, NULL, error);
}

gboolean
gouache_preset_store_duplicate (GouachePresetStore  *self,
                                const char          *name,
                                const char          *new_name,
                                GError             **error)
{
  if (!begin (self, error))
    return FALSE;
  g_autoptr (GouachePreset) copy = get_preset (self, name, error);
  gboolean ok = copy != NULL;
  if (ok)
    {
      g_free (copy->name);
      copy->name = g_strdup (new_name);
      copy->created = 0;
      ok = gouache_preset_validate (copy, error)
           && write_preset (self, copy, FALSE, now_seconds (), error);
    }
  return finish (self, ok, error);
}

/* ------------------------------------------------------------------ JSON */

char *
gouache_preset_store_export (GouachePresetStore  *self,
                             const char * const  *names,
                             GError             **error)
{
  g_autoptr (GPtrArray) presets = NULL;
  if (names == NULL)
    presets = gouache_preset_store_list (self, error);
  else
    {
      presets = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_preset_free);
      for (const char * const *name = names; *name; name++)
        {
          GouachePreset *preset = get_preset (self, *name, error);
          if (preset == NULL)
            return NULL;
          g_ptr_array_add (presets, preset);
        }
    }
  return presets ? gouache_presets_to_json (presets) : NULL;
}

int
gouache_preset_store_import (GouachePresetStore  *self,
                             const char          *json,
                             gboolean             replace,
                             GError             **error)
{
  g_autoptr (GPtrArray) presets = gouache_presets_from_json (json, error);
  if (presets == NULL)
    return -1;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < presets->len; i++)
    {
      GouachePreset *p = g_ptr_array_index (presets, i);
      if (!g_hash_table_add (seen, p->name))
        {
          g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                       _ ("the file holds two presets named “%s”"), p->name);
          return -1;
        }
    }
  if (!begin (self, error))
    return -1;
  gint64 now = now_seconds ();
  gboolean ok = TRUE;
  for (guint i = 0; i < presets->len && ok; i++)
    ok = write_preset (self, g_ptr_array_index (presets, i), replace, now, error);
  return finish (self, ok, error) ? (int) presets->len : -1;
}

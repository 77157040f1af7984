/* gouache-sqlite.c: opening and migrating Gouache's SQLite stores
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-sqlite"

#include <glib/gi18n-lib.h>

#include <errno.h>
#include <glib/gstdio.h>

#include "gouache-error.h"
#include "gouache-sqlite.h"

gboolean
gouache_sqlite_error (sqlite3     *db,
                      const char  *context,
                      GError     **error)
{
  g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_IO,
               "%s: %s", context, db ? sqlite3_errmsg (db) : g_strerror (ENOMEM));
  return FALSE;
}

gboolean
gouache_sqlite_exec (sqlite3     *db,
                     const char  *sql,
                     const char  *context,
                     GError     **error)
{
  if (sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return gouache_sqlite_error (db, context, error);

  return TRUE;
}

static int
schema_version (sqlite3 *db)
{
  sqlite3_stmt *statement = NULL;
  int version = -1;

  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &statement, NULL) == SQLITE_OK &&
      sqlite3_step (statement) == SQLITE_ROW)
    version = sqlite3_column_int (statement, 0);
  sqlite3_finalize (statement);

  return version;
}

static gboolean
migrate (sqlite3                     *db,
         const char                  *path,
         int                          version,
         const char                  *schema,
         const GouacheSqliteMessages *messages,
         GError                     **error)
{
  int found = schema_version (db);

  if (found < 0)
    return gouache_sqlite_error (db, _(messages->read_failed), error);

  if (found > version)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED, _(messages->newer_version), path);
      return FALSE;
    }

  if (found == version)
    return TRUE;

  /* Version 0 is an empty file: create everything in one transaction. */
  if (!gouache_sqlite_exec (db, "BEGIN IMMEDIATE", _(messages->open_failed), error))
    return FALSE;
  if (!gouache_sqlite_exec (db, schema, _(messages->open_failed), error))
    {
      sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }

  return gouache_sqlite_exec (db, "COMMIT", _(messages->open_failed), error);
}

sqlite3 *
gouache_sqlite_open (const char                  *path,
                     int                          version,
                     const char                  *schema,
                     const char                  *extra_pragmas,
                     const GouacheSqliteMessages *messages,
                     GError                     **error)
{
  g_autofree char *folder = g_path_get_dirname (path);
  sqlite3 *db = NULL;

  if (g_mkdir_with_parents (folder, 0700) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   _("Could not create the folder “%s”: %s"), folder, g_strerror (saved_errno));
      return NULL;
    }

  if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                       NULL) != SQLITE_OK)
    {
      gouache_sqlite_error (db, _(messages->open_failed), error);
      sqlite3_close (db);
      return NULL;
    }

  sqlite3_busy_timeout (db, 5000);

  if (!gouache_sqlite_exec (db, "PRAGMA journal_mode = WAL", _(messages->open_failed), error) ||
      !gouache_sqlite_exec (db, "PRAGMA synchronous = NORMAL", _(messages->open_failed), error) ||
      (extra_pragmas && !gouache_sqlite_exec (db, extra_pragmas, _(messages->open_failed), error)) ||
      !migrate (db, path, version, schema, messages, error))
    {
      sqlite3_close (db);
      return NULL;
    }

  return db;
}

/* gouache-sqlite.h: what Gouache's SQLite stores share
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Each store (image history, training runs) is one database file in the user data folder,
 * written ahead (WAL) so a crash loses nothing committed, with its schema version in
 * PRAGMA user_version. Opening creates the folder, sets the pragmas and brings a new file to
 * the store's schema in one transaction; a file written by a newer Gouache is refused rather
 * than misread.
 */

#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* How a store describes itself in messages (marked with N_(), translated where used). */
typedef struct {
  const char *open_failed;   /* "Could not open the image history" */
  const char *read_failed;   /* "Could not read the image history" */
  const char *newer_version; /* "The image history in “%s” was written by a newer …" (%s: path) */
} GouacheSqliteMessages;

/* Opens path as a store whose schema `schema` (SQL that ends by setting user_version to
 * version) creates. extra_pragmas may be NULL. NULL and error on failure. */
sqlite3  *gouache_sqlite_open      (const char                  *path,
                                    int                          version,
                                    const char                  *schema,
                                    const char                  *extra_pragmas,
                                    const GouacheSqliteMessages *messages,
                                    GError                     **error);

/* context (a translated sentence) followed by SQLite's message; returns FALSE. */
gboolean  gouache_sqlite_error     (sqlite3                     *db,
                                    const char                  *context,
                                    GError                     **error);

gboolean  gouache_sqlite_exec      (sqlite3                     *db,
                                    const char                  *sql,
                                    const char                  *context,
                                    GError                     **error);

G_END_DECLS

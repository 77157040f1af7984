/* gouache-history.h: every image the window generated, on disk and in SQLite
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A full generation is saved as a PNG (with its settings in the "parameters" chunk) in the
 * output folder, under a new name (never over an existing file), and recorded as a row of
 * g_get_user_data_dir()/gouache/history.db: its settings, its styles and a small PNG thumbnail,
 * so the thumbnail strip shows without reading the images. The database runs in WAL mode with
 * prepared statements and a schema version (PRAGMA user_version); a newer version than this
 * code knows is refused rather than damaged. One connection, used by the main thread and the
 * workers of gouache_history_add_async() in turn.
 */

#pragma once

#include <gio/gio.h>

#include "gouache-job-engine.h"

G_BEGIN_DECLS

/* The longer side of the thumbnails, in pixels. */
#define GOUACHE_HISTORY_THUMBNAIL_SIZE 160

typedef struct {
  gint64  id;
  gint64  created;    /* Unix time, seconds */
  char   *path;       /* the PNG */
  char   *parameters; /* its settings, AUTOMATIC1111's text (gouache-infotext.h) */
  char   *styles;     /* its styles as JSON (gouache_job_request_styles_to_json) */
  int     width;
  int     height;
  GBytes *thumbnail;  /* PNG bytes */
} GouacheHistoryEntry;

#define GOUACHE_TYPE_HISTORY_ENTRY (gouache_history_entry_get_type ())
#define GOUACHE_TYPE_HISTORY       (gouache_history_get_type ())

GType                gouache_history_entry_get_type      (void) G_GNUC_CONST;
GouacheHistoryEntry *gouache_history_entry_copy          (const GouacheHistoryEntry *entry);
void                 gouache_history_entry_free          (GouacheHistoryEntry       *entry);
GdkPixbuf           *gouache_history_entry_get_thumbnail (const GouacheHistoryEntry *entry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheHistoryEntry, gouache_history_entry_free)

G_DECLARE_FINAL_TYPE (GouacheHistory, gouache_history, GOUACHE, HISTORY, GObject)

char                *gouache_history_default_path        (void);
GouacheHistory      *gouache_history_new                 (const char                *path,
                                                          GError                   **error);
const char          *gouache_history_get_path            (GouacheHistory            *self);

void                 gouache_history_add_async           (GouacheHistory            *self,
                                                          const GouacheJobResult    *result,
                                                          const char                *folder,
                                                          GCancellable              *cancellable,
                                                          GAsyncReadyCallback        callback,
                                                          gpointer                   user_data);
GouacheHistoryEntry *gouache_history_add_finish          (GouacheHistory            *self,
                                                          GAsyncResult              *result,
                                                          GError                   **error);

GPtrArray           *gouache_history_list                (GouacheHistory            *self,
                                                          guint                      limit,
                                                          GError                   **error);
gboolean             gouache_history_remove              (GouacheHistory            *self,
                                                          gint64                     id,
                                                          GError                   **error);

G_END_DECLS

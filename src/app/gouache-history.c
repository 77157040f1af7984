/* gouache-history.c: every image the window generated, on disk and in SQLite
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-history"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <unistd.h>

#include "gouache-error.h"
#include "gouache-sqlite.h"
#include "gouache-history.h"
#include "gouache-png.h"

/* The schema this code writes; PRAGMA user_version holds it. */
#define SCHEMA_VERSION 1

static const char schema_v1[] =
  "CREATE TABLE images ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  created INTEGER NOT NULL,"        /* Unix time, seconds */
  "  path TEXT NOT NULL,"              /* the PNG */
  "  parameters TEXT NOT NULL,"        /* A1111 infotext */
  "  styles TEXT NOT NULL DEFAULT '[]'," /* JSON */
  "  width INTEGER NOT NULL,"
  "  height INTEGER NOT NULL,"
  "  thumbnail BLOB"                   /* PNG */
  ");"
  "CREATE INDEX images_by_created ON images (created DESC, id DESC);"
  "PRAGMA user_version = 1;";

struct _GouacheHistory
{
  GObject       parent_instance;

  char         *path;
  GMutex        lock;      /* the connection and its statements, one thread at a time */
  sqlite3      *db;
  sqlite3_stmt *insert;
  sqlite3_stmt *list;
  sqlite3_stmt *remove;
};

G_DEFINE_FINAL_TYPE (GouacheHistory, gouache_history, G_TYPE_OBJECT)

/* Entries ------------------------------------------------------------------ */

G_DEFINE_BOXED_TYPE (GouacheHistoryEntry, gouache_history_entry,
                     gouache_history_entry_copy, gouache_history_entry_free)

GouacheHistoryEntry *
gouache_history_entry_copy (const GouacheHistoryEntry *entry)
{
  GouacheHistoryEntry *copy;

  g_return_val_if_fail (entry != NULL, NULL);

  copy = g_memdup2 (entry, sizeof *entry);
  copy->path = g_strdup (entry->path);
  copy->parameters = g_strdup (entry->parameters);
  copy->styles = g_strdup (entry->styles);
  copy->thumbnail = entry->thumbnail ? g_bytes_ref (entry->thumbnail) : NULL;
  return copy;
}

void
gouache_history_entry_free (GouacheHistoryEntry *entry)
{
  if (entry == NULL)
    return;

  g_free (entry->path);
  g_free (entry->parameters);
  g_free (entry->styles);
  g_clear_pointer (&entry->thumbnail, g_bytes_unref);
  g_free (entry);
}

/**
 * gouache_history_entry_get_thumbnail:
 * @entry: an entry
 *
 * Returns: (transfer full) (nullable): the thumbnail, or %NULL if it is missing or damaged
 */
GdkPixbuf *
gouache_history_entry_get_thumbnail (const GouacheHistoryEntry *entry)
{
  g_autoptr(GdkPixbufLoader) loader = NULL;
  gsize size = 0;
  const guchar *data;

  g_return_val_if_fail (entry != NULL, NULL);

  if (entry->thumbnail == NULL)
    return NULL;

  /* By type, not by sniffing: sniffing needs the shared MIME database. */
  data = g_bytes_get_data (entry->thumbnail, &size);
  loader = gdk_pixbuf_loader_new_with_type ("png", NULL);
  if (loader == NULL || !gdk_pixbuf_loader_write (loader, data, size, NULL) ||
      !gdk_pixbuf_loader_close (loader, NULL))
    return NULL;

  return g_object_ref (gdk_pixbuf_loader_get_pixbuf (loader));
}

/* SQLite -------------------------------------------------------------------- */

static gboolean
prepare (GouacheHistory  *self,
         const char      *sql,
         sqlite3_stmt   **statement,
         GError         **error)
{
  if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, statement, NULL) != SQLITE_OK)
    return gouache_sqlite_error (self->db, _("Could not read the image history"), error);

  return TRUE;
}

static gboolean
gouache_history_open (GouacheHistory  *self,
                      GError         **error)
{
  static const GouacheSqliteMessages messages = {
    N_("Could not open the image history"),
    N_("Could not read the image history"),
    N_("The image history in “%s” was written by a newer version of Gouache"),
  };

  self->db = gouache_sqlite_open (self->path, SCHEMA_VERSION, schema_v1, NULL, &messages, error);
  if (self->db == NULL)
    return FALSE;

  return prepare (self,
                  "INSERT INTO images (created, path, parameters, styles, width, height, thumbnail)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                  &self->insert, error) &&
         prepare (self,
                  "SELECT id, created, path, parameters, styles, width, height, thumbnail"
                  " FROM images ORDER BY created DESC, id DESC LIMIT ?1",
                  &self->list, error) &&
         prepare (self, "DELETE FROM images WHERE id = ?1", &self->remove, error);
}

static char *
column_text (sqlite3_stmt *statement,
             int           column)
{
  const unsigned char *text = sqlite3_column_text (statement, column);

  return g_strdup (text ? (const char *) text : "");
}

static GouacheHistoryEntry *
entry_from_row (sqlite3_stmt *statement)
{
  GouacheHistoryEntry *entry = g_new0 (GouacheHistoryEntry, 1);
  const void *blob = sqlite3_column_blob (statement, 7);

  entry->id = sqlite3_column_int64 (statement, 0);
  entry->created = sqlite3_column_int64 (statement, 1);
  entry->path = column_text (statement, 2);
  entry->parameters = column_text (statement, 3);
  entry->styles = column_text (statement, 4);
  entry->width = sqlite3_column_int (statement, 5);
  entry->height = sqlite3_column_int (statement, 6);
  if (blob != NULL)
    entry->thumbnail = g_bytes_new (blob, (gsize) sqlite3_column_bytes (statement, 7));

  return entry;
}

static gboolean
insert_entry (GouacheHistory       *self,
              GouacheHistoryEntry  *entry,
              GError              **error)
{
  gconstpointer thumbnail = NULL;
  gsize thumbnail_size = 0;
  gboolean ok;

  if (entry->thumbnail != NULL)
    thumbnail = g_bytes_get_data (entry->thumbnail, &thumbnail_size);

  g_mutex_lock (&self->lock);
  sqlite3_bind_int64 (self->insert, 1, entry->created);
  sqlite3_bind_text (self->insert, 2, entry->path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text (self->insert, 3, entry->parameters, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text (self->insert, 4, entry->styles, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int (self->insert, 5, entry->width);
  sqlite3_bind_int (self->insert, 6, entry->height);
  sqlite3_bind_blob (self->insert, 7, thumbnail, (int) thumbnail_size, SQLITE_TRANSIENT);
  ok = sqlite3_step (self->insert) == SQLITE_DONE;
  if (ok)
    entry->id = sqlite3_last_insert_rowid (self->db);
  else
    gouache_sqlite_error (self->db, _("Could not write to the image history"), error);
  sqlite3_reset (self->insert);
  sqlite3_clear_bindings (self->insert);
  g_mutex_unlock (&self->lock);

  return ok;
}

/* Saving -------------------------------------------------------------------- */

typedef struct {
  GouacheJobResult *result;
  char             *folder;
} AddJob;

static void
add_job_free (gpointer data)
{
  AddJob *job = data;

  gouache_job_result_free (job->result);
  g_free (job->folder);
  g_free (job);
}

static gboolean
set_errno_error (GError     **error,
                 int          saved_errno,
                 const char  *format,
                 const char  *path)
{
  g_autofree char *display = g_filename_display_name (path);

  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               format, display, g_strerror (saved_errno));
  return FALSE;
}

/* Claims a new file name in folder, "stem.png", "stem-2.png"..., by creating it empty with
 * O_EXCL: an existing image is never overwritten, not even by a second Gouache. */
static char *
reserve_path (const char  *folder,
              const char  *stem,
              GError     **error)
{
  for (guint n = 1; n < 10000; n++)
    {
      g_autofree char *name = n == 1 ? g_strdup_printf ("%s.png", stem)
                                     : g_strdup_printf ("%s-%u.png", stem, n);
      g_autofree char *path = g_build_filename (folder, name, NULL);
      int fd = g_open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

      if (fd >= 0)
        {
          close (fd);
          return g_steal_pointer (&path);
        }
      if (errno != EEXIST)
        {
          set_errno_error (error, errno, _("Could not create “%s”: %s"), path);
          return NULL;
        }
    }

  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
               _("Too many images named “%s” already"), stem);
  return NULL;
}

static GBytes *
make_thumbnail (const GouacheJobResult *result)
{
  g_autoptr(GdkPixbuf) image = gouache_job_result_to_pixbuf (result);
  g_autoptr(GdkPixbuf) small = NULL;
  double scale = (double) GOUACHE_HISTORY_THUMBNAIL_SIZE / MAX (result->width, result->height);
  gchar *buffer = NULL;
  gsize size = 0;

  scale = MIN (scale, 1.0);
  small = gdk_pixbuf_scale_simple (image,
                                   MAX (1, (int) (result->width * scale + 0.5)),
                                   MAX (1, (int) (result->height * scale + 0.5)),
                                   GDK_INTERP_BILINEAR);
  if (small == NULL || !gdk_pixbuf_save_to_buffer (small, &buffer, &size, "png", NULL, NULL))
    return NULL;

  return g_bytes_new_take (buffer, size);
}

static char *
file_stem (const GouacheJobResult *result,
           GDateTime              *now)
{
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");

  return g_strdup_printf ("gouache-%s-%" G_GUINT64_FORMAT, stamp, result->request->seed);
}

static GouacheHistoryEntry *
save_image (const AddJob  *job,
            GError       **error)
{
  const GouacheJobResult *result = job->result;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stem = file_stem (result, now);
  g_autoptr(GouacheHistoryEntry) entry = g_new0 (GouacheHistoryEntry, 1);
  GouachePngText text[1];

  if (g_mkdir_with_parents (job->folder, 0755) != 0)
    {
      set_errno_error (error, errno, _("Could not create the folder “%s”: %s"), job->folder);
      return NULL;
    }

  entry->path = reserve_path (job->folder, stem, error);
  if (entry->path == NULL)
    return NULL;

  entry->parameters = gouache_infotext_format (result->info);
  text[0].key = "parameters";
  text[0].value = entry->parameters;
  if (!gouache_png_save_rgb8 (entry->path, g_bytes_get_data (result->rgb, NULL),
                              (guint) result->width, (guint) result->height,
                              text, G_N_ELEMENTS (text), error))
    {
      g_unlink (entry->path);
      return NULL;
    }

  entry->created = g_date_time_to_unix (now);
  entry->styles = gouache_job_request_styles_to_json (result->request);
  entry->width = result->width;
  entry->height = result->height;
  entry->thumbnail = make_thumbnail (result);
  return g_steal_pointer (&entry);
}

static void
add_worker (GTask        *task,
            gpointer      source_object,
            gpointer      task_data,
            GCancellable *cancellable)
{
  GouacheHistory *self = source_object;
  g_autoptr(GouacheHistoryEntry) entry = NULL;
  g_autoptr(GError) error = NULL;

  entry = save_image (task_data, &error);
  if (entry == NULL || !insert_entry (self, entry, &error))
    {
      /* The PNG stays: the image is safe even when the history cannot list it. */
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  g_task_return_pointer (task, g_steal_pointer (&entry), (GDestroyNotify) gouache_history_entry_free);
}

/* The object ---------------------------------------------------------------- */

static void
gouache_history_finalize (GObject *object)
{
  GouacheHistory *self = GOUACHE_HISTORY (object);

  g_clear_pointer (&self->insert, sqlite3_finalize);
  g_clear_pointer (&self->list, sqlite3_finalize);
  g_clear_pointer (&self->remove, sqlite3_finalize);
  g_clear_pointer (&self->db, sqlite3_close);
  g_mutex_clear (&self->lock);
  g_free (self->path);

  G_OBJECT_CLASS (gouache_history_parent_class)->finalize (object);
}

static void
gouache_history_class_init (GouacheHistoryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gouache_history_finalize;
}

static void
gouache_history_init (GouacheHistory *self)
{
  g_mutex_init (&self->lock);
}

/**
 * gouache_history_default_path:
 *
 * Returns: (transfer full): g_get_user_data_dir()/gouache/history.db
 */
char *
gouache_history_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "gouache", "history.db", NULL);
}

/**
 * gouache_history_new:
 * @path: the database file, created with its folder if missing
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the history, or %NULL with @error set (%GOUACHE_ERROR_IO for a
 *   file SQLite cannot use, %GOUACHE_ERROR_UNSUPPORTED for a newer schema, %G_FILE_ERROR)
 */
GouacheHistory *
gouache_history_new (const char  *path,
                     GError     **error)
{
  g_autoptr(GouacheHistory) self = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  self = g_object_new (GOUACHE_TYPE_HISTORY, NULL);
  self->path = g_strdup (path);
  if (!gouache_history_open (self, error))
    return NULL;

  return g_steal_pointer (&self);
}

const char *
gouache_history_get_path (GouacheHistory *self)
{
  g_return_val_if_fail (GOUACHE_IS_HISTORY (self), NULL);

  return self->path;
}

/**
 * gouache_history_add_async:
 * @self: a #GouacheHistory
 * @result: a finished full generation; copied
 * @folder: where the PNG goes (created if missing)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the image is saved and recorded, or when that failed
 * @user_data: data for @callback
 *
 * Saves @result as a new PNG in @folder and records it, on a worker thread.
 */
void
gouache_history_add_async (GouacheHistory         *self,
                           const GouacheJobResult *result,
                           const char             *folder,
                           GCancellable           *cancellable,
                           GAsyncReadyCallback     callback,
                           gpointer                user_data)
{
  g_autoptr(GTask) task = NULL;
  AddJob *job;

  g_return_if_fail (GOUACHE_IS_HISTORY (self));
  g_return_if_fail (result != NULL);
  g_return_if_fail (folder != NULL);

  job = g_new0 (AddJob, 1);
  job->result = gouache_job_result_copy (result);
  job->folder = g_strdup (folder);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gouache_history_add_async);
  g_task_set_task_data (task, job, add_job_free);
  g_task_run_in_thread (task, add_worker);
}

/**
 * gouache_history_add_finish:
 * @self: a #GouacheHistory
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new entry, or %NULL with @error set: %G_FILE_ERROR when the
 *   image could not be written (%G_FILE_ERROR_NOSPC for a full disk), %GOUACHE_ERROR_IO when
 *   the PNG was written but the database refused the row
 */
GouacheHistoryEntry *
gouache_history_add_finish (GouacheHistory  *self,
                            GAsyncResult    *result,
                            GError         **error)
{
  g_return_val_if_fail (GOUACHE_IS_HISTORY (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gouache_history_list:
 * @self: a #GouacheHistory
 * @limit: the most entries to return
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type GouacheHistoryEntry): the newest @limit entries,
 *   newest first, or %NULL with @error set
 */
GPtrArray *
gouache_history_list (GouacheHistory  *self,
                      guint            limit,
                      GError         **error)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_history_entry_free);
  int status;

  g_return_val_if_fail (GOUACHE_IS_HISTORY (self), NULL);

  g_mutex_lock (&self->lock);
  sqlite3_bind_int64 (self->list, 1, limit);
  while ((status = sqlite3_step (self->list)) == SQLITE_ROW)
    g_ptr_array_add (entries, entry_from_row (self->list));
  if (status != SQLITE_DONE)
    gouache_sqlite_error (self->db, _("Could not read the image history"), error);
  sqlite3_reset (self->list);
  g_mutex_unlock (&self->lock);

  return status == SQLITE_DONE ? g_steal_pointer (&entries) : NULL;
}

/**
 * gouache_history_remove:
 * @self: a #GouacheHistory
 * @id: an entry's id
 * @error: return location for a #GError
 *
 * Forgets an entry; its PNG stays where it is.
 *
 * Returns: %TRUE on success
 */
gboolean
gouache_history_remove (GouacheHistory  *self,
                        gint64           id,
                        GError         **error)
{
  gboolean ok;

  g_return_val_if_fail (GOUACHE_IS_HISTORY (self), FALSE);

  g_mutex_lock (&self->lock);
  sqlite3_bind_int64 (self->remove, 1, id);
  ok = sqlite3_step (self->remove) == SQLITE_DONE;
  if (!ok)
    gouache_sqlite_error (self->db, _("Could not write to the image history"), error);
  sqlite3_reset (self->remove);
  g_mutex_unlock (&self->lock);

  return ok;
}

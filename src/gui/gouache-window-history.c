/* gouache-window-history.c: the thumbnail strip, restoring settings, opening images
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every full generation is saved in the output folder (the output-folder setting, or
 * Pictures/Gouache) and recorded in the history database; the strip under the canvas shows
 * the newest first. Clicking a thumbnail shows its image and restores its settings; opening a
 * PNG that another tool made (File › Open Image…, or a drop) does the same from its
 * "parameters" text.
 */

#define G_LOG_DOMAIN "gouache-window"

#include "config.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "gouache-config-keys.h"
#include "gouache-png.h"
#include "gouache-window-private.h"

/* How many thumbnails the strip shows. */
#define HISTORY_LIMIT 200

/* Where the images go when output-folder is empty: Pictures/Gouache. */
static char *
output_folder (GouacheWindow *self)
{
  g_autofree char *folder = g_settings_get_string (self->settings, GOUACHE_SETTINGS_OUTPUT_FOLDER);
  const char *pictures;

  if (folder[0] != '\0')
    return g_steal_pointer (&folder);

  pictures = g_get_user_special_dir (G_USER_DIRECTORY_PICTURES);
  if (pictures == NULL)
    return g_build_filename (g_get_home_dir (), "Pictures", "Gouache", NULL);

  return g_build_filename (pictures, "Gouache", NULL);
}

/* The strip ------------------------------------------------------------------ */

static char *
entry_tooltip (const GouacheHistoryEntry *entry)
{
  g_autoptr(GouacheGenerationInfo) info = gouache_infotext_parse (entry->parameters, NULL);
  g_autoptr(GDateTime) created = g_date_time_new_from_unix_local (entry->created);
  g_autofree char *when = created ? g_date_time_format (created, "%x %X") : g_strdup ("");
  g_autofree char *prompt = NULL;

  if (info == NULL || info->prompt == NULL || info->prompt[0] == '\0')
    return g_strdup (when);

  prompt = g_utf8_substring (info->prompt, 0, MIN (g_utf8_strlen (info->prompt, -1), 120));
  return g_markup_printf_escaped ("%s\n<small>%s</small>", prompt, when);
}

/* Right click (or Menu key): open the image in another application, or forget it. */
static void
history_child_popup (GtkWidget *child)
{
  const GouacheHistoryEntry *entry = g_object_get_data (G_OBJECT (child), "gouache-history-entry");
  g_autoptr(GMenu) menu = g_menu_new ();
  g_autoptr(GMenuItem) open = g_menu_item_new (_("_Open With Image Viewer"), NULL);
  g_autoptr(GMenuItem) remove = g_menu_item_new (_("_Remove From History"), NULL);
  GtkWidget *popover;

  g_menu_item_set_action_and_target_value (open, "win.history-open", g_variant_new_int64 (entry->id));
  g_menu_item_set_action_and_target_value (remove, "win.history-remove", g_variant_new_int64 (entry->id));
  g_menu_append_item (menu, open);
  g_menu_append_item (menu, remove);

  popover = gtk_popover_new_from_model (child, G_MENU_MODEL (menu));
  g_signal_connect (popover, "closed", G_CALLBACK (gtk_widget_destroy), NULL);
  gtk_popover_popup (GTK_POPOVER (popover));
}

static gboolean
history_child_button_press_cb (GtkWidget      *child,
                               GdkEventButton *event)
{
  if (!gdk_event_triggers_context_menu ((GdkEvent *) event))
    return GDK_EVENT_PROPAGATE;

  history_child_popup (child);
  return GDK_EVENT_STOP;
}

static gboolean
history_child_popup_menu_cb (GtkWidget *child)
{
  history_child_popup (child);
  return TRUE;
}

static GtkFlowBoxChild *
find_history_child (GouacheWindow *self,
                    gint64         id)
{
  g_autoptr(GList) children = gtk_container_get_children (GTK_CONTAINER (self->history_box));

  for (const GList *l = children; l != NULL; l = l->next)
    {
      const GouacheHistoryEntry *entry = g_object_get_data (l->data, "gouache-history-entry");

      if (entry != NULL && entry->id == id)
        return l->data;
    }

  return NULL;
}

void
_gouache_window_history_open (GouacheWindow *self,
                              gint64         id)
{
  GtkFlowBoxChild *child = find_history_child (self, id);
  const GouacheHistoryEntry *entry;
  g_autofree char *uri = NULL;
  g_autoptr(GError) error = NULL;

  if (child == NULL)
    return;

  entry = g_object_get_data (G_OBJECT (child), "gouache-history-entry");
  uri = g_filename_to_uri (entry->path, NULL, NULL);
  if (uri == NULL || !gtk_show_uri_on_window (GTK_WINDOW (self), uri, GDK_CURRENT_TIME, &error))
    _gouache_window_show_message (self, GTK_MESSAGE_ERROR,
                                  error ? error->message : _("The image file is gone."), NULL, NULL);
}

/* Forgets the entry; its PNG stays in the output folder. */
void
_gouache_window_history_remove (GouacheWindow *self,
                                gint64         id)
{
  GtkFlowBoxChild *child = find_history_child (self, id);
  g_autoptr(GError) error = NULL;

  if (!gouache_history_remove (self->history, id, &error))
    {
      _gouache_window_show_error (self, error);
      return;
    }

  if (child != NULL)
    gtk_widget_destroy (GTK_WIDGET (child));
  gtk_revealer_set_reveal_child (self->history_revealer,
                                 gtk_flow_box_get_child_at_index (self->history_box, 0) != NULL);
}

static GtkWidget *
history_child_new (const GouacheHistoryEntry *entry)
{
  g_autoptr(GdkPixbuf) thumbnail = gouache_history_entry_get_thumbnail (entry);
  g_autoptr(GdkPixbuf) small = NULL;
  g_autofree char *tooltip = entry_tooltip (entry);
  GtkWidget *child, *image;
  int size = 96;

  if (thumbnail != NULL)
    {
      double scale = (double) size / MAX (gdk_pixbuf_get_width (thumbnail), gdk_pixbuf_get_height (thumbnail));

      small = gdk_pixbuf_scale_simple (thumbnail,
                                       MAX (1, (int) (gdk_pixbuf_get_width (thumbnail) * scale)),
                                       MAX (1, (int) (gdk_pixbuf_get_height (thumbnail) * scale)),
                                       GDK_INTERP_BILINEAR);
      image = gtk_image_new_from_pixbuf (small);
    }
  else
    image = gtk_image_new_from_icon_name ("image-missing-symbolic", GTK_ICON_SIZE_DIALOG);

  gtk_widget_set_size_request (image, size, size);
  child = gtk_flow_box_child_new ();
  gtk_container_add (GTK_CONTAINER (child), image);
  gtk_widget_set_tooltip_markup (child, tooltip);
  atk_object_set_name (gtk_widget_get_accessible (child), _("Generated image"));
  g_object_set_data_full (G_OBJECT (child), "gouache-history-entry",
                          gouache_history_entry_copy (entry),
                          (GDestroyNotify) gouache_history_entry_free);
  g_signal_connect (child, "button-press-event", G_CALLBACK (history_child_button_press_cb), NULL);
  g_signal_connect (child, "popup-menu", G_CALLBACK (history_child_popup_menu_cb), NULL);
  gtk_widget_show_all (child);

  return child;
}

static void
gouache_window_fill_history (GouacheWindow *self)
{
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(GError) error = NULL;

  entries = gouache_history_list (self->history, HISTORY_LIMIT, &error);
  if (entries == NULL)
    {
      _gouache_window_show_error (self, error);
      return;
    }

  for (guint i = 0; i < entries->len; i++)
    gtk_container_add (GTK_CONTAINER (self->history_box), history_child_new (entries->pdata[i]));

  gtk_revealer_set_reveal_child (self->history_revealer, entries->len > 0);
}

/* Opens the history database; when it cannot be used, says so and keeps this session's
 * images in memory, so saving still works. */
void
_gouache_window_history_init (GouacheWindow *self)
{
  g_autofree char *path = gouache_history_default_path ();
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  self->history = gouache_history_new (path, &error);
  if (self->history == NULL)
    {
      message = g_strdup_printf (_("%s. Images are still saved, but this session’s history will be forgotten."),
                                 error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_WARNING, message, NULL, NULL);
      self->history = gouache_history_new (":memory:", NULL);
      g_return_if_fail (self->history != NULL);
    }

  gouache_window_fill_history (self);
}

/* Saving --------------------------------------------------------------------- */

static void
history_add_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GouacheWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheHistoryEntry) entry = gouache_history_add_finish (GOUACHE_HISTORY (source), result, &error);
  g_autofree char *message = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->settings == NULL)
    return;

  if (entry == NULL)
    {
      message = g_strdup_printf (_("The image was not saved. %s"), error->message);
      if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ||
          g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_ACCES) ||
          g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_ROFS) ||
          g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
          g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
        _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message,
                                      _("_Choose Another Folder…"), "win.choose-output-folder");
      else
        _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message,
                                      _("_Try Again"), "win.retry-save");
      return;
    }

  g_clear_pointer (&self->unsaved, gouache_job_result_free);
  gtk_flow_box_insert (self->history_box, history_child_new (entry), 0);
  gtk_revealer_set_reveal_child (self->history_revealer, TRUE);
  _gouache_window_emit_image_saved (self, entry->path);
}

/**
 * _gouache_window_history_save:
 * @self: a #GouacheWindow
 * @result: a finished full generation
 *
 * Saves @result in the output folder and adds it to the history, on a worker. Until that
 * succeeds the result is kept, so that a failure (a full disk) can be retried elsewhere.
 */
void
_gouache_window_history_save (GouacheWindow          *self,
                              const GouacheJobResult *result)
{
  g_autofree char *folder = output_folder (self);

  if (result != self->unsaved)
    {
      g_clear_pointer (&self->unsaved, gouache_job_result_free);
      self->unsaved = gouache_job_result_copy (result);
    }

  gouache_history_add_async (self->history, self->unsaved, folder, self->cancellable,
                             history_add_cb, g_object_ref (self));
}

void
_gouache_window_retry_save (GouacheWindow *self)
{
  if (self->unsaved != NULL)
    _gouache_window_history_save (self, self->unsaved);
}

/* Loading images ------------------------------------------------------------- */

static void
load_png_worker (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  GError *error = NULL;
  GouachePngImage *image = gouache_png_load (task_data, &error);

  if (image == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, image, (GDestroyNotify) gouache_png_image_free);
}

/* Reads a PNG and its text chunks on a worker; callback gets a GouachePngImage. */
static void
load_png_async (GouacheWindow       *self,
                const char          *path,
                GAsyncReadyCallback  callback)
{
  g_autoptr(GTask) task = g_task_new (self, self->cancellable, callback, NULL);

  g_task_set_source_tag (task, load_png_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_run_in_thread (task, load_png_worker);
}

static GdkPixbuf *
png_to_pixbuf (GouachePngImage *image)
{
  GBytes *bytes = g_bytes_new_take (g_steal_pointer (&image->pixels),
                                    (gsize) image->width * image->height * 3);
  GdkPixbuf *pixbuf = gdk_pixbuf_new_from_bytes (bytes, GDK_COLORSPACE_RGB, FALSE, 8,
                                                 (int) image->width, (int) image->height,
                                                 (int) image->width * 3);

  g_bytes_unref (bytes);
  return pixbuf;
}

/* Restores the settings of a "parameters" text; says what could not be restored. */
static void
restore_parameters (GouacheWindow *self,
                    const char    *parameters,
                    const char    *display_name)
{
  g_autoptr(GString) problems = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheGenerationInfo) info = gouache_infotext_parse (parameters, &error);
  g_autofree char *message = NULL;

  if (info == NULL)
    {
      message = g_strdup_printf (_("The settings in “%s” could not be read: %s"), display_name, error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_WARNING, message, NULL, NULL);
      return;
    }

  if (_gouache_window_apply_info (self, info, problems))
    return;

  message = g_strdup_printf (_("Some settings of “%s” were not restored. %s"), display_name, problems->str);
  _gouache_window_show_message (self, GTK_MESSAGE_WARNING, message, NULL, NULL);
}

static void
open_image_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GouacheWindow *self = GOUACHE_WINDOW (source);
  const char *path = g_task_get_task_data (G_TASK (result));
  g_autofree char *name = g_filename_display_basename (path);
  g_autoptr(GError) error = NULL;
  g_autoptr(GouachePngImage) image = g_task_propagate_pointer (G_TASK (result), &error);
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  const char *parameters;
  g_autofree char *message = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (image == NULL)
    {
      message = g_strdup_printf (_("“%s” could not be opened: %s"), name, error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message, _("_Open Another Image…"), "win.open-image");
      return;
    }

  _gouache_window_cancel (self);
  pixbuf = png_to_pixbuf (image);
  _gouache_window_show_image (self, pixbuf);
  _gouache_window_hide_message (self);

  parameters = g_hash_table_lookup (image->text, "parameters");
  if (parameters == NULL)
    {
      message = g_strdup_printf (_("“%s” carries no generation settings, so only the picture is shown."), name);
      _gouache_window_show_message (self, GTK_MESSAGE_INFO, message, NULL, NULL);
      return;
    }

  restore_parameters (self, parameters, name);
}

/**
 * _gouache_window_open_image:
 * @self: a #GouacheWindow
 * @file: a PNG, from Gouache or from another tool
 *
 * Shows the image and restores the settings its "parameters" text holds.
 */
void
_gouache_window_open_image (GouacheWindow *self,
                            GFile         *file)
{
  g_autofree char *path = g_file_get_path (file);

  if (path == NULL)
    {
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR,
                                    _("Only images stored on this computer can be opened."), NULL, NULL);
      return;
    }

  if (!gouache_window_get_model_loaded (self))
    {
      _gouache_window_show_message (self, GTK_MESSAGE_INFO,
                                    _("Open a model first: an image’s settings are restored into the workspace."),
                                    _("_Open Model…"), "win.open");
      return;
    }

  load_png_async (self, path, open_image_cb);
}

static void
image_chooser_response_cb (GouacheWindow   *self,
                           int              response,
                           GtkNativeDialog *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));

      _gouache_window_open_image (self, file);
    }

  g_clear_object (&self->chooser);
}

void
_gouache_window_open_image_dialog (GouacheWindow *self)
{
  GtkFileFilter *filter;

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  self->chooser = gtk_file_chooser_native_new (_("Open Image"),
                                               GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_OPEN,
                                               _("_Open"),
                                               _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);

  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("PNG images with their settings"));
  gtk_file_filter_add_mime_type (filter, "image/png");
  gtk_file_filter_add_pattern (filter, "*.png");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->chooser), filter);

  g_signal_connect_object (self->chooser, "response",
                           G_CALLBACK (image_chooser_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

/* Restoring from the strip -------------------------------------------------- */

static void
history_image_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GouacheWindow *self = GOUACHE_WINDOW (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GouachePngImage) image = g_task_propagate_pointer (G_TASK (result), &error);
  g_autoptr(GdkPixbuf) pixbuf = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (image == NULL)
    {
      _gouache_window_show_message (self, GTK_MESSAGE_WARNING,
                                    _("The image file is gone or damaged; its settings were restored."),
                                    NULL, NULL);
      return;
    }

  pixbuf = png_to_pixbuf (image);
  _gouache_window_show_image (self, pixbuf);
}

static void
restore_styles (GouacheWindow             *self,
                const GouacheHistoryEntry *entry)
{
  GouacheJobStyle *styles;
  guint n_styles = 0;

  styles = gouache_job_request_styles_from_json (entry->styles, &n_styles, NULL);
  if (styles == NULL)
    return;

  _gouache_window_set_styles (self, styles, n_styles);
  gouache_job_styles_free (styles, n_styles);
}

void
_gouache_window_history_child_activated_cb (GouacheWindow   *self,
                                            GtkFlowBoxChild *child,
                                            GtkFlowBox      *box)
{
  const GouacheHistoryEntry *entry = g_object_get_data (G_OBJECT (child), "gouache-history-entry");
  g_autofree char *name = g_filename_display_basename (entry->path);

  _gouache_window_cancel (self);
  _gouache_window_hide_message (self);
  self->restoring = TRUE;
  restore_styles (self, entry);
  self->restoring = FALSE;
  restore_parameters (self, entry->parameters, name);
  load_png_async (self, entry->path, history_image_cb);
}

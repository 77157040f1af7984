/* gouache-window-styles.c: the styles list
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Styles are LoRA files, added with the + button or dropped on the window. The engine opens
 * each against the loaded model first (gouache_job_engine_inspect_style_async), so a style
 * made for another model is refused with the reason before it reaches the list. Every enabled
 * row goes into each request with its weight; moving a slider schedules a live preview, which
 * the engine draws without reloading anything.
 */

#define G_LOG_DOMAIN "gouache-window"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "gc-safetensors.h"
#include "gouache-style-row.h"
#include "gouache-window-private.h"

/* Rows ----------------------------------------------------------------------- */

static GList *
style_rows (GouacheWindow *self)
{
  GList *rows = gtk_container_get_children (GTK_CONTAINER (self->styles_list));

  for (GList *l = rows; l != NULL;)
    {
      GList *next = l->next;

      if (!GOUACHE_IS_STYLE_ROW (l->data))
        rows = g_list_delete_link (rows, l);
      l = next;
    }

  return rows;
}

static GouacheStyleRow *
find_row (GouacheWindow *self,
          const char    *path)
{
  g_autoptr(GList) rows = style_rows (self);

  for (const GList *l = rows; l != NULL; l = l->next)
    if (g_strcmp0 (gouache_style_row_get_path (l->data), path) == 0)
      return l->data;

  return NULL;
}

static void
row_changed_cb (GouacheWindow *self)
{
  _gouache_window_schedule_preview (self);
}

static void
row_remove_cb (GouacheWindow   *self,
               GouacheStyleRow *row)
{
  gtk_widget_destroy (GTK_WIDGET (row));
  _gouache_window_schedule_preview (self);
}

/* Puts the style's trigger words at the end of the prompt, unless they are there. */
static void
row_insert_trigger_words_cb (GouacheWindow   *self,
                             const char      *words,
                             GouacheStyleRow *row)
{
  g_autofree char *prompt = gouache_prompt_view_get_text (self->prompt_view);
  g_autofree char *updated = NULL;

  if (words == NULL || strstr (prompt, words) != NULL)
    return;

  g_strchomp (prompt);
  updated = prompt[0] != '\0' ? g_strdup_printf ("%s, %s", prompt, words) : g_strdup (words);
  gouache_prompt_view_set_text (self->prompt_view, updated);
}

static GouacheStyleRow *
add_row (GouacheWindow *self,
         const char    *path,
         const char    *name,
         const char    *trigger_words,
         double         weight,
         gboolean       enabled)
{
  GouacheStyleRow *row = GOUACHE_STYLE_ROW (gouache_style_row_new (path, name, trigger_words));

  gouache_style_row_set_weight (row, weight);
  gouache_style_row_set_enabled (row, enabled);
  g_signal_connect_object (row, "notify::weight", G_CALLBACK (row_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (row, "notify::enabled", G_CALLBACK (row_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (row, "remove-requested", G_CALLBACK (row_remove_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (row, "insert-trigger-words",
                           G_CALLBACK (row_insert_trigger_words_cb), self, G_CONNECT_SWAPPED);
  gtk_widget_show (GTK_WIDGET (row));
  gtk_container_add (GTK_CONTAINER (self->styles_list), GTK_WIDGET (row));

  return row;
}

/* Adding --------------------------------------------------------------------- */

static void
inspect_style_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GouacheWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheStyleInfo) info = gouache_job_engine_inspect_style_finish (GOUACHE_JOB_ENGINE (source), result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->settings == NULL)
    return;

  if (info == NULL)
    {
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR, error->message,
                                    _("_Add Another Style…"), "win.add-style");
      return;
    }

  if (find_row (self, info->path) != NULL)
    return;

  add_row (self, info->path, info->name, info->trigger_words, 1.0, TRUE);
  _gouache_window_schedule_preview (self);
}

/**
 * _gouache_window_add_style_file:
 * @self: a #GouacheWindow
 * @file: a LoRA file
 *
 * Adds @file to the styles at weight 1, once the engine has checked it fits the model.
 */
void
_gouache_window_add_style_file (GouacheWindow *self,
                                GFile         *file)
{
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *name = NULL;
  g_autofree char *message = NULL;

  if (!gouache_window_get_model_loaded (self))
    {
      _gouache_window_show_message (self, GTK_MESSAGE_INFO,
                                    _("Open a model first: styles change a model’s weights."),
                                    _("_Open Model…"), "win.open");
      return;
    }

  if (path == NULL)
    {
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR,
                                    _("Only styles stored on this computer can be added."), NULL, NULL);
      return;
    }

  if (find_row (self, path) != NULL)
    {
      name = g_filename_display_basename (path);
      message = g_strdup_printf (_("“%s” is in the styles already."), name);
      _gouache_window_show_message (self, GTK_MESSAGE_INFO, message, NULL, NULL);
      return;
    }

  gouache_job_engine_inspect_style_async (self->engine, path, self->cancellable,
                                          inspect_style_cb, g_object_ref (self));
}

static void
style_chooser_response_cb (GouacheWindow   *self,
                           int              response,
                           GtkNativeDialog *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GSList) files = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (chooser));

      for (GSList *l = files; l != NULL; l = l->next)
        {
          g_autoptr(GFile) file = l->data;

          _gouache_window_add_style_file (self, file);
        }
    }

  g_clear_object (&self->chooser);
}

void
_gouache_window_add_style_dialog (GouacheWindow *self)
{
  GtkFileFilter *filter;

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  self->chooser = gtk_file_chooser_native_new (_("Add Styles"),
                                               GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_OPEN,
                                               _("_Add"),
                                               _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);
  gtk_file_chooser_set_select_multiple (GTK_FILE_CHOOSER (self->chooser), TRUE);

  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("LoRA styles (.safetensors)"));
  gtk_file_filter_add_pattern (filter, "*.safetensors");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->chooser), filter);

  g_signal_connect_object (self->chooser, "response",
                           G_CALLBACK (style_chooser_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

/**
 * _gouache_window_is_style_file:
 * @path: a dropped file
 *
 * Tells styles from checkpoints by their tensor names (lora_…, …lora_down…, LyCORIS's
 * hada_/lokr_), reading only the file's header.
 *
 * Returns: whether @path is a .safetensors file with LoRA tensors
 */
gboolean
_gouache_window_is_style_file (const char *path)
{
  g_autofree char *folded = g_ascii_strdown (path, -1);
  gc_safetensors *file = NULL;
  gboolean style = FALSE;

  if (!g_str_has_suffix (folded, ".safetensors") || gc_safetensors_open (&file, path, NULL) != GC_OK)
    return FALSE;

  for (size_t i = 0; i < gc_safetensors_count (file) && !style; i++)
    {
      const char *name = gc_safetensors_at (file, i)->name;

      style = g_str_has_prefix (name, "lora_") || strstr (name, "lora_down") != NULL ||
              strstr (name, "lora_A") != NULL || strstr (name, ".hada_") != NULL ||
              strstr (name, ".lokr_") != NULL;
    }
  gc_safetensors_close (file);

  return style;
}

/* Requests and restoring ---------------------------------------------------- */

/**
 * _gouache_window_get_styles:
 * @self: a #GouacheWindow
 * @n_styles: (out): how many
 *
 * Returns: (transfer full) (array length=n_styles): the enabled styles, in list order, to
 *   free with gouache_job_styles_free()
 */
GouacheJobStyle *
_gouache_window_get_styles (GouacheWindow *self,
                            guint         *n_styles)
{
  g_autoptr(GList) rows = style_rows (self);
  GouacheJobStyle *styles = g_new0 (GouacheJobStyle, g_list_length (rows) + 1);
  guint n = 0;

  for (const GList *l = rows; l != NULL; l = l->next)
    {
      GouacheStyleRow *row = l->data;

      if (!gouache_style_row_get_enabled (row))
        continue;
      styles[n].path = g_strdup (gouache_style_row_get_path (row));
      styles[n].name = g_strdup (gouache_style_row_get_title (row));
      styles[n].weight = gouache_style_row_get_weight (row);
      n++;
    }

  *n_styles = n;
  return styles;
}

/* A restored row waiting for the engine's look at its file. */
typedef struct {
  GouacheWindow *window;
  char          *path;
} RefreshContext;

static void
refresh_context_free (RefreshContext *context)
{
  g_object_unref (context->window);
  g_free (context->path);
  g_free (context);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RefreshContext, refresh_context_free)

static void
refresh_style_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(RefreshContext) context = user_data;
  GouacheWindow *self = context->window;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheStyleInfo) info = gouache_job_engine_inspect_style_finish (GOUACHE_JOB_ENGINE (source), result, &error);
  const char *path = context->path;
  GouacheStyleRow *row;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->settings == NULL)
    return;

  row = find_row (self, path);
  if (row == NULL)
    return;

  if (info == NULL)
    {
      gouache_style_row_set_problem (row, error->message);
      gouache_style_row_set_enabled (row, FALSE);
      return;
    }

  gouache_style_row_set_trigger_words (row, info->trigger_words);
}

/**
 * _gouache_window_set_styles:
 * @self: a #GouacheWindow
 * @styles: (array length=n_styles): styles from the history or a preset
 * @n_styles: how many
 *
 * Replaces the styles list at once; the engine then fills in trigger words, and marks the
 * styles it cannot use (a missing file, another model) and switches them off.
 */
void
_gouache_window_set_styles (GouacheWindow         *self,
                            const GouacheJobStyle *styles,
                            guint                  n_styles)
{
  g_autoptr(GList) rows = style_rows (self);

  for (const GList *l = rows; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);

  for (guint i = 0; i < n_styles; i++)
    {
      g_autofree char *fallback = gouache_style_name_from_path (styles[i].path);
      const char *name = styles[i].name && styles[i].name[0] ? styles[i].name : fallback;
      RefreshContext *context;

      if (find_row (self, styles[i].path) != NULL)
        continue;
      context = g_new0 (RefreshContext, 1);
      add_row (self, styles[i].path, name, NULL, CLAMP (styles[i].weight, -2.0, 2.0), TRUE);
      context->window = g_object_ref (self);
      context->path = g_strdup (styles[i].path);
      gouache_job_engine_inspect_style_async (self->engine, styles[i].path, self->cancellable,
                                              refresh_style_cb, context);
    }

  _gouache_window_schedule_preview (self);
}

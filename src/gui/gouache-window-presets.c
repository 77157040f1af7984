/* gouache-window-presets.c: the presets popover: apply, save, rename, delete, import, export
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A preset keeps what makes an image: the model, the styles and their weights, the prompts
 * and the settings, with a thumbnail of the picture on the canvas when it was saved
 * (gouache-preset-store.h). Applying one restores every control, opening its model first
 * when it is another one; a deleted preset can be brought back from the message that
 * reports it.
 */

#define G_LOG_DOMAIN "gouache-window"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "gouache-name-dialog.h"
#include "gouache-preset-row.h"
#include "gouache-window-private.h"

/* The thumbnail's longer side. */
#define PRESET_THUMBNAIL_SIZE 160

/* The list ------------------------------------------------------------------- */

static void row_rename_cb (GouacheWindow *self, GouachePresetRow *row);
static void row_delete_cb (GouacheWindow *self, GouachePresetRow *row);

static GPtrArray *
list_presets (GouacheWindow *self)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *presets;

  if (self->presets == NULL)
    return NULL;

  presets = gouache_preset_store_list (self->presets, &error);
  if (presets == NULL)
    _gouache_window_show_error (self, error);
  return presets;
}

static void
gouache_window_refresh_presets (GouacheWindow *self)
{
  g_autoptr(GPtrArray) presets = list_presets (self);
  g_autoptr(GList) rows = gtk_container_get_children (GTK_CONTAINER (self->presets_list));

  for (const GList *l = rows; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);

  for (guint i = 0; presets != NULL && i < presets->len; i++)
    {
      GtkWidget *row = gouache_preset_row_new (presets->pdata[i]);

      g_signal_connect_object (row, "rename-requested", G_CALLBACK (row_rename_cb), self, G_CONNECT_SWAPPED);
      g_signal_connect_object (row, "delete-requested", G_CALLBACK (row_delete_cb), self, G_CONNECT_SWAPPED);
      gtk_widget_show (row);
      gtk_container_add (GTK_CONTAINER (self->presets_list), row);
    }
}

static GStrv
preset_names (GouacheWindow *self)
{
  g_autoptr(GPtrArray) presets = list_presets (self);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; presets != NULL && i < presets->len; i++)
    g_strv_builder_add (builder, ((GouachePreset *) presets->pdata[i])->name);

  return g_strv_builder_end (builder);
}

void
_gouache_window_presets_popover_show_cb (GouacheWindow *self)
{
  gouache_window_refresh_presets (self);
}

/* Applying -------------------------------------------------------------------- */

static GouacheGenerationInfo *
preset_to_info (const GouachePreset *preset)
{
  GouacheGenerationInfo *info = gouache_generation_info_new ();

  info->prompt = g_strdup (preset->prompt ? preset->prompt : "");
  info->negative_prompt = g_strdup (preset->negative_prompt ? preset->negative_prompt : "");
  info->sampler = g_strdup (preset->sampler);
  info->schedule_type = g_strdup (preset->schedule);
  info->steps = preset->steps;
  info->cfg_scale = preset->cfg_scale;
  info->seed = preset->seed >= 0 ? (guint64) preset->seed : 0;
  info->width = preset->width;
  info->height = preset->height;
  return info;
}

/* Opens the preset's model unless it is the one loaded; says so when it is missing. */
static void
apply_model (GouacheWindow       *self,
             const GouachePreset *preset,
             GString             *problems)
{
  g_autoptr(GFile) model = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;

  if (preset->model_path == NULL || g_strcmp0 (preset->model_path, self->model_path) == 0)
    return;

  name = g_filename_display_basename (preset->model_path);
  if (!g_file_test (preset->model_path, G_FILE_TEST_EXISTS))
    {
      g_string_append_printf (problems, _("Its model, “%s”, is missing: the current model is kept."), name);
      g_string_append_c (problems, ' ');
      return;
    }

  model = g_file_new_for_path (preset->model_path);
  if (!gouache_window_open_model (self, model, &error))
    {
      g_string_append (problems, error->message);
      g_string_append_c (problems, ' ');
    }
}

static void
apply_styles (GouacheWindow       *self,
              const GouachePreset *preset)
{
  GouacheJobStyle *styles = g_new0 (GouacheJobStyle, preset->styles->len + 1);

  for (guint i = 0; i < preset->styles->len; i++)
    {
      const GouachePresetStyle *style = preset->styles->pdata[i];

      styles[i].path = g_strdup (style->path);
      styles[i].name = gouache_style_name_from_path (style->path);
      styles[i].weight = style->weight;
    }

  _gouache_window_set_styles (self, styles, preset->styles->len);
  gouache_job_styles_free (styles, preset->styles->len);
}

/**
 * _gouache_window_apply_preset:
 * @self: a #GouacheWindow
 * @preset: a preset
 *
 * Restores every control from @preset (its model first, when another one), then draws a
 * live preview.
 */
void
_gouache_window_apply_preset (GouacheWindow       *self,
                              const GouachePreset *preset)
{
  g_autoptr(GString) problems = g_string_new (NULL);
  g_autoptr(GouacheGenerationInfo) info = preset_to_info (preset);
  g_autofree char *message = NULL;

  _gouache_window_hide_message (self);
  apply_model (self, preset, problems);
  _gouache_window_apply_info (self, info, problems);
  if (preset->seed < 0)
    _gouache_window_random_seed (self);
  apply_styles (self, preset);
  _gouache_window_schedule_preview (self);

  g_strstrip (problems->str);
  problems->len = strlen (problems->str);
  if (problems->len == 0)
    return;

  message = g_strdup_printf (_("The preset “%s” was not restored entirely. %s"), preset->name, problems->str);
  _gouache_window_show_message (self, GTK_MESSAGE_WARNING, message, NULL, NULL);
}

void
_gouache_window_presets_row_activated_cb (GouacheWindow *self,
                                          GtkListBoxRow *row,
                                          GtkListBox    *list)
{
  GtkWidget *popover = gtk_widget_get_ancestor (GTK_WIDGET (list), GTK_TYPE_POPOVER);

  if (popover != NULL)
    gtk_popover_popdown (GTK_POPOVER (popover));
  _gouache_window_apply_preset (self, gouache_preset_row_get_preset (GOUACHE_PRESET_ROW (row)));
}

/* Saving ----------------------------------------------------------------------- */

static GBytes *
canvas_thumbnail (GouacheWindow *self)
{
  GdkPixbuf *image = gouache_preview_canvas_get_image (self->canvas);
  g_autoptr(GdkPixbuf) small = NULL;
  gchar *buffer = NULL;
  gsize size = 0;
  double scale;

  if (image == NULL)
    return NULL;

  scale = (double) PRESET_THUMBNAIL_SIZE / MAX (gdk_pixbuf_get_width (image), gdk_pixbuf_get_height (image));
  small = gdk_pixbuf_scale_simple (image,
                                   MAX (1, (int) (gdk_pixbuf_get_width (image) * scale)),
                                   MAX (1, (int) (gdk_pixbuf_get_height (image) * scale)),
                                   GDK_INTERP_BILINEAR);
  if (small == NULL || !gdk_pixbuf_save_to_buffer (small, &buffer, &size, "png", NULL, NULL))
    return NULL;

  return g_bytes_new_take (buffer, size);
}

/* A preset of the window's current settings, named name. */
static GouachePreset *
preset_from_controls (GouacheWindow *self,
                      const char    *name)
{
  GouachePreset *preset = gouache_preset_new ();
  GouacheJobRequest request = { 0 };

  _gouache_window_build_request (self, GOUACHE_JOB_FULL, &request);
  preset->name = g_strdup (name);
  preset->model_path = g_strdup (self->model_path);
  for (guint i = 0; i < request.n_styles; i++)
    gouache_preset_add_style (preset, request.styles[i].path, NULL,
                              request.styles[i].weight, request.styles[i].weight);
  preset->prompt = g_strdup (request.prompt);
  preset->negative_prompt = g_strdup (request.negative);
  preset->sampler = g_strdup (gc_sampler_cli_name (request.sampler));
  preset->schedule = g_strdup (gc_schedule_cli_name (request.schedule));
  preset->steps = (guint) request.steps;
  preset->cfg_scale = request.cfg;
  preset->width = (guint) request.width;
  preset->height = (guint) request.height;
  preset->seed = (gint64) request.seed;
  preset->thumbnail = canvas_thumbnail (self);
  _gouache_window_clear_request (&request);

  return preset;
}

/**
 * _gouache_window_save_preset:
 * @self: a #GouacheWindow
 * @name: the preset's name; a preset of that name is replaced
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the current settings were saved as @name
 */
gboolean
_gouache_window_save_preset (GouacheWindow  *self,
                             const char     *name,
                             GError        **error)
{
  g_autoptr(GouachePreset) preset = preset_from_controls (self, name);

  if (!gouache_preset_store_save (self->presets, preset, TRUE, error))
    return FALSE;

  gouache_window_refresh_presets (self);
  return TRUE;
}

/* A first name for a new preset: the prompt's first words. */
static char *
suggested_name (GouacheWindow *self)
{
  g_autofree char *prompt = gouache_prompt_view_get_text (self->prompt_view);
  g_auto(GStrv) words = g_strsplit_set (g_strstrip (prompt), " ,\n\t", -1);
  g_autoptr(GString) name = g_string_new (NULL);

  for (guint i = 0; words[i] != NULL && name->len < 24; i++)
    if (words[i][0] != '\0')
      g_string_append_printf (name, "%s%s", name->len > 0 ? " " : "", words[i]);

  return g_string_free (g_steal_pointer (&name), FALSE);
}

static void
save_dialog_response_cb (GouacheNameDialog *dialog,
                         int                response,
                         GouacheWindow     *self)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  if (response == GTK_RESPONSE_ACCEPT &&
      !_gouache_window_save_preset (self, gouache_name_dialog_get_name (dialog), &error))
    {
      message = g_strdup_printf (_("The preset was not saved: %s"), error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message, NULL, NULL);
    }

  gtk_widget_destroy (GTK_WIDGET (dialog));
}

void
_gouache_window_save_preset_dialog (GouacheWindow *self)
{
  g_autofree char *name = suggested_name (self);
  g_auto(GStrv) taken = preset_names (self);
  GtkWidget *dialog = gouache_name_dialog_new (GTK_WINDOW (self), _("Save Preset"), _("_Save"), name);

  gouache_name_dialog_set_taken_names (GOUACHE_NAME_DIALOG (dialog), (const char * const *) taken, TRUE);
  g_signal_connect_object (dialog, "response", G_CALLBACK (save_dialog_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* Renaming and deleting ---------------------------------------------------------- */

static void
rename_dialog_response_cb (GouacheNameDialog *dialog,
                           int                response,
                           GouacheWindow     *self)
{
  const char *old_name = g_object_get_data (G_OBJECT (dialog), "gouache-preset-name");
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  if (response == GTK_RESPONSE_ACCEPT &&
      g_strcmp0 (old_name, gouache_name_dialog_get_name (dialog)) != 0)
    {
      if (gouache_preset_store_rename (self->presets, old_name, gouache_name_dialog_get_name (dialog), &error))
        gouache_window_refresh_presets (self);
      else
        {
          message = g_strdup_printf (_("The preset was not renamed: %s"), error->message);
          _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message, NULL, NULL);
        }
    }

  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static void
row_rename_cb (GouacheWindow    *self,
               GouachePresetRow *row)
{
  const GouachePreset *preset = gouache_preset_row_get_preset (row);
  g_auto(GStrv) taken = preset_names (self);
  GtkWidget *dialog = gouache_name_dialog_new (GTK_WINDOW (self), _("Rename Preset"), _("_Rename"), preset->name);

  gouache_name_dialog_set_taken_names (GOUACHE_NAME_DIALOG (dialog), (const char * const *) taken, FALSE);
  g_object_set_data_full (G_OBJECT (dialog), "gouache-preset-name", g_strdup (preset->name), g_free);
  g_signal_connect_object (dialog, "response", G_CALLBACK (rename_dialog_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* Deletes at once; the message that says so can bring the preset back. */
static void
row_delete_cb (GouacheWindow    *self,
               GouachePresetRow *row)
{
  g_autoptr(GouachePreset) preset = gouache_preset_copy (gouache_preset_row_get_preset (row));
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  if (!gouache_preset_store_delete (self->presets, preset->name, &error))
    {
      _gouache_window_show_error (self, error);
      return;
    }

  gouache_window_refresh_presets (self);
  message = g_strdup_printf (_("The preset “%s” was deleted."), preset->name);
  g_clear_pointer (&self->deleted_preset, gouache_preset_free);
  self->deleted_preset = g_steal_pointer (&preset);
  _gouache_window_show_message (self, GTK_MESSAGE_INFO, message, _("_Undo"), "win.undo-delete-preset");
}

void
_gouache_window_undo_delete_preset (GouacheWindow *self)
{
  g_autoptr(GouachePreset) preset = g_steal_pointer (&self->deleted_preset);
  g_autoptr(GError) error = NULL;

  if (preset == NULL)
    return;

  if (!gouache_preset_store_save (self->presets, preset, FALSE, &error))
    _gouache_window_show_error (self, error);
  gouache_window_refresh_presets (self);
}

/* Import and export ---------------------------------------------------------------- */

/**
 * _gouache_window_import_presets:
 * @self: a #GouacheWindow
 * @file: a JSON file of presets
 *
 * Adds the presets of @file; none is added when one is invalid or its name is taken.
 */
void
_gouache_window_import_presets (GouacheWindow *self,
                                GFile         *file)
{
  g_autofree char *contents = NULL;
  g_autofree char *message = NULL;
  g_autofree char *name = g_file_get_basename (file);
  g_autoptr(GError) error = NULL;
  int n;

  if (!g_file_load_contents (file, NULL, &contents, NULL, NULL, &error) ||
      (n = gouache_preset_store_import (self->presets, contents, FALSE, &error)) < 0)
    {
      message = g_strdup_printf (_("No presets were imported from “%s”: %s"), name, error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message, _("_Import Another File…"), "win.import-presets");
      return;
    }

  gouache_window_refresh_presets (self);
  message = g_strdup_printf (ngettext ("%d preset was imported from “%s”.",
                                       "%d presets were imported from “%s”.", n),
                             n, name);
  _gouache_window_show_message (self, GTK_MESSAGE_INFO, message, NULL, NULL);
}

/**
 * _gouache_window_export_presets:
 * @self: a #GouacheWindow
 * @file: where to write every preset, as JSON
 */
void
_gouache_window_export_presets (GouacheWindow *self,
                                GFile         *file)
{
  g_autofree char *json = NULL;
  g_autofree char *message = NULL;
  g_autoptr(GError) error = NULL;

  json = gouache_preset_store_export (self->presets, NULL, &error);
  if (json == NULL ||
      !g_file_replace_contents (file, json, strlen (json), NULL, FALSE, G_FILE_CREATE_NONE, NULL, NULL, &error))
    {
      message = g_strdup_printf (_("The presets were not exported: %s"), error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_ERROR, message, NULL, NULL);
    }
}

static void
presets_chooser_response_cb (GouacheWindow   *self,
                             int              response,
                             GtkNativeDialog *chooser)
{
  g_autoptr(GFile) file = NULL;

  if (response == GTK_RESPONSE_ACCEPT)
    {
      file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      if (gtk_file_chooser_get_action (GTK_FILE_CHOOSER (chooser)) == GTK_FILE_CHOOSER_ACTION_SAVE)
        _gouache_window_export_presets (self, file);
      else
        _gouache_window_import_presets (self, file);
    }

  g_clear_object (&self->chooser);
}

/* The file chooser of import (OPEN) and export (SAVE). */
void
_gouache_window_presets_file_dialog (GouacheWindow        *self,
                                     GtkFileChooserAction  action)
{
  gboolean save = action == GTK_FILE_CHOOSER_ACTION_SAVE;
  GtkFileFilter *filter;

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  self->chooser = gtk_file_chooser_native_new (save ? _("Export Presets") : _("Import Presets"),
                                               GTK_WINDOW (self), action,
                                               save ? _("_Export") : _("_Import"),
                                               _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);

  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("Gouache presets (.json)"));
  gtk_file_filter_add_pattern (filter, "*.json");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->chooser), filter);
  if (save)
    {
      gtk_file_chooser_set_do_overwrite_confirmation (GTK_FILE_CHOOSER (self->chooser), TRUE);
      /* Translators: the file name presets are exported to by default */
      gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (self->chooser), _("Gouache Presets.json"));
    }

  g_signal_connect_object (self->chooser, "response",
                           G_CALLBACK (presets_chooser_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

/* Opens the store; without one, the presets button says why it is missing. */
void
_gouache_window_presets_init (GouacheWindow *self)
{
  g_autofree char *path = gouache_preset_store_default_path ();
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  self->presets = gouache_preset_store_new (path, &error);
  if (self->presets == NULL)
    {
      message = g_strdup_printf (_("Presets are not available: %s"), error->message);
      _gouache_window_show_message (self, GTK_MESSAGE_WARNING, message, NULL, NULL);
      return;
    }

  gouache_window_refresh_presets (self);
}

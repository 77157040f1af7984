/* gouache-preferences-dialog.c: the preferences, bound to GSettings
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-preferences-dialog"

#include "config.h"

#include <glib/gi18n.h>

#include "gouache-config-keys.h"
#include "gouache-path.h"
#include "gouache-preferences-dialog.h"

struct _GouachePreferencesDialog
{
  GtkDialog             parent_instance;

  /* Template widgets */
  GtkListBox           *model_folders_list;
  GtkLabel             *output_folder_label;
  GtkWidget            *output_folder_reset;
  GtkSpinButton        *preview_height_spin;
  GtkSpinButton        *preview_steps_spin;
  GtkSpinButton        *preview_width_spin;
  GtkLabel             *threads_description;
  GtkAdjustment        *threads_adjustment;
  GtkSpinButton        *threads_spin;

  /* Owned references */
  GSettings            *settings;
  GtkFileChooserNative *chooser;
};

G_DEFINE_FINAL_TYPE (GouachePreferencesDialog, gouache_preferences_dialog, GTK_TYPE_DIALOG)

/* Where pictures go while output-folder is empty: Pictures/Gouache. */
static char *
default_output_folder (void)
{
  const char *pictures = g_get_user_special_dir (G_USER_DIRECTORY_PICTURES);

  if (pictures == NULL)
    return g_build_filename (g_get_home_dir (), "Pictures", "Gouache", NULL);

  return g_build_filename (pictures, "Gouache", NULL);
}

static void
gouache_preferences_dialog_update_output_folder (GouachePreferencesDialog *self)
{
  g_autofree char *folder = g_settings_get_string (self->settings, GOUACHE_SETTINGS_OUTPUT_FOLDER);
  g_autofree char *display = NULL;
  gboolean is_default = folder[0] == '\0';

  if (is_default)
    {
      g_autofree char *fallback = default_output_folder ();

      display = gouache_path_display_name (fallback);
    }
  else
    display = gouache_path_display_name (folder);

  gtk_label_set_text (self->output_folder_label, display);
  gtk_widget_set_sensitive (self->output_folder_reset, !is_default);
}

static void
output_folder_changed_cb (GouachePreferencesDialog *self,
                          const char               *key,
                          GSettings                *settings)
{
  gouache_preferences_dialog_update_output_folder (self);
}

static void
remove_folder_button_clicked_cb (GtkButton *button,
                                 gpointer   user_data)
{
  GouachePreferencesDialog *self = user_data;
  const char *path = g_object_get_data (G_OBJECT (button), "gouache-folder");
  g_auto(GStrv) folders = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_MODEL_FOLDERS);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) updated = NULL;

  for (guint i = 0; folders[i] != NULL; i++)
    if (g_strcmp0 (folders[i], path) != 0)
      g_strv_builder_add (builder, folders[i]);

  updated = g_strv_builder_end (builder);
  g_settings_set_strv (self->settings, GOUACHE_SETTINGS_MODEL_FOLDERS,
                       (const char * const *) updated);
}

static GtkWidget *
model_folder_row_new (GouachePreferencesDialog *self,
                      const char               *path)
{
  g_autofree char *display = gouache_path_display_name (path);
  GtkWidget *row, *box, *icon, *label, *remove;

  icon = gtk_image_new_from_icon_name ("folder-symbolic", GTK_ICON_SIZE_BUTTON);
  label = g_object_new (GTK_TYPE_LABEL,
                        "label", display,
                        "xalign", 0.0f,
                        "hexpand", TRUE,
                        "ellipsize", PANGO_ELLIPSIZE_MIDDLE,
                        "tooltip-text", path,
                        NULL);

  remove = gtk_button_new_from_icon_name ("list-remove-symbolic", GTK_ICON_SIZE_BUTTON);
  gtk_widget_set_tooltip_text (remove, _("Remove"));
  gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
  gtk_button_set_relief (GTK_BUTTON (remove), GTK_RELIEF_NONE);
  atk_object_set_name (gtk_widget_get_accessible (remove), _("Remove folder"));
  g_object_set_data_full (G_OBJECT (remove), "gouache-folder", g_strdup (path), g_free);
  g_signal_connect (remove, "clicked", G_CALLBACK (remove_folder_button_clicked_cb), self);

  box = g_object_new (GTK_TYPE_BOX,
                      "spacing", 12,
                      "margin-start", 12,
                      "margin-end", 6,
                      "margin-top", 6,
                      "margin-bottom", 6,
                      NULL);
  gtk_container_add (GTK_CONTAINER (box), icon);
  gtk_container_add (GTK_CONTAINER (box), label);
  gtk_container_add (GTK_CONTAINER (box), remove);

  row = gtk_list_box_row_new ();
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  gtk_container_add (GTK_CONTAINER (row), box);
  gtk_widget_show_all (row);

  return row;
}

static void
gouache_preferences_dialog_update_model_folders (GouachePreferencesDialog *self)
{
  g_auto(GStrv) folders = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_MODEL_FOLDERS);
  g_autoptr(GList) rows = gtk_container_get_children (GTK_CONTAINER (self->model_folders_list));

  for (const GList *l = rows; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);

  for (guint i = 0; folders[i] != NULL; i++)
    gtk_container_add (GTK_CONTAINER (self->model_folders_list),
                       model_folder_row_new (self, folders[i]));
}

static void
model_folders_changed_cb (GouachePreferencesDialog *self,
                          const char               *key,
                          GSettings                *settings)
{
  gouache_preferences_dialog_update_model_folders (self);
}

static void
add_folders_response_cb (GouachePreferencesDialog *self,
                         int                       response,
                         GtkNativeDialog          *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_auto(GStrv) folders = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_MODEL_FOLDERS);
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
      g_autoptr(GSList) files = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (chooser));
      g_auto(GStrv) updated = NULL;

      g_strv_builder_addv (builder, (const char **) folders);
      for (GSList *l = files; l != NULL; l = l->next)
        {
          g_autoptr(GFile) file = l->data;
          g_autofree char *path = g_file_get_path (file);

          if (path != NULL && !g_strv_contains ((const char * const *) folders, path))
            g_strv_builder_add (builder, path);
        }

      updated = g_strv_builder_end (builder);
      g_settings_set_strv (self->settings, GOUACHE_SETTINGS_MODEL_FOLDERS,
                           (const char * const *) updated);
    }

  g_clear_object (&self->chooser);
}

static void
output_folder_response_cb (GouachePreferencesDialog *self,
                           int                       response,
                           GtkNativeDialog          *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = g_file_get_path (folder);

      if (path != NULL)
        g_settings_set_string (self->settings, GOUACHE_SETTINGS_OUTPUT_FOLDER, path);
    }

  g_clear_object (&self->chooser);
}

/* One folder chooser at a time, modal over the dialog; @response_cb runs
 * once and drops it. */
static void
gouache_preferences_dialog_choose_folder (GouachePreferencesDialog *self,
                                          const char               *title,
                                          const char               *start_folder,
                                          gboolean                  select_multiple,
                                          GCallback                 response_cb)
{
  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  self->chooser = gtk_file_chooser_native_new (title,
                                               GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                               _("_Select"),
                                               _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);
  gtk_file_chooser_set_select_multiple (GTK_FILE_CHOOSER (self->chooser), select_multiple);
  if (start_folder != NULL && g_file_test (start_folder, G_FILE_TEST_IS_DIR))
    gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (self->chooser), start_folder);

  g_signal_connect_object (self->chooser, "response", response_cb, self, G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
add_folder_button_clicked_cb (GouachePreferencesDialog *self,
                              GtkButton                *button)
{
  gouache_preferences_dialog_choose_folder (self, _("Add Model Folders"), NULL, TRUE,
                                            G_CALLBACK (add_folders_response_cb));
}

static void
output_folder_button_clicked_cb (GouachePreferencesDialog *self,
                                 GtkButton                *button)
{
  g_autofree char *folder = g_settings_get_string (self->settings, GOUACHE_SETTINGS_OUTPUT_FOLDER);

  gouache_preferences_dialog_choose_folder (self, _("Output Folder"), folder, FALSE,
                                            G_CALLBACK (output_folder_response_cb));
}

static void
output_folder_reset_clicked_cb (GouachePreferencesDialog *self,
                                GtkButton                *button)
{
  g_settings_reset (self->settings, GOUACHE_SETTINGS_OUTPUT_FOLDER);
}

static void
gouache_preferences_dialog_dispose (GObject *object)
{
  GouachePreferencesDialog *self = GOUACHE_PREFERENCES_DIALOG (object);

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (gouache_preferences_dialog_parent_class)->dispose (object);
}

static void
gouache_preferences_dialog_class_init (GouachePreferencesDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gouache_preferences_dialog_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-preferences-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, model_folders_list);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, output_folder_label);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, output_folder_reset);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, preview_height_spin);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, preview_steps_spin);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, preview_width_spin);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, threads_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, threads_description);
  gtk_widget_class_bind_template_child (widget_class, GouachePreferencesDialog, threads_spin);
  gtk_widget_class_bind_template_callback (widget_class, add_folder_button_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, output_folder_button_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, output_folder_reset_clicked_cb);
}

static void
gouache_preferences_dialog_init (GouachePreferencesDialog *self)
{
  guint cores = g_get_num_processors ();
  g_autofree char *threads_text = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  /* More threads than cores only slows the engine down. */
  gtk_adjustment_set_upper (self->threads_adjustment, cores);
  threads_text = g_strdup_printf (_("0 uses every core (%u on this computer)"), cores);
  gtk_label_set_text (self->threads_description, threads_text);

  self->settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  g_settings_bind (self->settings, GOUACHE_SETTINGS_THREADS,
                   self->threads_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, GOUACHE_SETTINGS_PREVIEW_WIDTH,
                   self->preview_width_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, GOUACHE_SETTINGS_PREVIEW_HEIGHT,
                   self->preview_height_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, GOUACHE_SETTINGS_PREVIEW_STEPS,
                   self->preview_steps_spin, "value", G_SETTINGS_BIND_DEFAULT);

  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_OUTPUT_FOLDER,
                           G_CALLBACK (output_folder_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_MODEL_FOLDERS,
                           G_CALLBACK (model_folders_changed_cb), self, G_CONNECT_SWAPPED);
  gouache_preferences_dialog_update_output_folder (self);
  gouache_preferences_dialog_update_model_folders (self);
}

/**
 * gouache_preferences_dialog_new:
 * @parent: (nullable): the window the dialog belongs to
 *
 * Returns: (transfer none): a new preferences dialog, destroyed when closed
 */
GtkWidget *
gouache_preferences_dialog_new (GtkWindow *parent)
{
  GtkWidget *dialog;

  g_return_val_if_fail (parent == NULL || GTK_IS_WINDOW (parent), NULL);

  dialog = g_object_new (GOUACHE_TYPE_PREFERENCES_DIALOG,
                         "transient-for", parent,
                         "use-header-bar", TRUE,
                         NULL);
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);

  return dialog;
}

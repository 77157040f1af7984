/* gouache-window.c: the main window
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The window shows one of two pages: the empty state, which chooses a model (file chooser,
 * recent models, a drop, or the demo model), and the workspace, once a model is loaded: the
 * prompts, styles and settings on the left, the picture with its history strip on the right.
 * Models load on the engine's thread; the window stays responsive and shows a spinner.
 */

#define G_LOG_DOMAIN "gouache-window"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "gouache-application.h"
#include "gouache-config-keys.h"
#include "gouache-data.h"
#include "gouache-demo-model.h"
#include "gouache-path.h"
#include "gouache-training-page.h"
#include "gouache-window-private.h"

G_DEFINE_FINAL_TYPE (GouacheWindow, gouache_window, GTK_TYPE_APPLICATION_WINDOW)

enum {
  PROP_0,
  PROP_MODEL_PATH,
  PROP_MODEL_LOADED,
  N_PROPS
};

enum {
  MODEL_CHOSEN,
  PREVIEW_FINISHED,
  IMAGE_SAVED,
  N_SIGNALS
};

/* The info bar's action button. */
#define INFO_RESPONSE_ACTION 1

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* Models -------------------------------------------------------------------- */

/* The name people know a model by: its file name without ".safetensors",
 * or the folder name of a diffusers layout. */
static char *
model_display_name (const char *path)
{
  g_autofree char *basename = NULL;
  g_autofree char *name = NULL;
  g_autofree char *folded = NULL;

  if (gouache_demo_model_is_demo (path))
    return g_strdup (_("Demo Model (Random Weights)"));

  basename = g_path_get_basename (path);
  name = g_filename_display_name (basename);
  folded = g_ascii_strdown (name, -1);
  if (g_str_has_suffix (folded, ".safetensors"))
    name[strlen (name) - strlen (".safetensors")] = '\0';

  return g_steal_pointer (&name);
}

static gboolean
is_diffusers_folder (GFile *folder)
{
  g_autoptr(GFile) unet = g_file_get_child (folder, "unet");

  return g_file_query_file_type (unet, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_DIRECTORY;
}

/* What the engine can read: a local .safetensors file or a diffusers folder.
 * Pickle checkpoints are refused by name, since loading them runs code. */
static gboolean
check_model_file (GFile   *model,
                  GError **error)
{
  g_autofree char *path = g_file_get_path (model);
  g_autofree char *display = NULL;
  g_autofree char *folded = NULL;
  GFileType type;

  if (path == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           _("Only models stored on this computer can be opened."));
      return FALSE;
    }

  display = g_filename_display_basename (path);
  folded = g_ascii_strdown (display, -1);
  type = g_file_query_file_type (model, G_FILE_QUERY_INFO_NONE, NULL);

  if (type == G_FILE_TYPE_UNKNOWN)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("“%s” no longer exists."), display);
      return FALSE;
    }

  if (type == G_FILE_TYPE_DIRECTORY)
    {
      if (is_diffusers_folder (model))
        return TRUE;

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("“%s” is not a model folder: it has no “unet” folder inside."), display);
      return FALSE;
    }

  if (g_str_has_suffix (folded, ".safetensors"))
    return TRUE;

  if (g_str_has_suffix (folded, ".ckpt") || g_str_has_suffix (folded, ".pt") ||
      g_str_has_suffix (folded, ".pth") || g_str_has_suffix (folded, ".bin"))
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                 _("“%s” is a pickle checkpoint, which can run any code when it is loaded. "
                   "Convert it to .safetensors first."), display);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                 _("“%s” is not a .safetensors model."), display);

  return FALSE;
}

/* Messages ------------------------------------------------------------------ */

/**
 * _gouache_window_show_message:
 * @self: a #GouacheWindow
 * @type: %GTK_MESSAGE_ERROR, %GTK_MESSAGE_WARNING or %GTK_MESSAGE_INFO
 * @message: what happened, in a sentence or two
 * @action_label: (nullable): the button that helps ("_Choose Another Folder…")
 * @detailed_action: (nullable): what the button activates ("win.open", "app.preferences")
 *
 * Shows @message in the info bar at the top of the window, replacing any other.
 */
void
_gouache_window_show_message (GouacheWindow  *self,
                              GtkMessageType  type,
                              const char     *message,
                              const char     *action_label,
                              const char     *detailed_action)
{
  GtkWidget *button = gtk_info_bar_get_action_area (self->info_bar);
  g_autoptr(GList) buttons = gtk_container_get_children (GTK_CONTAINER (button));

  for (const GList *l = buttons; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);

  g_clear_pointer (&self->info_action, g_free);
  if (action_label != NULL && detailed_action != NULL)
    {
      gtk_info_bar_add_button (self->info_bar, action_label, INFO_RESPONSE_ACTION);
      self->info_action = g_strdup (detailed_action);
    }

  gtk_info_bar_set_message_type (self->info_bar, type);
  gtk_label_set_text (self->info_label, message);
  gtk_info_bar_set_revealed (self->info_bar, TRUE);
}

/* The button that helps, for the errors the window knows a way out of: a folder that
 * cannot take the image. */
static void
error_action (const GError  *error,
              const char   **label,
              const char   **action)
{
  *label = NULL;
  *action = NULL;

  if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ||
      g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_ACCES) ||
      g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_ROFS))
    {
      *label = _("_Choose Another Folder…");
      *action = "win.choose-output-folder";
    }
}

/* A model that could not be opened or loaded: the way out is another one. */
static void
gouache_window_show_model_error (GouacheWindow *self,
                                 const GError  *error)
{
  _gouache_window_show_message (self, GTK_MESSAGE_ERROR, error->message,
                                _("_Open Another Model…"), "win.open");
}

void
_gouache_window_show_error (GouacheWindow *self,
                            const GError  *error)
{
  const char *label, *action;

  error_action (error, &label, &action);
  _gouache_window_show_message (self, GTK_MESSAGE_ERROR, error->message, label, action);
}

void
_gouache_window_hide_message (GouacheWindow *self)
{
  gtk_info_bar_set_revealed (self->info_bar, FALSE);
}

static void
info_bar_response_cb (GouacheWindow *self,
                      int            response,
                      GtkInfoBar    *info_bar)
{
  g_autofree char *name = NULL;
  g_autoptr(GVariant) target = NULL;
  g_autofree char *action = g_steal_pointer (&self->info_action);

  gtk_info_bar_set_revealed (info_bar, FALSE);

  if (response != INFO_RESPONSE_ACTION || action == NULL ||
      !g_action_parse_detailed_name (action, &name, &target, NULL))
    return;

  if (g_str_has_prefix (name, "win."))
    g_action_group_activate_action (G_ACTION_GROUP (self), name + 4, target);
  else if (g_str_has_prefix (name, "app."))
    g_action_group_activate_action (G_ACTION_GROUP (gtk_window_get_application (GTK_WINDOW (self))),
                                    name + 4, target);
}

/* Recent models ------------------------------------------------------------- */

/* Puts @path first in recent-models, without duplicates, keeping at most
 * GOUACHE_RECENT_MODELS_MAX entries. */
static void
gouache_window_add_recent_model (GouacheWindow *self,
                                 const char    *path)
{
  g_auto(GStrv) recent = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_RECENT_MODELS);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) updated = NULL;
  guint n = 1;

  g_strv_builder_add (builder, path);
  for (guint i = 0; recent[i] != NULL && n < GOUACHE_RECENT_MODELS_MAX; i++)
    {
      if (g_strcmp0 (recent[i], path) == 0)
        continue;
      g_strv_builder_add (builder, recent[i]);
      n++;
    }

  updated = g_strv_builder_end (builder);
  g_settings_set_strv (self->settings, GOUACHE_SETTINGS_RECENT_MODELS,
                       (const char * const *) updated);
}

static GtkWidget *
recent_row_new (const char *path)
{
  g_autofree char *name = model_display_name (path);
  g_autofree char *dirname = g_path_get_dirname (path);
  g_autofree char *folder = gouache_path_display_name (dirname);
  GtkWidget *row, *box, *labels, *title, *subtitle, *arrow;

  title = g_object_new (GTK_TYPE_LABEL,
                        "label", name,
                        "xalign", 0.0f,
                        "ellipsize", PANGO_ELLIPSIZE_END,
                        NULL);
  subtitle = g_object_new (GTK_TYPE_LABEL,
                           "label", folder,
                           "xalign", 0.0f,
                           "ellipsize", PANGO_ELLIPSIZE_MIDDLE,
                           NULL);
  gtk_style_context_add_class (gtk_widget_get_style_context (subtitle), "dim-label");

  labels = gtk_box_new (GTK_ORIENTATION_VERTICAL, 3);
  gtk_widget_set_hexpand (labels, TRUE);
  gtk_container_add (GTK_CONTAINER (labels), title);
  gtk_container_add (GTK_CONTAINER (labels), subtitle);

  arrow = gtk_image_new_from_icon_name ("go-next-symbolic", GTK_ICON_SIZE_BUTTON);
  gtk_style_context_add_class (gtk_widget_get_style_context (arrow), "dim-label");

  box = g_object_new (GTK_TYPE_BOX,
                      "spacing", 12,
                      "margin-start", 12,
                      "margin-end", 12,
                      "margin-top", 9,
                      "margin-bottom", 9,
                      NULL);
  gtk_container_add (GTK_CONTAINER (box), labels);
  gtk_container_add (GTK_CONTAINER (box), arrow);

  row = gtk_list_box_row_new ();
  gtk_widget_set_tooltip_text (row, path);
  gtk_container_add (GTK_CONTAINER (row), box);
  g_object_set_data_full (G_OBJECT (row), "gouache-model-path", g_strdup (path), g_free);
  gtk_widget_show_all (row);

  return row;
}

/* Lists the recent models that are still on disk; hides the list when
 * there are none. */
static void
gouache_window_update_recent (GouacheWindow *self)
{
  g_auto(GStrv) recent = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_RECENT_MODELS);
  g_autoptr(GList) rows = gtk_container_get_children (GTK_CONTAINER (self->recent_list));
  gboolean any = FALSE;

  for (const GList *l = rows; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);

  for (guint i = 0; recent[i] != NULL; i++)
    {
      if (!g_file_test (recent[i], G_FILE_TEST_EXISTS))
        continue;
      gtk_container_add (GTK_CONTAINER (self->recent_list), recent_row_new (recent[i]));
      any = TRUE;
    }

  gtk_widget_set_visible (self->recent_box, any);
}

static void
recent_models_changed_cb (GouacheWindow *self,
                          const char    *key,
                          GSettings     *settings)
{
  gouache_window_update_recent (self);
}

static void
recent_list_row_activated_cb (GouacheWindow *self,
                              GtkListBoxRow *row,
                              GtkListBox    *list)
{
  const char *path = g_object_get_data (G_OBJECT (row), "gouache-model-path");
  g_autoptr(GFile) model = g_file_new_for_path (path);
  g_autoptr(GError) error = NULL;

  if (!gouache_window_open_model (self, model, &error))
    {
      gouache_window_show_model_error (self, error);
      /* Drops the row if the model was deleted since the list was built. */
      gouache_window_update_recent (self);
    }
}

/* Loading ------------------------------------------------------------------- */

static gboolean
gouache_window_has_model (GouacheWindow *self)
{
  return gouache_job_engine_get_model_path (self->engine) != NULL;
}

/* Training ------------------------------------------------------------------ */

static GouacheTrainingPage *
gouache_window_get_training_page (GouacheWindow *self)
{
  return GOUACHE_TRAINING_PAGE (gtk_stack_get_child_by_name (self->main_stack, "training"));
}

static gboolean
gouache_window_showing_training (GouacheWindow *self)
{
  return g_strcmp0 (gtk_stack_get_visible_child_name (self->main_stack), "training") == 0;
}

/* Shows the training page, with a dataset folder when one was dropped. */
static void
gouache_window_show_training (GouacheWindow *self,
                              const char    *folder)
{
  GouacheTrainingPage *page = gouache_window_get_training_page (self);

  gouache_training_page_set_model_path (page, gouache_job_engine_get_model_path (self->engine));
  if (folder != NULL)
    gouache_training_page_set_dataset (page, folder);
  gtk_stack_set_visible_child_name (self->main_stack, "training");
}

static void
training_back_cb (GouacheWindow *self)
{
  gboolean workspace = gouache_window_has_model (self) && !self->loading;

  gtk_stack_set_visible_child_name (self->main_stack, workspace ? "workspace" : "empty");
}

/* A trained style goes into the styles list (checked against the model first). */
static void
training_style_trained_cb (GouacheWindow *self,
                           const char    *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);

  _gouache_window_add_style_file (self, file);
}

/* Shows the page, the header-bar controls and the spinners that fit the state. */
static void
gouache_window_update_page (GouacheWindow *self)
{
  gboolean workspace = gouache_window_has_model (self) && !self->loading;
  g_autofree char *name = self->model_path ? model_display_name (self->model_path) : NULL;
  g_autofree char *loading = name ? g_strdup_printf (_("Loading “%s”…"), name) : NULL;

  /* A model replaced from the workspace loads in place; from the empty state, it loads there.
   * The training page stays until its Back button. */
  gouache_training_page_set_model_path (gouache_window_get_training_page (self),
                                        gouache_job_engine_get_model_path (self->engine));
  if (gouache_window_showing_training (self))
    ;
  else if (workspace)
    gtk_stack_set_visible_child_name (self->main_stack, "workspace");
  else if (!self->loading)
    gtk_stack_set_visible_child_name (self->main_stack, "empty");

  gtk_widget_set_visible (self->live_box, workspace);
  gtk_widget_set_visible (self->generate_button, workspace);
  gtk_widget_set_visible (self->presets_button, workspace);
  gtk_widget_set_visible (self->demo_bar, workspace && gouache_demo_model_is_demo (self->model_path));
  gtk_widget_set_sensitive (self->controls_box, !self->loading);

  gtk_widget_set_visible (self->loading_box, self->loading);
  gtk_widget_set_sensitive (self->empty_buttons, !self->loading);
  gtk_label_set_text (self->loading_label, loading ? loading : "");
  if (self->loading)
    gtk_spinner_start (self->loading_spinner);
  else
    gtk_spinner_stop (self->loading_spinner);

  _gouache_window_update_placeholder (self);
  _gouache_window_update_actions (self);
}

static void
load_model_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GouacheWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  gboolean loaded = gouache_job_engine_load_model_finish (GOUACHE_JOB_ENGINE (source), result, &error);

  /* Cancelled: the window closed, or another model was chosen meanwhile. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  self->loading = FALSE;
  g_clear_object (&self->load_cancellable);

  if (!loaded)
    {
      gouache_window_show_model_error (self, error);
      gtk_header_bar_set_subtitle (self->header_bar, _("No model"));
    }

  gouache_window_update_page (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_LOADED]);
  if (loaded)
    _gouache_window_model_loaded (self);
}

static void
gouache_window_load_model (GouacheWindow *self)
{
  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();

  /* Nothing the old model was doing matters any more. */
  _gouache_window_cancel (self);

  self->loading = TRUE;
  gouache_window_update_page (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_LOADED]);

  gouache_job_engine_load_model_async (self->engine, self->model_path, self->load_cancellable,
                                       load_model_cb, g_object_ref (self));
}

static void
gouache_window_open_or_show_error (GouacheWindow *self,
                                   GFile         *model)
{
  g_autoptr(GError) error = NULL;

  if (!gouache_window_open_model (self, model, &error))
    gouache_window_show_model_error (self, error);
}

static void
demo_model_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GouacheWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = gouache_demo_model_ensure_finish (result, &error);
  g_autoptr(GFile) model = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  gtk_widget_set_sensitive (self->demo_button, TRUE);
  if (path == NULL)
    {
      _gouache_window_show_error (self, error);
      return;
    }

  model = g_file_new_for_path (path);
  gouache_window_open_or_show_error (self, model);
}

/* Choosing files ------------------------------------------------------------ */

static void
chooser_response_cb (GouacheWindow   *self,
                     int              response,
                     GtkNativeDialog *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) model = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));

      gouache_window_open_or_show_error (self, model);
    }

  g_clear_object (&self->chooser);
}

/* Starts the chooser where the last model came from, if any. */
static void
gouache_window_set_chooser_folder (GouacheWindow *self)
{
  g_auto(GStrv) recent = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_RECENT_MODELS);
  g_auto(GStrv) folders = g_settings_get_strv (self->settings, GOUACHE_SETTINGS_MODEL_FOLDERS);
  g_autofree char *folder = NULL;

  if (recent[0] != NULL)
    folder = g_path_get_dirname (recent[0]);
  else if (folders[0] != NULL)
    folder = g_strdup (folders[0]);

  if (folder != NULL && g_file_test (folder, G_FILE_TEST_IS_DIR))
    gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (self->chooser), folder);
}

static void
gouache_window_open_action (GSimpleAction *action,
                            GVariant      *parameter,
                            gpointer       user_data)
{
  GouacheWindow *self = user_data;
  GtkFileFilter *filter;

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  self->chooser = gtk_file_chooser_native_new (_("Open Model"),
                                               GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_OPEN,
                                               _("_Open"),
                                               _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);

  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("Stable Diffusion models (.safetensors)"));
  gtk_file_filter_add_pattern (filter, "*.safetensors");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->chooser), filter);

  gouache_window_set_chooser_folder (self);

  g_signal_connect_object (self->chooser, "response",
                           G_CALLBACK (chooser_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
output_folder_response_cb (GouacheWindow   *self,
                           int              response,
                           GtkNativeDialog *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = g_file_get_path (folder);

      if (path != NULL)
        {
          g_settings_set_string (self->settings, GOUACHE_SETTINGS_OUTPUT_FOLDER, path);
          _gouache_window_retry_save (self);
        }
    }

  g_clear_object (&self->chooser);
}

static void
gouache_window_choose_output_folder_action (GSimpleAction *action,
                                            GVariant      *parameter,
                                            gpointer       user_data)
{
  GouacheWindow *self = user_data;

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  self->chooser = gtk_file_chooser_native_new (_("Choose a Folder for Images"),
                                               GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                               _("_Select"),
                                               _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);
  g_signal_connect_object (self->chooser, "response",
                           G_CALLBACK (output_folder_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

/* Actions ------------------------------------------------------------------- */

static void
gouache_window_open_image_action (GSimpleAction *action,
                                  GVariant      *parameter,
                                  gpointer       user_data)
{
  _gouache_window_open_image_dialog (user_data);
}

static void
gouache_window_try_demo_action (GSimpleAction *action,
                                GVariant      *parameter,
                                gpointer       user_data)
{
  GouacheWindow *self = user_data;
  g_autofree char *keys = gouache_data_file (GOUACHE_DATA_DEMO_MODEL_KEYS);

  gtk_widget_set_sensitive (self->demo_button, FALSE);
  gouache_demo_model_ensure_async (keys, self->cancellable, demo_model_cb, g_object_ref (self));
}

static void
gouache_window_generate_action (GSimpleAction *action,
                                GVariant      *parameter,
                                gpointer       user_data)
{
  _gouache_window_generate (user_data);
}

static void
gouache_window_cancel_action (GSimpleAction *action,
                              GVariant      *parameter,
                              gpointer       user_data)
{
  _gouache_window_cancel (user_data);
}

static void
gouache_window_random_seed_action (GSimpleAction *action,
                                   GVariant      *parameter,
                                   gpointer       user_data)
{
  _gouache_window_random_seed (user_data);
}

static void
gouache_window_add_style_action (GSimpleAction *action,
                                 GVariant      *parameter,
                                 gpointer       user_data)
{
  _gouache_window_add_style_dialog (user_data);
}

static void
gouache_window_retry_save_action (GSimpleAction *action,
                                  GVariant      *parameter,
                                  gpointer       user_data)
{
  _gouache_window_retry_save (user_data);
}

static void
gouache_window_save_preset_action (GSimpleAction *action,
                                   GVariant      *parameter,
                                   gpointer       user_data)
{
  _gouache_window_save_preset_dialog (user_data);
}

static void
gouache_window_undo_delete_preset_action (GSimpleAction *action,
                                          GVariant      *parameter,
                                          gpointer       user_data)
{
  _gouache_window_undo_delete_preset (user_data);
}

static void
gouache_window_import_presets_action (GSimpleAction *action,
                                      GVariant      *parameter,
                                      gpointer       user_data)
{
  _gouache_window_presets_file_dialog (user_data, GTK_FILE_CHOOSER_ACTION_OPEN);
}

static void
gouache_window_export_presets_action (GSimpleAction *action,
                                      GVariant      *parameter,
                                      gpointer       user_data)
{
  _gouache_window_presets_file_dialog (user_data, GTK_FILE_CHOOSER_ACTION_SAVE);
}

static void
gouache_window_history_open_action (GSimpleAction *action,
                                    GVariant      *parameter,
                                    gpointer       user_data)
{
  _gouache_window_history_open (user_data, g_variant_get_int64 (parameter));
}

static void
gouache_window_history_remove_action (GSimpleAction *action,
                                      GVariant      *parameter,
                                      gpointer       user_data)
{
  _gouache_window_history_remove (user_data, g_variant_get_int64 (parameter));
}

static void
gouache_window_zoom_action (GSimpleAction *action,
                            GVariant      *parameter,
                            gpointer       user_data)
{
  GouacheWindow *self = user_data;
  const char *zoom = g_variant_get_string (parameter, NULL);

  g_simple_action_set_state (action, parameter);
  gouache_preview_canvas_set_zoom (self->canvas, g_str_equal (zoom, "actual") ? GOUACHE_ZOOM_ACTUAL
                                                                               : GOUACHE_ZOOM_FIT);
}

static void
gouache_window_show_primary_menu_action (GSimpleAction *action,
                                         GVariant      *parameter,
                                         gpointer       user_data)
{
  GouacheWindow *self = user_data;

  gtk_popover_popup (gtk_menu_button_get_popover (self->primary_menu_button));
}

static void
gouache_window_train_action (GSimpleAction *action,
                             GVariant      *parameter,
                             gpointer       user_data)
{
  gouache_window_show_training (user_data, NULL);
}

static const GActionEntry win_actions[] = {
  { "open", gouache_window_open_action },
  { "train", gouache_window_train_action },
  { "open-image", gouache_window_open_image_action },
  { "try-demo", gouache_window_try_demo_action },
  { "generate", gouache_window_generate_action },
  { "cancel", gouache_window_cancel_action },
  { "random-seed", gouache_window_random_seed_action },
  { "add-style", gouache_window_add_style_action },
  { "choose-output-folder", gouache_window_choose_output_folder_action },
  { "retry-save", gouache_window_retry_save_action },
  { "save-preset", gouache_window_save_preset_action },
  { "undo-delete-preset", gouache_window_undo_delete_preset_action },
  { "import-presets", gouache_window_import_presets_action },
  { "export-presets", gouache_window_export_presets_action },
  { "history-open", gouache_window_history_open_action, "x" },
  { "history-remove", gouache_window_history_remove_action, "x" },
  { "zoom", NULL, "s", "'fit'", gouache_window_zoom_action },
  { "show-primary-menu", gouache_window_show_primary_menu_action },
};

static void
set_action_enabled (GouacheWindow *self,
                    const char    *name,
                    gboolean       enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);

  g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

/* Enables what makes sense now. Disabled actions also free their shortcuts (Escape) for
 * the focused widget. */
void
_gouache_window_update_actions (GouacheWindow *self)
{
  gboolean ready = gouache_window_has_model (self) && !self->loading;

  set_action_enabled (self, "generate", ready && !self->full_running);
  set_action_enabled (self, "cancel", self->full_running || self->preview_running);
  set_action_enabled (self, "add-style", ready);
  set_action_enabled (self, "random-seed", ready);
  set_action_enabled (self, "save-preset", ready && self->presets != NULL);
  set_action_enabled (self, "import-presets", self->presets != NULL);
  set_action_enabled (self, "export-presets", self->presets != NULL);
}

/* Drag and drop ------------------------------------------------------------- */

/* A dropped PNG is opened as an image, a style file becomes a style, a folder of images is
 * a dataset to train a style on, anything else is taken for a model. */
static void
gouache_window_drop_file (GouacheWindow *self,
                          GFile         *file)
{
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *folded = path ? g_ascii_strdown (path, -1) : NULL;

  if (folded != NULL && g_str_has_suffix (folded, ".png"))
    _gouache_window_open_image (self, file);
  else if (path != NULL && g_file_test (path, G_FILE_TEST_IS_DIR) && !is_diffusers_folder (file))
    gouache_window_show_training (self, path);
  else if (path != NULL && _gouache_window_is_style_file (path))
    _gouache_window_add_style_file (self, file);
  else
    gouache_window_open_or_show_error (self, file);
}

static void
gouache_window_drag_data_received (GtkWidget        *widget,
                                   GdkDragContext   *context,
                                   int               x,
                                   int               y,
                                   GtkSelectionData *data,
                                   guint             info,
                                   guint             time)
{
  GouacheWindow *self = GOUACHE_WINDOW (widget);
  g_auto(GStrv) uris = gtk_selection_data_get_uris (data);

  for (guint i = 0; uris != NULL && uris[i] != NULL; i++)
    {
      g_autoptr(GFile) file = g_file_new_for_uri (uris[i]);

      gouache_window_drop_file (self, file);
    }
}

/* Window state -------------------------------------------------------------- */

static void
gouache_window_size_allocate (GtkWidget     *widget,
                              GtkAllocation *allocation)
{
  GouacheWindow *self = GOUACHE_WINDOW (widget);

  GTK_WIDGET_CLASS (gouache_window_parent_class)->size_allocate (widget, allocation);

  if (!self->maximized)
    gtk_window_get_size (GTK_WINDOW (self), &self->width, &self->height);
}

static gboolean
gouache_window_window_state_event (GtkWidget           *widget,
                                   GdkEventWindowState *event)
{
  GouacheWindow *self = GOUACHE_WINDOW (widget);

  self->maximized = (event->new_window_state & GDK_WINDOW_STATE_MAXIMIZED) != 0;

  return GTK_WIDGET_CLASS (gouache_window_parent_class)->window_state_event (widget, event);
}

static void
gouache_window_save_state (GouacheWindow *self)
{
  g_settings_set_int (self->settings, GOUACHE_SETTINGS_WINDOW_WIDTH, MAX (self->width, 1));
  g_settings_set_int (self->settings, GOUACHE_SETTINGS_WINDOW_HEIGHT, MAX (self->height, 1));
  g_settings_set_boolean (self->settings, GOUACHE_SETTINGS_WINDOW_MAXIMIZED, self->maximized);
}

static void
threads_changed_cb (GouacheWindow *self,
                    const char    *key,
                    GSettings     *settings)
{
  gouache_job_engine_set_threads (self->engine, g_settings_get_int (settings, GOUACHE_SETTINGS_THREADS));
}

/* The object ---------------------------------------------------------------- */

static void
gouache_window_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  GouacheWindow *self = GOUACHE_WINDOW (object);

  switch (prop_id)
    {
    case PROP_MODEL_PATH:
      g_value_set_string (value, self->model_path);
      break;

    case PROP_MODEL_LOADED:
      g_value_set_boolean (value, gouache_window_has_model (self) && !self->loading);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* The engine lives on until its cancelled jobs come back (they hold it); the application
 * waits for it, so the process never exits under a running engine thread. */
static void
gouache_window_release_engine (GouacheWindow *self)
{
  GtkApplication *application = gtk_window_get_application (GTK_WINDOW (self));

  if (self->engine == NULL)
    return;

  if (GOUACHE_IS_APPLICATION (application))
    _gouache_application_hold_until_finalized (GOUACHE_APPLICATION (application), G_OBJECT (self->engine));
  g_clear_object (&self->engine);
}

static void
gouache_window_dispose (GObject *object)
{
  GouacheWindow *self = GOUACHE_WINDOW (object);

  /* Closing the window stops all its work: the engine drops cancelled jobs between steps. */
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  _gouache_window_generate_dispose (self);

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  if (self->settings != NULL)
    gouache_window_save_state (self);
  g_clear_object (&self->settings);
  g_clear_object (&self->load_cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->history);
  g_clear_object (&self->presets);
  g_clear_pointer (&self->deleted_preset, gouache_preset_free);
  gouache_window_release_engine (self);

  G_OBJECT_CLASS (gouache_window_parent_class)->dispose (object);
}

static void
gouache_window_finalize (GObject *object)
{
  GouacheWindow *self = GOUACHE_WINDOW (object);

  g_clear_pointer (&self->model_path, g_free);
  g_clear_pointer (&self->info_action, g_free);

  G_OBJECT_CLASS (gouache_window_parent_class)->finalize (object);
}

static void
gouache_window_class_init (GouacheWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gouache_window_dispose;
  object_class->finalize = gouache_window_finalize;
  object_class->get_property = gouache_window_get_property;

  widget_class->drag_data_received = gouache_window_drag_data_received;
  widget_class->size_allocate = gouache_window_size_allocate;
  widget_class->window_state_event = gouache_window_window_state_event;

  /**
   * GouacheWindow:model-path:
   *
   * The file or diffusers folder of the chosen model, or %NULL.
   */
  properties[PROP_MODEL_PATH] =
    g_param_spec_string ("model-path", NULL, NULL,
                         NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GouacheWindow:model-loaded:
   *
   * Whether the chosen model is loaded and the workspace shows.
   */
  properties[PROP_MODEL_LOADED] =
    g_param_spec_boolean ("model-loaded", NULL, NULL,
                          FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GouacheWindow::model-chosen:
   * @self: the window
   * @model: the #GFile of the model
   *
   * Emitted when a model was picked in the chooser, from the recent list or
   * by dropping it on the window, after the checks of
   * gouache_window_open_model() passed, as its loading starts.
   */
  signals[MODEL_CHOSEN] =
    g_signal_new ("model-chosen",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_FILE);

  /**
   * GouacheWindow::preview-finished:
   * @self: the window
   *
   * Emitted when a live preview has drawn its decoded image on the canvas.
   */
  signals[PREVIEW_FINISHED] =
    g_signal_new ("preview-finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * GouacheWindow::image-saved:
   * @self: the window
   * @path: the PNG written
   *
   * Emitted when a full generation was saved and added to the history.
   */
  signals[IMAGE_SAVED] =
    g_signal_new ("image-saved",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-window.ui");
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, canvas);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, canvas_placeholder);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, canvas_placeholder_icon);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, canvas_placeholder_title);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, canvas_spinner);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, cfg_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, controls_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, demo_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, demo_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, empty_buttons);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, generate_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, header_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, height_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, history_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, history_revealer);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, info_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, info_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, live_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, live_switch);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, loading_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, loading_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, loading_spinner);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, negative_view);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, presets_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, presets_list);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, preview_progress);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, primary_menu_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, progress_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, progress_revealer);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, prompt_view);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, recent_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, recent_list);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, sampler_combo);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, sampler_store);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, schedule_combo);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, schedule_store);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, seed_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, steps_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, styles_list);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, width_adjustment);
  gtk_widget_class_bind_template_callback (widget_class, info_bar_response_cb);
  gtk_widget_class_bind_template_callback (widget_class, recent_list_row_activated_cb);
  gtk_widget_class_bind_template_callback_full (widget_class, "sampler_changed_cb",
                                                G_CALLBACK (_gouache_window_sampler_changed_cb));
  gtk_widget_class_bind_template_callback_full (widget_class, "setting_changed_cb",
                                                G_CALLBACK (_gouache_window_setting_changed_cb));
  gtk_widget_class_bind_template_callback_full (widget_class, "history_child_activated_cb",
                                                G_CALLBACK (_gouache_window_history_child_activated_cb));
  gtk_widget_class_bind_template_callback_full (widget_class, "presets_popover_show_cb",
                                                G_CALLBACK (_gouache_window_presets_popover_show_cb));
  gtk_widget_class_bind_template_callback_full (widget_class, "presets_row_activated_cb",
                                                G_CALLBACK (_gouache_window_presets_row_activated_cb));

  g_type_ensure (GOUACHE_TYPE_PREVIEW_CANVAS);
  g_type_ensure (GOUACHE_TYPE_PROMPT_VIEW);
  g_type_ensure (GOUACHE_TYPE_TRAINING_PAGE);
}

static void
gouache_window_init (GouacheWindow *self)
{
  g_autofree char *vocabulary = gouache_data_file (GOUACHE_DATA_VOCABULARY);

  gtk_widget_init_template (GTK_WIDGET (self));

  self->cancellable = g_cancellable_new ();
  self->settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  self->width = g_settings_get_int (self->settings, GOUACHE_SETTINGS_WINDOW_WIDTH);
  self->height = g_settings_get_int (self->settings, GOUACHE_SETTINGS_WINDOW_HEIGHT);
  self->maximized = g_settings_get_boolean (self->settings, GOUACHE_SETTINGS_WINDOW_MAXIMIZED);

  gtk_window_set_default_size (GTK_WINDOW (self), self->width, self->height);
  if (self->maximized)
    gtk_window_maximize (GTK_WINDOW (self));

  self->engine = gouache_job_engine_new (vocabulary);
  gouache_job_engine_set_threads (self->engine, g_settings_get_int (self->settings, GOUACHE_SETTINGS_THREADS));
  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_THREADS,
                           G_CALLBACK (threads_changed_cb), self, G_CONNECT_SWAPPED);

  g_action_map_add_action_entries (G_ACTION_MAP (self),
                                   win_actions, G_N_ELEMENTS (win_actions),
                                   self);

  gtk_drag_dest_set (GTK_WIDGET (self), GTK_DEST_DEFAULT_ALL, NULL, 0, GDK_ACTION_COPY);
  gtk_drag_dest_add_uri_targets (GTK_WIDGET (self));

  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_RECENT_MODELS,
                           G_CALLBACK (recent_models_changed_cb), self,
                           G_CONNECT_SWAPPED);
  gouache_window_update_recent (self);

  g_signal_connect_object (gouache_window_get_training_page (self), "back",
                           G_CALLBACK (training_back_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (gouache_window_get_training_page (self), "style-trained",
                           G_CALLBACK (training_style_trained_cb), self, G_CONNECT_SWAPPED);

  _gouache_window_generate_init (self);
  _gouache_window_history_init (self);
  _gouache_window_presets_init (self);
  gouache_window_update_page (self);
}

void
_gouache_window_emit_preview_finished (GouacheWindow *self)
{
  g_signal_emit (self, signals[PREVIEW_FINISHED], 0);
}

void
_gouache_window_emit_image_saved (GouacheWindow *self,
                                  const char    *path)
{
  g_signal_emit (self, signals[IMAGE_SAVED], 0, path);
}

/**
 * gouache_window_new:
 * @application: the application that owns the window
 *
 * Returns: (transfer none): a new main window, owned by GTK until it is destroyed
 */
GouacheWindow *
gouache_window_new (GouacheApplication *application)
{
  g_return_val_if_fail (GOUACHE_IS_APPLICATION (application), NULL);

  return g_object_new (GOUACHE_TYPE_WINDOW,
                       "application", application,
                       NULL);
}

/**
 * gouache_window_get_model_path:
 * @self: a #GouacheWindow
 *
 * Returns: (nullable): the path of the chosen model, or %NULL before one is chosen
 */
const char *
gouache_window_get_model_path (GouacheWindow *self)
{
  g_return_val_if_fail (GOUACHE_IS_WINDOW (self), NULL);

  return self->model_path;
}

/**
 * gouache_window_get_model_loaded:
 * @self: a #GouacheWindow
 *
 * Returns: see #GouacheWindow:model-loaded
 */
gboolean
gouache_window_get_model_loaded (GouacheWindow *self)
{
  g_return_val_if_fail (GOUACHE_IS_WINDOW (self), FALSE);

  return gouache_window_has_model (self) && !self->loading;
}

/**
 * gouache_window_open_model:
 * @self: a #GouacheWindow
 * @model: a .safetensors file or a diffusers model folder
 * @error: return location for a #GError
 *
 * Makes @model the window's model: checks that it is something the engine
 * reads, puts it first in the recent models (the demo model excepted), shows
 * its name in the header bar, updates #GouacheWindow:model-path, emits
 * #GouacheWindow::model-chosen and starts loading it on the engine's thread.
 * The file chooser, the recent list and drag and drop all end here. A model
 * that passes these checks but fails to load is reported in the info bar.
 *
 * Returns: %TRUE on success, %FALSE with @error set (%G_IO_ERROR_NOT_FOUND or
 *   %G_IO_ERROR_NOT_SUPPORTED) when @model cannot be used
 */
gboolean
gouache_window_open_model (GouacheWindow  *self,
                           GFile          *model,
                           GError        **error)
{
  g_autofree char *path = NULL;
  g_autofree char *name = NULL;

  g_return_val_if_fail (GOUACHE_IS_WINDOW (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (model), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_model_file (model, error))
    return FALSE;

  path = g_file_get_path (model);
  name = model_display_name (path);

  if (!gouache_demo_model_is_demo (path))
    gouache_window_add_recent_model (self, path);
  gtk_header_bar_set_subtitle (self->header_bar, name);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->header_bar), path);
  _gouache_window_hide_message (self);

  g_free (self->model_path);
  self->model_path = g_steal_pointer (&path);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_PATH]);

  g_signal_emit (self, signals[MODEL_CHOSEN], 0, model);
  gouache_window_load_model (self);

  return TRUE;
}

/**
 * gouache_window_open_image:
 * @self: a #GouacheWindow
 * @image: a PNG, from Gouache or from another Stable Diffusion tool
 *
 * Shows @image and restores the settings its "parameters" text holds (File › Open Image…
 * and dropped PNGs end here). Problems are reported in the info bar.
 */
void
gouache_window_open_image (GouacheWindow *self,
                           GFile         *image)
{
  g_return_if_fail (GOUACHE_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (image));

  _gouache_window_open_image (self, image);
}

/**
 * gouache_window_add_style:
 * @self: a #GouacheWindow
 * @style: a LoRA file
 *
 * Adds @style to the styles list once the engine has checked it fits the loaded model (the
 * + button and dropped LoRAs end here). Problems are reported in the info bar.
 */
void
gouache_window_add_style (GouacheWindow *self,
                          GFile         *style)
{
  g_return_if_fail (GOUACHE_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (style));

  _gouache_window_add_style_file (self, style);
}

/**
 * gouache_window_import_presets:
 * @self: a #GouacheWindow
 * @file: a JSON file of presets (what gouache_window_export_presets() writes)
 *
 * Adds the presets of @file (Presets › Import Presets… ends here); the info bar says how
 * many, or why none.
 */
void
gouache_window_import_presets (GouacheWindow *self,
                               GFile         *file)
{
  g_return_if_fail (GOUACHE_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  if (self->presets != NULL)
    _gouache_window_import_presets (self, file);
}

/**
 * gouache_window_export_presets:
 * @self: a #GouacheWindow
 * @file: the JSON file to write
 *
 * Writes every preset to @file (Presets › Export Presets… ends here).
 */
void
gouache_window_export_presets (GouacheWindow *self,
                               GFile         *file)
{
  g_return_if_fail (GOUACHE_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  if (self->presets != NULL)
    _gouache_window_export_presets (self, file);
}

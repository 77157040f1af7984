/* gouache-window.c: the main window
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-window"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "gouache-application.h"
#include "gouache-config-keys.h"
#include "gouache-path.h"
#include "gouache-window.h"

struct _GouacheWindow
{
  GtkApplicationWindow  parent_instance;

  /* Template widgets */
  GtkHeaderBar         *header_bar;
  GtkInfoBar           *info_bar;
  GtkLabel             *info_label;
  GtkMenuButton        *primary_menu_button;
  GtkWidget            *recent_box;
  GtkListBox           *recent_list;

  /* Owned references */
  GSettings            *settings;
  GtkFileChooserNative *chooser;
  char                 *model_path;

  /* Size while not maximized, and whether maximized: saved on dispose */
  int                   width;
  int                   height;
  gboolean              maximized;
};

G_DEFINE_FINAL_TYPE (GouacheWindow, gouache_window, GTK_TYPE_APPLICATION_WINDOW)

enum {
  PROP_0,
  PROP_MODEL_PATH,
  N_PROPS
};

enum {
  MODEL_CHOSEN,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* The name people know a model by: its file name without ".safetensors",
 * or the folder name of a diffusers layout. */
static char *
model_display_name (const char *path)
{
  g_autofree char *basename = g_path_get_basename (path);
  g_autofree char *name = g_filename_display_name (basename);
  g_autofree char *folded = g_ascii_strdown (name, -1);

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

static void
gouache_window_show_error (GouacheWindow *self,
                           const GError  *error)
{
  gtk_label_set_text (self->info_label, error->message);
  gtk_info_bar_set_revealed (self->info_bar, TRUE);
}

static void
gouache_window_open_or_show_error (GouacheWindow *self,
                                   GFile         *model)
{
  g_autoptr(GError) error = NULL;

  if (!gouache_window_open_model (self, model, &error))
    gouache_window_show_error (self, error);
}

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
      gouache_window_show_error (self, error);
      /* Drops the row if the model was deleted since the list was built. */
      gouache_window_update_recent (self);
    }
}

static void
info_bar_response_cb (GouacheWindow *self,
                      int            response,
                      GtkInfoBar    *info_bar)
{
  gtk_info_bar_set_revealed (info_bar, FALSE);
}

static void
chooser_response_cb (GouacheWindow  *self,
                     int             response,
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
    {
      gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
      return;
    }

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
gouache_window_show_primary_menu_action (GSimpleAction *action,
                                         GVariant      *parameter,
                                         gpointer       user_data)
{
  GouacheWindow *self = user_data;

  gtk_popover_popup (gtk_menu_button_get_popover (self->primary_menu_button));
}

static const GActionEntry win_actions[] = {
  { "open", gouache_window_open_action },
  { "show-primary-menu", gouache_window_show_primary_menu_action },
};

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

  if (uris != NULL && uris[0] != NULL)
    {
      g_autoptr(GFile) model = g_file_new_for_uri (uris[0]);

      gouache_window_open_or_show_error (self, model);
    }
}

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

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_window_dispose (GObject *object)
{
  GouacheWindow *self = GOUACHE_WINDOW (object);

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);

  if (self->settings != NULL)
    gouache_window_save_state (self);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (gouache_window_parent_class)->dispose (object);
}

static void
gouache_window_finalize (GObject *object)
{
  GouacheWindow *self = GOUACHE_WINDOW (object);

  g_clear_pointer (&self->model_path, g_free);

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

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GouacheWindow::model-chosen:
   * @self: the window
   * @model: the #GFile of the model
   *
   * Emitted when a model was picked in the chooser, from the recent list or
   * by dropping it on the window, after the checks of
   * gouache_window_open_model() passed.
   */
  signals[MODEL_CHOSEN] =
    g_signal_new ("model-chosen",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_FILE);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-window.ui");
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, header_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, info_bar);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, info_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, primary_menu_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, recent_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheWindow, recent_list);
  gtk_widget_class_bind_template_callback (widget_class, info_bar_response_cb);
  gtk_widget_class_bind_template_callback (widget_class, recent_list_row_activated_cb);
}

static void
gouache_window_init (GouacheWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  self->width = g_settings_get_int (self->settings, GOUACHE_SETTINGS_WINDOW_WIDTH);
  self->height = g_settings_get_int (self->settings, GOUACHE_SETTINGS_WINDOW_HEIGHT);
  self->maximized = g_settings_get_boolean (self->settings, GOUACHE_SETTINGS_WINDOW_MAXIMIZED);

  gtk_window_set_default_size (GTK_WINDOW (self), self->width, self->height);
  if (self->maximized)
    gtk_window_maximize (GTK_WINDOW (self));

  g_action_map_add_action_entries (G_ACTION_MAP (self),
                                   win_actions, G_N_ELEMENTS (win_actions),
                                   self);

  gtk_drag_dest_set (GTK_WIDGET (self), GTK_DEST_DEFAULT_ALL, NULL, 0, GDK_ACTION_COPY);
  gtk_drag_dest_add_uri_targets (GTK_WIDGET (self));

  g_signal_connect_object (self->settings, "changed::" GOUACHE_SETTINGS_RECENT_MODELS,
                           G_CALLBACK (recent_models_changed_cb), self,
                           G_CONNECT_SWAPPED);
  gouache_window_update_recent (self);
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
 * gouache_window_open_model:
 * @self: a #GouacheWindow
 * @model: a .safetensors file or a diffusers model folder
 * @error: return location for a #GError
 *
 * Makes @model the window's model: checks that it is something the engine
 * reads, puts it first in the recent models, shows its name in the header
 * bar, updates #GouacheWindow:model-path and emits #GouacheWindow::model-chosen.
 * The file chooser, the recent list and drag and drop all end here.
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

  gouache_window_add_recent_model (self, path);
  gtk_header_bar_set_subtitle (self->header_bar, name);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->header_bar), path);
  gtk_info_bar_set_revealed (self->info_bar, FALSE);

  g_free (self->model_path);
  self->model_path = g_steal_pointer (&path);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_PATH]);

  g_signal_emit (self, signals[MODEL_CHOSEN], 0, model);

  return TRUE;
}

/* test-gui-shell.c: drives the real window under Xvfb
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Runs with GSETTINGS_BACKEND=memory and the schema compiled in the build
 * tree (see tests/meson.build). Screenshots land in G_TEST_BUILDDIR.
 */

#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <string.h>

#include "gouache-config-keys.h"
#include "gouache-preferences-dialog.h"
#include "gui-test-support.h"

/* Nothing here is slow: a wait longer than this is a hang. */
#define WAIT_SECONDS 5

static GouacheApplication *application;
static GSettings *settings;
static char *models_dir;

/* Helpers ---------------------------------------------------------------- */

/* The list under "Recent Models" (the window has other lists: styles, presets). */
static GtkWidget *
find_recent_list (GtkWidget *window)
{
  GtkWidget *title = find_widget (window, is_label_with_text, "Recent Models");

  g_assert_nonnull (title);
  return find_widget (gtk_widget_get_parent (title), is_of_type, GSIZE_TO_POINTER (GTK_TYPE_LIST_BOX));
}

/* The colour at the centre of @widget's left edge, inside @window's shot. */
static void
pixel_inside (GdkPixbuf *shot,
              GtkWidget *window,
              GtkWidget *widget,
              guchar     rgb[3])
{
  int x, y;
  const guchar *p;

  g_assert_true (gtk_widget_translate_coordinates (widget, window, 4,
                                                   gtk_widget_get_allocated_height (widget) / 2,
                                                   &x, &y));
  g_assert_cmpint (x, <, gdk_pixbuf_get_width (shot));
  g_assert_cmpint (y, <, gdk_pixbuf_get_height (shot));

  p = gdk_pixbuf_read_pixels (shot) + y * gdk_pixbuf_get_rowstride (shot)
      + x * gdk_pixbuf_get_n_channels (shot);
  memcpy (rgb, p, 3);
}

/* Fixtures --------------------------------------------------------------- */

static char *
make_file (const char *name)
{
  char *path = g_build_filename (models_dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, "", 0, &error);
  g_assert_no_error (error);
  return path;
}

static gboolean
open_path (const char  *path,
           GError     **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);

  return gouache_window_open_model (get_window (), file, error);
}

/* Tests ------------------------------------------------------------------ */

static void
test_empty_state (void)
{
  GtkWidget *window = GTK_WIDGET (get_window ());
  GtkWidget *header_bar = gtk_window_get_titlebar (GTK_WINDOW (window));
  GtkWidget *title, *button, *recent;
  g_autoptr(GdkPixbuf) shot = NULL;
  guchar rgb[3];

  g_assert_true (gtk_widget_get_mapped (window));
  g_assert_cmpstr (gtk_window_get_title (GTK_WINDOW (window)), ==, "Gouache");
  g_assert_cmpstr (gtk_header_bar_get_title (GTK_HEADER_BAR (header_bar)), ==, "Gouache");
  g_assert_cmpstr (gtk_header_bar_get_subtitle (GTK_HEADER_BAR (header_bar)), ==, "No model");
  g_assert_null (gouache_window_get_model_path (GOUACHE_WINDOW (window)));

  title = find_widget (window, is_label_with_text, "No Model Loaded");
  button = find_widget (window, is_button_with_label, "_Open Model…");
  recent = find_widget (window, is_label_with_text, "Recent Models");
  g_assert_nonnull (title);
  g_assert_nonnull (button);
  g_assert_nonnull (recent);
  g_assert_true (gtk_widget_get_mapped (title));
  g_assert_true (gtk_widget_get_mapped (button));
  g_assert_false (gtk_widget_get_mapped (recent));
  g_assert_cmpstr (gtk_actionable_get_action_name (GTK_ACTIONABLE (button)), ==, "win.open");
  g_assert_true (gtk_style_context_has_class (gtk_widget_get_style_context (button),
                                              "suggested-action"));

  shot = take_screenshot (window, "gui-shell-empty.png");

  /* The suggested action is drawn blue. */
  pixel_inside (shot, window, button, rgb);
  g_assert_cmpint (rgb[2], >, rgb[0] + 60);
}

static void
model_chosen_cb (GouacheWindow *window,
                 GFile         *model,
                 gpointer       user_data)
{
  GFile **chosen = user_data;

  g_set_object (chosen, model);
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  guint *count = user_data;

  (*count)++;
}

static void
test_open_model (void)
{
  GouacheWindow *window = get_window ();
  GtkWidget *header_bar = gtk_window_get_titlebar (GTK_WINDOW (window));
  g_autofree char *model = make_file ("Dreamy Painter v2.safetensors");
  g_autoptr(GFile) chosen = NULL;
  g_autoptr(GdkPixbuf) shot = NULL;
  g_auto(GStrv) recent = NULL;
  GtkWidget *list;
  guint notified = 0;

  g_signal_connect (window, "model-chosen", G_CALLBACK (model_chosen_cb), &chosen);
  g_signal_connect (window, "notify::model-path", G_CALLBACK (count_notify_cb), &notified);

  g_assert_true (open_path (model, NULL));

  g_assert_cmpstr (gouache_window_get_model_path (window), ==, model);
  g_assert_cmpstr (gtk_header_bar_get_subtitle (GTK_HEADER_BAR (header_bar)), ==, "Dreamy Painter v2");
  g_assert_cmpuint (notified, ==, 1);
  g_assert_nonnull (chosen);
  g_assert_cmpstr (g_file_peek_path (chosen), ==, model);

  recent = g_settings_get_strv (settings, GOUACHE_SETTINGS_RECENT_MODELS);
  g_assert_cmpuint (g_strv_length (recent), ==, 1);
  g_assert_cmpstr (recent[0], ==, model);

  list = find_recent_list (GTK_WIDGET (window));
  g_assert_nonnull (list);
  g_assert_cmpuint (count_children (GTK_CONTAINER (list)), ==, 1);
  g_assert_true (gtk_widget_get_mapped (list));

  g_signal_handlers_disconnect_by_data (window, &chosen);
  g_signal_handlers_disconnect_by_data (window, &notified);
}

static void
test_recent_models (void)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  const char *kept[4] = { NULL };
  g_auto(GStrv) recent = NULL;
  g_autoptr(GdkPixbuf) shot = NULL;
  GtkWidget *window = GTK_WIDGET (get_window ());
  GtkWidget *list;

  for (guint i = 0; i < 12; i++)
    {
      g_autofree char *name = g_strdup_printf ("style-%02u.safetensors", i);

      g_ptr_array_add (paths, make_file (name));
      g_assert_true (open_path (paths->pdata[i], NULL));
    }

  /* Reopening one moves it to the front without a duplicate. */
  g_assert_true (open_path (paths->pdata[9], NULL));

  recent = g_settings_get_strv (settings, GOUACHE_SETTINGS_RECENT_MODELS);
  g_assert_cmpuint (g_strv_length (recent), ==, GOUACHE_RECENT_MODELS_MAX);
  g_assert_cmpstr (recent[0], ==, paths->pdata[9]);
  g_assert_cmpstr (recent[1], ==, paths->pdata[11]);
  g_assert_cmpstr (recent[2], ==, paths->pdata[10]);
  g_assert_cmpstr (recent[3], ==, paths->pdata[8]);
  g_assert_cmpstr (recent[9], ==, paths->pdata[2]);

  list = find_recent_list (window);
  g_assert_cmpuint (count_children (GTK_CONTAINER (list)), ==, GOUACHE_RECENT_MODELS_MAX);

  /* Keep three, and delete one of them: models gone from disk are not offered. */
  kept[0] = recent[0];
  kept[1] = recent[1];
  kept[2] = recent[2];
  g_assert_cmpint (g_unlink (paths->pdata[11]), ==, 0);
  g_settings_set_strv (settings, GOUACHE_SETTINGS_RECENT_MODELS, kept);
  g_assert_cmpuint (count_children (GTK_CONTAINER (list)), ==, 2);
  shot = take_screenshot (window, "gui-shell-recent.png");
}

static void
test_refused_models (void)
{
  GouacheWindow *window = get_window ();
  const char *before = gouache_window_get_model_path (window);
  g_autofree char *kept = g_strdup (before);
  g_autofree char *pickle = make_file ("old.ckpt");
  g_autofree char *text = make_file ("notes.txt");
  g_autofree char *missing = g_build_filename (models_dir, "gone.safetensors", NULL);
  g_autofree char *folder = g_build_filename (models_dir, "not-a-model", NULL);
  g_autofree char *diffusers = g_build_filename (models_dir, "sd-diffusers", NULL);
  g_autofree char *unet = g_build_filename (diffusers, "unet", NULL);
  g_autofree char *vanishing = make_file ("Vanishing.safetensors");
  g_autoptr(GdkPixbuf) shot = NULL;
  g_autoptr(GError) error = NULL;
  GtkWidget *list, *row, *info_bar;
  guint rows;

  g_assert_false (open_path (pickle, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "pickle"));
  g_clear_error (&error);

  g_assert_false (open_path (text, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_assert_false (open_path (missing, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_cmpint (g_mkdir (folder, 0700), ==, 0);
  g_assert_false (open_path (folder, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_assert_cmpstr (gouache_window_get_model_path (window), ==, kept);

  /* A recent model deleted while listed: activating it explains, in the info bar. */
  g_assert_true (open_path (vanishing, NULL));
  g_assert_cmpint (g_unlink (vanishing), ==, 0);
  list = find_recent_list (GTK_WIDGET (window));
  rows = count_children (GTK_CONTAINER (list));
  row = GTK_WIDGET (gtk_list_box_get_row_at_index (GTK_LIST_BOX (list), 0));
  g_assert_true (gtk_widget_activate (row));
  info_bar = find_widget (GTK_WIDGET (window), is_of_type, GSIZE_TO_POINTER (GTK_TYPE_INFO_BAR));
  g_assert_true (gtk_info_bar_get_revealed (GTK_INFO_BAR (info_bar)));
  g_assert_nonnull (find_widget (info_bar, is_label_with_text, "“Vanishing.safetensors” no longer exists."));
  g_assert_cmpuint (count_children (GTK_CONTAINER (list)), ==, rows - 1);
  shot = take_screenshot (GTK_WIDGET (window), "gui-shell-error.png");
  gtk_info_bar_response (GTK_INFO_BAR (info_bar), GTK_RESPONSE_CLOSE);
  g_assert_false (gtk_info_bar_get_revealed (GTK_INFO_BAR (info_bar)));
  g_assert_false (open_path (vanishing, NULL));

  /* A diffusers folder is a model. */
  g_assert_cmpint (g_mkdir_with_parents (unet, 0700), ==, 0);
  g_assert_true (open_path (diffusers, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (gouache_window_get_model_path (window), ==, diffusers);
  g_assert_cmpstr (gtk_header_bar_get_subtitle (GTK_HEADER_BAR (gtk_window_get_titlebar (GTK_WINDOW (window)))),
                   ==, "sd-diffusers");
}

static GtkWidget *
find_preferences_dialog (void)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (const GList *l = toplevels; l != NULL; l = l->next)
    if (GOUACHE_IS_PREFERENCES_DIALOG (l->data))
      return l->data;

  return NULL;
}

static void
test_preferences (void)
{
  g_autofree char *folder = g_build_filename (models_dir, "checkpoints", NULL);
  const char *folders[] = { folder, NULL };
  g_autofree char *output = NULL;
  g_autoptr(GdkPixbuf) shot = NULL;
  GtkWidget *dialog, *threads, *width, *reset;

  g_assert_cmpint (g_mkdir_with_parents (folder, 0700), ==, 0);
  g_settings_set_strv (settings, GOUACHE_SETTINGS_MODEL_FOLDERS, folders);
  g_settings_set_int (settings, GOUACHE_SETTINGS_THREADS, 1);

  g_action_group_activate_action (G_ACTION_GROUP (application), "preferences", NULL);
  dialog = find_preferences_dialog ();
  g_assert_nonnull (dialog);
  wait_for_paint (dialog);
  g_assert_true (gtk_widget_get_mapped (dialog));

  /* A second activation presents the same dialog. */
  g_action_group_activate_action (G_ACTION_GROUP (application), "preferences", NULL);
  g_assert_true (find_preferences_dialog () == dialog);

  /* Bound both ways to GSettings. */
  threads = find_widget (dialog, is_of_type, GSIZE_TO_POINTER (GTK_TYPE_SPIN_BUTTON));
  g_assert_nonnull (threads);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (threads)), ==, 1);
  g_settings_set_int (settings, GOUACHE_SETTINGS_THREADS, 0);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (threads)), ==, 0);

  width = gtk_label_get_mnemonic_widget (GTK_LABEL (find_widget (dialog, is_label_with_text, "Width")));
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (width)), ==, 256);
  gtk_entry_set_text (GTK_ENTRY (width), "299");
  gtk_spin_button_update (GTK_SPIN_BUTTON (width));
  g_assert_cmpint (g_settings_get_int (settings, GOUACHE_SETTINGS_PREVIEW_WIDTH), ==, 296);
  g_settings_reset (settings, GOUACHE_SETTINGS_PREVIEW_WIDTH);

  /* The folder list follows the setting. */
  g_assert_nonnull (find_widget (dialog, is_label_with_text, folder));
  g_settings_set_strv (settings, GOUACHE_SETTINGS_MODEL_FOLDERS, NULL);
  g_assert_null (find_widget (dialog, is_label_with_text, folder));
  g_assert_nonnull (find_widget (dialog, is_label_with_text, "No folders added"));
  g_settings_set_strv (settings, GOUACHE_SETTINGS_MODEL_FOLDERS, folders);

  /* The default output folder has nothing to reset; a chosen one has. */
  reset = find_widget (dialog, has_tooltip, "Use the Default Folder");
  g_assert_nonnull (reset);
  g_assert_false (gtk_widget_get_sensitive (reset));
  g_settings_set_string (settings, GOUACHE_SETTINGS_OUTPUT_FOLDER, folder);
  g_assert_true (gtk_widget_get_sensitive (reset));
  g_assert_nonnull (find_widget (dialog, is_label_with_text, folder));
  gtk_button_clicked (GTK_BUTTON (reset));
  output = g_settings_get_string (settings, GOUACHE_SETTINGS_OUTPUT_FOLDER);
  g_assert_cmpstr (output, ==, "");
  g_assert_false (gtk_widget_get_sensitive (reset));

  shot = take_screenshot (dialog, "gui-shell-preferences.png");

  gtk_window_close (GTK_WINDOW (dialog));
  drain_main_loop ();
  g_assert_null (find_preferences_dialog ());
}

static void
test_file_chooser (void)
{
  GouacheWindow *window = get_window ();
  GtkWidget *chooser;
  GtkFileFilter *filter;

  /* Outside a sandbox GtkFileChooserNative shows a GtkFileChooserDialog. */
  g_action_group_activate_action (G_ACTION_GROUP (window), "open", NULL);
  chooser = find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG);
  g_assert_nonnull (chooser);
  g_assert_true (gtk_window_get_transient_for (GTK_WINDOW (chooser)) == GTK_WINDOW (window));
  g_assert_cmpint (gtk_file_chooser_get_action (GTK_FILE_CHOOSER (chooser)), ==, GTK_FILE_CHOOSER_ACTION_OPEN);
  filter = gtk_file_chooser_get_filter (GTK_FILE_CHOOSER (chooser));
  g_assert_cmpstr (gtk_file_filter_get_name (filter), ==, "Stable Diffusion models (.safetensors)");

  gtk_dialog_response (GTK_DIALOG (chooser), GTK_RESPONSE_CANCEL);
  drain_main_loop ();
  g_assert_null (find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG));
}

static void
test_about_and_shortcuts (void)
{
  GouacheWindow *window = get_window ();
  g_autoptr(GdkPixbuf) shot = NULL;
  GtkWidget *about, *shortcuts;

  g_action_group_activate_action (G_ACTION_GROUP (application), "about", NULL);
  about = find_toplevel (GTK_TYPE_ABOUT_DIALOG);
  g_assert_nonnull (about);
  g_assert_cmpstr (gtk_about_dialog_get_program_name (GTK_ABOUT_DIALOG (about)), ==, "Gouache");
  g_assert_cmpint (gtk_about_dialog_get_license_type (GTK_ABOUT_DIALOG (about)), ==, GTK_LICENSE_GPL_3_0);
  g_assert_null (gtk_about_dialog_get_website (GTK_ABOUT_DIALOG (about)));
  g_assert_true (gtk_window_get_transient_for (GTK_WINDOW (about)) == GTK_WINDOW (window));
  shot = take_screenshot (about, "gui-shell-about.png");
  g_clear_object (&shot);
  gtk_dialog_response (GTK_DIALOG (about), GTK_RESPONSE_DELETE_EVENT);
  drain_main_loop ();
  g_assert_null (find_toplevel (GTK_TYPE_ABOUT_DIALOG));

  /* GtkApplication loads gtk/help-overlay.ui from the resources. */
  g_assert_true (g_action_group_has_action (G_ACTION_GROUP (window), "show-help-overlay"));
  g_action_group_activate_action (G_ACTION_GROUP (window), "show-help-overlay", NULL);
  shortcuts = find_toplevel (GTK_TYPE_SHORTCUTS_WINDOW);
  g_assert_nonnull (shortcuts);
  shot = take_screenshot (shortcuts, "gui-shell-shortcuts.png");
  gtk_widget_hide (shortcuts);
  g_assert_null (find_toplevel (GTK_TYPE_SHORTCUTS_WINDOW));
}

static void
test_window_state (void)
{
  GtkWindow *window = GTK_WINDOW (get_window ());
  g_autoptr(GdkPixbuf) shot = NULL;
  int width, height;

  gtk_window_resize (window, 720, 560);
  shot = take_screenshot (GTK_WIDGET (window), "gui-shell-resized.png");
  gtk_window_get_size (window, &width, &height);
  g_assert_cmpint (width, ==, 720);
  g_assert_cmpint (height, ==, 560);

  /* Quitting destroys the window, which saves its size. */
  g_action_group_activate_action (G_ACTION_GROUP (application), "quit", NULL);
  drain_main_loop ();
  g_assert_null (gtk_application_get_windows (GTK_APPLICATION (application)));
  g_assert_cmpint (g_settings_get_int (settings, GOUACHE_SETTINGS_WINDOW_WIDTH), ==, 720);
  g_assert_cmpint (g_settings_get_int (settings, GOUACHE_SETTINGS_WINDOW_HEIGHT), ==, 560);
  g_assert_false (g_settings_get_boolean (settings, GOUACHE_SETTINGS_WINDOW_MAXIMIZED));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *xdg_root = use_temporary_folders ("gouache-shell-XXXXXX");
  int status;

  if (!gui_test_init (&argc, &argv, "/gui/shell/no-display", WAIT_SECONDS))
    return g_test_run ();

  settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  models_dir = g_dir_make_tmp ("gouache-test-XXXXXX", &error);
  g_assert_no_error (error);

  application = gui_test_start_application ();

  g_test_add_func ("/gui/shell/empty-state", test_empty_state);
  g_test_add_func ("/gui/shell/open-model", test_open_model);
  g_test_add_func ("/gui/shell/recent-models", test_recent_models);
  g_test_add_func ("/gui/shell/refused-models", test_refused_models);
  g_test_add_func ("/gui/shell/file-chooser", test_file_chooser);
  g_test_add_func ("/gui/shell/preferences", test_preferences);
  g_test_add_func ("/gui/shell/about-and-shortcuts", test_about_and_shortcuts);
  g_test_add_func ("/gui/shell/window-state", test_window_state);

  status = g_test_run ();

  remove_tree (models_dir);
  remove_tree (xdg_root);
  g_clear_pointer (&models_dir, g_free);
  g_clear_object (&settings);
  g_clear_object (&application);

  return status;
}

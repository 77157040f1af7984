/* test-gui-window.c: drives the workspace of the real window under Xvfb
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Loads the demo model (the tiny random checkpoint, written into a temporary cache folder),
 * adds the two tiny LoRAs of tests/data, moves sliders and waits for the live preview, checks
 * that its pixels change, generates a full image and finds it on disk and in the history,
 * restores settings from the history and from a PNG "made by another tool", and checks the
 * error messages. Runs with GSETTINGS_BACKEND=memory; the XDG data, cache and config folders
 * are temporary (set before GTK starts). Screenshots (gui-window-*.png) land in
 * G_TEST_BUILDDIR.
 */

#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <string.h>

#include "gouache-config-keys.h"
#include "gouache-demo-model.h"
#include "gouache-history.h"
#include "gouache-name-dialog.h"
#include "gouache-png.h"
#include "gouache-preset-row.h"
#include "gouache-preview-canvas.h"
#include "gouache-prompt-view.h"
#include "gouache-style-row.h"
#include "gui-test-support.h"

/* The engine is quick on the tiny model; a loaded CI machine may still take a while. */
#define WAIT_SECONDS 120

static GouacheApplication *application;
static GSettings *settings;
static char *temp_dir;
static char *output_dir;

/* Widget-tree helpers ---------------------------------------------------- */

static gboolean
is_prompt_view_titled (GtkWidget     *widget,
                       gconstpointer  title)
{
  g_autofree char *text = NULL;

  if (!GOUACHE_IS_PROMPT_VIEW (widget))
    return FALSE;
  g_object_get (widget, "title", &text, NULL);
  return g_strcmp0 (text, title) == 0;
}

/* The control a mnemonic label ("S_teps") points at. */
static GtkWidget *
control_for (const char *label)
{
  GtkWidget *window = GTK_WIDGET (gtk_application_get_active_window (GTK_APPLICATION (application)));
  GtkWidget *found = find_widget (window, is_mnemonic_label, label);

  g_assert_nonnull (found);
  return gtk_label_get_mnemonic_widget (GTK_LABEL (found));
}

static void
set_size (int width,
          int height)
{
  GtkWidget *window = GTK_WIDGET (gtk_application_get_active_window (GTK_APPLICATION (application)));
  GtkWidget *height_spin = find_widget (window, is_accessible_named, "Height");

  g_assert_true (GTK_IS_SPIN_BUTTON (height_spin));
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("Si_ze")), width);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (height_spin), height);
}

/* Main-loop helpers ------------------------------------------------------ */

static void
set_flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Waits for a signal without arguments (or whose arguments do not matter). */
static void
wait_for_signal (gpointer    instance,
                 const char *signal)
{
  gboolean fired = FALSE;
  gulong handler = g_signal_connect_swapped (instance, signal, G_CALLBACK (set_flag_cb), &fired);

  wait_for_flag (&fired);
  g_signal_handler_disconnect (instance, handler);
}

/* Fixtures --------------------------------------------------------------- */

static GouachePreviewCanvas *
get_canvas (void)
{
  GtkWidget *canvas = find_widget (GTK_WIDGET (get_window ()), is_of_type,
                                   GSIZE_TO_POINTER (GOUACHE_TYPE_PREVIEW_CANVAS));

  g_assert_nonnull (canvas);
  return GOUACHE_PREVIEW_CANVAS (canvas);
}

static GouachePromptView *
get_prompt (const char *title)
{
  GtkWidget *view = find_widget (GTK_WIDGET (get_window ()), is_prompt_view_titled, title);

  g_assert_nonnull (view);
  return GOUACHE_PROMPT_VIEW (view);
}

static GtkInfoBar *
get_info_bar (void)
{
  GtkWidget *bar = find_widget (GTK_WIDGET (get_window ()), is_of_type, GSIZE_TO_POINTER (GTK_TYPE_INFO_BAR));

  g_assert_nonnull (bar);
  return GTK_INFO_BAR (bar);
}

static const char *
info_bar_text (void)
{
  GtkInfoBar *bar = get_info_bar ();
  GtkWidget *label;

  if (!gtk_info_bar_get_revealed (bar))
    return NULL;
  label = find_widget (gtk_info_bar_get_content_area (bar), is_of_type, GSIZE_TO_POINTER (GTK_TYPE_LABEL));
  return gtk_label_get_text (GTK_LABEL (label));
}

static void
close_info_bar (void)
{
  gtk_info_bar_response (get_info_bar (), GTK_RESPONSE_CLOSE);
}

static GList *
style_rows (void)
{
  GtkWidget *window = GTK_WIDGET (get_window ());
  g_autoptr(GPtrArray) rows = find_all (window, is_of_type, GSIZE_TO_POINTER (GOUACHE_TYPE_STYLE_ROW));
  GList *list = NULL;

  for (guint i = 0; i < rows->len; i++)
    list = g_list_append (list, rows->pdata[i]);
  return list;
}

static GtkFlowBox *
get_history_box (void)
{
  GtkWidget *box = find_widget (GTK_WIDGET (get_window ()), is_of_type, GSIZE_TO_POINTER (GTK_TYPE_FLOW_BOX));

  g_assert_nonnull (box);
  return GTK_FLOW_BOX (box);
}

static char *
test_data_file (const char *name)
{
  return g_build_filename (g_getenv ("GOUACHE_TEST_DATA"), name, NULL);
}

/* A copy of the canvas's current picture, to compare with a later one. */
static GBytes *
canvas_pixels (void)
{
  GdkPixbuf *image = gouache_preview_canvas_get_image (get_canvas ());

  g_assert_nonnull (image);
  return g_bytes_new (gdk_pixbuf_read_pixels (image), gdk_pixbuf_get_byte_length (image));
}

/* Waits for the next live preview and returns its pixels. */
static GBytes *
wait_for_preview (void)
{
  GouacheWindow *window = get_window ();

  wait_for_signal (window, "preview-finished");
  return canvas_pixels ();
}

/* Tests ------------------------------------------------------------------ */

static void
test_demo_model (void)
{
  GouacheWindow *window = get_window ();
  GtkWidget *header_bar = gtk_window_get_titlebar (GTK_WINDOW (window));
  GtkWidget *demo = find_widget (GTK_WIDGET (window), is_button_with_label, "_Try the Demo Model");
  g_autoptr(GdkPixbuf) shot = NULL;
  g_autoptr(GBytes) first = NULL;
  GtkWidget *notice;

  g_assert_nonnull (demo);
  g_assert_true (gtk_widget_get_mapped (demo));
  g_assert_false (gouache_window_get_model_loaded (window));

  gtk_button_clicked (GTK_BUTTON (demo));
  wait_until (model_loaded_cb, window);

  /* The demo model is written to the cache once and labelled as random everywhere. */
  g_assert_true (g_str_has_prefix (gouache_window_get_model_path (window), g_get_user_cache_dir ()));
  g_assert_cmpstr (gtk_header_bar_get_subtitle (GTK_HEADER_BAR (header_bar)), ==, "Demo Model (Random Weights)");
  notice = find_widget (GTK_WIDGET (window), is_label_containing, "it draws noise, not pictures");
  g_assert_nonnull (notice);
  g_assert_true (gtk_widget_get_mapped (notice));
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (get_canvas ())));

  /* The first live preview follows at once, on the empty prompt. */
  first = wait_for_preview ();
  g_assert_cmpuint (g_bytes_get_size (first), >, 0);
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-demo.png");
}

static void
test_token_counter (void)
{
  GouachePromptView *prompt = get_prompt ("_Prompt");
  g_autoptr(GString) long_prompt = g_string_new (NULL);

  gouache_prompt_view_set_text (prompt, "a lighthouse at dusk");
  g_assert_cmpstr (gouache_prompt_view_get_counter (prompt), ==, "4 / 75");
  g_assert_cmpuint (gouache_prompt_view_get_n_chunk_marks (prompt), ==, 0);

  /* 90 tokens take two chunks; the first word of the second one is marked. */
  for (guint i = 0; i < 30; i++)
    g_string_append (long_prompt, "red cat, ");
  gouache_prompt_view_set_text (prompt, long_prompt->str);
  g_assert_cmpstr (gouache_prompt_view_get_counter (prompt), ==, "90 / 150");
  g_assert_cmpuint (gouache_prompt_view_get_n_chunk_marks (prompt), ==, 1);

  gouache_prompt_view_set_text (prompt, "a lighthouse at dusk, oil on canvas");
  wait_for_signal (get_window (), "preview-finished");
}

static guint
count_image_changes (GouachePreviewCanvas *canvas)
{
  return GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (canvas), "changes"));
}

static void
image_changed_cb (GObject    *canvas,
                  GParamSpec *pspec,
                  gpointer    user_data)
{
  g_object_set_data (canvas, "changes", GUINT_TO_POINTER (count_image_changes (GOUACHE_PREVIEW_CANVAS (canvas)) + 1));
}

static void
test_live_preview (void)
{
  GouachePreviewCanvas *canvas = get_canvas ();
  GtkWidget *cfg = control_for ("_CFG Scale");
  GtkWidget *steps = control_for ("S_teps");
  g_autoptr(GBytes) before = NULL, after = NULL, again = NULL;
  gulong handler;

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (steps), 4);
  before = wait_for_preview ();

  /* Moving a slider draws a new preview: first each step's x̂₀, then the decoded image. */
  handler = g_signal_connect (canvas, "notify::image", G_CALLBACK (image_changed_cb), NULL);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (cfg), 2.5);
  after = wait_for_preview ();
  g_signal_handler_disconnect (canvas, handler);
  g_assert_cmpuint (count_image_changes (canvas), >=, 2);
  g_assert_false (g_bytes_equal (before, after));

  /* The preview is at the reduced size of the preferences (128), on the same seed. */
  g_assert_cmpint (gdk_pixbuf_get_width (gouache_preview_canvas_get_image (canvas)), ==, 128);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (cfg), 7.0);
  again = wait_for_preview ();
  g_assert_true (g_bytes_equal (before, again));
}

static void
count_cb (gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
test_debounce (void)
{
  GouacheWindow *window = get_window ();
  GtkWidget *cfg = control_for ("_CFG Scale");
  guint previews = 0;
  gulong handler = g_signal_connect_swapped (window, "preview-finished", G_CALLBACK (count_cb), &previews);

  /* Five quick changes make one preview, not five. */
  for (guint i = 0; i < 5; i++)
    gtk_spin_button_set_value (GTK_SPIN_BUTTON (cfg), 5.0 + i * 0.5);
  while (previews == 0)
    g_main_context_iteration (NULL, TRUE);
  spin (600);
  g_signal_handler_disconnect (window, handler);
  g_assert_cmpuint (previews, ==, 1);
}

static void
test_styles (void)
{
  GouacheWindow *window = get_window ();
  g_autofree char *a = test_data_file ("lora_tiny_style_a.safetensors");
  g_autofree char *b = test_data_file ("lora_tiny_style_b.safetensors");
  g_autoptr(GFile) file_a = g_file_new_for_path (a);
  g_autoptr(GFile) file_b = g_file_new_for_path (b);
  g_autoptr(GBytes) plain = canvas_pixels ();
  g_autoptr(GBytes) styled = NULL, moved = NULL, off = NULL;
  g_autoptr(GList) rows = NULL;
  g_autoptr(GdkPixbuf) shot = NULL;
  GouacheStyleRow *row_a;

  gouache_window_add_style (window, file_a);
  gouache_window_add_style (window, file_b);
  styled = wait_for_preview ();
  while ((rows = style_rows ()) && g_list_length (rows) < 2)
    {
      g_clear_pointer (&rows, g_list_free);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_cmpuint (g_list_length (rows), ==, 2);
  row_a = rows->data;
  g_assert_cmpstr (gouache_style_row_get_title (row_a), ==, "lora_tiny_style_a");
  g_assert_cmpstr (gouache_style_row_get_title (rows->next->data), ==, "lora_tiny_style_b");
  g_assert_cmpfloat (gouache_style_row_get_weight (row_a), ==, 1.0);
  if (g_bytes_equal (plain, styled))
    styled = (g_bytes_unref (styled), wait_for_preview ());
  g_assert_false (g_bytes_equal (plain, styled));

  /* Adding it twice is refused with a message. */
  gouache_window_add_style (window, file_a);
  g_assert_nonnull (strstr (info_bar_text (), "in the styles already"));
  close_info_bar ();

  /* Moving the slider of style A changes the picture. */
  gtk_range_set_value (gouache_style_row_get_scale (row_a), 0.35);
  moved = wait_for_preview ();
  g_assert_false (g_bytes_equal (styled, moved));

  /* Switching both off gives the plain picture back. */
  gouache_style_row_set_enabled (row_a, FALSE);
  gouache_style_row_set_enabled (rows->next->data, FALSE);
  off = wait_for_preview ();
  g_assert_true (g_bytes_equal (plain, off));
  gouache_style_row_set_enabled (row_a, TRUE);
  gouache_style_row_set_enabled (rows->next->data, TRUE);
  g_bytes_unref (wait_for_preview ());

  shot = take_screenshot (GTK_WIDGET (window), "gui-window-styles.png");
}

static void
saved_cb (GouacheWindow *window,
          const char    *path,
          gpointer       user_data)
{
  g_free (*(char **) user_data);
  *(char **) user_data = g_strdup (path);
}

static char *
generate_and_wait (void)
{
  GouacheWindow *window = get_window ();
  char *path = NULL;
  gulong handler = g_signal_connect (window, "image-saved", G_CALLBACK (saved_cb), &path);
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;

  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (window), "generate"));
  g_action_group_activate_action (G_ACTION_GROUP (window), "generate", NULL);
  while (path == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_signal_handler_disconnect (window, handler);
  return path;
}

static void
test_generate (void)
{
  GouacheWindow *window = get_window ();
  GtkWidget *seed = control_for ("S_eed");
  g_autofree char *path = NULL;
  g_autoptr(GouachePngImage) png = NULL;
  g_autoptr(GdkPixbuf) shot = NULL;
  g_autoptr(GError) error = NULL;
  const char *parameters;

  set_size (192, 128);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (seed), 4242);
  path = generate_and_wait ();

  g_assert_true (g_str_has_prefix (path, output_dir));
  png = gouache_png_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (png->width, ==, 192);
  g_assert_cmpuint (png->height, ==, 128);
  parameters = g_hash_table_lookup (png->text, "parameters");
  g_assert_nonnull (parameters);
  g_assert_true (g_str_has_prefix (parameters, "a lighthouse at dusk, oil on canvas\n"));
  g_assert_nonnull (strstr (parameters, "Steps: 4, Sampler: Euler a"));
  g_assert_nonnull (strstr (parameters, "Seed: 4242, Size: 192x128"));
  g_assert_nonnull (strstr (parameters, "Lora hashes: \"lora_tiny_style_a: "));

  /* The canvas shows the full image, and the history strip its thumbnail. */
  g_assert_cmpint (gdk_pixbuf_get_width (gouache_preview_canvas_get_image (get_canvas ())), ==, 192);
  g_assert_cmpuint (count_children (GTK_CONTAINER (get_history_box ())), ==, 1);
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (get_history_box ())));
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-generated.png");
}

static void
test_history_restore (void)
{
  GouachePromptView *prompt = get_prompt ("_Prompt");
  GtkWidget *seed = control_for ("S_eed");
  const GouacheHistoryEntry *entry;
  GtkFlowBoxChild *child;
  g_autofree char *text = NULL;
  g_autofree char *second = NULL;
  g_autoptr(GList) rows = NULL;

  /* A second image with other settings comes first in the strip. */
  gouache_prompt_view_set_text (prompt, "a harbour at dawn");
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (seed), 7);
  rows = style_rows ();
  gtk_widget_destroy (rows->next->data);
  second = generate_and_wait ();
  g_assert_cmpuint (count_children (GTK_CONTAINER (get_history_box ())), ==, 2);

  /* Clicking the older one restores its prompt, seed and both styles. */
  child = gtk_flow_box_get_child_at_index (get_history_box (), 1);
  g_signal_emit_by_name (child, "activate");
  text = gouache_prompt_view_get_text (prompt);
  g_assert_cmpstr (text, ==, "a lighthouse at dusk, oil on canvas");
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (seed)), ==, 4242);
  g_clear_pointer (&rows, g_list_free);
  rows = style_rows ();
  g_assert_cmpuint (g_list_length (rows), ==, 2);
  g_assert_cmpfloat_with_epsilon (gouache_style_row_get_weight (rows->data), 0.35, 1e-9);

  /* Forgetting the newest entry (from its context menu) keeps its PNG. */
  child = gtk_flow_box_get_child_at_index (get_history_box (), 0);
  entry = g_object_get_data (G_OBJECT (child), "gouache-history-entry");
  g_assert_cmpstr (entry->path, ==, second);
  g_action_group_activate_action (G_ACTION_GROUP (get_window ()), "history-remove",
                                  g_variant_new_int64 (entry->id));
  g_assert_cmpuint (count_children (GTK_CONTAINER (get_history_box ())), ==, 1);
  g_assert_true (g_file_test (second, G_FILE_TEST_IS_REGULAR));
}

static gboolean
canvas_shows_64_cb (gpointer user_data)
{
  GdkPixbuf *image = gouache_preview_canvas_get_image (get_canvas ());

  return image != NULL && gdk_pixbuf_get_width (image) == 64;
}

/* Answers the name dialog that action (or click) opened with name. */
static void
answer_name_dialog (const char *name)
{
  GtkWidget *dialog = find_toplevel (GOUACHE_TYPE_NAME_DIALOG);
  GtkWidget *entry;

  g_assert_nonnull (dialog);
  entry = find_widget (dialog, is_of_type, GSIZE_TO_POINTER (GTK_TYPE_ENTRY));
  gtk_entry_set_text (GTK_ENTRY (entry), name);
  gtk_dialog_response (GTK_DIALOG (dialog), GTK_RESPONSE_ACCEPT);
  drain_main_loop ();
  g_assert_null (find_toplevel (GOUACHE_TYPE_NAME_DIALOG));
}

static GouachePresetRow *
find_preset_row (const char *name)
{
  g_autoptr(GPtrArray) rows = find_all (GTK_WIDGET (get_window ()), is_of_type,
                                        GSIZE_TO_POINTER (GOUACHE_TYPE_PRESET_ROW));

  for (guint i = 0; i < rows->len; i++)
    if (g_strcmp0 (gouache_preset_row_get_preset (rows->pdata[i])->name, name) == 0)
      return rows->pdata[i];

  return NULL;
}

static void
test_presets (void)
{
  GouacheWindow *window = get_window ();
  GouachePromptView *prompt = get_prompt ("_Prompt");
  GtkWidget *cfg = control_for ("_CFG Scale");
  GtkWidget *seed = control_for ("S_eed");
  GtkWidget *presets_button = find_widget (GTK_WIDGET (window), has_tooltip, "Presets");
  g_autofree char *json = g_build_filename (temp_dir, "presets.json", NULL);
  g_autoptr(GFile) json_file = g_file_new_for_path (json);
  g_autofree char *text = NULL;
  g_autoptr(GList) rows = style_rows ();
  g_autoptr(GdkPixbuf) shot = NULL;
  GouachePresetRow *row;

  g_assert_nonnull (presets_button);
  g_assert_true (gtk_widget_get_mapped (presets_button));

  /* Ctrl+S asks for a name and saves every control, with a thumbnail. */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (cfg), 6.5);
  gouache_style_row_set_weight (rows->next->data, -0.5);
  g_bytes_unref (wait_for_preview ());
  g_action_group_activate_action (G_ACTION_GROUP (window), "save-preset", NULL);
  answer_name_dialog ("Ink at dusk");
  row = find_preset_row ("Ink at dusk");
  g_assert_nonnull (row);
  g_assert_nonnull (gouache_preset_row_get_preset (row)->thumbnail);
  g_assert_cmpuint (gouache_preset_row_get_preset (row)->styles->len, ==, 2);

  gtk_popover_popup (GTK_POPOVER (gtk_menu_button_get_popover (GTK_MENU_BUTTON (presets_button))));
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-presets.png");

  /* Change everything, then apply: every control comes back. */
  gouache_prompt_view_set_text (prompt, "something else entirely");
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (cfg), 12);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (seed), 99);
  gtk_widget_destroy (rows->data);
  g_clear_pointer (&rows, g_list_free);
  g_signal_emit_by_name (row, "activate");
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (gtk_menu_button_get_popover (GTK_MENU_BUTTON (presets_button)))));
  text = gouache_prompt_view_get_text (prompt);
  g_assert_cmpstr (text, ==, "a lighthouse at dusk, oil on canvas");
  g_assert_cmpfloat (gtk_spin_button_get_value (GTK_SPIN_BUTTON (cfg)), ==, 6.5);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (seed)), ==, 4242);
  rows = style_rows ();
  g_assert_cmpuint (g_list_length (rows), ==, 2);
  g_assert_cmpstr (gouache_style_row_get_title (rows->data), ==, "lora_tiny_style_a");
  g_assert_cmpfloat_with_epsilon (gouache_style_row_get_weight (rows->data), 0.35, 1e-9);
  g_assert_cmpfloat_with_epsilon (gouache_style_row_get_weight (rows->next->data), -0.5, 1e-9);
  g_bytes_unref (wait_for_preview ());

  /* Rename through the row's button. */
  gtk_button_clicked (GTK_BUTTON (find_widget (GTK_WIDGET (row), has_tooltip, "Rename…")));
  answer_name_dialog ("Ink at dawn");
  g_assert_null (find_preset_row ("Ink at dusk"));
  row = find_preset_row ("Ink at dawn");
  g_assert_nonnull (row);

  /* Export, delete (with Undo), delete again, import. */
  gouache_window_export_presets (window, json_file);
  g_assert_true (g_file_test (json, G_FILE_TEST_IS_REGULAR));
  gtk_button_clicked (GTK_BUTTON (find_widget (GTK_WIDGET (row), has_tooltip, "Delete")));
  g_assert_null (find_preset_row ("Ink at dawn"));
  g_assert_nonnull (strstr (info_bar_text (), "was deleted"));
  g_action_group_activate_action (G_ACTION_GROUP (window), "undo-delete-preset", NULL);
  row = find_preset_row ("Ink at dawn");
  g_assert_nonnull (row);
  gtk_button_clicked (GTK_BUTTON (find_widget (GTK_WIDGET (row), has_tooltip, "Delete")));
  close_info_bar ();
  gouache_window_import_presets (window, json_file);
  g_assert_nonnull (find_preset_row ("Ink at dawn"));
  g_assert_nonnull (strstr (info_bar_text (), "1 preset was imported"));

  /* Importing the same names again is refused as a whole, and says why. */
  gouache_window_import_presets (window, json_file);
  g_assert_nonnull (strstr (info_bar_text (), "No presets were imported"));
  close_info_bar ();
}

static void
test_open_image (void)
{
  GouacheWindow *window = get_window ();
  g_autofree char *path = g_build_filename (temp_dir, "from-another-tool.png", NULL);
  g_autofree char *bare = g_build_filename (temp_dir, "no-settings.png", NULL);
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFile) bare_file = g_file_new_for_path (bare);
  guint8 rgb[64 * 64 * 3];
  GouachePngText text[] = { {
    "parameters",
    "a red fox in the snow, (detailed:1.2)\n"
    "Negative prompt: blurry\n"
    "Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1234, "
    "Size: 128x192, Model hash: 0123456789, Model: someone-elses, Version: v1.10.1"
  } };
  g_autofree char *prompt = NULL;
  g_autofree char *negative = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < sizeof rgb; i++)
    rgb[i] = (guint8) (i * 7);
  g_assert_true (gouache_png_save_rgb8 (path, rgb, 64, 64, text, 1, &error));
  g_assert_true (gouache_png_save_rgb8 (bare, rgb, 64, 64, NULL, 0, &error));

  gouache_window_open_image (window, file);
  wait_until (canvas_shows_64_cb, NULL);

  prompt = gouache_prompt_view_get_text (get_prompt ("_Prompt"));
  negative = gouache_prompt_view_get_text (get_prompt ("_Negative Prompt"));
  g_assert_cmpstr (prompt, ==, "a red fox in the snow, (detailed:1.2)");
  g_assert_cmpstr (negative, ==, "blurry");
  g_assert_cmpstr (gtk_combo_box_get_active_id (GTK_COMBO_BOX (control_for ("S_ampler"))), ==, "dpmpp_2m");
  g_assert_cmpstr (gtk_combo_box_get_active_id (GTK_COMBO_BOX (control_for ("Sc_hedule"))), ==, "karras");
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (control_for ("S_teps"))), ==, 12);
  g_assert_cmpfloat (gtk_spin_button_get_value (GTK_SPIN_BUTTON (control_for ("_CFG Scale"))), ==, 5.5);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (control_for ("S_eed"))), ==, 1234);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (control_for ("Si_ze"))), ==, 128);
  g_assert_cmpint (gdk_pixbuf_get_width (gouache_preview_canvas_get_image (get_canvas ())), ==, 64);
  g_assert_null (info_bar_text ());

  /* A PNG without settings shows, and says why nothing else changed. */
  gouache_window_open_image (window, bare_file);
  while (info_bar_text () == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (strstr (info_bar_text (), "carries no generation settings"));
  close_info_bar ();
}

static void
test_errors (void)
{
  GouacheWindow *window = get_window ();
  g_autofree char *blocker = g_build_filename (temp_dir, "a-file", NULL);
  g_autofree char *unwritable = g_build_filename (blocker, "Pictures", NULL);
  g_autoptr(GdkPixbuf) shot = NULL;
  gulong handler;
  g_autofree char *path = NULL;
  g_autofree char *not_png = g_build_filename (temp_dir, "fake.png", NULL);
  g_autoptr(GFile) fake = g_file_new_for_path (not_png);
  g_autofree char *broken = g_build_filename (temp_dir, "broken.safetensors", NULL);
  g_autoptr(GFile) broken_file = g_file_new_for_path (broken);
  GtkWidget *action, *demo;

  /* A folder that cannot be made (its parent is a file): the error offers another folder,
   * and retrying there saves the image that was kept. */
  g_assert_true (g_file_set_contents (blocker, "", 0, NULL));
  g_settings_set_string (settings, GOUACHE_SETTINGS_OUTPUT_FOLDER, unwritable);
  g_action_group_activate_action (G_ACTION_GROUP (window), "generate", NULL);
  while (info_bar_text () == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (strstr (info_bar_text (), "The image was not saved"));
  action = find_widget (GTK_WIDGET (get_info_bar ()), is_button_with_label, "_Choose Another Folder…");
  g_assert_nonnull (action);
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-error.png");
  g_clear_object (&shot);

  g_settings_set_string (settings, GOUACHE_SETTINGS_OUTPUT_FOLDER, output_dir);
  handler = g_signal_connect (window, "image-saved", G_CALLBACK (saved_cb), &path);
  g_action_group_activate_action (G_ACTION_GROUP (window), "retry-save", NULL);
  while (path == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (window, handler);
  g_assert_true (g_str_has_prefix (path, output_dir));
  close_info_bar ();

  /* A damaged image is reported, not shown. */
  g_assert_true (g_file_set_contents (not_png, "GIF89a, not a PNG", -1, NULL));
  gouache_window_open_image (window, fake);
  while (info_bar_text () == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (strstr (info_bar_text (), "could not be opened"));
  close_info_bar ();

  /* A damaged model: the message offers another one, the empty state returns, and the
   * demo model loads again from there. */
  g_assert_true (g_file_set_contents (broken, "not a checkpoint", -1, NULL));
  g_assert_true (gouache_window_open_model (window, broken_file, NULL));
  while (info_bar_text () == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (strstr (info_bar_text (), "Could not load “broken.safetensors”"));
  g_assert_nonnull (find_widget (GTK_WIDGET (get_info_bar ()), is_button_with_label, "_Open Another Model…"));
  g_assert_false (gouache_window_get_model_loaded (window));
  demo = find_widget (GTK_WIDGET (window), is_button_with_label, "_Try the Demo Model");
  g_assert_true (gtk_widget_get_mapped (demo));
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-bad-model.png");
  gtk_button_clicked (GTK_BUTTON (demo));
  wait_until (model_loaded_cb, window);
  g_assert_false (gtk_info_bar_get_revealed (get_info_bar ()));
  g_bytes_unref (wait_for_preview ());
}

/* A few-step model (here: the demo weights under a Turbo name) sets the sampler up for 1
 * step of Euler a on trailing timesteps without guidance, its fastest live preview. */
static void
test_turbo_defaults (void)
{
  GouacheWindow *window = get_window ();
  g_autofree char *demo = gouache_demo_model_path ();
  g_autofree char *folder = g_dir_make_tmp ("gouache-turbo-XXXXXX", NULL);
  g_autofree char *turbo = g_build_filename (folder, "demo-sd-turbo.safetensors", NULL);
  g_autoptr(GFile) turbo_file = g_file_new_for_path (turbo);
  g_autoptr(GFile) demo_file = g_file_new_for_path (demo);
  GtkComboBox *sampler = GTK_COMBO_BOX (control_for ("S_ampler"));
  GtkComboBox *schedule = GTK_COMBO_BOX (control_for ("Sc_hedule"));
  GtkSpinButton *steps = GTK_SPIN_BUTTON (control_for ("S_teps"));
  GtkSpinButton *cfg = GTK_SPIN_BUTTON (control_for ("_CFG Scale"));
  g_autofree char *old_sampler = g_strdup (gtk_combo_box_get_active_id (sampler));
  g_autofree char *old_schedule = g_strdup (gtk_combo_box_get_active_id (schedule));
  double old_steps = gtk_spin_button_get_value (steps), old_cfg = gtk_spin_button_get_value (cfg);

  g_assert_true (g_file_make_symbolic_link (turbo_file, demo, NULL, NULL));
  g_assert_true (gouache_window_open_model (window, turbo_file, NULL));
  while (gouache_window_get_model_loaded (window))
    g_main_context_iteration (NULL, TRUE);
  wait_until (model_loaded_cb, window);
  g_assert_cmpstr (gtk_combo_box_get_active_id (sampler), ==, "euler_a");
  g_assert_cmpstr (gtk_combo_box_get_active_id (schedule), ==, "trailing");
  g_assert_cmpfloat (gtk_spin_button_get_value (steps), ==, 1);
  g_assert_cmpfloat (gtk_spin_button_get_value (cfg), ==, 1);
  g_bytes_unref (wait_for_preview ());

  /* back to the demo model as the other tests expect it */
  g_assert_true (gouache_window_open_model (window, demo_file, NULL));
  while (gouache_window_get_model_loaded (window))
    g_main_context_iteration (NULL, TRUE);
  wait_until (model_loaded_cb, window);
  gtk_combo_box_set_active_id (sampler, old_sampler);
  gtk_combo_box_set_active_id (schedule, old_schedule);
  gtk_spin_button_set_value (steps, old_steps);
  gtk_spin_button_set_value (cfg, old_cfg);
  g_bytes_unref (wait_for_preview ());
  g_unlink (turbo);
  g_rmdir (folder);
}

static void
test_cancel (void)
{
  GouacheWindow *window = get_window ();
  GtkWidget *cancel = find_widget (GTK_WIDGET (window), is_button_with_label, "_Cancel");
  g_autoptr(GdkPixbuf) shot = NULL;
  guint saved = 0;
  gulong handler = g_signal_connect_swapped (window, "image-saved", G_CALLBACK (set_flag_cb), &saved);

  g_assert_nonnull (cancel);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("S_teps")), 40);
  set_size (512, 512);
  g_action_group_activate_action (G_ACTION_GROUP (window), "generate", NULL);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (window), "cancel"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (window), "generate"));
  spin (300);
  g_assert_true (gtk_widget_get_mapped (cancel));
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-progress.png");
  gtk_button_clicked (GTK_BUTTON (cancel));
  while (!g_action_group_get_action_enabled (G_ACTION_GROUP (window), "generate"))
    g_main_context_iteration (NULL, TRUE);
  spin (200);
  g_assert_false (saved);
  g_assert_null (info_bar_text ());
  g_signal_handler_disconnect (window, handler);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("S_teps")), 4);
  set_size (192, 128);
}

static void
test_shortcuts (void)
{
  struct { const char *action, *accel; } expected[] = {
    { "win.generate", "<Primary>Return" },
    { "win.save-preset", "<Primary>s" },
    { "win.cancel", "Escape" },
    { "win.open-image", "<Primary><Shift>o" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_auto(GStrv) accels = gtk_application_get_accels_for_action (GTK_APPLICATION (application),
                                                                    expected[i].action);

      g_assert_nonnull (accels[0]);
      g_assert_cmpstr (accels[0], ==, expected[i].accel);
    }
}

static void
test_screenshot (void)
{
  GouacheWindow *window = get_window ();
  g_autoptr(GdkPixbuf) shot = NULL;

  /* The window as the README shows it: a roomier size and a crisper preview. */
  gtk_window_resize (GTK_WINDOW (window), 1240, 900);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_WIDTH, 256);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_HEIGHT, 256);
  gouache_prompt_view_set_text (get_prompt ("_Prompt"), "a lighthouse on a cliff at dusk, (oil on canvas:1.2), warm light");
  gouache_prompt_view_set_text (get_prompt ("_Negative Prompt"), "blurry, low contrast");
  set_size (512, 512);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("S_eed")), 1789);
  g_bytes_unref (wait_for_preview ());
  shot = take_screenshot (GTK_WIDGET (window), "gui-window-preview.png");
}

static void
test_close_while_working (void)
{
  GouacheWindow *window = get_window ();

  /* Closing in the middle of a generation cancels it; nothing is left running. */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("S_teps")), 40);
  g_action_group_activate_action (G_ACTION_GROUP (window), "generate", NULL);
  spin (200);
  gtk_widget_destroy (GTK_WIDGET (window));
  g_assert_null (gtk_application_get_windows (GTK_APPLICATION (application)));

  /* The application runs on until the engine's thread has finished and is joined. */
  g_assert_true (gouache_application_get_finishing (application));
  while (gouache_application_get_finishing (application))
    g_main_context_iteration (NULL, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  temp_dir = use_temporary_folders ("gouache-window-XXXXXX");
  output_dir = g_build_filename (temp_dir, "Pictures", NULL);
  if (!gui_test_init (&argc, &argv, "/gui/window/no-display", WAIT_SECONDS))
    return g_test_run ();

  settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  g_settings_set_int (settings, GOUACHE_SETTINGS_THREADS, 2);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_WIDTH, 128);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_HEIGHT, 128);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_STEPS, 2);
  g_settings_set_string (settings, GOUACHE_SETTINGS_OUTPUT_FOLDER, output_dir);
  g_settings_set_int (settings, GOUACHE_SETTINGS_WINDOW_WIDTH, 1200);
  g_settings_set_int (settings, GOUACHE_SETTINGS_WINDOW_HEIGHT, 800);

  application = gui_test_start_application ();

  g_test_add_func ("/gui/window/demo-model", test_demo_model);
  g_test_add_func ("/gui/window/token-counter", test_token_counter);
  g_test_add_func ("/gui/window/live-preview", test_live_preview);
  g_test_add_func ("/gui/window/debounce", test_debounce);
  g_test_add_func ("/gui/window/styles", test_styles);
  g_test_add_func ("/gui/window/generate", test_generate);
  g_test_add_func ("/gui/window/history-restore", test_history_restore);
  g_test_add_func ("/gui/window/presets", test_presets);
  g_test_add_func ("/gui/window/open-image", test_open_image);
  g_test_add_func ("/gui/window/errors", test_errors);
  g_test_add_func ("/gui/window/turbo-defaults", test_turbo_defaults);
  g_test_add_func ("/gui/window/cancel", test_cancel);
  g_test_add_func ("/gui/window/shortcuts", test_shortcuts);
  g_test_add_func ("/gui/window/screenshot", test_screenshot);
  g_test_add_func ("/gui/window/close-while-working", test_close_while_working);

  status = g_test_run ();

  remove_tree (temp_dir);
  g_clear_pointer (&temp_dir, g_free);
  g_clear_pointer (&output_dir, g_free);
  g_clear_object (&settings);
  g_clear_object (&application);

  return status;
}

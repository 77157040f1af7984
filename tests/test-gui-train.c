/* test-gui-train.c: training a style from the window, under Xvfb
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Loads the demo model, writes a folder of 16 striped images, opens the training page with
 * it (as a folder dropped on the window does), checks the dataset report, trains a few dozen
 * steps at 64 pixels and watches the progress, the loss plot (its pixels) and the sample
 * thumbnails; the trained style must land in the styles list and in the run store. Then a
 * second run is stopped midway and continued to its end. Temporary XDG folders and
 * GSETTINGS_BACKEND=memory, as test-gui-window; screenshots gui-train-*.png in G_TEST_BUILDDIR.
 */

#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "gouache-config-keys.h"
#include "gouache-png.h"
#include "gouache-run-store.h"
#include "gouache-style-row.h"
#include "gouache-training-page.h"
#include "gui-test-support.h"

#define WAIT_SECONDS 180
#define IMAGES 16
#define SIDE 64

static GouacheApplication *application;
static GSettings *settings;
static char *temp_dir;
static char *dataset_dir;

/* Widgets -------------------------------------------------------------------- */

static gboolean
is_sample (GtkWidget     *widget,
           gconstpointer  data)
{
  g_autofree char *tooltip = gtk_widget_get_tooltip_text (widget);

  return GTK_IS_IMAGE (widget) && tooltip != NULL && g_str_has_prefix (tooltip, "After step");
}

static guint count_samples (void);

static GouacheTrainingPage *
get_page (void)
{
  GtkWidget *page = find_widget (GTK_WIDGET (get_window ()), is_of_type,
                                 GSIZE_TO_POINTER (GOUACHE_TYPE_TRAINING_PAGE));

  g_assert_nonnull (page);
  return GOUACHE_TRAINING_PAGE (page);
}

/* The control a mnemonic label of the training page points at. */
static GtkWidget *
control_for (const char *label)
{
  GtkWidget *found = find_widget (GTK_WIDGET (get_page ()), is_mnemonic_label, label);

  g_assert_nonnull (found);
  return gtk_label_get_mnemonic_widget (GTK_LABEL (found));
}

static GtkWidget *
page_button (const char *label)
{
  GtkWidget *button = find_widget (GTK_WIDGET (get_page ()), is_button_with_label, label);

  g_assert_nonnull (button);
  return button;
}

static guint
count_samples (void)
{
  g_autoptr(GPtrArray) samples = find_all (GTK_WIDGET (get_page ()), is_sample, NULL);

  return samples->len;
}

/* Main loop ------------------------------------------------------------------ */

static gboolean
label_shows_cb (gpointer user_data)
{
  return find_widget (GTK_WIDGET (get_page ()), is_label_containing, user_data) != NULL;
}

static gboolean
not_running_cb (gpointer user_data)
{
  return !gouache_training_page_get_running (user_data);
}

static void
store_string_cb (gpointer    user_data,
                 const char *path)
{
  *(char **) user_data = g_strdup (path);
}

static gboolean
string_set_cb (gpointer user_data)
{
  return *(char **) user_data != NULL;
}

/* Pixels of the loss curve's blue (the moving average) inside the plot area. */
static guint
plot_blue_pixels (GdkPixbuf *shot)
{
  GtkWidget *plot = find_widget (GTK_WIDGET (get_page ()), is_of_type,
                                 GSIZE_TO_POINTER (GTK_TYPE_DRAWING_AREA));
  int x0, y0, w = gtk_widget_get_allocated_width (plot), h = gtk_widget_get_allocated_height (plot);
  const guchar *pixels = gdk_pixbuf_read_pixels (shot);
  int stride = gdk_pixbuf_get_rowstride (shot), n = gdk_pixbuf_get_n_channels (shot);
  guint count = 0;

  g_assert_true (gtk_widget_translate_coordinates (plot, GTK_WIDGET (get_window ()), 0, 0, &x0, &y0));
  for (int y = MAX (0, y0); y < MIN (y0 + h, gdk_pixbuf_get_height (shot)); y++)
    for (int x = MAX (0, x0); x < MIN (x0 + w, gdk_pixbuf_get_width (shot)); x++)
      {
        const guchar *p = pixels + (gsize) y * stride + (gsize) x * n;

        count += p[2] > 180 && p[0] < 110 && p[1] > 100 && p[1] < 170;
      }
  return count;
}

/* Tests ------------------------------------------------------------------------ */

static void
test_train_from_folder (void)
{
  GouacheWindow *window = get_window ();
  GouacheTrainingPage *page;
  g_autofree char *trained = NULL;
  g_autoptr(GdkPixbuf) before = NULL;
  g_autoptr(GdkPixbuf) after = NULL;
  g_autoptr(GList) samples = NULL;
  gulong handler;

  gtk_button_clicked (GTK_BUTTON (find_widget (GTK_WIDGET (window), is_button_with_label,
                                               "_Try the Demo Model")));
  wait_until (model_loaded_cb, window);

  /* a dropped folder opens the page with its report */
  g_action_group_activate_action (G_ACTION_GROUP (window), "train", NULL);
  page = get_page ();
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (page)));
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("R_esolution")), 64);
  gouache_training_page_set_dataset (page, dataset_dir);
  wait_until (label_shows_cb, (gpointer) "16 usable images");
  g_assert_nonnull (find_widget (GTK_WIDGET (page), is_label_containing, "2 images have no caption file"));
  g_assert_true (gtk_widget_get_sensitive (page_button ("_Train")));

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("_Steps")), 60);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("_Rank")), 4);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("_Learning rate")), 0.003);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("Sample _every")), 30);
  gtk_entry_set_text (GTK_ENTRY (control_for ("_Trigger word")), "zqxstripes");
  gtk_entry_set_text (GTK_ENTRY (control_for ("Sam_ple prompt")), "zqxstripes");
  before = take_screenshot (GTK_WIDGET (get_window ()), "gui-train-settings.png");
  g_assert_cmpuint (plot_blue_pixels (before), ==, 0);

  handler = g_signal_connect_swapped (page, "style-trained", G_CALLBACK (store_string_cb), &trained);
  gtk_button_clicked (GTK_BUTTON (page_button ("_Train")));
  g_assert_true (gouache_training_page_get_running (page));
  g_assert_false (gtk_widget_get_sensitive (page_button ("_Train")));
  wait_until (string_set_cb, &trained);
  g_signal_handler_disconnect (page, handler);
  wait_until (not_running_cb, page);

  /* the curve, the samples (steps 30 and 60), the message */
  after = take_screenshot (GTK_WIDGET (get_window ()), "gui-train-finished.png");
  g_assert_cmpuint (plot_blue_pixels (after), >, 50);
  g_assert_cmpuint (count_samples (), ==, 2);
  g_assert_nonnull (find_widget (GTK_WIDGET (page), is_label_containing, "is ready"));
  g_assert_true (g_file_test (trained, G_FILE_TEST_EXISTS));
  g_assert_true (g_str_has_suffix (trained, "stripes.safetensors"));

  /* the style joins the styles list, with its trigger word */
  gtk_button_clicked (GTK_BUTTON (find_widget (GTK_WIDGET (page), is_accessible_named,
                                               "Back to the Images")));
  g_assert_true (gtk_widget_get_mapped (find_widget (GTK_WIDGET (window), is_accessible_named, "Main Menu")));
  {
    gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;
    GtkWidget *row = NULL;

    while ((row = find_widget (GTK_WIDGET (window), is_of_type,
                               GSIZE_TO_POINTER (GOUACHE_TYPE_STYLE_ROW))) == NULL)
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_main_context_iteration (NULL, TRUE);
      }
    g_assert_cmpstr (gouache_style_row_get_path (GOUACHE_STYLE_ROW (row)), ==, trained);
    g_assert_cmpstr (gouache_style_row_get_title (GOUACHE_STYLE_ROW (row)), ==, "stripes");
  }
}

static gboolean
steps_done_cb (gpointer user_data)
{
  return find_widget (GTK_WIDGET (get_page ()), is_label_containing, "Step 5 of") != NULL ||
         find_widget (GTK_WIDGET (get_page ()), is_label_containing, "Step 6 of") != NULL ||
         find_widget (GTK_WIDGET (get_page ()), is_label_containing, "Step 7 of") != NULL;
}

static void
test_stop_and_continue (void)
{
  GouacheTrainingPage *page = get_page ();
  g_autofree char *trained = NULL;
  g_autoptr(GouacheRunStore) store = NULL;
  g_autoptr(GPtrArray) runs = NULL;
  g_autofree char *db = gouache_run_store_default_path ();
  g_autoptr(GError) error = NULL;
  gulong handler;

  g_action_group_activate_action (G_ACTION_GROUP (get_window ()), "train", NULL);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("_Steps")), 400);
  gtk_entry_set_text (GTK_ENTRY (control_for ("Sam_ple prompt")), "");
  gtk_button_clicked (GTK_BUTTON (page_button ("_Train")));
  wait_until (steps_done_cb, NULL);
  gtk_button_clicked (GTK_BUTTON (page_button ("_Stop")));
  wait_until (not_running_cb, page);
  g_assert_nonnull (find_widget (GTK_WIDGET (page), is_label_containing, "Continue resumes"));
  g_object_unref (take_screenshot (GTK_WIDGET (get_window ()), "gui-train-stopped.png"));

  /* Continue picks the run up where it stopped */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (control_for ("_Steps")), 400);
  handler = g_signal_connect_swapped (page, "style-trained", G_CALLBACK (store_string_cb), &trained);
  gtk_button_clicked (GTK_BUTTON (page_button ("_Continue")));
  wait_until (string_set_cb, &trained);
  g_signal_handler_disconnect (page, handler);
  wait_until (not_running_cb, page);

  store = gouache_run_store_new (db, &error);
  g_assert_no_error (error);
  runs = gouache_run_store_list (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (runs->len, ==, 2);
  for (guint i = 0; i < runs->len; i++)
    {
      const GouacheRun *run = g_ptr_array_index (runs, i);

      g_assert_cmpint (run->status, ==, GOUACHE_RUN_FINISHED);
      g_assert_cmpfloat (run->val_loss_last, <, run->val_loss_first);
    }
  g_assert_cmpint (((GouacheRun *) g_ptr_array_index (runs, 0))->steps, ==, 400);
}

/* Setup ------------------------------------------------------------------------- */

/* 16 images of orange and blue stripes, all but two with a caption file. */
static void
write_dataset (void)
{
  guint8 rgb[SIDE * SIDE * 3];
  g_autoptr(GError) error = NULL;

  dataset_dir = g_build_filename (temp_dir, "stripes", NULL);
  g_mkdir (dataset_dir, 0700);
  for (int i = 0; i < IMAGES; i++)
    {
      g_autofree char *name = g_strdup_printf ("image%02d.png", i);
      g_autofree char *path = g_build_filename (dataset_dir, name, NULL);
      int period = 8 + i % 5, shift = i * 3;

      for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
          {
            gboolean stripe = ((x + y + shift) % period) < period / 2;
            guint8 *p = rgb + (y * SIDE + x) * 3;

            p[0] = stripe ? 242 : 38, p[1] = stripe ? 185 : 64, p[2] = stripe ? 51 : 178;
          }
      rgb[0] = (guint8) i; /* no two images alike */
      gouache_png_save_rgb8 (path, rgb, SIDE, SIDE, NULL, 0, &error);
      g_assert_no_error (error);
      if (i >= 2)
        {
          g_autofree char *caption = g_strdup_printf ("%s/image%02d.txt", dataset_dir, i);

          g_file_set_contents (caption, "stripes, orange and blue", -1, &error);
          g_assert_no_error (error);
        }
    }
}

int
main (int   argc,
      char *argv[])
{
  int status;

  temp_dir = use_temporary_folders ("gouache-train-XXXXXX");
  if (!gui_test_init (&argc, &argv, "/gui/train/no-display", WAIT_SECONDS))
    return g_test_run ();

  settings = g_settings_new (GOUACHE_SETTINGS_SCHEMA);
  g_settings_set_int (settings, GOUACHE_SETTINGS_THREADS, 2);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_WIDTH, 64);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_HEIGHT, 64);
  g_settings_set_int (settings, GOUACHE_SETTINGS_PREVIEW_STEPS, 1);
  g_settings_set_boolean (settings, GOUACHE_SETTINGS_LIVE_PREVIEW, FALSE);
  g_settings_set_int (settings, GOUACHE_SETTINGS_WINDOW_WIDTH, 1200);
  g_settings_set_int (settings, GOUACHE_SETTINGS_WINDOW_HEIGHT, 800);
  write_dataset ();

  application = gui_test_start_application ();

  g_test_add_func ("/gui/train/from-folder", test_train_from_folder);
  g_test_add_func ("/gui/train/stop-and-continue", test_stop_and_continue);

  status = g_test_run ();

  remove_tree (temp_dir);
  g_clear_pointer (&temp_dir, g_free);
  g_clear_pointer (&dataset_dir, g_free);
  g_clear_object (&settings);
  g_clear_object (&application);

  return status;
}

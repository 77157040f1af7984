/* gui-test-support.c: what the Xvfb GUI tests share
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <glib/gstdio.h>
#include <string.h>

#include "gui-test-support.h"

#define APP_ID "io.github.gouache.Gouache"

/* Each program waits as long as its slowest step needs (gui_test_init()). */
static guint wait_seconds = 5;

/* Widget tree -------------------------------------------------------------- */

static void
collect_cb (GtkWidget *widget,
            gpointer   user_data)
{
  g_ptr_array_add (user_data, widget);
  if (GTK_IS_CONTAINER (widget))
    gtk_container_forall (GTK_CONTAINER (widget), collect_cb, user_data);
}

/* Every widget under @root (itself included, internal children too) that
 * @match accepts, in tree order. */
GPtrArray *
find_all (GtkWidget     *root,
          WidgetMatch    match,
          gconstpointer  data)
{
  g_autoptr(GPtrArray) all = g_ptr_array_new ();
  GPtrArray *found = g_ptr_array_new ();

  collect_cb (root, all);
  for (guint i = 0; i < all->len; i++)
    if (match (all->pdata[i], data))
      g_ptr_array_add (found, all->pdata[i]);

  return found;
}

GtkWidget *
find_widget (GtkWidget     *root,
             WidgetMatch    match,
             gconstpointer  data)
{
  g_autoptr(GPtrArray) found = find_all (root, match, data);

  return found->len > 0 ? found->pdata[0] : NULL;
}

/* A shown toplevel of @type: dialogs are not children of the window. */
GtkWidget *
find_toplevel (GType type)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (const GList *l = toplevels; l != NULL; l = l->next)
    if (G_TYPE_CHECK_INSTANCE_TYPE (l->data, type) && gtk_widget_get_visible (l->data))
      return l->data;

  return NULL;
}

/* @type is a GType passed with GSIZE_TO_POINTER(). */
gboolean
is_of_type (GtkWidget     *widget,
            gconstpointer  type)
{
  return G_TYPE_CHECK_INSTANCE_TYPE (widget, GPOINTER_TO_SIZE (type));
}

gboolean
is_button_with_label (GtkWidget     *widget,
                      gconstpointer  label)
{
  return GTK_IS_BUTTON (widget) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (widget)), label) == 0;
}

gboolean
is_label_with_text (GtkWidget     *widget,
                    gconstpointer  text)
{
  return GTK_IS_LABEL (widget) && g_strcmp0 (gtk_label_get_text (GTK_LABEL (widget)), text) == 0;
}

gboolean
is_label_containing (GtkWidget     *widget,
                     gconstpointer  text)
{
  return GTK_IS_LABEL (widget) && strstr (gtk_label_get_text (GTK_LABEL (widget)), text) != NULL;
}

/* A label such as "S_teps" that names a control (its mnemonic widget). */
gboolean
is_mnemonic_label (GtkWidget     *widget,
                   gconstpointer  label)
{
  return GTK_IS_LABEL (widget) && g_strcmp0 (gtk_label_get_label (GTK_LABEL (widget)), label) == 0 &&
         gtk_label_get_mnemonic_widget (GTK_LABEL (widget)) != NULL;
}

/* Icon-only buttons and unlabelled controls are found by their accessible name. */
gboolean
is_accessible_named (GtkWidget     *widget,
                     gconstpointer  name)
{
  return g_strcmp0 (atk_object_get_name (gtk_widget_get_accessible (widget)), name) == 0;
}

gboolean
has_tooltip (GtkWidget     *widget,
             gconstpointer  tooltip)
{
  g_autofree char *text = gtk_widget_get_tooltip_text (widget);

  return g_strcmp0 (text, tooltip) == 0;
}

guint
count_children (GtkContainer *container)
{
  g_autoptr(GList) children = gtk_container_get_children (container);

  return g_list_length (children);
}

/* Main loop ------------------------------------------------------------------ */

static gboolean
flag_timeout_cb (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Spins the main loop until *@flag is set. The timeout is a source of its own,
 * so a loop with nothing else to do still wakes up to fail. */
void
wait_for_flag (const gboolean *flag)
{
  gboolean timed_out = FALSE;
  guint timeout = g_timeout_add_seconds (wait_seconds, flag_timeout_cb, &timed_out);

  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);

  g_assert_false (timed_out);
  g_source_remove (timeout);
}

/* Spins the main loop until @condition (called with @data) holds. */
void
wait_until (GSourceFunc condition,
            gpointer    data)
{
  gint64 deadline = g_get_monotonic_time () + wait_seconds * G_USEC_PER_SEC;

  while (!condition (data))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
}

void
drain_main_loop (void)
{
  while (g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
}

/* Spins the main loop for @ms milliseconds. */
void
spin (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, flag_timeout_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

static gboolean
drawn_cb (GtkWidget *widget,
          cairo_t   *cr,
          gpointer   user_data)
{
  gboolean *drawn = user_data;

  *drawn = TRUE;
  return FALSE;
}

/* Waits until @window is mapped and has painted itself completely. */
void
wait_for_paint (GtkWidget *window)
{
  gboolean drawn = FALSE;
  gulong handler = g_signal_connect_after (window, "draw", G_CALLBACK (drawn_cb), &drawn);

  gtk_widget_queue_draw (window);
  wait_for_flag (&drawn);
  g_signal_handler_disconnect (window, handler);

  drain_main_loop ();
  gdk_display_sync (gtk_widget_get_display (window));
}

/* Reads @window's pixels back from the X server, saves them as @name in the
 * build directory and checks they are a real picture of the window. */
GdkPixbuf *
take_screenshot (GtkWidget  *window,
                 const char *name)
{
  GdkWindow *gdk_window = gtk_widget_get_window (window);
  g_autofree char *path = g_test_build_filename (G_TEST_BUILT, name, NULL);
  g_autoptr(GHashTable) colours = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  GdkPixbuf *pixbuf;
  int width, height, stride, channels;
  const guchar *pixels;

  wait_for_paint (window);

  width = gdk_window_get_width (gdk_window);
  height = gdk_window_get_height (gdk_window);
  pixbuf = gdk_pixbuf_get_from_window (gdk_window, 0, 0, width, height);
  g_assert_nonnull (pixbuf);
  g_assert_cmpint (gdk_pixbuf_get_width (pixbuf), ==, gtk_widget_get_allocated_width (window));
  g_assert_cmpint (gdk_pixbuf_get_height (pixbuf), ==, gtk_widget_get_allocated_height (window));

  gdk_pixbuf_save (pixbuf, path, "png", &error, NULL);
  g_assert_no_error (error);
  g_test_message ("screenshot: %s", path);

  /* A drawn window has text, borders and an icon: many colours, not one. */
  stride = gdk_pixbuf_get_rowstride (pixbuf);
  channels = gdk_pixbuf_get_n_channels (pixbuf);
  pixels = gdk_pixbuf_read_pixels (pixbuf);
  for (int y = 0; y < height; y += 2)
    for (int x = 0; x < width; x += 2)
      {
        const guchar *p = pixels + y * stride + x * channels;

        g_hash_table_add (colours, GUINT_TO_POINTER (p[0] << 16 | p[1] << 8 | p[2]));
      }
  g_assert_cmpuint (g_hash_table_size (colours), >, 32);

  return pixbuf;
}

/* The application ------------------------------------------------------------ */

/* The application made by gui_test_start_application() is the process's default. */
GouacheWindow *
get_window (void)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (g_application_get_default ()));

  g_assert_true (GOUACHE_IS_WINDOW (window));
  return GOUACHE_WINDOW (window);
}

/* For wait_until (model_loaded_cb, window). */
gboolean
model_loaded_cb (gpointer user_data)
{
  return gouache_window_get_model_loaded (user_data);
}

/* Set-up --------------------------------------------------------------------- */

/* The window keeps its history, presets and the demo model under the XDG data,
 * cache and config folders: point them at temporary ones (made from @tmpl,
 * returned), before GLib first reads them. XDG_DATA_DIRS stays, for GTK's icons. */
char *
use_temporary_folders (const char *tmpl)
{
  const char *names[] = { "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME" };
  g_autoptr(GError) error = NULL;
  char *root = g_dir_make_tmp (tmpl, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (root, names[i], NULL);

      g_mkdir (path, 0700);
      g_setenv (names[i], path, TRUE);
    }

  return root;
}

/* Removes @path and everything under it; a test may have left a folder
 * read-only, and links are removed, never followed. */
void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  g_chmod (path, 0700);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
test_no_display (void)
{
  g_test_skip ("No display: run it with xvfb-run (meson does when xvfb-run is installed)");
}

/* Starts GTest and GTK (after use_temporary_folders()); waits fail after
 * @seconds. Without a display it adds @no_display_path, a skipped test,
 * and returns FALSE: main() then runs just that. */
gboolean
gui_test_init (int          *argc,
               char       ***argv,
               const char   *no_display_path,
               guint         seconds)
{
  g_test_init (argc, argv, NULL);

  if (!gtk_init_check (argc, argv))
    {
      g_test_add_func (no_display_path, test_no_display);
      return FALSE;
    }

  wait_seconds = seconds;
  g_assert_cmpstr (g_getenv ("GSETTINGS_BACKEND"), ==, "memory");
  /* Revealers and the like reach their end state at once. */
  g_object_set (gtk_settings_get_default (), "gtk-enable-animations", FALSE, NULL);

  return TRUE;
}

/* Registers and activates the application, which opens its window; settings the
 * window reads at start must be set before. */
GouacheApplication *
gui_test_start_application (void)
{
  g_autoptr(GError) error = NULL;
  GouacheApplication *application = g_object_new (GOUACHE_TYPE_APPLICATION,
                                                  "application-id", APP_ID,
                                                  "flags", G_APPLICATION_NON_UNIQUE,
                                                  NULL);

  g_application_register (G_APPLICATION (application), NULL, &error);
  g_assert_no_error (error);
  g_application_activate (G_APPLICATION (application));

  return application;
}

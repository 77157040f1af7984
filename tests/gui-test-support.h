/* gui-test-support.h: what the Xvfb GUI tests share
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Compiled into test-gui-shell, test-gui-window and test-gui-train (see
 * tests/meson.build): finding widgets, spinning the main loop with a deadline,
 * screenshots checked to be real pictures, and the set-up their main()s share.
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-application.h"
#include "gouache-window.h"

G_BEGIN_DECLS

/* Widget tree -------------------------------------------------------------- */

typedef gboolean (*WidgetMatch) (GtkWidget *widget, gconstpointer data);

GPtrArray     *find_all                   (GtkWidget      *root,
                                           WidgetMatch     match,
                                           gconstpointer   data) G_GNUC_WARN_UNUSED_RESULT;
GtkWidget     *find_widget                (GtkWidget      *root,
                                           WidgetMatch     match,
                                           gconstpointer   data);
GtkWidget     *find_toplevel              (GType           type);

gboolean       is_of_type                 (GtkWidget      *widget,
                                           gconstpointer   type);
gboolean       is_button_with_label       (GtkWidget      *widget,
                                           gconstpointer   label);
gboolean       is_label_with_text         (GtkWidget      *widget,
                                           gconstpointer   text);
gboolean       is_label_containing        (GtkWidget      *widget,
                                           gconstpointer   text);
gboolean       is_mnemonic_label          (GtkWidget      *widget,
                                           gconstpointer   label);
gboolean       is_accessible_named        (GtkWidget      *widget,
                                           gconstpointer   name);
gboolean       has_tooltip                (GtkWidget      *widget,
                                           gconstpointer   tooltip);

guint          count_children             (GtkContainer   *container);

/* Main loop and screenshots: waits fail after gui_test_init()'s seconds -- */

void           wait_for_flag              (const gboolean *flag);
void           wait_until                 (GSourceFunc     condition,
                                           gpointer        data);
void           drain_main_loop            (void);
void           spin                       (guint           ms);
void           wait_for_paint             (GtkWidget      *window);
GdkPixbuf     *take_screenshot            (GtkWidget      *window,
                                           const char     *name) G_GNUC_WARN_UNUSED_RESULT;

/* The application --------------------------------------------------------- */

GouacheWindow *get_window                 (void);
gboolean       model_loaded_cb            (gpointer        user_data);

/* Set-up -------------------------------------------------------------------- */

char          *use_temporary_folders      (const char     *tmpl) G_GNUC_WARN_UNUSED_RESULT;
void           remove_tree                (const char     *path);
gboolean       gui_test_init              (int            *argc,
                                           char         ***argv,
                                           const char     *no_display_path,
                                           guint           seconds);
GouacheApplication *gui_test_start_application (void) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS

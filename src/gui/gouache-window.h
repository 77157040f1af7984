/* gouache-window.h: the main window
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_WINDOW (gouache_window_get_type ())

G_DECLARE_FINAL_TYPE (GouacheWindow, gouache_window, GOUACHE, WINDOW, GtkApplicationWindow)

GouacheWindow *gouache_window_new            (GouacheApplication  *application);
const char    *gouache_window_get_model_path (GouacheWindow       *self);
gboolean       gouache_window_get_model_loaded (GouacheWindow     *self);
gboolean       gouache_window_open_model     (GouacheWindow       *self,
                                              GFile               *model,
                                              GError             **error);
void           gouache_window_open_image     (GouacheWindow       *self,
                                              GFile               *image);
void           gouache_window_add_style      (GouacheWindow       *self,
                                              GFile               *style);
void           gouache_window_import_presets (GouacheWindow       *self,
                                              GFile               *file);
void           gouache_window_export_presets (GouacheWindow       *self,
                                              GFile               *file);

G_END_DECLS

/* gouache-preview-canvas.h: the picture being drawn, scaled to fit or at 100%
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-types.h"

G_BEGIN_DECLS

typedef enum {
  GOUACHE_ZOOM_FIT,    /* the whole picture, as large as the canvas allows */
  GOUACHE_ZOOM_ACTUAL, /* one image pixel per screen pixel, scrolled when larger */
} GouacheZoom;

#define GOUACHE_TYPE_ZOOM           (gouache_zoom_get_type ())
#define GOUACHE_TYPE_PREVIEW_CANVAS (gouache_preview_canvas_get_type ())

GType gouache_zoom_get_type (void) G_GNUC_CONST;

G_DECLARE_FINAL_TYPE (GouachePreviewCanvas, gouache_preview_canvas, GOUACHE, PREVIEW_CANVAS, GtkDrawingArea)

void        gouache_preview_canvas_set_image (GouachePreviewCanvas *self,
                                              GdkPixbuf            *pixbuf,
                                              int                   width,
                                              int                   height);
GdkPixbuf  *gouache_preview_canvas_get_image (GouachePreviewCanvas *self);
void        gouache_preview_canvas_set_zoom  (GouachePreviewCanvas *self,
                                              GouacheZoom           zoom);
GouacheZoom gouache_preview_canvas_get_zoom  (GouachePreviewCanvas *self);

G_END_DECLS

/* gouache-preview-canvas.c: the picture being drawn, scaled to fit or at 100%
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The canvas shows a pixbuf at a logical size: the size of the image being made. During
 * sampling the pixbuf is the latent-sized projection of x̂₀ (one pixel per 8×8 block) and is
 * stretched smoothly to that size; at the end it is the decoded image itself. So the picture
 * keeps its place and size from the first step to the last, at either zoom.
 */

#define G_LOG_DOMAIN "gouache-preview-canvas"

#include "config.h"

#include <math.h>

#include "gouache-preview-canvas.h"

/* Room around the picture when it is fitted, in pixels. */
#define MARGIN 24

struct _GouachePreviewCanvas
{
  GtkDrawingArea  parent_instance;

  GdkPixbuf      *pixbuf;
  int             width;
  int             height;
  GouacheZoom     zoom;
};

G_DEFINE_FINAL_TYPE (GouachePreviewCanvas, gouache_preview_canvas, GTK_TYPE_DRAWING_AREA)

G_DEFINE_ENUM_TYPE (GouacheZoom, gouache_zoom,
  G_DEFINE_ENUM_VALUE (GOUACHE_ZOOM_FIT, "fit"),
  G_DEFINE_ENUM_VALUE (GOUACHE_ZOOM_ACTUAL, "actual"))

enum {
  PROP_0,
  PROP_IMAGE,
  PROP_ZOOM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* At 100% the canvas asks for the image's size, so a scrolled window around it scrolls. */
static void
gouache_preview_canvas_update_size_request (GouachePreviewCanvas *self)
{
  if (self->zoom == GOUACHE_ZOOM_ACTUAL && self->pixbuf != NULL)
    gtk_widget_set_size_request (GTK_WIDGET (self), self->width + 2 * MARGIN, self->height + 2 * MARGIN);
  else
    gtk_widget_set_size_request (GTK_WIDGET (self), -1, -1);
}

/* The picture's scale on screen, relative to its logical size. */
static double
gouache_preview_canvas_scale (GouachePreviewCanvas *self,
                              int                   area_width,
                              int                   area_height)
{
  double fit;

  if (self->zoom == GOUACHE_ZOOM_ACTUAL)
    return 1.0;

  fit = MIN ((double) (area_width - 2 * MARGIN) / self->width,
             (double) (area_height - 2 * MARGIN) / self->height);
  return MAX (fit, 0.05);
}

/* A soft shadow under the picture, as GNOME's image viewers draw. */
static void
draw_shadow (cairo_t *cr,
             double   x,
             double   y,
             double   width,
             double   height)
{
  for (int i = 1; i <= 6; i++)
    {
      cairo_set_source_rgba (cr, 0, 0, 0, 0.035);
      cairo_rectangle (cr, x - i, y - i + 2, width + 2 * i, height + 2 * i);
      cairo_fill (cr);
    }
}

static gboolean
gouache_preview_canvas_draw (GtkWidget *widget,
                             cairo_t   *cr)
{
  GouachePreviewCanvas *self = GOUACHE_PREVIEW_CANVAS (widget);
  int area_width = gtk_widget_get_allocated_width (widget);
  int area_height = gtk_widget_get_allocated_height (widget);
  double scale, width, height, x, y;

  gtk_render_background (gtk_widget_get_style_context (widget), cr, 0, 0, area_width, area_height);
  if (self->pixbuf == NULL)
    return GDK_EVENT_PROPAGATE;

  scale = gouache_preview_canvas_scale (self, area_width, area_height);
  width = self->width * scale;
  height = self->height * scale;
  x = floor ((area_width - width) / 2);
  y = floor ((area_height - height) / 2);

  draw_shadow (cr, x, y, width, height);

  cairo_save (cr);
  cairo_rectangle (cr, x, y, width, height);
  cairo_clip (cr);
  cairo_translate (cr, x, y);
  cairo_scale (cr, width / gdk_pixbuf_get_width (self->pixbuf),
               height / gdk_pixbuf_get_height (self->pixbuf));
  gdk_cairo_set_source_pixbuf (cr, self->pixbuf, 0, 0);
  /* Pad, not repeat: the edges of a stretched 8×8 block must not wrap around. */
  cairo_pattern_set_extend (cairo_get_source (cr), CAIRO_EXTEND_PAD);
  cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_GOOD);
  cairo_paint (cr);
  cairo_restore (cr);

  return GDK_EVENT_PROPAGATE;
}

static void
gouache_preview_canvas_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  GouachePreviewCanvas *self = GOUACHE_PREVIEW_CANVAS (object);

  switch (prop_id)
    {
    case PROP_IMAGE:
      g_value_set_object (value, self->pixbuf);
      break;
    case PROP_ZOOM:
      g_value_set_enum (value, self->zoom);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_preview_canvas_set_property (GObject      *object,
                                     guint         prop_id,
                                     const GValue *value,
                                     GParamSpec   *pspec)
{
  GouachePreviewCanvas *self = GOUACHE_PREVIEW_CANVAS (object);

  switch (prop_id)
    {
    case PROP_ZOOM:
      gouache_preview_canvas_set_zoom (self, g_value_get_enum (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_preview_canvas_dispose (GObject *object)
{
  GouachePreviewCanvas *self = GOUACHE_PREVIEW_CANVAS (object);

  g_clear_object (&self->pixbuf);

  G_OBJECT_CLASS (gouache_preview_canvas_parent_class)->dispose (object);
}

static void
gouache_preview_canvas_class_init (GouachePreviewCanvasClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gouache_preview_canvas_dispose;
  object_class->get_property = gouache_preview_canvas_get_property;
  object_class->set_property = gouache_preview_canvas_set_property;

  widget_class->draw = gouache_preview_canvas_draw;

  /* The pixbuf shown, or %NULL (then the canvas is empty and the window shows a hint). */
  properties[PROP_IMAGE] =
    g_param_spec_object ("image", NULL, NULL,
                         GDK_TYPE_PIXBUF,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_ZOOM] =
    g_param_spec_enum ("zoom", NULL, NULL,
                       GOUACHE_TYPE_ZOOM, GOUACHE_ZOOM_FIT,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_css_name (widget_class, "gouache-preview-canvas");
}

static void
gouache_preview_canvas_init (GouachePreviewCanvas *self)
{
  self->zoom = GOUACHE_ZOOM_FIT;
}

/**
 * gouache_preview_canvas_set_image:
 * @self: a #GouachePreviewCanvas
 * @pixbuf: (nullable): the picture, at any resolution
 * @width: the picture's logical width (the image being made), or 0 for the pixbuf's
 * @height: the picture's logical height, or 0 for the pixbuf's
 */
void
gouache_preview_canvas_set_image (GouachePreviewCanvas *self,
                                  GdkPixbuf            *pixbuf,
                                  int                   width,
                                  int                   height)
{
  g_return_if_fail (GOUACHE_IS_PREVIEW_CANVAS (self));
  g_return_if_fail (pixbuf == NULL || GDK_IS_PIXBUF (pixbuf));

  g_set_object (&self->pixbuf, pixbuf);
  self->width = width > 0 ? width : (pixbuf ? gdk_pixbuf_get_width (pixbuf) : 0);
  self->height = height > 0 ? height : (pixbuf ? gdk_pixbuf_get_height (pixbuf) : 0);

  gouache_preview_canvas_update_size_request (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_IMAGE]);
}

/**
 * gouache_preview_canvas_get_image:
 * @self: a #GouachePreviewCanvas
 *
 * Returns: (transfer none) (nullable): the pixbuf shown
 */
GdkPixbuf *
gouache_preview_canvas_get_image (GouachePreviewCanvas *self)
{
  g_return_val_if_fail (GOUACHE_IS_PREVIEW_CANVAS (self), NULL);

  return self->pixbuf;
}

void
gouache_preview_canvas_set_zoom (GouachePreviewCanvas *self,
                                 GouacheZoom           zoom)
{
  g_return_if_fail (GOUACHE_IS_PREVIEW_CANVAS (self));

  if (self->zoom == zoom)
    return;

  self->zoom = zoom;
  gouache_preview_canvas_update_size_request (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
}

GouacheZoom
gouache_preview_canvas_get_zoom (GouachePreviewCanvas *self)
{
  g_return_val_if_fail (GOUACHE_IS_PREVIEW_CANVAS (self), GOUACHE_ZOOM_FIT);

  return self->zoom;
}

/* gouache-preset-row.c: one preset in the presets popover
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Activating the row applies the preset; its buttons ask for a new name or delete it
 * (the signals "rename-requested" and "delete-requested"; the window does the work).
 */

#define G_LOG_DOMAIN "gouache-preset-row"

#include "config.h"

#include <glib/gi18n.h>

#include "gc-sampler.h"
#include "gouache-preset-row.h"

#define THUMBNAIL_SIZE 48

struct _GouachePresetRow
{
  GtkListBoxRow  parent_instance;

  /* Template widgets */
  GtkWidget     *delete_button;
  GtkLabel      *name_label;
  GtkWidget     *rename_button;
  GtkLabel      *summary_label;
  GtkImage      *thumbnail;

  GouachePreset *preset;
};

G_DEFINE_FINAL_TYPE (GouachePresetRow, gouache_preset_row, GTK_TYPE_LIST_BOX_ROW)

enum {
  RENAME_REQUESTED,
  DELETE_REQUESTED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
rename_clicked_cb (GouachePresetRow *self)
{
  g_signal_emit (self, signals[RENAME_REQUESTED], 0);
}

static void
delete_clicked_cb (GouachePresetRow *self)
{
  g_signal_emit (self, signals[DELETE_REQUESTED], 0);
}

/* "2 styles · Euler a · 20 steps" */
static char *
summary (const GouachePreset *preset)
{
  g_autofree char *styles = g_strdup_printf (ngettext ("%u style", "%u styles", preset->styles->len),
                                             preset->styles->len);
  g_autofree char *steps = g_strdup_printf (ngettext ("%u step", "%u steps", preset->steps),
                                            preset->steps);
  gc_sampler sampler;
  const char *sampler_name = preset->sampler;

  if (preset->sampler != NULL && gc_sampler_parse (&sampler, preset->sampler, NULL) == GC_OK)
    sampler_name = gc_sampler_display_name (sampler);

  return g_strdup_printf ("%s · %s · %s", styles, sampler_name ? sampler_name : "", steps);
}

static void
show_thumbnail (GouachePresetRow *self)
{
  g_autoptr(GdkPixbufLoader) loader = NULL;
  g_autoptr(GdkPixbuf) small = NULL;
  GdkPixbuf *pixbuf;
  const guchar *data;
  gsize size = 0;
  double scale;

  if (self->preset->thumbnail == NULL)
    return;

  data = g_bytes_get_data (self->preset->thumbnail, &size);
  loader = gdk_pixbuf_loader_new_with_type ("png", NULL);
  if (loader == NULL || !gdk_pixbuf_loader_write (loader, data, size, NULL) ||
      !gdk_pixbuf_loader_close (loader, NULL))
    return;

  pixbuf = gdk_pixbuf_loader_get_pixbuf (loader);
  scale = (double) THUMBNAIL_SIZE / MAX (gdk_pixbuf_get_width (pixbuf), gdk_pixbuf_get_height (pixbuf));
  small = gdk_pixbuf_scale_simple (pixbuf,
                                   MAX (1, (int) (gdk_pixbuf_get_width (pixbuf) * scale)),
                                   MAX (1, (int) (gdk_pixbuf_get_height (pixbuf) * scale)),
                                   GDK_INTERP_BILINEAR);
  gtk_image_set_from_pixbuf (self->thumbnail, small);
  gtk_style_context_remove_class (gtk_widget_get_style_context (GTK_WIDGET (self->thumbnail)), "dim-label");
}

static void
gouache_preset_row_finalize (GObject *object)
{
  GouachePresetRow *self = GOUACHE_PRESET_ROW (object);

  g_clear_pointer (&self->preset, gouache_preset_free);

  G_OBJECT_CLASS (gouache_preset_row_parent_class)->finalize (object);
}

static void
gouache_preset_row_class_init (GouachePresetRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = gouache_preset_row_finalize;

  signals[RENAME_REQUESTED] =
    g_signal_new ("rename-requested",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
  signals[DELETE_REQUESTED] =
    g_signal_new ("delete-requested",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-preset-row.ui");
  gtk_widget_class_bind_template_child (widget_class, GouachePresetRow, delete_button);
  gtk_widget_class_bind_template_child (widget_class, GouachePresetRow, name_label);
  gtk_widget_class_bind_template_child (widget_class, GouachePresetRow, rename_button);
  gtk_widget_class_bind_template_child (widget_class, GouachePresetRow, summary_label);
  gtk_widget_class_bind_template_child (widget_class, GouachePresetRow, thumbnail);
  gtk_widget_class_bind_template_callback (widget_class, delete_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, rename_clicked_cb);
}

static void
gouache_preset_row_init (GouachePresetRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

/**
 * gouache_preset_row_new:
 * @preset: the preset; copied
 *
 * Returns: (transfer floating): a new row
 */
GtkWidget *
gouache_preset_row_new (const GouachePreset *preset)
{
  GouachePresetRow *self;
  g_autofree char *text = NULL;
  g_autofree char *rename = NULL;
  g_autofree char *delete = NULL;

  g_return_val_if_fail (preset != NULL, NULL);

  self = g_object_new (GOUACHE_TYPE_PRESET_ROW, NULL);
  self->preset = gouache_preset_copy (preset);
  text = summary (preset);
  gtk_label_set_text (self->name_label, preset->name);
  gtk_label_set_text (self->summary_label, text);
  show_thumbnail (self);

  rename = g_strdup_printf (_("Rename %s"), preset->name);
  delete = g_strdup_printf (_("Delete %s"), preset->name);
  atk_object_set_name (gtk_widget_get_accessible (self->rename_button), rename);
  atk_object_set_name (gtk_widget_get_accessible (self->delete_button), delete);

  return GTK_WIDGET (self);
}

/**
 * gouache_preset_row_get_preset:
 * @self: a #GouachePresetRow
 *
 * Returns: (transfer none): the preset the row shows
 */
const GouachePreset *
gouache_preset_row_get_preset (GouachePresetRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_PRESET_ROW (self), NULL);

  return self->preset;
}

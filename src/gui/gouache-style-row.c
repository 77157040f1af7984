/* gouache-style-row.c: one style (LoRA) in the styles list: weight, switch, remove
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The slider and the number beside it share one adjustment, from −2 to 2 (negative weights
 * push away from a style, as other tools allow). The row reports changes through its
 * "weight" and "enabled" properties; the window listens and schedules a preview.
 */

#define G_LOG_DOMAIN "gouache-style-row"

#include "config.h"

#include <glib/gi18n.h>

#include "gouache-style-row.h"

struct _GouacheStyleRow
{
  GtkListBoxRow  parent_instance;

  /* Template widgets */
  GtkSwitch     *enabled_switch;
  GtkWidget     *insert_button;
  GtkLabel      *name_label;
  GtkWidget     *problem_icon;
  GtkWidget     *remove_button;
  GtkLabel      *triggers_label;
  GtkAdjustment *weight_adjustment;
  GtkWidget     *weight_box;
  GtkScale      *weight_scale;
  GtkSpinButton *weight_spin;

  char          *path;
  char          *trigger_words;
};

G_DEFINE_FINAL_TYPE (GouacheStyleRow, gouache_style_row, GTK_TYPE_LIST_BOX_ROW)

enum {
  PROP_0,
  PROP_PATH,
  PROP_TITLE,
  PROP_TRIGGER_WORDS,
  PROP_WEIGHT,
  PROP_ENABLED,
  N_PROPS
};

enum {
  REMOVE,
  INSERT_TRIGGER_WORDS,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
remove_button_clicked_cb (GouacheStyleRow *self,
                          GtkButton       *button)
{
  g_signal_emit (self, signals[REMOVE], 0);
}

static void
insert_button_clicked_cb (GouacheStyleRow *self,
                          GtkButton       *button)
{
  g_signal_emit (self, signals[INSERT_TRIGGER_WORDS], 0, self->trigger_words);
}

static void
weight_changed_cb (GouacheStyleRow *self,
                   GtkAdjustment   *adjustment)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WEIGHT]);
}

static void
enabled_changed_cb (GouacheStyleRow *self,
                    GParamSpec      *pspec,
                    GtkSwitch       *enabled_switch)
{
  gtk_widget_set_sensitive (self->weight_box, gtk_switch_get_active (enabled_switch));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ENABLED]);
}

/* Names the controls for screen readers after the style. */
static void
gouache_style_row_update_accessible_names (GouacheStyleRow *self)
{
  const char *name = gtk_label_get_text (self->name_label);
  g_autofree char *weight = g_strdup_printf (_("Weight of %s"), name);
  g_autofree char *enabled = g_strdup_printf (_("Use %s"), name);
  g_autofree char *remove = g_strdup_printf (_("Remove %s"), name);

  atk_object_set_name (gtk_widget_get_accessible (GTK_WIDGET (self->weight_scale)), weight);
  atk_object_set_name (gtk_widget_get_accessible (GTK_WIDGET (self->weight_spin)), weight);
  atk_object_set_name (gtk_widget_get_accessible (GTK_WIDGET (self->enabled_switch)), enabled);
  atk_object_set_name (gtk_widget_get_accessible (self->remove_button), remove);
}

/**
 * gouache_style_row_set_trigger_words:
 * @self: a #GouacheStyleRow
 * @trigger_words: (nullable): words the style was trained on, comma-separated
 */
void
gouache_style_row_set_trigger_words (GouacheStyleRow *self,
                                     const char      *trigger_words)
{
  g_return_if_fail (GOUACHE_IS_STYLE_ROW (self));

  gboolean any = trigger_words != NULL && trigger_words[0] != '\0';

  g_free (self->trigger_words);
  self->trigger_words = g_strdup (trigger_words);
  gtk_label_set_text (self->triggers_label, any ? trigger_words : "");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->triggers_label), any ? trigger_words : NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->triggers_label), any);
  gtk_widget_set_visible (self->insert_button, any);
}

static void
gouache_style_row_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  GouacheStyleRow *self = GOUACHE_STYLE_ROW (object);

  switch (prop_id)
    {
    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;
    case PROP_TITLE:
      g_value_set_string (value, gtk_label_get_text (self->name_label));
      break;
    case PROP_TRIGGER_WORDS:
      g_value_set_string (value, self->trigger_words);
      break;
    case PROP_WEIGHT:
      g_value_set_double (value, gouache_style_row_get_weight (self));
      break;
    case PROP_ENABLED:
      g_value_set_boolean (value, gouache_style_row_get_enabled (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_style_row_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  GouacheStyleRow *self = GOUACHE_STYLE_ROW (object);

  switch (prop_id)
    {
    case PROP_PATH:
      self->path = g_value_dup_string (value);
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->name_label), self->path);
      break;
    case PROP_TITLE:
      gtk_label_set_text (self->name_label, g_value_get_string (value));
      gouache_style_row_update_accessible_names (self);
      break;
    case PROP_TRIGGER_WORDS:
      gouache_style_row_set_trigger_words (self, g_value_get_string (value));
      break;
    case PROP_WEIGHT:
      gouache_style_row_set_weight (self, g_value_get_double (value));
      break;
    case PROP_ENABLED:
      gouache_style_row_set_enabled (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_style_row_finalize (GObject *object)
{
  GouacheStyleRow *self = GOUACHE_STYLE_ROW (object);

  g_free (self->path);
  g_free (self->trigger_words);

  G_OBJECT_CLASS (gouache_style_row_parent_class)->finalize (object);
}

static void
gouache_style_row_class_init (GouacheStyleRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = gouache_style_row_finalize;
  object_class->get_property = gouache_style_row_get_property;
  object_class->set_property = gouache_style_row_set_property;

  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_TITLE] =
    g_param_spec_string ("title", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_TRIGGER_WORDS] =
    g_param_spec_string ("trigger-words", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_WEIGHT] =
    g_param_spec_double ("weight", NULL, NULL,
                         -2.0, 2.0, 1.0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_ENABLED] =
    g_param_spec_boolean ("enabled", NULL, NULL,
                          TRUE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GouacheStyleRow::remove-requested:
   *
   * The remove button was clicked.
   */
  signals[REMOVE] =
    g_signal_new ("remove-requested",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * GouacheStyleRow::insert-trigger-words:
   * @words: the style's trigger words
   *
   * The user asked for the trigger words to go into the prompt.
   */
  signals[INSERT_TRIGGER_WORDS] =
    g_signal_new ("insert-trigger-words",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-style-row.ui");
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, enabled_switch);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, insert_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, name_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, problem_icon);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, remove_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, triggers_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, weight_adjustment);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, weight_box);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, weight_scale);
  gtk_widget_class_bind_template_child (widget_class, GouacheStyleRow, weight_spin);
  gtk_widget_class_bind_template_callback (widget_class, insert_button_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, remove_button_clicked_cb);
}

static void
gouache_style_row_init (GouacheStyleRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  g_signal_connect_object (self->weight_adjustment, "value-changed",
                           G_CALLBACK (weight_changed_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->enabled_switch, "notify::active",
                           G_CALLBACK (enabled_changed_cb), self, G_CONNECT_SWAPPED);
}

/**
 * gouache_style_row_new:
 * @path: the style's .safetensors file
 * @title: the name shown (and written in the image's settings)
 * @trigger_words: (nullable): words the style was trained on, comma-separated
 *
 * Returns: (transfer floating): a new row, enabled, at weight 1
 */
GtkWidget *
gouache_style_row_new (const char *path,
                       const char *title,
                       const char *trigger_words)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (title != NULL, NULL);

  return g_object_new (GOUACHE_TYPE_STYLE_ROW,
                       "path", path,
                       "title", title,
                       "trigger-words", trigger_words,
                       NULL);
}

const char *
gouache_style_row_get_path (GouacheStyleRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_STYLE_ROW (self), NULL);

  return self->path;
}

const char *
gouache_style_row_get_title (GouacheStyleRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_STYLE_ROW (self), NULL);

  return gtk_label_get_text (self->name_label);
}

const char *
gouache_style_row_get_trigger_words (GouacheStyleRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_STYLE_ROW (self), NULL);

  return self->trigger_words;
}

double
gouache_style_row_get_weight (GouacheStyleRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_STYLE_ROW (self), 0.0);

  return gtk_adjustment_get_value (self->weight_adjustment);
}

void
gouache_style_row_set_weight (GouacheStyleRow *self,
                              double           weight)
{
  g_return_if_fail (GOUACHE_IS_STYLE_ROW (self));

  gtk_adjustment_set_value (self->weight_adjustment, weight);
}

gboolean
gouache_style_row_get_enabled (GouacheStyleRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_STYLE_ROW (self), FALSE);

  return gtk_switch_get_active (self->enabled_switch);
}

void
gouache_style_row_set_enabled (GouacheStyleRow *self,
                               gboolean         enabled)
{
  g_return_if_fail (GOUACHE_IS_STYLE_ROW (self));

  gtk_switch_set_active (self->enabled_switch, enabled);
}

/**
 * gouache_style_row_set_problem:
 * @self: a #GouacheStyleRow
 * @problem: (nullable): why the style cannot be used, or %NULL when it can
 *
 * Shows a warning sign with @problem as its tooltip.
 */
void
gouache_style_row_set_problem (GouacheStyleRow *self,
                               const char      *problem)
{
  g_return_if_fail (GOUACHE_IS_STYLE_ROW (self));

  gtk_widget_set_visible (self->problem_icon, problem != NULL);
  gtk_widget_set_tooltip_text (self->problem_icon, problem);
}

/**
 * gouache_style_row_get_scale:
 * @self: a #GouacheStyleRow
 *
 * Returns: (transfer none): the weight slider
 */
GtkRange *
gouache_style_row_get_scale (GouacheStyleRow *self)
{
  g_return_val_if_fail (GOUACHE_IS_STYLE_ROW (self), NULL);

  return GTK_RANGE (self->weight_scale);
}

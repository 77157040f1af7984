/* gouache-application.c: the application, its actions and its one window
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-application"

#include "config.h"

#include <glib/gi18n.h>

#include "gouache-application.h"
#include "gouache-preferences-dialog.h"
#include "gouache-window.h"

struct _GouacheApplication
{
  GtkApplication  parent_instance;

  /* Weak reference: the dialog destroys itself when closed. */
  GtkWidget      *preferences_dialog;

  /* Objects of closed windows that are still finishing their work */
  guint           n_finishing;
};

G_DEFINE_FINAL_TYPE (GouacheApplication, gouache_application, GTK_TYPE_APPLICATION)

enum {
  PROP_0,
  PROP_FINISHING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
gouache_application_activate (GApplication *application)
{
  GtkWindow *window;

  window = gtk_application_get_active_window (GTK_APPLICATION (application));
  if (window == NULL)
    window = GTK_WINDOW (gouache_window_new (GOUACHE_APPLICATION (application)));

  gtk_window_present (window);
}

static void
gouache_application_quit_action (GSimpleAction *action,
                                 GVariant      *parameter,
                                 gpointer       user_data)
{
  GtkApplication *application = user_data;
  GList *windows;

  /* Destroying the windows lets each save its state; the application
   * ends when the last one is gone. */
  while ((windows = gtk_application_get_windows (application)) != NULL)
    gtk_widget_destroy (windows->data);
}

static void
gouache_application_about_action (GSimpleAction *action,
                                  GVariant      *parameter,
                                  gpointer       user_data)
{
  GtkApplication *application = user_data;
  const char *authors[] = { _("Gouache contributors"), NULL };
  const char *clip_credits[] = { _("OpenAI, MIT License"), NULL };
  GtkWidget *dialog;

  dialog = g_object_new (GTK_TYPE_ABOUT_DIALOG,
                         "transient-for", gtk_application_get_active_window (application),
                         "modal", TRUE,
                         "destroy-with-parent", TRUE,
                         "program-name", "Gouache",
                         "logo-icon-name", APP_ID,
                         "version", PACKAGE_VERSION,
                         "comments", _("Paint with Stable Diffusion on your own computer"),
                         "copyright", "© Gouache contributors",
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "authors", authors,
                         /* Translators: Replace this with your name and email, one per line. */
                         "translator-credits", _("translator-credits"),
                         NULL);
  gtk_about_dialog_add_credit_section (GTK_ABOUT_DIALOG (dialog),
                                       _("CLIP tokenizer vocabulary"),
                                       clip_credits);
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
gouache_application_preferences_action (GSimpleAction *action,
                                        GVariant      *parameter,
                                        gpointer       user_data)
{
  GouacheApplication *self = user_data;

  if (self->preferences_dialog == NULL)
    {
      GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (self));

      self->preferences_dialog = gouache_preferences_dialog_new (parent);
      g_object_add_weak_pointer (G_OBJECT (self->preferences_dialog),
                                 (gpointer *) &self->preferences_dialog);
    }

  gtk_window_present (GTK_WINDOW (self->preferences_dialog));
}

static const GActionEntry app_actions[] = {
  { "about", gouache_application_about_action },
  { "preferences", gouache_application_preferences_action },
  { "quit", gouache_application_quit_action },
};

static void
gouache_application_startup (GApplication *application)
{
  static const struct {
    const char *action;
    const char *accels[2];
  } accels[] = {
    { "app.preferences", { "<Primary>comma", NULL } },
    { "app.quit", { "<Primary>q", NULL } },
    { "win.cancel", { "Escape", NULL } },
    { "win.generate", { "<Primary>Return", NULL } },
    { "win.open", { "<Primary>o", NULL } },
    { "win.open-image", { "<Primary><Shift>o", NULL } },
    { "win.random-seed", { "<Primary>r", NULL } },
    { "win.save-preset", { "<Primary>s", NULL } },
    { "win.show-primary-menu", { "F10", NULL } },
  };
  g_autoptr(GtkCssProvider) css = NULL;

  G_APPLICATION_CLASS (gouache_application_parent_class)->startup (application);

  css = gtk_css_provider_new ();
  gtk_css_provider_load_from_resource (css, "/io/github/gouache/Gouache/style.css");
  gtk_style_context_add_provider_for_screen (gdk_screen_get_default (),
                                             GTK_STYLE_PROVIDER (css),
                                             GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);

  g_action_map_add_action_entries (G_ACTION_MAP (application),
                                   app_actions, G_N_ELEMENTS (app_actions),
                                   application);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (application),
                                           accels[i].action, accels[i].accels);

  gtk_window_set_default_icon_name (APP_ID);
}

static void
gouache_application_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  GouacheApplication *self = GOUACHE_APPLICATION (object);

  switch (prop_id)
    {
    case PROP_FINISHING:
      g_value_set_boolean (value, self->n_finishing > 0);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_application_class_init (GouacheApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *application_class = G_APPLICATION_CLASS (klass);

  object_class->get_property = gouache_application_get_property;

  application_class->activate = gouache_application_activate;
  application_class->startup = gouache_application_startup;

  /**
   * GouacheApplication:finishing:
   *
   * Whether work of a closed window (its engine's cancelled job) is still finishing; the
   * application keeps running until it is done.
   */
  properties[PROP_FINISHING] =
    g_param_spec_boolean ("finishing", NULL, NULL,
                          FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gouache_application_init (GouacheApplication *self)
{
}

/**
 * gouache_application_new:
 *
 * Creates the single-instance application: a second launch activates the
 * first, which presents its window.
 *
 * Returns: (transfer full): a new #GouacheApplication
 */
GouacheApplication *
gouache_application_new (void)
{
  return g_object_new (GOUACHE_TYPE_APPLICATION,
                       "application-id", APP_ID,
                       "flags", G_APPLICATION_DEFAULT_FLAGS,
                       NULL);
}

/**
 * gouache_application_get_finishing:
 * @self: a #GouacheApplication
 *
 * Returns: see #GouacheApplication:finishing
 */
gboolean
gouache_application_get_finishing (GouacheApplication *self)
{
  g_return_val_if_fail (GOUACHE_IS_APPLICATION (self), FALSE);

  return self->n_finishing > 0;
}

static void
finished_cb (gpointer  user_data,
             GObject  *where_the_object_was)
{
  GouacheApplication *self = user_data;

  self->n_finishing--;
  if (self->n_finishing == 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FINISHING]);
  g_application_release (G_APPLICATION (self));
  g_object_unref (self);
}

/**
 * _gouache_application_hold_until_finalized:
 * @self: a #GouacheApplication
 * @object: an object that will be finalized once its work is done
 *
 * Keeps the application running until @object is finalized: a closing window hands over
 * its engine, whose thread must finish before the process may exit.
 */
void
_gouache_application_hold_until_finalized (GouacheApplication *self,
                                           GObject            *object)
{
  g_return_if_fail (GOUACHE_IS_APPLICATION (self));
  g_return_if_fail (G_IS_OBJECT (object));

  g_application_hold (G_APPLICATION (self));
  if (self->n_finishing++ == 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FINISHING]);
  g_object_weak_ref (object, finished_cb, g_object_ref (self));
}

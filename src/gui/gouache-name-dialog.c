/* gouache-name-dialog.c: asks for a name (saving or renaming a preset)
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The accept button is only sensitive for a name that can be used: not empty, and not one
 * of the taken names unless replacing is allowed, which the hint under the entry then says.
 */

#define G_LOG_DOMAIN "gouache-name-dialog"

#include "config.h"

#include <glib/gi18n.h>

#include "gouache-name-dialog.h"

struct _GouacheNameDialog
{
  GtkDialog  parent_instance;

  /* Template widgets */
  GtkWidget *accept_button;
  GtkLabel  *hint_label;
  GtkEntry  *name_entry;

  char      *name;     /* the entry's text, stripped */
  GStrv      taken;
  gboolean   may_replace;
};

G_DEFINE_FINAL_TYPE (GouacheNameDialog, gouache_name_dialog, GTK_TYPE_DIALOG)

static void
name_changed_cb (GouacheNameDialog *self,
                 GtkEntry          *entry)
{
  const char *name;
  gboolean taken, usable;

  g_free (self->name);
  self->name = g_strstrip (g_strdup (gtk_entry_get_text (entry)));
  name = self->name;
  taken = self->taken != NULL && g_strv_contains ((const char * const *) self->taken, name);
  usable = name[0] != '\0' && (!taken || self->may_replace);

  gtk_widget_set_sensitive (self->accept_button, usable);
  if (taken && self->may_replace)
    gtk_label_set_text (self->hint_label, _("A preset of this name exists: it will be replaced."));
  else if (taken)
    gtk_label_set_text (self->hint_label, _("A preset of this name exists already."));
  else
    gtk_label_set_text (self->hint_label, "");
}

static void
gouache_name_dialog_finalize (GObject *object)
{
  GouacheNameDialog *self = GOUACHE_NAME_DIALOG (object);

  g_strfreev (self->taken);
  g_free (self->name);

  G_OBJECT_CLASS (gouache_name_dialog_parent_class)->finalize (object);
}

static void
gouache_name_dialog_class_init (GouacheNameDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = gouache_name_dialog_finalize;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-name-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, GouacheNameDialog, accept_button);
  gtk_widget_class_bind_template_child (widget_class, GouacheNameDialog, hint_label);
  gtk_widget_class_bind_template_child (widget_class, GouacheNameDialog, name_entry);
  gtk_widget_class_bind_template_callback (widget_class, name_changed_cb);
}

static void
gouache_name_dialog_init (GouacheNameDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  name_changed_cb (self, self->name_entry);
}

/**
 * gouache_name_dialog_new:
 * @parent: the window the dialog belongs to
 * @title: the dialog's title ("Save Preset")
 * @accept_label: the accept button, with a mnemonic ("_Save")
 * @name: (nullable): the name to start with
 *
 * Returns: (transfer floating): a new dialog; %GTK_RESPONSE_ACCEPT means the name is usable
 */
GtkWidget *
gouache_name_dialog_new (GtkWindow  *parent,
                         const char *title,
                         const char *accept_label,
                         const char *name)
{
  GouacheNameDialog *self;

  g_return_val_if_fail (GTK_IS_WINDOW (parent), NULL);

  self = g_object_new (GOUACHE_TYPE_NAME_DIALOG,
                       "transient-for", parent,
                       "title", title,
                       "use-header-bar", FALSE,
                       NULL);
  gtk_button_set_label (GTK_BUTTON (self->accept_button), accept_label);
  gouache_name_dialog_set_name (self, name);
  return GTK_WIDGET (self);
}

/**
 * gouache_name_dialog_get_name:
 * @self: a #GouacheNameDialog
 *
 * Returns: the name typed, without surrounding white space
 */
const char *
gouache_name_dialog_get_name (GouacheNameDialog *self)
{
  g_return_val_if_fail (GOUACHE_IS_NAME_DIALOG (self), NULL);

  return self->name;
}

void
gouache_name_dialog_set_name (GouacheNameDialog *self,
                              const char        *name)
{
  g_return_if_fail (GOUACHE_IS_NAME_DIALOG (self));

  gtk_entry_set_text (self->name_entry, name ? name : "");
  gtk_editable_select_region (GTK_EDITABLE (self->name_entry), 0, -1);
}

/**
 * gouache_name_dialog_set_taken_names:
 * @self: a #GouacheNameDialog
 * @names: (nullable): names in use
 * @may_replace: whether accepting a taken name is allowed (and replaces)
 */
void
gouache_name_dialog_set_taken_names (GouacheNameDialog  *self,
                                     const char * const *names,
                                     gboolean            may_replace)
{
  g_return_if_fail (GOUACHE_IS_NAME_DIALOG (self));

  g_strfreev (self->taken);
  self->taken = g_strdupv ((char **) names);
  self->may_replace = may_replace;
  name_changed_cb (self, self->name_entry);
}

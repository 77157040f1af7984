/* gouache-name-dialog.h: asks for a name (saving or renaming a preset)
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_NAME_DIALOG (gouache_name_dialog_get_type ())

G_DECLARE_FINAL_TYPE (GouacheNameDialog, gouache_name_dialog, GOUACHE, NAME_DIALOG, GtkDialog)

GtkWidget  *gouache_name_dialog_new             (GtkWindow          *parent,
                                                 const char         *title,
                                                 const char         *accept_label,
                                                 const char         *name);
const char *gouache_name_dialog_get_name        (GouacheNameDialog  *self);
void        gouache_name_dialog_set_name        (GouacheNameDialog  *self,
                                                 const char         *name);
void        gouache_name_dialog_set_taken_names (GouacheNameDialog  *self,
                                                 const char * const *names,
                                                 gboolean            may_replace);

G_END_DECLS

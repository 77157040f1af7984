/* gouache-preferences-dialog.h: the preferences, bound to GSettings
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_PREFERENCES_DIALOG (gouache_preferences_dialog_get_type ())

G_DECLARE_FINAL_TYPE (GouachePreferencesDialog, gouache_preferences_dialog, GOUACHE, PREFERENCES_DIALOG, GtkDialog)

GtkWidget *gouache_preferences_dialog_new (GtkWindow *parent);

G_END_DECLS

/* gouache-application.h: the application, its actions and its one window
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_APPLICATION (gouache_application_get_type ())

G_DECLARE_FINAL_TYPE (GouacheApplication, gouache_application, GOUACHE, APPLICATION, GtkApplication)

GouacheApplication *gouache_application_new           (void);
gboolean            gouache_application_get_finishing (GouacheApplication *self);

void                _gouache_application_hold_until_finalized (GouacheApplication *self,
                                                               GObject            *object);

G_END_DECLS

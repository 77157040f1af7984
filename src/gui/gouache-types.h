/* gouache-types.h: forward declarations of the window's types
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _GouacheApplication       GouacheApplication;
typedef struct _GouachePreferencesDialog GouachePreferencesDialog;
typedef struct _GouacheWindow            GouacheWindow;

G_END_DECLS

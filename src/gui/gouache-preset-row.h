/* gouache-preset-row.h: one preset in the presets popover
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-preset.h"
#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_PRESET_ROW (gouache_preset_row_get_type ())

G_DECLARE_FINAL_TYPE (GouachePresetRow, gouache_preset_row, GOUACHE, PRESET_ROW, GtkListBoxRow)

GtkWidget           *gouache_preset_row_new        (const GouachePreset *preset);
const GouachePreset *gouache_preset_row_get_preset (GouachePresetRow    *self);

G_END_DECLS

/* gouache-style-row.h: one style (LoRA) in the styles list: weight, switch, remove
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_STYLE_ROW (gouache_style_row_get_type ())

G_DECLARE_FINAL_TYPE (GouacheStyleRow, gouache_style_row, GOUACHE, STYLE_ROW, GtkListBoxRow)

GtkWidget  *gouache_style_row_new               (const char      *path,
                                                 const char      *title,
                                                 const char      *trigger_words);
const char *gouache_style_row_get_path          (GouacheStyleRow *self);
const char *gouache_style_row_get_title          (GouacheStyleRow *self);
const char *gouache_style_row_get_trigger_words (GouacheStyleRow *self);
void        gouache_style_row_set_trigger_words (GouacheStyleRow *self,
                                                 const char      *trigger_words);
double      gouache_style_row_get_weight        (GouacheStyleRow *self);
void        gouache_style_row_set_weight        (GouacheStyleRow *self,
                                                 double           weight);
gboolean    gouache_style_row_get_enabled       (GouacheStyleRow *self);
void        gouache_style_row_set_enabled       (GouacheStyleRow *self,
                                                 gboolean         enabled);
void        gouache_style_row_set_problem       (GouacheStyleRow *self,
                                                 const char      *problem);
GtkRange   *gouache_style_row_get_scale         (GouacheStyleRow *self);

G_END_DECLS

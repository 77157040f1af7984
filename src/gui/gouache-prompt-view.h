/* gouache-prompt-view.h: a prompt pane with its token counter
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

#include "gouache-job-engine.h"
#include "gouache-types.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_PROMPT_VIEW (gouache_prompt_view_get_type ())

G_DECLARE_FINAL_TYPE (GouachePromptView, gouache_prompt_view, GOUACHE, PROMPT_VIEW, GtkBox)

char        *gouache_prompt_view_get_text        (GouachePromptView *self);
void         gouache_prompt_view_set_text        (GouachePromptView *self,
                                                  const char        *text);
void         gouache_prompt_view_set_engine      (GouachePromptView *self,
                                                  GouacheJobEngine  *engine);
const char  *gouache_prompt_view_get_counter     (GouachePromptView *self);
GtkTextView *gouache_prompt_view_get_text_view   (GouachePromptView *self);
guint        gouache_prompt_view_get_n_chunk_marks (GouachePromptView *self);

G_END_DECLS

/* gouache-job-style.h: what the window shows about a style (LoRA) file
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * kohya's training scripts record in a LoRA's metadata the name it was saved under
 * (ss_output_name) and how often each caption tag occurred in each training folder
 * (ss_tag_frequency, JSON: {"10_ink": {"ink wash": 40, "mountain": 12}, ...}). The most
 * frequent tags are the words that call the style up: its trigger words.
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* How many tags the trigger words list at most. */
#define GOUACHE_STYLE_TRIGGER_WORDS_MAX 6

typedef struct {
  char  *path;
  char  *name;          /* ss_output_name, else the file name without ".safetensors" */
  char  *trigger_words; /* "ink wash, mountain", or NULL when the file records none */
  gsize  tensors;       /* in the file */
  gsize  applied;       /* of those, the ones that change a weight of the loaded model */
} GouacheStyleInfo;

#define GOUACHE_TYPE_STYLE_INFO (gouache_style_info_get_type ())

GType             gouache_style_info_get_type       (void) G_GNUC_CONST;
GouacheStyleInfo *gouache_style_info_copy           (const GouacheStyleInfo *info);
void              gouache_style_info_free           (GouacheStyleInfo       *info);
char             *gouache_style_name_from_path      (const char             *path);
char             *gouache_style_trigger_words       (const char             *tag_frequency);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheStyleInfo, gouache_style_info_free)

G_END_DECLS

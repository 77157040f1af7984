/* gouache-job-style.c: what the window shows about a style (LoRA) file
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-job-style"

#include <json-glib/json-glib.h>
#include <string.h>

#include "gouache-job-style.h"

G_DEFINE_BOXED_TYPE (GouacheStyleInfo, gouache_style_info,
                     gouache_style_info_copy, gouache_style_info_free)

GouacheStyleInfo *
gouache_style_info_copy (const GouacheStyleInfo *info)
{
  GouacheStyleInfo *copy;

  g_return_val_if_fail (info != NULL, NULL);

  copy = g_memdup2 (info, sizeof *info);
  copy->path = g_strdup (info->path);
  copy->name = g_strdup (info->name);
  copy->trigger_words = g_strdup (info->trigger_words);
  return copy;
}

void
gouache_style_info_free (GouacheStyleInfo *info)
{
  if (info == NULL)
    return;

  g_free (info->path);
  g_free (info->name);
  g_free (info->trigger_words);
  g_free (info);
}

/**
 * gouache_style_name_from_path:
 * @path: a style file
 *
 * Returns: (transfer full): the file name without ".safetensors", for display
 */
char *
gouache_style_name_from_path (const char *path)
{
  g_autofree char *name = g_filename_display_basename (path);
  g_autofree char *folded = g_ascii_strdown (name, -1);

  if (g_str_has_suffix (folded, ".safetensors"))
    name[strlen (name) - strlen (".safetensors")] = '\0';

  return g_steal_pointer (&name);
}

typedef struct {
  const char *tag;
  gint64      count;
} TagCount;

static int
compare_tag_counts (gconstpointer a,
                    gconstpointer b)
{
  const TagCount *x = a, *y = b;

  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  return strcmp (x->tag, y->tag);
}

/* Adds each tag's count of one training folder into totals. */
static void
add_folder_tags (JsonObject *folder,
                 GHashTable *totals)
{
  g_autoptr(GList) tags = json_object_get_members (folder);

  for (const GList *l = tags; l != NULL; l = l->next)
    {
      JsonNode *node = json_object_get_member (folder, l->data);
      gint64 count = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_int (node) : 0;
      g_autofree char *tag = g_strstrip (g_strdup (l->data));

      if (tag[0] == '\0' || count <= 0)
        continue;
      count += GPOINTER_TO_SIZE (g_hash_table_lookup (totals, tag));
      g_hash_table_insert (totals, g_steal_pointer (&tag), GSIZE_TO_POINTER ((gsize) count));
    }
}

/**
 * gouache_style_trigger_words:
 * @tag_frequency: (nullable): the ss_tag_frequency metadata
 *
 * Returns: (transfer full) (nullable): the most frequent tags over all training folders,
 *   comma-separated, or %NULL when there are none or the metadata is malformed
 */
char *
gouache_style_trigger_words (const char *tag_frequency)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GHashTable) totals = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GArray) counts = g_array_new (FALSE, FALSE, sizeof (TagCount));
  g_autoptr(GString) words = g_string_new (NULL);
  g_autoptr(GList) folders = NULL;
  GHashTableIter iter;
  gpointer key, value;
  JsonObject *root;

  if (tag_frequency == NULL || !json_parser_load_from_data (parser, tag_frequency, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;

  root = json_node_get_object (json_parser_get_root (parser));
  folders = json_object_get_members (root);
  for (const GList *l = folders; l != NULL; l = l->next)
    {
      JsonNode *node = json_object_get_member (root, l->data);

      if (JSON_NODE_HOLDS_OBJECT (node))
        add_folder_tags (json_node_get_object (node), totals);
    }

  g_hash_table_iter_init (&iter, totals);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_array_append_val (counts, ((TagCount) { key, (gint64) GPOINTER_TO_SIZE (value) }));
  g_array_sort (counts, compare_tag_counts);

  for (guint i = 0; i < MIN (counts->len, GOUACHE_STYLE_TRIGGER_WORDS_MAX); i++)
    g_string_append_printf (words, "%s%s", i > 0 ? ", " : "", g_array_index (counts, TagCount, i).tag);

  return words->len > 0 ? g_string_free (g_steal_pointer (&words), FALSE) : NULL;
}

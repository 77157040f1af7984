/* gouache-path.c: file paths as the window shows them
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-path"

#include "config.h"

#include <string.h>

#include "gouache-path.h"

/**
 * gouache_path_display_name:
 * @path: an absolute path in the file-name encoding
 *
 * Returns: (transfer full): @path in UTF-8 with the home folder written as "~"
 */
char *
gouache_path_display_name (const char *path)
{
  g_autofree char *display = NULL;
  const char *home = g_get_home_dir ();
  gsize home_len = strlen (home);

  g_return_val_if_fail (path != NULL, NULL);

  display = g_filename_display_name (path);
  if (home_len > 1 && g_str_has_prefix (display, home) &&
      (display[home_len] == '/' || display[home_len] == '\0'))
    return g_strconcat ("~", display + home_len, NULL);

  return g_steal_pointer (&display);
}

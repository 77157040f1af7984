/* gouache-data.c: where Gouache finds its installed data files
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-data"

#include "gouache-data.h"

/**
 * gouache_data_file:
 * @name: a file name inside the data folder, such as %GOUACHE_DATA_VOCABULARY
 *
 * Returns: (transfer full): the path of @name in the first of $GOUACHE_DATA_DIR, the installed
 *   data folder and the source tree's data/ folder that applies (see the header)
 */
char *
gouache_data_file (const char *name)
{
  const char *override = g_getenv ("GOUACHE_DATA_DIR");
  g_autofree char *installed = NULL;

  g_return_val_if_fail (name != NULL, NULL);

  if (override != NULL && override[0] != '\0')
    return g_build_filename (override, name, NULL);

  installed = g_build_filename (GOUACHE_PKGDATADIR, name, NULL);
  if (g_file_test (installed, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&installed);

  return g_build_filename (GOUACHE_SOURCE_DATA_DIR, name, NULL);
}

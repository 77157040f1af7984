/* main.c: starts the Gouache window
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache"

#include "config.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "gouache-application.h"

/* TRUE when this process runs the very file meson linked in the build tree
 * (same device and inode), not an installed copy: the installed binary
 * carries the same build paths but is a different file. */
static gboolean
running_from_build_tree (void)
{
  GStatBuf self_stat, built_stat;

  if (g_stat ("/proc/self/exe", &self_stat) != 0 ||
      g_stat (GOUACHE_BUILD_EXECUTABLE, &built_stat) != 0)
    return FALSE;

  return self_stat.st_dev == built_stat.st_dev && self_stat.st_ino == built_stat.st_ino;
}

/* An uninstalled build has no installed schema: put the one compiled in the
 * build tree first on GSettings' search path, before any GSettings exists. */
static void
use_build_tree_schemas (void)
{
  const char *current = g_getenv ("GSETTINGS_SCHEMA_DIR");
  g_autofree char *search_path = NULL;

  if (current != NULL && current[0] != '\0')
    search_path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, GOUACHE_BUILD_SCHEMA_DIR, current, NULL);
  else
    search_path = g_strdup (GOUACHE_BUILD_SCHEMA_DIR);

  g_setenv ("GSETTINGS_SCHEMA_DIR", search_path, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GouacheApplication) application = NULL;
  const char *locale_dir = LOCALEDIR;

  if (running_from_build_tree ())
    {
      use_build_tree_schemas ();
      locale_dir = GOUACHE_BUILD_LOCALE_DIR;
    }

  bindtextdomain (GETTEXT_PACKAGE, locale_dir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  application = gouache_application_new ();

  return g_application_run (G_APPLICATION (application), argc, argv);
}

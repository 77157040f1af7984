/* gouache-path.h: file paths as the window shows them
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *gouache_path_display_name (const char *path);

G_END_DECLS

/* gouache-data.h: where Gouache finds its installed data files
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The CLIP vocabulary and the key list of the demo model are installed in
 * $prefix/share/gouache. $GOUACHE_DATA_DIR overrides that folder (the tests set it); a
 * program run from the build tree, before `meson install`, falls back to data/ in the source
 * tree.
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The names of the data files. */
#define GOUACHE_DATA_VOCABULARY     "bpe_simple_vocab_16e6.txt.gz"
#define GOUACHE_DATA_DEMO_MODEL_KEYS "keys_tiny.json"

char *gouache_data_file (const char *name);

G_END_DECLS

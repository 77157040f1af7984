/* gouache-preset-store.h: saved blends ("presets") in an SQLite database
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A preset is everything needed to make an image again: the model, the styles with their
 * weights, the prompts and the generation settings, plus a thumbnail. The store keeps them in
 * g_get_user_data_dir()/gouache/presets.db (gouache_preset_store_default_path), in two tables
 * (presets, and their styles in order), whose layout is versioned by PRAGMA user_version and
 * brought up to date by numbered migrations when the store is opened (a database written by
 * a newer Gouache is refused rather than damaged). The database runs in WAL mode with
 * synchronous=FULL: every change is one transaction, so a process killed in the middle of a
 * write leaves the store readable with every preset it had committed. SQL is only ever run
 * as prepared statements with bound values.
 *
 * Presets travel as JSON (gouache_preset_store_export/import; the format is in
 * gouache-preset.h), validated field by field before anything is stored.
 */

#pragma once

#include <glib-object.h>

#include "gouache-preset.h"

G_BEGIN_DECLS

#define GOUACHE_TYPE_PRESET_STORE (gouache_preset_store_get_type ())
G_DECLARE_FINAL_TYPE (GouachePresetStore, gouache_preset_store, GOUACHE, PRESET_STORE, GObject)

/* g_get_user_data_dir()/gouache/presets.db */
char               *gouache_preset_store_default_path (void);

/* Opens (creating it and its folder when missing) and migrates the store at path. */
GouachePresetStore *gouache_preset_store_new       (const char          *path,
                                                    GError             **error);

/* Runs SQLite's integrity check: FALSE with GOUACHE_ERROR_FORMAT naming the damage. */
gboolean            gouache_preset_store_check     (GouachePresetStore  *self,
                                                    GError             **error);

/* Stores preset (validated first) under its name, failing if the name is taken unless
 * replace: then the stored preset's settings are replaced and its creation time kept. */
gboolean            gouache_preset_store_save      (GouachePresetStore  *self,
                                                    GouachePreset       *preset,
                                                    gboolean             replace,
                                                    GError             **error);
/* (transfer full): the preset, or NULL with G_IO_ERROR_NOT_FOUND */
GouachePreset      *gouache_preset_store_get       (GouachePresetStore  *self,
                                                    const char          *name,
                                                    GError             **error);
/* (transfer container) (element-type GouachePreset): every preset, by name */
GPtrArray          *gouache_preset_store_list      (GouachePresetStore  *self,
                                                    GError             **error);
gboolean            gouache_preset_store_rename    (GouachePresetStore  *self,
                                                    const char          *name,
                                                    const char          *new_name,
                                                    GError             **error);
gboolean            gouache_preset_store_duplicate (GouachePresetStore  *self,
                                                    const char          *name,
                                                    const char          *new_name,
                                                    GError             **error);
gboolean            gouache_preset_store_delete    (GouachePresetStore  *self,
                                                    const char          *name,
                                                    GError             **error);

/* JSON of the named presets (all of them when names is NULL). */
char               *gouache_preset_store_export    (GouachePresetStore  *self,
                                                    const char * const  *names,
                                                    GError             **error);
/* Validates every preset of the JSON, then stores them all in one transaction (or none).
 * A name already in the store is an error unless replace. Returns the number imported, or
 * -1 with error set. */
int                 gouache_preset_store_import    (GouachePresetStore  *self,
                                                    const char          *json,
                                                    gboolean             replace,
                                                    GError             **error);

G_END_DECLS

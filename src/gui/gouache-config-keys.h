/* gouache-config-keys.h: the GSettings schema and its keys
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#define GOUACHE_SETTINGS_SCHEMA          "io.github.gouache.Gouache"

#define GOUACHE_SETTINGS_MODEL_FOLDERS    "model-folders"
#define GOUACHE_SETTINGS_RECENT_MODELS    "recent-models"
#define GOUACHE_SETTINGS_THREADS          "threads"
#define GOUACHE_SETTINGS_PREVIEW_WIDTH    "preview-width"
#define GOUACHE_SETTINGS_PREVIEW_HEIGHT   "preview-height"
#define GOUACHE_SETTINGS_PREVIEW_STEPS    "preview-steps"
#define GOUACHE_SETTINGS_OUTPUT_FOLDER    "output-folder"
#define GOUACHE_SETTINGS_LIVE_PREVIEW     "live-preview"
#define GOUACHE_SETTINGS_WINDOW_WIDTH     "window-width"
#define GOUACHE_SETTINGS_WINDOW_HEIGHT    "window-height"
#define GOUACHE_SETTINGS_WINDOW_MAXIMIZED "window-maximized"

/* How many entries recent-models keeps. */
#define GOUACHE_RECENT_MODELS_MAX 10

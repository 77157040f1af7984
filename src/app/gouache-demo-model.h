/* gouache-demo-model.h: a tiny model with random weights, to try every control at once
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * No real weights ship with Gouache. The demo model is the tests' tiny deterministic random
 * checkpoint (17 M parameters, SD 1.x layout; core/gc-random-checkpoint.h), written from the
 * installed key list into the user's cache folder at first use. Its weights are random: it
 * draws noise, not pictures, but it draws it in a second, so the whole window can be tried.
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

char     *gouache_demo_model_path         (void);
gboolean  gouache_demo_model_is_demo      (const char           *path);

void      gouache_demo_model_ensure_async (const char           *keys_path,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
char     *gouache_demo_model_ensure_finish (GAsyncResult        *result,
                                            GError             **error);

G_END_DECLS

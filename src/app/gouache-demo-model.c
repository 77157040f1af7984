/* gouache-demo-model.c: a tiny model with random weights, to try every control at once
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-demo-model"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "gc-random-checkpoint.h"
#include "gouache-demo-model.h"
#include "gouache-error.h"

/* Bump when the key list changes, so an old file is not taken for the new one. */
#define DEMO_MODEL_NAME "demo-random-tiny-v1.safetensors"

/**
 * gouache_demo_model_path:
 *
 * Returns: (transfer full): where the demo model is written: the user cache folder's
 *   gouache/demo-random-tiny-v1.safetensors
 */
char *
gouache_demo_model_path (void)
{
  return g_build_filename (g_get_user_cache_dir (), "gouache", DEMO_MODEL_NAME, NULL);
}

/**
 * gouache_demo_model_is_demo:
 * @path: (nullable): a model path
 *
 * Returns: whether @path is the demo model
 */
gboolean
gouache_demo_model_is_demo (const char *path)
{
  g_autofree char *demo = gouache_demo_model_path ();

  return path != NULL && g_strcmp0 (path, demo) == 0;
}

static void
ensure_worker (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  const char *keys_path = task_data;
  g_autofree char *path = gouache_demo_model_path ();
  g_autofree char *folder = g_path_get_dirname (path);
  g_autoptr(GError) error = NULL;
  gc_error err = { 0 };

  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_task_return_pointer (task, g_steal_pointer (&path), g_free);
      return;
    }

  if (g_mkdir_with_parents (folder, 0700) != 0)
    {
      int saved_errno = errno;

      g_task_return_new_error (task, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                               _("Could not create the folder “%s”: %s"),
                               folder, g_strerror (saved_errno));
      return;
    }

  /* The writer replaces the file atomically: a half-written demo model never exists. */
  if (gc_random_checkpoint_write (keys_path, path, &err) != GC_OK)
    {
      gouache_set_error_from_gc (&error, &err, _("Could not write the demo model"));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  g_task_return_pointer (task, g_steal_pointer (&path), g_free);
}

/**
 * gouache_demo_model_ensure_async:
 * @keys_path: the key list of the tiny model (gouache_data_file (%GOUACHE_DATA_DEMO_MODEL_KEYS))
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the model's path
 * @user_data: data for @callback
 *
 * Writes the demo model unless it is there already (a fraction of a second), on a worker.
 */
void
gouache_demo_model_ensure_async (const char          *keys_path,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (keys_path != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, gouache_demo_model_ensure_async);
  g_task_set_task_data (task, g_strdup (keys_path), g_free);
  g_task_run_in_thread (task, ensure_worker);
}

/**
 * gouache_demo_model_ensure_finish:
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the demo model's path, or %NULL with @error set
 */
char *
gouache_demo_model_ensure_finish (GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

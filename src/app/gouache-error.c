/* gouache-error.c: the GOUACHE_ERROR domain, and the core's status codes mapped onto it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-error"

#include "gouache-error.h"

G_DEFINE_QUARK (gouache-error-quark, gouache_error)

/**
 * gouache_error_from_status:
 * @status: a core status other than %GC_OK
 *
 * Returns: the #GouacheError code that stands for @status
 */
GouacheError
gouache_error_from_status (gc_status status)
{
  switch (status)
    {
    case GC_ERR_INVALID:
      return GOUACHE_ERROR_INVALID;
    case GC_ERR_IO:
      return GOUACHE_ERROR_IO;
    case GC_ERR_FORMAT:
      return GOUACHE_ERROR_FORMAT;
    case GC_ERR_UNSUPPORTED:
      return GOUACHE_ERROR_UNSUPPORTED;
    case GC_ERR_MISMATCH:
      return GOUACHE_ERROR_MISMATCH;
    case GC_ERR_NOMEM:
      return GOUACHE_ERROR_NOMEM;
    case GC_ERR_CANCELLED:
      return GOUACHE_ERROR_CANCELLED;
    case GC_OK:
    default:
      g_return_val_if_reached (GOUACHE_ERROR_INVALID);
    }
}

/**
 * gouache_set_error_from_gc:
 * @error: return location for a #GError, or %NULL
 * @err: a core error whose code is not %GC_OK
 * @context: (nullable): what was being done, already translated ("Loading “v1-5.safetensors”"),
 *   put in front of the core's message
 *
 * Sets @error in the %GOUACHE_ERROR domain from the code and message that a core call left in
 * @err. The core's messages are English; @context is where the translated words go.
 */
void
gouache_set_error_from_gc (GError         **error,
                           const gc_error  *err,
                           const char      *context)
{
  GouacheError code;

  g_return_if_fail (err != NULL);
  g_return_if_fail (err->code != GC_OK);

  code = gouache_error_from_status (err->code);
  if (context != NULL)
    g_set_error (error, GOUACHE_ERROR, code, "%s: %s", context, err->message);
  else
    g_set_error_literal (error, GOUACHE_ERROR, code, err->message);
}

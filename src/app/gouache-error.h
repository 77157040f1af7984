/* gouache-error.h: the GOUACHE_ERROR domain, and the core's status codes mapped onto it
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

#include "gc-error.h"

G_BEGIN_DECLS

#define GOUACHE_ERROR (gouache_error_quark ())

/* One code per gc_status other than GC_OK, in the same order. File-system failures keep
 * GLib's own domains (G_FILE_ERROR, G_IO_ERROR, including G_IO_ERROR_CANCELLED for a
 * GCancellable); GOUACHE_ERROR says what was wrong with a request or with a file's contents. */
typedef enum {
  GOUACHE_ERROR_INVALID,     /* a bad argument or request */
  GOUACHE_ERROR_IO,          /* the engine could not open, read or write a file */
  GOUACHE_ERROR_FORMAT,      /* a file's contents are malformed */
  GOUACHE_ERROR_UNSUPPORTED, /* well-formed, but not something Gouache can use */
  GOUACHE_ERROR_MISMATCH,    /* made for another model */
  GOUACHE_ERROR_NOMEM,       /* out of memory */
  GOUACHE_ERROR_CANCELLED,   /* the engine's cancel flag was raised */
} GouacheError;

GQuark       gouache_error_quark       (void);

GouacheError gouache_error_from_status (gc_status       status);
void         gouache_set_error_from_gc (GError        **error,
                                        const gc_error *err,
                                        const char     *context);

G_END_DECLS

/* gc-error.h — status codes and the error message buffer of the engine.
 *
 * Every fallible core function returns a gc_status and, where the caller passes a gc_error,
 * fills in a one-line message that names the problem ("tensor 'x': data_offsets [0, 9] run past
 * the end of the 8-byte data section"). The core never prints, exits or aborts on bad input;
 * assert() is only used for programmer errors (sizes that the caller computed wrongly).
 */
#pragma once

#include <stdarg.h>

typedef enum {
  GC_OK = 0,
  GC_ERR_INVALID,     /* a bad argument or request from the caller */
  GC_ERR_IO,          /* a file could not be opened, read or written */
  GC_ERR_FORMAT,      /* a file's contents are malformed */
  GC_ERR_UNSUPPORTED, /* well-formed, but not something Gouache can use */
  GC_ERR_MISMATCH,    /* made for another model (shapes or family do not fit) */
  GC_ERR_NOMEM,       /* out of memory */
  GC_ERR_CANCELLED,   /* the caller's cancel flag was raised */
} gc_status;

enum { GC_ERROR_MESSAGE_MAX = 512 };

typedef struct {
  gc_status code;
  char message[GC_ERROR_MESSAGE_MAX];
} gc_error;

/* Records code and a printf-style message in err (which may be NULL) and returns code. */
gc_status gc_error_set (gc_error *err, gc_status code, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

/* Puts "context: " in front of the message already in err; returns err->code (GC_OK if err is NULL). */
gc_status gc_error_prefix (gc_error *err, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

void gc_error_clear (gc_error *err);

/* A short English name for a status code ("malformed file"). */
const char *gc_status_name (gc_status code);

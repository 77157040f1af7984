#include "gc-error.h"

#include <stdio.h>
#include <string.h>

gc_status
gc_error_set (gc_error *err, gc_status code, const char *format, ...)
{
  if (err == NULL)
    return code;
  va_list args;
  va_start (args, format);
  vsnprintf (err->message, sizeof err->message, format, args);
  va_end (args);
  err->code = code;
  return code;
}

gc_status
gc_error_prefix (gc_error *err, const char *format, ...)
{
  if (err == NULL)
    return GC_OK;
  char prefix[GC_ERROR_MESSAGE_MAX];
  va_list args;
  va_start (args, format);
  int n = vsnprintf (prefix, sizeof prefix, format, args);
  va_end (args);
  if (n < 0)
    return err->code;
  char joined[GC_ERROR_MESSAGE_MAX];
  snprintf (joined, sizeof joined, "%s: %s", prefix, err->message);
  memcpy (err->message, joined, sizeof joined);
  return err->code;
}

void
gc_error_clear (gc_error *err)
{
  if (err == NULL)
    return;
  err->code = GC_OK;
  err->message[0] = '\0';
}

const char *
gc_status_name (gc_status code)
{
  switch (code)
    {
    case GC_OK: return "success";
    case GC_ERR_INVALID: return "invalid request";
    case GC_ERR_IO: return "input/output error";
    case GC_ERR_FORMAT: return "malformed file";
    case GC_ERR_UNSUPPORTED: return "unsupported";
    case GC_ERR_MISMATCH: return "made for another model";
    case GC_ERR_NOMEM: return "out of memory";
    case GC_ERR_CANCELLED: return "cancelled";
    }
  return "unknown error";
}

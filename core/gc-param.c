#include "gc-param.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void
format_shape (char *out, size_t size, int ndim, const int64_t *shape)
{
  size_t used = 0;
  used += snprintf (out + used, size - used, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += snprintf (out + used, size - used, i ? ", %lld" : "%lld", (long long) shape[i]);
  if (used < size)
    snprintf (out + used, size - used, "]");
}

gc_status
gc_param_bind (gc_param *p, const gc_checkpoint *checkpoint, const char *key, int ndim,
               const int64_t *shape, gc_error *err)
{
  const gc_st_tensor *t = gc_checkpoint_find (checkpoint, key);
  if (t == NULL)
    return gc_error_set (err, GC_ERR_FORMAT, "the checkpoint has no tensor '%s'", key);
  if (!gc_dtype_is_float (t->dtype))
    return gc_error_set (err, GC_ERR_FORMAT, "tensor '%s' holds %s, not floating-point weights",
                         key, gc_dtype_name (t->dtype));
  bool ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = shape[i] < 0 || shape[i] == t->shape[i];
  if (!ok)
    {
      char have[128], want[128];
      format_shape (have, sizeof have, t->ndim, t->shape);
      format_shape (want, sizeof want, ndim, shape);
      return gc_error_set (err, GC_ERR_FORMAT, "tensor '%s' has shape %s, expected %s", key, have,
                           want);
    }
  p->weight = gc_st_tensor_weight (t);
  p->patch = gc_checkpoint_patch_slot (checkpoint, key);
  return GC_OK;
}

gc_status
gc_param_bindf (gc_param *p, const gc_checkpoint *checkpoint, int ndim, const int64_t *shape,
                gc_error *err, const char *format, ...)
{
  char key[256];
  va_list args;
  va_start (args, format);
  vsnprintf (key, sizeof key, format, args);
  va_end (args);
  return gc_param_bind (p, checkpoint, key, ndim, shape, err);
}

bool
gc_checkpoint_hasf (const gc_checkpoint *checkpoint, const char *format, ...)
{
  char key[256];
  va_list args;
  va_start (args, format);
  vsnprintf (key, sizeof key, format, args);
  va_end (args);
  return gc_checkpoint_find (checkpoint, key) != NULL;
}

int64_t
gc_param_numel (const gc_param *p)
{
  return gc_weight_numel (&p->weight);
}

bool
gc_param_is_patched (const gc_param *p)
{
  return p->patch != NULL && *p->patch != NULL;
}

const float *
gc_param_f32 (gc_arena *scratch, const gc_param *p)
{
  if (gc_param_is_patched (p))
    return gc_param_patch_weight (scratch, *p->patch, &p->weight);
  if (p->weight.dtype == GC_DTYPE_F32 && ((uintptr_t) p->weight.data & 3) == 0)
    return p->weight.data;
  float *out = gc_arena_floats (scratch, (size_t) gc_param_numel (p));
  if (out)
    gc_weight_to_f32 (out, &p->weight);
  return out;
}

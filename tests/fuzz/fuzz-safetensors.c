/* libFuzzer harness: any byte string given to the safetensors reader must be either rejected
 * with a message or accepted with every tensor inside the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gc-safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Reads every byte a tensor claims, so that the sanitizers see any access outside the input. */
static unsigned
touch_tensor (const gc_st_tensor *t)
{
  unsigned sum = 0;
  const unsigned char *p = t->data;
  for (size_t i = 0; i < t->nbytes; i++)
    sum += p[i];
  size_t n = strlen (t->name);
  return sum + (unsigned) n + (unsigned) t->ndim;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* a copy of exactly size bytes, so that reading one byte past the end is caught */
  unsigned char *copy = malloc (size ? size : 1);
  if (copy == NULL)
    return 0;
  memcpy (copy, data, size);
  gc_safetensors *file;
  gc_error err;
  if (gc_safetensors_open_memory (&file, copy, size, &err) != GC_OK)
    {
      if (strlen (err.message) == 0)
        abort (); /* every refusal explains itself */
      free (copy);
      return 0;
    }
  volatile unsigned sink = 0;
  for (size_t i = 0; i < gc_safetensors_count (file); i++)
    {
      const gc_st_tensor *t = gc_safetensors_at (file, i);
      sink += touch_tensor (t);
      if (gc_safetensors_find (file, t->name) != t)
        abort ();
      gc_weight w = gc_st_tensor_weight (t);
      sink += (unsigned) w.ndim;
    }
  for (size_t i = 0; i < gc_safetensors_metadata_count (file); i++)
    {
      const char *key = gc_safetensors_metadata_key (file, i);
      const char *value = gc_safetensors_metadata_value (file, i);
      sink += (unsigned) (strlen (key) + strlen (value));
      if (gc_safetensors_metadata (file, key) != value)
        abort ();
    }
  size_t data_size;
  const unsigned char *section = gc_safetensors_data_section (file, &data_size);
  if (section + data_size != copy + gc_safetensors_file_size (file))
    abort ();
  (void) sink;
  gc_safetensors_close (file);
  free (copy);
  return 0;
}

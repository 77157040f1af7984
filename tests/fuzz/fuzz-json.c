/* libFuzzer harness for the JSON parser: no input may crash it, and whatever it accepts can be
 * walked completely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gc-json.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static size_t
walk (const gc_json_value *v)
{
  size_t n = 1;
  switch (gc_json_type_of (v))
    {
    case GC_JSON_ARRAY:
      for (size_t i = 0; i < gc_json_length (v); i++)
        n += walk (gc_json_array_at (v, i));
      break;
    case GC_JSON_OBJECT:
      for (size_t i = 0; i < gc_json_length (v); i++)
        {
          size_t key_length;
          const char *key = gc_json_member_key (v, i, &key_length);
          /* the quoted form of every decoded string parses back to the same bytes */
          size_t quoted = gc_json_quote (NULL, key, key_length);
          if (quoted == SIZE_MAX)
            abort ();
          n += key_length + walk (gc_json_member_value (v, i));
        }
      break;
    case GC_JSON_STRING:
      {
        size_t length;
        const char *s = gc_json_string (v, &length);
        size_t quoted = gc_json_quote (NULL, s, length);
        char *text = malloc (quoted);
        if (quoted == SIZE_MAX || text == NULL)
          abort ();
        gc_json_quote (text, s, length);
        gc_json *again;
        if (gc_json_parse (&again, text, quoted, NULL) != GC_OK)
          abort ();
        size_t again_length;
        const char *t = gc_json_string (gc_json_root (again), &again_length);
        if (again_length != length || memcmp (s, t, length) != 0)
          abort ();
        gc_json_free (again);
        free (text);
        n += length;
        break;
      }
    case GC_JSON_NUMBER:
      {
        uint64_t u;
        int64_t i;
        n += (size_t) gc_json_uint64 (v, &u) + (size_t) gc_json_int64 (v, &i);
        n += gc_json_number (v) > 0;
        break;
      }
    default:
      break;
    }
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *copy = malloc (size ? size : 1);
  if (copy == NULL)
    return 0;
  memcpy (copy, data, size);
  gc_json *doc;
  gc_error err;
  if (gc_json_parse (&doc, copy, size, &err) == GC_OK)
    {
      volatile size_t sink = walk (gc_json_root (doc));
      (void) sink;
      gc_json_free (doc);
    }
  else if (strlen (err.message) == 0)
    abort ();
  free (copy);
  return 0;
}

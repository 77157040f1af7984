/* gc-json.h — a strict, bounded JSON parser (RFC 8259) for untrusted input.
 *
 * Used for safetensors headers, reference manifests and key lists. Rejects (GC_ERR_FORMAT, with
 * the byte offset) trailing garbage, invalid UTF-8, unpaired surrogates, control characters in
 * strings, leading zeros, nesting deeper than 64 levels. Duplicate object keys are kept; callers
 * that care check for them. Numbers keep their source text so integers up to 2⁶⁴−1 convert
 * exactly.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gc-error.h"

typedef enum {
  GC_JSON_NULL,
  GC_JSON_FALSE,
  GC_JSON_TRUE,
  GC_JSON_NUMBER,
  GC_JSON_STRING,
  GC_JSON_ARRAY,
  GC_JSON_OBJECT,
} gc_json_type;

typedef struct gc_json gc_json;   /* a parsed document (owns all values) */
typedef struct gc_json_value gc_json_value;

gc_status gc_json_parse (gc_json **out, const char *text, size_t length, gc_error *err);
void gc_json_free (gc_json *doc);
const gc_json_value *gc_json_root (const gc_json *doc);

gc_json_type gc_json_type_of (const gc_json_value *value);

/* Arrays and objects: number of elements / members. 0 for other types. */
size_t gc_json_length (const gc_json_value *value);
const gc_json_value *gc_json_array_at (const gc_json_value *array, size_t index);
const char *gc_json_member_key (const gc_json_value *object, size_t index, size_t *key_length);
const gc_json_value *gc_json_member_value (const gc_json_value *object, size_t index);
/* The first member named key (NUL-terminated), or NULL. */
const gc_json_value *gc_json_get (const gc_json_value *object, const char *key);

/* Strings: decoded UTF-8, NUL-terminated (length excludes the NUL; may contain "\u0000"). */
const char *gc_json_string (const gc_json_value *value, size_t *length);

/* Numbers. double conversion follows strtod; the integer forms fail (return false) unless the
 * number is written as an integer (no fraction or exponent) within range. */
double gc_json_number (const gc_json_value *value);
bool gc_json_uint64 (const gc_json_value *value, uint64_t *out);
bool gc_json_int64 (const gc_json_value *value, int64_t *out);

/* ---- writing ----
 * Writes src (length bytes of UTF-8) as a quoted JSON string the way Python's json.dumps does
 * by default (ensure_ascii): \" \\ \b \f \n \r \t, other bytes outside ' '..'~' as lower-case
 * \uXXXX, characters beyond the BMP as surrogate pairs. dst may be NULL to measure. Returns
 * the number of bytes written (without a NUL), or SIZE_MAX if src is not valid UTF-8. */
size_t gc_json_quote (char *dst, const char *src, size_t length);

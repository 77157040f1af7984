/* gc-text-clean.h — the cleaning stages of the CLIP tokenizer, on code points (internal).
 *
 * gc_text_clean does what clip/simple_tokenizer.py does before splitting: basic_clean (ftfy's
 * fixes, html.unescape twice), whitespace_clean and lower(). The code-point buffers and UTF-8
 * conversions are shared with the tokenizer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t *v;
  size_t n, cap;
} gc_codepoints;

/* Grows *v (of items of `item` bytes, capacity *cap) to hold need items; false when out of
 * memory. */
bool gc_grow (void **v, size_t *cap, size_t need, size_t item);
bool gc_codepoints_reserve (gc_codepoints *t, size_t extra);
bool gc_codepoints_push (gc_codepoints *t, uint32_t c);
bool gc_codepoints_push_all (gc_codepoints *t, const uint32_t *c, size_t n);
void gc_codepoints_swap (gc_codepoints *a, gc_codepoints *b);

/* Decodes UTF-8 s into out. On invalid input returns false with *bad_at the offset of the bad
 * byte (and *no_memory false); *no_memory is true when memory ran out instead. */
bool gc_utf8_decode (const char *s, gc_codepoints *out, size_t *bad_at, bool *no_memory);
/* Writes code point c as UTF-8; returns the byte count (1..4). */
size_t gc_utf8_encode (uint32_t c, uint8_t out[4]);

/* Cleans text in place as the reference does before splitting; scratch is working space.
 * false when out of memory. */
bool gc_text_clean (gc_codepoints *text, gc_codepoints *scratch);

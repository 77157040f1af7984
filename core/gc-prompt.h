/* gc-prompt.h — prompts as artists write them for A1111-style tools, turned into token windows.
 *
 * Emphasis syntax: "(word)" multiplies the attention to word by 1.1, "[word]" divides it by 1.1,
 * "(word:1.3)" sets a factor of 1.3; brackets nest and multiply; "\(" "\)" "\[" "\]" are the
 * literal characters; unclosed brackets close at the end of the prompt. "BREAK" (upper case, a
 * word on its own) ends the current 75-token window. A prompt longer than 75 tokens continues in
 * further windows of 75 (never silently cut); each window is encoded on its own and the
 * encodings are concatenated (77·k context tokens), as other tools do.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-error.h"
#include "gc-tokenizer.h"

/* A run of prompt text with one attention factor; a BREAK is a segment with is_break set. */
typedef struct {
  char *text;
  double weight;
  int is_break;
} gc_prompt_segment;

/* Splits prompt into segments (adjacent runs of equal weight merged). Free with
 * gc_prompt_segments_free. An empty prompt gives one empty segment of weight 1. */
gc_status gc_prompt_parse (const char *prompt, gc_prompt_segment **segments, size_t *count,
                           gc_error *err);
void gc_prompt_segments_free (gc_prompt_segment *segments, size_t count);

/* Token windows of a prompt: ids[windows·77] and the attention factor of each position. */
typedef struct {
  int32_t *ids;
  float *weights;
  int64_t windows;
  size_t tokens; /* prompt tokens before padding (for the UI's token counter) */
} gc_prompt_tokens;

/* pad_id: the id after the end token (END for CLIP, 0 for OpenCLIP). */
gc_status gc_prompt_tokenize (const gc_tokenizer *tokenizer, const char *prompt, int32_t pad_id,
                              gc_prompt_tokens *out, gc_error *err);
void gc_prompt_tokens_free (gc_prompt_tokens *tokens);

/* Applies the factors to one window's encoding as A1111 does: hidden[77, dim] is scaled per
 * token, then rescaled so its overall mean is what it was. */
void gc_prompt_apply_weights (float *hidden, const float *weights, int64_t dim);

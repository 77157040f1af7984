/* gc-tokenizer.h — OpenAI's CLIP byte-pair-encoding tokenizer.
 *
 * The vocabulary is bpe_simple_vocab_16e6.txt.gz (MIT, OpenAI; shipped in data/). Text is
 * cleaned as the reference does (HTML entities unescaped, whitespace collapsed and trimmed,
 * lower-cased), pre-split with the CLIP pattern
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (Unicode letter and number classes from a compact table), each piece's UTF-8 bytes mapped to
 * printable symbols, merged by BPE rank with "</w>" on the last symbol of each piece.
 * Ids: 256 byte symbols, the same with "</w>", one per merge, then <|startoftext|> = 49406 and
 * <|endoftext|> = 49407.
 *
 * Cleaning also does what the reference's ftfy.fix_text does character by character (curly
 * quotes straightened, ligatures and fullwidth forms undone, stray controls dropped, NFC);
 * gc-tokenizer.c lists what it leaves out. A loaded tokenizer is read-only: any number of
 * threads may encode with it at once.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-error.h"

enum {
  GC_TOKEN_START = 49406,
  GC_TOKEN_END = 49407,
  GC_CONTEXT_TOKENS = 77, /* one text-encoder window: start + 75 + end */
  GC_CHUNK_TOKENS = 75,
};

typedef struct gc_tokenizer gc_tokenizer;

/* Loads the gzip-compressed merge list at path. */
gc_status gc_tokenizer_load (gc_tokenizer **out, const char *vocab_path, gc_error *err);
void gc_tokenizer_free (gc_tokenizer *tokenizer);

/* Number of ids (49408 for the CLIP vocabulary). */
int32_t gc_tokenizer_vocab_size (const gc_tokenizer *tokenizer);

/* BPE ids of text (UTF-8; invalid sequences are an error), without start/end tokens.
 * *ids is malloc'd (free it); *count may be 0. */
gc_status gc_tokenizer_encode (const gc_tokenizer *tokenizer, const char *text, int32_t **ids,
                               size_t *count, gc_error *err);

/* The vocabulary entry of id as UTF-8 ("cat</w>"), or NULL when out of range. */
const char *gc_tokenizer_token (const gc_tokenizer *tokenizer, int32_t id);

/* One encoder window: out = [START] + ids[:75] + [END], padded with pad_id to 77 entries
 * (SD 1.x and CLIP-L pad with END, OpenCLIP with 0). */
void gc_tokens_window (int32_t out[GC_CONTEXT_TOKENS], const int32_t *ids, size_t count,
                       int32_t pad_id);

/* How many windows a prompt of count ids takes when it is split into 75-token chunks (window
 * k holds ids + 75·k); 1 for the empty prompt. */
size_t gc_tokens_window_count (size_t count);

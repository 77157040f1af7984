/* gc-tokenizer.c — OpenAI's CLIP tokenizer, id for id.
 *
 * The reference is clip/simple_tokenizer.py: ids = bpe(pre_split(lower(whitespace_clean(
 * basic_clean(text))))). The cleaning stages are in gc-text-clean.c; here are the pre-split on
 * the reference's pattern, the byte alphabet, BPE by merge rank and the vocabulary.
 *
 * Encoding keeps no cache, so one tokenizer serves any number of threads at once.
 */
#include "gc-tokenizer.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gc-text-clean.h"
#include "gc-unicode.h"

enum {
  BYTE_SYMBOLS = 256,
  /* 49408 ids = 2 · 256 byte symbols + the merges + the two special tokens. */
  MERGES = 49152 - 256 - 2,
  VOCAB_SIZE = 2 * BYTE_SYMBOLS + MERGES + 2,
  /* Open-addressing tables over the vocabulary and the merges, under half full. */
  TABLE_BITS = 17,
  TABLE_SIZE = 1 << TABLE_BITS,
};

_Static_assert (VOCAB_SIZE == GC_TOKEN_END + 1, "the special tokens close the vocabulary");
_Static_assert (2 * VOCAB_SIZE < TABLE_SIZE, "the hash tables stay under half full");

static const char START_TEXT[] = "<|startoftext|>";
static const char END_TEXT[] = "<|endoftext|>";
static const char END_OF_WORD[] = "</w>";

/* A merge (left, right) → the symbol it makes, found by hashing the pair. */
typedef struct {
  uint32_t key; /* left << 16 | right; EMPTY_PAIR when the slot is free */
  int32_t rank; /* lower merges first */
  int32_t merged;
} pair_slot;

#define EMPTY_PAIR UINT32_MAX

struct gc_tokenizer {
  char *text;                      /* every token's UTF-8, each NUL-terminated */
  uint32_t offset[VOCAB_SIZE + 1]; /* token id starts at text + offset[id] */
  int32_t byte_symbol[BYTE_SYMBOLS]; /* id of byte b inside a word; + 256 at a word's end */
  pair_slot *pairs;                /* TABLE_SIZE slots */
};
/* ---- id lists ---- */

typedef struct {
  int32_t *v;
  size_t n, cap;
} id_list;

static bool
id_push (id_list *l, int32_t id)
{
  if (!gc_grow ((void **) &l->v, &l->cap, l->n + 1, sizeof *l->v))
    return false;
  l->v[l->n++] = id;
  return true;
}

/* ---- the byte alphabet (bytes_to_unicode) ---- */

/* Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves in the BPE
 * alphabet and come first in the vocabulary; the other 68 bytes follow, in byte order, as the
 * code points U+0100, U+0101, … so that no symbol is a space or a control character. */
static bool
is_printable_byte (int b)
{
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void
byte_alphabet (uint32_t symbol_code_point[BYTE_SYMBOLS], int32_t symbol_id[BYTE_SYMBOLS])
{
  int32_t id = 0;
  for (int b = 0; b < BYTE_SYMBOLS; b++)
    if (is_printable_byte (b))
      {
        symbol_code_point[b] = (uint32_t) b;
        symbol_id[b] = id++;
      }
  uint32_t next = 0x100;
  for (int b = 0; b < BYTE_SYMBOLS; b++)
    if (!is_printable_byte (b))
      {
        symbol_code_point[b] = next++;
        symbol_id[b] = id++;
      }
}

/* ---- pre-split ---- */

/* Whether literal (ASCII) starts at s. The reference pattern is case-insensitive; on lower-cased
 * text the only other character that folds onto one of its letters is ſ (U+017F) for s. */
static bool
starts_with (const uint32_t *s, size_t n, const char *literal)
{
  size_t i = 0;
  for (; literal[i] != '\0'; i++)
    if (i >= n || !(s[i] == (uint8_t) literal[i] || (literal[i] == 's' && s[i] == 0x17F)))
      return false;
  return true;
}

/* Length of the piece the pattern
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * matches at s[0], alternatives tried in order; 0 at white space, which no piece takes. */
static size_t
piece_length (const uint32_t *s, size_t n)
{
  static const char *const literals[] = { START_TEXT, END_TEXT, "'s", "'t", "'re", "'ve",
                                          "'m", "'ll", "'d" };
  for (size_t k = 0; k < sizeof literals / sizeof literals[0]; k++)
    if (starts_with (s, n, literals[k]))
      return strlen (literals[k]);
  size_t i = 0;
  if (gc_unicode_is_letter (s[0]))
    {
      while (i < n && gc_unicode_is_letter (s[i]))
        i++;
      return i;
    }
  if (gc_unicode_is_number (s[0]))
    return 1;
  while (i < n && !gc_unicode_is_space (s[i]) && !gc_unicode_is_letter (s[i])
         && !gc_unicode_is_number (s[i]))
    i++;
  return i;
}

/* ---- BPE ---- */

static uint32_t
pair_hash (uint32_t key)
{
  return (key * 0x9E3779B1u) >> (32 - TABLE_BITS);
}

static const pair_slot *
find_pair (const gc_tokenizer *tokenizer, int32_t left, int32_t right)
{
  uint32_t key = (uint32_t) left << 16 | (uint32_t) right;
  for (uint32_t h = pair_hash (key);; h = (h + 1) & (TABLE_SIZE - 1))
    {
      const pair_slot *slot = &tokenizer->pairs[h];
      if (slot->key == key)
        return slot;
      if (slot->key == EMPTY_PAIR)
        return NULL;
    }
}

/* simple_tokenizer's bpe(): starting from single bytes (the last one marked as a word's end),
 * repeatedly take the adjacent pair of lowest merge rank and merge every occurrence of it,
 * left to right, until no adjacent pair is a merge. */
static bool
bpe (const gc_tokenizer *tokenizer, const uint8_t *bytes, size_t n, id_list *symbols, id_list *out)
{
  symbols->n = 0;
  for (size_t i = 0; i < n; i++)
    if (!id_push (symbols, tokenizer->byte_symbol[bytes[i]] + (i + 1 == n ? BYTE_SYMBOLS : 0)))
      return false;
  int32_t *s = symbols->v;
  while (n > 1)
    {
      const pair_slot *best = NULL;
      size_t at = 0;
      for (size_t i = 0; i + 1 < n; i++)
        {
          const pair_slot *p = find_pair (tokenizer, s[i], s[i + 1]);
          if (p != NULL && (best == NULL || p->rank < best->rank))
            {
              best = p;
              at = i;
            }
        }
      if (best == NULL)
        break;
      int32_t left = s[at], right = s[at + 1];
      size_t k = at;
      for (size_t i = at; i < n;)
        {
          if (i + 1 < n && s[i] == left && s[i + 1] == right)
            {
              s[k++] = best->merged;
              i += 2;
            }
          else
            s[k++] = s[i++];
        }
      n = k;
    }
  for (size_t i = 0; i < n; i++)
    if (!id_push (out, s[i]))
      return false;
  return true;
}

/* Splits the cleaned text into pieces and appends each piece's ids to out. */
static bool
encode_pieces (const gc_tokenizer *tokenizer, const gc_codepoints *text, id_list *out)
{
  uint8_t *bytes = NULL;
  size_t bytes_cap = 0;
  id_list symbols = { 0 };
  bool ok = true;
  for (size_t i = 0; ok && i < text->n;)
    {
      size_t length = piece_length (text->v + i, text->n - i);
      if (length == 0)
        {
          i++;
          continue;
        }
      if (!gc_grow ((void **) &bytes, &bytes_cap, 4 * length, 1))
        {
          ok = false;
          break;
        }
      size_t n = 0;
      for (size_t k = 0; k < length; k++)
        n += gc_utf8_encode (text->v[i + k], bytes + n);
      /* The special tokens are whole vocabulary entries, never split into bytes. */
      if (n == strlen (START_TEXT) && memcmp (bytes, START_TEXT, n) == 0)
        ok = id_push (out, GC_TOKEN_START);
      else if (n == strlen (END_TEXT) && memcmp (bytes, END_TEXT, n) == 0)
        ok = id_push (out, GC_TOKEN_END);
      else
        ok = bpe (tokenizer, bytes, n, &symbols, out);
      i += length;
    }
  free (bytes);
  free (symbols.v);
  return ok;
}

gc_status
gc_tokenizer_encode (const gc_tokenizer *tokenizer, const char *text, int32_t **ids,
                     size_t *count, gc_error *err)
{
  assert (tokenizer != NULL && text != NULL && ids != NULL && count != NULL);
  *ids = NULL;
  *count = 0;
  gc_codepoints a = { 0 }, b = { 0 };
  id_list out = { 0 };
  size_t bad_at = 0;
  bool no_memory;
  gc_status status = GC_OK;
  if (!gc_utf8_decode (text, &a, &bad_at, &no_memory))
    {
      if (no_memory)
        goto out_of_memory;
      if (text[bad_at] == '\0')
        status = gc_error_set (err, GC_ERR_INVALID,
                               "the prompt is not valid UTF-8: it ends inside a character");
      else
        status = gc_error_set (err, GC_ERR_INVALID,
                               "the prompt is not valid UTF-8: byte 0x%02X at offset %zu",
                               (unsigned) (uint8_t) text[bad_at], bad_at);
      goto done;
    }
  if (!gc_text_clean (&a, &b) || !encode_pieces (tokenizer, &a, &out))
    goto out_of_memory;
  /* Hand back a buffer even for an empty prompt, so callers can always free it. */
  if (out.n == 0 && !gc_grow ((void **) &out.v, &out.cap, 1, sizeof *out.v))
    goto out_of_memory;
  *ids = out.v;
  *count = out.n;
  out.v = NULL;
  goto done;

out_of_memory:
  status = gc_error_set (err, GC_ERR_NOMEM, "out of memory while tokenizing a %zu-byte prompt",
                         strlen (text));
done:
  free (a.v);
  free (b.v);
  free (out.v);
  return status;
}

/* ---- loading ---- */

/* Inflates the vocabulary file until it holds the header line and MERGES merge lines (the
 * file lists 262 143 merges; CLIP uses the first 48 894, so the rest is never unpacked). */
static gc_status
read_merge_lines (const char *path, char **out, size_t *out_length, gc_error *err)
{
  enum { CHUNK = 1 << 16 };
  errno = 0;
  gzFile gz = gzopen (path, "rb");
  if (gz == NULL)
    return gc_error_set (err, errno != 0 ? GC_ERR_IO : GC_ERR_NOMEM,
                         "cannot open the vocabulary '%s': %s", path,
                         errno != 0 ? strerror (errno) : "out of memory");
  gzbuffer (gz, CHUNK);
  char *buffer = NULL;
  size_t cap = 0, length = 0, lines = 0;
  gc_status status = GC_OK;
  while (lines <= MERGES)
    {
      if (!gc_grow ((void **) &buffer, &cap, length + CHUNK + 1, 1))
        {
          status = gc_error_set (err, GC_ERR_NOMEM, "out of memory reading the vocabulary");
          break;
        }
      int got = gzread (gz, buffer + length, CHUNK);
      if (got < 0)
        {
          int code;
          const char *message = gzerror (gz, &code);
          status = gc_error_set (err, code == Z_ERRNO ? GC_ERR_IO : GC_ERR_FORMAT,
                                 "the vocabulary '%s' is damaged: %s", path,
                                 code == Z_ERRNO ? strerror (errno) : message);
          break;
        }
      if (got == 0)
        break;
      for (const char *p = buffer + length; (p = memchr (p, '\n', buffer + length + got - p)) != NULL; p++)
        lines++;
      length += (size_t) got;
    }
  gzclose (gz);
  if (status != GC_OK)
    {
      free (buffer);
      return status;
    }
  buffer[length] = '\0';
  *out = buffer;
  *out_length = length;
  return GC_OK;
}

/* Token text → id, while loading; a later entry with the same text replaces an earlier one,
 * as building a Python dict from the vocabulary list does. */
typedef struct {
  const gc_tokenizer *tokenizer;
  int32_t *slots; /* TABLE_SIZE ids, -1 when free */
} token_index;

static uint32_t
text_hash (const char *s, size_t n)
{
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t) s[i]) * 16777619u;
  return h >> (32 - TABLE_BITS);
}

static const char *
token_text (const gc_tokenizer *tokenizer, int32_t id, size_t *length)
{
  *length = tokenizer->offset[id + 1] - tokenizer->offset[id] - 1;
  return tokenizer->text + tokenizer->offset[id];
}

static int32_t *
index_slot (const token_index *index, const char *s, size_t n)
{
  for (uint32_t h = text_hash (s, n);; h = (h + 1) & (TABLE_SIZE - 1))
    {
      int32_t id = index->slots[h];
      size_t length;
      if (id < 0)
        return &index->slots[h];
      const char *t = token_text (index->tokenizer, id, &length);
      if (length == n && memcmp (t, s, n) == 0)
        return &index->slots[h];
    }
}

static int32_t
index_find (const token_index *index, const char *s, size_t n)
{
  return *index_slot (index, s, n);
}

/* A merge line "left right" of the file, as str.split() reads it. */
typedef struct {
  const char *left, *right;
  size_t left_length, right_length;
} merge_line;

/* The ASCII characters str.split() splits at. */
static bool
is_split_space (char c)
{
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F);
}

/* Splits line (up to end) into exactly two words; false when it has another number. */
static bool
parse_merge (const char *line, const char *end, merge_line *m)
{
  const char *words[3];
  size_t lengths[3], n = 0;
  for (const char *p = line; p < end;)
    {
      while (p < end && is_split_space (*p))
        p++;
      if (p == end)
        break;
      const char *word = p;
      while (p < end && !is_split_space (*p))
        p++;
      if (n == 3)
        return false;
      words[n] = word;
      lengths[n++] = (size_t) (p - word);
    }
  if (n != 2)
    return false;
  *m = (merge_line) { words[0], words[1], lengths[0], lengths[1] };
  return true;
}

/* Appends a token's text and closes its offset entry. */
static void
add_token (gc_tokenizer *tokenizer, size_t *used, int32_t id, const char *a, size_t na,
           const char *b, size_t nb)
{
  tokenizer->offset[id] = (uint32_t) *used;
  memcpy (tokenizer->text + *used, a, na);
  memcpy (tokenizer->text + *used + na, b, nb);
  *used += na + nb;
  tokenizer->text[(*used)++] = '\0';
  tokenizer->offset[id + 1] = (uint32_t) *used;
}

/* Builds the vocabulary from the merge lines: the 256 byte symbols, the same with "</w>",
 * one token per merge (its two halves joined), then the two special tokens. The header line
 * is skipped unread, as the reference does. */
static gc_status
build_vocabulary (gc_tokenizer *tokenizer, const char *lines, size_t length,
                  merge_line merges[MERGES], gc_error *err)
{
  /* The merge tokens fit in the bytes of their lines; add the byte symbols and specials. */
  tokenizer->text = malloc (length + 2 * BYTE_SYMBOLS * 8 + sizeof START_TEXT + sizeof END_TEXT);
  if (tokenizer->text == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  uint32_t symbol_code_point[BYTE_SYMBOLS];
  int32_t byte_of_symbol[BYTE_SYMBOLS];
  byte_alphabet (symbol_code_point, tokenizer->byte_symbol);
  for (int b = 0; b < BYTE_SYMBOLS; b++)
    byte_of_symbol[tokenizer->byte_symbol[b]] = b;
  size_t used = 0;
  for (int32_t id = 0; id < 2 * BYTE_SYMBOLS; id++)
    {
      uint8_t utf8[4];
      size_t n = gc_utf8_encode (symbol_code_point[byte_of_symbol[id % BYTE_SYMBOLS]], utf8);
      add_token (tokenizer, &used, id, (const char *) utf8, n, END_OF_WORD,
                 id >= BYTE_SYMBOLS ? strlen (END_OF_WORD) : 0);
    }
  const char *end_of_text = lines + length;
  const char *newline = memchr (lines, '\n', length);
  for (int32_t m = 0; m < MERGES; m++)
    {
      if (newline == NULL || newline + 1 == end_of_text)
        return gc_error_set (err, GC_ERR_FORMAT, "only %d merges, CLIP needs %d", m, MERGES);
      const char *line = newline + 1;
      newline = memchr (line, '\n', (size_t) (end_of_text - line));
      if (!parse_merge (line, newline != NULL ? newline : end_of_text, &merges[m]))
        return gc_error_set (err, GC_ERR_FORMAT, "line %d is not a pair of symbols", m + 2);
      add_token (tokenizer, &used, 2 * BYTE_SYMBOLS + m, merges[m].left, merges[m].left_length,
                 merges[m].right, merges[m].right_length);
    }
  add_token (tokenizer, &used, GC_TOKEN_START, START_TEXT, strlen (START_TEXT), "", 0);
  add_token (tokenizer, &used, GC_TOKEN_END, END_TEXT, strlen (END_TEXT), "", 0);
  return GC_OK;
}

/* Fills the merge table: each merge's halves must be tokens. (By induction every token is then
 * valid UTF-8: a merge joins two shorter tokens, and the byte symbols are.) */
static gc_status
build_pairs (gc_tokenizer *tokenizer, const merge_line merges[MERGES], gc_error *err)
{
  token_index index = { tokenizer, malloc (TABLE_SIZE * sizeof (int32_t)) };
  tokenizer->pairs = malloc (TABLE_SIZE * sizeof *tokenizer->pairs);
  if (index.slots == NULL || tokenizer->pairs == NULL)
    {
      free (index.slots);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
    }
  memset (index.slots, 0xFF, TABLE_SIZE * sizeof (int32_t));
  for (uint32_t i = 0; i < TABLE_SIZE; i++)
    tokenizer->pairs[i].key = EMPTY_PAIR;
  for (int32_t id = 0; id < VOCAB_SIZE; id++)
    {
      size_t n;
      const char *t = token_text (tokenizer, id, &n);
      *index_slot (&index, t, n) = id;
    }
  gc_status status = GC_OK;
  for (int32_t m = 0; m < MERGES && status == GC_OK; m++)
    {
      int32_t left = index_find (&index, merges[m].left, merges[m].left_length);
      int32_t right = index_find (&index, merges[m].right, merges[m].right_length);
      if (left < 0 || right < 0)
        {
          status = gc_error_set (err, GC_ERR_FORMAT,
                                 "line %d merges a symbol that is no token", m + 2);
          break;
        }
      size_t n;
      const char *t = token_text (tokenizer, 2 * BYTE_SYMBOLS + m, &n);
      uint32_t key = (uint32_t) left << 16 | (uint32_t) right;
      uint32_t h = pair_hash (key);
      while (tokenizer->pairs[h].key != EMPTY_PAIR && tokenizer->pairs[h].key != key)
        h = (h + 1) & (TABLE_SIZE - 1);
      /* A repeated merge takes its later rank, as the reference's dict does. */
      tokenizer->pairs[h] = (pair_slot) { key, m, index_find (&index, t, n) };
    }
  free (index.slots);
  return status;
}

gc_status
gc_tokenizer_load (gc_tokenizer **out, const char *vocab_path, gc_error *err)
{
  assert (out != NULL && vocab_path != NULL);
  *out = NULL;
  char *lines = NULL;
  size_t length = 0;
  gc_status status = read_merge_lines (vocab_path, &lines, &length, err);
  if (status != GC_OK)
    return status;
  gc_tokenizer *tokenizer = calloc (1, sizeof *tokenizer);
  merge_line *merges = malloc (MERGES * sizeof *merges);
  if (tokenizer == NULL || merges == NULL)
    status = gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  if (status == GC_OK)
    status = build_vocabulary (tokenizer, lines, length, merges, err);
  if (status == GC_OK)
    status = build_pairs (tokenizer, merges, err);
  free (merges);
  free (lines);
  if (status != GC_OK)
    {
      gc_tokenizer_free (tokenizer);
      return gc_error_prefix (err, "vocabulary '%s'", vocab_path);
    }
  *out = tokenizer;
  return GC_OK;
}

void
gc_tokenizer_free (gc_tokenizer *tokenizer)
{
  if (tokenizer == NULL)
    return;
  free (tokenizer->text);
  free (tokenizer->pairs);
  free (tokenizer);
}

int32_t
gc_tokenizer_vocab_size (const gc_tokenizer *tokenizer)
{
  (void) tokenizer;
  return VOCAB_SIZE;
}

const char *
gc_tokenizer_token (const gc_tokenizer *tokenizer, int32_t id)
{
  if (id < 0 || id >= VOCAB_SIZE)
    return NULL;
  return tokenizer->text + tokenizer->offset[id];
}

void
gc_tokens_window (int32_t out[GC_CONTEXT_TOKENS], const int32_t *ids, size_t count, int32_t pad_id)
{
  size_t n = count < GC_CHUNK_TOKENS ? count : GC_CHUNK_TOKENS;
  out[0] = GC_TOKEN_START;
  if (n > 0)
    memcpy (out + 1, ids, n * sizeof *ids);
  out[n + 1] = GC_TOKEN_END;
  for (size_t i = n + 2; i < GC_CONTEXT_TOKENS; i++)
    out[i] = pad_id;
}

size_t
gc_tokens_window_count (size_t count)
{
  return count == 0 ? 1 : (count + GC_CHUNK_TOKENS - 1) / GC_CHUNK_TOKENS;
}

#include "gc-prompt.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gc-c-locale.h"

enum { MAX_NESTING = 256 };

typedef struct {
  gc_prompt_segment *items;
  size_t count, capacity;
} segment_list;

static gc_status
append (segment_list *list, const char *text, size_t length, double weight, bool is_break,
        gc_error *err)
{
  if (list->count == list->capacity)
    {
      size_t capacity = list->capacity ? 2 * list->capacity : 8;
      gc_prompt_segment *grown = realloc (list->items, capacity * sizeof *grown);
      if (grown == NULL)
        return gc_error_set (err, GC_ERR_NOMEM, "out of memory parsing the prompt");
      list->items = grown;
      list->capacity = capacity;
    }
  char *copy = malloc (length + 1);
  if (copy == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory parsing the prompt");
  memcpy (copy, text, length);
  copy[length] = '\0';
  list->items[list->count++] = (gc_prompt_segment) { copy, weight, is_break };
  return GC_OK;
}

static bool
is_word_byte (unsigned char c)
{
  return isalnum (c) || c == '_' || c >= 0x80;
}

/* Adds plain text, splitting it at each "BREAK" that stands as a word (with the whitespace
 * around it) into a break segment. */
static gc_status
append_text (segment_list *list, const char *text, size_t length, gc_error *err)
{
  size_t start = 0;
  for (size_t i = 0; i + 5 <= length; i++)
    {
      bool word = memcmp (text + i, "BREAK", 5) == 0
                  && (i == 0 || !is_word_byte ((unsigned char) text[i - 1]))
                  && (i + 5 == length || !is_word_byte ((unsigned char) text[i + 5]));
      if (!word)
        continue;
      size_t before = i, after = i + 5;
      while (before > start && isspace ((unsigned char) text[before - 1]))
        before--;
      while (after < length && isspace ((unsigned char) text[after]))
        after++;
      gc_status s = append (list, text + start, before - start, 1.0, false, err);
      if (s == GC_OK)
        s = append (list, "BREAK", 5, -1.0, true, err);
      if (s != GC_OK)
        return s;
      start = after;
      i = after - 1;
    }
  return append (list, text + start, length - start, 1.0, false, err);
}

static void
multiply_from (segment_list *list, size_t start, double factor)
{
  for (size_t i = start; i < list->count; i++)
    list->items[i].weight *= factor;
}

/* ":<number>)" with optional spaces: returns its length and the number, or 0. */
static size_t
match_weight (const char *s, double *weight)
{
  size_t i = 1;
  while (isspace ((unsigned char) s[i]))
    i++;
  size_t number = i;
  if (s[i] == '+' || s[i] == '-')
    i++;
  size_t digits = i;
  while (isdigit ((unsigned char) s[i]) || s[i] == '.')
    i++;
  if (i == digits)
    return 0;
  char *end;
  *weight = gc_c_strtod (s + number, &end); /* "1.3" in every locale */
  if (end != s + i)
    return 0; /* "1.2.3" is not a number */
  while (isspace ((unsigned char) s[i]))
    i++;
  return s[i] == ')' ? i + 1 : 0;
}

static void
merge_equal_weights (segment_list *list)
{
  size_t out = 0;
  for (size_t i = 0; i < list->count; i++)
    {
      gc_prompt_segment *prev = out ? &list->items[out - 1] : NULL;
      gc_prompt_segment *cur = &list->items[i];
      if (prev && prev->weight == cur->weight && !prev->is_break && !cur->is_break)
        {
          size_t a = strlen (prev->text), b = strlen (cur->text);
          char *joined = realloc (prev->text, a + b + 1);
          if (joined)
            {
              memcpy (joined + a, cur->text, b + 1);
              prev->text = joined;
              free (cur->text);
              continue;
            }
        }
      list->items[out++] = *cur;
    }
  list->count = out;
}

gc_status
gc_prompt_parse (const char *prompt, gc_prompt_segment **segments, size_t *count, gc_error *err)
{
  segment_list list = { 0 };
  size_t round[MAX_NESTING], square[MAX_NESTING];
  int n_round = 0, n_square = 0;
  gc_status s = GC_OK;
  for (const char *p = prompt; *p && s == GC_OK;)
    {
      double weight;
      size_t n;
      if (*p == '\\')
        {
          /* "\(" and friends are literal; a lone backslash disappears, as in A1111 */
          bool escape = p[1] && strchr ("()[]\\", p[1]);
          s = append (&list, p + 1, escape ? 1 : 0, 1.0, false, err);
          p += escape ? 2 : 1;
        }
      else if ((*p == '(' && n_round < MAX_NESTING) || (*p == '[' && n_square < MAX_NESTING))
        {
          if (*p == '(')
            round[n_round++] = list.count;
          else
            square[n_square++] = list.count;
          p++;
        }
      else if (*p == ':' && n_round > 0 && (n = match_weight (p, &weight)) > 0)
        {
          multiply_from (&list, round[--n_round], weight);
          p += n;
        }
      else if (*p == ')' && n_round > 0)
        {
          multiply_from (&list, round[--n_round], 1.1);
          p++;
        }
      else if (*p == ']' && n_square > 0)
        {
          multiply_from (&list, square[--n_square], 1 / 1.1);
          p++;
        }
      else
        {
          /* plain text up to the next special character (a special one itself is literal) */
          size_t len = strcspn (p + 1, "\\()[]:") + 1;
          s = append_text (&list, p, len, err);
          p += len;
        }
    }
  while (s == GC_OK && n_round > 0)
    multiply_from (&list, round[--n_round], 1.1);
  while (s == GC_OK && n_square > 0)
    multiply_from (&list, square[--n_square], 1 / 1.1);
  if (s == GC_OK && list.count == 0)
    s = append (&list, "", 0, 1.0, false, err);
  if (s != GC_OK)
    {
      gc_prompt_segments_free (list.items, list.count);
      return s;
    }
  merge_equal_weights (&list);
  *segments = list.items;
  *count = list.count;
  return GC_OK;
}

void
gc_prompt_segments_free (gc_prompt_segment *segments, size_t count)
{
  for (size_t i = 0; i < count; i++)
    free (segments[i].text);
  free (segments);
}

/* Growing lists of chunk tokens: each chunk holds up to 75 prompt tokens. */
typedef struct {
  int32_t *ids;
  float *weights;
  size_t *chunk_lengths;
  size_t n_chunks, capacity_chunks;
  size_t tokens;
} chunker;

static gc_status
new_chunk (chunker *c, gc_error *err)
{
  if (c->n_chunks == c->capacity_chunks)
    {
      size_t cap = c->capacity_chunks ? 2 * c->capacity_chunks : 4;
      int32_t *ids = realloc (c->ids, cap * GC_CHUNK_TOKENS * sizeof *ids);
      if (ids)
        c->ids = ids;
      float *weights = realloc (c->weights, cap * GC_CHUNK_TOKENS * sizeof *weights);
      if (weights)
        c->weights = weights;
      size_t *lengths = realloc (c->chunk_lengths, cap * sizeof *lengths);
      if (lengths)
        c->chunk_lengths = lengths;
      if (!ids || !weights || !lengths)
        return gc_error_set (err, GC_ERR_NOMEM, "out of memory tokenizing the prompt");
      c->capacity_chunks = cap;
    }
  c->chunk_lengths[c->n_chunks++] = 0;
  return GC_OK;
}

static gc_status
push_token (chunker *c, int32_t id, float weight, gc_error *err)
{
  if (c->n_chunks == 0 || c->chunk_lengths[c->n_chunks - 1] == GC_CHUNK_TOKENS)
    {
      gc_status s = new_chunk (c, err);
      if (s != GC_OK)
        return s;
    }
  size_t chunk = c->n_chunks - 1, at = c->chunk_lengths[chunk]++;
  c->ids[chunk * GC_CHUNK_TOKENS + at] = id;
  c->weights[chunk * GC_CHUNK_TOKENS + at] = weight;
  c->tokens++;
  return GC_OK;
}

static gc_status
lay_out_windows (const chunker *c, int32_t pad_id, gc_prompt_tokens *out, gc_error *err)
{
  size_t windows = c->n_chunks ? c->n_chunks : 1;
  out->ids = malloc (windows * GC_CONTEXT_TOKENS * sizeof *out->ids);
  out->weights = malloc (windows * GC_CONTEXT_TOKENS * sizeof *out->weights);
  if (!out->ids || !out->weights)
    {
      gc_prompt_tokens_free (out);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory tokenizing the prompt");
    }
  for (size_t w = 0; w < windows; w++)
    {
      size_t n = c->n_chunks ? c->chunk_lengths[w] : 0;
      gc_tokens_window (out->ids + w * GC_CONTEXT_TOKENS, n ? c->ids + w * GC_CHUNK_TOKENS : NULL,
                        n, pad_id);
      float *weights = out->weights + w * GC_CONTEXT_TOKENS;
      for (size_t i = 0; i < GC_CONTEXT_TOKENS; i++)
        weights[i] = i >= 1 && i <= n ? c->weights[w * GC_CHUNK_TOKENS + i - 1] : 1.0f;
    }
  out->windows = (int64_t) windows;
  out->tokens = c->tokens;
  return GC_OK;
}

gc_status
gc_prompt_tokenize (const gc_tokenizer *tokenizer, const char *prompt, int32_t pad_id,
                    gc_prompt_tokens *out, gc_error *err)
{
  memset (out, 0, sizeof *out);
  gc_prompt_segment *segments;
  size_t n_segments;
  gc_status s = gc_prompt_parse (prompt, &segments, &n_segments, err);
  if (s != GC_OK)
    return s;
  chunker c = { 0 };
  for (size_t i = 0; s == GC_OK && i < n_segments; i++)
    {
      if (segments[i].is_break)
        {
          s = new_chunk (&c, err); /* the next token starts a fresh window */
          continue;
        }
      int32_t *ids;
      size_t count;
      s = gc_tokenizer_encode (tokenizer, segments[i].text, &ids, &count, err);
      for (size_t k = 0; s == GC_OK && k < count; k++)
        s = push_token (&c, ids[k], (float) segments[i].weight, err);
      if (s == GC_OK || count > 0)
        free (ids);
    }
  gc_prompt_segments_free (segments, n_segments);
  if (s == GC_OK)
    s = lay_out_windows (&c, pad_id, out, err);
  free (c.ids);
  free (c.weights);
  free (c.chunk_lengths);
  return s;
}

void
gc_prompt_tokens_free (gc_prompt_tokens *tokens)
{
  free (tokens->ids);
  free (tokens->weights);
  tokens->ids = NULL;
  tokens->weights = NULL;
}

void
gc_prompt_apply_weights (float *hidden, const float *weights, int64_t dim)
{
  double before = 0, after = 0;
  int64_t n = GC_CONTEXT_TOKENS * dim;
  for (int64_t i = 0; i < n; i++)
    before += hidden[i];
  for (int64_t t = 0; t < GC_CONTEXT_TOKENS; t++)
    for (int64_t d = 0; d < dim; d++)
      {
        hidden[t * dim + d] *= weights[t];
        after += hidden[t * dim + d];
      }
  if (after == 0)
    return;
  float rescale = (float) (before / after);
  for (int64_t i = 0; i < n; i++)
    hidden[i] *= rescale;
}

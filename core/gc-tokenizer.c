/* gc-tokenizer.c — OpenAI's CLIP tokenizer, id for id.
 *
 * The reference is clip/simple_tokenizer.py: ids = bpe(pre_split(lower(whitespace_clean(
 * basic_clean(text))))), where basic_clean is ftfy.fix_text, then html.unescape twice, then
 * strip. Each stage below names the Python it reproduces. What is left out, so what can differ:
 *
 *  - ftfy's mojibake repair (fix_encoding: "cafÃ©" → "café", and its byte-A0 and lossy-UTF-8
 *    repairs) guesses from heuristics that change between ftfy releases; text that looks
 *    doubly encoded is tokenized as it is. ftfy's other fixes are those of ftfy 6 (the release
 *    that also normalizes to NFC; ftfy 5 used NFKC).
 *  - Named HTML references are HTML 4's (the 253 of html.entities.name2codepoint with &apos;)
 *    in HTML5's spellings, with and without ';'; numeric references are all decoded. The names
 *    only HTML5 has (&check;, &NotEqualTilde; and 1800-odd more) and ftfy's all-capitals
 *    spellings (&EACUTE;) stay text.
 *  - Unicode data is that of the Python that generated gc-unicode.c (gc_unicode_version);
 *    the `regex` module the reference uses may ship a slightly newer Unicode.
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

#include "gc-unicode.h"

enum {
  BYTE_SYMBOLS = 256,
  /* 49408 ids = 2 · 256 byte symbols + the merges + the two special tokens. */
  MERGES = 49152 - 256 - 2,
  VOCAB_SIZE = 2 * BYTE_SYMBOLS + MERGES + 2,
  /* Open-addressing tables over the vocabulary and the merges, under half full. */
  TABLE_BITS = 17,
  TABLE_SIZE = 1 << TABLE_BITS,
  /* html.unescape reads at most 32 characters of a name; ftfy at most 24. */
  HTML_NAME_MAX = 32,
  FTFY_NAME_MAX = 24,
  ESC = 0x1B,
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

/* ---- growable buffers ---- */

typedef struct {
  uint32_t *v;
  size_t n, cap;
} cp_text; /* code points */

typedef struct {
  int32_t *v;
  size_t n, cap;
} id_list;

static bool
grow (void **v, size_t *cap, size_t need, size_t item)
{
  if (need <= *cap)
    return true;
  size_t cap2 = *cap < 64 ? 64 : *cap;
  while (cap2 < need)
    {
      if (cap2 > SIZE_MAX / 2 / item)
        return false;
      cap2 *= 2;
    }
  void *v2 = realloc (*v, cap2 * item);
  if (v2 == NULL)
    return false;
  *v = v2;
  *cap = cap2;
  return true;
}

static bool
cp_reserve (cp_text *t, size_t extra)
{
  return extra <= SIZE_MAX - t->n && grow ((void **) &t->v, &t->cap, t->n + extra, sizeof *t->v);
}

static bool
cp_push (cp_text *t, uint32_t c)
{
  if (!cp_reserve (t, 1))
    return false;
  t->v[t->n++] = c;
  return true;
}

static bool
cp_push_all (cp_text *t, const uint32_t *c, size_t n)
{
  if (n == 0)
    return true; /* t->v may still be NULL, which memcpy must not see */
  if (!cp_reserve (t, n))
    return false;
  memcpy (t->v + t->n, c, n * sizeof *c);
  t->n += n;
  return true;
}

static bool
id_push (id_list *l, int32_t id)
{
  if (!grow ((void **) &l->v, &l->cap, l->n + 1, sizeof *l->v))
    return false;
  l->v[l->n++] = id;
  return true;
}

static void
cp_swap (cp_text *a, cp_text *b)
{
  cp_text t = *a;
  *a = *b;
  *b = t;
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

/* ---- UTF-8 ---- */

static size_t
utf8_encode (uint32_t c, uint8_t out[4])
{
  if (c < 0x80)
    {
      out[0] = (uint8_t) c;
      return 1;
    }
  if (c < 0x800)
    {
      out[0] = (uint8_t) (0xC0 | c >> 6);
      out[1] = (uint8_t) (0x80 | (c & 0x3F));
      return 2;
    }
  if (c < 0x10000)
    {
      out[0] = (uint8_t) (0xE0 | c >> 12);
      out[1] = (uint8_t) (0x80 | (c >> 6 & 0x3F));
      out[2] = (uint8_t) (0x80 | (c & 0x3F));
      return 3;
    }
  out[0] = (uint8_t) (0xF0 | c >> 18);
  out[1] = (uint8_t) (0x80 | (c >> 12 & 0x3F));
  out[2] = (uint8_t) (0x80 | (c >> 6 & 0x3F));
  out[3] = (uint8_t) (0x80 | (c & 0x3F));
  return 4;
}

/* Decodes s strictly (no overlong forms, surrogates or values past U+10FFFF). On bad input
 * returns false with *bad_at at the offending byte; *out may hold part of the text. */
static bool
utf8_decode (const char *s, cp_text *out, size_t *bad_at, bool *no_memory)
{
  const uint8_t *p = (const uint8_t *) s;
  size_t i = 0;
  *no_memory = false;
  while (p[i] != 0)
    {
      uint32_t c = p[i];
      size_t length;
      uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
      if (c < 0x80)
        length = 1;
      else if (c >= 0xC2 && c <= 0xDF)
        length = 2, c &= 0x1F;
      else if (c >= 0xE0 && c <= 0xEF)
        {
          length = 3;
          lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
          hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
          c &= 0x0F;
        }
      else if (c >= 0xF0 && c <= 0xF4)
        {
          length = 4;
          lo = c == 0xF0 ? 0x90 : 0x80;
          hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
          c &= 0x07;
        }
      else
        {
          *bad_at = i;
          return false;
        }
      for (size_t k = 1; k < length; k++)
        {
          uint8_t b = p[i + k];
          if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
            {
              *bad_at = i + k;
              return false;
            }
          c = c << 6 | (b & 0x3F);
        }
      if (!cp_push (out, c))
        {
          *no_memory = true;
          return false;
        }
      i += length;
    }
  return true;
}

/* ---- html.unescape ---- */

static bool
is_ascii_digit (uint32_t c)
{
  return c >= '0' && c <= '9';
}

static bool
is_ascii_alnum (uint32_t c)
{
  return is_ascii_digit (c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static int
hex_value (uint32_t c)
{
  if (is_ascii_digit (c))
    return (int) (c - '0');
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
    return (int) ((c | 0x20) - 'a' + 10);
  return -1;
}

/* Code points html.unescape drops when a numeric reference names them (_invalid_codepoints). */
static bool
is_dropped_code_point (uint32_t c)
{
  return (c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F) || (c >= 0x7F && c <= 0x9F)
         || (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE;
}

/* Reads a numeric reference "&#65;", "&#x41" (';' optional) at s[0] == '&', as html.unescape
 * does: stores in *c what it stands for (NO_CHARACTER: nothing) and returns its length, or
 * returns 0 when s does not start one. */
#define NO_CHARACTER UINT32_MAX

static size_t
numeric_reference (const uint32_t *s, size_t n, uint32_t *c)
{
  if (n < 3 || s[1] != '#')
    return 0;
  size_t i = 2;
  int base = 10;
  if (!is_ascii_digit (s[2]))
    {
      if ((s[2] | 0x20) != 'x' || n < 4 || hex_value (s[3]) < 0)
        return 0;
      base = 16;
      i = 3;
    }
  uint32_t value = 0;
  for (; i < n; i++)
    {
      int digit = base == 10 ? (is_ascii_digit (s[i]) ? (int) (s[i] - '0') : -1) : hex_value (s[i]);
      if (digit < 0)
        break;
      /* Anything past U+10FFFF becomes U+FFFD however large, so saturate there. */
      value = value > 0x10FFFF ? value : value * (uint32_t) base + (uint32_t) digit;
    }
  if (i < n && s[i] == ';')
    i++;
  if (value == 0)
    *c = 0xFFFD;
  else if (value == '\r')
    *c = '\r';
  else if (value >= 0x80 && value <= 0x9F)
    *c = gc_unicode_cp1252 ((uint8_t) value); /* what Windows meant by them */
  else if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF)
    *c = 0xFFFD;
  else if (is_dropped_code_point (value))
    *c = NO_CHARACTER;
  else
    *c = value;
  return i;
}

/* The entity named by the first length code points of s, or 0 (names are ASCII). */
static uint32_t
entity_of (const uint32_t *s, size_t length)
{
  char name[HTML_NAME_MAX + 1];
  if (length > HTML_NAME_MAX)
    return 0;
  for (size_t i = 0; i < length; i++)
    {
      if (s[i] >= 0x80)
        return 0;
      name[i] = (char) s[i];
    }
  return gc_html_entity (name, length);
}

static bool
ends_html_name (uint32_t c)
{
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#'
         || c == ';';
}

/* How much of the name s[0..length) (length > 0) html.unescape decodes: all of it when it is
 * an entity, else its longest prefix of two or more characters that is one ("ampfoo" → "amp",
 * as browsers read the legacy names that lack ';'), else nothing. */
static size_t
known_name_length (const uint32_t *s, size_t length)
{
  if (entity_of (s, length) != 0)
    return length;
  for (size_t prefix = length - 1; prefix >= 2; prefix--)
    if (entity_of (s, prefix) != 0)
      return prefix;
  return 0;
}

/* One pass of Python's html.unescape: a numeric reference, else a name of up to 32 characters
 * with an optional ';'. */
static bool
html_unescape (const cp_text *in, cp_text *out)
{
  out->n = 0;
  const uint32_t *s = in->v;
  size_t n = in->n;
  for (size_t i = 0; i < n;)
    {
      if (s[i] != '&')
        {
          if (!cp_push (out, s[i++]))
            return false;
          continue;
        }
      uint32_t c;
      size_t length = numeric_reference (s + i, n - i, &c);
      if (length > 0)
        {
          if (c != NO_CHARACTER && !cp_push (out, c))
            return false;
          i += length;
          continue;
        }
      const uint32_t *name = s + i + 1;
      size_t name_length = 0;
      while (name_length < HTML_NAME_MAX && i + 1 + name_length < n
             && !ends_html_name (name[name_length]))
        name_length++;
      /* A lone '&', or "&#" without digits, is no reference at all. */
      if (name_length == 0)
        {
          if (!cp_push (out, s[i++]))
            return false;
          continue;
        }
      if (i + 1 + name_length < n && name[name_length] == ';')
        name_length++;
      size_t known = known_name_length (name, name_length);
      if (known > 0 && !cp_push (out, entity_of (name, known)))
        return false;
      if (known == 0 && !cp_push (out, '&'))
        return false;
      if (!cp_push_all (out, name + known, name_length - known))
        return false;
      i += 1 + name_length;
    }
  return true;
}

/* ---- ftfy.fix_text ---- */

/* ftfy's unescape_html: only complete references "&name;" or "&#…;" of up to 24 letters and
 * digits; a numeric one that html.unescape would only partly read stays as it is. */
static bool
ftfy_unescape (const cp_text *in, cp_text *out)
{
  out->n = 0;
  const uint32_t *s = in->v;
  size_t n = in->n;
  for (size_t i = 0; i < n;)
    {
      size_t start = i + 1 + (i + 1 < n && s[i + 1] == '#');
      size_t run = 0;
      if (s[i] == '&')
        while (start + run < n && run <= FTFY_NAME_MAX && is_ascii_alnum (s[start + run]))
          run++;
      if (run == 0 || run > FTFY_NAME_MAX || start + run >= n || s[start + run] != ';')
        {
          if (!cp_push (out, s[i++]))
            return false;
          continue;
        }
      size_t length = start + run + 1 - i; /* "&", "#"?, the run, ";" */
      uint32_t c = 0;                      /* 0: not decoded (no reference yields U+0000) */
      if (start == i + 1)
        c = entity_of (s + start, run + 1);
      else if (numeric_reference (s + i, length, &c) != length || c == ';')
        c = 0;
      if (c == 0)
        {
          if (!cp_push_all (out, s + i, length))
            return false;
        }
      else if (c != NO_CHARACTER && !cp_push (out, c))
        return false;
      i += length;
    }
  return true;
}

/* ftfy's fix_latin_ligatures: typographic ligatures and legacy digraphs become their letters. */
static const struct {
  uint32_t ligature;
  uint32_t letters[3];
} latin_ligatures[] = {
  { 0x0132, { 'I', 'J' } },       { 0x0133, { 'i', 'j' } },       { 0x0149, { 0x02BC, 'n' } },
  { 0x01C4, { 'D', 0x017D } },    { 0x01C5, { 'D', 0x017E } },    { 0x01C6, { 'd', 0x017E } },
  { 0x01C7, { 'L', 'J' } },       { 0x01C8, { 'L', 'j' } },       { 0x01C9, { 'l', 'j' } },
  { 0x01CA, { 'N', 'J' } },       { 0x01CB, { 'N', 'j' } },       { 0x01CC, { 'n', 'j' } },
  { 0x01F1, { 'D', 'Z' } },       { 0x01F2, { 'D', 'z' } },       { 0x01F3, { 'd', 'z' } },
  { 0xFB00, { 'f', 'f' } },       { 0xFB01, { 'f', 'i' } },       { 0xFB02, { 'f', 'l' } },
  { 0xFB03, { 'f', 'f', 'i' } },  { 0xFB04, { 'f', 'f', 'l' } },  { 0xFB05, { 0x017F, 't' } },
  { 0xFB06, { 's', 't' } },
};

static size_t
unligature (uint32_t c, uint32_t out[3])
{
  for (size_t i = 0; i < sizeof latin_ligatures / sizeof latin_ligatures[0]; i++)
    if (latin_ligatures[i].ligature == c)
      {
        memcpy (out, latin_ligatures[i].letters, sizeof latin_ligatures[i].letters);
        return out[2] != 0 ? 3 : 2;
      }
  out[0] = c;
  return 1;
}

/* ftfy's uncurl_quotes: ʼ ‘ ’ ‚ ‛ → ' and “ ” „ ‟ → ". */
static uint32_t
uncurl (uint32_t c)
{
  if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
    return '\'';
  if (c >= 0x201C && c <= 0x201F)
    return '"';
  return c;
}

/* ftfy's fix_character_width: the halfwidth and fullwidth forms, and the ideographic space,
 * become their standard forms (one or two code points written to out). */
static size_t
standard_width (uint32_t c, uint32_t out[2])
{
  if (c == 0x3000)
    {
      out[0] = ' ';
      return 1;
    }
  size_t n = gc_unicode_width_fold (c, out);
  if (n == 0)
    {
      out[0] = c;
      n = 1;
    }
  return n;
}

/* ftfy's fix_c1_controls, fix_latin_ligatures, fix_character_width and uncurl_quotes, in that
 * order; each looks at one character, so one pass does all four. (fix_line_breaks is left
 * out: it turns one kind of white space into another, and all of it collapses later.) */
static bool
fix_characters (const cp_text *in, cp_text *out)
{
  out->n = 0;
  for (size_t i = 0; i < in->n; i++)
    {
      uint32_t c = in->v[i];
      if (c >= 0x80 && c <= 0x9F)
        c = gc_unicode_cp1252 ((uint8_t) c);
      uint32_t letters[3];
      size_t n_letters = unligature (c, letters);
      for (size_t k = 0; k < n_letters; k++)
        {
          uint32_t standard[2];
          size_t n_standard = standard_width (letters[k], standard);
          for (size_t w = 0; w < n_standard; w++)
            if (!cp_push (out, uncurl (standard[w])))
              return false;
        }
    }
  return true;
}

/* What ftfy's remove_control_chars deletes: C0 controls but tab, LF, FF and CR; DEL; the
 * deprecated format characters; the byte-order mark; interlinear annotation marks. */
static bool
is_removed_control (uint32_t c)
{
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F
         || (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* Length of an ANSI terminal escape ESC '[' (\d|;)* [A-Za-z] at s[0], or 0. */
static size_t
terminal_escape (const uint32_t *s, size_t n)
{
  if (n < 3 || s[0] != ESC || s[1] != '[')
    return 0;
  size_t i = 2;
  while (i < n && (s[i] == ';' || gc_unicode_is_decimal (s[i])))
    i++;
  return i < n && s[i] < 0x80 && (s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z' ? i + 1 : 0;
}

/* ftfy's remove_terminal_escapes, then remove_control_chars, in one pass. */
static bool
remove_controls (const cp_text *in, cp_text *out)
{
  out->n = 0;
  for (size_t i = 0; i < in->n;)
    {
      size_t escape = terminal_escape (in->v + i, in->n - i);
      if (escape > 0)
        i += escape;
      else if (is_removed_control (in->v[i]))
        i++;
      else if (!cp_push (out, in->v[i++]))
        return false;
    }
  return true;
}

static bool
nfc (const cp_text *in, cp_text *out)
{
  out->n = 0;
  if (in->n > SIZE_MAX / GC_UNICODE_DECOMPOSITION_MAX || !cp_reserve (out, in->n * GC_UNICODE_DECOMPOSITION_MAX))
    return false;
  out->n = gc_unicode_nfc (out->v, in->v, in->n);
  return true;
}

static bool
same_text (const cp_text *a, const cp_text *b)
{
  return a->n == b->n && (a->n == 0 || memcmp (a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* ftfy's fix_and_explain on one line: the fixes, over and over until nothing changes (so
 * "&amp;lt;" ends as "<"). The character fixes, control removal and NFC leave their own output
 * as it is; only a decoded reference gives a later round something new, and decoding shortens
 * the text, so the loop ends. */
static bool
fix_line (const uint32_t *line, size_t n, bool entities, cp_text *out, cp_text scratch[2])
{
  out->n = 0;
  if (!cp_push_all (out, line, n))
    return false;
  for (;;)
    {
      cp_text *a = &scratch[0], *b = &scratch[1];
      if (entities)
        {
          if (!ftfy_unescape (out, b))
            return false;
          cp_swap (a, b);
        }
      else
        {
          a->n = 0;
          if (!cp_push_all (a, out->v, out->n))
            return false;
        }
      if (!fix_characters (a, b) || !remove_controls (b, a) || !nfc (a, b))
        return false;
      if (same_text (b, out))
        return true;
      cp_swap (out, b);
    }
}

/* ftfy.fix_text: line by line (each with its '\n'); once a line holds '<' the text may be HTML
 * source, and from there on references are left for html.unescape alone. */
static bool
ftfy_fix_text (cp_text *text)
{
  cp_text result = { 0 }, line = { 0 }, scratch[2] = { { 0 }, { 0 } };
  bool entities = true, ok = true;
  for (size_t start = 0; ok && start < text->n;)
    {
      size_t end = start;
      while (end < text->n && text->v[end++] != '\n')
        ;
      for (size_t i = start; i < end && entities; i++)
        entities = text->v[i] != '<';
      ok = fix_line (text->v + start, end - start, entities, &line, scratch)
           && cp_push_all (&result, line.v, line.n);
      start = end;
    }
  if (ok)
    cp_swap (text, &result);
  free (result.v);
  free (line.v);
  free (scratch[0].v);
  free (scratch[1].v);
  return ok;
}

/* ---- whitespace_clean, lower ---- */

/* Runs of white space become one space, none at either end. (The reference's str.strip() also
 * strips U+001C..U+001F, but ftfy has removed those already.) */
static void
collapse_whitespace (cp_text *text)
{
  size_t k = 0;
  bool pending = false;
  for (size_t i = 0; i < text->n; i++)
    {
      uint32_t c = text->v[i];
      if (gc_unicode_is_space (c))
        {
          pending = k > 0;
          continue;
        }
      if (pending)
        text->v[k++] = ' ';
      text->v[k++] = c;
      pending = false;
    }
  text->n = k;
}

static bool
lower (const cp_text *in, cp_text *out)
{
  out->n = 0;
  if (in->n > SIZE_MAX / GC_UNICODE_LOWER_MAX || !cp_reserve (out, in->n * GC_UNICODE_LOWER_MAX))
    return false;
  out->n = gc_unicode_lower (out->v, in->v, in->n);
  return true;
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
encode_pieces (const gc_tokenizer *tokenizer, const cp_text *text, id_list *out)
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
      if (!grow ((void **) &bytes, &bytes_cap, 4 * length, 1))
        {
          ok = false;
          break;
        }
      size_t n = 0;
      for (size_t k = 0; k < length; k++)
        n += utf8_encode (text->v[i + k], bytes + n);
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
  cp_text a = { 0 }, b = { 0 };
  id_list out = { 0 };
  size_t bad_at = 0;
  bool no_memory;
  gc_status status = GC_OK;
  if (!utf8_decode (text, &a, &bad_at, &no_memory))
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
  /* basic_clean: ftfy, html.unescape twice; whitespace_clean; lower; split and BPE. */
  if (!ftfy_fix_text (&a) || !html_unescape (&a, &b) || !html_unescape (&b, &a))
    goto out_of_memory;
  collapse_whitespace (&a);
  if (!lower (&a, &b) || !encode_pieces (tokenizer, &b, &out))
    goto out_of_memory;
  /* Hand back a buffer even for an empty prompt, so callers can always free it. */
  if (out.n == 0 && !grow ((void **) &out.v, &out.cap, 1, sizeof *out.v))
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
      if (!grow ((void **) &buffer, &cap, length + CHUNK + 1, 1))
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
      size_t n = utf8_encode (symbol_code_point[byte_of_symbol[id % BYTE_SYMBOLS]], utf8);
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

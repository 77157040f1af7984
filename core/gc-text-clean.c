/* gc-text-clean.c — the text cleaning of OpenAI's CLIP tokenizer.
 *
 * The reference is clip/simple_tokenizer.py: ids = bpe(pre_split(lower(whitespace_clean(
 * basic_clean(text))))), where basic_clean is ftfy.fix_text, then html.unescape twice, then
 * strip. The cleaning is here, each stage naming the Python it reproduces; gc-tokenizer.c does
 * the rest. What is left out, so what can differ:
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
 */
#include "gc-text-clean.h"

#include <stdlib.h>
#include <string.h>

#include "gc-unicode.h"

enum {
  /* html.unescape reads at most 32 characters of a name; ftfy at most 24. */
  HTML_NAME_MAX = 32,
  FTFY_NAME_MAX = 24,
  ESC = 0x1B,
};

/* ---- growable buffers ---- */



bool
gc_grow (void **v, size_t *cap, size_t need, size_t item)
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

bool
gc_codepoints_reserve (gc_codepoints *t, size_t extra)
{
  return extra <= SIZE_MAX - t->n && gc_grow ((void **) &t->v, &t->cap, t->n + extra, sizeof *t->v);
}

bool
gc_codepoints_push (gc_codepoints *t, uint32_t c)
{
  if (!gc_codepoints_reserve (t, 1))
    return false;
  t->v[t->n++] = c;
  return true;
}

bool
gc_codepoints_push_all (gc_codepoints *t, const uint32_t *c, size_t n)
{
  if (n == 0)
    return true; /* t->v may still be NULL, which memcpy must not see */
  if (!gc_codepoints_reserve (t, n))
    return false;
  memcpy (t->v + t->n, c, n * sizeof *c);
  t->n += n;
  return true;
}


void
gc_codepoints_swap (gc_codepoints *a, gc_codepoints *b)
{
  gc_codepoints t = *a;
  *a = *b;
  *b = t;
}

/* ---- UTF-8 ---- */

size_t
gc_utf8_encode (uint32_t c, uint8_t out[4])
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
bool
gc_utf8_decode (const char *s, gc_codepoints *out, size_t *bad_at, bool *no_memory)
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
      if (!gc_codepoints_push (out, c))
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
html_unescape (const gc_codepoints *in, gc_codepoints *out)
{
  out->n = 0;
  const uint32_t *s = in->v;
  size_t n = in->n;
  for (size_t i = 0; i < n;)
    {
      if (s[i] != '&')
        {
          if (!gc_codepoints_push (out, s[i++]))
            return false;
          continue;
        }
      uint32_t c;
      size_t length = numeric_reference (s + i, n - i, &c);
      if (length > 0)
        {
          if (c != NO_CHARACTER && !gc_codepoints_push (out, c))
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
          if (!gc_codepoints_push (out, s[i++]))
            return false;
          continue;
        }
      if (i + 1 + name_length < n && name[name_length] == ';')
        name_length++;
      size_t known = known_name_length (name, name_length);
      if (known > 0 && !gc_codepoints_push (out, entity_of (name, known)))
        return false;
      if (known == 0 && !gc_codepoints_push (out, '&'))
        return false;
      if (!gc_codepoints_push_all (out, name + known, name_length - known))
        return false;
      i += 1 + name_length;
    }
  return true;
}

/* ---- ftfy.fix_text ---- */

/* ftfy's unescape_html: only complete references "&name;" or "&#…;" of up to 24 letters and
 * digits; a numeric one that html.unescape would only partly read stays as it is. */
static bool
ftfy_unescape (const gc_codepoints *in, gc_codepoints *out)
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
          if (!gc_codepoints_push (out, s[i++]))
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
          if (!gc_codepoints_push_all (out, s + i, length))
            return false;
        }
      else if (c != NO_CHARACTER && !gc_codepoints_push (out, c))
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
fix_characters (const gc_codepoints *in, gc_codepoints *out)
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
            if (!gc_codepoints_push (out, uncurl (standard[w])))
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
remove_controls (const gc_codepoints *in, gc_codepoints *out)
{
  out->n = 0;
  for (size_t i = 0; i < in->n;)
    {
      size_t escape = terminal_escape (in->v + i, in->n - i);
      if (escape > 0)
        i += escape;
      else if (is_removed_control (in->v[i]))
        i++;
      else if (!gc_codepoints_push (out, in->v[i++]))
        return false;
    }
  return true;
}

static bool
nfc (const gc_codepoints *in, gc_codepoints *out)
{
  out->n = 0;
  if (in->n > SIZE_MAX / GC_UNICODE_DECOMPOSITION_MAX || !gc_codepoints_reserve (out, in->n * GC_UNICODE_DECOMPOSITION_MAX))
    return false;
  out->n = gc_unicode_nfc (out->v, in->v, in->n);
  return true;
}

static bool
same_text (const gc_codepoints *a, const gc_codepoints *b)
{
  return a->n == b->n && (a->n == 0 || memcmp (a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* ftfy's fix_and_explain on one line: the fixes, over and over until nothing changes (so
 * "&amp;lt;" ends as "<"). The character fixes, control removal and NFC leave their own output
 * as it is; only a decoded reference gives a later round something new, and decoding shortens
 * the text, so the loop ends. */
static bool
fix_line (const uint32_t *line, size_t n, bool entities, gc_codepoints *out, gc_codepoints scratch[2])
{
  out->n = 0;
  if (!gc_codepoints_push_all (out, line, n))
    return false;
  for (;;)
    {
      gc_codepoints *a = &scratch[0], *b = &scratch[1];
      if (entities)
        {
          if (!ftfy_unescape (out, b))
            return false;
          gc_codepoints_swap (a, b);
        }
      else
        {
          a->n = 0;
          if (!gc_codepoints_push_all (a, out->v, out->n))
            return false;
        }
      if (!fix_characters (a, b) || !remove_controls (b, a) || !nfc (a, b))
        return false;
      if (same_text (b, out))
        return true;
      gc_codepoints_swap (out, b);
    }
}

/* ftfy.fix_text: line by line (each with its '\n'); once a line holds '<' the text may be HTML
 * source, and from there on references are left for html.unescape alone. */
static bool
ftfy_fix_text (gc_codepoints *text)
{
  gc_codepoints result = { 0 }, line = { 0 }, scratch[2] = { { 0 }, { 0 } };
  bool entities = true, ok = true;
  for (size_t start = 0; ok && start < text->n;)
    {
      size_t end = start;
      while (end < text->n && text->v[end++] != '\n')
        ;
      for (size_t i = start; i < end && entities; i++)
        entities = text->v[i] != '<';
      ok = fix_line (text->v + start, end - start, entities, &line, scratch)
           && gc_codepoints_push_all (&result, line.v, line.n);
      start = end;
    }
  if (ok)
    gc_codepoints_swap (text, &result);
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
collapse_whitespace (gc_codepoints *text)
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
lower (const gc_codepoints *in, gc_codepoints *out)
{
  out->n = 0;
  if (in->n > SIZE_MAX / GC_UNICODE_LOWER_MAX || !gc_codepoints_reserve (out, in->n * GC_UNICODE_LOWER_MAX))
    return false;
  out->n = gc_unicode_lower (out->v, in->v, in->n);
  return true;
}

bool
gc_text_clean (gc_codepoints *text, gc_codepoints *scratch)
{
  /* basic_clean: ftfy, html.unescape twice; whitespace_clean; lower */
  if (!ftfy_fix_text (text) || !html_unescape (text, scratch) || !html_unescape (scratch, text))
    return false;
  collapse_whitespace (text);
  return lower (text, scratch) && (gc_codepoints_swap (text, scratch), true);
}

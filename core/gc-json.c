#include "gc-json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gc-c-locale.h"

enum {
  MAX_DEPTH = 64,
  BLOCK_SIZE = 64 * 1024,
  /* Values one document may hold. A value costs about 40 bytes here, so this bounds what a
   * hostile file can make us allocate (~320 MiB) while leaving room for a million tensors. */
  MAX_VALUES = 1 << 23,
};

struct gc_json_value {
  gc_json_type type;
  const char *key; /* for members of an object: decoded, NUL-terminated */
  size_t key_length;
  union {
    struct {
      const char *chars; /* strings: decoded; numbers: source text; both NUL-terminated */
      size_t length;
    } text;
    struct {
      const gc_json_value *items; /* elements or members, in source order */
      size_t count;
    } children;
  };
};

/* All values and strings of a document live in a list of blocks that never move, so the
 * pointers handed out stay valid until gc_json_free. */
typedef struct block {
  struct block *next;
  size_t size;
  size_t used;
  _Alignas (max_align_t) unsigned char data[];
} block;

struct gc_json {
  block *blocks;
  gc_json_value root;
};

typedef struct {
  const unsigned char *text;
  size_t length;
  size_t pos;
  int depth;
  gc_json *doc;
  /* Children of the containers being parsed, innermost last; a container copies its own run
   * of this stack into the document when it closes. */
  gc_json_value *stack;
  size_t stack_count;
  size_t stack_capacity;
  size_t values; /* parsed so far, against MAX_VALUES */
  gc_error *err;
} parser;

static void *
doc_alloc (gc_json *doc, size_t size)
{
  size = (size + _Alignof (max_align_t) - 1) & ~(size_t) (_Alignof (max_align_t) - 1);
  block *b = doc->blocks;
  if (b == NULL || b->size - b->used < size)
    {
      size_t capacity = size > BLOCK_SIZE ? size : BLOCK_SIZE;
      b = malloc (sizeof *b + capacity);
      if (b == NULL)
        return NULL;
      b->size = capacity;
      b->used = 0;
      b->next = doc->blocks;
      doc->blocks = b;
    }
  void *p = b->data + b->used;
  b->used += size;
  return p;
}

static gc_status
syntax_error (parser *p, const char *what)
{
  return gc_error_set (p->err, GC_ERR_FORMAT, "invalid JSON at byte %zu: %s", p->pos, what);
}

static gc_status
out_of_memory (parser *p)
{
  return gc_error_set (p->err, GC_ERR_NOMEM, "out of memory while parsing JSON");
}

static void
skip_whitespace (parser *p)
{
  while (p->pos < p->length)
    {
      unsigned char c = p->text[p->pos];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        break;
      p->pos++;
    }
}

static bool
at_end (const parser *p)
{
  return p->pos >= p->length;
}

static int
peek (const parser *p)
{
  return at_end (p) ? -1 : p->text[p->pos];
}

static gc_status
expect_literal (parser *p, const char *word, gc_json_type type, gc_json_value *out)
{
  size_t n = strlen (word);
  if (p->length - p->pos < n || memcmp (p->text + p->pos, word, n) != 0)
    return syntax_error (p, "unexpected character");
  p->pos += n;
  out->type = type;
  return GC_OK;
}

static bool
is_digit (int c)
{
  return c >= '0' && c <= '9';
}

static gc_status
parse_number (parser *p, gc_json_value *out)
{
  size_t start = p->pos;
  if (peek (p) == '-')
    p->pos++;
  if (peek (p) == '0')
    {
      p->pos++;
      if (is_digit (peek (p)))
        return syntax_error (p, "leading zero in a number");
    }
  else if (is_digit (peek (p)))
    while (is_digit (peek (p)))
      p->pos++;
  else
    return syntax_error (p, "expected a digit");
  if (peek (p) == '.')
    {
      p->pos++;
      if (!is_digit (peek (p)))
        return syntax_error (p, "expected a digit after the decimal point");
      while (is_digit (peek (p)))
        p->pos++;
    }
  if (peek (p) == 'e' || peek (p) == 'E')
    {
      p->pos++;
      if (peek (p) == '+' || peek (p) == '-')
        p->pos++;
      if (!is_digit (peek (p)))
        return syntax_error (p, "expected a digit in the exponent");
      while (is_digit (peek (p)))
        p->pos++;
    }
  size_t n = p->pos - start;
  char *copy = doc_alloc (p->doc, n + 1);
  if (copy == NULL)
    return out_of_memory (p);
  memcpy (copy, p->text + start, n);
  copy[n] = '\0';
  out->type = GC_JSON_NUMBER;
  out->text.chars = copy;
  out->text.length = n;
  return GC_OK;
}

static int
hex_value (int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads the four hex digits after "\u". */
static gc_status
parse_hex4 (parser *p, uint32_t *out)
{
  if (p->length - p->pos < 4)
    return syntax_error (p, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    {
      int h = hex_value (p->text[p->pos + i]);
      if (h < 0)
        return syntax_error (p, "bad hex digit in \\u escape");
      v = v << 4 | (uint32_t) h;
    }
  p->pos += 4;
  *out = v;
  return GC_OK;
}

static size_t
put_utf8 (char *dst, uint32_t cp)
{
  if (cp < 0x80)
    {
      dst[0] = (char) cp;
      return 1;
    }
  if (cp < 0x800)
    {
      dst[0] = (char) (0xc0 | cp >> 6);
      dst[1] = (char) (0x80 | (cp & 0x3f));
      return 2;
    }
  if (cp < 0x10000)
    {
      dst[0] = (char) (0xe0 | cp >> 12);
      dst[1] = (char) (0x80 | (cp >> 6 & 0x3f));
      dst[2] = (char) (0x80 | (cp & 0x3f));
      return 3;
    }
  dst[0] = (char) (0xf0 | cp >> 18);
  dst[1] = (char) (0x80 | (cp >> 12 & 0x3f));
  dst[2] = (char) (0x80 | (cp >> 6 & 0x3f));
  dst[3] = (char) (0x80 | (cp & 0x3f));
  return 4;
}

/* Decodes the escape after a backslash into dst; returns the bytes written through *written. */
static gc_status
parse_escape (parser *p, char *dst, size_t *written)
{
  if (at_end (p))
    return syntax_error (p, "unterminated string");
  int c = p->text[p->pos++];
  static const char simple_from[] = "\"\\/bfnrt";
  static const char simple_to[] = "\"\\/\b\f\n\r\t";
  const char *hit = c ? strchr (simple_from, c) : NULL;
  if (hit != NULL)
    {
      *dst = simple_to[hit - simple_from];
      *written = 1;
      return GC_OK;
    }
  if (c != 'u')
    {
      p->pos--;
      return syntax_error (p, "unknown escape in string");
    }
  uint32_t cp;
  gc_status s = parse_hex4 (p, &cp);
  if (s != GC_OK)
    return s;
  if (cp >= 0xdc00 && cp <= 0xdfff)
    return syntax_error (p, "unpaired low surrogate in \\u escape");
  if (cp >= 0xd800 && cp <= 0xdbff)
    {
      if (p->length - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
        return syntax_error (p, "unpaired high surrogate in \\u escape");
      p->pos += 2;
      uint32_t low;
      s = parse_hex4 (p, &low);
      if (s != GC_OK)
        return s;
      if (low < 0xdc00 || low > 0xdfff)
        return syntax_error (p, "high surrogate not followed by a low surrogate");
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
  *written = put_utf8 (dst, cp);
  return GC_OK;
}

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 if it is invalid:
 * overlong forms, surrogates and code points above U+10FFFF are rejected. */
static size_t
utf8_sequence_length (const unsigned char *s, size_t avail)
{
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef)
    {
      n = 3;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    }
  else if (c >= 0xf0 && c <= 0xf4)
    {
      n = 4;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    }
  else
    return 0;
  if (avail < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

/* Called with pos on the opening quote. The decoded form is never longer than the source. */
static gc_status
parse_string (parser *p, const char **chars, size_t *length)
{
  p->pos++;
  size_t end = p->pos;
  while (end < p->length && p->text[end] != '"')
    end += p->text[end] == '\\' ? 2 : 1;
  if (end >= p->length)
    return syntax_error (p, "unterminated string");
  char *out = doc_alloc (p->doc, end - p->pos + 1);
  if (out == NULL)
    return out_of_memory (p);
  size_t n = 0;
  while (p->text[p->pos] != '"')
    {
      unsigned char c = p->text[p->pos];
      if (c == '\\')
        {
          p->pos++;
          size_t written = 0;
          gc_status s = parse_escape (p, out + n, &written);
          if (s != GC_OK)
            return s;
          n += written;
        }
      else if (c < 0x20)
        return syntax_error (p, "control character in string");
      else if (c < 0x80)
        {
          out[n++] = (char) c;
          p->pos++;
        }
      else
        {
          size_t len = utf8_sequence_length (p->text + p->pos, p->length - p->pos);
          if (len == 0)
            return syntax_error (p, "invalid UTF-8 in string");
          memcpy (out + n, p->text + p->pos, len);
          n += len;
          p->pos += len;
        }
    }
  p->pos++;
  out[n] = '\0';
  *chars = out;
  *length = n;
  return GC_OK;
}

static gc_status
stack_push (parser *p, const gc_json_value *value)
{
  if (++p->values > MAX_VALUES)
    return gc_error_set (p->err, GC_ERR_FORMAT,
                         "JSON with more than %d values: too large to be a header", MAX_VALUES);
  if (p->stack_count == p->stack_capacity)
    {
      size_t capacity = p->stack_capacity ? p->stack_capacity * 2 : 64;
      gc_json_value *grown = realloc (p->stack, capacity * sizeof *grown);
      if (grown == NULL)
        return out_of_memory (p);
      p->stack = grown;
      p->stack_capacity = capacity;
    }
  p->stack[p->stack_count++] = *value;
  return GC_OK;
}

/* Moves the children pushed since base into the document and makes them out's. */
static gc_status
close_container (parser *p, size_t base, gc_json_value *out)
{
  size_t count = p->stack_count - base;
  gc_json_value *items = NULL;
  if (count > 0)
    {
      items = doc_alloc (p->doc, count * sizeof *items);
      if (items == NULL)
        return out_of_memory (p);
      memcpy (items, p->stack + base, count * sizeof *items);
    }
  p->stack_count = base;
  out->children.items = items;
  out->children.count = count;
  return GC_OK;
}

static gc_status parse_value (parser *p, gc_json_value *out);

/* Parses the elements or members after the opening bracket, up to the closing one. */
static gc_status
parse_container (parser *p, gc_json_value *out, bool object)
{
  char close = object ? '}' : ']';
  if (++p->depth > MAX_DEPTH)
    return syntax_error (p, "nesting deeper than 64 levels");
  p->pos++;
  out->type = object ? GC_JSON_OBJECT : GC_JSON_ARRAY;
  size_t base = p->stack_count;
  skip_whitespace (p);
  if (peek (p) == close)
    p->pos++;
  else
    for (;;)
      {
        gc_json_value item = { 0 };
        if (object)
          {
            skip_whitespace (p);
            if (peek (p) != '"')
              return syntax_error (p, "expected a string as object key");
            gc_status s = parse_string (p, &item.key, &item.key_length);
            if (s != GC_OK)
              return s;
            skip_whitespace (p);
            if (peek (p) != ':')
              return syntax_error (p, "expected ':' after object key");
            p->pos++;
          }
        gc_status s = parse_value (p, &item);
        if (s != GC_OK)
          return s;
        s = stack_push (p, &item);
        if (s != GC_OK)
          return s;
        skip_whitespace (p);
        int c = peek (p);
        p->pos++;
        if (c == close)
          break;
        if (c != ',')
          {
            p->pos--;
            return syntax_error (p, object ? "expected ',' or '}'" : "expected ',' or ']'");
          }
      }
  p->depth--;
  return close_container (p, base, out);
}

/* Fills out's type and contents; out->key is left as the caller set it. */
static gc_status
parse_value (parser *p, gc_json_value *out)
{
  skip_whitespace (p);
  switch (peek (p))
    {
    case -1:
      return syntax_error (p, "unexpected end of input");
    case '{':
      return parse_container (p, out, true);
    case '[':
      return parse_container (p, out, false);
    case '"':
      out->type = GC_JSON_STRING;
      return parse_string (p, &out->text.chars, &out->text.length);
    case 't':
      return expect_literal (p, "true", GC_JSON_TRUE, out);
    case 'f':
      return expect_literal (p, "false", GC_JSON_FALSE, out);
    case 'n':
      return expect_literal (p, "null", GC_JSON_NULL, out);
    default:
      return parse_number (p, out);
    }
}

gc_status
gc_json_parse (gc_json **out, const char *text, size_t length, gc_error *err)
{
  *out = NULL;
  gc_json *doc = calloc (1, sizeof *doc);
  if (doc == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory while parsing JSON");
  parser p = { .text = (const unsigned char *) text, .length = length, .doc = doc, .err = err };
  gc_status s = parse_value (&p, &doc->root);
  if (s == GC_OK)
    {
      skip_whitespace (&p);
      if (!at_end (&p))
        s = syntax_error (&p, "trailing characters after the JSON value");
    }
  free (p.stack);
  if (s != GC_OK)
    {
      gc_json_free (doc);
      return s;
    }
  *out = doc;
  return GC_OK;
}

void
gc_json_free (gc_json *doc)
{
  if (doc == NULL)
    return;
  while (doc->blocks)
    {
      block *next = doc->blocks->next;
      free (doc->blocks);
      doc->blocks = next;
    }
  free (doc);
}

const gc_json_value *
gc_json_root (const gc_json *doc)
{
  return &doc->root;
}

gc_json_type
gc_json_type_of (const gc_json_value *value)
{
  return value->type;
}

static bool
is_container (const gc_json_value *value)
{
  return value->type == GC_JSON_ARRAY || value->type == GC_JSON_OBJECT;
}

size_t
gc_json_length (const gc_json_value *value)
{
  return is_container (value) ? value->children.count : 0;
}

const gc_json_value *
gc_json_array_at (const gc_json_value *array, size_t index)
{
  if (array->type != GC_JSON_ARRAY || index >= array->children.count)
    return NULL;
  return &array->children.items[index];
}

const char *
gc_json_member_key (const gc_json_value *object, size_t index, size_t *key_length)
{
  if (object->type != GC_JSON_OBJECT || index >= object->children.count)
    return NULL;
  const gc_json_value *member = &object->children.items[index];
  if (key_length)
    *key_length = member->key_length;
  return member->key;
}

const gc_json_value *
gc_json_member_value (const gc_json_value *object, size_t index)
{
  if (object->type != GC_JSON_OBJECT || index >= object->children.count)
    return NULL;
  return &object->children.items[index];
}

const gc_json_value *
gc_json_get (const gc_json_value *object, const char *key)
{
  if (object->type != GC_JSON_OBJECT)
    return NULL;
  size_t n = strlen (key);
  for (size_t i = 0; i < object->children.count; i++)
    {
      const gc_json_value *member = &object->children.items[i];
      if (member->key_length == n && memcmp (member->key, key, n) == 0)
        return member;
    }
  return NULL;
}

const char *
gc_json_string (const gc_json_value *value, size_t *length)
{
  if (value->type != GC_JSON_STRING)
    return NULL;
  if (length)
    *length = value->text.length;
  return value->text.chars;
}

double
gc_json_number (const gc_json_value *value)
{
  if (value->type != GC_JSON_NUMBER)
    return 0.0;
  /* JSON always writes '.', whatever the application's locale */
  return gc_c_strtod (value->text.chars, NULL);
}

/* The magnitude of an integer-form number; false for fractions, exponents and overflow. */
static bool
integer_magnitude (const gc_json_value *value, bool *negative, uint64_t *magnitude)
{
  if (value->type != GC_JSON_NUMBER)
    return false;
  const char *s = value->text.chars;
  *negative = *s == '-';
  if (*negative)
    s++;
  uint64_t v = 0;
  for (; *s; s++)
    {
      if (!is_digit (*s))
        return false;
      unsigned digit = (unsigned) (*s - '0');
      if (v > (UINT64_MAX - digit) / 10)
        return false;
      v = v * 10 + digit;
    }
  *magnitude = v;
  return true;
}

bool
gc_json_uint64 (const gc_json_value *value, uint64_t *out)
{
  bool negative;
  uint64_t m;
  if (!integer_magnitude (value, &negative, &m) || (negative && m != 0))
    return false;
  *out = m;
  return true;
}

bool
gc_json_int64 (const gc_json_value *value, int64_t *out)
{
  bool negative;
  uint64_t m;
  if (!integer_magnitude (value, &negative, &m))
    return false;
  if (negative)
    {
      if (m > (uint64_t) INT64_MAX + 1)
        return false;
      *out = m == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) m;
    }
  else
    {
      if (m > INT64_MAX)
        return false;
      *out = (int64_t) m;
    }
  return true;
}

static size_t
put_escape_u (char *dst, uint32_t unit)
{
  static const char hex[] = "0123456789abcdef";
  if (dst)
    {
      dst[0] = '\\';
      dst[1] = 'u';
      for (int i = 0; i < 4; i++)
        dst[2 + i] = hex[unit >> (12 - 4 * i) & 0xf];
    }
  return 6;
}

/* The code point of the n-byte sequence at s, already checked by utf8_sequence_length. */
static uint32_t
utf8_code_point (const unsigned char *s, size_t n)
{
  static const unsigned char lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
  uint32_t cp = s[0] & lead_mask[n];
  for (size_t i = 1; i < n; i++)
    cp = cp << 6 | (s[i] & 0x3f);
  return cp;
}

size_t
gc_json_quote (char *dst, const char *src, size_t length)
{
  static const char short_from[] = "\"\\\b\f\n\r\t";
  static const char short_to[] = "\"\\bfnrt";
  const unsigned char *s = (const unsigned char *) src;
  size_t n = 0;
  if (dst)
    dst[n] = '"';
  n++;
  for (size_t i = 0; i < length;)
    {
      unsigned char c = s[i];
      const char *hit = c ? memchr (short_from, c, sizeof short_from - 1) : NULL;
      if (hit)
        {
          if (dst)
            {
              dst[n] = '\\';
              dst[n + 1] = short_to[hit - short_from];
            }
          n += 2;
          i++;
        }
      else if (c >= 0x20 && c < 0x7f)
        {
          if (dst)
            dst[n] = (char) c;
          n++;
          i++;
        }
      else if (c < 0x80)
        {
          n += put_escape_u (dst ? dst + n : NULL, c);
          i++;
        }
      else
        {
          size_t len = utf8_sequence_length (s + i, length - i);
          if (len == 0)
            return SIZE_MAX;
          uint32_t cp = utf8_code_point (s + i, len);
          if (cp >= 0x10000)
            {
              cp -= 0x10000;
              n += put_escape_u (dst ? dst + n : NULL, 0xd800 + (cp >> 10));
              n += put_escape_u (dst ? dst + n : NULL, 0xdc00 + (cp & 0x3ff));
            }
          else
            n += put_escape_u (dst ? dst + n : NULL, cp);
          i += len;
        }
    }
  if (dst)
    dst[n] = '"';
  return n + 1;
}

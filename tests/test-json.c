/* The strict JSON parser behind safetensors headers and key lists: what it accepts, what it
 * refuses (with the byte offset a user can look at), and Python-compatible string quoting. */
#include <glib.h>
#include <locale.h>
#include <string.h>

#include "gc-json.h"

static gc_json *
parse_ok (const char *text)
{
  gc_json *doc = NULL;
  gc_error err = { 0 };
  gc_status s = gc_json_parse (&doc, text, strlen (text), &err);
  if (s != GC_OK)
    g_error ("'%s' was refused: %s", text, err.message);
  return doc;
}

/* Checks that text is refused and that the message names the problem and the byte offset. */
static void
assert_refused (const char *text, size_t length, const char *problem, size_t offset)
{
  gc_json *doc = NULL;
  gc_error err = { 0 };
  g_assert_cmpint (gc_json_parse (&doc, text, length, &err), ==, GC_ERR_FORMAT);
  g_assert_null (doc);
  g_autofree char *at = g_strdup_printf ("at byte %zu", offset);
  if (!strstr (err.message, problem) || !strstr (err.message, at))
    g_error ("message for '%s' is '%s', expected '%s' %s", text, err.message, problem, at);
}

static void
test_document (void)
{
  gc_json *doc = parse_ok (" {\"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": \"d\"}} \n");
  const gc_json_value *root = gc_json_root (doc);
  g_assert_cmpint (gc_json_type_of (root), ==, GC_JSON_OBJECT);
  g_assert_cmpuint (gc_json_length (root), ==, 2);
  size_t key_length;
  g_assert_cmpstr (gc_json_member_key (root, 1, &key_length), ==, "b");
  g_assert_cmpuint (key_length, ==, 1);
  const gc_json_value *a = gc_json_get (root, "a");
  g_assert_cmpint (gc_json_type_of (a), ==, GC_JSON_ARRAY);
  g_assert_cmpuint (gc_json_length (a), ==, 5);
  g_assert_cmpfloat (gc_json_number (gc_json_array_at (a, 1)), ==, -2500.0);
  g_assert_cmpint (gc_json_type_of (gc_json_array_at (a, 2)), ==, GC_JSON_TRUE);
  g_assert_cmpint (gc_json_type_of (gc_json_array_at (a, 3)), ==, GC_JSON_FALSE);
  g_assert_cmpint (gc_json_type_of (gc_json_array_at (a, 4)), ==, GC_JSON_NULL);
  g_assert_null (gc_json_array_at (a, 5));
  g_assert_cmpstr (gc_json_string (gc_json_get (gc_json_get (root, "b"), "c"), NULL), ==, "d");
  g_assert_null (gc_json_get (root, "missing"));
  g_assert_null (gc_json_get (a, "a")); /* not an object */
  gc_json_free (doc);
}

static void
test_integers (void)
{
  gc_json *doc = parse_ok ("[18446744073709551615, 18446744073709551616, -9223372036854775808,"
                           " 9223372036854775807, -1, 1.0, 1e3, -0]");
  const gc_json_value *root = gc_json_root (doc);
  uint64_t u;
  int64_t i;
  g_assert_true (gc_json_uint64 (gc_json_array_at (root, 0), &u));
  g_assert_cmpuint (u, ==, UINT64_MAX);
  g_assert_false (gc_json_int64 (gc_json_array_at (root, 0), &i));
  g_assert_false (gc_json_uint64 (gc_json_array_at (root, 1), &u)); /* 2⁶⁴ overflows */
  g_assert_true (gc_json_int64 (gc_json_array_at (root, 2), &i));
  g_assert_cmpint (i, ==, INT64_MIN);
  g_assert_true (gc_json_int64 (gc_json_array_at (root, 3), &i));
  g_assert_cmpint (i, ==, INT64_MAX);
  g_assert_false (gc_json_uint64 (gc_json_array_at (root, 4), &u));
  g_assert_true (gc_json_int64 (gc_json_array_at (root, 4), &i));
  g_assert_cmpint (i, ==, -1);
  /* written with a fraction or exponent: a number, but not an integer */
  g_assert_false (gc_json_int64 (gc_json_array_at (root, 5), &i));
  g_assert_false (gc_json_uint64 (gc_json_array_at (root, 6), &u));
  g_assert_cmpfloat (gc_json_number (gc_json_array_at (root, 6)), ==, 1000.0);
  g_assert_true (gc_json_uint64 (gc_json_array_at (root, 7), &u));
  g_assert_cmpuint (u, ==, 0);
  gc_json_free (doc);
}

static void
test_number_locale (void)
{
  /* a German desktop writes 0,5: JSON still means 0.5 */
  if (setlocale (LC_NUMERIC, "de_DE.UTF-8") == NULL && setlocale (LC_NUMERIC, "fr_FR.UTF-8") == NULL)
    {
      g_test_skip ("no locale with a decimal comma is installed");
      return;
    }
  gc_json *doc = parse_ok ("0.5");
  g_assert_cmpfloat (gc_json_number (gc_json_root (doc)), ==, 0.5);
  gc_json_free (doc);
  setlocale (LC_NUMERIC, "C");
}

static void
test_strings (void)
{
  gc_json *doc = parse_ok ("[\"caf\\u00e9 \\ud83d\\ude00 \\\"\\\\\\/\\b\\f\\n\\r\\t\", \"a\\u0000b\","
                           " \"\xe2\x82\xac\"]");
  const gc_json_value *root = gc_json_root (doc);
  size_t length;
  const char *s = gc_json_string (gc_json_array_at (root, 0), &length);
  g_assert_cmpstr (s, ==, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"\\/\b\f\n\r\t");
  g_assert_cmpuint (length, ==, strlen (s));
  s = gc_json_string (gc_json_array_at (root, 1), &length);
  g_assert_cmpuint (length, ==, 3);
  g_assert_cmpmem (s, 3, "a\0b", 3);
  g_assert_cmpstr (gc_json_string (gc_json_array_at (root, 2), NULL), ==, "\xe2\x82\xac");
  g_assert_null (gc_json_string (root, NULL));
  gc_json_free (doc);
}

static void
test_duplicate_keys_kept (void)
{
  gc_json *doc = parse_ok ("{\"a\": 1, \"a\": 2}");
  const gc_json_value *root = gc_json_root (doc);
  g_assert_cmpuint (gc_json_length (root), ==, 2);
  g_assert_cmpfloat (gc_json_number (gc_json_get (root, "a")), ==, 1.0); /* the first */
  g_assert_cmpfloat (gc_json_number (gc_json_member_value (root, 1)), ==, 2.0);
  gc_json_free (doc);
}

static void
test_depth_limit (void)
{
  GString *ok = g_string_new (NULL);
  for (int i = 0; i < 64; i++)
    g_string_append_c (ok, '[');
  for (int i = 0; i < 64; i++)
    g_string_append_c (ok, ']');
  gc_json_free (parse_ok (ok->str));
  g_string_insert_c (ok, 0, '[');
  g_string_append_c (ok, ']');
  assert_refused (ok->str, ok->len, "deeper than 64", 64);
  g_string_free (ok, TRUE);
}

static void
test_refusals (void)
{
  assert_refused ("", 0, "end of input", 0);
  assert_refused ("[1] x", 5, "trailing", 4);
  assert_refused ("[01]", 4, "leading zero", 2);
  assert_refused ("[-]", 3, "digit", 2);
  assert_refused ("[1.]", 4, "decimal point", 3);
  assert_refused ("[1e]", 4, "exponent", 3);
  assert_refused ("[1,]", 4, "digit", 3);
  assert_refused ("{\"a\" 1}", 7, "':'", 5);
  assert_refused ("{1: 2}", 6, "object key", 1);
  assert_refused ("{\"a\": 1,}", 9, "object key", 8);
  assert_refused ("[1 2]", 5, "','", 3);
  assert_refused ("tru", 3, "unexpected character", 0);
  assert_refused ("\"abc", 4, "unterminated", 1);
  assert_refused ("\"a\tb\"", 5, "control character", 2);
  assert_refused ("\"\\x\"", 4, "unknown escape", 2);
  assert_refused ("\"\\u12g4\"", 8, "hex digit", 3);
  assert_refused ("\"\\ud800\"", 8, "unpaired high surrogate", 7);
  assert_refused ("\"\\ud800\\u0041\"", 14, "low surrogate", 13);
  assert_refused ("\"\\udc00\"", 8, "unpaired low surrogate", 7);
  /* invalid UTF-8: a stray continuation byte, an overlong '/', an encoded surrogate, a
   * sequence cut short, a code point above U+10FFFF */
  assert_refused ("\"\x80\"", 3, "UTF-8", 1);
  assert_refused ("\"\xc0\xaf\"", 4, "UTF-8", 1);
  assert_refused ("\"a\xed\xa0\x80\"", 6, "UTF-8", 2);
  assert_refused ("\"\xe2\x82\"", 4, "UTF-8", 1);
  assert_refused ("\"\xf4\x90\x80\x80\"", 6, "UTF-8", 1);
  /* a NUL byte in the input is not whitespace */
  assert_refused ("[1]\0", 4, "trailing", 3);
  /* the length bounds the input: nothing after it is read */
  assert_refused ("[1]", 2, "','", 2);
}

/* A hostile header of millions of tiny values is refused before it can exhaust memory. */
static void
test_value_limit (void)
{
  enum { COUNT = (1 << 23) + 1 };
  GString *text = g_string_sized_new (2 * COUNT + 2);
  g_string_append_c (text, '[');
  for (int i = 0; i < COUNT; i++)
    g_string_append (text, i ? ",0" : "0");
  g_string_append_c (text, ']');
  gc_json *doc = NULL;
  gc_error err = { 0 };
  g_assert_cmpint (gc_json_parse (&doc, text->str, text->len, &err), ==, GC_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "values"));
  g_assert_null (doc);
  g_string_free (text, TRUE);
}

static void
test_quote_like_python (void)
{
  /* json.dumps("caf\u00e9\n\x01\x7f\"\\/\U0001F600\t\b\f\r") */
  const char *s = "caf\xc3\xa9\n\x01\x7f\"\\/\xf0\x9f\x98\x80\t\b\f\r";
  const char *expected = "\"caf\\u00e9\\n\\u0001\\u007f\\\"\\\\/\\ud83d\\ude00\\t\\b\\f\\r\"";
  size_t n = gc_json_quote (NULL, s, strlen (s));
  g_assert_cmpuint (n, ==, strlen (expected));
  char buf[128];
  g_assert_cmpuint (gc_json_quote (buf, s, strlen (s)), ==, n);
  g_assert_cmpmem (buf, n, expected, n);
  /* a NUL inside the given length is escaped, not an end */
  g_assert_cmpuint (gc_json_quote (buf, "a\0b", 3), ==, 10);
  g_assert_cmpmem (buf, 10, "\"a\\u0000b\"", 10);
  g_assert_cmpuint (gc_json_quote (NULL, "\xc3", 1), ==, SIZE_MAX);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/json/document", test_document);
  g_test_add_func ("/core/json/integers", test_integers);
  g_test_add_func ("/core/json/number-locale", test_number_locale);
  g_test_add_func ("/core/json/strings", test_strings);
  g_test_add_func ("/core/json/duplicate-keys", test_duplicate_keys_kept);
  g_test_add_func ("/core/json/depth-limit", test_depth_limit);
  g_test_add_func ("/core/json/refusals", test_refusals);
  g_test_add_func ("/core/json/value-limit", test_value_limit);
  g_test_add_func ("/core/json/quote", test_quote_like_python);
  return g_test_run ();
}

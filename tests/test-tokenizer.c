/* The CLIP tokenizer: a prompt must give the very ids OpenAI's tokenizer gives, or the text
 * encoder sees a different prompt than the artist wrote. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "gc-tokenizer.h"

static gc_tokenizer *tokenizer;

/* A folder that tests/meson.build names in the environment. */
static const char *
env_dir (const char *name)
{
  const char *dir = g_getenv (name);
  if (dir == NULL)
    g_error ("%s is not set; run the tests with meson test", name);
  return dir;
}

static gc_tokenizer *
load_vocabulary (void)
{
  g_autofree char *path = g_build_filename (env_dir ("GOUACHE_DATA_DIR"),
                                            "bpe_simple_vocab_16e6.txt.gz", NULL);
  gc_tokenizer *t = NULL;
  gc_error err = { 0 };
  gc_status status = gc_tokenizer_load (&t, path, &err);
  if (status != GC_OK)
    g_error ("%s", err.message);
  return t;
}

/* The ids of text, which must encode without error. */
static GArray *
encode (const char *text)
{
  int32_t *ids = NULL;
  size_t count = 0;
  gc_error err = { 0 };
  gc_status status = gc_tokenizer_encode (tokenizer, text, &ids, &count, &err);
  if (status != GC_OK)
    g_error ("encoding \"%s\": %s", text, err.message);
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (int32_t), (guint) count);
  g_array_append_vals (out, ids, (guint) count);
  free (ids);
  return out;
}

static void
assert_same_ids (const char *a, const char *b)
{
  g_autoptr (GArray) ia = encode (a);
  g_autoptr (GArray) ib = encode (b);
  if (ia->len != ib->len || memcmp (ia->data, ib->data, ia->len * sizeof (int32_t)) != 0)
    g_error ("\"%s\" and \"%s\" should encode alike (%u and %u ids)", a, b, ia->len, ib->len);
}

/* Undoes the escapes of tokenizer-reference.tsv: \\ \t \n \r and \uHHHH. */
static char *
unescape_prompt (const char *s)
{
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p != '\0'; p++)
    {
      if (*p != '\\')
        {
          g_string_append_c (out, *p);
          continue;
        }
      p++;
      switch (*p)
        {
        case '\\': g_string_append_c (out, '\\'); break;
        case 't': g_string_append_c (out, '\t'); break;
        case 'n': g_string_append_c (out, '\n'); break;
        case 'r': g_string_append_c (out, '\r'); break;
        case 'u':
          {
            char hex[5] = { 0 };
            g_assert_cmpuint (strlen (p + 1), >=, 4);
            memcpy (hex, p + 1, 4);
            g_string_append_unichar (out, (gunichar) g_ascii_strtoull (hex, NULL, 16));
            p += 4;
            break;
          }
        default: g_error ("unknown escape \\%c in the reference data", *p);
        }
    }
  return g_string_free (out, FALSE);
}

static void
test_reference (void)
{
  g_autofree char *path = g_build_filename (env_dir ("GOUACHE_TEST_DATA"),
                                            "tokenizer-reference.tsv", NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &contents, NULL, &error));
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  guint windows = 0, cases = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] == '#' || lines[i][0] == '\0')
        continue;
      g_auto (GStrv) fields = g_strsplit (lines[i], "\t", -1);
      g_assert_cmpuint (g_strv_length (fields), ==, 3);
      g_autofree char *prompt = unescape_prompt (fields[1]);
      g_auto (GStrv) numbers = g_strsplit (fields[2], " ", -1);
      guint n = g_strv_length (numbers);
      g_autoptr (GArray) ids = encode (prompt);
      int32_t window[GC_CONTEXT_TOKENS];
      const int32_t *got = (const int32_t *) (void *) ids->data;
      if (strcmp (fields[0], "window") == 0)
        {
          g_assert_cmpuint (n, ==, GC_CONTEXT_TOKENS);
          gc_tokens_window (window, got, ids->len, GC_TOKEN_END);
          got = window;
          windows++;
        }
      else
        {
          g_assert_cmpstr (fields[0], ==, "ids");
          g_assert_cmpuint (ids->len, ==, n);
        }
      for (guint k = 0; k < n; k++)
        if (got[k] != (int32_t) g_ascii_strtoll (numbers[k], NULL, 10))
          g_error ("\"%s\": id %u is %d, the reference has %s", fields[1], k, got[k], numbers[k]);
      cases++;
    }
  /* All eight prompts of the oracle are there, and the cleaning cases besides. */
  g_assert_cmpuint (windows, ==, 8);
  g_assert_cmpuint (cases, >, windows);
}

static void
test_known_tokens (void)
{
  g_assert_cmpint (gc_tokenizer_vocab_size (tokenizer), ==, 49408);
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 0), ==, "!");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 256), ==, "!</w>");
  /* Bytes that are not printable Latin-1 stand for U+0100 on: byte 0x00 is Ā, space is Ġ. */
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 188), ==, "Ā");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 188 + 32), ==, "Ġ");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 320), ==, "a</w>");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 512), ==, "in");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, 2368), ==, "cat</w>");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, GC_TOKEN_START), ==, "<|startoftext|>");
  g_assert_cmpstr (gc_tokenizer_token (tokenizer, GC_TOKEN_END), ==, "<|endoftext|>");
  g_assert_null (gc_tokenizer_token (tokenizer, -1));
  g_assert_null (gc_tokenizer_token (tokenizer, 49408));
}

static void
test_html_entities (void)
{
  assert_same_ids ("fish &amp; chips", "fish & chips");
  assert_same_ids ("&lt;3 &gt;_&lt;", "<3 >_<");
  assert_same_ids ("&quot;hi&quot; it&#39;s &apos;me&apos;", "\"hi\" it's 'me'");
  assert_same_ids ("a&nbsp;b", "a b");
  assert_same_ids ("&#233;t&#xE9; &eacute;t&Eacute; &eacutet", "été été ét");
  assert_same_ids ("&#x1F600; &hellip; &mdash;", "😀 … —");
  /* Escaped twice is still unescaped (html.unescape runs twice); a lone '&' stays. */
  assert_same_ids ("salt &amp;amp; pepper & co", "salt & pepper & co");
  /* Names only HTML5 knows stay text, as documented. */
  assert_same_ids ("&check;", "& check ;");
}

static void
test_whitespace (void)
{
  assert_same_ids ("  a\t\n  red   fox \r\n", "a red fox");
  assert_same_ids ("a\xc2\xa0\xe2\x80\x83\xe3\x80\x80" "fox", "a fox");
  g_autoptr (GArray) blank = encode (" \t\n ");
  g_assert_cmpuint (blank->len, ==, 0);
}

static void
test_case_and_accents (void)
{
  assert_same_ids ("CAFÉ Crème BRÛLÉE", "café crème brûlée");
  assert_same_ids ("ÉCOLE, ÀÖÜ ÇÑ", "école, àöü çñ");
  assert_same_ids ("ΟΔΟΣ", "οδος"); /* a Σ ending a word lowers to ς */
  /* e + combining acute is é once normalized (NFC). */
  assert_same_ids ("cafe\xcc\x81", "café");
}

static void
test_typography (void)
{
  assert_same_ids ("don\xe2\x80\x99t \xe2\x80\x9cquote\xe2\x80\x9d", "don't \"quote\"");
  assert_same_ids ("\xef\xac\x81sh", "fish");
  assert_same_ids ("ＣＡＴ １２", "cat 12");
}

static void
test_long_prompt_not_truncated (void)
{
  GString *prompt = g_string_new (NULL);
  for (int i = 0; i < 100; i++)
    g_string_append (prompt, "red ");
  g_autoptr (GArray) ids = encode (prompt->str);
  g_string_free (prompt, TRUE);
  g_assert_cmpuint (ids->len, ==, 100);
  g_assert_cmpuint (gc_tokens_window_count (ids->len), ==, 2);
  const int32_t *v = (const int32_t *) (void *) ids->data;
  int32_t second[GC_CONTEXT_TOKENS];
  gc_tokens_window (second, v + GC_CHUNK_TOKENS, ids->len - GC_CHUNK_TOKENS, GC_TOKEN_END);
  g_assert_cmpint (second[0], ==, GC_TOKEN_START);
  g_assert_cmpint (second[25], ==, v[99]);
  g_assert_cmpint (second[26], ==, GC_TOKEN_END);
}

static void
test_invalid_utf8 (void)
{
  static const char *const bad[] = {
    "caf\xe9",         /* Latin-1, not UTF-8 */
    "\xc3",            /* ends inside a character */
    "\xc0\xaf",        /* overlong '/' */
    "\xed\xa0\x80",    /* a surrogate */
    "\xf4\x90\x80\x80", /* past U+10FFFF */
    "a\x80",           /* a stray continuation byte */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      int32_t *ids = (int32_t *) 1;
      size_t count = 1;
      gc_error err = { 0 };
      g_assert_cmpint (gc_tokenizer_encode (tokenizer, bad[i], &ids, &count, &err), ==, GC_ERR_INVALID);
      g_assert_null (ids);
      g_assert_cmpuint (count, ==, 0);
      g_assert_nonnull (strstr (err.message, "not valid UTF-8"));
    }
}

static void
test_window (void)
{
  int32_t out[GC_CONTEXT_TOKENS];
  const int32_t ids[3] = { 320, 2368, 267 };
  gc_tokens_window (out, ids, 3, GC_TOKEN_END);
  g_assert_cmpint (out[0], ==, GC_TOKEN_START);
  g_assert_cmpint (out[1], ==, 320);
  g_assert_cmpint (out[3], ==, 267);
  for (int i = 4; i < GC_CONTEXT_TOKENS; i++)
    g_assert_cmpint (out[i], ==, GC_TOKEN_END);
  /* OpenCLIP pads with 0 after the end token. */
  gc_tokens_window (out, ids, 3, 0);
  g_assert_cmpint (out[4], ==, GC_TOKEN_END);
  for (int i = 5; i < GC_CONTEXT_TOKENS; i++)
    g_assert_cmpint (out[i], ==, 0);
  gc_tokens_window (out, NULL, 0, 0);
  g_assert_cmpint (out[0], ==, GC_TOKEN_START);
  g_assert_cmpint (out[1], ==, GC_TOKEN_END);
  g_assert_cmpint (out[2], ==, 0);
  g_assert_cmpuint (gc_tokens_window_count (0), ==, 1);
  g_assert_cmpuint (gc_tokens_window_count (75), ==, 1);
  g_assert_cmpuint (gc_tokens_window_count (76), ==, 2);
}

static void
test_load_errors (void)
{
  gc_tokenizer *t = (gc_tokenizer *) 1;
  gc_error err = { 0 };
  g_assert_cmpint (gc_tokenizer_load (&t, "/nonexistent/bpe.txt.gz", &err), ==, GC_ERR_IO);
  g_assert_null (t);
  g_assert_nonnull (strstr (err.message, "/nonexistent/bpe.txt.gz"));

  /* zlib reads a file that is not gzip as it is: a short merge list is malformed. */
  g_autofree char *dir = g_dir_make_tmp ("gouache-tokenizer-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_autofree char *path = g_build_filename (dir, "short.txt", NULL);
  g_assert_true (g_file_set_contents (path, "#version: 0.2\ni n\nt h\n", -1, NULL));
  g_assert_cmpint (gc_tokenizer_load (&t, path, &err), ==, GC_ERR_FORMAT);
  g_assert_null (t);
  g_assert_nonnull (strstr (err.message, "only 2 merges"));

  g_assert_true (g_file_set_contents (path, "#version: 0.2\ni n x\n", -1, NULL));
  g_assert_cmpint (gc_tokenizer_load (&t, path, &err), ==, GC_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "line 2"));
  g_unlink (path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tokenizer = load_vocabulary ();
  g_test_add_func ("/core/tokenizer/reference", test_reference);
  g_test_add_func ("/core/tokenizer/known-tokens", test_known_tokens);
  g_test_add_func ("/core/tokenizer/html-entities", test_html_entities);
  g_test_add_func ("/core/tokenizer/whitespace", test_whitespace);
  g_test_add_func ("/core/tokenizer/case-and-accents", test_case_and_accents);
  g_test_add_func ("/core/tokenizer/typography", test_typography);
  g_test_add_func ("/core/tokenizer/long-prompt", test_long_prompt_not_truncated);
  g_test_add_func ("/core/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/core/tokenizer/window", test_window);
  g_test_add_func ("/core/tokenizer/load-errors", test_load_errors);
  int status = g_test_run ();
  gc_tokenizer_free (tokenizer);
  return status;
}

/* Prompts as artists write them for A1111-style tools: the same emphasis weights, the same
 * chunking into 75-token windows. Expected values are those of A1111's parse_prompt_attention
 * (the examples of its docstring). */
#include <glib.h>
#include <locale.h>
#include <math.h>

#include "gc-prompt.h"

typedef struct {
  const char *text;
  double weight;
} expected_segment;

static void
check_parse (const char *prompt, const expected_segment *expected, size_t n)
{
  gc_prompt_segment *segments;
  size_t count;
  gc_error err = { 0 };
  g_assert_cmpint (gc_prompt_parse (prompt, &segments, &count, &err), ==, GC_OK);
  g_assert_cmpuint (count, ==, n);
  for (size_t i = 0; i < n; i++)
    {
      g_assert_cmpstr (segments[i].text, ==, expected[i].text);
      if (expected[i].weight < 0)
        g_assert_true (segments[i].is_break);
      else
        g_assert_cmpfloat_with_epsilon (segments[i].weight, expected[i].weight, 1e-12);
    }
  gc_prompt_segments_free (segments, count);
}

#define CHECK(prompt, ...)                                                                    \
  do                                                                                          \
    {                                                                                         \
      const expected_segment e[] = { __VA_ARGS__ };                                           \
      check_parse (prompt, e, G_N_ELEMENTS (e));                                              \
    }                                                                                         \
  while (0)

static void
test_emphasis (void)
{
  CHECK ("normal text", { "normal text", 1.0 });
  CHECK ("an (important) word", { "an ", 1.0 }, { "important", 1.1 }, { " word", 1.0 });
  CHECK ("(unbalanced", { "unbalanced", 1.1 });
  CHECK ("\\(literal\\]", { "(literal]", 1.0 });
  CHECK ("(unnecessary)(parens)", { "unnecessaryparens", 1.1 });
  CHECK ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", { "a ", 1.0 },
         { "house", 1.1 * 1.1 * 1.3 }, { " ", 1.1 }, { "on", 1.0 }, { " a ", 1.1 },
         { "hill", 0.55 }, { ", sun, ", 1.1 }, { "sky", 1.1 * 1.1 * 1.1 * 1.1 }, { ".", 1.1 });
  CHECK ("[faded]", { "faded", 1 / 1.1 });
  CHECK ("a time: 12:30", { "a time: 12:30", 1.0 });
  CHECK ("", { "", 1.0 });
}

/* GTK sets the user's locale: on a German desktop "(word:1.3)" must still weigh 1.3. */
static void
test_emphasis_in_a_comma_locale (void)
{
  if (setlocale (LC_NUMERIC, "de_DE.UTF-8") == NULL && setlocale (LC_NUMERIC, "fr_FR.UTF-8") == NULL)
    {
      g_test_skip ("no locale with a decimal comma is installed");
      return;
    }
  CHECK ("a (lighthouse:1.3)", { "a ", 1.0 }, { "lighthouse", 1.3 });
  setlocale (LC_NUMERIC, "C");
}

static void
test_break (void)
{
  CHECK ("a castle BREAK a dragon", { "a castle", 1.0 }, { "BREAK", -1 }, { "a dragon", 1.0 });
  CHECK ("BREAKFAST", { "BREAKFAST", 1.0 });
}

static gc_tokenizer *
load_tokenizer (void)
{
  g_autofree char *path = g_build_filename (g_getenv ("GOUACHE_DATA_DIR"),
                                            "bpe_simple_vocab_16e6.txt.gz", NULL);
  gc_tokenizer *tokenizer;
  gc_error err = { 0 };
  g_assert_cmpint (gc_tokenizer_load (&tokenizer, path, &err), ==, GC_OK);
  return tokenizer;
}

static void
test_windows (void)
{
  gc_tokenizer *tokenizer = load_tokenizer ();
  gc_error err = { 0 };
  gc_prompt_tokens t;
  /* 100 words of one token each: two windows, nothing cut */
  GString *long_prompt = g_string_new (NULL);
  for (int i = 0; i < 100; i++)
    g_string_append (long_prompt, "cat ");
  g_assert_cmpint (gc_prompt_tokenize (tokenizer, long_prompt->str, GC_TOKEN_END, &t, &err), ==,
                   GC_OK);
  g_assert_cmpint (t.windows, ==, 2);
  g_assert_cmpuint (t.tokens, ==, 100);
  int32_t cat = t.ids[1];
  g_assert_cmpint (t.ids[0], ==, GC_TOKEN_START);
  g_assert_cmpint (t.ids[75], ==, cat);
  g_assert_cmpint (t.ids[76], ==, GC_TOKEN_END);
  g_assert_cmpint (t.ids[77], ==, GC_TOKEN_START);
  g_assert_cmpint (t.ids[77 + 25], ==, cat);
  g_assert_cmpint (t.ids[77 + 26], ==, GC_TOKEN_END);
  gc_prompt_tokens_free (&t);
  g_string_free (long_prompt, TRUE);

  /* BREAK starts a window; emphasis weights land on their tokens only */
  g_assert_cmpint (gc_prompt_tokenize (tokenizer, "a (cat:1.5) BREAK [dog]", 0, &t, &err), ==,
                   GC_OK);
  g_assert_cmpint (t.windows, ==, 2);
  g_assert_cmpfloat (t.weights[0], ==, 1.0f);  /* start */
  g_assert_cmpfloat (t.weights[1], ==, 1.0f);  /* a */
  g_assert_cmpfloat (t.weights[2], ==, 1.5f);  /* cat */
  g_assert_cmpint (t.ids[3], ==, GC_TOKEN_END);
  g_assert_cmpint (t.ids[4], ==, 0); /* OpenCLIP pads with 0 */
  g_assert_cmpfloat_with_epsilon (t.weights[77 + 1], 1 / 1.1, 1e-6);
  gc_prompt_tokens_free (&t);
  gc_tokenizer_free (tokenizer);
}

static void
test_apply_weights_keeps_mean (void)
{
  enum { DIM = 3 };
  float hidden[GC_CONTEXT_TOKENS * DIM], weights[GC_CONTEXT_TOKENS];
  double before = 0;
  for (int i = 0; i < GC_CONTEXT_TOKENS * DIM; i++)
    before += hidden[i] = 0.5f + (float) (i % 5) * 0.1f;
  for (int t = 0; t < GC_CONTEXT_TOKENS; t++)
    weights[t] = t == 3 ? 1.5f : 1.0f;
  float emphasised = hidden[3 * DIM], plain = hidden[4 * DIM];
  gc_prompt_apply_weights (hidden, weights, DIM);
  double after = 0;
  for (int i = 0; i < GC_CONTEXT_TOKENS * DIM; i++)
    after += hidden[i];
  g_assert_cmpfloat_with_epsilon (after, before, 1e-3);
  /* the emphasised token grew relative to the others by exactly its weight */
  g_assert_cmpfloat_with_epsilon ((hidden[3 * DIM] / emphasised) / (hidden[4 * DIM] / plain), 1.5,
                                  1e-5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/prompt/emphasis", test_emphasis);
  g_test_add_func ("/core/prompt/emphasis-comma-locale", test_emphasis_in_a_comma_locale);
  g_test_add_func ("/core/prompt/break", test_break);
  g_test_add_func ("/core/prompt/windows", test_windows);
  g_test_add_func ("/core/prompt/apply-weights", test_apply_weights_keeps_mean);
  return g_test_run ();
}

/* The A1111 "parameters" text: written exactly as AUTOMATIC1111 writes it, read back from
 * Gouache, A1111 (old and new), a ComfyUI save node and stable-diffusion.cpp. The expected
 * strings were produced with A1111's own quote()/create_infotext() logic in Python. */
#include <glib.h>
#include <string.h>

#include "gouache-error.h"
#include "gouache-infotext.h"

static GouacheGenerationInfo *
example_info (void)
{
  GouacheGenerationInfo *info = gouache_generation_info_new ();

  info->prompt = g_strdup ("a castle on a hill, sunset");
  info->negative_prompt = g_strdup ("blurry, lowres");
  info->steps = 20;
  info->sampler = g_strdup ("Euler a");
  info->schedule_type = g_strdup ("Karras");
  info->cfg_scale = 7.0;
  info->seed = 965400086;
  info->width = 512;
  info->height = 512;
  info->model_hash = g_strdup ("6ce0161689");
  info->model_name = g_strdup ("v1-5-pruned-emaonly");
  gouache_generation_info_add_lora_hash (info, "styleA", "0123456789ab");
  gouache_generation_info_add_lora_hash (info, "styleB", "ba9876543210");
  return info;
}

static void
test_format_a1111 (void)
{
  g_autoptr(GouacheGenerationInfo) info = example_info ();
  g_autofree char *text = gouache_infotext_format (info);
  g_autofree char *expected = g_strdup_printf (
    "a castle on a hill, sunset\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 965400086, "
    "Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Lora hashes: \"styleA: 0123456789ab, styleB: ba9876543210\", Version: %s",
    gouache_infotext_version ());

  g_assert_cmpstr (gouache_infotext_version (), ==, "gouache 0.1.0");
  g_assert_cmpstr (text, ==, expected);
}

static void
test_format_optional_and_quoted (void)
{
  g_autoptr(GouacheGenerationInfo) info = gouache_generation_info_new ();
  g_autofree char *text = NULL;
  g_autofree char *expected = NULL;

  /* leading whitespace goes (A1111 strips the whole text), the negative line is left out */
  info->prompt = g_strdup ("  leading spaces kept? ");
  info->negative_prompt = g_strdup ("");
  info->steps = 30;
  info->sampler = g_strdup ("DPM++ 2M");
  info->cfg_scale = 7.5;
  info->seed = G_MAXUINT64;
  info->width = 768;
  info->height = 512;
  info->model_hash = g_strdup ("0123456789");
  info->model_name = g_strdup ("my, model: v2");
  info->denoising_strength = 0.6;
  info->clip_skip = 2;
  g_hash_table_insert (info->extra, g_strdup ("Note"),
                       g_strdup ("say \"hi\"\tnow\x01, ok\\ é 🎨"));

  text = gouache_infotext_format (info);
  expected = g_strdup_printf (
    "leading spaces kept? \n"
    "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 18446744073709551615, Size: 768x512, "
    "Model hash: 0123456789, Model: \"my, model: v2\", Denoising strength: 0.6, Clip skip: 2, "
    "Note: \"say \\\"hi\\\"\\tnow\\u0001, ok\\\\ é 🎨\", Version: %s",
    gouache_infotext_version ());
  g_assert_cmpstr (text, ==, expected);
}

static void
test_format_numbers (void)
{
  static const struct {
    double value;
    const char *text;
  } cases[] = {
    { 7.0, "7" },
    { 7.5, "7.5" },
    { 0.1, "0.1" },
    { 12.25, "12.25" },
    { (float) 7.1, "7.1" },    /* a float from a slider, not 7.099999904632568 */
    { (float) 0.35, "0.35" },
    { 0.30000000000000004, "0.30000000000000004" },
    { 1e-05, "1e-05" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GouacheGenerationInfo) info = gouache_generation_info_new ();
      g_autofree char *text = NULL;
      g_autofree char *expected = NULL;

      info->cfg_scale = cases[i].value;
      g_clear_pointer (&info->version, g_free);
      text = gouache_infotext_format (info);
      expected = g_strdup_printf ("Steps: 0, CFG scale: %s, Seed: 0, Size: 0x0", cases[i].text);
      g_assert_cmpstr (text, ==, expected);
    }
}

/* Clip skip 1 and a negative denoising strength are not written; ',' and ':' leave aliases. */
static void
test_format_defaults_left_out (void)
{
  g_autoptr(GouacheGenerationInfo) info = gouache_generation_info_new ();
  g_autofree char *text = NULL;

  info->prompt = g_strdup ("p");
  info->clip_skip = 1;
  info->steps = 4;
  info->width = 64;
  info->height = 64;
  gouache_generation_info_add_lora_hash (info, "ink: wash, v2", "abcdefabcdef");
  text = gouache_infotext_format (info);
  g_assert_cmpstr (text, ==,
                   "p\nSteps: 4, CFG scale: 0, Seed: 0, Size: 64x64, "
                   "Lora hashes: \"ink wash v2: abcdefabcdef\", Version: gouache 0.1.0");
}

static void
assert_same_info (const GouacheGenerationInfo *a,
                  const GouacheGenerationInfo *b)
{
  GHashTableIter iter;
  gpointer key, value;

  g_assert_cmpstr (a->prompt, ==, b->prompt);
  g_assert_cmpstr (a->negative_prompt, ==, b->negative_prompt);
  g_assert_cmpuint (a->steps, ==, b->steps);
  g_assert_cmpstr (a->sampler, ==, b->sampler);
  g_assert_cmpstr (a->schedule_type, ==, b->schedule_type);
  g_assert_cmpfloat (a->cfg_scale, ==, b->cfg_scale);
  g_assert_cmpuint (a->seed, ==, b->seed);
  g_assert_cmpuint (a->width, ==, b->width);
  g_assert_cmpuint (a->height, ==, b->height);
  g_assert_cmpstr (a->model_hash, ==, b->model_hash);
  g_assert_cmpstr (a->model_name, ==, b->model_name);
  g_assert_cmpfloat (a->denoising_strength, ==, b->denoising_strength);
  g_assert_cmpuint (a->clip_skip > 1 ? a->clip_skip : 0, ==, b->clip_skip > 1 ? b->clip_skip : 0);
  g_assert_cmpuint (a->lora_hashes->len, ==, b->lora_hashes->len);
  for (guint i = 0; i < a->lora_hashes->len; i++)
    {
      const GouacheLoraHash *la = g_ptr_array_index (a->lora_hashes, i);
      const GouacheLoraHash *lb = g_ptr_array_index (b->lora_hashes, i);
      g_assert_cmpstr (la->alias, ==, lb->alias);
      g_assert_cmpstr (la->hash, ==, lb->hash);
    }
  g_assert_cmpuint (g_hash_table_size (a->extra), ==, g_hash_table_size (b->extra));
  g_hash_table_iter_init (&iter, a->extra);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_assert_cmpstr (g_hash_table_lookup (b->extra, key), ==, value);
  g_assert_cmpstr (a->version, ==, b->version);
}

/* Prompts survive as long as A1111's own reader keeps them: lines without surrounding
 * whitespace, none starting with "Negative prompt:". */
static void
test_round_trip (void)
{
  static const struct {
    const char *prompt;
    const char *negative;
    const char *model;
    const char *note;
  } cases[] = {
    { "a cat, sitting: on a mat", "", "plain", "R-ESRGAN 4x+ Anime6B" },
    { "(masterpiece:1.2), \"quoted\", back\\slash, <lora:ink:0.8>", "bad \"hands\"",
      "my, model: v2", "say \"hi\", then:\ngo" },
    { "line one\nline two, with comma\nline: three", "bad hands\nextra fingers, blurry",
      "line\nbreak", "tab\there, and \\u0041 literally" },
    { "日本語のプロンプト, 猫 🐱, café", "ぼやけた, 低品質", "モデル: 一", "é, ü: ß" },
    { "Steps: 5, Sampler: fake, Seed: 1", "Steps: 6, CFG scale: 2, Size: 1x1", "m", "\"" },
    { "", "only a negative, prompt", "x", "a,b" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GouacheGenerationInfo) info = example_info ();
      g_autoptr(GouacheGenerationInfo) back = NULL;
      g_autoptr(GouacheGenerationInfo) copy = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *text = NULL;
      g_autofree char *again = NULL;
      g_autofree char *copy_text = NULL;

      g_free (info->prompt);
      info->prompt = g_strdup (cases[i].prompt);
      g_free (info->negative_prompt);
      info->negative_prompt = g_strdup (cases[i].negative);
      g_free (info->model_name);
      info->model_name = g_strdup (cases[i].model);
      g_free (info->schedule_type);
      info->schedule_type = g_strdup ("SGM Uniform");
      info->cfg_scale = 4.5;
      info->seed = G_GUINT64_CONSTANT (12345678901234567890);
      info->denoising_strength = 0.75;
      info->clip_skip = 2;
      gouache_generation_info_add_lora_hash (info, "スタイル", "00ff00ff00ff");
      g_hash_table_insert (info->extra, g_strdup ("Note"), g_strdup (cases[i].note));
      g_hash_table_insert (info->extra, g_strdup ("Hires upscaler"), g_strdup ("Latent"));

      text = gouache_infotext_format (info);
      back = gouache_infotext_parse (text, &error);
      g_assert_no_error (error);
      assert_same_info (info, back);

      again = gouache_infotext_format (back);
      g_assert_cmpstr (again, ==, text);

      copy = gouache_generation_info_copy (back);
      copy_text = gouache_infotext_format (copy);
      g_assert_cmpstr (copy_text, ==, text);
    }
}

static GouacheGenerationInfo *
parse_ok (const char *text)
{
  g_autoptr(GError) error = NULL;
  GouacheGenerationInfo *info = gouache_infotext_parse (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (info);
  return info;
}

static void
test_parse_a1111_current (void)
{
  g_autoptr(GouacheGenerationInfo) info = parse_ok (
    "masterpiece, best quality, 1girl, <lora:styleA:0.8>\n"
    "watercolor, (ink wash:1.1)\n"
    "Negative prompt: (worst quality:1.4), lowres, bad anatomy\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567890, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
    "Clip skip: 2, Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B, "
    "Lora hashes: \"styleA: 0123456789ab, style B: ba9876543210\", "
    "TI hashes: \"easynegative: c74b4e810b03\", Version: v1.10.1");
  const GouacheLoraHash *lora;

  g_assert_cmpstr (info->prompt, ==,
                   "masterpiece, best quality, 1girl, <lora:styleA:0.8>\nwatercolor, (ink wash:1.1)");
  g_assert_cmpstr (info->negative_prompt, ==, "(worst quality:1.4), lowres, bad anatomy");
  g_assert_cmpuint (info->steps, ==, 28);
  g_assert_cmpstr (info->sampler, ==, "DPM++ 2M");
  g_assert_cmpstr (info->schedule_type, ==, "Karras");
  g_assert_cmpfloat (info->cfg_scale, ==, 6.5);
  g_assert_cmpuint (info->seed, ==, 1234567890);
  g_assert_cmpuint (info->width, ==, 512);
  g_assert_cmpuint (info->height, ==, 768);
  g_assert_cmpstr (info->model_hash, ==, "6ce0161689");
  g_assert_cmpstr (info->model_name, ==, "v1-5-pruned-emaonly");
  g_assert_cmpfloat (info->denoising_strength, ==, 0.45);
  g_assert_cmpuint (info->clip_skip, ==, 2);
  g_assert_cmpuint (info->lora_hashes->len, ==, 2);
  lora = g_ptr_array_index (info->lora_hashes, 1);
  g_assert_cmpstr (lora->alias, ==, "style B");
  g_assert_cmpstr (lora->hash, ==, "ba9876543210");
  g_assert_cmpstr (info->version, ==, "v1.10.1");
  g_assert_cmpuint (g_hash_table_size (info->extra), ==, 4);
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "Hires upscale"), ==, "2");
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "Hires upscaler"), ==, "R-ESRGAN 4x+ Anime6B");
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "TI hashes"), ==, "easynegative: c74b4e810b03");
}

/* Before 1.9 the schedule was part of the sampler's name. */
static void
test_parse_a1111_old (void)
{
  g_autoptr(GouacheGenerationInfo) info = parse_ok (
    "portrait of an old sailor, oil painting\n"
    "Steps: 25, Sampler: DPM++ 2M SGM Uniform, CFG scale: 7, Seed: 3, Size: 640x640, "
    "Model hash: e6bb9ea85b, Model: realisticVision, ENSD: 31337, Version: v1.6.0");

  g_assert_cmpstr (info->prompt, ==, "portrait of an old sailor, oil painting");
  g_assert_cmpstr (info->negative_prompt, ==, "");
  g_assert_cmpstr (info->sampler, ==, "DPM++ 2M");
  g_assert_cmpstr (info->schedule_type, ==, "SGM Uniform");
  g_assert_cmpfloat (info->denoising_strength, <, 0.0);
  g_assert_cmpuint (info->clip_skip, ==, 0);
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "ENSD"), ==, "31337");
}

static void
test_parse_sd_cpp (void)
{
  g_autoptr(GouacheGenerationInfo) info = parse_ok (
    "a lovely cat\n"
    "Negative prompt: ugly, deformed\n"
    "Steps: 20, CFG scale: 7.000000, Seed: 42, Size: 512x512, "
    "Model: v1-5-pruned-emaonly.safetensors, RNG: cuda, Sampler: euler_a karras, "
    "Version: stable-diffusion.cpp");

  g_assert_cmpstr (info->prompt, ==, "a lovely cat");
  g_assert_cmpstr (info->negative_prompt, ==, "ugly, deformed");
  g_assert_cmpuint (info->steps, ==, 20);
  g_assert_cmpfloat (info->cfg_scale, ==, 7.0);
  g_assert_cmpuint (info->seed, ==, 42);
  g_assert_cmpstr (info->model_name, ==, "v1-5-pruned-emaonly.safetensors");
  g_assert_null (info->model_hash);
  g_assert_cmpstr (info->sampler, ==, "euler_a");
  g_assert_cmpstr (info->schedule_type, ==, "Karras");
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "RNG"), ==, "cuda");
  g_assert_cmpstr (info->version, ==, "stable-diffusion.cpp");
}

/* A ComfyUI save node writing A1111-style text, with Windows line ends. */
static void
test_parse_comfyui_crlf (void)
{
  g_autoptr(GouacheGenerationInfo) info = parse_ok (
    "  a fox in the snow, \r\n"
    "Negative prompt: text, watermark\r\n"
    "Steps: 30, Sampler: euler_ancestral, CFG scale: 8.0, Seed: 7, Size: 1024x1024, "
    "Model hash: abcdef1234, Model: sd_xl_base_1.0, Version: ComfyUI\r\n");

  g_assert_cmpstr (info->prompt, ==, "a fox in the snow,");
  g_assert_cmpstr (info->negative_prompt, ==, "text, watermark");
  g_assert_cmpstr (info->sampler, ==, "euler_ancestral");
  g_assert_null (info->schedule_type);
  g_assert_cmpfloat (info->cfg_scale, ==, 8.0);
  g_assert_cmpuint (info->width, ==, 1024);
  g_assert_cmpstr (info->model_name, ==, "sd_xl_base_1.0");
  g_assert_cmpstr (info->version, ==, "ComfyUI");
}

/* A last line with fewer than three "key: value" pairs is prompt text. */
static void
test_parse_prompt_only (void)
{
  g_autoptr(GouacheGenerationInfo) info = parse_ok ("just a prompt, with: colon\nand: two, lines: here");

  g_assert_cmpstr (info->prompt, ==, "just a prompt, with: colon\nand: two, lines: here");
  g_assert_cmpstr (info->negative_prompt, ==, "");
  g_assert_cmpuint (info->steps, ==, 0);
  g_assert_null (info->version);
  g_assert_cmpuint (g_hash_table_size (info->extra), ==, 0);
}

/* JSON escapes, a value that is not valid JSON (kept raw, like A1111's unquote()), an empty
 * value (dropped, like A1111), numbers that do not read (kept as extra keys). */
static void
test_parse_values (void)
{
  g_autoptr(GouacheGenerationInfo) info = parse_ok (
    "p\n"
    "Steps: twenty, Seed: 5, Size: 64x48, Model: \"caf\\u00e9 \\ud83c\\udfa8 \\\"x\\\"\\/\", "
    "Broken: \"a\\qb\", Empty: , Clip skip: 3, Denoising strength: 1, Lone: \"\\udc00\"");

  g_assert_cmpuint (info->steps, ==, 0);
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "Steps"), ==, "twenty");
  g_assert_cmpuint (info->seed, ==, 5);
  g_assert_cmpuint (info->width, ==, 64);
  g_assert_cmpuint (info->height, ==, 48);
  g_assert_cmpstr (info->model_name, ==, "café 🎨 \"x\"/");
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "Broken"), ==, "\"a\\qb\"");
  g_assert_false (g_hash_table_contains (info->extra, "Empty"));
  g_assert_cmpstr (g_hash_table_lookup (info->extra, "Lone"), ==, "\"\\udc00\"");
  g_assert_cmpuint (info->clip_skip, ==, 3);
  g_assert_cmpfloat (info->denoising_strength, ==, 1.0);
}

static void
test_parse_invalid_utf8 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GouacheGenerationInfo) info = gouache_infotext_parse ("caf\xe9\nSteps: 1, Seed: 2, Size: 1x1", &error);

  g_assert_null (info);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/app/infotext/format/a1111", test_format_a1111);
  g_test_add_func ("/app/infotext/format/optional-and-quoted", test_format_optional_and_quoted);
  g_test_add_func ("/app/infotext/format/numbers", test_format_numbers);
  g_test_add_func ("/app/infotext/format/defaults-left-out", test_format_defaults_left_out);
  g_test_add_func ("/app/infotext/round-trip", test_round_trip);
  g_test_add_func ("/app/infotext/parse/a1111-current", test_parse_a1111_current);
  g_test_add_func ("/app/infotext/parse/a1111-old", test_parse_a1111_old);
  g_test_add_func ("/app/infotext/parse/sd-cpp", test_parse_sd_cpp);
  g_test_add_func ("/app/infotext/parse/comfyui-crlf", test_parse_comfyui_crlf);
  g_test_add_func ("/app/infotext/parse/prompt-only", test_parse_prompt_only);
  g_test_add_func ("/app/infotext/parse/values", test_parse_values);
  g_test_add_func ("/app/infotext/parse/invalid-utf8", test_parse_invalid_utf8);

  return g_test_run ();
}

/* gouache-infotext.c: generation settings as AUTOMATIC1111's "parameters" text
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The writer follows create_infotext() in AUTOMATIC1111 1.10 (modules/processing.py) and the
 * reader follows parse_generation_parameters() (modules/infotext_utils.py), including their
 * whitespace rules, so text goes both ways between Gouache and those tools unchanged.
 */

#define G_LOG_DOMAIN "gouache-infotext"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gouache-error.h"
#include "gouache-infotext.h"

/* A1111's re_param: a key, a colon, then a JSON string or anything up to the next comma. */
#define PARAM_PATTERN "\\s*(\\w[\\w \\-/]+):\\s*(\"(?:\\\\.|[^\\\\\"])+\"|[^,]*)(?:,|$)"

/* The settings line needs at least this many "key: value" pairs (else it is prompt text). */
#define MIN_PARAMS 3

#define NEGATIVE_PREFIX "Negative prompt:"

G_DEFINE_BOXED_TYPE (GouacheGenerationInfo, gouache_generation_info,
                     gouache_generation_info_copy, gouache_generation_info_free)

static void
lora_hash_free (gpointer data)
{
  GouacheLoraHash *lora = data;

  g_free (lora->alias);
  g_free (lora->hash);
  g_free (lora);
}

static GouacheGenerationInfo *
generation_info_new_empty (void)
{
  GouacheGenerationInfo *info = g_new0 (GouacheGenerationInfo, 1);

  info->denoising_strength = -1.0;
  info->lora_hashes = g_ptr_array_new_with_free_func (lora_hash_free);
  info->extra = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return info;
}

/**
 * gouache_generation_info_new:
 *
 * Returns: (transfer full): settings with no strings set, no denoising strength, no LoRA,
 *   and #GouacheGenerationInfo.version set to gouache_infotext_version()
 */
GouacheGenerationInfo *
gouache_generation_info_new (void)
{
  GouacheGenerationInfo *info = generation_info_new_empty ();

  info->version = g_strdup (gouache_infotext_version ());
  return info;
}

/**
 * gouache_generation_info_copy:
 * @info: settings
 *
 * Returns: (transfer full): a deep copy of @info
 */
GouacheGenerationInfo *
gouache_generation_info_copy (const GouacheGenerationInfo *info)
{
  GouacheGenerationInfo *copy;
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (info != NULL, NULL);

  copy = generation_info_new_empty ();
  copy->prompt = g_strdup (info->prompt);
  copy->negative_prompt = g_strdup (info->negative_prompt);
  copy->steps = info->steps;
  copy->sampler = g_strdup (info->sampler);
  copy->schedule_type = g_strdup (info->schedule_type);
  copy->cfg_scale = info->cfg_scale;
  copy->seed = info->seed;
  copy->width = info->width;
  copy->height = info->height;
  copy->model_hash = g_strdup (info->model_hash);
  copy->model_name = g_strdup (info->model_name);
  copy->denoising_strength = info->denoising_strength;
  copy->clip_skip = info->clip_skip;
  for (guint i = 0; i < info->lora_hashes->len; i++)
    {
      const GouacheLoraHash *lora = g_ptr_array_index (info->lora_hashes, i);
      gouache_generation_info_add_lora_hash (copy, lora->alias, lora->hash);
    }
  g_hash_table_iter_init (&iter, info->extra);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (copy->extra, g_strdup (key), g_strdup (value));
  copy->version = g_strdup (info->version);
  return copy;
}

void
gouache_generation_info_free (GouacheGenerationInfo *info)
{
  if (info == NULL)
    return;

  g_free (info->prompt);
  g_free (info->negative_prompt);
  g_free (info->sampler);
  g_free (info->schedule_type);
  g_free (info->model_hash);
  g_free (info->model_name);
  g_ptr_array_unref (info->lora_hashes);
  g_hash_table_unref (info->extra);
  g_free (info->version);
  g_free (info);
}

/**
 * gouache_generation_info_add_lora_hash:
 * @info: settings
 * @alias: the LoRA's name as the prompt or the style list calls it
 * @hash: its short hash (12 hex digits)
 *
 * Appends one entry to the "Lora hashes" list.
 */
void
gouache_generation_info_add_lora_hash (GouacheGenerationInfo *info,
                                       const char            *alias,
                                       const char            *hash)
{
  GouacheLoraHash *lora;

  g_return_if_fail (info != NULL);
  g_return_if_fail (alias != NULL && hash != NULL);

  lora = g_new (GouacheLoraHash, 1);
  lora->alias = g_strdup (alias);
  lora->hash = g_strdup (hash);
  g_ptr_array_add (info->lora_hashes, lora);
}

/**
 * gouache_infotext_version:
 *
 * Returns: the "Version" that Gouache writes, "gouache 0.1.0"
 */
const char *
gouache_infotext_version (void)
{
  return "gouache " PACKAGE_VERSION;
}

/* ---- writing ---- */

/* Python's str.isspace(), which str.strip() uses. */
static gboolean
python_isspace (gunichar c)
{
  if ((c >= '\t' && c <= '\r') || (c >= 0x1c && c <= ' ') || c == 0x85)
    return TRUE;

  switch (g_unichar_type (c))
    {
    case G_UNICODE_SPACE_SEPARATOR:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return TRUE;
    default:
      return FALSE;
    }
}

/* A copy of the UTF-8 text [start, end) without Python-whitespace at either end. */
static char *
python_strip (const char *start,
              const char *end)
{
  while (start < end && python_isspace (g_utf8_get_char (start)))
    start = g_utf8_next_char (start);
  while (end > start)
    {
      const char *last = g_utf8_find_prev_char (start, end);
      if (last == NULL)
        last = start;
      if (!python_isspace (g_utf8_get_char (last)))
        break;
      end = last;
    }
  return g_strndup (start, end - start);
}

/* json.dumps(value, ensure_ascii=False) */
static void
append_json_string (GString    *out,
                    const char *value)
{
  g_string_append_c (out, '"');
  for (const char *p = value; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        default:
          if ((guchar) *p < 0x20)
            g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p);
          else
            g_string_append_c (out, *p);
        }
    }
  g_string_append_c (out, '"');
}

/* One "key: value" of the settings line; A1111's quote() decides between raw and JSON. */
static void
append_param (GString    *params,
              const char *key,
              const char *value)
{
  if (value == NULL)
    return;

  if (params->len > 0)
    g_string_append (params, ", ");
  g_string_append (params, key);
  g_string_append (params, ": ");
  if (strpbrk (value, ",\n:") != NULL)
    append_json_string (params, value);
  else
    g_string_append (params, value);
}

/* A number as Python's repr() writes it, except that whole numbers have no ".0" (the web UI's
 * sliders hand over 7, not 7.0). A value that is exactly a float is written with as few digits
 * as the float needs, so a float 7.1 from a slider is "7.1", not "7.099999904632568". */
static char *
format_number (double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  gboolean is_float = (double) (float) value == value;

  if (value == floor (value) && fabs (value) < 1e16)
    return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.0f", value));

  for (int precision = 1; precision <= 17; precision++)
    {
      char format[8];
      double back;

      g_snprintf (format, sizeof format, "%%.%dg", precision);
      g_ascii_formatd (buf, sizeof buf, format, value);
      back = g_ascii_strtod (buf, NULL);
      if (is_float ? (float) back == (float) value : back == value)
        break;
    }
  return g_strdup (buf);
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/**
 * gouache_infotext_format:
 * @info: settings
 *
 * Writes @info the way AUTOMATIC1111 writes an image's "parameters": the prompt, a
 * "Negative prompt: …" line unless the negative prompt is empty, and one line of settings
 * in A1111's key order (Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash,
 * Model, Denoising strength, Clip skip, Lora hashes, the extra keys sorted by name, Version).
 * Like A1111, the whole text is stripped of surrounding whitespace.
 *
 * Returns: (transfer full): the text, UTF-8
 */
char *
gouache_infotext_format (const GouacheGenerationInfo *info)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GString) params = g_string_new (NULL);
  g_autofree char *steps = NULL;
  g_autofree char *cfg = NULL;
  g_autofree char *seed = NULL;
  g_autofree char *size = NULL;
  g_autofree char *denoising = NULL;
  g_autofree char *clip_skip = NULL;
  g_autoptr(GString) loras = NULL;
  g_autofree gpointer extra_keys = NULL;
  guint n_extra = 0;

  g_return_val_if_fail (info != NULL, NULL);

  steps = g_strdup_printf ("%u", info->steps);
  cfg = format_number (info->cfg_scale);
  seed = g_strdup_printf ("%" G_GUINT64_FORMAT, info->seed);
  size = g_strdup_printf ("%ux%u", info->width, info->height);
  if (info->denoising_strength >= 0.0)
    denoising = format_number (info->denoising_strength);
  if (info->clip_skip > 1)
    clip_skip = g_strdup_printf ("%u", info->clip_skip);
  if (info->lora_hashes->len > 0)
    {
      loras = g_string_new (NULL);
      for (guint i = 0; i < info->lora_hashes->len; i++)
        {
          const GouacheLoraHash *lora = g_ptr_array_index (info->lora_hashes, i);

          if (i > 0)
            g_string_append (loras, ", ");
          for (const char *p = lora->alias; *p != '\0'; p++)
            if (*p != ':' && *p != ',')
              g_string_append_c (loras, *p);
          g_string_append_printf (loras, ": %s", lora->hash);
        }
    }

  append_param (params, "Steps", steps);
  append_param (params, "Sampler", info->sampler);
  append_param (params, "Schedule type", info->schedule_type);
  append_param (params, "CFG scale", cfg);
  append_param (params, "Seed", seed);
  append_param (params, "Size", size);
  append_param (params, "Model hash", info->model_hash);
  append_param (params, "Model", info->model_name);
  append_param (params, "Denoising strength", denoising);
  append_param (params, "Clip skip", clip_skip);
  append_param (params, "Lora hashes", loras != NULL ? loras->str : NULL);
  extra_keys = g_hash_table_get_keys_as_array (info->extra, &n_extra);
  qsort (extra_keys, n_extra, sizeof (gpointer), compare_strings);
  for (guint i = 0; i < n_extra; i++)
    {
      const char *key = ((const char **) extra_keys)[i];
      append_param (params, key, g_hash_table_lookup (info->extra, key));
    }
  append_param (params, "Version", info->version);

  if (info->prompt != NULL)
    g_string_append (text, info->prompt);
  if (info->negative_prompt != NULL && info->negative_prompt[0] != '\0')
    g_string_append_printf (text, "\n" NEGATIVE_PREFIX " %s", info->negative_prompt);
  g_string_append_c (text, '\n');
  g_string_append_len (text, params->str, params->len);

  return python_strip (text->str, text->str + text->len);
}

/* ---- reading ---- */

static GRegex *
param_regex (void)
{
  static GRegex *regex;

  if (g_once_init_enter (&regex))
    {
      GRegex *compiled = g_regex_new (PARAM_PATTERN, G_REGEX_OPTIMIZE, 0, NULL);
      g_assert (compiled != NULL);
      g_once_init_leave (&regex, compiled);
    }
  return regex;
}

static int
hex_value (char c)
{
  return g_ascii_isxdigit (c) ? g_ascii_xdigit_value (c) : -1;
}

static gboolean
read_u_escape (const char **p,
               gunichar    *out)
{
  gunichar c = 0;

  for (int i = 0; i < 4; i++)
    {
      int digit = hex_value ((*p)[i]);
      if (digit < 0)
        return FALSE;
      c = c * 16 + (gunichar) digit;
    }
  *p += 4;
  *out = c;
  return TRUE;
}

/* json.loads() of a value that starts and ends with '"'; NULL where Python would raise (then,
 * like A1111's unquote(), the raw value is kept), or where the string holds a NUL or a lone
 * surrogate, which UTF-8 text cannot carry. */
static char *
json_unquote (const char *value)
{
  g_autoptr(GString) out = g_string_new (NULL);
  const char *p = value + 1;

  for (;;)
    {
      gunichar c;

      if (*p == '\0')
        return NULL;
      if (*p == '"')
        break;
      if ((guchar) *p < 0x20)
        return NULL;
      if (*p != '\\')
        {
          g_string_append_c (out, *p++);
          continue;
        }

      p++;
      switch (*p++)
        {
        case '"':
          c = '"';
          break;
        case '\\':
          c = '\\';
          break;
        case '/':
          c = '/';
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case 'u':
          if (!read_u_escape (&p, &c))
            return NULL;
          if (c >= 0xd800 && c <= 0xdbff)
            {
              gunichar low;

              if (p[0] != '\\' || p[1] != 'u')
                return NULL;
              p += 2;
              if (!read_u_escape (&p, &low) || low < 0xdc00 || low > 0xdfff)
                return NULL;
              c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
            }
          else if ((c >= 0xdc00 && c <= 0xdfff) || c == 0)
            return NULL;
          break;
        default:
          return NULL;
        }
      g_string_append_unichar (out, c);
    }

  /* the closing quote must end the value */
  if (p[1] != '\0')
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static gboolean
parse_unsigned (const char *text,
                guint64     max,
                guint64    *out)
{
  return g_ascii_string_to_unsigned (text, 10, 0, max, out, NULL);
}

static gboolean
parse_double (const char *text,
              double     *out)
{
  char *end = NULL;
  double value;

  if (text[0] == '\0' || g_ascii_isspace (text[0]))
    return FALSE;
  value = g_ascii_strtod (text, &end);
  if (*end != '\0' || !isfinite (value))
    return FALSE;
  *out = value;
  return TRUE;
}

/* A1111's re_imagesize: ^(\d+)x(\d+)$ */
static gboolean
parse_size (const char *text,
            guint      *width,
            guint      *height)
{
  g_auto(GStrv) parts = g_strsplit (text, "x", 3);
  guint64 w, h;

  if (g_strv_length (parts) != 2 ||
      !parse_unsigned (parts[0], G_MAXUINT, &w) ||
      !parse_unsigned (parts[1], G_MAXUINT, &h))
    return FALSE;
  *width = (guint) w;
  *height = (guint) h;
  return TRUE;
}

/* "a: 0123456789ab, b: ba9876543210", read as A1111's Lora script reads it */
static void
parse_lora_hashes (GouacheGenerationInfo *info,
                   const char            *text)
{
  g_auto(GStrv) entries = g_strsplit (text, ",", -1);

  for (guint i = 0; entries[i] != NULL; i++)
    {
      const char *colon = strchr (entries[i], ':');
      g_autofree char *alias = NULL;
      g_autofree char *hash = NULL;

      if (colon == NULL)
        continue;
      alias = python_strip (entries[i], colon);
      hash = python_strip (colon + 1, colon + strlen (colon));
      gouache_generation_info_add_lora_hash (info, alias, hash);
    }
}

static void
replace_string (char       **field,
                const char  *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

/* Stores one "key: value" pair in its field; a known key whose value does not read as the
 * field's type goes to info->extra like an unknown key, so nothing is lost. */
static void
set_param (GouacheGenerationInfo *info,
           const char            *key,
           const char            *value)
{
  guint64 number;
  double real;
  guint width, height;

  if (g_str_equal (key, "Steps") && parse_unsigned (value, G_MAXUINT, &number))
    info->steps = (guint) number;
  else if (g_str_equal (key, "Sampler"))
    replace_string (&info->sampler, value);
  else if (g_str_equal (key, "Schedule type"))
    replace_string (&info->schedule_type, value);
  else if (g_str_equal (key, "CFG scale") && parse_double (value, &real))
    info->cfg_scale = real;
  else if (g_str_equal (key, "Seed") && parse_unsigned (value, G_MAXUINT64, &number))
    info->seed = number;
  else if (g_str_equal (key, "Size") && parse_size (value, &width, &height))
    {
      info->width = width;
      info->height = height;
    }
  else if (g_str_equal (key, "Model hash"))
    replace_string (&info->model_hash, value);
  else if (g_str_equal (key, "Model"))
    replace_string (&info->model_name, value);
  else if (g_str_equal (key, "Denoising strength") && parse_double (value, &real) && real >= 0.0)
    info->denoising_strength = real;
  else if (g_str_equal (key, "Clip skip") && parse_unsigned (value, G_MAXUINT, &number))
    info->clip_skip = (guint) number;
  else if (g_str_equal (key, "Lora hashes"))
    {
      g_ptr_array_set_size (info->lora_hashes, 0);
      parse_lora_hashes (info, value);
    }
  else if (g_str_equal (key, "Version"))
    replace_string (&info->version, value);
  else
    g_hash_table_replace (info->extra, g_strdup (key), g_strdup (value));
}

/* Before A1111 1.9 the schedule was part of the sampler's name ("DPM++ 2M Karras"), and
 * stable-diffusion.cpp writes "euler_a karras": split such names as A1111's
 * get_sampler_and_scheduler() does. Longer labels come first ("SGM Uniform" before "Uniform"). */
static void
split_schedule_from_sampler (GouacheGenerationInfo *info)
{
  static const struct {
    const char *label;
    const char *name;
  } schedules[] = {
    { "Align Your Steps", "align_your_steps" },
    { "Polyexponential", "polyexponential" },
    { "Exponential", "exponential" },
    { "SGM Uniform", "sgm_uniform" },
    { "SGMUniform", "sgm_uniform" },
    { "KL Optimal", "kl_optimal" },
    { "Uniform", "uniform" },
    { "Karras", "karras" },
    { "Simple", "simple" },
    { "Normal", "normal" },
    { "DDIM", "ddim" },
    { "Beta", "beta" },
  };
  gsize len;

  if (info->schedule_type != NULL || info->sampler == NULL)
    return;

  len = strlen (info->sampler);
  for (gsize i = 0; i < G_N_ELEMENTS (schedules); i++)
    {
      const char *options[] = { schedules[i].label, schedules[i].name };

      for (gsize j = 0; j < G_N_ELEMENTS (options); j++)
        {
          gsize option_len = strlen (options[j]);

          if (len > option_len + 1 &&
              info->sampler[len - option_len - 1] == ' ' &&
              g_str_has_suffix (info->sampler, options[j]))
            {
              info->sampler[len - option_len - 1] = '\0';
              info->schedule_type = g_strdup (schedules[i].label);
              return;
            }
        }
    }
}

/* The "key: value" pairs of one line, as re.findall() would find them; keys and raw values
 * alternate in the returned array. */
static GPtrArray *
find_params (const char *line)
{
  g_autoptr(GPtrArray) pairs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GMatchInfo) match = NULL;

  g_regex_match (param_regex (), line, 0, &match);
  while (g_match_info_matches (match))
    {
      g_ptr_array_add (pairs, g_match_info_fetch (match, 1));
      g_ptr_array_add (pairs, g_match_info_fetch (match, 2));
      g_match_info_next (match, NULL);
    }
  return g_steal_pointer (&pairs);
}

/* Appends a line to a multi-line prompt as A1111 does: joined with "\n" once it is not empty. */
static void
append_line (GString    *prompt,
             const char *line)
{
  if (prompt->len > 0)
    g_string_append_c (prompt, '\n');
  g_string_append (prompt, line);
}

/**
 * gouache_infotext_parse:
 * @text: an image's "parameters" text, written by Gouache, AUTOMATIC1111, Forge, a ComfyUI
 *   save node or stable-diffusion.cpp
 * @error: return location for a #GError, or %NULL
 *
 * Reads settings back as A1111's parse_generation_parameters() does: the last line holds the
 * settings if A1111's pattern finds at least three "key: value" pairs in it, JSON-quoted
 * values are unquoted, everything before "Negative prompt:" is the prompt (lines are stripped
 * and joined with "\n"), and the rest up to the settings line is the negative prompt. Keys
 * Gouache has no field for, and known keys whose value does not read as a number where one is
 * expected, go to #GouacheGenerationInfo.extra. Numbers that are missing stay 0;
 * #GouacheGenerationInfo.version stays %NULL when the text has none.
 *
 * Returns: (transfer full): the settings, or %NULL if @text is not UTF-8
 */
GouacheGenerationInfo *
gouache_infotext_parse (const char  *text,
                        GError     **error)
{
  g_autoptr(GouacheGenerationInfo) info = NULL;
  g_autofree char *stripped = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GPtrArray) params = NULL;
  g_autoptr(GString) prompt = g_string_new (NULL);
  g_autoptr(GString) negative = g_string_new (NULL);
  guint n_lines;
  gboolean done_with_prompt = FALSE;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_utf8_validate (text, -1, NULL))
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                           _("The image’s settings are not valid UTF-8 text"));
      return NULL;
    }

  info = generation_info_new_empty ();
  stripped = python_strip (text, text + strlen (text));
  lines = g_strsplit (stripped, "\n", -1);
  n_lines = g_strv_length (lines);

  if (n_lines > 0)
    {
      params = find_params (lines[n_lines - 1]);
      if (params->len / 2 >= MIN_PARAMS)
        n_lines--;
      else
        g_clear_pointer (&params, g_ptr_array_unref);
    }

  for (guint i = 0; i < n_lines; i++)
    {
      g_autofree char *line = python_strip (lines[i], lines[i] + strlen (lines[i]));
      const char *content = line;
      g_autofree char *rest = NULL;

      if (g_str_has_prefix (line, NEGATIVE_PREFIX))
        {
          done_with_prompt = TRUE;
          rest = python_strip (line + strlen (NEGATIVE_PREFIX), line + strlen (line));
          content = rest;
        }
      append_line (done_with_prompt ? negative : prompt, content);
    }

  for (guint i = 0; params != NULL && i < params->len; i += 2)
    {
      const char *key = g_ptr_array_index (params, i);
      const char *raw = g_ptr_array_index (params, i + 1);
      gsize len = strlen (raw);
      g_autofree char *unquoted = NULL;

      /* A1111 reads v[0] of an empty value, fails and drops the key */
      if (len == 0)
        continue;
      if (raw[0] == '"' && raw[len - 1] == '"' && len >= 2)
        unquoted = json_unquote (raw);
      set_param (info, key, unquoted != NULL ? unquoted : raw);
    }
  split_schedule_from_sampler (info);

  info->prompt = g_string_free (g_steal_pointer (&prompt), FALSE);
  info->negative_prompt = g_string_free (g_steal_pointer (&negative), FALSE);
  return g_steal_pointer (&info);
}

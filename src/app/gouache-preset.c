/* gouache-preset.c: one saved blend, its checks and its JSON form
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-preset"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "gc-sampler.h"
#include "gc-styles.h"
#include "gouache-error.h"
#include "gouache-preset.h"

#define PRESETS_FORMAT "gouache-presets"
#define PRESETS_VERSION 1
#define NAME_MAX_BYTES 256
#define HASH_MAX_DIGITS 64
#define THUMBNAIL_MAX_BYTES (8 * 1024 * 1024)
#define STEPS_MAX 1000
#define CFG_MAX 100.0
#define SIDE_MIN 64
#define SIDE_MAX 8192

static const guint8 png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* ------------------------------------------------------------------ the value */

static void
style_free (gpointer data)
{
  GouachePresetStyle *style = data;
  g_free (style->path);
  g_free (style->sha256);
  g_free (style);
}

GouachePreset *
gouache_preset_new (void)
{
  GouachePreset *preset = g_new0 (GouachePreset, 1);
  preset->styles = g_ptr_array_new_with_free_func (style_free);
  preset->prompt = g_strdup ("");
  preset->negative_prompt = g_strdup ("");
  preset->sampler = g_strdup ("euler_a");
  preset->schedule = g_strdup ("default");
  preset->steps = 20;
  preset->cfg_scale = 7;
  preset->width = preset->height = 512;
  preset->seed = -1;
  return preset;
}

void
gouache_preset_add_style (GouachePreset *preset,
                          const char    *path,
                          const char    *sha256,
                          double         weight,
                          double         text_weight)
{
  GouachePresetStyle *style = g_new0 (GouachePresetStyle, 1);
  style->path = g_strdup (path);
  style->sha256 = g_strdup (sha256);
  style->weight = weight;
  style->text_weight = text_weight;
  g_ptr_array_add (preset->styles, style);
}

GouachePreset *
gouache_preset_copy (const GouachePreset *preset)
{
  GouachePreset *copy = gouache_preset_new ();
  g_free (copy->prompt), g_free (copy->negative_prompt);
  g_free (copy->sampler), g_free (copy->schedule);
  copy->name = g_strdup (preset->name);
  copy->model_path = g_strdup (preset->model_path);
  copy->model_sha256 = g_strdup (preset->model_sha256);
  for (guint i = 0; i < preset->styles->len; i++)
    {
      const GouachePresetStyle *s = g_ptr_array_index (preset->styles, i);
      gouache_preset_add_style (copy, s->path, s->sha256, s->weight, s->text_weight);
    }
  copy->prompt = g_strdup (preset->prompt);
  copy->negative_prompt = g_strdup (preset->negative_prompt);
  copy->sampler = g_strdup (preset->sampler);
  copy->schedule = g_strdup (preset->schedule);
  copy->steps = preset->steps;
  copy->cfg_scale = preset->cfg_scale;
  copy->width = preset->width;
  copy->height = preset->height;
  copy->seed = preset->seed;
  copy->thumbnail = preset->thumbnail ? g_bytes_ref (preset->thumbnail) : NULL;
  copy->created = preset->created;
  copy->updated = preset->updated;
  return copy;
}

void
gouache_preset_free (GouachePreset *preset)
{
  if (preset == NULL)
    return;
  g_free (preset->name);
  g_free (preset->model_path);
  g_free (preset->model_sha256);
  g_ptr_array_unref (preset->styles);
  g_free (preset->prompt);
  g_free (preset->negative_prompt);
  g_free (preset->sampler);
  g_free (preset->schedule);
  g_clear_pointer (&preset->thumbnail, g_bytes_unref);
  g_free (preset);
}

G_DEFINE_BOXED_TYPE (GouachePreset, gouache_preset, gouache_preset_copy, gouache_preset_free)

/* ------------------------------------------------------------------ checks */

static gboolean
invalid (GError **error, const char *name, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* "preset “NAME”: problem" */
static gboolean
invalid (GError **error, const char *name, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *problem = g_strdup_vprintf (format, args);
  va_end (args);
  if (name && *name)
    g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID, _ ("preset “%s”: %s"), name,
                 problem);
  else
    g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID, _ ("preset: %s"), problem);
  return FALSE;
}

static gboolean
is_text (const char *text, gboolean allow_newlines)
{
  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    return FALSE;
  for (const char *p = text; *p; p++)
    if ((guchar) *p < 0x20 && !(allow_newlines && (*p == '\n' || *p == '\t' || *p == '\r')))
      return FALSE;
  return TRUE;
}

/* A hash prefix: 1..64 hex digits, kept in lower case; NULL stays NULL. */
static gboolean
check_hash (char **hash)
{
  if (*hash == NULL)
    return TRUE;
  size_t len = strlen (*hash);
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isxdigit ((*hash)[i]))
      return FALSE;
  if (len == 0 || len > HASH_MAX_DIGITS)
    return FALSE;
  char *lower = g_ascii_strdown (*hash, -1);
  g_free (*hash);
  *hash = lower;
  return TRUE;
}

static gboolean
check_weight (double weight)
{
  return isfinite (weight) && fabs (weight) <= GC_STYLE_WEIGHT_MAX;
}

static gboolean
check_styles (GouachePreset *preset, GError **error)
{
  for (guint i = 0; i < preset->styles->len; i++)
    {
      GouachePresetStyle *s = g_ptr_array_index (preset->styles, i);
      if (s->path == NULL || *s->path == '\0' || !is_text (s->path, FALSE))
        return invalid (error, preset->name, _ ("style %u has no file"), i + 1);
      if (!check_hash (&s->sha256))
        return invalid (error, preset->name, _ ("style %u: sha256 must be 1 to 64 hex digits"),
                        i + 1);
      if (!check_weight (s->weight) || !check_weight (s->text_weight))
        return invalid (error, preset->name, _ ("style %u: weights go from -%g to %g"), i + 1,
                        GC_STYLE_WEIGHT_MAX, GC_STYLE_WEIGHT_MAX);
    }
  return TRUE;
}

/* Replaces *name with the CLI spelling of the sampler or schedule it names. */
static gboolean
canonical_names (GouachePreset *preset, GError **error)
{
  gc_sampler sampler;
  gc_schedule_type schedule;
  gc_error err = { 0 };
  if (gc_sampler_parse (&sampler, preset->sampler, &err)
      || gc_schedule_parse (&schedule, preset->schedule, &err))
    return invalid (error, preset->name, "%s", err.message);
  g_free (preset->sampler);
  g_free (preset->schedule);
  preset->sampler = g_strdup (gc_sampler_cli_name (sampler));
  preset->schedule = g_strdup (gc_schedule_cli_name (schedule));
  return TRUE;
}

gboolean
gouache_preset_check_name (const char *name, GError **error)
{
  if (name == NULL || *name == '\0' || strlen (name) > NAME_MAX_BYTES || !is_text (name, FALSE))
    return invalid (error, NULL, _ ("a name is 1 to %d bytes of text without control characters"),
                    NAME_MAX_BYTES);
  return TRUE;
}

gboolean
gouache_preset_validate (GouachePreset *preset, GError **error)
{
  const char *name = preset->name;
  if (!gouache_preset_check_name (name, error))
    return FALSE;
  if (preset->model_path == NULL || *preset->model_path == '\0'
      || !is_text (preset->model_path, FALSE))
    return invalid (error, name, _ ("it names no model"));
  if (!check_hash (&preset->model_sha256))
    return invalid (error, name, _ ("the model's sha256 must be 1 to 64 hex digits"));
  if (!is_text (preset->prompt, TRUE) || !is_text (preset->negative_prompt, TRUE))
    return invalid (error, name, _ ("the prompts must be UTF-8 text"));
  if (!check_styles (preset, error) || !canonical_names (preset, error))
    return FALSE;
  if (preset->steps < 1 || preset->steps > STEPS_MAX)
    return invalid (error, name, _ ("steps go from 1 to %d"), STEPS_MAX);
  if (!isfinite (preset->cfg_scale) || preset->cfg_scale < 0 || preset->cfg_scale > CFG_MAX)
    return invalid (error, name, _ ("the CFG scale goes from 0 to %g"), CFG_MAX);
  if (preset->width < SIDE_MIN || preset->width > SIDE_MAX || preset->width % 8
      || preset->height < SIDE_MIN || preset->height > SIDE_MAX || preset->height % 8)
    return invalid (error, name, _ ("width and height are multiples of 8 from %d to %d"), SIDE_MIN,
                    SIDE_MAX);
  if (preset->seed < -1)
    return invalid (error, name,
                    _ ("the seed is a number from 0 up, or -1 for a new one each time"));
  if (preset->thumbnail && (g_bytes_get_size (preset->thumbnail) > THUMBNAIL_MAX_BYTES
                            || g_bytes_get_size (preset->thumbnail) < sizeof png_signature
                            || memcmp (g_bytes_get_data (preset->thumbnail, NULL), png_signature,
                                       sizeof png_signature) != 0))
    return invalid (error, name, _ ("the thumbnail must be a PNG of at most %d MiB"),
                    THUMBNAIL_MAX_BYTES >> 20);
  return TRUE;
}

/* ------------------------------------------------------------------ to JSON */

static void
add_string (JsonBuilder *b, const char *member, const char *value)
{
  json_builder_set_member_name (b, member);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_number (JsonBuilder *b, const char *member, double value)
{
  json_builder_set_member_name (b, member);
  json_builder_add_double_value (b, value);
}

static void
add_int (JsonBuilder *b, const char *member, gint64 value)
{
  json_builder_set_member_name (b, member);
  json_builder_add_int_value (b, value);
}

static void
build_preset (JsonBuilder *b, const GouachePreset *p)
{
  json_builder_begin_object (b);
  add_string (b, "name", p->name);
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  add_string (b, "path", p->model_path);
  add_string (b, "sha256", p->model_sha256);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "styles");
  json_builder_begin_array (b);
  for (guint i = 0; i < p->styles->len; i++)
    {
      const GouachePresetStyle *s = g_ptr_array_index (p->styles, i);
      json_builder_begin_object (b);
      add_string (b, "path", s->path);
      add_string (b, "sha256", s->sha256);
      add_number (b, "weight", s->weight);
      add_number (b, "text_weight", s->text_weight);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  add_string (b, "prompt", p->prompt);
  add_string (b, "negative_prompt", p->negative_prompt);
  add_string (b, "sampler", p->sampler);
  add_string (b, "schedule", p->schedule);
  add_int (b, "steps", p->steps);
  add_number (b, "cfg_scale", p->cfg_scale);
  add_int (b, "width", p->width);
  add_int (b, "height", p->height);
  add_int (b, "seed", p->seed);
  if (p->thumbnail)
    {
      gsize size;
      const guchar *data = g_bytes_get_data (p->thumbnail, &size);
      g_autofree char *encoded = g_base64_encode (data, size);
      add_string (b, "thumbnail", encoded);
    }
  add_int (b, "created", p->created);
  add_int (b, "updated", p->updated);
  json_builder_end_object (b);
}

JsonNode *
gouache_preset_to_json (const GouachePreset *preset)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  build_preset (b, preset);
  return json_builder_get_root (b);
}

char *
gouache_presets_to_json (GPtrArray *presets)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  add_string (b, "format", PRESETS_FORMAT);
  add_int (b, "version", PRESETS_VERSION);
  json_builder_set_member_name (b, "presets");
  json_builder_begin_array (b);
  for (guint i = 0; i < presets->len; i++)
    build_preset (b, g_ptr_array_index (presets, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

/* ------------------------------------------------------------------ from JSON */

/* Reads one member of a preset's object, checking its type; absent members keep the default. */
typedef struct {
  JsonObject *object;
  const char *preset; /* name, for messages */
  GError **error;
} reader;

static JsonNode *
member (const reader *r, const char *name)
{
  JsonNode *node = json_object_get_member (r->object, name);
  return node && !JSON_NODE_HOLDS_NULL (node) ? node : NULL;
}

static gboolean
read_string (const reader *r, const char *name, char **out)
{
  JsonNode *node = member (r, name);
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return invalid (r->error, r->preset, _ ("“%s” must be a string"), name);
  g_free (*out);
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

static gboolean
read_int (const reader *r, const char *name, gint64 min, gint64 max, gint64 *out)
{
  JsonNode *node = member (r, name);
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return invalid (r->error, r->preset, _ ("“%s” must be an integer"), name);
  gint64 value = json_node_get_int (node);
  if (value < min || value > max)
    return invalid (r->error, r->preset, _ ("“%s” is %lld, outside %lld..%lld"), name,
                    (long long) value, (long long) min, (long long) max);
  *out = value;
  return TRUE;
}

static gboolean
read_number (const reader *r, const char *name, double *out)
{
  JsonNode *node = member (r, name);
  if (node == NULL)
    return TRUE;
  GType type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    return invalid (r->error, r->preset, _ ("“%s” must be a number"), name);
  *out = json_node_get_double (node);
  return TRUE;
}

static gboolean
read_object (const reader *r, const char *name, JsonObject **out)
{
  JsonNode *node = member (r, name);
  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return invalid (r->error, r->preset, _ ("“%s” must be an object"), name);
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
read_styles (const reader *r, GouachePreset *p)
{
  JsonNode *node = member (r, "styles");
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return invalid (r->error, r->preset, _ ("“styles” must be a list"));
  JsonArray *list = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *item = json_array_get_element (list, i);
      if (!JSON_NODE_HOLDS_OBJECT (item))
        return invalid (r->error, r->preset, _ ("style %u must be an object"), i + 1);
      reader sr = { json_node_get_object (item), r->preset, r->error };
      g_autofree char *path = NULL, *hash = NULL;
      double weight = 1, text_weight = NAN;
      if (!read_string (&sr, "path", &path) || !read_string (&sr, "sha256", &hash)
          || !read_number (&sr, "weight", &weight)
          || !read_number (&sr, "text_weight", &text_weight))
        return FALSE;
      gouache_preset_add_style (p, path, hash, weight, isnan (text_weight) ? weight : text_weight);
    }
  return TRUE;
}

static gboolean
read_thumbnail (const reader *r, GouachePreset *p)
{
  g_autofree char *encoded = NULL;
  if (!read_string (r, "thumbnail", &encoded))
    return FALSE;
  if (encoded == NULL)
    return TRUE;
  if (strlen (encoded) > THUMBNAIL_MAX_BYTES / 3 * 4 + 4)
    return invalid (r->error, r->preset, _ ("the thumbnail is too large"));
  gsize size;
  guchar *data = g_base64_decode (encoded, &size);
  p->thumbnail = g_bytes_new_take (data, size);
  return TRUE;
}

static GouachePreset *
preset_from_object (JsonObject *object, guint index, GError **error)
{
  g_autoptr (GouachePreset) p = gouache_preset_new ();
  g_autofree char *label = g_strdup_printf ("%u", index + 1);
  reader r = { object, label, error };
  if (!read_string (&r, "name", &p->name))
    return NULL;
  if (p->name)
    r.preset = p->name;
  JsonObject *model = NULL;
  gint64 steps = p->steps, width = p->width, height = p->height, seed = p->seed;
  if (!read_object (&r, "model", &model))
    return NULL;
  reader mr = { model, r.preset, error };
  if (model && (!read_string (&mr, "path", &p->model_path)
                || !read_string (&mr, "sha256", &p->model_sha256)))
    return NULL;
  if (!read_styles (&r, p) || !read_string (&r, "prompt", &p->prompt)
      || !read_string (&r, "negative_prompt", &p->negative_prompt)
      || !read_string (&r, "sampler", &p->sampler) || !read_string (&r, "schedule", &p->schedule)
      || !read_int (&r, "steps", 1, STEPS_MAX, &steps)
      || !read_number (&r, "cfg_scale", &p->cfg_scale)
      || !read_int (&r, "width", SIDE_MIN, SIDE_MAX, &width)
      || !read_int (&r, "height", SIDE_MIN, SIDE_MAX, &height)
      || !read_int (&r, "seed", -1, G_MAXINT64, &seed)
      || !read_int (&r, "created", 0, G_MAXINT64, &p->created)
      || !read_int (&r, "updated", 0, G_MAXINT64, &p->updated) || !read_thumbnail (&r, p))
    return NULL;
  p->steps = (guint) steps, p->width = (guint) width, p->height = (guint) height, p->seed = seed;
  if (p->prompt == NULL)
    p->prompt = g_strdup ("");
  if (p->negative_prompt == NULL)
    p->negative_prompt = g_strdup ("");
  return gouache_preset_validate (p, error) ? g_steal_pointer (&p) : NULL;
}

GPtrArray *
gouache_presets_from_json (const char *json, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) parse_error = NULL;
  if (!json_parser_load_from_data (parser, json, -1, &parse_error))
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT, _ ("not JSON: %s"),
                   parse_error->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *doc = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  const char *format = doc ? json_object_get_string_member_with_default (doc, "format", NULL)
                           : NULL;
  JsonNode *list = doc ? json_object_get_member (doc, "presets") : NULL;
  if (format == NULL || strcmp (format, PRESETS_FORMAT) != 0 || list == NULL
      || !JSON_NODE_HOLDS_ARRAY (list))
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                   _ ("not a Gouache presets file (it needs \"format\": \"%s\" and a "
                      "\"presets\" list)"),
                   PRESETS_FORMAT);
      return NULL;
    }
  if (json_object_get_int_member_with_default (doc, "version", 0) > PRESETS_VERSION)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED,
                   _ ("the presets file was written by a newer Gouache (version %lld)"),
                   (long long) json_object_get_int_member_with_default (doc, "version", 0));
      return NULL;
    }
  g_autoptr (GPtrArray) presets
    = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_preset_free);
  JsonArray *items = json_node_get_array (list);
  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      GouachePreset *p = JSON_NODE_HOLDS_OBJECT (item)
                           ? preset_from_object (json_node_get_object (item), i, error)
                           : NULL;
      if (p == NULL)
        {
          if (!JSON_NODE_HOLDS_OBJECT (item))
            invalid (error, NULL, _ ("entry %u of “presets” is not an object"), i + 1);
          return NULL;
        }
      g_ptr_array_add (presets, p);
    }
  return g_steal_pointer (&presets);
}

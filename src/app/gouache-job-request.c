/* gouache-job-request.c: what one generation is asked to draw
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-job-request"

#include <json-glib/json-glib.h>

#include "gouache-error.h"
#include "gouache-job-request.h"

G_DEFINE_BOXED_TYPE (GouacheJobRequest, gouache_job_request,
                     gouache_job_request_copy, gouache_job_request_free)

/**
 * gouache_job_request_copy:
 * @request: a request, whose strings may be borrowed
 *
 * Returns: (transfer full): a deep copy of @request that owns all its strings
 */
GouacheJobRequest *
gouache_job_request_copy (const GouacheJobRequest *request)
{
  GouacheJobRequest *copy;

  g_return_val_if_fail (request != NULL, NULL);

  copy = g_memdup2 (request, sizeof *request);
  copy->prompt = g_strdup (request->prompt ? request->prompt : "");
  copy->negative = g_strdup (request->negative ? request->negative : "");
  copy->styles = g_new0 (GouacheJobStyle, request->n_styles);
  for (guint i = 0; i < request->n_styles; i++)
    {
      copy->styles[i].path = g_strdup (request->styles[i].path);
      copy->styles[i].name = g_strdup (request->styles[i].name);
      copy->styles[i].weight = request->styles[i].weight;
    }

  return copy;
}

void
gouache_job_styles_free (GouacheJobStyle *styles,
                         guint            n_styles)
{
  for (guint i = 0; i < n_styles; i++)
    {
      g_free (styles[i].path);
      g_free (styles[i].name);
    }
  g_free (styles);
}

void
gouache_job_request_free (GouacheJobRequest *request)
{
  if (request == NULL)
    return;

  g_free (request->prompt);
  g_free (request->negative);
  gouache_job_styles_free (request->styles, request->n_styles);
  g_free (request);
}

/**
 * gouache_job_request_schedule_allowed:
 * @sampler: a sampler
 * @schedule: a schedule type
 *
 * Karras and exponential schedules need a sampler that steps in σ (Euler, Euler a, Heun,
 * DPM++ 2M); LCM runs only its own schedule (see gc-sampler.h).
 *
 * Returns: whether the engine accepts @schedule with @sampler
 */
gboolean
gouache_job_request_schedule_allowed (gc_sampler       sampler,
                                      gc_schedule_type schedule)
{
  switch (schedule)
    {
    case GC_SCHEDULE_DEFAULT:
      return TRUE;
    case GC_SCHEDULE_TRAILING:
      return sampler != GC_SAMPLER_LCM;
    case GC_SCHEDULE_KARRAS:
    case GC_SCHEDULE_EXPONENTIAL:
      return sampler != GC_SAMPLER_LCM && sampler != GC_SAMPLER_DDIM;
    case GC_SCHEDULE_COUNT:
    default:
      return FALSE;
    }
}

/**
 * gouache_job_request_styles_to_json:
 * @request: a request
 *
 * The styles of @request as the history and presets keep them:
 * `[{"path": "/…/ink.safetensors", "name": "ink", "weight": 0.8}, …]`.
 *
 * Returns: (transfer full): a JSON array
 */
char *
gouache_job_request_styles_to_json (const GouacheJobRequest *request)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  g_return_val_if_fail (request != NULL, NULL);

  json_builder_begin_array (builder);
  for (guint i = 0; i < request->n_styles; i++)
    {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "path");
      json_builder_add_string_value (builder, request->styles[i].path);
      json_builder_set_member_name (builder, "name");
      json_builder_add_string_value (builder, request->styles[i].name);
      json_builder_set_member_name (builder, "weight");
      json_builder_add_double_value (builder, request->styles[i].weight);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

static gboolean
style_from_json (JsonNode         *node,
                 GouacheJobStyle  *style,
                 GError          **error)
{
  JsonObject *object = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *path = object ? json_object_get_string_member_with_default (object, "path", NULL) : NULL;

  if (path == NULL)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                           "a style has no \"path\"");
      return FALSE;
    }

  style->path = g_strdup (path);
  style->name = g_strdup (json_object_get_string_member_with_default (object, "name", ""));
  style->weight = json_object_get_double_member_with_default (object, "weight", 1.0);
  return TRUE;
}

/**
 * gouache_job_request_styles_from_json:
 * @json: what gouache_job_request_styles_to_json() wrote
 * @n_styles: (out): the number of styles
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (array length=n_styles): the styles, to free with
 *   gouache_job_styles_free(), or %NULL with @error set (%GOUACHE_ERROR_FORMAT)
 */
GouacheJobStyle *
gouache_job_request_styles_from_json (const char  *json,
                                      guint       *n_styles,
                                      GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  GouacheJobStyle *styles;
  JsonArray *array;
  guint n;

  g_return_val_if_fail (json != NULL, NULL);
  g_return_val_if_fail (n_styles != NULL, NULL);

  *n_styles = 0;
  if (!json_parser_load_from_data (parser, json, -1, error))
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                           "the styles are not a JSON array");
      return NULL;
    }

  array = json_node_get_array (json_parser_get_root (parser));
  n = json_array_get_length (array);
  styles = g_new0 (GouacheJobStyle, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    if (!style_from_json (json_array_get_element (array, i), &styles[i], error))
      {
        gouache_job_styles_free (styles, i);
        return NULL;
      }

  *n_styles = n;
  return styles;
}

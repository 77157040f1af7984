#include "config.h"

#include "gouache-cli-styles.h"

#include <stdio.h>
#include <string.h>

#include "gc-lora.h"
#include "gouache-error.h"
#include "gouache-file-hash.h"

static void
clear_style (gpointer data)
{
  g_free (((GouacheCliStyle *) data)->path);
}

static gboolean
parse_number (const char *text, double *out)
{
  char *end;
  *out = g_ascii_strtod (text, &end);
  return end != text && *end == '\0';
}

static gboolean
check_weight (const char *spec, double weight, GError **error)
{
  if (weight >= -GC_STYLE_WEIGHT_MAX && weight <= GC_STYLE_WEIGHT_MAX)
    return TRUE;
  g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
               "--lora %s: style weights go from -%g to %g", spec, GC_STYLE_WEIGHT_MAX,
               GC_STYLE_WEIGHT_MAX);
  return FALSE;
}

GArray *
gouache_cli_styles_parse (char **specs, GError **error)
{
  g_autoptr (GArray) styles = g_array_new (FALSE, TRUE, sizeof (GouacheCliStyle));
  g_array_set_clear_func (styles, clear_style);
  for (char **spec = specs; spec && *spec; spec++)
    {
      GouacheCliStyle style = { NULL, 1, 1 };
      const char *colon = strrchr (*spec, ':');
      double last;
      if (colon && parse_number (colon + 1, &last))
        {
          g_autofree char *head = g_strndup (*spec, (gsize) (colon - *spec));
          const char *second = strrchr (head, ':');
          double first;
          if (second && parse_number (second + 1, &first))
            {
              style.path = g_strndup (head, (gsize) (second - head));
              style.weight = first;
              style.text_weight = last;
            }
          else
            {
              style.path = g_steal_pointer (&head);
              style.weight = style.text_weight = last;
            }
        }
      else
        style.path = g_strdup (*spec);
      g_array_append_val (styles, style);
      if (!check_weight (*spec, style.weight, error)
          || !check_weight (*spec, style.text_weight, error))
        return NULL;
      if (!g_file_test (style.path, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "style %s does not exist",
                       style.path);
          return NULL;
        }
    }
  return g_steal_pointer (&styles);
}

char *
gouache_cli_style_name (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *lower = g_ascii_strdown (base, -1);
  gsize len = strlen (base);
  if (g_str_has_suffix (lower, ".safetensors"))
    len -= strlen (".safetensors");
  return g_strndup (base, len);
}

static void
report_style (const GouacheCliStyle *style, const gc_lora *lora)
{
  gc_lora_report r = gc_lora_get_report (lora);
  g_autofree char *name = gouache_cli_style_name (style->path);
  fprintf (stderr,
           "style %s: %zu of %zu tensors applied (%zu UNet and %zu text-encoder weights) at %g "
           "(text %g)\n",
           name, r.applied, r.tensors, r.unet_weights, r.text_weights, style->weight,
           style->text_weight);
  if (r.unmatched > 0)
    fprintf (stderr, "  %zu tensors matched no weight of the model:\n", r.unmatched);
  for (size_t i = 0; i < r.unmatched; i++)
    fprintf (stderr, "    %s\n", gc_lora_unmatched (lora, i));
}

gboolean
gouache_cli_styles_apply (gc_model *model, GArray *styles, gboolean quiet, GError **error)
{
  for (guint i = 0; i < styles->len; i++)
    {
      const GouacheCliStyle *style = &g_array_index (styles, GouacheCliStyle, i);
      gc_error err = { 0 };
      gc_lora *lora;
      if (gc_lora_open (&lora, style->path, gc_model_checkpoint (model), &err))
        {
          gouache_set_error_from_gc (error, &err, NULL);
          return FALSE;
        }
      if (!quiet)
        report_style (style, lora);
      if (gc_styles_add (gc_model_styles (model), lora, style->weight, style->text_weight, &err))
        {
          gouache_set_error_from_gc (error, &err, NULL);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
gouache_cli_styles_describe (GArray *styles, GouacheGenerationInfo *info, GError **error)
{
  for (guint i = 0; i < styles->len; i++)
    {
      const GouacheCliStyle *style = &g_array_index (styles, GouacheCliStyle, i);
      g_autofree char *hash = gouache_file_hash_lora_hash (style->path, NULL, error);
      if (hash == NULL)
        return FALSE;
      g_autofree char *name = gouache_cli_style_name (style->path);
      gouache_generation_info_add_lora_hash (info, name, hash);
    }
  return TRUE;
}

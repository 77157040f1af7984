/* gouache-cli-styles.h — the --lora FILE:WEIGHT[:TEXT_WEIGHT] option of generate, bench, blend
 * and preset save, and what it does to a model. */
#pragma once

#include <glib.h>

#include "gc-model.h"
#include "gouache-infotext.h"

typedef struct {
  char *path;
  double weight;      /* UNet, −2..2 */
  double text_weight; /* text encoder; the same as weight unless given */
} GouacheCliStyle;

/* Parses each spec "FILE", "FILE:W" or "FILE:W:TW" (weights default to 1 and to W). Returns an
 * array of GouacheCliStyle (empty for NULL specs), or NULL with error set for a bad weight. */
GArray *gouache_cli_styles_parse (char **specs, GError **error);

/* Opens each style against the model's checkpoint and adds it to the model's styles. Unless
 * quiet, prints on stderr per style how many tensors were applied and the names of those that
 * matched nothing. */
gboolean gouache_cli_styles_apply (gc_model *model, GArray *styles, gboolean quiet,
                                   GError **error);

/* Adds the styles to the "Lora hashes" of info (alias: the file name without extension). */
gboolean gouache_cli_styles_describe (GArray *styles, GouacheGenerationInfo *info,
                                      GError **error);

/* The file name without its directory and ".safetensors". */
char *gouache_cli_style_name (const char *path);

/* gouache-preset.h: one saved blend: model, styles, prompts, settings and a thumbnail
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The value a preset store (gouache-preset-store.h) holds, and its JSON form, which is
 * validated field by field when read (types, ranges, sampler and schedule names, PNG
 * thumbnails): an error names the preset and the field.
 *
 *   {"format": "gouache-presets", "version": 1, "presets": [
 *     {"name": "ink wash", "model": {"path": "/models/v1-5.safetensors", "sha256": "6ce0161689"},
 *      "styles": [{"path": "/loras/ink.safetensors", "sha256": "0123456789ab",
 *                  "weight": 0.7, "text_weight": 0.7}],
 *      "prompt": "…", "negative_prompt": "…", "sampler": "euler_a", "schedule": "karras",
 *      "steps": 20, "cfg_scale": 7, "width": 512, "height": 512, "seed": 42,
 *      "thumbnail": "<base64 PNG>", "created": 1700000000, "updated": 1700000000}]}
 *
 * Members other than "name" may be left out (defaults: no styles, empty prompts, euler_a,
 * default schedule, 20 steps, CFG 7, 512×512, seed −1); unknown members are ignored.
 */

#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* One style of a preset. */
typedef struct {
  char *path;        /* the LoRA file */
  char *sha256;      /* a prefix of its SHA-256 (hex), or NULL when unknown */
  double weight;     /* UNet, −2..2 */
  double text_weight; /* text encoder, −2..2 */
} GouachePresetStyle;

#define GOUACHE_TYPE_PRESET (gouache_preset_get_type ())

typedef struct {
  char *name;            /* unique in the store */
  char *model_path;
  char *model_sha256;    /* a prefix of the checkpoint's SHA-256 (hex), or NULL */
  GPtrArray *styles;     /* (element-type GouachePresetStyle) in blend order */
  char *prompt;
  char *negative_prompt;
  char *sampler;         /* gouache-cli name: "euler_a" (display names are accepted too) */
  char *schedule;        /* "default", "karras"… */
  guint steps;           /* 1..1000 */
  double cfg_scale;      /* 0..100 */
  guint width, height;   /* pixels, multiples of 8, 64..8192 */
  gint64 seed;           /* −1: a new seed each time */
  GBytes *thumbnail;     /* PNG, or NULL */
  gint64 created, updated; /* Unix time in seconds, set by the store */
} GouachePreset;

GType          gouache_preset_get_type   (void) G_GNUC_CONST;
GouachePreset *gouache_preset_new        (void);
GouachePreset *gouache_preset_copy       (const GouachePreset *preset);
void           gouache_preset_free       (GouachePreset       *preset);
void           gouache_preset_add_style  (GouachePreset       *preset,
                                          const char          *path,
                                          const char          *sha256,
                                          double               weight,
                                          double               text_weight);
/* A name is 1 to 256 bytes of UTF-8 without control characters. */
gboolean       gouache_preset_check_name (const char          *name,
                                          GError             **error);
/* Checks every field (what the store accepts); canonicalises sampler and schedule names. */
gboolean       gouache_preset_validate   (GouachePreset       *preset,
                                          GError             **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouachePreset, gouache_preset_free)

/* JSON: the object of one preset, and the {"format": "gouache-presets", "version": 1,
 * "presets": [...]} document of several (the thumbnail as base64 PNG). */
JsonNode      *gouache_preset_to_json    (const GouachePreset *preset);
char          *gouache_presets_to_json   (GPtrArray           *presets);
/* (transfer full) (element-type GouachePreset): the validated presets of a document */
GPtrArray     *gouache_presets_from_json (const char          *json,
                                          GError             **error);

G_END_DECLS

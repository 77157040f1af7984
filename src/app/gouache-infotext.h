/* gouache-infotext.h: generation settings as AUTOMATIC1111's "parameters" text
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Images carry their settings in the PNG text chunk "parameters", in the format that
 * AUTOMATIC1111's web UI writes (modules/processing.py, create_infotext) and that Forge, ComfyUI
 * save nodes, stable-diffusion.cpp and image browsers read:
 *
 *   a castle on a hill, "sunset"
 *   Negative prompt: blurry
 *   Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x512,
 *   Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "ink: 0123456789ab",
 *   Version: gouache 0.1.0
 *
 * (the settings are one line; it is wrapped here). A value that contains ',', ':' or a newline
 * is written as a JSON string (Python's json.dumps with ensure_ascii=False); the prompts are
 * written as they are.
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* One LoRA named in "Lora hashes". */
typedef struct {
  char *alias; /* the name the prompt used; ',' and ':' are dropped when written */
  char *hash;  /* 12 hex digits: gouache_file_hash_lora_hash() */
} GouacheLoraHash;

#define GOUACHE_TYPE_GENERATION_INFO (gouache_generation_info_get_type ())

/* The settings of one image. Strings are UTF-8 and owned by the struct; a NULL string is left
 * out of the text. */
typedef struct {
  char *prompt;
  char *negative_prompt;
  guint steps;
  char *sampler;             /* display name: "Euler a", "DPM++ 2M" */
  char *schedule_type;       /* "Karras", "Exponential"; NULL: not written */
  double cfg_scale;
  guint64 seed;
  guint width;
  guint height;
  char *model_hash;          /* 10 hex digits: gouache_file_hash_model_hash() */
  char *model_name;          /* the checkpoint's file name without its extension */
  double denoising_strength; /* img2img only; negative: not written */
  guint clip_skip;           /* written only when > 1 */
  GPtrArray *lora_hashes;    /* (element-type GouacheLoraHash) */
  GHashTable *extra;         /* (element-type utf8 utf8): other keys, written in key order */
  char *version;             /* "gouache 0.1.0"; NULL: not written */
} GouacheGenerationInfo;

GType                  gouache_generation_info_get_type      (void) G_GNUC_CONST;
GouacheGenerationInfo *gouache_generation_info_new           (void);
GouacheGenerationInfo *gouache_generation_info_copy          (const GouacheGenerationInfo *info);
void                   gouache_generation_info_free          (GouacheGenerationInfo       *info);
void                   gouache_generation_info_add_lora_hash (GouacheGenerationInfo       *info,
                                                              const char                  *alias,
                                                              const char                  *hash);

const char            *gouache_infotext_version              (void);
char                  *gouache_infotext_format               (const GouacheGenerationInfo *info);
GouacheGenerationInfo *gouache_infotext_parse                (const char                  *text,
                                                              GError                     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheGenerationInfo, gouache_generation_info_free)

G_END_DECLS

/* Translation of diffusers module names to the LDM names of single-file checkpoints, and back
 * (LoRA files name their targets by diffusers module paths).
 *
 * UNet: diffusers numbers resnets and attentions inside each resolution level; LDM numbers the
 * blocks in one flat sequence: level i of the encoder is input_blocks (lpb+1)·i + j + 1, with its
 * downsampler at (lpb+1)·(i+1); level i of the decoder is output_blocks (lpb+1)·i + j, with its
 * upsampler after the resnet (and attention, when the level has one). VAE decoder levels are
 * numbered in reverse (diffusers up_blocks.0 is LDM up.{levels−1}). Text encoders keep their
 * Hugging Face names under the family's root (gc-diffusers-names.h).
 */
#include "gc-diffusers-names.h"

#include <stdio.h>
#include <string.h>

#include "gc-param.h"

typedef struct {
  const char *diffusers;
  const char *ldm;
} rename_rule;

static const rename_rule unet_resnet_parts[] = {
  { "norm1", "in_layers.0" },  { "conv1", "in_layers.2" },
  { "time_emb_proj", "emb_layers.1" }, { "norm2", "out_layers.0" },
  { "conv2", "out_layers.3" }, { "conv_shortcut", "skip_connection" },
};

static const rename_rule vae_resnet_parts[] = {
  { "norm1", "norm1" }, { "conv1", "conv1" }, { "norm2", "norm2" },
  { "conv2", "conv2" }, { "conv_shortcut", "nin_shortcut" },
};

static const rename_rule vae_attention_parts[] = {
  { "group_norm", "norm" }, { "to_q", "q" }, { "query", "q" }, { "to_k", "k" }, { "key", "k" },
  { "to_v", "v" }, { "value", "v" }, { "to_out.0", "proj_out" }, { "proj_attn", "proj_out" },
};

static const rename_rule unet_fixed[] = {
  { "conv_in", "input_blocks.0.0" },        { "time_embedding.linear_1", "time_embed.0" },
  { "time_embedding.linear_2", "time_embed.2" }, { "conv_norm_out", "out.0" },
  { "conv_out", "out.2" },                  { "add_embedding.linear_1", "label_emb.0.0" },
  { "add_embedding.linear_2", "label_emb.0.2" },
};

/* If key starts with rule.diffusers followed by '.', writes rule.ldm + the rest to out. */
static bool
apply_rules (const rename_rule *rules, size_t n, const char *key, const char *prefix, char *out,
             size_t out_size)
{
  for (size_t i = 0; i < n; i++)
    {
      size_t len = strlen (rules[i].diffusers);
      if (strncmp (key, rules[i].diffusers, len) == 0 && key[len] == '.')
        {
          int w = snprintf (out, out_size, "%s%s%s", prefix, rules[i].ldm, key + len);
          return w > 0 && (size_t) w < out_size;
        }
    }
  return false;
}

static bool
write_key (char *out, size_t out_size, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

static bool
write_key (char *out, size_t out_size, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  int w = vsnprintf (out, out_size, format, args);
  va_end (args);
  return w > 0 && (size_t) w < out_size;
}

/* "rest" after a resnet: apply the resnet renames below prefix */
static bool
unet_resnet (const char *rest, const char *prefix, char *out, size_t out_size)
{
  return apply_rules (unet_resnet_parts, sizeof unet_resnet_parts / sizeof *unet_resnet_parts,
                      rest, prefix, out, out_size);
}

static bool
unet_key (const gc_diffusers_layout *layout, const char *key, char *out, size_t out_size)
{
  const char *root = "model.diffusion_model.";
  char prefix[128];
  int i, j, used = 0;
  int stride = layout->layers_per_block + 1;
  if (apply_rules (unet_fixed, sizeof unet_fixed / sizeof *unet_fixed, key, root, out, out_size))
    return true;
  if (sscanf (key, "down_blocks.%d.resnets.%d.%n", &i, &j, &used) == 2 && used > 0)
    {
      snprintf (prefix, sizeof prefix, "%sinput_blocks.%d.0.", root, stride * i + j + 1);
      return unet_resnet (key + used, prefix, out, out_size);
    }
  if (sscanf (key, "down_blocks.%d.attentions.%d.%n", &i, &j, &used) == 2 && used > 0)
    return write_key (out, out_size, "%sinput_blocks.%d.1.%s", root, stride * i + j + 1,
                      key + used);
  if (sscanf (key, "down_blocks.%d.downsamplers.0.conv.%n", &i, &used) == 1 && used > 0)
    return write_key (out, out_size, "%sinput_blocks.%d.0.op.%s", root, stride * (i + 1),
                      key + used);
  if (sscanf (key, "mid_block.resnets.%d.%n", &j, &used) == 1 && used > 0)
    {
      snprintf (prefix, sizeof prefix, "%smiddle_block.%d.", root, 2 * j);
      return unet_resnet (key + used, prefix, out, out_size);
    }
  if (strncmp (key, "mid_block.attentions.0.", 23) == 0)
    return write_key (out, out_size, "%smiddle_block.1.%s", root, key + 23);
  if (sscanf (key, "up_blocks.%d.resnets.%d.%n", &i, &j, &used) == 2 && used > 0)
    {
      snprintf (prefix, sizeof prefix, "%soutput_blocks.%d.0.", root, stride * i + j);
      return unet_resnet (key + used, prefix, out, out_size);
    }
  if (sscanf (key, "up_blocks.%d.attentions.%d.%n", &i, &j, &used) == 2 && used > 0)
    return write_key (out, out_size, "%soutput_blocks.%d.1.%s", root, stride * i + j, key + used);
  if (sscanf (key, "up_blocks.%d.upsamplers.0.conv.%n", &i, &used) == 1 && used > 0 && i >= 0
      && i < GC_DIFFUSERS_MAX_LEVELS)
    return write_key (out, out_size, "%soutput_blocks.%d.%d.conv.%s", root,
                      stride * i + layout->layers_per_block, layout->up_has_attention[i] ? 2 : 1,
                      key + used);
  return false;
}

static bool
vae_resnet (const char *rest, const char *prefix, char *out, size_t out_size)
{
  return apply_rules (vae_resnet_parts, sizeof vae_resnet_parts / sizeof *vae_resnet_parts, rest,
                      prefix, out, out_size);
}

static bool
vae_key (const gc_diffusers_layout *layout, const char *key, char *out, size_t out_size)
{
  const char *root = "first_stage_model.";
  char prefix[128];
  char part[16];
  int i, j, used = 0;
  if (strncmp (key, "quant_conv.", 11) == 0 || strncmp (key, "post_quant_conv.", 16) == 0)
    return write_key (out, out_size, "%s%s", root, key);
  if (sscanf (key, "%15[a-z].%n", part, &used) != 1
      || (strcmp (part, "encoder") != 0 && strcmp (part, "decoder") != 0))
    return false;
  const char *rest = key + used;
  used = 0; /* every later pattern must reach its %n itself */
  if (strncmp (rest, "conv_in.", 8) == 0 || strncmp (rest, "conv_out.", 9) == 0)
    return write_key (out, out_size, "%s%s.%s", root, part, rest);
  if (strncmp (rest, "conv_norm_out.", 14) == 0)
    return write_key (out, out_size, "%s%s.norm_out.%s", root, part, rest + 14);
  if (sscanf (rest, "mid_block.resnets.%d.%n", &j, &used) == 1 && used > 0)
    {
      snprintf (prefix, sizeof prefix, "%s%s.mid.block_%d.", root, part, j + 1);
      return vae_resnet (rest + used, prefix, out, out_size);
    }
  if (strncmp (rest, "mid_block.attentions.0.", 23) == 0)
    {
      snprintf (prefix, sizeof prefix, "%s%s.mid.attn_1.", root, part);
      return apply_rules (vae_attention_parts,
                          sizeof vae_attention_parts / sizeof *vae_attention_parts, rest + 23,
                          prefix, out, out_size);
    }
  bool encoder = strcmp (part, "encoder") == 0;
  const char *blocks = encoder ? "down_blocks" : "up_blocks";
  char pattern[64];
  snprintf (pattern, sizeof pattern, "%s.%%d.resnets.%%d.%%n", blocks);
  if (sscanf (rest, pattern, &i, &j, &used) == 2 && used > 0)
    {
      int level = encoder ? i : layout->vae_levels - 1 - i;
      snprintf (prefix, sizeof prefix, "%s%s.%s.%d.block.%d.", root, part,
                encoder ? "down" : "up", level, j);
      return vae_resnet (rest + used, prefix, out, out_size);
    }
  snprintf (pattern, sizeof pattern, "%s.%%d.%s.0.conv.%%n", blocks,
            encoder ? "downsamplers" : "upsamplers");
  if (sscanf (rest, pattern, &i, &used) == 1 && used > 0)
    {
      int level = encoder ? i : layout->vae_levels - 1 - i;
      return write_key (out, out_size, "%s%s.%s.%d.%s.conv.%s", root, part,
                        encoder ? "down" : "up", level, encoder ? "downsample" : "upsample",
                        rest + used);
    }
  return false;
}

/* Where the family's LDM file keeps the weights of a text encoder (the header's table). */
static const char *
text_encoder_root (gc_family family, gc_diffusers_component component)
{
  if (component == GC_DIFFUSERS_TEXT_ENCODER_2)
    return "conditioner.embedders.1.model.";
  switch (family)
    {
    case GC_FAMILY_SD1: return "cond_stage_model.transformer.";
    case GC_FAMILY_SD2: return "cond_stage_model.model.";
    case GC_FAMILY_SDXL: return "conditioner.embedders.0.transformer.";
    }
  return "cond_stage_model.transformer.";
}

/* The names of a Hugging Face text encoder that the model reads: the transformer, and the
 * projection of a CLIPTextModelWithProjection (SDXL's second encoder). */
static bool
text_encoder_key (const char *key)
{
  return strncmp (key, "text_model.", 11) == 0 || strcmp (key, "text_projection.weight") == 0;
}

bool
gc_diffusers_key_to_ldm (const gc_diffusers_layout *layout, gc_diffusers_component component,
                         const char *key, char *out, size_t out_size)
{
  switch (component)
    {
    case GC_DIFFUSERS_UNET:
      return unet_key (layout, key, out, out_size);
    case GC_DIFFUSERS_VAE:
      return vae_key (layout, key, out, out_size);
    case GC_DIFFUSERS_TEXT_ENCODER:
    case GC_DIFFUSERS_TEXT_ENCODER_2:
      return text_encoder_key (key)
             && write_key (out, out_size, "%s%s", text_encoder_root (layout->family, component),
                           key);
    }
  return false;
}

/* ------------------------------------------------------------------ LDM → diffusers */

/* If key starts with rule.ldm followed by '.', writes prefix + rule.diffusers + the rest. */
static bool
apply_rules_reversed (const rename_rule *rules, size_t n, const char *key, const char *prefix,
                      char *out, size_t out_size)
{
  for (size_t i = 0; i < n; i++)
    {
      size_t len = strlen (rules[i].ldm);
      if (strncmp (key, rules[i].ldm, len) == 0 && key[len] == '.')
        return write_key (out, out_size, "%s%s%s", prefix, rules[i].diffusers, key + len);
    }
  return false;
}

static bool
unet_resnet_reversed (const char *rest, const char *prefix, char *out, size_t out_size)
{
  return apply_rules_reversed (unet_resnet_parts,
                               sizeof unet_resnet_parts / sizeof *unet_resnet_parts, rest, prefix,
                               out, out_size);
}

static bool
unet_key_reversed (const gc_diffusers_layout *layout, const char *key, char *out,
                   size_t out_size)
{
  char prefix[128];
  int n, part, used = 0;
  int lpb = layout->layers_per_block, stride = lpb + 1;
  if (apply_rules_reversed (unet_fixed, sizeof unet_fixed / sizeof *unet_fixed, key, "", out,
                            out_size))
    return true;
  if (sscanf (key, "input_blocks.%d.%d.%n", &n, &part, &used) == 2 && used > 0 && n > 0)
    {
      const char *rest = key + used;
      int i = (n - 1) / stride, j = (n - 1) % stride;
      if (part == 0 && n % stride == 0 && strncmp (rest, "op.", 3) == 0)
        return write_key (out, out_size, "down_blocks.%d.downsamplers.0.conv.%s", n / stride - 1,
                          rest + 3);
      if (part == 1)
        return write_key (out, out_size, "down_blocks.%d.attentions.%d.%s", i, j, rest);
      snprintf (prefix, sizeof prefix, "down_blocks.%d.resnets.%d.", i, j);
      return part == 0 && unet_resnet_reversed (rest, prefix, out, out_size);
    }
  if (sscanf (key, "middle_block.%d.%n", &part, &used) == 1 && used > 0)
    {
      if (part == 1)
        return write_key (out, out_size, "mid_block.attentions.0.%s", key + used);
      snprintf (prefix, sizeof prefix, "mid_block.resnets.%d.", part / 2);
      return (part == 0 || part == 2) && unet_resnet_reversed (key + used, prefix, out, out_size);
    }
  if (sscanf (key, "output_blocks.%d.%d.%n", &n, &part, &used) == 2 && used > 0 && n >= 0)
    {
      const char *rest = key + used;
      int i = n / stride, j = n % stride;
      if (i >= GC_DIFFUSERS_MAX_LEVELS)
        return false;
      bool attention = layout->up_has_attention[i];
      if (part == 0)
        {
          snprintf (prefix, sizeof prefix, "up_blocks.%d.resnets.%d.", i, j);
          return unet_resnet_reversed (rest, prefix, out, out_size);
        }
      if (part == 1 && attention)
        return write_key (out, out_size, "up_blocks.%d.attentions.%d.%s", i, j, rest);
      if (part == (attention ? 2 : 1) && j == lpb && strncmp (rest, "conv.", 5) == 0)
        return write_key (out, out_size, "up_blocks.%d.upsamplers.0.conv.%s", i, rest + 5);
    }
  return false;
}

static bool
vae_key_reversed (const gc_diffusers_layout *layout, const char *key, char *out,
                  size_t out_size)
{
  char prefix[128], part[16];
  int level, j, used = 0;
  if (strncmp (key, "quant_conv.", 11) == 0 || strncmp (key, "post_quant_conv.", 16) == 0)
    return write_key (out, out_size, "%s", key);
  if (sscanf (key, "%15[a-z].%n", part, &used) != 1
      || (strcmp (part, "encoder") != 0 && strcmp (part, "decoder") != 0))
    return false;
  bool encoder = strcmp (part, "encoder") == 0;
  const char *rest = key + used;
  used = 0;
  if (strncmp (rest, "conv_in.", 8) == 0 || strncmp (rest, "conv_out.", 9) == 0)
    return write_key (out, out_size, "%s.%s", part, rest);
  if (strncmp (rest, "norm_out.", 9) == 0)
    return write_key (out, out_size, "%s.conv_norm_out.%s", part, rest + 9);
  if (sscanf (rest, "mid.block_%d.%n", &j, &used) == 1 && used > 0 && j >= 1)
    {
      snprintf (prefix, sizeof prefix, "%s.mid_block.resnets.%d.", part, j - 1);
      return apply_rules_reversed (vae_resnet_parts,
                                   sizeof vae_resnet_parts / sizeof *vae_resnet_parts,
                                   rest + used, prefix, out, out_size);
    }
  if (strncmp (rest, "mid.attn_1.", 11) == 0)
    {
      snprintf (prefix, sizeof prefix, "%s.mid_block.attentions.0.", part);
      return apply_rules_reversed (vae_attention_parts,
                                   sizeof vae_attention_parts / sizeof *vae_attention_parts,
                                   rest + 11, prefix, out, out_size);
    }
  const char *blocks = encoder ? "down_blocks" : "up_blocks";
  char pattern[64];
  snprintf (pattern, sizeof pattern, "%s.%%d.block.%%d.%%n", encoder ? "down" : "up");
  if (sscanf (rest, pattern, &level, &j, &used) == 2 && used > 0)
    {
      int i = encoder ? level : layout->vae_levels - 1 - level;
      snprintf (prefix, sizeof prefix, "%s.%s.%d.resnets.%d.", part, blocks, i, j);
      return apply_rules_reversed (vae_resnet_parts,
                                   sizeof vae_resnet_parts / sizeof *vae_resnet_parts,
                                   rest + used, prefix, out, out_size);
    }
  snprintf (pattern, sizeof pattern, "%s.%%d.%s.conv.%%n", encoder ? "down" : "up",
            encoder ? "downsample" : "upsample");
  if (sscanf (rest, pattern, &level, &used) == 1 && used > 0)
    {
      int i = encoder ? level : layout->vae_levels - 1 - level;
      return write_key (out, out_size, "%s.%s.%d.%s.0.conv.%s", part, blocks, i,
                        encoder ? "downsamplers" : "upsamplers", rest + used);
    }
  return false;
}

bool
gc_ldm_key_to_diffusers (const gc_diffusers_layout *layout, const char *key,
                         gc_diffusers_component *component, char *out, size_t out_size)
{
  static const struct {
    const char *root;
    gc_diffusers_component component;
  } roots[] = {
    { "model.diffusion_model.", GC_DIFFUSERS_UNET },
    { "first_stage_model.", GC_DIFFUSERS_VAE },
    { "cond_stage_model.transformer.", GC_DIFFUSERS_TEXT_ENCODER },
    { "cond_stage_model.model.", GC_DIFFUSERS_TEXT_ENCODER },
    { "conditioner.embedders.0.transformer.", GC_DIFFUSERS_TEXT_ENCODER },
    { "conditioner.embedders.1.model.", GC_DIFFUSERS_TEXT_ENCODER_2 },
  };
  for (size_t r = 0; r < sizeof roots / sizeof *roots; r++)
    {
      size_t len = strlen (roots[r].root);
      if (strncmp (key, roots[r].root, len) != 0)
        continue;
      const char *rest = key + len;
      *component = roots[r].component;
      switch (roots[r].component)
        {
        case GC_DIFFUSERS_UNET:
          return unet_key_reversed (layout, rest, out, out_size);
        case GC_DIFFUSERS_VAE:
          return vae_key_reversed (layout, rest, out, out_size);
        case GC_DIFFUSERS_TEXT_ENCODER:
        case GC_DIFFUSERS_TEXT_ENCODER_2:
          return text_encoder_key (rest) && write_key (out, out_size, "%s", rest);
        }
    }
  return false;
}

gc_diffusers_layout
gc_diffusers_layout_of_ldm (const gc_checkpoint *checkpoint)
{
  gc_diffusers_layout layout = { .family = gc_checkpoint_family (checkpoint) };
  const char *unet = "model.diffusion_model.";
  int first_down = 1;
  while (first_down < 64
         && !gc_checkpoint_hasf (checkpoint, "%sinput_blocks.%d.0.op.weight", unet, first_down))
    first_down++;
  layout.layers_per_block = first_down < 64 ? first_down - 1 : 2;
  int stride = layout.layers_per_block + 1;
  for (int level = 0; level < GC_DIFFUSERS_MAX_LEVELS; level++)
    layout.up_has_attention[level]
      = gc_checkpoint_hasf (checkpoint, "%soutput_blocks.%d.1.norm.weight", unet, stride * level);
  while (layout.vae_levels < 64
         && gc_checkpoint_hasf (checkpoint, "first_stage_model.encoder.down.%d.block.0.conv1.weight",
                                layout.vae_levels))
    layout.vae_levels++;
  return layout;
}

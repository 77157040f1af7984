/* Translation of diffusers module names to the LDM names of single-file checkpoints.
 *
 * UNet: diffusers numbers resnets and attentions inside each resolution level; LDM numbers the
 * blocks in one flat sequence: level i of the encoder is input_blocks (lpb+1)·i + j + 1, with its
 * downsampler at (lpb+1)·(i+1); level i of the decoder is output_blocks (lpb+1)·i + j, with its
 * upsampler after the resnet (and attention, when the level has one). VAE decoder levels are
 * numbered in reverse (diffusers up_blocks.0 is LDM up.{levels−1}).
 */
#include "gc-diffusers-names.h"

#include <stdio.h>
#include <string.h>

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
      return strncmp (key, "text_model.", 11) == 0
             && write_key (out, out_size, "cond_stage_model.transformer.%s", key);
    }
  return false;
}

#include "gc-vae.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc-layers.h"

#define VAE "first_stage_model."

enum { MAX_LEVELS = 8, MAX_BLOCKS = 8 };

typedef struct {
  int64_t c_in, c_out;
  gc_param norm1_w, norm1_b; /* [c_in] */
  gc_param conv1_w, conv1_b; /* [c_out, c_in, 3, 3] */
  gc_param norm2_w, norm2_b; /* [c_out] */
  gc_param conv2_w, conv2_b; /* [c_out, c_out, 3, 3] */
  bool has_shortcut;
  gc_param shortcut_w, shortcut_b; /* [c_out, c_in, 1, 1] */
} vae_resblock;

typedef struct {
  int64_t channels;
  gc_param norm_w, norm_b;              /* [c] */
  gc_param q_w, q_b, k_w, k_b, v_w, v_b; /* [c, c(, 1, 1)], [c] */
  gc_param out_w, out_b;                 /* [c, c(, 1, 1)], [c] */
} vae_attention;

typedef struct {
  int n_blocks;
  vae_resblock blocks[MAX_BLOCKS];
  bool has_sample;
  gc_param sample_w, sample_b; /* down- or upsampling conv [c, c, 3, 3] */
} vae_level;

typedef struct {
  gc_param conv_in_w, conv_in_b;   /* [c, c_in, 3, 3] */
  vae_resblock mid1, mid2;
  vae_attention mid_attn;
  int n_levels;
  vae_level levels[MAX_LEVELS];    /* LDM numbering: level 0 is the full resolution */
  gc_param norm_out_w, norm_out_b; /* [c] */
  gc_param conv_out_w, conv_out_b; /* [c_out, c, 3, 3] */
} vae_coder;

struct gc_vae {
  vae_coder encoder, decoder;
  gc_param quant_w, quant_b;           /* [2·z, 2·z, 1, 1] */
  gc_param post_quant_w, post_quant_b; /* [z, z, 1, 1] */
  int64_t latent_channels;
};

/* ---------------------------------------------------------------- loading */

static gc_status
bind_pair (gc_param *w, gc_param *b, const gc_checkpoint *c, const char *name, int ndim,
           const int64_t *shape, gc_error *err)
{
  gc_status s = gc_param_bindf (w, c, ndim, shape, err, "%s.weight", name);
  if (s == GC_OK)
    s = gc_param_bindf (b, c, 1, (int64_t[]) { w->weight.shape[0] }, err, "%s.bias", name);
  return s;
}

/* a pointwise layer stored as [c, c, 1, 1] (LDM) or [c, c] (converted from diffusers) */
static gc_status
bind_pointwise (gc_param *w, gc_param *b, const gc_checkpoint *c, const char *name, int64_t ch,
                gc_error *err)
{
  gc_status s = bind_pair (w, b, c, name, 4, (int64_t[]) { ch, ch, 1, 1 }, err);
  return s == GC_OK ? s : bind_pair (w, b, c, name, 2, (int64_t[]) { ch, ch }, err);
}

static gc_status
bind_resblock (vae_resblock *r, const gc_checkpoint *c, const char *base, gc_error *err)
{
  char name[200];
  gc_status s;
  snprintf (name, sizeof name, "%s.conv1", base);
  if ((s = bind_pair (&r->conv1_w, &r->conv1_b, c, name, 4, (int64_t[]) { -1, -1, 3, 3 }, err)))
    return s;
  r->c_out = r->conv1_w.weight.shape[0];
  r->c_in = r->conv1_w.weight.shape[1];
  snprintf (name, sizeof name, "%s.norm1", base);
  if ((s = bind_pair (&r->norm1_w, &r->norm1_b, c, name, 1, (int64_t[]) { r->c_in }, err)))
    return s;
  snprintf (name, sizeof name, "%s.norm2", base);
  if ((s = bind_pair (&r->norm2_w, &r->norm2_b, c, name, 1, (int64_t[]) { r->c_out }, err)))
    return s;
  snprintf (name, sizeof name, "%s.conv2", base);
  if ((s = bind_pair (&r->conv2_w, &r->conv2_b, c, name, 4,
                      (int64_t[]) { r->c_out, r->c_out, 3, 3 }, err)))
    return s;
  r->has_shortcut = r->c_in != r->c_out;
  snprintf (name, sizeof name, "%s.nin_shortcut", base);
  return r->has_shortcut ? bind_pair (&r->shortcut_w, &r->shortcut_b, c, name, 4,
                                      (int64_t[]) { r->c_out, r->c_in, 1, 1 }, err)
                         : GC_OK;
}

static gc_status
bind_attention (vae_attention *a, const gc_checkpoint *c, const char *base, int64_t ch,
                gc_error *err)
{
  char name[256];
  gc_status s;
  a->channels = ch;
  snprintf (name, sizeof name, "%s.norm", base);
  if ((s = bind_pair (&a->norm_w, &a->norm_b, c, name, 1, (int64_t[]) { ch }, err)))
    return s;
  static const char *parts[] = { "q", "k", "v", "proj_out" };
  gc_param *weights[] = { &a->q_w, &a->k_w, &a->v_w, &a->out_w };
  gc_param *biases[] = { &a->q_b, &a->k_b, &a->v_b, &a->out_b };
  for (int i = 0; i < 4; i++)
    {
      snprintf (name, sizeof name, "%s.%s", base, parts[i]);
      if ((s = bind_pointwise (weights[i], biases[i], c, name, ch, err)))
        return s;
    }
  return GC_OK;
}

/* encoder: down.i.block.j + down.i.downsample.conv; decoder: up.i.block.j + up.i.upsample.conv */
static gc_status
bind_levels (vae_coder *coder, const gc_checkpoint *c, const char *part, gc_error *err)
{
  bool encoder = strcmp (part, "encoder") == 0;
  const char *group = encoder ? "down" : "up", *sample = encoder ? "downsample" : "upsample";
  coder->n_levels = 0;
  while (coder->n_levels < MAX_LEVELS
         && gc_checkpoint_hasf (c, VAE "%s.%s.%d.block.0.conv1.weight", part, group,
                                coder->n_levels))
    coder->n_levels++;
  if (coder->n_levels == 0)
    return gc_error_set (err, GC_ERR_FORMAT, "the VAE %s has no resolution levels", part);
  for (int i = 0; i < coder->n_levels; i++)
    {
      vae_level *level = &coder->levels[i];
      char name[200];
      while (level->n_blocks < MAX_BLOCKS
             && gc_checkpoint_hasf (c, VAE "%s.%s.%d.block.%d.conv1.weight", part, group, i,
                                    level->n_blocks))
        {
          snprintf (name, sizeof name, VAE "%s.%s.%d.block.%d", part, group, i, level->n_blocks);
          gc_status s = bind_resblock (&level->blocks[level->n_blocks], c, name, err);
          if (s)
            return s;
          level->n_blocks++;
        }
      level->has_sample = gc_checkpoint_hasf (c, VAE "%s.%s.%d.%s.conv.weight", part, group, i,
                                              sample);
      snprintf (name, sizeof name, VAE "%s.%s.%d.%s.conv", part, group, i, sample);
      int64_t ch = level->blocks[level->n_blocks - 1].c_out;
      gc_status s = level->has_sample ? bind_pair (&level->sample_w, &level->sample_b, c, name, 4,
                                                   (int64_t[]) { ch, ch, 3, 3 }, err)
                                      : GC_OK;
      if (s)
        return s;
    }
  return GC_OK;
}

static gc_status
bind_coder (vae_coder *coder, const gc_checkpoint *c, const char *part, gc_error *err)
{
  char name[200];
  gc_status s;
  snprintf (name, sizeof name, VAE "%s.conv_in", part);
  if ((s = bind_pair (&coder->conv_in_w, &coder->conv_in_b, c, name, 4,
                      (int64_t[]) { -1, -1, 3, 3 }, err))
      || (s = bind_levels (coder, c, part, err)))
    return s;
  snprintf (name, sizeof name, VAE "%s.mid.block_1", part);
  if ((s = bind_resblock (&coder->mid1, c, name, err)))
    return s;
  snprintf (name, sizeof name, VAE "%s.mid.block_2", part);
  if ((s = bind_resblock (&coder->mid2, c, name, err)))
    return s;
  snprintf (name, sizeof name, VAE "%s.mid.attn_1", part);
  if ((s = bind_attention (&coder->mid_attn, c, name, coder->mid1.c_out, err)))
    return s;
  snprintf (name, sizeof name, VAE "%s.norm_out", part);
  if ((s = bind_pair (&coder->norm_out_w, &coder->norm_out_b, c, name, 1, (int64_t[]) { -1 }, err)))
    return s;
  snprintf (name, sizeof name, VAE "%s.conv_out", part);
  return bind_pair (&coder->conv_out_w, &coder->conv_out_b, c, name, 4,
                    (int64_t[]) { -1, coder->norm_out_w.weight.shape[0], 3, 3 }, err);
}

gc_status
gc_vae_load (gc_vae **out, const gc_checkpoint *c, gc_error *err)
{
  *out = NULL;
  gc_vae *v = calloc (1, sizeof *v);
  if (v == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory loading the VAE");
  gc_status s = bind_coder (&v->decoder, c, "decoder", err);
  if (s == GC_OK)
    s = bind_coder (&v->encoder, c, "encoder", err);
  if (s == GC_OK)
    {
      v->latent_channels = v->decoder.conv_in_w.weight.shape[1];
      s = bind_pointwise (&v->post_quant_w, &v->post_quant_b, c, VAE "post_quant_conv",
                          v->latent_channels, err);
    }
  if (s == GC_OK)
    s = bind_pointwise (&v->quant_w, &v->quant_b, c, VAE "quant_conv", 2 * v->latent_channels,
                        err);
  if (s != GC_OK)
    {
      free (v);
      return s;
    }
  *out = v;
  return GC_OK;
}

void
gc_vae_free (gc_vae *v)
{
  free (v);
}

int64_t
gc_vae_latent_channels (const gc_vae *v)
{
  return v->latent_channels;
}

int64_t
gc_vae_downscale (const gc_vae *v)
{
  int64_t scale = 1;
  for (int i = 0; i < v->decoder.n_levels; i++)
    if (v->decoder.levels[i].has_sample)
      scale *= 2;
  return scale;
}

/* ---------------------------------------------------------------- forward */

typedef struct {
  gc_arena *scratch;
  int64_t batch;
  gc_error *err;
} pass;

#define ALLOC(p, count) gc_arena_floats ((p)->scratch, (size_t) (count))

/* out[b, c_out, hw] = shortcut(x) + ResBlock(x); two temporaries, the second norm in place */
static gc_status
resblock_forward (const pass *p, const vae_resblock *rb, float *out, const float *x, int64_t h,
                  int64_t w)
{
  int64_t hw = h * w, b = p->batch;
  int64_t widest = rb->c_in > rb->c_out ? rb->c_in : rb->c_out;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *t1 = ALLOC (p, b * widest * hw);   /* [b, c_in, hw], later [b, c_out, hw] */
  float *t2 = ALLOC (p, b * rb->c_out * hw); /* [b, c_out, hw] */
  if (!t1 || !t2)
    return gc_layer_out_of_memory (p->err);
  gc_status s;
  if ((s = gc_layer_group_norm (p->scratch, t1, x, &rb->norm1_w, &rb->norm1_b, b, rb->c_in, hw,
                                1e-6f, true, p->err))
      || (s = gc_layer_conv (p->scratch, t2, t1, &rb->conv1_w, &rb->conv1_b, b, h, w, 1, 1, p->err))
      || (s = gc_layer_group_norm (p->scratch, t2, t2, &rb->norm2_w, &rb->norm2_b, b, rb->c_out, hw,
                                   1e-6f, true, p->err))
      || (s = gc_layer_conv (p->scratch, t1, t2, &rb->conv2_w, &rb->conv2_b, b, h, w, 1, 1, p->err)))
    return s;
  if (rb->has_shortcut)
    s = gc_layer_conv (p->scratch, out, x, &rb->shortcut_w, &rb->shortcut_b, b, h, w, 1, 0, p->err);
  else
    memcpy (out, x, sizeof (float) * (size_t) (b * rb->c_out * hw));
  if (s == GC_OK)
    gc_add (out, out, t1, b * rb->c_out * hw);
  gc_arena_reset (p->scratch, mark);
  return s;
}

/* x[b, c, hw] += attention block(x), one head over all positions */
static gc_status
attention_forward (const pass *p, const vae_attention *a, float *x, int64_t hw)
{
  int64_t c = a->channels, b = p->batch, rows = b * hw;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *normed = ALLOC (p, rows * c); /* [b, c, hw] */
  float *tokens = ALLOC (p, rows * c); /* [b·hw, c] */
  float *qkv = ALLOC (p, rows * 3 * c); /* [b·hw, 3c] */
  if (!normed || !tokens || !qkv)
    return gc_layer_out_of_memory (p->err);
  gc_status s = gc_layer_group_norm (p->scratch, normed, x, &a->norm_w, &a->norm_b, b, c, hw,
                                     1e-6f, false, p->err);
  if (s)
    return s;
  gc_nchw_to_tokens (tokens, normed, b, c, hw);
  if ((s = gc_layer_linear (p->scratch, qkv, 3 * c, tokens, &a->q_w, &a->q_b, rows, p->err))
      || (s = gc_layer_linear (p->scratch, qkv + c, 3 * c, tokens, &a->k_w, &a->k_b, rows, p->err))
      || (s = gc_layer_linear (p->scratch, qkv + 2 * c, 3 * c, tokens, &a->v_w, &a->v_b, rows,
                               p->err)))
    return s;
  gc_attention_shape shape = { b, hw, hw, 1, c, 3 * c, 3 * c, 3 * c, false };
  gc_attention_forward (p->scratch, normed, qkv, qkv + c, qkv + 2 * c, &shape);
  if ((s = gc_layer_linear (p->scratch, tokens, c, normed, &a->out_w, &a->out_b, rows, p->err)))
    return s;
  gc_tokens_to_nchw (normed, tokens, b, c, hw);
  gc_add (x, x, normed, rows * c);
  gc_arena_reset (p->scratch, mark);
  return GC_OK;
}

/* Two buffers the size of the largest activation; each stage reads one and writes the other. */
typedef struct {
  float *cur, *next;
  int64_t c, h, w;
} ping_pong;

static void
swap (ping_pong *pp, int64_t c, int64_t h, int64_t w)
{
  float *t = pp->cur;
  pp->cur = pp->next;
  pp->next = t;
  pp->c = c, pp->h = h, pp->w = w;
}

static gc_status
stage_resblock (const pass *p, ping_pong *pp, const vae_resblock *rb)
{
  gc_status s = resblock_forward (p, rb, pp->next, pp->cur, pp->h, pp->w);
  swap (pp, rb->c_out, pp->h, pp->w);
  return s;
}

static gc_status
stage_mid (const pass *p, ping_pong *pp, const vae_coder *coder)
{
  gc_status s = stage_resblock (p, pp, &coder->mid1);
  if (s == GC_OK)
    s = attention_forward (p, &coder->mid_attn, pp->cur, pp->h * pp->w);
  if (s == GC_OK)
    s = stage_resblock (p, pp, &coder->mid2);
  return s;
}

static gc_status
stage_out (const pass *p, ping_pong *pp, const vae_coder *coder, float *out)
{
  gc_status s = gc_layer_group_norm (p->scratch, pp->next, pp->cur, &coder->norm_out_w,
                                     &coder->norm_out_b, p->batch, pp->c, pp->h * pp->w, 1e-6f,
                                     true, p->err);
  if (s == GC_OK)
    s = gc_layer_conv (p->scratch, out, pp->next, &coder->conv_out_w, &coder->conv_out_b, p->batch,
                       pp->h, pp->w, 1, 1, p->err);
  return s;
}

/* Largest activation of a coder run, in floats per image. */
static int64_t
largest_activation (const vae_coder *coder, bool decoder, int64_t h, int64_t w, int64_t c_in)
{
  int64_t most = c_in * h * w;
  int64_t hh = h, ww = w;
  for (int k = 0; k < coder->n_levels; k++)
    {
      const vae_level *level = &coder->levels[decoder ? coder->n_levels - 1 - k : k];
      for (int j = 0; j < level->n_blocks; j++)
        {
          int64_t c = level->blocks[j].c_in > level->blocks[j].c_out ? level->blocks[j].c_in
                                                                     : level->blocks[j].c_out;
          most = c * hh * ww > most ? c * hh * ww : most;
        }
      if (level->has_sample)
        {
          int64_t c = level->blocks[level->n_blocks - 1].c_out;
          if (decoder)
            hh *= 2, ww *= 2;
          else
            hh /= 2, ww /= 2;
          most = c * hh * ww > most ? c * hh * ww : most;
        }
    }
  int64_t mid = coder->mid1.c_out * hh * ww;
  return mid > most ? mid : most;
}

static bool
cancelled (const volatile int *cancel)
{
  return cancel && *cancel;
}

gc_status
gc_vae_decode (gc_vae *v, gc_arena *scratch, float *image, const float *z, int64_t batch,
               int64_t h, int64_t w, const volatile int *cancel, gc_error *err)
{
  const vae_coder *d = &v->decoder;
  pass p = { scratch, batch, err };
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t per_image = largest_activation (d, true, h, w, v->latent_channels);
  ping_pong pp = { ALLOC (&p, batch * per_image), ALLOC (&p, batch * per_image), 0, h, w };
  if (!pp.cur || !pp.next)
    return gc_layer_out_of_memory (err);
  int64_t c = d->conv_in_w.weight.shape[0];
  gc_status s = gc_layer_conv (scratch, pp.next, z, &v->post_quant_w, &v->post_quant_b, batch, h,
                               w, 1, 0, err);
  if (s == GC_OK)
    s = gc_layer_conv (scratch, pp.cur, pp.next, &d->conv_in_w, &d->conv_in_b, batch, h, w, 1, 1,
                       err);
  pp.c = c;
  if (s == GC_OK)
    s = stage_mid (&p, &pp, d);
  for (int level = d->n_levels - 1; s == GC_OK && level >= 0; level--)
    {
      const vae_level *lv = &d->levels[level];
      for (int j = 0; s == GC_OK && j < lv->n_blocks; j++)
        s = cancelled (cancel) ? GC_ERR_CANCELLED : stage_resblock (&p, &pp, &lv->blocks[j]);
      if (s == GC_OK && lv->has_sample)
        {
          gc_upsample2x_forward (pp.next, pp.cur, batch, pp.c, pp.h, pp.w);
          swap (&pp, pp.c, 2 * pp.h, 2 * pp.w);
          s = gc_layer_conv (scratch, pp.next, pp.cur, &lv->sample_w, &lv->sample_b, batch, pp.h,
                             pp.w, 1, 1, err);
          swap (&pp, pp.c, pp.h, pp.w);
        }
    }
  if (s == GC_OK)
    s = stage_out (&p, &pp, d, image);
  if (s == GC_ERR_CANCELLED)
    gc_error_set (err, s, "cancelled");
  gc_arena_reset (scratch, mark);
  return s;
}

gc_status
gc_vae_encode (gc_vae *v, gc_arena *scratch, float *mean, float *logvar, const float *image,
               int64_t batch, int64_t h, int64_t w, gc_error *err)
{
  const vae_coder *e = &v->encoder;
  int64_t scale = gc_vae_downscale (v);
  if (h <= 0 || w <= 0 || h % scale || w % scale)
    return gc_error_set (err, GC_ERR_INVALID, "image size %lldx%lld is not a multiple of %lld",
                         (long long) w, (long long) h, (long long) scale);
  pass p = { scratch, batch, err };
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t per_image = largest_activation (e, false, h, w, e->conv_in_w.weight.shape[0]);
  int64_t zc = v->latent_channels, lh = h / scale, lw = w / scale;
  ping_pong pp = { ALLOC (&p, batch * per_image), ALLOC (&p, batch * per_image), 0, h, w };
  float *moments = ALLOC (&p, batch * 2 * zc * lh * lw); /* [b, 2z, lh, lw] */
  if (!pp.cur || !pp.next || !moments)
    return gc_layer_out_of_memory (err);
  gc_status s = gc_layer_conv (scratch, pp.cur, image, &e->conv_in_w, &e->conv_in_b, batch, h, w,
                               1, 1, err);
  pp.c = e->conv_in_w.weight.shape[0];
  for (int level = 0; s == GC_OK && level < e->n_levels; level++)
    {
      const vae_level *lv = &e->levels[level];
      for (int j = 0; s == GC_OK && j < lv->n_blocks; j++)
        s = stage_resblock (&p, &pp, &lv->blocks[j]);
      if (s == GC_OK && lv->has_sample)
        {
          /* LDM pads one row and column at the bottom and right, then convolves with stride 2 */
          gc_conv2d_shape shape = { batch, pp.c, pp.h, pp.w, pp.c, 3, 3, 2, 0, 1, 0, 1 };
          s = gc_layer_conv_padded (scratch, pp.next, pp.cur, &lv->sample_w, &lv->sample_b, shape,
                                    err);
          swap (&pp, pp.c, gc_conv2d_out_h (&shape), gc_conv2d_out_w (&shape));
        }
    }
  if (s == GC_OK)
    s = stage_mid (&p, &pp, e);
  if (s == GC_OK)
    s = stage_out (&p, &pp, e, pp.cur); /* stage_out uses next as its temporary */
  if (s == GC_OK)
    s = gc_layer_conv (scratch, moments, pp.cur, &v->quant_w, &v->quant_b, batch, lh, lw, 1, 0, err);
  for (int64_t i = 0; s == GC_OK && i < batch; i++)
    {
      int64_t plane = zc * lh * lw;
      memcpy (mean + i * plane, moments + i * 2 * plane, sizeof (float) * (size_t) plane);
      for (int64_t k = 0; k < plane; k++)
        {
          float lv = moments[i * 2 * plane + plane + k];
          logvar[i * plane + k] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
        }
    }
  gc_arena_reset (scratch, mark);
  return s;
}

static double
resblock_flops (const vae_resblock *rb, int64_t hw)
{
  double f = 2.0 * hw * 9 * (double) (rb->c_in * rb->c_out + rb->c_out * rb->c_out);
  return rb->has_shortcut ? f + 2.0 * hw * (double) (rb->c_in * rb->c_out) : f;
}

double
gc_vae_decode_flops (const gc_vae *v, int64_t h, int64_t w)
{
  const vae_coder *d = &v->decoder;
  int64_t c = d->conv_in_w.weight.shape[0], hh = h, ww = w;
  double total = 2.0 * hh * ww * 9 * (double) (c * v->latent_channels);
  total += resblock_flops (&d->mid1, hh * ww) + resblock_flops (&d->mid2, hh * ww);
  total += 2.0 * hh * ww * 4 * (double) (c * c) + 2.0 * 2 * (double) (hh * ww) * (double) (hh * ww) * c;
  for (int level = d->n_levels - 1; level >= 0; level--)
    {
      const vae_level *lv = &d->levels[level];
      for (int j = 0; j < lv->n_blocks; j++)
        total += resblock_flops (&lv->blocks[j], hh * ww);
      c = lv->blocks[lv->n_blocks - 1].c_out;
      if (lv->has_sample)
        {
          hh *= 2, ww *= 2;
          total += 2.0 * hh * ww * 9 * (double) (c * c);
        }
    }
  return total + 2.0 * hh * ww * 9 * (double) (c * d->conv_out_w.weight.shape[0]);
}

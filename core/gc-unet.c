#include "gc-unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-layers.h"

#define UNET "model.diffusion_model."

typedef struct {
  int64_t c_in, c_out;
  gc_param norm1_w, norm1_b; /* [c_in] */
  gc_param conv1_w, conv1_b; /* [c_out, c_in, 3, 3], [c_out] */
  gc_param emb_w, emb_b;     /* [c_out, time_dim], [c_out] */
  gc_param norm2_w, norm2_b; /* [c_out] */
  gc_param conv2_w, conv2_b; /* [c_out, c_out, 3, 3], [c_out] */
  bool has_skip;
  gc_param skip_w, skip_b;   /* [c_out, c_in, 1, 1], [c_out] when c_in ≠ c_out */
} resblock;

typedef struct {
  gc_param norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b; /* [c] */
  gc_param q1, k1, v1;       /* self-attention: [c, c] */
  gc_param out1_w, out1_b;   /* [c, c], [c] */
  gc_param q2;               /* cross-attention: [c, c] */
  gc_param k2, v2;           /* [c, context_dim] */
  gc_param out2_w, out2_b;   /* [c, c], [c] */
  gc_param ff1_w, ff1_b;     /* GEGLU: [2·f, c], [2·f] */
  gc_param ff2_w, ff2_b;     /* [c, f], [c] */
  int64_t ff_inner;          /* f */
} transformer_block;

typedef struct {
  int64_t channels, heads, depth;
  gc_param norm_w, norm_b;         /* [c] */
  gc_param proj_in_w, proj_in_b;   /* [c, c] or [c, c, 1, 1], [c] */
  gc_param proj_out_w, proj_out_b; /* [c, c] or [c, c, 1, 1], [c] */
  transformer_block *blocks;
} spatial_transformer;

/* One numbered block of the LDM sequence. */
typedef struct {
  bool has_res, has_attn, has_down, has_up;
  resblock res;
  spatial_transformer attn;
  gc_param sample_w, sample_b; /* down: [c, c, 3, 3] stride 2; up: [c, c, 3, 3] after 2× */
} unet_block;

struct gc_unet {
  gc_unet_config config;
  int64_t fixed_heads;                 /* 8 for SD 1.x; 0 = channels / 64 */
  gc_param time1_w, time1_b;           /* [time_dim, model_channels], [time_dim] */
  gc_param time2_w, time2_b;           /* [time_dim, time_dim], [time_dim] */
  gc_param label1_w, label1_b;         /* SDXL: [time_dim, adm_dim] */
  gc_param label2_w, label2_b;         /* SDXL: [time_dim, time_dim] */
  gc_param conv_in_w, conv_in_b;       /* [model_channels, in_channels, 3, 3] */
  unet_block *inputs;                  /* input_blocks.1 … */
  int n_inputs;
  resblock mid_res1, mid_res2;
  bool mid_has_attn;
  spatial_transformer mid_attn;
  unet_block *outputs;                 /* output_blocks.0 … */
  int n_outputs;
  gc_param out_norm_w, out_norm_b;     /* [model_channels] */
  gc_param out_conv_w, out_conv_b;     /* [out_channels, model_channels, 3, 3] */
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

static gc_status
bind_resblock (resblock *r, const gc_checkpoint *c, const char *base, int64_t time_dim,
               gc_error *err)
{
  char name[256];
  gc_status s;
  snprintf (name, sizeof name, "%s.in_layers.2", base);
  if ((s = bind_pair (&r->conv1_w, &r->conv1_b, c, name, 4, (int64_t[]) { -1, -1, 3, 3 }, err)))
    return s;
  r->c_out = r->conv1_w.weight.shape[0];
  r->c_in = r->conv1_w.weight.shape[1];
  const int64_t in_shape[] = { r->c_in }, out_shape[] = { r->c_out };
  snprintf (name, sizeof name, "%s.in_layers.0", base);
  if ((s = bind_pair (&r->norm1_w, &r->norm1_b, c, name, 1, in_shape, err)))
    return s;
  snprintf (name, sizeof name, "%s.emb_layers.1", base);
  if ((s = bind_pair (&r->emb_w, &r->emb_b, c, name, 2, (int64_t[]) { r->c_out, time_dim }, err)))
    return s;
  snprintf (name, sizeof name, "%s.out_layers.0", base);
  if ((s = bind_pair (&r->norm2_w, &r->norm2_b, c, name, 1, out_shape, err)))
    return s;
  snprintf (name, sizeof name, "%s.out_layers.3", base);
  if ((s = bind_pair (&r->conv2_w, &r->conv2_b, c, name, 4,
                      (int64_t[]) { r->c_out, r->c_out, 3, 3 }, err)))
    return s;
  r->has_skip = gc_checkpoint_hasf (c, "%s.skip_connection.weight", base);
  if (!r->has_skip && r->c_in != r->c_out)
    return gc_error_set (err, GC_ERR_FORMAT, "'%s' changes channels but has no skip_connection",
                         base);
  snprintf (name, sizeof name, "%s.skip_connection", base);
  if (r->has_skip
      && (s = bind_pair (&r->skip_w, &r->skip_b, c, name, 4, (int64_t[]) { r->c_out, r->c_in, 1, 1 },
                         err)))
    return s;
  return GC_OK;
}

static gc_status
bind_projection (gc_param *w, gc_param *b, const gc_checkpoint *c, const char *name,
                 int64_t channels, gc_error *err)
{
  /* SD 1.x stores 1×1 convolutions, SD 2.x and SDXL linear layers: the same numbers either way */
  gc_status s = bind_pair (w, b, c, name, 4, (int64_t[]) { channels, channels, 1, 1 }, err);
  if (s != GC_OK)
    s = bind_pair (w, b, c, name, 2, (int64_t[]) { channels, channels }, err);
  return s;
}

static const char *
join_name (char *out, size_t size, const char *base, const char *part)
{
  size_t n = strlen (base);
  if (n + 1 + strlen (part) >= size)
    n = 0; /* too long for any real checkpoint: the lookup fails with this name */
  memcpy (out, base, n);
  out[n] = '.';
  strcpy (out + n + 1, part);
  return out;
}

static gc_status
bind_transformer_block (transformer_block *t, const gc_checkpoint *c, const char *base,
                        int64_t ch, int64_t context_dim, gc_error *err)
{
  char name[320];
  gc_status s;
  const int64_t square[] = { ch, ch }, cross[] = { ch, context_dim }, vec[] = { ch };
#define NAME(part) join_name (name, sizeof name, base, part)
  if ((s = bind_pair (&t->norm1_w, &t->norm1_b, c, NAME ("norm1"), 1, vec, err))
      || (s = bind_pair (&t->norm2_w, &t->norm2_b, c, NAME ("norm2"), 1, vec, err))
      || (s = bind_pair (&t->norm3_w, &t->norm3_b, c, NAME ("norm3"), 1, vec, err))
      || (s = gc_param_bind (&t->q1, c, NAME ("attn1.to_q.weight"), 2, square, err))
      || (s = gc_param_bind (&t->k1, c, NAME ("attn1.to_k.weight"), 2, square, err))
      || (s = gc_param_bind (&t->v1, c, NAME ("attn1.to_v.weight"), 2, square, err))
      || (s = bind_pair (&t->out1_w, &t->out1_b, c, NAME ("attn1.to_out.0"), 2, square, err))
      || (s = gc_param_bind (&t->q2, c, NAME ("attn2.to_q.weight"), 2, square, err))
      || (s = gc_param_bind (&t->k2, c, NAME ("attn2.to_k.weight"), 2, cross, err))
      || (s = gc_param_bind (&t->v2, c, NAME ("attn2.to_v.weight"), 2, cross, err))
      || (s = bind_pair (&t->out2_w, &t->out2_b, c, NAME ("attn2.to_out.0"), 2, square, err))
      || (s = bind_pair (&t->ff1_w, &t->ff1_b, c, NAME ("ff.net.0.proj"), 2,
                         (int64_t[]) { -1, ch }, err)))
    return s;
  t->ff_inner = t->ff1_w.weight.shape[0] / 2;
  return bind_pair (&t->ff2_w, &t->ff2_b, c, NAME ("ff.net.2"), 2, (int64_t[]) { ch, t->ff_inner },
                    err);
#undef NAME
}

static gc_status
bind_transformer (spatial_transformer *st, const gc_unet *u, const gc_checkpoint *c,
                  const char *base, int64_t ch, gc_error *err)
{
  char name[256];
  gc_status s;
  st->channels = ch;
  st->heads = u->fixed_heads ? u->fixed_heads : (ch / 64 > 0 ? ch / 64 : 1);
  snprintf (name, sizeof name, "%s.norm", base);
  if ((s = bind_pair (&st->norm_w, &st->norm_b, c, name, 1, (int64_t[]) { ch }, err)))
    return s;
  snprintf (name, sizeof name, "%s.proj_in", base);
  if ((s = bind_projection (&st->proj_in_w, &st->proj_in_b, c, name, ch, err)))
    return s;
  snprintf (name, sizeof name, "%s.proj_out", base);
  if ((s = bind_projection (&st->proj_out_w, &st->proj_out_b, c, name, ch, err)))
    return s;
  st->depth = 0;
  while (gc_checkpoint_hasf (c, "%s.transformer_blocks.%lld.norm1.weight", base,
                             (long long) st->depth))
    st->depth++;
  st->blocks = calloc ((size_t) (st->depth ? st->depth : 1), sizeof *st->blocks);
  if (st->blocks == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory loading the UNet");
  for (int64_t i = 0; i < st->depth; i++)
    {
      snprintf (name, sizeof name, "%s.transformer_blocks.%lld", base, (long long) i);
      if ((s = bind_transformer_block (&st->blocks[i], c, name, ch, u->config.context_dim, err)))
        return s;
    }
  return GC_OK;
}

static gc_status
bind_input_block (unet_block *b, gc_unet *u, const gc_checkpoint *c, int index, int64_t *channels,
                  gc_error *err)
{
  char base[128], name[160];
  snprintf (base, sizeof base, UNET "input_blocks.%d", index);
  if (gc_checkpoint_hasf (c, "%s.0.op.weight", base))
    {
      b->has_down = true;
      snprintf (name, sizeof name, "%s.0.op", base);
      u->config.downsamplings++;
      return bind_pair (&b->sample_w, &b->sample_b, c, name, 4,
                        (int64_t[]) { *channels, *channels, 3, 3 }, err);
    }
  b->has_res = true;
  snprintf (name, sizeof name, "%s.0", base);
  gc_status s = bind_resblock (&b->res, c, name, u->config.time_dim, err);
  if (s != GC_OK)
    return s;
  *channels = b->res.c_out;
  b->has_attn = gc_checkpoint_hasf (c, "%s.1.norm.weight", base);
  snprintf (name, sizeof name, "%s.1", base);
  return b->has_attn ? bind_transformer (&b->attn, u, c, name, *channels, err) : GC_OK;
}

static gc_status
bind_output_block (unet_block *b, gc_unet *u, const gc_checkpoint *c, int index, gc_error *err)
{
  char base[128], name[160];
  snprintf (base, sizeof base, UNET "output_blocks.%d", index);
  b->has_res = true;
  snprintf (name, sizeof name, "%s.0", base);
  gc_status s = bind_resblock (&b->res, c, name, u->config.time_dim, err);
  if (s != GC_OK)
    return s;
  int64_t ch = b->res.c_out;
  int next = 1;
  if ((b->has_attn = gc_checkpoint_hasf (c, "%s.1.norm.weight", base)))
    {
      snprintf (name, sizeof name, "%s.1", base);
      if ((s = bind_transformer (&b->attn, u, c, name, ch, err)))
        return s;
      next = 2;
    }
  if ((b->has_up = gc_checkpoint_hasf (c, "%s.%d.conv.weight", base, next)))
    {
      snprintf (name, sizeof name, "%s.%d.conv", base, next);
      return bind_pair (&b->sample_w, &b->sample_b, c, name, 4, (int64_t[]) { ch, ch, 3, 3 }, err);
    }
  return GC_OK;
}

/* Number of consecutive blocks kind.first, kind.first+1, … */
static int
count_blocks (const gc_checkpoint *c, const char *kind, int first)
{
  int n = first;
  while (gc_checkpoint_hasf (c, UNET "%s.%d.0.in_layers.0.weight", kind, n)
         || gc_checkpoint_hasf (c, UNET "%s.%d.0.op.weight", kind, n))
    n++;
  return n - first;
}

static gc_status
bind_stem (gc_unet *u, const gc_checkpoint *c, gc_error *err)
{
  gc_unet_config *cfg = &u->config;
  gc_status s;
  if ((s = bind_pair (&u->conv_in_w, &u->conv_in_b, c, UNET "input_blocks.0.0", 4,
                      (int64_t[]) { -1, -1, 3, 3 }, err)))
    return s;
  cfg->model_channels = u->conv_in_w.weight.shape[0];
  cfg->in_channels = u->conv_in_w.weight.shape[1];
  if ((s = bind_pair (&u->time1_w, &u->time1_b, c, UNET "time_embed.0", 2,
                      (int64_t[]) { -1, cfg->model_channels }, err)))
    return s;
  cfg->time_dim = u->time1_w.weight.shape[0];
  if ((s = bind_pair (&u->time2_w, &u->time2_b, c, UNET "time_embed.2", 2,
                      (int64_t[]) { cfg->time_dim, cfg->time_dim }, err)))
    return s;
  if (gc_checkpoint_find (c, UNET "label_emb.0.0.weight"))
    {
      if ((s = bind_pair (&u->label1_w, &u->label1_b, c, UNET "label_emb.0.0", 2,
                          (int64_t[]) { cfg->time_dim, -1 }, err))
          || (s = bind_pair (&u->label2_w, &u->label2_b, c, UNET "label_emb.0.2", 2,
                             (int64_t[]) { cfg->time_dim, cfg->time_dim }, err)))
        return s;
      cfg->adm_dim = u->label1_w.weight.shape[1];
    }
  if ((s = bind_pair (&u->out_norm_w, &u->out_norm_b, c, UNET "out.0", 1,
                      (int64_t[]) { cfg->model_channels }, err))
      || (s = bind_pair (&u->out_conv_w, &u->out_conv_b, c, UNET "out.2", 4,
                         (int64_t[]) { -1, cfg->model_channels, 3, 3 }, err)))
    return s;
  cfg->out_channels = u->out_conv_w.weight.shape[0];
  return GC_OK;
}

static int64_t
find_context_dim (const gc_checkpoint *c)
{
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      size_t len = strlen (key);
      const char *suffix = ".attn2.to_k.weight";
      size_t slen = strlen (suffix);
      if (strncmp (key, UNET, strlen (UNET)) == 0 && len > slen
          && strcmp (key + len - slen, suffix) == 0)
        {
          const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
          return t->ndim == 2 ? t->shape[1] : 0;
        }
    }
  return 0;
}

gc_status
gc_unet_load (gc_unet **out, const gc_checkpoint *c, gc_error *err)
{
  *out = NULL;
  gc_unet *u = calloc (1, sizeof *u);
  if (u == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory loading the UNet");
  u->fixed_heads = gc_checkpoint_family (c) == GC_FAMILY_SD1 ? 8 : 0;
  u->config.context_dim = find_context_dim (c);
  gc_status s = bind_stem (u, c, err);
  if (s == GC_OK && u->config.context_dim == 0)
    s = gc_error_set (err, GC_ERR_FORMAT, "the UNet has no cross-attention (attn2.to_k) weights");
  u->n_inputs = count_blocks (c, "input_blocks", 1); /* block 0 is conv_in */
  u->n_outputs = count_blocks (c, "output_blocks", 0);
  if (s == GC_OK && (u->n_inputs < 1 || u->n_outputs != u->n_inputs + 1))
    s = gc_error_set (err, GC_ERR_FORMAT,
                      "the UNet has %d input and %d output blocks, which do not pair up",
                      u->n_inputs + 1, u->n_outputs);
  if (s == GC_OK)
    {
      u->inputs = calloc ((size_t) u->n_inputs, sizeof *u->inputs);
      u->outputs = calloc ((size_t) u->n_outputs, sizeof *u->outputs);
      if (u->inputs == NULL || u->outputs == NULL)
        s = gc_error_set (err, GC_ERR_NOMEM, "out of memory loading the UNet");
    }
  int64_t channels = u->config.model_channels;
  for (int i = 0; s == GC_OK && i < u->n_inputs; i++)
    s = bind_input_block (&u->inputs[i], u, c, i + 1, &channels, err);
  if (s == GC_OK)
    s = bind_resblock (&u->mid_res1, c, UNET "middle_block.0", u->config.time_dim, err);
  if (s == GC_OK && (u->mid_has_attn = gc_checkpoint_find (c, UNET "middle_block.1.norm.weight")))
    s = bind_transformer (&u->mid_attn, u, c, UNET "middle_block.1", u->mid_res1.c_out, err);
  if (s == GC_OK)
    s = bind_resblock (&u->mid_res2, c, u->mid_has_attn ? UNET "middle_block.2" : UNET "middle_block.1",
                       u->config.time_dim, err);
  for (int i = 0; s == GC_OK && i < u->n_outputs; i++)
    s = bind_output_block (&u->outputs[i], u, c, i, err);
  if (s != GC_OK)
    {
      gc_unet_free (u);
      return s;
    }
  *out = u;
  return GC_OK;
}

static void
free_transformer (spatial_transformer *st)
{
  free (st->blocks);
}

void
gc_unet_free (gc_unet *u)
{
  if (u == NULL)
    return;
  for (int i = 0; u->inputs && i < u->n_inputs; i++)
    free_transformer (&u->inputs[i].attn);
  for (int i = 0; u->outputs && i < u->n_outputs; i++)
    free_transformer (&u->outputs[i].attn);
  free_transformer (&u->mid_attn);
  free (u->inputs);
  free (u->outputs);
  free (u);
}

const gc_unet_config *
gc_unet_get_config (const gc_unet *u)
{
  return &u->config;
}

/* ---------------------------------------------------------------- forward */

/* What the backward of each block needs, recorded (in scratch) when its forward runs with a
 * tape; a NULL tape is inference, which keeps nothing. Images are [b, c, hw], token rows
 * [rows = b·hw, c]. */
typedef struct {
  const float *x;       /* [b, c_in, hw] the input */
  float *a1, *t1;       /* [b, c_in, hw] GroupNorm(x), SiLU of it (conv1's input) */
  float *t2, *a2, *t3;  /* [b, c_out, hw] conv1 + time embedding, its GroupNorm, SiLU */
  float *mr1, *mr2;     /* [b, 32, 2] the norms' statistics */
} resblock_tape;

typedef struct {
  float *t0, *t1, *t2;    /* [rows, c] the residual stream entering each sub-block */
  float *n1, *n2, *n3;    /* [rows, c] its layer norms */
  float *mr1, *mr2, *mr3; /* [rows, 2] */
  float *qkv;             /* [rows, 3c] self-attention q | k | v */
  float *q2;              /* [rows, c] cross-attention queries */
  float *kv;              /* [b·tokens, 2c] cross-attention k | v of the context */
  float *att1, *att2;     /* [rows, c] attention outputs, before to_out */
  float *ff;              /* [rows, 2f] GEGLU input */
  float *gated;           /* [rows, f] GEGLU output */
} transformer_block_tape;

typedef struct {
  float *x;                        /* [b, c, hw] the input (a copy: the forward runs in place) */
  float *mr;                       /* [b, 32, 2] */
  float *tokens;                   /* [rows, c] GroupNorm(x) as token rows: proj_in's input */
  float *t;                        /* [rows, c] the stream after the blocks: proj_out's input */
  transformer_block_tape *blocks;  /* [depth] */
} transformer_tape;

/* A numbered block of the LDM sequence, or the middle block (res, attn, res2). */
typedef struct {
  resblock_tape res, res2;
  transformer_tape attn;
  float *up; /* [b, c, 2h, 2w] the upsampled map, the up-conv's input */
} block_tape;

typedef struct {
  float *sinusoid;      /* [b, model_channels] */
  float *h1, *h1s;      /* [b, time_dim] time_embed.0 output and its SiLU */
  float *l1, *l1s;      /* [b, time_dim] SDXL: label_emb.0.0 output and its SiLU */
  float *emb;           /* [b, time_dim] the embedding before its SiLU */
} time_tape;

typedef struct {
  const gc_unet *u;
  gc_arena *scratch;
  int64_t batch;
  const gc_unet_cond *cond;
  const float *emb_silu; /* [batch, time_dim]: SiLU of the time embedding, shared by ResBlocks */
  gc_error *err;
  /* backward only */
  const gc_grad_sink *grads;
  float *d_emb_silu;     /* [batch, time_dim] accumulated by every ResBlock */
  float *d_context;      /* [batch, tokens, context_dim] or NULL when not wanted */
} pass;

#define ALLOC(p, count) gc_arena_floats ((p)->scratch, (size_t) (count))

/* Zeroed scratch, for gradients that are accumulated. */
static float *
zalloc (const pass *p, int64_t count)
{
  float *f = ALLOC (p, count);
  if (f)
    memset (f, 0, sizeof (float) * (size_t) count);
  return f;
}

/* Allocates count floats per pointer given (NULL-terminated), all or none. */
static bool
alloc_all (const pass *p, int64_t count, float **first, ...)
{
  va_list args;
  va_start (args, first);
  bool ok = true;
  for (float **f = first; f; f = va_arg (args, float **))
    ok = ok && (*f = ALLOC (p, count)) != NULL;
  va_end (args);
  return ok;
}

/* GroupNorm + SiLU: fused for inference; with pre and mean_rstd, kept for the backward. */
static gc_status
norm_silu (const pass *p, float *out, float *pre, float *mean_rstd, const float *x,
           const gc_param *w, const gc_param *b, int64_t c, int64_t hw)
{
  if (pre == NULL)
    return gc_layer_group_norm (p->scratch, out, x, w, b, p->batch, c, hw, 1e-5f, true, p->err);
  gc_status s = gc_layer_group_norm_keep (p->scratch, pre, mean_rstd, x, w, b, p->batch, c, hw,
                                          1e-5f, p->err);
  if (s == GC_OK)
    gc_activation_forward (out, pre, p->batch * c * hw, GC_ACT_SILU);
  return s;
}

/* out[b, c_out, h, w] = x + ResBlock(x) */
static gc_status
resblock_forward (const pass *p, const resblock *rb, float *out, const float *x, int64_t h,
                  int64_t w, resblock_tape *tape)
{
  int64_t hw = h * w, b = p->batch;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *t1 = ALLOC (p, b * rb->c_in * hw);  /* [b, c_in, hw] */
  float *t2 = ALLOC (p, b * rb->c_out * hw); /* [b, c_out, hw] */
  float *t3 = ALLOC (p, b * rb->c_out * hw); /* [b, c_out, hw] */
  float *e = ALLOC (p, b * rb->c_out);       /* [b, c_out] */
  /* the skip path's result goes to t2 in inference, which the tape keeps */
  float *skip = tape && rb->has_skip ? ALLOC (p, b * rb->c_out * hw) : t2;
  if (!t1 || !t2 || !t3 || !e || !skip)
    return gc_layer_out_of_memory (p->err);
  if (tape)
    {
      *tape = (resblock_tape) { x, NULL, t1, t2, NULL, t3, NULL, NULL };
      if (!alloc_all (p, b * rb->c_in * hw, &tape->a1, NULL)
          || !alloc_all (p, b * rb->c_out * hw, &tape->a2, NULL)
          || !alloc_all (p, b * 32 * 2, &tape->mr1, &tape->mr2, NULL))
        return gc_layer_out_of_memory (p->err);
    }
  gc_status s;
  if ((s = norm_silu (p, t1, tape ? tape->a1 : NULL, tape ? tape->mr1 : NULL, x, &rb->norm1_w,
                      &rb->norm1_b, rb->c_in, hw))
      || (s = gc_layer_conv (p->scratch, t2, t1, &rb->conv1_w, &rb->conv1_b, b, h, w, 1, 1, p->err))
      || (s = gc_layer_linear (p->scratch, e, rb->c_out, p->emb_silu, &rb->emb_w, &rb->emb_b, b,
                               p->err)))
    return s;
  gc_add_channel_bias (t2, t2, e, b, rb->c_out, hw);
  if ((s = norm_silu (p, t3, tape ? tape->a2 : NULL, tape ? tape->mr2 : NULL, t2, &rb->norm2_w,
                      &rb->norm2_b, rb->c_out, hw))
      || (s = gc_layer_conv (p->scratch, out, t3, &rb->conv2_w, &rb->conv2_b, b, h, w, 1, 1, p->err)))
    return s;
  if (rb->has_skip)
    {
      if ((s = gc_layer_conv (p->scratch, skip, x, &rb->skip_w, &rb->skip_b, b, h, w, 1, 0, p->err)))
        return s;
      gc_add (out, out, skip, b * rb->c_out * hw);
    }
  else
    gc_add (out, out, x, b * rb->c_out * hw);
  if (tape == NULL)
    gc_arena_reset (p->scratch, mark);
  return GC_OK;
}

/* d_x += dL/dx of out = x + ResBlock(x), given d_out = dL/d out; the time embedding's gradient
 * goes to p->d_emb_silu. */
static gc_status
resblock_backward (const pass *p, const resblock *rb, float *d_x, const float *d_out,
                   const resblock_tape *tape, int64_t h, int64_t w)
{
  int64_t hw = h * w, b = p->batch, in = b * rb->c_in * hw, out = b * rb->c_out * hw;
  int64_t td = p->u->config.time_dim;
  gc_arena *sc = p->scratch;
  const gc_grad_sink *g = p->grads;
  gc_error *err = p->err;
  gc_arena_mark_t mark = gc_arena_mark (sc);
  float *d_t3 = zalloc (p, out), *d_a2 = zalloc (p, out), *d_t2 = zalloc (p, out);
  float *d_e = zalloc (p, b * rb->c_out), *d_t1 = zalloc (p, in), *d_a1 = zalloc (p, in);
  if (!d_t3 || !d_a2 || !d_t2 || !d_e || !d_t1 || !d_a1)
    return gc_layer_out_of_memory (err);
  gc_status s = GC_OK;
  if (rb->has_skip)
    s = gc_layer_conv_backward (sc, d_x, d_out, tape->x, &rb->skip_w, &rb->skip_b, b, h, w, 1, 0,
                                g, err);
  else
    gc_accumulate (d_x, d_out, out);
  if (s
      || (s = gc_layer_conv_backward (sc, d_t3, d_out, tape->t3, &rb->conv2_w, &rb->conv2_b, b, h,
                                      w, 1, 1, g, err)))
    return s;
  gc_activation_backward (d_a2, d_t3, tape->a2, out, GC_ACT_SILU);
  if ((s = gc_layer_group_norm_backward (sc, d_t2, d_a2, tape->t2, tape->mr2, &rb->norm2_w,
                                         &rb->norm2_b, b, rb->c_out, hw, g, err)))
    return s;
  /* t2 = conv1(t1) + e[b, c_out] broadcast over the image */
  gc_layer_channel_sums (d_e, d_t2, b * rb->c_out, hw);
  if ((s = gc_layer_linear_backward (sc, p->d_emb_silu, td, d_e, rb->c_out, p->emb_silu, td,
                                     &rb->emb_w, &rb->emb_b, b, g, err))
      || (s = gc_layer_conv_backward (sc, d_t1, d_t2, tape->t1, &rb->conv1_w, &rb->conv1_b, b, h,
                                      w, 1, 1, g, err)))
    return s;
  gc_activation_backward (d_a1, d_t1, tape->a1, in, GC_ACT_SILU);
  s = gc_layer_group_norm_backward (sc, d_x, d_a1, tape->x, tape->mr1, &rb->norm1_w, &rb->norm1_b,
                                    b, rb->c_in, hw, g, err);
  gc_arena_reset (sc, mark);
  return s;
}

/* Layer norm for inference, or kept for the backward. */
static gc_status
layer_norm (const pass *p, float *out, float *mean_rstd, const float *x, const gc_param *w,
            const gc_param *b, int64_t rows, int64_t c)
{
  if (mean_rstd)
    return gc_layer_layer_norm_keep (p->scratch, out, mean_rstd, x, w, b, rows, c, 1e-5f, p->err);
  return gc_layer_layer_norm (p->scratch, out, x, w, b, rows, c, 1e-5f, p->err);
}

/* t[b·hw, c] += BasicTransformerBlock(t) */
static gc_status
transformer_block_forward (const pass *p, const spatial_transformer *st,
                           const transformer_block *tb, float *t, int64_t hw,
                           transformer_block_tape *tape)
{
  int64_t c = st->channels, b = p->batch, rows = b * hw, f = tb->ff_inner;
  int64_t tokens = p->cond->tokens, dh = c / st->heads;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *n = ALLOC (p, rows * c);          /* [rows, c] normed */
  float *qkv = ALLOC (p, rows * 3 * c);    /* [rows, 3c] */
  float *att = ALLOC (p, rows * c);        /* [rows, c] */
  float *o = ALLOC (p, rows * c);          /* [rows, c] */
  float *kv = ALLOC (p, b * tokens * 2 * c); /* [b·tokens, 2c] */
  float *ff = ALLOC (p, rows * 2 * f);     /* [rows, 2f] */
  float *gated = ALLOC (p, rows * f);      /* [rows, f] */
  if (!n || !qkv || !att || !o || !kv || !ff || !gated)
    return gc_layer_out_of_memory (p->err);
  /* inference reuses n, att and qkv between the sub-blocks; the tape keeps each */
  float *n2 = n, *n3 = n, *q2 = qkv, *att2 = att;
  if (tape)
    {
      *tape = (transformer_block_tape) { .n1 = n, .qkv = qkv, .kv = kv, .att1 = att, .ff = ff,
                                         .gated = gated };
      if (!alloc_all (p, rows * c, &tape->t0, &tape->t1, &tape->t2, &tape->n2, &tape->n3,
                      &tape->q2, &tape->att2, NULL)
          || !alloc_all (p, rows * 2, &tape->mr1, &tape->mr2, &tape->mr3, NULL))
        return gc_layer_out_of_memory (p->err);
      n2 = tape->n2, n3 = tape->n3, q2 = tape->q2, att2 = tape->att2;
      memcpy (tape->t0, t, sizeof (float) * (size_t) (rows * c));
    }
  gc_arena *sc = p->scratch;
  gc_error *err = p->err;
  gc_status s;
  /* self-attention */
  if ((s = layer_norm (p, n, tape ? tape->mr1 : NULL, t, &tb->norm1_w, &tb->norm1_b, rows, c))
      || (s = gc_layer_linear (sc, qkv, 3 * c, n, &tb->q1, NULL, rows, err))
      || (s = gc_layer_linear (sc, qkv + c, 3 * c, n, &tb->k1, NULL, rows, err))
      || (s = gc_layer_linear (sc, qkv + 2 * c, 3 * c, n, &tb->v1, NULL, rows, err)))
    return s;
  gc_attention_shape self = { b, hw, hw, st->heads, dh, 3 * c, 3 * c, 3 * c, false };
  gc_attention_forward (sc, att, qkv, qkv + c, qkv + 2 * c, &self);
  if ((s = gc_layer_linear (sc, o, c, att, &tb->out1_w, &tb->out1_b, rows, err)))
    return s;
  gc_add (t, t, o, rows * c);
  /* cross-attention on the text context */
  if (tape)
    memcpy (tape->t1, t, sizeof (float) * (size_t) (rows * c));
  if ((s = layer_norm (p, n2, tape ? tape->mr2 : NULL, t, &tb->norm2_w, &tb->norm2_b, rows, c))
      || (s = gc_layer_linear (sc, q2, c, n2, &tb->q2, NULL, rows, err))
      || (s = gc_layer_linear (sc, kv, 2 * c, p->cond->context, &tb->k2, NULL, b * tokens, err))
      || (s = gc_layer_linear (sc, kv + c, 2 * c, p->cond->context, &tb->v2, NULL, b * tokens, err)))
    return s;
  gc_attention_shape cross = { b, hw, tokens, st->heads, dh, c, 2 * c, 2 * c, false };
  gc_attention_forward (sc, att2, q2, kv, kv + c, &cross);
  if ((s = gc_layer_linear (sc, o, c, att2, &tb->out2_w, &tb->out2_b, rows, err)))
    return s;
  gc_add (t, t, o, rows * c);
  /* GEGLU feed-forward */
  if (tape)
    memcpy (tape->t2, t, sizeof (float) * (size_t) (rows * c));
  if ((s = layer_norm (p, n3, tape ? tape->mr3 : NULL, t, &tb->norm3_w, &tb->norm3_b, rows, c))
      || (s = gc_layer_linear (sc, ff, 2 * f, n3, &tb->ff1_w, &tb->ff1_b, rows, err)))
    return s;
  gc_geglu_forward (gated, ff, rows, f);
  if ((s = gc_layer_linear (sc, o, c, gated, &tb->ff2_w, &tb->ff2_b, rows, err)))
    return s;
  gc_add (t, t, o, rows * c);
  if (tape == NULL)
    gc_arena_reset (sc, mark);
  return GC_OK;
}

/* d_t[rows, c] holds dL/d(the stream after the block) on entry, dL/d(the stream before it) on
 * return. Each residual sub-block adds its input gradient to the one passing through. */
static gc_status
transformer_block_backward (const pass *p, const spatial_transformer *st,
                            const transformer_block *tb, float *d_t,
                            const transformer_block_tape *tp, int64_t hw)
{
  int64_t c = st->channels, b = p->batch, rows = b * hw, f = tb->ff_inner;
  int64_t tokens = p->cond->tokens, dh = c / st->heads, cd = p->u->config.context_dim;
  gc_arena *sc = p->scratch;
  const gc_grad_sink *g = p->grads;
  gc_error *err = p->err;
  gc_arena_mark_t mark = gc_arena_mark (sc);
  float *d_gated = zalloc (p, rows * f), *d_ff = zalloc (p, rows * 2 * f);
  float *d_n = ALLOC (p, rows * c), *d_att = ALLOC (p, rows * c), *d_qkv = ALLOC (p, rows * 3 * c);
  float *d_kv = zalloc (p, b * tokens * 2 * c);
  if (!d_gated || !d_ff || !d_n || !d_att || !d_qkv || !d_kv)
    return gc_layer_out_of_memory (err);
  size_t row_bytes = sizeof (float) * (size_t) (rows * c);
  const float *context = p->cond->context;
  gc_status s;
  /* feed-forward: t3 = t2 + ff2(geglu(ff1(LN3(t2)))) */
  memset (d_n, 0, row_bytes);
  if ((s = gc_layer_linear_backward (sc, d_gated, f, d_t, c, tp->gated, f, &tb->ff2_w, &tb->ff2_b,
                                     rows, g, err)))
    return s;
  gc_geglu_backward (d_ff, d_gated, tp->ff, rows, f);
  if ((s = gc_layer_linear_backward (sc, d_n, c, d_ff, 2 * f, tp->n3, c, &tb->ff1_w, &tb->ff1_b,
                                     rows, g, err))
      || (s = gc_layer_layer_norm_backward (sc, d_t, d_n, tp->t2, tp->mr3, &tb->norm3_w,
                                            &tb->norm3_b, rows, c, g, err)))
    return s;
  /* cross-attention: t2 = t1 + out2(attention(LN2(t1)·q2ᵀ, context·k2ᵀ, context·v2ᵀ)) */
  memset (d_n, 0, row_bytes);
  memset (d_att, 0, row_bytes);
  memset (d_qkv, 0, row_bytes);
  if ((s = gc_layer_linear_backward (sc, d_att, c, d_t, c, tp->att2, c, &tb->out2_w, &tb->out2_b,
                                     rows, g, err)))
    return s;
  gc_attention_shape cross = { b, hw, tokens, st->heads, dh, c, 2 * c, 2 * c, false };
  gc_attention_backward (sc, d_qkv, d_kv, d_kv + c, d_att, tp->q2, tp->kv, tp->kv + c, &cross);
  if ((s = gc_layer_linear_backward (sc, d_n, c, d_qkv, c, tp->n2, c, &tb->q2, NULL, rows, g, err))
      || (s = gc_layer_linear_backward (sc, p->d_context, cd, d_kv, 2 * c, context, cd, &tb->k2,
                                        NULL, b * tokens, g, err))
      || (s = gc_layer_linear_backward (sc, p->d_context, cd, d_kv + c, 2 * c, context, cd,
                                        &tb->v2, NULL, b * tokens, g, err))
      || (s = gc_layer_layer_norm_backward (sc, d_t, d_n, tp->t1, tp->mr2, &tb->norm2_w,
                                            &tb->norm2_b, rows, c, g, err)))
    return s;
  /* self-attention: t1 = t0 + out1(attention(q, k, v of LN1(t0))) */
  memset (d_n, 0, row_bytes);
  memset (d_att, 0, row_bytes);
  memset (d_qkv, 0, 3 * row_bytes);
  if ((s = gc_layer_linear_backward (sc, d_att, c, d_t, c, tp->att1, c, &tb->out1_w, &tb->out1_b,
                                     rows, g, err)))
    return s;
  gc_attention_shape self = { b, hw, hw, st->heads, dh, 3 * c, 3 * c, 3 * c, false };
  gc_attention_backward (sc, d_qkv, d_qkv + c, d_qkv + 2 * c, d_att, tp->qkv, tp->qkv + c,
                         tp->qkv + 2 * c, &self);
  if ((s = gc_layer_linear_backward (sc, d_n, c, d_qkv, 3 * c, tp->n1, c, &tb->q1, NULL, rows, g,
                                     err))
      || (s = gc_layer_linear_backward (sc, d_n, c, d_qkv + c, 3 * c, tp->n1, c, &tb->k1, NULL,
                                        rows, g, err))
      || (s = gc_layer_linear_backward (sc, d_n, c, d_qkv + 2 * c, 3 * c, tp->n1, c, &tb->v1,
                                        NULL, rows, g, err))
      || (s = gc_layer_layer_norm_backward (sc, d_t, d_n, tp->t0, tp->mr1, &tb->norm1_w,
                                            &tb->norm1_b, rows, c, g, err)))
    return s;
  gc_arena_reset (sc, mark);
  return GC_OK;
}

/* out[b, c, h, w] = x + SpatialTransformer(x); out may be x */
static gc_status
transformer_forward (const pass *p, const spatial_transformer *st, float *out, const float *x,
                     int64_t hw, transformer_tape *tape)
{
  int64_t c = st->channels, b = p->batch, rows = b * hw;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *normed = ALLOC (p, rows * c); /* [b, c, hw] */
  float *tokens = ALLOC (p, rows * c); /* [b·hw, c] */
  float *t = ALLOC (p, rows * c);      /* [b·hw, c] residual stream */
  float *projected = tape ? ALLOC (p, rows * c) : tokens; /* [b·hw, c] proj_out's output */
  if (!normed || !tokens || !t || !projected)
    return gc_layer_out_of_memory (p->err);
  if (tape)
    {
      *tape = (transformer_tape) { .tokens = tokens, .t = t };
      tape->blocks = (transformer_block_tape *) gc_arena_alloc (
        p->scratch, sizeof *tape->blocks * (size_t) (st->depth ? st->depth : 1));
      if (tape->blocks == NULL || !alloc_all (p, rows * c, &tape->x, NULL)
          || !alloc_all (p, b * 32 * 2, &tape->mr, NULL))
        return gc_layer_out_of_memory (p->err);
      memcpy (tape->x, x, sizeof (float) * (size_t) (rows * c));
    }
  gc_status s = tape ? gc_layer_group_norm_keep (p->scratch, normed, tape->mr, x, &st->norm_w,
                                                 &st->norm_b, b, c, hw, 1e-6f, p->err)
                     : gc_layer_group_norm (p->scratch, normed, x, &st->norm_w, &st->norm_b, b,
                                            c, hw, 1e-6f, false, p->err);
  if (s)
    return s;
  gc_nchw_to_tokens (tokens, normed, b, c, hw);
  if ((s = gc_layer_linear (p->scratch, t, c, tokens, &st->proj_in_w, &st->proj_in_b, rows, p->err)))
    return s;
  for (int64_t i = 0; i < st->depth; i++)
    if ((s = transformer_block_forward (p, st, &st->blocks[i], t, hw,
                                        tape ? &tape->blocks[i] : NULL)))
      return s;
  if ((s = gc_layer_linear (p->scratch, projected, c, t, &st->proj_out_w, &st->proj_out_b, rows,
                            p->err)))
    return s;
  gc_tokens_to_nchw (normed, projected, b, c, hw);
  gc_add (out, normed, x, rows * c);
  if (tape == NULL)
    gc_arena_reset (p->scratch, mark);
  return GC_OK;
}

/* d_x += dL/dx of out = x + SpatialTransformer(x), given d_out (d_x and d_out distinct) */
static gc_status
transformer_backward (const pass *p, const spatial_transformer *st, float *d_x,
                      const float *d_out, const transformer_tape *tp, int64_t hw)
{
  int64_t c = st->channels, b = p->batch, rows = b * hw;
  gc_arena *sc = p->scratch;
  gc_arena_mark_t mark = gc_arena_mark (sc);
  float *d_tokens = ALLOC (p, rows * c), *d_t = zalloc (p, rows * c), *d_normed = ALLOC (p, rows * c);
  if (!d_tokens || !d_t || !d_normed)
    return gc_layer_out_of_memory (p->err);
  gc_accumulate (d_x, d_out, rows * c);
  gc_nchw_to_tokens (d_tokens, d_out, b, c, hw);
  gc_status s = gc_layer_linear_backward (sc, d_t, c, d_tokens, c, tp->t, c, &st->proj_out_w,
                                          &st->proj_out_b, rows, p->grads, p->err);
  for (int64_t i = st->depth - 1; s == GC_OK && i >= 0; i--)
    s = transformer_block_backward (p, st, &st->blocks[i], d_t, &tp->blocks[i], hw);
  if (s == GC_OK)
    {
      memset (d_tokens, 0, sizeof (float) * (size_t) (rows * c));
      s = gc_layer_linear_backward (sc, d_tokens, c, d_t, c, tp->tokens, c, &st->proj_in_w,
                                    &st->proj_in_b, rows, p->grads, p->err);
    }
  if (s == GC_OK)
    {
      gc_tokens_to_nchw (d_normed, d_tokens, b, c, hw);
      s = gc_layer_group_norm_backward (sc, d_x, d_normed, tp->x, tp->mr, &st->norm_w,
                                        &st->norm_b, b, c, hw, p->grads, p->err);
    }
  gc_arena_reset (sc, mark);
  return s;
}

void
gc_timestep_embedding (float *emb, const double *timesteps, int64_t batch, int64_t dim)
{
  int64_t half = dim / 2;
  for (int64_t i = 0; i < batch; i++)
    for (int64_t k = 0; k < half; k++)
      {
        double arg = timesteps[i] * exp (-log (10000.0) * (double) k / (double) half);
        emb[i * dim + k] = (float) cos (arg);
        emb[i * dim + half + k] = (float) sin (arg);
      }
}

static void
observe (const pass *p, const char *name, const float *data, int64_t count)
{
  if (p->cond->observe)
    p->cond->observe (p->cond->observe_ctx, name, data, count);
}

static void
observe_level (const pass *p, const char *group, int level, const float *data, int64_t count)
{
  char name[32];
  snprintf (name, sizeof name, "%s.%d", group, level);
  observe (p, name, data, count);
}

/* emb_silu[b, time_dim] = SiLU(time_mlp(t) + label_mlp(adm)) */
static gc_status
embed_time (const pass *p, float *emb_silu, const double *timesteps, time_tape *tape)
{
  const gc_unet *u = p->u;
  int64_t b = p->batch, td = u->config.time_dim, mc = u->config.model_channels;
  float *sinusoid = ALLOC (p, b * mc), *hidden = ALLOC (p, b * td), *label = ALLOC (p, b * td);
  if (!sinusoid || !hidden || !label)
    return gc_layer_out_of_memory (p->err);
  /* inference applies the SiLUs in place; the tape keeps both sides of each */
  float *h1 = hidden, *h1s = hidden, *l1 = hidden, *l1s = hidden, *emb = emb_silu;
  if (tape)
    {
      if (!alloc_all (p, b * td, &h1s, &l1, &l1s, &emb, NULL))
        return gc_layer_out_of_memory (p->err);
      *tape = (time_tape) { sinusoid, h1, h1s, l1, l1s, emb };
    }
  gc_timestep_embedding (sinusoid, timesteps, b, mc);
  gc_status s;
  if ((s = gc_layer_linear (p->scratch, h1, td, sinusoid, &u->time1_w, &u->time1_b, b, p->err)))
    return s;
  gc_activation_forward (h1s, h1, b * td, GC_ACT_SILU);
  if ((s = gc_layer_linear (p->scratch, emb, td, h1s, &u->time2_w, &u->time2_b, b, p->err)))
    return s;
  if (u->config.adm_dim)
    {
      if (p->cond->adm == NULL)
        return gc_error_set (p->err, GC_ERR_INVALID, "this UNet needs the SDXL size conditioning");
      if ((s = gc_layer_linear (p->scratch, l1, td, p->cond->adm, &u->label1_w, &u->label1_b, b,
                                p->err)))
        return s;
      gc_activation_forward (l1s, l1, b * td, GC_ACT_SILU);
      if ((s = gc_layer_linear (p->scratch, label, td, l1s, &u->label2_w, &u->label2_b, b,
                                p->err)))
        return s;
      gc_add (emb, emb, label, b * td);
    }
  observe (p, "time_embedding", emb, b * td);
  gc_activation_forward (emb_silu, emb, b * td, GC_ACT_SILU);
  return GC_OK;
}

/* The backward of embed_time, from p->d_emb_silu (gradients of its weights only). */
static gc_status
embed_time_backward (const pass *p, const time_tape *tape)
{
  const gc_unet *u = p->u;
  int64_t b = p->batch, td = u->config.time_dim, mc = u->config.model_channels;
  gc_arena *sc = p->scratch;
  const gc_grad_sink *g = p->grads;
  gc_arena_mark_t mark = gc_arena_mark (sc);
  float *d_emb = zalloc (p, b * td), *d_silu = zalloc (p, b * td), *d_pre = zalloc (p, b * td);
  if (!d_emb || !d_silu || !d_pre)
    return gc_layer_out_of_memory (p->err);
  gc_activation_backward (d_emb, p->d_emb_silu, tape->emb, b * td, GC_ACT_SILU);
  gc_status s = gc_layer_linear_backward (sc, d_silu, td, d_emb, td, tape->h1s, td, &u->time2_w,
                                          &u->time2_b, b, g, p->err);
  if (s == GC_OK)
    {
      gc_activation_backward (d_pre, d_silu, tape->h1, b * td, GC_ACT_SILU);
      s = gc_layer_linear_backward (sc, NULL, 0, d_pre, td, tape->sinusoid, mc, &u->time1_w,
                                    &u->time1_b, b, g, p->err);
    }
  if (s == GC_OK && u->config.adm_dim)
    {
      memset (d_silu, 0, sizeof (float) * (size_t) (b * td));
      memset (d_pre, 0, sizeof (float) * (size_t) (b * td));
      s = gc_layer_linear_backward (sc, d_silu, td, d_emb, td, tape->l1s, td, &u->label2_w,
                                    &u->label2_b, b, g, p->err);
      if (s == GC_OK)
        {
          gc_activation_backward (d_pre, d_silu, tape->l1, b * td, GC_ACT_SILU);
          s = gc_layer_linear_backward (sc, NULL, 0, d_pre, td, p->cond->adm, u->config.adm_dim,
                                        &u->label1_w, &u->label1_b, b, g, p->err);
        }
    }
  gc_arena_reset (sc, mark);
  return s;
}

static bool
cancelled (const volatile int *cancel)
{
  return cancel && *cancel;
}

typedef struct {
  float *data;
  int64_t c, h, w;
} feature_map;

static int64_t
feature_count (const pass *p, const feature_map *f)
{
  return p->batch * f->c * f->h * f->w;
}

static gc_status
input_block_forward (const pass *p, const unet_block *blk, feature_map *h, block_tape *tape)
{
  int64_t b = p->batch;
  if (blk->has_down)
    {
      int64_t oh = (h->h + 1) / 2, ow = (h->w + 1) / 2;
      float *out = ALLOC (p, b * h->c * oh * ow);
      if (out == NULL)
        return gc_layer_out_of_memory (p->err);
      gc_status s = gc_layer_conv (p->scratch, out, h->data, &blk->sample_w, &blk->sample_b, b,
                                   h->h, h->w, 2, 1, p->err);
      *h = (feature_map) { out, h->c, oh, ow };
      return s;
    }
  int64_t c = blk->res.c_out, hw = h->h * h->w;
  float *out = ALLOC (p, b * c * hw);
  if (out == NULL)
    return gc_layer_out_of_memory (p->err);
  gc_status s = resblock_forward (p, &blk->res, out, h->data, h->h, h->w, tape ? &tape->res : NULL);
  if (s == GC_OK && blk->has_attn)
    s = transformer_forward (p, &blk->attn, out, out, hw, tape ? &tape->attn : NULL);
  *h = (feature_map) { out, c, h->h, h->w };
  return s;
}

/* d_in += dL/d(the block's input in), given d_out for its output */
static gc_status
input_block_backward (const pass *p, const unet_block *blk, float *d_in, const float *d_out,
                      const block_tape *tape, const feature_map *in)
{
  if (blk->has_down)
    return gc_layer_conv_backward (p->scratch, d_in, d_out, in->data, &blk->sample_w,
                                   &blk->sample_b, p->batch, in->h, in->w, 2, 1, p->grads, p->err);
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  const float *d_res = d_out;
  gc_status s = GC_OK;
  if (blk->has_attn)
    {
      float *d = zalloc (p, p->batch * blk->res.c_out * in->h * in->w);
      s = d ? transformer_backward (p, &blk->attn, d, d_out, &tape->attn, in->h * in->w)
            : gc_layer_out_of_memory (p->err);
      d_res = d;
    }
  if (s == GC_OK)
    s = resblock_backward (p, &blk->res, d_in, d_res, &tape->res, in->h, in->w);
  gc_arena_reset (p->scratch, mark);
  return s;
}

/* The block's result is allocated before its temporaries, so resetting to the mark taken after
 * it frees the concatenation and the upsampling buffers but keeps the result. */
static gc_status
output_block_forward (const pass *p, const unet_block *blk, feature_map *h, const feature_map *skip,
                      block_tape *tape)
{
  int64_t b = p->batch, hw = h->h * h->w, c = blk->res.c_out;
  int64_t scale = blk->has_up ? 4 : 1;
  float *result = ALLOC (p, b * c * hw * scale); /* [b, c, h, w] or [b, c, 2h, 2w] */
  if (result == NULL)
    return gc_layer_out_of_memory (p->err);
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *joined = ALLOC (p, b * (h->c + skip->c) * hw); /* [b, c_h + c_skip, hw] */
  float *res = blk->has_up ? ALLOC (p, b * c * hw) : result;
  float *up = blk->has_up ? ALLOC (p, b * c * hw * 4) : NULL;
  if (!joined || !res || (blk->has_up && !up))
    return gc_layer_out_of_memory (p->err);
  if (tape)
    tape->up = up;
  gc_concat_channels_forward (joined, h->data, skip->data, b, h->c, skip->c, hw);
  gc_status s = resblock_forward (p, &blk->res, res, joined, h->h, h->w, tape ? &tape->res : NULL);
  if (s == GC_OK && blk->has_attn)
    s = transformer_forward (p, &blk->attn, res, res, hw, tape ? &tape->attn : NULL);
  if (s == GC_OK && blk->has_up)
    {
      gc_upsample2x_forward (up, res, b, c, h->h, h->w);
      s = gc_layer_conv (p->scratch, result, up, &blk->sample_w, &blk->sample_b, b, 2 * h->h,
                         2 * h->w, 1, 1, p->err);
    }
  *h = (feature_map) { result, c, blk->has_up ? 2 * h->h : h->h, blk->has_up ? 2 * h->w : h->w };
  if (tape == NULL)
    gc_arena_reset (p->scratch, mark);
  return s;
}

/* d_h += dL/dh and d_skip += dL/d skip (the block's two inputs), given d_out */
static gc_status
output_block_backward (const pass *p, const unet_block *blk, float *d_h, float *d_skip,
                       const float *d_out, const block_tape *tape, const feature_map *h,
                       const feature_map *skip)
{
  int64_t b = p->batch, hw = h->h * h->w, c = blk->res.c_out;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  const float *d = d_out;
  gc_status s = GC_OK;
  if (blk->has_up)
    {
      float *d_up = zalloc (p, b * c * hw * 4), *d_res = zalloc (p, b * c * hw);
      if (!d_up || !d_res)
        return gc_layer_out_of_memory (p->err);
      s = gc_layer_conv_backward (p->scratch, d_up, d_out, tape->up, &blk->sample_w,
                                  &blk->sample_b, b, 2 * h->h, 2 * h->w, 1, 1, p->grads, p->err);
      gc_upsample2x_backward (d_res, d_up, b, c, h->h, h->w);
      d = d_res;
    }
  if (s == GC_OK && blk->has_attn)
    {
      float *d_res = zalloc (p, b * c * hw);
      s = d_res ? transformer_backward (p, &blk->attn, d_res, d, &tape->attn, hw)
                : gc_layer_out_of_memory (p->err);
      d = d_res;
    }
  float *d_joined = s == GC_OK ? zalloc (p, b * (h->c + skip->c) * hw) : NULL;
  if (s == GC_OK && d_joined == NULL)
    s = gc_layer_out_of_memory (p->err);
  if (s == GC_OK)
    s = resblock_backward (p, &blk->res, d_joined, d, &tape->res, h->h, h->w);
  if (s == GC_OK)
    gc_concat_channels_backward (d_h, d_skip, d_joined, b, h->c, skip->c, hw);
  gc_arena_reset (p->scratch, mark);
  return s;
}

/* middle: ResBlock, transformer, ResBlock */
static gc_status
middle_forward (const pass *p, feature_map *fm, block_tape *tape)
{
  const gc_unet *u = p->u;
  int64_t hw = fm->h * fm->w;
  float *mid = ALLOC (p, p->batch * u->mid_res1.c_out * hw);
  float *mid2 = ALLOC (p, p->batch * u->mid_res2.c_out * hw);
  if (!mid || !mid2)
    return gc_layer_out_of_memory (p->err);
  gc_status s = resblock_forward (p, &u->mid_res1, mid, fm->data, fm->h, fm->w,
                                  tape ? &tape->res : NULL);
  if (s == GC_OK && u->mid_has_attn)
    s = transformer_forward (p, &u->mid_attn, mid, mid, hw, tape ? &tape->attn : NULL);
  if (s == GC_OK)
    s = resblock_forward (p, &u->mid_res2, mid2, mid, fm->h, fm->w, tape ? &tape->res2 : NULL);
  *fm = (feature_map) { mid2, u->mid_res2.c_out, fm->h, fm->w };
  return s;
}

static gc_status
middle_backward (const pass *p, float *d_in, const float *d_out, const block_tape *tape,
                 const feature_map *in)
{
  const gc_unet *u = p->u;
  int64_t count = p->batch * u->mid_res1.c_out * in->h * in->w;
  gc_arena_mark_t mark = gc_arena_mark (p->scratch);
  float *d_mid = zalloc (p, count), *d_attn = u->mid_has_attn ? zalloc (p, count) : NULL;
  if (!d_mid || (u->mid_has_attn && !d_attn))
    return gc_layer_out_of_memory (p->err);
  gc_status s = resblock_backward (p, &u->mid_res2, d_mid, d_out, &tape->res2, in->h, in->w);
  const float *d = d_mid;
  if (s == GC_OK && u->mid_has_attn)
    {
      s = transformer_backward (p, &u->mid_attn, d_attn, d_mid, &tape->attn, in->h * in->w);
      d = d_attn;
    }
  if (s == GC_OK)
    s = resblock_backward (p, &u->mid_res1, d_in, d, &tape->res, in->h, in->w);
  gc_arena_reset (p->scratch, mark);
  return s;
}

/* What a training forward keeps for gc_unet_backward: the block boundaries always, the
 * blocks' inner activations only without checkpointing. Lives in scratch. */
struct gc_unet_tape {
  gc_arena_mark_t mark; /* where the forward found scratch */
  pass p;
  bool checkpointing;
  const float *x;
  int64_t h, w;
  time_tape time;
  feature_map *skips;   /* [n_inputs + 1]: conv_in's output, then each input block's */
  block_tape *inputs;   /* [n_inputs], without checkpointing */
  block_tape mid;
  feature_map *out_in;  /* [n_outputs + 1]: the h each output block gets, then the last output */
  block_tape *outputs;  /* [n_outputs], without checkpointing */
  float *head_pre, *head, *head_mr; /* out.0 GroupNorm, its SiLU (out.2's input), statistics */
};

/* The whole pass; with a tape, everything it records stays in scratch. */
static gc_status
unet_run (pass *p, float *out, const float *x, int64_t h, int64_t w, const double *timesteps,
          const volatile int *cancel, gc_unet_tape *tape)
{
  const gc_unet *u = p->u;
  const gc_unet_config *cfg = &u->config;
  gc_arena *scratch = p->scratch;
  int64_t batch = p->batch;
  bool record = tape && !tape->checkpointing; /* the blocks' insides too */
  float *emb_silu = ALLOC (p, batch * cfg->time_dim);
  feature_map *skips = (feature_map *) gc_arena_alloc (scratch, sizeof *skips * (size_t) (u->n_inputs + 1));
  float *first = ALLOC (p, batch * cfg->model_channels * h * w);
  gc_status s = emb_silu && skips && first ? GC_OK : gc_layer_out_of_memory (p->err);
  if (s == GC_OK && tape)
    {
      tape->skips = skips;
      tape->out_in = (feature_map *) gc_arena_alloc (scratch, sizeof *tape->out_in
                                                                * (size_t) (u->n_outputs + 1));
      if (record)
        {
          tape->inputs = (block_tape *) gc_arena_alloc (scratch, sizeof *tape->inputs
                                                                   * (size_t) u->n_inputs);
          tape->outputs = (block_tape *) gc_arena_alloc (scratch, sizeof *tape->outputs
                                                                    * (size_t) u->n_outputs);
        }
      if (!tape->out_in || (record && (!tape->inputs || !tape->outputs)))
        s = gc_layer_out_of_memory (p->err);
    }
  if (s == GC_OK)
    s = embed_time (p, emb_silu, timesteps, tape ? &tape->time : NULL);
  p->emb_silu = emb_silu;
  if (s == GC_OK)
    s = gc_layer_conv (scratch, first, x, &u->conv_in_w, &u->conv_in_b, batch, h, w, 1, 1, p->err);
  feature_map fm = { first, cfg->model_channels, h, w };
  if (s == GC_OK)
    {
      skips[0] = fm;
      observe (p, "conv_in", first, batch * cfg->model_channels * h * w);
    }
  for (int i = 0, level = 0; s == GC_OK && i < u->n_inputs; i++)
    {
      s = cancelled (cancel) ? GC_ERR_CANCELLED
                             : input_block_forward (p, &u->inputs[i], &fm,
                                                    record ? &tape->inputs[i] : NULL);
      skips[i + 1] = fm;
      if (s == GC_OK && (u->inputs[i].has_down || i + 1 == u->n_inputs))
        observe_level (p, "down_blocks", level++, fm.data, feature_count (p, &fm));
    }
  if (s == GC_OK)
    s = middle_forward (p, &fm, record ? &tape->mid : NULL);
  if (s == GC_OK)
    observe (p, "mid_block", fm.data, feature_count (p, &fm));
  for (int i = 0, level = 0; s == GC_OK && i < u->n_outputs; i++)
    {
      if (tape)
        tape->out_in[i] = fm;
      s = cancelled (cancel) ? GC_ERR_CANCELLED
                             : output_block_forward (p, &u->outputs[i], &fm,
                                                     &skips[u->n_inputs - i],
                                                     record ? &tape->outputs[i] : NULL);
      if (s == GC_OK && (u->outputs[i].has_up || i + 1 == u->n_outputs))
        observe_level (p, "up_blocks", level++, fm.data, feature_count (p, &fm));
    }
  /* out: GroupNorm, SiLU, conv */
  float *normed = s == GC_OK ? ALLOC (p, feature_count (p, &fm)) : NULL;
  if (s == GC_OK && normed == NULL)
    s = gc_layer_out_of_memory (p->err);
  if (s == GC_OK && tape)
    {
      tape->out_in[u->n_outputs] = fm;
      tape->head = normed;
      if (!alloc_all (p, feature_count (p, &fm), &tape->head_pre, NULL)
          || !alloc_all (p, batch * 32 * 2, &tape->head_mr, NULL))
        s = gc_layer_out_of_memory (p->err);
    }
  if (s == GC_OK)
    s = norm_silu (p, normed, tape ? tape->head_pre : NULL, tape ? tape->head_mr : NULL, fm.data,
                   &u->out_norm_w, &u->out_norm_b, fm.c, fm.h * fm.w);
  if (s == GC_OK)
    s = gc_layer_conv (scratch, out, normed, &u->out_conv_w, &u->out_conv_b, batch, fm.h, fm.w, 1,
                       1, p->err);
  if (s == GC_ERR_CANCELLED)
    gc_error_set (p->err, s, "cancelled");
  return s;
}

static gc_status
check_size (const gc_unet *u, int64_t h, int64_t w, gc_error *err)
{
  int64_t multiple = (int64_t) 1 << u->config.downsamplings;
  if (h <= 0 || w <= 0 || h % multiple || w % multiple)
    return gc_error_set (err, GC_ERR_INVALID,
                         "latent size %lldx%lld is not a multiple of %lld (images must be "
                         "multiples of %lld pixels)",
                         (long long) w, (long long) h, (long long) multiple,
                         (long long) multiple * 8);
  return GC_OK;
}

gc_status
gc_unet_forward (gc_unet *u, gc_arena *scratch, float *out, const float *x, int64_t batch,
                 int64_t h, int64_t w, const double *timesteps, const gc_unet_cond *cond,
                 const volatile int *cancel, gc_error *err)
{
  gc_status s = check_size (u, h, w, err);
  if (s != GC_OK)
    return s;
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  pass p = { .u = u, .scratch = scratch, .batch = batch, .cond = cond, .err = err };
  s = unet_run (&p, out, x, h, w, timesteps, cancel, NULL);
  gc_arena_reset (scratch, mark);
  return s;
}

/* ---------------------------------------------------------------- backward */

gc_status
gc_unet_train_forward (gc_unet *u, gc_arena *scratch, gc_unet_tape **tape_out, float *out,
                       const float *x, int64_t batch, int64_t h, int64_t w,
                       const double *timesteps, const gc_unet_cond *cond, bool checkpointing,
                       const volatile int *cancel, gc_error *err)
{
  *tape_out = NULL;
  gc_status s = check_size (u, h, w, err);
  if (s != GC_OK)
    return s;
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  gc_unet_tape *tape = gc_arena_alloc (scratch, sizeof *tape);
  if (tape == NULL)
    return gc_layer_out_of_memory (err);
  *tape = (gc_unet_tape) { .mark = mark, .checkpointing = checkpointing, .x = x, .h = h, .w = w };
  tape->p = (pass) { .u = u, .scratch = scratch, .batch = batch, .cond = cond, .err = err };
  s = unet_run (&tape->p, out, x, h, w, timesteps, cancel, tape);
  if (s != GC_OK)
    {
      gc_arena_reset (scratch, mark);
      return s;
    }
  *tape_out = tape;
  return GC_OK;
}

void
gc_unet_tape_free (gc_unet_tape *tape)
{
  if (tape)
    gc_arena_reset (tape->p.scratch, tape->mark);
}

/* The recorded insides of a block, or, with checkpointing, the block run again from its
 * recorded input with a tape (in scratch, released by the caller's reset). */
static gc_status
block_tape_of (pass *p, const gc_unet_tape *tape, int kind, int i, block_tape **out)
{
  if (!tape->checkpointing)
    {
      *out = kind < 0 ? &tape->inputs[i] : kind > 0 ? &tape->outputs[i] : (block_tape *) &tape->mid;
      return GC_OK;
    }
  const gc_unet *u = p->u;
  block_tape *bt = (block_tape *) gc_arena_alloc (p->scratch, sizeof *bt);
  if (bt == NULL)
    return gc_layer_out_of_memory (p->err);
  *out = bt;
  if (kind < 0)
    {
      feature_map fm = tape->skips[i];
      return input_block_forward (p, &u->inputs[i], &fm, bt);
    }
  if (kind == 0)
    {
      feature_map fm = tape->skips[u->n_inputs];
      return middle_forward (p, &fm, bt);
    }
  feature_map fm = tape->out_in[i];
  return output_block_forward (p, &u->outputs[i], &fm, &tape->skips[u->n_inputs - i], bt);
}

gc_status
gc_unet_backward (gc_unet_tape *tape, const float *d_out, float *d_x, float *d_context,
                  const gc_grad_sink *grads, const volatile int *cancel, gc_error *err)
{
  pass p = tape->p;
  p.grads = grads;
  p.d_context = d_context;
  p.err = err;
  const gc_unet *u = p.u;
  int64_t b = p.batch;
  gc_arena *sc = p.scratch;
  /* gradients of every block boundary: the skips (which also feed the next input block) and
   * the inputs of the output blocks */
  float **d_skips = (float **) gc_arena_alloc (sc, sizeof *d_skips * (size_t) (u->n_inputs + 1));
  float **d_outs = (float **) gc_arena_alloc (sc, sizeof *d_outs * (size_t) (u->n_outputs + 1));
  p.d_emb_silu = zalloc (&p, b * u->config.time_dim);
  gc_status s = d_skips && d_outs && p.d_emb_silu ? GC_OK : gc_layer_out_of_memory (err);
  for (int i = 0; s == GC_OK && i <= u->n_inputs; i++)
    if ((d_skips[i] = zalloc (&p, feature_count (&p, &tape->skips[i]))) == NULL)
      s = gc_layer_out_of_memory (err);
  for (int i = 0; s == GC_OK && i <= u->n_outputs; i++)
    if ((d_outs[i] = zalloc (&p, feature_count (&p, &tape->out_in[i]))) == NULL)
      s = gc_layer_out_of_memory (err);
  /* out: conv(SiLU(GroupNorm(last))) */
  const feature_map *last = &tape->out_in[u->n_outputs];
  int64_t count = s == GC_OK ? feature_count (&p, last) : 0;
  gc_arena_mark_t mark = gc_arena_mark (sc);
  float *d_head = s == GC_OK ? zalloc (&p, count) : NULL, *d_pre = s == GC_OK ? zalloc (&p, count) : NULL;
  if (s == GC_OK && (!d_head || !d_pre))
    s = gc_layer_out_of_memory (err);
  if (s == GC_OK)
    s = gc_layer_conv_backward (sc, d_head, d_out, tape->head, &u->out_conv_w, &u->out_conv_b, b,
                                last->h, last->w, 1, 1, grads, err);
  if (s == GC_OK)
    {
      gc_activation_backward (d_pre, d_head, tape->head_pre, count, GC_ACT_SILU);
      s = gc_layer_group_norm_backward (sc, d_outs[u->n_outputs], d_pre, last->data, tape->head_mr,
                                        &u->out_norm_w, &u->out_norm_b, b, last->c,
                                        last->h * last->w, grads, err);
    }
  gc_arena_reset (sc, mark);
  for (int i = u->n_outputs - 1; s == GC_OK && i >= 0; i--)
    {
      block_tape *bt = NULL;
      s = cancelled (cancel) ? GC_ERR_CANCELLED : block_tape_of (&p, tape, 1, i, &bt);
      if (s == GC_OK)
        s = output_block_backward (&p, &u->outputs[i], d_outs[i], d_skips[u->n_inputs - i],
                                   d_outs[i + 1], bt, &tape->out_in[i],
                                   &tape->skips[u->n_inputs - i]);
      gc_arena_reset (sc, mark);
    }
  if (s == GC_OK)
    {
      block_tape *bt = NULL;
      s = cancelled (cancel) ? GC_ERR_CANCELLED : block_tape_of (&p, tape, 0, 0, &bt);
      if (s == GC_OK)
        s = middle_backward (&p, d_skips[u->n_inputs], d_outs[0], bt, &tape->skips[u->n_inputs]);
      gc_arena_reset (sc, mark);
    }
  for (int i = u->n_inputs - 1; s == GC_OK && i >= 0; i--)
    {
      block_tape *bt = NULL;
      s = cancelled (cancel) ? GC_ERR_CANCELLED : block_tape_of (&p, tape, -1, i, &bt);
      if (s == GC_OK)
        s = input_block_backward (&p, &u->inputs[i], d_skips[i], d_skips[i + 1], bt,
                                  &tape->skips[i]);
      gc_arena_reset (sc, mark);
    }
  if (s == GC_OK)
    s = gc_layer_conv_backward (sc, d_x, d_skips[0], tape->x, &u->conv_in_w, &u->conv_in_b, b,
                                tape->h, tape->w, 1, 1, grads, err);
  if (s == GC_OK)
    s = embed_time_backward (&p, &tape->time);
  if (s == GC_ERR_CANCELLED)
    gc_error_set (err, s, "cancelled");
  gc_unet_tape_free (tape);
  return s;
}

/* ---------------------------------------------------------------- cost */

static double
resblock_flops (const resblock *rb, int64_t hw)
{
  double f = 2.0 * hw * 9 * (double) (rb->c_in * rb->c_out + rb->c_out * rb->c_out);
  if (rb->has_skip)
    f += 2.0 * hw * (double) (rb->c_in * rb->c_out);
  return f;
}

static double
transformer_flops (const spatial_transformer *st, int64_t hw, int64_t tokens, int64_t context_dim)
{
  double c = (double) st->channels, f = 4 * c; /* projections in and out */
  double total = 2.0 * hw * c * c * 2;
  for (int64_t i = 0; i < st->depth; i++)
    {
      f = (double) st->blocks[i].ff_inner;
      total += 2.0 * hw * c * c * 4;                   /* q, k, v, out of self-attention */
      total += 2.0 * 2 * (double) hw * (double) hw * c; /* scores and weighted sum */
      total += 2.0 * hw * c * c * 2 + 2.0 * tokens * (double) context_dim * c * 2;
      total += 2.0 * 2 * (double) hw * (double) tokens * c;
      total += 2.0 * hw * c * 2 * f + 2.0 * hw * f * c; /* GEGLU feed-forward */
    }
  return total;
}

/* Floats a recorded ResBlock keeps: its temporaries, normed and activated maps. */
static double
resblock_tape_floats (const resblock *rb, int64_t hw)
{
  return (double) hw * (double) (2 * rb->c_in + (rb->has_skip ? 5 : 4) * rb->c_out);
}

/* Floats a recorded spatial transformer keeps: five maps of its own and, per block, the
 * streams, norms, projections and the feed-forward (f = 4c). */
static double
transformer_tape_floats (const spatial_transformer *st, int64_t hw, int64_t tokens)
{
  double c = (double) st->channels, total = 5 * hw * c;
  for (int64_t i = 0; i < st->depth; i++)
    total += (double) hw * (13 * c + 3 * (double) st->blocks[i].ff_inner) + 2.0 * tokens * c;
  return total;
}

double
gc_unet_tape_bytes (const gc_unet *u, int64_t batch, int64_t h, int64_t w, int64_t tokens)
{
  double floats = 0;
  int64_t hh = h, ww = w;
  for (int i = 0; i < u->n_inputs; i++)
    {
      const unet_block *b = &u->inputs[i];
      if (b->has_down)
        {
          hh = (hh + 1) / 2, ww = (ww + 1) / 2;
          continue;
        }
      floats += resblock_tape_floats (&b->res, hh * ww);
      if (b->has_attn)
        floats += transformer_tape_floats (&b->attn, hh * ww, tokens);
    }
  floats += resblock_tape_floats (&u->mid_res1, hh * ww) + resblock_tape_floats (&u->mid_res2, hh * ww);
  if (u->mid_has_attn)
    floats += transformer_tape_floats (&u->mid_attn, hh * ww, tokens);
  for (int i = 0; i < u->n_outputs; i++)
    {
      const unet_block *b = &u->outputs[i];
      floats += (double) hh * ww * (double) b->res.c_in; /* the concatenation */
      floats += resblock_tape_floats (&b->res, hh * ww);
      if (b->has_attn)
        floats += transformer_tape_floats (&b->attn, hh * ww, tokens);
      if (b->has_up)
        {
          floats += 5.0 * hh * ww * (double) b->res.c_out; /* the result and the upsampled map */
          hh *= 2, ww *= 2;
        }
    }
  return 4.0 * (double) batch * floats;
}

double
gc_unet_flops (const gc_unet *u, int64_t h, int64_t w, int64_t tokens)
{
  const gc_unet_config *cfg = &u->config;
  double total = 2.0 * h * w * 9 * (double) (cfg->in_channels * cfg->model_channels);
  int64_t hh = h, ww = w, ch = cfg->model_channels;
  for (int i = 0; i < u->n_inputs; i++)
    {
      const unet_block *b = &u->inputs[i];
      if (b->has_down)
        {
          hh = (hh + 1) / 2, ww = (ww + 1) / 2;
          total += 2.0 * hh * ww * 9 * (double) (ch * ch);
          continue;
        }
      total += resblock_flops (&b->res, hh * ww);
      ch = b->res.c_out;
      if (b->has_attn)
        total += transformer_flops (&b->attn, hh * ww, tokens, cfg->context_dim);
    }
  total += resblock_flops (&u->mid_res1, hh * ww) + resblock_flops (&u->mid_res2, hh * ww);
  if (u->mid_has_attn)
    total += transformer_flops (&u->mid_attn, hh * ww, tokens, cfg->context_dim);
  for (int i = 0; i < u->n_outputs; i++)
    {
      const unet_block *b = &u->outputs[i];
      total += resblock_flops (&b->res, hh * ww);
      if (b->has_attn)
        total += transformer_flops (&b->attn, hh * ww, tokens, cfg->context_dim);
      if (b->has_up)
        {
          hh *= 2, ww *= 2;
          total += 2.0 * hh * ww * 9 * (double) (b->res.c_out * b->res.c_out);
        }
    }
  total += 2.0 * hh * ww * 9 * (double) (cfg->model_channels * cfg->out_channels);
  return total;
}

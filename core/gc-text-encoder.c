#include "gc-text-encoder.h"

#include <stdlib.h>
#include <string.h>

#include "gc-layers.h"
#include "gc-matmul.h"

typedef struct {
  gc_param ln1_w, ln1_b;          /* [D] */
  gc_param q_w, k_w, v_w;         /* HF names: [D, D] each */
  gc_param q_b, k_b, v_b;         /* HF names: [D] */
  gc_param qkv_w, qkv_b;          /* OpenCLIP: [3D, D], [3D] */
  gc_param out_w, out_b;          /* [D, D], [D] */
  gc_param ln2_w, ln2_b;          /* [D] */
  gc_param fc1_w, fc1_b;          /* [M, D], [M] */
  gc_param fc2_w, fc2_b;          /* [D, M], [D] */
} text_block;

struct gc_text_encoder {
  gc_text_encoder_config config;
  gc_param token_embedding;       /* [vocab, D] */
  gc_param position_embedding;    /* [positions, D] */
  gc_param final_ln_w, final_ln_b; /* [D] */
  gc_param projection;            /* OpenCLIP: [D, projection]; HF names: [projection, D] */
  text_block *blocks;
};

static gc_status
bind_linear (gc_param *w, gc_param *b, const gc_checkpoint *c, int64_t out_f, int64_t in_f,
             const char *name, gc_error *err)
{
  gc_status status = gc_param_bindf (w, c, 2, (int64_t[]) { out_f, in_f }, err, "%s.weight", name);
  if (status != GC_OK || b == NULL)
    return status;
  return gc_param_bindf (b, c, 1, (int64_t[]) { out_f }, err, "%s.bias", name);
}

static gc_status
bind_norm (gc_param *w, gc_param *b, const gc_checkpoint *c, int64_t dim, const char *name,
           gc_error *err)
{
  gc_status status = gc_param_bindf (w, c, 1, (int64_t[]) { dim }, err, "%s.weight", name);
  if (status != GC_OK)
    return status;
  return gc_param_bindf (b, c, 1, (int64_t[]) { dim }, err, "%s.bias", name);
}

static gc_status
bind_clip_block (text_block *b, const gc_checkpoint *c, const char *prefix, int index,
                 const gc_text_encoder_config *cfg, gc_error *err)
{
  char base[200], name[256];
  int64_t d = cfg->width, m = cfg->mlp_width;
  snprintf (base, sizeof base, "%stext_model.encoder.layers.%d.", prefix, index);
  gc_status s;
#define LINEAR(w, bias, o, i, part)                                                            \
  (snprintf (name, sizeof name, "%s%s", base, part),                                          \
   bind_linear (w, bias, c, o, i, name, err))
#define NORM(w, bias, part)                                                                    \
  (snprintf (name, sizeof name, "%s%s", base, part), bind_norm (w, bias, c, d, name, err))
  if ((s = NORM (&b->ln1_w, &b->ln1_b, "layer_norm1")) || (s = NORM (&b->ln2_w, &b->ln2_b, "layer_norm2"))
      || (s = LINEAR (&b->q_w, &b->q_b, d, d, "self_attn.q_proj"))
      || (s = LINEAR (&b->k_w, &b->k_b, d, d, "self_attn.k_proj"))
      || (s = LINEAR (&b->v_w, &b->v_b, d, d, "self_attn.v_proj"))
      || (s = LINEAR (&b->out_w, &b->out_b, d, d, "self_attn.out_proj"))
      || (s = LINEAR (&b->fc1_w, &b->fc1_b, m, d, "mlp.fc1"))
      || (s = LINEAR (&b->fc2_w, &b->fc2_b, d, m, "mlp.fc2")))
    return s;
  return GC_OK;
}

static gc_status
bind_open_clip_block (text_block *b, const gc_checkpoint *c, const char *prefix, int index,
                      const gc_text_encoder_config *cfg, gc_error *err)
{
  char base[200], name[256];
  int64_t d = cfg->width, m = cfg->mlp_width;
  snprintf (base, sizeof base, "%stransformer.resblocks.%d.", prefix, index);
  gc_status s;
  if ((s = NORM (&b->ln1_w, &b->ln1_b, "ln_1")) || (s = NORM (&b->ln2_w, &b->ln2_b, "ln_2"))
      || (s = LINEAR (&b->out_w, &b->out_b, d, d, "attn.out_proj"))
      || (s = LINEAR (&b->fc1_w, &b->fc1_b, m, d, "mlp.c_fc"))
      || (s = LINEAR (&b->fc2_w, &b->fc2_b, d, m, "mlp.c_proj")))
    return s;
  snprintf (name, sizeof name, "%sattn.in_proj_weight", base);
  if ((s = gc_param_bind (&b->qkv_w, c, name, 2, (int64_t[]) { 3 * d, d }, err)))
    return s;
  snprintf (name, sizeof name, "%sattn.in_proj_bias", base);
  return gc_param_bind (&b->qkv_b, c, name, 1, (int64_t[]) { 3 * d }, err);
#undef LINEAR
#undef NORM
}

static int64_t
count_blocks (const gc_checkpoint *c, const char *prefix, bool open_clip)
{
  int64_t n = 0;
  while (open_clip ? gc_checkpoint_hasf (c, "%stransformer.resblocks.%lld.ln_1.weight", prefix,
                                         (long long) n)
                   : gc_checkpoint_hasf (c, "%stext_model.encoder.layers.%lld.layer_norm1.weight",
                                         prefix, (long long) n))
    n++;
  return n;
}

static gc_status
bind_embeddings (gc_text_encoder *e, const gc_checkpoint *c, const char *prefix, gc_error *err)
{
  gc_text_encoder_config *cfg = &e->config;
  char key[256];
  gc_status s;
  if (cfg->open_clip)
    snprintf (key, sizeof key, "%stoken_embedding.weight", prefix);
  else
    snprintf (key, sizeof key, "%stext_model.embeddings.token_embedding.weight", prefix);
  if ((s = gc_param_bind (&e->token_embedding, c, key, 2, (int64_t[]) { -1, -1 }, err)))
    return s;
  cfg->vocab = e->token_embedding.weight.shape[0];
  cfg->width = e->token_embedding.weight.shape[1];
  if (cfg->open_clip)
    snprintf (key, sizeof key, "%spositional_embedding", prefix);
  else
    snprintf (key, sizeof key, "%stext_model.embeddings.position_embedding.weight", prefix);
  if ((s = gc_param_bind (&e->position_embedding, c, key, 2, (int64_t[]) { -1, cfg->width }, err)))
    return s;
  cfg->positions = e->position_embedding.weight.shape[0];
  if (cfg->open_clip)
    snprintf (key, sizeof key, "%sln_final", prefix);
  else
    snprintf (key, sizeof key, "%stext_model.final_layer_norm", prefix);
  return bind_norm (&e->final_ln_w, &e->final_ln_b, c, cfg->width, key, err);
}

static gc_status
bind_projection (gc_text_encoder *e, const gc_checkpoint *c, const char *prefix, gc_error *err)
{
  char key[256];
  /* OpenCLIP stores a matrix used as x·P; HF names a linear layer [P, D]. */
  if (e->config.open_clip)
    snprintf (key, sizeof key, "%stext_projection", prefix);
  else
    snprintf (key, sizeof key, "%stext_projection.weight", prefix);
  if (gc_checkpoint_find (c, key) == NULL)
    return GC_OK;
  int64_t shape[2] = { -1, -1 };
  shape[e->config.open_clip ? 0 : 1] = e->config.width;
  gc_status s = gc_param_bind (&e->projection, c, key, 2, shape, err);
  if (s == GC_OK)
    e->config.projection = e->projection.weight.shape[e->config.open_clip ? 1 : 0];
  return s;
}

gc_status
gc_text_encoder_load (gc_text_encoder **out, const gc_checkpoint *c, const char *prefix,
                      gc_activation activation, gc_error *err)
{
  *out = NULL;
  gc_text_encoder *e = calloc (1, sizeof *e);
  if (e == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory loading the text encoder");
  gc_text_encoder_config *cfg = &e->config;
  cfg->activation = activation;
  cfg->open_clip = gc_checkpoint_hasf (c, "%stoken_embedding.weight", prefix);
  cfg->layers = count_blocks (c, prefix, cfg->open_clip);
  gc_status s = bind_embeddings (e, c, prefix, err);
  if (s == GC_OK && cfg->layers == 0)
    s = gc_error_set (err, GC_ERR_FORMAT, "the text encoder at '%s' has no transformer blocks",
                      prefix);
  cfg->heads = cfg->width / 64 > 0 ? cfg->width / 64 : 1; /* head size 64 in every family */
  if (s == GC_OK)
    s = bind_projection (e, c, prefix, err);
  if (s == GC_OK)
    {
      /* the MLP width from the first block's first layer */
      char key[256];
      if (cfg->open_clip)
        snprintf (key, sizeof key, "%stransformer.resblocks.0.mlp.c_fc.weight", prefix);
      else
        snprintf (key, sizeof key, "%stext_model.encoder.layers.0.mlp.fc1.weight", prefix);
      const gc_st_tensor *t = gc_checkpoint_find (c, key);
      if (t == NULL || t->ndim != 2)
        s = gc_error_set (err, GC_ERR_FORMAT, "the checkpoint has no tensor '%s'", key);
      else
        cfg->mlp_width = t->shape[0];
    }
  if (s == GC_OK && (e->blocks = calloc ((size_t) cfg->layers, sizeof *e->blocks)) == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory loading the text encoder");
  for (int64_t i = 0; s == GC_OK && i < cfg->layers; i++)
    s = cfg->open_clip ? bind_open_clip_block (&e->blocks[i], c, prefix, (int) i, cfg, err)
                       : bind_clip_block (&e->blocks[i], c, prefix, (int) i, cfg, err);
  if (s != GC_OK)
    {
      gc_text_encoder_free (e);
      return s;
    }
  *out = e;
  return GC_OK;
}

void
gc_text_encoder_free (gc_text_encoder *e)
{
  if (e == NULL)
    return;
  free (e->blocks);
  free (e);
}

const gc_text_encoder_config *
gc_text_encoder_get_config (const gc_text_encoder *e)
{
  return &e->config;
}

static gc_status
project (gc_arena *scratch, float *out, int64_t ld, const float *x, const gc_param *w,
         const gc_param *b, int64_t rows, gc_error *err)
{
  return gc_layer_linear (scratch, out, ld, x, w, b, rows, err);
}

static gc_status
layer_norm (gc_arena *scratch, float *out, const float *x, const gc_param *w, const gc_param *b,
            int64_t rows, int64_t dim, gc_error *err)
{
  return gc_layer_layer_norm (scratch, out, x, w, b, rows, dim, 1e-5f, err);
}

/* x[rows, D] += block(x) for `windows` windows of `positions` tokens */
static gc_status
run_block (const gc_text_encoder *e, const text_block *b, gc_arena *scratch, float *x,
           int64_t windows, gc_error *err)
{
  const gc_text_encoder_config *cfg = &e->config;
  int64_t d = cfg->width, rows = windows * cfg->positions;
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  float *h = gc_arena_floats (scratch, (size_t) (rows * d));            /* [rows, D] */
  float *qkv = gc_arena_floats (scratch, (size_t) (rows * 3 * d));      /* [rows, 3D] */
  float *attended = gc_arena_floats (scratch, (size_t) (rows * d));     /* [rows, D] */
  float *mlp = gc_arena_floats (scratch, (size_t) (rows * cfg->mlp_width)); /* [rows, M] */
  if (!h || !qkv || !attended || !mlp)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory in the text encoder");
  gc_status s;
  if ((s = layer_norm (scratch, h, x, &b->ln1_w, &b->ln1_b, rows, d, err)))
    return s;
  if (cfg->open_clip)
    s = project (scratch, qkv, 3 * d, h, &b->qkv_w, &b->qkv_b, rows, err);
  else if (!(s = project (scratch, qkv, 3 * d, h, &b->q_w, &b->q_b, rows, err))
           && !(s = project (scratch, qkv + d, 3 * d, h, &b->k_w, &b->k_b, rows, err)))
    s = project (scratch, qkv + 2 * d, 3 * d, h, &b->v_w, &b->v_b, rows, err);
  if (s)
    return s;
  gc_attention_shape shape = { windows, cfg->positions, cfg->positions, cfg->heads,
                               d / cfg->heads, 3 * d, 3 * d, 3 * d, true };
  gc_attention_forward (scratch, attended, qkv, qkv + d, qkv + 2 * d, &shape);
  if ((s = project (scratch, h, d, attended, &b->out_w, &b->out_b, rows, err)))
    return s;
  gc_add (x, x, h, rows * d);
  if ((s = layer_norm (scratch, h, x, &b->ln2_w, &b->ln2_b, rows, d, err))
      || (s = project (scratch, mlp, cfg->mlp_width, h, &b->fc1_w, &b->fc1_b, rows, err)))
    return s;
  gc_activation_forward (mlp, mlp, rows * cfg->mlp_width, cfg->activation);
  if ((s = project (scratch, h, d, mlp, &b->fc2_w, &b->fc2_b, rows, err)))
    return s;
  gc_add (x, x, h, rows * d);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

static gc_status
embed (const gc_text_encoder *e, gc_arena *scratch, float *x, const int32_t *ids, int64_t windows,
       gc_error *err)
{
  const gc_text_encoder_config *cfg = &e->config;
  int64_t d = cfg->width;
  const gc_weight *tokens = &e->token_embedding.weight;
  size_t row_bytes = (size_t) d * gc_dtype_size (tokens->dtype);
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *positions = gc_param_f32 (scratch, &e->position_embedding);
  if (positions == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory in the text encoder");
  for (int64_t w = 0; w < windows; w++)
    for (int64_t p = 0; p < cfg->positions; p++)
      {
        int32_t id = ids[w * cfg->positions + p];
        if (id < 0 || id >= cfg->vocab)
          return gc_error_set (err, GC_ERR_INVALID, "token id %d is outside the vocabulary of %lld",
                               id, (long long) cfg->vocab);
        float *row = x + (w * cfg->positions + p) * d;
        /* only the rows in use are read (and converted) from the 49408-row table */
        gc_convert_to_f32 (row, (const char *) tokens->data + (size_t) id * row_bytes,
                           tokens->dtype, (size_t) d);
        for (int64_t i = 0; i < d; i++)
          row[i] += positions[p * d + i];
      }
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

/* pooled[w] = final-normed state at window w's first end token, projected */
static gc_status
pool (const gc_text_encoder *e, gc_arena *scratch, float *pooled, const float *normed,
      const int32_t *ids, int64_t windows, gc_error *err)
{
  const gc_text_encoder_config *cfg = &e->config;
  if (cfg->projection == 0)
    return gc_error_set (err, GC_ERR_UNSUPPORTED, "this text encoder has no text projection");
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *proj = gc_param_f32 (scratch, &e->projection);
  if (proj == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory in the text encoder");
  for (int64_t w = 0; w < windows; w++)
    {
      int64_t eos = 0;
      for (int64_t p = 1; p < cfg->positions; p++)
        if (ids[w * cfg->positions + p] > ids[w * cfg->positions + eos])
          eos = p;
      const float *state = normed + (w * cfg->positions + eos) * cfg->width;
      /* OpenCLIP: state[D] · P[D, proj]; HF names: P[proj, D] · state */
      gc_matmul (pooled + w * cfg->projection, cfg->projection, state, cfg->width, false, proj,
                 cfg->open_clip ? cfg->projection : cfg->width, !cfg->open_clip, 1, cfg->projection,
                 cfg->width, 1, 0);
    }
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

gc_status
gc_text_encoder_forward (gc_text_encoder *e, gc_arena *scratch, float *hidden, float *pooled,
                         const int32_t *ids, int64_t windows, gc_text_output output,
                         gc_error *err)
{
  const gc_text_encoder_config *cfg = &e->config;
  if (output.skip < 1 || output.skip > cfg->layers)
    return gc_error_set (err, GC_ERR_INVALID, "clip skip %d is outside 1..%lld", output.skip,
                         (long long) cfg->layers);
  int64_t rows = windows * cfg->positions, d = cfg->width;
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  float *x = gc_arena_floats (scratch, (size_t) (rows * d)); /* [rows, D] residual stream */
  if (x == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory in the text encoder");
  gc_status s = embed (e, scratch, x, ids, windows, err);
  int64_t wanted = cfg->layers - output.skip + 1; /* blocks whose output is the answer */
  int64_t run = pooled ? cfg->layers : wanted;
  for (int64_t i = 0; s == GC_OK && i < run; i++)
    {
      s = run_block (e, &e->blocks[i], scratch, x, windows, err);
      if (s == GC_OK && i + 1 == wanted)
        s = output.final_norm
              ? layer_norm (scratch, hidden, x, &e->final_ln_w, &e->final_ln_b, rows, d, err)
              : (memcpy (hidden, x, sizeof (float) * rows * d), GC_OK);
    }
  if (s == GC_OK && pooled)
    {
      float *normed = gc_arena_floats (scratch, (size_t) (rows * d));
      s = normed ? layer_norm (scratch, normed, x, &e->final_ln_w, &e->final_ln_b, rows, d, err)
                 : gc_error_set (err, GC_ERR_NOMEM, "out of memory in the text encoder");
      if (s == GC_OK)
        s = pool (e, scratch, pooled, normed, ids, windows, err);
    }
  gc_arena_reset (scratch, mark);
  return s;
}

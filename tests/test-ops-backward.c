/* Finite-difference gradient checks for every differentiable op, driven from one table (ggml's
 * test-backend-ops).
 *
 * Each row names an op, a small odd-shaped configuration and a function that, called with
 * backward false, runs the forward and returns L = Σ out ⊙ R for a fixed random R, and called
 * with backward true runs the op's backward with d_out = R. The analytic gradient of every input
 * and parameter is compared with central differences of L; the same row also checks that the
 * backward accumulates (+=) and that every gradient pointer may be NULL.
 *
 * Precision: inputs are float32 and perturbed in float32, but L is summed in double and the
 * forwards used for L are the naive twins (double accumulation, one rounding per output; the
 * copies, mul and add have no twin and round once too), so the noise in L is about
 * 6e-8 · √(outputs) · |out|. Central differences with step ε have a truncation error of
 * ε²/6 · |f'''| and a rounding error of that noise / ε: ε = 1e-2 balances the two near 1e-5 for
 * inputs of order one (over this table the worst value uses 2 % of the tolerance with ε = 1e-2,
 * 23 % with ε = 1e-3). The denominator is the step actually taken in float,
 * (float)(x + ε) − (float)(x − ε), not 2ε. An analytic value a passes against the numeric n when
 * |a − n| ≤ 1e-2 · |n| + 1e-3 · max |n| over the tensor: a 1 % relative error, with a floor for
 * entries near zero where relative error means nothing.
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "gc-ops.h"
#include "gc-threads.h"

#define FD_STEP 1e-2
#define FD_RTOL 1e-2
#define FD_ATOL 1e-3

enum { MAX_TENSORS = 3 };

typedef struct {
  const char *name;
  float *x;    /* values */
  float *grad; /* the analytic gradient, accumulated by the backward */
  int64_t count;
} grad_tensor;

typedef struct grad_case grad_case;
typedef double (*grad_fn) (grad_case *c, bool backward);

typedef struct {
  const char *path;
  grad_fn fn;
  const void *config;
} grad_row;

struct grad_case {
  const grad_row *row;
  gc_arena scratch;
  grad_tensor tensors[MAX_TENSORS];
  int count;       /* tensors declared by the first call */
  int next;        /* the tensor input () hands out next during a call */
  unsigned wanted; /* bit i set: tensor i's gradient is passed, else NULL */
  float *out, *r;
  int64_t out_count;
};

static void
fill_random (float *x, int64_t count, guint32 seed, double range)
{
  GRand *rand = g_rand_new_with_seed (seed);
  for (int64_t i = 0; i < count; i++)
    x[i] = (float) g_rand_double_range (rand, -range, range);
  g_rand_free (rand);
}

/* The next input of the op: declared (filled with values in [−range, range]) on the first call,
 * the same tensor on later ones. */
static grad_tensor *
input (grad_case *c, const char *name, int64_t count, double range)
{
  if (c->next == c->count)
    {
      g_assert_cmpint (c->count, <, MAX_TENSORS);
      grad_tensor *t = &c->tensors[c->count++];
      t->name = name;
      t->count = count;
      t->x = g_new (float, count);
      t->grad = g_new0 (float, count);
      fill_random (t->x, count, 100 + c->count, range);
    }
  grad_tensor *t = &c->tensors[c->next++];
  g_assert_cmpint (t->count, ==, count);
  return t;
}

/* The gradient buffer of t, or NULL when this run does not ask for it. */
static float *
grad (const grad_case *c, const grad_tensor *t)
{
  return c->wanted & (1u << (t - c->tensors)) ? t->grad : NULL;
}

static float *
output (grad_case *c, int64_t count)
{
  if (c->out == NULL)
    {
      c->out_count = count;
      c->out = g_new (float, count);
      c->r = g_new (float, count);
      fill_random (c->r, count, 99, 1);
    }
  g_assert_cmpint (c->out_count, ==, count);
  return c->out;
}

static double
loss (const grad_case *c)
{
  double sum = 0;
  for (int64_t i = 0; i < c->out_count; i++)
    sum += (double) c->out[i] * c->r[i];
  return sum;
}

static double
run (grad_case *c, bool backward)
{
  c->next = 0;
  double l = c->row->fn (c, backward);
  g_assert_cmpint (c->next, ==, c->count);
  return l;
}

/* ---- the ops ---- */

typedef struct {
  int64_t rows, in_f, out_f;
} linear_config;

static double
run_linear (grad_case *c, bool backward)
{
  const linear_config *k = c->row->config;
  grad_tensor *in = input (c, "in", k->rows * k->in_f, 1);
  grad_tensor *w = input (c, "weight", k->out_f * k->in_f, 1);
  grad_tensor *b = input (c, "bias", k->out_f, 1);
  float *out = output (c, k->rows * k->out_f);
  if (backward)
    {
      gc_linear_backward (grad (c, in), grad (c, w), grad (c, b), c->r, in->x, w->x, k->rows,
                          k->in_f, k->out_f);
      return 0;
    }
  gc_linear_forward_naive (out, in->x, w->x, b->x, k->rows, k->in_f, k->out_f);
  return loss (c);
}

static double
run_conv2d (grad_case *c, bool backward)
{
  const gc_conv2d_shape *s = c->row->config;
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  grad_tensor *in = input (c, "in", s->n * s->c_in * s->h * s->w, 1);
  grad_tensor *w = input (c, "weight", s->c_out * s->c_in * s->kh * s->kw, 1);
  grad_tensor *b = input (c, "bias", s->c_out, 1);
  float *out = output (c, s->n * s->c_out * oh * ow);
  if (backward)
    {
      gc_conv2d_backward (&c->scratch, grad (c, in), grad (c, w), grad (c, b), c->r, in->x, w->x,
                          s);
      g_assert_cmpuint (c->scratch.in_use, ==, 0);
      return 0;
    }
  gc_conv2d_forward_naive (out, in->x, w->x, b->x, s);
  return loss (c);
}

/* Without affine, gamma and beta are NULL (1 and 0). */
typedef struct {
  int64_t n, c, hw, groups;
  bool affine;
} group_norm_config;

#define NORM_EPS 1e-5f

/* The backward reads the statistics saved by the forward it follows. */
static double
run_group_norm (grad_case *c, bool backward)
{
  const group_norm_config *k = c->row->config;
  grad_tensor *x = input (c, "x", k->n * k->c * k->hw, 1);
  grad_tensor *gamma = k->affine ? input (c, "gamma", k->c, 1) : NULL;
  grad_tensor *beta = k->affine ? input (c, "beta", k->c, 1) : NULL;
  const float *g = gamma ? gamma->x : NULL, *b = beta ? beta->x : NULL;
  float *out = output (c, k->n * k->c * k->hw);
  if (backward)
    {
      float *mean_rstd = g_new (float, 2 * k->n * k->groups);
      gc_group_norm_forward (out, mean_rstd, x->x, g, b, k->n, k->c, k->hw, k->groups, NORM_EPS);
      gc_group_norm_backward (grad (c, x), gamma ? grad (c, gamma) : NULL,
                              beta ? grad (c, beta) : NULL, c->r, x->x, mean_rstd, g, k->n, k->c,
                              k->hw, k->groups);
      g_free (mean_rstd);
      return 0;
    }
  gc_group_norm_forward_naive (out, x->x, g, b, k->n, k->c, k->hw, k->groups, NORM_EPS);
  return loss (c);
}

typedef struct {
  int64_t rows, dim;
  bool affine;
} layer_norm_config;

static double
run_layer_norm (grad_case *c, bool backward)
{
  const layer_norm_config *k = c->row->config;
  grad_tensor *x = input (c, "x", k->rows * k->dim, 1);
  grad_tensor *gamma = k->affine ? input (c, "gamma", k->dim, 1) : NULL;
  grad_tensor *beta = k->affine ? input (c, "beta", k->dim, 1) : NULL;
  const float *g = gamma ? gamma->x : NULL, *b = beta ? beta->x : NULL;
  float *out = output (c, k->rows * k->dim);
  if (backward)
    {
      float *mean_rstd = g_new (float, 2 * k->rows);
      gc_layer_norm_forward (out, mean_rstd, x->x, g, b, k->rows, k->dim, NORM_EPS);
      gc_layer_norm_backward (grad (c, x), gamma ? grad (c, gamma) : NULL,
                              beta ? grad (c, beta) : NULL, c->r, x->x, mean_rstd, g, k->rows,
                              k->dim);
      g_free (mean_rstd);
      return 0;
    }
  gc_layer_norm_forward_naive (out, x->x, g, b, k->rows, k->dim, NORM_EPS);
  return loss (c);
}

/* rows of dim values (GEGLU: rows of 2·dim in) */
typedef struct {
  int64_t rows, dim;
} rows_config;

typedef struct {
  int64_t count;
  gc_activation act;
} activation_config;

static double
run_activation (grad_case *c, bool backward)
{
  const activation_config *k = c->row->config;
  grad_tensor *x = input (c, "x", k->count, 5);
  float *out = output (c, k->count);
  if (backward)
    {
      gc_activation_backward (grad (c, x), c->r, x->x, k->count, k->act);
      return 0;
    }
  gc_activation_forward_naive (out, x->x, k->count, k->act);
  return loss (c);
}

static double
run_geglu (grad_case *c, bool backward)
{
  const rows_config *k = c->row->config;
  grad_tensor *x = input (c, "x", k->rows * 2 * k->dim, 3);
  float *out = output (c, k->rows * k->dim);
  if (backward)
    {
      gc_geglu_backward (grad (c, x), c->r, x->x, k->rows, k->dim);
      return 0;
    }
  gc_geglu_forward_naive (out, x->x, k->rows, k->dim);
  return loss (c);
}

/* The backward reads the softmax output, as a training step keeps it from the forward. */
static double
run_softmax (grad_case *c, bool backward)
{
  const rows_config *k = c->row->config;
  grad_tensor *x = input (c, "x", k->rows * k->dim, 3);
  float *out = output (c, k->rows * k->dim);
  if (backward)
    {
      gc_softmax_forward (out, x->x, k->rows, k->dim);
      gc_softmax_backward (grad (c, x), c->r, out, k->rows, k->dim);
      return 0;
    }
  gc_softmax_forward_naive (out, x->x, k->rows, k->dim);
  return loss (c);
}

/* How q, k and v lie in memory: three tensors; views into one fused projection
 * qkv[b, t, 3·heads·dh] (self-attention only); or q alone and k, v fused in kv[b, tk, 2·heads·dh]. */
typedef enum { QKV_SEPARATE, QKV_FUSED, KV_FUSED } qkv_layout;

typedef struct {
  int64_t batch, tq, tk, heads, dh;
  bool causal;
  qkv_layout layout;
} attention_config;

static double
run_attention (grad_case *c, bool backward)
{
  const attention_config *k = c->row->config;
  int64_t hd = k->heads * k->dh;
  gc_attention_shape s = { k->batch, k->tq, k->tk, k->heads, k->dh, hd, hd, hd, k->causal };
  const float *q, *kk, *v;
  float *d_q = NULL, *d_k = NULL, *d_v = NULL;
  if (k->layout == QKV_FUSED)
    {
      g_assert_cmpint (k->tq, ==, k->tk);
      grad_tensor *qkv = input (c, "qkv", k->batch * k->tq * 3 * hd, 1.5);
      s.q_stride = s.k_stride = s.v_stride = 3 * hd;
      q = qkv->x, kk = qkv->x + hd, v = qkv->x + 2 * hd;
      if (grad (c, qkv))
        d_q = qkv->grad, d_k = qkv->grad + hd, d_v = qkv->grad + 2 * hd;
    }
  else
    {
      grad_tensor *tq = input (c, "q", k->batch * k->tq * hd, 1.5);
      q = tq->x, d_q = grad (c, tq);
      if (k->layout == KV_FUSED)
        {
          grad_tensor *kv = input (c, "kv", k->batch * k->tk * 2 * hd, 1.5);
          s.k_stride = s.v_stride = 2 * hd;
          kk = kv->x, v = kv->x + hd;
          if (grad (c, kv))
            d_k = kv->grad, d_v = kv->grad + hd;
        }
      else
        {
          grad_tensor *tk = input (c, "k", k->batch * k->tk * hd, 1.5);
          grad_tensor *tv = input (c, "v", k->batch * k->tk * hd, 1.5);
          kk = tk->x, v = tv->x, d_k = grad (c, tk), d_v = grad (c, tv);
        }
    }
  float *out = output (c, k->batch * k->tq * hd);
  if (backward)
    {
      gc_attention_backward (&c->scratch, d_q, d_k, d_v, c->r, q, kk, v, &s);
      g_assert_cmpuint (c->scratch.in_use, ==, 0);
      return 0;
    }
  gc_attention_forward_naive (out, q, kk, v, &s);
  return loss (c);
}

typedef struct {
  int64_t n, c, h, w;
} image_config;

static double
run_upsample2x (grad_case *c, bool backward)
{
  const image_config *k = c->row->config;
  grad_tensor *in = input (c, "in", k->n * k->c * k->h * k->w, 1);
  float *out = output (c, k->n * k->c * 4 * k->h * k->w);
  if (backward)
    {
      gc_upsample2x_backward (grad (c, in), c->r, k->n, k->c, k->h, k->w);
      return 0;
    }
  gc_upsample2x_forward (out, in->x, k->n, k->c, k->h, k->w);
  return loss (c);
}

/* The NCHW ↔ tokens transpositions are each other's adjoint: the backward of one is the other,
 * added into the gradient. */
static double
run_nchw_to_tokens (grad_case *c, bool backward)
{
  const image_config *k = c->row->config;
  int64_t count = k->n * k->c * k->h * k->w;
  grad_tensor *in = input (c, "in", count, 1);
  float *out = output (c, count);
  if (backward)
    {
      if (grad (c, in))
        {
          float *d = g_new (float, count);
          gc_tokens_to_nchw (d, c->r, k->n, k->c, k->h * k->w);
          gc_accumulate (in->grad, d, count);
          g_free (d);
        }
      return 0;
    }
  gc_nchw_to_tokens (out, in->x, k->n, k->c, k->h * k->w);
  return loss (c);
}

static double
run_tokens_to_nchw (grad_case *c, bool backward)
{
  const image_config *k = c->row->config;
  int64_t count = k->n * k->c * k->h * k->w;
  grad_tensor *in = input (c, "in", count, 1);
  float *out = output (c, count);
  if (backward)
    {
      if (grad (c, in))
        {
          float *d = g_new (float, count);
          gc_nchw_to_tokens (d, c->r, k->n, k->c, k->h * k->w);
          gc_accumulate (in->grad, d, count);
          g_free (d);
        }
      return 0;
    }
  gc_tokens_to_nchw (out, in->x, k->n, k->c, k->h * k->w);
  return loss (c);
}

typedef struct {
  int64_t n, ca, cb, hw;
} concat_config;

static double
run_concat (grad_case *c, bool backward)
{
  const concat_config *k = c->row->config;
  grad_tensor *a = input (c, "a", k->n * k->ca * k->hw, 1);
  grad_tensor *b = input (c, "b", k->n * k->cb * k->hw, 1);
  float *out = output (c, k->n * (k->ca + k->cb) * k->hw);
  if (backward)
    {
      gc_concat_channels_backward (grad (c, a), grad (c, b), c->r, k->n, k->ca, k->cb, k->hw);
      return 0;
    }
  gc_concat_channels_forward (out, a->x, b->x, k->n, k->ca, k->cb, k->hw);
  return loss (c);
}

typedef struct {
  int64_t count;
} count_config;

static double
run_mul (grad_case *c, bool backward)
{
  const count_config *k = c->row->config;
  grad_tensor *a = input (c, "a", k->count, 2);
  grad_tensor *b = input (c, "b", k->count, 2);
  float *out = output (c, k->count);
  if (backward)
    {
      gc_mul_backward (grad (c, a), grad (c, b), c->r, a->x, b->x, k->count);
      return 0;
    }
  gc_mul (out, a->x, b->x, k->count);
  return loss (c);
}

/* Addition's backward is gc_accumulate into each operand. */
static double
run_add (grad_case *c, bool backward)
{
  const count_config *k = c->row->config;
  grad_tensor *a = input (c, "a", k->count, 2);
  grad_tensor *b = input (c, "b", k->count, 2);
  float *out = output (c, k->count);
  if (backward)
    {
      if (grad (c, a))
        gc_accumulate (a->grad, c->r, k->count);
      if (grad (c, b))
        gc_accumulate (b->grad, c->r, k->count);
      return 0;
    }
  gc_add (out, a->x, b->x, k->count);
  return loss (c);
}

#define CONFIG(type, ...) (&(const type) { __VA_ARGS__ })

static const grad_row grad_rows[] = {
  { "/core/ops/linear/backward", run_linear, CONFIG (linear_config, 5, 7, 3) },
  { "/core/ops/linear/backward/one-row", run_linear, CONFIG (linear_config, 1, 4, 9) },
  /* conv2d shapes: n, c_in, h, w, c_out, kh, kw, stride, pad top, bottom, left, right */
  { "/core/ops/conv2d/backward/3x3-pad1", run_conv2d,
    CONFIG (gc_conv2d_shape, 2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1) },
  { "/core/ops/conv2d/backward/3x3-stride2", run_conv2d,
    CONFIG (gc_conv2d_shape, 2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1, 1) },
  { "/core/ops/conv2d/backward/1x1", run_conv2d,
    CONFIG (gc_conv2d_shape, 2, 5, 4, 3, 3, 1, 1, 1, 0, 0, 0, 0) },
  { "/core/ops/conv2d/backward/asymmetric-pad", run_conv2d, /* the VAE encoder's downsampling */
    CONFIG (gc_conv2d_shape, 1, 3, 8, 6, 4, 3, 3, 2, 0, 1, 0, 1) },
  { "/core/ops/conv2d/backward/5x3-valid", run_conv2d,
    CONFIG (gc_conv2d_shape, 1, 2, 9, 6, 3, 5, 3, 1, 0, 0, 0, 0) },
  { "/core/ops/conv2d/backward/1x1-stride2", run_conv2d,
    CONFIG (gc_conv2d_shape, 1, 2, 5, 5, 3, 1, 1, 2, 0, 0, 0, 0) },
  /* group norm: n, c, hw, groups, affine */
  { "/core/ops/groupnorm/backward", run_group_norm,
    CONFIG (group_norm_config, 2, 6, 5, 3, true) },
  { "/core/ops/groupnorm/backward/one-group", run_group_norm,
    CONFIG (group_norm_config, 1, 4, 9, 1, true) },
  { "/core/ops/groupnorm/backward/channel-groups", run_group_norm,
    CONFIG (group_norm_config, 3, 4, 7, 4, true) },
  { "/core/ops/groupnorm/backward/no-affine", run_group_norm,
    CONFIG (group_norm_config, 2, 6, 4, 2, false) },
  /* layer norm: rows, dim, affine */
  { "/core/ops/layernorm/backward", run_layer_norm, CONFIG (layer_norm_config, 5, 7, true) },
  { "/core/ops/layernorm/backward/wide", run_layer_norm,
    CONFIG (layer_norm_config, 3, 45, true) },
  { "/core/ops/layernorm/backward/no-affine", run_layer_norm,
    CONFIG (layer_norm_config, 4, 9, false) },
  { "/core/ops/activation/silu/backward", run_activation,
    CONFIG (activation_config, 101, GC_ACT_SILU) },
  { "/core/ops/activation/gelu/backward", run_activation,
    CONFIG (activation_config, 101, GC_ACT_GELU) },
  { "/core/ops/activation/quick-gelu/backward", run_activation,
    CONFIG (activation_config, 101, GC_ACT_QUICK_GELU) },
  { "/core/ops/geglu/backward", run_geglu, CONFIG (rows_config, 3, 13) },
  { "/core/ops/softmax/backward", run_softmax, CONFIG (rows_config, 4, 11) },
  /* attention: batch, tq, tk, heads, dh, causal, layout */
  { "/core/ops/attention/backward/self-fused", run_attention,
    CONFIG (attention_config, 2, 9, 9, 3, 4, false, QKV_FUSED) },
  { "/core/ops/attention/backward/self-fused-causal", run_attention,
    CONFIG (attention_config, 2, 9, 9, 3, 4, true, QKV_FUSED) },
  { "/core/ops/attention/backward/self-two-tiles", run_attention, /* tq > the 64-query tile */
    CONFIG (attention_config, 1, 67, 67, 2, 3, false, QKV_FUSED) },
  { "/core/ops/attention/backward/causal-two-tiles", run_attention,
    CONFIG (attention_config, 1, 67, 67, 2, 3, true, QKV_SEPARATE) },
  { "/core/ops/attention/backward/self-separate-causal", run_attention,
    CONFIG (attention_config, 2, 6, 6, 1, 5, true, QKV_SEPARATE) },
  { "/core/ops/attention/backward/cross", run_attention,
    CONFIG (attention_config, 2, 5, 13, 3, 2, false, QKV_SEPARATE) },
  { "/core/ops/attention/backward/cross-fused-kv", run_attention,
    CONFIG (attention_config, 1, 11, 7, 2, 5, false, KV_FUSED) },
  { "/core/ops/upsample2x/backward", run_upsample2x, CONFIG (image_config, 2, 3, 3, 5) },
  { "/core/ops/layout/nchw-to-tokens/backward", run_nchw_to_tokens,
    CONFIG (image_config, 2, 37, 3, 5) },
  { "/core/ops/layout/tokens-to-nchw/backward", run_tokens_to_nchw,
    CONFIG (image_config, 2, 37, 3, 5) },
  { "/core/ops/concat/backward", run_concat, CONFIG (concat_config, 2, 3, 5, 7) },
  { "/core/ops/mul/backward", run_mul, CONFIG (count_config, 37) },
  { "/core/ops/add/backward", run_add, CONFIG (count_config, 37) },
};

static void
grad_case_free (grad_case *c)
{
  for (int i = 0; i < c->count; i++)
    g_free (c->tensors[i].x), g_free (c->tensors[i].grad);
  g_free (c->out), g_free (c->r);
  gc_arena_free (&c->scratch);
}

static void
set_gradients (grad_case *c, const float *const *values)
{
  for (int i = 0; i < c->count; i++)
    if (values)
      memcpy (c->tensors[i].grad, values[i], sizeof (float) * c->tensors[i].count);
    else
      memset (c->tensors[i].grad, 0, sizeof (float) * c->tensors[i].count);
}

/* ∂L/∂x by central differences, perturbing x in float and dividing by the step taken. */
static double *
numeric_gradient (grad_case *c, grad_tensor *t)
{
  double *numeric = g_new (double, t->count);
  for (int64_t i = 0; i < t->count; i++)
    {
      float saved = t->x[i];
      float up = (float) (saved + FD_STEP), down = (float) (saved - FD_STEP);
      t->x[i] = up;
      double l_up = run (c, false);
      t->x[i] = down;
      double l_down = run (c, false);
      t->x[i] = saved;
      numeric[i] = (l_up - l_down) / ((double) up - down);
    }
  return numeric;
}

static void
test_gradients (gconstpointer data)
{
  grad_case c = { .row = data };
  gc_arena_init (&c.scratch, 1 << 20);
  run (&c, false); /* declares the tensors */
  unsigned all = (1u << c.count) - 1;

  /* Gradients start from random values so that the backward must add, not overwrite. */
  float *start[MAX_TENSORS], *once[MAX_TENSORS];
  for (int i = 0; i < c.count; i++)
    {
      start[i] = g_new (float, c.tensors[i].count);
      fill_random (start[i], c.tensors[i].count, 200 + i, 1);
      once[i] = g_new (float, c.tensors[i].count);
    }
  set_gradients (&c, (const float *const *) start);
  c.wanted = all;
  run (&c, true);
  for (int i = 0; i < c.count; i++)
    memcpy (once[i], c.tensors[i].grad, sizeof (float) * c.tensors[i].count);

  for (int i = 0; i < c.count; i++)
    {
      grad_tensor *t = &c.tensors[i];
      double *numeric = numeric_gradient (&c, t);
      double scale = 0, worst = 0;
      for (int64_t e = 0; e < t->count; e++)
        scale = fmax (scale, fabs (numeric[e]));
      for (int64_t e = 0; e < t->count; e++)
        {
          double analytic = (double) once[i][e] - start[i][e];
          double error = fabs (analytic - numeric[e]);
          double bound = FD_RTOL * fabs (numeric[e]) + FD_ATOL * scale;
          worst = fmax (worst, error / (fabs (numeric[e]) + FD_ATOL / FD_RTOL * scale + 1e-30));
          if (error > bound)
            g_test_message ("d_%s[%" G_GINT64_FORMAT "] = %.6g, finite differences give %.6g",
                            t->name, e, analytic, numeric[e]);
          g_assert_cmpfloat (error, <=, bound);
        }
      g_test_message ("d_%s: %" G_GINT64_FORMAT " values, max |grad| %.3g, worst error %.2g of "
                      "tolerance", t->name, t->count, scale, worst / FD_RTOL);
      g_free (numeric);
    }

  /* A second call adds the same gradient again. */
  run (&c, true);
  for (int i = 0; i < c.count; i++)
    for (int64_t e = 0; e < c.tensors[i].count; e++)
      {
        double first = (double) once[i][e] - start[i][e];
        double second = (double) c.tensors[i].grad[e] - start[i][e];
        g_assert_cmpfloat (fabs (second - 2 * first), <=, 1e-5 * (1 + fabs (second)));
      }

  /* Each gradient alone, the others NULL, gives the same values; none at all is accepted. */
  for (int i = 0; i < c.count; i++)
    {
      set_gradients (&c, NULL);
      c.wanted = 1u << i;
      run (&c, true);
      for (int64_t e = 0; e < c.tensors[i].count; e++)
        {
          double first = (double) once[i][e] - start[i][e];
          g_assert_cmpfloat (fabs (c.tensors[i].grad[e] - first), <=, 1e-5 * (1 + fabs (first)));
        }
      for (int j = 0; j < c.count; j++)
        if (j != i)
          for (int64_t e = 0; e < c.tensors[j].count; e++)
            g_assert_cmpfloat (c.tensors[j].grad[e], ==, 0.0f);
    }
  c.wanted = 0;
  run (&c, true);

  for (int i = 0; i < c.count; i++)
    g_free (start[i]), g_free (once[i]);
  grad_case_free (&c);
}

/* ---- the statistics the norms save for their backward ---- */

/* Checks one group of `count` values x against its saved mean and rstd: they are the group's
 * statistics, and out is (x − mean)·rstd·gamma + beta with them (gamma, beta per value). */
static void
check_saved_group (const float *stats, const float *out, const float *x, int64_t count,
                   const float *gamma, const float *beta, int64_t values_per_affine)
{
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < count; i++)
    sum += x[i];
  double mean = sum / count;
  for (int64_t i = 0; i < count; i++)
    sq += (x[i] - mean) * (x[i] - mean);
  double rstd = 1 / sqrt (sq / count + NORM_EPS);
  g_assert_cmpfloat (fabs (stats[0] - mean), <=, 1e-6 * (1 + fabs (mean)));
  g_assert_cmpfloat (fabs (stats[1] - rstd), <=, 1e-6 * rstd);
  for (int64_t i = 0; i < count; i++)
    {
      int64_t a = i / values_per_affine;
      double y = (x[i] - (double) stats[0]) * stats[1] * gamma[a] + beta[a];
      g_assert_cmpfloat (fabs (out[i] - y), <=, 1e-5 * (1 + fabs (y)));
    }
}

/* mean_rstd[2·t], [2·t + 1] hold the mean and 1/√(var + eps) of group t (image-major) or row t,
 * the layout the backwards read, and the forwards' outputs are what they describe. */
static void
test_norm_statistics (void)
{
  const int64_t n = 2, c = 12, hw = 35, groups = 4, per_group = c / groups;
  float *x = g_new (float, n * c * hw), *out = g_new (float, n * c * hw);
  float *gamma = g_new (float, c), *beta = g_new (float, c);
  fill_random (x, n * c * hw, 1, 2);
  fill_random (gamma, c, 2, 1);
  fill_random (beta, c, 3, 1);
  for (int64_t i = 0; i < n * c * hw; i++)
    x[i] += (float) (i / (per_group * hw)); /* every group its own mean */
  float *stats = g_new (float, 2 * n * groups);
  gc_group_norm_forward (out, stats, x, gamma, beta, n, c, hw, groups, NORM_EPS);
  for (int64_t t = 0; t < n * groups; t++)
    {
      int64_t offset = t * per_group * hw, first_channel = t % groups * per_group;
      check_saved_group (stats + 2 * t, out + offset, x + offset, per_group * hw,
                         gamma + first_channel, beta + first_channel, hw);
    }
  g_free (stats);

  const int64_t rows = 9, dim = 67;
  float *lgamma = g_new (float, dim), *lbeta = g_new (float, dim);
  fill_random (lgamma, dim, 4, 1);
  fill_random (lbeta, dim, 5, 1);
  stats = g_new (float, 2 * rows);
  gc_layer_norm_forward (out, stats, x, lgamma, lbeta, rows, dim, NORM_EPS);
  for (int64_t r = 0; r < rows; r++)
    check_saved_group (stats + 2 * r, out + r * dim, x + r * dim, dim, lgamma, lbeta, 1);
  g_free (x), g_free (out), g_free (gamma), g_free (beta), g_free (lgamma), g_free (lbeta);
  g_free (stats);
}

/* ---- larger shapes on several threads against one thread ---- */

static double
max_abs_difference (const float *a, const float *b, int64_t count, double *scale)
{
  double worst = 0;
  *scale = 1e-30;
  for (int64_t i = 0; i < count; i++)
    {
      worst = fmax (worst, fabs ((double) a[i] - b[i]));
      *scale = fmax (*scale, fabs ((double) b[i]));
    }
  return worst;
}

/* The conv2d backward by direct loops in double: the reference for shapes too large for
 * finite differences (several bands of output rows). */
static void
conv2d_backward_reference (double *d_in, double *d_weight, const float *d_out, const float *in,
                           const float *weight, const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  for (int64_t n = 0; n < s->n; n++)
    for (int64_t o = 0; o < s->c_out; o++)
      for (int64_t c = 0; c < s->c_in; c++)
        for (int64_t ky = 0; ky < s->kh; ky++)
          for (int64_t kx = 0; kx < s->kw; kx++)
            {
              int64_t wi = ((o * s->c_in + c) * s->kh + ky) * s->kw + kx;
              double dw = 0;
              for (int64_t y = 0; y < oh; y++)
                {
                  int64_t yi = y * s->stride + ky - s->pad_top;
                  if (yi < 0 || yi >= s->h)
                    continue;
                  for (int64_t x = 0; x < ow; x++)
                    {
                      int64_t xi = x * s->stride + kx - s->pad_left;
                      if (xi < 0 || xi >= s->w)
                        continue;
                      double g = d_out[((n * s->c_out + o) * oh + y) * ow + x];
                      int64_t ii = ((n * s->c_in + c) * s->h + yi) * s->w + xi;
                      dw += g * in[ii];
                      d_in[ii] += g * weight[wi];
                    }
                }
              d_weight[wi] += dw;
            }
}

static void
check_against (const float *fast, const double *reference, int64_t count, double tolerance)
{
  double worst = 0, scale = 1e-30;
  for (int64_t i = 0; i < count; i++)
    {
      worst = fmax (worst, fabs (fast[i] - reference[i]));
      scale = fmax (scale, fabs (reference[i]));
    }
  g_assert_cmpfloat (worst / scale, <=, tolerance);
}

/* Set in main (): every CPU, but at least 4 so the split is exercised on small machines. */
static int many_threads;

static void
check_conv2d_threads (const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  int64_t in_n = s->n * s->c_in * s->h * s->w, w_n = s->c_out * s->c_in * s->kh * s->kw;
  int64_t out_n = s->n * s->c_out * oh * ow;
  float *in = g_new (float, in_n), *w = g_new (float, w_n), *d_out = g_new (float, out_n);
  fill_random (in, in_n, 1, 1);
  fill_random (w, w_n, 2, 0.1);
  fill_random (d_out, out_n, 3, 1);
  gc_arena scratch;
  gc_arena_init (&scratch, 0);
  float *d_in[2], *d_w[2], *d_b[2];
  double seconds[2];
  for (int run = 0; run < 2; run++)
    {
      d_in[run] = g_new0 (float, in_n), d_w[run] = g_new0 (float, w_n);
      d_b[run] = g_new0 (float, s->c_out);
      gc_threads_set (run == 0 ? 1 : many_threads);
      /* a first call touches the memory, the second is timed */
      gc_conv2d_backward (&scratch, d_in[run], d_w[run], d_b[run], d_out, in, w, s);
      memset (d_in[run], 0, sizeof (float) * in_n), memset (d_w[run], 0, sizeof (float) * w_n);
      memset (d_b[run], 0, sizeof (float) * s->c_out);
      g_test_timer_start ();
      gc_conv2d_backward (&scratch, d_in[run], d_w[run], d_b[run], d_out, in, w, s);
      seconds[run] = g_test_timer_elapsed ();
      g_assert_cmpuint (scratch.in_use, ==, 0);
    }
  double flops = 4.0 * out_n * s->c_in * s->kh * s->kw;
  g_test_message ("conv2d backward [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                  ", %" G_GINT64_FORMAT "] -> %" G_GINT64_FORMAT " channels, %" G_GINT64_FORMAT
                  "x%" G_GINT64_FORMAT " stride %" G_GINT64_FORMAT ": 1 thread %.1f ms "
                  "(%.1f GFLOP/s), %d threads %.1f ms (%.1f GFLOP/s)",
                  s->n, s->c_in, s->h, s->w, s->c_out, s->kh, s->kw, s->stride,
                  seconds[0] * 1e3, flops / seconds[0] * 1e-9, many_threads, seconds[1] * 1e3,
                  flops / seconds[1] * 1e-9);
  double scale;
  g_assert_cmpfloat (max_abs_difference (d_in[1], d_in[0], in_n, &scale), <=, 1e-5 * scale);
  g_assert_cmpfloat (max_abs_difference (d_w[1], d_w[0], w_n, &scale), <=, 1e-5 * scale);
  g_assert_cmpfloat (max_abs_difference (d_b[1], d_b[0], s->c_out, &scale), <=, 1e-6 * scale);

  double *ref_in = g_new0 (double, in_n), *ref_w = g_new0 (double, w_n);
  conv2d_backward_reference (ref_in, ref_w, d_out, in, w, s);
  check_against (d_in[0], ref_in, in_n, 1e-5);
  check_against (d_w[0], ref_w, w_n, 1e-5);
  for (int run = 0; run < 2; run++)
    g_free (d_in[run]), g_free (d_w[run]), g_free (d_b[run]);
  g_free (ref_in), g_free (ref_w), g_free (in), g_free (w), g_free (d_out);
  gc_arena_free (&scratch);
}

static void
test_conv2d_threads (void)
{
  /* a UNet 3×3 convolution at 48×40, its downsampling and a 1×1 projection */
  check_conv2d_threads (CONFIG (gc_conv2d_shape, 2, 64, 48, 40, 96, 3, 3, 1, 1, 1, 1, 1));
  check_conv2d_threads (CONFIG (gc_conv2d_shape, 1, 96, 48, 40, 96, 3, 3, 2, 1, 1, 1, 1));
  check_conv2d_threads (CONFIG (gc_conv2d_shape, 2, 96, 48, 40, 64, 1, 1, 1, 0, 0, 0, 0));
  /* tall enough that the backward works in two bands of output rows */
  check_conv2d_threads (CONFIG (gc_conv2d_shape, 1, 32, 256, 64, 16, 3, 3, 1, 1, 1, 1, 1));
  gc_threads_set (many_threads);
}

static void
test_group_norm_threads (void)
{
  const int64_t n = 2, c = 320, hw = 48 * 40, groups = 32;
  int64_t count = n * c * hw;
  float *x = g_new (float, count), *d_out = g_new (float, count), *out = g_new (float, count);
  float *gamma = g_new (float, c), *mean_rstd = g_new (float, 2 * n * groups);
  fill_random (x, count, 1, 2);
  fill_random (d_out, count, 2, 1);
  fill_random (gamma, c, 3, 1);
  gc_group_norm_forward (out, mean_rstd, x, gamma, NULL, n, c, hw, groups, NORM_EPS);
  float *d_x[2], *d_gamma[2], *d_beta[2];
  double seconds[2];
  for (int run = 0; run < 2; run++)
    {
      d_x[run] = g_new0 (float, count), d_gamma[run] = g_new0 (float, c);
      d_beta[run] = g_new0 (float, c);
      gc_threads_set (run == 0 ? 1 : many_threads);
      gc_group_norm_backward (d_x[run], d_gamma[run], d_beta[run], d_out, x, mean_rstd, gamma, n,
                              c, hw, groups);
      memset (d_x[run], 0, sizeof (float) * count), memset (d_gamma[run], 0, sizeof (float) * c);
      memset (d_beta[run], 0, sizeof (float) * c);
      g_test_timer_start ();
      gc_group_norm_backward (d_x[run], d_gamma[run], d_beta[run], d_out, x, mean_rstd, gamma, n,
                              c, hw, groups);
      seconds[run] = g_test_timer_elapsed ();
    }
  g_test_message ("group norm backward [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                  G_GINT64_FORMAT "], %" G_GINT64_FORMAT " groups: 1 thread %.2f ms, %d threads "
                  "%.2f ms", n, c, hw, groups, seconds[0] * 1e3, many_threads, seconds[1] * 1e3);
  /* every value is computed by one thread in the same order whatever the thread count */
  g_assert_cmpmem (d_x[1], sizeof (float) * count, d_x[0], sizeof (float) * count);
  g_assert_cmpmem (d_gamma[1], sizeof (float) * c, d_gamma[0], sizeof (float) * c);
  g_assert_cmpmem (d_beta[1], sizeof (float) * c, d_beta[0], sizeof (float) * c);
  for (int run = 0; run < 2; run++)
    g_free (d_x[run]), g_free (d_gamma[run]), g_free (d_beta[run]);
  g_free (x), g_free (d_out), g_free (out), g_free (gamma), g_free (mean_rstd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gc_threads_set (0);
  many_threads = MAX (gc_threads_get (), 4);
  gc_threads_set (many_threads);
  for (size_t i = 0; i < G_N_ELEMENTS (grad_rows); i++)
    g_test_add_data_func (grad_rows[i].path, &grad_rows[i], test_gradients);
  g_test_add_func ("/core/ops/norm/saved-statistics", test_norm_statistics);
  g_test_add_func ("/core/ops/conv2d/backward/threads", test_conv2d_threads);
  g_test_add_func ("/core/ops/groupnorm/backward/threads", test_group_norm_threads);
  return g_test_run ();
}

#include "gc-layers.h"

#include <string.h>

#include "gc-matmul.h"
#include "gc-threads.h"

gc_status
gc_layer_out_of_memory (gc_error *err)
{
  return gc_error_set (err, GC_ERR_NOMEM, "out of memory while running the model");
}

typedef struct {
  float *out;
  const float *bias;
  int64_t ld, cols;
} bias_rows_job;

static void
bias_rows (void *ctx, int64_t begin, int64_t end)
{
  const bias_rows_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    for (int64_t o = 0; o < j->cols; o++)
      j->out[r * j->ld + o] += j->bias[o];
}

gc_status
gc_layer_linear (gc_arena *scratch, float *out, int64_t ld_out, const float *x, const gc_param *w,
                 const gc_param *b, int64_t rows, gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t out_f = w->weight.shape[0], in_f = w->weight.shape[1];
  const float *wf = gc_param_f32 (scratch, w);
  const float *bf = b ? gc_param_f32 (scratch, b) : NULL;
  if (wf == NULL || (b && bf == NULL))
    return gc_layer_out_of_memory (err);
  gc_matmul (out, ld_out, x, in_f, false, wf, in_f, true, rows, out_f, in_f, 1, 0);
  if (bf)
    {
      bias_rows_job job = { out, bf, ld_out, out_f };
      gc_parallel_for (rows, 1 + (1 << 15) / (out_f + 1), bias_rows, &job);
    }
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

/* Stride-1 kernels larger than 1×1: widen and reorder the weight in one pass. */
static gc_status
conv_by_taps (gc_arena *scratch, float *out, const float *x, const gc_param *w, const gc_param *b,
              const gc_conv2d_shape *shape, gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  float *taps = gc_arena_floats (scratch, (size_t) gc_param_numel (w));
  const float *bf = b ? gc_param_f32 (scratch, b) : NULL;
  const float *styled = gc_param_is_patched (w) ? gc_param_f32 (scratch, w) : NULL;
  if (taps == NULL || (b && bf == NULL) || (gc_param_is_patched (w) && styled == NULL))
    return gc_layer_out_of_memory (err);
  if (styled)
    gc_conv2d_taps (scratch, taps, styled, GC_DTYPE_F32, shape);
  else
    gc_conv2d_taps (scratch, taps, w->weight.data, w->weight.dtype, shape);
  gc_conv2d_forward_taps (scratch, out, x, taps, bf, shape);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

gc_status
gc_layer_conv_padded (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                      const gc_param *b, gc_conv2d_shape shape, gc_error *err)
{
  if (gc_conv2d_uses_taps (&shape))
    return conv_by_taps (scratch, out, x, w, b, &shape, err);
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *wf = gc_param_f32 (scratch, w);
  const float *bf = b ? gc_param_f32 (scratch, b) : NULL;
  if (wf == NULL || (b && bf == NULL))
    return gc_layer_out_of_memory (err);
  gc_conv2d_forward (scratch, out, x, wf, bf, &shape);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

gc_status
gc_layer_conv (gc_arena *scratch, float *out, const float *x, const gc_param *w,
               const gc_param *b, int64_t n, int64_t h, int64_t wd, int64_t stride, int64_t pad,
               gc_error *err)
{
  const int64_t *s = w->weight.shape;
  int64_t k = w->weight.ndim == 4 ? s[2] : 1;
  gc_conv2d_shape shape = gc_conv2d_square (n, s[1], h, wd, s[0], k, stride, pad);
  return gc_layer_conv_padded (scratch, out, x, w, b, shape, err);
}

gc_status
gc_layer_group_norm (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                     const gc_param *b, int64_t n, int64_t c, int64_t hw, float eps, bool silu,
                     gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *wf = gc_param_f32 (scratch, w), *bf = gc_param_f32 (scratch, b);
  if (wf == NULL || bf == NULL)
    return gc_layer_out_of_memory (err);
  if (silu)
    gc_group_norm_silu_forward (out, x, wf, bf, n, c, hw, 32, eps);
  else
    gc_group_norm_forward (out, NULL, x, wf, bf, n, c, hw, 32, eps);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

gc_status
gc_layer_layer_norm (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                     const gc_param *b, int64_t rows, int64_t dim, float eps, gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *wf = gc_param_f32 (scratch, w), *bf = gc_param_f32 (scratch, b);
  if (wf == NULL || bf == NULL)
    return gc_layer_out_of_memory (err);
  gc_layer_norm_forward (out, NULL, x, wf, bf, rows, dim, eps);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

/* ------------------------------------------------------------------ training */

gc_status
gc_layer_group_norm_keep (gc_arena *scratch, float *out, float *mean_rstd, const float *x,
                          const gc_param *w, const gc_param *b, int64_t n, int64_t c, int64_t hw,
                          float eps, gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *wf = gc_param_f32 (scratch, w), *bf = gc_param_f32 (scratch, b);
  if (wf == NULL || bf == NULL)
    return gc_layer_out_of_memory (err);
  gc_group_norm_forward (out, mean_rstd, x, wf, bf, n, c, hw, 32, eps);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

gc_status
gc_layer_layer_norm_keep (gc_arena *scratch, float *out, float *mean_rstd, const float *x,
                          const gc_param *w, const gc_param *b, int64_t rows, int64_t dim,
                          float eps, gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *wf = gc_param_f32 (scratch, w), *bf = gc_param_f32 (scratch, b);
  if (wf == NULL || bf == NULL)
    return gc_layer_out_of_memory (err);
  gc_layer_norm_forward (out, mean_rstd, x, wf, bf, rows, dim, eps);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

typedef struct {
  float *sums;
  const float *d_out;
  int64_t ld, cols, hw;
} sums_job;

/* sums[r] += Σ_i d_out[r·hw + i] (channel sums), rows [begin, end) */
static void
channel_sums_range (void *ctx, int64_t begin, int64_t end)
{
  const sums_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    {
      double sum = 0;
      for (int64_t i = 0; i < j->hw; i++)
        sum += j->d_out[r * j->hw + i];
      j->sums[r] += (float) sum;
    }
}

void
gc_layer_channel_sums (float *d_bias, const float *d_out, int64_t rows, int64_t hw)
{
  sums_job job = { d_bias, d_out, 0, 0, hw };
  gc_parallel_for (rows, 1 + (1 << 14) / (hw + 1), channel_sums_range, &job);
}

/* sums[o] = Σ_r d_out[r·ld + o] (column sums of token rows), columns [begin, end) */
static void
column_sums_range (void *ctx, int64_t begin, int64_t end)
{
  const sums_job *j = ctx;
  for (int64_t o = begin; o < end; o++)
    {
      double sum = 0;
      for (int64_t r = 0; r < j->hw; r++)
        sum += j->d_out[r * j->ld + o];
      j->sums[o] = (float) sum;
    }
}

/* Hands dL/dW to the sink; the gradient buffer comes from scratch and is released. */
static float *
grad_buffer (gc_arena *scratch, const gc_param *p)
{
  return gc_arena_floats (scratch, (size_t) gc_param_numel (p));
}

gc_status
gc_layer_linear_backward (gc_arena *scratch, float *d_x, int64_t ld_dx, const float *d_out,
                          int64_t ld_dout, const float *x, int64_t ld_x, const gc_param *w,
                          const gc_param *b, int64_t rows, const gc_grad_sink *grads,
                          gc_error *err)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t out_f = w->weight.shape[0], in_f = w->weight.shape[1];
  if (d_x)
    {
      const float *wf = gc_param_f32 (scratch, w);
      if (wf == NULL)
        return gc_layer_out_of_memory (err);
      /* d_x[rows, in_f] += d_out[rows, out_f] · W[out_f, in_f] */
      gc_matmul (d_x, ld_dx, d_out, ld_dout, false, wf, in_f, false, rows, in_f, out_f, 1, 1);
      gc_arena_reset (scratch, mark);
    }
  if (gc_grad_wants (grads, w))
    {
      float *dw = grad_buffer (scratch, w); /* [out_f, in_f] */
      if (dw == NULL)
        return gc_layer_out_of_memory (err);
      gc_matmul (dw, in_f, d_out, ld_dout, true, x, ld_x, false, out_f, in_f, rows, 1, 0);
      grads->accumulate (grads->ctx, w, dw);
      gc_arena_reset (scratch, mark);
    }
  if (gc_grad_wants (grads, b))
    {
      float *db = grad_buffer (scratch, b); /* [out_f] */
      if (db == NULL)
        return gc_layer_out_of_memory (err);
      sums_job job = { db, d_out, ld_dout, 0, rows };
      gc_parallel_for (out_f, 1 + (1 << 12) / (rows + 1), column_sums_range, &job);
      grads->accumulate (grads->ctx, b, db);
      gc_arena_reset (scratch, mark);
    }
  return GC_OK;
}

/* kt[c_in, c_out, kh, kw] = w[c_out, c_in, kh − 1 − y, kw − 1 − x]: the kernel of the
 * convolution that carries d_out back to d_x. */
static void
flip_kernel (float *kt, const float *w, int64_t c_out, int64_t c_in, int64_t kh, int64_t kw)
{
  int64_t kk = kh * kw;
  for (int64_t o = 0; o < c_out; o++)
    for (int64_t i = 0; i < c_in; i++)
      for (int64_t t = 0; t < kk; t++)
        kt[(i * c_out + o) * kk + (kk - 1 - t)] = w[(o * c_in + i) * kk + t];
}

gc_status
gc_layer_conv_backward (gc_arena *scratch, float *d_x, const float *d_out, const float *x,
                        const gc_param *w, const gc_param *b, int64_t n, int64_t h, int64_t wd,
                        int64_t stride, int64_t pad, const gc_grad_sink *grads, gc_error *err)
{
  const int64_t *ws = w->weight.shape;
  int64_t k = w->weight.ndim == 4 ? ws[2] : 1;
  gc_conv2d_shape shape = gc_conv2d_square (n, ws[1], h, wd, ws[0], k, stride, pad);
  int64_t oh = gc_conv2d_out_h (&shape), ow = gc_conv2d_out_w (&shape);
  bool want_w = gc_grad_wants (grads, w), want_b = gc_grad_wants (grads, b);
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  const float *wf = d_x || want_w ? gc_param_f32 (scratch, w) : NULL;
  float *dw = want_w ? grad_buffer (scratch, w) : NULL;
  float *db = want_b ? grad_buffer (scratch, b) : NULL;
  if (((d_x || want_w) && wf == NULL) || (want_w && dw == NULL) || (want_b && db == NULL))
    return gc_layer_out_of_memory (err);
  bool transposed = d_x && stride == 1 && k > 1 && pad <= k - 1;
  if (dw)
    memset (dw, 0, sizeof (float) * (size_t) gc_param_numel (w));
  if (db)
    memset (db, 0, sizeof (float) * (size_t) ws[0]);
  /* the weight and bias gradients (and, for strided or 1×1 kernels, d_x) */
  gc_conv2d_backward (scratch, transposed ? NULL : d_x, dw, db, d_out, x, wf, &shape);
  if (transposed)
    {
      /* d_x += conv(d_out, flipped kernel), padded by k − 1 − pad */
      float *kt = gc_arena_floats (scratch, (size_t) gc_param_numel (w));
      float *dx = gc_arena_floats (scratch, (size_t) (n * ws[1] * h * wd));
      if (kt == NULL || dx == NULL)
        return gc_layer_out_of_memory (err);
      flip_kernel (kt, wf, ws[0], ws[1], k, k);
      gc_conv2d_shape back = gc_conv2d_square (n, ws[0], oh, ow, ws[1], k, 1, k - 1 - pad);
      gc_conv2d_forward (scratch, dx, d_out, kt, NULL, &back);
      gc_add (d_x, d_x, dx, n * ws[1] * h * wd);
    }
  if (dw)
    grads->accumulate (grads->ctx, w, dw);
  if (db)
    grads->accumulate (grads->ctx, b, db);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

static gc_status
norm_backward (gc_arena *scratch, float *d_x, const float *d_out, const float *x,
               const float *mean_rstd, const gc_param *w, const gc_param *b, int64_t n,
               int64_t c, int64_t hw, bool layer, const gc_grad_sink *grads, gc_error *err)
{
  bool want_w = gc_grad_wants (grads, w), want_b = gc_grad_wants (grads, b);
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t channels = layer ? hw : c;
  const float *wf = gc_param_f32 (scratch, w);
  float *dw = want_w ? gc_arena_floats (scratch, (size_t) channels) : NULL;
  float *db = want_b ? gc_arena_floats (scratch, (size_t) channels) : NULL;
  if (wf == NULL || (want_w && dw == NULL) || (want_b && db == NULL))
    return gc_layer_out_of_memory (err);
  if (dw)
    memset (dw, 0, sizeof (float) * (size_t) channels);
  if (db)
    memset (db, 0, sizeof (float) * (size_t) channels);
  if (layer)
    gc_layer_norm_backward (d_x, dw, db, d_out, x, mean_rstd, wf, n, hw);
  else
    gc_group_norm_backward (d_x, dw, db, d_out, x, mean_rstd, wf, n, c, hw, 32);
  if (dw)
    grads->accumulate (grads->ctx, w, dw);
  if (db)
    grads->accumulate (grads->ctx, b, db);
  gc_arena_reset (scratch, mark);
  return GC_OK;
}

gc_status
gc_layer_group_norm_backward (gc_arena *scratch, float *d_x, const float *d_out, const float *x,
                              const float *mean_rstd, const gc_param *w, const gc_param *b,
                              int64_t n, int64_t c, int64_t hw, const gc_grad_sink *grads,
                              gc_error *err)
{
  return norm_backward (scratch, d_x, d_out, x, mean_rstd, w, b, n, c, hw, false, grads, err);
}

gc_status
gc_layer_layer_norm_backward (gc_arena *scratch, float *d_x, const float *d_out, const float *x,
                              const float *mean_rstd, const gc_param *w, const gc_param *b,
                              int64_t rows, int64_t dim, const gc_grad_sink *grads, gc_error *err)
{
  return norm_backward (scratch, d_x, d_out, x, mean_rstd, w, b, rows, 1, dim, true, grads, err);
}

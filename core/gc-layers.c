#include "gc-layers.h"

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

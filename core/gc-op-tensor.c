/* Layout and elementwise operations: nearest upsampling, channel concatenation, the NCHW ↔
 * token transposition of spatial transformers, and arithmetic. All are memory-bound; the
 * large ones run on the pool. */
#include "gc-ops.h"

#include <string.h>

#include "gc-threads.h"

typedef struct {
  float *out;
  const float *a, *b;
  float factor;
  int64_t h, w, c, hw, cb;
} tensor_job;

static void
upsample_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  for (int64_t plane = begin; plane < end; plane++)
    {
      const float *src = j->a + plane * j->h * j->w;
      float *dst = j->out + plane * 4 * j->h * j->w;
      for (int64_t y = 0; y < j->h; y++)
        {
          float *row = dst + 2 * y * 2 * j->w;
          for (int64_t x = 0; x < j->w; x++)
            row[2 * x] = row[2 * x + 1] = src[y * j->w + x];
          memcpy (row + 2 * j->w, row, sizeof (float) * 2 * j->w);
        }
    }
}

void
gc_upsample2x_forward (float *out, const float *in, int64_t n, int64_t c, int64_t h, int64_t w)
{
  tensor_job job = { .out = out, .a = in, .h = h, .w = w };
  gc_parallel_for (n * c, 1 + (1 << 14) / (h * w + 1), upsample_range, &job);
}

static void
upsample_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx; /* out: d_in, a: d_out */
  int64_t h = j->h, w = j->w;
  for (int64_t plane = begin; plane < end; plane++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++)
        {
          const float *g = j->a + plane * 4 * h * w + 2 * y * 2 * w + 2 * x;
          j->out[plane * h * w + y * w + x] += g[0] + g[1] + g[2 * w] + g[2 * w + 1];
        }
}

void
gc_upsample2x_backward (float *d_in, const float *d_out, int64_t n, int64_t c, int64_t h,
                        int64_t w)
{
  if (d_in == NULL)
    return;
  tensor_job job = { .out = d_in, .a = d_out, .h = h, .w = w };
  gc_parallel_for (n * c, 1 + (1 << 14) / (h * w + 1), upsample_backward_range, &job);
}

void
gc_concat_channels_forward (float *out, const float *a, const float *b, int64_t n, int64_t ca,
                            int64_t cb, int64_t hw)
{
  for (int64_t i = 0; i < n; i++)
    {
      memcpy (out + i * (ca + cb) * hw, a + i * ca * hw, sizeof (float) * ca * hw);
      memcpy (out + (i * (ca + cb) + ca) * hw, b + i * cb * hw, sizeof (float) * cb * hw);
    }
}

void
gc_concat_channels_backward (float *d_a, float *d_b, const float *d_out, int64_t n, int64_t ca,
                             int64_t cb, int64_t hw)
{
  for (int64_t i = 0; i < n; i++)
    {
      if (d_a)
        gc_accumulate (d_a + i * ca * hw, d_out + i * (ca + cb) * hw, ca * hw);
      if (d_b)
        gc_accumulate (d_b + i * cb * hw, d_out + (i * (ca + cb) + ca) * hw, cb * hw);
    }
}

enum { TRANSPOSE_BLOCK = 32 };

/* out[n][hw][c] = in[n][c][hw] in cache-sized blocks; tasks are (image, block of channels) */
static void
to_tokens_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  int64_t blocks = (j->c + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
  for (int64_t task = begin; task < end; task++)
    {
      int64_t image = task / blocks, c0 = task % blocks * TRANSPOSE_BLOCK;
      int64_t c1 = c0 + TRANSPOSE_BLOCK > j->c ? j->c : c0 + TRANSPOSE_BLOCK;
      const float *src = j->a + image * j->c * j->hw;
      float *dst = j->out + image * j->c * j->hw;
      for (int64_t p0 = 0; p0 < j->hw; p0 += TRANSPOSE_BLOCK)
        {
          int64_t p1 = p0 + TRANSPOSE_BLOCK > j->hw ? j->hw : p0 + TRANSPOSE_BLOCK;
          for (int64_t ch = c0; ch < c1; ch++)
            for (int64_t p = p0; p < p1; p++)
              dst[p * j->c + ch] = src[ch * j->hw + p];
        }
    }
}

static void
to_nchw_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  int64_t blocks = (j->c + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
  for (int64_t task = begin; task < end; task++)
    {
      int64_t image = task / blocks, c0 = task % blocks * TRANSPOSE_BLOCK;
      int64_t c1 = c0 + TRANSPOSE_BLOCK > j->c ? j->c : c0 + TRANSPOSE_BLOCK;
      const float *src = j->a + image * j->c * j->hw;
      float *dst = j->out + image * j->c * j->hw;
      for (int64_t p0 = 0; p0 < j->hw; p0 += TRANSPOSE_BLOCK)
        {
          int64_t p1 = p0 + TRANSPOSE_BLOCK > j->hw ? j->hw : p0 + TRANSPOSE_BLOCK;
          for (int64_t ch = c0; ch < c1; ch++)
            for (int64_t p = p0; p < p1; p++)
              dst[ch * j->hw + p] = src[p * j->c + ch];
        }
    }
}

void
gc_nchw_to_tokens (float *out, const float *in, int64_t n, int64_t c, int64_t hw)
{
  tensor_job job = { .out = out, .a = in, .c = c, .hw = hw };
  gc_parallel_for (n * ((c + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK), 1, to_tokens_range, &job);
}

void
gc_tokens_to_nchw (float *out, const float *in, int64_t n, int64_t c, int64_t hw)
{
  tensor_job job = { .out = out, .a = in, .c = c, .hw = hw };
  gc_parallel_for (n * ((c + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK), 1, to_nchw_range, &job);
}

static void
add_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    j->out[i] = j->a[i] + j->b[i];
}

static void
mul_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    j->out[i] = j->a[i] * j->b[i];
}

static void
scale_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    j->out[i] = j->a[i] * j->factor;
}

static void
channel_bias_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  for (int64_t plane = begin; plane < end; plane++)
    {
      float bias = j->b[plane]; /* bias[n, c] is indexed by the plane number */
      for (int64_t i = 0; i < j->hw; i++)
        j->out[plane * j->hw + i] = j->a[plane * j->hw + i] + bias;
    }
}

enum { ELEMENTWISE_GRAIN = 1 << 16 };

void
gc_add (float *out, const float *a, const float *b, int64_t count)
{
  tensor_job job = { .out = out, .a = a, .b = b };
  gc_parallel_for (count, ELEMENTWISE_GRAIN, add_range, &job);
}

void
gc_mul (float *out, const float *a, const float *b, int64_t count)
{
  tensor_job job = { .out = out, .a = a, .b = b };
  gc_parallel_for (count, ELEMENTWISE_GRAIN, mul_range, &job);
}

void
gc_scale (float *out, const float *a, float factor, int64_t count)
{
  tensor_job job = { .out = out, .a = a, .factor = factor };
  gc_parallel_for (count, ELEMENTWISE_GRAIN, scale_range, &job);
}

void
gc_add_channel_bias (float *out, const float *x, const float *bias, int64_t n, int64_t c,
                     int64_t hw)
{
  tensor_job job = { .out = out, .a = x, .b = bias, .hw = hw };
  gc_parallel_for (n * c, 1 + ELEMENTWISE_GRAIN / (hw + 1), channel_bias_range, &job);
}

typedef struct {
  float *d_a, *d_b;
  const float *d_out, *a, *b;
} mul_backward_job;

static void
mul_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const mul_backward_job *j = ctx;
  if (j->d_a)
    for (int64_t i = begin; i < end; i++)
      j->d_a[i] += j->d_out[i] * j->b[i];
  if (j->d_b)
    for (int64_t i = begin; i < end; i++)
      j->d_b[i] += j->d_out[i] * j->a[i];
}

void
gc_mul_backward (float *d_a, float *d_b, const float *d_out, const float *a, const float *b,
                 int64_t count)
{
  if (d_a == NULL && d_b == NULL)
    return;
  mul_backward_job job = { d_a, d_b, d_out, a, b };
  gc_parallel_for (count, ELEMENTWISE_GRAIN, mul_backward_range, &job);
}

static void
accumulate_range (void *ctx, int64_t begin, int64_t end)
{
  const tensor_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    j->out[i] += j->a[i];
}

void
gc_accumulate (float *d_x, const float *d_out, int64_t count)
{
  if (d_x == NULL)
    return;
  tensor_job job = { .out = d_x, .a = d_out };
  gc_parallel_for (count, ELEMENTWISE_GRAIN, accumulate_range, &job);
}

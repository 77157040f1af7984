/* 2-D convolution lowered to matrix products.
 *
 * Stride 1 ("shifted GEMM"): with the input zero-padded to [c_in, hp, wp], output pixel (y, x)
 * reads padded pixels (y + ky, x + kx), so for each kernel tap the input is the padded image
 * shifted by ky·wp + kx. Computing the output on a grid wp wide turns every tap into one plain
 * product weight_tap[c_out, c_in] · padded[c_in, rows·wp] accumulated into the grid; the
 * wp − ow garbage columns of each row are dropped when the grid is copied out. No im2col
 * matrix is ever built. Other strides (the downsampling convolutions) use im2col.
 * Both work on bands of output rows so each thread's buffers stay a few MiB at any image size.
 */
#include "gc-ops.h"

#include <assert.h>
#include <string.h>

#include "gc-matmul.h"
#include "gc-threads.h"

int64_t
gc_conv2d_out_h (const gc_conv2d_shape *s)
{
  return (s->pad_top + s->h + s->pad_bottom - s->kh) / s->stride + 1;
}

int64_t
gc_conv2d_out_w (const gc_conv2d_shape *s)
{
  return (s->pad_left + s->w + s->pad_right - s->kw) / s->stride + 1;
}

gc_conv2d_shape
gc_conv2d_square (int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                  int64_t stride, int64_t pad)
{
  gc_conv2d_shape s = { n, c_in, h, w, c_out, k, k, stride, pad, pad, pad, pad };
  return s;
}

/* Output rows per band: aim for ~2048 product columns, but leave every thread work. */
static int64_t
band_rows (int64_t out_h, int64_t row_width, int64_t images)
{
  int64_t rows = (2048 + row_width - 1) / row_width;
  int64_t threads = gc_threads_get ();
  while (rows > 1 && images * ((out_h + rows - 1) / rows) < 2 * threads)
    rows /= 2;
  return rows < 1 ? 1 : rows > out_h ? out_h : rows;
}

typedef struct {
  const gc_conv2d_shape *s;
  float *out;
  const float *in;
  const float *weight; /* stride 1: taps [kh·kw, c_out, c_in]; else [c_out, c_in·kh·kw] */
  const float *bias;
  int64_t oh, ow, rows, bands;
} conv_job;

static void
add_bias_band (float *out, const float *bias, int64_t c_out, int64_t plane, int64_t count)
{
  if (bias == NULL)
    return;
  for (int64_t o = 0; o < c_out; o++)
    for (int64_t i = 0; i < count; i++)
      out[o * plane + i] += bias[o];
}

/* Padded rows [y0, y0 + rows_in) of one image: band[c_in, rows_in·wp + slack]. */
static void
pad_band (float *band, int64_t band_stride, const float *in, const gc_conv2d_shape *s, int64_t y0,
          int64_t rows_in)
{
  int64_t wp = s->pad_left + s->w + s->pad_right;
  for (int64_t c = 0; c < s->c_in; c++)
    {
      float *dst = band + c * band_stride;
      memset (dst, 0, sizeof (float) * band_stride);
      for (int64_t r = 0; r < rows_in; r++)
        {
          int64_t y = y0 + r - s->pad_top; /* row in the unpadded input */
          if (y < 0 || y >= s->h)
            continue;
          memcpy (dst + r * wp + s->pad_left, in + (c * s->h + y) * s->w, sizeof (float) * s->w);
        }
    }
}

static void
conv_band_shifted (const conv_job *j, float *band, float *grid, int64_t image, int64_t band_index)
{
  const gc_conv2d_shape *s = j->s;
  int64_t wp = s->pad_left + s->w + s->pad_right;
  int64_t y0 = band_index * j->rows;
  int64_t rows = y0 + j->rows > j->oh ? j->oh - y0 : j->rows;
  int64_t rows_in = rows + s->kh - 1;
  int64_t band_stride = rows_in * wp + s->kw; /* slack: garbage columns read past the band */
  const float *in = j->in + image * s->c_in * s->h * s->w;

  pad_band (band, band_stride, in, s, y0, rows_in);
  /* grid[c_out, rows·wp] = Σ_taps weight_tap[c_out, c_in] · band shifted by the tap */
  int64_t cols = rows * wp;
  for (int64_t ky = 0; ky < s->kh; ky++)
    for (int64_t kx = 0; kx < s->kw; kx++)
      {
        int64_t tap = ky * s->kw + kx;
        gc_matmul (grid, cols, j->weight + tap * s->c_out * s->c_in, s->c_in, false,
                   band + ky * wp + kx, band_stride, false, s->c_out, cols, s->c_in, 1,
                   tap == 0 ? 0 : 1);
      }
  float *out = j->out + image * s->c_out * j->oh * j->ow + y0 * j->ow;
  for (int64_t o = 0; o < s->c_out; o++)
    for (int64_t r = 0; r < rows; r++)
      {
        float *dst = out + o * j->oh * j->ow + r * j->ow;
        const float *src = grid + o * cols + r * wp;
        float b = j->bias ? j->bias[o] : 0;
        for (int64_t x = 0; x < j->ow; x++)
          dst[x] = src[x] + b;
      }
}

/* col[c_in·kh·kw, rows·ow] for output rows [y0, y0 + rows) of one image. */
static void
im2col_band (float *col, const float *in, const gc_conv2d_shape *s, int64_t ow, int64_t y0,
             int64_t rows)
{
  int64_t cols = rows * ow;
  for (int64_t c = 0; c < s->c_in; c++)
    for (int64_t ky = 0; ky < s->kh; ky++)
      for (int64_t kx = 0; kx < s->kw; kx++)
        {
          float *dst = col + ((c * s->kh + ky) * s->kw + kx) * cols;
          for (int64_t r = 0; r < rows; r++)
            {
              int64_t y = (y0 + r) * s->stride + ky - s->pad_top;
              for (int64_t x = 0; x < ow; x++)
                {
                  int64_t xi = x * s->stride + kx - s->pad_left;
                  bool inside = y >= 0 && y < s->h && xi >= 0 && xi < s->w;
                  dst[r * ow + x] = inside ? in[(c * s->h + y) * s->w + xi] : 0;
                }
            }
        }
}

/* The inverse scatter: d_in += col2im(dcol). */
static void
col2im_band (float *d_in, const float *dcol, const gc_conv2d_shape *s, int64_t ow, int64_t y0,
             int64_t rows)
{
  int64_t cols = rows * ow;
  for (int64_t c = 0; c < s->c_in; c++)
    for (int64_t ky = 0; ky < s->kh; ky++)
      for (int64_t kx = 0; kx < s->kw; kx++)
        {
          const float *src = dcol + ((c * s->kh + ky) * s->kw + kx) * cols;
          for (int64_t r = 0; r < rows; r++)
            {
              int64_t y = (y0 + r) * s->stride + ky - s->pad_top;
              if (y < 0 || y >= s->h)
                continue;
              for (int64_t x = 0; x < ow; x++)
                {
                  int64_t xi = x * s->stride + kx - s->pad_left;
                  if (xi >= 0 && xi < s->w)
                    d_in[(c * s->h + y) * s->w + xi] += src[r * ow + x];
                }
            }
        }
}

static void
conv_band_im2col (const conv_job *j, float *col, int64_t image, int64_t band_index)
{
  const gc_conv2d_shape *s = j->s;
  int64_t y0 = band_index * j->rows;
  int64_t rows = y0 + j->rows > j->oh ? j->oh - y0 : j->rows;
  int64_t k = s->c_in * s->kh * s->kw;
  int64_t plane = j->oh * j->ow;
  im2col_band (col, j->in + image * s->c_in * s->h * s->w, s, j->ow, y0, rows);
  float *out = j->out + image * s->c_out * plane + y0 * j->ow;
  /* out[c_out, rows·ow] (row stride oh·ow) = weight[c_out, k] · col[k, rows·ow] */
  gc_matmul (out, plane, j->weight, k, false, col, rows * j->ow, false, s->c_out, rows * j->ow,
             k, 1, 0);
  add_bias_band (out, j->bias, s->c_out, plane, rows * j->ow);
}

static size_t
band_floats (const conv_job *j)
{
  const gc_conv2d_shape *s = j->s;
  if (s->stride == 1)
    {
      int64_t wp = s->pad_left + s->w + s->pad_right;
      return (size_t) (s->c_in * ((j->rows + s->kh - 1) * wp + s->kw) + s->c_out * j->rows * wp);
    }
  return (size_t) (s->c_in * s->kh * s->kw * j->rows * j->ow);
}

typedef struct {
  const conv_job *job;
  float **buffers; /* one per thread slot */
} band_run;

static void
run_bands (void *ctx, int64_t begin, int64_t end)
{
  const band_run *run = ctx;
  const conv_job *j = run->job;
  float *buffer = run->buffers[gc_thread_slot ()];
  for (int64_t task = begin; task < end; task++)
    {
      int64_t image = task / j->bands, band_index = task % j->bands;
      if (j->s->stride == 1)
        {
          const gc_conv2d_shape *s = j->s;
          int64_t wp = s->pad_left + s->w + s->pad_right;
          float *grid = buffer + s->c_in * ((j->rows + s->kh - 1) * wp + s->kw);
          conv_band_shifted (j, buffer, grid, image, band_index);
        }
      else
        conv_band_im2col (j, buffer, image, band_index);
    }
}

/* weight[c_out, c_in, kh, kw] → taps[kh·kw, c_out, c_in] */
static void
weight_to_taps (float *taps, const float *weight, const gc_conv2d_shape *s)
{
  int64_t kk = s->kh * s->kw;
  for (int64_t o = 0; o < s->c_out; o++)
    for (int64_t i = 0; i < s->c_in; i++)
      for (int64_t t = 0; t < kk; t++)
        taps[(t * s->c_out + o) * s->c_in + i] = weight[(o * s->c_in + i) * kk + t];
}

void
gc_conv2d_forward (gc_arena *scratch, float *out, const float *in, const float *weight,
                   const float *bias, const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  bool pointwise = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad_top == 0
                   && s->pad_bottom == 0 && s->pad_left == 0 && s->pad_right == 0;
  if (pointwise)
    {
      /* out[c_out, hw] = weight[c_out, c_in] · in[c_in, hw], image by image */
      for (int64_t i = 0; i < s->n; i++)
        {
          float *o = out + i * s->c_out * oh * ow;
          gc_matmul (o, oh * ow, weight, s->c_in, false, in + i * s->c_in * s->h * s->w, s->h * s->w,
                     false, s->c_out, oh * ow, s->c_in, 1, 0);
          add_bias_band (o, bias, s->c_out, oh * ow, oh * ow);
        }
      return;
    }
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  conv_job job = { s, out, in, weight, bias, oh, ow, 0, 0 };
  if (s->stride == 1)
    {
      float *taps = gc_arena_floats (scratch, (size_t) (s->kh * s->kw * s->c_out * s->c_in));
      weight_to_taps (taps, weight, s);
      job.weight = taps;
      job.rows = band_rows (oh, s->pad_left + s->w + s->pad_right, s->n);
    }
  else
    job.rows = band_rows (oh, ow, s->n);
  job.bands = (oh + job.rows - 1) / job.rows;
  int threads = gc_threads_get ();
  float *buffers[GC_MAX_THREADS];
  for (int t = 0; t < threads; t++)
    buffers[t] = gc_arena_floats (scratch, band_floats (&job));
  band_run run = { &job, buffers };
  gc_parallel_for (s->n * job.bands, 1, run_bands, &run);
  gc_arena_reset (scratch, mark);
}

void
gc_conv2d_forward_naive (float *out, const float *in, const float *weight, const float *bias,
                         const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  for (int64_t n = 0; n < s->n; n++)
    for (int64_t o = 0; o < s->c_out; o++)
      for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++)
          {
            double sum = bias ? bias[o] : 0;
            for (int64_t c = 0; c < s->c_in; c++)
              for (int64_t ky = 0; ky < s->kh; ky++)
                for (int64_t kx = 0; kx < s->kw; kx++)
                  {
                    int64_t yi = y * s->stride + ky - s->pad_top;
                    int64_t xi = x * s->stride + kx - s->pad_left;
                    if (yi < 0 || yi >= s->h || xi < 0 || xi >= s->w)
                      continue;
                    sum += (double) in[((n * s->c_in + c) * s->h + yi) * s->w + xi]
                           * weight[((o * s->c_in + c) * s->kh + ky) * s->kw + kx];
                  }
            out[((n * s->c_out + o) * oh + y) * ow + x] = (float) sum;
          }
}

void
gc_conv2d_backward (gc_arena *scratch, float *d_in, float *d_weight, float *d_bias,
                    const float *d_out, const float *in, const float *weight,
                    const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  int64_t plane = oh * ow;
  int64_t k = s->c_in * s->kh * s->kw;
  if (d_bias)
    for (int64_t o = 0; o < s->c_out; o++)
      {
        double sum = 0;
        for (int64_t n = 0; n < s->n; n++)
          for (int64_t i = 0; i < plane; i++)
            sum += d_out[(n * s->c_out + o) * plane + i];
        d_bias[o] += (float) sum;
      }
  if (d_in == NULL && d_weight == NULL)
    return;
  /* Bands in sequence (they share d_weight and overlap in d_in); each product is parallel. */
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t rows = band_rows (oh, ow, 1);
  float *col = gc_arena_floats (scratch, (size_t) (k * rows * ow));
  for (int64_t n = 0; n < s->n; n++)
    for (int64_t y0 = 0; y0 < oh; y0 += rows)
      {
        int64_t r = y0 + rows > oh ? oh - y0 : rows;
        int64_t cols = r * ow;
        const float *g = d_out + n * s->c_out * plane + y0 * ow; /* [c_out, cols], stride plane */
        if (d_weight)
          {
            im2col_band (col, in + n * s->c_in * s->h * s->w, s, ow, y0, r);
            /* d_weight[c_out, k] += g[c_out, cols] · col[k, cols]ᵀ */
            gc_matmul (d_weight, k, g, plane, false, col, cols, true, s->c_out, k, cols, 1, 1);
          }
        if (d_in)
          {
            /* dcol[k, cols] = weight[c_out, k]ᵀ · g[c_out, cols] */
            gc_matmul (col, cols, weight, k, true, g, plane, false, k, cols, s->c_out, 1, 0);
            col2im_band (d_in + n * s->c_in * s->h * s->w, col, s, ow, y0, r);
          }
      }
  gc_arena_reset (scratch, mark);
}

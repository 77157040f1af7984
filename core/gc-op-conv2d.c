/* 2-D convolution lowered to matrix products.
 *
 * Stride 1 ("shifted GEMM"): with the input zero-padded to [c_in, hp, wp], output pixel (y, x)
 * reads padded pixels (y + ky, x + kx), so for each kernel tap the input is the padded image
 * shifted by ky·wp + kx. Computing the output on a grid wp wide turns every tap into one plain
 * product weight_tap[c_out, c_in] · padded[c_in, rows·wp] accumulated into the grid; the
 * wp − ow garbage columns of each row are dropped when the grid is copied out. No im2col
 * matrix is ever built. Other strides (the downsampling convolutions) use im2col.
 * Large images are cut into bands of output rows, one thread per band, so each thread's
 * buffers stay a few MiB at any size. Small images (the UNet's deep levels: 8×8 latents with
 * 1280 channels) build one im2col matrix for the whole batch instead and run one product split
 * over output channels: bands there would be a few columns wide.
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

/* Below this many output columns per thread, bands would be too narrow for efficient products:
 * small images take one im2col product instead. */
enum { STACK_BELOW_COLUMNS = 2048 };

/* Floats of output accumulated across the kernel taps at a time (512 KiB: half an L2), in
 * blocks of at least 64 output channels so each product stays efficient. */
enum { OUTPUT_BLOCK_FLOATS = 1 << 17 };

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
  /* grid[c_out, rows·wp] = Σ_taps weight_tap[c_out, c_in] · band shifted by the tap, in blocks
   * of output channels so that the block of grid being accumulated stays in cache */
  int64_t cols = rows * wp;
  int64_t block = OUTPUT_BLOCK_FLOATS / cols / 64 * 64;
  block = block < 64 ? 64 : block;
  for (int64_t o0 = 0; o0 < s->c_out; o0 += block)
    {
      int64_t m = o0 + block > s->c_out ? s->c_out - o0 : block;
      for (int64_t ky = 0; ky < s->kh; ky++)
        for (int64_t kx = 0; kx < s->kw; kx++)
          {
            int64_t tap = ky * s->kw + kx;
            gc_matmul (grid + o0 * cols, cols, j->weight + (tap * s->c_out + o0) * s->c_in,
                       s->c_in, false, band + ky * wp + kx, band_stride, false, m, cols, s->c_in,
                       1, tap == 0 ? 0 : 1);
          }
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

/* Small images (the UNet's deep levels: 16×16 or 8×8 latents with 1280 channels): bands would be
 * a few columns wide and each tap's product too small, so one im2col matrix holds the whole
 * batch, col[c_in·kh·kw, n·oh·ow], and one product split over output channels does the work. */
typedef struct {
  float *col;
  const float *in;
  float *out;
  const float *tmp;
  const float *bias;
  const gc_conv2d_shape *s;
  int64_t oh, ow, cols;
} small_job;

static void
small_im2col_range (void *ctx, int64_t begin, int64_t end)
{
  const small_job *j = ctx;
  const gc_conv2d_shape *s = j->s;
  int64_t hw = j->oh * j->ow;
  for (int64_t task = begin; task < end; task++)
    {
      int64_t image = task / s->c_in, c = task % s->c_in;
      const float *plane = j->in + (image * s->c_in + c) * s->h * s->w;
      for (int64_t ky = 0; ky < s->kh; ky++)
        for (int64_t kx = 0; kx < s->kw; kx++)
          {
            float *dst = j->col + ((c * s->kh + ky) * s->kw + kx) * j->cols + image * hw;
            for (int64_t y = 0; y < j->oh; y++)
              {
                int64_t yi = y * s->stride + ky - s->pad_top;
                for (int64_t x = 0; x < j->ow; x++)
                  {
                    int64_t xi = x * s->stride + kx - s->pad_left;
                    bool inside = yi >= 0 && yi < s->h && xi >= 0 && xi < s->w;
                    dst[y * j->ow + x] = inside ? plane[yi * s->w + xi] : 0;
                  }
              }
          }
    }
}

/* tmp[c_out, n·hw] → out[n, c_out, hw] + bias */
static void
small_scatter_range (void *ctx, int64_t begin, int64_t end)
{
  const small_job *j = ctx;
  const gc_conv2d_shape *s = j->s;
  int64_t hw = j->oh * j->ow;
  for (int64_t task = begin; task < end; task++)
    {
      int64_t image = task / s->c_out, o = task % s->c_out;
      const float *src = j->tmp + o * j->cols + image * hw;
      float *dst = j->out + (image * s->c_out + o) * hw;
      float b = j->bias ? j->bias[o] : 0;
      for (int64_t p = 0; p < hw; p++)
        dst[p] = src[p] + b;
    }
}

static bool
is_small (const gc_conv2d_shape *s)
{
  int64_t cols = s->n * gc_conv2d_out_h (s) * gc_conv2d_out_w (s);
  int64_t col_floats = s->c_in * s->kh * s->kw * cols;
  return cols < gc_threads_get () * STACK_BELOW_COLUMNS && col_floats <= (1 << 24);
}

static void
conv_small (gc_arena *scratch, float *out, const float *in, const float *weight,
            const float *bias, const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s), cols = s->n * oh * ow;
  int64_t k = s->c_in * s->kh * s->kw;
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  small_job job = { gc_arena_floats (scratch, (size_t) (k * cols)), in, out, NULL, bias, s, oh,
                    ow, cols };
  float *tmp = gc_arena_floats (scratch, (size_t) (s->c_out * cols));
  job.tmp = tmp;
  gc_parallel_for (s->n * s->c_in, 1, small_im2col_range, &job);
  /* tmp[c_out, n·hw] = weight[c_out, k] · col[k, n·hw] */
  gc_matmul (tmp, cols, weight, k, false, job.col, cols, false, s->c_out, cols, k, 1, 0);
  gc_parallel_for (s->n * s->c_out, 16, small_scatter_range, &job);
  gc_arena_reset (scratch, mark);
}

bool
gc_conv2d_uses_taps (const gc_conv2d_shape *s)
{
  return s->stride == 1 && s->kh * s->kw > 1 && !is_small (s);
}

typedef struct {
  float *taps;
  const unsigned char *weight;
  gc_dtype dtype;
  const gc_conv2d_shape *s;
  float **rows; /* per thread slot: one output channel's weights [c_in·kh·kw] as float */
} taps_job;

static void
taps_range (void *ctx, int64_t begin, int64_t end)
{
  const taps_job *j = ctx;
  const gc_conv2d_shape *s = j->s;
  int64_t kk = s->kh * s->kw, per_output = s->c_in * kk;
  float *row = j->rows[gc_thread_slot ()];
  for (int64_t o = begin; o < end; o++)
    {
      gc_convert_to_f32 (row, j->weight + (size_t) (o * per_output) * gc_dtype_size (j->dtype),
                         j->dtype, (size_t) per_output);
      for (int64_t i = 0; i < s->c_in; i++)
        for (int64_t t = 0; t < kk; t++)
          j->taps[(t * s->c_out + o) * s->c_in + i] = row[i * kk + t];
    }
}

void
gc_conv2d_taps (gc_arena *scratch, float *taps, const void *weight, gc_dtype dtype,
                const gc_conv2d_shape *s)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int threads = gc_threads_get ();
  float *rows[GC_MAX_THREADS];
  for (int t = 0; t < threads; t++)
    rows[t] = gc_arena_floats (scratch, (size_t) (s->c_in * s->kh * s->kw));
  taps_job job = { taps, weight, dtype, s, rows };
  gc_parallel_for (s->c_out, 16, taps_range, &job);
  gc_arena_reset (scratch, mark);
}

void
gc_conv2d_forward_taps (gc_arena *scratch, float *out, const float *in, const float *taps,
                        const float *bias, const gc_conv2d_shape *s)
{
  assert (s->stride == 1);
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  int64_t wp = s->pad_left + s->w + s->pad_right;
  int threads = gc_threads_get ();
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  conv_job job = { s, out, in, taps, bias, oh, ow, band_rows (oh, wp, s->n), 0 };
  job.bands = (oh + job.rows - 1) / job.rows;
  float *buffers[GC_MAX_THREADS];
  for (int t = 0; t < threads; t++)
    buffers[t] = gc_arena_floats (scratch, band_floats (&job));
  band_run run = { &job, buffers };
  gc_parallel_for (s->n * job.bands, 1, run_bands, &run);
  gc_arena_reset (scratch, mark);
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
  if (is_small (s))
    {
      conv_small (scratch, out, in, weight, bias, s);
      return;
    }
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  if (s->stride == 1)
    {
      float *taps = gc_arena_floats (scratch, (size_t) (s->kh * s->kw * s->c_out * s->c_in));
      gc_conv2d_taps (scratch, taps, weight, GC_DTYPE_F32, s);
      gc_conv2d_forward_taps (scratch, out, in, taps, bias, s);
      gc_arena_reset (scratch, mark);
      return;
    }
  conv_job job = { s, out, in, weight, bias, oh, ow, band_rows (oh, ow, s->n), 0 };
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

/* The backward's column buffer holds at most this many floats (16 MiB): large products, bounded
 * memory. */
enum { BACKWARD_COL_FLOATS = 1 << 22 };

typedef struct {
  const gc_conv2d_shape *s;
  float *d_in, *d_bias, *col;
  const float *in, *d_out;
  int64_t oh, ow, y0, rows;
} conv_backward_job;

/* d_bias[o] += Σ d_out[·, o, ·] in double, a task per output channel. */
static void
bias_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const conv_backward_job *j = ctx;
  const gc_conv2d_shape *s = j->s;
  int64_t plane = j->oh * j->ow;
  for (int64_t o = begin; o < end; o++)
    {
      double sum = 0;
      for (int64_t n = 0; n < s->n; n++)
        {
          const float *g = j->d_out + (n * s->c_out + o) * plane;
          for (int64_t i = 0; i < plane; i++)
            sum += g[i];
        }
      j->d_bias[o] += (float) sum;
    }
}

/* The band's im2col and col2im split by input channel: a channel's rows of col and its plane of
 * d_in belong to one task. The helpers see a shape narrowed to those channels. */
static void
im2col_channels (void *ctx, int64_t begin, int64_t end)
{
  const conv_backward_job *j = ctx;
  gc_conv2d_shape part = *j->s;
  part.c_in = end - begin;
  int64_t taps = part.kh * part.kw, cols = j->rows * j->ow;
  im2col_band (j->col + begin * taps * cols, j->in + begin * part.h * part.w, &part, j->ow, j->y0,
               j->rows);
}

static void
col2im_channels (void *ctx, int64_t begin, int64_t end)
{
  const conv_backward_job *j = ctx;
  gc_conv2d_shape part = *j->s;
  part.c_in = end - begin;
  int64_t taps = part.kh * part.kw, cols = j->rows * j->ow;
  col2im_band (j->d_in + begin * part.h * part.w, j->col + begin * taps * cols, &part, j->ow,
               j->y0, j->rows);
}

void
gc_conv2d_backward (gc_arena *scratch, float *d_in, float *d_weight, float *d_bias,
                    const float *d_out, const float *in, const float *weight,
                    const gc_conv2d_shape *s)
{
  int64_t oh = gc_conv2d_out_h (s), ow = gc_conv2d_out_w (s);
  int64_t plane = oh * ow;
  int64_t k = s->c_in * s->kh * s->kw;
  conv_backward_job job = { s, d_in, d_bias, NULL, in, d_out, oh, ow, 0, 0 };
  if (d_bias)
    gc_parallel_for (s->c_out, 1 + (1 << 14) / (s->n * plane + 1), bias_backward_range, &job);
  if (d_in == NULL && d_weight == NULL)
    return;
  bool pointwise = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad_top == 0
                   && s->pad_bottom == 0 && s->pad_left == 0 && s->pad_right == 0;
  if (pointwise)
    {
      /* the input is its own column matrix: plain products, image by image */
      for (int64_t n = 0; n < s->n; n++)
        {
          const float *g = d_out + n * s->c_out * plane; /* [c_out, hw] */
          const float *x = in + n * s->c_in * plane;     /* [c_in, hw] */
          if (d_weight)
            gc_matmul (d_weight, s->c_in, g, plane, false, x, plane, true, s->c_out, s->c_in,
                       plane, 1, 1);
          if (d_in)
            gc_matmul (d_in + n * s->c_in * plane, plane, weight, s->c_in, true, g, plane, false,
                       s->c_in, plane, s->c_out, 1, 1);
        }
      return;
    }
  /* Bands of output rows in sequence (they share d_weight and overlap in d_in); within a band
   * the products and the im2col/col2im copies run on the pool. */
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int64_t rows = BACKWARD_COL_FLOATS / (k * ow);
  rows = rows < 1 ? 1 : rows > oh ? oh : rows;
  job.col = gc_arena_floats (scratch, (size_t) (k * rows * ow));
  int64_t channel_grain = 1 + (1 << 14) / (s->kh * s->kw * rows * ow + 1);
  for (int64_t n = 0; n < s->n; n++)
    for (int64_t y0 = 0; y0 < oh; y0 += rows)
      {
        job.y0 = y0;
        job.rows = y0 + rows > oh ? oh - y0 : rows;
        int64_t cols = job.rows * ow;
        const float *g = d_out + n * s->c_out * plane + y0 * ow; /* [c_out, cols], stride plane */
        if (d_weight)
          {
            job.in = in + n * s->c_in * s->h * s->w;
            gc_parallel_for (s->c_in, channel_grain, im2col_channels, &job);
            /* d_weight[c_out, k] += g[c_out, cols] · col[k, cols]ᵀ */
            gc_matmul (d_weight, k, g, plane, false, job.col, cols, true, s->c_out, k, cols, 1, 1);
          }
        if (d_in)
          {
            /* dcol[k, cols] = weight[c_out, k]ᵀ · g[c_out, cols] */
            gc_matmul (job.col, cols, weight, k, true, g, plane, false, k, cols, s->c_out, 1, 0);
            job.d_in = d_in + n * s->c_in * s->h * s->w;
            gc_parallel_for (s->c_in, channel_grain, col2im_channels, &job);
          }
      }
  gc_arena_reset (scratch, mark);
}

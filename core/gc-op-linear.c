/* Linear layers: the product goes through gc_matmul, the bias is added row by row. */
#include "gc-ops.h"

#include "gc-matmul.h"
#include "gc-threads.h"

typedef struct {
  float *out;
  const float *bias;
  int64_t out_f;
} bias_job;

static void
add_bias_rows (void *ctx, int64_t begin, int64_t end)
{
  const bias_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    {
      float *row = j->out + r * j->out_f;
      for (int64_t o = 0; o < j->out_f; o++)
        row[o] += j->bias[o];
    }
}

void
gc_linear_forward (float *out, const float *in, const float *weight, const float *bias,
                   int64_t rows, int64_t in_f, int64_t out_f)
{
  /* out[rows, out_f] = in[rows, in_f] · weight[out_f, in_f]ᵀ */
  gc_matmul (out, out_f, in, in_f, false, weight, in_f, true, rows, out_f, in_f, 1, 0);
  if (bias)
    {
      bias_job job = { out, bias, out_f };
      gc_parallel_for (rows, 1 + (1 << 16) / (out_f + 1), add_bias_rows, &job);
    }
}

void
gc_linear_forward_naive (float *out, const float *in, const float *weight, const float *bias,
                         int64_t rows, int64_t in_f, int64_t out_f)
{
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < out_f; o++)
      {
        double sum = bias ? bias[o] : 0;
        for (int64_t i = 0; i < in_f; i++)
          sum += (double) in[r * in_f + i] * weight[o * in_f + i];
        out[r * out_f + o] = (float) sum;
      }
}

enum { BIAS_COLUMNS = 64 };

typedef struct {
  float *d_bias;
  const float *d_out;
  int64_t rows, out_f;
} bias_grad_job;

/* d_bias[o] += Σ_r d_out[r, o] in double; a task sums a block of columns, reading along rows. */
static void
bias_grad_blocks (void *ctx, int64_t begin, int64_t end)
{
  const bias_grad_job *j = ctx;
  for (int64_t block = begin; block < end; block++)
    {
      int64_t o0 = block * BIAS_COLUMNS;
      int64_t width = o0 + BIAS_COLUMNS > j->out_f ? j->out_f - o0 : BIAS_COLUMNS;
      double sum[BIAS_COLUMNS] = { 0 };
      for (int64_t r = 0; r < j->rows; r++)
        {
          const float *g = j->d_out + r * j->out_f + o0;
          for (int64_t i = 0; i < width; i++)
            sum[i] += g[i];
        }
      for (int64_t i = 0; i < width; i++)
        j->d_bias[o0 + i] += (float) sum[i];
    }
}

void
gc_linear_backward (float *d_in, float *d_weight, float *d_bias, const float *d_out,
                    const float *in, const float *weight, int64_t rows, int64_t in_f,
                    int64_t out_f)
{
  /* d_in[rows, in_f] += d_out[rows, out_f] · weight[out_f, in_f] */
  if (d_in)
    gc_matmul (d_in, in_f, d_out, out_f, false, weight, in_f, false, rows, in_f, out_f, 1, 1);
  /* d_weight[out_f, in_f] += d_out[rows, out_f]ᵀ · in[rows, in_f] */
  if (d_weight)
    gc_matmul (d_weight, in_f, d_out, out_f, true, in, in_f, false, out_f, in_f, rows, 1, 1);
  if (d_bias)
    {
      bias_grad_job job = { d_bias, d_out, rows, out_f };
      gc_parallel_for ((out_f + BIAS_COLUMNS - 1) / BIAS_COLUMNS,
                       1 + (1 << 16) / (rows * BIAS_COLUMNS + 1), bias_grad_blocks, &job);
    }
}

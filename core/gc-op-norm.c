/* Group norm and layer norm. Statistics are accumulated in double (two passes: mean, then the
 * centred variance), so large groups — a VAE group holds a million values — lose nothing. */
#include "gc-ops.h"

#include <math.h>

#include "gc-simd.h"
#include "gc-threads.h"

static void
mean_rstd_of (const float *x, int64_t count, float eps, double *mean_out, double *rstd_out)
{
  double sum = 0;
  for (int64_t i = 0; i < count; i++)
    sum += x[i];
  double mean = sum / (double) count;
  double sq = 0;
  for (int64_t i = 0; i < count; i++)
    {
      double d = x[i] - mean;
      sq += d * d;
    }
  *mean_out = mean;
  *rstd_out = 1.0 / sqrt (sq / (double) count + eps);
}

typedef struct {
  float *out;
  float *mean_rstd;
  const float *x;
  const float *gamma, *beta;
  int64_t c, hw, groups;
  float eps;
  bool silu;
} group_norm_job;

static void
group_norm_range (void *ctx, int64_t begin, int64_t end)
{
  const group_norm_job *j = ctx;
  int64_t per_group = j->c / j->groups;
  for (int64_t task = begin; task < end; task++)
    {
      /* task = image · groups + group; the group's channels are contiguous in memory */
      int64_t image = task / j->groups, group = task % j->groups;
      int64_t offset = (image * j->c + group * per_group) * j->hw;
      double mean, rstd;
      mean_rstd_of (j->x + offset, per_group * j->hw, j->eps, &mean, &rstd);
      if (j->mean_rstd)
        {
          j->mean_rstd[2 * task] = (float) mean;
          j->mean_rstd[2 * task + 1] = (float) rstd;
        }
      for (int64_t ch = 0; ch < per_group; ch++)
        {
          int64_t channel = group * per_group + ch;
          float g = j->gamma ? j->gamma[channel] : 1.0f;
          float b = j->beta ? j->beta[channel] : 0.0f;
          /* y = (x − mean)·rstd·g + b = x·scale + shift */
          float scale = (float) (rstd * g);
          float shift = (float) (b - mean * rstd * g);
          const float *src = j->x + offset + ch * j->hw;
          float *dst = j->out + offset + ch * j->hw;
          for (int64_t i = 0; i < j->hw; i++)
            dst[i] = src[i] * scale + shift;
          if (j->silu)
            gc_activation_forward (dst, dst, j->hw, GC_ACT_SILU);
        }
    }
}

static void
group_norm (float *out, float *mean_rstd, const float *x, const float *gamma, const float *beta,
            int64_t n, int64_t c, int64_t hw, int64_t groups, float eps, bool silu)
{
  group_norm_job job = { out, mean_rstd, x, gamma, beta, c, hw, groups, eps, silu };
  gc_parallel_for (n * groups, 1, group_norm_range, &job);
}

void
gc_group_norm_forward (float *out, float *mean_rstd, const float *x, const float *gamma,
                       const float *beta, int64_t n, int64_t c, int64_t hw, int64_t groups,
                       float eps)
{
  group_norm (out, mean_rstd, x, gamma, beta, n, c, hw, groups, eps, false);
}

void
gc_group_norm_silu_forward (float *out, const float *x, const float *gamma, const float *beta,
                            int64_t n, int64_t c, int64_t hw, int64_t groups, float eps)
{
  group_norm (out, NULL, x, gamma, beta, n, c, hw, groups, eps, true);
}

void
gc_group_norm_forward_naive (float *out, const float *x, const float *gamma, const float *beta,
                             int64_t n, int64_t c, int64_t hw, int64_t groups, float eps)
{
  int64_t per_group = c / groups;
  for (int64_t i = 0; i < n; i++)
    for (int64_t g = 0; g < groups; g++)
      {
        int64_t offset = (i * c + g * per_group) * hw;
        int64_t count = per_group * hw;
        double sum = 0, sq = 0;
        for (int64_t k = 0; k < count; k++)
          sum += x[offset + k];
        double mean = sum / count;
        for (int64_t k = 0; k < count; k++)
          sq += (x[offset + k] - mean) * (x[offset + k] - mean);
        double rstd = 1.0 / sqrt (sq / count + eps);
        for (int64_t k = 0; k < count; k++)
          {
            int64_t channel = g * per_group + k / hw;
            double y = (x[offset + k] - mean) * rstd;
            y = y * (gamma ? gamma[channel] : 1.0) + (beta ? beta[channel] : 0.0);
            out[offset + k] = (float) y;
          }
      }
}

/* The norms' backwards. With x̂ = (x − mean)·rstd, y = x̂·gamma + beta and dx̂ = dy·gamma:
 *   d_gamma += Σ dy·x̂,  d_beta += Σ dy  (over everything normalised with that gamma entry),
 *   dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂))  (means over the group or row).
 * Each gradient value is written by one task and its sums run in a fixed order, so the result
 * does not depend on the number of threads. */
typedef struct {
  float *d_x, *d_gamma, *d_beta;
  const float *d_out, *x, *mean_rstd, *gamma;
  int64_t n, c, hw, groups; /* layer norm: n = rows, c = dim */
} norm_backward_job;

/* Σ g and Σ g·(x − mean) in double over count values, g = dy (times w where w is not NULL); four
 * partial sums so the additions do not wait on each other. */
static void
gradient_sums (const float *dy, const float *w, const float *x, double mean, int64_t count,
               double *sum, double *sum_centred)
{
  double s[4] = { 0 }, t[4] = { 0 };
  int64_t i = 0;
  for (; i + 4 <= count; i += 4)
    for (int l = 0; l < 4; l++)
      {
        double g = w ? (double) dy[i + l] * w[i + l] : dy[i + l];
        s[l] += g;
        t[l] += g * (x[i + l] - mean);
      }
  for (; i < count; i++)
    {
      double g = w ? (double) dy[i] * w[i] : dy[i];
      s[0] += g;
      t[0] += g * (x[i] - mean);
    }
  *sum = (s[0] + s[1]) + (s[2] + s[3]);
  *sum_centred = (t[0] + t[1]) + (t[2] + t[3]);
}

/* Group norm, one task per group, over all images: its channels' d_gamma and d_beta (summed in
 * double per image) and d_x, in two passes over the group's memory. */
static void
group_norm_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const norm_backward_job *j = ctx;
  int64_t per_group = j->c / j->groups;
  double count = (double) (per_group * j->hw);
  for (int64_t group = begin; group < end; group++)
    for (int64_t image = 0; image < j->n; image++)
      {
        int64_t task = image * j->groups + group, first = group * per_group;
        int64_t offset = (image * j->c + first) * j->hw;
        const float *x = j->x + offset, *dy = j->d_out + offset;
        double mean = j->mean_rstd[2 * task], rstd = j->mean_rstd[2 * task + 1];
        double sum_dxhat = 0, sum_dxhat_xhat = 0;
        for (int64_t ch = 0; ch < per_group; ch++)
          {
            double sum_dy, sum_dy_centred;
            gradient_sums (dy + ch * j->hw, NULL, x + ch * j->hw, mean, j->hw, &sum_dy,
                           &sum_dy_centred);
            double sum_dy_xhat = sum_dy_centred * rstd;
            if (j->d_gamma)
              j->d_gamma[first + ch] += (float) sum_dy_xhat;
            if (j->d_beta)
              j->d_beta[first + ch] += (float) sum_dy;
            double gm = j->gamma ? j->gamma[first + ch] : 1.0;
            sum_dxhat += gm * sum_dy;
            sum_dxhat_xhat += gm * sum_dy_xhat;
          }
        if (j->d_x == NULL)
          continue;
        double mean_dxhat = sum_dxhat / count, mean_dxhat_xhat = sum_dxhat_xhat / count;
        float *dx = j->d_x + offset;
        int64_t hw = j->hw;
        for (int64_t ch = 0; ch < per_group; ch++)
          {
            double gm = j->gamma ? j->gamma[first + ch] : 1.0;
            for (int64_t k = ch * hw; k < (ch + 1) * hw; k++)
              {
                double xhat = (x[k] - mean) * rstd;
                dx[k] += (float) (rstd * (dy[k] * gm - mean_dxhat - xhat * mean_dxhat_xhat));
              }
          }
      }
}

void
gc_group_norm_backward (float *d_x, float *d_gamma, float *d_beta, const float *d_out,
                        const float *x, const float *mean_rstd, const float *gamma, int64_t n,
                        int64_t c, int64_t hw, int64_t groups)
{
  if (d_x == NULL && d_gamma == NULL && d_beta == NULL)
    return;
  norm_backward_job job = { d_x, d_gamma, d_beta, d_out, x, mean_rstd, gamma, n, c, hw, groups };
  gc_parallel_for (groups, 1 + (1 << 14) / (n * c * hw / groups + 1), group_norm_backward_range,
                   &job);
}

typedef struct {
  float *out;
  float *mean_rstd;
  const float *x;
  const float *gamma, *beta;
  int64_t dim;
  float eps;
} layer_norm_job;

static void
layer_norm_range (void *ctx, int64_t begin, int64_t end)
{
  const layer_norm_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    {
      const float *src = j->x + r * j->dim;
      float *dst = j->out + r * j->dim;
      double mean, rstd;
      mean_rstd_of (src, j->dim, j->eps, &mean, &rstd);
      if (j->mean_rstd)
        {
          j->mean_rstd[2 * r] = (float) mean;
          j->mean_rstd[2 * r + 1] = (float) rstd;
        }
      for (int64_t i = 0; i < j->dim; i++)
        {
          float y = (float) ((src[i] - mean) * rstd);
          dst[i] = y * (j->gamma ? j->gamma[i] : 1.0f) + (j->beta ? j->beta[i] : 0.0f);
        }
    }
}

void
gc_layer_norm_forward (float *out, float *mean_rstd, const float *x, const float *gamma,
                       const float *beta, int64_t rows, int64_t dim, float eps)
{
  layer_norm_job job = { out, mean_rstd, x, gamma, beta, dim, eps };
  gc_parallel_for (rows, 1 + 16384 / (dim + 1), layer_norm_range, &job);
}

void
gc_layer_norm_forward_naive (float *out, const float *x, const float *gamma, const float *beta,
                             int64_t rows, int64_t dim, float eps)
{
  gc_group_norm_forward_naive (out, x, NULL, NULL, rows, 1, dim, 1, eps);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < dim; i++)
      out[r * dim + i] = out[r * dim + i] * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
}

/* Layer norm, one task per row: d_x of the row. */
static void
layer_norm_input_backward (void *ctx, int64_t begin, int64_t end)
{
  const norm_backward_job *j = ctx;
  int64_t dim = j->c;
  for (int64_t r = begin; r < end; r++)
    {
      double mean = j->mean_rstd[2 * r], rstd = j->mean_rstd[2 * r + 1];
      const float *x = j->x + r * dim, *dy = j->d_out + r * dim;
      float *dx = j->d_x + r * dim;
      const float *gamma = j->gamma;
      double sum_dxhat, sum_dxhat_centred;
      gradient_sums (dy, gamma, x, mean, dim, &sum_dxhat, &sum_dxhat_centred);
      double mean_dxhat = sum_dxhat / dim, mean_dxhat_xhat = sum_dxhat_centred * rstd / dim;
      for (int64_t i = 0; i < dim; i++)
        {
          double xhat = (x[i] - mean) * rstd;
          double dxhat = gamma ? (double) dy[i] * gamma[i] : dy[i];
          dx[i] += (float) (rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
        }
    }
}

enum { LAYER_NORM_COLUMNS = 32 };

/* Layer norm, one task per block of columns: their d_gamma and d_beta summed over all rows. */
static void
layer_norm_affine_backward (void *ctx, int64_t begin, int64_t end)
{
  const norm_backward_job *j = ctx;
  int64_t dim = j->c;
  for (int64_t block = begin; block < end; block++)
    {
      int64_t i0 = block * LAYER_NORM_COLUMNS;
      int64_t width = i0 + LAYER_NORM_COLUMNS > dim ? dim - i0 : LAYER_NORM_COLUMNS;
      double dg[LAYER_NORM_COLUMNS] = { 0 }, db[LAYER_NORM_COLUMNS] = { 0 };
      for (int64_t r = 0; r < j->n; r++)
        {
          double mean = j->mean_rstd[2 * r], rstd = j->mean_rstd[2 * r + 1];
          const float *x = j->x + r * dim + i0, *dy = j->d_out + r * dim + i0;
          for (int64_t i = 0; i < width; i++)
            {
              dg[i] += dy[i] * ((x[i] - mean) * rstd);
              db[i] += dy[i];
            }
        }
      for (int64_t i = 0; i < width; i++)
        {
          if (j->d_gamma)
            j->d_gamma[i0 + i] += (float) dg[i];
          if (j->d_beta)
            j->d_beta[i0 + i] += (float) db[i];
        }
    }
}

void
gc_layer_norm_backward (float *d_x, float *d_gamma, float *d_beta, const float *d_out,
                        const float *x, const float *mean_rstd, const float *gamma, int64_t rows,
                        int64_t dim)
{
  norm_backward_job job = { d_x, d_gamma, d_beta, d_out, x, mean_rstd, gamma, rows, dim, 1, 1 };
  if (d_gamma || d_beta)
    gc_parallel_for ((dim + LAYER_NORM_COLUMNS - 1) / LAYER_NORM_COLUMNS,
                     1 + (1 << 14) / (rows * LAYER_NORM_COLUMNS + 1), layer_norm_affine_backward,
                     &job);
  if (d_x)
    gc_parallel_for (rows, 1 + (1 << 14) / (dim + 1), layer_norm_input_backward, &job);
}

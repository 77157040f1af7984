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

void
gc_group_norm_backward (float *d_x, float *d_gamma, float *d_beta, const float *d_out,
                        const float *x, const float *mean_rstd, const float *gamma, int64_t n,
                        int64_t c, int64_t hw, int64_t groups)
{
  int64_t per_group = c / groups;
  double count = (double) (per_group * hw);
  for (int64_t i = 0; i < n; i++)
    for (int64_t g = 0; g < groups; g++)
      {
        int64_t task = i * groups + g;
        double mean = mean_rstd[2 * task], rstd = mean_rstd[2 * task + 1];
        /* x̂ = (x − mean)·rstd; with dx̂ = d_out·gamma:
         * dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) */
        double sum_dxhat = 0, sum_dxhat_xhat = 0;
        for (int64_t ch = 0; ch < per_group; ch++)
          {
            int64_t channel = g * per_group + ch;
            int64_t offset = (i * c + channel) * hw;
            double gm = gamma ? gamma[channel] : 1.0;
            double dg = 0, db = 0;
            for (int64_t k = 0; k < hw; k++)
              {
                double xhat = (x[offset + k] - mean) * rstd;
                double dy = d_out[offset + k];
                dg += dy * xhat;
                db += dy;
                sum_dxhat += dy * gm;
                sum_dxhat_xhat += dy * gm * xhat;
              }
            if (d_gamma)
              d_gamma[channel] += (float) dg;
            if (d_beta)
              d_beta[channel] += (float) db;
          }
        if (d_x == NULL)
          continue;
        double mean_dxhat = sum_dxhat / count, mean_dxhat_xhat = sum_dxhat_xhat / count;
        for (int64_t ch = 0; ch < per_group; ch++)
          {
            int64_t channel = g * per_group + ch;
            int64_t offset = (i * c + channel) * hw;
            double gm = gamma ? gamma[channel] : 1.0;
            for (int64_t k = 0; k < hw; k++)
              {
                double xhat = (x[offset + k] - mean) * rstd;
                double dxhat = d_out[offset + k] * gm;
                d_x[offset + k] += (float) (rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
              }
          }
      }
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

void
gc_layer_norm_backward (float *d_x, float *d_gamma, float *d_beta, const float *d_out,
                        const float *x, const float *mean_rstd, const float *gamma, int64_t rows,
                        int64_t dim)
{
  for (int64_t r = 0; r < rows; r++)
    {
      double mean = mean_rstd[2 * r], rstd = mean_rstd[2 * r + 1];
      const float *xr = x + r * dim, *dy = d_out + r * dim;
      double sum_dxhat = 0, sum_dxhat_xhat = 0;
      for (int64_t i = 0; i < dim; i++)
        {
          double xhat = (xr[i] - mean) * rstd;
          double dxhat = dy[i] * (gamma ? gamma[i] : 1.0);
          sum_dxhat += dxhat;
          sum_dxhat_xhat += dxhat * xhat;
          if (d_gamma)
            d_gamma[i] += (float) (dy[i] * xhat);
          if (d_beta)
            d_beta[i] += dy[i];
        }
      if (d_x == NULL)
        continue;
      double mean_dxhat = sum_dxhat / dim, mean_dxhat_xhat = sum_dxhat_xhat / dim;
      for (int64_t i = 0; i < dim; i++)
        {
          double xhat = (xr[i] - mean) * rstd;
          double dxhat = dy[i] * (gamma ? gamma[i] : 1.0);
          d_x[r * dim + i] += (float) (rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
        }
    }
}

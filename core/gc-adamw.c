#include "gc-adamw.h"

#include <math.h>
#include <stdlib.h>

#include "gc-threads.h"

gc_adamw_params
gc_adamw_defaults (void)
{
  return (gc_adamw_params) { 0.9, 0.999, 1e-8, 0.01 };
}

gc_status
gc_adamw_init (gc_adamw *opt, int64_t count, gc_error *err)
{
  *opt = (gc_adamw) { count, 0, calloc ((size_t) (count ? count : 1), sizeof (float)),
                      calloc ((size_t) (count ? count : 1), sizeof (float)) };
  if (opt->m == NULL || opt->v == NULL)
    {
      gc_adamw_free (opt);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory for the optimizer state");
    }
  return GC_OK;
}

void
gc_adamw_free (gc_adamw *opt)
{
  free (opt->m);
  free (opt->v);
  opt->m = opt->v = NULL;
}

typedef struct {
  gc_adamw *opt;
  float *p;
  const float *g;
  float decay, b1, b2, step_size, bias2_sqrt, eps;
} step_job;

static void
step_range (void *ctx, int64_t begin, int64_t end)
{
  const step_job *j = ctx;
  float *m = j->opt->m, *v = j->opt->v;
  for (int64_t i = begin; i < end; i++)
    {
      float g = j->g[i];
      j->p[i] *= j->decay;
      m[i] = j->b1 * m[i] + (1 - j->b1) * g;
      v[i] = j->b2 * v[i] + (1 - j->b2) * g * g;
      float denom = sqrtf (v[i]) / j->bias2_sqrt + j->eps;
      j->p[i] -= j->step_size * m[i] / denom;
    }
}

void
gc_adamw_step (gc_adamw *opt, float *params, const float *grads, double lr,
               const gc_adamw_params *hp)
{
  opt->step++;
  double bias1 = 1 - pow (hp->beta1, (double) opt->step);
  double bias2 = 1 - pow (hp->beta2, (double) opt->step);
  step_job job = { opt, params, grads, (float) (1 - lr * hp->weight_decay), (float) hp->beta1,
                   (float) hp->beta2, (float) (lr / bias1), (float) sqrt (bias2), (float) hp->eps };
  gc_parallel_for (opt->count, 1 << 14, step_range, &job);
}

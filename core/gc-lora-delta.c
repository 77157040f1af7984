/* ΔW of a LoRA module, expanded into a weight where it is used (formulas in gc-lora.h). */
#include "gc-lora-private.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "gc-matmul.h"
#include "gc-threads.h"

/* A factor as float32: the data itself when it is aligned float32, else widened into scratch. */
static const float *
factor_f32 (gc_arena *scratch, const gc_weight *w)
{
  if (w->dtype == GC_DTYPE_F32 && ((uintptr_t) w->data & 3) == 0)
    return w->data;
  float *out = gc_arena_floats (scratch, (size_t) gc_weight_numel (w));
  if (out)
    gc_weight_to_f32 (out, w);
  return out;
}

/* out[out, n] = a[out, r] · b[r, n], scaled and accumulated as gc_matmul does. */
static bool
product (gc_arena *scratch, float *out, const gc_weight *a, const gc_weight *b, float alpha,
         float beta)
{
  const float *af = factor_f32 (scratch, a), *bf = factor_f32 (scratch, b);
  if (af == NULL || bf == NULL)
    return false;
  int64_t m = a->shape[0], r = a->shape[1], n = b->shape[1];
  gc_matmul (out, n, af, r, false, bf, n, false, m, n, r, alpha, beta);
  return true;
}

typedef struct {
  float *w;
  const float *x, *y;
  float c;
  int64_t n;
} hadamard_job;

/* w += c · x ⊙ y, rows [begin, end) */
static void
hadamard_rows (void *ctx, int64_t begin, int64_t end)
{
  const hadamard_job *j = ctx;
  for (int64_t i = begin * j->n; i < end * j->n; i++)
    j->w[i] += j->c * j->x[i] * j->y[i];
}

typedef struct {
  float *w;
  const float *a, *b; /* a[o1, i1], b[o2, c2] */
  float c;
  int64_t o2, i1, c2;
} kron_job;

/* w[i·o2 + j, k·c2 + l] += c · a[i, k] · b[j, l], rows [begin, end) */
static void
kron_rows (void *ctx, int64_t begin, int64_t end)
{
  const kron_job *j = ctx;
  int64_t n = j->i1 * j->c2;
  for (int64_t row = begin; row < end; row++)
    {
      const float *a = j->a + (row / j->o2) * j->i1, *b = j->b + (row % j->o2) * j->c2;
      float *w = j->w + row * n;
      for (int64_t k = 0; k < j->i1; k++)
        {
          float ak = j->c * a[k];
          for (int64_t l = 0; l < j->c2; l++)
            w[k * j->c2 + l] += ak * b[l];
        }
    }
}

bool
gc_lora_module_add_delta (gc_arena *scratch, const gc_lora_module *m, float coefficient,
                          float *w)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  float c = (float) (coefficient * m->scale);
  bool ok = true;
  switch (m->kind)
    {
    case GC_DELTA_LOW_RANK:
      ok = product (scratch, w, &m->a, &m->b, c, 1);
      break;
    case GC_DELTA_HADAMARD:
      {
        size_t count = (size_t) (m->out * m->n);
        float *x = gc_arena_floats (scratch, count), *y = gc_arena_floats (scratch, count);
        ok = x && y && product (scratch, x, &m->a, &m->b, 1, 0)
             && product (scratch, y, &m->a2, &m->b2, 1, 0);
        if (ok)
          {
            hadamard_job job = { w, x, y, c, m->n };
            gc_parallel_for (m->out, 1 + (1 << 14) / (m->n + 1), hadamard_rows, &job);
          }
        break;
      }
    case GC_DELTA_KRONECKER:
      {
        const float *a = factor_f32 (scratch, &m->a), *b = factor_f32 (scratch, &m->b);
        ok = a && b;
        if (ok)
          {
            kron_job job = { w, a, b, c, m->b.shape[0], m->a.shape[1], m->b.shape[1] };
            gc_parallel_for (m->out, 1 + (1 << 14) / (m->n + 1), kron_rows, &job);
          }
        break;
      }
    case GC_DELTA_DENSE:
      {
        const float *a = factor_f32 (scratch, &m->a);
        ok = a != NULL;
        for (int64_t i = 0; ok && i < m->out * m->n; i++)
          w[i] += c * a[i];
        break;
      }
    }
  gc_arena_reset (scratch, mark);
  return ok;
}

bool
gc_lora_modules_add_low_rank (gc_arena *scratch, const gc_lora_module *const *modules,
                              const float *coefficients, size_t count, float *w)
{
  if (count == 0)
    return true;
  int64_t out = modules[0]->out, n = modules[0]->n, rank = 0;
  for (size_t i = 0; i < count; i++)
    rank += modules[i]->a.shape[1];
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  float *up = gc_arena_floats (scratch, (size_t) (out * rank));
  float *down = gc_arena_floats (scratch, (size_t) (rank * n));
  if (up == NULL || down == NULL)
    {
      gc_arena_reset (scratch, mark);
      return false;
    }
  /* up = [c₀·a₀ | c₁·a₁ | …], down = [b₀; b₁; …] */
  int64_t at = 0;
  for (size_t i = 0; i < count; i++)
    {
      const gc_lora_module *m = modules[i];
      int64_t r = m->a.shape[1];
      size_t element = gc_dtype_size (m->a.dtype);
      float c = (float) (coefficients[i] * m->scale);
      for (int64_t o = 0; o < out; o++)
        {
          float *row = up + o * rank + at;
          gc_convert_to_f32 (row, (const char *) m->a.data + (size_t) (o * r) * element,
                             m->a.dtype, (size_t) r);
          for (int64_t j = 0; j < r; j++)
            row[j] *= c;
        }
      gc_weight_to_f32 (down + at * n, &m->b);
      at += r;
    }
  gc_matmul (w, n, up, rank, false, down, n, false, out, n, rank, 1, 1);
  gc_arena_reset (scratch, mark);
  return true;
}

/* factor[k] = dora_scale[k] / (‖Wc‖ + ε), the norm per output row or per input channel. */
static void
dora_factors (const gc_lora_module *m, const float *wc, const float *scale, double *factor)
{
  int64_t kk = m->n / m->in_channels;
  int64_t count = m->dora_on_output ? m->out : m->in_channels;
  memset (factor, 0, (size_t) count * sizeof *factor);
  for (int64_t o = 0; o < m->out; o++)
    for (int64_t i = 0; i < m->n; i++)
      {
        double v = wc[o * m->n + i];
        factor[m->dora_on_output ? o : i / kk] += v * v;
      }
  for (int64_t k = 0; k < count; k++)
    factor[k] = scale[k] / (sqrt (factor[k]) + FLT_EPSILON);
}

bool
gc_lora_module_add_dora (gc_arena *scratch, const gc_lora_module *m, float coefficient,
                         const float *w0, float *w)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  size_t count = (size_t) (m->out * m->n);
  int64_t axis = m->dora_on_output ? m->out : m->in_channels;
  float *wc = gc_arena_floats (scratch, count);
  double *factor = gc_arena_alloc (scratch, (size_t) axis * sizeof (double));
  const float *scale = factor_f32 (scratch, &m->dora_scale);
  bool ok = wc && factor && scale;
  if (ok)
    {
      memcpy (wc, w0, count * sizeof (float));
      ok = gc_lora_module_add_delta (scratch, m, 1, wc);
    }
  if (ok)
    {
      int64_t kk = m->n / m->in_channels;
      dora_factors (m, wc, scale, factor);
      for (int64_t o = 0; o < m->out; o++)
        for (int64_t i = 0; i < m->n; i++)
          {
            size_t at = (size_t) (o * m->n + i);
            double f = factor[m->dora_on_output ? o : i / kk];
            w[at] += coefficient * (float) (wc[at] * f - w0[at]);
          }
    }
  gc_arena_reset (scratch, mark);
  return ok;
}

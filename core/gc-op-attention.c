/* Multi-head scaled dot-product attention in tiles of query rows.
 *
 * For each (batch, head, tile of TILE queries): scores[tile, tk] = q_tile · kᵀ · scale, the
 * exponentials of the softmax, out_tile = exp(scores) · v, then each output row divided by its
 * sum (dh values instead of tk). A thread holds one [TILE, tk] block at a time, so memory is
 * O(tokens × tile) whatever the image size (a 64×64 latent has 4096 tokens: 2 MiB per thread,
 * where the full matrix would take 64 MiB per head).
 */
#include "gc-ops.h"

#include <math.h>
#include <stdlib.h>

#include "gc-matmul.h"
#include "gc-simd.h"
#include "gc-threads.h"

enum { TILE = 128 }; /* query rows per block: 2 MiB of scores at 4096 keys */

typedef struct {
  const gc_attention_shape *s;
  float *out;
  const float *q, *k, *v;
  float **buffers; /* per thread slot: [TILE, tk] scores (+ [TILE, tk] for backward) */
  int64_t tiles;
  /* backward only */
  float *d_q, *d_k, *d_v;
  const float *d_out;
} attention_job;

static void
mask_future (float *scores, int64_t rows, int64_t tk, int64_t first_query)
{
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = first_query + r + 1; j < tk; j++)
      scores[r * tk + j] = -INFINITY;
}

/* scores[rows, tk] = softmax(q_rows · kᵀ · scale) for one head */
static void
attention_weights (float *scores, const attention_job *j, int64_t b, int64_t h, int64_t q0,
                   int64_t rows)
{
  const gc_attention_shape *s = j->s;
  const float *q = j->q + (b * s->tq + q0) * s->q_stride + h * s->dh;
  const float *k = j->k + b * s->tk * s->k_stride + h * s->dh;
  gc_matmul (scores, s->tk, q, s->q_stride, false, k, s->k_stride, true, rows, s->tk, s->dh,
             1.0f / sqrtf ((float) s->dh), 0);
  if (s->causal)
    mask_future (scores, rows, s->tk, q0);
  gc_softmax_forward (scores, scores, rows, s->tk);
}

static void
attention_range (void *ctx, int64_t begin, int64_t end)
{
  const attention_job *j = ctx;
  const gc_attention_shape *s = j->s;
  float *scores = j->buffers[gc_thread_slot ()];
  int64_t out_stride = s->heads * s->dh;
  for (int64_t task = begin; task < end; task++)
    {
      int64_t tile = task % j->tiles, bh = task / j->tiles;
      int64_t b = bh / s->heads, h = bh % s->heads;
      int64_t q0 = tile * TILE, rows = q0 + TILE > s->tq ? s->tq - q0 : TILE;
      const float *q = j->q + (b * s->tq + q0) * s->q_stride + h * s->dh;
      const float *k = j->k + b * s->tk * s->k_stride + h * s->dh;
      const float *v = j->v + b * s->tk * s->v_stride + h * s->dh;
      float *out = j->out + (b * s->tq + q0) * out_stride + h * s->dh;
      /* scores[rows, tk] = q · kᵀ / √dh */
      gc_matmul (scores, s->tk, q, s->q_stride, false, k, s->k_stride, true, rows, s->tk, s->dh,
                 1.0f / sqrtf ((float) s->dh), 0);
      if (s->causal)
        mask_future (scores, rows, s->tk, q0);
      float inverse_sums[TILE];
      for (int64_t r = 0; r < rows; r++)
        {
          double sum = gc_exp_row (scores + r * s->tk, s->tk);
          inverse_sums[r] = sum > 0 ? (float) (1.0 / sum) : 0.0f;
        }
      /* out[rows, dh] = exp(scores) · v, then each row divided by its sum */
      gc_matmul (out, out_stride, scores, s->tk, false, v, s->v_stride, false, rows, s->dh, s->tk,
                 1, 0);
      for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < s->dh; d++)
          out[r * out_stride + d] *= inverse_sums[r];
    }
}

void
gc_attention_forward (gc_arena *scratch, float *out, const float *q, const float *k,
                      const float *v, const gc_attention_shape *s)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int threads = gc_threads_get ();
  float *buffers[GC_MAX_THREADS];
  for (int t = 0; t < threads; t++)
    buffers[t] = gc_arena_floats (scratch, (size_t) (TILE * s->tk));
  attention_job job = { s, out, q, k, v, buffers, (s->tq + TILE - 1) / TILE, NULL, NULL, NULL, NULL };
  gc_parallel_for (s->batch * s->heads * job.tiles, 1, attention_range, &job);
  gc_arena_reset (scratch, mark);
}

void
gc_attention_forward_naive (float *out, const float *q, const float *k, const float *v,
                            const gc_attention_shape *s)
{
  double scale = 1.0 / sqrt ((double) s->dh);
  double *p = malloc (sizeof (double) * (size_t) s->tk);
  if (p == NULL)
    return;
  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t h = 0; h < s->heads; h++)
      for (int64_t i = 0; i < s->tq; i++)
        {
          const float *qi = q + (b * s->tq + i) * s->q_stride + h * s->dh;
          double max = -INFINITY, sum = 0;
          int64_t visible = s->causal ? (i + 1 < s->tk ? i + 1 : s->tk) : s->tk;
          for (int64_t t = 0; t < visible; t++)
            {
              const float *kt = k + (b * s->tk + t) * s->k_stride + h * s->dh;
              double dot = 0;
              for (int64_t d = 0; d < s->dh; d++)
                dot += (double) qi[d] * kt[d];
              p[t] = dot * scale;
              max = fmax (max, p[t]);
            }
          for (int64_t t = 0; t < visible; t++)
            {
              p[t] = exp (p[t] - max);
              sum += p[t];
            }
          float *o = out + (b * s->tq + i) * s->heads * s->dh + h * s->dh;
          for (int64_t d = 0; d < s->dh; d++)
            {
              double acc = 0;
              for (int64_t t = 0; t < visible; t++)
                acc += p[t] * v[(b * s->tk + t) * s->v_stride + h * s->dh + d];
              o[d] = (float) (acc / sum);
            }
        }
  free (p);
}

/* d_p[rows, tk] := p ⊙ (d_p − rowsum(d_p ⊙ p)), the softmax backward in place */
static void
softmax_grad_in_place (float *dp, const float *p, int64_t rows, int64_t tk)
{
  for (int64_t r = 0; r < rows; r++)
    {
      double dot = 0;
      for (int64_t t = 0; t < tk; t++)
        dot += (double) dp[r * tk + t] * p[r * tk + t];
      for (int64_t t = 0; t < tk; t++)
        dp[r * tk + t] = p[r * tk + t] * (float) (dp[r * tk + t] - dot);
    }
}

/* Backward, one (batch, head) at a time so d_k and d_v are written by one thread:
 * p = softmax(s), s = q·kᵀ·scale, o = p·v:
 *   d_v += pᵀ·d_o;  d_p = d_o·vᵀ;  d_s = p ⊙ (d_p − rowsum(d_p ⊙ p));
 *   d_q += d_s·k·scale;  d_k += d_sᵀ·q·scale. */
static void
attention_backward_range (void *ctx, int64_t begin, int64_t end)
{
  const attention_job *j = ctx;
  const gc_attention_shape *s = j->s;
  float *p = j->buffers[gc_thread_slot ()];
  float *dp = p + TILE * s->tk;
  int64_t out_stride = s->heads * s->dh;
  float scale = 1.0f / sqrtf ((float) s->dh);
  for (int64_t bh = begin; bh < end; bh++)
    {
      int64_t b = bh / s->heads, h = bh % s->heads;
      const float *k = j->k + b * s->tk * s->k_stride + h * s->dh;
      const float *v = j->v + b * s->tk * s->v_stride + h * s->dh;
      for (int64_t q0 = 0; q0 < s->tq; q0 += TILE)
        {
          int64_t rows = q0 + TILE > s->tq ? s->tq - q0 : TILE;
          const float *q = j->q + (b * s->tq + q0) * s->q_stride + h * s->dh;
          const float *d_o = j->d_out + (b * s->tq + q0) * out_stride + h * s->dh;
          attention_weights (p, j, b, h, q0, rows);
          if (j->d_v)
            gc_matmul (j->d_v + b * s->tk * s->v_stride + h * s->dh, s->v_stride, p, s->tk, true,
                       d_o, out_stride, false, s->tk, s->dh, rows, 1, 1);
          gc_matmul (dp, s->tk, d_o, out_stride, false, v, s->v_stride, true, rows, s->tk, s->dh,
                     1, 0);
          softmax_grad_in_place (dp, p, rows, s->tk);
          if (j->d_q)
            gc_matmul (j->d_q + (b * s->tq + q0) * s->q_stride + h * s->dh, s->q_stride, dp,
                       s->tk, false, k, s->k_stride, false, rows, s->dh, s->tk, scale, 1);
          if (j->d_k)
            gc_matmul (j->d_k + b * s->tk * s->k_stride + h * s->dh, s->k_stride, dp, s->tk, true,
                       q, s->q_stride, false, s->tk, s->dh, rows, scale, 1);
        }
    }
}

void
gc_attention_backward (gc_arena *scratch, float *d_q, float *d_k, float *d_v,
                       const float *d_out, const float *q, const float *k, const float *v,
                       const gc_attention_shape *s)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  int threads = gc_threads_get ();
  float *buffers[GC_MAX_THREADS];
  for (int t = 0; t < threads; t++)
    buffers[t] = gc_arena_floats (scratch, (size_t) (2 * TILE * s->tk));
  attention_job job = { s, NULL, q, k, v, buffers, 0, d_q, d_k, d_v, d_out };
  gc_parallel_for (s->batch * s->heads, 1, attention_backward_range, &job);
  gc_arena_reset (scratch, mark);
}

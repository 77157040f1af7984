/* gc-ops.h — the engine's operations, each with its backward beside it.
 *
 * Conventions (llm.c style): outputs first, then inputs, then sizes. Tensors are float32,
 * row-major; images are NCHW, token sequences [rows, features]. Every backward ACCUMULATES into
 * its gradient outputs (+=), so gradients of a tensor used twice add up; a NULL gradient pointer
 * means "not needed". Each fast kernel has a *_naive twin written as plain loops: the tests
 * compare the two on odd shapes. Temporary memory comes from the scratch arena and is released
 * before returning. Work runs on the engine's thread pool (gc-threads.h).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gc-tensor.h"

/* ---- linear: out[rows, out_f] = in[rows, in_f] · weight[out_f, in_f]ᵀ + bias[out_f] ---- */
void gc_linear_forward (float *out, const float *in, const float *weight, const float *bias,
                        int64_t rows, int64_t in_f, int64_t out_f);
void gc_linear_forward_naive (float *out, const float *in, const float *weight,
                              const float *bias, int64_t rows, int64_t in_f, int64_t out_f);
void gc_linear_backward (float *d_in, float *d_weight, float *d_bias, const float *d_out,
                         const float *in, const float *weight, int64_t rows, int64_t in_f,
                         int64_t out_f);

/* ---- conv2d: out[n, c_out, oh, ow] = weight[c_out, c_in, kh, kw] ⋆ in[n, c_in, h, w] + bias
 * oh = (pad_top + h + pad_bottom − kh) / stride + 1 (ow likewise); zero padding. The VAE
 * encoder's downsampling pads only bottom and right, hence four paddings. ---- */
typedef struct {
  int64_t n, c_in, h, w;   /* input */
  int64_t c_out, kh, kw;   /* kernel */
  int64_t stride;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
} gc_conv2d_shape;

/* The usual case: a square kernel with the same padding on every side. */
gc_conv2d_shape gc_conv2d_square (int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                  int64_t k, int64_t stride, int64_t pad);

int64_t gc_conv2d_out_h (const gc_conv2d_shape *s);
int64_t gc_conv2d_out_w (const gc_conv2d_shape *s);

void gc_conv2d_forward (gc_arena *scratch, float *out, const float *in, const float *weight,
                        const float *bias, const gc_conv2d_shape *s);
void gc_conv2d_forward_naive (float *out, const float *in, const float *weight, const float *bias,
                              const gc_conv2d_shape *s);
/* Stride-1 convolutions run one product per kernel tap: weight[c_out, c_in, kh, kw] (of any
 * float dtype, e.g. fp16 straight from the file) → taps[kh·kw, c_out, c_in] float32, then
 * gc_conv2d_forward_taps. Converting and reordering in one pass saves a trip through memory. */
bool gc_conv2d_uses_taps (const gc_conv2d_shape *s); /* when gc_conv2d_forward would reorder */
void gc_conv2d_taps (gc_arena *scratch, float *taps, const void *weight, gc_dtype dtype,
                     const gc_conv2d_shape *s);
void gc_conv2d_forward_taps (gc_arena *scratch, float *out, const float *in, const float *taps,
                             const float *bias, const gc_conv2d_shape *s);
void gc_conv2d_backward (gc_arena *scratch, float *d_in, float *d_weight, float *d_bias,
                         const float *d_out, const float *in, const float *weight,
                         const gc_conv2d_shape *s);

/* ---- group norm over x[n, c, hw] in `groups` groups, per-channel affine (gamma, beta may be
 * NULL for 1 and 0). mean_rstd[n·groups·2] receives the statistics backward needs (may be NULL
 * when no backward will follow). */
void gc_group_norm_forward (float *out, float *mean_rstd, const float *x, const float *gamma,
                            const float *beta, int64_t n, int64_t c, int64_t hw, int64_t groups,
                            float eps);
void gc_group_norm_forward_naive (float *out, const float *x, const float *gamma,
                                  const float *beta, int64_t n, int64_t c, int64_t hw,
                                  int64_t groups, float eps);
/* Inference only: group norm followed by SiLU in one pass over memory (ResNet blocks). */
void gc_group_norm_silu_forward (float *out, const float *x, const float *gamma,
                                 const float *beta, int64_t n, int64_t c, int64_t hw,
                                 int64_t groups, float eps);
void gc_group_norm_backward (float *d_x, float *d_gamma, float *d_beta, const float *d_out,
                             const float *x, const float *mean_rstd, const float *gamma,
                             int64_t n, int64_t c, int64_t hw, int64_t groups);

/* ---- layer norm over the last dimension of x[rows, dim] ---- */
void gc_layer_norm_forward (float *out, float *mean_rstd, const float *x, const float *gamma,
                            const float *beta, int64_t rows, int64_t dim, float eps);
void gc_layer_norm_forward_naive (float *out, const float *x, const float *gamma,
                                  const float *beta, int64_t rows, int64_t dim, float eps);
void gc_layer_norm_backward (float *d_x, float *d_gamma, float *d_beta, const float *d_out,
                             const float *x, const float *mean_rstd, const float *gamma,
                             int64_t rows, int64_t dim);

/* ---- elementwise activations (out may equal x) ---- */
typedef enum {
  GC_ACT_SILU,       /* x·σ(x) */
  GC_ACT_GELU,       /* x·Φ(x), exact (erf) */
  GC_ACT_QUICK_GELU, /* x·σ(1.702x), OpenAI CLIP */
} gc_activation;

void gc_activation_forward (float *out, const float *x, int64_t count, gc_activation act);
void gc_activation_forward_naive (float *out, const float *x, int64_t count, gc_activation act);
void gc_activation_backward (float *d_x, const float *d_out, const float *x, int64_t count,
                             gc_activation act);

/* GEGLU of the diffusers feed-forward: x[rows, 2·dim] = [a | g] → out[rows, dim] = a · gelu(g). */
void gc_geglu_forward (float *out, const float *x, int64_t rows, int64_t dim);
void gc_geglu_forward_naive (float *out, const float *x, int64_t rows, int64_t dim);
void gc_geglu_backward (float *d_x, const float *d_out, const float *x, int64_t rows,
                        int64_t dim);

/* ---- softmax over the last dimension of x[rows, dim] (out may equal x) ---- */
void gc_softmax_forward (float *out, const float *x, int64_t rows, int64_t dim);
void gc_softmax_forward_naive (float *out, const float *x, int64_t rows, int64_t dim);
void gc_softmax_backward (float *d_x, const float *d_out, const float *out, int64_t rows,
                          int64_t dim);

/* ---- scaled dot-product attention, multi-head, computed in tiles of query rows so memory is
 * O(tokens × tile), never O(tokens²).
 * q[b, tq, heads·dh] (row stride q_stride), k and v [b, tk, heads·dh] (row strides k_stride,
 * v_stride) → out[b, tq, heads·dh] (row stride heads·dh). Scale 1/√dh. With causal, query i
 * sees keys j ≤ i. ---- */
typedef struct {
  int64_t batch, tq, tk, heads, dh;
  int64_t q_stride, k_stride, v_stride;
  bool causal;
} gc_attention_shape;

void gc_attention_forward (gc_arena *scratch, float *out, const float *q, const float *k,
                           const float *v, const gc_attention_shape *s);
void gc_attention_forward_naive (float *out, const float *q, const float *k, const float *v,
                                 const gc_attention_shape *s);
/* Recomputes the attention weights tile by tile (nothing saved in the forward). */
void gc_attention_backward (gc_arena *scratch, float *d_q, float *d_k, float *d_v,
                            const float *d_out, const float *q, const float *k, const float *v,
                            const gc_attention_shape *s);

/* ---- resampling and layout ---- */
/* out[n, c, 2h, 2w] = in[n, c, h, w] repeated (nearest) */
void gc_upsample2x_forward (float *out, const float *in, int64_t n, int64_t c, int64_t h,
                            int64_t w);
void gc_upsample2x_backward (float *d_in, const float *d_out, int64_t n, int64_t c, int64_t h,
                             int64_t w);

/* out[n, ca + cb, hw] = [a[n, ca, hw] | b[n, cb, hw]] */
void gc_concat_channels_forward (float *out, const float *a, const float *b, int64_t n,
                                 int64_t ca, int64_t cb, int64_t hw);
void gc_concat_channels_backward (float *d_a, float *d_b, const float *d_out, int64_t n,
                                  int64_t ca, int64_t cb, int64_t hw);

/* NCHW [n, c, hw] ↔ token rows [n, hw, c] (the spatial transformer's view of an image). */
void gc_nchw_to_tokens (float *out, const float *in, int64_t n, int64_t c, int64_t hw);
void gc_tokens_to_nchw (float *out, const float *in, int64_t n, int64_t c, int64_t hw);

/* ---- elementwise arithmetic (out may alias an input) ---- */
void gc_add (float *out, const float *a, const float *b, int64_t count);
void gc_mul (float *out, const float *a, const float *b, int64_t count);
void gc_scale (float *out, const float *a, float factor, int64_t count);
/* out[n, c, hw] = x[n, c, hw] + bias[n, c] (broadcast over hw: the time embedding in a ResBlock) */
void gc_add_channel_bias (float *out, const float *x, const float *bias, int64_t n, int64_t c,
                          int64_t hw);
/* Backward of gc_mul: d_a += d_out·b, d_b += d_out·a. Addition's backward is a copy-add. */
void gc_mul_backward (float *d_a, float *d_b, const float *d_out, const float *a,
                      const float *b, int64_t count);
void gc_accumulate (float *d_x, const float *d_out, int64_t count);

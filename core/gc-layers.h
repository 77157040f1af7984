/* gc-layers.h — ops applied with checkpoint parameters (internal to the model code).
 *
 * Each function widens the parameters it needs into scratch, runs the op and releases the
 * scratch again; the only error is running out of memory. Shapes come from the parameters:
 * linear weights are [out, in] (a 1×1 convolution's [out, in, 1, 1] is accepted too), conv
 * weights [out, in, kh, kw].
 */
#pragma once

#include <stdbool.h>

#include "gc-grad.h"
#include "gc-ops.h"
#include "gc-param.h"

/* out[rows, out_f] (row stride ld_out) = x[rows, in_f] · wᵀ + b (b may be NULL) */
gc_status gc_layer_linear (gc_arena *scratch, float *out, int64_t ld_out, const float *x,
                           const gc_param *w, const gc_param *b, int64_t rows, gc_error *err);

/* out[n, out, oh, ow] = conv(x[n, in, h, w]) with a square kernel, stride and equal padding */
gc_status gc_layer_conv (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                         const gc_param *b, int64_t n, int64_t h, int64_t wd, int64_t stride,
                         int64_t pad, gc_error *err);

/* The same with explicit padding (the VAE encoder pads only bottom and right). */
gc_status gc_layer_conv_padded (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                                const gc_param *b, gc_conv2d_shape shape, gc_error *err);

/* Group norm of x[n, c, hw] in 32 groups (optionally followed by SiLU). */
gc_status gc_layer_group_norm (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                               const gc_param *b, int64_t n, int64_t c, int64_t hw, float eps,
                               bool silu, gc_error *err);

gc_status gc_layer_layer_norm (gc_arena *scratch, float *out, const float *x, const gc_param *w,
                               const gc_param *b, int64_t rows, int64_t dim, float eps,
                               gc_error *err);

gc_status gc_layer_out_of_memory (gc_error *err);

/* ---- training: the norms that keep their statistics, and every layer's backward ----
 * A backward accumulates (+=) the gradient of its input into d_x (NULL when not needed) and
 * hands dL/dW of each of its parameters that the sink wants to the sink (gc-grad.h). */

/* The norms above (without SiLU), also writing mean_rstd ([n·32·2], [rows·2]). */
gc_status gc_layer_group_norm_keep (gc_arena *scratch, float *out, float *mean_rstd,
                                    const float *x, const gc_param *w, const gc_param *b,
                                    int64_t n, int64_t c, int64_t hw, float eps, gc_error *err);
gc_status gc_layer_layer_norm_keep (gc_arena *scratch, float *out, float *mean_rstd,
                                    const float *x, const gc_param *w, const gc_param *b,
                                    int64_t rows, int64_t dim, float eps, gc_error *err);

/* d_x[rows, in_f] (row stride ld_dx) += d_out[rows, out_f] (stride ld_dout) · W, and
 * dL/dW = d_outᵀ · x[rows, in_f] (stride ld_x), dL/db = Σ d_out. */
gc_status gc_layer_linear_backward (gc_arena *scratch, float *d_x, int64_t ld_dx,
                                    const float *d_out, int64_t ld_dout, const float *x,
                                    int64_t ld_x, const gc_param *w, const gc_param *b,
                                    int64_t rows, const gc_grad_sink *grads, gc_error *err);

/* Backward of gc_layer_conv: x[n, in, h, wd] was the input, d_out[n, out, oh, ow]. Stride-1
 * kernels run the input gradient as the forward convolution of d_out with the flipped,
 * transposed kernel (the tuned forward path); strided ones through gc_conv2d_backward. */
gc_status gc_layer_conv_backward (gc_arena *scratch, float *d_x, const float *d_out,
                                  const float *x, const gc_param *w, const gc_param *b,
                                  int64_t n, int64_t h, int64_t wd, int64_t stride, int64_t pad,
                                  const gc_grad_sink *grads, gc_error *err);

/* Backward of gc_layer_group_norm_keep (mean_rstd as it wrote them). */
gc_status gc_layer_group_norm_backward (gc_arena *scratch, float *d_x, const float *d_out,
                                        const float *x, const float *mean_rstd,
                                        const gc_param *w, const gc_param *b, int64_t n,
                                        int64_t c, int64_t hw, const gc_grad_sink *grads,
                                        gc_error *err);

gc_status gc_layer_layer_norm_backward (gc_arena *scratch, float *d_x, const float *d_out,
                                        const float *x, const float *mean_rstd,
                                        const gc_param *w, const gc_param *b, int64_t rows,
                                        int64_t dim, const gc_grad_sink *grads, gc_error *err);

/* d_bias[rows] += Σ over hw of d_out[rows, hw] (in double), rows = n·c: the backward of a
 * per-channel bias broadcast over an image (gc_add_channel_bias). */
void gc_layer_channel_sums (float *d_bias, const float *d_out, int64_t rows, int64_t hw);

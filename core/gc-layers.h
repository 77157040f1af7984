/* gc-layers.h — ops applied with checkpoint parameters (internal to the model code).
 *
 * Each function widens the parameters it needs into scratch, runs the op and releases the
 * scratch again; the only error is running out of memory. Shapes come from the parameters:
 * linear weights are [out, in] (a 1×1 convolution's [out, in, 1, 1] is accepted too), conv
 * weights [out, in, kh, kw].
 */
#pragma once

#include <stdbool.h>

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

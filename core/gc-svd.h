/* gc-svd.h — truncated singular value decomposition (for compressing a blend of styles).
 *
 * A ≈ U·diag(s)·Vᵀ with the k largest singular values, by the randomized range finder of
 * Halko, Martinsson and Tropp (2011): Y = (A·Aᵀ)^q·A·Ω for a Gaussian Ω of k + 8 columns,
 * Q an orthonormal basis of Y (Gram–Schmidt, twice), B = Qᵀ·A, and the exact SVD of the small
 * B from the eigen-decomposition of B·Bᵀ by cyclic Jacobi rotations in double precision (no
 * LAPACK needed). When A has rank at most k + 8 the result is exact up to rounding; otherwise
 * two power iterations (q = 2) make it close to the optimal rank-k approximation. Products
 * run through gc_matmul; the random numbers are fixed, so results are reproducible.
 */
#pragma once

#include <stdint.h>

#include "gc-error.h"

/* u[m, k], s[k] (descending) and vt[k, n] of a[m, n]; k ≤ min(m, n). tail receives the error
 * ‖A − U·diag(s)·Vᵀ‖_F², measured on the result. */
gc_status gc_svd_truncated (float *u, float *s, float *vt, double *tail, const float *a,
                            int64_t m, int64_t n, int64_t k, gc_error *err);

/* gc-matmul.h — the one place where the engine multiplies matrices.
 *
 * Every linear layer, convolution and attention product ends up here, so a faster backend
 * (bf16 tiles, another BLAS) drops in without touching model code.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, all row-major float32.
 * op(A) is A [m,k] (leading dimension lda), or Aᵀ when trans_a (A stored [k,m]); the same for B.
 * Runs on the engine's thread pool (or on the calling thread inside a parallel region).
 * With beta = 0, C need not be initialised. */
void gc_matmul (float *c, int64_t ldc,
                const float *a, int64_t lda, bool trans_a,
                const float *b, int64_t ldb, bool trans_b,
                int64_t m, int64_t n, int64_t k, float alpha, float beta);

/* The same product by three plain loops with double accumulation: the reference in tests. */
void gc_matmul_naive (float *c, int64_t ldc,
                      const float *a, int64_t lda, bool trans_a,
                      const float *b, int64_t ldb, bool trans_b,
                      int64_t m, int64_t n, int64_t k, float alpha, float beta);

/* Peak rate of gc_matmul on this machine in GFLOP/s, measured on square products of size n
 * for about `seconds` (the bench reports achieved rates against this). */
double gc_matmul_measure_gflops (int n, double seconds);

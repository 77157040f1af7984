/* gc-random-checkpoint.h — deterministic random Stable Diffusion checkpoints.
 *
 * A C port of the reference generator ../oracle/sdrand.py: it writes, from a list of tensor
 * names, shapes and dtypes, the same file byte for byte, so tests and benchmarks can make
 * full-size checkpoints without Python and without real weights. Every value is a pure
 * function of the tensor's name and the element's index:
 *
 *   seed(name)   = the first 8 bytes (little-endian) of sha256(name)
 *   bits(name,i) = splitmix64(seed(name) + i)
 *   u(name,i)    = (bits >> 40) / 2²⁴ · 2 − 1                      in [−1, 1)
 *   value        = 1 + 0.1·u        1-D '.weight' of a norm layer (norm, ln_, layer_norm)
 *                = 0.05·u           1-D '.bias'
 *                = 0.5·u            token / position embeddings
 *                = u·√(3 / fan_in)  everything else, fan_in = prod(shape[1:]) (1 for 0-D, 1-D)
 *
 * computed in double and rounded once to the file's dtype (F16, BF16 through float32 as
 * sdrand.py does, F32, F64). I64/I32 tensors (position_ids) count 0, 1, 2...; "betas",
 * "alphas_cumprod" and "alphas_cumprod_prev" hold the scaled-linear DDPM schedule
 * (0.00085..0.012, 1000 steps) that LDM checkpoints carry.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-error.h"

/* Reads a key list {"tensors": [[name, [shape...], dtype], ...], "metadata": {...}} and writes
 * the checkpoint to out_path, tensor by tensor (a 2 GB file never sits in memory). Metadata
 * values are written as strings (numbers and true/false/null spelled as Python's str() does;
 * fractional numbers are refused). */
gc_status gc_random_checkpoint_write (const char *keys_json_path, const char *out_path,
                                      gc_error *err);

/* u(name, i) of the rule above, for tests. */
double gc_random_checkpoint_uniform (const char *name, uint64_t index);

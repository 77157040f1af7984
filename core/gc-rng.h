/* gc-rng.h — PyTorch-compatible CPU random numbers.
 *
 * A seed must give an artist the same starting noise here as in PyTorch-based tools on the CPU
 * (diffusers, ComfyUI, A1111 with the CPU generator), so this is a port of torch's CPU generator
 * and of torch.randn for float32 that reproduces torch's bits exactly as torch computes them on
 * x86-64 (its AVX2 kernel; torch on other CPUs itself differs in the last bit of some values).
 *
 * The generator is a 32-bit Mersenne Twister (MT19937). Seeding follows
 * torch.Generator("cpu").manual_seed(seed): the twister is initialised from the low 32 bits of
 * the 64-bit seed, so seeds that differ only in their high 32 bits give the same numbers (as in
 * torch). torch.randn(n) with float32 then draws in one of two ways:
 *
 *  - n ≥ 16 ("normal_fill"): n uniforms u = (u32 & 0xFFFFFF)·2⁻²⁴, one 32-bit draw each; then
 *    Box–Muller on each block of 16, pairing element j with j+8 (u1 = 1 − d[j], u2 = d[j+8]),
 *    in float with Cephes' log/sin/cos approximations, as torch's vector kernel evaluates it.
 *    When n is not a multiple of 16 the last 16 elements are drawn again as 16 fresh uniforms
 *    and transformed as one more block, overlapping the previous one.
 *  - n < 16 (serial): one double-precision normal at a time; each Box–Muller pair uses two
 *    53-bit uniforms from 64-bit draws (two 32-bit draws each, the first one the high half),
 *    returns r·cos θ and keeps r·sin θ in the generator for the next call, as torch does.
 *
 * The state is a plain struct: copy it to fork a stream, it owns no memory.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum { GC_MT19937_N = 624 };

typedef struct {
  uint32_t state[GC_MT19937_N];
  int next;              /* index of the next word of state to temper; N when exhausted */
  bool has_cached_normal; /* the second value of the last serial Box–Muller pair is pending */
  double cached_normal;
} gc_torch_rng;

/* torch.Generator("cpu").manual_seed(seed); also drops any cached normal. */
void gc_torch_rng_seed (gc_torch_rng *rng, uint64_t seed);

/* The next raw 32-bit output of the twister (torch's generator.random()). */
uint32_t gc_torch_rng_u32 (gc_torch_rng *rng);

/* Two 32-bit outputs joined, the first as the high half (torch's generator.random64()). */
uint64_t gc_torch_rng_u64 (gc_torch_rng *rng);

/* out[0..n) = torch.randn(n, generator=g, dtype=torch.float32) for a contiguous tensor of n
 * elements (the shape does not matter, only the count). Successive calls continue the stream
 * exactly as successive torch.randn calls on one generator do. */
void gc_torch_randn (gc_torch_rng *rng, float *out, int64_t n);

/* out[0..n) = torch.randn(n, generator=g, dtype=torch.float64), rounded to float: the draws of
 * a pipeline that runs in float64. n ≥ 16 fills like the float path but with 53-bit uniforms
 * (two 32-bit draws each) and Box–Muller in double with libm's functions (torch has no vector
 * kernel for double); n < 16 is the serial path above, without its final rounding to float. */
void gc_torch_randn_f64 (gc_torch_rng *rng, float *out, int64_t n);

/* gc-rng.c — MT19937 and torch's CPU randn; see gc-rng.h for the exact draw order. */
#include "gc-rng.h"

#include <assert.h>
#include <stdbool.h>
#include <math.h>

enum { MT_M = 397 };

void
gc_torch_rng_seed (gc_torch_rng *rng, uint64_t seed)
{
  /* torch keeps the 64-bit seed but initialises the twister from its low 32 bits. */
  rng->state[0] = (uint32_t) seed;
  for (uint32_t i = 1; i < GC_MT19937_N; i++)
    {
      uint32_t prev = rng->state[i - 1];
      rng->state[i] = 1812433253u * (prev ^ (prev >> 30)) + i;
    }
  rng->next = GC_MT19937_N;
  rng->has_cached_normal = false;
  rng->cached_normal = 0.0;
}

/* Regenerates all 624 words at once (the classic MT19937 recurrence). */
static void
mt_twist (uint32_t *s)
{
  for (int i = 0; i < GC_MT19937_N; i++)
    {
      uint32_t y = (s[i] & 0x80000000u) | (s[(i + 1) % GC_MT19937_N] & 0x7fffffffu);
      uint32_t v = s[(i + MT_M) % GC_MT19937_N] ^ (y >> 1);
      s[i] = (y & 1u) ? v ^ 0x9908b0dfu : v;
    }
}

uint32_t
gc_torch_rng_u32 (gc_torch_rng *rng)
{
  if (rng->next >= GC_MT19937_N)
    {
      mt_twist (rng->state);
      rng->next = 0;
    }
  uint32_t y = rng->state[rng->next++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t
gc_torch_rng_u64 (gc_torch_rng *rng)
{
  uint64_t hi = gc_torch_rng_u32 (rng);
  uint64_t lo = gc_torch_rng_u32 (rng);
  return (hi << 32) | lo;
}

/* torch's uniform_real_distribution<float>(0, 1): the low 24 bits of one draw, exact in float. */
static float
uniform_f32 (gc_torch_rng *rng)
{
  return (float) (gc_torch_rng_u32 (rng) & 0xffffffu) * 0x1p-24f;
}

/* torch's uniform_real_distribution<double>(0, 1): the low 53 bits of a 64-bit draw. */
static double
uniform_f64 (gc_torch_rng *rng)
{
  return (double) (gc_torch_rng_u64 (rng) & ((UINT64_C (1) << 53) - 1)) * 0x1p-53;
}

/* torch fills float tensors of 16 or more elements with its AVX2 kernel on x86-64, whose log,
 * sin and cos are Cephes' single-precision approximations evaluated in float (as vectorised in
 * "avx_mathfun"), not libm's; and the compiler fuses each multiply that feeds an add into one
 * fused multiply-add (GCC's default contraction in C++ with -mfma). Both change the last bits
 * of one value in five, so the kernel's arithmetic is repeated here operation by operation:
 * every line below is one float operation of the compiled kernel, fmaf where it was fused. */

/* Cephes logf for x in (0, 1]: x = m·2^e with m in [0.5, 1), folded to [√½, √2) around 1. */
static float
cephes_logf (float x)
{
  static const float p[9] = {
    7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f,
    1.4249322787e-1f, -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f,
    3.3333331174e-1f,
  };
  int e;
  float m = frexpf (x, &e);
  if (m < 0.707106781186547524f)
    {
      e -= 1;
      m = (m - 1.0f) + m;
    }
  else
    m = m - 1.0f;
  float z = m * m;
  float y = p[0];
  for (int k = 1; k < 9; k++)
    y = fmaf (y, m, p[k]);
  y = y * m;
  /* ln 2 split in two so that e·ln2 adds without rounding error: 0.693359375 − 2.12194440e-4. */
  float fe = (float) e;
  y = fmaf (y, z, fe * -2.12194440e-4f);
  y = fmaf (-z, 0.5f, y);
  return fmaf (fe, 0.693359375f, m + y);
}

/* Cephes sinf/cosf together for x ≥ 0: reduce by multiples of π/4 (Cody–Waite, π/4 in three
 * parts), then a sine or cosine polynomial on [−π/4, π/4] and the octant's sign. */
static void
cephes_sincosf (float x, float *s, float *c)
{
  int j = (int) (x * 1.27323954473516f); /* 4/π, truncated toward zero */
  j = (j + 1) & ~1;
  float y = (float) j;
  x = fmaf (y, -0.78515625f, x);
  x = fmaf (y, -2.4187564849853515625e-4f, x);
  x = fmaf (y, -3.77489497744594108e-8f, x);
  float z = x * x;

  float pc = fmaf (2.443315711809948e-5f, z, -1.388731625493765e-3f);
  pc = fmaf (pc, z, 4.166664568298827e-2f);
  pc = pc * z;
  pc = fmaf (pc, z, -(z * 0.5f));
  pc = pc + 1.0f;

  float ps = fmaf (-1.9515295891e-4f, z, 8.3321608736e-3f);
  ps = fmaf (ps, z, -1.6666654611e-1f);
  ps = ps * z;
  ps = fmaf (ps, x, x);

  bool swap = (j & 2) != 0; /* odd quadrant pairs: sine and cosine trade places */
  float sv = swap ? pc : ps;
  float cv = swap ? ps : pc;
  *s = (j & 4) ? -sv : sv;
  *c = ((j - 2) & 4) ? cv : -cv;
}

/* Box–Muller in place on 16 uniforms, as torch's normal_fill_16_AVX2 computes it. */
static void
normal_fill_16 (float *d)
{
  for (int j = 0; j < 8; j++)
    {
      float u1 = 1.0f - d[j]; /* [0, 1) → (0, 1] so the log is finite */
      float u2 = d[j + 8];
      float radius = sqrtf (-2.0f * cephes_logf (u1));
      float theta = (float) (2.0 * M_PI) * u2;
      float s, c;
      cephes_sincosf (theta, &s, &c);
      d[j] = radius * c;
      d[j + 8] = radius * s;
    }
}

static void
normal_fill (gc_torch_rng *rng, float *out, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    out[i] = uniform_f32 (rng);
  for (int64_t i = 0; i + 16 <= n; i += 16)
    normal_fill_16 (out + i);
  if (n % 16 != 0)
    {
      /* torch redraws the last 16 values rather than handling a short block. */
      float *tail = out + n - 16;
      for (int j = 0; j < 16; j++)
        tail[j] = uniform_f32 (rng);
      normal_fill_16 (tail);
    }
}

/* torch's normal_distribution<double>, one value per call, the pair's second value cached. */
static double
normal_f64 (gc_torch_rng *rng)
{
  if (rng->has_cached_normal)
    {
      rng->has_cached_normal = false;
      return rng->cached_normal;
    }
  double u1 = uniform_f64 (rng);
  double u2 = uniform_f64 (rng);
  double r = sqrt (-2.0 * log1p (-u2));
  double theta = 2.0 * M_PI * u1;
  rng->cached_normal = r * sin (theta);
  rng->has_cached_normal = true;
  return r * cos (theta);
}

/* torch's scalar normal_fill_16 for double: libm's log, cos and sin, all in double. */
static void
normal_fill_16_f64 (double *d)
{
  for (int j = 0; j < 8; j++)
    {
      double u1 = 1.0 - d[j];
      double u2 = d[j + 8];
      double radius = sqrt (-2.0 * log (u1));
      double theta = 2.0 * M_PI * u2;
      d[j] = radius * cos (theta);
      d[j + 8] = radius * sin (theta);
    }
}

/* The float64 normal_fill a block at a time: transforming consumes no randomness, so drawing
 * each block's uniforms just before its transform leaves the stream as torch's all-first order. */
static void
normal_fill_f64 (gc_torch_rng *rng, float *out, int64_t n)
{
  double block[16];
  int64_t whole = n - n % 16;
  for (int64_t i = 0; i < whole; i += 16)
    {
      for (int j = 0; j < 16; j++)
        block[j] = uniform_f64 (rng);
      normal_fill_16_f64 (block);
      for (int j = 0; j < 16; j++)
        out[i + j] = (float) block[j];
    }
  if (whole == n)
    return;
  /* torch draws the leftover uniforms, then overwrites the last 16 values with a fresh block. */
  for (int64_t i = whole; i < n; i++)
    uniform_f64 (rng);
  for (int j = 0; j < 16; j++)
    block[j] = uniform_f64 (rng);
  normal_fill_16_f64 (block);
  for (int j = 0; j < 16; j++)
    out[n - 16 + j] = (float) block[j];
}

void
gc_torch_randn_f64 (gc_torch_rng *rng, float *out, int64_t n)
{
  assert (n >= 0);
  if (n >= 16)
    {
      normal_fill_f64 (rng, out, n);
      return;
    }
  for (int64_t i = 0; i < n; i++)
    out[i] = (float) normal_f64 (rng);
}

void
gc_torch_randn (gc_torch_rng *rng, float *out, int64_t n)
{
  assert (n >= 0);
  if (n >= 16)
    {
      normal_fill (rng, out, n);
      return;
    }
  for (int64_t i = 0; i < n; i++)
    out[i] = (float) normal_f64 (rng);
}

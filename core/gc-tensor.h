/* gc-tensor.h — float32 activations in an arena, and views of weights in file precision.
 *
 * Layout: activations are float32, row-major NCHW: element (n, c, h, w) of a [N, C, H, W]
 * tensor is at ((n·C + c)·H + h)·W + w. Token sequences are [N, 1, T, D] (one row per token).
 *
 * An arena hands out 64-byte aligned blocks from large chunks. gc_arena_mark() and
 * gc_arena_reset() free everything allocated after a mark at once: a forward pass marks the
 * arena at its start and resets it when its intermediate activations are no longer needed.
 * Chunks are kept for reuse until gc_arena_trim() or gc_arena_free().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-dtype.h"
#include "gc-error.h"

typedef struct gc_arena_chunk gc_arena_chunk;

typedef struct {
  gc_arena_chunk *chunks; /* in use, newest first */
  gc_arena_chunk *spare;  /* emptied by a reset, kept for reuse */
  size_t chunk_size;      /* default size of a new chunk */
  size_t in_use;          /* bytes handed out and not yet reset */
  size_t peak;            /* high-water mark of in_use */
} gc_arena;

typedef struct {
  gc_arena_chunk *chunk;
  size_t used;
  size_t in_use;
} gc_arena_mark_t;

/* Starts an empty arena whose chunks are at least chunk_size bytes (0 picks 64 MiB). */
void gc_arena_init (gc_arena *arena, size_t chunk_size);
void gc_arena_free (gc_arena *arena);

/* Returns size bytes aligned to 64, or NULL when memory is exhausted. Contents are undefined. */
void *gc_arena_alloc (gc_arena *arena, size_t size);
float *gc_arena_floats (gc_arena *arena, size_t count);

gc_arena_mark_t gc_arena_mark (const gc_arena *arena);
void gc_arena_reset (gc_arena *arena, gc_arena_mark_t mark);

/* Returns the memory of spare chunks (emptied by resets) to the system. */
void gc_arena_trim (gc_arena *arena);

typedef struct {
  float *data;
  int64_t n, c, h, w;
} gc_tensor;

/* A [n, c, h, w] tensor from the arena; data is NULL when memory is exhausted. */
gc_tensor gc_tensor_alloc (gc_arena *arena, int64_t n, int64_t c, int64_t h, int64_t w);
int64_t gc_tensor_numel (gc_tensor t);

enum { GC_MAX_DIMS = 8 };

/* A read-only view of a weight as stored (for example fp16 in a mapped file). */
typedef struct {
  gc_dtype dtype;
  const void *data;
  int ndim;
  int64_t shape[GC_MAX_DIMS];
} gc_weight;

int64_t gc_weight_numel (const gc_weight *w);

/* dst[i] = weight element i as float32. */
void gc_weight_to_f32 (float *dst, const gc_weight *w);

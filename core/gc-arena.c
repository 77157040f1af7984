#include "gc-tensor.h"

#include <assert.h>
#include <stdlib.h>
#include <sys/mman.h>

struct gc_arena_chunk {
  gc_arena_chunk *next;
  size_t size; /* usable bytes after the header */
  size_t used;
};

enum { CHUNK_HEADER = 64, ALIGNMENT = 64 };

static unsigned char *
chunk_base (gc_arena_chunk *chunk)
{
  return (unsigned char *) chunk + CHUNK_HEADER;
}

void
gc_arena_init (gc_arena *arena, size_t chunk_size)
{
  arena->chunks = NULL;
  arena->spare = NULL;
  arena->chunk_size = chunk_size ? chunk_size : (size_t) 64 << 20;
  arena->in_use = 0;
  arena->peak = 0;
}

static void
chunk_release (gc_arena_chunk *chunk)
{
  munmap (chunk, chunk->size + CHUNK_HEADER);
}

static void
chunk_list_release (gc_arena_chunk **list)
{
  while (*list)
    {
      gc_arena_chunk *next = (*list)->next;
      chunk_release (*list);
      *list = next;
    }
}

void
gc_arena_free (gc_arena *arena)
{
  chunk_list_release (&arena->chunks);
  chunk_list_release (&arena->spare);
  arena->in_use = 0;
}

static gc_arena_chunk *
chunk_new (size_t size)
{
  /* mmap rather than malloc so that trimming really returns the memory */
  void *p = mmap (NULL, size + CHUNK_HEADER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  gc_arena_chunk *chunk = p;
  chunk->next = NULL;
  chunk->size = size;
  chunk->used = 0;
  return chunk;
}

void *
gc_arena_alloc (gc_arena *arena, size_t size)
{
  size_t rounded = (size + ALIGNMENT - 1) & ~(size_t) (ALIGNMENT - 1);
  if (rounded < size)
    return NULL;
  gc_arena_chunk *chunk = arena->chunks;
  if (chunk == NULL || chunk->size - chunk->used < rounded)
    {
      /* Reuse an emptied chunk kept after a reset if it is large enough; else map a new one. */
      size_t want = rounded > arena->chunk_size ? rounded : arena->chunk_size;
      gc_arena_chunk *fresh = NULL;
      for (gc_arena_chunk **link = &arena->spare; *link; link = &(*link)->next)
        if ((*link)->size >= want)
          {
            fresh = *link;
            *link = fresh->next;
            break;
          }
      if (fresh == NULL)
        fresh = chunk_new (want);
      if (fresh == NULL)
        return NULL;
      fresh->next = arena->chunks;
      arena->chunks = fresh;
      chunk = fresh;
    }
  void *p = chunk_base (chunk) + chunk->used;
  chunk->used += rounded;
  arena->in_use += rounded;
  if (arena->in_use > arena->peak)
    arena->peak = arena->in_use;
  return p;
}

float *
gc_arena_floats (gc_arena *arena, size_t count)
{
  if (count > SIZE_MAX / sizeof (float))
    return NULL;
  return gc_arena_alloc (arena, count * sizeof (float));
}

gc_arena_mark_t
gc_arena_mark (const gc_arena *arena)
{
  gc_arena_mark_t mark = { arena->chunks, arena->chunks ? arena->chunks->used : 0, arena->in_use };
  return mark;
}

void
gc_arena_reset (gc_arena *arena, gc_arena_mark_t mark)
{
  /* Chunks taken after the mark become spares; the marked chunk rewinds to where it was. */
  while (arena->chunks != mark.chunk)
    {
      assert (arena->chunks != NULL);
      gc_arena_chunk *chunk = arena->chunks;
      arena->chunks = chunk->next;
      chunk->used = 0;
      chunk->next = arena->spare;
      arena->spare = chunk;
    }
  if (mark.chunk)
    mark.chunk->used = mark.used;
  arena->in_use = mark.in_use;
}

void
gc_arena_trim (gc_arena *arena)
{
  chunk_list_release (&arena->spare);
}

gc_tensor
gc_tensor_alloc (gc_arena *arena, int64_t n, int64_t c, int64_t h, int64_t w)
{
  gc_tensor t = { NULL, n, c, h, w };
  assert (n >= 0 && c >= 0 && h >= 0 && w >= 0);
  t.data = gc_arena_floats (arena, (size_t) (n * c * h * w));
  return t;
}

int64_t
gc_tensor_numel (gc_tensor t)
{
  return t.n * t.c * t.h * t.w;
}

int64_t
gc_weight_numel (const gc_weight *w)
{
  int64_t n = 1;
  for (int i = 0; i < w->ndim; i++)
    n *= w->shape[i];
  return n;
}

void
gc_weight_to_f32 (float *dst, const gc_weight *w)
{
  gc_convert_to_f32 (dst, w->data, w->dtype, (size_t) gc_weight_numel (w));
}

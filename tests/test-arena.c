/* The arena that holds activations: marks free whole passes, spares are reused. */
#include <glib.h>
#include <stdint.h>

#include "gc-tensor.h"

static void
test_alignment_and_reset (void)
{
  gc_arena arena;
  gc_arena_init (&arena, 1 << 16);
  char *a = gc_arena_alloc (&arena, 3);
  char *b = gc_arena_alloc (&arena, 100);
  g_assert_nonnull (a);
  g_assert_cmpuint ((uintptr_t) a % 64, ==, 0);
  g_assert_cmpuint ((uintptr_t) b % 64, ==, 0);
  g_assert_true (b >= a + 3);
  gc_arena_mark_t mark = gc_arena_mark (&arena);
  char *big = gc_arena_alloc (&arena, 1 << 20); /* larger than a chunk */
  g_assert_nonnull (big);
  big[(1 << 20) - 1] = 1;
  g_assert_cmpuint (arena.in_use, ==, (1 << 20) + 192);
  gc_arena_reset (&arena, mark);
  g_assert_cmpuint (arena.in_use, ==, 192); /* 3 and 100 bytes round to 64 and 128 */
  /* The big chunk was kept and is handed out again. */
  char *again = gc_arena_alloc (&arena, 1 << 20);
  g_assert_true (again == big);
  g_assert_cmpuint (arena.peak, ==, (1 << 20) + 192);
  gc_arena_free (&arena);
}

static void
test_tensor (void)
{
  gc_arena arena;
  gc_arena_init (&arena, 0);
  gc_tensor t = gc_tensor_alloc (&arena, 2, 3, 4, 5);
  g_assert_nonnull (t.data);
  g_assert_cmpint (gc_tensor_numel (t), ==, 120);
  t.data[119] = 1.0f;
  gc_arena_trim (&arena);
  gc_arena_free (&arena);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/arena/alignment-and-reset", test_alignment_and_reset);
  g_test_add_func ("/core/arena/tensor", test_tensor);
  return g_test_run ();
}

/* gc-threads.h — the engine's worker threads.
 *
 * The engine runs its own pool of threads and calls OpenBLAS single-threaded from them, so the
 * number of busy cores is exactly the number set here (never oversubscribed by two pools).
 * Parallel regions do not nest: gc_parallel_for called from inside a worker runs inline.
 * Calls from several application threads at once take turns.
 */
#pragma once

#include <stdint.h>

enum { GC_MAX_THREADS = 256 };

/* Sets the number of threads (1..GC_MAX_THREADS; 0 picks the number of online CPUs). */
void gc_threads_set (int count);
int gc_threads_get (void);

/* Work on indices [begin, end). */
typedef void (*gc_range_fn) (void *ctx, int64_t begin, int64_t end);

/* The slot of the calling thread: 0 for the thread that called gc_parallel_for (and any thread
 * outside a parallel region), 1..count−1 for pool workers. Indexes per-thread buffers that were
 * allocated for gc_threads_get () slots before the parallel region. */
int gc_thread_slot (void);

/* Splits [0, n) in contiguous ranges of at least grain indices and runs them on the pool. */
void gc_parallel_for (int64_t n, int64_t grain, gc_range_fn fn, void *ctx);

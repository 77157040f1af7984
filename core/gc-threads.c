#include "gc-threads.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include <cblas.h>

/* One job at a time: the caller is worker 0, pool threads 1..count-1 take the other slices. */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t work_ready;
  pthread_cond_t work_done;
  pthread_mutex_t caller_lock; /* serialises application threads */
  int count;                   /* threads including the caller */
  int started;                 /* pool threads created so far */
  uint64_t generation;         /* bumped for every job */
  int pending;                 /* slices not yet finished */
  gc_range_fn fn;
  void *ctx;
  int64_t n;
  int slices;
} thread_pool;

static thread_pool pool = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .work_ready = PTHREAD_COND_INITIALIZER,
  .work_done = PTHREAD_COND_INITIALIZER,
  .caller_lock = PTHREAD_MUTEX_INITIALIZER,
  .count = 0,
};

static _Thread_local bool inside_parallel_region;
static _Thread_local int thread_slot;

int
gc_thread_slot (void)
{
  return thread_slot;
}

static void
run_slice (int slice)
{
  int64_t begin = pool.n * slice / pool.slices;
  int64_t end = pool.n * (slice + 1) / pool.slices;
  if (begin < end)
    pool.fn (pool.ctx, begin, end);
}

static void *
worker_main (void *arg)
{
  int index = (int) (intptr_t) arg;
  uint64_t seen = 0;
  inside_parallel_region = true;
  thread_slot = index;
  pthread_mutex_lock (&pool.lock);
  for (;;)
    {
      while (pool.generation == seen)
        pthread_cond_wait (&pool.work_ready, &pool.lock);
      seen = pool.generation;
      if (index >= pool.slices)
        continue;
      pthread_mutex_unlock (&pool.lock);
      run_slice (index);
      pthread_mutex_lock (&pool.lock);
      if (--pool.pending == 0)
        pthread_cond_signal (&pool.work_done);
    }
  return NULL;
}

static int
default_count (void)
{
  long cpus = sysconf (_SC_NPROCESSORS_ONLN);
  return cpus < 1 ? 1 : cpus > GC_MAX_THREADS ? GC_MAX_THREADS : (int) cpus;
}

void
gc_threads_set (int count)
{
  if (count <= 0)
    count = default_count ();
  if (count > GC_MAX_THREADS)
    count = GC_MAX_THREADS;
  pthread_mutex_lock (&pool.caller_lock);
  pthread_mutex_lock (&pool.lock);
  pool.count = count;
  pthread_mutex_unlock (&pool.lock);
  pthread_mutex_unlock (&pool.caller_lock);
  openblas_set_num_threads (1);
}

int
gc_threads_get (void)
{
  pthread_mutex_lock (&pool.lock);
  if (pool.count == 0)
    {
      pool.count = default_count ();
      openblas_set_num_threads (1);
    }
  int count = pool.count;
  pthread_mutex_unlock (&pool.lock);
  return count;
}

static void
ensure_started (int count)
{
  /* Threads are started lazily and never stopped; a smaller count leaves the rest idle. */
  while (pool.started < count - 1)
    {
      pthread_t thread;
      pthread_attr_t attr;
      pthread_attr_init (&attr);
      pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
      int failed = pthread_create (&thread, &attr, worker_main, (void *) (intptr_t) (pool.started + 1));
      pthread_attr_destroy (&attr);
      if (failed)
        break;
      pool.started++;
    }
}

void
gc_parallel_for (int64_t n, int64_t grain, gc_range_fn fn, void *ctx)
{
  if (n <= 0)
    return;
  if (grain < 1)
    grain = 1;
  int count = gc_threads_get ();
  int64_t max_slices = (n + grain - 1) / grain;
  if (inside_parallel_region || count == 1 || max_slices == 1)
    {
      fn (ctx, 0, n);
      return;
    }
  pthread_mutex_lock (&pool.caller_lock);
  pthread_mutex_lock (&pool.lock);
  ensure_started (count);
  int slices = pool.started + 1;
  if (slices > count)
    slices = count;
  if (slices > max_slices)
    slices = (int) max_slices;
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.slices = slices;
  pool.pending = slices - 1;
  pool.generation++;
  pthread_cond_broadcast (&pool.work_ready);
  pthread_mutex_unlock (&pool.lock);

  inside_parallel_region = true;
  run_slice (0);
  inside_parallel_region = false;

  pthread_mutex_lock (&pool.lock);
  while (pool.pending > 0)
    pthread_cond_wait (&pool.work_done, &pool.lock);
  pthread_mutex_unlock (&pool.lock);
  pthread_mutex_unlock (&pool.caller_lock);
}

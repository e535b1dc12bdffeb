/* The thread pool behind kern_parallel (kernels.h): n threads including the caller share the
 * chunks of one task at a time.  Internal to the kernel library. */
#ifndef KERN_POOL_H
#define KERN_POOL_H

#include "kernels.h"

struct kern_pool;

/* Starts n-1 worker threads (n >= 1).  NULL if memory or threads are unavailable.  Caller frees
 * with kern_pool_free. */
struct kern_pool *kern_pool_new(unsigned n);
void kern_pool_free(struct kern_pool *p);
unsigned kern_pool_size(const struct kern_pool *p);
typedef kern_task_fn kern_chunk_fn;
/* fn(arg, i, nchunks) once for every chunk i, on whichever threads claim it; returns when all
 * chunks are done (see kern_parallel_chunks). */
void kern_pool_run(struct kern_pool *p, unsigned nchunks, kern_chunk_fn fn, void *arg);

#endif

/* Worker threads for gguf-convert (pool.c): a parallel pass over items and an ordered stream.
 * Invariant: each item runs exactly once, on one thread, whatever the thread count. */
#ifndef CV_POOL_H
#define CV_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "bn_err.h"

/* Produces item i with the worker's scratch buffer; returns 0 or -BN_E... */
typedef int (*cv_item_fn)(void *arg, size_t i, void *scratch, struct bn_err *err);
/* Consumes item i on the calling thread (in order). */
typedef int (*cv_consume_fn)(void *arg, size_t i, struct bn_err *err);

struct cv_pool;

/* threads workers besides the caller (0: everything runs on the caller), each with
 * scratch_bytes of zeroed
 * scratch (scratch_fini, if not NULL, releases what a scratch came to own); streams may use
 * windows up to max_window.  Caller frees with cv_pool_free. */
struct cv_pool *cv_pool_new(unsigned threads, size_t scratch_bytes, size_t max_window,
			    void (*scratch_fini)(void *), struct bn_err *err);
void cv_pool_free(struct cv_pool *p);
unsigned cv_pool_threads(const struct cv_pool *p);

/* fn(i) for every i < n, in parallel on the workers and the caller; the first error wins (items
 * already running finish). */
int cv_pool_for(struct cv_pool *p, size_t n, cv_item_fn fn, void *arg, struct bn_err *err);
/* fn(i) at most `window` (<= max_window) items ahead of consume(i), which runs on the caller in
 * order 0, 1, ..., n-1; the caller produces items itself while the next one is not ready. */
int cv_pool_stream(struct cv_pool *p, size_t n, size_t window, cv_item_fn fn,
		   cv_consume_fn consume, void *arg, struct bn_err *err);

#endif

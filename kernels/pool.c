/* A small reusable thread pool: n-1 workers plus the calling thread share the chunks of one task
 * at a time.  Chunks are claimed from one atomic ticket, so a worker the OS has not scheduled yet
 * costs nothing: the others (the caller included) take its chunks.  Workers spin briefly between
 * tasks (matmuls follow each other within microseconds during inference), then sleep on a
 * condition variable so an idle process costs nothing. */
#include "kern_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define POOL_SPIN_NS 200000 /* how long a worker waits busily for the next task */

struct kern_pool {
	unsigned n;
	pthread_t *tids;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint gen;        /* task generation: wakes the workers */
	atomic_uint_fast64_t ticket; /* nchunks << 32 | next chunk index of the current task */
	atomic_uint done;       /* chunks finished in the current task */
	atomic_bool stop;
	kern_chunk_fn fn;       /* the current task; written before its ticket is published */
	void *arg;
};

struct worker_arg {
	struct kern_pool *pool;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("pause");
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Claims and runs chunks of the current task until none are left.  A claim that returns a valid
 * index belongs to the task whose fn/arg are current: the caller cannot publish another task
 * before this chunk is done. */
static void run_chunks(struct kern_pool *p)
{
	for (;;) {
		uint64_t t = atomic_fetch_add_explicit(&p->ticket, 1, memory_order_acq_rel);
		unsigned n = (unsigned)(t >> 32), i = (unsigned)t;
		if (i >= n)
			return;
		p->fn(p->arg, i, n);
		atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
	}
}

/* Waits until gen differs from seen; returns the new generation. */
static unsigned wait_task(struct kern_pool *p, unsigned seen)
{
	uint64_t t0 = 0;
	for (unsigned spin = 0;; spin++) {
		unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
		if (g != seen || atomic_load_explicit(&p->stop, memory_order_acquire))
			return g;
		cpu_relax();
		if ((spin & 63) == 63) {
			uint64_t t = now_ns();
			if (!t0)
				t0 = t;
			else if (t - t0 > POOL_SPIN_NS)
				break;
		}
	}
	pthread_mutex_lock(&p->mu);
	unsigned g;
	while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
	       !atomic_load_explicit(&p->stop, memory_order_acquire))
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	return g;
}

static void *worker(void *v)
{
	struct kern_pool *p = v;
	unsigned seen = 0;
	for (;;) {
		seen = wait_task(p, seen);
		if (atomic_load_explicit(&p->stop, memory_order_acquire))
			break;
		run_chunks(p);
	}
	return NULL;
}

struct kern_pool *kern_pool_new(unsigned n)
{
	struct kern_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n ? n : 1;
	atomic_init(&p->gen, 0);
	atomic_init(&p->ticket, 0);
	atomic_init(&p->done, 0);
	atomic_init(&p->stop, false);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (p->n > 1 && !(p->tids = calloc(p->n - 1, sizeof *p->tids))) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return NULL;
	}
	for (unsigned i = 1; i < p->n; i++) {
		if (pthread_create(&p->tids[i - 1], NULL, worker, p) != 0) {
			p->n = i; /* stop and join the ones that started */
			kern_pool_free(p);
			return NULL;
		}
	}
	return p;
}

void kern_pool_free(struct kern_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store_explicit(&p->stop, true, memory_order_release);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 1; i < p->n; i++)
		pthread_join(p->tids[i - 1], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->tids);
	free(p);
}

unsigned kern_pool_size(const struct kern_pool *p)
{
	return p->n;
}

void kern_pool_run(struct kern_pool *p, unsigned nchunks, kern_chunk_fn fn, void *arg)
{
	if (nchunks == 0)
		return;
	if (p->n == 1 || nchunks == 1) {
		for (unsigned i = 0; i < nchunks; i++)
			fn(arg, i, nchunks);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	atomic_store_explicit(&p->ticket, (uint64_t)nchunks << 32, memory_order_release);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);

	run_chunks(p);

	for (unsigned spin = 0; atomic_load_explicit(&p->done, memory_order_acquire) != nchunks; spin++) {
		cpu_relax();
		if ((spin & 255) == 255)
			sched_yield();
	}
}

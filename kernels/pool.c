/* A small reusable thread pool: n-1 workers plus the calling thread run one task at a time.
 * Workers spin briefly between tasks (matmuls follow each other within microseconds during
 * inference), then sleep on a condition variable so an idle process costs nothing. */
#include "kern_pool.h"

#include <errno.h>
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
	atomic_uint gen;  /* task generation; workers run each one once */
	atomic_uint done; /* workers finished with the current generation */
	atomic_bool stop;
	kern_task_fn fn;
	void *arg;
};

struct worker_arg {
	struct kern_pool *pool;
	unsigned ith;
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
	struct worker_arg *wa = v;
	struct kern_pool *p = wa->pool;
	unsigned ith = wa->ith;
	free(wa);
	unsigned seen = 0;
	for (;;) {
		seen = wait_task(p, seen);
		if (atomic_load_explicit(&p->stop, memory_order_acquire))
			break;
		p->fn(p->arg, ith, p->n);
		atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
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
	atomic_init(&p->done, 0);
	atomic_init(&p->stop, false);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (p->n > 1) {
		p->tids = calloc(p->n - 1, sizeof *p->tids);
		if (!p->tids)
			goto fail;
	}
	for (unsigned i = 1; i < p->n; i++) {
		struct worker_arg *wa = malloc(sizeof *wa);
		if (!wa)
			goto fail_threads;
		wa->pool = p;
		wa->ith = i;
		if (pthread_create(&p->tids[i - 1], NULL, worker, wa) != 0) {
			free(wa);
			goto fail_threads;
		}
		continue;
fail_threads:
		p->n = i; /* stop and join the ones that started */
		kern_pool_free(p);
		return NULL;
	}
	return p;
fail:
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
	return NULL;
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

void kern_pool_run(struct kern_pool *p, kern_task_fn fn, void *arg)
{
	if (p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);

	fn(arg, 0, p->n);

	unsigned want = p->n - 1;
	for (unsigned spin = 0; atomic_load_explicit(&p->done, memory_order_acquire) != want; spin++) {
		cpu_relax();
		if ((spin & 1023) == 1023)
			sched_yield();
	}
}

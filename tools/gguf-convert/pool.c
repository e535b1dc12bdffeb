/* Worker threads for the converter: a parallel pass over numbered items, and an ordered stream
 * where workers produce items ahead into a ring of `window` slots while the calling thread
 * consumes them strictly in order (the file write stays sequential).  Invariant: item i is only
 * produced once item i - window has been consumed, so slot i mod window is free; every item is
 * handed to exactly one thread (a worker or the caller, which helps while it waits), so results
 * never depend on the number of threads. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bn_log.h"
#include "pool.h"

struct cv_pool {
	unsigned n;                   /* worker threads; 0 = run everything on the caller */
	size_t max_window;
	void (*scratch_fini)(void *);
	pthread_t *th;
	void **scratch;               /* per worker; index n: the caller's */
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	bool quit, active;
	/* the current job */
	cv_item_fn fn;
	void *arg;
	size_t n_items, next, finished, consumed, window;
	bool *ready;                  /* per slot: produced, not yet consumed */
	bool streaming;               /* ready[] is in use */
	bool failed;
	int rc;
	struct bn_err err;
};

struct wargs {
	struct cv_pool *p;
	unsigned id;
};

static void *worker(void *a_)
{
	struct wargs *a = a_;
	struct cv_pool *p = a->p;
	void *scratch = p->scratch[a->id];
	free(a);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && !(p->active && !p->failed && p->next < p->n_items &&
				     p->next - p->consumed < p->window))
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		struct bn_err e = { 0 };
		int rc = p->fn(p->arg, i, scratch, &e);
		pthread_mutex_lock(&p->mu);
		if (rc && !p->failed) {
			p->failed = true;
			p->rc = rc;
			p->err = e;
		}
		if (p->streaming)
			p->ready[i % p->window] = true;
		p->finished++;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct cv_pool *cv_pool_new(unsigned threads, size_t scratch_bytes, size_t max_window,
			    void (*scratch_fini)(void *), struct bn_err *err)
{
	struct cv_pool *p = calloc(1, sizeof *p);
	if (!p) {
		bn_seterr(err, BN_ENOMEM, "out of memory");
		return NULL;
	}
	p->n = threads;
	p->scratch_fini = scratch_fini;
	p->max_window = max_window ? max_window : 1;
	p->th = calloc(threads ? threads : 1, sizeof *p->th);
	p->scratch = calloc(threads + 1, sizeof *p->scratch);
	p->ready = calloc(max_window ? max_window : 1, sizeof *p->ready);
	if (!p->th || !p->scratch || !p->ready)
		goto oom;
	for (unsigned i = 0; i <= threads; i++)
		if (scratch_bytes && !(p->scratch[i] = calloc(1, scratch_bytes)))
			goto oom;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (unsigned i = 0; i < threads; i++) {
		struct wargs *a = malloc(sizeof *a);
		if (!a || (*a = (struct wargs){ p, i }, pthread_create(&p->th[i], NULL, worker, a))) {
			free(a);
			p->n = i; /* join the ones started */
			cv_pool_free(p);
			bn_seterr(err, BN_ENOMEM, "cannot start worker thread %u", i);
			return NULL;
		}
	}
	return p;
oom:
	if (p->scratch)
		for (unsigned i = 0; i <= threads; i++)
			free(p->scratch[i]);
	free(p->scratch);
	free(p->th);
	free(p->ready);
	free(p);
	bn_seterr(err, BN_ENOMEM, "out of memory for worker buffers");
	return NULL;
}

void cv_pool_free(struct cv_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	for (unsigned i = 0; i <= p->n; i++) {
		if (p->scratch[i] && p->scratch_fini)
			p->scratch_fini(p->scratch[i]);
		free(p->scratch[i]);
	}
	free(p->scratch);
	free(p->th);
	free(p->ready);
	free(p);
}

unsigned cv_pool_threads(const struct cv_pool *p)
{
	return p->n;
}

/* Claims the next item if one may be produced now and produces it on the calling thread (with
 * the lock held on entry and exit).  Returns false if there was nothing to claim. */
static bool help(struct cv_pool *p)
{
	if (p->failed || p->next >= p->n_items || p->next - p->consumed >= p->window)
		return false;
	size_t i = p->next++;
	pthread_mutex_unlock(&p->mu);
	struct bn_err e = { 0 };
	int rc = p->fn(p->arg, i, p->scratch[p->n], &e);
	pthread_mutex_lock(&p->mu);
	if (rc && !p->failed) {
		p->failed = true;
		p->rc = rc;
		p->err = e;
	}
	if (p->streaming)
		p->ready[i % p->window] = true;
	p->finished++;
	pthread_cond_broadcast(&p->done);
	return true;
}

/* Runs the job; with consume, items are consumed in order on the caller.  The caller produces
 * items too whenever the one it needs next is not ready. */
static int run(struct cv_pool *p, size_t n, size_t window, cv_item_fn fn, cv_consume_fn consume,
	       void *arg, struct bn_err *err)
{
	if (n == 0)
		return 0;
	if (p->n == 0) {
		for (size_t i = 0; i < n; i++) {
			int rc = fn(arg, i, p->scratch[0], err);
			if (!rc && consume)
				rc = consume(arg, i, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->n_items = n;
	p->next = p->finished = p->consumed = 0;
	p->window = window;
	p->streaming = consume != NULL;
	if (consume)
		memset(p->ready, 0, window * sizeof *p->ready);
	p->failed = false;
	p->rc = 0;
	p->active = true;
	pthread_cond_broadcast(&p->work);
	int rc = 0;
	if (consume) {
		for (size_t i = 0; i < n; i++) {
			while (!p->ready[i % window] && !p->failed)
				if (!help(p))
					pthread_cond_wait(&p->done, &p->mu);
			if (p->failed)
				break;
			pthread_mutex_unlock(&p->mu);
			rc = consume(arg, i, err);
			pthread_mutex_lock(&p->mu);
			if (rc) {
				p->failed = true; /* stop the workers; keep our own error */
				break;
			}
			p->ready[i % window] = false;
			p->consumed++;
			pthread_cond_broadcast(&p->work);
		}
	} else {
		while (help(p))
			;
	}
	/* wait for every item handed out (all of them, unless something failed) */
	while (p->finished < p->next || (!p->failed && p->finished < n))
		pthread_cond_wait(&p->done, &p->mu);
	p->active = false;
	if (!rc && p->failed) {
		rc = p->rc;
		if (err)
			*err = p->err;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int cv_pool_for(struct cv_pool *p, size_t n, cv_item_fn fn, void *arg, struct bn_err *err)
{
	return run(p, n, SIZE_MAX, fn, NULL, arg, err);
}

int cv_pool_stream(struct cv_pool *p, size_t n, size_t window, cv_item_fn fn,
		   cv_consume_fn consume, void *arg, struct bn_err *err)
{
	if (window == 0 || window > p->max_window)
		window = p->max_window;
	return run(p, n, window, fn, consume, arg, err);
}

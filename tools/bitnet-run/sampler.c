/* The sampler (sampler.h).  Candidates live in one preallocated array; top-k keeps the k best in
 * a min-heap over one pass of the logits, so a step costs O(n_vocab log k). */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

int sampler_init(struct sampler *s, uint32_t n_vocab, const struct sampler_opts *o, struct bn_err *err)
{
	s->o = *o;
	s->n_vocab = n_vocab;
	s->c = calloc(n_vocab ? n_vocab : 1, sizeof *s->c);
	if (!s->c)
		return bn_seterr(err, BN_ENOMEM, "out of memory for the sampler");
	/* PCG32 (O'Neill), seeded as pcg32_srandom does */
	s->inc = (o->seed << 1) | 1u;
	s->state = 0;
	sampler_uniform(s);
	s->state += o->seed;
	sampler_uniform(s);
	return 0;
}

void sampler_free(struct sampler *s)
{
	free(s->c);
	s->c = NULL;
}

static uint32_t pcg32(struct sampler *s)
{
	uint64_t old = s->state;
	s->state = old * 6364136223846793005ull + s->inc;
	uint32_t xs = (uint32_t)(((old >> 18) ^ old) >> 27);
	uint32_t rot = (uint32_t)(old >> 59);
	return (xs >> rot) | (xs << ((32 - rot) & 31));
}

float sampler_uniform(struct sampler *s)
{
	return (float)(pcg32(s) >> 8) * (1.0f / 16777216.0f);
}

int32_t sampler_argmax(const float *logits, uint32_t n)
{
	uint32_t best = 0;
	for (uint32_t i = 1; i < n; i++)
		if (logits[i] > logits[best])
			best = i;
	return (int32_t)best;
}

/* min-heap on logit (ties: the larger id is "smaller", so the smaller id survives) */
static int worse(const struct cand *a, const struct cand *b)
{
	return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

static void sift_down(struct cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && worse(&h[c + 1], &h[c]))
			c++;
		if (!worse(&h[c], &h[i]))
			return;
		struct cand t = h[i];
		h[i] = h[c];
		h[c] = t;
		i = c;
	}
}

static int by_logit_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int32_t sampler_sample(struct sampler *s, const float *logits)
{
	const uint32_t n = s->n_vocab;
	if (s->o.temp <= 0.0f)
		return sampler_argmax(logits, n);
	size_t k = s->o.top_k > 0 && (uint32_t)s->o.top_k < n ? (size_t)s->o.top_k : n;
	struct cand *c = s->c;
	if (k < n) {
		for (size_t i = 0; i < k; i++)
			c[i] = (struct cand){ logits[i], (int32_t)i };
		for (size_t i = k / 2; i-- > 0;)
			sift_down(c, k, i);
		for (uint32_t i = (uint32_t)k; i < n; i++) {
			struct cand x = { logits[i], (int32_t)i };
			if (worse(&c[0], &x)) {
				c[0] = x;
				sift_down(c, k, 0);
			}
		}
	} else {
		for (uint32_t i = 0; i < n; i++)
			c[i] = (struct cand){ logits[i], (int32_t)i };
	}
	qsort(c, k, sizeof *c, by_logit_desc);

	/* probabilities of the candidates (before the temperature, as llama.cpp's top-p/min-p) */
	const float mx = c[0].logit;
	double sum = 0.0;
	for (size_t i = 0; i < k; i++)
		sum += exp((double)(c[i].logit - mx));
	size_t keep = k;
	if (s->o.top_p < 1.0f) {
		double cum = 0.0;
		for (size_t i = 0; i < k; i++) {
			cum += exp((double)(c[i].logit - mx)) / sum;
			if (cum >= s->o.top_p) {
				keep = i + 1;
				break;
			}
		}
	}
	if (s->o.min_p > 0.0f) {
		/* p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p) */
		const float lim = mx + logf(s->o.min_p);
		size_t i = 1;
		while (i < keep && c[i].logit >= lim)
			i++;
		keep = i;
	}
	/* temperature, then draw */
	double tot = 0.0;
	for (size_t i = 0; i < keep; i++)
		tot += exp((double)(c[i].logit - mx) / s->o.temp);
	double r = (double)sampler_uniform(s) * tot, acc = 0.0;
	for (size_t i = 0; i < keep; i++) {
		acc += exp((double)(c[i].logit - mx) / s->o.temp);
		if (r < acc)
			return c[i].id;
	}
	return c[keep - 1].id;
}

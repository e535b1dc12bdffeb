/* Choosing the next token from logits, as llama.cpp's default sampler chain does: greedy when
 * the temperature is 0, else top-k, top-p, min-p, temperature, then a draw from the remaining
 * distribution with a seeded PCG32 generator (the same seed gives the same choices).
 * Invariant: no allocation after sampler_init. */
#ifndef BR_SAMPLER_H
#define BR_SAMPLER_H

#include <stdint.h>

#include "bn_err.h"

struct sampler_opts {
	float temp;   /* <= 0: greedy */
	int top_k;    /* <= 0: off */
	float top_p;  /* >= 1: off */
	float min_p;  /* <= 0: off */
	uint64_t seed;
};

struct cand {
	float logit;
	int32_t id;
};

struct sampler {
	struct sampler_opts o;
	uint32_t n_vocab;
	struct cand *c;    /* n_vocab */
	uint64_t state, inc;
};

int sampler_init(struct sampler *s, uint32_t n_vocab, const struct sampler_opts *o, struct bn_err *err);
void sampler_free(struct sampler *s);
int32_t sampler_sample(struct sampler *s, const float *logits);
/* Index of the largest logit (the first on ties). */
int32_t sampler_argmax(const float *logits, uint32_t n);
/* Uniform in [0, 1) from the sampler's generator. */
float sampler_uniform(struct sampler *s);

#endif

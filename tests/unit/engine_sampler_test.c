/* The sampler: greedy is the first largest logit, the filters (top-k, top-p, min-p) keep exactly
 * the tokens they should, a seed repeats its draws, and the draws follow the distribution. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdlib.h>

#include "sampler.h"

static struct sampler make(uint32_t n, float temp, int k, float p, float minp, uint64_t seed)
{
	struct sampler s;
	struct sampler_opts o = { temp, k, p, minp, seed };
	struct bn_err err = { 0 };
	cr_assert(eq(int, sampler_init(&s, n, &o, &err), 0));
	return s;
}

Test(engine_sampler, greedy_takes_the_first_largest_logit)
{
	const float l[6] = { 0.5f, 2.0f, -1.0f, 2.0f, 1.9f, 0.0f };
	struct sampler s = make(6, 0.0f, 40, 0.95f, 0.05f, 1);
	cr_assert(eq(i32, sampler_sample(&s, l), 1));
	sampler_free(&s);
	/* top_k = 1 is greedy whatever the temperature */
	s = make(6, 5.0f, 1, 1.0f, 0.0f, 1);
	for (int i = 0; i < 50; i++)
		cr_assert(eq(i32, sampler_sample(&s, l), 1));
	sampler_free(&s);
}

/* Frequencies of 20000 draws. */
static void draw(struct sampler *s, const float *l, uint32_t n, int *count)
{
	for (uint32_t i = 0; i < n; i++)
		count[i] = 0;
	for (int i = 0; i < 20000; i++)
		count[sampler_sample(s, l)]++;
}

Test(engine_sampler, filters_keep_exactly_their_tokens_and_draws_follow_the_probabilities)
{
	/* probabilities at temperature 1: softmax of log(p) */
	const float p[5] = { 0.4f, 0.3f, 0.15f, 0.1f, 0.05f };
	float l[5];
	for (int i = 0; i < 5; i++)
		l[i] = logf(p[i]);
	int c[5];
	/* no filter: every token, in proportion */
	struct sampler s = make(5, 1.0f, 0, 1.0f, 0.0f, 42);
	draw(&s, l, 5, c);
	for (int i = 0; i < 5; i++)
		cr_assert(lt(dbl, fabs(c[i] / 20000.0 - p[i]), 0.015), "token %d: %d of 20000", i, c[i]);
	sampler_free(&s);
	/* top-k 2: tokens 0 and 1 only, renormalised (4:3) */
	s = make(5, 1.0f, 2, 1.0f, 0.0f, 42);
	draw(&s, l, 5, c);
	cr_assert(eq(int, c[2] + c[3] + c[4], 0));
	cr_assert(lt(dbl, fabs(c[0] / 20000.0 - 4.0 / 7), 0.015));
	sampler_free(&s);
	/* top-p 0.8: 0.4 + 0.3 + 0.15 reaches 0.85 >= 0.8 -> three tokens */
	s = make(5, 1.0f, 0, 0.8f, 0.0f, 42);
	draw(&s, l, 5, c);
	cr_assert(gt(int, c[2], 0));
	cr_assert(eq(int, c[3] + c[4], 0));
	sampler_free(&s);
	/* min-p 0.3: p >= 0.3 * 0.4 = 0.12 -> tokens 0, 1, 2 */
	s = make(5, 1.0f, 0, 1.0f, 0.3f, 42);
	draw(&s, l, 5, c);
	cr_assert(gt(int, c[2], 0));
	cr_assert(eq(int, c[3] + c[4], 0));
	sampler_free(&s);
}

Test(engine_sampler, a_seed_repeats_its_draws)
{
	float l[100];
	for (int i = 0; i < 100; i++)
		l[i] = (float)((i * 37) % 11) * 0.3f;
	struct sampler a = make(100, 1.2f, 40, 0.95f, 0.0f, 7), b = make(100, 1.2f, 40, 0.95f, 0.0f, 7);
	struct sampler c = make(100, 1.2f, 40, 0.95f, 0.0f, 8);
	int differ = 0;
	for (int i = 0; i < 200; i++) {
		int32_t x = sampler_sample(&a, l), y = sampler_sample(&b, l), z = sampler_sample(&c, l);
		cr_assert(eq(i32, x, y));
		differ += x != z;
	}
	cr_assert(gt(int, differ, 50), "another seed draws otherwise");
	sampler_free(&a), sampler_free(&b), sampler_free(&c);
}

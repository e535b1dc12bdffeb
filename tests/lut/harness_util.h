/* Shared pieces of the LUT kernel test harnesses (built per generated header, natively for TL2
 * and for aarch64 under qemu for TL1): deterministic weights and activations, the packed
 * GGUF-style tensor (packed bytes, zero pad, f32 scale at pad32), and a bit-exact comparison with
 * the scalar reference.  Static functions only: each harness is one program. */
#ifndef LUT_HARNESS_UTIL_H
#define LUT_HARNESS_UTIL_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lut/lut.h"
#include "lut_pack.h"
#include "lut_params.h"

static uint64_t hu_state = 0x9e3779b97f4a7c15ull;

static uint64_t hu_next(void)
{
	/* xorshift64* */
	hu_state ^= hu_state >> 12;
	hu_state ^= hu_state << 25;
	hu_state ^= hu_state >> 27;
	return hu_state * 0x2545f4914f6cdd1dull;
}

static float hu_uniform(float a) /* in [-a, a) */
{
	return (float)((double)(hu_next() >> 11) * 0x1p-53 * 2.0 - 1.0) * a;
}

/* Weight and activation patterns.  The adversarial ones put every int16 block sum at its
 * largest magnitude (127*BK), which is where upstream's kernels wrapped (lut-kernels.md §8.4). */
enum hu_pattern { HU_RANDOM, HU_ALL_PLUS, HU_ALL_MINUS, HU_SIGNED_MAX, HU_NPATTERNS };
static const char *const hu_pattern_names[HU_NPATTERNS] = { "random", "all+1", "all-1",
							     "signed-max" };

static void hu_weights(enum hu_pattern pat, int64_t m, int64_t k, int8_t *w)
{
	for (int64_t i = 0; i < m; i++)
		for (int64_t c = 0; c < k; c++) {
			int8_t v;
			switch (pat) {
			case HU_RANDOM: v = (int8_t)(hu_next() % 3) - 1; break;
			case HU_ALL_PLUS: v = 1; break;
			case HU_ALL_MINUS: v = -1; break;
			default: /* the sign of activation column c (below), flipped on odd rows */
				v = (int8_t)(((c * 7 + c / 3) % 2 ? -1 : 1) * (i % 2 ? -1 : 1));
				break;
			}
			w[i * k + c] = v;
		}
}

static void hu_acts(enum hu_pattern pat, int64_t n, int64_t k, float *a)
{
	for (int64_t r = 0; r < n; r++) {
		float *row = a + r * k;
		for (int64_t c = 0; c < k; c++) {
			float v;
			if (pat == HU_ALL_PLUS || pat == HU_ALL_MINUS)
				v = 1.0f + 0.25f * (float)(r % 4);
			else if (pat == HU_SIGNED_MAX)
				v = ((c * 7 + c / 3) % 2 ? -1.0f : 1.0f) * 2.5f;
			else
				switch (r % 4) {
				case 0: v = hu_uniform(1.0f); break;
				case 1: v = hu_uniform(1.0f) + hu_uniform(1.0f) + hu_uniform(1.0f); break;
				case 2: v = hu_uniform(0.01f); break;
				default: v = hu_uniform(1e-3f) * (c % 97 == 5 ? 1e5f : 1.0f); break;
				}
			row[c] = v;
		}
		if (pat == HU_RANDOM && r == 2) /* an all-zero row: outputs must be 0, not NaN */
			memset(row, 0, (size_t)k * sizeof *row);
	}
}

/* Packs w into a GGUF-style extent: packed bytes, zeros to pad32, f32 ws, 28 zero bytes. */
static uint8_t *hu_tensor(enum lut_quant q, const struct lut_params *p, const int8_t *w, float ws,
			  size_t *size)
{
	struct bn_err err;
	memset(&err, 0, sizeof err);
	const uint64_t ext = lut_tensor_extent(q, p->m, p->k);
	uint8_t *t = (uint8_t *)calloc(1, (size_t)ext);
	if (!t || lut_pack(q, p, w, t, &err)) {
		fprintf(stderr, "pack [%u,%u]: %s\n", p->m, p->k, err.msg);
		exit(1);
	}
	memcpy(t + lut_scale_offset(q, p->m, p->k), &ws, sizeof ws);
	*size = (size_t)ext;
	return t;
}

/* Bit-exact comparison; prints the first difference.  Returns the number of differing values. */
static size_t hu_compare(const char *what, const float *got, const float *want, int64_t n,
			 int64_t m)
{
	size_t bad = 0;
	for (int64_t r = 0; r < n; r++)
		for (int64_t i = 0; i < m; i++) {
			float g = got[r * m + i], e = want[r * m + i];
			if (memcmp(&g, &e, sizeof g) != 0) {
				if (!bad)
					printf("MISMATCH %s: row %" PRId64 " output %" PRId64
					       ": got %.9g, reference %.9g\n",
					       what, r, i, (double)g, (double)e);
				bad++;
			}
		}
	return bad;
}

static void *hu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* "1,3,8" -> list; returns the count. */
static int hu_parse_list(const char *s, int *v, int max)
{
	int n = 0;
	while (*s && n < max) {
		char *end;
		long x = strtol(s, &end, 10);
		if (end == s || x <= 0)
			break;
		v[n++] = (int)x;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

#endif

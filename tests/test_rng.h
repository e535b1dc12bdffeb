/* Deterministic test inputs for the kernel checks (splitmix64), shared by the native kernel
 * tests and the AArch64 checker run under qemu, so that both draw the same kind of data.  Define
 * TEST_RNG_SEED before including; each including file gets its own state. */
#ifndef BITMAKE_TEST_RNG_H
#define BITMAKE_TEST_RNG_H

#include <stddef.h>
#include <stdint.h>

static uint64_t rng = TEST_RNG_SEED;

static uint64_t next(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rand_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(next() >> 56);
}

/* Mostly uniform in (-1, 1), one in 32 fifty times larger (outliers that set the activation
 * scale) and one in 32 exactly zero. */
static void rand_floats(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = next();
		float v = (float)((int64_t)(r >> 40) - (1 << 23)) / (float)(1 << 23);
		x[i] = (r & 31) == 0 ? v * 50.0f : (r & 31) == 1 ? 0.0f : v;
	}
}

#endif

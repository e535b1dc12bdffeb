/* Read-bandwidth measurement shared by the benchmarks (see bn_membw.h). */
#include "bn_membw.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bn_util.h"

struct slice {
	const uint8_t *p;
	size_t n; /* a multiple of 128 */
	uint64_t sum;
};

#if defined(__x86_64__)
/* Compiled for AVX2 on its own, called only where the CPU has it: the rest of the library stays
 * baseline x86-64. */
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
	for (size_t i = 0; i < n; i += 128) {
		__builtin_prefetch(p + i + 4096);
		a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(const void *)(p + i)));
		a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(const void *)(p + i + 32)));
		a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(const void *)(p + i + 64)));
		a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(const void *)(p + i + 96)));
	}
	__m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
	return (uint64_t)_mm256_extract_epi64(s, 0) + (uint64_t)_mm256_extract_epi64(s, 1);
}
#endif

static uint64_t read_scalar(const uint8_t *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = 0; i < n / 8; i += 16) {
		__builtin_prefetch(q + i + 512); /* 4 KiB ahead */
		a += q[i] + q[i + 4] + q[i + 8] + q[i + 12];
		b += q[i + 1] + q[i + 5] + q[i + 9] + q[i + 13];
		c += q[i + 2] + q[i + 6] + q[i + 10] + q[i + 14];
		d += q[i + 3] + q[i + 7] + q[i + 11] + q[i + 15];
	}
	return a + b + c + d;
}

static int have_avx2;

static void *read_slice(void *arg)
{
	struct slice *s = arg;
#if defined(__x86_64__)
	if (have_avx2) {
		s->sum = read_avx2(s->p, s->n);
		return NULL;
	}
#endif
	s->sum = read_scalar(s->p, s->n);
	return NULL;
}

double bn_read_bandwidth(const void *buf, size_t bytes, unsigned threads, int passes)
{
#if defined(__x86_64__)
	have_avx2 = __builtin_cpu_supports("avx2");
#endif
	if (threads < 1)
		threads = 1;
	if (threads > 64)
		threads = 64;
	/* 32-byte aligned slices of whole 128-byte steps */
	const uint8_t *base = (const uint8_t *)(((uintptr_t)buf + 31) & ~(uintptr_t)31);
	size_t usable = bytes - (size_t)(base - (const uint8_t *)buf);
	size_t per = usable / threads / 128 * 128;
	if (per == 0)
		return 0;
	double best = 0;
	volatile uint64_t sink = 0;
	for (int pass = 0; pass < passes; pass++) {
		pthread_t tid[64];
		bool started[64] = { false };
		struct slice s[64];
		double t0 = bn_now();
		for (unsigned i = 0; i < threads; i++) {
			s[i] = (struct slice){ base + per * i, per, 0 };
			if (i > 0)
				started[i] = pthread_create(&tid[i], NULL, read_slice, &s[i]) == 0;
		}
		for (unsigned i = 0; i < threads; i++) /* ours, and any a thread could not take */
			if (!started[i])
				read_slice(&s[i]);
		for (unsigned i = 1; i < threads; i++)
			if (started[i])
				pthread_join(tid[i], NULL);
		double dt = bn_now() - t0;
		for (unsigned i = 0; i < threads; i++)
			sink += s[i].sum;
		double bw = (double)(per * threads) / dt;
		if (bw > best)
			best = bw;
	}
	(void)sink;
	return best;
}

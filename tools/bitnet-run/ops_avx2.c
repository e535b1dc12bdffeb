/* AVX2 + FMA + F16C versions of the primitives in ops.h.  This file alone is compiled with
 * -mavx2 -mfma -mf16c; ops_select only returns its table on a CPU that has all three.
 * Dot products keep four 8-lane accumulators (32 elements per step) so the loads of two weight
 * streams overlap; the scalar tail is the reference loop. */
#include "ops.h"

#include <immintrin.h>

#include "bn_fp16.h"

static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static float dot_f32_avx2(const float *x, const float *y, size_t n)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
		a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
		a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
	float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		s += x[i] * y[i];
	return s;
}

static inline __m256 ld16(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static float dot_f16_avx2(const uint16_t *x, const uint16_t *y, size_t n)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(ld16(x + i), ld16(y + i), a0);
		a1 = _mm256_fmadd_ps(ld16(x + i + 8), ld16(y + i + 8), a1);
		a2 = _mm256_fmadd_ps(ld16(x + i + 16), ld16(y + i + 16), a2);
		a3 = _mm256_fmadd_ps(ld16(x + i + 24), ld16(y + i + 24), a3);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(ld16(x + i), ld16(y + i), a0);
	float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		s += bn_f16_to_f32(x[i]) * bn_f16_to_f32(y[i]);
	return s;
}

static inline __m256 ldbf16(const uint16_t *p)
{
	__m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static float dot_bf16_avx2(const uint16_t *x, const uint16_t *y, size_t n)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0;
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_fmadd_ps(ldbf16(x + i), ldbf16(y + i), a0);
		a1 = _mm256_fmadd_ps(ldbf16(x + i + 8), ldbf16(y + i + 8), a1);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(ldbf16(x + i), ldbf16(y + i), a0);
	float s = hsum(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		s += bn_bf16_to_f32(x[i]) * bn_bf16_to_f32(y[i]);
	return s;
}

static float dot_q8_0_avx2(const struct q8_0_block *x, const struct q8_0_block *y, size_t n)
{
	__m256 acc = _mm256_setzero_ps();
	const __m256i ones = _mm256_set1_epi16(1);
	for (size_t b = 0; b < n / QK8_0; b++) {
		__m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
		__m256i qy = _mm256_loadu_si256((const __m256i *)y[b].qs);
		/* |x|·sign(x)y: maddubs needs an unsigned first operand */
		__m256i ax = _mm256_sign_epi8(qx, qx);
		__m256i sy = _mm256_sign_epi8(qy, qx);
		__m256i p16 = _mm256_maddubs_epi16(ax, sy);
		__m256 q = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
		float d = bn_f16_to_f32(x[b].d) * bn_f16_to_f32(y[b].d);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), q, acc);
	}
	return hsum(acc);
}

static void f32_to_f16_avx2(const float *x, uint16_t *y, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
	for (; i < n; i++)
		y[i] = bn_f32_to_f16(x[i]);
}

static void f16_to_f32_avx2(const uint16_t *x, float *y, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, ld16(x + i));
	for (; i < n; i++)
		y[i] = bn_f16_to_f32(x[i]);
}

static void axpy_f16_avx2(float a, const uint16_t *x, float *y, size_t n)
{
	__m256 va = _mm256_set1_ps(a);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ld16(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] += a * bn_f16_to_f32(x[i]);
}

const struct ops ops_avx2 = {
	.name = "avx2",
	.dot_f32 = dot_f32_avx2,
	.dot_f16 = dot_f16_avx2,
	.dot_bf16 = dot_bf16_avx2,
	.dot_q8_0 = dot_q8_0_avx2,
	.f32_to_f16 = f32_to_f16_avx2,
	.f16_to_f32 = f16_to_f32_avx2,
	.axpy_f16 = axpy_f16_avx2,
};

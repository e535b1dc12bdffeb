/* AVX2 + FMA + F16C versions of the primitives in ops.h.  This file alone is compiled with
 * -mavx2 -mfma -mf16c; ops_select only returns its table on a CPU that has all three.
 * Dot products keep four 8-lane accumulators (32 elements per step) so the loads of two weight
 * streams overlap; the scalar tail is the reference loop. */
#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

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

/* Rows of 64-byte lines; the prefetch runs PF_ROWS rows ahead of the row being read, one line
 * per line consumed, so the hardware sees a steady stream even across row boundaries. */
#define PF_ROWS 3

static void gemv_f16_avx2(const uint16_t *w, size_t k, size_t rows, const uint16_t *x, float *y)
{
	for (size_t r = 0; r < rows; r++) {
		const uint16_t *wr = w + r * k;
		const char *pf = (const char *)(wr + PF_ROWS * k);
		const bool do_pf = r + PF_ROWS < rows;
		__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		size_t i = 0;
		for (; i + 32 <= k; i += 32) {
			if (do_pf)
				_mm_prefetch(pf + 2 * i, _MM_HINT_T0);
			a0 = _mm256_fmadd_ps(ld16(wr + i), ld16(x + i), a0);
			a1 = _mm256_fmadd_ps(ld16(wr + i + 8), ld16(x + i + 8), a1);
			a2 = _mm256_fmadd_ps(ld16(wr + i + 16), ld16(x + i + 16), a2);
			a3 = _mm256_fmadd_ps(ld16(wr + i + 24), ld16(x + i + 24), a3);
		}
		for (; i + 8 <= k; i += 8)
			a0 = _mm256_fmadd_ps(ld16(wr + i), ld16(x + i), a0);
		float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
		for (; i < k; i++)
			s += bn_f16_to_f32(wr[i]) * bn_f16_to_f32(x[i]);
		y[r] = s;
	}
}

/* e^x for |x| <= 87 (Cephes expf: range reduction by ln 2 in two parts, degree-5 polynomial;
 * within 2 ulp of expf), the argument clamped to that range. */
static inline __m256 exp_clamped(__m256 x)
{
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
				   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* e^x for x <= 0 (Cephes expf: range reduction by ln 2 in two parts, degree-5 polynomial; within
 * 2 ulp of expf), flushing below e^-87 to 0. */
static inline __m256 exp_nonpos(__m256 x)
{
	__m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
	return _mm256_andnot_ps(tiny, exp_clamped(x));
}

static void attn_head_f16_avx2(const uint16_t *q, const uint16_t *k, const uint16_t *v, size_t stride, size_t n,
			       size_t hd, float scale, float *s, float *out)
{
	/* scores, four positions at a time so that one horizontal reduction serves four dots */
	size_t p = 0;
	for (; p + 4 <= n; p += 4) {
		const uint16_t *k0 = k + p * stride;
		__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (size_t i = 0; i < hd; i += 8) {
			__m256 qv = ld16(q + i);
			a0 = _mm256_fmadd_ps(ld16(k0 + i), qv, a0);
			a1 = _mm256_fmadd_ps(ld16(k0 + stride + i), qv, a1);
			a2 = _mm256_fmadd_ps(ld16(k0 + 2 * stride + i), qv, a2);
			a3 = _mm256_fmadd_ps(ld16(k0 + 3 * stride + i), qv, a3);
		}
		/* transpose-add: lanes of (a0 a1 a2 a3) summed into four floats */
		__m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
		__m256 h = _mm256_hadd_ps(h01, h23);
		__m128 t = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
		_mm_storeu_ps(s + p, _mm_mul_ps(t, _mm_set1_ps(scale)));
	}
	for (; p < n; p++)
		s[p] = dot_f16_avx2(k + p * stride, q, hd) * scale;
	float mx = -INFINITY;
	for (p = 0; p < n; p++)
		mx = s[p] > mx ? s[p] : mx;
	/* e^(s - max), summed in double */
	__m256d d0 = _mm256_setzero_pd(), d1 = d0;
	const __m256 vmx = _mm256_set1_ps(mx);
	for (p = 0; p + 8 <= n; p += 8) {
		__m256 e = exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(s + p), vmx));
		_mm256_storeu_ps(s + p, e);
		d0 = _mm256_add_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		d1 = _mm256_add_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	double dsum[4];
	_mm256_storeu_pd(dsum, _mm256_add_pd(d0, d1));
	double sum = dsum[0] + dsum[1] + dsum[2] + dsum[3];
	for (; p < n; p++) {
		s[p] = expf(s[p] - mx);
		sum += (double)s[p];
	}
	/* weights rounded to f16, as ggml multiplies them with the f16 values */
	const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
	for (p = 0; p + 8 <= n; p += 8) {
		__m256 wv = _mm256_mul_ps(_mm256_loadu_ps(s + p), inv);
		_mm256_storeu_ps(s + p, _mm256_cvtph_ps(_mm256_cvtps_ph(wv, _MM_FROUND_TO_NEAREST_INT)));
	}
	for (; p < n; p++)
		s[p] = bn_f16_to_f32(bn_f32_to_f16(s[p] * (float)(1.0 / sum)));
	/* out = Σ w_p v_p, 64 dimensions at a time held in registers across all positions */
	for (size_t c = 0; c < hd; c += 64) {
		const size_t m = hd - c < 64 ? (hd - c) / 8 : 8;
		__m256 acc[8];
		for (size_t j = 0; j < 8; j++)
			acc[j] = _mm256_setzero_ps();
		for (p = 0; p < n; p++) {
			const __m256 wb = _mm256_broadcast_ss(s + p);
			const uint16_t *vp = v + p * stride + c;
			for (size_t j = 0; j < 8; j++)
				if (j < m)
					acc[j] = _mm256_fmadd_ps(wb, ld16(vp + 8 * j), acc[j]);
		}
		for (size_t j = 0; j < m; j++)
			_mm256_storeu_ps(out + c + 8 * j, acc[j]);
	}
}

static void silu_mul_avx2(float *g, const float *u, size_t n)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(g + i);
		__m256 e = exp_clamped(_mm256_sub_ps(_mm256_setzero_ps(), x));
		__m256 sx = _mm256_div_ps(x, _mm256_add_ps(one, e));
		_mm256_storeu_ps(g + i, _mm256_mul_ps(sx, _mm256_loadu_ps(u + i)));
	}
	for (; i < n; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* Four double accumulators (the sum's rounding then differs from the sequential one by far less
 * than the float result can show). */
static double sum_sq_avx2(const float *x, size_t n)
{
	__m256d a = _mm256_setzero_pd(), b = a;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i);
		__m256 sq = _mm256_mul_ps(v, v);
		a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
		b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
	}
	double t[4];
	_mm256_storeu_pd(t, _mm256_add_pd(a, b));
	double s = t[0] + t[1] + t[2] + t[3];
	for (; i < n; i++)
		s += (double)(x[i] * x[i]);
	return s;
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
	.gemv_f16 = gemv_f16_avx2,
	.attn_head_f16 = attn_head_f16_avx2,
	.silu_mul = silu_mul_avx2,
	.sum_sq = sum_sq_avx2,
};

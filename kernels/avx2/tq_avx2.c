/* TQ1_0 / TQ2_0 x Q8_K matmul for AVX2 (+F16C).  Per block the integer sum Σ(t-1)·q is exact
 * (16-bit partial sums stay far below 2^15), then the float step is the reference's for every row,
 * block by block and in order: sumf += (float)isum · (d_x·d_y).  (Mainline's AVX2 code accumulates
 * eight f32 lanes per row instead; ours matches its generic and NEON code bit for bit.) */
#include <immintrin.h>

#include "kern_isa.h"
#include "kern_util.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PF_DIST 8192 /* bytes ahead that GEMV prefetches */

/* v·3 and v·9 per byte, wrapping (the multiply half of the digit trick). */
ALWAYS_INLINE __m256i mul3(__m256i v)
{
	return _mm256_add_epi8(v, _mm256_add_epi8(v, v));
}
ALWAYS_INLINE __m256i mul9(__m256i v)
{
	return _mm256_add_epi8(_mm256_and_si256(_mm256_slli_epi16(v, 3), _mm256_set1_epi8(-8)), v);
}
/* The top digit of a stored byte: (3·v) >> 8, computed as two rounding averages (exact for every
 * byte: avg(t, avg(t, 0)) >> 6 with t = v - 1 saturated). */
ALWAYS_INLINE __m256i top_digit(__m256i v)
{
	__m256i t = _mm256_subs_epu8(v, _mm256_set1_epi8(1));
	t = _mm256_avg_epu8(t, _mm256_avg_epu8(t, _mm256_setzero_si256()));
	return _mm256_and_si256(_mm256_srli_epi16(t, 6), _mm256_set1_epi8(3));
}

ALWAYS_INLINE __m256i dot(__m256i s16, __m256i codes, const int8_t *q)
{
	return _mm256_add_epi16(s16, _mm256_maddubs_epi16(codes, _mm256_loadu_si256((const __m256i *)q)));
}

/* Σ t·q of one TQ2_0 block as 16 int16 lanes (any lane order: only the total matters). */
ALWAYS_INLINE __m256i block_tq2(const struct tq2_block *x, const int8_t *q)
{
	const __m256i m3 = _mm256_set1_epi8(3);
	__m256i s16 = _mm256_setzero_si256();
	for (int h = 0; h < 2; h++) {
		/* bit pair p of byte 32h+m: weight 128h + 32p + m */
		__m256i v = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * h));
		const int8_t *qh = q + 128 * h;
		s16 = dot(s16, _mm256_and_si256(v, m3), qh);
		s16 = dot(s16, _mm256_and_si256(_mm256_srli_epi16(v, 2), m3), qh + 32);
		s16 = dot(s16, _mm256_and_si256(_mm256_srli_epi16(v, 4), m3), qh + 64);
		s16 = dot(s16, _mm256_and_si256(_mm256_srli_epi16(v, 6), m3), qh + 96);
	}
	return s16;
}

/* The same for TQ1_0: base-3 digits by multiplying and taking the top digit. */
ALWAYS_INLINE __m256i block_tq1(const struct tq1_block *x, const int8_t *q)
{
	/* qs[0..31]: digit n of byte m is weight m + 32n */
	__m256i v0 = _mm256_loadu_si256((const __m256i *)x->qs);
	__m256i v1 = mul3(v0), v2 = mul9(v0), v3 = mul9(v1), v4 = mul9(v2);
	__m256i s16 = _mm256_maddubs_epi16(top_digit(v0), _mm256_loadu_si256((const __m256i *)q));
	s16 = dot(s16, top_digit(v1), q + 32);
	s16 = dot(s16, top_digit(v2), q + 64);
	s16 = dot(s16, top_digit(v3), q + 96);
	s16 = dot(s16, top_digit(v4), q + 128);
	/* qs[32..47]: digit n of byte 32+m is weight 160 + 16n + m; qh[j]: digit n is 240 + 4n + j */
	__m256i w0 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(x->qs + 32)));
	__m256i w1 = mul3(w0), w2 = mul9(w0), w3 = mul9(w1), w4 = mul9(w2);
	uint32_t qh;
	memcpy(&qh, x->qh, 4);
	__m256i h16 = _mm256_cvtepu8_epi16(_mm_set1_epi32((int)qh)); /* qh[0..3] four times, as u16 */
	h16 = _mm256_mullo_epi16(h16, _mm256_setr_epi16(1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27));
	h16 = _mm256_and_si256(h16, _mm256_set1_epi16(0xff));
	__m128i hx = _mm_packus_epi16(_mm256_castsi256_si128(h16), _mm256_extracti128_si256(h16, 1));
	s16 = dot(s16, top_digit(_mm256_inserti128_si256(w0, _mm256_castsi256_si128(w1), 1)), q + 160);
	s16 = dot(s16, top_digit(_mm256_inserti128_si256(w2, _mm256_castsi256_si128(w3), 1)), q + 192);
	s16 = dot(s16, top_digit(_mm256_inserti128_si256(w4, hx, 1)), q + 224);
	return s16;
}

/* Σ(t-1)·q = Σ t·q - Σ q (Σ q from the block's 16 bsums), widened to 8 int32 lanes. */
ALWAYS_INLINE __m256i finish(__m256i s16, const struct q8k_block *y)
{
	s16 = _mm256_sub_epi16(s16, _mm256_loadu_si256((const __m256i *)y->bsums));
	return _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
}

/* The horizontal sum of 8 int32 lanes. */
ALWAYS_INLINE int32_t hsum_i32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm_cvtsi128_si32(s);
}

/* One row at a time: the decode needs most of the 16 registers, so interleaving rows only spills. */
#define DEFINE_GEMM(fmt, block_t)                                                                          \
	ALWAYS_INLINE float row_##fmt(const block_t *w, size_t nb, const struct q8k_block *a, const bool prefetch) \
	{                                                                                                \
		float sumf = 0.0f;                                                                       \
		for (size_t i = 0; i < nb; i++) {                                                        \
			if (prefetch)                                                                    \
				_mm_prefetch((const char *)&w[i] + PF_DIST, _MM_HINT_T0);                \
			int32_t isum = hsum_i32(finish(block_##fmt(&w[i], a[i].qs), &a[i]));             \
			sumf += (float)isum * (_cvtsh_ss(w[i].d) * a[i].d);                              \
		}                                                                                        \
		return sumf;                                                                             \
	}                                                                                                \
                                                                                                         \
	void gemm_##fmt##_q8k_avx2(size_t k, const block_t *w, size_t nrows, const struct q8k_block *a,  \
				   size_t ncols, float *y, size_t ldy)                                   \
	{                                                                                                \
		size_t nb = k / QK_K;                                                                    \
		if (ncols == 1) {                                                                        \
			for (size_t r = 0; r < nrows; r++)                                               \
				y[r] = row_##fmt(w + r * nb, nb, a, true);                               \
			return;                                                                          \
		}                                                                                        \
		/* rows in L2-sized panels; all tokens go over a panel before the next one is read */    \
		size_t panel = (256u << 10) / (nb * sizeof(block_t));                                    \
		panel = panel ? panel : 1;                                                               \
		for (size_t p0 = 0; p0 < nrows; p0 += panel) {                                           \
			size_t p1 = p0 + panel < nrows ? p0 + panel : nrows;                             \
			for (size_t c = 0; c < ncols; c++)                                               \
				for (size_t r = p0; r < p1; r++)                                         \
					y[c * ldy + r] = row_##fmt(w + r * nb, nb, a + c * nb, false);   \
		}                                                                                        \
	}

DEFINE_GEMM(tq1, struct tq1_block)
DEFINE_GEMM(tq2, struct tq2_block)

/* I2_S x int8 matmul and the int8 activation quantizer for AVX2 (compiled with -mavx2 only; the
 * dispatcher calls it only on CPUs with AVX2).  Bit-exact with i2s_ref.c: the integer sums are
 * exact (16-bit partial sums are widened every 8 blocks, before they could overflow even with
 * code 3), and the final scaling is i2s_finish, the same f32 expression as the reference. */
#include <immintrin.h>

#include "kern_isa.h"
#include "kern_util.h"

#define WIDEN_BLOCKS 8 /* 8 blocks x 4 x (3·128·2) < 2^15: no int16 overflow for any byte */
/* GEMV prefetches each row this far ahead: at least 12 KiB, and at least one tile of rows, so that
 * enough lines are in flight whatever the row length (measured best on x86 for K = 1536..14336). */
#define PF_MIN 12288

static inline int32_t hsum_i32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm_cvtsi128_si32(s);
}

/* Raw sums Σ code·q for R rows (ldw bytes apart) and C tokens (ldq bytes apart) over nb blocks
 * into out[r·C + c].  R and C are constants after inlining, so the accumulators stay in
 * registers. */
static inline __attribute__((always_inline)) void tile(const uint8_t *w, size_t ldw, const int8_t *q, size_t ldq,
							size_t nb, const int R, const int C, size_t pf, int32_t *out)
{
	const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
	__m256i acc[4][4];
	KERN_UNROLL
	for (int r = 0; r < R; r++)
		KERN_UNROLL
		for (int c = 0; c < C; c++)
			acc[r][c] = _mm256_setzero_si256();
	for (size_t b0 = 0; b0 < nb; b0 += WIDEN_BLOCKS) {
		size_t b1 = b0 + WIDEN_BLOCKS < nb ? b0 + WIDEN_BLOCKS : nb;
		__m256i s16[4][4];
		KERN_UNROLL
		for (int r = 0; r < R; r++)
			KERN_UNROLL
			for (int c = 0; c < C; c++)
				s16[r][c] = _mm256_setzero_si256();
		for (size_t b = b0; b < b1; b++) {
			__m256i wr[4];
			KERN_UNROLL
			for (int r = 0; r < R; r++)
				wr[r] = _mm256_loadu_si256((const __m256i *)(w + r * ldw + 32 * b));
			if (C == 1 && (b & 1) == 0) /* one 64-byte line per two blocks */
				KERN_UNROLL for (int r = 0; r < R; r++)
					_mm_prefetch((const char *)(w + r * ldw + 32 * b + pf), _MM_HINT_T0);
			const int8_t *qb = q + 128 * b;
			/* group g holds elements 32g..32g+31 of the block, in bits 7-2g..6-2g */
#define GROUP(g, shift)                                                                                   \
	do {                                                                                              \
		__m256i av[4];                                                                            \
		KERN_UNROLL for (int c = 0; c < C; c++) av[c] =                               \
			_mm256_loadu_si256((const __m256i *)(qb + c * ldq + 32 * (g)));                   \
		KERN_UNROLL for (int r = 0; r < R; r++)                                       \
		{                                                                                         \
			__m256i code = _mm256_and_si256(_mm256_srli_epi16(wr[r], shift), m3);             \
			KERN_UNROLL for (int c = 0; c < C; c++) s16[r][c] =                   \
				_mm256_add_epi16(s16[r][c], _mm256_maddubs_epi16(code, av[c]));           \
		}                                                                                         \
	} while (0)
			GROUP(0, 6);
			GROUP(1, 4);
			GROUP(2, 2);
			GROUP(3, 0);
#undef GROUP
		}
		KERN_UNROLL
		for (int r = 0; r < R; r++)
			KERN_UNROLL
			for (int c = 0; c < C; c++)
				acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(s16[r][c], ones));
	}
	KERN_UNROLL
	for (int r = 0; r < R; r++)
		KERN_UNROLL
		for (int c = 0; c < C; c++)
			out[r * C + c] = hsum_i32(acc[r][c]);
}

/* One token, R rows: one shift per block instead of three.  x & 0x03 and (x >> 4) & 0x03 are the
 * codes of groups 3 and 1; x & 0x0c and (x >> 4) & 0x0c are 4 x the codes of groups 2 and 0.  The
 * two kinds go to separate 16-bit sums (the x4 ones stay below 2^15 for 4 blocks: 4 x 2 x 12·128·2)
 * and are combined exactly as 4·lo + hi, a multiple of 4, divided at the end. */
#define GEMV_WIDEN 4
static inline __attribute__((always_inline)) void tile_gemv(const uint8_t *w, size_t ldw, const int8_t *q, size_t nb,
							     const int R, size_t pf, int32_t *out)
{
	const __m256i m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0c);
	const __m256i one = _mm256_set1_epi16(1), four = _mm256_set1_epi16(4);
	__m256i acc[4];
	KERN_UNROLL
	for (int r = 0; r < R; r++)
		acc[r] = _mm256_setzero_si256();
	for (size_t b0 = 0; b0 < nb; b0 += GEMV_WIDEN) {
		size_t b1 = b0 + GEMV_WIDEN < nb ? b0 + GEMV_WIDEN : nb;
		__m256i lo[4], hi[4];
		KERN_UNROLL
		for (int r = 0; r < R; r++)
			lo[r] = hi[r] = _mm256_setzero_si256();
		for (size_t b = b0; b < b1; b++) {
			const int8_t *qb = q + 128 * b;
			__m256i a0 = _mm256_loadu_si256((const __m256i *)qb);
			__m256i a1 = _mm256_loadu_si256((const __m256i *)(qb + 32));
			__m256i a2 = _mm256_loadu_si256((const __m256i *)(qb + 64));
			__m256i a3 = _mm256_loadu_si256((const __m256i *)(qb + 96));
			KERN_UNROLL
			for (int r = 0; r < R; r++) {
				const uint8_t *p = w + r * ldw + 32 * b;
				if ((b & 1) == 0) /* one 64-byte line per two blocks */
					_mm_prefetch((const char *)(p + pf), _MM_HINT_T0);
				__m256i x = _mm256_loadu_si256((const __m256i *)p);
				__m256i x4 = _mm256_srli_epi16(x, 4);
				lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_and_si256(x, m03), a3));
				lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_and_si256(x4, m03), a1));
				hi[r] = _mm256_add_epi16(hi[r], _mm256_maddubs_epi16(_mm256_and_si256(x, m0c), a2));
				hi[r] = _mm256_add_epi16(hi[r], _mm256_maddubs_epi16(_mm256_and_si256(x4, m0c), a0));
			}
		}
		KERN_UNROLL
		for (int r = 0; r < R; r++)
			acc[r] = _mm256_add_epi32(acc[r], _mm256_add_epi32(_mm256_madd_epi16(lo[r], four),
									  _mm256_madd_epi16(hi[r], one)));
	}
	KERN_UNROLL
	for (int r = 0; r < R; r++)
		out[r] = hsum_i32(acc[r]) / 4; /* exact: the sum is a multiple of 4 */
}

/* Rows [r, r+R) x tokens [c, c+C): raw sums, then the reference's scaling. */
static inline __attribute__((always_inline)) void tile_out(size_t k, const uint8_t *w, size_t r, size_t c,
							    float wscale, const struct i8s_acts *a, float *y,
							    size_t ldy, const int R, const int C)
{
	int32_t raw[16];
	size_t pf = R * (k / 4) > PF_MIN ? R * (k / 4) : PF_MIN;
	if (C == 1)
		tile_gemv(w + r * (k / 4), k / 4, a->q + c * k, k / 128, R, pf, raw);
	else
		tile(w + r * (k / 4), k / 4, a->q + c * k, k, k / 128, R, C, pf, raw);
	for (int j = 0; j < C; j++)
		for (int i = 0; i < R; i++)
			y[(c + j) * ldy + r + i] = i2s_finish(raw[i * C + j], a->sum[c + j], a->scale[c + j], wscale);
}

void gemm_i2s_q8_avx2(size_t k, const uint8_t *w, size_t nrows, float wscale, const struct i8s_acts *a,
		      size_t ncols, float *y, size_t ldy)
{
	/* rows in L2-sized panels; every token goes over a panel before the next one is read */
	size_t panel = (256u << 10) / (k / 4);
	panel = panel < 4 ? 4 : panel & ~(size_t)3;
	for (size_t p0 = 0; p0 < nrows; p0 += panel) {
		size_t p1 = p0 + panel < nrows ? p0 + panel : nrows;
		size_t c = 0;
		/* GEMM: one row's codes serve four tokens */
		for (; c + 4 <= ncols; c += 4)
			for (size_t r = p0; r < p1; r++)
				tile_out(k, w, r, c, wscale, a, y, ldy, 1, 4);
		if (c + 2 <= ncols) {
			size_t r = p0;
			for (; r + 2 <= p1; r += 2)
				tile_out(k, w, r, c, wscale, a, y, ldy, 2, 2);
			if (r < p1)
				tile_out(k, w, r, c, wscale, a, y, ldy, 1, 2);
			c += 2;
		}
		if (c < ncols) {
			size_t r = p0;
			for (; r + 4 <= p1; r += 4)
				tile_out(k, w, r, c, wscale, a, y, ldy, 4, 1);
			for (; r < p1; r++)
				tile_out(k, w, r, c, wscale, a, y, ldy, 1, 1);
		}
	}
}

void quantize_i8s_avx2(const float *x, size_t k, int8_t *q, float *scale, int32_t *sum)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 vmax = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= k; i += 8)
		vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	float fmax = _mm_cvtss_f32(m4);
	for (; i < k; i++) {
		float v = x[i] < 0 ? -x[i] : x[i];
		fmax = fmax > v ? fmax : v;
	}
	/* the reference takes the max in double from 1e-5: the same value for finite inputs */
	double max = (double)fmax > 0.00001 ? (double)fmax : 0.00001;
	float s = (float)(127 / max);
	const __m256 vs = _mm256_set1_ps(s);
	const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
	const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	__m256i vsum = _mm256_setzero_si256();
	for (i = 0; i + 32 <= k; i += 32) {
		__m256i v[4];
		for (int j = 0; j < 4; j++) {
			/* cvtps rounds half to even, like the reference's nearest_int */
			v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vs));
			v[j] = _mm256_max_epi32(_mm256_min_epi32(v[j], hi), lo);
			vsum = _mm256_add_epi32(vsum, v[j]);
		}
		__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
		_mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(p, perm));
	}
	int32_t acc = hsum_i32(vsum);
	for (; i < k; i++) {
		int v = kern_nearest_int(x[i] * s);
		v = v > 127 ? 127 : v < -128 ? -128 : v;
		acc += v;
		q[i] = (int8_t)v;
	}
	*scale = s;
	*sum = acc;
}

const struct kern_set kern_set_avx2 = {
	.name = "avx2",
	.needs = KERN_CPU_AVX2 | KERN_CPU_F16C,
	.quantize_i8s = quantize_i8s_avx2,
	.quantize_q8k = quantize_q8k_ref, /* mainline quantizes Q8_K with the reference on x86 too */
	.gemm_i2s = gemm_i2s_q8_avx2,
	.gemm_tq1 = gemm_tq1_q8k_avx2,
	.gemm_tq2 = gemm_tq2_q8k_avx2,
	.gemm_i2s_name = "gemm_i2s_q8_avx2",
	.gemm_tq1_name = "gemm_tq1_q8k_avx2",
	.gemm_tq2_name = "gemm_tq2_q8k_avx2",
	.quantize_i8s_name = "quantize_i8s_avx2",
};

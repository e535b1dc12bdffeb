/* I2_S x int8 matmul for AVX-512 (F+BW+VL; with KERN_VNNI, AVX512_VNNI's vpdpbusd).  One zmm holds
 * the same 32-byte block of two rows (low half row r, high half row r+1) and the activations are
 * broadcast to both halves, so no shuffles are needed beyond one insert per row pair and block.
 * Bit-exact with i2s_ref.c: exact int32 sums, then i2s_finish. */
#include <immintrin.h>

#include "kern_isa.h"
#include "kern_util.h"

#ifdef KERN_VNNI
#define GEMM_NAME gemm_i2s_q8_avx512vnni
#else
#define GEMM_NAME gemm_i2s_q8_avx512
#define WIDEN_BLOCKS 8 /* as in the AVX2 kernel: 16-bit partial sums cannot overflow */
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* GEMV prefetches each row this far ahead: at least 12 KiB, and at least one tile of rows, so that
 * enough lines are in flight whatever the row length (measured best on x86 for K = 1536..14336). */
#define PF_MIN 12288

ALWAYS_INLINE __m512i load_pair(const uint8_t *r0, const uint8_t *r1)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)r0)),
				  _mm256_loadu_si256((const __m256i *)r1), 1);
}

ALWAYS_INLINE __m512i bcast(const int8_t *p)
{
	return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

ALWAYS_INLINE int32_t hsum256(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm_cvtsi128_si32(s);
}

/* lanes 0..7 belong to the pair's first row, 8..15 to its second */
ALWAYS_INLINE void hsum_pair(__m512i v, int32_t *lo, int32_t *hi)
{
	*lo = hsum256(_mm512_castsi512_si256(v));
	*hi = hsum256(_mm512_extracti64x4_epi64(v, 1));
}

/* Raw sums for P row pairs (rows[2p], rows[2p+1]; the second may repeat the first when the row
 * count is odd) and C tokens (q, ldq bytes apart) over nb blocks, into out[(2p+h)·C + c]. */
ALWAYS_INLINE void tile(const uint8_t *const *rows, const int8_t *q, size_t ldq, size_t nb, const int P,
			const int C, size_t pf, int32_t *out)
{
	const __m512i m3 = _mm512_set1_epi8(3);
	__m512i acc[4][8];
	KERN_UNROLL
	for (int p = 0; p < P; p++)
		KERN_UNROLL
		for (int c = 0; c < C; c++)
			acc[p][c] = _mm512_setzero_si512();
#ifdef KERN_VNNI
	for (size_t b = 0; b < nb; b++) {
#define DOT(p, c, code, a) acc[p][c] = _mm512_dpbusd_epi32(acc[p][c], code, a)
#else
	const __m512i ones = _mm512_set1_epi16(1);
	for (size_t b0 = 0; b0 < nb; b0 += WIDEN_BLOCKS) {
		size_t b1 = b0 + WIDEN_BLOCKS < nb ? b0 + WIDEN_BLOCKS : nb;
		__m512i s16[4][8];
		KERN_UNROLL
		for (int p = 0; p < P; p++)
			KERN_UNROLL
			for (int c = 0; c < C; c++)
				s16[p][c] = _mm512_setzero_si512();
		for (size_t b = b0; b < b1; b++) {
#define DOT(p, c, code, a) s16[p][c] = _mm512_add_epi16(s16[p][c], _mm512_maddubs_epi16(code, a))
#endif
		if (C == 1 && (b & 1) == 0)
			KERN_UNROLL for (int i = 0; i < 2 * P; i++) _mm_prefetch((const char *)(rows[i] + 32 * b + pf), _MM_HINT_T0);
		__m512i wv[4];
		KERN_UNROLL
		for (int p = 0; p < P; p++)
			wv[p] = load_pair(rows[2 * p] + 32 * b, rows[2 * p + 1] + 32 * b);
		const int8_t *qb = q + 128 * b;
		/* group g: elements 32g..32g+31 of the block, bits 7-2g..6-2g of each byte */
#define GROUP(g, shift)                                                                                      \
	do {                                                                                                 \
		__m512i code[4];                                                                             \
		KERN_UNROLL for (int p = 0; p < P; p++) code[p] =                                            \
			_mm512_and_si512(_mm512_srli_epi16(wv[p], shift), m3);                              \
		KERN_UNROLL for (int c = 0; c < C; c++)                                                      \
		{                                                                                            \
			__m512i a = bcast(qb + c * ldq + 32 * (g));                                          \
			KERN_UNROLL for (int p = 0; p < P; p++) DOT(p, c, code[p], a);                        \
		}                                                                                            \
	} while (0)
		GROUP(0, 6);
		GROUP(1, 4);
		GROUP(2, 2);
		GROUP(3, 0);
#undef GROUP
#undef DOT
#ifndef KERN_VNNI
		}
		KERN_UNROLL
		for (int p = 0; p < P; p++)
			KERN_UNROLL
			for (int c = 0; c < C; c++)
				acc[p][c] = _mm512_add_epi32(acc[p][c], _mm512_madd_epi16(s16[p][c], ones));
#endif
	}
	KERN_UNROLL
	for (int p = 0; p < P; p++)
		KERN_UNROLL
		for (int c = 0; c < C; c++)
			hsum_pair(acc[p][c], &out[(2 * p) * C + c], &out[(2 * p + 1) * C + c]);
}

#ifdef KERN_VNNI
/* One token, P row pairs: the codes are masked in place (bits 7..6 -> 64·code, 5..4 -> 16·code,
 * ...) and each position gets its own accumulator, rescaled exactly at the end.  That saves the
 * shifts: 4 ands and 4 vpdpbusd per pair and block. */
ALWAYS_INLINE void tile_gemv(const uint8_t *const *rows, const int8_t *q, size_t nb, const int P, size_t pf,
			     int32_t *out)
{
	const __m512i k0 = _mm512_set1_epi8((char)0xc0), k1 = _mm512_set1_epi8(0x30);
	const __m512i k2 = _mm512_set1_epi8(0x0c), k3 = _mm512_set1_epi8(0x03);
	__m512i acc[4][4];
	KERN_UNROLL
	for (int p = 0; p < P; p++)
		KERN_UNROLL
		for (int g = 0; g < 4; g++)
			acc[p][g] = _mm512_setzero_si512();
	for (size_t b = 0; b < nb; b++) {
		if ((b & 1) == 0) /* one 64-byte line per two blocks */
			KERN_UNROLL for (int i = 0; i < 2 * P; i++) _mm_prefetch((const char *)(rows[i] + 32 * b + pf), _MM_HINT_T0);
		const int8_t *qb = q + 128 * b;
		__m512i a0 = bcast(qb), a1 = bcast(qb + 32), a2 = bcast(qb + 64), a3 = bcast(qb + 96);
		KERN_UNROLL
		for (int p = 0; p < P; p++) {
			__m512i wv = load_pair(rows[2 * p] + 32 * b, rows[2 * p + 1] + 32 * b);
			acc[p][0] = _mm512_dpbusd_epi32(acc[p][0], _mm512_and_si512(wv, k0), a0);
			acc[p][1] = _mm512_dpbusd_epi32(acc[p][1], _mm512_and_si512(wv, k1), a1);
			acc[p][2] = _mm512_dpbusd_epi32(acc[p][2], _mm512_and_si512(wv, k2), a2);
			acc[p][3] = _mm512_dpbusd_epi32(acc[p][3], _mm512_and_si512(wv, k3), a3);
		}
	}
	KERN_UNROLL
	for (int p = 0; p < P; p++) {
		/* every lane of acc[p][g] is a multiple of 4^(3-g): the shifts are exact */
		__m512i t = _mm512_add_epi32(_mm512_srai_epi32(acc[p][0], 6), _mm512_srai_epi32(acc[p][1], 4));
		t = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_srai_epi32(acc[p][2], 2), acc[p][3]));
		hsum_pair(t, &out[2 * p], &out[2 * p + 1]);
	}
}
#endif

/* Rows [r, r+2P) (clipped to nrows) x tokens [c, c+C). */
ALWAYS_INLINE void run_tile(size_t k, const uint8_t *w, size_t nrows, size_t r, size_t c, float wscale,
			    const struct i8s_acts *a, float *y, size_t ldy, const int P, const int C)
{
	const uint8_t *rows[8];
	size_t ldw = k / 4;
	KERN_UNROLL
	for (int i = 0; i < 2 * P; i++)
		rows[i] = w + (r + i < nrows ? r + i : nrows - 1) * ldw; /* a missing row repeats the last */
	int32_t raw[64];
	size_t pf = 2 * P * ldw > PF_MIN ? 2 * P * ldw : PF_MIN;
#ifdef KERN_VNNI
	if (C == 1)
		tile_gemv(rows, a->q + c * k, k / 128, P, pf, raw);
	else
#endif
		tile(rows, a->q + c * k, k, k / 128, P, C, pf, raw);
	for (int i = 0; i < 2 * P && r + (size_t)i < nrows; i++)
		for (int j = 0; j < C; j++)
			y[(c + j) * ldy + r + i] = i2s_finish(raw[i * C + j], a->sum[c + j], a->scale[c + j], wscale);
}

/* All rows of [p0, p1) for tokens [c, c+C), in tiles of 2P rows. */
ALWAYS_INLINE void run_rows(size_t k, const uint8_t *w, size_t p0, size_t p1, size_t c, float wscale,
			    const struct i8s_acts *a, float *y, size_t ldy, const int P, const int C)
{
	size_t r = p0;
	for (; r + 2 * P <= p1; r += 2 * P)
		run_tile(k, w, p1, r, c, wscale, a, y, ldy, P, C);
	for (; r < p1; r += 2)
		run_tile(k, w, p1, r, c, wscale, a, y, ldy, 1, C);
}

void GEMM_NAME(size_t k, const uint8_t *w, size_t nrows, float wscale, const struct i8s_acts *a, size_t ncols,
	       float *y, size_t ldy)
{
	if (ncols == 1) {
		run_rows(k, w, 0, nrows, 0, wscale, a, y, ldy, 4, 1);
		return;
	}
	/* rows in L2-sized panels; all tokens go over a panel before the next one is read */
	size_t panel = (256u << 10) / (k / 4);
	panel = panel < 4 ? 4 : panel & ~(size_t)3;
	for (size_t p0 = 0; p0 < nrows; p0 += panel) {
		size_t p1 = p0 + panel < nrows ? p0 + panel : nrows;
		size_t c = 0;
		for (; c + 8 <= ncols; c += 8)
			run_rows(k, w, p0, p1, c, wscale, a, y, ldy, 2, 8);
		if (c + 4 <= ncols) {
			run_rows(k, w, p0, p1, c, wscale, a, y, ldy, 2, 4);
			c += 4;
		}
		if (c + 2 <= ncols) {
			run_rows(k, w, p0, p1, c, wscale, a, y, ldy, 2, 2);
			c += 2;
		}
		if (c < ncols)
			run_rows(k, w, p0, p1, c, wscale, a, y, ldy, 4, 1);
	}
}

#ifdef KERN_VNNI
const struct kern_set kern_set_avx512vnni = {
	.name = "avx512vnni",
	.needs = KERN_CPU_AVX2 | KERN_CPU_F16C | KERN_CPU_AVX512 | KERN_CPU_AVX512VNNI,
	.gemm_i2s_name = "gemm_i2s_q8_avx512vnni",
#else
const struct kern_set kern_set_avx512 = {
	.name = "avx512",
	.needs = KERN_CPU_AVX2 | KERN_CPU_F16C | KERN_CPU_AVX512,
	.gemm_i2s_name = "gemm_i2s_q8_avx512",
#endif
	.gemm_i2s = GEMM_NAME,
	/* the activation quantizer and the TQ kernels are the AVX2 ones (memory-bound either way) */
	.quantize_i8s = quantize_i8s_avx2,
	.quantize_q8k = quantize_q8k_ref,
	.gemm_tq1 = gemm_tq1_q8k_avx2,
	.gemm_tq2 = gemm_tq2_q8k_avx2,
	.gemm_tq1_name = "gemm_tq1_q8k_avx2",
	.gemm_tq2_name = "gemm_tq2_q8k_avx2",
	.quantize_i8s_name = "quantize_i8s_avx2",
};

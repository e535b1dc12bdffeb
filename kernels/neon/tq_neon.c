/* TQ1_0 / TQ2_0 x Q8_K matmul for AArch64 NEON (and, built again with KERN_DOTPROD, with SDOT).
 * Per block the integer sum Σ(t-1)·q is exact, then the float step is the reference's, block by
 * block and in order: sumf += (float)isum · (d_x·d_y) — which is also mainline's NEON order. */
#include <arm_neon.h>

#include "kern_isa.h"
#include "kern_util.h"

#ifdef KERN_DOTPROD
#define TQ1_NAME gemm_tq1_q8k_dotprod
#define TQ2_NAME gemm_tq2_q8k_dotprod
/* acc: int32x4_t */
#define ACC_T int32x4_t
#define ACC_ZERO vdupq_n_s32(0)
#define DOT(acc, code, a) acc = vdotq_s32(acc, code, a)
#define ACC_SUM(acc) vaddvq_s32(acc)
#else
#define TQ1_NAME gemm_tq1_q8k_neon
#define TQ2_NAME gemm_tq2_q8k_neon
/* acc: int16x8_t; a block adds at most 32 products of |3·128| per lane: no overflow */
#define ACC_T int16x8_t
#define ACC_ZERO vdupq_n_s16(0)
#define DOT(acc, code, a)                                                                                  \
	do {                                                                                               \
		acc = vmlal_s8(acc, vget_low_s8(code), vget_low_s8(a));                                    \
		acc = vmlal_high_s8(acc, code, a);                                                         \
	} while (0)
#define ACC_SUM(acc) vaddvq_s32(vpaddlq_s16(acc))
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PF_DIST 8192 /* bytes ahead that GEMV prefetches */

ALWAYS_INLINE int32_t bsums_total(const struct q8k_block *y)
{
	int32x4_t s = vpaddlq_s16(vld1q_s16(y->bsums));
	s = vpadalq_s16(s, vld1q_s16(y->bsums + 8));
	return vaddvq_s32(s);
}

/* Σ (t-1)·q of one TQ2_0 block. */
ALWAYS_INLINE int32_t block_tq2(const struct tq2_block *x, const struct q8k_block *y)
{
	const uint8x16_t m3 = vdupq_n_u8(3);
	ACC_T acc = ACC_ZERO;
	for (int h = 0; h < 2; h++) {
		/* bit pair p of byte 32h+m: weight 128h + 32p + m */
		uint8x16_t v0 = vld1q_u8(x->qs + 32 * h), v1 = vld1q_u8(x->qs + 32 * h + 16);
		const int8_t *q = y->qs + 128 * h;
#define PAIR(p, CODE)                                                                                      \
	do {                                                                                               \
		DOT(acc, vreinterpretq_s8_u8(CODE(v0)), vld1q_s8(q + 32 * (p)));                           \
		DOT(acc, vreinterpretq_s8_u8(CODE(v1)), vld1q_s8(q + 32 * (p) + 16));                      \
	} while (0)
#define P0(v) vandq_u8(v, m3)
#define P1(v) vandq_u8(vshrq_n_u8(v, 2), m3)
#define P2(v) vandq_u8(vshrq_n_u8(v, 4), m3)
#define P3(v) vshrq_n_u8(v, 6)
		PAIR(0, P0);
		PAIR(1, P1);
		PAIR(2, P2);
		PAIR(3, P3);
#undef PAIR
	}
	return ACC_SUM(acc) - bsums_total(y);
}

/* The top base-3 digit of each stored byte: (3·v) >> 8. */
ALWAYS_INLINE int8x16_t top_digit(uint8x16_t v)
{
	const uint8x8_t three = vdup_n_u8(3);
	uint8x8_t lo = vshrn_n_u16(vmull_u8(vget_low_u8(v), three), 8);
	uint8x8_t hi = vshrn_n_u16(vmull_high_u8(v, vdupq_n_u8(3)), 8);
	return vreinterpretq_s8_u8(vcombine_u8(lo, hi));
}

/* Σ (t-1)·q of one TQ1_0 block: digit n of a byte is the top digit of the byte times 3^n (mod 256). */
ALWAYS_INLINE int32_t block_tq1(const struct tq1_block *x, const struct q8k_block *y)
{
	static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
	ACC_T acc = ACC_ZERO;
	/* qs[0..31]: digit n of byte m is weight m + 32n */
	uint8x16_t v0 = vld1q_u8(x->qs), v1 = vld1q_u8(x->qs + 16);
	for (int n = 0; n < 5; n++) {
		uint8x16_t p = vdupq_n_u8(pow3[n]);
		DOT(acc, top_digit(vmulq_u8(v0, p)), vld1q_s8(y->qs + 32 * n));
		DOT(acc, top_digit(vmulq_u8(v1, p)), vld1q_s8(y->qs + 32 * n + 16));
	}
	/* qs[32..47]: digit n of byte 32+m is weight 160 + 16n + m */
	uint8x16_t u = vld1q_u8(x->qs + 32);
	for (int n = 0; n < 5; n++)
		DOT(acc, top_digit(vmulq_u8(u, vdupq_n_u8(pow3[n]))), vld1q_s8(y->qs + 160 + 16 * n));
	/* qh[j]: digit n is weight 240 + 4n + j; lane 4n + j of qh·{1,3,9,27} */
	static const uint8_t hmul[16] = { 1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27 };
	uint32_t qh;
	memcpy(&qh, x->qh, 4);
	uint8x16_t h = vreinterpretq_u8_u32(vdupq_n_u32(qh));
	DOT(acc, top_digit(vmulq_u8(h, vld1q_u8(hmul))), vld1q_s8(y->qs + 240));
	return ACC_SUM(acc) - bsums_total(y);
}

ALWAYS_INLINE float f16(uint16_t h)
{
	return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

#define DEFINE_GEMM(NAME, block_t, block_fn)                                                              \
	ALWAYS_INLINE float row_##block_fn(const block_t *w, size_t nb, const struct q8k_block *a, const bool prefetch) \
	{                                                                                                \
		float sumf = 0.0f;                                                                       \
		for (size_t i = 0; i < nb; i++) {                                                        \
			if (prefetch)                                                                    \
				__builtin_prefetch((const char *)&w[i] + PF_DIST);                       \
			sumf += (float)block_fn(&w[i], &a[i]) * (f16(w[i].d) * a[i].d);                  \
		}                                                                                        \
		return sumf;                                                                             \
	}                                                                                                \
                                                                                                         \
	void NAME(size_t k, const block_t *w, size_t nrows, const struct q8k_block *a, size_t ncols,      \
		  float *y, size_t ldy)                                                                  \
	{                                                                                                \
		size_t nb = k / QK_K;                                                                    \
		if (ncols == 1) {                                                                        \
			for (size_t r = 0; r < nrows; r++)                                               \
				y[r] = row_##block_fn(w + r * nb, nb, a, true);                          \
			return;                                                                          \
		}                                                                                        \
		size_t panel = (256u << 10) / (nb * sizeof(block_t));                                    \
		panel = panel ? panel : 1;                                                               \
		for (size_t p0 = 0; p0 < nrows; p0 += panel) {                                           \
			size_t p1 = p0 + panel < nrows ? p0 + panel : nrows;                             \
			for (size_t c = 0; c < ncols; c++)                                               \
				for (size_t r = p0; r < p1; r++)                                         \
					y[c * ldy + r] = row_##block_fn(w + r * nb, nb, a + c * nb, false); \
		}                                                                                        \
	}

DEFINE_GEMM(TQ1_NAME, struct tq1_block, block_tq1)
DEFINE_GEMM(TQ2_NAME, struct tq2_block, block_tq2)

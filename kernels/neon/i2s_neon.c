/* I2_S x int8 matmul and the int8 activation quantizer for AArch64 NEON; built a second time with
 * KERN_DOTPROD (kernels/dotprod/, -march=armv8.2-a+dotprod) to use SDOT.  Bit-exact with
 * i2s_ref.c: exact int32 sums (without SDOT, 16-bit partial sums are widened every 4 blocks, before
 * they could overflow even with code 3 and -128), then i2s_finish. */
#include <arm_neon.h>

#include "kern_isa.h"
#include "kern_util.h"

#ifdef KERN_DOTPROD
#define GEMM_NAME gemm_i2s_q8_dotprod
#define QUANT_NAME quantize_i8s_dotprod
#else
#define GEMM_NAME gemm_i2s_q8_neon
#define QUANT_NAME quantize_i8s_neon
#define WIDEN_BLOCKS 4 /* 4 blocks x 16 products x 3·128 < 2^15 */
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* GEMV prefetches each row this far ahead: at least 12 KiB, and at least one tile of rows, so that
 * enough lines are in flight whatever the row length (measured best on x86 for K = 1536..14336). */
#define PF_MIN 12288

/* Raw sums Σ code·q for R rows (ldw bytes apart) and C tokens (ldq bytes apart) over nb blocks
 * into out[r·C + c].  A block is two 16-byte vectors: byte m of the first holds elements m, 32+m,
 * 64+m, 96+m of the block (bits 7..6, 5..4, 3..2, 1..0); the second, elements 16+m, ... */
ALWAYS_INLINE void tile(const uint8_t *w, size_t ldw, const int8_t *q, size_t ldq, size_t nb, const int R,
			const int C, size_t pf, int32_t *out)
{
	const uint8x16_t m3 = vdupq_n_u8(3);
	int32x4_t acc[4][4];
	KERN_UNROLL
	for (int r = 0; r < R; r++)
		KERN_UNROLL
		for (int c = 0; c < C; c++)
			acc[r][c] = vdupq_n_s32(0);
#ifdef KERN_DOTPROD
	for (size_t b = 0; b < nb; b++) {
#define DOT(r, c, code, a) acc[r][c] = vdotq_s32(acc[r][c], code, a)
#else
	for (size_t b0 = 0; b0 < nb; b0 += WIDEN_BLOCKS) {
		size_t b1 = b0 + WIDEN_BLOCKS < nb ? b0 + WIDEN_BLOCKS : nb;
		int16x8_t s16[4][4];
		KERN_UNROLL
		for (int r = 0; r < R; r++)
			KERN_UNROLL
			for (int c = 0; c < C; c++)
				s16[r][c] = vdupq_n_s16(0);
		for (size_t b = b0; b < b1; b++) {
#define DOT(r, c, code, a)                                                                                 \
	do {                                                                                               \
		s16[r][c] = vmlal_s8(s16[r][c], vget_low_s8(code), vget_low_s8(a));                        \
		s16[r][c] = vmlal_high_s8(s16[r][c], code, a);                                             \
	} while (0)
#endif
		uint8x16_t w0[4], w1[4];
		KERN_UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *p = w + r * ldw + 32 * b;
			if (C == 1 && (b & 1) == 0)
				__builtin_prefetch(p + pf);
			w0[r] = vld1q_u8(p);
			w1[r] = vld1q_u8(p + 16);
		}
		const int8_t *qb = q + 128 * b;
		/* group g: elements 32g..32g+31; CODE(v) extracts its 2-bit codes from a vector */
#define GROUP(g, CODE)                                                                                        \
	do {                                                                                                  \
		int8x16_t c0[4], c1[4];                                                                       \
		KERN_UNROLL for (int r = 0; r < R; r++)                                                       \
		{                                                                                             \
			c0[r] = vreinterpretq_s8_u8(CODE(w0[r]));                                              \
			c1[r] = vreinterpretq_s8_u8(CODE(w1[r]));                                              \
		}                                                                                             \
		KERN_UNROLL for (int c = 0; c < C; c++)                                                       \
		{                                                                                             \
			int8x16_t a0 = vld1q_s8(qb + c * ldq + 32 * (g)), a1 = vld1q_s8(qb + c * ldq + 32 * (g) + 16); \
			KERN_UNROLL for (int r = 0; r < R; r++)                                               \
			{                                                                                     \
				DOT(r, c, c0[r], a0);                                                         \
				DOT(r, c, c1[r], a1);                                                         \
			}                                                                                     \
		}                                                                                             \
	} while (0)
#define CODE0(v) vshrq_n_u8(v, 6)
#define CODE1(v) vandq_u8(vshrq_n_u8(v, 4), m3)
#define CODE2(v) vandq_u8(vshrq_n_u8(v, 2), m3)
#define CODE3(v) vandq_u8(v, m3)
		GROUP(0, CODE0);
		GROUP(1, CODE1);
		GROUP(2, CODE2);
		GROUP(3, CODE3);
#undef GROUP
#undef DOT
#ifndef KERN_DOTPROD
		}
		KERN_UNROLL
		for (int r = 0; r < R; r++)
			KERN_UNROLL
			for (int c = 0; c < C; c++)
				acc[r][c] = vpadalq_s16(acc[r][c], s16[r][c]);
#endif
	}
	KERN_UNROLL
	for (int r = 0; r < R; r++)
		KERN_UNROLL
		for (int c = 0; c < C; c++)
			out[r * C + c] = vaddvq_s32(acc[r][c]);
}

/* Rows [r, r+R) x tokens [c, c+C): raw sums, then the reference's scaling. */
ALWAYS_INLINE void tile_out(size_t k, const uint8_t *w, size_t r, size_t c, float wscale, const struct i8s_acts *a,
			    float *y, size_t ldy, const int R, const int C)
{
	int32_t raw[16];
	size_t pf = R * (k / 4) > PF_MIN ? R * (k / 4) : PF_MIN;
	tile(w + r * (k / 4), k / 4, a->q + c * k, k, k / 128, R, C, pf, raw);
	for (int j = 0; j < C; j++)
		for (int i = 0; i < R; i++)
			y[(c + j) * ldy + r + i] = i2s_finish(raw[i * C + j], a->sum[c + j], a->scale[c + j], wscale);
}

void GEMM_NAME(size_t k, const uint8_t *w, size_t nrows, float wscale, const struct i8s_acts *a, size_t ncols,
	       float *y, size_t ldy)
{
	/* rows in L2-sized panels; all tokens go over a panel before the next one is read */
	size_t panel = (256u << 10) / (k / 4);
	panel = panel < 4 ? 4 : panel & ~(size_t)3;
	for (size_t p0 = 0; p0 < nrows; p0 += panel) {
		size_t p1 = p0 + panel < nrows ? p0 + panel : nrows;
		size_t c = 0;
		for (; c + 4 <= ncols; c += 4) {
			size_t r = p0;
			for (; r + 2 <= p1; r += 2)
				tile_out(k, w, r, c, wscale, a, y, ldy, 2, 4);
			if (r < p1)
				tile_out(k, w, r, c, wscale, a, y, ldy, 1, 4);
		}
		for (; c < ncols; c++) {
			size_t r = p0;
			for (; r + 4 <= p1; r += 4)
				tile_out(k, w, r, c, wscale, a, y, ldy, 4, 1);
			for (; r < p1; r++)
				tile_out(k, w, r, c, wscale, a, y, ldy, 1, 1);
		}
	}
}

void QUANT_NAME(const float *x, size_t k, int8_t *q, float *scale, int32_t *sum)
{
	float32x4_t vmax = vdupq_n_f32(0.0f);
	size_t i = 0;
	for (; i + 4 <= k; i += 4)
		vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
	float fmax = vmaxvq_f32(vmax);
	for (; i < k; i++) {
		float v = x[i] < 0 ? -x[i] : x[i];
		fmax = fmax > v ? fmax : v;
	}
	/* the reference takes the max in double from 1e-5: the same value for finite inputs */
	double max = (double)fmax > 0.00001 ? (double)fmax : 0.00001;
	float s = (float)(127 / max);
	int32x4_t vsum = vdupq_n_s32(0);
	for (i = 0; i + 16 <= k; i += 16) {
		/* vcvtnq rounds half to even, like the reference's nearest_int; the saturating
		 * narrows clamp to [-128, 127] */
		int32x4_t v0 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i), s));
		int32x4_t v1 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4), s));
		int32x4_t v2 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 8), s));
		int32x4_t v3 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 12), s));
		int16x8_t h0 = vcombine_s16(vqmovn_s32(v0), vqmovn_s32(v1));
		int16x8_t h1 = vcombine_s16(vqmovn_s32(v2), vqmovn_s32(v3));
		int8x16_t b = vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
		vst1q_s8(q + i, b);
		vsum = vpadalq_s16(vsum, vpaddlq_s8(b));
	}
	int32_t acc = vaddvq_s32(vsum);
	for (; i < k; i++) {
		int v = kern_nearest_int(x[i] * s);
		v = v > 127 ? 127 : v < -128 ? -128 : v;
		acc += v;
		q[i] = (int8_t)v;
	}
	*scale = s;
	*sum = acc;
}

#ifdef KERN_DOTPROD
const struct kern_set kern_set_dotprod = {
	.name = "dotprod",
	.needs = KERN_CPU_NEON | KERN_CPU_DOTPROD,
	.gemm_tq1 = gemm_tq1_q8k_dotprod,
	.gemm_tq2 = gemm_tq2_q8k_dotprod,
	.gemm_i2s_name = "gemm_i2s_q8_dotprod",
	.gemm_tq1_name = "gemm_tq1_q8k_dotprod",
	.gemm_tq2_name = "gemm_tq2_q8k_dotprod",
	.quantize_i8s_name = "quantize_i8s_dotprod",
#else
const struct kern_set kern_set_neon = {
	.name = "neon",
	.needs = KERN_CPU_NEON,
	.gemm_tq1 = gemm_tq1_q8k_neon,
	.gemm_tq2 = gemm_tq2_q8k_neon,
	.gemm_i2s_name = "gemm_i2s_q8_neon",
	.gemm_tq1_name = "gemm_tq1_q8k_neon",
	.gemm_tq2_name = "gemm_tq2_q8k_neon",
	.quantize_i8s_name = "quantize_i8s_neon",
#endif
	.quantize_i8s = QUANT_NAME,
	.quantize_q8k = quantize_q8k_ref,
	.gemm_i2s = GEMM_NAME,
};

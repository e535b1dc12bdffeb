/* TQ1_0 / TQ2_0 / Q8_K reference: mainline ggml's quantizers, dequantizers and generic dot
 * products, re-derived from the layouts in tq.h.  The SIMD kernels must match these exactly. */
#include "tq.h"

#include <math.h>
#include <string.h>

#include "bn_fp16.h"
#include "kern_util.h"

static const uint8_t pow3[6] = { 1, 3, 9, 27, 81, 243 };

/* Block scale and the trits of 256 values: t = lroundf(x · (1/d)) + 1. */
static float ternary_trits(const float *x, uint8_t t[QK_K])
{
	float amax = 0.0f;
	for (int j = 0; j < QK_K; j++) {
		float a = fabsf(x[j]);
		amax = amax > a ? amax : a;
	}
	float id = amax != 0.0f ? 1.0f / amax : 0.0f;
	for (int j = 0; j < QK_K; j++)
		t[j] = (uint8_t)(lroundf(x[j] * id) + 1);
	return amax;
}

/* ceil(v·256/243): the byte that makes digit extraction a multiply (v <= 242). */
static uint8_t tq1_store(unsigned v)
{
	return (uint8_t)((v * 256 + 242) / 243);
}

void quantize_tq1_ref(const float *x, size_t n, struct tq1_block *y)
{
	uint8_t t[QK_K];
	for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
		struct tq1_block *b = &y[i];
		b->d = bn_f32_to_f16(ternary_trits(x, t));
		for (int m = 0; m < 32; m++) {
			uint8_t v = 0; /* uint8_t arithmetic as in the reference (never exceeds 242) */
			for (int n5 = 0; n5 < 5; n5++)
				v = (uint8_t)(v * 3 + t[m + 32 * n5]);
			b->qs[m] = tq1_store(v);
		}
		for (int m = 0; m < 16; m++) {
			uint8_t v = 0;
			for (int n5 = 0; n5 < 5; n5++)
				v = (uint8_t)(v * 3 + t[160 + m + 16 * n5]);
			b->qs[32 + m] = tq1_store(v);
		}
		for (int j = 0; j < 4; j++) {
			uint8_t v = 0;
			for (int n4 = 0; n4 < 4; n4++)
				v = (uint8_t)(v * 3 + t[240 + j + 4 * n4]);
			b->qh[j] = tq1_store((uint8_t)(v * 3));
		}
	}
}

void quantize_tq2_ref(const float *x, size_t n, struct tq2_block *y)
{
	uint8_t t[QK_K];
	for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
		struct tq2_block *b = &y[i];
		b->d = bn_f32_to_f16(ternary_trits(x, t));
		for (int h = 0; h < 2; h++)
			for (int m = 0; m < 32; m++) {
				const uint8_t *tt = t + 128 * h + m;
				b->qs[32 * h + m] = (uint8_t)((tt[0] & 3) | (tt[32] & 3) << 2 |
							      (tt[64] & 3) << 4 | (tt[96] & 3) << 6);
			}
	}
}

/* Digit n (0 = most significant) of a stored TQ1_0 byte. */
static int tq1_digit(uint8_t q, int n)
{
	uint8_t s = (uint8_t)(q * pow3[n]);
	return ((uint16_t)s * 3) >> 8;
}

int tq1_trit(const struct tq1_block *b, int j)
{
	if (j < 160)
		return tq1_digit(b->qs[j % 32], j / 32);
	if (j < 240)
		return tq1_digit(b->qs[32 + (j - 160) % 16], (j - 160) / 16);
	return tq1_digit(b->qh[(j - 240) % 4], (j - 240) / 4);
}

int tq2_trit(const struct tq2_block *b, int j)
{
	int h = j / 128, r = j % 128;
	return (b->qs[32 * h + r % 32] >> (2 * (r / 32))) & 3;
}

void dequantize_tq1_ref(const struct tq1_block *x, size_t n, float *y)
{
	for (size_t i = 0; i < n / QK_K; i++) {
		float d = bn_f16_to_f32(x[i].d);
		for (int j = 0; j < QK_K; j++)
			*y++ = (float)(tq1_trit(&x[i], j) - 1) * d;
	}
}

void dequantize_tq2_ref(const struct tq2_block *x, size_t n, float *y)
{
	for (size_t i = 0; i < n / QK_K; i++) {
		float d = bn_f16_to_f32(x[i].d);
		for (int j = 0; j < QK_K; j++)
			*y++ = (float)(tq2_trit(&x[i], j) - 1) * d;
	}
}

void quantize_q8k_ref(const float *x, size_t n, struct q8k_block *y)
{
	for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
		struct q8k_block *b = &y[i];
		float max = 0, amax = 0;
		for (int j = 0; j < QK_K; j++) {
			float a = fabsf(x[j]);
			if (a > amax) {
				amax = a;
				max = x[j];
			}
		}
		if (amax == 0) {
			memset(b, 0, sizeof *b);
			continue;
		}
		float iscale = -127.f / max;
		for (int j = 0; j < QK_K; j++) {
			int v = kern_nearest_int(iscale * x[j]);
			b->qs[j] = (int8_t)(v < 127 ? v : 127);
		}
		for (int g = 0; g < QK_K / 16; g++) {
			int s = 0;
			for (int j = 0; j < 16; j++)
				s += b->qs[16 * g + j];
			b->bsums[g] = (int16_t)s;
		}
		b->d = 1 / iscale;
	}
}

void dequantize_q8k_ref(const struct q8k_block *x, size_t n, float *y)
{
	for (size_t i = 0; i < n / QK_K; i++)
		for (int j = 0; j < QK_K; j++)
			*y++ = x[i].d * x[i].qs[j];
}

float tq_block_scale(uint16_t dx, float dy)
{
	return bn_f16_to_f32(dx) * dy;
}

float vecdot_tq1_q8k_ref(size_t k, const struct tq1_block *x, const struct q8k_block *y)
{
	float sumf = 0.0f;
	for (size_t i = 0; i < k / QK_K; i++) {
		int32_t isum = 0;
		for (int j = 0; j < QK_K; j++)
			isum += (tq1_trit(&x[i], j) - 1) * y[i].qs[j];
		sumf += (float)isum * tq_block_scale(x[i].d, y[i].d);
	}
	return sumf;
}

float vecdot_tq2_q8k_ref(size_t k, const struct tq2_block *x, const struct q8k_block *y)
{
	float sumf = 0.0f;
	for (size_t i = 0; i < k / QK_K; i++) {
		int32_t isum = 0;
		for (int j = 0; j < QK_K; j++)
			isum += (tq2_trit(&x[i], j) - 1) * y[i].qs[j];
		sumf += (float)isum * tq_block_scale(x[i].d, y[i].d);
	}
	return sumf;
}

void gemm_tq1_q8k_ref(size_t k, const struct tq1_block *w, size_t nrows, const struct q8k_block *a,
		      size_t ncols, float *y, size_t ldy)
{
	size_t nb = k / QK_K;
	for (size_t c = 0; c < ncols; c++)
		for (size_t r = 0; r < nrows; r++)
			y[c * ldy + r] = vecdot_tq1_q8k_ref(k, w + r * nb, a + c * nb);
}

void gemm_tq2_q8k_ref(size_t k, const struct tq2_block *w, size_t nrows, const struct q8k_block *a,
		      size_t ncols, float *y, size_t ldy)
{
	size_t nb = k / QK_K;
	for (size_t c = 0; c < ncols; c++)
		for (size_t r = 0; r < nrows; r++)
			y[c * ldy + r] = vecdot_tq2_q8k_ref(k, w + r * nb, a + c * nb);
}

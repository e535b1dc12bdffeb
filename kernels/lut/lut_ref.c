/* Scalar reference of the TL GEMM (lut-kernels.md §3.1): per-row absmax int8 activation
 * quantization, exact integer dot products with ternary weights, float32 finalization in the
 * kernels' order (int -> float, divide by the scale, multiply by the weight scale). */
#include "lut.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

float lut_ref_act_scale(const float *b, int64_t k)
{
	float mx = 0.0f;
	for (int64_t c = 0; c < k; c++) {
		float a = fabsf(b[c]);
		if (a > mx)
			mx = a;
	}
	float s = 127.0f / mx;
	return mx > 0.0f && s <= FLT_MAX ? s : 1.0f;
}

void lut_ref_gemm(const int8_t *w, int64_t m, int64_t k, float ws, const float *act, int64_t n,
		  float *out)
{
	int8_t *q = malloc((size_t)k);
	if (!q)
		abort(); /* test oracle: k bytes */
	for (int64_t r = 0; r < n; r++) {
		const float *b = act + r * k;
		const float s = lut_ref_act_scale(b, k);
		for (int64_t c = 0; c < k; c++)
			q[c] = (int8_t)nearbyintf(b[c] * s); /* |b*s| <= 127: fits */
		for (int64_t i = 0; i < m; i++) {
			const int8_t *wr = w + i * k;
			int32_t acc = 0; /* |acc| <= 127 * 2^20 */
			for (int64_t c = 0; c < k; c++)
				acc += wr[c] * q[c];
			out[r * m + i] = (float)acc / s * ws;
		}
	}
	free(q);
}

/* Q8_0 reference quantizer and dequantizer (llama-quantize's rounding, q8_0.h). */
#include "q8_0.h"

#include <math.h>

#include "bn_fp16.h"

void quantize_q8_0_ref(const float *x, size_t n, struct q8_0_block *y)
{
	for (size_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
		float amax = 0.0f;
		for (int j = 0; j < QK8_0; j++) {
			float a = fabsf(x[j]);
			amax = amax > a ? amax : a;
		}
		float d = amax / 127;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[i].d = bn_f32_to_f16(d);
		for (int j = 0; j < QK8_0; j++)
			y[i].qs[j] = (int8_t)roundf(x[j] * id);
	}
}

void dequantize_q8_0_ref(const struct q8_0_block *x, size_t n, float *y)
{
	for (size_t i = 0; i < n / QK8_0; i++) {
		float d = bn_f16_to_f32(x[i].d);
		for (int j = 0; j < QK8_0; j++)
			*y++ = x[i].qs[j] * d;
	}
}

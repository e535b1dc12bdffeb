/* The scalar primitives (ops.h) and the run-time choice of a table.  The loops are written so a
 * compiler can vectorise them with the baseline instruction set. */
#include "ops.h"

#include <math.h>
#include <string.h>

#include "bn_fp16.h"
#include "kernels.h"

static float dot_f32_ref(const float *x, const float *y, size_t n)
{
	float s = 0.0f;
	for (size_t i = 0; i < n; i++)
		s += x[i] * y[i];
	return s;
}

static float dot_f16_ref(const uint16_t *x, const uint16_t *y, size_t n)
{
	double s = 0.0; /* ggml's scalar path accumulates in ggml_float */
	for (size_t i = 0; i < n; i++)
		s += (double)(bn_f16_to_f32(x[i]) * bn_f16_to_f32(y[i]));
	return (float)s;
}

static float dot_bf16_ref(const uint16_t *x, const uint16_t *y, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)(bn_bf16_to_f32(x[i]) * bn_bf16_to_f32(y[i]));
	return (float)s;
}

static float dot_q8_0_ref(const struct q8_0_block *x, const struct q8_0_block *y, size_t n)
{
	float s = 0.0f;
	for (size_t b = 0; b < n / QK8_0; b++) {
		int32_t isum = 0;
		for (int j = 0; j < QK8_0; j++)
			isum += (int32_t)x[b].qs[j] * y[b].qs[j];
		s += (float)isum * (bn_f16_to_f32(x[b].d) * bn_f16_to_f32(y[b].d));
	}
	return s;
}

static void f32_to_f16_ref(const float *x, uint16_t *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = bn_f32_to_f16(x[i]);
}

static void f16_to_f32_ref(const uint16_t *x, float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = bn_f16_to_f32(x[i]);
}

static void axpy_f16_ref(float a, const uint16_t *x, float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += a * bn_f16_to_f32(x[i]);
}

static void gemv_f16_ref(const uint16_t *w, size_t k, size_t rows, const uint16_t *x, float *y)
{
	for (size_t r = 0; r < rows; r++)
		y[r] = dot_f16_ref(w + r * k, x, k);
}

static void attn_head_f16_ref(const uint16_t *q, const uint16_t *k, const uint16_t *v, size_t stride, size_t n,
			      size_t hd, float scale, float *s, float *out)
{
	float mx = -INFINITY;
	for (size_t p = 0; p < n; p++) {
		s[p] = dot_f16_ref(k + p * stride, q, hd) * scale;
		mx = s[p] > mx ? s[p] : mx;
	}
	double sum = 0.0;
	for (size_t p = 0; p < n; p++) {
		s[p] = expf(s[p] - mx);
		sum += (double)s[p];
	}
	const float inv = (float)(1.0 / sum);
	memset(out, 0, hd * sizeof *out);
	for (size_t p = 0; p < n; p++)
		axpy_f16_ref(bn_f16_to_f32(bn_f32_to_f16(s[p] * inv)), v + p * stride, out, hd);
}

static void silu_mul_ref(float *g, const float *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static double sum_sq_ref(const float *x, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)(x[i] * x[i]);
	return s;
}

const struct ops ops_ref = {
	.name = "ref",
	.dot_f32 = dot_f32_ref,
	.dot_f16 = dot_f16_ref,
	.dot_bf16 = dot_bf16_ref,
	.dot_q8_0 = dot_q8_0_ref,
	.f32_to_f16 = f32_to_f16_ref,
	.f16_to_f32 = f16_to_f32_ref,
	.axpy_f16 = axpy_f16_ref,
	.gemv_f16 = gemv_f16_ref,
	.attn_head_f16 = attn_head_f16_ref,
	.silu_mul = silu_mul_ref,
	.sum_sq = sum_sq_ref,
};

const struct ops *ops_select(uint32_t cpu_features)
{
#if defined(__x86_64__) && defined(BR_HAVE_AVX2)
	const uint32_t need = KERN_CPU_AVX2 | KERN_CPU_FMA | KERN_CPU_F16C;
	if ((cpu_features & need) == need)
		return &ops_avx2;
#endif
	(void)cpu_features;
	return &ops_ref;
}

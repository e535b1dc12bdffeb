/* Vector primitives of the forward pass that the kernel library does not provide: float and f16
 * dot products (F32/F16 matrices, the output head, attention over the f16 KV cache), f16
 * conversion, Q8_0 x Q8_0 blocks.  One table per instruction set, chosen at run time from the
 * CPU's features (ops_select); the scalar table runs everywhere.
 * Invariant: every table computes the same function as the scalar one up to float summation
 * order (f16 rounding is exact round-to-nearest-even in all of them). */
#ifndef BR_OPS_H
#define BR_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "q8_0.h"

struct ops {
	const char *name;
	/* Σ x[i]·y[i] */
	float (*dot_f32)(const float *x, const float *y, size_t n);
	/* Σ f32(x[i])·f32(y[i]) for f16 x and y (ggml_vec_dot_f16) */
	float (*dot_f16)(const uint16_t *x, const uint16_t *y, size_t n);
	/* Σ f32(bf16 x[i])·f32(bf16 y[i]) (ggml_vec_dot_bf16) */
	float (*dot_bf16)(const uint16_t *x, const uint16_t *y, size_t n);
	/* Σ over blocks of d_x·d_y·Σ q_x·q_y (ggml_vec_dot_q8_0_q8_0); n is a multiple of 32 */
	float (*dot_q8_0)(const struct q8_0_block *x, const struct q8_0_block *y, size_t n);
	void (*f32_to_f16)(const float *x, uint16_t *y, size_t n);
	void (*f16_to_f32)(const uint16_t *x, float *y, size_t n);
	/* y[i] += a·f32(x[i]) */
	void (*axpy_f16)(float a, const uint16_t *x, float *y, size_t n);
	/* y[r] = dot_f16(row r of w, x) for r < rows; rows are k values apart (the f16 output head:
	 * streams the matrix once, so it is written for memory bandwidth) */
	void (*gemv_f16)(const uint16_t *w, size_t k, size_t rows, const uint16_t *x, float *y);
	/* One attention head over positions 0..n-1 of an f16 cache whose rows are `stride` values
	 * apart (k and v point at the head's first element): s_p = dot(q, k_p)·scale, softmax in f32
	 * with the sum in double, weights rounded to f16, out[0..hd) = Σ_p w_p·v_p.  `scratch` holds
	 * n floats.  hd is a multiple of 8. */
	void (*attn_head_f16)(const uint16_t *q, const uint16_t *k, const uint16_t *v, size_t stride, size_t n,
			      size_t hd, float scale, float *scratch, float *out);
	/* g[i] = silu(g[i])·u[i] with silu(x) = x/(1 + e^-x) (ggml_silu, then ggml_mul) */
	void (*silu_mul)(float *g, const float *u, size_t n);
	/* Σ x[i]² in double (the sum of ggml_rms_norm) */
	double (*sum_sq)(const float *x, size_t n);
};

/* The scalar table. */
extern const struct ops ops_ref;
#if defined(__x86_64__)
/* AVX2 + FMA + F16C (ops_avx2.c); only ever called on a CPU with those features. */
extern const struct ops ops_avx2;
#endif

/* The best table for a CPU with these kern_cpu features (kernels.h). */
const struct ops *ops_select(uint32_t cpu_features);

#endif

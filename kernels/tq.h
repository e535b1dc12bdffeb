/* TQ1_0 and TQ2_0, mainline ggml's ternary types (ids 34/35), and Q8_K, the activation type
 * their dot products use.  Invariant: quantization, dequantization and dot products round
 * exactly as mainline's _ref / _generic functions do (ggml-quants.c, ggml-cpu/quants.c). */
#ifndef KERN_TQ_H
#define KERN_TQ_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define QK_K 256
#define TQ1_0_GGML_TYPE 34
#define TQ2_0_GGML_TYPE 35
#define Q8_K_GGML_TYPE 15

/*
 * TQ1_0, users.md part 3 (ggml-common.h block_tq1_0): 256 weights in 54 bytes, 1.6875 bpw.
 * d = fp16 max |w| of the block; trit t = round_half_away(w / d) + 1 in {0,1,2}; value (t-1)·d.
 *   qs[0..31]:  byte m holds weights m, m+32, m+64, m+96, m+128 as a 5-digit base-3 number,
 *               the first weight most significant;
 *   qs[32..47]: byte 32+m holds weights 160+m, 176+m, 192+m, 208+m, 224+m;
 *   qh[0..3]:   byte j holds weights 240+j, 244+j, 248+j, 252+j, times 3 (top four digits).
 * Every packed number v in [0, 242] is stored as ceil(v·256/243), so digit n is the high byte
 * of 3·(uint8_t)(q·3^n) (8-bit wrapping multiply, then 16-bit multiply by 3).
 */
struct tq1_block {
	uint8_t qs[48];
	uint8_t qh[4];
	uint16_t d; /* fp16 */
};
static_assert(sizeof(struct tq1_block) == 54, "tq1_block must be 54 bytes");

/*
 * TQ2_0, users.md part 3 (block_tq2_0): 256 weights in 66 bytes, 2.0625 bpw, same d and trits.
 *   For half h in {0,1}, byte 32h+m holds weights 128h+m, +32, +64, +96 in bit pairs
 *   1..0, 3..2, 5..4, 7..6 (note: the opposite bit order to I2_S).  Code 3 is never written.
 */
struct tq2_block {
	uint8_t qs[64];
	uint16_t d; /* fp16 */
};
static_assert(sizeof(struct tq2_block) == 66, "tq2_block must be 66 bytes");

/*
 * Q8_K (block_q8_K): 256 activations; d = 1/iscale with iscale = -127/x_max, where x_max is the
 * signed element of largest magnitude (the first one on ties); q = min(127, round_half_even(
 * iscale·x)); bsums[j] = Σ q[16j .. 16j+15].  An all-zero block has d = 0 and q = 0.
 */
struct q8k_block {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
};
static_assert(sizeof(struct q8k_block) == 292, "q8k_block must be 292 bytes");

/* n % 256 == 0 for all of these; n elements -> n/256 blocks. */
void quantize_tq1_ref(const float *x, size_t n, struct tq1_block *y);
void quantize_tq2_ref(const float *x, size_t n, struct tq2_block *y);
void dequantize_tq1_ref(const struct tq1_block *x, size_t n, float *y);
void dequantize_tq2_ref(const struct tq2_block *x, size_t n, float *y);
void quantize_q8k_ref(const float *x, size_t n, struct q8k_block *y);
void dequantize_q8k_ref(const struct q8k_block *x, size_t n, float *y);

/* Trit (0..2, or 3 for TQ2_0's unused code) of element j of a block. */
int tq1_trit(const struct tq1_block *b, int j);
int tq2_trit(const struct tq2_block *b, int j);

/* Dot products (mainline's generic arithmetic, which its NEON code also follows):
 *   per block i: isum_i = Σ (t - 1)·q exactly in int32;  sumf += (float)isum_i · (d_x · d_y)
 * with d_x widened from fp16 and the product d_x·d_y rounded to f32 first.  (Mainline's AVX2
 * code accumulates eight f32 lanes instead, so it can differ from this in the last bits.)
 * gemm: y[c·ldy + r] = dot(row r of w, row c of a); rows are K/256 blocks long. */
float vecdot_tq1_q8k_ref(size_t k, const struct tq1_block *x, const struct q8k_block *y);
float vecdot_tq2_q8k_ref(size_t k, const struct tq2_block *x, const struct q8k_block *y);
void gemm_tq1_q8k_ref(size_t k, const struct tq1_block *w, size_t nrows, const struct q8k_block *a,
		      size_t ncols, float *y, size_t ldy);
void gemm_tq2_q8k_ref(size_t k, const struct tq2_block *w, size_t nrows, const struct q8k_block *a,
		      size_t ncols, float *y, size_t ldy);

/* The per-block float step shared by every TQ kernel. */
float tq_block_scale(uint16_t dx, float dy);

#endif

/* I2_S: bitnet.cpp's 2-bit ternary tensor format with one f32 scale per tensor, and its int8
 * per-token activations (ggml type I8_S).  Invariant: every function here reproduces the
 * reference (BitNet src/ggml-bitnet-mad.cpp, merge-dev ggml.c/ggml-quants.c) bit for bit. */
#ifndef KERN_I2S_H
#define KERN_I2S_H

#include <stddef.h>
#include <stdint.h>

/*
 * Tensor layout, convert-quantize.md §8.1 (release x86 layout, also HEAD's x86 default):
 *
 *   ne = [K, M] (K = row length), N = K·M elements flattened row-major (i = row·K + col).
 *   Codes: 0 <-> -1, 1 <-> 0, 2 <-> +1 (3 is never written; a kernel reads it as +2).
 *   Blocks of 128 consecutive elements -> 32 bytes.  In block b, element j (0..127) lives in
 *   byte 32·b + (j mod 32) at bits (7 - 2·(j div 32))..(6 - 2·(j div 32)):
 *
 *       byte 32b+m:  bits 7..6 = elem m,  5..4 = elem 32+m,  3..2 = elem 64+m,  1..0 = elem 96+m
 *
 *   Blocks run over the flattened tensor; rows map onto whole blocks only when K % 128 == 0,
 *   which every matmul here requires.  If N % 128 != 0 the last N mod 128 elements are never
 *   encoded (§8.1).
 *   Bytes N/4 .. N/4+3: the scale (f32 little-endian); N/4+4 .. N/4+31: padding (we write
 *   zeros; llama-quantize leaves stale bytes, §7.5).  Total N/4 + 32 bytes.
 *   Dequantised weight = (code - 1) · scale.
 *
 * HEAD's ARM build (§8.2) uses 64-element blocks instead: element j of block b in byte
 * 16·b + (j mod 16) at bits 7-2·(j div 16)..; same codes, scale at N/4, same size.
 */
#define I2S_BLOCK 128       /* elements per block */
#define I2S_BLOCK_BYTES 32  /* bytes per block */
#define I2S_ARM_BLOCK 64    /* HEAD ARM variant, §8.2 */
#define I2S_ARM_BLOCK_BYTES 16
#define I2S_TAIL 32         /* scale (4 bytes) + 28 bytes of padding */
#define I2S_GGML_TYPE 36    /* GGML_TYPE_I2_S; ftype MOSTLY_I2_S is 40 (§8.4) */
#define I8S_GGML_TYPE 37    /* GGML_TYPE_I8_S, the activation type */

/* Size of an I2_S tensor of n elements: n/4 + 32. */
static inline uint64_t i2s_nbytes(uint64_t n)
{
	return n / 4 + I2S_TAIL;
}

/* ---- quantization (§7.4, llama-quantize's quantize_i2_s) ---------------------------------- */

/* max(init, max |x_i|) computed in double (fmax: NaN elements are ignored).  Call it over the
 * whole tensor, in any number of chunks, to get the per-tensor scale. */
double i2s_absmax(const float *x, size_t n, double init);

/* The code of one value given the tensor scale: 1 if |x| < 1e-6, else 2 if x·scale > 0, else 0
 * (in double).  Magnitudes are ignored, so the input must already be ternary. */
static inline uint8_t i2s_code_of(float x, double scale)
{
	double d = (double)x;
	if ((d < 0 ? -d : d) < 1e-6)
		return 1;
	return d * scale > 0 ? 2 : 0;
}

/* Pack n values (a chunk starting at a multiple of 128 elements of the tensor) into dst, the
 * chunk's first byte (tensor data + first_element/4).  Writes bytes [0, n/4): the whole blocks
 * and zeros for a trailing partial block, exactly as the reference leaves them. */
void i2s_pack_f32(const float *x, size_t n, double scale, uint8_t *dst);
/* Same from codes 0..2 (e.g. an offline-quantized checkpoint's raw ternary plus one). */
void i2s_pack_codes(const uint8_t *codes, size_t n, uint8_t *dst);
/* Write the scale at byte n/4 of a tensor of n elements and zero the 28 padding bytes. */
void i2s_set_scale(uint8_t *tensor, uint64_t n, float scale);
/* The whole of llama-quantize's quantize_i2_s: scale = max|x| (double -> f32), pack, scale,
 * zero padding.  dst holds i2s_nbytes(n) bytes.  Returns i2s_nbytes(n). */
size_t i2s_quantize_ref(const float *x, size_t n, uint8_t *dst);

/* ---- reading ------------------------------------------------------------------------------ */

/* The scale stored at byte n/4. */
float i2s_get_scale(const uint8_t *tensor, uint64_t n);
/* Codes 0..3 of elements [0, n) by the §8.1 formula (a trailing partial block reads whatever
 * bytes the formula names, as a kernel would). */
void i2s_unpack_codes(const uint8_t *tensor, size_t n, uint8_t *codes);
/* (code - 1) · scale for every element. */
void i2s_dequantize_ref(const uint8_t *tensor, size_t n, float *y);

/* HEAD ARM layout (§8.2): codes by the 64-element formula, and a repack of a whole tensor
 * (n % 128 == 0) into the §8.1 layout, scale and zero padding included. */
void i2s_arm_unpack_codes(const uint8_t *tensor, size_t n, uint8_t *codes);
void i2s_arm_to_x86(const uint8_t *arm, size_t n, uint8_t *x86);

/* ---- activations: int8 per token (merge-dev ggml-quants.c quantize_row_i8_s) -------------- *
 * max = max(1e-5, max |x|) in double; scale = (float)(127 / max) (double division rounded to
 * f32); q = clamp(round_half_even(x · scale in f32), -128, 127); sum = Σ q.  Note scale is the
 * multiplier 127/max, not its inverse. */
void quantize_i8s_ref(const float *x, size_t k, int8_t *q, float *scale, int32_t *sum);

/* N quantized activation rows of K values each, row c at q + c·K. */
struct i8s_acts {
	const int8_t *q;
	const float *scale;  /* per row */
	const int32_t *sum;  /* per row */
};

/* ---- matmul (merge-dev ggml.c I2_S path) ----------------------------------------------------
 * raw(r, c) = Σ_k code(r, k) · q_c[k]   (codes 0..3 as stored, exact int32)
 * y[c·ldy + r] = ((float)raw - (float)sum_c) / scale_c * wscale   (f32, in this order)
 * w points at the first of nrows rows (K/4 bytes apart); K % 128 == 0.
 * The release's AVX2 kernel sums each 16-bit lane over 32 blocks (256 products) before widening,
 * so it wraps when such a partial sum leaves ±32767 (only for contrived inputs: codes and large
 * activations of one sign, e.g. all +1 weights against activations all near 127); every kernel
 * here keeps the sum exact, and equals the release bit for bit whenever the release does not
 * wrap (checked against it on random data). */
int32_t vecdot_i2s_q8_ref(size_t k, const uint8_t *w, const int8_t *q);
void gemm_i2s_q8_ref(size_t k, const uint8_t *w, size_t nrows, float wscale,
		     const struct i8s_acts *a, size_t ncols, float *y, size_t ldy);

/* The final scaling, shared by every kernel so that all of them round identically. */
static inline float i2s_finish(int32_t raw, int32_t sum, float scale, float wscale)
{
	return ((float)raw - (float)sum) / scale * wscale;
}

#endif

/* TL1/TL2 lookup-table GEMM: the interface between lutgen's generated, model-specific kernels
 * (build/gen/<model>/<quant>/bitnet-lut-kernels.h, which defines lut_generated_kernels) and the
 * engine.  Invariant: out = W x act with per-row int8 activation quantization exactly as
 * lut-kernels.md §3.1 defines it; the generated SIMD kernels and lut_ref_gemm agree bit for bit.
 *
 * Usage for one TL tensor W[m][k] stored in a GGUF (packed bytes, f32 scale at pad32(size)):
 *     if (lut_kernels_check(&lut_generated_kernels, &err)) ... // ABI + CPU (AVX2 / NEON)
 *     lut_kernels_match_config(&lut_generated_kernels, kv_text, kv_len, &err); // once per model:
 *         // the file's bitmake.lut.kernel_config KV against the compiled kernels
 *     struct lut_weight w;
 *     lut_weight_init(&w, &lut_generated_kernels, LUT_TL2, m, k, data, size, &err);
 *     void *scratch = malloc(lut_scratch_size(w.kern, n));
 *     lut_gemm(&lut_generated_kernels, &w, act, n, out, scratch, size, &err); // act n x k, out n x m
 * A thread pool calls lut_gemm_prepare once, then lut_gemm_compute(ith, nth) on every thread. */
#ifndef LUT_LUT_H
#define LUT_LUT_H

#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "lut_params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LUT_ABI_VERSION 1

/* One weight shape's generated kernel. */
struct lut_kernel {
	int32_t m, k;          /* weight rows (outputs), columns (inputs) */
	int32_t BM, BK, bm;    /* tile rows, K-block, micro-tile rows (lut_params.h) */
	int32_t three_k, two_k; /* TL2 K split; 0 for TL1 */
	/* Computes the BM outputs of tile `tile` for n activation rows: row r's outputs go to
	 * out[r*ldo + tile*BM + i].  w is the whole packed tensor; lut/lut2 are the activation LUTs
	 * of row 0 (rows follow at the strides of lut_lut_stride); lut_scales[r] is row r's scale;
	 * ws the weight scale.  out doubles as the int32 accumulator, so it must be writable. */
	void (*tile)(const uint8_t *w, int32_t tile, const int8_t *lut, const int8_t *lut2,
		     const float *lut_scales, float ws, float *out, int32_t n, int64_t ldo);
};

/* What a generated header defines (as lut_generated_kernels). */
struct lut_kernels {
	uint32_t abi;   /* LUT_ABI_VERSION */
	uint32_t quant; /* LUT_TL1 or LUT_TL2 */
	uint32_t n_kernels;
	const struct lut_kernel *kernels;
	/* Quantizes activation row b (kern->k floats): *lut_scale = 127/max|b| (1 for an all-zero
	 * row), and builds its LUT(s): TL1 16*k bytes in lut; TL2 32*three_k/3 bytes in lut and
	 * 16*two_k bytes in lut2 (lut-kernels.md §3.2-3.4). */
	void (*preprocess)(const struct lut_kernel *kern, const float *b, float *lut_scale,
			   int8_t *lut, int8_t *lut2);
	const char *isa;           /* "avx2" or "neon" */
	const char *kernel_config; /* the kernel_config.ini text the kernels were generated from */
};

/* Defined by the generated bitnet-lut-kernels.h (include it in exactly one C file). */
extern const struct lut_kernels lut_generated_kernels;

/* Checks the ABI version and that this CPU has the instruction set (AVX2 for TL2, NEON for
 * TL1): "TL2 kernels need AVX2, which this CPU lacks; use QUANT=i2_s". */
int lut_kernels_check(const struct lut_kernels *ks, struct bn_err *err);

/* The kernel for W[m][k], or NULL. */
const struct lut_kernel *lut_kernel_find(const struct lut_kernels *ks, int64_t m, int64_t k);

/* Checks that the tile parameters a model was packed with (e.g. from its GGUF metadata or the
 * kernel_config.ini given to the converter) are those the kernels were generated for. */
int lut_kernels_match(const struct lut_kernels *ks, const struct lut_params *p, size_t n,
		      struct bn_err *err);

/* The same for the kernel_config.ini text a TL model file records in its LUT_GGUF_KERNEL_CONFIG
 * KV (lut_params.h); what an engine calls once per model before lut_weight_init. */
int lut_kernels_match_config(const struct lut_kernels *ks, const char *text, size_t len,
			     struct bn_err *err);

/* A TL weight as it lies in a GGUF: borrowed packed bytes, scale copied out. */
struct lut_weight {
	const struct lut_kernel *kern;
	const uint8_t *data; /* lut_packed_size bytes, then the f32 scale at lut_scale_offset */
	float scale;
};
/* `name` (may be NULL) is used in error messages.  size: the bytes available at data
 * (at least lut_scale_offset + 4). */
int lut_weight_init(struct lut_weight *w, const struct lut_kernels *ks, enum lut_quant type,
		    int64_t m, int64_t k, const void *data, size_t size, const char *name,
		    struct bn_err *err);

/* Bytes between the LUTs of consecutive activation rows (lut2: TL2 only, else 0). */
size_t lut_lut_stride(const struct lut_kernel *kern);
size_t lut_lut2_stride(const struct lut_kernel *kern);
/* Scratch bytes lut_gemm needs for n activation rows (LUTs and scales; 64-byte aligned
 * scratch is fastest). */
size_t lut_scratch_size(const struct lut_kernel *kern, int64_t n);

/* out[r*m + i] = sum_c W[i][c] * act[r*k + c] for r < n (lut-kernels.md §3.1). */
int lut_gemm(const struct lut_kernels *ks, const struct lut_weight *w, const float *act,
	     int64_t n, float *out, void *scratch, size_t scratch_size, struct bn_err *err);
/* The same in two phases: prepare (one thread) builds the LUTs in scratch; then every thread
 * ith < nth calls compute for its share of the tiles.  No checks: lut_gemm's caller's job. */
void lut_gemm_prepare(const struct lut_kernels *ks, const struct lut_weight *w, const float *act,
		      int64_t n, void *scratch);
void lut_gemm_compute(const struct lut_weight *w, int64_t n, float *out, const void *scratch,
		      int ith, int nth);

/* ---- the scalar reference (lut_ref.c): the oracle of the tests ---- */

/* 127 / max|b| in float32; 1 when the row is all zero or the quotient is not finite. */
float lut_ref_act_scale(const float *b, int64_t k);
/* out[r*m + i] = (float)acc / s_r * ws with acc = sum_c w[i][c] * roundHalfEven(act[r][c] * s_r)
 * computed exactly; w is ternary, row-major m x k. */
void lut_ref_gemm(const int8_t *w, int64_t m, int64_t k, float ws, const float *act, int64_t n,
		  float *out);

#ifdef __cplusplus
}
#endif

#endif

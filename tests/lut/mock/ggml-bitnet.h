/* Test stand-in for bitnet.cpp's include/ggml-bitnet.h and the few ggml.h types the generated
 * header's drop-in mode uses (lut-kernels.md §2.6), so that mode can be compiled and driven the
 * way ggml.c drives it, without ggml.  Declarations only; written for bitmake's tests. */
#ifndef BITMAKE_TEST_GGML_BITNET_H
#define BITMAKE_TEST_GGML_BITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __ARM_NEON
#include <arm_neon.h>
typedef float32_t bitnet_float_type;
#else
typedef float bitnet_float_type;
#endif

enum ggml_type {
	GGML_TYPE_F32 = 0,
	GGML_TYPE_F16 = 1,
	GGML_TYPE_Q4_0 = 2,
	GGML_TYPE_I2_S = 36,
	GGML_TYPE_TL1 = 38,
	GGML_TYPE_TL2 = 39,
};

struct ggml_tensor {
	enum ggml_type type;
	int64_t ne[4];
	void *data;
	char name[64];
	void *extra;
};

#ifdef __cplusplus
extern "C" {
#endif

struct bitnet_tensor_extra {
	int lut_scales_size;
	int BK;
	int n_tile_num;
	uint8_t *qweights;
	bitnet_float_type *scales;
};

void ggml_bitnet_init(void);
void ggml_bitnet_free(void);
void ggml_bitnet_transform_tensor(struct ggml_tensor *tensor);
#if defined(GGML_BITNET_ARM_TL1)
void ggml_qgemm_lut(int m, int k, void *A, void *LUT, void *Scales, void *LUT_Scales, void *C);
void ggml_preprocessor(int m, int k, void *B, void *LUT_Scales, void *QLUT);
#endif
#if defined(GGML_BITNET_X86_TL2)
void ggml_qgemm_lut(int bs, int m, int k, int BK, void *A, void *sign, void *LUT, void *Scales,
		    void *LUT_Scales, void *C);
void ggml_preprocessor(int bs, int m, int three_k, int two_k, void *B, void *LUT_Scales,
		       void *Three_QLUT, void *Two_QLUT);
#endif

#ifdef __cplusplus
}
#endif

#endif

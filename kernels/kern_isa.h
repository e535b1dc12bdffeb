/* Declarations of the per-instruction-set kernels (kernels/<isa>/<fmt>_<isa>.c) and of the kernel
 * sets they make up.  Each <isa> file is compiled with its own -m flags; only kernels.c, built
 * for the baseline target, decides (from kern_cpu_detect) which of them may run. */
#ifndef KERN_ISA_H
#define KERN_ISA_H

#include "kernels.h"

#define KERN_DECLARE_ISA(isa)                                                                      \
	void quantize_i8s_##isa(const float *x, size_t k, int8_t *q, float *scale, int32_t *sum);  \
	void gemm_i2s_q8_##isa(size_t k, const uint8_t *w, size_t nrows, float wscale,             \
			       const struct i8s_acts *a, size_t ncols, float *y, size_t ldy);     \
	void gemm_tq1_q8k_##isa(size_t k, const struct tq1_block *w, size_t nrows,                 \
				const struct q8k_block *a, size_t ncols, float *y, size_t ldy);   \
	void gemm_tq2_q8k_##isa(size_t k, const struct tq2_block *w, size_t nrows,                 \
				const struct q8k_block *a, size_t ncols, float *y, size_t ldy);   \
	extern const struct kern_set kern_set_##isa

KERN_DECLARE_ISA(avx2);
KERN_DECLARE_ISA(avx512);
KERN_DECLARE_ISA(avx512vnni);
KERN_DECLARE_ISA(neon);
KERN_DECLARE_ISA(dotprod);

#endif

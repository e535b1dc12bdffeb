/* Q8_0 (ggml type 8): blocks of 32 int8 with one fp16 scale, as llama-quantize writes it for
 * embeddings/output heads whose row length is not a multiple of 256.  Invariant: bit-identical
 * to merge-dev's quantize_row_q8_0_ref / dequantize_row_q8_0. */
#ifndef KERN_Q8_0_H
#define KERN_Q8_0_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define QK8_0 32
#define Q8_0_GGML_TYPE 8

/*
 * convert-quantize.md §7.3: blocks of 32 along ne[0]; amax = max|x|; d = amax/127 (f32),
 * stored as fp16 (round to nearest even); id = 1/d from the f32 d (0 if d == 0);
 * q = roundf(x·id) (half away from zero).  Block = fp16 d, then 32 int8: 34 bytes.
 * Dequantised value = q · fp16_to_f32(d).
 */
struct q8_0_block {
	uint16_t d; /* fp16 */
	int8_t qs[QK8_0];
};
static_assert(sizeof(struct q8_0_block) == 34, "q8_0_block must be 34 bytes");

/* n % 32 == 0; n elements <-> n/32 blocks. */
void quantize_q8_0_ref(const float *x, size_t n, struct q8_0_block *y);
void dequantize_q8_0_ref(const struct q8_0_block *x, size_t n, float *y);

#endif

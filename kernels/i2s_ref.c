/* I2_S reference: packing, unpacking, activation quantization and the scalar matmul that every
 * SIMD kernel must match bit for bit.  Layouts are documented in i2s.h (convert-quantize.md §8). */
#include "i2s.h"

#include <math.h>
#include <string.h>

#include "kern_util.h"

double i2s_absmax(const float *x, size_t n, double init)
{
	double m = init;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)x[i]));
	return m;
}

/* One whole block: codes c[0..127] -> 32 bytes. */
static void pack_block(const uint8_t *c, uint8_t *dst)
{
	for (int m = 0; m < 32; m++)
		dst[m] = (uint8_t)((c[m] & 3) << 6 | (c[32 + m] & 3) << 4 | (c[64 + m] & 3) << 2 |
				   (c[96 + m] & 3));
}

void i2s_pack_f32(const float *x, size_t n, double scale, uint8_t *dst)
{
	size_t nb = n / I2S_BLOCK;
	uint8_t c[I2S_BLOCK];
	for (size_t b = 0; b < nb; b++) {
		for (int j = 0; j < I2S_BLOCK; j++)
			c[j] = i2s_code_of(x[b * I2S_BLOCK + j], scale);
		pack_block(c, dst + b * I2S_BLOCK_BYTES);
	}
	/* a trailing partial block is never encoded; the reference's memset leaves zeros */
	memset(dst + nb * I2S_BLOCK_BYTES, 0, n / 4 - nb * I2S_BLOCK_BYTES);
}

void i2s_pack_codes(const uint8_t *codes, size_t n, uint8_t *dst)
{
	size_t nb = n / I2S_BLOCK;
	for (size_t b = 0; b < nb; b++)
		pack_block(codes + b * I2S_BLOCK, dst + b * I2S_BLOCK_BYTES);
	memset(dst + nb * I2S_BLOCK_BYTES, 0, n / 4 - nb * I2S_BLOCK_BYTES);
}

void i2s_set_scale(uint8_t *tensor, uint64_t n, float scale)
{
	kern_store_f32le(tensor + n / 4, scale);
	memset(tensor + n / 4 + 4, 0, I2S_TAIL - 4);
}

size_t i2s_quantize_ref(const float *x, size_t n, uint8_t *dst)
{
	double scale = i2s_absmax(x, n, 0.0);
	i2s_pack_f32(x, n, scale, dst);
	i2s_set_scale(dst, n, (float)scale);
	return (size_t)i2s_nbytes(n);
}

float i2s_get_scale(const uint8_t *tensor, uint64_t n)
{
	return kern_load_f32le(tensor + n / 4);
}

void i2s_unpack_codes(const uint8_t *tensor, size_t n, uint8_t *codes)
{
	for (size_t i = 0; i < n; i++) {
		size_t byte = I2S_BLOCK_BYTES * (i / I2S_BLOCK) + i % 32;
		unsigned shift = 6 - 2 * (unsigned)((i % I2S_BLOCK) / 32);
		codes[i] = (tensor[byte] >> shift) & 3;
	}
}

void i2s_dequantize_ref(const uint8_t *tensor, size_t n, float *y)
{
	float scale = i2s_get_scale(tensor, n);
	for (size_t i = 0; i < n; i++) {
		size_t byte = I2S_BLOCK_BYTES * (i / I2S_BLOCK) + i % 32;
		unsigned shift = 6 - 2 * (unsigned)((i % I2S_BLOCK) / 32);
		int code = (tensor[byte] >> shift) & 3;
		y[i] = (float)(code - 1) * scale;
	}
}

void i2s_arm_unpack_codes(const uint8_t *tensor, size_t n, uint8_t *codes)
{
	for (size_t i = 0; i < n; i++) {
		size_t byte = I2S_ARM_BLOCK_BYTES * (i / I2S_ARM_BLOCK) + i % 16;
		unsigned shift = 6 - 2 * (unsigned)((i % I2S_ARM_BLOCK) / 16);
		codes[i] = (tensor[byte] >> shift) & 3;
	}
}

void i2s_arm_to_x86(const uint8_t *arm, size_t n, uint8_t *x86)
{
	uint8_t c[I2S_BLOCK];
	for (size_t b = 0; b < n / I2S_BLOCK; b++) {
		i2s_arm_unpack_codes(arm + b * I2S_BLOCK_BYTES, I2S_BLOCK, c);
		pack_block(c, x86 + b * I2S_BLOCK_BYTES);
	}
	i2s_set_scale(x86, n, i2s_get_scale(arm, n));
}

void quantize_i8s_ref(const float *x, size_t k, int8_t *q, float *scale, int32_t *sum)
{
	double max = 0.00001;
	for (size_t i = 0; i < k; i++) {
		double a = fabs((double)x[i]);
		max = max > a ? max : a; /* the reference's MAX(): a NaN element wins */
	}
	float s = (float)(127 / max);
	int32_t acc = 0;
	for (size_t i = 0; i < k; i++) {
		int v = kern_nearest_int(x[i] * s);
		if (v > 127)
			v = 127;
		if (v < -128)
			v = -128;
		acc += v;
		q[i] = (int8_t)v;
	}
	*scale = s;
	*sum = acc;
}

int32_t vecdot_i2s_q8_ref(size_t k, const uint8_t *w, const int8_t *q)
{
	int32_t acc = 0;
	for (size_t b = 0; b < k / I2S_BLOCK; b++) {
		const uint8_t *wb = w + b * I2S_BLOCK_BYTES;
		const int8_t *qb = q + b * I2S_BLOCK;
		for (int m = 0; m < 32; m++) {
			acc += ((wb[m] >> 6) & 3) * qb[m];
			acc += ((wb[m] >> 4) & 3) * qb[32 + m];
			acc += ((wb[m] >> 2) & 3) * qb[64 + m];
			acc += (wb[m] & 3) * qb[96 + m];
		}
	}
	return acc;
}

void gemm_i2s_q8_ref(size_t k, const uint8_t *w, size_t nrows, float wscale,
		     const struct i8s_acts *a, size_t ncols, float *y, size_t ldy)
{
	for (size_t c = 0; c < ncols; c++)
		for (size_t r = 0; r < nrows; r++) {
			int32_t raw = vecdot_i2s_q8_ref(k, w + r * (k / 4), a->q + c * k);
			y[c * ldy + r] = i2s_finish(raw, a->sum[c], a->scale[c], wscale);
		}
}

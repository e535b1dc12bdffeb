/* IEEE binary16 and bfloat16 conversions.  f32 -> f16/bf16 round to nearest even (as numpy's
 * astype and ggml's GGML_FP32_TO_FP16 do); widening is exact.  NaN stays NaN (quiet). */
#ifndef BN_FP16_H
#define BN_FP16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t bn_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}
static inline float bn_bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* bf16 is the top half of an f32, so widening is a shift. */
static inline float bn_bf16_to_f32(uint16_t h)
{
	return bn_bits_f32((uint32_t)h << 16);
}

static inline uint16_t bn_f32_to_bf16(float f)
{
	uint32_t u = bn_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign, force quiet */
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

static inline float bn_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	uint32_t u;
	if (exp == 0) {
		if (man == 0) {
			u = sign;
		} else { /* subnormal: normalise */
			int e = -1;
			do {
				man <<= 1;
				e++;
			} while (!(man & 0x400u));
			u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
		}
	} else if (exp == 31) {
		u = sign | 0x7f800000u | (man << 13);
	} else {
		u = sign | ((exp + 127 - 15) << 23) | (man << 13);
	}
	return bn_bits_f32(u);
}

static inline uint16_t bn_f32_to_f16(float f)
{
	uint32_t u = bn_f32_bits(f);
	uint32_t sign = (u >> 16) & 0x8000u;
	uint32_t absu = u & 0x7fffffffu;
	if (absu > 0x7f800000u) /* NaN */
		return (uint16_t)(sign | 0x7e00u | ((absu >> 13) & 0x3ffu));
	if (absu >= 0x477ff000u) /* rounds to >= 65520: overflow to infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (absu < 0x38800000u) { /* below the smallest normal f16 (2^-14): subnormal or zero */
		if (absu < 0x33000000u) /* below half the smallest subnormal: zero */
			return (uint16_t)sign;
		uint32_t e = absu >> 23;
		uint32_t man = (absu & 0x7fffffu) | 0x800000u;
		uint32_t shift = 126 - e; /* 14 + (127 - 1 - e) - ... keeps 10 bits at 2^-24 units */
		uint32_t half_ulp = 1u << (shift - 1);
		uint32_t q = man >> shift;
		uint32_t rem = man & ((1u << shift) - 1);
		if (rem > half_ulp || (rem == half_ulp && (q & 1u)))
			q++;
		return (uint16_t)(sign | q);
	}
	uint32_t r = absu + 0xfffu + ((absu >> 13) & 1u); /* round to nearest even on bit 13 */
	return (uint16_t)(sign | (((r >> 13) - ((127 - 15) << 10)) & 0x7fffu));
}

#endif

/* Small helpers shared by the kernel sources: ggml's rounding trick, unaligned little-endian
 * f32 access.  Header-only and ISA-neutral, so every per-ISA file may include it. */
#ifndef KERN_UTIL_H
#define KERN_UTIL_H

#include <stdint.h>
#include <string.h>

/* ggml's nearest_int: adding 1.5·2^23 leaves round-half-even(f) in the low mantissa bits.
 * Valid for |f| <= 4194303; identical to lrintf under the default rounding mode (and maps NaN
 * to 0, as the reference does). */
/* Full unrolling of short constant-trip loops in the SIMD tiles, so their accumulator arrays
 * live in registers (clang needs its own spelling; gcc takes "GCC unroll"). */
#if defined(__clang__)
#define KERN_UNROLL _Pragma("clang loop unroll(full)")
#else
#define KERN_UNROLL _Pragma("GCC unroll 16")
#endif

static inline int kern_nearest_int(float f)
{
	float v = f + 12582912.f;
	int32_t i;
	memcpy(&i, &v, 4);
	return (i & 0x007fffff) - 0x00400000;
}

static inline float kern_load_f32le(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline void kern_store_f32le(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

#endif

/* The AVX-512 I2_S kernels built a second time with AVX512_VNNI: vpdpbusd sums codes x int8
 * straight into 32-bit lanes, and the single-token path masks the codes in place instead of
 * shifting them (see ../avx512/i2s_avx512.c). */
#define KERN_VNNI 1
#include "../avx512/i2s_avx512.c"

/* The NEON I2_S kernels built again with -march=armv8.2-a+dotprod: SDOT sums codes x int8 straight
 * into 32-bit lanes (see ../neon/i2s_neon.c). */
#define KERN_DOTPROD 1
#include "../neon/i2s_neon.c"

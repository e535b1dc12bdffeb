/* The NEON TQ1_0/TQ2_0 kernels built again with -march=armv8.2-a+dotprod (see ../neon/tq_neon.c). */
#define KERN_DOTPROD 1
#include "../neon/tq_neon.c"

/* The model's generated TL kernels as one object for the engine to link: it includes the
 * bitnet-lut-kernels.h that mk/codegen.mk generated for MODEL and QUANT (found through -I of
 * that model's GEN_DIR) and so defines lut_generated_kernels (lut.h).  Compiled with -mavx2 for
 * TL2, for AArch64 for TL1. */
#include "bitnet-lut-kernels.h"

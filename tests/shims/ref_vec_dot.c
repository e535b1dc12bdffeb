/* A stand-in for bitnet.cpp's libggml in tests of `bitnet-kernels --bench --ref-lib`: exports the
 * release's ggml_vec_dot_i2_i8_s interface (raw Σ code·q as a float, one row, one token) on top of
 * our scalar reference.  With BITMAKE_FAKE_REF_OFF set it is off by one, to test the warning. */
#include <stdlib.h>

#include "i2s.h"

void ggml_vec_dot_i2_i8_s(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc);

void ggml_vec_dot_i2_i8_s(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc)
{
	(void)bs;
	(void)bx;
	(void)by;
	(void)nrc;
	*s = (float)vecdot_i2s_q8_ref((size_t)n, vx, vy) + (getenv("BITMAKE_FAKE_REF_OFF") ? 1.0f : 0.0f);
}

/* bitnet-kernels --bench: this machine's read bandwidth and the kernels' GEMV/GEMM speed, each
 * printed next to the reference figures of ../shared/docs/anchors.md and the bandwidth floor. */
#ifndef BK_BENCH_H
#define BK_BENCH_H

#include <stdbool.h>

#include "bn_err.h"
#include "kernels.h"

/* quick: small buffers and short runs (a smoke test; the figures mean little).  ref_lib: NULL, or
 * a shared library with the release's ggml_vec_dot_i2_i8_s (bitnet.cpp's libggml), timed in the
 * same run as a baseline after checking it agrees with our kernels bit for bit. */
int bk_bench(const struct kern_opts *opts, bool quick, const char *ref_lib, struct bn_err *err);

#endif

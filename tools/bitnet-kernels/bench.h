/* bitnet-kernels --bench: this machine's read bandwidth and the kernels' GEMV/GEMM speed, each
 * printed next to the reference figures of ../shared/docs/anchors.md and the bandwidth floor. */
#ifndef BK_BENCH_H
#define BK_BENCH_H

#include <stdbool.h>

#include "bn_err.h"
#include "kernels.h"

/* quick: small buffers and short runs (a smoke test; the figures mean little). */
int bk_bench(const struct kern_opts *opts, bool quick, struct bn_err *err);

#endif

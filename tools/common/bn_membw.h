/* Memory read bandwidth, the floor every benchmark compares its kernels with.  One shared
 * measurement so that every bench's "x the bandwidth floor" means the same thing. */
#ifndef BN_MEMBW_H
#define BN_MEMBW_H

#include <stddef.h>

/* Bytes per second reading `bytes` of buf (already written, so its pages exist), split in
 * contiguous slices over `threads` threads (1..64): the best of `passes` passes.  The reader
 * is the fastest this machine allows (256-bit loads where the CPU has AVX2, four streams, a
 * software prefetch), so the result is a real bound; noise can only lower it, hence the best. */
double bn_read_bandwidth(const void *buf, size_t bytes, unsigned threads, int passes);

#endif

/* The kernel library's runtime: CPU feature detection, one kernel set per instruction set with
 * run-time dispatch, a start-up self-test against the scalar references, a small thread pool,
 * and matmul drivers for I2_S, TQ1_0 and TQ2_0 weights with float activations.
 * Invariant: a kernel set is only ever called on a CPU (and OS) that has its features, and only
 * after it agreed bit for bit with the scalar reference on random data. */
#ifndef KERNELS_H
#define KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "i2s.h"
#include "tq.h"

/* ---- CPU features --------------------------------------------------------------------------- */

enum kern_cpu_feature {
	KERN_CPU_AVX2 = 1u << 0,       /* AVX2 with OS-enabled YMM state */
	KERN_CPU_FMA = 1u << 1,
	KERN_CPU_F16C = 1u << 2,
	KERN_CPU_AVX512 = 1u << 3,     /* AVX-512 F+BW+VL with OS-enabled opmask/ZMM state */
	KERN_CPU_AVX512VNNI = 1u << 4, /* AVX512_VNNI (with KERN_CPU_AVX512) */
	KERN_CPU_AVXVNNI = 1u << 5,    /* AVX-VNNI (VEX-encoded, 256-bit) */
	KERN_CPU_NEON = 1u << 8,       /* AArch64 Advanced SIMD */
	KERN_CPU_DOTPROD = 1u << 9,    /* ARMv8.2 SDOT/UDOT */
};

struct kern_cpu {
	uint32_t features; /* enum kern_cpu_feature bits */
	char arch[16];     /* "x86_64", "aarch64", ... */
	char model[64];    /* CPU brand string when known */
};

/* Detects the features of this CPU and what the OS enables (cpuid + xgetbv on x86, getauxval on
 * AArch64). */
void kern_cpu_detect(struct kern_cpu *cpu);
/* "avx2 fma f16c avx512 avx512vnni" etc. into buf; returns buf. */
const char *kern_cpu_features_str(uint32_t features, char *buf, size_t size);
/* 0 if cpu has every feature in needs; else -BN_EUNSUPPORTED naming `what` and the missing ones. */
int kern_cpu_require(const struct kern_cpu *cpu, uint32_t needs, const char *what, struct bn_err *err);

/* ---- kernel sets ------------------------------------------------------------------------------
 * One set per instruction set compiled into this library.  Every function has the semantics of
 * its _ref twin in i2s.h / tq.h, bit for bit. */
typedef void (*kern_quantize_i8s_fn)(const float *x, size_t k, int8_t *q, float *scale, int32_t *sum);
typedef void (*kern_quantize_q8k_fn)(const float *x, size_t n, struct q8k_block *y);
typedef void (*kern_gemm_i2s_fn)(size_t k, const uint8_t *w, size_t nrows, float wscale,
				 const struct i8s_acts *a, size_t ncols, float *y, size_t ldy);
typedef void (*kern_gemm_tq1_fn)(size_t k, const struct tq1_block *w, size_t nrows,
				 const struct q8k_block *a, size_t ncols, float *y, size_t ldy);
typedef void (*kern_gemm_tq2_fn)(size_t k, const struct tq2_block *w, size_t nrows,
				 const struct q8k_block *a, size_t ncols, float *y, size_t ldy);

struct kern_set {
	const char *name; /* "ref", "avx2", "avx512", "avx512vnni", "neon", "dotprod" */
	uint32_t needs;   /* CPU features it requires */
	kern_quantize_i8s_fn quantize_i8s;
	kern_quantize_q8k_fn quantize_q8k;
	kern_gemm_i2s_fn gemm_i2s;
	kern_gemm_tq1_fn gemm_tq1;
	kern_gemm_tq2_fn gemm_tq2;
	/* names of the functions above, for messages ("gemm_i2s_q8_avx2", ...) */
	const char *gemm_i2s_name, *gemm_tq1_name, *gemm_tq2_name, *quantize_i8s_name;
};

/* The sets compiled into this build, best first; the last one is always "ref".  *count is set. */
const struct kern_set *const *kern_sets(size_t *count);
/* The set called `name`, or NULL if this build has none. */
const struct kern_set *kern_set_find(const char *name);
/* The best compiled set the CPU supports. */
const struct kern_set *kern_set_best(const struct kern_cpu *cpu);

/* Compares every function of `set` with the scalar reference on random blocks (several shapes,
 * tails included).  0, or -BN_EVERIFY with a message naming the kernel, the shape and the first
 * differing output. */
int kern_self_test(const struct kern_set *set, uint64_t seed, struct bn_err *err);

/* ---- context: selected set + thread pool ------------------------------------------------------ */

/* The environment variable that forces a set: BITMAKE_KERNEL_ISA=ref|avx2|avx512|avx512vnni|
 * neon|dotprod (or "auto"). */
#define KERN_ISA_ENV "BITMAKE_KERNEL_ISA"

struct kern_opts {
	const char *isa;      /* set name, "auto" or NULL (then $BITMAKE_KERNEL_ISA, else auto) */
	unsigned threads;     /* 0: bn_physical_core_count() */
	bool skip_self_test;  /* tests and benchmarks that run kern_self_test themselves */
};

struct kern_ctx;

/* Detects the CPU, selects the set (refusing a forced one the CPU lacks), runs the self-test
 * and starts threads-1 worker threads.  Caller frees with kern_close. */
int kern_open(struct kern_ctx **out, const struct kern_opts *opts, struct bn_err *err);
void kern_close(struct kern_ctx *ctx);
const struct kern_set *kern_selected(const struct kern_ctx *ctx);
const struct kern_cpu *kern_ctx_cpu(const struct kern_ctx *ctx);
unsigned kern_threads(const struct kern_ctx *ctx);

/* Work for the pool: fn(arg, i, n) is called exactly once for every i in [0, n), on any of the
 * pool's threads (the caller is one of them), possibly several i on one thread; the call returns
 * when all are done.  Threads that the OS has not scheduled yet simply get fewer chunks, so split
 * work into more chunks than threads when it is large.  Not reentrant: one call at a time per
 * context, and fn must not wait for other chunks. */
typedef void (*kern_task_fn)(void *arg, unsigned i, unsigned n);
void kern_parallel_chunks(struct kern_ctx *ctx, unsigned nchunks, kern_task_fn fn, void *arg);
/* kern_parallel_chunks with one chunk per thread (n = kern_threads(ctx)). */
void kern_parallel(struct kern_ctx *ctx, kern_task_fn fn, void *arg);

/* For formats implemented outside this library (lutgen's TL1/TL2 kernels): fails with a message
 * naming `what` and the missing features unless this CPU has every feature in `needs`. */
int kern_require_cpu(const struct kern_ctx *ctx, uint32_t needs, const char *what, struct bn_err *err);

/* ---- matmul ---------------------------------------------------------------------------------- */

enum kern_wtype { KERN_W_I2S, KERN_W_TQ1_0, KERN_W_TQ2_0 };

/* A weight matrix of m rows of k values (ggml ne = [k, m]).  `data` is borrowed. */
struct kern_weight {
	enum kern_wtype type;
	size_t k, m;
	const void *data;
	float scale; /* I2_S: the per-tensor scale read from the data */
};

/* Validates the shape against the format (I2_S: k % 128; TQ: k % 256) and the data size
 * (I2_S: k·m/4 + 32 bytes; TQ: m·k/256 blocks), and fills *w. */
int kern_weight_init(struct kern_weight *w, enum kern_wtype type, size_t k, size_t m, const void *data,
		     size_t size, struct bn_err *err);

/* Quantized activations for n tokens of k values, in caller-provided scratch. */
struct kern_acts {
	enum kern_wtype type; /* I2_S: int8 per token; TQ1_0/TQ2_0 share the Q8_K form */
	size_t k, n;
	struct i8s_acts i8s;
	const struct q8k_block *q8k;
};

/* Scratch bytes kern_quantize needs for n tokens (aligned to 64 bytes internally). */
size_t kern_acts_size(enum kern_wtype type, size_t k, size_t n);
/* Quantizes n rows of x (row j at x + j·ldx) for weights of `type`; the result can be reused for
 * every weight with the same k and activation form (e.g. Q, K and V). */
int kern_quantize(struct kern_ctx *ctx, enum kern_wtype type, size_t k, const float *x, size_t n,
		  size_t ldx, void *scratch, size_t scratch_size, struct kern_acts *out, struct bn_err *err);
/* y[j·ldy + r] = row r of w · token j, for r < w->m, j < a->n, using the pool. */
int kern_matmul_q(struct kern_ctx *ctx, const struct kern_weight *w, const struct kern_acts *a, float *y,
		  size_t ldy, struct bn_err *err);
/* Both steps. */
int kern_matmul(struct kern_ctx *ctx, const struct kern_weight *w, const float *x, size_t n, float *y,
		void *scratch, size_t scratch_size, struct bn_err *err);

#endif

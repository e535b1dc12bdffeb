/* GEMV timing of a generated bitnet-lut-kernels.h (compiled against it like the test harnesses):
 * single-threaded, one activation row.  "hot": the same weights again and again (they stay in
 * cache); "cold": a rotation through copies of the weights totalling --cold bytes, so they come
 * from memory; the read-bandwidth floor (packed bytes / single-thread read bandwidth, measured
 * in the same run) bounds what any cold GEMV can reach.
 *   lut_bench [--cold BYTES] [--bandwidth BYTES] [--anchor MxK=HOT/COLD]...  a table
 *   lut_bench --tune                                                        "tune M K BM BK bm ns"
 * Used by `make bench` (bench-lutgen) and lutgen --tune.  Timings are medians (bench) or minima
 * (tune) of repeated samples; no result is asserted anywhere. */
#include "bitnet-lut-kernels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn_membw.h"
#include "lut/lut.h"
#include "lut_pack.h"
#include "lut_params.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n ? n : 64)) {
		fprintf(stderr, "lut_bench: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static uint32_t next(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

struct shape_run {
	const struct lut_kernel *kn;
	enum lut_quant q;
	uint8_t *tensor; /* packed + scale, lut_tensor_extent bytes */
	size_t extent;
	float *act, *out;
	void *scratch;
	size_t scratch_size;
};

static void setup(struct shape_run *s, const struct lut_kernels *ks, const struct lut_kernel *kn)
{
	struct lut_params p = { (uint32_t)kn->m, (uint32_t)kn->k, (uint32_t)kn->BM,
				(uint32_t)kn->BK, (uint32_t)kn->bm, 0, 0 };
	struct bn_err err;
	memset(&err, 0, sizeof err);
	s->kn = kn;
	s->q = (enum lut_quant)ks->quant;
	const size_t n = (size_t)kn->m * kn->k;
	int8_t *w = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		w[i] = (int8_t)(next() % 3) - 1;
	s->extent = (size_t)lut_tensor_extent(s->q, p.m, p.k);
	s->tensor = xmalloc(s->extent);
	memset(s->tensor, 0, s->extent);
	if (lut_pack(s->q, &p, w, s->tensor, &err)) {
		fprintf(stderr, "lut_bench: %s\n", err.msg);
		exit(1);
	}
	const float ws = 0.0371f;
	memcpy(s->tensor + lut_scale_offset(s->q, p.m, p.k), &ws, sizeof ws);
	free(w);
	s->act = xmalloc((size_t)kn->k * sizeof(float));
	for (int32_t c = 0; c < kn->k; c++)
		s->act[c] = (float)((int)(next() % 2001) - 1000) / 400.0f;
	s->out = xmalloc((size_t)kn->m * sizeof(float));
	s->scratch_size = lut_scratch_size(kn, 1);
	s->scratch = xmalloc(s->scratch_size);
}

static void teardown(struct shape_run *s)
{
	free(s->tensor);
	free(s->act);
	free(s->out);
	free(s->scratch);
}

/* Median (or minimum) of `samples` timings of `iters` GEMVs, in seconds per GEMV; *min_out
 * (may be NULL) gets the minimum.  kernel_only: the activation LUT is built once outside. */
static double time_hot(const struct lut_kernels *ks, struct shape_run *s, int samples, int kernel_only,
		       int minimum, double *min_out)
{
	struct lut_weight w;
	struct bn_err err;
	memset(&err, 0, sizeof err);
	if (lut_weight_init(&w, ks, s->q, s->kn->m, s->kn->k, s->tensor, s->extent, NULL, &err)) {
		fprintf(stderr, "lut_bench: %s\n", err.msg);
		exit(1);
	}
	if (kernel_only)
		lut_gemm_prepare(ks, &w, s->act, 1, s->scratch);
	/* iterations per sample: about 5 ms */
	int iters = 1;
	for (;;) {
		double t0 = now();
		for (int i = 0; i < iters; i++) {
			if (kernel_only)
				lut_gemm_compute(&w, 1, s->out, s->scratch, 0, 1);
			else
				lut_gemm(ks, &w, s->act, 1, s->out, s->scratch, s->scratch_size, &err);
		}
		if (now() - t0 > 0.005 || iters >= 1 << 20)
			break;
		iters *= 2;
	}
	double t[64];
	samples = samples > 64 ? 64 : samples;
	for (int k = 0; k < samples; k++) {
		double t0 = now();
		for (int i = 0; i < iters; i++) {
			if (kernel_only)
				lut_gemm_compute(&w, 1, s->out, s->scratch, 0, 1);
			else
				lut_gemm(ks, &w, s->act, 1, s->out, s->scratch, s->scratch_size, &err);
		}
		t[k] = (now() - t0) / iters;
	}
	qsort(t, (size_t)samples, sizeof t[0], cmp_double);
	if (min_out)
		*min_out = t[0];
	return minimum ? t[0] : t[samples / 2];
}

/* Per-GEMV time rotating through copies of the weights totalling at least `bytes` (median of
 * 5 passes; *min_out the fastest pass). */
static double time_cold(const struct lut_kernels *ks, struct shape_run *s, size_t bytes,
			double *min_out)
{
	const size_t stride = (s->extent + 4095) & ~(size_t)4095;
	size_t copies = bytes / stride + 1;
	uint8_t *pool = xmalloc(copies * stride);
	for (size_t c = 0; c < copies; c++)
		memcpy(pool + c * stride, s->tensor, s->extent);
	struct lut_weight *w = xmalloc(copies * sizeof *w);
	struct bn_err err;
	memset(&err, 0, sizeof err);
	for (size_t c = 0; c < copies; c++)
		lut_weight_init(&w[c], ks, s->q, s->kn->m, s->kn->k, pool + c * stride, s->extent, NULL, &err);
	double t[5];
	for (int pass = 0; pass < 5; pass++) {
		double t0 = now();
		for (size_t c = 0; c < copies; c++)
			lut_gemm(ks, &w[c], s->act, 1, s->out, s->scratch, s->scratch_size, &err);
		t[pass] = (now() - t0) / (double)copies;
	}
	free(w);
	free(pool);
	qsort(t, 5, sizeof t[0], cmp_double);
	*min_out = t[0];
	return t[2];
}

/* Single-thread read bandwidth over `bytes`, in bytes per second (bn_read_bandwidth: the best
 * of 5 passes of the fastest reader this machine allows, so the floor it gives is a real bound). */
static double bandwidth(size_t bytes)
{
	uint8_t *buf = xmalloc(bytes);
	memset(buf, 1, bytes);
	double bw = bn_read_bandwidth(buf, bytes, 1, 5);
	free(buf);
	return bw;
}

struct anchor {
	int m, k;
	double hot, cold; /* microseconds */
};

static int parse_bytes(const char *s, size_t *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	if (*end == 'G')
		v *= 1 << 30;
	else if (*end == 'M')
		v *= 1 << 20;
	else if (*end)
		return -1;
	*out = (size_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	const struct lut_kernels *ks = &lut_generated_kernels;
	size_t cold = 1u << 30, bw_bytes = 1u << 30;
	int tune = 0, na = 0;
	struct anchor an[16];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tune"))
			tune = 1;
		else if (!strcmp(argv[i], "--cold") && i + 1 < argc && !parse_bytes(argv[i + 1], &cold))
			i++;
		else if (!strcmp(argv[i], "--bandwidth") && i + 1 < argc &&
			 !parse_bytes(argv[i + 1], &bw_bytes))
			i++;
		else if (!strcmp(argv[i], "--anchor") && i + 1 < argc && na < 16 &&
			 sscanf(argv[i + 1], "%dx%d=%lf/%lf", &an[na].m, &an[na].k, &an[na].hot,
				&an[na].cold) == 4) {
			na++;
			i++;
		} else {
			fprintf(stderr, "usage: lut_bench [--cold BYTES] [--bandwidth BYTES] "
					"[--anchor MxK=HOT/COLD]... | --tune\n");
			return 2;
		}
	}
	struct bn_err err;
	memset(&err, 0, sizeof err);
	if (lut_kernels_check(ks, &err)) {
		printf("lut_bench: skipped: %s\n", err.msg);
		return 0;
	}
	if (tune) {
		for (uint32_t i = 0; i < ks->n_kernels; i++) {
			struct shape_run s;
			setup(&s, ks, &ks->kernels[i]);
			double t = time_hot(ks, &s, 9, 0, 1, NULL);
			printf("tune %d %d %d %d %d %.0f\n", (int)s.kn->m, (int)s.kn->k, (int)s.kn->BM,
			       (int)s.kn->BK, (int)s.kn->bm, t * 1e9);
			teardown(&s);
		}
		return 0;
	}
	const double bw = bandwidth(bw_bytes);
	printf("  read bandwidth (1 thread, best of 5 passes over %zu MiB): %.2f GB/s\n", bw_bytes >> 20,
	       bw / 1e9);
	printf("  median (min) per GEMV; floor = packed bytes / bandwidth\n");
	printf("  %-12s %-11s %17s %9s %17s %9s %7s %15s %13s\n", "shape", "BM,BK,bm", "hot", "kernel",
	       "cold", "floor", "cold/fl", "anchor hot/cold", "vs anchor");
	for (uint32_t i = 0; i < ks->n_kernels; i++) {
		struct shape_run s;
		setup(&s, ks, &ks->kernels[i]);
		double hot_min, cold_min;
		const double hot = time_hot(ks, &s, 11, 0, 0, &hot_min);
		const double kern = time_hot(ks, &s, 11, 1, 0, NULL);
		const double cl = time_cold(ks, &s, cold, &cold_min);
		struct lut_params p = { (uint32_t)s.kn->m, (uint32_t)s.kn->k, (uint32_t)s.kn->BM,
					(uint32_t)s.kn->BK, (uint32_t)s.kn->bm, (uint32_t)s.kn->three_k,
					(uint32_t)s.kn->two_k };
		const double floor_s = (double)lut_packed_used(s.q, &p) / bw;
		char shape[32], par[32], anc[32] = "-", vs[32] = "-", hot_s[32], cold_s[32];
		snprintf(shape, sizeof shape, "[%d,%d]", (int)p.m, (int)p.k);
		snprintf(par, sizeof par, "%d,%d,%d", (int)p.BM, (int)p.BK, (int)p.bm);
		snprintf(hot_s, sizeof hot_s, "%.1f (%.1f)us", hot * 1e6, hot_min * 1e6);
		snprintf(cold_s, sizeof cold_s, "%.1f (%.1f)us", cl * 1e6, cold_min * 1e6);
		for (int a = 0; a < na; a++)
			if (an[a].m == (int)p.m && an[a].k == (int)p.k) {
				snprintf(anc, sizeof anc, "%.1f/%.1f", an[a].hot, an[a].cold);
				snprintf(vs, sizeof vs, "%.2fx/%.2fx", hot * 1e6 / an[a].hot, cl * 1e6 / an[a].cold);
			}
		printf("  %-12s %-11s %17s %7.1fus %17s %7.1fus %6.2fx %15s %13s\n", shape, par, hot_s,
		       kern * 1e6, cold_s, floor_s * 1e6, cl / floor_s, anc, vs);
		teardown(&s);
	}
	return 0;
}

/* --bench: read bandwidth (1 and N threads, >= 1 GiB buffer), then per shape I2_S GEMV hot (weights
 * in cache) and cold (>= 1 GiB of weight copies rotated, so weights come from memory), single- and
 * multi-threaded, and 64-token GEMM; TQ2_0/TQ1_0 GEMV cold.  Each figure is printed with the
 * reference kernel's figure from ../shared/docs/anchors.md where one exists and with the
 * bandwidth floor (the bytes a GEMV must read / the bandwidth measured in this run).  Timings
 * are medians of several runs; the machine is shared and noisy, so only ratios mean much. */
#include "bench.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_membw.h"
#include "bn_util.h"

/* the release's I2_S dot product (BitNet src/ggml-bitnet-mad.cpp), when --ref-lib gives one */
typedef void (*ref_vec_dot_fn)(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by,
			       int nrc);

/* anchors.md (c): the release's I2_S kernel, 1 thread, microseconds (median). */
struct anchor {
	size_t m, k;
	double hot_us, cold_us;
};
static const struct anchor anchors[] = {
	{ 1536, 4096, 110.0, 227.8 },
	{ 1536, 1536, 66.3, 90.1 },
	{ 4096, 1536, 125.5, 251.1 },
};
#define ANCHOR_BW1 10.89 /* GB/s, anchors.md (b) */
#define ANCHOR_BW2 20.27

struct shape {
	size_t m, k;
	const char *what;
};
static const struct shape shapes[] = {
	{ 1536, 4096, "bitnet_b1_58-large ffn_down" },
	{ 1536, 1536, "bitnet_b1_58-large attn" },
	{ 4096, 1536, "bitnet_b1_58-large ffn_up" },
	{ 2560, 2560, "BitNet-b1.58-2B-4T attn" },
	{ 6912, 2560, "BitNet-b1.58-2B-4T ffn_up" },
	{ 2560, 6912, "BitNet-b1.58-2B-4T ffn_down" },
	{ 1024, 4096, "Llama3-8B attn_k/v" },
	{ 4096, 4096, "Llama3-8B attn_q/o" },
	{ 14336, 4096, "Llama3-8B ffn_up" },
	{ 4096, 14336, "Llama3-8B ffn_down" },
};
#define GEMM_TOKENS 64

struct cfg {
	size_t arena;    /* bytes of weight copies for cold runs, and of the bandwidth buffer */
	double min_time; /* seconds per timed run */
	int reps;        /* timed runs; the median is reported */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(p + i, &s, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)(s >> (8 * (i % 8)));
}

/* ---- read bandwidth ----------------------------------------------------------------------------- */

/* The floor's bandwidth, over the whole arena: a capability, so the best of the passes. */
static double bandwidth(struct kern_ctx *ctx, const struct cfg *c, const uint8_t *buf)
{
	return bn_read_bandwidth(buf, c->arena, kern_threads(ctx), 3 * (c->reps + 1)) / 1e9;
}

/* ---- GEMV/GEMM timing --------------------------------------------------------------------------- */

struct bench {
	const struct cfg *c;
	uint8_t *arena;
	struct kern_ctx *ctx1, *ctxn;
	float *y;
	void *scratch;
	size_t scratch_size;
	ref_vec_dot_fn ref; /* --ref-lib, or NULL */
};

/* Median microseconds per kern_matmul_q call over `ncopies` weight copies `stride` bytes apart
 * (1 copy = hot). */
static double time_mm(struct bench *b, struct kern_ctx *ctx, struct kern_weight w, size_t stride, size_t ncopies,
		      const struct kern_acts *a, struct bn_err *err)
{
	double v[16];
	const uint8_t *base = w.data;
	for (int r = 0; r < b->c->reps; r++) {
		size_t calls = 0;
		double t0 = bn_now(), t;
		do {
			for (size_t i = 0; i < ncopies; i++) {
				w.data = base + i * stride;
				if (kern_matmul_q(ctx, &w, a, b->y, w.m, err) < 0)
					return -1;
			}
			calls += ncopies;
			t = bn_now() - t0;
		} while (t < b->c->min_time);
		v[r] = t / (double)calls * 1e6;
	}
	return median(v, b->c->reps);
}

/* ---- optional same-run reference: the release's I2_S dot product from a library the user built
 * (e.g. bitnet.cpp's libggml.so); nothing here builds it.  merge-dev's matmul calls it for one row
 * and one token at a time, in 16 x 16 blocks, then scales; ref_matmul does the same. ---------- */

static ref_vec_dot_fn ref_load(const char *path, struct bn_err *err)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		bn_seterr(err, BN_ENOENT, "%s: cannot load the reference library: %s", path, dlerror());
		return NULL;
	}
	/* the C++ build exports the mangled name; a C build the plain one */
	static const char *const names[] = { "_Z20ggml_vec_dot_i2_i8_siPfmPKvmS1_mi", "ggml_vec_dot_i2_i8_s" };
	for (size_t i = 0; i < 2; i++) {
		void *f = dlsym(h, names[i]);
		if (f) {
			ref_vec_dot_fn fn;
			memcpy(&fn, &f, sizeof fn);
			return fn; /* the library stays loaded for the whole run */
		}
	}
	bn_seterr(err, BN_EFORMAT, "%s: no ggml_vec_dot_i2_i8_s in it; give the library bitnet.cpp's I2_S kernel is in", path);
	dlclose(h);
	return NULL;
}

static void ref_matmul(ref_vec_dot_fn dot, size_t k, const uint8_t *w, size_t m, float wscale, const struct i8s_acts *a,
		       size_t n, float *y)
{
	for (size_t c0 = 0; c0 < n; c0 += 16)
		for (size_t r0 = 0; r0 < m; r0 += 16)
			for (size_t c = c0; c < n && c < c0 + 16; c++)
				for (size_t r = r0; r < m && r < r0 + 16; r++) {
					float t;
					dot((int)k, &t, 0, w + r * (k / 4), 0, a->q + c * k, 0, 1);
					y[c * m + r] = (t - (float)a->sum[c]) / a->scale[c] * wscale;
				}
}

/* Median microseconds per reference matmul over ncopies weight copies (1 = hot). */
static double time_ref(struct bench *b, struct kern_weight w, size_t stride, size_t ncopies, const struct kern_acts *a)
{
	double v[16];
	const uint8_t *base = w.data;
	for (int r = 0; r < b->c->reps; r++) {
		size_t calls = 0;
		double t0 = bn_now(), t;
		do {
			for (size_t i = 0; i < ncopies; i++)
				ref_matmul(b->ref, w.k, base + i * stride, w.m, 1.0f, &a->i8s, a->n, b->y);
			calls += ncopies;
			t = bn_now() - t0;
		} while (t < b->c->min_time);
		v[r] = t / (double)calls * 1e6;
	}
	return median(v, b->c->reps);
}

static const struct anchor *anchor_for(size_t m, size_t k)
{
	for (size_t i = 0; i < sizeof anchors / sizeof anchors[0]; i++)
		if (anchors[i].m == m && anchors[i].k == k)
			return &anchors[i];
	return NULL;
}

static void line(const char *label, size_t m, size_t k, const char *mode, unsigned nt, double us, double ref_us,
		 double run_us, double floor_us)
{
	char ref[32] = "", sp[16] = "", run[32] = "", rsp[16] = "", fl[32] = "", ra[16] = "";
	if (ref_us > 0) {
		snprintf(ref, sizeof ref, "%9.1f us", ref_us);
		snprintf(sp, sizeof sp, "%6.2fx", ref_us / us);
	}
	if (run_us > 0) {
		snprintf(run, sizeof run, "%9.1f us", run_us);
		snprintf(rsp, sizeof rsp, "%6.2fx", run_us / us);
	}
	if (floor_us > 0) {
		snprintf(fl, sizeof fl, "%9.1f us", floor_us);
		snprintf(ra, sizeof ra, "%6.2f", us / floor_us);
	}
	char shape[32];
	snprintf(shape, sizeof shape, "[%zu,%zu]", m, k);
	printf("%-7s %-12s %-4s %ut %10.1f us  %12s %8s  %12s %8s  %12s %7s\n", label, shape, mode, nt, us, ref, sp, run,
	       rsp, fl, ra);
	fflush(stdout);
}

static int bench_shape(struct bench *b, const struct shape *s, enum kern_wtype type, double bw1, double bwn,
		       bool gemv_hot, bool gemm, struct bn_err *err)
{
	size_t m = s->m, k = s->k;
	size_t bytes = type == KERN_W_I2S ? m * k / 4 + I2S_TAIL
		       : type == KERN_W_TQ2_0 ? m * (k / QK_K) * sizeof(struct tq2_block)
					      : m * (k / QK_K) * sizeof(struct tq1_block);
	size_t stream = type == KERN_W_I2S ? m * k / 4 : bytes; /* bytes a GEMV must read */
	size_t stride = (bytes + 4095) & ~(size_t)4095;
	size_t ncopies = (b->c->arena + stride - 1) / stride; /* >= arena bytes rotated */
	if (ncopies < 2)
		ncopies = 2;
	if (ncopies * stride > b->c->arena + (b->c->arena / 8))
		return bn_seterr(err, BN_EINVAL, "bench: arena too small for [%zu,%zu]", m, k);
	struct kern_weight w;
	int rc = kern_weight_init(&w, type, k, m, b->arena, bytes, err);
	if (rc < 0)
		return rc;
	w.scale = 1.0f;
	const char *label = type == KERN_W_I2S ? "I2_S" : type == KERN_W_TQ2_0 ? "TQ2_0" : "TQ1_0";
	const struct anchor *an = type == KERN_W_I2S ? anchor_for(m, k) : NULL;
	unsigned nt = kern_threads(b->ctxn);

	float *x = malloc(GEMM_TOKENS * k * sizeof *x);
	if (!x)
		return bn_seterr(err, BN_ENOMEM, "bench: out of memory");
	uint64_t st = k;
	for (size_t i = 0; i < GEMM_TOKENS * k; i++) { /* activation-like floats in [-1, 1) */
		st = st * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((int32_t)(st >> 40) - (1 << 23)) / (float)(1 << 23);
	}
	struct kern_acts a1, an64;
	size_t need1 = kern_acts_size(type, k, 1);
	if ((rc = kern_quantize(b->ctx1, type, k, x, 1, k, b->scratch, b->scratch_size, &a1, err)) < 0)
		goto out;
	if (gemm && (rc = kern_quantize(b->ctx1, type, k, x, GEMM_TOKENS, k, (uint8_t *)b->scratch + need1,
					b->scratch_size - need1, &an64, err)) < 0)
		goto out;

	bool with_ref = b->ref && type == KERN_W_I2S;
	if (with_ref) {
		/* the same-run reference must compute what we compute, bit for bit */
		float *y0 = malloc(m * sizeof *y0), *y1 = malloc(m * sizeof *y1);
		if (!y0 || !y1) {
			free(y0);
			free(y1);
			rc = bn_seterr(err, BN_ENOMEM, "bench: out of memory");
			goto out;
		}
		ref_matmul(b->ref, k, w.data, m, 1.0f, &a1.i8s, 1, y0);
		kern_selected(b->ctx1)->gemm_i2s(k, w.data, m, 1.0f, &a1.i8s, 1, y1, m);
		size_t bad = 0;
		for (size_t i = 0; i < m; i++)
			bad += memcmp(&y0[i], &y1[i], sizeof *y0) != 0;
		free(y0);
		free(y1);
		if (bad)
			printf("  warning: the reference library differs from our kernels in %zu of %zu outputs of [%zu,%zu]\n",
			       bad, m, m, k);
	}
	double floor1 = (double)stream / (bw1 * 1e9) * 1e6, floorn = (double)stream / (bwn * 1e9) * 1e6;
	double us, run_us = 0;
	if (gemv_hot) {
		if ((us = time_mm(b, b->ctx1, w, stride, 1, &a1, err)) < 0)
			goto fail;
		if (with_ref)
			run_us = time_ref(b, w, stride, 1, &a1);
		line(label, m, k, "hot", 1, us, an ? an->hot_us : 0, run_us, 0);
	}
	if ((us = time_mm(b, b->ctx1, w, stride, ncopies, &a1, err)) < 0)
		goto fail;
	if (with_ref)
		run_us = time_ref(b, w, stride, ncopies, &a1);
	line(label, m, k, "cold", 1, us, an ? an->cold_us : 0, run_us, floor1);
	if (nt > 1) {
		if (gemv_hot) {
			if ((us = time_mm(b, b->ctxn, w, stride, 1, &a1, err)) < 0)
				goto fail;
			line(label, m, k, "hot", nt, us, 0, 0, 0);
		}
		if ((us = time_mm(b, b->ctxn, w, stride, ncopies, &a1, err)) < 0)
			goto fail;
		line(label, m, k, "cold", nt, us, 0, 0, floorn);
	}
	if (gemm) {
		/* the release's matmul calls its one-row, one-token dot product for every (row, token),
		 * so its GEMM costs about GEMM_TOKENS hot GEMVs (anchors.md has no GEMM figure) */
		double ref = an ? an->hot_us * GEMM_TOKENS : 0;
		if ((us = time_mm(b, b->ctx1, w, stride, 1, &an64, err)) < 0)
			goto fail;
		if (with_ref)
			run_us = time_ref(b, w, stride, 1, &an64);
		char lab[16];
		snprintf(lab, sizeof lab, "%s*%d", label, GEMM_TOKENS);
		line(lab, m, k, "gemm", 1, us, ref, run_us, 0);
		if (nt > 1) {
			if ((us = time_mm(b, b->ctxn, w, stride, 1, &an64, err)) < 0)
				goto fail;
			line(lab, m, k, "gemm", nt, us, 0, 0, 0);
		}
	}
	rc = 0;
	goto out;
fail:
	rc = -err->code;
out:
	free(x);
	return rc;
}

int bk_bench(const struct kern_opts *opts, bool quick, const char *ref_lib, struct bn_err *err)
{
	struct cfg c = quick ? (struct cfg){ 64u << 20, 0.01, 1 } : (struct cfg){ 1u << 30, 0.3, 3 };
	struct bench b = { &c, NULL, NULL, NULL, NULL, NULL, 0, NULL };
	int rc;
	if (ref_lib && !(b.ref = ref_load(ref_lib, err)))
		return -err->code;
	struct kern_opts o1 = *opts, on = *opts;
	o1.threads = 1;
	on.skip_self_test = true;
	if ((rc = kern_open(&b.ctx1, &o1, err)) < 0) /* runs the self-test */
		return rc;
	if ((rc = kern_open(&b.ctxn, &on, err)) < 0)
		goto out;
	size_t arena = c.arena + c.arena / 8; /* slack so the largest shape's copies fill >= arena */
	b.arena = malloc(arena);
	b.y = malloc(GEMM_TOKENS * 14336 * sizeof *b.y);
	b.scratch_size = kern_acts_size(KERN_W_TQ1_0, 14336, GEMM_TOKENS + 1) + kern_acts_size(KERN_W_I2S, 14336, GEMM_TOKENS + 1);
	b.scratch = malloc(b.scratch_size);
	if (!b.arena || !b.y || !b.scratch) {
		rc = bn_seterr(err, BN_ENOMEM, "bench: cannot allocate %zu MiB", arena >> 20);
		goto out;
	}
	fill_random(b.arena, arena, 0x2545f4914f6cdd1dull);

	double bw1 = bandwidth(b.ctx1, &c, b.arena);
	double bwn = kern_threads(b.ctxn) > 1 ? bandwidth(b.ctxn, &c, b.arena) : bw1;
	printf("kernel set %s; %u threads; %zu MiB buffer%s\n", kern_selected(b.ctx1)->name, kern_threads(b.ctxn),
	       c.arena >> 20, quick ? " (--quick: figures are not meaningful)" : "");
	printf("read bandwidth (bn_read_bandwidth: best of its passes): 1 thread %.2f GB/s, %u threads %.2f GB/s\n"
	       "  (anchors.md measured %.2f and %.2f with 2 threads)\n", bw1,
	       kern_threads(b.ctxn), bwn, ANCHOR_BW1, ANCHOR_BW2);
	printf("\nGEMV = 1 token; hot = weights in cache; cold = weights from memory (copies rotated);\n"
	       "anchors = the release I2_S kernel in anchors.md (1 thread); speedup = reference time / ours;\n"
	       "GEMM anchors = %d x the anchor's hot GEMV (the release runs its 1x1 dot product per row and token);\n"
	       "same run = %s;\n"
	       "floor = bytes of weights / measured bandwidth; ours/fl = how close to it (1.00 = at it).\n\n",
	       GEMM_TOKENS, b.ref ? ref_lib : "not measured (give --ref-lib with bitnet.cpp's libggml to time it here)");
	printf("%-7s %-12s %-4s %-2s %13s  %12s %8s  %12s %8s  %12s %7s\n", "format", "[M,K]", "run", "th", "ours",
	       "anchors", "speedup", "same run", "speedup", "floor", "ours/fl");
	size_t nshapes = quick ? 3 : sizeof shapes / sizeof shapes[0];
	for (size_t i = 0; i < nshapes; i++)
		if ((rc = bench_shape(&b, &shapes[i], KERN_W_I2S, bw1, bwn, true, true, err)) < 0)
			goto out;
	printf("\n");
	for (size_t i = 0; i < (quick ? 1 : 3); i++) {
		if ((rc = bench_shape(&b, &shapes[i], KERN_W_TQ2_0, bw1, bwn, false, false, err)) < 0)
			goto out;
		if ((rc = bench_shape(&b, &shapes[i], KERN_W_TQ1_0, bw1, bwn, false, false, err)) < 0)
			goto out;
	}
	rc = 0;
out:
	free(b.arena);
	free(b.y);
	free(b.scratch);
	kern_close(b.ctx1);
	kern_close(b.ctxn);
	return rc;
}

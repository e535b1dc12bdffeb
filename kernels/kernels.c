/* Kernel sets, run-time selection, the self-test and the threaded matmul drivers.  Compiled for
 * the baseline target: it only calls a SIMD set after kern_cpu_detect said the CPU and OS support
 * it.  KERN_HAVE_<ISA> (from mk/kernels.mk) says which sets this build contains. */
#include "kernels.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn_fp16.h"
#include "bn_util.h"
#include "kern_isa.h"
#include "kern_pool.h"

static const struct kern_set kern_set_ref = {
	.name = "ref",
	.needs = 0,
	.quantize_i8s = quantize_i8s_ref,
	.quantize_q8k = quantize_q8k_ref,
	.gemm_i2s = gemm_i2s_q8_ref,
	.gemm_tq1 = gemm_tq1_q8k_ref,
	.gemm_tq2 = gemm_tq2_q8k_ref,
	.gemm_i2s_name = "gemm_i2s_q8_ref",
	.gemm_tq1_name = "gemm_tq1_q8k_ref",
	.gemm_tq2_name = "gemm_tq2_q8k_ref",
	.quantize_i8s_name = "quantize_i8s_ref",
};

static const struct kern_set *const all_sets[] = {
#ifdef KERN_HAVE_AVX512VNNI
	&kern_set_avx512vnni,
#endif
#ifdef KERN_HAVE_AVX512
	&kern_set_avx512,
#endif
#ifdef KERN_HAVE_AVX2
	&kern_set_avx2,
#endif
#ifdef KERN_HAVE_DOTPROD
	&kern_set_dotprod,
#endif
#ifdef KERN_HAVE_NEON
	&kern_set_neon,
#endif
	&kern_set_ref,
};

const struct kern_set *const *kern_sets(size_t *count)
{
	*count = sizeof all_sets / sizeof all_sets[0];
	return all_sets;
}

const struct kern_set *kern_set_find(const char *name)
{
	for (size_t i = 0; i < sizeof all_sets / sizeof all_sets[0]; i++)
		if (strcmp(all_sets[i]->name, name) == 0)
			return all_sets[i];
	return NULL;
}

const struct kern_set *kern_set_best(const struct kern_cpu *cpu)
{
	for (size_t i = 0; i < sizeof all_sets / sizeof all_sets[0]; i++)
		if ((all_sets[i]->needs & cpu->features) == all_sets[i]->needs)
			return all_sets[i];
	return &kern_set_ref;
}

/* ---- self-test -------------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Activation-like floats: mostly small, some outliers, a few exact zeros. */
static void rand_floats(uint64_t *s, float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = rng_next(s);
		float v = (float)((int64_t)(r >> 40) - (1 << 23)) / (float)(1 << 23);
		switch (r & 15) {
		case 0:
			v *= 40.0f;
			break;
		case 1:
			v = 0.0f;
			break;
		default:
			break;
		}
		x[i] = v;
	}
}

static void rand_bytes(uint64_t *s, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(s) >> 56);
}

static int first_diff_f32(const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bn_f32_bits(a[i]) != bn_f32_bits(b[i]))
			return (int)i;
	return -1;
}

static int selftest_i8s(const struct kern_set *set, uint64_t *s, size_t k, struct bn_err *err)
{
	int rc = 0;
	float *x = malloc(k * sizeof *x);
	int8_t *q0 = malloc(k), *q1 = malloc(k);
	if (!x || !q0 || !q1) {
		rc = bn_seterr(err, BN_ENOMEM, "self-test: out of memory");
		goto out;
	}
	rand_floats(s, x, k);
	float s0, s1;
	int32_t m0, m1;
	quantize_i8s_ref(x, k, q0, &s0, &m0);
	set->quantize_i8s(x, k, q1, &s1, &m1);
	if (memcmp(q0, q1, k) != 0 || bn_f32_bits(s0) != bn_f32_bits(s1) || m0 != m1)
		rc = bn_seterr(err, BN_EVERIFY,
			       "%s: self-test: differs from quantize_i8s_ref for k=%zu "
			       "(scale %a, want %a; sum %" PRId32 ", want %" PRId32 ")",
			       set->quantize_i8s_name, k, (double)s1, (double)s0, m1, m0);
out:
	free(x);
	free(q0);
	free(q1);
	return rc;
}

static int selftest_i2s(const struct kern_set *set, uint64_t *s, size_t k, size_t m, size_t n,
			struct bn_err *err)
{
	int rc = 0;
	size_t wbytes = k * m / 4;
	uint8_t *w = malloc(wbytes);
	float *x = malloc(n * k * sizeof *x), *y0 = malloc(n * m * sizeof *y0), *y1 = malloc(n * m * sizeof *y1);
	int8_t *q = malloc(n * k);
	float *sc = malloc(n * sizeof *sc);
	int32_t *sum = malloc(n * sizeof *sum);
	if (!w || !x || !y0 || !y1 || !q || !sc || !sum) {
		rc = bn_seterr(err, BN_ENOMEM, "self-test: out of memory");
		goto out;
	}
	rand_bytes(s, w, wbytes); /* every code, 3 included */
	rand_floats(s, x, n * k);
	for (size_t j = 0; j < n; j++)
		quantize_i8s_ref(x + j * k, k, q + j * k, &sc[j], &sum[j]);
	struct i8s_acts a = { q, sc, sum };
	float wscale = 0.0123f;
	gemm_i2s_q8_ref(k, w, m, wscale, &a, n, y0, m);
	memset(y1, 0xff, n * m * sizeof *y1);
	set->gemm_i2s(k, w, m, wscale, &a, n, y1, m);
	int d = first_diff_f32(y0, y1, n * m);
	if (d >= 0)
		rc = bn_seterr(err, BN_EVERIFY,
			       "%s: self-test: differs from gemm_i2s_q8_ref (k=%zu, %zu rows, "
			       "%zu tokens) at row %zu token %zu: got %a, want %a",
			       set->gemm_i2s_name, k, m, n, (size_t)d % m, (size_t)d / m, (double)y1[d],
			       (double)y0[d]);
out:
	free(w);
	free(x);
	free(y0);
	free(y1);
	free(q);
	free(sc);
	free(sum);
	return rc;
}

/* Random TQ blocks: any byte pattern, a finite positive fp16 scale. */
static void rand_tq_scales(uint64_t *s, uint16_t *d)
{
	*d = bn_f32_to_f16((float)(rng_next(s) >> 44) / 1048576.0f + 0.01f);
}

static int selftest_tq(const struct kern_set *set, uint64_t *s, int which, size_t k, size_t m, size_t n,
		       struct bn_err *err)
{
	int rc = 0;
	size_t nb = k / QK_K;
	size_t bsz = which == 1 ? sizeof(struct tq1_block) : sizeof(struct tq2_block);
	uint8_t *w = malloc(m * nb * bsz);
	float *x = malloc(n * k * sizeof *x), *y0 = malloc(n * m * sizeof *y0), *y1 = malloc(n * m * sizeof *y1);
	struct q8k_block *a = malloc(n * nb * sizeof *a), *a1 = malloc(n * nb * sizeof *a1);
	if (!w || !x || !y0 || !y1 || !a || !a1) {
		rc = bn_seterr(err, BN_ENOMEM, "self-test: out of memory");
		goto out;
	}
	rand_bytes(s, w, m * nb * bsz);
	for (size_t b = 0; b < m * nb; b++) {
		uint8_t *blk = w + b * bsz;
		uint16_t d;
		rand_tq_scales(s, &d);
		memcpy(blk + bsz - 2, &d, 2); /* d is the last field of both block types */
	}
	rand_floats(s, x, n * k);
	quantize_q8k_ref(x, n * k, a);
	set->quantize_q8k(x, n * k, a1);
	if (memcmp(a, a1, n * nb * sizeof *a) != 0) {
		rc = bn_seterr(err, BN_EVERIFY,
			       "kernel set %s: self-test: quantize_q8k differs from quantize_q8k_ref",
			       set->name);
		goto out;
	}
	const char *name;
	if (which == 1) {
		gemm_tq1_q8k_ref(k, (const struct tq1_block *)w, m, a, n, y0, m);
		set->gemm_tq1(k, (const struct tq1_block *)w, m, a, n, y1, m);
		name = set->gemm_tq1_name;
	} else {
		gemm_tq2_q8k_ref(k, (const struct tq2_block *)w, m, a, n, y0, m);
		set->gemm_tq2(k, (const struct tq2_block *)w, m, a, n, y1, m);
		name = set->gemm_tq2_name;
	}
	int d = first_diff_f32(y0, y1, n * m);
	if (d >= 0)
		rc = bn_seterr(err, BN_EVERIFY,
			       "%s: self-test: differs from the reference (k=%zu, %zu rows, "
			       "%zu tokens) at row %zu token %zu: got %a, want %a",
			       name, k, m, n, (size_t)d % m, (size_t)d / m, (double)y1[d], (double)y0[d]);
out:
	free(w);
	free(x);
	free(y0);
	free(y1);
	free(a);
	free(a1);
	return rc;
}

int kern_self_test(const struct kern_set *set, uint64_t seed, struct bn_err *err)
{
	uint64_t s = seed;
	int rc;
	static const size_t ik[] = { 128, 4224, 1000 };
	for (size_t i = 0; i < sizeof ik / sizeof ik[0]; i++)
		if ((rc = selftest_i8s(set, &s, ik[i], err)) < 0)
			goto fail;
	static const size_t shapes[][3] = { { 128, 37, 1 }, { 4224, 19, 1 }, { 640, 37, 5 }, { 4224, 9, 3 } };
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		if ((rc = selftest_i2s(set, &s, shapes[i][0], shapes[i][1], shapes[i][2], err)) < 0)
			goto fail;
	static const size_t tshapes[][3] = { { 256, 19, 1 }, { 1536, 7, 3 } };
	for (int which = 1; which <= 2; which++)
		for (size_t i = 0; i < sizeof tshapes / sizeof tshapes[0]; i++)
			if ((rc = selftest_tq(set, &s, which, tshapes[i][0], tshapes[i][1], tshapes[i][2], err)) < 0)
				goto fail;
	return 0;
fail:
	if (err && err->code == BN_EVERIFY) {
		char detail[BN_ERR_MSG_MAX];
		snprintf(detail, sizeof detail, "%s", err->msg);
		bn_seterr(err, BN_EVERIFY, "%s (seed %" PRIu64 "); the %s kernels are broken on this machine and will not be used; set %s=ref to run the scalar ones",
			  detail, seed, set->name, KERN_ISA_ENV);
	}
	return rc;
}

/* ---- context ---------------------------------------------------------------------------------- */

struct kern_ctx {
	struct kern_cpu cpu;
	const struct kern_set *set;
	struct kern_pool *pool;
};

int kern_cpu_require(const struct kern_cpu *cpu, uint32_t needs, const char *what, struct bn_err *err)
{
	if ((cpu->features & needs) == needs)
		return 0;
	char want[160], have[160];
	kern_cpu_features_str(needs & ~cpu->features, want, sizeof want);
	kern_cpu_features_str(cpu->features, have, sizeof have);
	return bn_seterr(err, BN_EUNSUPPORTED, "%s: needs %s, which this CPU (or its OS) lacks; it has: %s",
			 what, want, have);
}

int kern_open(struct kern_ctx **out, const struct kern_opts *opts, struct bn_err *err)
{
	static const struct kern_opts defaults = { 0 };
	if (!opts)
		opts = &defaults;
	*out = NULL;
	struct kern_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	kern_cpu_detect(&ctx->cpu);

	const char *isa = opts->isa;
	const char *origin = "requested";
	if (!isa || !*isa) {
		isa = getenv(KERN_ISA_ENV);
		origin = "forced by " KERN_ISA_ENV;
	}
	int rc;
	if (!isa || !*isa || strcmp(isa, "auto") == 0) {
		ctx->set = kern_set_best(&ctx->cpu);
	} else {
		ctx->set = kern_set_find(isa);
		if (!ctx->set) {
			char names[128] = "";
			size_t n;
			const struct kern_set *const *sets = kern_sets(&n);
			for (size_t i = 0; i < n; i++) {
				strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
				strncat(names, sets[i]->name, sizeof names - strlen(names) - 1);
			}
			rc = bn_seterr(err, BN_EUNSUPPORTED,
				       "kernel set '%s' (%s): not in this build; it has: %s, auto",
				       isa, origin, names);
			goto fail;
		}
		if ((ctx->set->needs & ctx->cpu.features) != ctx->set->needs) {
			char what[96];
			snprintf(what, sizeof what, "kernel set '%s' (%s)", ctx->set->name, origin);
			rc = kern_cpu_require(&ctx->cpu, ctx->set->needs, what, err);
			goto fail;
		}
	}
	if (!opts->skip_self_test) {
		uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)ctx << 16);
		if ((rc = kern_self_test(ctx->set, seed, err)) < 0)
			goto fail;
	}
	unsigned nt = opts->threads ? opts->threads : bn_physical_core_count();
	ctx->pool = kern_pool_new(nt);
	if (!ctx->pool) {
		rc = bn_seterr(err, BN_ENOMEM, "cannot start %u threads", nt);
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	free(ctx);
	return rc;
}

void kern_close(struct kern_ctx *ctx)
{
	if (!ctx)
		return;
	kern_pool_free(ctx->pool);
	free(ctx);
}

const struct kern_set *kern_selected(const struct kern_ctx *ctx)
{
	return ctx->set;
}

const struct kern_cpu *kern_ctx_cpu(const struct kern_ctx *ctx)
{
	return &ctx->cpu;
}

unsigned kern_threads(const struct kern_ctx *ctx)
{
	return kern_pool_size(ctx->pool);
}

void kern_parallel_chunks(struct kern_ctx *ctx, unsigned nchunks, kern_task_fn fn, void *arg)
{
	kern_pool_run(ctx->pool, nchunks, fn, arg);
}

void kern_parallel(struct kern_ctx *ctx, kern_task_fn fn, void *arg)
{
	kern_pool_run(ctx->pool, kern_pool_size(ctx->pool), fn, arg);
}

int kern_require_cpu(const struct kern_ctx *ctx, uint32_t needs, const char *what, struct bn_err *err)
{
	return kern_cpu_require(&ctx->cpu, needs, what, err);
}

/* ---- matmul ----------------------------------------------------------------------------------- */

static const char *wtype_name(enum kern_wtype t)
{
	return t == KERN_W_I2S ? "I2_S" : t == KERN_W_TQ1_0 ? "TQ1_0" : "TQ2_0";
}

static size_t block_size(enum kern_wtype t)
{
	return t == KERN_W_TQ1_0 ? sizeof(struct tq1_block) : sizeof(struct tq2_block);
}

int kern_weight_init(struct kern_weight *w, enum kern_wtype type, size_t k, size_t m, const void *data,
		     size_t size, struct bn_err *err)
{
	size_t n, want;
	if (k == 0 || m == 0 || !bn_mul_size(k, m, &n))
		return bn_seterr(err, BN_EINVAL, "%s weight [%zu, %zu]: bad shape", wtype_name(type), m, k);
	if (type == KERN_W_I2S) {
		if (k % I2S_BLOCK)
			return bn_seterr(err, BN_EINVAL,
					 "I2_S weight [%zu, %zu]: row length %zu is not a multiple of %d",
					 m, k, k, I2S_BLOCK);
		want = n / 4 + I2S_TAIL;
	} else {
		if (k % QK_K)
			return bn_seterr(err, BN_EINVAL,
					 "%s weight [%zu, %zu]: row length %zu is not a multiple of %d",
					 wtype_name(type), m, k, k, QK_K);
		if (!bn_mul_size(n / QK_K, block_size(type), &want))
			return bn_seterr(err, BN_ERANGE, "%s weight [%zu, %zu]: too large",
					 wtype_name(type), m, k);
	}
	if (size < want)
		return bn_seterr(err, BN_EFORMAT, "%s weight [%zu, %zu]: %zu bytes of data, need %zu",
				 wtype_name(type), m, k, size, want);
	w->type = type;
	w->k = k;
	w->m = m;
	w->data = data;
	w->scale = type == KERN_W_I2S ? i2s_get_scale(data, n) : 0.0f;
	return 0;
}

#define KERN_ALIGN 64
static size_t align_up(size_t x)
{
	return (x + KERN_ALIGN - 1) & ~(size_t)(KERN_ALIGN - 1);
}

size_t kern_acts_size(enum kern_wtype type, size_t k, size_t n)
{
	if (type == KERN_W_I2S)
		return KERN_ALIGN + align_up(n * k) + align_up(n * sizeof(float)) + align_up(n * sizeof(int32_t));
	return KERN_ALIGN + align_up(n * (k / QK_K) * sizeof(struct q8k_block));
}

struct quant_task {
	const struct kern_set *set;
	enum kern_wtype type;
	size_t k, n, ldx;
	const float *x;
	int8_t *q;
	float *scale;
	int32_t *sum;
	struct q8k_block *q8k;
};

/* chunk j: token j */
static void quant_row(void *arg, unsigned j, unsigned n)
{
	struct quant_task *t = arg;
	(void)n;
	if (t->type == KERN_W_I2S)
		t->set->quantize_i8s(t->x + j * t->ldx, t->k, t->q + j * t->k, &t->scale[j], &t->sum[j]);
	else
		t->set->quantize_q8k(t->x + j * t->ldx, t->k, t->q8k + j * (t->k / QK_K));
}

int kern_quantize(struct kern_ctx *ctx, enum kern_wtype type, size_t k, const float *x, size_t n,
		  size_t ldx, void *scratch, size_t scratch_size, struct kern_acts *out, struct bn_err *err)
{
	if (k == 0 || (type == KERN_W_I2S ? k % I2S_BLOCK : k % QK_K))
		return bn_seterr(err, BN_EINVAL, "%s activations: bad row length %zu", wtype_name(type), k);
	size_t need = kern_acts_size(type, k, n);
	if (scratch_size < need)
		return bn_seterr(err, BN_EINVAL, "activation scratch of %zu bytes, need %zu", scratch_size, need);
	uint8_t *p = (uint8_t *)align_up((size_t)(uintptr_t)scratch);
	struct quant_task t = { ctx->set, type, k, n, ldx, x, NULL, NULL, NULL, NULL };
	memset(out, 0, sizeof *out);
	out->type = type;
	out->k = k;
	out->n = n;
	if (type == KERN_W_I2S) {
		t.q = (int8_t *)p;
		t.scale = (float *)(p + align_up(n * k));
		t.sum = (int32_t *)((uint8_t *)t.scale + align_up(n * sizeof(float)));
		out->i8s.q = t.q;
		out->i8s.scale = t.scale;
		out->i8s.sum = t.sum;
	} else {
		t.q8k = (struct q8k_block *)p;
		out->q8k = t.q8k;
	}
	if (n == 1)
		quant_row(&t, 0, 1);
	else
		kern_parallel_chunks(ctx, (unsigned)n, quant_row, &t);
	return 0;
}

struct mm_task {
	const struct kern_set *set;
	const struct kern_weight *w;
	const struct kern_acts *a;
	float *y;
	size_t ldy;
	size_t rows; /* per chunk, a multiple of 16 so that chunks never share an output line */
};

/* chunk i: rows [i·rows, (i+1)·rows) for every token */
static void mm_chunk(void *arg, unsigned i, unsigned n)
{
	struct mm_task *t = arg;
	size_t m = t->w->m, k = t->w->k;
	size_t r0 = t->rows * i, r1 = r0 + t->rows < m ? r0 + t->rows : m;
	(void)n;
	switch (t->w->type) {
	case KERN_W_I2S:
		t->set->gemm_i2s(k, (const uint8_t *)t->w->data + r0 * (k / 4), r1 - r0, t->w->scale, &t->a->i8s,
				 t->a->n, t->y + r0, t->ldy);
		break;
	case KERN_W_TQ1_0:
		t->set->gemm_tq1(k, (const struct tq1_block *)t->w->data + r0 * (k / QK_K), r1 - r0, t->a->q8k,
				 t->a->n, t->y + r0, t->ldy);
		break;
	case KERN_W_TQ2_0:
		t->set->gemm_tq2(k, (const struct tq2_block *)t->w->data + r0 * (k / QK_K), r1 - r0, t->a->q8k,
				 t->a->n, t->y + r0, t->ldy);
		break;
	}
}

int kern_matmul_q(struct kern_ctx *ctx, const struct kern_weight *w, const struct kern_acts *a, float *y,
		  size_t ldy, struct bn_err *err)
{
	bool a_i8s = a->type == KERN_W_I2S, w_i8s = w->type == KERN_W_I2S;
	if (a_i8s != w_i8s || a->k != w->k)
		return bn_seterr(err, BN_EINVAL,
				 "matmul: %s activations of length %zu do not fit %s weights of row length %zu",
				 wtype_name(a->type), a->k, wtype_name(w->type), w->k);
	if (a->n > 1 && ldy < w->m)
		return bn_seterr(err, BN_EINVAL, "matmul: output stride %zu < %zu rows", ldy, w->m);
	/* about four chunks per thread, so that a thread the OS is slow to run costs little */
	size_t want = (size_t)kern_pool_size(ctx->pool) * 4;
	size_t rows = (w->m + want - 1) / want;
	rows = (rows + 15) & ~(size_t)15;
	struct mm_task t = { ctx->set, w, a, y, ldy, rows };
	kern_parallel_chunks(ctx, (unsigned)((w->m + rows - 1) / rows), mm_chunk, &t);
	return 0;
}

int kern_matmul(struct kern_ctx *ctx, const struct kern_weight *w, const float *x, size_t n, float *y,
		void *scratch, size_t scratch_size, struct bn_err *err)
{
	struct kern_acts a;
	int rc = kern_quantize(ctx, w->type, w->k, x, n, w->k, scratch, scratch_size, &a, err);
	if (rc < 0)
		return rc;
	return kern_matmul_q(ctx, w, &a, y, w->m, err);
}

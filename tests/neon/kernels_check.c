/* A standalone checker for the AArch64 kernel sets, cross-compiled (static) and run under
 * qemu-aarch64 by tests/cli/kernels_neon_test.c.  For every compiled set the (emulated) CPU
 * supports it compares each kernel with the scalar reference bit for bit on model and odd shapes,
 * and the threaded driver with one thread; a set the CPU lacks must be refused by kern_open.
 * Prints "features: ...", then "ok <set>: <n> comparisons" or "refused <set>" per set; exit 0 when
 * everything agrees, 1 otherwise (with the first difference on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "kernels.h"

#define TEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "../test_rng.h"

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "kernels-check: out of memory\n");
		exit(1);
	}
	return p;
}

static long comparisons;

static int same(const float *got, const float *want, size_t n, const char *what, size_t k, size_t rows, size_t ntok)
{
	for (size_t i = 0; i < n; i++) {
		comparisons++;
		if (bn_f32_bits(got[i]) != bn_f32_bits(want[i])) {
			fprintf(stderr, "kernels-check: %s: k=%zu, %zu rows, %zu tokens: output %zu is %a, want %a\n", what,
				k, rows, ntok, i, (double)got[i], (double)want[i]);
			return -1;
		}
	}
	return 0;
}

static int check_i2s(const struct kern_set *s, size_t k, size_t rows, size_t n)
{
	uint8_t *w = xmalloc(rows * k / 4);
	float *x = xmalloc(n * k * sizeof *x), *y0 = xmalloc(n * rows * sizeof *y0), *y1 = xmalloc(n * rows * sizeof *y1);
	int8_t *q = xmalloc(n * k), *q1 = xmalloc(k);
	float *sc = xmalloc(n * sizeof *sc);
	int32_t *sum = xmalloc(n * sizeof *sum);
	int rc = 0;
	rand_bytes(w, rows * k / 4);
	rand_floats(x, n * k);
	for (size_t j = 0; j < n && rc == 0; j++) {
		quantize_i8s_ref(x + j * k, k, q + j * k, &sc[j], &sum[j]);
		float s1;
		int32_t m1;
		s->quantize_i8s(x + j * k, k, q1, &s1, &m1);
		comparisons++;
		if (memcmp(q1, q + j * k, k) || bn_f32_bits(s1) != bn_f32_bits(sc[j]) || m1 != sum[j]) {
			fprintf(stderr, "kernels-check: %s: k=%zu: differs from quantize_i8s_ref\n", s->quantize_i8s_name, k);
			rc = -1;
		}
	}
	if (rc == 0) {
		struct i8s_acts a = { q, sc, sum };
		gemm_i2s_q8_ref(k, w, rows, 0.3125f, &a, n, y0, rows);
		s->gemm_i2s(k, w, rows, 0.3125f, &a, n, y1, rows);
		rc = same(y1, y0, n * rows, s->gemm_i2s_name, k, rows, n);
	}
	free(w);
	free(x);
	free(y0);
	free(y1);
	free(q);
	free(q1);
	free(sc);
	free(sum);
	return rc;
}

static int check_tq(const struct kern_set *s, int which, size_t k, size_t rows, size_t n)
{
	size_t nb = k / QK_K, bsz = which == 1 ? sizeof(struct tq1_block) : sizeof(struct tq2_block);
	uint8_t *w = xmalloc(rows * nb * bsz);
	rand_bytes(w, rows * nb * bsz);
	for (size_t b = 0; b < rows * nb; b++) {
		uint16_t d = bn_f32_to_f16((float)(next() >> 44) / 1048576.0f + 0.001f);
		memcpy(w + b * bsz + bsz - 2, &d, 2);
	}
	float *x = xmalloc(n * k * sizeof *x), *y0 = xmalloc(n * rows * sizeof *y0), *y1 = xmalloc(n * rows * sizeof *y1);
	struct q8k_block *a = xmalloc(n * nb * sizeof *a);
	rand_floats(x, n * k);
	quantize_q8k_ref(x, n * k, a);
	const char *name;
	if (which == 1) {
		gemm_tq1_q8k_ref(k, (const struct tq1_block *)w, rows, a, n, y0, rows);
		s->gemm_tq1(k, (const struct tq1_block *)w, rows, a, n, y1, rows);
		name = s->gemm_tq1_name;
	} else {
		gemm_tq2_q8k_ref(k, (const struct tq2_block *)w, rows, a, n, y0, rows);
		s->gemm_tq2(k, (const struct tq2_block *)w, rows, a, n, y1, rows);
		name = s->gemm_tq2_name;
	}
	int rc = same(y1, y0, n * rows, name, k, rows, n);
	free(w);
	free(x);
	free(y0);
	free(y1);
	free(a);
	return rc;
}

/* kern_matmul with 2 threads against 1 thread, whole matrices. */
static int check_threads(const char *isa, enum kern_wtype type, size_t m, size_t k, size_t n)
{
	struct bn_err err = { 0 };
	struct kern_ctx *c1, *c2;
	struct kern_opts o1 = { isa, 1, false }, o2 = { isa, 2, true };
	if (kern_open(&c1, &o1, &err) < 0 || kern_open(&c2, &o2, &err) < 0) {
		fprintf(stderr, "kernels-check: %s\n", err.msg);
		return -1;
	}
	size_t bytes = type == KERN_W_I2S ? m * k / 4 + 32 : m * (k / QK_K) * (type == KERN_W_TQ1_0 ? 54 : 66);
	uint8_t *w = xmalloc(bytes);
	rand_bytes(w, bytes);
	if (type != KERN_W_I2S)
		for (size_t b = 0; b < m * (k / QK_K); b++) {
			uint16_t d = 0x3c00;
			memcpy(w + (b + 1) * (type == KERN_W_TQ1_0 ? 54 : 66) - 2, &d, 2);
		}
	else {
		float sc = 0.5f;
		memcpy(w + m * k / 4, &sc, 4);
	}
	struct kern_weight kw;
	float *x = xmalloc(n * k * sizeof *x), *y1 = xmalloc(n * m * sizeof *y1), *y2 = xmalloc(n * m * sizeof *y2);
	size_t ss = kern_acts_size(type, k, n);
	void *scratch = xmalloc(ss);
	rand_floats(x, n * k);
	int rc = kern_weight_init(&kw, type, k, m, w, bytes, &err);
	if (rc == 0)
		rc = kern_matmul(c1, &kw, x, n, y1, scratch, ss, &err);
	if (rc == 0)
		rc = kern_matmul(c2, &kw, x, n, y2, scratch, ss, &err);
	if (rc < 0)
		fprintf(stderr, "kernels-check: %s\n", err.msg);
	else
		rc = same(y2, y1, n * m, "2 threads vs 1", k, m, n);
	free(w);
	free(x);
	free(y1);
	free(y2);
	free(scratch);
	kern_close(c1);
	kern_close(c2);
	return rc;
}

static int check_set(const struct kern_set *s)
{
	struct bn_err err = { 0 };
	if (kern_self_test(s, 7, &err) < 0) {
		fprintf(stderr, "kernels-check: %s\n", err.msg);
		return -1;
	}
	/* model shapes (K of bitnet_b1_58-large, -3B, 2B-4T, Llama3-8B) on a few rows, then odd ones */
	static const size_t model_k[] = { 1536, 4096, 3200, 2560, 6912, 14336 };
	static const size_t batches[] = { 1, 3, 8, 9 };
	for (size_t i = 0; i < sizeof model_k / sizeof model_k[0]; i++)
		for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
			if (check_i2s(s, model_k[i], 5, batches[b]) < 0)
				return -1;
	if (check_i2s(s, 1536, 3, 64) < 0 || check_i2s(s, 2560, 2, 64) < 0)
		return -1;
	static const size_t odd_k[] = { 128, 384, 4224 };
	static const size_t odd_m[] = { 1, 2, 3, 4, 5, 7, 9 };
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 7; j++)
			if (check_i2s(s, odd_k[i], odd_m[j], 1 + j % 5) < 0)
				return -1;
	static const size_t tq_k[] = { 256, 1536, 2560, 6912 };
	for (int which = 1; which <= 2; which++)
		for (size_t i = 0; i < 4; i++)
			for (size_t b = 0; b < 3; b++)
				if (check_tq(s, which, tq_k[i], 1 + 2 * b, batches[b]) < 0)
					return -1;
	if (check_threads(s->name, KERN_W_I2S, 300, 1536, 1) < 0 || check_threads(s->name, KERN_W_I2S, 64, 512, 3) < 0 ||
	    check_threads(s->name, KERN_W_TQ2_0, 100, 512, 2) < 0 || check_threads(s->name, KERN_W_TQ1_0, 70, 768, 1) < 0)
		return -1;
	return 0;
}

int main(void)
{
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	char feats[128];
	printf("features: %s\n", kern_cpu_features_str(cpu.features, feats, sizeof feats));
	size_t n;
	const struct kern_set *const *sets = kern_sets(&n);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const struct kern_set *s = sets[i];
		if (s->needs == 0)
			continue; /* the scalar reference itself */
		if ((s->needs & cpu.features) != s->needs) {
			struct kern_ctx *ctx;
			struct bn_err err = { 0 };
			struct kern_opts o = { s->name, 1, true };
			if (kern_open(&ctx, &o, &err) != -BN_EUNSUPPORTED) {
				fprintf(stderr, "kernels-check: kern_open accepted %s on a CPU without it\n", s->name);
				rc = 1;
			} else {
				printf("refused %s: %s\n", s->name, err.msg);
			}
			continue;
		}
		comparisons = 0;
		if (check_set(s) < 0) {
			printf("FAILED %s\n", s->name);
			rc = 1;
		} else {
			printf("ok %s: %ld comparisons\n", s->name, comparisons);
		}
	}
	return rc;
}

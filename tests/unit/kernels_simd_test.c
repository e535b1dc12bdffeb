/* Every SIMD kernel set against the scalar references, bit for bit: I2_S GEMV/GEMM on the real
 * models' shapes (a slice of rows, the full K) and on many small odd shapes, TQ1_0/TQ2_0 the same
 * way, the activation quantizer, extreme values, and the threaded drivers on whole matrices.
 * Each set is forced in turn; a set this CPU lacks (or this build leaves out) is skipped with a
 * message. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "kernels.h"

#define TEST_RNG_SEED 0x853c49e6748fea9bull
#include "../test_rng.h"

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	cr_assert(p != NULL, "out of memory (%zu bytes)", n);
	return p;
}

/* The set called name, or skip the test saying why. */
static const struct kern_set *need_set(const char *name)
{
	const struct kern_set *s = kern_set_find(name);
	if (!s)
		cr_skip_test("the %s kernels are not in this build", name);
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	if ((s->needs & cpu.features) != s->needs)
		cr_skip_test("this CPU lacks what the %s kernels need", name);
	return s;
}

static void expect_same(const float *got, const float *want, size_t m, size_t n, size_t ld, const char *what,
			size_t k, size_t r0)
{
	for (size_t c = 0; c < n; c++)
		for (size_t r = 0; r < m; r++) {
			float g = got[c * ld + r], w = want[c * ld + r];
			if (bn_f32_bits(g) != bn_f32_bits(w))
				cr_assert(eq(u32, bn_f32_bits(g), bn_f32_bits(w)), "%s: k=%zu, %zu tokens: row %zu token %zu: got %a, want %a", what, k, n,
					       r0 + r, c, (double)g, (double)w);
		}
}

/* ---- I2_S --------------------------------------------------------------------------------- */

/* Rows [r0, r0+nr) of an m x k weight against n tokens, kernel vs reference. */
static void check_i2s_rows(const struct kern_set *s, const uint8_t *w, size_t k, size_t r0, size_t nr,
			   const struct i8s_acts *a, size_t n)
{
	float *y0 = xmalloc(n * nr * sizeof *y0), *y1 = xmalloc(n * nr * sizeof *y1);
	memset(y1, 0xff, n * nr * sizeof *y1);
	gemm_i2s_q8_ref(k, w + r0 * (k / 4), nr, 0.4375f, a, n, y0, nr);
	s->gemm_i2s(k, w + r0 * (k / 4), nr, 0.4375f, a, n, y1, nr);
	expect_same(y1, y0, nr, n, nr, s->gemm_i2s_name, k, r0);
	free(y0);
	free(y1);
}

struct acts_buf {
	int8_t *q;
	float *scale;
	int32_t *sum;
	struct i8s_acts a;
};

static void make_acts(const struct kern_set *s, size_t k, size_t n, struct acts_buf *b)
{
	float *x = xmalloc(n * k * sizeof *x);
	rand_floats(x, n * k);
	b->q = xmalloc(n * k);
	b->scale = xmalloc(n * sizeof *b->scale);
	b->sum = xmalloc(n * sizeof *b->sum);
	int8_t *q1 = xmalloc(k);
	for (size_t j = 0; j < n; j++) {
		quantize_i8s_ref(x + j * k, k, b->q + j * k, &b->scale[j], &b->sum[j]);
		float sc;
		int32_t sm;
		s->quantize_i8s(x + j * k, k, q1, &sc, &sm);
		cr_assert(eq(int, memcmp(q1, b->q + j * k, k), 0), "%s: k=%zu token %zu", s->quantize_i8s_name, k, j);
		cr_assert(eq(u32, bn_f32_bits(sc), bn_f32_bits(b->scale[j])), "%s: scale", s->quantize_i8s_name);
		cr_assert(eq(i32, sm, b->sum[j]), "%s: sum", s->quantize_i8s_name);
	}
	b->a = (struct i8s_acts){ b->q, b->scale, b->sum };
	free(q1);
	free(x);
}

static void free_acts(struct acts_buf *b)
{
	free(b->q);
	free(b->scale);
	free(b->sum);
}

static const size_t batches[] = { 1, 3, 8, 9, 64 };

/* [M, K] of bitnet_b1_58-large, -3B (K % 128 == 0 only), BitNet-b1.58-2B-4T and Llama3-8B. */
static const size_t i2s_shapes[][2] = {
	{ 1536, 4096 }, { 1536, 1536 }, { 4096, 1536 },                 /* large */
	{ 3200, 3200 }, { 8640, 3200 },                                  /* 3B ([3200, 8640] has K % 128 != 0) */
	{ 2560, 2560 }, { 640, 2560 }, { 6912, 2560 }, { 2560, 6912 }, /* 2B-4T */
	{ 4096, 4096 }, { 1024, 4096 }, { 14336, 4096 }, { 4096, 14336 }, /* Llama3-8B */
};

static void i2s_model_shapes(const char *isa)
{
	const struct kern_set *s = need_set(isa);
	for (size_t i = 0; i < sizeof i2s_shapes / sizeof i2s_shapes[0]; i++) {
		size_t m = i2s_shapes[i][0], k = i2s_shapes[i][1];
		uint8_t *w = xmalloc(m * k / 4 + 32);
		rand_bytes(w, m * k / 4 + 32);
		/* big shapes: every batch size on a slice of rows at each end (the full K); the
		 * threaded-driver test covers whole matrices */
		for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
			size_t n = batches[b];
			if (n == 64 && k > 4096)
				n = 33; /* keep the scalar reference's time in bounds */
			struct acts_buf ab;
			make_acts(s, k, n, &ab);
			check_i2s_rows(s, w, k, 0, 21, &ab.a, n);
			check_i2s_rows(s, w, k, m - 11, 11, &ab.a, n);
			free_acts(&ab);
		}
		free(w);
	}
}

static void i2s_odd_shapes(const char *isa)
{
	const struct kern_set *s = need_set(isa);
	static const size_t ks[] = { 128, 256, 384, 1152, 4224, 8320 };
	static const size_t ms[] = { 1, 2, 3, 4, 5, 7, 8, 9, 17, 31, 33 };
	static const size_t ns[] = { 1, 2, 3, 4, 5, 8, 9 };
	for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
		size_t k = ks[ki];
		uint8_t *w = xmalloc(33 * k / 4 + 32);
		rand_bytes(w, 33 * k / 4 + 32);
		for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
			struct acts_buf ab;
			make_acts(s, k, ns[ni], &ab);
			for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
				check_i2s_rows(s, w, k, 0, ms[mi], &ab.a, ns[ni]);
			free_acts(&ab);
		}
		free(w);
	}
}

/* Code 3 everywhere with activations at -128 and +127: the largest partial sums any input can
 * make (the reference's own AVX2 kernel would wrap its 16-bit sums here; ours must not). */
static void i2s_extremes(const char *isa)
{
	const struct kern_set *s = need_set(isa);
	static const size_t ks[] = { 4096, 14336 };
	for (size_t ki = 0; ki < 2; ki++) {
		size_t k = ks[ki], m = 5, n = 3;
		uint8_t *w = xmalloc(m * k / 4 + 32);
		memset(w, 0xff, m * k / 4 + 32);
		int8_t *q = xmalloc(n * k);
		for (size_t i = 0; i < n * k; i++)
			q[i] = i < k ? -128 : i < 2 * k ? 127 : (int8_t)(i % 2 ? 127 : -128);
		float sc[3] = { 1.0f, 2.0f, 0.5f };
		int32_t sum[3] = { -128 * (int32_t)k, 127 * (int32_t)k, 0 };
		struct i8s_acts a = { q, sc, sum };
		check_i2s_rows(s, w, k, 0, m, &a, n);
		int32_t raw = vecdot_i2s_q8_ref(k, w, q);
		cr_assert(eq(i32, raw, -3 * 128 * (int32_t)k));
		free(w);
		free(q);
	}
}

static void quantize_i8s_lengths(const char *isa)
{
	const struct kern_set *s = need_set(isa);
	static const size_t ks[] = { 1, 7, 8, 31, 32, 33, 127, 128, 1000, 4096, 4101, 14336 };
	for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
		struct acts_buf ab;
		make_acts(s, ks[i], 2, &ab); /* compares with the reference */
		free_acts(&ab);
	}
	/* all zeros: the 1e-5 floor */
	float z[40] = { 0 };
	int8_t q[40];
	float sc;
	int32_t sm;
	s->quantize_i8s(z, 40, q, &sc, &sm);
	cr_assert(eq(flt, sc, (float)(127 / 0.00001)));
	cr_assert(eq(i32, sm, 0));
}

/* ---- TQ1_0 / TQ2_0 ---------------------------------------------------------------------------- */

static void rand_tq(uint8_t *w, size_t nblocks, size_t bsz)
{
	rand_bytes(w, nblocks * bsz);
	for (size_t b = 0; b < nblocks; b++) {
		uint16_t d = bn_f32_to_f16((float)(next() >> 44) / 1048576.0f + 0.001f);
		memcpy(w + b * bsz + bsz - 2, &d, 2);
	}
}

static void check_tq(const struct kern_set *s, int which, size_t k, size_t rows, size_t n)
{
	size_t nb = k / QK_K, bsz = which == 1 ? sizeof(struct tq1_block) : sizeof(struct tq2_block);
	uint8_t *w = xmalloc(rows * nb * bsz);
	rand_tq(w, rows * nb, bsz);
	float *x = xmalloc(n * k * sizeof *x);
	rand_floats(x, n * k);
	struct q8k_block *a = xmalloc(n * nb * sizeof *a), *a1 = xmalloc(n * nb * sizeof *a1);
	quantize_q8k_ref(x, n * k, a);
	s->quantize_q8k(x, n * k, a1);
	cr_assert(eq(int, memcmp(a, a1, n * nb * sizeof *a), 0), "%s: quantize_q8k", s->name);
	float *y0 = xmalloc(n * rows * sizeof *y0), *y1 = xmalloc(n * rows * sizeof *y1);
	memset(y1, 0xff, n * rows * sizeof *y1);
	if (which == 1) {
		gemm_tq1_q8k_ref(k, (const struct tq1_block *)w, rows, a, n, y0, rows);
		s->gemm_tq1(k, (const struct tq1_block *)w, rows, a, n, y1, rows);
	} else {
		gemm_tq2_q8k_ref(k, (const struct tq2_block *)w, rows, a, n, y0, rows);
		s->gemm_tq2(k, (const struct tq2_block *)w, rows, a, n, y1, rows);
	}
	expect_same(y1, y0, rows, n, rows, which == 1 ? s->gemm_tq1_name : s->gemm_tq2_name, k, 0);
	free(w);
	free(x);
	free(a);
	free(a1);
	free(y0);
	free(y1);
}

/* K of the models whose rows are whole TQ blocks (K % 256 == 0; not bitnet_b1_58-3B) */
static const size_t tq_model_ks[] = { 1536, 4096, 2560, 6912, 14336 };

static void tq_shapes(const char *isa)
{
	const struct kern_set *s = need_set(isa);
	for (int which = 1; which <= 2; which++) {
		for (size_t i = 0; i < sizeof tq_model_ks / sizeof tq_model_ks[0]; i++)
			for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
				check_tq(s, which, tq_model_ks[i], 9, batches[b] == 64 ? 17 : batches[b]);
		static const size_t ks[] = { 256, 512, 768, 1280 };
		static const size_t ms[] = { 1, 2, 3, 5, 8, 13 };
		for (size_t ki = 0; ki < 4; ki++)
			for (size_t mi = 0; mi < 6; mi++)
				check_tq(s, which, ks[ki], ms[mi], 1 + mi % 4);
	}
}

/* ---- the threaded drivers on whole matrices ------------------------------------------------------ */

static void threaded_whole_matrices(const char *isa)
{
	need_set(isa);
	struct bn_err err = { 0 };
	struct kern_ctx *c1, *c3;
	struct kern_opts o1 = { isa, 1, false }, o3 = { isa, 3, true };
	cr_assert(eq(int, kern_open(&c1, &o1, &err), 0), "%s", err.msg);
	cr_assert(eq(int, kern_open(&c3, &o3, &err), 0), "%s", err.msg);
	cr_assert(eq(str, (char *)kern_selected(c1)->name, (char *)isa));
	static const size_t shapes[][3] = { { 4096, 1536, 1 }, { 1536, 4096, 3 }, { 2560, 6912, 1 }, { 100, 1024, 9 } };
	static const enum kern_wtype types[] = { KERN_W_I2S, KERN_W_TQ2_0, KERN_W_TQ1_0 };
	for (size_t t = 0; t < 3; t++)
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
			size_t m = shapes[i][0], k = shapes[i][1], n = shapes[i][2];
			size_t bytes = types[t] == KERN_W_I2S ? m * k / 4 + 32
							     : m * (k / QK_K) * (types[t] == KERN_W_TQ1_0 ? 54 : 66);
			uint8_t *w = xmalloc(bytes);
			if (types[t] == KERN_W_I2S) {
				rand_bytes(w, bytes);
				float sc = 0.0625f;
				memcpy(w + m * k / 4, &sc, 4);
			} else {
				rand_tq(w, m * (k / QK_K), types[t] == KERN_W_TQ1_0 ? 54 : 66);
			}
			struct kern_weight kw;
			cr_assert(eq(int, kern_weight_init(&kw, types[t], k, m, w, bytes, &err), 0), "%s", err.msg);
			float *x = xmalloc(n * k * sizeof *x), *y1 = xmalloc(n * m * sizeof *y1), *y3 = xmalloc(n * m * sizeof *y3);
			rand_floats(x, n * k);
			size_t ss = kern_acts_size(types[t], k, n);
			void *scratch = xmalloc(ss);
			cr_assert(eq(int, kern_matmul(c1, &kw, x, n, y1, scratch, ss, &err), 0), "%s", err.msg);
			memset(y3, 0xff, n * m * sizeof *y3);
			cr_assert(eq(int, kern_matmul(c3, &kw, x, n, y3, scratch, ss, &err), 0), "%s", err.msg);
			expect_same(y3, y1, m, n, m, "3 threads vs 1", k, 0);
			/* and rows spread over the matrix against the scalar reference */
			struct kern_acts a;
			cr_assert(eq(int, kern_quantize(c1, types[t], k, x, n, k, scratch, ss, &a, &err), 0));
			for (size_t r = 0; r < m; r += m / 7 + 1) {
				for (size_t j = 0; j < n; j++) {
					float want;
					if (types[t] == KERN_W_I2S)
						want = i2s_finish(vecdot_i2s_q8_ref(k, w + r * (k / 4), a.i8s.q + j * k),
								  a.i8s.sum[j], a.i8s.scale[j], 0.0625f);
					else if (types[t] == KERN_W_TQ1_0)
						want = vecdot_tq1_q8k_ref(k, (const struct tq1_block *)w + r * (k / QK_K),
									  a.q8k + j * (k / QK_K));
					else
						want = vecdot_tq2_q8k_ref(k, (const struct tq2_block *)w + r * (k / QK_K),
									  a.q8k + j * (k / QK_K));
					cr_assert(eq(u32, bn_f32_bits(y1[j * m + r]), bn_f32_bits(want)),
						  "type %zu [%zu,%zu] row %zu token %zu", t, m, k, r, j);
				}
			}
			free(scratch);
			free(w);
			free(x);
			free(y1);
			free(y3);
		}
	kern_close(c1);
	kern_close(c3);
}

#define SET_TESTS(isa)                                                         \
	Test(kernels_##isa, i2s_matches_ref_on_model_shapes, .timeout = 120) { i2s_model_shapes(#isa); } \
	Test(kernels_##isa, i2s_matches_ref_on_odd_shapes, .timeout = 120) { i2s_odd_shapes(#isa); }     \
	Test(kernels_##isa, i2s_sums_extremes_without_overflow) { i2s_extremes(#isa); }                \
	Test(kernels_##isa, quantizes_activations_like_ref) { quantize_i8s_lengths(#isa); }            \
	Test(kernels_##isa, tq_matches_ref_on_model_and_odd_shapes, .timeout = 120) { tq_shapes(#isa); } \
	Test(kernels_##isa, threaded_drivers_match_on_whole_matrices, .timeout = 120) { threaded_whole_matrices(#isa); }

Test(kernels_ref, threaded_drivers_match_on_whole_matrices, .timeout = 120) { threaded_whole_matrices("ref"); }
SET_TESTS(avx2)
SET_TESTS(avx512)
SET_TESTS(avx512vnni)

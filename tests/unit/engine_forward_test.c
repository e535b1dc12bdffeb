/* The engine's logits against the naive reference forward pass (tests/lib/engine_ref.c) on the
 * test vectors, small synthetic models of every architecture and a 2-layer model with
 * bitnet_b1_58-large's real shapes, for every weight type: f32, i2_s, tq1_0, tq2_0, with f16 and
 * Q8_0 embeddings (and context shifts, engine_shift, against fresh runs of the kept tokens).
 * The reference reads the f32 GGUF and applies the roundings the quantized file implies (int8 or
 * Q8_K activations, f16 block scales, f16/Q8_0 embeddings, the f16 KV cache), i.e. it computes
 * what bitnet.cpp computes.
 *
 * Tolerances, relative to the largest reference logit, per position.  The two computations differ
 * in float summation order only (the reference sums in double), which keeps a typical position
 * within 1e-5 of it: the median position must be within TOL_TYP = 1e-4.  But a rounding step can
 * then land on the other side: one activation within an ulp of a .5 boundary of its int8/Q8_K
 * grid (or of the f16 grid of the KV cache) rounds the other way, which moves that element by a
 * whole quantization step (~1/127 of the row's largest value) and every output it feeds.  That
 * happens at a few positions per run; measured effects reach 1.1% of the largest logit with int8
 * or Q8_K activations and 0.01% through the f16 KV cache alone, so every position must be within
 * TOL_Q = 3e-2 (quantized paths) or TOL_F32 = 2e-3 (float weights).  F16 and BF16 projections
 * round every activation to 11 (8) bits, so there boundary cases are common rather than rare
 * and the typical position moves by a few 1e-4 (measured 2.3e-4 on the bitnet test vector, whose
 * sub-norms rescale small, partly cancelling sums): TOL_TYP_F16 = 1e-3.
 * Greedy decoding: the quantized paths must pick the reference's token wherever the reference's
 * best token leads the second by more than such a jump. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_util.h"
#include "engine.h"
#include "lut/lut.h"
#include "engine_util.h"
#include "gguf.h"
#include "test_util.h"

#define TOL_TYP 1e-4
#define TOL_TYP_F16 1e-3
#define TOL_F32 2e-3
#define TOL_Q 3e-2

static const int32_t tokens[] = { 1, 5, 260, 42, 7, 99, 280, 3, 11, 200, 17, 259, 64, 150, 8, 270 };
#define N_TOK (sizeof tokens / sizeof *tokens)

static struct engine *open_engine(const char *path, uint32_t n_batch, unsigned threads)
{
	struct engine *e = NULL;
	struct bn_err err = { 0 };
	struct engine_opts o = { .threads = threads, .n_ctx = 64, .n_batch = n_batch, .all_logits = true };
	cr_assert(eq(int, engine_open(&e, path, &o, &err), 0), "%s", err.msg);
	return e;
}

/* Logits of every token of tokens[0..n) from the engine (batches of n_batch). */
static float *engine_all(const char *path, const int32_t *tok, size_t n, uint32_t n_batch, unsigned threads)
{
	struct engine *e = open_engine(path, n_batch, threads);
	const uint32_t nv = engine_model(e)->cfg.n_vocab;
	float *out = malloc(n * nv * sizeof *out);
	struct bn_err err = { 0 };
	for (size_t i = 0; i < n; i += n_batch) {
		size_t m = n - i < n_batch ? n - i : n_batch;
		cr_assert(eq(int, engine_decode(e, tok + i, m, &err), 0), "%s", err.msg);
		for (size_t j = 0; j < m; j++)
			memcpy(out + (i + j) * nv, engine_logits(e, j), nv * sizeof *out);
	}
	engine_close(e);
	return out;
}

static float *reference(const char *f32, const struct ref_opts *o, const int32_t *tok, size_t n, uint32_t *nv)
{
	struct ref_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, ref_open(&m, f32, &err), 0), "%s", err.msg);
	*nv = ref_n_vocab(m);
	float *out = malloc(n * *nv * sizeof *out);
	cr_assert(eq(int, ref_forward(m, o, tok, n, out, &err), 0), "%s", err.msg);
	ref_close(m);
	return out;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Per position p, e_p = max |engine - reference| / max |reference logit|: the median of e_p must
 * be within TOL_TYP and every e_p within tol_max. */
static void compare_typ(const char *what, const char *model, const char *f32, const struct ref_opts *o,
			double tol_typ, double tol_max, const int32_t *tok, size_t n)
{
	uint32_t nv;
	float *ref = reference(f32, o, tok, n, &nv);
	float *got = engine_all(model, tok, n, 64, 2);
	double scale = eu_max_abs(ref, n * nv), e[64];
	cr_assert(scale > 0.1, "%s: degenerate logits", what);
	cr_assert(le(sz, n, 64));
	for (size_t p = 0; p < n; p++)
		e[p] = eu_max_abs_diff(got + p * nv, ref + p * nv, nv) / scale;
	qsort(e, n, sizeof *e, cmp_dbl);
	cr_log_info("%s: |engine - reference| / max|logit| (%.3g): median %.2g, max %.2g (tolerances %.0e, %.0e)", what,
		    scale, e[n / 2], e[n - 1], tol_typ, tol_max);
	cr_assert(le(dbl, e[n / 2], tol_typ), "%s: median relative difference %g", what, e[n / 2]);
	cr_assert(le(dbl, e[n - 1], tol_max), "%s: largest relative difference %g", what, e[n - 1]);
	free(ref);
	free(got);
}

static void compare(const char *what, const char *model, const char *f32, const struct ref_opts *o, double tol_max,
		    const int32_t *tok, size_t n)
{
	compare_typ(what, model, f32, o, TOL_TYP, tol_max, tok, n);
}

static char *quantized(const char *f32, const char *name, uint32_t type, uint32_t embd)
{
	char *out = eu_cache_path(name);
	struct bn_err err = { 0 };
	if (!bn_file_exists(out))
		cr_assert(eq(int, eu_quantize(f32, out, type, embd, &err), 0), "%s", err.msg);
	return out;
}

static const struct ref_opts REF_F32 = { .act = REF_ACT_FLOAT, .embd_type = GGUF_TYPE_F32, .kv_f16 = true };
static const struct ref_opts REF_I2S = { .act = REF_ACT_I8S, .embd_type = GGUF_TYPE_F16, .kv_f16 = true };
static const struct ref_opts REF_TQ = { .act = REF_ACT_Q8K, .tq_scale_f16 = true, .embd_type = GGUF_TYPE_F16, .kv_f16 = true };
/* F16 / BF16 projections: ggml rounds the activations to the weights' type too */
static const struct ref_opts REF_F16 = { .act = REF_ACT_F16, .tq_scale_f16 = true, .embd_type = GGUF_TYPE_F32, .kv_f16 = true };
static const struct ref_opts REF_BF16 = { .act = REF_ACT_BF16, .w_bf16 = true, .embd_type = GGUF_TYPE_F32, .kv_f16 = true };

Test(engine_forward, bitnet_test_vector_f32_matches_the_reference)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	compare("tv-f32 f32", f32, f32, &REF_F32, TOL_F32, tokens, N_TOK);
	free(f32);
}

Test(engine_forward, bitnet_test_vector_i2_s_is_the_reference_file_and_matches_int8_arithmetic)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *q = quantized(f32, "tv-f32.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	/* llama-quantize's output with the 28 padding bytes zeroed (convert-quantize.md §13.2) */
	char hex[65];
	cr_assert(eq(int, tu_sha256_file(q, hex), 0));
	cr_assert(eq(str, hex, "6b5de4774bb030b578b3f750f6a7dd4fc24fce17ce69bf58c65e6183acfb6925"));
	compare("tv-f32 i2_s", q, f32, &REF_I2S, TOL_Q, tokens, N_TOK);
	free(q);
	free(f32);
}

Test(engine_forward, bitnet_test_vector_tq1_0_and_tq2_0_match_q8_k_arithmetic)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *q1 = quantized(f32, "tv-f32.tq1_0.gguf", GGUF_TYPE_TQ1_0, GGUF_TYPE_F16);
	char *q2 = quantized(f32, "tv-f32.tq2_0.gguf", GGUF_TYPE_TQ2_0, GGUF_TYPE_F16);
	compare("tv-f32 tq1_0", q1, f32, &REF_TQ, TOL_Q, tokens, N_TOK);
	compare("tv-f32 tq2_0", q2, f32, &REF_TQ, TOL_Q, tokens, N_TOK);
	free(q1);
	free(q2);
	free(f32);
}

Test(engine_forward, f16_and_bf16_projections_match_with_their_roundings)
{
	char *f32 = eu_fixture("tv-llama.offset-order.f32.gguf");
	char *h = eu_cache_path("tv-llama.f16proj.gguf"), *b = eu_cache_path("tv-llama.bf16proj.gguf");
	struct bn_err err = { 0 };
	cr_assert(eq(int, eu_retype(f32, h, GGUF_TYPE_F16, &err), 0), "%s", err.msg);
	cr_assert(eq(int, eu_retype(f32, b, GGUF_TYPE_BF16, &err), 0), "%s", err.msg);
	compare_typ("tv-llama f16 projections", h, f32, &REF_F16, TOL_TYP_F16, TOL_F32, tokens, N_TOK);
	compare_typ("tv-llama bf16 projections", b, f32, &REF_BF16, TOL_TYP_F16, TOL_F32, tokens, N_TOK);
	/* gguf-convert --outtype f16 (2-D weights F16, token_embd F32) */
	char *conv = eu_converted(NULL, "tv-f32", 0, NULL, "f16");
	char *tv = eu_fixture("tv-f32.f32.gguf");
	cr_assert(conv != NULL);
	compare_typ("tv-f32 gguf-convert f16", conv, tv, &REF_F16, TOL_TYP_F16, TOL_F32, tokens, N_TOK);
	free(conv), free(tv), free(h), free(b), free(f32);
}

Test(engine_forward, llama_test_vector_matches_with_norm_rope_gqa_and_output_head)
{
	char *f32 = eu_fixture("tv-llama.offset-order.f32.gguf");
	char *q = quantized(f32, "tv-llama.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	char hex[65];
	cr_assert(eq(int, tu_sha256_file(q, hex), 0));
	cr_assert(eq(str, hex, "f4d2461fa54a30ae331f958b75fad8972eb08ea58f224e29b424fffd6711ec9b"));
	compare("tv-llama f32", f32, f32, &REF_F32, TOL_F32, tokens, N_TOK);
	compare("tv-llama i2_s", q, f32, &REF_I2S, TOL_Q, tokens, N_TOK);
	free(q);
	free(f32);
}

Test(engine_forward, relu2_gqa_model_with_a_q8_0_output_head)
{
	/* bitnet-b1.58 (ReLU^2), 6/2 heads of 64, embedding 384: the output head is Q8_0 because
	 * 384 is not a multiple of 256 (convert-quantize.md §7.3) */
	char *f32 = eu_cache_path("relu2.f32.gguf");
	struct eu_spec s = { .arch = "bitnet-b1.58", .n_layer = 3, .n_embd = 384, .n_ff = 768, .n_head = 6,
			     .n_head_kv = 2, .n_vocab = 400, .n_ctx = 256, .rope_base = 500000.0f, .seed = 7 };
	struct bn_err err = { 0 };
	cr_assert(eq(int, eu_synth(f32, &s, &err), 0), "%s", err.msg);
	char *q = quantized(f32, "relu2.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_Q8_0);
	struct ref_opts o = REF_I2S;
	o.embd_type = GGUF_TYPE_Q8_0;
	compare("relu2 f32", f32, f32, &REF_F32, TOL_F32, tokens, N_TOK);
	compare("relu2 i2_s q8_0", q, f32, &o, TOL_Q, tokens, N_TOK);
	free(q);
	free(f32);
}

Test(engine_forward, mainline_bitnet_spelling_of_relu2_and_an_untied_llama)
{
	char *a = eu_cache_path("mainline-relu2.f32.gguf"), *b = eu_cache_path("llama-untied.f32.gguf");
	struct eu_spec s = { .arch = "bitnet", .n_layer = 2, .n_embd = 256, .n_ff = 512, .n_head = 4, .n_head_kv = 4,
			     .n_vocab = 300, .n_ctx = 128, .rope_base = 10000.0f, .hidden_act = "relu2", .seed = 3 };
	struct bn_err err = { 0 };
	cr_assert(eq(int, eu_synth(a, &s, &err), 0), "%s", err.msg);
	s.arch = "llama", s.hidden_act = NULL, s.output = true, s.n_head_kv = 1, s.seed = 4;
	cr_assert(eq(int, eu_synth(b, &s, &err), 0), "%s", err.msg);
	compare("bitnet + hidden_activation relu2", a, a, &REF_F32, TOL_F32, tokens, N_TOK);
	compare("llama 4/1 heads", b, b, &REF_F32, TOL_F32, tokens, N_TOK);
	char *q = quantized(b, "llama-untied.tq2_0.gguf", GGUF_TYPE_TQ2_0, GGUF_TYPE_F16);
	compare("llama tq2_0", q, b, &REF_TQ, TOL_Q, tokens, N_TOK);
	free(q);
	free(a);
	free(b);
}

Test(engine_forward, batches_and_single_tokens_give_identical_logits)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *q = quantized(f32, "tv-f32.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	const char *files[] = { f32, q };
	for (int f = 0; f < 2; f++) {
		float *one = engine_all(files[f], tokens, N_TOK, 1, 1);
		float *three = engine_all(files[f], tokens, N_TOK, 3, 2);
		float *all = engine_all(files[f], tokens, N_TOK, 64, 2);
		const size_t n = N_TOK * 300;
		cr_assert(le(dbl, eu_max_abs_diff(one, all, n), 1e-5 * eu_max_abs(all, n)), "%s", files[f]);
		cr_assert(le(dbl, eu_max_abs_diff(three, all, n), 1e-5 * eu_max_abs(all, n)), "%s", files[f]);
		free(one);
		free(three);
		free(all);
	}
	free(q);
	free(f32);
}

/* Teacher-forced greedy agreement: at every position where the reference's margin between its
 * best and second-best token exceeds `margin`, all the given logits pick the reference's best. */
static size_t agree(const float *ref, const float *const *got, size_t n_got, size_t n, uint32_t nv, double margin)
{
	size_t checked = 0;
	for (size_t p = 0; p < n; p++) {
		const float *r = ref + p * nv;
		uint32_t b1 = 0, b2 = 1;
		if (r[1] > r[0])
			b1 = 1, b2 = 0;
		for (uint32_t i = 2; i < nv; i++) {
			if (r[i] > r[b1])
				b2 = b1, b1 = i;
			else if (r[i] > r[b2])
				b2 = i;
		}
		if (r[b1] - r[b2] <= margin)
			continue;
		checked++;
		for (size_t g = 0; g < n_got; g++) {
			const float *x = got[g] + p * nv;
			uint32_t a = 0;
			for (uint32_t i = 1; i < nv; i++)
				if (x[i] > x[a])
					a = i;
			cr_assert(eq(u32, a, b1), "position %zu: logits %zu pick %u, the reference %u", p, g, a, b1);
		}
	}
	return checked;
}

Test(engine_forward, quantized_paths_pick_the_same_greedy_tokens)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *i2 = quantized(f32, "tv-f32.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	char *t1 = quantized(f32, "tv-f32.tq1_0.gguf", GGUF_TYPE_TQ1_0, GGUF_TYPE_F16);
	char *t2 = quantized(f32, "tv-f32.tq2_0.gguf", GGUF_TYPE_TQ2_0, GGUF_TYPE_F16);
	/* a greedy continuation of the f32 model, 48 tokens */
	int32_t seq[64];
	memcpy(seq, tokens, 4 * sizeof *seq);
	size_t n = 4;
	struct engine *e = open_engine(f32, 64, 1);
	struct bn_err err = { 0 };
	cr_assert(eq(int, engine_decode(e, seq, n, &err), 0));
	const uint32_t nv = engine_model(e)->cfg.n_vocab;
	while (n < 52) {
		const float *l = engine_logits(e, 0);
		int32_t best = 0;
		for (uint32_t i = 1; i < nv; i++)
			if (l[i] > l[best])
				best = (int32_t)i;
		seq[n++] = best;
		cr_assert(eq(int, engine_decode(e, &seq[n - 1], 1, &err), 0));
	}
	engine_close(e);
	uint32_t rnv;
	float *ref = reference(f32, &REF_F32, seq, n, &rnv);
	float *a = engine_all(i2, seq, n, 64, 2), *b = engine_all(t1, seq, n, 64, 2), *c = engine_all(t2, seq, n, 64, 2);
	const float *got[] = { a, b, c };
	double margin = 2 * TOL_Q * eu_max_abs(ref, n * nv);
	size_t checked = agree(ref, got, 3, n, nv, margin);
	cr_log_info("greedy agreement checked at %zu of %zu positions", checked, n);
	cr_assert(ge(sz, checked, n / 2), "too few positions with a clear best token (%zu)", checked);
	free(ref), free(a), free(b), free(c);
	free(i2), free(t1), free(t2), free(f32);
}

Test(engine_forward, real_shapes_two_layers_of_bitnet_b1_58_large_through_the_pipeline_tools)
{
	/* mkmodel's bitnet_b1_58-large (hidden 1536, FFN 4096, 16 heads of 96, vocab 32002) cut to 2
	 * layers, converted by gguf-convert as the pipeline does: f32 (weight_quant'ed ternary), and
	 * straight to i2_s and tq2_0 (byte-identical to f32 + i2s-quantize) */
	char *dir = tu_mkdtemp("engine_large2"); /* ~0.9 GB, removed at the end: not for a CI cache */
	char *f32 = eu_converted(dir, "bitnet_b1_58-large", 2, NULL, "f32");
	char *i2 = eu_converted(dir, "bitnet_b1_58-large", 2, NULL, "i2_s");
	char *t2 = eu_converted(dir, "bitnet_b1_58-large", 2, NULL, "tq2_0");
	cr_assert(f32 && i2 && t2, "mkmodel or gguf-convert failed");
	const size_t n = 6;
	compare("large2 f32", f32, f32, &REF_F32, TOL_F32, tokens, n);
	compare("large2 i2_s", i2, f32, &REF_I2S, TOL_Q, tokens, n);
	compare("large2 tq2_0", t2, f32, &REF_TQ, TOL_Q, tokens, n);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	struct tu_run r = tu_sh(cmd);
	tu_run_free(&r);
	free(i2), free(t2), free(f32), free(dir);
}

/* The TL2 kernels generated for the test vector's tiles, linked into the test binary on x86_64
 * (mk/engine.mk); NULL elsewhere. */
extern const struct lut_kernels lut_generated_kernels __attribute__((weak));

Test(engine_forward, tl2_file_of_the_reference_converter_matches_int8_arithmetic)
{
	if (!&lut_generated_kernels)
		cr_skip("no TL2 kernels in this test binary (TL2 is x86_64 only)");
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *tl2 = eu_fixture("tv-f32.tl2-quant-embd.gguf");
	char *i2 = quantized(f32, "tv-f32.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	struct engine *e = NULL;
	struct bn_err err = { 0 };
	struct engine_opts o = { .threads = 2, .n_ctx = 64, .all_logits = true, .lut = &lut_generated_kernels };
	cr_assert(eq(int, engine_open(&e, tl2, &o, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_decode(e, tokens, N_TOK, &err), 0), "%s", err.msg);
	uint32_t nv;
	/* TL2's activation scale 127/max|x| (f32) is I2_S's (lut-kernels.md §3.1) */
	float *ref = reference(f32, &REF_I2S, tokens, N_TOK, &nv);
	float *i2s = engine_all(i2, tokens, N_TOK, 64, 2);
	double scale = eu_max_abs(ref, N_TOK * nv), worst = 0, worst_i2s = 0;
	for (size_t p = 0; p < N_TOK; p++) {
		double d = eu_max_abs_diff(engine_logits(e, p), ref + p * nv, nv) / scale;
		double d2 = eu_max_abs_diff(engine_logits(e, p), i2s + p * nv, nv) / scale;
		worst = d > worst ? d : worst;
		worst_i2s = d2 > worst_i2s ? d2 : worst_i2s;
	}
	cr_log_info("tv-f32 tl2: max relative difference %.2g to the reference, %.2g to i2_s", worst, worst_i2s);
	cr_assert(le(dbl, worst, TOL_Q));
	cr_assert(le(dbl, worst_i2s, TOL_Q));
	engine_close(e);
	free(ref), free(i2s), free(i2), free(tl2), free(f32);
}

Test(engine_forward, tl1_file_of_the_reference_converter_matches_i2_s_under_qemu_aarch64)
{
	/* tests/engine/tl1_check.c, cross-compiled with the NEON kernels and the TL1 kernels generated
	 * for the test vector's tiles (mk/engine.mk) */
	struct tu_run v = tu_sh("qemu-aarch64 --version");
	int have = v.status == 0;
	tu_run_free(&v);
	if (!have)
		cr_skip("qemu-aarch64 is not installed");
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *tl1 = eu_fixture("tv-f32.tl1-quant-embd.gguf");
	char *i2 = quantized(f32, "tv-f32.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	char *check = tu_bin("../aarch64/engine-tl1-check");
	const char *argv[] = { "qemu-aarch64", check, tl1, i2, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	cr_log_info("%s", r.out);
	cr_assert(eq(int, r.status, 0), "%s%s", r.out, r.err);
	tu_run_free(&r);
	free(check), free(i2), free(tl1), free(f32);
}

Test(engine_forward, stops_at_a_full_context_and_rejects_bad_token_ids)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	struct engine *e = NULL;
	struct bn_err err = { 0 };
	struct engine_opts o = { .threads = 1, .n_ctx = 8 };
	cr_assert(eq(int, engine_open(&e, f32, &o, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_decode(e, tokens, 8, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_decode(e, tokens, 1, &err), -BN_ERANGE));
	cr_assert(strstr(err.msg, "context is full: 8 of 8 positions used, 1 more needed") != NULL, "%s", err.msg);
	engine_reset(e);
	const int32_t bad = 300;
	cr_assert(eq(int, engine_decode(e, &bad, 1, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "token id 300 is outside the vocabulary (300 tokens)") != NULL, "%s", err.msg);
	cr_assert(eq(int, engine_decode(e, tokens, 3, &err), 0), "the engine works after a reset: %s", err.msg);
	engine_close(e);
	free(f32);
}

/* ---- context shift ------------------------------------------------------------------------------ */

/* engine_shift against a fresh engine fed only the tokens the shifts kept, from position 0.  In a
 * one-layer model the cached K and V of a token depend on the token and its position alone (in a
 * deeper model a later layer's would depend, through attention, on the discarded tokens: a context
 * shift accepts that, so only one layer can be compared exactly).  So the shifted cache must hold
 * what the fresh engine computes, except that each moved K was rounded to f16 once more and rotated
 * in two steps (theta(p) then theta(-d), each by repeated f32 products) instead of one.  Measured
 * (max |diff| / max |logit| of the next token): f32 1.4e-4 .. 3.4e-4 for both RoPE styles, within
 * TOL_SHIFT = 2e-3; i2_s 8e-3 .. 1.2e-2, because those ~1e-4 differences of the attention output
 * flip a few of its int8 roundings (one step = 1/127 of the row's largest value, carried on by
 * the int8 FFN): the effect compare() allows for with TOL_Q = 3e-2.  A rotation off by one
 * position gives 0.12 .. 0.16 on every one of these models and paths.
 * Scenario: a full context of n_ctx tokens, a shift of (n_ctx - n_keep) / 2 as llama-cli computes
 * it, refill to full, a second shift (so that entries are moved and rotated twice), then one more
 * token whose logits are compared. */
#define TOL_SHIFT 2e-3

static int32_t shift_token(size_t i)
{
	return (int32_t)(3 + (i * 97 + 13) % 290);
}

static double shift_vs_fresh(const char *path, uint32_t n_ctx, uint32_t n_keep)
{
	struct bn_err err = { 0 };
	struct engine_opts o = { .threads = 2, .n_ctx = n_ctx, .n_batch = 16 };
	struct engine *a = NULL, *b = NULL;
	cr_assert(eq(int, engine_open(&a, path, &o, &err), 0), "%s", err.msg);
	int32_t *kept = malloc(n_ctx * sizeof *kept); /* mirror of what a's cache holds */
	size_t n_kept = 0, next = 0;
	for (int round = 0; round < 2; round++) {
		while (n_kept < n_ctx) {
			kept[n_kept] = shift_token(next++);
			cr_assert(eq(int, engine_decode(a, kept + n_kept, 1, &err), 0), "%s", err.msg);
			n_kept++;
		}
		const uint32_t d = (n_ctx - n_keep) / 2;
		cr_assert(eq(int, engine_shift(a, n_keep, d, &err), 0), "%s", err.msg);
		cr_assert(eq(u32, engine_n_past(a), n_ctx - d));
		memmove(kept + n_keep, kept + n_keep + d, (n_kept - n_keep - d) * sizeof *kept);
		n_kept -= d;
	}
	const int32_t last = shift_token(next);
	cr_assert(eq(int, engine_decode(a, &last, 1, &err), 0), "%s", err.msg);

	cr_assert(eq(int, engine_open(&b, path, &o, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_decode(b, kept, n_kept, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_decode(b, &last, 1, &err), 0), "%s", err.msg);
	cr_assert(eq(u32, engine_n_past(a), engine_n_past(b)));
	const size_t nv = engine_model(a)->cfg.n_vocab;
	const double scale = eu_max_abs(engine_logits(b, 0), nv);
	cr_assert(scale > 0.1, "degenerate logits");
	const double rel = eu_max_abs_diff(engine_logits(a, 0), engine_logits(b, 0), nv) / scale;
	engine_close(a);
	engine_close(b);
	free(kept);
	return rel;
}

static void check_shift(const char *what, const char *path, double tol)
{
	/* 256 positions: large enough for the threads to share the shift */
	const uint32_t keeps[] = { 0, 5, 5 }, ctx[] = { 64, 64, 256 };
	for (size_t i = 0; i < BN_ARRAY_LEN(keeps); i++) {
		double rel = shift_vs_fresh(path, ctx[i], keeps[i]);
		cr_log_info("%s, n_ctx %u, n_keep %u: |shifted - fresh| / max|logit| = %.2g (tolerance %.0e)", what,
			    ctx[i], keeps[i], rel, tol);
		cr_assert(le(dbl, rel, tol), "%s, n_ctx %u, n_keep %u: relative difference %g", what, ctx[i], keeps[i],
			  rel);
	}
}

Test(engine_shift, shifted_cache_matches_a_fresh_run_of_the_kept_tokens_neox_and_norm_rope_with_gqa)
{
	struct eu_spec s = { .arch = "bitnet", .n_layer = 1, .n_embd = 256, .n_ff = 512, .n_head = 4, .n_head_kv = 2,
			     .n_vocab = 300, .n_ctx = 128, .rope_base = 10000.0f, .seed = 11 };
	struct bn_err err = { 0 };
	char *neox = eu_cache_path("shift-neox.f32.gguf"), *norm = eu_cache_path("shift-norm.f32.gguf");
	cr_assert(eq(int, eu_synth(neox, &s, &err), 0), "%s", err.msg);
	s.arch = "llama", s.output = true, s.n_head = 8, s.n_head_kv = 2, s.rope_base = 500000.0f, s.seed = 12;
	cr_assert(eq(int, eu_synth(norm, &s, &err), 0), "%s", err.msg);
	char *neox_q = quantized(neox, "shift-neox.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	char *norm_q = quantized(norm, "shift-norm.i2_s.gguf", GGUF_TYPE_I2_S, GGUF_TYPE_F16);
	check_shift("bitnet (NEOX rope, 4/2 heads) f32", neox, TOL_SHIFT);
	check_shift("bitnet (NEOX rope, 4/2 heads) i2_s", neox_q, TOL_Q);
	check_shift("llama (NORM rope, 8/2 heads) f32", norm, TOL_SHIFT);
	check_shift("llama (NORM rope, 8/2 heads) i2_s", norm_q, TOL_Q);
	free(neox), free(norm), free(neox_q), free(norm_q);
}

Test(engine_shift, rejects_bad_ranges_and_leaves_the_cache_alone)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	struct engine *e = NULL;
	struct bn_err err = { 0 };
	struct engine_opts o = { .threads = 1, .n_ctx = 16 };
	cr_assert(eq(int, engine_open(&e, f32, &o, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_decode(e, tokens, 10, &err), 0), "%s", err.msg);
	cr_assert(eq(int, engine_shift(e, 4, 0, &err), -BN_EINVAL));
	cr_assert(eq(int, engine_shift(e, 4, 7, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "cannot keep 4 and discard 7 of the 10 positions used") != NULL, "%s", err.msg);
	cr_assert(eq(int, engine_shift(e, 11, 1, &err), -BN_EINVAL));
	cr_assert(eq(int, engine_shift(e, UINT32_MAX, UINT32_MAX, &err), -BN_EINVAL));
	cr_assert(eq(u32, engine_n_past(e), 10));
	/* the edges: discard everything after n_keep, then everything */
	cr_assert(eq(int, engine_shift(e, 4, 6, &err), 0), "%s", err.msg);
	cr_assert(eq(u32, engine_n_past(e), 4));
	cr_assert(eq(int, engine_shift(e, 0, 4, &err), 0), "%s", err.msg);
	cr_assert(eq(u32, engine_n_past(e), 0));
	cr_assert(eq(int, engine_decode(e, tokens, 16, &err), 0), "the whole context is usable again: %s", err.msg);
	engine_close(e);
	free(f32);
}

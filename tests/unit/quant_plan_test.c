/* Unit tests of tools/common/quant_plan.{c,h}: the §7.3 type rule, the §7.2 metadata rule, the
 * statistics and ternary check, the fast encoders against the kernels/ references byte for byte,
 * decoding, and the replay of llama-quantize's stale I2_S padding against a literal scratch
 * buffer. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_util.h"
#include "gguf.h"
#include "i2s.h"
#include "q8_0.h"
#include "quant_plan.h"
#include "test_util.h"
#include "tq.h"

static const struct qp_opts I2S = { QP_I2_S, QP_TYPE_RULE, QP_TYPE_RULE };

static uint32_t plan_type(const struct qp_opts *o, const struct qp_model *m, const char *name,
			  uint32_t in_type, uint32_t n_dims, uint64_t ne0, uint64_t ne1)
{
	uint64_t ne[4] = { ne0, ne1, 1, 1 };
	struct qp_tensor t;
	struct bn_err err = { 0 };
	cr_assert(eq(int, qp_plan_tensor(o, m, name, in_type, n_dims, ne, &t, &err), 0), "%s: %s",
		  name, err.msg);
	cr_assert(eq(int, t.convert, t.out_type != in_type));
	return t.out_type;
}

static void plan_fails(const struct qp_opts *o, const struct qp_model *m, const char *name,
		       uint32_t in_type, uint32_t n_dims, const uint64_t *ne, const char *msg)
{
	struct qp_tensor t;
	struct bn_err err = { 0 };
	cr_assert(lt(int, qp_plan_tensor(o, m, name, in_type, n_dims, ne, &t, &err), 0), "%s", name);
	cr_assert(strstr(err.msg, msg) != NULL, "%s: '%s' lacks '%s'", name, err.msg, msg);
	cr_assert(strstr(err.msg, name) == err.msg, "%s: '%s' does not start with the name", name,
		  err.msg);
	cr_assert_null(strchr(err.msg, '\n'));
}

/* ---- targets -------------------------------------------------------------------------------- */

Test(quant_plan, parses_target_names_in_any_case_and_ftype_numbers)
{
	enum qp_target t;
	cr_assert(eq(int, qp_target_parse("I2_S", &t), 0));
	cr_assert(eq(int, t, QP_I2_S));
	cr_assert(eq(int, qp_target_parse("i2_s", &t), 0));
	cr_assert(eq(int, qp_target_parse("40", &t), 0));
	cr_assert(eq(int, t, QP_I2_S));
	cr_assert(eq(int, qp_target_parse("Tq1_0", &t), 0));
	cr_assert(eq(int, t, QP_TQ1_0));
	cr_assert(eq(int, qp_target_parse("36", &t), 0));
	cr_assert(eq(int, t, QP_TQ1_0));
	cr_assert(eq(int, qp_target_parse("tq2_0", &t), 0));
	cr_assert(eq(int, t, QP_TQ2_0));
	cr_assert(eq(int, qp_target_parse("37", &t), 0));
	cr_assert(eq(int, t, QP_TQ2_0));
	const char *bad[] = { "", "i2s", "Q8_0", "f16", "35", "040", "I2_S ", "tl1" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_assert(eq(int, qp_target_parse(bad[i], &t), -1), "%s", bad[i]);
	cr_assert(eq(u32, qp_target_type(QP_I2_S), 36));
	cr_assert(eq(u32, qp_target_type(QP_TQ1_0), 34));
	cr_assert(eq(u32, qp_target_type(QP_TQ2_0), 35));
	cr_assert(eq(u32, qp_target_ftype(QP_I2_S), 40));
	cr_assert(eq(u32, qp_target_ftype(QP_TQ1_0), 36));
	cr_assert(eq(u32, qp_target_ftype(QP_TQ2_0), 37));
	cr_assert(eq(str, (char *)qp_target_name(QP_TQ2_0), "TQ2_0"));
}

/* ---- the type rule -------------------------------------------------------------------------- */

Test(quant_plan, gives_the_tv_f32_tensors_their_llama_quantize_types)
{
	struct qp_model m = { 0 }; /* bitnet: no output.weight */
	cr_assert(eq(u32, plan_type(&I2S, &m, "token_embd.weight", 0, 2, 256, 300), GGUF_TYPE_F16));
	cr_assert(eq(u32, plan_type(&I2S, &m, "output_norm.weight", 0, 1, 256, 1), GGUF_TYPE_F32));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_norm.weight", 0, 1, 256, 1), 0));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.ffn_sub_norm.weight", 0, 1, 512, 1), 0));
	const char *proj[] = { "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
			       "blk.0.attn_output.weight", "blk.1.ffn_gate.weight",
			       "blk.1.ffn_up.weight", "blk.1.ffn_down.weight" };
	for (size_t i = 0; i < sizeof proj / sizeof *proj; i++)
		cr_assert(eq(u32, plan_type(&I2S, &m, proj[i], 0, 2, 256, 128), GGUF_TYPE_I2_S),
			  "%s", proj[i]);
	/* a 2-D tensor stored with a trailing 1 is still a matrix; a [256,1] one is 1-D */
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_q.weight", 0, 3, 256, 256), 36));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_q.weight", 0, 2, 256, 1), 0));
	/* the names that are never quantized, and names not ending in "weight" */
	const char *keep[] = { "blk.0.ffn_gate_inp.weight", "position_embd.weight",
			       "token_types.weight", "blk.0.ssm_conv1d.weight",
			       "blk.0.attn_rel_b.weight", "blk.0.time_mix_first.weight",
			       "blk.0.attn_q.bias", "rope_freqs" };
	for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
		cr_assert(eq(u32, plan_type(&I2S, &m, keep[i], 0, 2, 256, 256), 0), "%s", keep[i]);
}

Test(quant_plan, chooses_f16_or_q8_0_for_the_embedding_by_row_length_and_honours_overrides)
{
	struct qp_model m = { 0 };
	cr_assert(eq(u32, plan_type(&I2S, &m, "token_embd.weight", 0, 2, 384, 300), GGUF_TYPE_Q8_0));
	cr_assert(eq(u32, plan_type(&I2S, &m, "token_embd.weight", 0, 2, 3200, 32002), 8));
	struct qp_opts f16 = { QP_I2_S, GGUF_TYPE_F16, QP_TYPE_RULE };
	cr_assert(eq(u32, plan_type(&f16, &m, "token_embd.weight", 0, 2, 384, 300), GGUF_TYPE_F16));
	struct qp_opts f32 = { QP_TQ2_0, GGUF_TYPE_F32, QP_TYPE_RULE };
	cr_assert(eq(u32, plan_type(&f32, &m, "token_embd.weight", 0, 2, 256, 300), GGUF_TYPE_F32));
	/* a model with an output head: the head follows the rule, the embedding is F16 */
	struct qp_model lm = { .has_output = true };
	cr_assert(eq(u32, plan_type(&I2S, &lm, "token_embd.weight", 0, 2, 384, 300), GGUF_TYPE_F16));
	cr_assert(eq(u32, plan_type(&I2S, &lm, "output.weight", 0, 2, 384, 300), GGUF_TYPE_Q8_0));
	cr_assert(eq(u32, plan_type(&I2S, &lm, "output.weight", 0, 2, 256, 300), GGUF_TYPE_F16));
	struct qp_opts out8 = { QP_I2_S, QP_TYPE_RULE, GGUF_TYPE_Q8_0 };
	cr_assert(eq(u32, plan_type(&out8, &lm, "output.weight", 0, 2, 256, 300), GGUF_TYPE_Q8_0));
	cr_assert(eq(u32, plan_type(&out8, &lm, "token_embd.weight", 0, 2, 256, 300), 1));
	/* falcon always gets Q8_0 heads; 8-expert models get Q8_0 attn_k/attn_v */
	struct qp_model falcon = { .arch_falcon = true };
	cr_assert(eq(u32, plan_type(&I2S, &falcon, "token_embd.weight", 0, 2, 256, 300), 8));
	struct qp_model moe = { .has_output = true, .n_expert = 8 };
	cr_assert(eq(u32, plan_type(&I2S, &moe, "blk.0.attn_k.weight", 0, 2, 256, 256), 8));
	cr_assert(eq(u32, plan_type(&I2S, &moe, "blk.0.attn_v.weight", 0, 2, 256, 256), 8));
	cr_assert(eq(u32, plan_type(&I2S, &moe, "blk.0.attn_q.weight", 0, 2, 256, 256), 36));
	/* TQ targets use the same rule */
	struct qp_opts tq1 = { QP_TQ1_0, QP_TYPE_RULE, QP_TYPE_RULE };
	cr_assert(eq(u32, plan_type(&tq1, &m, "token_embd.weight", 0, 2, 256, 300), GGUF_TYPE_F16));
	cr_assert(eq(u32, plan_type(&tq1, &m, "blk.0.ffn_up.weight", 0, 2, 256, 512), 34));
	cr_assert(eq(u32, plan_type(&tq1, &m, "blk.0.ffn_up.weight", GGUF_TYPE_I2_S, 2, 256, 512), 34));
}

Test(quant_plan, copies_tensors_already_of_their_type_and_keeps_tl_tensors)
{
	struct qp_model m = { 0 };
	/* an F16 embedding that should be F16 is copied, TL1/TL2 are kept, I2_S stays I2_S */
	cr_assert(eq(u32, plan_type(&I2S, &m, "token_embd.weight", 1, 2, 256, 300), 1));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_q.weight", GGUF_TYPE_TL1, 2, 256, 256), 38));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_q.weight", GGUF_TYPE_TL2, 2, 256, 256), 39));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_q.weight", GGUF_TYPE_I2_S, 2, 256, 256), 36));
	cr_assert(eq(u32, plan_type(&I2S, &m, "blk.0.attn_q.weight", GGUF_TYPE_BF16, 2, 256, 256), 36));
}

Test(quant_plan, refuses_tensors_the_target_cannot_hold_naming_them)
{
	struct qp_model m = { 0 };
	uint64_t k6913[4] = { 6913, 256, 1, 1 }, k384[4] = { 384, 512, 1, 1 };
	uint64_t k200[4] = { 200, 300, 1, 1 }, e3[4] = { 256, 256, 4, 1 };
	plan_fails(&I2S, &m, "blk.3.ffn_down.weight", 0, 2, k6913,
		   "ne[0] = 6913 is not a multiple of 128; I2_S cannot pack it");
	struct qp_opts tq2 = { QP_TQ2_0, QP_TYPE_RULE, QP_TYPE_RULE };
	plan_fails(&tq2, &m, "blk.0.ffn_up.weight", 0, 2, k384,
		   "ne[0] = 384 is not a multiple of 256; TQ2_0 cannot pack it");
	plan_fails(&tq2, &m, "token_embd.weight", 0, 2, k200, "not a multiple of 32; Q8_0");
	plan_fails(&I2S, &m, "blk.0.ffn_up_exps.weight", 0, 3, e3, "3-dimensional");
	plan_fails(&I2S, &m, "blk.0.attn_q.weight", GGUF_TYPE_Q4_0, 2, k384, "cannot convert Q4_0");
	struct qp_opts q6 = { QP_I2_S, GGUF_TYPE_Q6_K, QP_TYPE_RULE };
	uint64_t ok[4] = { 256, 300, 1, 1 };
	plan_fails(&q6, &m, "token_embd.weight", 0, 2, ok, "Q6_K is not supported");
}

Test(quant_plan, computes_loader_sizes_and_rows)
{
	struct qp_model m = { 0 };
	uint64_t ne[4] = { 2560, 6912, 1, 1 };
	struct qp_tensor t;
	struct bn_err err;
	cr_assert(eq(int, qp_plan_tensor(&I2S, &m, "blk.0.ffn_up.weight", 0, 2, ne, &t, &err), 0));
	cr_assert(eq(u64, t.out_nbytes, 4423712)); /* Appendix A */
	cr_assert(eq(u64, t.n, 2560ull * 6912));
	cr_assert(eq(u64, t.ne0, 2560));
	cr_assert(eq(u64, t.nrows, 6912));
	cr_assert(eq(u64, qp_rows_nbytes(36, 2560, 6912), 2560ull * 6912 / 4));
	cr_assert(eq(u64, qp_rows_nbytes(34, 512, 3), 3 * 2 * 54));
	cr_assert(eq(u64, qp_rows_nbytes(35, 512, 3), 3 * 2 * 66));
	cr_assert(eq(u64, qp_rows_nbytes(8, 64, 3), 3 * 2 * 34));
	cr_assert(eq(u64, qp_rows_nbytes(1, 64, 3), 384));
	cr_assert(eq(u64, qp_rows_nbytes(0, 64, 3), 768));
	cr_assert(eq(u64, qp_rows_nbytes(GGUF_TYPE_Q6_K, 256, 3), 0));
}

/* ---- metadata -------------------------------------------------------------------------------- */

/* Writes a tensor-less GGUF with the given u32 KVs (NULL-terminated names) and opens it. */
static struct gguf_reader *kv_file(const char *dir, const char *const *keys)
{
	struct bn_err err = { 0 };
	char *path = bn_path_join(dir, "kv.gguf");
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	for (uint32_t i = 0; keys[i]; i++)
		if (strcmp(keys[i], "general.architecture") == 0)
			cr_assert(eq(int, gguf_writer_add_str(w, keys[i], "bitnet", &err), 0));
		else
			cr_assert(eq(int, gguf_writer_add_u32(w, keys[i], 100 + i, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	free(path);
	return r;
}

/* Copies r's KVs through qp_copy_kvs and returns the reopened result. */
static struct gguf_reader *copied(const char *dir, struct gguf_reader *r, enum qp_target t)
{
	struct bn_err err = { 0 };
	char *path = bn_path_join(dir, "out.gguf");
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w);
	cr_assert(eq(int, qp_copy_kvs(w, r, t, &err), 0), "%s", err.msg);
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	struct gguf_reader *o = gguf_open(path, &err);
	cr_assert_not_null(o, "%s", err.msg);
	free(path);
	return o;
}

static void expect_keys(const struct gguf_reader *r, const char *const *keys)
{
	size_t n = 0;
	for (; keys[n]; n++)
		cr_assert(eq(str, (char *)gguf_kv_key(r, (int64_t)n), (char *)keys[n]), "KV %zu", n);
	cr_assert(eq(sz, gguf_n_kv(r), n));
}

static uint32_t u32_of(const struct gguf_reader *r, const char *key)
{
	uint32_t v = 0;
	struct bn_err err;
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, key), &v, &err), 0), "%s", err.msg);
	return v;
}

Test(quant_plan, sets_file_type_in_place_and_appends_the_quantization_version)
{
	char *dir = tu_mkdtemp("qp_kv1");
	const char *in[] = { "general.architecture", "general.file_type", "bitnet.block_count",
			     "split.no", "split.count", "split.tensors.count", NULL };
	struct gguf_reader *r = kv_file(dir, in);
	struct gguf_reader *o = copied(dir, r, QP_I2_S);
	const char *want[] = { "general.architecture", "general.file_type", "bitnet.block_count",
			       "general.quantization_version", NULL };
	expect_keys(o, want);
	cr_assert(eq(u32, u32_of(o, "general.file_type"), 40));
	cr_assert(eq(u32, u32_of(o, "general.quantization_version"), 2));
	cr_assert(eq(u32, u32_of(o, "bitnet.block_count"), 102));
	gguf_close(o);
	o = copied(dir, r, QP_TQ1_0);
	cr_assert(eq(u32, u32_of(o, "general.file_type"), 36));
	gguf_close(o);
	gguf_close(r);
	free(dir);
}

Test(quant_plan, keeps_an_existing_quantization_version_in_place_and_appends_a_missing_file_type)
{
	char *dir = tu_mkdtemp("qp_kv2");
	const char *in[] = { "general.quantization_version", "general.architecture", NULL };
	struct gguf_reader *r = kv_file(dir, in);
	struct gguf_reader *o = copied(dir, r, QP_TQ2_0);
	const char *want[] = { "general.quantization_version", "general.architecture",
			       "general.file_type", NULL };
	expect_keys(o, want);
	cr_assert(eq(u32, u32_of(o, "general.quantization_version"), 2));
	cr_assert(eq(u32, u32_of(o, "general.file_type"), 37));
	gguf_close(o);
	gguf_close(r);
	/* neither present: the version first, then the file type, as llama-quantize sets them */
	const char *bare[] = { "general.architecture", NULL };
	r = kv_file(dir, bare);
	o = copied(dir, r, QP_I2_S);
	const char *want2[] = { "general.architecture", "general.quantization_version",
				"general.file_type", NULL };
	expect_keys(o, want2);
	gguf_close(o);
	gguf_close(r);
	free(dir);
}

Test(quant_plan, reads_the_model_facts_from_a_gguf)
{
	char *dir = tu_mkdtemp("qp_model");
	const char *in[] = { "general.architecture", "bitnet.expert_count", NULL };
	struct gguf_reader *r = kv_file(dir, in);
	struct qp_model m;
	struct bn_err err;
	cr_assert(eq(int, qp_model_from_gguf(r, &m, &err), 0));
	cr_assert(eq(u32, m.n_expert, 101));
	cr_assert_not(m.has_output);
	cr_assert_not(m.arch_falcon);
	gguf_close(r);
	free(dir);
}

/* ---- statistics ------------------------------------------------------------------------------ */

Test(quant_plan, stats_find_the_scale_the_ternary_check_and_the_first_non_finite_value)
{
	float x[8] = { 0.25f, -0.25f, 0.0f, -0.0f, 0.25f, 0, 0, -0.25f };
	struct qp_stats s, a, b;
	qp_stats_init(&s);
	qp_stats_add(&s, x, 8, 0);
	cr_assert(eq(dbl, s.absmax, 0.25));
	cr_assert(eq(flt, s.min_nonzero, 0.25f));
	cr_assert(qp_stats_ternary(&s, GGUF_TYPE_I2_S));
	x[4] = 0.125f;
	qp_stats_init(&s);
	qp_stats_add(&s, x, 8, 0);
	cr_assert_not(qp_stats_ternary(&s, GGUF_TYPE_TQ2_0));
	/* merged halves equal the whole; the first non-finite index wins regardless of order */
	x[6] = NAN;
	x[1] = INFINITY;
	qp_stats_init(&a);
	qp_stats_init(&b);
	qp_stats_add(&b, x + 4, 4, 4);
	qp_stats_add(&a, x, 4, 0);
	qp_stats_merge(&b, &a);
	cr_assert(eq(u64, b.n_nonfinite, 2));
	cr_assert(eq(u64, b.first_nonfinite, 1));
	cr_assert(isinf(b.first_bad_value));
	cr_assert(eq(dbl, b.absmax, 0.25));
	cr_assert_not(qp_stats_ternary(&b, GGUF_TYPE_TQ2_0));
	/* all zeros is ternary; a value in the I2_S dead zone is not ternary for I2_S */
	float z[4] = { 0, -0.0f, 0, 0 }, tiny[2] = { 5e-7f, -5e-7f };
	qp_stats_init(&s);
	qp_stats_add(&s, z, 4, 0);
	cr_assert(qp_stats_ternary(&s, GGUF_TYPE_I2_S));
	cr_assert(eq(flt, s.min_nonzero, INFINITY));
	qp_stats_init(&s);
	qp_stats_add(&s, tiny, 2, 0);
	cr_assert_not(qp_stats_ternary(&s, GGUF_TYPE_I2_S));
	cr_assert(qp_stats_ternary(&s, GGUF_TYPE_TQ1_0));
}

/* ---- encoders against the references --------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next32(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 32);
}

/* Values that probe every boundary: ±v, ±0, the I2_S dead zone edge, TQ rounding ties at ±m/2
 * (exactly representable), ordinary random floats. */
static void fill(float *x, size_t n, int kind)
{
	const float edge[] = { 0.0f, -0.0f, 9.9999997e-07f, 1.0000001e-06f, -9.9999997e-07f,
			       -1.0000001e-06f, 0.5f, -0.5f, 0.25f, 1.0f, -1.0f, 0.49999997f };
	for (size_t i = 0; i < n; i++) {
		uint32_t r = next32();
		if (kind == 0) /* ternary */
			x[i] = (r % 3 == 0) ? 0.0078125f : (r % 3 == 1 ? -0.0078125f : (r & 8 ? 0.0f : -0.0f));
		else if (kind == 1)
			x[i] = edge[r % (sizeof edge / sizeof *edge)];
		else
			x[i] = ((float)(int32_t)r) / 2147483648.0f * (r & 1 ? 3.0f : 1e-3f);
	}
}

Test(quant_plan, i2s_rows_match_the_reference_packer)
{
	enum { N = 128 * 24 };
	static float x[N];
	static uint8_t a[N / 4], b[N / 4];
	for (int kind = 0; kind < 3; kind++) {
		fill(x, N, kind);
		double scale = i2s_absmax(x, N, 0.0);
		qp_encode_rows(GGUF_TYPE_I2_S, x, 384, N / 384, scale, a);
		i2s_pack_f32(x, N, scale, b);
		cr_assert(eq(int, memcmp(a, b, N / 4), 0), "kind %d", kind);
	}
	/* an all-zero tensor: scale 0, every code 1 */
	memset(x, 0, sizeof x);
	qp_encode_rows(GGUF_TYPE_I2_S, x, 128, N / 128, 0.0, a);
	for (int i = 0; i < N / 4; i++)
		cr_assert(eq(u8, a[i], 0x55));
}

Test(quant_plan, encoding_with_statistics_equals_both_separately)
{
	enum { N = 128 * 40 };
	static float x[N];
	static uint8_t a[N * 4], b[N * 4];
	const uint32_t types[] = { GGUF_TYPE_I2_S, GGUF_TYPE_TQ2_0, GGUF_TYPE_F16 };
	for (int kind = 0; kind < 4; kind++) {
		fill(x, N, kind % 3);
		if (kind == 3) {
			x[777] = NAN;
			x[4000] = -INFINITY;
		}
		for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
			struct qp_stats s1, s2;
			qp_stats_init(&s1);
			qp_stats_init(&s2);
			qp_encode_stats_rows(types[t], x, 256, N / 256, a, &s1, 1000);
			qp_stats_add(&s2, x, N, 1000);
			qp_encode_rows(types[t], x, 256, N / 256, 1.0, b);
			if (kind < 3)
				cr_assert(eq(int, memcmp(a, b, (size_t)qp_rows_nbytes(types[t], 256, N / 256)), 0));
			cr_assert(eq(dbl, s1.absmax, s2.absmax), "kind %d type %u", kind, types[t]);
			cr_assert(eq(flt, s1.min_nonzero, s2.min_nonzero));
			cr_assert(eq(u64, s1.n_nonfinite, s2.n_nonfinite));
			cr_assert(eq(u64, s1.first_nonfinite, s2.first_nonfinite));
			if (kind == 3)
				cr_assert(eq(u64, s1.first_nonfinite, 1777));
		}
	}
}

Test(quant_plan, tq_rows_match_the_reference_quantizers)
{
	enum { N = 256 * 12 };
	static float x[N];
	static struct tq1_block a1[N / 256], b1[N / 256];
	static struct tq2_block a2[N / 256], b2[N / 256];
	for (int kind = 0; kind < 3; kind++) {
		fill(x, N, kind);
		if (kind == 1)
			memset(x + 512, 0, 256 * sizeof *x); /* an all-zero block */
		qp_encode_rows(GGUF_TYPE_TQ1_0, x, 512, N / 512, 0, (uint8_t *)a1);
		quantize_tq1_ref(x, N, b1);
		cr_assert(eq(int, memcmp(a1, b1, sizeof a1), 0), "TQ1_0 kind %d", kind);
		qp_encode_rows(GGUF_TYPE_TQ2_0, x, 256, N / 256, 0, (uint8_t *)a2);
		quantize_tq2_ref(x, N, b2);
		cr_assert(eq(int, memcmp(a2, b2, sizeof a2), 0), "TQ2_0 kind %d", kind);
	}
}

Test(quant_plan, f16_and_q8_0_rows_match_the_reference_conversions)
{
	enum { N = 64 * 8 };
	static float x[N];
	static uint8_t a[N * 4];
	static struct q8_0_block q[N / 32];
	fill(x, N, 2);
	x[0] = 65520.0f;  /* rounds to infinity */
	x[1] = 6.0e-8f;   /* subnormal */
	qp_encode_rows(GGUF_TYPE_F16, x, 64, 8, 0, a);
	for (int i = 0; i < N; i++) {
		uint16_t h;
		memcpy(&h, a + 2 * i, 2);
		cr_assert(eq(u16, h, bn_f32_to_f16(x[i])), "element %d", i);
	}
	qp_encode_rows(GGUF_TYPE_Q8_0, x, 64, 8, 0, a);
	quantize_q8_0_ref(x, N, q);
	cr_assert(eq(int, memcmp(a, q, sizeof q), 0));
	qp_encode_rows(GGUF_TYPE_F32, x, 64, 8, 0, a);
	cr_assert(eq(int, memcmp(a, x, N * 4), 0));
}

Test(quant_plan, verify_accepts_what_it_encodes_and_names_the_first_wrong_element)
{
	enum { N = 256 * 8 };
	static float x[N], y[N];
	static uint8_t buf[N * 4];
	const uint32_t types[] = { GGUF_TYPE_I2_S, GGUF_TYPE_TQ1_0, GGUF_TYPE_TQ2_0, GGUF_TYPE_F16,
				   GGUF_TYPE_Q8_0, GGUF_TYPE_F32 };
	for (int kind = 0; kind < 3; kind++) {
		fill(x, N, kind);
		for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
			uint32_t ty = types[t];
			size_t bytes = (size_t)qp_rows_nbytes(ty, 512, N / 512);
			qp_encode_rows(ty, x, 512, N / 512, 1.0, buf);
			cr_assert(eq(sz, qp_verify_rows(ty, buf, x, 512, N / 512), SIZE_MAX),
				  "type %u kind %d", ty, kind);
			/* one wrong bit in the second half: reported there, not earlier */
			size_t at = bytes / 2 + 5;
			if (ty == GGUF_TYPE_TQ1_0 || ty == GGUF_TYPE_TQ2_0)
				at = (bytes / 2) / (ty == 34 ? 54 : 66) * (ty == 34 ? 54 : 66) + 5;
			buf[at] ^= 0x40;
			size_t bad = qp_verify_rows(ty, buf, x, 512, N / 512);
			cr_assert(ge(sz, bad, (size_t)N / 2 - 256), "type %u kind %d: %zu", ty, kind, bad);
			cr_assert(lt(sz, bad, (size_t)N), "type %u kind %d: %zu", ty, kind, bad);
			if (ty == GGUF_TYPE_I2_S) /* byte 5 of block 8, bits 7..6: element 8·128 + 5 */
				cr_assert(eq(sz, bad, 8 * 128 + 5));
			if (ty == GGUF_TYPE_F32 || ty == GGUF_TYPE_F16)
				cr_assert(eq(sz, bad, at / (ty == GGUF_TYPE_F32 ? 4 : 2)));
		}
	}
	/* a ternary tensor: I2_S decodes to the input itself, TQ to sign·fp16(v) */
	fill(x, N, 0);
	qp_encode_rows(GGUF_TYPE_I2_S, x, N, 1, 1.0, buf);
	qp_decode_rows(GGUF_TYPE_I2_S, buf, N, 1, 0.0078125f, y);
	for (int i = 0; i < N; i++)
		cr_assert(y[i] == x[i], "ternary I2_S element %d", i);
	for (int i = 0; i < N; i++)
		x[i] = x[i] == 0 ? x[i] : (x[i] > 0 ? 0.0077555f : -0.0077555f);
	float d = bn_f16_to_f32(bn_f32_to_f16(0.0077555f));
	cr_assert(d != 0.0077555f);
	qp_encode_rows(GGUF_TYPE_TQ2_0, x, 512, N / 512, 1.0, buf);
	qp_decode_rows(GGUF_TYPE_TQ2_0, buf, 512, N / 512, 0.0f, y);
	for (int i = 0; i < N; i++)
		cr_assert(y[i] == (x[i] == 0 ? 0.0f : (x[i] > 0 ? d : -d)), "TQ2_0 element %d", i);
	/* the I2_S decoder is the reference dequantizer */
	fill(x, N, 0);
	i2s_quantize_ref(x, N, buf);
	i2s_dequantize_ref(buf, N, y);
	static float z[N];
	qp_decode_rows(GGUF_TYPE_I2_S, buf, N, 1, i2s_get_scale(buf, N), z);
	cr_assert(eq(int, memcmp(y, z, sizeof y), 0));
}

Test(quant_plan, f16_rows_round_like_the_reference_over_a_sweep_of_all_floats)
{
	enum { N = 4096 };
	static float x[N];
	static uint8_t h[2 * N];
	const uint32_t edges[] = { 0, 1, 0x33000000, 0x33000001, 0x32ffffff, 0x387fffff, 0x38800000,
				   0x38800fff, 0x38801000, 0x38803000, 0x477fefff, 0x477ff000,
				   0x477fffff, 0x47800000, 0x7f7fffff, 0x7f800000, 0x7f800001,
				   0x7fc00000, 0x7fffffff, 0x3f800000, 0x33800000, 0x337fffff };
	uint64_t u = 0, checked = 0;
	size_t k = 0;
	while (u <= UINT32_MAX) {
		for (k = 0; k < N && u <= UINT32_MAX; k++) {
			uint32_t v = checked < 2 * BN_ARRAY_LEN(edges)
					     ? edges[checked / 2] ^ (checked % 2 ? 0x80000000u : 0)
					     : (uint32_t)u;
			x[k] = bn_bits_f32(v);
			if (checked++ >= 2 * BN_ARRAY_LEN(edges))
				u += 4093; /* a prime stride: every exponent, many mantissas */
		}
		qp_encode_rows(GGUF_TYPE_F16, x, k, 1, 0, h);
		for (size_t i = 0; i < k; i++) {
			uint16_t got;
			memcpy(&got, h + 2 * i, 2);
			cr_assert(eq(u16, got, bn_f32_to_f16(x[i])), "0x%08x", bn_f32_bits(x[i]));
		}
	}
}

Test(quant_plan, writes_the_i2s_tail)
{
	uint8_t tail[32], pad[28];
	for (int i = 0; i < 28; i++)
		pad[i] = (uint8_t)(i + 1);
	qp_i2s_tail(0.25f, NULL, tail);
	cr_assert(eq(u32, (uint32_t)tail[0] | tail[1] << 8 | tail[2] << 16 | (uint32_t)tail[3] << 24,
		     0x3e800000));
	for (int i = 4; i < 32; i++)
		cr_assert(eq(u8, tail[i], 0));
	qp_i2s_tail(0.25f, pad, tail);
	cr_assert(eq(int, memcmp(tail + 4, pad, 28), 0));
}

/* ---- stale padding --------------------------------------------------------------------------- */

/* A literal model of llama-quantize's scratch buffer: grows (zero-filled) to 4·N bytes, every
 * converted tensor overwrites its start with what it encodes (I2_S: codes + scale). */
Test(quant_plan, replays_the_stale_scratch_bytes_of_llama_quantize)
{
	struct qp_model m = { 0 };
	struct {
		const char *name;
		uint32_t in;
		uint64_t ne0, ne1;
	} spec[] = {
		{ "token_embd.weight", 0, 256, 300 },    /* F16, 153600 bytes, converted first */
		{ "blk.0.attn_norm.weight", 0, 256, 1 }, /* copied: leaves nothing */
		{ "blk.0.ffn_down.weight", 0, 512, 256 },
		{ "blk.0.attn_k.weight", 0, 256, 128 },
		{ "blk.0.ffn_gate.weight", 0, 256, 512 },
		{ "blk.0.attn_q.weight", 0, 256, 256 },
		{ "blk.0.attn_v.weight", 0, 128, 256 },
		{ "blk.1.attn_q.weight", 1, 256, 256 }, /* from F16 */
	};
	enum { NT = sizeof spec / sizeof *spec };
	struct qp_tensor plan[NT];
	struct bn_err err;
	for (int i = 0; i < NT; i++) {
		uint64_t ne[4] = { spec[i].ne0, spec[i].ne1, 1, 1 };
		cr_assert(eq(int, qp_plan_tensor(&I2S, &m, spec[i].name, spec[i].in,
						 spec[i].ne1 > 1 ? 2 : 1, ne, &plan[i], &err), 0));
	}
	struct qp_stale *st = qp_stale_new(plan, NT);
	cr_assert_not_null(st);
	size_t cap = 0;
	uint8_t *scratch = NULL;
	for (int i = 0; i < NT; i++) {
		if (!plan[i].convert) {
			cr_assert_null(qp_stale_pad(st, (size_t)i));
			continue;
		}
		/* the tensor's output with recognisable bytes */
		uint64_t size = plan[i].out_nbytes;
		uint8_t *out = malloc(size);
		for (uint64_t k = 0; k < size; k++)
			out[k] = (uint8_t)(next32() | 1);
		uint64_t written = plan[i].out_type == GGUF_TYPE_I2_S ? plan[i].n / 4 + 4 : size;
		if (plan[i].out_type == GGUF_TYPE_I2_S) {
			const uint8_t *pad = qp_stale_pad(st, (size_t)i);
			cr_assert_not_null(pad);
			uint64_t need = plan[i].n * 4;
			if (cap < need) {
				scratch = realloc(scratch, need);
				memset(scratch + cap, 0, need - cap);
				cap = need;
			}
			cr_assert(eq(int, memcmp(pad, scratch + written, 28), 0), "tensor %d", i);
			memcpy(out + written, pad, 28);
		}
		/* feed in uneven chunks, as a threaded writer would */
		for (uint64_t off = 0; off < size;) {
			size_t len = (size_t)BN_MIN(size - off, 1 + next32() % 5000);
			qp_stale_feed(st, (size_t)i, off, out + off, len);
			off += len;
		}
		uint64_t need = plan[i].n * 4;
		if (cap < need) {
			scratch = realloc(scratch, need);
			memset(scratch + cap, 0, need - cap);
			cap = need;
		}
		memcpy(scratch, out, written);
		free(out);
	}
	qp_stale_free(st);
	free(scratch);
}

Test(quant_plan, refuses_one_part_of_a_split_model)
{
	char *dir = tu_mkdtemp("qp_check");
	struct bn_err err = { 0 };
	const char *split[] = { "general.architecture", "split.count", NULL };
	struct gguf_reader *r = kv_file(dir, split); /* split.count = 101 */
	cr_assert(eq(int, qp_check_input(r, &err), -BN_EUNSUPPORTED));
	cr_assert(strstr(err.msg, "split.count = 101") != NULL, "%s", err.msg);
	gguf_close(r);
	const char *fine[] = { "general.architecture", "general.file_type", NULL };
	r = kv_file(dir, fine);
	cr_assert(eq(int, qp_check_input(r, &err), 0));
	gguf_close(r);
	free(dir);
}

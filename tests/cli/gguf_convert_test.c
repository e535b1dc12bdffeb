/* gguf-convert end to end: the §13.2 reference hashes and intermediate values, every tensor of
 * checkpoints the reference never saw recomputed here from the safetensors (name map, order,
 * weight_quant, unpacking, q/k permutation written independently of the converter), f16 output,
 * a BPE tokenizer, chat templates from chat_template.jinja/.json, malformed inputs (one error
 * line, no output file), the free-disk refusal (under tests/shims/statvfs.c) and the command
 * line. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_util.h"
#include "gguf.h"
#include "i2s.h"
#include "safetensors.h"
#include "test_util.h"
#include "tq.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Scratch directories of the running test, removed after it (each test is its own process):
 * the converted models add up to hundreds of MB per run. */
static char *scratch[32];
static size_t n_scratch;

static char *mkdtemp_test(const char *name)
{
	char *d = tu_mkdtemp(name);
	cr_assert_not_null(d);
	if (n_scratch < sizeof scratch / sizeof *scratch)
		scratch[n_scratch++] = strdup(d);
	return d;
}

static void remove_scratch(void)
{
	for (size_t i = 0; i < n_scratch; i++) {
		char cmd[4200];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch[i]);
		struct tu_run r = tu_sh(cmd);
		tu_run_free(&r);
		free(scratch[i]);
	}
	n_scratch = 0;
}

TestSuite(gguf_convert, .fini = remove_scratch);
TestSuite(gguf_convert_malformed, .fini = remove_scratch);
TestSuite(gguf_convert_cli, .fini = remove_scratch);
TestSuite(gguf_convert_direct, .fini = remove_scratch);

/* mkmodel --preset P --outdir <tmp>/<name> [args]; returns the model directory. */
static char *gen(const char *test, const char *name, const char *preset, const char *const *args)
{
	char *dir = mkdtemp_test(test);
	char *out = bn_path_join(dir, name);
	char *bin = tu_bin("mkmodel");
	const char *argv[16] = { bin, "-q", "--preset", preset, "--outdir", out };
	size_t n = 6;
	for (; args && *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	struct tu_run r = tu_run(argv, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "mkmodel %s: %s", preset, r.err);
	tu_run_free(&r);
	free(bin);
	free(dir);
	return out;
}

static struct tu_run convert(const char *const *args)
{
	char *bin = tu_bin("gguf-convert");
	const char *argv[24] = { bin, "-q" };
	size_t n = 2;
	for (; *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	struct tu_run r = tu_run(argv, NULL, NULL);
	free(bin);
	return r;
}

/* Converts dir to dir/<file> with extra args; asserts success; returns the output path. */
static char *convert_ok(const char *dir, const char *file, const char *const *extra)
{
	char *out = bn_path_join(dir, file);
	const char *args[20] = { dir, "--outfile", out };
	size_t n = 3;
	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	struct tu_run r = convert(args);
	cr_assert(eq(int, r.status, 0), "gguf-convert %s: %s", dir, r.err);
	tu_run_free(&r);
	return out;
}

static void expect_sha(const char *path, uint64_t size, const char *sha)
{
	char hex[65];
	struct stat st;
	cr_assert(eq(int, stat(path, &st), 0));
	cr_expect(eq(u64, (uint64_t)st.st_size, size), "%s", path);
	cr_assert(eq(int, tu_sha256_file(path, hex), 0));
	cr_expect(eq(str, hex, (char *)sha), "%s", path);
}

/* ---- §13.2: reference bytes ----------------------------------------------------------------- */

Test(gguf_convert, tv_f32_is_byte_identical_to_the_reference)
{
	char *d = gen("tv_f32_ref", "tv-f32", "tv-f32", NULL);
	char *o = convert_ok(d, "out.gguf", NULL);
	expect_sha(o, 5045984, "2f3ba4db8af90883d6611c73a577eb0cf78c09f0898dc6beec31e94ab407579b");
	free(o);
	free(d);
}

Test(gguf_convert, tv_bf16_is_byte_identical_to_the_reference)
{
	char *d = gen("tv_bf16_ref", "tv-bf16", "tv-bf16", NULL);
	char *o = convert_ok(d, "out.gguf", NULL);
	expect_sha(o, 5045984, "49f66aa5278f8f674191111959534c8d7a54735d26bf6fdbe2efaa5c8f90bbc4");
	free(o);
	free(d);
}

Test(gguf_convert, tv_llama_is_byte_identical_to_the_reference_in_both_tensor_orders)
{
	char *d = gen("tv_llama_ref", "tv-llama", "tv-llama", NULL);
	const char *off[] = { "--tensor-order", "offset", NULL };
	const char *lex[] = { "--tensor-order", "lexicographic", NULL };
	char *o1 = convert_ok(d, "offset.gguf", off);
	char *o2 = convert_ok(d, "lex.gguf", lex);
	char *o3 = convert_ok(d, "default.gguf", NULL);
	expect_sha(o1, 5346688, "1643a84bcda61e6a5144af96782a506efa9f0d1fa638357e0be254f0fc4a8e4c");
	expect_sha(o2, 5346688, "c0828cf25db5787a3f0fec12ac080a13f81e14be3319f98223203be6eefc1b4e");
	expect_sha(o3, 5346688, "c0828cf25db5787a3f0fec12ac080a13f81e14be3319f98223203be6eefc1b4e");
	free(o1);
	free(o2);
	free(o3);
	free(d);
}

Test(gguf_convert, output_does_not_depend_on_the_thread_count)
{
	char *d = gen("threads", "tv-bf16", "tv-bf16", NULL);
	const char *t1[] = { "--threads", "1", NULL }, *t5[] = { "--threads", "5", NULL };
	char *a = convert_ok(d, "t1.gguf", t1), *b = convert_ok(d, "t5.gguf", t5);
	char ha[65], hb[65];
	cr_assert(eq(int, tu_sha256_file(a, ha), 0));
	cr_assert(eq(int, tu_sha256_file(b, hb), 0));
	cr_expect(eq(str, ha, hb));
	free(a);
	free(b);
	free(d);
}

/* Reads the f32 data of a tensor of an open GGUF. */
static const float *tensor_f32(struct gguf_reader *r, const char *name, uint64_t *n)
{
	int64_t i = gguf_find_tensor(r, name);
	cr_assert(ge(i64, i, 0), "no tensor %s", name);
	const struct gguf_tensor *t = gguf_tensor(r, (size_t)i);
	cr_assert(eq(u32, t->type, GGUF_TYPE_F32));
	*n = t->nbytes / 4;
	return (const float *)t->data;
}

struct stats {
	uint32_t v;
	uint64_t pos, neg, zero, negzero, other;
};

static struct stats stats_of(const float *x, uint64_t n)
{
	struct stats s = { 0 };
	for (uint64_t i = 0; i < n; i++) {
		uint32_t u = bn_f32_bits(x[i]);
		if ((u & 0x7fffffff) == 0) {
			s.zero++;
			s.negzero += u >> 31;
		} else if (!s.v || (u & 0x7fffffff) == s.v) {
			s.v = u & 0x7fffffff;
			if (u >> 31)
				s.neg++;
			else
				s.pos++;
		} else {
			s.other++;
		}
	}
	return s;
}

Test(gguf_convert, tv_f32_intermediate_values_are_those_of_section_13_2)
{
	char *d = gen("tv_f32_values", "tv-f32", "tv-f32", NULL);
	char *o = convert_ok(d, "out.gguf", NULL);
	struct bn_err e = { 0 };
	struct gguf_reader *r = gguf_open(o, &e);
	cr_assert_not_null(r, "%s", e.msg);
	uint64_t n;
	const float *qx = tensor_f32(r, "blk.0.attn_q.weight", &n);
	struct stats q = stats_of(qx, n);
	cr_expect(eq(u32, q.v, 0x3BFE2277));
	cr_expect(eq(u64, q.pos, 24731));
	cr_expect(eq(u64, q.neg, 24786));
	cr_expect(eq(u64, q.zero, 16019));
	cr_expect(eq(u64, q.negzero, 7743));
	cr_expect(eq(u64, q.other, 0));
	/* Two statements: the order in which call arguments are evaluated is unspecified. */
	const float *kx = tensor_f32(r, "blk.0.attn_k.weight", &n);
	struct stats k = stats_of(kx, n);
	cr_expect(eq(u32, k.v, 0x3BFF9D30));
	const float *dx = tensor_f32(r, "blk.0.ffn_down.weight", &n);
	struct stats dn = stats_of(dx, n);
	cr_expect(eq(u32, dn.v, 0x3BFE2F95));
	cr_expect(eq(u64, dn.zero, 32053));
	cr_expect(eq(u64, dn.negzero, 15450));
	/* 24 KVs, metadata ends at 8916 and data starts at 8928 */
	cr_expect(eq(sz, gguf_n_kv(r), 24));
	cr_expect(eq(u64, gguf_data_offset(r), 8928));
	gguf_close(r);
	free(o);
	free(d);
}

/* ---- independent recomputation on unseen checkpoints ------------------------------------------ */

static const struct {
	const char *hf, *gguf;
	int proj;      /* 1: ternary projection */
	int perm;      /* 1: q (n_head), 2: k (n_head_kv) */
} names[] = {
	{ "input_layernorm", "attn_norm", 0, 0 },
	{ "post_attention_layernorm", "ffn_norm", 0, 0 },
	{ "self_attn.inner_attn_ln", "attn_sub_norm", 0, 0 },
	{ "self_attn.attn_sub_norm", "attn_sub_norm", 0, 0 },
	{ "mlp.ffn_layernorm", "ffn_sub_norm", 0, 0 },
	{ "mlp.ffn_sub_norm", "ffn_sub_norm", 0, 0 },
	{ "self_attn.q_proj", "attn_q", 1, 1 },
	{ "self_attn.k_proj", "attn_k", 1, 2 },
	{ "self_attn.v_proj", "attn_v", 1, 0 },
	{ "self_attn.o_proj", "attn_output", 1, 0 },
	{ "mlp.gate_proj", "ffn_gate", 1, 0 },
	{ "mlp.up_proj", "ffn_up", 1, 0 },
	{ "mlp.down_proj", "ffn_down", 1, 0 },
};

struct expect {
	const struct st_tensor *t, *scale;
	char gguf[96];
	int proj, perm;
};

/* HF name -> GGUF name, the test's own table. */
static bool map_name(const char *hf, struct expect *x)
{
	x->proj = x->perm = 0;
	if (strcmp(hf, "model.embed_tokens.weight") == 0) {
		strcpy(x->gguf, "token_embd.weight");
		return true;
	}
	if (strcmp(hf, "model.norm.weight") == 0) {
		strcpy(x->gguf, "output_norm.weight");
		return true;
	}
	if (strcmp(hf, "lm_head.weight") == 0) {
		strcpy(x->gguf, "output.weight");
		return true;
	}
	unsigned L;
	char rest[80];
	if (sscanf(hf, "model.layers.%u.%79s", &L, rest) != 2)
		return false;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char full[96];
		snprintf(full, sizeof full, "%s.weight", names[i].hf);
		if (strcmp(rest, full) == 0) {
			snprintf(x->gguf, sizeof x->gguf, "blk.%u.%s.weight", L, names[i].gguf);
			x->proj = names[i].proj;
			x->perm = names[i].perm;
			return true;
		}
	}
	return false;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const struct st_tensor *const *)a)->name,
		      (*(const struct st_tensor *const *)b)->name);
}

static float widen(const struct st_tensor *t, uint64_t i)
{
	const uint8_t *p = t->data;
	uint16_t h;
	switch (t->dtype) {
	case ST_F32: {
		float f;
		memcpy(&f, p + 4 * i, 4);
		return f;
	}
	case ST_BF16:
		memcpy(&h, p + 2 * i, 2);
		return bn_bits_f32((uint32_t)h << 16);
	case ST_F16:
		memcpy(&h, p + 2 * i, 2);
		return bn_f16_to_f32(h);
	default:
		cr_assert(false, "unexpected dtype");
		return 0;
	}
}

/* The expected f32 values of a tensor, from §4.4, §5.1, §5.3 as the spec states them. */
static float *expected_values(const struct expect *x, bool bitnet, bool mul, unsigned n_head,
			      unsigned n_kv, uint64_t *rows_out, uint64_t *cols_out)
{
	const struct st_tensor *t = x->t;
	uint64_t rows = t->n_dims > 1 ? t->shape[0] : 1, cols = t->n_dims > 1 ? t->shape[1] : t->shape[0];
	float *v;
	if (x->scale) {
		/* packed [M/4, K]: unpacked row i·M/4 + r has code (byte[r][c] >> 2i) & 3 */
		uint64_t mq = rows;
		rows *= 4;
		v = malloc(rows * cols * sizeof *v);
		float sc = widen(x->scale, 0);
		for (uint64_t i = 0; i < 4; i++)
			for (uint64_t r = 0; r < mq; r++)
				for (uint64_t c = 0; c < cols; c++) {
					int code = (t->data[r * cols + c] >> (2 * i)) & 3;
					v[((i * mq) + r) * cols + c] =
						mul ? (float)(code - 1) * sc : (float)(code - 1) / sc;
				}
	} else {
		v = malloc(rows * cols * sizeof *v);
		for (uint64_t i = 0; i < rows * cols; i++)
			v[i] = widen(t, i);
	}
	uint64_t n = rows * cols;
	if (bitnet && x->proj && !x->scale) {
		double sum = 0;
		for (uint64_t i = 0; i < n; i++)
			sum += fabs((double)v[i]);
		float m = (float)(sum / (double)n);
		if (m < 1e-5f)
			m = 1e-5f;
		float s = 1.0f / m;
		for (uint64_t i = 0; i < n; i++) {
			float q = rintf(v[i] * s);
			q = fminf(1.0f, fmaxf(-1.0f, q));
			v[i] = q / s;
			if (t->dtype == ST_F16)
				v[i] = bn_f16_to_f32(bn_f32_to_f16(v[i]));
		}
	}
	if (!bitnet && x->perm) {
		/* W viewed as [heads, 2, R/(2·heads), C], axes 1 and 2 swapped */
		unsigned heads = x->perm == 1 ? n_head : n_kv;
		float *p = malloc(n * sizeof *p);
		uint64_t hs = rows / heads;
		for (uint64_t h = 0; h < heads; h++)
			for (uint64_t a = 0; a < hs / 2; a++)
				for (uint64_t b = 0; b < 2; b++)
					memcpy(p + (h * hs + a * 2 + b) * cols,
					       v + (h * hs + b * (hs / 2) + a) * cols, cols * 4);
		free(v);
		v = p;
	}
	*rows_out = rows;
	*cols_out = cols;
	return v;
}

static char *str_kv(struct gguf_reader *r, const char *key);

/* Checks every tensor of out against the checkpoint in dir. */
static void check_model(const char *dir, const char *out, bool lexicographic)
{
	struct bn_err e = { 0 };
	struct st_model *m;
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_OFFSET, &e), 0), "%s", e.msg);
	char *cfgp = bn_path_join(dir, "config.json");
	json_error_t je;
	json_t *cfg = json_load_file(cfgp, 0, &je);
	cr_assert_not_null(cfg);
	const char *arch = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
	bool bitnet = strcmp(arch, "LlamaForCausalLM") != 0;
	unsigned n_head = (unsigned)json_integer_value(json_object_get(cfg, "num_attention_heads"));
	unsigned n_kv = (unsigned)json_integer_value(json_object_get(cfg, "num_key_value_heads"));
	unsigned layers = (unsigned)json_integer_value(json_object_get(cfg, "num_hidden_layers"));
	const json_t *lc = json_object_get(json_object_get(cfg, "quantization_config"), "linear_class");
	bool mul = json_is_string(lc) && strcmp(json_string_value(lc), "autobitlinear") == 0;
	const json_t *ha = json_object_get(cfg, "hidden_act");
	const char *want_arch = !bitnet ? "llama" :
				json_is_string(ha) && strcmp(json_string_value(ha), "relu2") == 0 ?
				"bitnet-b1.58" : "bitnet";
	struct gguf_reader *r = gguf_open(out, &e);
	cr_assert_not_null(r, "%s", e.msg);

	/* the expected order: shard by shard, inside a shard by name or by offset */
	const struct st_tensor **ord = malloc(m->n_tensors * sizeof *ord);
	size_t n = 0;
	for (size_t s = 0; s < m->n_shards; s++) {
		size_t first = n;
		for (size_t i = 0; i < m->n_tensors; i++)
			if (m->tensors[i].shard == s)
				ord[n++] = &m->tensors[i];
		if (lexicographic)
			qsort(ord + first, n - first, sizeof *ord, by_name);
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct st_tensor *t = ord[i];
		size_t l = strlen(t->name);
		if (l > 13 && strcmp(t->name + l - 13, ".weight_scale") == 0)
			continue;
		struct expect x = { .t = t };
		cr_assert(map_name(t->name, &x), "unexpected tensor %s", t->name);
		char sn[256];
		snprintf(sn, sizeof sn, "%s_scale", t->name);
		x.scale = st_find(m, sn);
		const struct gguf_tensor *g = gguf_tensor(r, k++);
		cr_assert_not_null(g, "output has too few tensors");
		cr_assert(eq(str, (char *)g->name, x.gguf), "tensor %zu", k - 1);
		cr_assert(eq(u32, g->type, GGUF_TYPE_F32), "%s", x.gguf);
		uint64_t rows, cols;
		float *v = expected_values(&x, bitnet, mul, n_head, n_kv, &rows, &cols);
		cr_assert(eq(u64, g->ne[0], cols), "%s", x.gguf);
		cr_assert(eq(u64, g->n_dims == 2 ? g->ne[1] : 1, rows), "%s", x.gguf);
		cr_assert(eq(int, memcmp(g->data, v, rows * cols * 4), 0), "%s: values differ",
			  x.gguf);
		free(v);
	}
	cr_expect(eq(sz, gguf_n_tensors(r), k));
	/* a few KVs */
	uint32_t bc;
	char key[64];
	char *arch_kv = str_kv(r, "general.architecture");
	cr_expect(eq(str, arch_kv, (char *)want_arch));
	free(arch_kv);
	snprintf(key, sizeof key, "%s.block_count", want_arch);
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, key), &bc, &e), 0), "%s", e.msg);
	cr_expect(eq(u32, bc, layers));
	struct gguf_str nm;
	cr_assert(eq(int, gguf_get_str(r, gguf_find_key(r, "general.name"), &nm, &e), 0));
	const char *base = strrchr(dir, '/') + 1;
	cr_expect(eq(int, (int)nm.len, (int)strlen(base)));
	cr_expect(eq(int, memcmp(nm.data, base, nm.len), 0));
	gguf_close(r);
	json_decref(cfg);
	free(cfgp);
	free(ord);
	st_close(m);
}

Test(gguf_convert, sharded_bf16_bitnet_matches_an_independent_recomputation)
{
	const char *args[] = { "--seed", "7", "--shards", "3", NULL };
	char *d = gen("unseen_tiny", "tiny-s7", "tiny", args);
	char *o = convert_ok(d, "out.gguf", NULL);
	check_model(d, o, true);
	free(o);
	free(d);
}

Test(gguf_convert, f16_and_f32_bitnet_checkpoints_match_an_independent_recomputation)
{
	const char *a16[] = { "--seed", "11", "--layers", "2", "--dtype", "f16", NULL };
	const char *a32[] = { "--seed", "3", "--layers", "3", "--dtype", "f32", "--tensor-order",
			      "name", NULL };
	char *d16 = gen("unseen_f16", "tiny-f16", "tiny", a16);
	char *d32 = gen("unseen_f32", "tiny-f32", "tiny", a32);
	const char *off[] = { "--tensor-order", "offset", NULL };
	char *o16 = convert_ok(d16, "out.gguf", NULL);
	char *o32 = convert_ok(d32, "out.gguf", off);
	check_model(d16, o16, true);
	check_model(d32, o32, false);
	free(o16);
	free(o32);
	free(d16);
	free(d32);
}

Test(gguf_convert, packed_gqa_llama_matches_an_independent_recomputation_in_both_orders)
{
	const char *args[] = { "--seed", "5", "--shards", "2", NULL };
	char *d = gen("unseen_llama", "tiny-llama-s5", "tiny-llama", args);
	const char *off[] = { "--tensor-order", "offset", NULL };
	char *lex = convert_ok(d, "lex.gguf", NULL), *o = convert_ok(d, "off.gguf", off);
	check_model(d, lex, true);
	check_model(d, o, false);
	free(lex);
	free(o);
	free(d);
}

/* ---- f16 ------------------------------------------------------------------------------------ */

Test(gguf_convert, f16_output_rounds_2d_weights_and_keeps_norms_and_embeddings_f32)
{
	char *d = gen("f16_out", "tiny-llama", "tiny-llama", NULL);
	const char *f16[] = { "--outtype", "f16", NULL };
	const char *f16e[] = { "--outtype", "f16", "--quant-embd", NULL };
	char *of = convert_ok(d, "f32.gguf", NULL), *oh = convert_ok(d, "f16.gguf", f16);
	char *oe = convert_ok(d, "f16e.gguf", f16e);
	struct bn_err e = { 0 };
	struct gguf_reader *rf = gguf_open(of, &e), *rh = gguf_open(oh, &e), *re = gguf_open(oe, &e);
	cr_assert(rf && rh && re, "%s", e.msg);
	uint32_t ft;
	cr_assert(eq(int, gguf_get_u32(rh, gguf_find_key(rh, "general.file_type"), &ft, &e), 0));
	cr_expect(eq(u32, ft, 1));
	cr_assert(eq(sz, gguf_n_tensors(rh), gguf_n_tensors(rf)));
	for (size_t i = 0; i < gguf_n_tensors(rf); i++) {
		const struct gguf_tensor *a = gguf_tensor(rf, i), *b = gguf_tensor(rh, i);
		const struct gguf_tensor *c = gguf_tensor(re, i);
		bool norm = strstr(a->name, "_norm.weight") != NULL;
		bool embd = strcmp(a->name, "token_embd.weight") == 0;
		uint32_t want = (a->n_dims == 1 || norm || embd) ? GGUF_TYPE_F32 : GGUF_TYPE_F16;
		cr_expect(eq(u32, b->type, want), "%s", a->name);
		cr_expect(eq(u32, c->type, embd ? GGUF_TYPE_F16 : want), "%s", a->name);
		uint64_t n = a->nbytes / 4;
		const float *x = (const float *)a->data;
		for (uint64_t j = 0; j < n; j++) {
			if (b->type == GGUF_TYPE_F32) {
				cr_assert(eq(u32, bn_f32_bits(((const float *)b->data)[j]), bn_f32_bits(x[j])));
			} else {
				uint16_t h;
				memcpy(&h, b->data + 2 * j, 2);
				cr_assert(eq(u16, h, bn_f32_to_f16(x[j])), "%s[%llu]", a->name,
					  (unsigned long long)j);
			}
		}
	}
	gguf_close(rf);
	gguf_close(rh);
	gguf_close(re);
	free(of);
	free(oh);
	free(oe);
	free(d);
}

/* ---- a byte-level BPE tokenizer ------------------------------------------------------------- */

static const char llama3_regex[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
	"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Replaces tiny-llama's tokenizer.model by a 510-token BPE vocabulary with two special added
 * tokens (ids 510, 511) and merges as pairs. */
static void write_bpe(const char *dir, bool regex)
{
	json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
	for (int i = 0; i < 510; i++) {
		char s[16];
		snprintf(s, sizeof s, "t%d", i);
		json_object_set_new(vocab, s, json_integer(i));
	}
	json_array_append_new(merges, json_pack("[s,s]", "t", "1"));
	json_array_append_new(merges, json_pack("[s,s]", "t 1", "0"));
	json_array_append_new(added, json_pack("{s:i,s:s,s:b}", "id", 510, "content", "<|begin|>",
					       "special", 1));
	json_array_append_new(added, json_pack("{s:i,s:s,s:b}", "id", 511, "content", "<|end|>",
					       "special", 1));
	json_t *pre = json_pack("{s:s,s:[{s:s,s:{s:s}}]}", "type", "Sequence", "pretokenizers",
				"type", "Split", "pattern", "Regex", regex ? llama3_regex : "\\s+");
	json_t *tj = json_pack("{s:o,s:o,s:{s:s,s:o,s:o}}", "added_tokens", added, "pre_tokenizer",
			       pre, "model", "type", "BPE", "vocab", vocab, "merges", merges);
	char *p = bn_path_join(dir, "tokenizer.json");
	cr_assert(eq(int, json_dump_file(tj, p, 0), 0));
	free(p);
	json_decref(tj);
	p = bn_path_join(dir, "tokenizer.model");
	unlink(p);
	free(p);
	p = bn_path_join(dir, "tokenizer_config.json");
	json_t *tc = json_pack("{s:s,s:s,s:b}", "bos_token", "<|begin|>", "eos_token", "<|end|>",
			       "add_bos_token", 1);
	cr_assert(eq(int, json_dump_file(tc, p, 0), 0));
	json_decref(tc);
	free(p);
}

static char *str_kv(struct gguf_reader *r, const char *key)
{
	struct gguf_str s;
	struct bn_err e = { 0 };
	int64_t k = gguf_find_key(r, key);
	cr_assert(ge(i64, k, 0), "no %s", key);
	cr_assert(eq(int, gguf_get_str(r, k, &s, &e), 0), "%s", e.msg);
	return strndup(s.data, s.len);
}

Test(gguf_convert, bpe_tokenizer_json_gives_gpt2_tokens_merges_and_special_ids)
{
	char *d = gen("bpe", "tiny-llama", "tiny-llama", NULL);
	write_bpe(d, true);
	char *o = convert_ok(d, "out.gguf", NULL);
	struct bn_err e = { 0 };
	struct gguf_reader *r = gguf_open(o, &e);
	cr_assert_not_null(r, "%s", e.msg);
	char *model = str_kv(r, "tokenizer.ggml.model"), *pre = str_kv(r, "tokenizer.ggml.pre");
	cr_expect(eq(str, model, "gpt2"));
	cr_expect(eq(str, pre, "llama-bpe"));
	free(model);
	free(pre);
	uint64_t n;
	int64_t k = gguf_find_key(r, "tokenizer.ggml.tokens");
	cr_assert(eq(int, gguf_get_arr(r, k, GGUF_VTYPE_STRING, &n, &e), 0));
	cr_expect(eq(u64, n, 512));
	cr_expect(lt(i64, gguf_find_key(r, "tokenizer.ggml.scores"), 0));
	k = gguf_find_key(r, "tokenizer.ggml.merges");
	struct gguf_str m;
	cr_assert(eq(int, gguf_get_arr_str(r, k, 1, &m, &e), 0), "%s", e.msg);
	cr_expect(eq(int, (int)m.len, 6));
	cr_expect(eq(int, memcmp(m.data, "t\xc4\xa0" "1 0", 6), 0)); /* the space became U+0120 */
	uint32_t bos, eos;
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, "tokenizer.ggml.bos_token_id"), &bos, &e), 0));
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, "tokenizer.ggml.eos_token_id"), &eos, &e), 0));
	cr_expect(eq(u32, bos, 510));
	cr_expect(eq(u32, eos, 511));
	/* tokenizer_config's tokens first (bos, eos), then config.json's ids for the others */
	cr_expect(eq(str, (char *)gguf_kv_key(r, gguf_find_key(r, "tokenizer.ggml.bos_token_id") + 1),
		     "tokenizer.ggml.eos_token_id"));
	gguf_close(r);
	free(o);
	free(d);
}

Test(gguf_convert, bpe_pre_tokenizer_comes_from_the_family_or_from_pre)
{
	char *dir = mkdtemp_test("bpe_pre");
	char *d = bn_path_join(dir, "Falcon3-1B-Instruct-1.58bit");
	char *bin = tu_bin("mkmodel");
	const char *mk[] = { bin, "-q", "--preset", "tiny-llama", "--outdir", d, NULL };
	struct tu_run r = tu_run(mk, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	write_bpe(d, false);
	char *o = convert_ok(d, "a.gguf", NULL);
	struct bn_err e = { 0 };
	struct gguf_reader *g = gguf_open(o, &e);
	char *pre = str_kv(g, "tokenizer.ggml.pre");
	cr_expect(eq(str, pre, "falcon3"));
	free(pre);
	gguf_close(g);
	const char *ov[] = { "--pre", "llama-bpe", NULL };
	char *o2 = convert_ok(d, "b.gguf", ov);
	g = gguf_open(o2, &e);
	pre = str_kv(g, "tokenizer.ggml.pre");
	cr_expect(eq(str, pre, "llama-bpe"));
	free(pre);
	gguf_close(g);
	/* no family, no Llama-3 regex: refuse and say how to choose */
	char *d2 = gen("bpe_pre_unknown", "tiny-llama", "tiny-llama", NULL);
	write_bpe(d2, false);
	char *o3 = bn_path_join(d2, "c.gguf");
	const char *args[] = { d2, "--outfile", o3, NULL };
	r = convert(args);
	cr_expect(eq(int, r.status, 1));
	cr_expect(strstr(r.err, "--pre") != NULL, "%s", r.err);
	cr_expect(bn_file_exists(o3) == false);
	tu_run_free(&r);
	free(o);
	free(o2);
	free(o3);
	free(d);
	free(d2);
	free(dir);
	free(bin);
}

/* ---- chat templates outside tokenizer_config.json (convert-quantize.md §6.4) --------------- */

/* mkmodel's tokenizer_config.json chat_template for the tiny preset */
static const char tiny_template[] = "{% for m in messages %}{{ m['content'] }}{% endfor %}";

/* Sets dir/<file>'s top-level key to val (deletes it if val is NULL). */
static void edit_json(const char *dir, const char *file, const char *key, json_t *val)
{
	char *p = bn_path_join(dir, file);
	json_error_t je;
	json_t *c = json_load_file(p, JSON_PRESERVE_ORDER, &je);
	cr_assert_not_null(c, "%s: %s", p, je.text);
	if (val)
		json_object_set_new(c, key, val);
	else
		json_object_del(c, key);
	cr_assert(eq(int, json_dump_file(c, p, JSON_PRESERVE_ORDER), 0));
	json_decref(c);
	free(p);
}

static void put_file(const char *dir, const char *name, const char *text, size_t len)
{
	char *p = bn_path_join(dir, name);
	cr_assert(eq(int, tu_write_file(p, text, len), 0), "%s", p);
	free(p);
}

static bool has_key(const char *gguf, const char *key)
{
	struct bn_err e = { 0 };
	struct gguf_reader *r = gguf_open(gguf, &e);
	cr_assert_not_null(r, "%s", e.msg);
	bool has = gguf_find_key(r, key) >= 0;
	gguf_close(r);
	return has;
}

/* The string KV `key` of a GGUF file (malloc'd); fails the test if it is not there. */
static char *str_kv_of(const char *gguf, const char *key)
{
	struct bn_err e = { 0 };
	struct gguf_reader *r = gguf_open(gguf, &e);
	cr_assert_not_null(r, "%s", e.msg);
	char *s = str_kv(r, key);
	gguf_close(r);
	return s;
}

Test(gguf_convert, chat_template_jinja_is_used_when_tokenizer_config_has_no_template)
{
	char *d = gen("tmpl_jinja", "tiny", "tiny", NULL);
	edit_json(d, "tokenizer_config.json", "chat_template", NULL);
	/* read as Python's text mode does: UTF-8, and \r\n or a lone \r become \n */
	static const char jinja[] = "{{ bos_token }}\r\n{% for m in messages %}\xc3\xa9"
				    "{{ m['content'] }}\r{% endfor %}\n";
	put_file(d, "chat_template.jinja", jinja, sizeof jinja - 1);
	static const char cj[] = "{\"chat_template\": \"from chat_template.json\"}";
	put_file(d, "chat_template.json", cj, sizeof cj - 1);
	char *o = convert_ok(d, "jinja.gguf", NULL);
	char *t = str_kv_of(o, "tokenizer.chat_template");
	cr_expect(eq(str, t, "{{ bos_token }}\n{% for m in messages %}\xc3\xa9{{ m['content'] }}\n"
		     "{% endfor %}\n"), "the .jinja wins over chat_template.json");
	cr_expect(not(has_key(o, "tokenizer.chat_templates")));
	free(t);
	/* without the .jinja: chat_template.json's key */
	char *p = bn_path_join(d, "chat_template.jinja");
	cr_assert(eq(int, unlink(p), 0));
	char *o2 = convert_ok(d, "json.gguf", NULL);
	t = str_kv_of(o2, "tokenizer.chat_template");
	cr_expect(eq(str, t, "from chat_template.json"));
	free(t);
	free(p);
	free(o);
	free(o2);
	free(d);
}

Test(gguf_convert, tokenizer_config_chat_template_wins_over_chat_template_jinja)
{
	char *d = gen("tmpl_both", "tiny", "tiny", NULL);
	static const char jinja[] = "{{ 'from the .jinja' }}";
	put_file(d, "chat_template.jinja", jinja, sizeof jinja - 1);
	char *sub = bn_path_join(d, "additional_chat_templates");
	cr_assert(eq(int, mkdir(sub, 0755), 0));
	put_file(sub, "tool_use.jinja", "T", 1);
	char *o = convert_ok(d, "both.gguf", NULL);
	char *t = str_kv_of(o, "tokenizer.chat_template");
	cr_expect(eq(str, t, (char *)tiny_template));
	cr_expect(not(has_key(o, "tokenizer.chat_templates")));
	cr_expect(not(has_key(o, "tokenizer.chat_template.tool_use")));
	free(t);
	/* the key wins even when it is null: no template at all (dict.get(key, default)) */
	edit_json(d, "tokenizer_config.json", "chat_template", json_null());
	char *o2 = convert_ok(d, "null.gguf", NULL);
	cr_expect(not(has_key(o2, "tokenizer.chat_template")));
	cr_expect(not(has_key(o2, "tokenizer.chat_templates")));
	free(o);
	free(o2);
	free(sub);
	free(d);
}

Test(gguf_convert, additional_jinja_templates_become_named_templates)
{
	char *d = gen("tmpl_named", "tiny", "tiny", NULL);
	edit_json(d, "tokenizer_config.json", "chat_template", NULL);
	put_file(d, "chat_template.jinja", "D", 1);
	char *sub = bn_path_join(d, "additional_chat_templates");
	cr_assert(eq(int, mkdir(sub, 0755), 0));
	put_file(sub, "tool-use.jinja", "T", 1);
	put_file(sub, "rag.jinja", "R", 1);
	put_file(sub, "README.md", "not a template", 14);
	char *o = convert_ok(d, "named.gguf", NULL);
	char *t = str_kv_of(o, "tokenizer.chat_template");
	char *tu = str_kv_of(o, "tokenizer.chat_template.tool_use");
	char *tr = str_kv_of(o, "tokenizer.chat_template.rag");
	cr_expect(eq(str, t, "D"));
	cr_expect(eq(str, tu, "T"));
	cr_expect(eq(str, tr, "R"));
	struct bn_err e = { 0 };
	struct gguf_reader *r = gguf_open(o, &e);
	cr_assert_not_null(r, "%s", e.msg);
	int64_t k = gguf_find_key(r, "tokenizer.chat_templates");
	uint64_t n;
	cr_assert(eq(int, gguf_get_arr(r, k, GGUF_VTYPE_STRING, &n, &e), 0), "%s", e.msg);
	cr_assert(eq(u64, n, 2));
	struct gguf_str a, b;
	cr_assert(eq(int, gguf_get_arr_str(r, k, 0, &a, &e), 0), "%s", e.msg);
	cr_assert(eq(int, gguf_get_arr_str(r, k, 1, &b, &e), 0), "%s", e.msg);
	cr_expect(a.len == 3 && memcmp(a.data, "rag", 3) == 0); /* in file name order */
	cr_expect(b.len == 8 && memcmp(b.data, "tool_use", 8) == 0);
	gguf_close(r);
	free(t);
	free(tu);
	free(tr);
	free(o);
	free(sub);
	free(d);
}

/* ---- malformed inputs ------------------------------------------------------------------------- */

/* Runs the converter on dir expecting failure: exit 1, one "gguf-convert: " line containing
 * `needle`, and neither the output nor its temp file left behind. */
static void expect_refusal(const char *dir, const char *needle, const char *const *extra)
{
	char *out = bn_path_join(dir, "out.gguf");
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	const char *args[12] = { dir, "--outfile", out };
	size_t n = 3;
	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	struct tu_run r = convert(args);
	cr_expect(eq(int, r.status, 1), "%s: %s", dir, r.err);
	cr_expect(strncmp(r.err, "gguf-convert: ", 14) == 0, "%s", r.err);
	const char *nl = strchr(r.err, '\n');
	cr_expect(nl && nl[1] == '\0', "more than one line: %s", r.err);
	cr_expect(strstr(r.err, needle) != NULL, "'%s' not in: %s", needle, r.err);
	cr_expect(bn_file_exists(out) == false, "%s left behind", out);
	cr_expect(bn_file_exists(tmp) == false, "%s left behind", tmp);
	cr_expect(eq(str, r.out, ""), "stdout: %s", r.out);
	tu_run_free(&r);
	free(out);
}

static char *file_in(const char *dir, const char *name)
{
	return bn_path_join(dir, name);
}

/* Rewrites dir/model.safetensors: the JSON header through edit(), data appended with `extra`
 * zero bytes. */
static void rewrite_st(const char *dir, void (*edit)(json_t *hdr, uint64_t data_len), size_t extra)
{
	char *p = file_in(dir, "model.safetensors");
	size_t len;
	char *buf = tu_read_file(p, &len);
	cr_assert_not_null(buf);
	uint64_t hl;
	memcpy(&hl, buf, 8);
	json_error_t je;
	json_t *h = json_loadb(buf + 8, hl, 0, &je);
	cr_assert_not_null(h, "%s", je.text);
	uint64_t data_len = len - 8 - hl;
	edit(h, data_len);
	char *js = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t jl = strlen(js), pad = (8 - jl % 8) % 8;
	uint64_t nhl = jl + pad;
	FILE *f = fopen(p, "wb");
	cr_assert_not_null(f);
	fwrite(&nhl, 8, 1, f);
	fwrite(js, 1, jl, f);
	for (size_t i = 0; i < pad; i++)
		fputc(' ', f);
	fwrite(buf + 8 + hl, 1, data_len, f);
	for (size_t i = 0; i < extra; i++)
		fputc(0, f);
	fclose(f);
	free(js);
	json_decref(h);
	free(buf);
	free(p);
}

static void edit_offsets(json_t *h, uint64_t data_len)
{
	json_t *t = json_object_get(h, "model.norm.weight");
	json_object_set_new(t, "data_offsets", json_pack("[I,I]", (json_int_t)data_len - 512,
							 (json_int_t)data_len + 512));
}

static void edit_dtype_i8(json_t *h, uint64_t data_len)
{
	(void)data_len;
	json_t *t = json_object_get(h, "model.norm.weight");
	json_object_set_new(t, "dtype", json_string("I8"));
	json_object_set_new(t, "shape", json_pack("[i]", 1024));
}

static void edit_dtype_u8(json_t *h, uint64_t data_len)
{
	(void)data_len;
	json_t *t = json_object_get(h, "model.layers.0.mlp.up_proj.weight");
	json_object_set_new(t, "dtype", json_string("U8"));
	json_object_set_new(t, "shape", json_pack("[i,i]", 2048, 256));
}

static void edit_lm_head(json_t *h, uint64_t data_len)
{
	json_object_set_new(h, "lm_head.weight",
			    json_pack("{s:s,s:[i,i],s:[I,I]}", "dtype", "F32", "shape", 300, 256,
				      "data_offsets", (json_int_t)data_len,
				      (json_int_t)data_len + 300 * 256 * 4));
}

static void edit_unknown(json_t *h, uint64_t data_len)
{
	json_object_set_new(h, "model.layers.0.mlp.extra.weight",
			    json_pack("{s:s,s:[i],s:[I,I]}", "dtype", "F32", "shape", 4,
				      "data_offsets", (json_int_t)data_len, (json_int_t)data_len + 16));
}

static void edit_orphan_scale(json_t *h, uint64_t data_len)
{
	(void)data_len;
	/* a weight_scale whose weight is not there (renamed: the data area stays gap-free) */
	json_t *t = json_incref(json_object_get(h, "model.layers.1.mlp.down_proj.weight"));
	json_object_del(h, "model.layers.1.mlp.down_proj.weight");
	json_object_set_new(h, "model.layers.1.mlp.down_proj.weight_scale", t);
}

static void set_config(const char *dir, const char *key, json_t *val)
{
	char *p = file_in(dir, "config.json");
	json_error_t je;
	json_t *c = json_load_file(p, JSON_PRESERVE_ORDER, &je);
	cr_assert_not_null(c);
	if (val)
		json_object_set_new(c, key, val);
	else
		json_object_del(c, key);
	cr_assert(eq(int, json_dump_file(c, p, JSON_PRESERVE_ORDER), 0));
	json_decref(c);
	free(p);
}

Test(gguf_convert_malformed, truncated_safetensors)
{
	char *d = gen("bad_trunc", "tv-f32", "tv-f32", NULL);
	char *p = file_in(d, "model.safetensors");
	cr_assert(eq(int, truncate(p, 1000000), 0));
	expect_refusal(d, "model.safetensors", NULL);
	free(p);
	free(d);
}

Test(gguf_convert_malformed, header_offsets_out_of_range)
{
	char *d = gen("bad_offsets", "tv-f32", "tv-f32", NULL);
	rewrite_st(d, edit_offsets, 0);
	expect_refusal(d, "model.safetensors", NULL);
	free(d);
}

Test(gguf_convert_malformed, bad_json_and_missing_config)
{
	char *d = gen("bad_json", "tv-f32", "tv-f32", NULL);
	char *p = file_in(d, "config.json");
	cr_assert(eq(int, tu_write_file(p, "{\"architectures\": [", 19), 0));
	expect_refusal(d, "invalid JSON", NULL);
	unlink(p);
	expect_refusal(d, "config.json", NULL);
	free(p);
	free(d);
}

Test(gguf_convert_malformed, missing_tokenizer)
{
	char *d = gen("bad_tok", "tv-f32", "tv-f32", NULL);
	char *p = file_in(d, "tokenizer.model");
	unlink(p);
	expect_refusal(d, "no tokenizer", NULL);
	cr_assert(eq(int, tu_write_file(p, "\x0a\x05garbage", 9), 0));
	expect_refusal(d, "tokenizer.model", NULL);
	free(p);
	free(d);
}

Test(gguf_convert_malformed, chat_template_jinja_that_is_not_utf8_or_is_empty)
{
	char *d = gen("bad_jinja", "tiny", "tiny", NULL);
	/* refused as gguf-py's strict decode refuses it, even where tokenizer_config's key wins */
	put_file(d, "chat_template.jinja", "{{ \xe9t\xe9 }}", 9);
	expect_refusal(d, "/chat_template.jinja: not valid UTF-8 at byte 3", NULL);
	edit_json(d, "tokenizer_config.json", "chat_template", NULL);
	expect_refusal(d, "/chat_template.jinja: not valid UTF-8 at byte 3", NULL);
	/* empty: converted without a template, and a warning says so */
	put_file(d, "chat_template.jinja", "", 0);
	char *out = bn_path_join(d, "out.gguf"), *bin = tu_bin("gguf-convert");
	const char *argv[] = { bin, d, "--outfile", out, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_expect(strstr(r.err, "/chat_template.jinja: empty; no chat template is written from it\n")
		  != NULL, "%s", r.err);
	cr_expect(not(has_key(out, "tokenizer.chat_template")));
	tu_run_free(&r);
	/* without tokenizer_config.json gguf-py reads no template at all; say so */
	put_file(d, "chat_template.jinja", "J", 1);
	char *tc = bn_path_join(d, "tokenizer_config.json");
	cr_assert(eq(int, unlink(tc), 0));
	r = tu_run(argv, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_expect(strstr(r.err, "/chat_template.jinja: ignored without a non-empty "
			 "tokenizer_config.json next to it (as gguf-py does)\n") != NULL, "%s", r.err);
	cr_expect(not(has_key(out, "tokenizer.chat_template")));
	tu_run_free(&r);
	free(tc);
	free(out);
	free(bin);
	free(d);
}

Test(gguf_convert_malformed, wrong_dtypes)
{
	char *d = gen("bad_dtype", "tv-f32", "tv-f32", NULL);
	rewrite_st(d, edit_dtype_i8, 0);
	expect_refusal(d, "dtype I8 is not a float type", NULL);
	char *d2 = gen("bad_dtype_u8", "tv-f32", "tv-f32", NULL);
	rewrite_st(d2, edit_dtype_u8, 0);
	expect_refusal(d2, "weight_scale", NULL);
	free(d);
	free(d2);
}

Test(gguf_convert_malformed, config_sizes_that_contradict_the_tensors)
{
	char *d = gen("bad_sizes", "tv-f32", "tv-f32", NULL);
	set_config(d, "intermediate_size", json_integer(384));
	expect_refusal(d, "intermediate_size", NULL);
	set_config(d, "intermediate_size", json_integer(512));
	set_config(d, "vocab_size", json_integer(320));
	expect_refusal(d, "embed_tokens", NULL);
	set_config(d, "vocab_size", json_integer(300));
	set_config(d, "num_hidden_layers", json_integer(3));
	expect_refusal(d, "model.layers.2.", NULL);
	set_config(d, "num_hidden_layers", json_integer(1));
	expect_refusal(d, "block 1", NULL);
	set_config(d, "num_hidden_layers", json_integer(2));
	set_config(d, "num_key_value_heads", json_integer(4));
	expect_refusal(d, "k_proj", NULL);
	free(d);
}

Test(gguf_convert_malformed, unknown_architecture_lists_the_supported_ones)
{
	char *d = gen("bad_arch", "tv-f32", "tv-f32", NULL);
	set_config(d, "architectures", json_pack("[s]", "Qwen2ForCausalLM"));
	expect_refusal(d, "LlamaForCausalLM", NULL);
	free(d);
}

Test(gguf_convert_malformed, lm_head_in_a_bitnet_checkpoint_and_unmappable_names)
{
	char *d = gen("bad_lm_head", "tv-f32", "tv-f32", NULL);
	rewrite_st(d, edit_lm_head, 300 * 256 * 4);
	expect_refusal(d, "lm_head.weight", NULL);
	char *d2 = gen("bad_name", "tv-f32", "tv-f32", NULL);
	rewrite_st(d2, edit_unknown, 16);
	expect_refusal(d2, "model.layers.0.mlp.extra.weight: cannot map", NULL);
	char *d3 = gen("bad_scale", "tv-f32", "tv-f32", NULL);
	rewrite_st(d3, edit_orphan_scale, 0);
	expect_refusal(d3, "no tensor model.layers.1.mlp.down_proj.weight to scale", NULL);
	free(d);
	free(d2);
	free(d3);
}

/* ---- command line ----------------------------------------------------------------------------- */

Test(gguf_convert_cli, help_lists_the_output_types)
{
	const char *a[] = { "--help", NULL };
	struct tu_run r = convert(a);
	cr_expect(eq(int, r.status, 0));
	cr_expect(strstr(r.out, "usage: gguf-convert MODEL_DIR") != NULL);
	cr_expect(strstr(r.out, "f32") && strstr(r.out, "f16") && strstr(r.out, "tl1"), "%s", r.out);
	tu_run_free(&r);
}

Test(gguf_convert_cli, usage_errors_exit_2)
{
	const char *none[] = { NULL };
	const char *bad[] = { "dir", "--bogus", NULL };
	const char *tl[] = { "dir", "--outtype", "f32", "--kernel-config", "k.ini", NULL };
	const char *ty[] = { "dir", "--outtype", "q4_0", NULL };
	const char *th[] = { "dir", "--threads", "0", NULL };
	const char *const *cases[] = { none, bad, tl, ty, th };
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct tu_run r = convert(cases[i]);
		cr_expect(eq(int, r.status, 2), "case %zu: %s", i, r.err);
		tu_run_free(&r);
	}
	struct tu_run r = convert(tl);
	cr_expect(strstr(r.err, "only for --outtype tl1 and tl2") != NULL, "%s", r.err);
	tu_run_free(&r);
}

Test(gguf_convert_cli, writes_the_default_file_name_and_a_summary)
{
	char *d = gen("cli_default", "tv-f32", "tv-f32", NULL);
	const char *a[] = { d, NULL };
	struct tu_run r = convert(a);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	char *o = file_in(d, "ggml-model-f32.gguf");
	cr_expect(bn_file_exists(o));
	cr_expect(strstr(r.out, "24 tensors") && strstr(r.out, "F32") && strstr(r.out, "5045984"),
		  "%s", r.out);
	tu_run_free(&r);
	free(o);
	free(d);
}

/* ---- direct ternary outputs ----------------------------------------------------------------- */

/* gguf-convert -q dir --outfile out under tests/shims/statvfs.c, which makes every filesystem
 * report free_bytes free. */
static struct tu_run convert_with_free(const char *dir, const char *out, uint64_t free_bytes)
{
	char *bin = tu_bin("gguf-convert"), *so = tu_bin("../tests/statvfs.so");
	char pre[4200], fb[64];
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", so);
	snprintf(fb, sizeof fb, "FAKE_FREE_BYTES=%llu", (unsigned long long)free_bytes);
	const char *env[] = { pre, fb, "ASAN_OPTIONS=verify_asan_link_order=0", NULL };
	const char *argv[] = { bin, "-q", dir, "--outfile", out, NULL };
	struct tu_run r = tu_run(argv, env, NULL);
	free(bin);
	free(so);
	return r;
}

Test(gguf_convert_cli, refuses_before_writing_when_the_output_filesystem_is_too_small)
{
	char *d = gen("disk", "tiny", "tiny", NULL);
	char *big = bn_path_join(d, "big.gguf"), *fit = bn_path_join(d, "fit.gguf");
	char *small = bn_path_join(d, "small.gguf"), tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", small);
	struct tu_run r = convert_with_free(d, big, (uint64_t)1 << 50);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	struct stat st;
	cr_assert(eq(int, stat(big, &st), 0));
	uint64_t need = (uint64_t)st.st_size;
	/* exactly the file's size is enough; one byte less is refused (the real disk has room, so
	 * a shim that intercepted nothing would let this pass) */
	r = convert_with_free(d, fit, need);
	cr_expect(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	for (int i = 0; i < 2; i++) {
		uint64_t avail = i ? 0 : need - 1;
		char a[32], b[32], want[8400];
		snprintf(want, sizeof want, "gguf-convert: %s: needs %s (%llu bytes) but only %s "
			 "(%llu bytes) is free there; free some space or write elsewhere with "
			 "--outfile\n", small, bn_fmt_bytes(need, a, sizeof a),
			 (unsigned long long)need, bn_fmt_bytes(avail, b, sizeof b),
			 (unsigned long long)avail);
		r = convert_with_free(d, small, avail);
		cr_expect(eq(int, r.status, 1));
		cr_expect(eq(str, r.err, want));
		cr_expect(not(bn_file_exists(small)), "%s left behind", small);
		cr_expect(not(bn_file_exists(tmp)), "%s left behind", tmp);
		tu_run_free(&r);
	}
	free(big);
	free(fit);
	free(small);
	free(d);
}

Test(gguf_convert_direct, i2_s_of_the_test_vectors_is_the_reference_two_step_result)
{
	static const struct {
		const char *preset, *order, *zero, *stale;
		uint64_t size;
	} v[] = {
		{ "tv-f32", "lexicographic", "6b5de4774bb030b578b3f750f6a7dd4fc24fce17ce69bf58c65e6183acfb6925",
		  "c9f324e55f971a3de2965ea5e12d64f9eb0129ceca88a22e73f7e125598759f7", 469184 },
		{ "tv-bf16", "lexicographic", "525df9b239f6ab5d39aaafd0431466891a39aaf44cc6dd33075566f95520fd16",
		  "9306958f239fd48f9d452e8cf67d46e23193ba6ae886b2f085c8dd28e2362b0c", 469216 },
		{ "tv-llama", "offset", "f4d2461fa54a30ae331f958b75fad8972eb08ea58f224e29b424fffd6711ec9b",
		  "3b5ffbbd9ac1c6ae1cfc55b0010b9e8b10a6654836fbf022148fb2c93793421a", 616320 },
		{ "tv-llama", "lexicographic", "80ce2fdaf1294f8e3aabdcc719c5cb92e59654f9c054283a086bf7f750a0a79d",
		  "3a3fe6fb2ebd45f1cdcd229c24aa853441447424c3bcea66b20d0c91d484f771", 616320 },
	};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		char test[64];
		snprintf(test, sizeof test, "direct_ref_%zu", i);
		char *d = gen(test, v[i].preset, v[i].preset, NULL);
		const char *zero[] = { "--outtype", "i2_s", "--tensor-order", v[i].order, NULL };
		const char *stale[] = { "--outtype", "i2_s", "--tensor-order", v[i].order,
					"--emulate-stale-tail", NULL };
		char *oz = convert_ok(d, "zero.gguf", zero), *os = convert_ok(d, "stale.gguf", stale);
		expect_sha(oz, v[i].size, v[i].zero);
		expect_sha(os, v[i].size, v[i].stale);
		free(oz);
		free(os);
		if (i == 0) { /* setup_env --quant-embd: --token-embedding-type f16; n_embd 256: no change */
			const char *qe[] = { "--outtype", "i2_s", "--quant-embd", NULL };
			char *oq = convert_ok(d, "qe.gguf", qe);
			expect_sha(oq, v[i].size, v[i].zero);
			free(oq);
		}
		free(d);
	}
}

Test(gguf_convert_direct, output_does_not_depend_on_the_thread_count)
{
	char *d = gen("direct_threads", "tiny-llama", "tiny-llama", NULL);
	const char *t1[] = { "--outtype", "i2_s", "--threads", "1", "--emulate-stale-tail", NULL };
	const char *t4[] = { "--outtype", "i2_s", "--threads", "4", "--emulate-stale-tail", NULL };
	char *a = convert_ok(d, "t1.gguf", t1), *b = convert_ok(d, "t4.gguf", t4);
	char ha[65], hb[65];
	cr_assert(eq(int, tu_sha256_file(a, ha), 0));
	cr_assert(eq(int, tu_sha256_file(b, hb), 0));
	cr_expect(eq(str, ha, hb));
	free(a);
	free(b);
	free(d);
}

/* Every tensor of the direct file q decodes to what the f32 file f holds: I2_S and TQ to the
 * ternary values (-0 as +0; TQ with the block's max rounded to fp16), F16 to the rounded value,
 * F32 bit for bit; and both files have the same KVs apart from file_type and
 * quantization_version. */
static void check_direct(const char *f, const char *q, uint32_t ternary_type)
{
	struct bn_err e = { 0 };
	struct gguf_reader *rf = gguf_open(f, &e), *rq = gguf_open(q, &e);
	cr_assert(rf && rq, "%s", e.msg);
	cr_assert(eq(sz, gguf_n_kv(rq), gguf_n_kv(rf) + 1));
	cr_expect(eq(str, (char *)gguf_kv_key(rq, (int64_t)gguf_n_kv(rf)),
		     "general.quantization_version"));
	for (size_t k = 0; k < gguf_n_kv(rf); k++) {
		const uint8_t *a, *b;
		size_t la, lb;
		cr_assert(eq(int, gguf_kv_raw(rf, (int64_t)k, &a, &la), 0));
		cr_assert(eq(int, gguf_kv_raw(rq, (int64_t)k, &b, &lb), 0));
		if (strcmp(gguf_kv_key(rf, (int64_t)k), "general.file_type") != 0)
			cr_expect(la == lb && memcmp(a, b, la) == 0, "KV %s differs",
				  gguf_kv_key(rf, (int64_t)k));
	}
	size_t n_tern = 0;
	for (size_t i = 0; i < gguf_n_tensors(rf); i++) {
		const struct gguf_tensor *a = gguf_tensor(rf, i), *b = gguf_tensor(rq, i);
		cr_assert(eq(str, (char *)a->name, (char *)b->name));
		const float *x = (const float *)a->data;
		uint64_t n = a->nbytes / 4, K = a->ne[0];
		if (b->type == GGUF_TYPE_F32) {
			cr_expect(eq(int, memcmp(a->data, b->data, a->nbytes), 0), "%s", a->name);
			continue;
		}
		if (b->type == GGUF_TYPE_F16) {
			for (uint64_t j = 0; j < n; j++) {
				uint16_t h;
				memcpy(&h, b->data + 2 * j, 2);
				cr_assert(eq(u16, h, bn_f32_to_f16(x[j])), "%s", a->name);
			}
			continue;
		}
		cr_assert(eq(u32, b->type, ternary_type), "%s", a->name);
		n_tern++;
		float *y = malloc(n * sizeof *y);
		if (b->type == GGUF_TYPE_I2_S) {
			i2s_dequantize_ref(b->data, n, y);
			for (uint64_t j = 0; j < n; j++)
				cr_assert(eq(flt, y[j], x[j] == 0 ? 0.0f : x[j]), "%s[%llu]", a->name,
					  (unsigned long long)j);
		} else {
			if (b->type == GGUF_TYPE_TQ1_0)
				dequantize_tq1_ref((const struct tq1_block *)b->data, n, y);
			else
				dequantize_tq2_ref((const struct tq2_block *)b->data, n, y);
			for (uint64_t j0 = 0; j0 < n; j0 += 256) {
				float m = 0;
				for (uint64_t j = j0; j < j0 + 256; j++)
					m = fmaxf(m, fabsf(x[j]));
				float d = bn_f16_to_f32(bn_f32_to_f16(m));
				for (uint64_t j = j0; j < j0 + 256; j++) {
					float want = x[j] == 0 ? 0.0f : x[j] > 0 ? d : -d;
					cr_assert(eq(flt, y[j], want), "%s[%llu]", a->name,
						  (unsigned long long)j);
				}
			}
		}
		(void)K;
		free(y);
	}
	cr_expect(gt(sz, n_tern, 0));
	gguf_close(rf);
	gguf_close(rq);
}

Test(gguf_convert_direct, i2_s_tq1_0_and_tq2_0_decode_to_the_f32_values)
{
	const char *args[] = { "--seed", "9", "--shards", "2", NULL };
	char *dl = gen("direct_values_llama", "tiny-llama", "tiny-llama", args);
	char *db = gen("direct_values_bitnet", "tiny", "tiny", args);
	const char *const dirs[2] = { dl, db };
	static const struct {
		const char *name;
		uint32_t type;
	} ty[] = { { "i2_s", GGUF_TYPE_I2_S }, { "tq1_0", GGUF_TYPE_TQ1_0 }, { "tq2_0", GGUF_TYPE_TQ2_0 } };
	for (int m = 0; m < 2; m++) {
		char *f = convert_ok(dirs[m], "f32.gguf", NULL);
		for (size_t t = 0; t < 3; t++) {
			const char *a[] = { "--outtype", ty[t].name, NULL };
			char file[32];
			snprintf(file, sizeof file, "%s.gguf", ty[t].name);
			char *q = convert_ok(dirs[m], file, a);
			check_direct(f, q, ty[t].type);
			free(q);
		}
		free(f);
	}
	free(dl);
	free(db);
}

/* A one-layer checkpoint written here: `arch` with hidden `hid`, intermediate `inter`, `heads` heads of
 * 64, f32 LCG values (not ternary), the §13.1 tokenizer (vocab 300). */
static char *make_ckpt(const char *test, const char *name, const char *arch, unsigned hid,
		       unsigned inter, unsigned heads)
{
	char tvt[128];
	snprintf(tvt, sizeof tvt, "%s_tok", test);
	char *tv = gen(tvt, "tv-f32", "tv-f32", NULL);
	char *dir = mkdtemp_test(test);
	char *d = bn_path_join(dir, name);
	struct bn_err e = { 0 };
	cr_assert(eq(int, bn_mkdir_p(d, &e), 0));
	bool bitnet = strcmp(arch, "LlamaForCausalLM") != 0;
	struct st_entry ent[16];
	size_t n = 0;
#define ADD(nm, a, b) ent[n++] = (struct st_entry){ .name = nm, .dtype = ST_F32, \
						    .n_dims = (b) ? 2 : 1, .shape = { a, b } }
	ADD("model.embed_tokens.weight", 300, hid);
	ADD("model.norm.weight", hid, 0);
	ADD("model.layers.0.input_layernorm.weight", hid, 0);
	ADD("model.layers.0.post_attention_layernorm.weight", hid, 0);
	if (bitnet) {
		ADD("model.layers.0.self_attn.inner_attn_ln.weight", hid, 0);
		ADD("model.layers.0.mlp.ffn_layernorm.weight", inter, 0);
	}
	ADD("model.layers.0.self_attn.q_proj.weight", hid, hid);
	ADD("model.layers.0.self_attn.k_proj.weight", hid, hid);
	ADD("model.layers.0.self_attn.v_proj.weight", hid, hid);
	ADD("model.layers.0.self_attn.o_proj.weight", hid, hid);
	ADD("model.layers.0.mlp.gate_proj.weight", inter, hid);
	ADD("model.layers.0.mlp.up_proj.weight", inter, hid);
	ADD("model.layers.0.mlp.down_proj.weight", hid, inter);
#undef ADD
	size_t perm[16], hl;
	uint8_t *hdr;
	uint64_t dl;
	cr_assert(eq(int, st_header_build(ent, n, ST_LAYOUT_NAME, NULL, perm, &hdr, &hl, &dl, &e), 0),
		  "%s", e.msg);
	char *p = bn_path_join(d, "model.safetensors");
	FILE *f = fopen(p, "wb");
	cr_assert_not_null(f);
	fwrite(hdr, 1, hl, f);
	uint32_t s = 12345;
	for (size_t i = 0; i < n; i++) {
		const struct st_entry *t = &ent[perm[i]];
		uint64_t cnt = t->shape[0] * (t->n_dims > 1 ? t->shape[1] : 1);
		bool norm = t->n_dims == 1;
		for (uint64_t j = 0; j < cnt; j++) {
			s = s * 1664525u + 1013904223u;
			float v = (norm ? 1.0f : 0.0f) + (float)((int)((s >> 16) % 127) - 63) / 4096.0f;
			fwrite(&v, 4, 1, f);
		}
	}
	fclose(f);
	free(p);
	free(hdr);
	json_t *cfg = json_pack("{s:[s],s:i,s:i,s:i,s:i,s:i,s:f,s:i}", "architectures", arch,
				"hidden_size", hid, "intermediate_size", inter, "num_hidden_layers", 1,
				"num_attention_heads", heads, "num_key_value_heads", heads,
				"rms_norm_eps", 1e-5, "vocab_size", 300);
	p = bn_path_join(d, "config.json");
	cr_assert(eq(int, json_dump_file(cfg, p, 0), 0));
	json_decref(cfg);
	free(p);
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "cp '%s/tokenizer.model' '%s/tokenizer_config.json' '%s/'", tv, tv, d);
	struct tu_run r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	free(tv);
	free(dir);
	return d;
}

Test(gguf_convert_direct, refuses_a_checkpoint_that_is_not_ternary_unless_forced)
{
	char *d = make_ckpt("direct_float_llama", "float-llama", "LlamaForCausalLM", 256, 512, 4);
	const char *i2s[] = { "--outtype", "i2_s", NULL };
	const char *tq2[] = { "--outtype", "tq2_0", NULL };
	expect_refusal(d, "not a 1.58-bit checkpoint", i2s);
	expect_refusal(d, "not a 1.58-bit checkpoint", tq2);
	const char *forced[] = { "--outtype", "i2_s", "--force", NULL };
	char *o = convert_ok(d, "forced.gguf", forced);
	cr_expect(bn_file_exists(o));
	free(o);
	/* f32 is a float format: no refusal */
	o = convert_ok(d, "f32.gguf", NULL);
	free(o);
	free(d);
}

Test(gguf_convert_direct, refuses_rows_the_type_cannot_pack_naming_the_tensor)
{
	char *d = make_ckpt("direct_k320", "k320", "BitnetForCausalLM", 256, 320, 4);
	const char *i2s[] = { "--outtype", "i2_s", NULL };
	const char *tq1[] = { "--outtype", "tq1_0", NULL };
	expect_refusal(d, "blk.0.ffn_down.weight: ne[0] = 320 is not a multiple of 128", i2s);
	expect_refusal(d, "blk.0.ffn_down.weight: ne[0] = 320 is not a multiple of 256", tq1);
	free(d);
}

Test(gguf_convert_direct, token_embedding_is_q8_0_when_rows_are_not_256_and_f16_with_quant_embd)
{
	char *d = make_ckpt("direct_q8", "h384", "BitnetForCausalLM", 384, 512, 6);
	const char *a[] = { "--outtype", "i2_s", NULL };
	const char *b[] = { "--outtype", "i2_s", "--quant-embd", NULL };
	char *oa = convert_ok(d, "a.gguf", a), *ob = convert_ok(d, "b.gguf", b);
	char *of = convert_ok(d, "f.gguf", NULL);
	struct bn_err e = { 0 };
	struct gguf_reader *ra = gguf_open(oa, &e), *rb = gguf_open(ob, &e);
	cr_assert(ra && rb, "%s", e.msg);
	const struct gguf_tensor *ta = gguf_tensor(ra, (size_t)gguf_find_tensor(ra, "token_embd.weight"));
	const struct gguf_tensor *tb = gguf_tensor(rb, (size_t)gguf_find_tensor(rb, "token_embd.weight"));
	cr_expect(eq(u32, ta->type, GGUF_TYPE_Q8_0));
	cr_expect(eq(u32, tb->type, GGUF_TYPE_F16));
	gguf_close(ra);
	gguf_close(rb);
	check_direct(of, ob, GGUF_TYPE_I2_S);
	free(oa);
	free(ob);
	free(of);
	free(d);
}

Test(gguf_convert_direct, make_direct_1_builds_the_final_file_straight_from_the_checkpoint)
{
	char *dir = mkdtemp_test("direct_make");
	char *root = tu_root("");
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "make -s -C '%s' MODEL=tiny MODEL_DIR='%s/tiny' LOG_DIR='%s/logs' "
		 "DIRECT=1 convert", root, dir, dir);
	struct tu_run r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s%s", r.out, r.err);
	tu_run_free(&r);
	char *fin = bn_path_join(dir, "tiny/ggml-model-i2_s.gguf");
	char *f32 = bn_path_join(dir, "tiny/ggml-model-f32.gguf");
	cr_expect(bn_file_exists(fin));
	cr_expect(bn_file_exists(f32) == false);
	char *tiny = bn_path_join(dir, "tiny");
	const char *a[] = { "--outtype", "i2_s", NULL };
	char *mine = convert_ok(tiny, "mine.gguf", a);
	char h1[65], h2[65];
	cr_assert(eq(int, tu_sha256_file(fin, h1), 0));
	cr_assert(eq(int, tu_sha256_file(mine, h2), 0));
	cr_expect(eq(str, h1, h2));
	snprintf(cmd, sizeof cmd, "make -s -q -C '%s' MODEL=tiny MODEL_DIR='%s/tiny' LOG_DIR='%s/logs' "
		 "DIRECT=1 convert", root, dir, dir);
	r = tu_sh(cmd);
	cr_expect(eq(int, r.status, 0), "a second make is not a no-op: %s%s", r.out, r.err);
	tu_run_free(&r);
	free(fin);
	free(f32);
	free(tiny);
	free(mine);
	free(root);
	free(dir);
}

/* gguf-convert --outtype T == gguf-convert f32 + i2s-quantize --type T, byte for byte. */
static void expect_two_step(const char *dir, const char *type, bool quant_embd, bool stale)
{
	char *f32 = convert_ok(dir, "two-step-f32.gguf", NULL);
	char *two = bn_path_join(dir, "two-step.gguf");
	char *bin = tu_bin("i2s-quantize");
	const char *qa[12] = { bin, "-q", "--type", type };
	size_t n = 4;
	if (quant_embd) {
		qa[n++] = "--token-embedding-type";
		qa[n++] = "f16";
	}
	if (stale)
		qa[n++] = "--emulate-stale-tail";
	qa[n++] = f32;
	qa[n++] = two;
	qa[n] = NULL;
	struct tu_run r = tu_run(qa, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "i2s-quantize: %s", r.err);
	tu_run_free(&r);
	const char *da[8] = { "--outtype", type };
	n = 2;
	if (quant_embd)
		da[n++] = "--quant-embd";
	if (stale)
		da[n++] = "--emulate-stale-tail";
	da[n] = NULL;
	char *direct = convert_ok(dir, "direct.gguf", da);
	char h1[65], h2[65];
	cr_assert(eq(int, tu_sha256_file(two, h1), 0));
	cr_assert(eq(int, tu_sha256_file(direct, h2), 0));
	cr_expect(eq(str, h2, h1), "%s %s%s%s: direct and two-step differ", dir, type,
		  quant_embd ? " --quant-embd" : "", stale ? " --emulate-stale-tail" : "");
	free(f32);
	free(two);
	free(direct);
	free(bin);
}

Test(gguf_convert_direct, equals_convert_f32_then_i2s_quantize_on_unseen_checkpoints)
{
	const char *args[] = { "--seed", "21", "--layers", "3", NULL };
	char *b = gen("two_step_bitnet", "tiny-s21", "tiny", args);
	char *l = gen("two_step_llama", "tiny-llama-s21", "tiny-llama", args);
	char *h = make_ckpt("two_step_h384", "h384", "BitnetForCausalLM", 384, 512, 6);
	const char *types[] = { "i2_s", "tq1_0", "tq2_0" };
	for (size_t t = 0; t < 3; t++) {
		expect_two_step(b, types[t], false, false);
		expect_two_step(l, types[t], t == 0, false);
	}
	expect_two_step(b, "i2_s", false, true);
	expect_two_step(l, "i2_s", false, true);
	expect_two_step(h, "i2_s", false, true);   /* Q8_0 token embedding */
	expect_two_step(h, "i2_s", true, false);   /* F16 with --quant-embd */
	free(b);
	free(l);
	free(h);
}

/* A small BitNet-b1.58-2B-4T-like checkpoint written here: BitNetForCausalLM, relu2, sub-norms
 * named attn_sub_norm / ffn_sub_norm, projections packed U8 (codes 0..2) with a multiplicative
 * F32 weight_scale (AutoBitLinear), BF16 norms and embedding, GQA 4/2, a BPE tokenizer. */
static char *make_b158(const char *test)
{
	char *dir = mkdtemp_test(test);
	char *d = bn_path_join(dir, "bitnet-b158-small");
	struct bn_err e = { 0 };
	cr_assert(eq(int, bn_mkdir_p(d, &e), 0));
	const unsigned H = 256, F = 512, L = 2, V = 512;
	struct st_entry ent[64];
	char tn[64][96];
	size_t n = 0;
	uint32_t seeds[64];
#define ENT(dt, a, b, ...) do { snprintf(tn[n], sizeof tn[n], __VA_ARGS__);             \
		ent[n] = (struct st_entry){ .name = tn[n], .dtype = dt, .n_dims = (b) ? 2 : 1,   \
					    .shape = { a, b } };                                    \
		seeds[n] = (uint32_t)n * 7919u + 17u; n++; } while (0)
	ENT(ST_BF16, V, H, "model.embed_tokens.weight");
	ENT(ST_BF16, H, 0, "model.norm.weight");
	static const struct {
		const char *nm;
		unsigned m, k;
	} pr[7] = { { "self_attn.q_proj", 256, 256 }, { "self_attn.k_proj", 128, 256 },
		    { "self_attn.v_proj", 128, 256 }, { "self_attn.o_proj", 256, 256 },
		    { "mlp.gate_proj", 512, 256 }, { "mlp.up_proj", 512, 256 },
		    { "mlp.down_proj", 256, 512 } };
	for (unsigned l = 0; l < L; l++) {
		ENT(ST_BF16, H, 0, "model.layers.%u.input_layernorm.weight", l);
		ENT(ST_BF16, H, 0, "model.layers.%u.post_attention_layernorm.weight", l);
		ENT(ST_BF16, H, 0, "model.layers.%u.self_attn.attn_sub_norm.weight", l);
		ENT(ST_BF16, F, 0, "model.layers.%u.mlp.ffn_sub_norm.weight", l);
		for (int i = 0; i < 7; i++) {
			ENT(ST_U8, pr[i].m / 4, pr[i].k, "model.layers.%u.%s.weight", l, pr[i].nm);
			ENT(ST_F32, 1, 0, "model.layers.%u.%s.weight_scale", l, pr[i].nm);
		}
	}
#undef ENT
	size_t perm[64], hl;
	uint8_t *hdr;
	uint64_t dl;
	cr_assert(eq(int, st_header_build(ent, n, ST_LAYOUT_LIBRARY, NULL, perm, &hdr, &hl, &dl, &e), 0),
		  "%s", e.msg);
	char *p = bn_path_join(d, "model.safetensors");
	FILE *f = fopen(p, "wb");
	cr_assert_not_null(f);
	fwrite(hdr, 1, hl, f);
	for (size_t i = 0; i < n; i++) {
		const struct st_entry *t = &ent[perm[i]];
		uint64_t cnt = t->shape[0] * (t->n_dims > 1 ? t->shape[1] : 1);
		uint32_t s = seeds[perm[i]];
		for (uint64_t j = 0; j < cnt; j++) {
			s = s * 1664525u + 1013904223u;
			if (t->dtype == ST_U8) {
				uint8_t b = 0;
				for (int q = 0; q < 4; q++)
					b |= (uint8_t)(((s >> (8 + 5 * q)) % 3) << (2 * q));
				fputc(b, f);
			} else if (t->dtype == ST_F32) { /* weight_scale: a power of two per tensor */
				float v = ldexpf(1.0f, -3 - (int)(perm[i] % 5));
				fwrite(&v, 4, 1, f);
			} else {
				bool norm = t->n_dims == 1;
				float v = (norm ? 1.0f : 0.0f) + (float)((int)((s >> 16) % 127) - 63) / 4096.0f;
				uint16_t h = (uint16_t)(bn_f32_bits(v) >> 16);
				fwrite(&h, 2, 1, f);
			}
		}
	}
	fclose(f);
	free(p);
	free(hdr);
	json_t *cfg = json_pack("{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:{s:s,s:s,s:s},s:i,s:i}",
				"architectures", "BitNetForCausalLM", "hidden_act", "relu2",
				"hidden_size", H, "intermediate_size", F, "num_hidden_layers", L,
				"num_attention_heads", 4, "num_key_value_heads", 2,
				"max_position_embeddings", 4096, "rms_norm_eps", 1e-5, "rope_theta",
				500000.0, "vocab_size", V, "quantization_config", "linear_class",
				"autobitlinear", "quant_method", "bitnet", "quantization_mode", "offline",
				"bos_token_id", 510, "eos_token_id", 511);
	p = bn_path_join(d, "config.json");
	cr_assert(eq(int, json_dump_file(cfg, p, 0), 0));
	json_decref(cfg);
	free(p);
	write_bpe(d, true);
	free(dir);
	return d;
}

Test(gguf_convert, bitnet_b158_family_matches_an_independent_recomputation)
{
	char *d = make_b158("b158");
	char *o = convert_ok(d, "f32.gguf", NULL);
	check_model(d, o, true);
	struct bn_err e = { 0 };
	struct gguf_reader *r = gguf_open(o, &e);
	cr_assert_not_null(r, "%s", e.msg);
	static const char *const keys[] = {
		"general.architecture", "general.name", "bitnet-b1.58.block_count",
		"bitnet-b1.58.context_length", "bitnet-b1.58.embedding_length",
		"bitnet-b1.58.feed_forward_length", "bitnet-b1.58.attention.head_count",
		"bitnet-b1.58.attention.head_count_kv", "bitnet-b1.58.rope.freq_base",
		"bitnet-b1.58.attention.layer_norm_rms_epsilon", "general.file_type",
		"bitnet-b1.58.vocab_size", "bitnet-b1.58.rope.dimension_count",
		"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
		"tokenizer.ggml.token_type", "tokenizer.ggml.merges", NULL };
	for (size_t k = 0; keys[k]; k++)
		cr_expect(eq(str, (char *)gguf_kv_key(r, (int64_t)k), (char *)keys[k]));
	gguf_close(r);
	/* straight to I2_S: the scale of each projection is its weight_scale */
	const char *a[] = { "--outtype", "i2_s", NULL };
	char *q = convert_ok(d, "i2s.gguf", a);
	check_direct(o, q, GGUF_TYPE_I2_S);
	/* mainline llama.cpp: --arch bitnet, which reads the activation from a KV */
	const char *m[] = { "--arch", "bitnet", NULL };
	char *mo = convert_ok(d, "mainline.gguf", m);
	r = gguf_open(mo, &e);
	cr_assert_not_null(r, "%s", e.msg);
	char *act = str_kv(r, "bitnet.hidden_activation"), *arch = str_kv(r, "general.architecture");
	cr_expect(eq(str, act, "relu2"));
	cr_expect(eq(str, arch, "bitnet"));
	free(act);
	free(arch);
	gguf_close(r);
	free(o);
	free(q);
	free(mo);
	free(d);
}

/* mkmodel: the §13.1 test vectors re-derived independently here (LCG, ordinals, BF16 truncation,
 * U8 packing, tokenizer.model hash), the tiny model's constraints, sharding, layouts, stale-file
 * cleanup and the command line. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../tools/mkmodel/mkmodel.h"
#include "bn_file.h"
#include "bn_fp16.h"
#include "safetensors.h"
#include "spm.h"
#include "test_util.h"

/* jansson's json_is_* macros do not survive Criterion's assertion macros. */
static bool jtrue(const json_t *v)
{
	return json_is_true(v);
}
static bool jfalse(const json_t *v)
{
	return json_is_false(v);
}
static bool jint(const json_t *v)
{
	return json_is_integer(v);
}

#define TOKENIZER_SHA256 "f3467e2b0a0da3edab5cb784edfe99419e9431646a65d5ab1b6029e5cbc588aa"

/* Runs mkmodel with the given arguments (NULL-terminated); returns the exit status. */
static int run(struct tu_run *r, const char *a1, const char *a2, const char *a3, const char *a4,
	       const char *a5, const char *a6, const char *a7, const char *a8)
{
	char *bin = tu_bin("mkmodel");
	const char *argv[] = { bin, "-q", a1, a2, a3, a4, a5, a6, a7, a8, NULL };
	*r = tu_run(argv, NULL, NULL);
	free(bin);
	return r->status;
}

static char *gen(const char *test, const char *preset, const char *x1, const char *x2,
		 const char *x3, const char *x4)
{
	char *dir = tu_mkdtemp(test);
	char *out = bn_path_join(dir, preset);
	struct tu_run r;
	cr_assert(eq(int, run(&r, "--preset", preset, "--outdir", out, x1, x2, x3, x4), 0), "%s",
		  r.err);
	tu_run_free(&r);
	free(dir);
	return out;
}

static char *path_in(const char *dir, const char *name)
{
	return bn_path_join(dir, name);
}

/* §13.1, re-implemented: per-tensor seed, then k per element. */
struct lcg {
	uint32_t s;
};
static struct lcg lcg_for(uint32_t ordinal)
{
	return (struct lcg){ (uint32_t)((ordinal + 1ull) * 2654435761ull) };
}
static int lcg_k(struct lcg *g)
{
	g->s = g->s * 1664525u + 1013904223u;
	return (int)((g->s >> 16) % 127) - 63;
}

Test(lcg, first_values_are_those_of_section_13_1)
{
	const int want0[5] = { -53, 3, 30, -57, -15 }, want4[5] = { -45, 17, -55, 39, -49 };
	struct lcg a = lcg_for(0), b = lcg_for(4);
	for (int i = 0; i < 5; i++) {
		cr_assert(eq(int, lcg_k(&a), want0[i]));
		cr_assert(eq(int, lcg_k(&b), want4[i]));
	}
	/* the tool's own LCG and its jump-ahead agree with stepping */
	uint32_t s = mk_seed(4, 0);
	cr_assert(eq(u32, s, lcg_for(4).s));
	uint32_t t = s;
	for (int i = 0; i < 1000; i++)
		t = mk_lcg_step(t);
	cr_assert(eq(u32, mk_lcg_skip(s, 1000), t));
	cr_assert(eq(u32, mk_lcg_skip(s, 0), s));
	cr_assert(eq(int, mk_lcg_k(mk_lcg_step(mk_seed(0, 0))), -53));
}

/* The tv-bitnet tensors in ordinal order with their base (1 for norms). */
struct tvt {
	char name[96];
	uint64_t m, k; /* k == 0: 1-D */
	float base;
};
static int tv_bitnet(struct tvt *t)
{
	int n = 0;
	t[n++] = (struct tvt){ "model.embed_tokens.weight", 300, 256, 0 };
	t[n++] = (struct tvt){ "model.norm.weight", 256, 0, 1 };
	const char *nm[11] = { "input_layernorm", "post_attention_layernorm", "self_attn.inner_attn_ln",
			       "mlp.ffn_layernorm", "self_attn.q_proj", "self_attn.k_proj",
			       "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
			       "mlp.down_proj" };
	const uint64_t m[11] = { 256, 256, 256, 512, 256, 128, 128, 256, 512, 512, 256 };
	const uint64_t k[11] = { 0, 0, 0, 0, 256, 256, 256, 256, 256, 256, 512 };
	for (int L = 0; L < 2; L++)
		for (int i = 0; i < 11; i++) {
			snprintf(t[n].name, sizeof t[n].name, "model.layers.%d.%s.weight", L, nm[i]);
			t[n].m = m[i];
			t[n].k = k[i];
			t[n].base = i < 4 ? 1.0f : 0.0f;
			n++;
		}
	return n;
}

static void check_tv_bitnet(const char *preset, enum st_dtype dt)
{
	char *dir = gen(preset, preset, NULL, NULL, NULL, NULL);
	char hex[65];
	char *tok = path_in(dir, "tokenizer.model");
	cr_assert(eq(int, tu_sha256_file(tok, hex), 0));
	cr_assert(eq(str, hex, TOKENIZER_SHA256));
	struct tvt tv[24];
	int n = tv_bitnet(tv);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_OFFSET, &err), 0), "%s", err.msg);
	cr_assert(eq(sz, m->n_tensors, 24));
	cr_assert_null(st_metadata(m, 0, "format"), "the test vectors carry no __metadata__");
	uint64_t data = 0;
	for (int i = 0; i < n; i++) {
		const struct st_tensor *t = st_find(m, tv[i].name);
		cr_assert_not_null(t, "%s", tv[i].name);
		cr_assert(eq(int, t->dtype, dt));
		cr_assert(eq(u32, t->n_dims, tv[i].k ? 2 : 1));
		cr_assert(eq(u64, t->shape[0], tv[i].m));
		if (tv[i].k)
			cr_assert(eq(u64, t->shape[1], tv[i].k));
		struct lcg g = lcg_for((uint32_t)i);
		for (uint64_t e = 0; e < t->n_elements; e++) {
			float want = tv[i].base + (float)lcg_k(&g) / 4096.0f;
			uint32_t wb = bn_f32_bits(want);
			if (dt == ST_BF16) {
				uint16_t h;
				memcpy(&h, t->data + 2 * e, 2);
				cr_assert(eq(u16, h, (uint16_t)(wb >> 16)), "%s[%llu]", t->name,
					  (unsigned long long)e);
			} else {
				cr_assert(eq(u32, bn_f32_bits(st_get_f32(t, e)), wb), "%s[%llu]",
					  t->name, (unsigned long long)e);
			}
		}
		data += t->nbytes;
	}
	/* Single dtype: the library's order is the name order, so both orders agree. */
	for (size_t i = 1; i < m->n_tensors; i++)
		cr_assert(strcmp(m->tensors[i - 1].name, m->tensors[i].name) < 0);
	/* Header: compact JSON from the first tensor, space padding to a multiple of 8. */
	uint64_t hl = m->shards[0].header_len;
	cr_assert(eq(u64, hl % 8, 0));
	cr_assert(eq(u64, m->shards[0].map.size, 8 + hl + data));
	const char *h = (const char *)m->shards[0].map.data + 8;
	char want[256];
	size_t es = st_dtype_size(dt);
	snprintf(want, sizeof want, "{\"model.embed_tokens.weight\":{\"dtype\":\"%s\",\"shape\":[300,256],"
		 "\"data_offsets\":[0,%zu]},\"model.layers.0.input_layernorm.weight\":{\"dtype\":\"%s\","
		 "\"shape\":[256],\"data_offsets\":[%zu,%zu]},", st_dtype_name(dt), 76800 * es,
		 st_dtype_name(dt), 76800 * es, 77056 * es);
	cr_assert(eq(int, strncmp(h, want, strlen(want)), 0), "%.200s", h);
	const char *end = memchr(h, '\0', hl) ? NULL : h + hl;
	cr_assert_not_null(end);
	const char *close = end;
	while (close[-1] == ' ')
		close--;
	cr_assert(eq(chr, close[-1], '}'));
	cr_assert(lt(sz, (size_t)(end - close), 8));
	st_close(m);

	/* config.json: §13.1 keys in order, as Python's json.dumps(indent=2) writes them. */
	char *cfg = path_in(dir, "config.json");
	char *text = tu_read_file(cfg, NULL);
	cr_assert(eq(str, text, "{\n  \"architectures\": [\n    \"BitnetForCausalLM\"\n  ],\n"
		     "  \"hidden_size\": 256,\n  \"intermediate_size\": 512,\n  \"num_hidden_layers\": 2,\n"
		     "  \"num_attention_heads\": 4,\n  \"num_key_value_heads\": 2,\n"
		     "  \"max_position_embeddings\": 2048,\n  \"rms_norm_eps\": 1e-05,\n"
		     "  \"rope_theta\": 10000.0,\n  \"vocab_size\": 300,\n  \"bos_token_id\": 1,\n"
		     "  \"eos_token_id\": 2\n}\n"));
	free(text);
	char *tc = path_in(dir, "tokenizer_config.json");
	json_t *j = json_load_file(tc, 0, NULL);
	cr_assert(jtrue(json_object_get(j, "add_bos_token")));
	cr_assert(jfalse(json_object_get(j, "add_eos_token")));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(j, "chat_template")),
		     "{{ messages[0]['content'] }}"));
	json_decref(j);
	free(tc);
	free(cfg);
	free(tok);
	free(dir);
}

Test(tv, f32_checkpoint_is_section_13_1)
{
	check_tv_bitnet("tv-f32", ST_F32);
}

Test(tv, bf16_checkpoint_is_section_13_1_truncated_to_the_top_16_bits)
{
	check_tv_bitnet("tv-bf16", ST_BF16);
}

Test(tv, llama_packs_ternary_codes_and_lays_out_bf16_before_u8)
{
	char *dir = gen("tv-llama", "tv-llama", NULL, NULL, NULL, NULL);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_OFFSET, &err), 0), "%s", err.msg);
	cr_assert(eq(sz, m->n_tensors, 3 + 2 * (2 + 7 * 2)));
	/* offset order: every BF16 tensor (by name), then every U8 one (by name) */
	size_t i = 0;
	for (; i < m->n_tensors && m->tensors[i].dtype == ST_BF16; i++)
		if (i)
			cr_assert(strcmp(m->tensors[i - 1].name, m->tensors[i].name) < 0);
	cr_assert(eq(sz, i, 3 + 2 * 2 + 14));
	cr_assert(eq(str, (char *)m->tensors[0].name, "lm_head.weight"));
	for (; i < m->n_tensors; i++)
		cr_assert(eq(int, m->tensors[i].dtype, ST_U8));

	const char *proj[7] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
				"self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" };
	const uint64_t M[7] = { 256, 128, 128, 256, 512, 512, 256 }, K[7] = { 256, 256, 256, 256, 256, 256, 512 };
	for (int L = 0; L < 2; L++) {
		char name[128];
		snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", L);
		const struct st_tensor *t = st_find(m, name);
		struct lcg g = lcg_for(3 + 9 * L);
		for (int e = 0; e < 256; e++)
			cr_assert(eq(u32, bn_f32_bits(st_get_f32(t, e)),
				     bn_f32_bits(1.0f + (float)lcg_k(&g) / 4096.0f) & 0xffff0000u));
		for (int p = 0; p < 7; p++) {
			snprintf(name, sizeof name, "model.layers.%d.%s.weight_scale", L, proj[p]);
			t = st_find(m, name);
			cr_assert_not_null(t, "%s", name);
			cr_assert(eq(int, t->dtype, ST_BF16));
			cr_assert(eq(u64, t->n_elements, 1));
			cr_assert(eq(u16, (uint16_t)(t->data[0] | t->data[1] << 8), 0x422a)); /* 42.5 */
			snprintf(name, sizeof name, "model.layers.%d.%s.weight", L, proj[p]);
			t = st_find(m, name);
			cr_assert(eq(u64, t->shape[0], M[p] / 4));
			cr_assert(eq(u64, t->shape[1], K[p]));
			/* unpack: element (i*(M/4) + r, c) = (byte[r][c] >> 2i) & 3 */
			struct lcg cg = lcg_for(3 + 9 * L + 2 + p);
			uint64_t mq = M[p] / 4;
			for (uint64_t row = 0; row < M[p]; row++)
				for (uint64_t c = 0; c < K[p]; c++) {
					int k = lcg_k(&cg);
					int code = ((k % 3) + 3) % 3;
					uint8_t b = t->data[(row % mq) * K[p] + c];
					cr_assert(eq(int, (b >> (2 * (row / mq))) & 3, code), "%s (%llu, %llu)",
						  name, (unsigned long long)row, (unsigned long long)c);
				}
		}
	}
	st_close(m);
	char *tc = path_in(dir, "tokenizer_config.json");
	char *text = tu_read_file(tc, NULL);
	cr_assert(eq(str, text, "{\n  \"add_bos_token\": true\n}\n"));
	free(text);
	free(tc);
	char *cfg = path_in(dir, "config.json");
	json_t *j = json_load_file(cfg, 0, NULL);
	cr_assert(eq(str, (char *)json_string_value(json_array_get(json_object_get(j, "architectures"), 0)),
		     "LlamaForCausalLM"));
	cr_assert(eq(dbl, json_real_value(json_object_get(j, "rope_theta")), 500000.0));
	json_decref(j);
	free(cfg);
	free(dir);
}

Test(tv, tokenizer_model_parses_as_section_13_1_describes)
{
	uint8_t *buf;
	size_t len;
	struct bn_err err = { 0 };
	cr_assert(eq(int, mk_tokenizer_model(&buf, &len, &err), 0));
	cr_assert(eq(sz, len, 4857));
	struct spm_model m;
	cr_assert(eq(int, spm_parse(&m, buf, len, "tokenizer.model", &err), 0), "%s", err.msg);
	cr_assert(eq(sz, m.n_pieces, 297));
	cr_assert(eq(str, (char *)m.pieces[0].piece, "<unk>"));
	cr_assert(eq(int, m.pieces[0].type, SPM_UNKNOWN));
	cr_assert(eq(int, m.pieces[2].type, SPM_CONTROL));
	cr_assert(eq(str, (char *)m.pieces[3].piece, "<0x00>"));
	cr_assert(eq(str, (char *)m.pieces[258].piece, "<0xFF>"));
	cr_assert(eq(int, m.pieces[258].type, SPM_BYTE));
	cr_assert(eq(int, m.pieces[259].type, SPM_USER_DEFINED));
	cr_assert(eq(int, m.pieces[260].type, SPM_UNUSED));
	cr_assert(eq(str, (char *)m.pieces[262].piece, "\xe2\x96\x81hello"));
	cr_assert(eq(flt, m.pieces[262].score, -2.0f));
	cr_assert(eq(str, (char *)m.pieces[296].piece, "z"));
	cr_assert(eq(flt, m.pieces[296].score, -45.0f));
	cr_assert(eq(int, m.model_type, 2));
	cr_assert(eq(i64, m.vocab_size, 297));
	cr_assert(eq(int, m.byte_fallback, 1));
	cr_assert(eq(str, m.normalizer_name, "identity"));
	cr_assert(eq(int, m.add_dummy_prefix, 1));
	cr_assert(eq(int, m.remove_extra_whitespaces, 0));
	spm_free(&m);
	free(buf);
}

Test(tv, tokenizer_model_is_read_by_sentencepiece_itself)
{
	struct tu_run r = tu_sh("command -v spm_export_vocab");
	bool have = r.status == 0;
	tu_run_free(&r);
	if (!have)
		cr_skip_test("spm_export_vocab (Debian package sentencepiece) not installed");
	char *dir = tu_mkdtemp("spm_cli");
	char *p = path_in(dir, "tokenizer.model");
	uint8_t *buf;
	size_t len;
	cr_assert(eq(int, mk_tokenizer_model(&buf, &len, NULL), 0));
	cr_assert(eq(int, tu_write_file(p, buf, len), 0));
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "spm_export_vocab --model='%s' | sed -n '263p;297p'", p);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(eq(str, r.out, "\xe2\x96\x81hello\t-2\nz\t-45\n"));
	tu_run_free(&r);
	free(buf);
	free(p);
	free(dir);
}

/* ---- tiny, sharding, layouts ---------------------------------------------------------------- */

static bool is_projection(const char *name)
{
	return strstr(name, "_proj.weight") && !strstr(name, "weight_scale");
}

Test(tiny, has_dims_every_quant_type_accepts_and_ternary_projections)
{
	char *dir = gen("tiny", "tiny", NULL, NULL, NULL, NULL);
	char *cfg = path_in(dir, "config.json");
	json_t *j = json_load_file(cfg, 0, NULL);
	cr_assert_not_null(j);
	json_int_t heads = json_integer_value(json_object_get(j, "num_attention_heads"));
	json_int_t kv = json_integer_value(json_object_get(j, "num_key_value_heads"));
	cr_assert(lt(i64, (int64_t)kv, (int64_t)heads), "GQA");
	cr_assert(eq(str, (char *)json_string_value(json_array_get(json_object_get(j, "architectures"), 0)),
		     "BitnetForCausalLM"));
	json_decref(j);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(eq(str, (char *)st_metadata(m, 0, "format"), "pt"));
	uint64_t total = 0;
	int n_proj = 0;
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct st_tensor *t = &m->tensors[i];
		total += t->nbytes;
		cr_assert(eq(int, t->dtype, ST_BF16));
		if (!is_projection(t->name))
			continue;
		n_proj++;
		uint64_t M = t->shape[0], K = t->shape[1];
		/* I2_S: K % 128; TQ1_0/TQ2_0: rows of 256; TL1/TL2 (lut-kernels.md §1.4): M a
		 * multiple of 32 and K >= 256 with K % 256 == 0 satisfying BK 96/192 (TL2) and
		 * 64/128 (TL1) tilings. */
		cr_assert(eq(u64, K % 256, 0), "%s K=%llu", t->name, (unsigned long long)K);
		cr_assert(eq(u64, M % 128, 0), "%s M=%llu", t->name, (unsigned long long)M);
		/* ternary: the values are {-s, 0, +s} for one s per tensor */
		float s = 0;
		int seen[3] = { 0 };
		for (uint64_t e = 0; e < t->n_elements; e++) {
			float v = st_get_f32(t, e);
			if (v != 0 && s == 0)
				s = v < 0 ? -v : v;
			cr_assert(v == 0 || v == s || v == -s, "%s[%llu] = %g", t->name,
				  (unsigned long long)e, v);
			seen[v < 0 ? 0 : v == 0 ? 1 : 2]++;
		}
		for (int c = 0; c < 3; c++)
			cr_assert(gt(int, seen[c], (int)(t->n_elements / 4)), "%s: unbalanced", t->name);
	}
	cr_assert(eq(int, n_proj, 4 * 7));
	cr_assert(lt(u64, total, 16u << 20), "tiny must stay a few MB");
	st_close(m);
	free(cfg);
	free(dir);
}

/* Same tensors (names, dtypes, shapes, bytes) in two checkpoints. */
static void same_tensors(const char *a, const char *b)
{
	struct st_model *x, *y;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&x, a, ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(eq(int, st_open(&y, b, ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(eq(sz, x->n_tensors, y->n_tensors));
	for (size_t i = 0; i < x->n_tensors; i++) {
		const struct st_tensor *s = &x->tensors[i], *t = st_find(y, s->name);
		cr_assert_not_null(t, "%s", s->name);
		cr_assert(eq(int, s->dtype, t->dtype));
		cr_assert(eq(sz, s->nbytes, t->nbytes));
		cr_assert(eq(int, memcmp(s->data, t->data, s->nbytes), 0), "%s", s->name);
	}
	st_close(x);
	st_close(y);
}

Test(shards, hold_the_same_tensors_with_or_without_the_index)
{
	char *one = gen("shards1", "tiny-llama", NULL, NULL, NULL, NULL);
	char *three = gen("shards3", "tiny-llama", "--shards", "3", NULL, NULL);
	char *f = path_in(three, "model-00002-of-00003.safetensors");
	cr_assert(bn_file_exists(f));
	free(f);
	char *single = path_in(three, "model.safetensors");
	cr_assert_not(bn_file_exists(single));
	free(single);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, three, ST_ORDER_OFFSET, &err), 0), "%s", err.msg);
	cr_assert(m->indexed);
	cr_assert(eq(sz, m->n_shards, 3));
	for (size_t s = 0; s < 3; s++)
		cr_assert(gt(sz, m->shards[s].count, 0));
	/* the embeddings come first in ordinal order, so in the first shard */
	cr_assert(eq(u32, st_find(m, "model.embed_tokens.weight")->shard, 0));
	st_close(m);
	same_tensors(one, three);
	char *idx = path_in(three, ST_INDEX_NAME);
	json_t *j = json_load_file(idx, 0, NULL);
	json_int_t total = json_integer_value(json_object_get(json_object_get(j, "metadata"), "total_size"));
	cr_assert(gt(i64, (int64_t)total, 0));
	json_decref(j);
	/* without the index every *.safetensors file is a shard: same tensors */
	cr_assert(eq(int, unlink(idx), 0));
	same_tensors(one, three);
	free(idx);
	free(one);
	free(three);
}

Test(shards, a_rerun_removes_the_files_it_no_longer_writes)
{
	char *dir = gen("rerun", "tiny", "--shards", "2", NULL, NULL);
	struct tu_run r;
	cr_assert(eq(int, run(&r, "--preset", "tiny", "--outdir", dir, NULL, NULL, NULL, NULL), 0));
	tu_run_free(&r);
	const char *gone[] = { ST_INDEX_NAME, "model-00001-of-00002.safetensors",
			       "model-00002-of-00002.safetensors", "model.safetensors.tmp" };
	for (int i = 0; i < 4; i++) {
		char *p = path_in(dir, gone[i]);
		cr_assert_not(bn_file_exists(p), "%s", gone[i]);
		free(p);
	}
	char *p = path_in(dir, "model.safetensors");
	cr_assert(bn_file_exists(p));
	free(p);
	struct st_model *m;
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, NULL), 0));
	cr_assert_not(m->indexed);
	st_close(m);
	free(dir);
}

Test(layout, name_and_ordinal_orders_hold_the_same_tensors)
{
	char *lib = gen("layout_lib", "tiny-llama", NULL, NULL, NULL, NULL);
	char *nm = gen("layout_name", "tiny-llama", "--tensor-order", "name", NULL, NULL);
	char *ord = gen("layout_ord", "tiny-llama", "--tensor-order", "ordinal", NULL, NULL);
	same_tensors(lib, nm);
	same_tensors(lib, ord);
	struct st_model *m;
	cr_assert(eq(int, st_open(&m, nm, ST_ORDER_OFFSET, NULL), 0));
	for (size_t i = 1; i < m->n_tensors; i++) /* name layout: offset order is name order */
		cr_assert(strcmp(m->tensors[i - 1].name, m->tensors[i].name) < 0);
	st_close(m);
	cr_assert(eq(int, st_open(&m, ord, ST_ORDER_OFFSET, NULL), 0));
	cr_assert(eq(str, (char *)m->tensors[0].name, "model.embed_tokens.weight"));
	cr_assert(eq(str, (char *)m->tensors[1].name, "model.norm.weight"));
	cr_assert(eq(str, (char *)m->tensors[2].name, "lm_head.weight"));
	cr_assert(eq(str, (char *)m->tensors[3].name, "model.layers.0.input_layernorm.weight"));
	st_close(m);
	free(lib);
	free(nm);
	free(ord);
}

Test(options, layers_dtype_and_seed_change_what_they_should)
{
	char *a = gen("opt_a", "tiny", "--layers", "2", "--dtype", "f32");
	char *b = gen("opt_b", "tiny", "--layers", "2", "--seed", "7");
	struct st_model *x, *y;
	cr_assert(eq(int, st_open(&x, a, ST_ORDER_NAME, NULL), 0));
	cr_assert(eq(int, st_open(&y, b, ST_ORDER_NAME, NULL), 0));
	cr_assert(eq(sz, x->n_tensors, 2 + 2 * 11));
	cr_assert(eq(int, st_find(x, "model.norm.weight")->dtype, ST_F32));
	cr_assert(eq(int, st_find(y, "model.norm.weight")->dtype, ST_BF16));
	const struct st_tensor *p = st_find(x, "model.layers.1.mlp.up_proj.weight");
	const struct st_tensor *q = st_find(y, "model.layers.1.mlp.up_proj.weight");
	int differ = 0;
	for (uint64_t e = 0; e < p->n_elements; e++)
		differ += (st_get_f32(p, e) < 0) != (st_get_f32(q, e) < 0);
	cr_assert(gt(int, differ, (int)(p->n_elements / 4)), "--seed must change the weights");
	st_close(x);
	st_close(y);
	char *cfg = path_in(a, "config.json");
	json_t *j = json_load_file(cfg, 0, NULL);
	cr_assert(eq(i64, (int64_t)json_integer_value(json_object_get(j, "num_hidden_layers")), 2));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(j, "torch_dtype")), "float32"));
	json_decref(j);
	free(cfg);
	free(a);
	free(b);
}

Test(cli, usage_errors_exit_2_and_help_exits_0)
{
	struct tu_run r;
	cr_assert(eq(int, run(&r, "--help", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 0));
	cr_assert(strstr(r.out, "usage: mkmodel") != NULL);
	tu_run_free(&r);
	cr_assert(eq(int, run(&r, "--list", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 0));
	cr_assert(strstr(r.out, "BitNet-b1.58-2B-4T") != NULL);
	cr_assert(strstr(r.out, "Falcon3-10B-1.58bit") != NULL);
	tu_run_free(&r);
	cr_assert(eq(int, run(&r, "--outdir", "x", NULL, NULL, NULL, NULL, NULL, NULL), 2));
	cr_assert(strstr(r.err, "mkmodel: --preset and --outdir are required") != NULL, "%s", r.err);
	tu_run_free(&r);
	cr_assert(eq(int, run(&r, "--preset", "nope", "--outdir", "x", NULL, NULL, NULL, NULL), 2));
	cr_assert(strstr(r.err, "unknown preset 'nope'") != NULL, "%s", r.err);
	tu_run_free(&r);
	cr_assert(eq(int, run(&r, "--preset", "tv-f32", "--outdir", "x", "--dtype", "bf16", NULL, NULL), 2));
	cr_assert(strstr(r.err, "fixed test vector") != NULL, "%s", r.err);
	tu_run_free(&r);
	cr_assert(eq(int, run(&r, "--preset", "tiny", "--outdir", "x", "--layers", "0", NULL, NULL), 2));
	tu_run_free(&r);
	cr_assert(eq(int, run(&r, "--preset", "tiny", "--outdir", "x", "--tensor-order", "random", NULL, NULL), 2));
	tu_run_free(&r);
	/* a runtime failure exits 1 with one line */
	char *dir = tu_mkdtemp("cli_fail");
	char *file = path_in(dir, "f");
	tu_write_file(file, "x", 1);
	char *sub = path_in(file, "sub");
	cr_assert(eq(int, run(&r, "--preset", "tiny", "--outdir", sub, NULL, NULL, NULL, NULL), 1));
	cr_assert(strncmp(r.err, "mkmodel: ", 9) == 0, "%s", r.err);
	cr_assert(eq(int, (int)(strchr(r.err, '\n') - r.err), (int)strlen(r.err) - 1), "%s", r.err);
	tu_run_free(&r);
	free(sub);
	free(file);
	free(dir);
}

Test(presets, are_consistent_and_name_every_real_model)
{
	const char *real[] = { "bitnet_b1_58-large", "bitnet_b1_58-3B", "BitNet-b1.58-2B-4T",
			       "Llama3-8B-1.58-100B-tokens", "Falcon3-1B-Instruct-1.58bit",
			       "Falcon3-3B-1.58bit", "Falcon3-7B-Instruct-1.58bit", "Falcon3-10B-1.58bit" };
	for (size_t i = 0; i < sizeof real / sizeof *real; i++)
		cr_assert_not_null(mk_preset_find(real[i]), "%s", real[i]);
	for (unsigned i = 0; mk_preset_at(i); i++) {
		const struct mk_preset *p = mk_preset_at(i);
		unsigned hd = p->head_dim ? p->head_dim : p->hidden / p->heads;
		cr_assert(eq(u32, p->heads % p->kv_heads, 0), "%s", p->name);
		cr_assert(p->head_dim || p->hidden % p->heads == 0, "%s", p->name);
		cr_assert(eq(u32, hd % 2, 0), "%s: rope needs an even head size", p->name);
		if (p->packed) /* every projection's rows pack 4 to a byte */
			cr_assert(p->hidden % 4 == 0 && p->intermediate % 4 == 0 &&
				  (p->kv_heads * hd) % 4 == 0 && (p->heads * hd) % 4 == 0, "%s", p->name);
		if (p->bpe) /* room for the base alphabet and the 256 specials */
			cr_assert(gt(u32, p->vocab, 256 + 256), "%s", p->name);
	}
	/* the 2B-4T and Llama-3 vocabularies: 128000 base tokens + 256 specials */
	cr_assert(eq(u32, mk_preset_find("BitNet-b1.58-2B-4T")->vocab, 128256));
}

/* ---- the Llama-3-style tokenizer.json --------------------------------------------------------- */

Test(bpe, tokenizer_json_is_a_consistent_byte_level_bpe)
{
	char *text;
	size_t len;
	struct bn_err err = { 0 };
	cr_assert(eq(int, mk_tokenizer_json(2048, &text, &len, &err), 0), "%s", err.msg);
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	cr_assert_not_null(j, "%s", je.text);
	json_t *model = json_object_get(j, "model");
	cr_assert(eq(str, (char *)json_string_value(json_object_get(model, "type")), "BPE"));
	cr_assert(jtrue(json_object_get(model, "ignore_merges")));
	cr_assert(jfalse(json_object_get(model, "byte_fallback")));
	json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
	cr_assert(eq(sz, json_object_size(vocab), 2048 - 256));
	cr_assert(eq(sz, json_array_size(merges), 2048 - 256 - 256));
	cr_assert(eq(i64, (int64_t)json_integer_value(json_object_get(vocab, "!")), 0));
	cr_assert(jint(json_object_get(vocab, "\xc4\xa0")), "U+0120 (space) in the alphabet");
	for (size_t i = 0; i < json_array_size(merges); i++) {
		const char *mg = json_string_value(json_array_get(merges, i));
		const char *sp = strchr(mg, ' ');
		cr_assert_not_null(sp);
		char a[64], b[64], ab[128];
		snprintf(a, sizeof a, "%.*s", (int)(sp - mg), mg);
		snprintf(b, sizeof b, "%s", sp + 1);
		snprintf(ab, sizeof ab, "%s%s", a, b);
		json_t *ia = json_object_get(vocab, a), *ib = json_object_get(vocab, b),
		       *iab = json_object_get(vocab, ab);
		cr_assert(ia && ib && iab, "merge %zu '%s'", i, mg);
		cr_assert(eq(i64, (int64_t)json_integer_value(iab), (int64_t)(256 + i)));
		cr_assert(lt(i64, (int64_t)json_integer_value(ia), (int64_t)(256 + i)));
		/* the byte-level space U+0120 only starts a token */
		cr_assert_null(strstr(ab + 1, "\xc4\xa0"), "merge %zu '%s'", i, mg);
	}
	json_t *added = json_object_get(j, "added_tokens");
	cr_assert(eq(sz, json_array_size(added), 256));
	json_t *first = json_array_get(added, 0);
	cr_assert(eq(str, (char *)json_string_value(json_object_get(first, "content")), "<|begin_of_text|>"));
	cr_assert(eq(i64, (int64_t)json_integer_value(json_object_get(first, "id")), 2048 - 256));
	cr_assert(jtrue(json_object_get(first, "special")));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(json_array_get(added, 9), "content")),
		     "<|eot_id|>"));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(json_array_get(added, 255), "content")),
		     "<|reserved_special_token_250|>"));
	json_decref(j);
	free(text);
	cr_assert(eq(int, mk_tokenizer_json(300, &text, &len, &err), -BN_EINVAL));
}

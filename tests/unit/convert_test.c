/* gguf-convert's library parts: weight_quant on the §13.2 vector, config.json -> class, arch and
 * KVs, the tokenizer exports (SentencePiece padding and added tokens, byte-level BPE tokens,
 * types and merges in both formats, SpecialVocab order, chat templates) and general.name. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/gguf-convert/convert.h"
#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_log.h"
#include "gguf.h"
#include "spm.h"
#include "test_util.h"

/* ---- weight_quant (§5.1, §13.2) ------------------------------------------------------------- */

static struct cv_tensor f32_tensor(const float *x, uint64_t rows, uint64_t cols,
				   struct st_tensor *st)
{
	memset(st, 0, sizeof *st);
	st->name = "model.layers.0.self_attn.q_proj.weight";
	st->dtype = ST_F32;
	st->n_dims = 2;
	st->shape[0] = rows;
	st->shape[1] = cols;
	st->n_elements = rows * cols;
	st->nbytes = rows * cols * 4;
	st->data = (const uint8_t *)x;
	struct cv_tensor t = { .src = st, .n_dims = 2, .cols = cols, .rows = rows, .n = rows * cols,
			       .wquant = true, .ne = { cols, rows, 1, 1 } };
	return t;
}

Test(weight_quant, reproduces_the_section_13_2_vector)
{
	const float x[8] = { 0.3f, -0.05f, 0.01f, -0.4f, 0.0f, 0.07f, -0.2f, 0.15f };
	struct st_tensor st;
	struct cv_tensor t = f32_tensor(x, 1, 8, &st);
	double sum = cv_abs_sum(&t, 0, 1);
	float s = cv_wquant_scale(sum, 8);
	cr_expect(eq(flt, (float)(sum / 8), 0.14750001f));
	cr_expect(eq(flt, s, 6.7796607f));
	struct cv_prep pp;
	cv_wquant_prep(&t, sum, &pp);
	cr_expect(eq(flt, pp.s, s));
	float y[8];
	cv_rows(&t, &pp, 0, 1, y);
	const uint32_t want[8] = { 0x3e170a3e, 0x80000000, 0x00000000, 0xbe170a3e,
				   0x00000000, 0x00000000, 0xbe170a3e, 0x3e170a3e };
	for (int i = 0; i < 8; i++)
		cr_expect(eq(u32, bn_f32_bits(y[i]), want[i]), "element %d", i);
}

Test(weight_quant, clamps_the_mean_of_an_all_zero_tensor_to_1e_5)
{
	cr_expect(eq(flt, cv_wquant_scale(0.0, 64), 1.0f / 1e-5f));
}

Test(weight_quant, gives_the_same_sum_for_any_row_split)
{
	float x[4 * 300];
	for (int i = 0; i < 1200; i++)
		x[i] = (float)((i * 7919) % 127 - 63) / 4096.0f;
	struct st_tensor st;
	struct cv_tensor t = f32_tensor(x, 4, 300, &st);
	double whole = cv_abs_sum(&t, 0, 4);
	double parts = cv_abs_sum(&t, 0, 1) + cv_abs_sum(&t, 1, 3);
	cr_expect(eq(dbl, whole, parts));
}

/* ---- config.json ------------------------------------------------------------------------------ */

static int parse(struct cv_config *c, const char *json, const char *arch, struct bn_err *e)
{
	const struct cv_config_opts o = { .arch = arch };
	return cv_config_parse(c, json, strlen(json), "config.json", &o, e);
}

#define BASE "\"hidden_size\": 256, \"intermediate_size\": 512, \"num_hidden_layers\": 2, " \
	     "\"num_attention_heads\": 4, \"rms_norm_eps\": 1e-5, \"vocab_size\": 300"

Test(config, matches_architectures_in_any_letter_case)
{
	struct cv_config c;
	struct bn_err e = { 0 };
	cr_assert(eq(int, parse(&c, "{\"architectures\": [\"BitnetForCausalLM\"], " BASE "}", NULL, &e), 0), "%s", e.msg);
	cr_expect(eq(str, (char *)c.arch, "bitnet"));
	cr_expect(eq(int, c.cls, CV_BITNET));
	cv_config_free(&c);
	cr_assert(eq(int, parse(&c, "{\"architectures\": [\"BitNetForCausalLM\"], \"hidden_act\": \"relu2\", " BASE "}", NULL, &e), 0), "%s", e.msg);
	cr_expect(eq(str, (char *)c.arch, "bitnet-b1.58"));
	cr_expect(c.b158);
	cv_config_free(&c);
	cr_assert(eq(int, parse(&c, "{\"architectures\": [\"LLaMAForCausalLM\"], " BASE "}", NULL, &e), 0), "%s", e.msg);
	cr_expect(eq(str, (char *)c.arch, "llama"));
	cv_config_free(&c);
}

Test(config, refuses_an_unknown_architecture_listing_the_supported_ones)
{
	struct cv_config c;
	struct bn_err e = { 0 };
	cr_assert(lt(int, parse(&c, "{\"architectures\": [\"GPT2LMHeadModel\"], " BASE "}", NULL, &e), 0));
	cr_expect(strstr(e.msg, "GPT2LMHeadModel") != NULL, "%s", e.msg);
	cr_expect(strstr(e.msg, "BitnetForCausalLM") && strstr(e.msg, "LlamaForCausalLM"), "%s", e.msg);
	cr_expect(strchr(e.msg, '\n') == NULL);
}

Test(config, refuses_wrong_types_missing_keys_and_moe)
{
	struct cv_config c;
	struct bn_err e = { 0 };
	cr_expect(lt(int, parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"num_hidden_layers\": 2.0, "
				"\"hidden_size\": 256, \"intermediate_size\": 512, \"num_attention_heads\": 4, "
				"\"rms_norm_eps\": 1e-5, \"vocab_size\": 300}", NULL, &e), 0));
	cr_expect(strstr(e.msg, "num_hidden_layers") && strstr(e.msg, "integer"), "%s", e.msg);
	cr_expect(lt(int, parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 256, "
				"\"intermediate_size\": 512, \"num_attention_heads\": 4, \"rms_norm_eps\": 1e-5, "
				"\"vocab_size\": 300}", NULL, &e), 0));
	cr_expect(strstr(e.msg, "num_hidden_layers") != NULL, "%s", e.msg);
	cr_expect(lt(int, parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"num_local_experts\": 8, " BASE "}", NULL, &e), 0));
	cr_expect(strstr(e.msg, "mixture-of-experts") != NULL, "%s", e.msg);
	cr_expect(lt(int, parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"num_key_value_heads\": 3, " BASE "}", NULL, &e), 0));
	cr_expect(strstr(e.msg, "num_key_value_heads 3") != NULL, "%s", e.msg);
	cr_expect(lt(int, parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"] ", NULL, &e), 0));
	cr_expect(strstr(e.msg, "invalid JSON") != NULL, "%s", e.msg);
}

Test(config, arch_override_is_checked_against_the_activation)
{
	struct cv_config c;
	struct bn_err e = { 0 };
	cr_expect(lt(int, parse(&c, "{\"architectures\": [\"BitnetForCausalLM\"], " BASE "}", "bitnet-b1.58", &e), 0));
	cr_expect(strstr(e.msg, "ReLU") != NULL, "%s", e.msg);
	cr_assert(eq(int, parse(&c, "{\"architectures\": [\"BitNetForCausalLM\"], \"hidden_act\": \"relu2\", " BASE "}", "bitnet", &e), 0), "%s", e.msg);
	cr_expect(eq(str, (char *)c.arch, "bitnet"));
	cv_config_free(&c);
}

/* Writes the config KVs into a GGUF and returns the reader (file under dir). */
static struct gguf_reader *kvs_file(const struct cv_config *c, const char *dir, int asp)
{
	char *p = bn_path_join(dir, "kv.gguf");
	struct bn_err e = { 0 };
	struct gguf_writer *w = gguf_writer_open(p, &e);
	cr_assert_not_null(w, "%s", e.msg);
	cr_assert(eq(int, cv_config_kvs(c, w, "m", 0, asp, &e), 0), "%s", e.msg);
	cr_assert(eq(int, gguf_writer_write_header(w, &e), 0), "%s", e.msg);
	cr_assert(eq(int, gguf_writer_commit(w, &e), 0), "%s", e.msg);
	gguf_writer_close(w);
	struct gguf_reader *r = gguf_open(p, &e);
	cr_assert_not_null(r, "%s", e.msg);
	free(p);
	return r;
}

static void expect_keys(struct gguf_reader *r, const char *const *keys)
{
	size_t n = 0;
	for (; keys[n]; n++)
		cr_expect(eq(str, (char *)gguf_kv_key(r, (int64_t)n), (char *)keys[n]), "KV %zu", n);
	cr_expect(eq(sz, gguf_n_kv(r), n));
}

Test(config, llama_kvs_follow_the_reference_order)
{
	struct cv_config c;
	struct bn_err e = { 0 };
	cr_assert(eq(int, parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"max_position_embeddings\": 8192, "
				"\"num_key_value_heads\": 2, \"rope_theta\": 500000, \"head_dim\": 32, "
				"\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}, " BASE "}", NULL, &e), 0), "%s", e.msg);
	char *dir = tu_mkdtemp("config_llama_kvs");
	struct gguf_reader *r = kvs_file(&c, dir, 1);
	static const char *const keys[] = {
		"general.architecture", "general.name", "llama.block_count", "llama.context_length",
		"llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
		"llama.attention.head_count_kv", "llama.rope.freq_base",
		"llama.attention.layer_norm_rms_epsilon", "general.file_type", "llama.vocab_size",
		"llama.rope.dimension_count", "llama.rope.scaling.type", "llama.rope.scaling.factor",
		"tokenizer.ggml.add_space_prefix", NULL };
	expect_keys(r, keys);
	uint32_t v;
	float f;
	cr_expect(eq(int, gguf_get_u32(r, gguf_find_key(r, "llama.rope.dimension_count"), &v, &e), 0));
	cr_expect(eq(u32, v, 32));
	cr_expect(eq(int, gguf_get_f32(r, gguf_find_key(r, "llama.attention.layer_norm_rms_epsilon"), &f, &e), 0));
	cr_expect(eq(u32, bn_f32_bits(f), 0x3727C5AC));
	gguf_close(r);
	cv_config_free(&c);
	free(dir);
}

Test(config, bitnet_b158_kvs_are_heads_and_mainline_bitnet_gets_the_activation)
{
	struct cv_config c;
	struct bn_err e = { 0 };
	const char *js = "{\"architectures\": [\"BitNetForCausalLM\"], \"hidden_act\": \"relu2\", " BASE "}";
	cr_assert(eq(int, parse(&c, js, NULL, &e), 0), "%s", e.msg);
	char *dir = tu_mkdtemp("config_b158_kvs");
	struct gguf_reader *r = kvs_file(&c, dir, -1);
	static const char *const k158[] = {
		"general.architecture", "general.name", "bitnet-b1.58.block_count",
		"bitnet-b1.58.embedding_length", "bitnet-b1.58.feed_forward_length",
		"bitnet-b1.58.attention.head_count", "bitnet-b1.58.attention.layer_norm_rms_epsilon",
		"general.file_type", "bitnet-b1.58.vocab_size", "bitnet-b1.58.rope.dimension_count",
		NULL };
	expect_keys(r, k158);
	gguf_close(r);
	cv_config_free(&c);
	cr_assert(eq(int, parse(&c, js, "bitnet", &e), 0), "%s", e.msg);
	r = kvs_file(&c, dir, -1);
	static const char *const kb[] = {
		"general.architecture", "general.name", "bitnet.block_count",
		"bitnet.embedding_length", "bitnet.feed_forward_length", "bitnet.attention.head_count",
		"bitnet.attention.layer_norm_rms_epsilon", "general.file_type", "bitnet.vocab_size",
		"bitnet.rope.scaling.type", "bitnet.rope.scaling.factor", "bitnet.hidden_activation",
		NULL };
	expect_keys(r, kb);
	gguf_close(r);
	cv_config_free(&c);
	free(dir);
}

/* ---- general.name ------------------------------------------------------------------------------ */

Test(model_name, is_the_last_path_component_as_python_gives_it)
{
	char b[64];
	cv_model_name("models/tv-f32", b, sizeof b);
	cr_expect(eq(str, b, "tv-f32"));
	cv_model_name("models/tv-f32/", b, sizeof b);
	cr_expect(eq(str, b, "tv-f32"));
	cv_model_name("models/tv-f32/.", b, sizeof b);
	cr_expect(eq(str, b, "tv-f32"));
	cv_model_name(".", b, sizeof b);
	cr_expect(eq(str, b, ""));
	cv_model_name("/", b, sizeof b);
	cr_expect(eq(str, b, ""));
}

/* ---- tokenizers -------------------------------------------------------------------------------- */

static json_t *js(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "%s: %s", text, je.text);
	return j;
}

Test(vocab_spm, pads_to_vocab_size_and_appends_new_added_tokens)
{
	struct spm_piece p[4] = { { "<unk>", 5, 0.0f, SPM_UNKNOWN }, { "<s>", 3, 0.0f, SPM_CONTROL },
				  { "\xe2\x96\x81" "a", 4, -1.5f, SPM_NORMAL },
				  { "<0x0A>", 6, 0.0f, SPM_BYTE } };
	uint8_t *buf;
	size_t len;
	struct bn_err e = { 0 };
	cr_assert(eq(int, spm_serialize(p, 4, &(struct spm_write_opts){ 0 }, &buf, &len, &e), 0));
	json_t *added = js("{\"<s>\": 9, \"<extra>\": 4}");
	struct cv_vocab v = { 0 };
	cr_assert(eq(int, cv_vocab_spm(&v, buf, len, added, 8, &e), 0), "%s", e.msg);
	cr_assert(eq(sz, v.n, 8));
	cr_expect(eq(str, v.tok[4], "<extra>"));
	cr_expect(eq(i32, v.types[4], 4));
	cr_expect(eq(flt, v.scores[4], -1000.0f));
	cr_expect(eq(str, v.tok[5], "[PAD1]"));
	cr_expect(eq(str, v.tok[7], "[PAD3]"));
	cr_expect(eq(i32, v.types[7], 5));
	cr_expect(eq(i32, v.types[0], 2));
	cr_expect(eq(i32, v.types[1], 3));
	cr_expect(eq(i32, v.types[3], 6));
	cr_expect(eq(flt, v.scores[2], -1.5f));
	cv_vocab_free(&v);
	cr_expect(lt(int, cv_vocab_spm(&v, buf, len, added, 4, &e), 0));
	cr_expect(strstr(e.msg, "vocab_size is 4") != NULL, "%s", e.msg);
	json_decref(added);
	free(buf);
}

static const char *bpe_json =
	"{\"added_tokens\": ["
	"{\"id\": 6, \"content\": \"<|bos|>\", \"special\": true},"
	"{\"id\": 7, \"content\": \"\\u0120hi\\u010a\", \"special\": false},"
	"{\"id\": 8, \"content\": \"caf\\u00c3\\u00a9\", \"special\": false},"
	"{\"id\": 9, \"content\": \"\\u2581x\", \"special\": false}],"
	"\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"\\u0120\": 2, \"ab\": 3, "
	"\"\\u0120a\": 4}, \"merges\": MERGES},"
	"\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": []}}";

static json_t *bpe(const char *merges)
{
	char buf[2048];
	const char *m = strstr(bpe_json, "MERGES");
	snprintf(buf, sizeof buf, "%.*s%s%s", (int)(m - bpe_json), bpe_json, merges, m + 6);
	return js(buf);
}

Test(vocab_bpe, writes_tokens_types_pads_and_decoded_added_tokens)
{
	json_t *tj = bpe("[\"a b\", \"\\u0120 a\"]");
	struct cv_vocab v = { 0 };
	struct bn_err e = { 0 };
	cr_assert(eq(int, cv_vocab_bpe(&v, tj, 11, &e), 0), "%s", e.msg);
	cr_assert(eq(sz, v.n, 11));
	cr_expect(eq(str, (char *)v.model, "gpt2"));
	cr_expect_null(v.scores);
	cr_expect(eq(str, v.tok[2], "\xc4\xa0"));
	cr_expect(eq(i32, v.types[3], 1));
	cr_expect(eq(str, v.tok[5], "[PAD5]"));
	cr_expect(eq(i32, v.types[5], 4));
	cr_expect(eq(str, v.tok[6], "<|bos|>"));
	cr_expect(eq(i32, v.types[6], 3));
	cr_expect(eq(str, v.tok[7], " hi\n"));         /* ByteLevel-decoded */
	cr_expect(eq(i32, v.types[7], 4));
	cr_expect(eq(str, v.tok[8], "caf\xc3\xa9"));   /* bytes c3 a9 = é */
	cr_expect(eq(str, v.tok[9], "\xe2\x96\x81x")); /* U+2581 is not in the table: unchanged */
	cr_expect(eq(str, v.tok[10], "[PAD10]"));
	cv_vocab_free(&v);
	cr_expect(lt(int, cv_vocab_bpe(&v, tj, 9, &e), 0));
	cr_expect(strstr(e.msg, "vocab_size 9") != NULL, "%s", e.msg);
	json_decref(tj);
}

Test(vocab_bpe, merges_as_strings_and_as_pairs_give_the_same_kv)
{
	json_t *a = bpe("[\"a b\", \"\\u0120 a\"]"), *b = bpe("[[\"a\", \"b\"], [\" \", \"a\"]]");
	struct cv_vocab va = { 0 }, vb = { 0 };
	struct bn_err e = { 0 };
	cr_assert(eq(int, cv_vocab_special(&va, a, NULL, NULL, true, 0, &e), 0), "%s", e.msg);
	cr_assert(eq(int, cv_vocab_special(&vb, b, NULL, NULL, true, 0, &e), 0), "%s", e.msg);
	cr_assert(eq(sz, va.n_merges, 2));
	cr_assert(eq(sz, vb.n_merges, 2));
	for (size_t i = 0; i < 2; i++)
		cr_expect(eq(str, va.merges[i], vb.merges[i]));
	cr_expect(eq(str, vb.merges[1], "\xc4\xa0 a"));
	cv_vocab_free(&va);
	cv_vocab_free(&vb);
	json_decref(a);
	json_decref(b);
}

Test(vocab_special, orders_ids_by_discovery_and_flags_by_type)
{
	json_t *tj = bpe("[]");
	json_t *tc = js("{\"add_eos_token\": false, \"add_bos_token\": true, \"eos_token\": "
			"{\"content\": \"<|bos|>\"}, \"pad_token\": \"nope\", "
			"\"chat_template\": [{\"name\": \"default\", \"template\": \"D\"}, "
			"{\"name\": \"tool use\", \"template\": \"T\"}, {\"name\": \"r\\u00e9\", \"template\": \"R\"}]}");
	json_t *cfg = js("{\"bos_token_id\": 1, \"eos_token_id\": 2, \"unk_token_id\": -0, "
			 "\"pad_token_id\": [3], \"mask_token_id\": 99}");
	struct cv_vocab v = { 0 };
	struct bn_err e = { 0 };
	bn_log_level = BN_LOG_QUIET; /* the out-of-range mask id is a warning */
	cr_assert(eq(int, cv_vocab_special(&v, tj, tc, cfg, false, 50, &e), 0), "%s", e.msg);
	cr_assert(eq(sz, v.n_ids, 3));
	cr_expect(eq(int, v.id_typ[0], CV_EOS)); /* from tokenizer_config, via added_tokens */
	cr_expect(eq(u32, v.id_val[0], 6));
	cr_expect(eq(int, v.id_typ[1], CV_BOS));
	cr_expect(eq(u32, v.id_val[1], 1));
	cr_expect(eq(int, v.id_typ[2], CV_UNK));
	cr_expect(eq(int, v.add[CV_BOS], 1));
	cr_expect(eq(int, v.add[CV_EOS], 0));
	cr_expect(eq(int, v.add[CV_PAD], -1));
	cr_expect(eq(str, v.chat_template, "D"));
	cr_assert(eq(sz, v.n_templates, 2));
	cr_expect(eq(str, v.template_name[0], "tool_use"));
	cr_expect(eq(str, v.template_name[1], "r_"));
	cv_vocab_free(&v);
	json_decref(cfg);
	cfg = js("{\"bos_token_id\": -1}");
	cr_expect(lt(int, cv_vocab_special(&v, NULL, NULL, cfg, false, 0, &e), 0));
	cr_expect(strstr(e.msg, "bos") != NULL, "%s", e.msg);
	cv_vocab_free(&v);
	json_decref(cfg);
	json_decref(tj);
	json_decref(tc);
}

Test(vocab_bpe, refuses_sentencepiece_style_and_non_bpe_tokenizer_json)
{
	struct cv_vocab v = { 0 };
	struct bn_err e = { 0 };
	json_t *a = js("{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {}}}");
	cr_expect(lt(int, cv_vocab_bpe(&v, a, 4, &e), 0));
	cr_expect(strstr(e.msg, "byte_fallback") != NULL, "%s", e.msg);
	cv_vocab_free(&v);
	json_t *b = js("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
	cr_expect(lt(int, cv_vocab_bpe(&v, b, 4, &e), 0));
	cr_expect(strstr(e.msg, "WordPiece") != NULL, "%s", e.msg);
	cv_vocab_free(&v);
	json_decref(a);
	json_decref(b);
}

/* ---- gguf_writer_file_size (added for the free-disk check) ------------------------------------ */

Test(gguf_writer_file_size, is_the_size_of_the_committed_file)
{
	char *dir = tu_mkdtemp("writer_file_size");
	char *p = bn_path_join(dir, "x.gguf");
	struct bn_err e = { 0 };
	struct gguf_writer *w = gguf_writer_open(p, &e);
	cr_assert_not_null(w, "%s", e.msg);
	const char *toks[3] = { "a", "bc", "def" };
	uint64_t ne1[1] = { 3 }, ne2[2] = { 5, 7 };
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "bitnet", &e), 0));
	cr_assert(eq(int, gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3, &e), 0));
	cr_assert(eq(int, gguf_writer_add_tensor(w, "output_norm.weight", GGUF_TYPE_F32, 1, ne1, &e), 0));
	cr_assert(eq(int, gguf_writer_add_tensor(w, "blk.0.attn_q.weight", GGUF_TYPE_F16, 2, ne2, &e), 0));
	uint64_t want = gguf_writer_file_size(w);
	cr_assert(eq(int, gguf_writer_write_header(w, &e), 0), "%s", e.msg);
	cr_assert(eq(u64, gguf_writer_file_size(w), want));
	cr_assert(eq(int, gguf_writer_zeros(w, 12, &e), 0));
	cr_assert(eq(int, gguf_writer_zeros(w, 70, &e), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &e), 0), "%s", e.msg);
	gguf_writer_close(w);
	struct bn_map m;
	cr_assert(eq(int, bn_map_open(&m, p, &e), 0));
	cr_expect(eq(u64, (uint64_t)m.size, want));
	bn_map_close(&m);
	free(p);
	free(dir);
}

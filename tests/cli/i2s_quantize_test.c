/* i2s-quantize: byte-identical to the reference for the §13 vectors (tv-f32 and tv-llama from
 * the reference f32 files, tv-bf16 and lexicographic tv-llama through mkmodel + gguf-convert;
 * zero and stale padding, 1 and N threads, both command-line forms), the tiny model and models
 * the tests generate themselves checked tensor by tensor against expected bytes derived here
 * from the published layouts (I2_S §8.1, TQ1_0 and TQ2_0 users.md part 3), dequantized outputs
 * equal to the ternary input, I2_S input (x86 and ARM layouts, the layout evidence) to TQ, and
 * every refusal: one line, exit 1, no output file. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "gguf.h"
#include "i2s.h"
#include "test_util.h"
#include "tq.h"

#define SHA_F32_I2S_ZERO "6b5de4774bb030b578b3f750f6a7dd4fc24fce17ce69bf58c65e6183acfb6925"
#define SHA_F32_I2S_STALE "c9f324e55f971a3de2965ea5e12d64f9eb0129ceca88a22e73f7e125598759f7"
#define SHA_LLAMA_I2S_ZERO "f4d2461fa54a30ae331f958b75fad8972eb08ea58f224e29b424fffd6711ec9b"
#define SHA_LLAMA_I2S_STALE "3b5ffbbd9ac1c6ae1cfc55b0010b9e8b10a6654836fbf022148fb2c93793421a"

/* ---- helpers -------------------------------------------------------------------------------- */

/* Decompresses ../shared/testdata/reference/<name>.gguf.xz into dir. */
static char *unpack_ref(const char *name, const char *dir)
{
	char rel[256], cmd[8192], file[300];
	snprintf(rel, sizeof rel, "testdata/reference/%s.gguf.xz", name);
	snprintf(file, sizeof file, "%s.gguf", name);
	char *xz = tu_shared(rel);
	char *out = bn_path_join(dir, file);
	snprintf(cmd, sizeof cmd, "xz -dc '%s' > '%s'", xz, out);
	struct tu_run run = tu_sh(cmd);
	cr_assert(eq(int, run.status, 0), "%s: %s", cmd, run.err);
	tu_run_free(&run);
	free(xz);
	return out;
}

/* Runs i2s-quantize with up to 9 arguments (NULL-terminated). */
static struct tu_run iq(const char *a0, const char *a1, const char *a2, const char *a3,
			const char *a4, const char *a5, const char *a6, const char *a7, const char *a8)
{
	char *bin = tu_bin("i2s-quantize");
	const char *argv[] = { bin, a0, a1, a2, a3, a4, a5, a6, a7, a8, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	free(bin);
	return r;
}

static void expect_ok(struct tu_run *r, const char *what)
{
	cr_assert(eq(int, r->status, 0), "%s: exit %d: %s", what, r->status, r->err);
	cr_assert(strstr(r->out, "verified") != NULL, "%s: %s", what, r->out);
}

static void expect_sha(const char *path, const char *want)
{
	char hex[65];
	cr_assert(eq(int, tu_sha256_file(path, hex), 0), "%s", path);
	cr_assert(eq(str, hex, (char *)want), "%s", path);
}

/* Exit 1, the error as the last line of stderr (progress lines may precede it), one line
 * containing `msg`, and neither OUT nor OUT.tmp. */
static void expect_refusal(struct tu_run *r, const char *out, const char *msg)
{
	cr_assert(eq(int, r->status, 1), "exit %d, stderr: %s", r->status, r->err);
	size_t len = strlen(r->err);
	cr_assert(len > 1 && r->err[len - 1] == '\n', "%s", r->err);
	r->err[len - 1] = '\0';
	char *last = strrchr(r->err, '\n');
	last = last ? last + 1 : r->err;
	cr_assert(strstr(last, msg) != NULL, "last line '%s' lacks '%s'", last, msg);
	cr_assert(strncmp(last, "i2s-quantize: ", 14) == 0, "%s", last);
	cr_assert_null(strstr(last, "quantizing:"), "%s", last);
	cr_assert_not(bn_file_exists(out), "%s exists", out);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	cr_assert_not(bn_file_exists(tmp), "%s exists", tmp);
}

static struct gguf_reader *open_ok(const char *path)
{
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	return r;
}

static const struct gguf_tensor *tensor_named(const struct gguf_reader *r, const char *name)
{
	int64_t i = gguf_find_tensor(r, name);
	cr_assert(i >= 0, "no tensor %s", name);
	return gguf_tensor(r, (size_t)i);
}

static uint32_t kv_u32(const struct gguf_reader *r, const char *key)
{
	uint32_t v = 0;
	struct bn_err err;
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, key), &v, &err), 0), "%s", key);
	return v;
}

/* ---- expected bytes, from the published layouts ------------------------------------------ */

/* §8.1: code 1 if |x| < 1e-6, else 2 if x > 0, else 0; element i in byte 32·(i div 128) +
 * (i mod 32) at bits 7-2·((i mod 128) div 32) and 6-2·(...); scale = max|x| (f32) at n/4, then
 * 28 zero bytes. */
static void i2s_bytes(const float *x, size_t n, uint8_t *out)
{
	double m = 0;
	memset(out, 0, n / 4 + 32);
	for (size_t i = 0; i < n; i++) {
		double a = fabs((double)x[i]);
		m = a > m ? a : m;
		unsigned code = a < 1e-6 ? 1 : (x[i] > 0 ? 2 : 0);
		out[32 * (i / 128) + i % 32] |= (uint8_t)(code << (6 - 2 * ((i % 128) / 32)));
	}
	float s = (float)m;
	memcpy(out + n / 4, &s, 4);
}

/* users.md part 3: per 256 weights, d = fp16(max|w|), t = round(w/d) + 1 (the f32 max; half
 * away from zero); TQ2_0 byte 32h+m holds weights 128h+m, +32, +64, +96 in bit pairs 1..0,
 * 3..2, 5..4, 7..6, then d; TQ1_0 bytes m (5 trits: m, m+32, .., m+128, first most
 * significant), 32+m (160+m, 176+m, .., 224+m), qh[j] (240+j, 244+j, 248+j, 252+j, times 3),
 * each number v stored as ceil(v·256/243), then d. */
static void tq_trits(const float *w, uint8_t *t, uint16_t *d)
{
	float m = 0;
	for (int j = 0; j < 256; j++)
		m = fabsf(w[j]) > m ? fabsf(w[j]) : m;
	for (int j = 0; j < 256; j++)
		t[j] = (uint8_t)(m == 0 ? 1 : 1 + lroundf(w[j] * (1.0f / m)));
	*d = bn_f32_to_f16(m);
}

static void tq2_bytes(const float *w, size_t n, uint8_t *out)
{
	for (size_t b = 0; b < n / 256; b++) {
		uint8_t t[256], *o = out + 66 * b;
		uint16_t d;
		tq_trits(w + 256 * b, t, &d);
		for (int h = 0; h < 2; h++)
			for (int m = 0; m < 32; m++) {
				int base = 128 * h + m;
				o[32 * h + m] = (uint8_t)(t[base] | t[base + 32] << 2 | t[base + 64] << 4 |
							  t[base + 96] << 6);
			}
		memcpy(o + 64, &d, 2);
	}
}

static uint8_t ceil243(unsigned v)
{
	return (uint8_t)((v * 256 + 242) / 243);
}

static void tq1_bytes(const float *w, size_t n, uint8_t *out)
{
	for (size_t b = 0; b < n / 256; b++) {
		uint8_t t[256], *o = out + 54 * b;
		uint16_t d;
		tq_trits(w + 256 * b, t, &d);
		for (int m = 0; m < 32; m++) {
			unsigned v = 0;
			for (int k = 0; k < 5; k++)
				v = v * 3 + t[m + 32 * k];
			o[m] = ceil243(v);
		}
		for (int m = 0; m < 16; m++) {
			unsigned v = 0;
			for (int k = 0; k < 5; k++)
				v = v * 3 + t[160 + m + 16 * k];
			o[32 + m] = ceil243(v);
		}
		for (int j = 0; j < 4; j++) {
			unsigned v = 0;
			for (int k = 0; k < 4; k++)
				v = v * 3 + t[240 + j + 4 * k];
			o[48 + j] = ceil243(v * 3);
		}
		memcpy(o + 52, &d, 2);
	}
}

/* The f32 values of a tensor of an f32 GGUF. */
static const float *f32_of(const struct gguf_tensor *t)
{
	cr_assert(eq(u32, t->type, GGUF_TYPE_F32), "%s", t->name);
	return (const float *)(const void *)t->data;
}

/* ---- models the tests make ------------------------------------------------------------------ */

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

struct spec {
	const char *name;
	uint64_t ne0, ne1; /* ne1 == 0: 1-D */
	int kind;          /* 0 ternary ±v/±0, 1 norm (near 1), 2 small floats, 3 two magnitudes */
	float v;
};

/* An f32 GGUF like gguf-convert writes for a bitnet model (KVs trimmed). */
static void write_f32_model(const char *path, const struct spec *sp, size_t n, uint32_t seed)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "bitnet", &err), 0));
	cr_assert(eq(int, gguf_writer_add_str(w, "general.name", "unseen", &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "general.file_type", 0, &err), 0));
	for (size_t i = 0; i < n; i++) {
		uint64_t ne[2] = { sp[i].ne0, sp[i].ne1 };
		cr_assert(eq(int, gguf_writer_add_tensor(w, sp[i].name, 0, sp[i].ne1 ? 2 : 1, ne, &err),
			     0), "%s", err.msg);
	}
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	for (size_t i = 0; i < n; i++) {
		uint64_t cnt = sp[i].ne0 * (sp[i].ne1 ? sp[i].ne1 : 1);
		uint32_t s = seed + (uint32_t)i * 2654435761u;
		for (uint64_t k = 0; k < cnt; k++) {
			uint32_t r = lcg(&s);
			float x;
			if (sp[i].kind == 0)
				x = r % 3 == 0 ? (r & 8 ? -0.0f : 0.0f) : (r % 3 == 1 ? sp[i].v : -sp[i].v);
			else if (sp[i].kind == 1)
				x = 1.0f + (float)(int)(r % 255 - 127) / 4096.0f;
			else if (sp[i].kind == 2)
				x = (float)(int)(r % 2001 - 1000) / 8192.0f;
			else
				x = r % 2 ? sp[i].v : 0.5f * sp[i].v;
			cr_assert(eq(int, gguf_writer_write(w, &x, 4, &err), 0));
		}
	}
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
}

/* A model none of the reference files has: vocab 384 (Q8_0 embedding), K = 512 / 768 / 1024,
 * rows that are not powers of two, one all-zero projection. */
static const struct spec UNSEEN[] = {
	{ "token_embd.weight", 384, 37, 2, 0 },
	{ "blk.0.attn_norm.weight", 512, 0, 1, 0 },
	{ "blk.0.attn_q.weight", 512, 512, 0, 0.0123f },
	{ "blk.0.attn_k.weight", 512, 256, 0, 0.5f },
	{ "blk.0.attn_v.weight", 512, 256, 0, 3.0e-6f },
	{ "blk.0.attn_output.weight", 512, 512, 0, 0.0f },
	{ "blk.0.ffn_gate.weight", 512, 768, 0, 0.017f },
	{ "blk.0.ffn_up.weight", 512, 768, 0, 0.017f },
	{ "blk.0.ffn_down.weight", 768, 512, 0, 1.0f / 81 },
	{ "blk.0.ffn_sub_norm.weight", 768, 0, 1, 0 },
	{ "blk.1.attn_q.weight", 1024, 40, 0, 0.25f },
	{ "output_norm.weight", 512, 0, 1, 0 },
};
#define N_UNSEEN (sizeof UNSEEN / sizeof *UNSEEN)

/* Checks every tensor of out (quantized to `target`) against the input in, byte for byte. */
static void check_against_layouts(const char *in_path, const char *out_path, uint32_t target)
{
	struct gguf_reader *in = open_ok(in_path), *out = open_ok(out_path);
	cr_assert(eq(sz, gguf_n_tensors(out), gguf_n_tensors(in)));
	size_t n_target = 0;
	for (size_t i = 0; i < gguf_n_tensors(in); i++) {
		const struct gguf_tensor *a = gguf_tensor(in, i), *b = gguf_tensor(out, i);
		cr_assert(eq(str, (char *)b->name, (char *)a->name));
		size_t n = (size_t)(a->ne[0] * a->ne[1] * a->ne[2] * a->ne[3]);
		const float *x = f32_of(a);
		uint8_t *want = calloc(1, n * 4 + 64);
		if (a->n_dims == 1) {
			cr_assert(eq(u32, b->type, GGUF_TYPE_F32), "%s", a->name);
			memcpy(want, x, n * 4);
		} else if (strcmp(a->name, "token_embd.weight") == 0) {
			/* no output.weight: the head; Q8_0 unless ne[0] % 256 == 0 */
			cr_assert(eq(u32, b->type, a->ne[0] % 256 ? GGUF_TYPE_Q8_0 : GGUF_TYPE_F16));
			for (size_t k = 0; k < n; k++) {
				uint16_t h = bn_f32_to_f16(x[k]);
				memcpy(want + 2 * k, &h, 2);
			}
			if (b->type == GGUF_TYPE_Q8_0)
				for (size_t blk = 0; blk < n / 32; blk++) { /* §7.3 */
					float m = 0;
					for (int j = 0; j < 32; j++)
						m = fmaxf(m, fabsf(x[32 * blk + j]));
					float d = m / 127, id = d ? 1 / d : 0;
					uint16_t dh = bn_f32_to_f16(d);
					memcpy(want + 34 * blk, &dh, 2);
					for (int j = 0; j < 32; j++)
						want[34 * blk + 2 + j] = (uint8_t)(int8_t)roundf(x[32 * blk + j] * id);
				}
		} else {
			cr_assert(eq(u32, b->type, target), "%s", a->name);
			n_target++;
			if (target == GGUF_TYPE_I2_S)
				i2s_bytes(x, n, want);
			else if (target == GGUF_TYPE_TQ2_0)
				tq2_bytes(x, n, want);
			else
				tq1_bytes(x, n, want);
		}
		for (uint64_t k = 0; k < b->nbytes; k++)
			cr_assert(eq(u8, b->data[k], want[k]), "%s byte %llu", a->name,
				  (unsigned long long)k);
		free(want);
	}
	cr_assert(gt(sz, n_target, 0));
	cr_assert(eq(u32, kv_u32(out, "general.file_type"),
		     target == GGUF_TYPE_I2_S ? 40 : target == GGUF_TYPE_TQ1_0 ? 36 : 37));
	cr_assert(eq(u32, kv_u32(out, "general.quantization_version"), 2));
	cr_assert(eq(str, (char *)gguf_kv_key(out, (int64_t)gguf_n_kv(out) - 1),
		     "general.quantization_version"));
	gguf_close(in);
	gguf_close(out);
}

/* ---- the reference vectors ------------------------------------------------------------------ */

Test(i2s_quantize, matches_the_reference_tv_f32_i2s_with_1_and_n_threads_and_both_paddings)
{
	char *dir = tu_mkdtemp("iq_tvf32");
	char *in = unpack_ref("tv-f32.f32", dir), *out = bn_path_join(dir, "out.gguf");
	const char *threads[] = { "1", "3" };
	for (int t = 0; t < 2; t++) {
		struct tu_run r = iq(in, out, "I2_S", threads[t], NULL, NULL, NULL, NULL, NULL);
		expect_ok(&r, "positional");
		expect_sha(out, SHA_F32_I2S_ZERO);
		tu_run_free(&r);
		r = iq("--emulate-stale-tail", "--threads", threads[t], in, out, NULL, NULL, NULL, NULL);
		expect_ok(&r, "stale");
		expect_sha(out, SHA_F32_I2S_STALE);
		tu_run_free(&r);
	}
	/* setup_env's --quant-embd form: the second trailing 1 is ignored, with a warning */
	struct tu_run r = iq("--token-embedding-type", "f16", in, out, "I2_S", "1", "1", NULL, NULL);
	expect_ok(&r, "quant-embd");
	expect_sha(out, SHA_F32_I2S_ZERO);
	cr_assert(strstr(r.err, "ignoring extra argument '1'") != NULL, "%s", r.err);
	tu_run_free(&r);
	free(in);
	free(out);
	free(dir);
}

Test(i2s_quantize, matches_the_reference_tv_llama_i2s_with_1_and_n_threads_and_both_paddings)
{
	char *dir = tu_mkdtemp("iq_tvllama");
	char *in = unpack_ref("tv-llama.offset-order.f32", dir), *out = bn_path_join(dir, "o.gguf");
	const char *threads[] = { "1", "2" };
	for (int t = 0; t < 2; t++) {
		struct tu_run r = iq(in, out, "i2_s", threads[t], NULL, NULL, NULL, NULL, NULL);
		expect_ok(&r, "zero");
		expect_sha(out, SHA_LLAMA_I2S_ZERO);
		tu_run_free(&r);
		r = iq("--emulate-stale-tail", in, out, "40", threads[t], NULL, NULL, NULL, NULL);
		expect_ok(&r, "stale");
		expect_sha(out, SHA_LLAMA_I2S_STALE);
		tu_run_free(&r);
	}
	free(in);
	free(out);
	free(dir);
}

Test(i2s_quantize, writes_tq1_0_and_tq2_0_of_the_test_vectors_as_the_published_layouts_say)
{
	char *dir = tu_mkdtemp("iq_tq_tv");
	char *in = unpack_ref("tv-f32.f32", dir), *out = bn_path_join(dir, "tq.gguf");
	struct tu_run r = iq(in, out, "tq2_0", "2", NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "tq2");
	tu_run_free(&r);
	check_against_layouts(in, out, GGUF_TYPE_TQ2_0);
	r = iq("--type", "TQ1_0", in, out, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "tq1");
	tu_run_free(&r);
	check_against_layouts(in, out, GGUF_TYPE_TQ1_0);
	free(in);
	free(out);
	free(dir);
}

/* ---- through gguf-convert: the vectors with no f32 reference file, and the tiny model ------- */

/* mkmodel --preset P --outdir DIR/P, then gguf-convert to DIR/P.f32.gguf (tensor order `order`
 * or the default). */
static char *convert_preset(const char *dir, const char *preset, const char *order)
{
	char *ckpt = bn_path_join(dir, preset), out[4200], *mk = tu_bin("mkmodel");
	char *conv = tu_bin("gguf-convert");
	snprintf(out, sizeof out, "%s.f32.gguf", ckpt);
	const char *a1[] = { mk, "-q", "--preset", preset, "--outdir", ckpt, NULL };
	struct tu_run r = tu_run(a1, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "mkmodel: %s", r.err);
	tu_run_free(&r);
	const char *a2[] = { conv, ckpt, "-q", "--outtype", "f32", "--outfile", out,
			     order ? "--tensor-order" : NULL, order, NULL };
	r = tu_run(a2, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "gguf-convert: %s", r.err);
	tu_run_free(&r);
	free(ckpt);
	free(mk);
	free(conv);
	return strdup(out);
}

Test(i2s_quantize, matches_the_reference_tv_bf16_and_lexicographic_tv_llama_i2s)
{
	char *dir = tu_mkdtemp("iq_viaconvert");
	char *out = bn_path_join(dir, "o.gguf");
	struct {
		const char *preset, *order, *zero, *stale;
	} v[] = {
		{ "tv-bf16", NULL, "525df9b239f6ab5d39aaafd0431466891a39aaf44cc6dd33075566f95520fd16",
		  "9306958f239fd48f9d452e8cf67d46e23193ba6ae886b2f085c8dd28e2362b0c" },
		{ "tv-llama", "lexicographic",
		  "80ce2fdaf1294f8e3aabdcc719c5cb92e59654f9c054283a086bf7f750a0a79d",
		  "3a3fe6fb2ebd45f1cdcd229c24aa853441447424c3bcea66b20d0c91d484f771" },
	};
	for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
		char *in = convert_preset(dir, v[k].preset, v[k].order);
		const char *threads[] = { "1", "2" };
		for (int t = 0; t < 2; t++) {
			struct tu_run r = iq(in, out, "I2_S", threads[t], NULL, NULL, NULL, NULL, NULL);
			expect_ok(&r, v[k].preset);
			expect_sha(out, v[k].zero);
			tu_run_free(&r);
			r = iq("--emulate-stale-tail", in, out, "I2_S", threads[t], NULL, NULL, NULL, NULL);
			expect_ok(&r, v[k].preset);
			expect_sha(out, v[k].stale);
			tu_run_free(&r);
		}
		free(in);
	}
	free(out);
	free(dir);
}

Test(i2s_quantize, writes_the_tiny_model_as_the_published_layouts_say)
{
	char *dir = tu_mkdtemp("iq_tiny");
	char *in = convert_preset(dir, "tiny", NULL), *out = bn_path_join(dir, "q.gguf");
	const char *types[] = { "tq2_0", "tq1_0", "i2_s" };
	const uint32_t ids[] = { GGUF_TYPE_TQ2_0, GGUF_TYPE_TQ1_0, GGUF_TYPE_I2_S };
	for (int t = 0; t < 3; t++) {
		struct tu_run r = iq(in, out, types[t], "2", NULL, NULL, NULL, NULL, NULL);
		expect_ok(&r, types[t]);
		tu_run_free(&r);
		check_against_layouts(in, out, ids[t]);
	}
	free(in);
	free(out);
	free(dir);
}

/* ---- models the reference never saw --------------------------------------------------------- */

Test(i2s_quantize, quantizes_an_unseen_model_to_every_type_byte_for_byte_with_any_thread_count)
{
	char *dir = tu_mkdtemp("iq_unseen");
	char *in = bn_path_join(dir, "f32.gguf"), *out = bn_path_join(dir, "q.gguf");
	write_f32_model(in, UNSEEN, N_UNSEEN, 77);
	const char *types[] = { "i2_s", "tq2_0", "tq1_0" };
	const uint32_t ids[] = { GGUF_TYPE_I2_S, GGUF_TYPE_TQ2_0, GGUF_TYPE_TQ1_0 };
	const char *threads[] = { "1", "2", "5" };
	for (int k = 0; k < 3; k++) {
		struct tu_run r = iq(in, out, "I2_S", threads[k], NULL, NULL, NULL, NULL, NULL);
		expect_ok(&r, threads[k]);
		tu_run_free(&r);
		check_against_layouts(in, out, GGUF_TYPE_I2_S);
	}
	/* TQ needs rows that are multiples of 256: the same model without K = 768 */
	struct spec tq[N_UNSEEN];
	size_t n = 0;
	for (size_t i = 0; i < N_UNSEEN; i++)
		if (UNSEEN[i].ne0 % 256 == 0)
			tq[n++] = UNSEEN[i];
	write_f32_model(in, tq, n, 78);
	for (int t = 1; t < 3; t++)
		for (int k = 0; k < 3; k += 2) {
			struct tu_run r = iq("--type", types[t], "--threads", threads[k], in, out, NULL,
					     NULL, NULL);
			expect_ok(&r, types[t]);
			tu_run_free(&r);
			check_against_layouts(in, out, ids[t]);
		}
	free(in);
	free(out);
	free(dir);
}

Test(i2s_quantize, outputs_dequantize_to_the_ternary_input_values)
{
	char *dir = tu_mkdtemp("iq_dequant");
	char *in = bn_path_join(dir, "f32.gguf"), *out = bn_path_join(dir, "q.gguf");
	const struct spec sp[] = { { "token_embd.weight", 256, 4, 2, 0 },
				   { "blk.0.attn_q.weight", 512, 64, 0, 0.0077555f },
				   { "blk.0.ffn_up.weight", 256, 96, 0, 0.25f } };
	write_f32_model(in, sp, 3, 5);
	const char *types[] = { "i2_s", "tq1_0", "tq2_0" };
	for (int t = 0; t < 3; t++) {
		struct tu_run r = iq(in, out, types[t], NULL, NULL, NULL, NULL, NULL, NULL);
		expect_ok(&r, types[t]);
		tu_run_free(&r);
		struct gguf_reader *a = open_ok(in), *b = open_ok(out);
		for (size_t i = 1; i < 3; i++) {
			const struct gguf_tensor *ta = gguf_tensor(a, i), *tb = gguf_tensor(b, i);
			size_t n = (size_t)(ta->ne[0] * ta->ne[1]);
			float *y = malloc(n * sizeof *y);
			if (tb->type == GGUF_TYPE_I2_S)
				i2s_dequantize_ref(tb->data, n, y);
			else if (tb->type == GGUF_TYPE_TQ1_0)
				dequantize_tq1_ref((const struct tq1_block *)(const void *)tb->data, n, y);
			else
				dequantize_tq2_ref((const struct tq2_block *)(const void *)tb->data, n, y);
			/* I2_S keeps the f32 scale, TQ the fp16 block scale: ±0 give 0 either way */
			float v = sp[i].v, vq = tb->type == GGUF_TYPE_I2_S ? v : bn_f16_to_f32(bn_f32_to_f16(v));
			const float *x = f32_of(ta);
			for (size_t k = 0; k < n; k++) {
				float want = x[k] == 0 ? 0.0f : (x[k] > 0 ? vq : -vq);
				cr_assert(y[k] == want, "%s %s element %zu: %g vs %g", types[t], ta->name,
					  k, y[k], want);
				if (tb->type == GGUF_TYPE_I2_S)
					cr_assert(y[k] == x[k]);
			}
			free(y);
		}
		gguf_close(a);
		gguf_close(b);
	}
	free(in);
	free(out);
	free(dir);
}

/* A disk that flips one bit (tests/shims/corrupt_write.c): the read-back check catches it in
 * the codes and in an I2_S tensor's scale, with 1 and 2 threads, and nothing is left behind. */
Test(i2s_quantize, a_bit_flipped_on_the_way_to_disk_is_caught_before_the_rename)
{
	char *dir = tu_mkdtemp("iq_corrupt");
	char *in = bn_path_join(dir, "f32.gguf"), *out = bn_path_join(dir, "q.gguf");
	const struct spec sp[] = { { "token_embd.weight", 256, 4, 2, 0 },
				   { "blk.0.attn_q.weight", 512, 64, 0, 0.25f } };
	write_f32_model(in, sp, 2, 9);
	struct tu_run r = iq(in, out, "I2_S", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "clean");
	tu_run_free(&r);
	struct gguf_reader *g = open_ok(out);
	const struct gguf_tensor *q = tensor_named(g, "blk.0.attn_q.weight");
	uint64_t codes = gguf_data_offset(g) + q->offset, scale = codes + 512 * 64 / 4;
	gguf_close(g);
	cr_assert(eq(int, remove(out), 0));

	char *so = tu_bin("../tests/corrupt_write.so"), *bin = tu_bin("i2s-quantize");
	char pre[4200], at[64];
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", so);
	const struct { uint64_t at; const char *threads, *msg; } cases[] = {
		{ codes + 100, "1", "blk.0.attn_q.weight: the bytes read back from " },
		{ codes + 5000, "2", "differ from those written; the disk or filesystem is corrupting" },
		{ scale + 1, "1", "blk.0.attn_q.weight: the scale and padding read back from" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		snprintf(at, sizeof at, "CORRUPT_AT=%llu", (unsigned long long)cases[k].at);
		const char *env[] = { pre, at, "ASAN_OPTIONS=verify_asan_link_order=0", NULL };
		const char *argv[] = { bin, in, out, "I2_S", cases[k].threads, NULL };
		r = tu_run(argv, env, NULL);
		expect_refusal(&r, out, cases[k].msg);
		tu_run_free(&r);
	}
	/* the same shim with the flip past the end of the file changes nothing */
	snprintf(at, sizeof at, "CORRUPT_AT=%llu", (unsigned long long)(scale + (1u << 20)));
	const char *env[] = { pre, at, "ASAN_OPTIONS=verify_asan_link_order=0", NULL };
	const char *argv[] = { bin, in, out, "I2_S", "2", NULL };
	r = tu_run(argv, env, NULL);
	expect_ok(&r, "flip past the end");
	tu_run_free(&r);
	free(so);
	free(bin);
	free(in);
	free(out);
	free(dir);
}

/* ---- I2_S input ----------------------------------------------------------------------------- */

/* Rewrites an I2_S file: every I2_S tensor repacked into the ARM 64-element layout (§8.2) when
 * `arm`, and general.quantization_version dropped when `drop_qv`. */
static void rewrite_i2s(const char *from, const char *to, bool arm, bool drop_qv)
{
	struct gguf_reader *r = open_ok(from);
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(to, &err);
	cr_assert_not_null(w);
	for (size_t k = 0; k < gguf_n_kv(r); k++)
		if (!drop_qv || strcmp(gguf_kv_key(r, (int64_t)k), "general.quantization_version"))
			cr_assert(eq(int, gguf_writer_copy_kv(w, r, (int64_t)k, &err), 0));
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		cr_assert(eq(int, gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &err), 0));
	}
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		uint8_t *b = malloc(t->nbytes);
		memcpy(b, t->data, t->nbytes);
		if (arm && t->type == GGUF_TYPE_I2_S) {
			size_t n = (size_t)(t->ne[0] * t->ne[1]);
			memset(b, 0, n / 4);
			for (size_t e = 0; e < n; e++) {
				unsigned code = (t->data[32 * (e / 128) + e % 32] >> (6 - 2 * ((e % 128) / 32))) & 3;
				b[16 * (e / 64) + e % 16] |= (uint8_t)(code << (6 - 2 * ((e % 64) / 16)));
			}
		}
		cr_assert(eq(int, gguf_writer_write(w, b, t->nbytes, &err), 0));
		free(b);
	}
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	gguf_close(r);
}

Test(i2s_quantize, turns_i2s_files_of_either_layout_into_the_same_tq2_0_as_the_f32_file)
{
	char *dir = tu_mkdtemp("iq_i2s_in");
	char *f32 = unpack_ref("tv-f32.f32", dir), *i2s = bn_path_join(dir, "i2s.gguf");
	char *arm = bn_path_join(dir, "arm.gguf"), *noqv = bn_path_join(dir, "noqv.gguf");
	char *direct = bn_path_join(dir, "direct.gguf"), *out = bn_path_join(dir, "out.gguf");
	struct tu_run r = iq(f32, i2s, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "i2s");
	tu_run_free(&r);
	r = iq(f32, direct, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "direct");
	tu_run_free(&r);
	char want[65];
	cr_assert(eq(int, tu_sha256_file(direct, want), 0));

	/* an x86 file from llama-quantize: random synthetic weights carry no layout evidence */
	r = iq(i2s, out, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "pass --i2s-layout x86 if it was quantized on x86");
	tu_run_free(&r);
	r = iq("--i2s-layout", "x86", i2s, out, "tq2_0", NULL, NULL, NULL, NULL);
	expect_ok(&r, "x86");
	expect_sha(out, want);
	tu_run_free(&r);

	/* the ARM layout, said so: the same ternary values, the same file */
	rewrite_i2s(i2s, arm, true, false);
	r = iq("--i2s-layout", "arm", arm, out, "--type", "tq2_0", NULL, NULL, NULL);
	expect_ok(&r, "arm");
	expect_sha(out, want);
	tu_run_free(&r);
	/* ARM I2_S to I2_S: repacked into the x86 layout (padding zeroed) */
	r = iq("--i2s-layout", "arm", arm, out, "i2_s", NULL, NULL, NULL, NULL);
	expect_ok(&r, "arm->x86");
	expect_sha(out, SHA_F32_I2S_ZERO);
	tu_run_free(&r);

	/* no general.quantization_version: a Python converter's file, always x86 */
	rewrite_i2s(i2s, noqv, false, true);
	r = iq(noqv, out, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "no qv");
	cr_assert(strstr(r.err, "Python converter") != NULL, "%s", r.err);
	tu_run_free(&r);
	struct gguf_reader *a = open_ok(direct), *b = open_ok(out);
	for (size_t i = 0; i < gguf_n_tensors(a); i++)
		cr_assert(eq(int, memcmp(gguf_tensor(a, i)->data, gguf_tensor(b, i)->data,
					 gguf_tensor(a, i)->nbytes), 0), "%s", gguf_tensor(a, i)->name);
	gguf_close(a);
	gguf_close(b);
	free(f32);
	free(i2s);
	free(arm);
	free(noqv);
	free(direct);
	free(out);
	free(dir);
}

/* An I2_S model whose feed-forward neurons have their own densities, shared by the neuron's
 * ffn_up/ffn_gate rows and its ffn_down column, as trained networks have; packed in `layout`
 * ("x86" or "arm"), or with independent densities ("none"). */
static void write_structured_i2s(const char *path, const char *layout)
{
	enum { E = 256, F = 512, L = 3 };
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w);
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "bitnet", &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "general.quantization_version", 2, &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "general.file_type", 40, &err), 0));
	const char *names[3] = { "ffn_up", "ffn_gate", "ffn_down" };
	for (int l = 0; l < L; l++)
		for (int k = 0; k < 3; k++) {
			char name[64];
			snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[k]);
			uint64_t ne[2] = { k == 2 ? F : E, k == 2 ? E : F };
			cr_assert(eq(int, gguf_writer_add_tensor(w, name, GGUF_TYPE_I2_S, 2, ne, &err), 0));
		}
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	uint32_t s = 99;
	bool arm = strcmp(layout, "arm") == 0, none = strcmp(layout, "none") == 0;
	uint8_t *codes = malloc(E * F), *buf = malloc(E * F / 4 + 32);
	for (int l = 0; l < L; l++) {
		float dens[F], dens2[F];
		for (int j = 0; j < F; j++) {
			dens[j] = 0.05f + 0.9f * (float)(lcg(&s) % 1000) / 1000.0f;
			dens2[j] = 0.05f + 0.9f * (float)(lcg(&s) % 1000) / 1000.0f;
		}
		for (int k = 0; k < 3; k++) {
			size_t rows = k == 2 ? E : F, cols = k == 2 ? F : E;
			for (size_t r = 0; r < rows; r++)
				for (size_t c = 0; c < cols; c++) {
					float d = k == 2 ? (none ? dens2[c] : dens[c]) : dens[r];
					bool nz = (float)(lcg(&s) % 10000) / 10000.0f < d;
					codes[r * cols + c] = nz ? (lcg(&s) & 1 ? 2 : 0) : 1;
				}
			size_t n = rows * cols;
			memset(buf, 0, n / 4 + 32);
			for (size_t e = 0; e < n; e++)
				if (arm)
					buf[16 * (e / 64) + e % 16] |= (uint8_t)(codes[e] << (6 - 2 * ((e % 64) / 16)));
				else
					buf[32 * (e / 128) + e % 32] |= (uint8_t)(codes[e] << (6 - 2 * ((e % 128) / 32)));
			float scale = 0.02f;
			memcpy(buf + n / 4, &scale, 4);
			cr_assert(eq(int, gguf_writer_write(w, buf, n / 4 + 32, &err), 0));
		}
	}
	free(codes);
	free(buf);
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
}

Test(i2s_quantize, tells_the_i2s_layout_from_feed_forward_evidence_or_refuses)
{
	char *dir = tu_mkdtemp("iq_layout");
	char *x86 = bn_path_join(dir, "x86.gguf"), *arm = bn_path_join(dir, "arm.gguf");
	char *none = bn_path_join(dir, "none.gguf");
	char *o1 = bn_path_join(dir, "o1.gguf"), *o2 = bn_path_join(dir, "o2.gguf");
	write_structured_i2s(x86, "x86");
	write_structured_i2s(arm, "arm");
	write_structured_i2s(none, "none");
	struct tu_run r = iq(x86, o1, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "x86");
	cr_assert(strstr(r.err, "x86 layout: feed-forward evidence") != NULL, "%s", r.err);
	tu_run_free(&r);
	r = iq(arm, o2, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "arm");
	cr_assert(strstr(r.err, "arm layout: feed-forward evidence") != NULL, "%s", r.err);
	tu_run_free(&r);
	char h1[65], h2[65];
	cr_assert(eq(int, tu_sha256_file(o1, h1), 0));
	cr_assert(eq(int, tu_sha256_file(o2, h2), 0));
	cr_assert(eq(str, h1, h2));
	char *o3 = bn_path_join(dir, "o3.gguf");
	r = iq(none, o3, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, o3, "the weights do not show it (evidence z = ");
	tu_run_free(&r);
	free(x86);
	free(arm);
	free(none);
	free(o1);
	free(o2);
	free(o3);
	free(dir);
}

/* ---- refusals ------------------------------------------------------------------------------- */

Test(i2s_quantize, refuses_bad_inputs_with_one_line_and_no_output)
{
	char *dir = tu_mkdtemp("iq_refuse");
	char *in = bn_path_join(dir, "in.gguf"), *out = bn_path_join(dir, "out.gguf");
	struct tu_run r;

	/* not ternary; --force quantizes it anyway */
	const struct spec two[] = { { "blk.0.attn_q.weight", 256, 8, 3, 0.25f } };
	write_f32_model(in, two, 1, 1);
	r = iq(in, out, "I2_S", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "blk.0.attn_q.weight: not ternary");
	tu_run_free(&r);
	r = iq("--force", in, out, "I2_S", NULL, NULL, NULL, NULL, NULL);
	expect_ok(&r, "force");
	tu_run_free(&r);
	remove(out);
	r = iq(in, out, "tq2_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "not ternary");
	tu_run_free(&r);

	/* K % 128 for I2_S; rows % 256 for TQ, naming the tensor */
	const struct spec k192[] = { { "blk.2.ffn_down.weight", 192, 4, 0, 0.5f } };
	write_f32_model(in, k192, 1, 2);
	r = iq(in, out, "I2_S", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "blk.2.ffn_down.weight: ne[0] = 192 is not a multiple of 128");
	tu_run_free(&r);
	const struct spec k384[] = { { "blk.1.ffn_up.weight", 384, 4, 0, 0.5f } };
	write_f32_model(in, k384, 1, 2);
	r = iq(in, out, "tq1_0", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "blk.1.ffn_up.weight: ne[0] = 384 is not a multiple of 256; TQ1_0");
	tu_run_free(&r);

	/* NaN and Inf, in a projection and in a copied norm */
	const struct spec one[] = { { "blk.0.attn_norm.weight", 256, 0, 1, 0 },
				    { "blk.0.attn_k.weight", 256, 2, 0, 0.5f } };
	write_f32_model(in, one, 2, 3);
	size_t len;
	char *bytes = tu_read_file(in, &len);
	struct gguf_reader *g = open_ok(in);
	size_t at_k = (size_t)(gguf_data_offset(g) + tensor_named(g, "blk.0.attn_k.weight")->offset);
	size_t at_n = (size_t)(gguf_data_offset(g) + tensor_named(g, "blk.0.attn_norm.weight")->offset);
	gguf_close(g);
	float nan = NAN, inf = -INFINITY;
	memcpy(bytes + at_k + 4 * 300, &nan, 4);
	cr_assert(eq(int, tu_write_file(in, bytes, len), 0));
	r = iq(in, out, "I2_S", NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "blk.0.attn_k.weight: element 300 is nan");
	tu_run_free(&r);
	memcpy(bytes + at_k + 4 * 300, bytes + at_k, 4);
	memcpy(bytes + at_n + 4 * 7, &inf, 4);
	cr_assert(eq(int, tu_write_file(in, bytes, len), 0));
	r = iq(in, out, "--force", "I2_S", NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "blk.0.attn_norm.weight: element 7 is -inf");
	tu_run_free(&r);

	/* truncated and missing files */
	cr_assert(eq(int, tu_write_file(in, bytes, len / 2), 0));
	r = iq(in, out, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "in.gguf");
	tu_run_free(&r);
	r = iq("/nonexistent/x.gguf", out, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	expect_refusal(&r, out, "/nonexistent/x.gguf: cannot open");
	tu_run_free(&r);
	free(bytes);
	free(in);
	free(out);
	free(dir);
}

Test(i2s_quantize, rejects_bad_command_lines_with_usage_status)
{
	struct {
		const char *a[5];
		const char *msg;
	} cases[] = {
		{ { "in.gguf", NULL }, "missing OUT.gguf" },
		{ { NULL }, "missing IN.gguf and OUT.gguf" },
		{ { "a.gguf", "b.gguf", "Q4_K", NULL }, "unknown type 'Q4_K'" },
		{ { "a.gguf", "b.gguf", "I2_S", "x", NULL }, "threads: 'x'" },
		{ { "--type", "tq2_0", "a.gguf", "b.gguf", "I2_S" }, "disagree" },
		{ { "--token-embedding-type", "q4_0", "a", "b", NULL }, "is not f16, f32 or q8_0" },
		{ { "--i2s-layout", "sideways", "a", "b", NULL }, "is not auto, x86 or arm" },
		{ { "--frobnicate", "a", "b", NULL }, "unknown option: --frobnicate" },
		{ { "a.gguf", "a.gguf", NULL }, "the same file" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *const *a = cases[i].a;
		struct tu_run r = iq(a[0], a[0] ? a[1] : NULL, a[0] && a[1] ? a[2] : NULL,
				     a[0] && a[1] && a[2] ? a[3] : NULL,
				     a[0] && a[1] && a[2] && a[3] ? a[4] : NULL, NULL, NULL, NULL, NULL);
		cr_assert(eq(int, r.status, 2), "%s: exit %d", cases[i].msg, r.status);
		cr_assert(strstr(r.err, cases[i].msg) != NULL, "'%s' lacks '%s'", r.err, cases[i].msg);
		tu_run_free(&r);
	}
	struct tu_run r = iq("--help", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 0));
	cr_assert(strstr(r.out, "usage: i2s-quantize") != NULL);
	tu_run_free(&r);
}

/* TL packing (tools/common/lut_pack.c): byte-exact against the reference converter's output -
 * the lut-kernels.md §8.3 vectors and the TL tensors of the convert-quantize.md §13 reference
 * GGUFs - and a bijection on random data. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_hash.h"
#include "gguf.h"
#include "lut_pack.h"
#include "test_util.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void pack_hash(enum lut_quant q, uint32_t m, uint32_t k, uint32_t BM, uint32_t BK,
		      uint32_t bm, const int8_t *t, char hex[65])
{
	struct lut_params p = { .m = m, .k = k, .BM = BM, .BK = BK, .bm = bm };
	struct bn_err err = { 0 };
	size_t n = (size_t)lut_packed_size(q, m, k);
	uint8_t *o = malloc(n);
	cr_assert(eq(int, lut_pack(q, &p, t, o, &err), 0), "%s", err.msg);
	bn_sha256_buf(o, n, hex);
	free(o);
}

Test(lut_pack, reproduces_the_section_8_3_packed_vectors)
{
	/* w[m,c] = ((131m + 71c + (mc mod 7)) mod 3) - 1 on [256,512] and [256,608] */
	int8_t *t = malloc(256 * 608);
	char hex[65];
	for (int k = 512; k <= 608; k += 96) {
		for (int m = 0; m < 256; m++)
			for (int c = 0; c < k; c++)
				t[m * k + c] = (int8_t)((131 * m + 71 * c + (m * c % 7)) % 3 - 1);
		if (k == 512) {
			pack_hash(LUT_TL1, 256, 512, 128, 64, 32, t, hex);
			cr_expect(eq(str, hex, "2d8f062bd7ad703f062b6cc21aaf1ffdda1e8ed3ef36da49ae5f71cbf1ed21b1"));
			pack_hash(LUT_TL1, 256, 512, 128, 128, 64, t, hex);
			cr_expect(eq(str, hex, "ffe05a46f680ea32c506c5097c1540a8621c696fce08bf2e668156af48e63d5d"));
			pack_hash(LUT_TL2, 256, 512, 64, 96, 32, t, hex);
			cr_expect(eq(str, hex, "b55885449de8d42f8d09da238874852cc386db6bc5c51290935176eb6e098969"));
		} else {
			pack_hash(LUT_TL2, 256, 608, 128, 96, 32, t, hex);
			cr_expect(eq(str, hex, "507a13855f9c1b847af2752f33c12cfcda27b0e455c474ba36165094b0993682"));
		}
	}
	free(t);
}

Test(lut_pack, unpack_inverts_pack_for_random_weights_and_many_tilings)
{
	static const struct {
		enum lut_quant q;
		uint32_t m, k, BM, BK, bm;
	} c[] = {
		{ LUT_TL1, 64, 1024, 64, 256, 64 },   { LUT_TL1, 96, 48, 32, 16, 32 },
		{ LUT_TL1, 192, 272, 192, 136, 64 },  { LUT_TL1, 256, 512, 128, 64, 32 },
		{ LUT_TL2, 32, 1056, 32, 240, 32 },   { LUT_TL2, 96, 264, 96, 24, 32 },
		{ LUT_TL2, 224, 2080, 224, 168, 32 }, { LUT_TL2, 256, 256, 128, 96, 32 },
		{ LUT_TL2, 160, 600, 160, 120, 32 },
	};
	struct bn_err err = { 0 };
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct lut_params p = { .m = c[i].m, .k = c[i].k, .BM = c[i].BM, .BK = c[i].BK, .bm = c[i].bm };
		size_t n = (size_t)c[i].m * c[i].k, sz = (size_t)lut_packed_size(c[i].q, c[i].m, c[i].k);
		int8_t *t = malloc(n), *u = malloc(n);
		uint8_t *o = malloc(sz);
		for (size_t j = 0; j < n; j++)
			t[j] = (int8_t)(next() % 3) - 1;
		cr_assert(eq(int, lut_pack(c[i].q, &p, t, o, &err), 0), "%s", err.msg);
		memset(u, 7, n);
		cr_assert(eq(int, lut_unpack(c[i].q, &p, o, u, &err), 0), "%s", err.msg);
		cr_expect(eq(int, memcmp(t, u, n), 0), "case %zu: unpack(pack(w)) != w", i);
		/* padding (TL2) is zero */
		struct lut_params chk = p;
		lut_params_check(c[i].q, &chk, &err);
		for (size_t j = (size_t)lut_packed_used(c[i].q, &chk); j < sz; j++)
			cr_assert(eq(u8, o[j], 0), "case %zu: padding byte %zu", i, j);
		free(t);
		free(u);
		free(o);
	}
}

Test(lut_pack, unpack_rejects_codes_no_weights_pack_to)
{
	struct lut_params p = { .m = 32, .k = 256, .BM = 32, .BK = 64, .bm = 32 };
	uint8_t o[32 * 256 / 4];
	int8_t t[32 * 256];
	struct bn_err err = { 0 };
	memset(o, 0x44, sizeof o); /* pair code 4 = (0, 0) */
	cr_assert(eq(int, lut_unpack(LUT_TL1, &p, o, t, &err), 0));
	o[100] = 0x49; /* code 9 */
	cr_assert(lt(int, lut_unpack(LUT_TL1, &p, o, t, &err), 0));
	cr_expect(ne(ptr, strstr(err.msg, "byte 100: nibble"), NULL), "%s", err.msg);
}

Test(lut_pack, ternarize_follows_the_converter)
{
	const float w[6] = { 0.5f, -0.25f, 1e-7f, -1e-7f, -0.0f, 2.0f };
	int8_t t[6];
	float s = lut_ternarize(w, 6, t);
	cr_expect(eq(flt, s, 2.0f));
	const int8_t want[6] = { 1, -1, 0, 0, 0, 1 };
	cr_expect(eq(int, memcmp(t, want, 6), 0));
}

/* ---- the §13 reference GGUFs ------------------------------------------------------------
 * tv-bitnet (convert-quantize.md §13.1): 2 layers of q [256,256], k/v [128,256], o [256,256],
 * gate/up [512,256], down [256,512], weights from a per-tensor LCG, ternarized by weight_quant.
 * The SHA-256 of every TL tensor's packed bytes below were read from the reference files
 * (tv-f32.tl1.gguf, tv-f32.tl2-quant-embd.gguf) with the §13.1 tile configurations. */

struct tv_tensor {
	const char *gguf; /* GGUF name without "blk.L." */
	int ord;          /* ordinal within the layer (base 2 + 11 L) */
	uint32_t m, k;
};
static const struct tv_tensor tv_tensors[7] = {
	{ "attn_q", 4, 256, 256 },   { "attn_k", 5, 128, 256 },   { "attn_v", 6, 128, 256 },
	{ "attn_output", 7, 256, 256 }, { "ffn_gate", 8, 512, 256 }, { "ffn_up", 9, 512, 256 },
	{ "ffn_down", 10, 256, 512 },
};

/* §13.1 tile configurations, by shape: BM, BK, bm */
static void tv_params(enum lut_quant q, struct lut_params *p)
{
	static const uint32_t tl1[4][5] = { { 256, 256, 128, 64, 32 }, { 128, 256, 128, 128, 64 },
					    { 512, 256, 256, 64, 32 }, { 256, 512, 128, 128, 32 } };
	static const uint32_t tl2[4][5] = { { 256, 256, 128, 96, 32 }, { 128, 256, 128, 96, 32 },
					    { 512, 256, 256, 96, 32 }, { 256, 512, 128, 192, 32 } };
	const uint32_t(*t)[5] = q == LUT_TL1 ? tl1 : tl2;
	for (int i = 0; i < 4; i++)
		if (t[i][0] == p->m && t[i][1] == p->k) {
			p->BM = t[i][2];
			p->BK = t[i][3];
			p->bm = t[i][4];
		}
}

/* The §13.1 LCG weights of one tensor, then weight_quant's ternary pattern (§5.1):
 * t = clamp(rint(x * (1/mean|x|)), -1, 1); the mean is exact in f32 for these vectors. */
static void tv_ternary(int ordinal, size_t n, int8_t *t)
{
	float *x = malloc(n * sizeof *x);
	uint32_t state = (uint32_t)(((uint64_t)ordinal + 1) * 2654435761u);
	float sum = 0.0f;
	for (size_t i = 0; i < n; i++) {
		state = state * 1664525u + 1013904223u;
		int kk = (int)((state >> 16) % 127) - 63;
		x[i] = (float)kk / 4096.0f;
		sum += fabsf(x[i]);
	}
	float mean = sum / (float)n;
	if (mean < 1e-5f)
		mean = 1e-5f;
	const float s = 1.0f / mean;
	for (size_t i = 0; i < n; i++) {
		float r = rintf(x[i] * s);
		t[i] = r > 0.5f ? 1 : r < -0.5f ? -1 : 0;
	}
	free(x);
}

static const char *const tv_sha_tl1[2][7] = {
	{
		"15beb6705f6b28974bb264e7ff9826f100c2f2ff7d04170da419f94f4d8ac7cd", /* attn_q */
		"acaefb38ea6fe6c9f739d007eb7c445c70d0d50a15d812f7f2413c88fccbf8fa", /* attn_k */
		"ecc1453f05d102090844714e06732b2e6c65ad31b706f7107da970448c395425", /* attn_v */
		"4423ef196bd710fc1238a9f87e2cd459e4c68181ded36f9b61f9aa7bf37f99c3", /* attn_output */
		"b9a28afc9c70b25206b5a3ad91554a82f3c83387d4f5d5cbe6dfb9e11db72de6", /* ffn_gate */
		"ea02389b742c56cc3ecf352d17d102ef09fde8c0e03c5799355385e7f25ba2f9", /* ffn_up */
		"ac273f05a9dc51bae5673ab16020d7efc5521bd0c09a82b62bed0cbbd89c2e72", /* ffn_down */
	},
	{
		"fb68fb888c8caef6f0cb7974614dd316001690ec1944240dec1701cf307a666f", /* attn_q */
		"9662e3d0111b56ff1078b11175b95eeac6bf528bb3adf381059fcfbb768f55c3", /* attn_k */
		"1e38c2ab582283ea5268262d79672a76efa5cc88b13368b44d7023a8de7bebc1", /* attn_v */
		"4519d503370c4516157edba494ab78d00dbd89519b67a3b9d0128b7196ba7225", /* attn_output */
		"31a0713629c6ac857ae66cc68c3fcec447c58271908bcede9d0b9c47c656f301", /* ffn_gate */
		"151d23f2cb2fddda009292c36bf313a33ceb06789489f0295f0157c6ebc8c896", /* ffn_up */
		"df6a5ecc54062b22a52eae8e1756638c3ed3e4d1e64e128d4ba2aa3821416044", /* ffn_down */
	},
};
static const char *const tv_sha_tl2[2][7] = {
	{
		"4becb0fb13c26604678c32f68514cd885518138b18dfe332a9dbbeb888112bcb", /* attn_q */
		"547aff57aef703b8a88648a03034a3b0f4737f43bf345be6395545a76b112427", /* attn_k */
		"01a220d7fc369edf33e3f3cf3a9949125e87a4971cad5f85c02c44b5dc98614f", /* attn_v */
		"3c47fc7cbcb030eb9a7d96a5fe60c217a6fda467c3ad5bbdfdcb39c6437504b2", /* attn_output */
		"f173b3b30832e9674ed3dec80a1588ef06fb38e49377a8d8bd858448270fe95a", /* ffn_gate */
		"e81faf97ea4cde0b309a762ed06dfac9d3ee0267abae6be21ffe973cab460d0b", /* ffn_up */
		"0dd187ecce6db28896e964061e6b2e2a1411b33d4ba3742bb5d4fd1c1c252a69", /* ffn_down */
	},
	{
		"138990e400ea0a2713956efb3b27aa968d3bd522cba716b480c68a0ab10458ad", /* attn_q */
		"f838bb070fd57259ab333fbfc22291736b9c868818b1c6a23a1104ca8a177de3", /* attn_k */
		"e644469a9d89a4ce597179a67128e9e1278e4e033c8fcb7966d960b441841cf3", /* attn_v */
		"cf37ee61308a388f0ec8e80e36570f99aaa1870fb583adc69d2a9b064e7d54b5", /* attn_output */
		"d134488c5d46a7d26796a52bbe34826c5cbe34516e5c5ea88c615e99715039bc", /* ffn_gate */
		"f5b6bf9949689b2f68e6c4db704a738000267b17fe17fff8be28a62c9c7be66e", /* ffn_up */
		"2997e0c598daaad4de5b09bd9b4aa7226b9bc4aae31d7b5f4aa7a62f85d20a6c", /* ffn_down */
	},
};

static void tv_check(enum lut_quant q, const char *const sha[2][7])
{
	for (int L = 0; L < 2; L++)
		for (int i = 0; i < 7; i++) {
			const struct tv_tensor *tt = &tv_tensors[i];
			struct lut_params p = { .m = tt->m, .k = tt->k };
			tv_params(q, &p);
			size_t n = (size_t)tt->m * tt->k;
			int8_t *t = malloc(n);
			tv_ternary(2 + 11 * L + tt->ord, n, t);
			char hex[65];
			pack_hash(q, p.m, p.k, p.BM, p.BK, p.bm, t, hex);
			cr_expect(eq(str, hex, (char *)sha[L][i]), "%s blk.%d.%s", lut_quant_name(q), L, tt->gguf);
			free(t);
		}
}

Test(lut_pack, packs_the_section_13_tl1_tensors_like_the_reference_converter)
{
	tv_check(LUT_TL1, tv_sha_tl1);
}

Test(lut_pack, packs_the_section_13_tl2_tensors_like_the_reference_converter)
{
	tv_check(LUT_TL2, tv_sha_tl2);
}

/* ---- byte comparison with the reference files themselves (when ../shared is there) ---- */

static uint8_t *unxz(const char *ref, const char *dir, size_t *n)
{
	char *src = tu_shared(ref);
	char cmd[8192], out[4200];
	snprintf(out, sizeof out, "%s/%s", dir, "f.gguf");
	snprintf(cmd, sizeof cmd, "test -f '%s' && xz -dc '%s' > '%s'", src, src, out);
	struct tu_run r = tu_sh(cmd);
	int ok = r.status == 0;
	tu_run_free(&r);
	free(src);
	return ok ? (uint8_t *)tu_read_file(out, n) : NULL;
}

static void compare_reference(enum lut_quant q, const char *ref)
{
	char *dir = tu_mkdtemp("lut_pack_ref");
	size_t n32, nq;
	uint8_t *f32 = unxz("testdata/reference/tv-f32.f32.gguf.xz", dir, &n32);
	if (!f32)
		cr_skip("no reference files (../shared/testdata/reference)");
	uint8_t *fq = unxz(ref, dir, &nq);
	cr_assert(ne(ptr, fq, NULL), "%s", ref);
	struct bn_err err = { 0 };
	struct gguf_reader *g32 = gguf_open_mem(f32, n32, "tv-f32.f32.gguf", &err);
	cr_assert(ne(ptr, g32, NULL), "%s", err.msg);
	struct gguf_reader *gq = gguf_open_mem(fq, nq, ref, &err);
	cr_assert(ne(ptr, gq, NULL), "%s", err.msg);
	int checked = 0;
	for (size_t i = 0; i < gguf_n_tensors(gq); i++) {
		const struct gguf_tensor *t = gguf_tensor(gq, i);
		if (t->type != (q == LUT_TL1 ? GGUF_TYPE_TL1 : GGUF_TYPE_TL2))
			continue;
		int64_t wi = gguf_find_tensor(g32, t->name);
		cr_assert(ge(i64, wi, 0), "%s", t->name);
		const struct gguf_tensor *w = gguf_tensor(g32, (size_t)wi);
		struct lut_params p = { .m = (uint32_t)t->ne[1], .k = (uint32_t)t->ne[0] };
		tv_params(q, &p);
		const size_t n = (size_t)p.m * p.k, sz = (size_t)lut_packed_size(q, p.m, p.k);
		const uint64_t so = lut_scale_offset(q, p.m, p.k);
		cr_assert(ge(u64, t->nbytes, so + 4), "%s", t->name);
		cr_assert(eq(u64, w->nbytes, n * sizeof(float)), "%s", t->name);
		float *x = malloc(n * sizeof *x);
		int8_t *tern = malloc(n);
		uint8_t *o = malloc(sz);
		memcpy(x, w->data, n * sizeof *x);
		float scale = lut_ternarize(x, n, tern);
		cr_assert(eq(int, lut_pack(q, &p, tern, o, &err), 0), "%s", err.msg);
		size_t first = sz;
		for (size_t j = 0; j < sz && first == sz; j++)
			if (o[j] != t->data[j])
				first = j;
		cr_expect(eq(sz, first, sz), "%s %s: first differing byte %zu", ref, t->name, first);
		float ws;
		memcpy(&ws, t->data + so, 4);
		cr_expect(eq(int, memcmp(&ws, &scale, 4), 0), "%s: scale %a, max|w| %a", t->name,
			  (double)ws, (double)scale);
		free(x);
		free(tern);
		free(o);
		checked++;
	}
	cr_expect(eq(int, checked, 14), "%s: TL tensors", ref);
	gguf_close(g32);
	gguf_close(gq);
	free(f32);
	free(fq);
	free(dir);
}

Test(lut_pack, matches_the_tl1_reference_gguf_byte_for_byte)
{
	compare_reference(LUT_TL1, "testdata/reference/tv-f32.tl1.gguf.xz");
	compare_reference(LUT_TL1, "testdata/reference/tv-f32.tl1-quant-embd.gguf.xz");
}

Test(lut_pack, matches_the_tl2_reference_gguf_byte_for_byte)
{
	compare_reference(LUT_TL2, "testdata/reference/tv-f32.tl2-quant-embd.gguf.xz");
}

Test(lut_pack, tiles_packed_separately_in_any_order_equal_the_whole_tensor)
{
	static const struct {
		enum lut_quant q;
		uint32_t m, k, BM, BK, bm;
	} c[] = { { LUT_TL1, 256, 512, 64, 64, 32 }, { LUT_TL2, 224, 2080, 32, 168, 32 },
		  { LUT_TL2, 256, 608, 128, 96, 32 } };
	struct bn_err err = { 0 };
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct lut_params p = { .m = c[i].m, .k = c[i].k, .BM = c[i].BM, .BK = c[i].BK, .bm = c[i].bm };
		size_t n = (size_t)c[i].m * c[i].k, sz = (size_t)lut_packed_size(c[i].q, c[i].m, c[i].k);
		int8_t *t = malloc(n);
		uint8_t *whole = malloc(sz), *parts = calloc(1, sz);
		for (size_t j = 0; j < n; j++)
			t[j] = (int8_t)(next() % 3) - 1;
		cr_assert(eq(int, lut_pack(c[i].q, &p, t, whole, &err), 0), "%s", err.msg);
		const uint32_t tiles = c[i].m / c[i].BM;
		for (uint32_t k = 0; k < tiles; k++) {
			uint32_t tile = (k * 5 + 3) % tiles; /* a permutation when 5 and tiles are coprime */
			if (tiles % 5 == 0)
				tile = tiles - 1 - k;
			cr_assert(eq(int, lut_pack_tiles(c[i].q, &p, t + (size_t)tile * c[i].BM * c[i].k, tile, 1, parts, &err), 0),
				  "%s", err.msg);
		}
		cr_expect(eq(int, memcmp(whole, parts, sz), 0), "case %zu", i);
		cr_expect(lt(int, lut_pack_tiles(c[i].q, &p, t, tiles, 1, parts, &err), 0), "tile out of range");
		free(t);
		free(whole);
		free(parts);
	}
}

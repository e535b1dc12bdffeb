/* LUT kernel harness for the bitnet.cpp drop-in mode of a generated bitnet-lut-kernels.h
 * (GGML_BITNET_X86_TL2 / GGML_BITNET_ARM_TL1 defined, tests/lut/mock/ggml-bitnet.h standing in
 * for upstream's).  It drives the header exactly as ggml.c (merge-dev 406a503) does -
 * ggml_bitnet_transform_tensor, ggml_preprocessor, then per tile ggml_qgemm_lut, TL2 rows split
 * into batches of 512/256/128/32/8/1 - and compares with lut_ref_gemm bit for bit.
 *   ggml_harness --ini kernel_config.ini [--batches 1,3,8,9,64]
 * Also compiles as C++ (clang++ -x c++); with LUT_TEST_LARGE_TL2 it additionally calls the
 * templated per-shape symbols of the [1536,4096] kernel by name. */
#include "bitnet-lut-kernels.h"

#include "harness_util.h"

#if defined(GGML_BITNET_X86_TL2)
#define Q LUT_TL2
#define TYPE GGML_TYPE_TL2
#else
#define Q LUT_TL1
#define TYPE GGML_TYPE_TL1
#endif

/* What src/ggml-bitnet-lut.cpp does with the header's statics. */
void ggml_bitnet_init(void)
{
	if (initialized)
		return;
	initialized = true;
	if (bitnet_tensor_extras == NULL)
		bitnet_tensor_extras = (struct bitnet_tensor_extra *)calloc(GGML_BITNET_MAX_NODES, sizeof *bitnet_tensor_extras);
	bitnet_tensor_extras_index = 0;
}

void ggml_bitnet_free(void)
{
	if (!initialized)
		return;
	initialized = false;
	free(bitnet_tensor_extras);
	bitnet_tensor_extras = NULL;
}

#if defined(GGML_BITNET_X86_TL2)
/* ggml.c's TL2 path for N activation rows (with the two-LUT offsets it should have used). */
static void run_ggml(struct ggml_tensor *w, const float *act, int N, float *dst)
{
	const struct bitnet_tensor_extra *wt = (const struct bitnet_tensor_extra *)w->extra;
	const int k = (int)w->ne[0], m = (int)w->ne[1];
	const int three_k = k / wt->BK * wt->BK, two_k = k - three_k;
	int8_t *three_qlut = (int8_t *)hu_xmalloc((size_t)N * (three_k / 3 * 32 + two_k * 16 + 4));
	float *lut_scales = (float *)(void *)(three_qlut + (size_t)N * three_k / 3 * 32);
	int8_t *two_qlut = (int8_t *)(lut_scales + N);
	ggml_preprocessor(N, m, three_k, two_k, (void *)act, lut_scales, three_qlut, two_qlut);
	const int n_tile = wt->n_tile_num;
	const size_t w_tile = (size_t)three_k * m / 6 / n_tile, sign_tile = (size_t)three_k * m / 24 / n_tile;
	const size_t two_w_tile = (size_t)m * two_k / 4 / n_tile, c_tile = (size_t)m / n_tile;
	uint8_t *sign = wt->qweights + (size_t)three_k * m / 6;
	uint8_t *two_A = sign + (size_t)three_k * m / 24;
	static const int sizes[] = { 512, 256, 128, 32, 8, 1 };
	int r0 = 0;
	for (int si = 0; si < 6; si++)
		for (; N - r0 >= sizes[si]; r0 += sizes[si]) {
			const int bs = sizes[si];
			for (int t = 0; t < n_tile; t++)
				ggml_qgemm_lut(bs, m, k, three_k, wt->qweights + t * w_tile, sign + t * sign_tile,
					       three_qlut + (size_t)r0 * three_k / 3 * 32, wt->scales, lut_scales + r0,
					       dst + (size_t)r0 * m + t * c_tile);
			for (int t = 0; t < n_tile; t++)
				ggml_qgemm_lut(bs, m, k, two_k, two_A + t * two_w_tile, NULL,
					       two_qlut + (size_t)r0 * two_k / 2 * 32, wt->scales, lut_scales + r0,
					       dst + (size_t)r0 * m + t * c_tile);
		}
	free(three_qlut);
}
#else
/* ggml.c's TL1 path, one activation row at a time (its ggml_bitnet_can_mul_mat allows no more). */
static void run_ggml(struct ggml_tensor *w, const float *act, int N, float *dst)
{
	const struct bitnet_tensor_extra *wt = (const struct bitnet_tensor_extra *)w->extra;
	const int k = (int)w->ne[0], m = (int)w->ne[1];
	int8_t *qlut = (int8_t *)hu_xmalloc((size_t)k * 16 + 4);
	float *lut_scales = (float *)(void *)(qlut + (size_t)k * 16);
	const int n_tile = wt->n_tile_num;
	for (int r = 0; r < N; r++) {
		ggml_preprocessor(m, k, (void *)(act + (size_t)r * k), lut_scales, qlut);
		for (int t = 0; t < n_tile; t++)
			ggml_qgemm_lut(m, k, wt->qweights + (size_t)t * (m * (size_t)k / 4 / n_tile), qlut,
				       wt->scales, lut_scales, dst + (size_t)r * m + (size_t)t * (m / n_tile));
	}
	free(qlut);
}
#endif

#if defined(__cplusplus) && defined(LUT_TEST_LARGE_TL2)
/* Upstream's templated per-shape API for [1536,4096] (BM 256, BK 96: three_k 4032, two_k 64),
 * called by name with a batch of 8 rows, one tile. */
static int check_templates(const int8_t *w, const uint8_t *t, float ws)
{
	const int m = 1536, k = 4096, three_k = 4032, two_k = 64, bs = 8;
	static_assert(BM1536_4096 == 256 && BBK1536_4096 == 96, "per-shape macros");
	float *act = (float *)hu_xmalloc((size_t)bs * k * sizeof(float));
	float *ref = (float *)hu_xmalloc((size_t)bs * m * sizeof(float));
	float *C = (float *)hu_xmalloc((size_t)bs * m * sizeof(float));
	int8_t *l3 = (int8_t *)hu_xmalloc((size_t)bs * three_k / 3 * 32);
	int8_t *l2 = (int8_t *)hu_xmalloc((size_t)bs * two_k * 16);
	float scales[bs];
	hu_acts(HU_RANDOM, bs, k, act);
	lut_ref_gemm(w, m, k, ws, act, bs, ref);
	partial_max_reset(bs, scales);
	for (int b = 0; b < bs; b++) {
		per_tensor_quant(k, &scales[b], act + (size_t)b * k);
		three_lut_ctor<three_k>(l3 + (size_t)b * three_k / 3 * 32, act + (size_t)b * k, &scales[b]);
		two_lut_ctor<two_k>(l2 + (size_t)b * two_k * 16, act + (size_t)b * k + three_k, &scales[b]);
	}
	float ws_ = ws;
	uint8_t *A = (uint8_t *)t;
	three_qgemm_lut_1536_4096<bs>(A, A + (size_t)m * three_k / 6, l3, &ws_, scales, C);
	two_qgemm_lut_1536_4096<bs>(A + (size_t)m * three_k / 6 + (size_t)m * three_k / 24, l2, &ws_, scales, C);
	/* tile 0 only: rows r, outputs 0..255 */
	size_t bad = 0;
	for (int r = 0; r < bs; r++)
		bad += hu_compare("three/two_qgemm_lut_1536_4096<8> tile 0", C + (size_t)r * m, ref + (size_t)r * m, 1, 256);
	/* the block-level functions: one K-block each, into int32 sums */
	int32_t c3[256 * 1] = { 0 }, c2[256 * 1] = { 0 };
	three_tbl_impl_1536_4096<1, three_k>(c3, l3, A, A + (size_t)m * three_k / 6);
	two_tbl_impl1536_4096<1, two_k>(c2, l2, A + (size_t)m * three_k / 6 + (size_t)m * three_k / 24);
	int64_t want3 = 0, want2 = 0;
	int8_t q[4096];
	for (int c = 0; c < k; c++)
		q[c] = (int8_t)nearbyintf(act[c] * scales[0]);
	for (int c = 0; c < 96; c++)
		want3 += w[c] * q[c];
	for (int c = three_k; c < three_k + 32; c++)
		want2 += w[c] * q[c];
	if (c3[0] != want3 || c2[0] != want2) {
		printf("MISMATCH three_tbl_impl/two_tbl_impl: row 0 block sums %d %d, want %lld %lld\n", (int)c3[0],
		       (int)c2[0], (long long)want3, (long long)want2);
		bad++;
	}
	if (is_type_supported(GGML_TYPE_Q4_0) || !is_type_supported(GGML_TYPE_TL2)) {
		printf("MISMATCH is_type_supported\n");
		bad++;
	}
	void *p = aligned_malloc(100);
	if (!p || (uintptr_t)p % 64) {
		printf("MISMATCH aligned_malloc\n");
		bad++;
	}
	aligned_free(p);
	if (!bad)
		printf("ok C++ templates of [1536,4096] (bs=8)\n");
	free(act);
	free(ref);
	free(C);
	free(l3);
	free(l2);
	return bad != 0;
}
#endif

int main(int argc, char **argv)
{
	const char *ini = NULL;
	int batches[32] = { 1, 3, 8, 9, 64 }, nb = 5;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ini") && i + 1 < argc)
			ini = argv[++i];
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
			nb = hu_parse_list(argv[++i], batches, 32);
		else {
			fprintf(stderr, "usage: ggml_harness --ini kernel_config.ini [--batches LIST]\n");
			return 2;
		}
	}
	FILE *f = ini ? fopen(ini, "rb") : NULL;
	if (!f || nb <= 0) {
		fprintf(stderr, "ggml_harness: --ini FILE (readable) and --batches are required\n");
		return 2;
	}
	char text[65536];
	size_t len = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	struct lut_params *params = NULL;
	size_t ns = 0;
	struct bn_err err;
	memset(&err, 0, sizeof err);
	if (lut_ini_parse(Q, text, len, ini, &params, &ns, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	ggml_bitnet_init();
	int maxn = 0;
	for (int b = 0; b < nb; b++)
		maxn = batches[b] > maxn ? batches[b] : maxn;
	size_t failures = 0;
	for (size_t s = 0; s < ns; s++) {
		const struct lut_params *p = &params[s];
		const int64_t m = p->m, k = p->k;
		int8_t *w = (int8_t *)hu_xmalloc((size_t)(m * k));
		float *act = (float *)hu_xmalloc((size_t)(maxn * k) * sizeof(float));
		float *out = (float *)hu_xmalloc((size_t)(maxn * m) * sizeof(float));
		float *ref = (float *)hu_xmalloc((size_t)(maxn * m) * sizeof(float));
		hu_weights(HU_RANDOM, m, k, w);
		const float ws = 0.0371f;
		size_t size;
		uint8_t *data = hu_tensor(Q, p, w, ws, &size);
		struct ggml_tensor t;
		memset(&t, 0, sizeof t);
		t.type = TYPE;
		t.ne[0] = k;
		t.ne[1] = m;
		t.ne[2] = t.ne[3] = 1;
		t.data = data;
		snprintf(t.name, sizeof t.name, "blk.0.test.weight");
		ggml_bitnet_transform_tensor(&t);
		const struct bitnet_tensor_extra *e = (const struct bitnet_tensor_extra *)t.extra;
		if (!e || e->qweights != data || e->scales[0] != ws || e->BK != (int)p->BK ||
		    e->n_tile_num != (int)(p->m / p->BM) || e->lut_scales_size != 1) {
			printf("MISMATCH [%" PRId64 ",%" PRId64 "]: ggml_bitnet_transform_tensor's extra\n", m, k);
			failures++;
		}
		ggml_bitnet_transform_tensor(&t); /* idempotent, as ggml.c calls it before every matmul */
		if (t.extra != e)
			failures++;
		hu_acts(HU_RANDOM, maxn, k, act);
		lut_ref_gemm(w, m, k, ws, act, maxn, ref);
		for (int b = 0; b < nb; b++) {
			char what[128];
			snprintf(what, sizeof what, "ggml [%" PRId64 ",%" PRId64 "] BM=%u BK=%u bm=%u n=%d", m, k,
				 p->BM, p->BK, p->bm, batches[b]);
			memset(out, 0xff, (size_t)(batches[b] * m) * sizeof(float));
			run_ggml(&t, act, batches[b], out);
			size_t bad = hu_compare(what, out, ref, batches[b], m);
			failures += bad != 0;
			if (!bad)
				printf("ok %s\n", what);
		}
#if defined(__cplusplus) && defined(LUT_TEST_LARGE_TL2)
		if (m == 1536 && k == 4096)
			failures += check_templates(w, data, ws);
#endif
		free(w);
		free(act);
		free(out);
		free(ref);
		free(data);
	}
	ggml_bitnet_free();
	free(params);
	return failures ? 1 : 0;
}

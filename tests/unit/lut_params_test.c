/* TL tile parameters (tools/common/lut_params.c): every constraint of lut-kernels.md §1.4 with
 * its message, the automatic choice (always valid; exhaustive against brute force), sizes,
 * kernel_config.ini and preset keys; plus the scalar reference's own sanity. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <glob.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn_hash.h"
#include "lut/lut.h"
#include "lut_params.h"
#include "test_util.h"

static void expect_error(enum lut_quant q, uint32_t m, uint32_t k, uint32_t BM, uint32_t BK,
			 uint32_t bm, const char *msg)
{
	struct lut_params p = { .m = m, .k = k, .BM = BM, .BK = BK, .bm = bm };
	struct bn_err err = { 0 };
	cr_expect(lt(int, lut_params_check(q, &p, &err), 0), "%s accepted", msg);
	cr_expect(eq(str, err.msg, (char *)msg));
}

Test(lut_params, tl1_violations_name_the_shape_and_the_rule)
{
	expect_error(LUT_TL1, 256, 1024, 256, 512, 32,
		     "tl1 [256,1024]: BK=512: more than 256, so the int16 block sums could overflow "
		     "(127*BK > 32767); choose a divisor of K up to 256");
	expect_error(LUT_TL1, 256, 1024, 32, 128, 64,
		     "tl1 [256,1024]: BM=32: not a multiple of bm=64 (a tile holds whole micro-tiles)");
	expect_error(LUT_TL1, 256, 1024, 256, 128, 48,
		     "tl1 [256,1024]: bm=48: the TL1 micro-tile must be 32 or 64 rows");
	expect_error(LUT_TL1, 256, 1000, 256, 8, 32,
		     "tl1 [256,1000]: K=1000 is not a multiple of 16 (activations are quantized 16 "
		     "at a time); TL1 cannot pack it");
	expect_error(LUT_TL1, 256, 1024, 96, 128, 32,
		     "tl1 [256,1024]: BM=96: M=256 is not a multiple of it (tiles of BM rows must "
		     "cover M exactly)");
	expect_error(LUT_TL1, 256, 1024, 256, 96, 32,
		     "tl1 [256,1024]: BK=96: K=1024 is not a multiple of it (K-blocks must cover K "
		     "exactly)");
	expect_error(LUT_TL1, 256, 1040, 256, 52, 32,
		     "tl1 [256,1040]: BK=52: not a multiple of 8 (with bm=32 each inner step "
		     "consumes 8 columns)");
	expect_error(LUT_TL1, 100, 1024, 100, 128, 32,
		     "tl1 [100,1024]: M=100 is not a multiple of bm=32 (tiles are made of bm-row "
		     "micro-tiles); TL1 cannot pack it");
	expect_error(LUT_TL1, 0, 1024, 32, 128, 32, "tl1 [0,1024]: empty matrix");
}

Test(lut_params, tl2_violations_name_the_shape_and_the_rule)
{
	expect_error(LUT_TL2, 64, 1056, 64, 264, 32,
		     "tl2 [64,1056]: BK=264: more than 240, so the int16 block sums could overflow "
		     "(127*BK > 32767); choose a multiple of 24 up to 240");
	expect_error(LUT_TL2, 64, 1056, 64, 18, 32,
		     "tl2 [64,1056]: BK=18: not a multiple of 24 (the kernel consumes 8 "
		     "three-weight groups = 24 columns per step)");
	expect_error(LUT_TL2, 256, 1000, 256, 96, 32,
		     "tl2 [256,1000]: BK=96: the remainder K mod BK = 40 is not a multiple of 32 "
		     "(the two-weight part runs in blocks of 32)");
	expect_error(LUT_TL2, 256, 128, 256, 96, 32,
		     "tl2 [256,128]: K=128 is less than 256; the TL2 file layout (lut-kernels.md "
		     "§3.4.5) needs K >= 256");
	expect_error(LUT_TL2, 256, 1536, 256, 96, 64,
		     "tl2 [256,1536]: bm=64: TL2 micro-tiles are always 32 rows");
	expect_error(LUT_TL2, 256, 1536, 48, 96, 32,
		     "tl2 [256,1536]: BM=48: not a multiple of 32 (a tile holds whole 32-row "
		     "micro-tiles)");
	expect_error(LUT_TL2, 96, 1536, 64, 96, 32,
		     "tl2 [96,1536]: BM=64: M=96 is not a multiple of it (tiles of BM rows must "
		     "cover M exactly)");
	expect_error(LUT_TL2, 100, 1536, 32, 96, 32,
		     "tl2 [100,1536]: M=100 is not a multiple of 32 (tiles are made of 32-row "
		     "micro-tiles); TL2 cannot pack it");
	expect_error(LUT_TL2, 1u << 20, 2048, 256, 96, 32,
		     "tl2 [1048576,2048]: too large: at most 1048576 rows or columns and 2^30 "
		     "weights (bitnet.cpp computes these sizes in 32-bit int)");
}

Test(lut_params, duplicate_shapes_are_rejected)
{
	struct lut_params p[2] = { { .m = 256, .k = 256, .BM = 128, .BK = 96, .bm = 32 },
				   { .m = 256, .k = 256, .BM = 256, .BK = 192, .bm = 32 } };
	struct bn_err err = { 0 };
	cr_expect(lt(int, lut_params_check_list(LUT_TL2, p, 2, &err), 0));
	cr_expect(eq(str, err.msg, "tl2 [256,256]: listed twice (each shape gets one kernel)"));
}

/* The automatic choice is valid whenever any parameter set is, for every shape of a grid, and
 * TL2's BK is the heuristic's best among all valid ones. */
Test(lut_params, automatic_parameters_are_valid_whenever_a_valid_set_exists)
{
	struct bn_err err = { 0 };
	for (uint32_t m = 32; m <= 4096; m += 32 * 7)
		for (uint32_t k = 16; k <= 9000; k += 8) {
			struct lut_params p = { .m = m, .k = k };
			int rc = lut_params_auto(LUT_TL1, &p, &err);
			cr_assert(eq(int, rc, k % 16 ? -BN_EINVAL : 0), "tl1 [%u,%u]: %s", m, k, err.msg);
			if (!rc) {
				cr_assert(le(u32, p.BM, 256), "tl1 [%u,%u] BM %u", m, k, p.BM);
				cr_assert(ge(u32, p.BK, 16));
			}
			p = (struct lut_params){ .m = m, .k = k };
			rc = lut_params_auto(LUT_TL2, &p, &err);
			/* brute force: does any BK work? which is best? */
			int any = 0, best_fit = -1;
			uint32_t best_two = 999, best_bk = 0;
			for (uint32_t bk = 24; k >= 256 && bk <= 240; bk += 24) {
				struct lut_params t = { .m = m, .k = k, .BM = 32, .BK = bk, .bm = 32 };
				if (lut_params_check(LUT_TL2, &t, NULL))
					continue;
				any = 1;
				int fit = lut_tl2_fits_ggml_wsize(&t);
				if (fit > best_fit || (fit == best_fit && (t.two_k < best_two ||
									   (t.two_k == best_two && bk > best_bk)))) {
					best_fit = fit;
					best_two = t.two_k;
					best_bk = bk;
				}
			}
			cr_assert(eq(int, rc == 0, any), "tl2 [%u,%u]: auto %d, brute force %d: %s", m, k,
				  rc, any, err.msg);
			if (!rc)
				cr_assert(eq(u32, p.BK, best_bk), "tl2 [%u,%u]", m, k);
		}
}

Test(lut_params, automatic_parameters_for_real_models)
{
	static const struct {
		enum lut_quant q;
		uint32_t m, k, BM, BK, bm, two_k;
	} c[] = {
		{ LUT_TL2, 1536, 4096, 256, 192, 32, 64 },  { LUT_TL2, 1536, 1536, 256, 192, 32, 0 },
		{ LUT_TL2, 640, 2560, 160, 192, 32, 64 },   { LUT_TL2, 6912, 2560, 256, 192, 32, 64 },
		{ LUT_TL2, 2560, 6912, 256, 216, 32, 0 },   { LUT_TL2, 14336, 4096, 256, 192, 32, 64 },
		{ LUT_TL2, 4096, 14336, 256, 96, 32, 32 },  { LUT_TL2, 2048, 8192, 256, 240, 32, 32 },
		{ LUT_TL1, 1536, 4096, 256, 256, 32, 0 },   { LUT_TL1, 3200, 8640, 160, 240, 32, 0 },
		{ LUT_TL1, 640, 2560, 160, 256, 32, 0 },
	};
	struct bn_err err = { 0 };
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct lut_params p = { .m = c[i].m, .k = c[i].k };
		cr_assert(eq(int, lut_params_auto(c[i].q, &p, &err), 0), "%s", err.msg);
		cr_expect(eq(u32, p.BM, c[i].BM), "[%u,%u] BM", c[i].m, c[i].k);
		cr_expect(eq(u32, p.BK, c[i].BK), "[%u,%u] BK", c[i].m, c[i].k);
		cr_expect(eq(u32, p.bm, c[i].bm), "[%u,%u] bm", c[i].m, c[i].k);
		cr_expect(eq(u32, p.two_k, c[i].two_k), "[%u,%u] two_k", c[i].m, c[i].k);
	}
	/* given parameters are kept */
	struct lut_params p = { .m = 1536, .k = 4096, .BK = 96 };
	cr_assert(eq(int, lut_params_auto(LUT_TL2, &p, &err), 0));
	cr_expect(eq(u32, p.BK, 96));
	cr_expect(eq(u32, p.three_k, 4032));
}

Test(lut_params, packed_sizes_follow_bitnet_cpp)
{
	cr_expect(eq(u64, lut_packed_size(LUT_TL1, 1536, 4096), 1536 * 4096 / 4));
	cr_expect(eq(u64, lut_packed_size(LUT_TL2, 256, 608), 35157));
	cr_expect(eq(u64, lut_scale_offset(LUT_TL2, 256, 608), 35168));
	cr_expect(eq(u64, lut_scale_offset(LUT_TL2, 256, 512), 30048));
	cr_expect(eq(u64, lut_scale_offset(LUT_TL1, 256, 512), 32768));
	cr_expect(eq(u64, lut_tensor_extent(LUT_TL1, 256, 512), 32800));
}

Test(lut_params, kernel_config_ini_is_byte_identical_and_parses_back)
{
	struct lut_params p[3] = { { 1536, 4096, 256, 96, 32, 0, 0 },
				   { 1536, 1536, 128, 192, 32, 0, 0 },
				   { 4096, 1536, 256, 96, 32, 0, 0 } };
	char *ini, hex[65];
	size_t len;
	cr_assert(eq(int, lut_ini_format(p, 3, &ini, &len, NULL), 0));
	bn_sha256_buf(ini, len, hex); /* lut-kernels.md §8.1 #5 */
	cr_expect(eq(str, hex, "220c071f2d18ed4d2c3e5e6eb6beaae4465f6b8755078823bea893466e54380b"));
	struct lut_params *back;
	size_t n;
	struct bn_err err = { 0 };
	cr_assert(eq(int, lut_ini_parse(LUT_TL2, ini, len, "x.ini", &back, &n, &err), 0), "%s", err.msg);
	cr_assert(eq(sz, n, 3));
	cr_expect(eq(u32, back[1].BK, 192));
	cr_expect(eq(u32, back[0].two_k, 64));
	free(back);
	free(ini);
	/* upstream's TL2 preset ini for bitnet_b1_58-large says bmm = 64 for [4096,1536] */
	const char *bad = "[Kernels_0]\nm = 4096\nk = 1536\nbm = 256\nbk = 96\nbmm = 64\n\n";
	cr_expect(lt(int, lut_ini_parse(LUT_TL2, bad, strlen(bad), "x.ini", &back, &n, &err), 0));
	cr_expect(eq(str, err.msg, "x.ini: tl2 [4096,1536]: bm=64: TL2 micro-tiles are always 32 rows"));
	const char *missing = "[Kernels_0]\nm = 4096\nk = 1536\nbm = 256\n";
	cr_expect(lt(int, lut_ini_parse(LUT_TL2, missing, strlen(missing), "y.ini", &back, &n, &err), 0));
	cr_expect(eq(str, err.msg, "y.ini: section 0: needs all of m, k, bm, bk and bmm"));
}

Test(lut_params, preset_keys_are_found_and_checked)
{
	const char *text = "# tuned\nhf_repo = x/y\ntl2.1536x4096 = 256, 96, 32\ntl1.1536x4096 = 256,128\n";
	struct lut_params p = { .m = 1536, .k = 4096 };
	struct bn_err err = { 0 };
	cr_expect(eq(int, lut_preset_lookup(LUT_TL2, text, "p.ini", &p, &err), 1));
	cr_expect(eq(u32, p.BM, 256));
	cr_expect(eq(u32, p.BK, 96));
	cr_expect(eq(u32, p.bm, 32));
	cr_expect(lt(int, lut_preset_lookup(LUT_TL1, text, "p.ini", &p, &err), 0));
	cr_expect(eq(str, err.msg, "p.ini: tl1.1536x4096: expected BM,BK,bm (three numbers)"));
	struct lut_params other = { .m = 1536, .k = 1536 };
	cr_expect(eq(int, lut_preset_lookup(LUT_TL2, text, "p.ini", &other, &err), 0));
}

/* The oracle itself: exact integer sums, and within quantization error of the float product. */
Test(lut_ref, stays_within_the_quantization_error_of_the_float_product)
{
	enum { M = 64, K = 512, N = 4 };
	static int8_t w[M * K];
	static float a[N * K], out[N * M];
	uint32_t s = 1;
	for (int i = 0; i < M * K; i++)
		w[i] = (int8_t)((s = s * 1103515245u + 12345u) >> 16) % 3 - 1;
	for (int i = 0; i < N * K; i++)
		a[i] = (float)((int)((s = s * 1103515245u + 12345u) >> 16) % 2001 - 1000) / 300.0f;
	memset(a + 3 * K, 0, K * sizeof(float)); /* an all-zero row */
	const float ws = 0.75f;
	lut_ref_gemm(w, M, K, ws, a, N, out);
	for (int r = 0; r < N; r++) {
		const float sc = lut_ref_act_scale(a + r * K, K);
		for (int i = 0; i < M; i++) {
			double exact = 0, nz = 0;
			for (int c = 0; c < K; c++) {
				exact += (double)w[i * K + c] * a[r * K + c];
				nz += w[i * K + c] != 0;
			}
			/* each activation is off by at most half a step 1/sc */
			const double bound = ws * (nz * 0.5 / sc) + 1e-4 * fabs(exact * ws);
			cr_assert(le(dbl, fabs(out[r * M + i] - exact * ws), bound), "row %d out %d", r, i);
			if (r == 3)
				cr_assert(eq(flt, out[r * M + i], 0.0f));
		}
	}
}

/* Every tl1.MxK / tl2.MxK key of the preset files holds parameters valid for its shape. */
Test(lut_params, every_preset_key_is_valid_for_its_shape)
{
	char *pattern = tu_root("presets/*.ini");
	glob_t g;
	cr_assert(eq(int, glob(pattern, 0, NULL, &g), 0), "%s", pattern);
	int keys = 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char *text = tu_read_file(g.gl_pathv[i], NULL);
		cr_assert(ne(ptr, text, NULL));
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
			unsigned q, m, k;
			if (sscanf(line, "tl%u.%ux%u =", &q, &m, &k) != 3)
				continue;
			cr_assert(q == 1 || q == 2, "%s: %s", g.gl_pathv[i], line);
			struct lut_params p = { .m = m, .k = k };
			struct bn_err err = { 0 };
			char again[4096];
			snprintf(again, sizeof again, "%s\n", line);
			cr_assert(eq(int, lut_preset_lookup((enum lut_quant)q, again, g.gl_pathv[i], &p, &err), 1),
				  "%s: %s: %s", g.gl_pathv[i], line, err.msg);
			cr_expect(eq(int, lut_params_check((enum lut_quant)q, &p, &err), 0), "%s: %s", g.gl_pathv[i], err.msg);
			keys++;
		}
		free(text);
	}
	cr_expect(ge(int, keys, 20), "tuned keys found: %d", keys);
	globfree(&g);
	free(pattern);
}

/* Known-answer tests of the packed formats: I2_S (convert-quantize.md §8.1 vectors and the §13.2
 * intermediate values of the synthetic test checkpoint), the ARM I2_S reader, int8 activations,
 * TQ1_0/TQ2_0 byte by byte from users.md part 3, Q8_K and Q8_0 (§7.3). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "i2s.h"
#include "q8_0.h"
#include "tq.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void expect_hex(const uint8_t *p, size_t n, const char *want)
{
	char got[2 * 256 + 1];
	cr_assert(n <= 256);
	hex(p, n, got);
	cr_expect(eq(str, got, (char *)want));
}

/* ---- I2_S ----------------------------------------------------------------------------------- */

Test(i2s_format, packs_the_spec_small_vector_of_256_elements)
{
	float x[256];
	const float v[3] = { 0.25f, 0.0f, -0.25f };
	for (int j = 0; j < 256; j++)
		x[j] = v[j % 3];
	uint8_t out[256 / 4 + 32];
	memset(out, 0xee, sizeof out);
	cr_assert(eq(sz, i2s_quantize_ref(x, 256, out), 96));
	expect_hex(out, 32, "8661188661188661188661188661188661188661188661188661188661188661");
	expect_hex(out + 32, 32, "1886611886611886611886611886611886611886611886611886611886611886");
	expect_hex(out + 64, 4, "0000803e");
	for (int i = 68; i < 96; i++)
		cr_assert(eq(u8, out[i], 0), "padding byte %d", i);
}

Test(i2s_format, packs_the_spec_vector_with_a_negative_first_and_zero_last_element)
{
	float x[128];
	for (int j = 0; j < 128; j++)
		x[j] = 0.25f;
	x[0] = -0.25f;
	x[127] = 0.0f;
	uint8_t out[64];
	i2s_quantize_ref(x, 128, out);
	char want[65] = "2a";
	for (int i = 0; i < 30; i++)
		strcat(want, "aa");
	strcat(want, "a9");
	expect_hex(out, 32, want);
	expect_hex(out + 32, 4, "0000803e");
	cr_assert(eq(flt, i2s_get_scale(out, 128), 0.25f));
}

Test(i2s_format, treats_both_zeros_and_tiny_values_as_code_one)
{
	cr_assert(eq(u8, i2s_code_of(0.0f, 1.0), 1));
	cr_assert(eq(u8, i2s_code_of(-0.0f, 1.0), 1));
	cr_assert(eq(u8, i2s_code_of(9.9e-7f, 1.0), 1));
	cr_assert(eq(u8, i2s_code_of(-1.1e-6f, 1.0), 0));
	cr_assert(eq(u8, i2s_code_of(1.1e-6f, 1.0), 2));
	cr_assert(eq(u8, i2s_code_of(0.3f, 0.25), 2)); /* magnitude ignored: sign only */
}

/* §13.1 generator and §5.1 weight_quant, to reproduce the §13.2 intermediate values. */
static void lcg_tensor(unsigned ordinal, float *x, size_t n, int *first_k)
{
	uint32_t state = (uint32_t)((ordinal + 1) * 2654435761u);
	for (size_t i = 0; i < n; i++) {
		state = state * 1664525u + 1013904223u;
		int k = (int)((state >> 16) % 127) - 63;
		if (first_k && i < 5)
			first_k[i] = k;
		x[i] = 0.0f + (float)k / 4096.0f;
	}
}

static void weight_quant(float *x, size_t n)
{
	double sum = 0; /* exact for these vectors (§13.1) */
	for (size_t i = 0; i < n; i++)
		sum += fabs((double)x[i]);
	float m = (float)sum / (float)n;
	m = m > 1e-5f ? m : 1e-5f;
	float s = 1.0f / m;
	for (size_t i = 0; i < n; i++) {
		float r = rintf(x[i] * s);
		r = r > 1.0f ? 1.0f : r < -1.0f ? -1.0f : r;
		x[i] = r / s;
	}
}

struct tv_case {
	unsigned ordinal;
	size_t n;
	const char *first16;
	const char *scale;
};

static void check_tv(const struct tv_case *tc)
{
	float *x = malloc(tc->n * sizeof *x);
	uint8_t *q = malloc(i2s_nbytes(tc->n));
	cr_assert(x && q);
	lcg_tensor(tc->ordinal, x, tc->n, NULL);
	weight_quant(x, tc->n);
	i2s_quantize_ref(x, tc->n, q);
	expect_hex(q, 16, tc->first16);
	expect_hex(q + tc->n / 4, 4, tc->scale);
	free(x);
	free(q);
}

Test(i2s_format, reproduces_the_test_checkpoint_generator)
{
	float x[5];
	int k[5];
	lcg_tensor(0, x, 5, k);
	int want0[5] = { -53, 3, 30, -57, -15 };
	for (int i = 0; i < 5; i++)
		cr_assert(eq(int, k[i], want0[i]));
	lcg_tensor(4, x, 5, k);
	int want4[5] = { -45, 17, -55, 39, -49 };
	for (int i = 0; i < 5; i++)
		cr_assert(eq(int, k[i], want4[i]));
}

Test(i2s_format, reproduces_the_layer0_q_proj_of_the_test_vectors)
{
	/* q_proj [256,256] is tensor ordinal 6: 65536 elements, scale at byte 16384 */
	struct tv_case tc = { 6, 65536, "991098a06889802a8a8a6a6808010042", "7722fe3b" };
	check_tv(&tc);

	/* and its ternary statistics: +v 24731, -v 24786, zeros 16019 (7743 of them -0.0) */
	float *x = malloc(65536 * sizeof *x);
	uint8_t *q = malloc(i2s_nbytes(65536)), *c = malloc(65536);
	lcg_tensor(6, x, 65536, NULL);
	weight_quant(x, 65536);
	i2s_quantize_ref(x, 65536, q);
	i2s_unpack_codes(q, 65536, c);
	size_t cnt[4] = { 0 }, negzero = 0;
	for (size_t i = 0; i < 65536; i++) {
		cnt[c[i]]++;
		negzero += x[i] == 0.0f && signbit(x[i]);
	}
	cr_expect(eq(sz, cnt[2], 24731));
	cr_expect(eq(sz, cnt[0], 24786));
	cr_expect(eq(sz, cnt[1], 16019));
	cr_expect(eq(sz, cnt[3], 0));
	cr_expect(eq(sz, negzero, 7743));
	cr_expect(eq(u32, bn_f32_bits(i2s_get_scale(q, 65536)), 0x3BFE2277));
	free(x);
	free(q);
	free(c);
}

Test(i2s_format, reproduces_the_layer0_k_proj_and_ffn_down_of_the_test_vectors)
{
	struct tv_case k_proj = { 7, 128 * 256, "9982642880aa822a8246684068588a29", "309dff3b" };
	struct tv_case ffn_down = { 12, 256 * 512, "099894166196081a9a082202a6a98490", "952ffe3b" };
	check_tv(&k_proj);
	check_tv(&ffn_down);
}

Test(i2s_format, unpacks_and_dequantizes_what_it_packs)
{
	enum { N = 640 };
	uint8_t codes[N], back[N];
	for (int i = 0; i < N; i++)
		codes[i] = (uint8_t)((i * 7 + i / 3) % 3);
	uint8_t t[N / 4 + 32];
	i2s_pack_codes(codes, N, t);
	i2s_set_scale(t, N, 1.5f);
	i2s_unpack_codes(t, N, back);
	cr_assert(eq(int, memcmp(back, codes, (N) * sizeof *(codes)), 0));
	float y[N];
	i2s_dequantize_ref(t, N, y);
	for (int i = 0; i < N; i++)
		cr_assert(eq(flt, y[i], (float)(codes[i] - 1) * 1.5f), "element %d", i);

	/* by the spec formula: element i in byte 32·(i/128) + i%32 at bit 6 - 2·((i%128)/32) */
	for (int i = 0; i < N; i++) {
		int code = (t[32 * (i / 128) + i % 32] >> (6 - 2 * ((i % 128) / 32))) & 3;
		cr_assert(eq(int, code, codes[i]), "element %d", i);
	}
}

Test(i2s_format, packs_chunks_like_the_whole_tensor)
{
	enum { N = 128 * 7 };
	float x[N];
	for (int i = 0; i < N; i++)
		x[i] = (float)((i * 5 + 1) % 3 - 1) * 0.125f;
	uint8_t whole[N / 4 + 32], chunked[N / 4 + 32];
	i2s_quantize_ref(x, N, whole);
	double m = i2s_absmax(x, 256, 0.0);
	m = i2s_absmax(x + 256, N - 256, m);
	i2s_pack_f32(x, 256, m, chunked);
	i2s_pack_f32(x + 256, N - 256, m, chunked + 256 / 4);
	i2s_set_scale(chunked, N, (float)m);
	cr_assert(eq(int, memcmp(chunked, whole, (N / 4 + 32) * sizeof *(whole)), 0));
}

Test(i2s_format, leaves_a_trailing_partial_block_unencoded)
{
	/* N = 200: one whole block; bytes 32..49 stay zero, the scale sits at byte 50 */
	enum { N = 200 };
	float x[N];
	for (int i = 0; i < N; i++)
		x[i] = 1.0f;
	uint8_t t[N / 4 + 32];
	memset(t, 0x77, sizeof t);
	cr_assert(eq(sz, i2s_quantize_ref(x, N, t), N / 4 + 32));
	for (int i = 0; i < 32; i++)
		cr_assert(eq(u8, t[i], 0xaa));
	for (int i = 32; i < 50; i++)
		cr_assert(eq(u8, t[i], 0));
	expect_hex(t + 50, 4, "0000803f");
}

Test(i2s_format, reads_and_converts_the_arm_64_element_layout)
{
	enum { N = 384 };
	uint8_t codes[N], back[N];
	for (int i = 0; i < N; i++)
		codes[i] = (uint8_t)((i * 11 + i / 7) % 3);
	/* build the HEAD ARM layout from its description (§8.2) */
	uint8_t arm[N / 4 + 32], x86[N / 4 + 32], want[N / 4 + 32];
	memset(arm, 0, sizeof arm);
	for (int i = 0; i < N; i++)
		arm[16 * (i / 64) + i % 16] |= (uint8_t)(codes[i] << (6 - 2 * ((i % 64) / 16)));
	i2s_set_scale(arm, N, 0.5f);
	i2s_arm_unpack_codes(arm, N, back);
	cr_assert(eq(int, memcmp(back, codes, (N) * sizeof *(codes)), 0));
	i2s_arm_to_x86(arm, N, x86);
	i2s_pack_codes(codes, N, want);
	i2s_set_scale(want, N, 0.5f);
	cr_assert(eq(int, memcmp(x86, want, (N / 4 + 32) * sizeof *(want)), 0));
}

Test(i8s_activations, quantize_per_token_with_half_even_rounding)
{
	/* max = 127/128, so scale = 128 exactly and every product below is exact */
	float x[6] = { 0.9921875f, -63.5f / 128, 31.75f / 128, 0.5f / 128, 1.5f / 128, -0.9921875f };
	int8_t q[6];
	float s;
	int32_t sum;
	quantize_i8s_ref(x, 6, q, &s, &sum);
	cr_assert(eq(flt, s, 128.0f));
	int8_t want[6] = { 127, -64, 32, 0, 2, -127 }; /* -63.5 -> -64, 31.75 -> 32, 0.5 -> 0, 1.5 -> 2 */
	cr_assert(eq(int, memcmp(q, want, (6) * sizeof *(want)), 0));
	cr_assert(eq(i32, sum, 127 - 64 + 32 + 0 + 2 - 127));
}

Test(i8s_activations, divide_in_double_and_floor_the_max_at_1e_5)
{
	float z[4] = { 0, 0, 0, 0 };
	int8_t q[4];
	float s;
	int32_t sum;
	quantize_i8s_ref(z, 4, q, &s, &sum);
	cr_assert(eq(flt, s, (float)(127 / 0.00001)));
	cr_assert(eq(i32, sum, 0));
	/* 127/max is a double division rounded to f32, not 127.0f/max in f32 */
	float x[1] = { 0.3f };
	quantize_i8s_ref(x, 1, q, &s, &sum);
	cr_assert(eq(flt, s, (float)(127.0 / (double)0.3f)));
	cr_assert(eq(i8, q[0], 127));
}

Test(i2s_matmul, reference_dot_and_scaling_follow_the_spec_formula)
{
	enum { K = 384, M = 3 };
	uint8_t codes[M * K], w[M * K / 4 + 32];
	int8_t q[K];
	for (int i = 0; i < M * K; i++)
		codes[i] = (uint8_t)((i * 13 + i / 5) % 4); /* code 3 included: it counts as +2 */
	for (int i = 0; i < K; i++)
		q[i] = (int8_t)((i * 37) % 255 - 127);
	i2s_pack_codes(codes, M * K, w);
	int32_t qsum = 0;
	for (int i = 0; i < K; i++)
		qsum += q[i];
	float scale = 3.25f, y[M];
	struct i8s_acts a = { q, &scale, &qsum };
	gemm_i2s_q8_ref(K, w, M, 0.75f, &a, 1, y, M);
	for (int r = 0; r < M; r++) {
		int32_t raw = 0;
		for (int i = 0; i < K; i++)
			raw += codes[r * K + i] * q[i];
		cr_assert(eq(i32, vecdot_i2s_q8_ref(K, w + r * K / 4, q), raw));
		float want = (float)raw;
		want = want - (float)qsum;
		want = want / scale;
		want = want * 0.75f;
		cr_assert(eq(flt, y[r], want), "row %d", r);
	}
}

/* ---- TQ1_0 / TQ2_0 --------------------------------------------------------------------------- */

static int pattern_trit(int j)
{
	return (j * 7 + j / 5 + j / 64) % 3;
}

/* ceil(v·256/243) */
static uint8_t tq1_byte(unsigned v)
{
	return (uint8_t)((v * 256 + 242) / 243);
}

Test(tq_format, tq1_all_plus_one_all_zero_and_all_minus_one)
{
	float x[256];
	struct tq1_block b;
	for (int j = 0; j < 256; j++)
		x[j] = 1.0f;
	quantize_tq1_ref(x, 256, &b);
	for (int i = 0; i < 48; i++)
		cr_assert(eq(u8, b.qs[i], 255)); /* 22222_3 = 242 -> 255 */
	for (int i = 0; i < 4; i++)
		cr_assert(eq(u8, b.qh[i], 253)); /* 2222_3 = 80, x3 = 240 -> 253 */
	cr_assert(eq(u16, b.d, 0x3c00));
	memset(x, 0, sizeof x);
	quantize_tq1_ref(x, 256, &b);
	for (int i = 0; i < 48; i++)
		cr_assert(eq(u8, b.qs[i], 128)); /* 11111_3 = 121 -> 128 */
	for (int i = 0; i < 4; i++)
		cr_assert(eq(u8, b.qh[i], 127)); /* 1111_3 = 40, x3 = 120 -> 127 */
	cr_assert(eq(u16, b.d, 0));
	for (int j = 0; j < 256; j++)
		x[j] = -3.0f;
	quantize_tq1_ref(x, 256, &b);
	for (int i = 0; i < 48; i++)
		cr_assert(eq(u8, b.qs[i], 0));
	cr_assert(eq(u16, b.d, 0x4200));
}

Test(tq_format, tq1_bytes_follow_the_published_layout_block_by_block)
{
	enum { NB = 3 };
	float x[NB * 256];
	const float d[NB] = { 1.0f, 0.5f, 2.75f };
	for (int b = 0; b < NB; b++)
		for (int j = 0; j < 256; j++)
			x[b * 256 + j] = (float)(pattern_trit(j + b) - 1) * d[b];
	for (int b = 0; b < NB; b++) /* make max|x| = d even if the pattern misses +-1 */
		x[b * 256 + 255] = d[b];
	struct tq1_block blk[NB];
	quantize_tq1_ref(x, NB * 256, blk);
	for (int b = 0; b < NB; b++) {
		const float *xb = x + b * 256;
		int t[256];
		for (int j = 0; j < 256; j++)
			t[j] = (int)(xb[j] / d[b]) + 1;
		cr_assert(eq(u16, blk[b].d, bn_f32_to_f16(d[b])));
		for (int m = 0; m < 32; m++) { /* weights m, m+32, ..., m+128, first most significant */
			unsigned v = 0;
			for (int k = 0; k < 5; k++)
				v = v * 3 + (unsigned)t[m + 32 * k];
			cr_assert(eq(u8, blk[b].qs[m], tq1_byte(v)), "block %d qs[%d]", b, m);
		}
		for (int m = 0; m < 16; m++) { /* weights 160+m, 176+m, ..., 224+m */
			unsigned v = 0;
			for (int k = 0; k < 5; k++)
				v = v * 3 + (unsigned)t[160 + m + 16 * k];
			cr_assert(eq(u8, blk[b].qs[32 + m], tq1_byte(v)), "block %d qs[%d]", b, 32 + m);
		}
		for (int j = 0; j < 4; j++) { /* weights 240+j, 244+j, 248+j, 252+j, then x3 */
			unsigned v = 0;
			for (int k = 0; k < 4; k++)
				v = v * 3 + (unsigned)t[240 + j + 4 * k];
			cr_assert(eq(u8, blk[b].qh[j], tq1_byte(3 * v)), "block %d qh[%d]", b, j);
		}
		/* digits come back by the multiply trick, and dequantization is exact */
		for (int j = 0; j < 256; j++)
			cr_assert(eq(int, tq1_trit(&blk[b], j), t[j]), "block %d weight %d", b, j);
	}
	float y[NB * 256];
	dequantize_tq1_ref(blk, NB * 256, y);
	cr_assert(eq(int, memcmp(y, x, (NB * 256) * sizeof *(x)), 0));
}

Test(tq_format, tq2_bytes_follow_the_published_layout_block_by_block)
{
	enum { NB = 2 };
	float x[NB * 256];
	const float d[NB] = { 0.25f, 3.0f };
	for (int b = 0; b < NB; b++) {
		for (int j = 0; j < 256; j++)
			x[b * 256 + j] = (float)(pattern_trit(3 * j + b) - 1) * d[b];
		x[b * 256] = -d[b];
	}
	struct tq2_block blk[NB];
	quantize_tq2_ref(x, NB * 256, blk);
	for (int b = 0; b < NB; b++) {
		cr_assert(eq(u16, blk[b].d, bn_f32_to_f16(d[b])));
		for (int h = 0; h < 2; h++)
			for (int m = 0; m < 32; m++) {
				unsigned want = 0;
				for (int p = 0; p < 4; p++) { /* weight 128h+m+32p in bits 2p+1..2p */
					int t = (int)(x[b * 256 + 128 * h + m + 32 * p] / d[b]) + 1;
					want |= (unsigned)t << (2 * p);
				}
				cr_assert(eq(u8, blk[b].qs[32 * h + m], want), "block %d byte %d", b, 32 * h + m);
			}
	}
	float y[NB * 256];
	dequantize_tq2_ref(blk, NB * 256, y);
	cr_assert(eq(int, memcmp(y, x, (NB * 256) * sizeof *(x)), 0));
}

Test(tq_format, rounds_half_away_from_zero_against_the_block_max)
{
	float x[256] = { 0 };
	x[0] = 1.0f;   /* d */
	x[1] = 0.5f;   /* lroundf(0.5) = 1 */
	x[2] = -0.5f;  /* -1 */
	x[3] = 0.49f;  /* 0 */
	x[4] = -0.51f; /* -1 */
	struct tq2_block b2;
	struct tq1_block b1;
	quantize_tq2_ref(x, 256, &b2);
	quantize_tq1_ref(x, 256, &b1);
	int want[5] = { 2, 2, 0, 1, 0 };
	for (int j = 0; j < 5; j++) {
		cr_assert(eq(int, tq2_trit(&b2, j), want[j]), "tq2 %d", j);
		cr_assert(eq(int, tq1_trit(&b1, j), want[j]), "tq1 %d", j);
	}
}

Test(q8k_format, quantizes_against_the_signed_max_with_half_even_rounding)
{
	float x[512] = { 0 };
	x[5] = -1.984375f;     /* the max (-127/64): iscale = -127/max = 64 exactly */
	x[9] = 1.984375f;      /* same magnitude later: does not replace it */
	x[1] = 1.0f;           /* 64 */
	x[2] = 0.5f / 64;      /* 0.5 -> 0 (half even) */
	x[3] = 1.5f / 64;      /* 1.5 -> 2 */
	x[6] = 63.5f / 64;     /* 63.5 -> 64 */
	x[7] = 62.5f / 64;     /* 62.5 -> 62 */
	x[20] = -0.5f;         /* -32 */
	struct q8k_block b[2];
	quantize_q8k_ref(x, 512, b);
	cr_assert(eq(flt, b[0].d, 1 / 64.0f));
	int8_t want[10] = { 0, 64, 0, 2, 0, -127, 64, 62, 0, 127 };
	cr_assert(eq(int, memcmp(b[0].qs, want, (10) * sizeof *(want)), 0));
	cr_assert(eq(i8, b[0].qs[20], -32));
	cr_assert(eq(i16, b[0].bsums[0], 64 + 2 - 127 + 64 + 62 + 127));
	cr_assert(eq(i16, b[0].bsums[1], -32));
	/* an all-zero block */
	cr_assert(eq(flt, b[1].d, 0.0f));
	for (int j = 0; j < 256; j++)
		cr_assert(eq(i8, b[1].qs[j], 0));
	for (int g = 0; g < 16; g++)
		cr_assert(eq(i16, b[1].bsums[g], 0));
}

Test(tq_dot, sums_exactly_per_block_then_scales_by_dx_times_dy)
{
	enum { K = 512 };
	float w[K], a[K];
	for (int j = 0; j < K; j++) {
		w[j] = (j < 256) ? 1.0f : -2.0f; /* block 0: all +1, d 1; block 1: all -1, d 2 */
		a[j] = (j < 256) ? 127.0f / 63.5f : -1.0f;
	}
	struct tq1_block w1[2];
	struct tq2_block w2[2];
	struct q8k_block q[2];
	quantize_tq1_ref(w, K, w1);
	quantize_tq2_ref(w, K, w2);
	quantize_q8k_ref(a, K, q);
	/* block 0: q = -127 everywhere (iscale = -63.5), d = -1/63.5: isum = -127·256
	 * block 1: max = -1, iscale = 127, q = -127, d = 1/127: isum = (-1)(-127)·256 */
	float want = (float)(-127 * 256) * (1.0f * q[0].d);
	want += (float)(127 * 256) * (2.0f * q[1].d);
	cr_assert(eq(flt, vecdot_tq1_q8k_ref(K, w1, q), want));
	cr_assert(eq(flt, vecdot_tq2_q8k_ref(K, w2, q), want));
}

Test(tq_dot, tq1_and_tq2_agree_bit_for_bit_on_the_same_weights)
{
	enum { K = 256 * 6 };
	float *w = malloc(K * sizeof *w), *a = malloc(K * sizeof *a);
	uint32_t s = 12345;
	for (int j = 0; j < K; j++) {
		s = s * 1664525u + 1013904223u;
		w[j] = (float)((int)(s >> 16) % 3 - 1) * (0.5f + (float)(j / 256));
		s = s * 1664525u + 1013904223u;
		a[j] = (float)((int)(s >> 8) % 20001 - 10000) / 777.0f;
	}
	struct tq1_block w1[6];
	struct tq2_block w2[6];
	struct q8k_block q[6];
	quantize_tq1_ref(w, K, w1);
	quantize_tq2_ref(w, K, w2);
	quantize_q8k_ref(a, K, q);
	for (int b = 0; b < 6; b++)
		for (int j = 0; j < 256; j++)
			cr_assert(eq(int, tq1_trit(&w1[b], j), tq2_trit(&w2[b], j)));
	cr_assert(eq(u32, bn_f32_bits(vecdot_tq1_q8k_ref(K, w1, q)), bn_f32_bits(vecdot_tq2_q8k_ref(K, w2, q))));
	free(w);
	free(a);
}

/* ---- Q8_0 ------------------------------------------------------------------------------------- */

Test(q8_0_format, rounds_half_away_from_zero_with_d_from_the_block_max)
{
	float x[64] = { 0 };
	x[0] = 127.0f; /* d = 1, id = 1 */
	x[1] = 2.5f;   /* roundf: 3 (half even would give 2) */
	x[2] = -2.5f;  /* -3 */
	x[3] = 3.5f;
	x[4] = -126.49f;
	struct q8_0_block b[2];
	quantize_q8_0_ref(x, 64, b);
	cr_assert(eq(u16, b[0].d, 0x3c00));
	int8_t want[5] = { 127, 3, -3, 4, -126 };
	for (int j = 0; j < 5; j++)
		cr_assert(eq(i8, b[0].qs[j], want[j]));
	cr_assert(eq(u16, b[1].d, 0)); /* all-zero block: d 0, q 0 */
	for (int j = 0; j < 32; j++)
		cr_assert(eq(i8, b[1].qs[j], 0));
	float y[64];
	dequantize_q8_0_ref(b, 64, y);
	cr_assert(eq(flt, y[1], 3.0f));
	cr_assert(eq(flt, y[4], -126.0f));
}

Test(q8_0_format, stores_d_as_fp16_but_scales_with_the_f32_d)
{
	float x[32];
	for (int j = 0; j < 32; j++)
		x[j] = (float)(j - 16) * 0.01f;
	struct q8_0_block b;
	quantize_q8_0_ref(x, 32, &b);
	float d = fabsf(x[0]) / 127;
	cr_assert(eq(u16, b.d, bn_f32_to_f16(d)));
	for (int j = 0; j < 32; j++)
		cr_assert(eq(i8, b.qs[j], (int8_t)roundf(x[j] * (1.0f / d))));
}

/* TL1/TL2 weight packing: the loops follow the converter's emission order (convert-quantize.md
 * §9.3), so the output is written sequentially; lut_unpack walks the same loops backwards. */
#include "lut_pack.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

float lut_ternarize(const float *w, size_t n, int8_t *t)
{
	float mx = 0.0f;
	for (size_t i = 0; i < n; i++) {
		float a = fabsf(w[i]);
		if (a > mx)
			mx = a;
		t[i] = a < 1e-6f ? 0 : w[i] > 0 ? 1 : -1;
	}
	return mx;
}

/* 8-row groups of a 32-row TL2 micro-tile are stored in this order. */
static const uint32_t ROWPOS[4] = { 0, 2, 1, 3 };

static inline unsigned pair_code(const int8_t *row, size_t c)
{
	return (unsigned)(3 * row[c] + row[c + 1] + 4);
}

static inline int triple_code(const int8_t *row, size_t c)
{
	return 9 * row[c] + 3 * row[c + 1] + row[c + 2];
}

/* The packers write tiles [a, b) of W; t holds W's rows from tile a on (row a*BM first) and o
 * points at the start of the region being written (the whole tensor's buffer). */
static void pack_tl1(const struct lut_params *p, const int8_t *t, uint8_t *o, size_t a, size_t b)
{
	const size_t K = p->k, BM = p->BM, BK = p->BK, bm = p->bm, by = 256 / bm;
	o += a * BM * K / 4;
	const size_t base = a * BM; /* t's first row; row indices below are absolute */
	for (size_t i0 = a; i0 < b; i0++)
		for (size_t i1 = 0; i1 < K / BK; i1++)
			for (size_t i2 = 0; i2 < BM / bm; i2++)
				for (size_t i3 = 0; i3 < BK / by; i3++)
					for (size_t i4 = 0; i4 < bm / 16; i4++)
						for (size_t i5 = 0; i5 < by / 4; i5++)
							for (size_t r3 = 0; r3 < 16; r3++) {
								const int8_t *row = t + (i0 * BM + i2 * bm + i4 * 16 + r3 - base) * K;
								size_t c = i1 * BK + i3 * by + 4 * i5; /* column */
								*o++ = (uint8_t)(pair_code(row, c) << 4 |
										 pair_code(row, c + 2));
							}
}

static void pack_tl2_three(const struct lut_params *p, const int8_t *t, uint8_t *o, size_t a,
			   size_t b)
{
	const size_t K = p->k, BM = p->BM, BK = p->BK;
	o += a * BM * p->three_k / 6;
	const size_t base = a * BM;
	for (size_t i0 = a; i0 < b; i0++)
		for (size_t i1 = 0; i1 < p->three_k / BK; i1++)
			for (size_t i2 = 0; i2 < BM / 32; i2++)
				for (size_t i3 = 0; i3 < BK / 6; i3++)
					for (size_t j = 0; j < 4; j++)
						for (size_t k = 0; k < 8; k++) {
							const int8_t *row = t + (i0 * BM + i2 * 32 + 8 * ROWPOS[j] + k - base) * K;
							size_t c = i1 * BK + 6 * i3;
							int x = triple_code(row, c), y = triple_code(row, c + 3);
							*o++ = (uint8_t)((x < 0 ? -x : x) << 4 | (y < 0 ? -y : y));
						}
}

static void pack_tl2_signs(const struct lut_params *p, const int8_t *t, uint8_t *o, size_t a,
			   size_t b)
{
	const size_t K = p->k, BM = p->BM, BK = p->BK;
	o += (size_t)p->m * p->three_k / 6 + a * BM * p->three_k / 24;
	const size_t base = a * BM;
	for (size_t i0 = a; i0 < b; i0++)
		for (size_t i1 = 0; i1 < p->three_k / BK; i1++)
			for (size_t i2 = 0; i2 < BM / 32; i2++)
				for (size_t i3 = 0; i3 < BK / 24; i3++) {
					uint16_t w[16] = { 0 };
					for (size_t c4 = 0; c4 < 8; c4++)
						for (size_t r2 = 0; r2 < 32; r2++) {
							const int8_t *row = t + (i0 * BM + i2 * 32 + r2 - base) * K;
							size_t c = i1 * BK + 24 * i3 + 3 * c4;
							if (triple_code(row, c) < 0) {
								size_t f = c4 * 32 + r2;
								w[f % 16] |= (uint16_t)(1u << (15 - f / 16));
							}
						}
					for (size_t v = 0; v < 16; v++) {
						*o++ = (uint8_t)(w[v] & 0xff);
						*o++ = (uint8_t)(w[v] >> 8);
					}
				}
}

static void pack_tl2_two(const struct lut_params *p, const int8_t *t, uint8_t *o, size_t a,
			 size_t b)
{
	const size_t K = p->k, BM = p->BM;
	o += (size_t)p->m * p->three_k / 6 + (size_t)p->m * p->three_k / 24 + a * BM * p->two_k / 4;
	const size_t base = a * BM;
	for (size_t i0 = a; i0 < b; i0++)
		for (size_t i1 = 0; i1 < p->two_k / 32; i1++)
			for (size_t i2 = 0; i2 < BM / 32; i2++)
				for (size_t i3 = 0; i3 < 8; i3++)
					for (size_t j = 0; j < 4; j++)
						for (size_t k = 0; k < 8; k++) {
							const int8_t *row = t + (i0 * BM + i2 * 32 + 8 * ROWPOS[j] + k - base) * K;
							size_t c = p->three_k + i1 * 32 + 4 * i3;
							*o++ = (uint8_t)(pair_code(row, c) << 4 |
									 pair_code(row, c + 2));
						}
}

int lut_pack_tiles(enum lut_quant q, const struct lut_params *p, const int8_t *rows,
		   uint32_t tile0, uint32_t ntiles, uint8_t *out, struct bn_err *err)
{
	struct lut_params c = *p;
	int rc = lut_params_check(q, &c, err);
	if (rc)
		return rc;
	if (tile0 > c.m / c.BM || ntiles > c.m / c.BM - tile0)
		return bn_seterr(err, BN_EINVAL, "%s [%" PRIu32 ",%" PRIu32 "]: tiles %" PRIu32 "..%" PRIu32
				 " out of range (%" PRIu32 " tiles)", lut_quant_name(q), c.m, c.k, tile0,
				 tile0 + ntiles, c.m / c.BM);
	if (q == LUT_TL1) {
		pack_tl1(&c, rows, out, tile0, tile0 + ntiles);
	} else {
		pack_tl2_three(&c, rows, out, tile0, tile0 + ntiles);
		pack_tl2_signs(&c, rows, out, tile0, tile0 + ntiles);
		pack_tl2_two(&c, rows, out, tile0, tile0 + ntiles);
	}
	return 0;
}

int lut_pack(enum lut_quant q, const struct lut_params *p, const int8_t *t, uint8_t *out,
	     struct bn_err *err)
{
	struct lut_params c = *p;
	int rc = lut_params_check(q, &c, err);
	if (rc)
		return rc;
	const uint64_t size = lut_packed_size(q, c.m, c.k), used = lut_packed_used(q, &c);
	rc = lut_pack_tiles(q, &c, t, 0, c.m / c.BM, out, err);
	if (!rc)
		memset(out + used, 0, (size_t)(size - used)); /* used <= size: see lut_params_check */
	return rc;
}

/* ---- unpacking ---- */

static int bad_code(struct bn_err *err, enum lut_quant q, const struct lut_params *p, size_t off,
		    unsigned code)
{
	return bn_seterr(err, BN_EFORMAT,
			 "%s [%" PRIu32 ",%" PRIu32 "]: byte %zu: nibble %u is not a valid code",
			 lut_quant_name(q), p->m, p->k, off, code);
}

static int set_pair(int8_t *row, size_t c, unsigned code)
{
	if (code > 8)
		return -1;
	row[c] = (int8_t)(code / 3) - 1;
	row[c + 1] = (int8_t)(code % 3) - 1;
	return 0;
}

/* Magnitude a (0..13) with sign s: the balanced-ternary digits of v = +-a. */
static int set_triple(int8_t *row, size_t c, unsigned a, int neg)
{
	if (a > 13 || (a == 0 && neg))
		return -1;
	int v = neg ? -(int)a : (int)a;
	int d2 = ((v % 3) + 4) % 3 - 1; /* least significant balanced digit */
	v = (v - d2) / 3;
	int d1 = ((v % 3) + 4) % 3 - 1;
	v = (v - d1) / 3;
	row[c] = (int8_t)v;
	row[c + 1] = (int8_t)d1;
	row[c + 2] = (int8_t)d2;
	return 0;
}

int lut_unpack(enum lut_quant q, const struct lut_params *p, const uint8_t *in, int8_t *t,
	       struct bn_err *err)
{
	struct lut_params c = *p;
	int rc = lut_params_check(q, &c, err);
	if (rc)
		return rc;
	const size_t K = c.k, BM = c.BM, BK = c.BK, bm = c.bm;
	const uint8_t *b = in;
	if (q == LUT_TL1) {
		const size_t by = 256 / bm;
		for (size_t i0 = 0; i0 < c.m / BM; i0++)
			for (size_t i1 = 0; i1 < K / BK; i1++)
				for (size_t i2 = 0; i2 < BM / bm; i2++)
					for (size_t i3 = 0; i3 < BK / by; i3++)
						for (size_t i4 = 0; i4 < bm / 16; i4++)
							for (size_t i5 = 0; i5 < by / 4; i5++)
								for (size_t r3 = 0; r3 < 16; r3++, b++) {
									int8_t *row = t + (i0 * BM + i2 * bm + i4 * 16 + r3) * K;
									size_t col = i1 * BK + i3 * by + 4 * i5;
									if (set_pair(row, col, *b >> 4) ||
									    set_pair(row, col + 2, *b & 15))
										return bad_code(err, q, &c, (size_t)(b - in), *b);
								}
		return 0;
	}
	/* TL2: magnitudes first, signs applied in a second pass over the sign words */
	const uint8_t *signs = in + (size_t)c.m * c.three_k / 6;
	for (size_t i0 = 0; i0 < c.m / BM; i0++)
		for (size_t i1 = 0; i1 < c.three_k / BK; i1++)
			for (size_t i2 = 0; i2 < BM / 32; i2++)
				for (size_t i3 = 0; i3 < BK / 6; i3++)
					for (size_t j = 0; j < 4; j++)
						for (size_t k = 0; k < 8; k++, b++) {
							size_t r = i0 * BM + i2 * 32 + 8 * ROWPOS[j] + k;
							size_t col = i1 * BK + 6 * i3;
							if (set_triple(t + r * K, col, *b >> 4, 0) ||
							    set_triple(t + r * K, col + 3, *b & 15, 0))
								return bad_code(err, q, &c, (size_t)(b - in), *b);
						}
	b = signs;
	for (size_t i0 = 0; i0 < c.m / BM; i0++)
		for (size_t i1 = 0; i1 < c.three_k / BK; i1++)
			for (size_t i2 = 0; i2 < BM / 32; i2++)
				for (size_t i3 = 0; i3 < BK / 24; i3++, b += 32)
					for (size_t c4 = 0; c4 < 8; c4++)
						for (size_t r2 = 0; r2 < 32; r2++) {
							size_t f = c4 * 32 + r2;
							unsigned word = (unsigned)b[2 * (f % 16)] | (unsigned)b[2 * (f % 16) + 1] << 8;
							if (!(word >> (15 - f / 16) & 1))
								continue;
							int8_t *row = t + (i0 * BM + i2 * 32 + r2) * K;
							size_t col = i1 * BK + 24 * i3 + 3 * c4;
							int a = triple_code(row, col);
							if (set_triple(row, col, (unsigned)a, 1))
								return bad_code(err, q, &c, (size_t)(b - in), 0);
						}
	for (size_t i0 = 0; i0 < c.m / BM; i0++)
		for (size_t i1 = 0; i1 < c.two_k / 32; i1++)
			for (size_t i2 = 0; i2 < BM / 32; i2++)
				for (size_t i3 = 0; i3 < 8; i3++)
					for (size_t j = 0; j < 4; j++)
						for (size_t k = 0; k < 8; k++, b++) {
							int8_t *row = t + (i0 * BM + i2 * 32 + 8 * ROWPOS[j] + k) * K;
							size_t col = c.three_k + i1 * 32 + 4 * i3;
							if (set_pair(row, col, *b >> 4) || set_pair(row, col + 2, *b & 15))
								return bad_code(err, q, &c, (size_t)(b - in), *b);
						}
	return 0;
}

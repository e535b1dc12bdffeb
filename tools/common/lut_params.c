/* TL1/TL2 tile parameters: constraint checks, automatic choice, kernel_config.ini, preset keys.
 * Every rule below is a real requirement of the kernels or of the file layout (lut-kernels.md
 * §1.4), checked before anything is generated or packed. */
#include "lut_params.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"

const char *lut_quant_name(enum lut_quant q)
{
	return q == LUT_TL1 ? "tl1" : "tl2";
}

int lut_quant_parse(const char *s, enum lut_quant *q)
{
	if (strcmp(s, "tl1") == 0 || strcmp(s, "TL1") == 0)
		*q = LUT_TL1;
	else if (strcmp(s, "tl2") == 0 || strcmp(s, "TL2") == 0)
		*q = LUT_TL2;
	else
		return -1;
	return 0;
}

#define SHAPE_FMT "%s [%" PRIu32 ",%" PRIu32 "]"
#define SHAPE_ARGS(q, p) lut_quant_name(q), (p)->m, (p)->k

static int check_dims(enum lut_quant q, const struct lut_params *p, struct bn_err *err)
{
	if (p->m == 0 || p->k == 0)
		return bn_seterr(err, BN_EINVAL, SHAPE_FMT ": empty matrix", SHAPE_ARGS(q, p));
	if (p->m > LUT_MAX_DIM || p->k > LUT_MAX_DIM || (uint64_t)p->m * p->k > LUT_MAX_ELEMS)
		return bn_seterr(err, BN_ERANGE,
				 SHAPE_FMT ": too large: at most %u rows or columns and 2^30 weights "
				 "(bitnet.cpp computes these sizes in 32-bit int)",
				 SHAPE_ARGS(q, p), LUT_MAX_DIM);
	return 0;
}

static int check_tl1(struct lut_params *p, struct bn_err *err)
{
	const enum lut_quant q = LUT_TL1;
	if (p->bm != 32 && p->bm != 64)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": bm=%" PRIu32 ": the TL1 micro-tile must be 32 or 64 rows",
				 SHAPE_ARGS(q, p), p->bm);
	if (p->m % p->bm)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": M=%" PRIu32 " is not a multiple of bm=%" PRIu32
				 " (tiles are made of bm-row micro-tiles); TL1 cannot pack it",
				 SHAPE_ARGS(q, p), p->m, p->bm);
	if (p->BM == 0 || p->m % p->BM)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BM=%" PRIu32 ": M=%" PRIu32
				 " is not a multiple of it (tiles of BM rows must cover M exactly)",
				 SHAPE_ARGS(q, p), p->BM, p->m);
	if (p->BM % p->bm)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BM=%" PRIu32 ": not a multiple of bm=%" PRIu32
				 " (a tile holds whole micro-tiles)",
				 SHAPE_ARGS(q, p), p->BM, p->bm);
	if (p->k % 16)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": K=%" PRIu32 " is not a multiple of 16 "
				 "(activations are quantized 16 at a time); TL1 cannot pack it",
				 SHAPE_ARGS(q, p), p->k);
	const uint32_t step = 256 / p->bm; /* columns one inner step of a micro-tile consumes */
	if (p->BK == 0 || p->k % p->BK)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": K=%" PRIu32
				 " is not a multiple of it (K-blocks must cover K exactly)",
				 SHAPE_ARGS(q, p), p->BK, p->k);
	if (p->BK % step)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": not a multiple of %" PRIu32
				 " (with bm=%" PRIu32 " each inner step consumes %" PRIu32 " columns)",
				 SHAPE_ARGS(q, p), p->BK, step, p->bm, step);
	if (p->BK > LUT_TL1_MAX_BK)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": more than %d, so the int16 block sums "
				 "could overflow (127*BK > 32767); choose a divisor of K up to %d",
				 SHAPE_ARGS(q, p), p->BK, LUT_TL1_MAX_BK, LUT_TL1_MAX_BK);
	p->three_k = p->two_k = 0;
	return 0;
}

static int check_tl2(struct lut_params *p, struct bn_err *err)
{
	const enum lut_quant q = LUT_TL2;
	if (p->k < 256)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": K=%" PRIu32 " is less than 256; the TL2 file layout "
				 "(lut-kernels.md §3.4.5) needs K >= 256",
				 SHAPE_ARGS(q, p), p->k);
	if (p->bm != 32)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": bm=%" PRIu32 ": TL2 micro-tiles are always 32 rows",
				 SHAPE_ARGS(q, p), p->bm);
	if (p->m % 32)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": M=%" PRIu32 " is not a multiple of 32 (tiles are made of "
				 "32-row micro-tiles); TL2 cannot pack it",
				 SHAPE_ARGS(q, p), p->m);
	if (p->BM == 0 || p->BM % 32)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BM=%" PRIu32 ": not a multiple of 32 "
				 "(a tile holds whole 32-row micro-tiles)",
				 SHAPE_ARGS(q, p), p->BM);
	if (p->m % p->BM)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BM=%" PRIu32 ": M=%" PRIu32
				 " is not a multiple of it (tiles of BM rows must cover M exactly)",
				 SHAPE_ARGS(q, p), p->BM, p->m);
	if (p->BK == 0 || p->BK % 24)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": not a multiple of 24 "
				 "(the kernel consumes 8 three-weight groups = 24 columns per step)",
				 SHAPE_ARGS(q, p), p->BK);
	if (p->BK > LUT_TL2_MAX_BK)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": more than %d, so the int16 block sums "
				 "could overflow (127*BK > 32767); choose a multiple of 24 up to %d",
				 SHAPE_ARGS(q, p), p->BK, LUT_TL2_MAX_BK, LUT_TL2_MAX_BK);
	const uint32_t two_k = p->k % p->BK;
	if (two_k % LUT_TL2_BK2)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": the remainder K mod BK = %" PRIu32
				 " is not a multiple of 32 (the two-weight part runs in blocks of 32)",
				 SHAPE_ARGS(q, p), p->BK, two_k);
	if (two_k > LUT_TL2_MAX_TWO_K)
		return bn_seterr(err, BN_EINVAL,
				 SHAPE_FMT ": BK=%" PRIu32 ": the remainder K mod BK = %" PRIu32
				 " is more than 256 (the TL2 file size formula assumes at most 256)",
				 SHAPE_ARGS(q, p), p->BK, two_k);
	p->two_k = two_k;
	p->three_k = p->k - two_k;
	return 0;
}

int lut_params_check(enum lut_quant q, struct lut_params *p, struct bn_err *err)
{
	int rc = check_dims(q, p, err);
	if (rc)
		return rc;
	return q == LUT_TL1 ? check_tl1(p, err) : check_tl2(p, err);
}

int lut_params_check_list(enum lut_quant q, struct lut_params *p, size_t n, struct bn_err *err)
{
	if (n == 0)
		return bn_seterr(err, BN_EINVAL, "%s: no weight shapes", lut_quant_name(q));
	if (n > LUT_MAX_SHAPES)
		return bn_seterr(err, BN_ERANGE, "%s: %zu weight shapes; at most %d are supported",
				 lut_quant_name(q), n, LUT_MAX_SHAPES);
	for (size_t i = 0; i < n; i++) {
		int rc = lut_params_check(q, &p[i], err);
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (p[j].m == p[i].m && p[j].k == p[i].k)
				return bn_seterr(err, BN_EINVAL,
						 SHAPE_FMT ": listed twice (each shape gets one kernel)",
						 SHAPE_ARGS(q, &p[i]));
	}
	return 0;
}

bool lut_tl2_fits_ggml_wsize(const struct lut_params *p)
{
	uint64_t need = (uint64_t)p->three_k / 3 * 32 + (uint64_t)p->two_k * 16 + 4;
	uint64_t have = (uint64_t)p->k * 11 + 16;
	return need <= have;
}

/* BM: see lut_params.h.  `unit` is what BM must be a multiple of. */
static uint32_t auto_BM(uint32_t m, uint32_t unit)
{
	uint32_t best_tiles = 0, best_any = 0, smallest = 0;
	for (uint32_t d = unit; d <= m; d += unit) {
		if (m % d)
			continue;
		if (!smallest)
			smallest = d;
		if (d <= 256) {
			best_any = d;
			if (m / d >= 4)
				best_tiles = d;
		}
	}
	return best_tiles ? best_tiles : best_any ? best_any : smallest;
}

int lut_params_auto(enum lut_quant q, struct lut_params *p, struct bn_err *err)
{
	int rc = check_dims(q, p, err);
	if (rc)
		return rc;
	if (!p->bm)
		p->bm = 32;
	if (q == LUT_TL1) {
		if (!p->BK && (p->bm == 32 || p->bm == 64)) {
			const uint32_t step = 256 / p->bm;
			for (uint32_t bk = LUT_TL1_MAX_BK / step * step; bk >= step; bk -= step)
				if (p->k % bk == 0) {
					p->BK = bk;
					break;
				}
		}
		if (!p->BM && (p->bm == 32 || p->bm == 64))
			p->BM = auto_BM(p->m, p->bm);
	} else {
		if (!p->BK) {
			int best_score = -1;
			for (uint32_t bk = 24; bk <= LUT_TL2_MAX_BK; bk += 24) {
				struct lut_params t = *p;
				t.BK = bk;
				t.two_k = p->k % bk;
				t.three_k = p->k - t.two_k;
				if (t.two_k % LUT_TL2_BK2 || t.two_k > LUT_TL2_MAX_TWO_K)
					continue;
				/* fits the drop-in workspace, then small two_k, then large BK */
				int score = (lut_tl2_fits_ggml_wsize(&t) ? 1 << 20 : 0) +
					    (int)(LUT_TL2_MAX_TWO_K - t.two_k) * 1024 + (int)bk;
				if (score > best_score) {
					best_score = score;
					p->BK = bk;
				}
			}
			if (!p->BK && p->k >= 256)
				return bn_seterr(err, BN_EINVAL,
						 "tl2 [%" PRIu32 ",%" PRIu32 "]: no valid BK: for every "
						 "multiple of 24 up to 240 the remainder K mod BK is not a "
						 "multiple of 32 (K must be a multiple of 8); TL2 cannot pack it",
						 p->m, p->k);
		}
		if (!p->BM)
			p->BM = auto_BM(p->m, 32);
	}
	return lut_params_check(q, p, err);
}

/* ---- sizes ---- */

uint64_t lut_packed_size(enum lut_quant q, uint32_t m, uint32_t k)
{
	if (q == LUT_TL1)
		return (uint64_t)m * k / 4;
	/* bitnet.cpp's formula, evaluated left to right with truncating division (needs k >= 256) */
	return ((uint64_t)(k - 256) * m / 3) * 5 / 8 + (uint64_t)256 * m / 2 * 4 / 8;
}

uint64_t lut_packed_used(enum lut_quant q, const struct lut_params *p)
{
	if (q == LUT_TL1)
		return (uint64_t)p->m * p->k / 4;
	return (uint64_t)p->m * p->three_k / 6 + (uint64_t)p->m * p->three_k / 24 +
	       (uint64_t)p->m * p->two_k / 4;
}

uint64_t lut_scale_offset(enum lut_quant q, uint32_t m, uint32_t k)
{
	return (lut_packed_size(q, m, k) + 31) & ~(uint64_t)31;
}

uint64_t lut_tensor_extent(enum lut_quant q, uint32_t m, uint32_t k)
{
	return lut_scale_offset(q, m, k) + 32;
}

/* ---- kernel_config.ini ---- */

int lut_ini_format(const struct lut_params *p, size_t n, char **out, size_t *len, struct bn_err *err)
{
	size_t cap = 128 * (n + 1), used = 0;
	char *buf = malloc(cap);
	if (!buf)
		return bn_seterr(err, BN_ENOMEM, "kernel_config.ini: out of memory");
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + used, cap - used,
				 "[Kernels_%zu]\nm = %" PRIu32 "\nk = %" PRIu32 "\nbm = %" PRIu32
				 "\nbk = %" PRIu32 "\nbmm = %" PRIu32 "\n\n",
				 i, p[i].m, p[i].k, p[i].BM, p[i].BK, p[i].bm);
		used += (size_t)w; /* at most ~90 bytes per section: never truncated */
	}
	*out = buf;
	*len = used;
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int parse_u32(const char *s, uint32_t *out)
{
	unsigned v;
	if (bn_parse_uint(s, 0, LUT_MAX_DIM, &v))
		return -1;
	*out = v;
	return 0;
}

int lut_ini_parse(enum lut_quant q, const char *text, size_t len, const char *what,
		  struct lut_params **out, size_t *nout, struct bn_err *err)
{
	struct lut_params *p = calloc(LUT_MAX_SHAPES, sizeof *p);
	unsigned *seen = calloc(LUT_MAX_SHAPES, sizeof *seen); /* bit per key */
	char *copy = malloc(len + 1);
	int rc = 0;
	size_t n = 0;
	if (!p || !seen || !copy) {
		rc = bn_seterr(err, BN_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	memcpy(copy, text, len);
	copy[len] = 0;
	static const char *const keys[] = { "m", "k", "bm", "bk", "bmm" };
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if (n == LUT_MAX_SHAPES) {
				rc = bn_seterr(err, BN_ERANGE, "%s: more than %d sections", what,
					       LUT_MAX_SHAPES);
				goto out;
			}
			n++;
			continue;
		}
		char *eq = strpbrk(s, "=:");
		if (!eq || n == 0) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: line '%s': expected [section] or key = value",
				       what, s);
			goto out;
		}
		*eq = 0;
		char *key = trim(s), *val = trim(eq + 1);
		for (char *c = key; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		size_t ki = 0;
		while (ki < BN_ARRAY_LEN(keys) && strcmp(keys[ki], key) != 0)
			ki++;
		if (ki == BN_ARRAY_LEN(keys))
			continue; /* unknown keys are ignored, as the converter does */
		uint32_t v;
		if (parse_u32(val, &v)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: section %zu: %s = '%s': not a number", what,
				       n - 1, key, val);
			goto out;
		}
		struct lut_params *e = &p[n - 1];
		uint32_t *slots[] = { &e->m, &e->k, &e->BM, &e->BK, &e->bm };
		*slots[ki] = v;
		seen[n - 1] |= 1u << ki;
	}
	if (n == 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: no [Kernels_i] sections", what);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (seen[i] != 0x1f) {
			rc = bn_seterr(err, BN_EFORMAT,
				       "%s: section %zu: needs all of m, k, bm, bk and bmm", what, i);
			goto out;
		}
	rc = lut_params_check_list(q, p, n, err);
	if (rc) {
		bn_err_prefix(err, "%s", what);
		goto out;
	}
	*out = p;
	*nout = n;
	p = NULL;
out:
	free(p);
	free(seen);
	free(copy);
	return rc;
}

/* ---- presets ---- */

void lut_preset_key(enum lut_quant q, uint32_t m, uint32_t k, char *buf, size_t size)
{
	snprintf(buf, size, "%s.%" PRIu32 "x%" PRIu32, lut_quant_name(q), m, k);
}

int lut_preset_lookup(enum lut_quant q, const char *text, const char *what, struct lut_params *p,
		      struct bn_err *err)
{
	char key[64];
	lut_preset_key(q, p->m, p->k, key, sizeof key);
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *s = line;
		while (s < line + n && (*s == ' ' || *s == '\t'))
			s++;
		if ((size_t)(line + n - s) > klen && strncmp(s, key, klen) == 0 &&
		    (s[klen] == ' ' || s[klen] == '\t' || s[klen] == '=')) {
			const char *v = s + klen;
			while (*v == ' ' || *v == '\t')
				v++;
			if (*v != '=')
				goto next;
			char val[64];
			size_t vl = (size_t)(line + n - (v + 1));
			if (vl >= sizeof val)
				return bn_seterr(err, BN_EFORMAT, "%s: %s: value too long", what, key);
			memcpy(val, v + 1, vl);
			val[vl] = 0;
			uint32_t f[3];
			char *tok = trim(val), *save = NULL;
			int nf = 0;
			for (char *t = strtok_r(tok, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (nf == 3 || parse_u32(trim(t), &f[nf]))
					return bn_seterr(err, BN_EFORMAT,
							 "%s: %s = %s: expected BM,BK,bm (three numbers)",
							 what, key, trim(val));
				nf++;
			}
			if (nf != 3)
				return bn_seterr(err, BN_EFORMAT,
						 "%s: %s: expected BM,BK,bm (three numbers)", what, key);
			p->BM = f[0];
			p->BK = f[1];
			p->bm = f[2];
			return 1;
		}
next:
		line = end ? end + 1 : NULL;
	}
	return 0;
}

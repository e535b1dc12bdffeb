/* I2_S layout detection and decoding (i2s_layout.h): the provenance rule and the feed-forward
 * correlation evidence. */
#include "i2s_layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_util.h"
#include "i2s.h"
#include "quant_plan.h"

int iq_layout_parse(const char *s, enum iq_layout *out)
{
	static const char *const names[] = { "auto", "x86", "arm" };
	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum iq_layout)i;
			return 0;
		}
	return -1;
}

const char *iq_layout_name(enum iq_layout l)
{
	return l == IQ_LAYOUT_X86 ? "x86" : l == IQ_LAYOUT_ARM ? "arm" : "auto";
}

/* ---- decoding ------------------------------------------------------------------------------ */

static void arm_decode(const uint8_t *src, size_t n, float scale, float *y)
{
	const float lut[4] = { -scale, 0.0f, scale, 2.0f * scale };
	for (size_t b = 0; b < n / I2S_ARM_BLOCK; b++) {
		const uint8_t *s = src + b * I2S_ARM_BLOCK_BYTES;
		float *yb = y + b * I2S_ARM_BLOCK;
		for (int p = 0; p < 16; p++) {
			yb[p] = lut[s[p] >> 6];
			yb[16 + p] = lut[(s[p] >> 4) & 3];
			yb[32 + p] = lut[(s[p] >> 2) & 3];
			yb[48 + p] = lut[s[p] & 3];
		}
	}
}

void iq_i2s_decode(enum iq_layout l, const uint8_t *src, size_t n, float scale, float *y)
{
	if (l == IQ_LAYOUT_ARM)
		arm_decode(src, n, scale, y);
	else
		qp_decode_rows(GGUF_TYPE_I2_S, src, n, 1, scale, y);
}

/* Codes of one row (k % 128 == 0) in either layout. */
static void row_codes(enum iq_layout l, const uint8_t *src, size_t k, uint8_t *c)
{
	if (l == IQ_LAYOUT_ARM) {
		for (size_t b = 0; b < k / I2S_ARM_BLOCK; b++)
			for (int p = 0; p < 16; p++) {
				uint8_t v = src[b * 16 + (size_t)p];
				uint8_t *cb = c + b * I2S_ARM_BLOCK;
				cb[p] = v >> 6;
				cb[16 + p] = (v >> 4) & 3;
				cb[32 + p] = (v >> 2) & 3;
				cb[48 + p] = v & 3;
			}
		return;
	}
	for (size_t b = 0; b < k / I2S_BLOCK; b++)
		for (int m = 0; m < 32; m++) {
			uint8_t v = src[b * 32 + (size_t)m];
			uint8_t *cb = c + b * I2S_BLOCK;
			cb[m] = v >> 6;
			cb[32 + m] = (v >> 4) & 3;
			cb[64 + m] = (v >> 2) & 3;
			cb[96 + m] = v & 3;
		}
}

/* ---- evidence ------------------------------------------------------------------------------ */

static const struct gguf_tensor *i2s_matrix(const struct gguf_reader *r, unsigned layer,
					    const char *what)
{
	char name[GGUF_MAX_NAME + 1];
	snprintf(name, sizeof name, "blk.%u.%s.weight", layer, what);
	int64_t i = gguf_find_tensor(r, name);
	if (i < 0)
		return NULL;
	const struct gguf_tensor *t = gguf_tensor(r, (size_t)i);
	if (t->type != GGUF_TYPE_I2_S || qp_n_dims(t->n_dims, t->ne) != 2 || t->ne[0] % I2S_BLOCK)
		return NULL;
	return t;
}

/* Adds the non-zero count of every row of t to cnt[row]. */
static void add_row_counts(const struct gguf_tensor *t, uint32_t *cnt)
{
	uint8_t nz[256]; /* number of 2-bit fields of a byte that are not code 1 */
	for (int b = 0; b < 256; b++)
		nz[b] = (uint8_t)(((b >> 6) != 1) + (((b >> 4) & 3) != 1) + (((b >> 2) & 3) != 1) +
				  ((b & 3) != 1));
	size_t row_bytes = (size_t)t->ne[0] / 4;
	for (uint64_t row = 0; row < t->ne[1]; row++) {
		const uint8_t *p = t->data + row * row_bytes;
		uint32_t s = 0;
		for (size_t i = 0; i < row_bytes; i++)
			s += nz[p[i]];
		cnt[row] += s;
	}
}

/* Pearson correlation of a and b over the columns the layouts disagree on (j mod 128 in
 * [16, 112)), as a Fisher z-score. */
static double zscore(const uint32_t *a, const uint32_t *b, size_t len)
{
	double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
	size_t n = 0;
	for (size_t j = 0; j < len; j++) {
		size_t q = j % I2S_BLOCK;
		if (q < 16 || q >= 112)
			continue;
		double x = a[j], y = b[j];
		sa += x;
		sb += y;
		saa += x * x;
		sbb += y * y;
		sab += x * y;
		n++;
	}
	if (n < 8)
		return 0;
	double cov = sab - sa * sb / (double)n;
	double va = saa - sa * sa / (double)n, vb = sbb - sb * sb / (double)n;
	if (va <= 0 || vb <= 0)
		return 0;
	double rho = cov / sqrt(va * vb);
	rho = fmax(-0.999999, fmin(0.999999, rho));
	return atanh(rho) * sqrt((double)n - 3);
}

void iq_layout_evidence(const struct gguf_reader *r, double *z_x86, double *z_arm,
			unsigned *layers)
{
	double zx = 0, za = 0;
	unsigned used = 0;
	for (unsigned l = 0;; l++) {
		char name[GGUF_MAX_NAME + 1];
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", l);
		if (gguf_find_tensor(r, name) < 0)
			break;
		const struct gguf_tensor *down = i2s_matrix(r, l, "ffn_down");
		const struct gguf_tensor *up = i2s_matrix(r, l, "ffn_up");
		const struct gguf_tensor *gate = i2s_matrix(r, l, "ffn_gate");
		if (!down)
			continue;
		if (up && (up->ne[1] != down->ne[0] || up->ne[0] != down->ne[1]))
			up = NULL;
		if (gate && (gate->ne[1] != down->ne[0] || gate->ne[0] != down->ne[1]))
			gate = NULL;
		if (!up && !gate)
			continue;
		size_t n_ff = (size_t)down->ne[0], n_embd = (size_t)down->ne[1];
		uint32_t *rows = calloc(n_ff, sizeof *rows), *cx = calloc(n_ff, sizeof *cx);
		uint32_t *ca = calloc(n_ff, sizeof *ca);
		uint8_t *codes = malloc(n_ff);
		if (rows && cx && ca && codes) {
			if (up)
				add_row_counts(up, rows);
			if (gate)
				add_row_counts(gate, rows);
			for (size_t row = 0; row < n_embd; row++) {
				const uint8_t *p = down->data + row * (n_ff / 4);
				row_codes(IQ_LAYOUT_X86, p, n_ff, codes);
				for (size_t j = 0; j < n_ff; j++)
					cx[j] += codes[j] != 1;
				row_codes(IQ_LAYOUT_ARM, p, n_ff, codes);
				for (size_t j = 0; j < n_ff; j++)
					ca[j] += codes[j] != 1;
			}
			zx += zscore(rows, cx, n_ff);
			za += zscore(rows, ca, n_ff);
			used++;
		}
		free(rows);
		free(cx);
		free(ca);
		free(codes);
	}
	*z_x86 = used ? zx / sqrt((double)used) : NAN;
	*z_arm = used ? za / sqrt((double)used) : NAN;
	*layers = used;
}

int iq_detect_layout(const struct gguf_reader *r, enum iq_layout forced,
		     struct iq_layout_verdict *v, struct bn_err *err)
{
	memset(v, 0, sizeof *v);
	v->z_x86 = v->z_arm = NAN;
	if (forced != IQ_LAYOUT_AUTO) {
		v->layout = forced;
		snprintf(v->why, sizeof v->why, "%s layout, as --i2s-layout says",
			 iq_layout_name(forced));
		return 0;
	}
	if (gguf_find_key(r, "general.quantization_version") < 0) {
		v->layout = IQ_LAYOUT_X86;
		snprintf(v->why, sizeof v->why,
			 "x86 layout: no general.quantization_version, so not written by "
			 "llama-quantize but by a Python converter, which always packs x86 blocks");
		return 0;
	}
	iq_layout_evidence(r, &v->z_x86, &v->z_arm, &v->layers);
	if (v->layers && v->z_x86 >= IQ_LAYOUT_Z_DECIDE && v->z_arm <= IQ_LAYOUT_Z_OTHER) {
		v->layout = IQ_LAYOUT_X86;
	} else if (v->layers && v->z_arm >= IQ_LAYOUT_Z_DECIDE && v->z_x86 <= IQ_LAYOUT_Z_OTHER) {
		v->layout = IQ_LAYOUT_ARM;
	} else {
		char ev[96] = "no ffn_up/ffn_gate/ffn_down I2_S tensors to compare";
		if (v->layers)
			snprintf(ev, sizeof ev, "evidence z = %.1f (x86) / %.1f (arm) over %u layers",
				 v->z_x86, v->z_arm, v->layers);
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "I2_S layout: cannot tell whether this llama-quantize file uses the "
				 "x86 (128-element) or the ARM (64-element) blocks, the file does not "
				 "record it and the weights do not show it (%s); pass --i2s-layout x86 "
				 "if it was quantized on x86, --i2s-layout arm if on ARM", ev);
	}
	snprintf(v->why, sizeof v->why,
		 "%s layout: feed-forward evidence z = %.1f (x86) / %.1f (arm) over %u layers",
		 iq_layout_name(v->layout), v->z_x86, v->z_arm, v->layers);
	return 0;
}

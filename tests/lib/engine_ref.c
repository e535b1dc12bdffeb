/* The reference forward pass of the engine tests: a naive, token-at-a-time transformer read from
 * an f32 GGUF, written from the model descriptions (convert-quantize.md §3-§5, merge-dev's
 * build_bitnet/build_llama graphs) without sharing code with tools/bitnet-run.  Sums are in
 * double.  struct ref_opts switches on the roundings a quantized file would add (int8 or Q8_K
 * activations, f16 scales, f16/Q8_0 embeddings, the f16 KV cache), so the engine's quantized
 * paths can be compared with "the same model computed the way bitnet.cpp computes it". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "engine_util.h"
#include "gguf.h"

struct ref_layer {
	const float *attn_norm, *attn_sub_norm, *ffn_norm, *ffn_sub_norm;
	const float *wq, *wk, *wv, *wo, *gate, *up, *down; /* row-major (out, in) */
};

struct ref_model {
	struct gguf_reader *r;
	bool llama, relu2, sub;
	int n_layer, d, ff, nh, nkv, hd, n_vocab;
	float eps, base;
	const float *embd, *out_norm, *out;
	struct ref_layer *L;
};

static uint32_t u32_of(const struct gguf_reader *r, const char *arch, const char *k, uint32_t dflt)
{
	char key[160];
	snprintf(key, sizeof key, "%s.%s", arch, k);
	int64_t kv = gguf_find_key(r, key);
	uint32_t v = dflt;
	if (kv >= 0)
		gguf_get_u32(r, kv, &v, NULL);
	return v;
}

static float f32_of(const struct gguf_reader *r, const char *arch, const char *k, float dflt)
{
	char key[160];
	snprintf(key, sizeof key, "%s.%s", arch, k);
	int64_t kv = gguf_find_key(r, key);
	float v = dflt;
	if (kv >= 0)
		gguf_get_f32(r, kv, &v, NULL);
	return v;
}

static const float *tensor(const struct gguf_reader *r, const char *name)
{
	int64_t i = gguf_find_tensor(r, name);
	if (i < 0)
		return NULL;
	const struct gguf_tensor *t = gguf_tensor(r, (size_t)i);
	return t->type == GGUF_TYPE_F32 ? (const float *)t->data : NULL;
}

int ref_open(struct ref_model **out, const char *path, struct bn_err *err)
{
	struct ref_model *m = calloc(1, sizeof *m);
	if (!m)
		return bn_seterr(err, BN_ENOMEM, "oom");
	m->r = gguf_open(path, err);
	if (!m->r) {
		free(m);
		return -1;
	}
	struct gguf_str s;
	char arch[32];
	gguf_get_str(m->r, gguf_find_key(m->r, "general.architecture"), &s, err);
	snprintf(arch, sizeof arch, "%.*s", (int)s.len, s.data);
	m->llama = strcmp(arch, "llama") == 0;
	m->sub = !m->llama;
	m->relu2 = strcmp(arch, "bitnet-b1.58") == 0 || strcmp(arch, "bitnet-25") == 0;
	char key[160];
	snprintf(key, sizeof key, "%s.hidden_activation", arch);
	int64_t kv = gguf_find_key(m->r, key);
	if (kv >= 0 && gguf_get_str(m->r, kv, &s, NULL) == 0)
		m->relu2 = s.len == 5 && memcmp(s.data, "relu2", 5) == 0;
	m->n_layer = (int)u32_of(m->r, arch, "block_count", 0);
	m->d = (int)u32_of(m->r, arch, "embedding_length", 0);
	m->ff = (int)u32_of(m->r, arch, "feed_forward_length", 0);
	m->nh = (int)u32_of(m->r, arch, "attention.head_count", 1);
	m->nkv = (int)u32_of(m->r, arch, "attention.head_count_kv", (uint32_t)m->nh);
	m->hd = m->d / m->nh;
	m->eps = f32_of(m->r, arch, "attention.layer_norm_rms_epsilon", 1e-5f);
	m->base = f32_of(m->r, arch, "rope.freq_base", 10000.0f);
	uint64_t nv = 0;
	gguf_get_arr(m->r, gguf_find_key(m->r, "tokenizer.ggml.tokens"), GGUF_VTYPE_STRING, &nv, NULL);
	m->n_vocab = (int)nv;
	m->embd = tensor(m->r, "token_embd.weight");
	m->out_norm = tensor(m->r, "output_norm.weight");
	m->out = tensor(m->r, "output.weight");
	if (!m->out)
		m->out = m->embd;
	m->L = calloc((size_t)m->n_layer, sizeof *m->L);
	bool ok = m->embd && m->out_norm && m->L && m->n_layer > 0;
	for (int l = 0; ok && l < m->n_layer; l++) {
		struct ref_layer *L = &m->L[l];
		char n[96];
#define G(field, nm) (snprintf(n, sizeof n, "blk.%d.%s.weight", l, nm), L->field = tensor(m->r, n), ok = ok && L->field)
		G(attn_norm, "attn_norm");
		G(ffn_norm, "ffn_norm");
		G(wq, "attn_q");
		G(wk, "attn_k");
		G(wv, "attn_v");
		G(wo, "attn_output");
		G(gate, "ffn_gate");
		G(up, "ffn_up");
		G(down, "ffn_down");
		if (m->sub) {
			G(attn_sub_norm, "attn_sub_norm");
			G(ffn_sub_norm, "ffn_sub_norm");
		}
#undef G
	}
	if (!ok) {
		ref_close(m);
		return bn_seterr(err, BN_EFORMAT, "%s: not an f32 model the reference understands", path);
	}
	*out = m;
	return 0;
}

void ref_close(struct ref_model *m)
{
	if (!m)
		return;
	gguf_close(m->r);
	free(m->L);
	free(m);
}

uint32_t ref_n_vocab(const struct ref_model *m)
{
	return (uint32_t)m->n_vocab;
}

static float r16(float x)
{
	return bn_f16_to_f32(bn_f32_to_f16(x));
}

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
	double ss = 0;
	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	double sc = 1.0 / sqrt(ss / n + eps);
	for (int i = 0; i < n; i++)
		o[i] = (float)(x[i] * sc * w[i]);
}

/* A Q8_0 round trip of one block of 32 (convert-quantize.md §7.3). */
static void q8_0_round(const float *x, float *y, int n)
{
	for (int b = 0; b < n; b += 32) {
		float amax = 0;
		for (int i = 0; i < 32; i++)
			amax = fmaxf(amax, fabsf(x[b + i]));
		float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f, d16 = r16(d);
		for (int i = 0; i < 32; i++)
			y[b + i] = roundf(x[b + i] * id) * d16;
	}
}

/* The activation rounding a quantized matmul applies to its input x (k values) -> a, and the
 * factor the integer-valued result is divided by (I8S) or 1. */
static double quant_act(const struct ref_opts *o, const float *x, int k, float *a)
{
	if (o->act == REF_ACT_I8S) {
		double mx = 1e-5;
		for (int i = 0; i < k; i++)
			mx = fmax(mx, fabs((double)x[i]));
		float s = (float)(127.0 / mx);
		for (int i = 0; i < k; i++) {
			float q = nearbyintf(x[i] * s);
			a[i] = fminf(127.0f, fmaxf(-128.0f, q));
		}
		return s;
	}
	if (o->act == REF_ACT_Q8K) {
		for (int b = 0; b < k; b += 256) {
			float amax = 0, big = 0;
			for (int i = 0; i < 256; i++)
				if (fabsf(x[b + i]) > big) {
					big = fabsf(x[b + i]);
					amax = x[b + i];
				}
			if (big == 0) {
				memset(a + b, 0, 256 * sizeof *a);
				continue;
			}
			float is = -127.0f / amax, d = 1.0f / is;
			for (int i = 0; i < 256; i++)
				a[b + i] = fminf(127.0f, nearbyintf(is * x[b + i])) * d;
		}
		return 1.0;
	}
	for (int i = 0; i < k; i++)
		a[i] = o->act == REF_ACT_F16 ? r16(x[i]) : o->act == REF_ACT_BF16 ? bn_bf16_to_f32(bn_f32_to_bf16(x[i])) : x[i];
	return 1.0;
}

/* y (rows) = W (rows x k) · x with the activation and weight roundings of o. */
static void matvec(const struct ref_opts *o, const float *W, int rows, int k, const float *x, float *y, float *a)
{
	double div = quant_act(o, x, k, a);
	for (int r = 0; r < rows; r++) {
		const float *w = W + (size_t)r * k;
		double s = 0;
		if (o->tq_scale_f16)
			for (int i = 0; i < k; i++)
				s += (double)(w[i] == 0 ? 0.0f : copysignf(r16(fabsf(w[i])), w[i])) * a[i];
		else if (o->w_bf16)
			for (int i = 0; i < k; i++)
				s += (double)bn_bf16_to_f32(bn_f32_to_bf16(w[i])) * a[i];
		else
			for (int i = 0; i < k; i++)
				s += (double)w[i] * a[i];
		y[r] = (float)(s / div);
	}
}

/* ggml computes theta_i = pos·base^(-2i/hd) as a running f32 product (ggml_rope_cache_init);
 * the angles are taken the same way here, the rotation in double. */
static void rope(float *v, int heads, int hd, int pos, float base, bool neox)
{
	const float theta_scale = powf(base, -2.0f / (float)hd);
	for (int h = 0; h < heads; h++) {
		float *x = v + h * hd;
		float theta = (float)pos;
		for (int i = 0; i < hd / 2; i++, theta *= theta_scale) {
			double c = cos((double)theta), s = sin((double)theta);
			int i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : 2 * i + 1;
			double x0 = x[i0], x1 = x[i1];
			x[i0] = (float)(x0 * c - x1 * s);
			x[i1] = (float)(x0 * s + x1 * c);
		}
	}
}

int ref_forward(struct ref_model *m, const struct ref_opts *o, const int32_t *tokens, size_t n, float *logits,
		struct bn_err *err)
{
	const int d = m->d, ff = m->ff, hd = m->hd, nq = m->nh * hd, nkv = m->nkv * hd;
	const int big = d > ff ? d : ff;
	float *x = calloc((size_t)d, sizeof *x), *xn = calloc((size_t)big, sizeof *xn);
	float *q = calloc((size_t)nq, sizeof *q), *att = calloc((size_t)nq, sizeof *att);
	float *g = calloc((size_t)ff, sizeof *g), *u = calloc((size_t)ff, sizeof *u);
	float *a = calloc((size_t)big, sizeof *a), *tmp = calloc((size_t)big, sizeof *tmp);
	float *wrow = calloc((size_t)d, sizeof *wrow);
	float *kc = calloc((size_t)m->n_layer * n * nkv, sizeof *kc), *vc = calloc((size_t)m->n_layer * n * nkv, sizeof *vc);
	double *sc = calloc(n, sizeof *sc);
	int rc = 0;
	if (!x || !xn || !q || !att || !g || !u || !a || !tmp || !wrow || !kc || !vc || !sc) {
		rc = bn_seterr(err, BN_ENOMEM, "oom");
		goto out;
	}
	for (size_t p = 0; p < n; p++) {
		const float *e = m->embd + (size_t)tokens[p] * d;
		if (o->embd_type == GGUF_TYPE_F16)
			for (int i = 0; i < d; i++)
				x[i] = r16(e[i]);
		else if (o->embd_type == GGUF_TYPE_Q8_0)
			q8_0_round(e, x, d);
		else
			memcpy(x, e, (size_t)d * sizeof *x);
		for (int l = 0; l < m->n_layer; l++) {
			const struct ref_layer *L = &m->L[l];
			float *kl = kc + ((size_t)l * n + p) * nkv, *vl = vc + ((size_t)l * n + p) * nkv;
			rmsnorm(xn, x, L->attn_norm, d, m->eps);
			matvec(o, L->wq, nq, d, xn, q, a);
			matvec(o, L->wk, nkv, d, xn, kl, a);
			matvec(o, L->wv, nkv, d, xn, vl, a);
			rope(q, m->nh, hd, (int)p, m->base, !m->llama);
			rope(kl, m->nkv, hd, (int)p, m->base, !m->llama);
			if (o->kv_f16)
				for (int i = 0; i < nkv; i++)
					kl[i] = r16(kl[i]), vl[i] = r16(vl[i]);
			for (int h = 0; h < m->nh; h++) {
				const int gk = h / (m->nh / m->nkv);
				double mx = -INFINITY, sum = 0;
				for (size_t t = 0; t <= p; t++) {
					const float *kt = kc + ((size_t)l * n + t) * nkv + gk * hd;
					double s = 0;
					for (int i = 0; i < hd; i++)
						s += (double)(o->kv_f16 ? r16(q[h * hd + i]) : q[h * hd + i]) * kt[i];
					sc[t] = s / sqrt((double)hd);
					mx = fmax(mx, sc[t]);
				}
				for (size_t t = 0; t <= p; t++)
					sum += (sc[t] = exp(sc[t] - mx));
				for (int i = 0; i < hd; i++)
					att[h * hd + i] = 0;
				for (size_t t = 0; t <= p; t++) {
					float w = (float)(sc[t] / sum);
					if (o->kv_f16)
						w = r16(w);
					const float *vt = vc + ((size_t)l * n + t) * nkv + gk * hd;
					for (int i = 0; i < hd; i++)
						att[h * hd + i] += w * vt[i];
				}
			}
			if (m->sub)
				rmsnorm(att, att, L->attn_sub_norm, nq, m->eps);
			matvec(o, L->wo, d, nq, att, tmp, a);
			for (int i = 0; i < d; i++)
				x[i] += tmp[i];
			rmsnorm(xn, x, L->ffn_norm, d, m->eps);
			matvec(o, L->gate, ff, d, xn, g, a);
			matvec(o, L->up, ff, d, xn, u, a);
			for (int i = 0; i < ff; i++) {
				double v = g[i];
				double act = m->relu2 ? (v > 0 ? v * v : 0) : v / (1 + exp(-v));
				g[i] = (float)(act * u[i]);
			}
			if (m->sub)
				rmsnorm(g, g, L->ffn_sub_norm, ff, m->eps);
			matvec(o, L->down, d, ff, g, tmp, a);
			for (int i = 0; i < d; i++)
				x[i] += tmp[i];
		}
		rmsnorm(xn, x, m->out_norm, d, m->eps);
		if (o->embd_type == GGUF_TYPE_F16)
			for (int i = 0; i < d; i++)
				xn[i] = r16(xn[i]);
		else if (o->embd_type == GGUF_TYPE_Q8_0)
			q8_0_round(xn, xn, d);
		float *lg = logits + p * (size_t)m->n_vocab;
		for (int r = 0; r < m->n_vocab; r++) {
			const float *w = m->out + (size_t)r * d;
			if (o->embd_type == GGUF_TYPE_F16)
				for (int i = 0; i < d; i++)
					wrow[i] = r16(w[i]);
			else if (o->embd_type == GGUF_TYPE_Q8_0)
				q8_0_round(w, wrow, d);
			else
				memcpy(wrow, w, (size_t)d * sizeof *wrow);
			double s = 0;
			for (int i = 0; i < d; i++)
				s += (double)wrow[i] * xn[i];
			lg[r] = (float)s;
		}
	}
out:
	free(x), free(xn), free(q), free(att), free(g), free(u), free(a), free(tmp), free(wrow);
	free(kc), free(vc), free(sc);
	return rc;
}

/* HF tensors -> GGUF tensors: name mapping and order (convert-quantize.md §4.1, §4.2), shape
 * checks against config.json, and the value transforms: BF16/F16 widening, packed U8 unpacking
 * with weight_scale (§5.3), BitnetModel's weight_quant (§5.1) and LlamaModel's q/k row
 * permutation (§4.4).  Invariant: cv_rows is a pure function of (tensor, prep, rows), so any
 * chunking and any number of threads give the same bytes. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "bn_util.h"
#include "convert.h"

/* ---- name mapping (§4.1) ------------------------------------------------------------------- */

struct layer_map {
	const char *hf;     /* after "model.layers.N." */
	const char *gguf;   /* after "blk.N." */
	enum cv_role role;
	int cls;            /* -1 both classes, else the only class that has it */
	int dim;            /* expected shape (see shape_of) */
};

enum { D_H, D_I, D_Q_H, D_KV_H, D_H_Q, D_I_H, D_H_I };

static const struct layer_map layer_maps[] = {
	{ "input_layernorm", "attn_norm", CV_NORM, -1, D_H },
	{ "post_attention_layernorm", "ffn_norm", CV_NORM, -1, D_H },
	{ "self_attn.q_proj", "attn_q", CV_PROJ, -1, D_Q_H },
	{ "self_attn.k_proj", "attn_k", CV_PROJ, -1, D_KV_H },
	{ "self_attn.v_proj", "attn_v", CV_PROJ, -1, D_KV_H },
	{ "self_attn.o_proj", "attn_output", CV_PROJ, -1, D_H_Q },
	{ "mlp.gate_proj", "ffn_gate", CV_PROJ, -1, D_I_H },
	{ "mlp.up_proj", "ffn_up", CV_PROJ, -1, D_I_H },
	{ "mlp.down_proj", "ffn_down", CV_PROJ, -1, D_H_I },
	/* BitNet sub-norms: 1bitLLM names, then the 2B-4T names */
	{ "self_attn.inner_attn_ln", "attn_sub_norm", CV_NORM, CV_BITNET, D_H },
	{ "mlp.ffn_layernorm", "ffn_sub_norm", CV_NORM, CV_BITNET, D_I },
	{ "self_attn.attn_sub_norm", "attn_sub_norm", CV_NORM, CV_BITNET, D_H },
	{ "mlp.ffn_sub_norm", "ffn_sub_norm", CV_NORM, CV_BITNET, D_I },
};
#define N_LAYER_MAPS (sizeof layer_maps / sizeof *layer_maps)

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && memcmp(s + a - b, suf, b) == 0;
}

/* Names the reference drops before mapping. */
static bool skipped(const char *name)
{
	return ends_with(name, ".attention.masked_bias") || ends_with(name, ".attention.bias") ||
	       ends_with(name, ".rotary_emb.inv_freq");
}

/* "model.layers.<N>." with N canonical decimal (gguf-py formats the block id, so "01" does not
 * map); returns N and the rest in *rest, or -1. */
static long layer_of(const char *name, const char **rest)
{
	static const char pfx[] = "model.layers.";
	if (strncmp(name, pfx, sizeof pfx - 1) != 0)
		return -1;
	const char *p = name + sizeof pfx - 1, *q = p;
	long v = 0;
	while (*q >= '0' && *q <= '9' && q - p < 9)
		v = v * 10 + (*q++ - '0');
	if (q == p || *q != '.' || (q - p > 1 && *p == '0'))
		return -1;
	*rest = q + 1;
	return v;
}

/* ---- planning ------------------------------------------------------------------------------ */

struct want {
	uint64_t d0, d1;  /* HF shape [d0, d1] (d1 = 0: 1-D) after unpacking */
	const char *why;
};

static struct want shape_of(int dim, const struct cv_config *c)
{
	uint64_t H = c->n_embd, I = c->n_ff.v, hd = c->head_dim;
	uint64_t Q = (uint64_t)c->n_head * hd;
	uint64_t KV = (uint64_t)(c->n_head_kv.set ? c->n_head_kv.v : c->n_head) * hd;
	switch (dim) {
	case D_H: return (struct want){ H, 0, "hidden_size" };
	case D_I: return (struct want){ I, 0, "intermediate_size" };
	case D_Q_H: return (struct want){ Q, H, "num_attention_heads x head_dim, hidden_size" };
	case D_KV_H: return (struct want){ KV, H, "num_key_value_heads x head_dim, hidden_size" };
	case D_H_Q: return (struct want){ H, Q, "hidden_size, num_attention_heads x head_dim" };
	case D_I_H: return (struct want){ I, H, "intermediate_size, hidden_size" };
	default: return (struct want){ H, I, "hidden_size, intermediate_size" };
	}
}

static void fmt_shape(char *b, size_t n, const uint64_t *s, unsigned nd)
{
	size_t o = (size_t)snprintf(b, n, "[");
	for (unsigned i = 0; i < nd && o < n; i++)
		o += (size_t)snprintf(b + o, n - o, "%s%llu", i ? ", " : "", (unsigned long long)s[i]);
	if (o < n)
		snprintf(b + o, n - o, "]");
}

/* Shape after unpacking and squeeze (size-1 axes removed), outermost first. */
static unsigned squeezed(const struct st_tensor *s, bool packed, uint64_t *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->n_dims; i++) {
		uint64_t d = s->shape[i] * (packed && i == 0 ? 4 : 1);
		if (d != 1)
			out[n++] = d;
	}
	return n;
}

static int fill(struct cv_tensor *t, const struct cv_config *c, const struct want *w,
		struct bn_err *err)
{
	const struct st_tensor *s = t->src;
	bool packed = t->scale != NULL;
	uint64_t sh[ST_MAX_DIMS];
	unsigned nd = squeezed(s, packed, sh);
	char got[96], exp[96];
	fmt_shape(got, sizeof got, sh, nd);
	uint64_t e[2] = { w->d0, w->d1 };
	unsigned end = w->d1 ? 2 : 1;
	fmt_shape(exp, sizeof exp, e, end);
	if (nd != end || sh[0] != w->d0 || (end == 2 && sh[1] != w->d1))
		return bn_seterr(err, BN_EFORMAT, "%s: shape %s%s does not match config.json, which "
				 "implies %s (%s)", s->name, got, packed ? " (unpacked)" : "", exp,
				 w->why);
	t->n_dims = nd;
	for (unsigned i = 0; i < GGUF_MAX_DIMS; i++)
		t->ne[i] = i < nd ? sh[nd - 1 - i] : 1;
	t->cols = t->ne[0];
	t->rows = nd > 1 ? sh[0] : 1;
	t->n = t->cols * t->rows;
	(void)c;
	return 0;
}

static int check_dtype(const struct cv_tensor *t, struct bn_err *err)
{
	const struct st_tensor *s = t->src;
	if (t->scale) {
		if (s->dtype != ST_U8)
			return bn_seterr(err, BN_EFORMAT, "%s: has a weight_scale but is %s, not packed "
					 "U8", s->name, st_dtype_name(s->dtype));
		if (s->n_dims != 2)
			return bn_seterr(err, BN_EFORMAT, "%s: packed weights must be 2-D", s->name);
		const struct st_tensor *sc = t->scale;
		if (sc->n_elements != 1 || (sc->dtype != ST_F32 && sc->dtype != ST_F16 &&
					    sc->dtype != ST_BF16))
			return bn_seterr(err, BN_EFORMAT, "%s: must be one float (it is %s with %llu "
					 "elements)", sc->name, st_dtype_name(sc->dtype),
					 (unsigned long long)sc->n_elements);
		return 0;
	}
	if (s->dtype != ST_F32 && s->dtype != ST_F16 && s->dtype != ST_BF16)
		return bn_seterr(err, BN_EFORMAT, "%s: dtype %s is not a float type%s", s->name,
				 st_dtype_name(s->dtype), s->dtype == ST_U8 ?
				 " (packed U8 weights need their <name>_scale tensor, the weight_scale)" : "");
	return 0;
}

int cv_plan_build(struct cv_plan *p, const struct st_model *m, const struct cv_config *c,
		  size_t n_tokens, struct bn_err *err)
{
	memset(p, 0, sizeof *p);
	const uint32_t L = c->n_layer;
	/* seen[layer][map] for the completeness check; global: embd, norm, output */
	size_t n_seen = (size_t)L * N_LAYER_MAPS;
	uint8_t *seen = calloc(n_seen ? n_seen : 1, 1);
	p->t = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *p->t);
	bool g_embd = false, g_norm = false;
	int rc = 0;
	if (!seen || !p->t) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct st_tensor *s = &m->tensors[i];
		const char *nm = s->name;
		if (skipped(nm))
			continue;
		if (ends_with(nm, "weight_scale")) {
			/* must belong to a "<module>.weight" tensor */
			size_t l = strlen(nm);
			char wn[512];
			if (l < 7 || l - 6 >= sizeof wn || !ends_with(nm, ".weight_scale")) {
				rc = bn_seterr(err, BN_EFORMAT, "%s: a weight_scale without a matching "
					       "<module>.weight", nm);
				goto out;
			}
			memcpy(wn, nm, l - 6);
			wn[l - 6] = '\0';
			if (!st_find(m, wn)) {
				rc = bn_seterr(err, BN_EFORMAT, "%s: no tensor %s to scale", nm, wn);
				goto out;
			}
			continue;
		}
		struct cv_tensor *t = &p->t[p->n];
		memset(t, 0, sizeof *t);
		t->src = s;
		t->bid = -1;
		t->hf_weight = ends_with(nm, ".weight");
		if (!t->hf_weight) {
			rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: cannot map this tensor (only .weight "
				       "tensors of the supported architectures are)", nm);
			goto out;
		}
		char sn[512];
		snprintf(sn, sizeof sn, "%s_scale", nm);
		t->scale = st_find(m, sn);
		if ((rc = check_dtype(t, err)))
			goto out;
		struct want w;
		const char *rest;
		long bid;
		if (strcmp(nm, "model.embed_tokens.weight") == 0) {
			t->role = CV_TOKEN_EMBD;
			snprintf(t->name, sizeof t->name, "token_embd.weight");
			w = (struct want){ n_tokens, c->n_embd, "vocab_size / number of tokens, hidden_size" };
			g_embd = true;
		} else if (strcmp(nm, "model.norm.weight") == 0) {
			t->role = CV_OUTPUT_NORM;
			snprintf(t->name, sizeof t->name, "output_norm.weight");
			w = shape_of(D_H, c);
			g_norm = true;
		} else if (strcmp(nm, "lm_head.weight") == 0) {
			if (c->cls == CV_BITNET) {
				rc = bn_seterr(err, BN_EFORMAT, "%s: BitNet models have no separate "
					       "output head (llama.cpp uses the token embeddings), so "
					       "this checkpoint is not the %s it claims to be", nm,
					       c->arch_hf);
				goto out;
			}
			t->role = CV_OUTPUT;
			snprintf(t->name, sizeof t->name, "output.weight");
			w = (struct want){ n_tokens, c->n_embd, "vocab_size / number of tokens, hidden_size" };
		} else if ((bid = layer_of(nm, &rest)) >= 0) {
			size_t k;
			for (k = 0; k < N_LAYER_MAPS; k++) {
				size_t hl = strlen(layer_maps[k].hf);
				if ((layer_maps[k].cls < 0 || layer_maps[k].cls == (int)c->cls) &&
				    strncmp(rest, layer_maps[k].hf, hl) == 0 &&
				    strcmp(rest + hl, ".weight") == 0)
					break;
			}
			if (k == N_LAYER_MAPS) {
				rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: cannot map this tensor to a "
					       "%s GGUF tensor", nm, c->arch);
				goto out;
			}
			if ((uint64_t)bid >= L) {
				rc = bn_seterr(err, BN_EFORMAT, "%s: block %ld but config.json says %u "
					       "layers", nm, bid, L);
				goto out;
			}
			/* the two sub-norm spellings map to one name: count per GGUF name */
			size_t slot = k >= 11 ? k - 2 : k;
			if (seen[(size_t)bid * N_LAYER_MAPS + slot]) {
				rc = bn_seterr(err, BN_EFORMAT, "%s: blk.%ld.%s.weight is given twice "
					       "(both sub-norm spellings?)", nm, bid, layer_maps[k].gguf);
				goto out;
			}
			seen[(size_t)bid * N_LAYER_MAPS + slot] = 1;
			t->role = layer_maps[k].role;
			t->bid = (int)bid;
			snprintf(t->name, sizeof t->name, "blk.%ld.%s.weight", bid, layer_maps[k].gguf);
			w = shape_of(layer_maps[k].dim, c);
			/* LlamaModel permutes q (n_head) and k (n_head_kv when it differs) */
			if (c->cls == CV_LLAMA && strcmp(layer_maps[k].gguf, "attn_q") == 0)
				t->perm_heads = c->n_head;
			if (c->cls == CV_LLAMA && strcmp(layer_maps[k].gguf, "attn_k") == 0)
				t->perm_heads = c->n_head_kv.set ? c->n_head_kv.v : c->n_head;
		} else {
			rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: cannot map this tensor to a %s GGUF "
				       "tensor", nm, c->arch);
			goto out;
		}
		if (t->scale && t->role != CV_PROJ) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: only projection weights can be packed",
				       nm);
			goto out;
		}
		if ((rc = fill(t, c, &w, err)))
			goto out;
		t->wquant = c->cls == CV_BITNET && t->role == CV_PROJ && !t->scale;
		t->scale_mul = c->scale_mul;
		if (t->perm_heads && t->rows % (2 * (uint64_t)t->perm_heads)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: %llu rows cannot be split into %u heads of "
				       "rotary pairs", nm, (unsigned long long)t->rows, t->perm_heads);
			goto out;
		}
		p->n++;
	}
	if (!g_embd) {
		rc = bn_seterr(err, BN_EFORMAT, "model.embed_tokens.weight is missing");
		goto out;
	}
	if (!g_norm) {
		rc = bn_seterr(err, BN_EFORMAT, "model.norm.weight is missing");
		goto out;
	}
	for (uint32_t l = 0; l < L; l++)
		for (size_t k = 0; k < 11; k++) {
			if (layer_maps[k].cls >= 0 && layer_maps[k].cls != (int)c->cls)
				continue;
			if (!seen[(size_t)l * N_LAYER_MAPS + k]) {
				rc = bn_seterr(err, BN_EFORMAT, "model.layers.%u.%s.weight is missing "
					       "(config.json says %u layers)", l, layer_maps[k].hf, L);
				goto out;
			}
		}
out:
	free(seen);
	if (rc)
		cv_plan_free(p);
	return rc;
}

void cv_plan_free(struct cv_plan *p)
{
	if (!p)
		return;
	free(p->t);
	p->t = NULL;
	p->n = 0;
}

/* ---- values -------------------------------------------------------------------------------- */

static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_init(void)
{
	for (uint32_t h = 0; h < 65536; h++)
		f16_table[h] = bn_f16_to_f32((uint16_t)h);
}

/* cols source elements of dtype dt at p widened to f32. */
CV_HOT static void widen(enum st_dtype dt, const uint8_t *p, uint64_t cols, float *d)
{
	switch (dt) {
	case ST_F32:
		memcpy(d, p, cols * 4);
		break;
	case ST_BF16:
		for (uint64_t i = 0; i < cols; i++) {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			uint32_t u = (uint32_t)h << 16;
			memcpy(&d[i], &u, 4);
		}
		break;
	case ST_F16:
		pthread_once(&f16_once, f16_init);
		for (uint64_t i = 0; i < cols; i++) {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			d[i] = f16_table[h];
		}
		break;
	default:
		memset(d, 0, cols * 4);
	}
}

/* Source row r (cols elements) widened to f32. */
static void src_row(const struct st_tensor *s, uint64_t r, uint64_t cols, float *d)
{
	widen(s->dtype, s->data + r * cols * st_dtype_size(s->dtype), cols, d);
}

/* Unpacked row u of a packed [M/4, K] U8 tensor (§5.3): code (b >> 2i) & 3 of packed row
 * u mod M/4 with i = u div M/4; value (code - 1) divided or multiplied by the scale (f32). */
static void packed_row(const struct cv_tensor *t, float wscale, bool mul, uint64_t u, float *d)
{
	const struct st_tensor *s = t->src;
	uint64_t mq = s->shape[0], k = s->shape[1];
	const uint8_t *p = s->data + (u % mq) * k;
	unsigned sh = (unsigned)(2 * (u / mq));
	float val[4];
	for (int c = 0; c < 4; c++)
		val[c] = mul ? (float)(c - 1) * wscale : (float)(c - 1) / wscale;
	for (uint64_t i = 0; i < k; i++)
		d[i] = val[(p[i] >> sh) & 3];
}

/* (x·s).round().clamp(-1, 1) / s in f32: round-half-even then clamp gives ±1 exactly when
 * |x·s| > 0.5 and ±0 otherwise (sign kept, so -0.0 as rint gives it); ±1/s is ±(1/s).  NaN
 * stays NaN.  Written as selects so that it vectorizes. */
CV_HOT static void wquant(const struct cv_prep *pp, float *d, uint64_t n)
{
	const float s = pp->s, one = pp->inv, zero = 0.0f;
	for (uint64_t i = 0; i < n; i++) {
		float v = d[i] * s, a = fabsf(v);
		float m = a > 0.5f ? one : zero;
		d[i] = a == a ? copysignf(m, v) : v;
	}
}

static void rows_impl(const struct cv_tensor *t, const struct cv_prep *pp, uint64_t r0,
		      uint64_t nr, float *dst)
{
	const uint64_t cols = t->cols;
	for (uint64_t r = r0; r < r0 + nr; r++) {
		float *d = dst + (r - r0) * cols;
		uint64_t sr = r;
		if (t->perm_heads) {
			/* dest row h·hs + 2i + j <- source row h·hs + j·hs/2 + i (§4.4) */
			uint64_t hs = t->rows / t->perm_heads, h = r / hs, w = r % hs;
			sr = h * hs + (w % 2) * (hs / 2) + w / 2;
		}
		if (t->scale)
			packed_row(t, pp->wscale, t->scale_mul, sr, d);
		else
			src_row(t->src, sr, cols, d);
	}
	if (t->wquant)
		wquant(pp, dst, nr * cols);
}

bool cv_dense(const struct cv_tensor *t)
{
	return !t->scale && !t->perm_heads;
}

uint64_t cv_row_bytes(const struct cv_tensor *t)
{
	return t->cols * st_dtype_size(t->src->dtype);
}

void cv_rows_src(const struct cv_tensor *t, const struct cv_prep *pp, uint64_t nr,
		 const uint8_t *src, float *dst)
{
	widen(t->src->dtype, src, nr * t->cols, dst);
	if (t->wquant)
		wquant(pp, dst, nr * t->cols);
}

/* 8 interleaved partial sums of |x| in double (a fixed pattern per row, so the result depends
 * only on the rows given), combined in a fixed order. */
CV_HOT static double abs_sum_impl(enum st_dtype dt, const uint8_t *src, uint64_t nr,
				  uint64_t cols)
{
	double acc[8] = { 0 };
	float buf[1024];
	const size_t es = st_dtype_size(dt);
	for (uint64_t r = 0; r < nr; r++) {
		for (uint64_t c0 = 0; c0 < cols; c0 += 1024) {
			uint64_t n = BN_MIN((uint64_t)1024, cols - c0);
			widen(dt, src + (r * cols + c0) * es, n, buf);
			uint64_t i = 0;
			for (; i + 8 <= n; i += 8)
				for (int j = 0; j < 8; j++)
					acc[j] += fabs((double)buf[i + j]);
			for (; i < n; i++)
				acc[i % 8] += fabs((double)buf[i]);
		}
	}
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* The exported entry points are plain functions: target_clones stays on static ones. */
void cv_rows(const struct cv_tensor *t, const struct cv_prep *pp, uint64_t r0, uint64_t nr,
	     float *dst)
{
	rows_impl(t, pp, r0, nr, dst);
}

double cv_abs_sum(const struct cv_tensor *t, uint64_t r0, uint64_t nr)
{
	return abs_sum_impl(t->src->dtype, t->src->data + r0 * cv_row_bytes(t), nr, t->cols);
}

double cv_abs_sum_src(const struct cv_tensor *t, uint64_t nr, const uint8_t *src)
{
	return abs_sum_impl(t->src->dtype, src, nr, t->cols);
}

float cv_wquant_scale(double abs_sum, uint64_t n)
{
	float m = (float)(abs_sum / (double)n);
	if (!(m >= 1e-5f)) /* clamp(min=1e-5); NaN stays NaN as in torch */
		m = isnan(m) ? m : 1e-5f;
	return 1.0f / m;
}

void cv_wquant_prep(const struct cv_tensor *t, double abs_sum, struct cv_prep *pp)
{
	pp->s = cv_wquant_scale(abs_sum, t->n);
	pp->inv = 1.0f / pp->s;
	if (t->src->dtype == ST_F16) /* the result is cast back to f16 (§5.1 step 5) */
		pp->inv = bn_f16_to_f32(bn_f32_to_f16(pp->inv));
}

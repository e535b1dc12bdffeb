/* The forward pass (engine.h): run state and KV cache, the matmul dispatcher over every weight
 * type, the transformer blocks, and the batch driver.  Reads like llama2.c's run.c, with the
 * matmuls handed to the kernel library and the threads of its pool. */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "bn_log.h"
#include "bn_util.h"
#include "kernels.h"
#include "lut/lut.h"
#include "ops.h"
#include "q8_0.h"

/* Work (multiply-adds) below which a step runs on the calling thread alone: waking the pool
 * costs more than it saves for the tiny models, and under CPU contention a lot more. */
#define PAR_MIN (1u << 18)

/* ---- weights as the kernels see them ---------------------------------------------------------- */

enum wkind { W_F32, W_F16, W_BF16, W_Q8_0, W_KERN, W_LUT };

/* Activation forms: what a matmul needs its input converted to. */
enum form { FORM_F32, FORM_F16, FORM_BF16, FORM_Q8_0, FORM_I8S, FORM_Q8K, FORM_LUT, N_FORMS };

struct wmat {
	const struct mat *m;
	enum wkind kind;
	enum form form;
	struct kern_weight kw;  /* W_KERN: I2_S, TQ1_0, TQ2_0 */
	struct lut_weight lw;   /* W_LUT: TL1, TL2 */
};

struct wlayer {
	struct wmat wq, wk, wv, wo, gate, up, down;
};

/* ---- RunState --------------------------------------------------------------------------------- */

/* Scratch of one forward pass over up to n_batch tokens; rows are contiguous at their width. */
struct runstate {
	float *x;        /* (n_batch, n_embd) residual stream */
	float *xb;       /* (n_batch, n_embd) normalized input of a block, then its output */
	float *q;        /* (n_batch, n_q) */
	float *k, *v;    /* (n_batch, n_kv) */
	float *att;      /* (n_batch, n_q) attention output */
	float *hb, *hb2; /* (n_batch, n_ff) FFN gate and up */
	float *logits;   /* (n_out, n_vocab), n_out = n_batch with all_logits, else 1 */
	float *rope;     /* (n_batch, n_rot) cos, sin pairs of each position */
	float *scores;   /* (max_chunks, n_ctx) attention weights, one row per parallel chunk */
	uint16_t *q16;   /* (max_chunks, head_dim) the query head as f16 */
	/* converted activations, one buffer per form (only the forms the model uses) */
	void *form_buf[N_FORMS];
	size_t form_size[N_FORMS];
};

/* f16 K and V of every layer, head-major so that one head's positions are contiguous (the
 * attention of a head streams them): element i of KV head g at position pos of layer l is at
 * ((l·n_head_kv + g)·n_ctx + pos)·head_dim + i. */
struct kv_cache {
	uint16_t *k, *v;
};

/* What the activation buffers hold: source rows `src` (n of them, width k) in each ready form. */
struct actstate {
	const float *src;
	size_t n, k;
	unsigned ready;  /* bit per enum form */
	struct kern_acts kacts[N_FORMS];
};

struct engine {
	struct model model;
	struct kern_ctx *kern;
	const struct ops *ops;
	/* ops->attn_head_f16, or the scalar one when the head size is not a multiple of 8 */
	void (*attn_head)(const uint16_t *, const uint16_t *, const uint16_t *, size_t, size_t, size_t, float,
			  float *, float *);
	const struct lut_kernels *lut;
	bool lut_checked;       /* lut_kernels_check and the recorded tile parameters passed */
	struct wlayer *wl;      /* n_layer */
	struct wmat output;
	struct runstate s;
	struct kv_cache kv;
	struct actstate act;
	uint32_t n_ctx, n_batch, n_past;
	unsigned max_chunks;    /* parallel steps split into at most this many chunks (8 per thread) */
	bool all_logits;
	size_t n_out;           /* rows of logits the last batch produced */
};

static size_t kv_index(const struct engine *e, uint32_t layer, uint32_t g, size_t pos)
{
	const struct config *c = &e->model.cfg;
	return (((size_t)layer * c->n_head_kv + g) * e->n_ctx + pos) * c->head_dim;
}

/* ---- small blocks ----------------------------------------------------------------------------- */

/* ggml_rms_norm followed by ggml_mul with the weight. */
static void rmsnorm(const struct ops *ops, float *o, const float *x, const float *w, size_t n, float eps)
{
	const double ss = ops->sum_sq(x, n);
	const float mean = (float)(ss / (double)n);
	const float scale = 1.0f / sqrtf(mean + eps);
	for (size_t i = 0; i < n; i++)
		o[i] = (x[i] * scale) * w[i];
}

/* cos/sin of every rotated pair for positions pos0 .. pos0+n-1 (ggml_rope_cache_init with
 * ext_factor 0 and attn_factor 1): theta starts at the position (negative for a K-shift) and is
 * multiplied by base^(-2/n_rot) for each pair, in f32. */
static void rope_table(float *tab, int64_t pos0, size_t n, uint32_t n_rot, float base, float freq_scale)
{
	const float theta_scale = powf(base, -2.0f / (float)n_rot);
	for (size_t t = 0; t < n; t++) {
		float theta = (float)(pos0 + (int64_t)t);
		float *c = tab + t * n_rot;
		for (uint32_t i = 0; i < n_rot; i += 2) {
			const float th = freq_scale * theta;
			c[i] = cosf(th);
			c[i + 1] = sinf(th);
			theta *= theta_scale;
		}
	}
}

/* Rotates n_heads heads of one token in place. */
static void rope_apply(float *x, size_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *tab,
		       enum rope_style style)
{
	for (size_t h = 0; h < n_heads; h++) {
		float *v = x + h * head_dim;
		if (style == ROPE_NEOX) {
			const uint32_t half = n_rot / 2;
			for (uint32_t i = 0; i < half; i++) {
				const float c = tab[2 * i], s = tab[2 * i + 1];
				const float x0 = v[i], x1 = v[i + half];
				v[i] = x0 * c - x1 * s;
				v[i + half] = x0 * s + x1 * c;
			}
		} else {
			for (uint32_t i = 0; i < n_rot; i += 2) {
				const float c = tab[i], s = tab[i + 1];
				const float x0 = v[i], x1 = v[i + 1];
				v[i] = x0 * c - x1 * s;
				v[i + 1] = x0 * s + x1 * c;
			}
		}
	}
}

/* Row `id` of the embedding matrix as f32 (ggml_get_rows). */
static void embed_row(const struct mat *m, int32_t id, float *out)
{
	const size_t n = m->cols;
	const uint8_t *row = m->data + (size_t)id * (m->nbytes / m->rows);
	switch (m->type) {
	case GGUF_TYPE_F32:
		memcpy(out, row, n * sizeof *out);
		break;
	case GGUF_TYPE_F16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h;
			memcpy(&h, row + 2 * i, 2);
			out[i] = bn_f16_to_f32(h);
		}
		break;
	case GGUF_TYPE_BF16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h;
			memcpy(&h, row + 2 * i, 2);
			out[i] = bn_bf16_to_f32(h);
		}
		break;
	case GGUF_TYPE_Q8_0:
		dequantize_q8_0_ref((const struct q8_0_block *)row, n, out);
		break;
	}
}

/* ---- activation forms ------------------------------------------------------------------------- */

static void act_invalidate(struct engine *e)
{
	e->act.src = NULL;
	e->act.ready = 0;
}

struct conv_task {
	struct engine *e;
	enum form form;
	const float *x;
	size_t n, k;
	void *dst;
};

static void conv_rows(void *arg, unsigned chunk, unsigned nchunks)
{
	struct conv_task *t = arg;
	for (size_t r = chunk; r < t->n; r += nchunks) {
		const float *x = t->x + r * t->k;
		switch (t->form) {
		case FORM_F16:
			t->e->ops->f32_to_f16(x, (uint16_t *)t->dst + r * t->k, t->k);
			break;
		case FORM_BF16:
			for (size_t i = 0; i < t->k; i++)
				((uint16_t *)t->dst)[r * t->k + i] = bn_f32_to_bf16(x[i]);
			break;
		case FORM_Q8_0:
			quantize_q8_0_ref(x, t->k, (struct q8_0_block *)t->dst + r * (t->k / QK8_0));
			break;
		default:
			break;
		}
	}
}

/* Makes sure the activation buffer of `form` holds x (n rows of k) converted. */
static int act_prepare(struct engine *e, enum form form, const float *x, size_t n, size_t k, struct bn_err *err)
{
	struct actstate *a = &e->act;
	if (a->src != x || a->n != n || a->k != k) {
		a->src = x;
		a->n = n;
		a->k = k;
		a->ready = 0;
	}
	if (form == FORM_F32 || form == FORM_LUT || (a->ready & (1u << form)))
		return 0;
	int rc = 0;
	if (form == FORM_I8S || form == FORM_Q8K) {
		rc = kern_quantize(e->kern, form == FORM_I8S ? KERN_W_I2S : KERN_W_TQ2_0, k, x, n, k,
				   e->s.form_buf[form], e->s.form_size[form], &a->kacts[form], err);
	} else {
		struct conv_task t = { e, form, x, n, k, e->s.form_buf[form] };
		if (n == 1)
			conv_rows(&t, 0, 1);
		else
			kern_parallel_chunks(e->kern, (unsigned)BN_MIN(n, e->max_chunks), conv_rows, &t);
	}
	if (rc == 0)
		a->ready |= 1u << form;
	return rc;
}

/* ---- matmul ----------------------------------------------------------------------------------- */

struct mm_task {
	struct engine *e;
	const struct wmat *w;
	const void *x;  /* the activations in w's form */
	size_t n;
	float *y;
};

/* Float-type matrices: each thread takes a contiguous range of rows (a multiple of 16, so no two
 * threads write the same cache line of a one-token output) and runs every token over it. */
static void mm_float_rows(void *arg, unsigned chunk, unsigned nchunks)
{
	struct mm_task *t = arg;
	const struct mat *m = t->w->m;
	const size_t rows = m->rows, k = m->cols, rb = m->nbytes / m->rows;
	size_t per = ((rows + nchunks - 1) / nchunks + 15) & ~(size_t)15;
	size_t r0 = per * chunk, r1 = BN_MIN(rows, r0 + per);
	const struct ops *ops = t->e->ops;
	if (r0 >= r1)
		return;
	if (t->w->kind == W_F16 && t->n == 1) { /* the f16 output head of every generated token */
		ops->gemv_f16((const uint16_t *)m->data + r0 * k, k, r1 - r0, t->x, t->y + r0);
		return;
	}
	for (size_t r = r0; r < r1; r++) {
		const uint8_t *wr = m->data + r * rb;
		for (size_t j = 0; j < t->n; j++) {
			float v;
			switch (t->w->kind) {
			case W_F32:
				v = ops->dot_f32((const float *)wr, (const float *)t->x + j * k, k);
				break;
			case W_F16:
				v = ops->dot_f16((const uint16_t *)wr, (const uint16_t *)t->x + j * k, k);
				break;
			case W_BF16:
				v = ops->dot_bf16((const uint16_t *)wr, (const uint16_t *)t->x + j * k, k);
				break;
			default: /* W_Q8_0 */
				v = ops->dot_q8_0((const struct q8_0_block *)wr,
						  (const struct q8_0_block *)t->x + j * (k / QK8_0), k);
				break;
			}
			t->y[j * rows + r] = v;
		}
	}
}

static void mm_lut_rows(void *arg, unsigned chunk, unsigned nchunks)
{
	struct mm_task *t = arg;
	lut_gemm_compute(&t->w->lw, (int64_t)t->n, t->y, t->x, (int)chunk, (int)nchunks);
}

/* y (n rows of w->m->rows) = x (n rows of w->m->cols) times W transposed, times W's scale. */
static int matmul(struct engine *e, const struct wmat *w, const float *x, size_t n, float *y, struct bn_err *err)
{
	const struct mat *m = w->m;
	int rc = act_prepare(e, w->form, x, n, m->cols, err);
	if (rc)
		return rc;
	struct mm_task t = { e, w, NULL, n, y };
	const bool serial = m->rows * m->cols * n < PAR_MIN;
	switch (w->kind) {
	case W_KERN:
		if (serial) {
			const struct kern_set *ks = kern_selected(e->kern);
			const struct kern_acts *a = &e->act.kacts[w->form];
			if (w->kw.type == KERN_W_I2S)
				ks->gemm_i2s(m->cols, m->data, m->rows, w->kw.scale, &a->i8s, n, y, m->rows);
			else if (w->kw.type == KERN_W_TQ1_0)
				ks->gemm_tq1(m->cols, (const struct tq1_block *)m->data, m->rows, a->q8k, n, y, m->rows);
			else
				ks->gemm_tq2(m->cols, (const struct tq2_block *)m->data, m->rows, a->q8k, n, y, m->rows);
		} else {
			rc = kern_matmul_q(e->kern, &w->kw, &e->act.kacts[w->form], y, m->rows, err);
		}
		break;
	case W_LUT:
		lut_gemm_prepare(e->lut, &w->lw, x, (int64_t)n, e->s.form_buf[FORM_LUT]);
		t.x = e->s.form_buf[FORM_LUT];
		if (serial)
			mm_lut_rows(&t, 0, 1);
		else
			kern_parallel_chunks(e->kern, (unsigned)BN_MIN((unsigned)(w->lw.kern->m / w->lw.kern->BM), e->max_chunks),
					     mm_lut_rows, &t);
		break;
	default:
		t.x = w->form == FORM_F32 ? (const void *)x : e->s.form_buf[w->form];
		if (serial)
			mm_float_rows(&t, 0, 1);
		else
			/* chunks of at least 64 rows: a thread the OS delays costs only its share */
			kern_parallel_chunks(e->kern, (unsigned)BN_MAX(1, BN_MIN(m->rows / 64, e->max_chunks)),
					     mm_float_rows, &t);
		break;
	}
	if (rc == 0 && m->scale != 1.0f)
		for (size_t i = 0; i < n * m->rows; i++)
			y[i] *= m->scale;
	return rc;
}

/* ---- attention -------------------------------------------------------------------------------- */

struct attn_task {
	struct engine *e;
	uint32_t layer, pos0;
	size_t first, n;  /* query rows first .. first+n-1 of the batch */
};

static void attn_rows(void *arg, unsigned chunk, unsigned nchunks)
{
	struct attn_task *t = arg;
	struct engine *e = t->e;
	const struct config *c = &e->model.cfg;
	const struct ops *ops = e->ops;
	const uint32_t hd = c->head_dim, n_q = config_n_q(c);
	const uint32_t group = c->n_head / c->n_head_kv;
	const float scale = 1.0f / sqrtf((float)hd);
	const size_t tasks = t->n * c->n_head;
	const size_t per = (tasks + nchunks - 1) / nchunks, i0 = per * chunk, i1 = BN_MIN(tasks, i0 + per);
	float *sc = e->s.scores + (size_t)chunk * e->n_ctx; /* chunks run at once have distinct numbers */
	uint16_t *q16 = e->s.q16 + (size_t)chunk * hd;
	for (size_t i = i0; i < i1; i++) {
		const size_t row = t->first + i / c->n_head, h = i % c->n_head;
		const size_t pos = t->pos0 + row; /* attends to positions 0 .. pos */
		const size_t at = kv_index(e, t->layer, (uint32_t)(h / group), 0);
		ops->f32_to_f16(e->s.q + row * n_q + h * hd, q16, hd);
		e->attn_head(q16, e->kv.k + at, e->kv.v + at, hd, pos + 1, hd, scale, sc, e->s.att + row * n_q + h * hd);
	}
}

/* ---- FFN activation --------------------------------------------------------------------------- */

struct ffn_task {
	const struct ops *ops;
	float *gate;
	const float *up;
	size_t n;
	enum ffn_act act;
};

static void ffn_rows(void *arg, unsigned chunk, unsigned nchunks)
{
	struct ffn_task *t = arg;
	/* chunks of whole 8-float vectors */
	const size_t per = ((t->n + nchunks - 1) / nchunks + 7) & ~(size_t)7;
	const size_t i0 = BN_MIN(t->n, per * chunk), i1 = BN_MIN(t->n, i0 + per);
	if (t->act == FFN_SILU) {
		t->ops->silu_mul(t->gate + i0, t->up + i0, i1 - i0);
		return;
	}
	for (size_t i = i0; i < i1; i++) { /* ggml_relu, ggml_sqr, then ggml_mul */
		const float r = t->gate[i] > 0.0f ? t->gate[i] : 0.0f;
		t->gate[i] = r * r * t->up[i];
	}
}

/* ---- the transformer -------------------------------------------------------------------------- */

/* Runs tokens[0..n) (n <= n_batch) at positions n_past..; writes n_out rows of logits. */
static int forward(struct engine *e, const int32_t *tokens, size_t n, struct bn_err *err)
{
	const struct config *c = &e->model.cfg;
	const struct weights *w = &e->model.w;
	struct runstate *s = &e->s;
	const size_t d = c->n_embd, n_q = config_n_q(c), n_kv = config_n_kv(c), ff = c->n_ff;
	const uint32_t pos0 = e->n_past;
	int rc;

	for (size_t t = 0; t < n; t++)
		embed_row(&w->tok_embd, tokens[t], s->x + t * d);
	rope_table(s->rope, pos0, n, c->n_rot, c->rope_base, c->rope_freq_scale);

	for (uint32_t il = 0; il < c->n_layer; il++) {
		const struct layer *L = &w->layers[il];
		const struct wlayer *W = &e->wl[il];
		/* In the last layer only the rows whose logits are wanted go past the K/V projections
		 * (llama.cpp's inp_out_ids). */
		const size_t first = (il + 1 == c->n_layer && !e->all_logits) ? n - 1 : 0, m = n - first;

		/* attention */
		for (size_t t = 0; t < n; t++)
			rmsnorm(e->ops, s->xb + t * d, s->x + t * d, L->attn_norm, d, c->rms_eps);
		act_invalidate(e);
		if ((rc = matmul(e, &W->wk, s->xb, n, s->k, err)) ||
		    (rc = matmul(e, &W->wv, s->xb, n, s->v, err)) ||
		    (rc = matmul(e, &W->wq, s->xb + first * d, m, s->q + first * n_q, err)))
			return rc;
		for (size_t t = 0; t < n; t++) {
			rope_apply(s->k + t * n_kv, c->n_head_kv, c->head_dim, c->n_rot, s->rope + t * c->n_rot, c->rope);
			for (uint32_t g = 0; g < c->n_head_kv; g++) {
				const size_t at = kv_index(e, il, g, pos0 + t);
				e->ops->f32_to_f16(s->k + t * n_kv + g * c->head_dim, e->kv.k + at, c->head_dim);
				e->ops->f32_to_f16(s->v + t * n_kv + g * c->head_dim, e->kv.v + at, c->head_dim);
			}
		}
		for (size_t t = first; t < n; t++)
			rope_apply(s->q + t * n_q, c->n_head, c->head_dim, c->n_rot, s->rope + t * c->n_rot, c->rope);
		struct attn_task at = { e, il, pos0, first, m };
		if (m * c->n_head * (pos0 + n) * c->head_dim < PAR_MIN)
			attn_rows(&at, 0, 1);
		else
			kern_parallel_chunks(e->kern, (unsigned)BN_MIN(m * c->n_head, e->max_chunks), attn_rows, &at);
		if (L->attn_sub_norm)
			for (size_t t = first; t < n; t++)
				rmsnorm(e->ops, s->att + t * n_q, s->att + t * n_q, L->attn_sub_norm, n_q, c->rms_eps);
		act_invalidate(e);
		if ((rc = matmul(e, &W->wo, s->att + first * n_q, m, s->xb + first * d, err)))
			return rc;
		for (size_t i = first * d; i < n * d; i++)
			s->x[i] += s->xb[i];

		/* feed-forward */
		for (size_t t = first; t < n; t++)
			rmsnorm(e->ops, s->xb + t * d, s->x + t * d, L->ffn_norm, d, c->rms_eps);
		act_invalidate(e);
		if ((rc = matmul(e, &W->gate, s->xb + first * d, m, s->hb, err)) ||
		    (rc = matmul(e, &W->up, s->xb + first * d, m, s->hb2, err)))
			return rc;
		struct ffn_task ft = { e->ops, s->hb, s->hb2, m * ff, c->act };
		if (m * ff < PAR_MIN / 16)
			ffn_rows(&ft, 0, 1);
		else
			kern_parallel_chunks(e->kern, e->max_chunks, ffn_rows, &ft);
		if (L->ffn_sub_norm)
			for (size_t t = 0; t < m; t++)
				rmsnorm(e->ops, s->hb + t * ff, s->hb + t * ff, L->ffn_sub_norm, ff, c->rms_eps);
		act_invalidate(e);
		if ((rc = matmul(e, &W->down, s->hb, m, s->xb + first * d, err)))
			return rc;
		for (size_t i = first * d; i < n * d; i++)
			s->x[i] += s->xb[i];
	}

	/* output head */
	const size_t first = e->all_logits ? 0 : n - 1, m = n - first;
	for (size_t t = first; t < n; t++)
		rmsnorm(e->ops, s->xb + t * d, s->x + t * d, w->output_norm, d, c->rms_eps);
	act_invalidate(e);
	if ((rc = matmul(e, &e->output, s->xb + first * d, m, s->logits, err)))
		return rc;
	e->n_out = m;
	return 0;
}

int engine_decode(struct engine *e, const int32_t *tokens, size_t n, struct bn_err *err)
{
	const uint32_t n_vocab = e->model.cfg.n_vocab;
	if (n == 0)
		return bn_seterr(err, BN_EINVAL, "no tokens to decode");
	if (e->all_logits && n > e->n_batch)
		return bn_seterr(err, BN_EINVAL, "%zu tokens with all logits: at most %u at a time", n, e->n_batch);
	if (n > e->n_ctx - e->n_past)
		return bn_seterr(err, BN_ERANGE, "context is full: %u of %u positions used, %zu more needed",
				 e->n_past, e->n_ctx, n);
	for (size_t i = 0; i < n; i++)
		if (tokens[i] < 0 || (uint32_t)tokens[i] >= n_vocab)
			return bn_seterr(err, BN_EINVAL, "token id %d is outside the vocabulary (%u tokens)",
					 tokens[i], n_vocab);
	for (size_t done = 0; done < n;) {
		if (bn_interrupted)
			return bn_seterr(err, BN_EINTR, "interrupted");
		size_t chunk = BN_MIN(n - done, (size_t)e->n_batch);
		int rc = forward(e, tokens + done, chunk, err);
		if (rc)
			return rc;
		e->n_past += (uint32_t)chunk;
		done += chunk;
	}
	return 0;
}

const float *engine_logits(const struct engine *e, size_t i)
{
	if (i >= e->n_out)
		return NULL;
	return e->s.logits + i * e->model.cfg.n_vocab;
}

void engine_reset(struct engine *e)
{
	e->n_past = 0;
}

/* ---- context shift ---------------------------------------------------------------------------- */

struct shift_task {
	struct engine *e;
	size_t n_keep, n_discard, n_move;  /* positions */
	const float *tab;                  /* (n_rot) cos, sin of position -n_discard */
};

/* Per (layer, KV head): K and V of positions n_keep+n_discard .. move down by n_discard, then each
 * moved K head is rotated by the table, pair by pair as rope_apply pairs them (f16 in and out,
 * as ggml_rope on the f16 cache computes it). */
static void shift_heads(void *arg, unsigned chunk, unsigned nchunks)
{
	const struct shift_task *t = arg;
	struct engine *e = t->e;
	const struct config *c = &e->model.cfg;
	const size_t heads = (size_t)c->n_layer * c->n_head_kv, hd = c->head_dim, half = c->n_rot / 2;
	const bool neox = c->rope == ROPE_NEOX;
	for (size_t h = chunk; h < heads; h += nchunks) {
		const size_t at = kv_index(e, (uint32_t)(h / c->n_head_kv), (uint32_t)(h % c->n_head_kv), t->n_keep);
		uint16_t *k = e->kv.k + at, *v = e->kv.v + at;
		memmove(k, k + t->n_discard * hd, t->n_move * hd * sizeof *k);
		memmove(v, v + t->n_discard * hd, t->n_move * hd * sizeof *v);
		for (size_t p = 0; p < t->n_move; p++) {
			uint16_t *x = k + p * hd;
			for (size_t j = 0; j < half; j++) {
				const size_t a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
				const float cs = t->tab[2 * j], sn = t->tab[2 * j + 1];
				const float x0 = bn_f16_to_f32(x[a]), x1 = bn_f16_to_f32(x[b]);
				x[a] = bn_f32_to_f16(x0 * cs - x1 * sn);
				x[b] = bn_f32_to_f16(x0 * sn + x1 * cs);
			}
		}
	}
}

int engine_shift(struct engine *e, uint32_t n_keep, uint32_t n_discard, struct bn_err *err)
{
	const struct config *c = &e->model.cfg;
	if (n_discard == 0 || n_keep > e->n_past || n_discard > e->n_past - n_keep)
		return bn_seterr(err, BN_EINVAL,
				 "context shift: cannot keep %u and discard %u of the %u positions used "
				 "(at least one discarded, none past the end)", n_keep, n_discard, e->n_past);
	/* the table is row 0 of the forward pass's, which recomputes it on every call */
	rope_table(e->s.rope, -(int64_t)n_discard, 1, c->n_rot, c->rope_base, c->rope_freq_scale);
	struct shift_task t = { e, n_keep, n_discard, e->n_past - n_keep - n_discard, e->s.rope };
	const size_t heads = (size_t)c->n_layer * c->n_head_kv;
	if (t.n_move * heads * c->head_dim < PAR_MIN / 16)
		shift_heads(&t, 0, 1);
	else
		kern_parallel_chunks(e->kern, (unsigned)BN_MIN(heads, e->max_chunks), shift_heads, &t);
	e->n_past -= n_discard;
	return 0;
}

/* ---- build / free ----------------------------------------------------------------------------- */

static int bind_mat(struct engine *e, const struct mat *m, struct wmat *w, struct bn_err *err)
{
	w->m = m;
	int rc = 0;
	switch (m->type) {
	case GGUF_TYPE_F32: w->kind = W_F32; w->form = FORM_F32; break;
	case GGUF_TYPE_F16: w->kind = W_F16; w->form = FORM_F16; break;
	case GGUF_TYPE_BF16: w->kind = W_BF16; w->form = FORM_BF16; break;
	case GGUF_TYPE_Q8_0: w->kind = W_Q8_0; w->form = FORM_Q8_0; break;
	case GGUF_TYPE_I2_S:
	case GGUF_TYPE_TQ1_0:
	case GGUF_TYPE_TQ2_0: {
		enum kern_wtype kt = m->type == GGUF_TYPE_I2_S ? KERN_W_I2S : m->type == GGUF_TYPE_TQ1_0 ? KERN_W_TQ1_0 : KERN_W_TQ2_0;
		w->kind = W_KERN;
		w->form = kt == KERN_W_I2S ? FORM_I8S : FORM_Q8K;
		rc = kern_weight_init(&w->kw, kt, m->cols, m->rows, m->data, m->nbytes, err);
		break;
	}
	case GGUF_TYPE_TL1:
	case GGUF_TYPE_TL2: {
		const char *q = m->type == GGUF_TYPE_TL1 ? "TL1" : "TL2";
		w->kind = W_LUT;
		w->form = FORM_LUT;
		if (!e->lut)
			return bn_seterr(err, BN_EUNSUPPORTED,
					 "%s: %s is %s, but this bitnet-run has no TL kernels; build it for the model "
					 "with make compile QUANT=%s MODEL=<model>", e->model.path, m->name, q,
					 m->type == GGUF_TYPE_TL1 ? "tl1" : "tl2");
		if (!e->lut_checked) {
			/* once per model: the CPU has the kernels' instruction set, and the tile parameters
			 * the converter recorded (if it did) are those the kernels were generated for */
			if ((rc = lut_kernels_check(e->lut, err)))
				return bn_err_prefix(err, "%s", e->model.path);
			int64_t kv = gguf_find_key(e->model.gguf, LUT_GGUF_KERNEL_CONFIG);
			struct gguf_str s;
			if (kv >= 0) {
				if ((rc = gguf_get_str(e->model.gguf, kv, &s, err)) ||
				    (rc = lut_kernels_match_config(e->lut, s.data, s.len, err)))
					return bn_err_prefix(err, "%s", e->model.path);
			}
			e->lut_checked = true;
		}
		rc = lut_weight_init(&w->lw, e->lut, m->type == GGUF_TYPE_TL1 ? LUT_TL1 : LUT_TL2, (int64_t)m->rows,
				     (int64_t)m->cols, m->data, m->nbytes, m->name, err);
		break;
	}
	default:
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s: type %u", e->model.path, m->name, m->type);
	}
	if (rc)
		return bn_err_prefix(err, "%s: %s", e->model.path, m->name);
	return 0;
}

/* Bytes of the activation buffer of form f for n rows of k values (and, for FORM_LUT, matrix w). */
static size_t form_bytes(const struct wmat *w, size_t n)
{
	const size_t k = w->m->cols;
	switch (w->form) {
	case FORM_F16:
	case FORM_BF16: return n * k * 2;
	case FORM_Q8_0: return n * (k / QK8_0) * sizeof(struct q8_0_block);
	case FORM_I8S: return kern_acts_size(KERN_W_I2S, k, n);
	case FORM_Q8K: return kern_acts_size(KERN_W_TQ2_0, k, n);
	case FORM_LUT: return lut_scratch_size(w->lw.kern, (int64_t)n);
	default: return 0;
	}
}

static void *zalloc(size_t n, bool *fail)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		*fail = true;
	return p;
}

static int build_runstate(struct engine *e, struct bn_err *err)
{
	const struct config *c = &e->model.cfg;
	struct runstate *s = &e->s;
	const size_t B = e->n_batch, nt = e->max_chunks;
	bool fail = false;
	s->x = zalloc(B * c->n_embd * sizeof(float), &fail);
	s->xb = zalloc(B * c->n_embd * sizeof(float), &fail);
	s->q = zalloc(B * config_n_q(c) * sizeof(float), &fail);
	s->k = zalloc(B * config_n_kv(c) * sizeof(float), &fail);
	s->v = zalloc(B * config_n_kv(c) * sizeof(float), &fail);
	s->att = zalloc(B * config_n_q(c) * sizeof(float), &fail);
	s->hb = zalloc(B * c->n_ff * sizeof(float), &fail);
	s->hb2 = zalloc(B * c->n_ff * sizeof(float), &fail);
	s->logits = zalloc((e->all_logits ? B : 1) * c->n_vocab * sizeof(float), &fail);
	s->rope = zalloc(B * c->n_rot * sizeof(float), &fail);
	s->scores = zalloc(nt * e->n_ctx * sizeof(float), &fail);
	s->q16 = zalloc(nt * c->head_dim * sizeof(uint16_t), &fail);
	/* one buffer per activation form, as large as its largest use */
	const struct wmat *all[8];
	for (uint32_t il = 0; il <= c->n_layer; il++) {
		size_t na = 0;
		if (il == c->n_layer) {
			all[na++] = &e->output;
		} else {
			const struct wlayer *W = &e->wl[il];
			const struct wmat *l[] = { &W->wq, &W->wk, &W->wv, &W->wo, &W->gate, &W->up, &W->down };
			for (size_t i = 0; i < BN_ARRAY_LEN(l); i++)
				all[na++] = l[i];
		}
		for (size_t i = 0; i < na; i++) {
			size_t b = form_bytes(all[i], B);
			if (b > s->form_size[all[i]->form])
				s->form_size[all[i]->form] = b;
		}
	}
	for (int f = 0; f < N_FORMS; f++)
		if (s->form_size[f])
			s->form_buf[f] = zalloc(s->form_size[f], &fail);
	/* calloc'd, so untouched positions cost no memory until the context reaches them */
	size_t kvn = (size_t)c->n_layer * e->n_ctx * config_n_kv(c);
	e->kv.k = zalloc(kvn * sizeof(uint16_t), &fail);
	e->kv.v = zalloc(kvn * sizeof(uint16_t), &fail);
	if (fail)
		return bn_seterr(err, BN_ENOMEM, "out of memory for the run state and a %u-token KV cache", e->n_ctx);
	return 0;
}

static void free_runstate(struct engine *e)
{
	struct runstate *s = &e->s;
	free(s->x);
	free(s->xb);
	free(s->q);
	free(s->k);
	free(s->v);
	free(s->att);
	free(s->hb);
	free(s->hb2);
	free(s->logits);
	free(s->rope);
	free(s->scores);
	free(s->q16);
	for (int f = 0; f < N_FORMS; f++)
		free(s->form_buf[f]);
	free(e->kv.k);
	free(e->kv.v);
}

int engine_open(struct engine **out, const char *path, const struct engine_opts *o, struct bn_err *err)
{
	*out = NULL;
	struct engine *e = calloc(1, sizeof *e);
	if (!e)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int rc = model_open(&e->model, path, err);
	if (rc) {
		free(e);
		return rc;
	}
	const struct config *c = &e->model.cfg;
	e->lut = o->lut;
	e->all_logits = o->all_logits;
	e->n_ctx = o->n_ctx ? o->n_ctx : c->n_ctx_train;
	e->n_batch = o->n_batch ? o->n_batch : ENGINE_DEFAULT_BATCH;
	if (e->n_ctx > MODEL_MAX_CTX || e->n_batch > 65536) {
		rc = bn_seterr(err, BN_EINVAL, "context %u or batch %u too large", e->n_ctx, e->n_batch);
		goto fail;
	}
	struct kern_opts ko = { .isa = o->isa, .threads = o->threads };
	if ((rc = kern_open(&e->kern, &ko, err)))
		goto fail;
	e->ops = ops_select(kern_ctx_cpu(e->kern)->features);
	e->max_chunks = 8 * kern_threads(e->kern);
	e->attn_head = c->head_dim % 8 == 0 ? e->ops->attn_head_f16 : ops_ref.attn_head_f16;
	e->wl = calloc(c->n_layer, sizeof *e->wl);
	if (!e->wl) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t il = 0; il < c->n_layer; il++) {
		const struct layer *L = &e->model.w.layers[il];
		struct wlayer *W = &e->wl[il];
		if ((rc = bind_mat(e, &L->wq, &W->wq, err)) || (rc = bind_mat(e, &L->wk, &W->wk, err)) ||
		    (rc = bind_mat(e, &L->wv, &W->wv, err)) || (rc = bind_mat(e, &L->wo, &W->wo, err)) ||
		    (rc = bind_mat(e, &L->ffn_gate, &W->gate, err)) || (rc = bind_mat(e, &L->ffn_up, &W->up, err)) ||
		    (rc = bind_mat(e, &L->ffn_down, &W->down, err)))
			goto fail;
	}
	if ((rc = bind_mat(e, &e->model.w.output, &e->output, err)) || (rc = build_runstate(e, err)))
		goto fail;
	*out = e;
	return 0;
fail:
	engine_close(e);
	return rc;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	free_runstate(e);
	free(e->wl);
	kern_close(e->kern);
	model_close(&e->model);
	free(e);
}

const struct model *engine_model(const struct engine *e)
{
	return &e->model;
}

uint32_t engine_n_ctx(const struct engine *e)
{
	return e->n_ctx;
}

uint32_t engine_n_past(const struct engine *e)
{
	return e->n_past;
}

unsigned engine_threads(const struct engine *e)
{
	return kern_threads(e->kern);
}

uint64_t engine_kv_bytes(const struct engine *e)
{
	const struct config *c = &e->model.cfg;
	return 2ull * c->n_layer * e->n_ctx * config_n_kv(c) * sizeof(uint16_t);
}

const char *engine_describe(const struct engine *e, char *buf, size_t size)
{
	snprintf(buf, size, "%s kernels, %s vector ops, %u thread%s", kern_selected(e->kern)->name, e->ops->name,
		 kern_threads(e->kern), kern_threads(e->kern) == 1 ? "" : "s");
	return buf;
}

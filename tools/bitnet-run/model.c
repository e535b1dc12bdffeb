/* Loading a model: the GGUF's KVs become struct config, its tensors struct weights, after
 * checking every shape and type against the hyperparameters (model.h).  Only the shared core
 * is used here, so the fuzz target can build this file on its own. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"

/* ---- KV helpers --------------------------------------------------------------------------- */

int model_kv_uint(const struct gguf_reader *r, const char *key, bool required, bool allow_zero,
		  uint64_t max, uint32_t *out, const char *what, struct bn_err *err)
{
	int64_t kv = gguf_find_key(r, key);
	if (kv < 0) {
		if (required)
			return bn_seterr(err, BN_EFORMAT, "%s: key %s is missing", what, key);
		return -BN_ENOENT;
	}
	struct gguf_value v;
	int rc = gguf_get_value(r, kv, &v, err);
	if (rc)
		return rc;
	uint64_t u;
	switch (v.type) {
	case GGUF_VTYPE_UINT8: u = v.v.u8; break;
	case GGUF_VTYPE_UINT16: u = v.v.u16; break;
	case GGUF_VTYPE_UINT32: u = v.v.u32; break;
	case GGUF_VTYPE_UINT64: u = v.v.u64; break;
	case GGUF_VTYPE_INT8: u = v.v.i8 < 0 ? UINT64_MAX : (uint64_t)v.v.i8; break;
	case GGUF_VTYPE_INT16: u = v.v.i16 < 0 ? UINT64_MAX : (uint64_t)v.v.i16; break;
	case GGUF_VTYPE_INT32: u = v.v.i32 < 0 ? UINT64_MAX : (uint64_t)v.v.i32; break;
	case GGUF_VTYPE_INT64: u = v.v.i64 < 0 ? UINT64_MAX : (uint64_t)v.v.i64; break;
	default:
		return bn_seterr(err, BN_EFORMAT, "%s: %s: type is %s, expected an integer", what, key,
				 gguf_vtype_name(v.type) ? gguf_vtype_name(v.type) : "unknown");
	}
	if ((u == 0 && !allow_zero) || u > max)
		return bn_seterr(err, BN_EFORMAT, "%s: %s = %lld is out of range (%s..%llu)", what, key,
				 u == UINT64_MAX ? -1LL : (long long)u, allow_zero ? "0" : "1",
				 (unsigned long long)max);
	*out = (uint32_t)u;
	return 0;
}

/* A float KV (f32, or f64 narrowed); absent -> *out untouched, 0 (or an error if required). */
static int kv_float(const struct gguf_reader *r, const char *key, bool required, float *out,
		    const char *what, struct bn_err *err)
{
	int64_t kv = gguf_find_key(r, key);
	if (kv < 0) {
		if (required)
			return bn_seterr(err, BN_EFORMAT, "%s: key %s is missing", what, key);
		return 0;
	}
	struct gguf_value v;
	int rc = gguf_get_value(r, kv, &v, err);
	if (rc)
		return rc;
	double d;
	if (v.type == GGUF_VTYPE_FLOAT32)
		d = v.v.f32;
	else if (v.type == GGUF_VTYPE_FLOAT64)
		d = v.v.f64;
	else
		return bn_seterr(err, BN_EFORMAT, "%s: %s: type is %s, expected f32", what, key,
				 gguf_vtype_name(v.type) ? gguf_vtype_name(v.type) : "unknown");
	if (!isfinite(d))
		return bn_seterr(err, BN_EFORMAT, "%s: %s is not a finite number", what, key);
	*out = (float)d;
	return 0;
}

/* A string KV copied into buf (NUL-terminated); absent -> buf[0] = 0. */
static int kv_string(const struct gguf_reader *r, const char *key, char *buf, size_t size,
		     const char *what, struct bn_err *err)
{
	buf[0] = 0;
	int64_t kv = gguf_find_key(r, key);
	if (kv < 0)
		return 0;
	struct gguf_str s;
	int rc = gguf_get_str(r, kv, &s, err);
	if (rc)
		return bn_err_prefix(err, "%s", what);
	if (s.len >= size || memchr(s.data, 0, s.len))
		return bn_seterr(err, BN_EFORMAT, "%s: %s: unexpected value of %zu bytes", what, key, s.len);
	memcpy(buf, s.data, s.len);
	buf[s.len] = 0;
	return 0;
}

const char *model_arch_name(enum model_arch a)
{
	switch (a) {
	case ARCH_BITNET: return "bitnet";
	case ARCH_BITNET_B158: return "bitnet-b1.58";
	case ARCH_LLAMA: return "llama";
	}
	return "?";
}

/* ---- hyperparameters ------------------------------------------------------------------------ */

static int load_config(struct config *c, const struct gguf_reader *r, const char *what,
		       struct bn_err *err)
{
	char key[160], act[32];
	int rc;
	memset(c, 0, sizeof *c);
	if ((rc = kv_string(r, "general.architecture", c->arch_name, sizeof c->arch_name, what, err)))
		return rc;
	if (!c->arch_name[0])
		return bn_seterr(err, BN_EFORMAT, "%s: key general.architecture is missing; not a model file", what);
	const char *a = c->arch_name;
	if (strcmp(a, "bitnet") == 0) {
		c->arch = ARCH_BITNET;
	} else if (strcmp(a, "bitnet-b1.58") == 0 || strcmp(a, "bitnet-25") == 0) {
		c->arch = ARCH_BITNET_B158;
	} else if (strcmp(a, "llama") == 0) {
		c->arch = ARCH_LLAMA;
	} else {
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "%s: architecture '%s' is not supported; bitnet-run runs bitnet, "
				 "bitnet-b1.58, bitnet-25 and llama", what, a);
	}
	c->sub_norms = c->arch != ARCH_LLAMA;
	c->rope = c->arch == ARCH_LLAMA ? ROPE_NORM : ROPE_NEOX;
	c->act = c->arch == ARCH_BITNET_B158 ? FFN_RELU2 : FFN_SILU;

#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
	if ((rc = model_kv_uint(r, KEY("block_count"), true, false, MODEL_MAX_LAYERS, &c->n_layer, what, err)) ||
	    (rc = model_kv_uint(r, KEY("embedding_length"), true, false, MODEL_MAX_EMBD, &c->n_embd, what, err)) ||
	    (rc = model_kv_uint(r, KEY("feed_forward_length"), true, false, MODEL_MAX_FF, &c->n_ff, what, err)) ||
	    (rc = model_kv_uint(r, KEY("attention.head_count"), true, false, MODEL_MAX_HEADS, &c->n_head, what, err)) ||
	    (rc = model_kv_uint(r, KEY("context_length"), true, false, MODEL_MAX_CTX, &c->n_ctx_train, what, err)))
		return rc;
	c->n_head_kv = c->n_head;
	rc = model_kv_uint(r, KEY("attention.head_count_kv"), false, false, MODEL_MAX_HEADS, &c->n_head_kv, what, err);
	if (rc && rc != -BN_ENOENT)
		return rc;
	if (c->n_head % c->n_head_kv)
		return bn_seterr(err, BN_EFORMAT, "%s: %u attention heads are not a multiple of %u KV heads",
				 what, c->n_head, c->n_head_kv);
	if (c->n_embd % c->n_head)
		return bn_seterr(err, BN_EFORMAT, "%s: embedding length %u is not a multiple of %u heads",
				 what, c->n_embd, c->n_head);
	c->head_dim = c->n_embd / c->n_head;
	uint32_t kl = 0, vl = 0;
	rc = model_kv_uint(r, KEY("attention.key_length"), false, false, MODEL_MAX_HEAD_DIM, &kl, what, err);
	if (rc && rc != -BN_ENOENT)
		return rc;
	rc = model_kv_uint(r, KEY("attention.value_length"), false, false, MODEL_MAX_HEAD_DIM, &vl, what, err);
	if (rc && rc != -BN_ENOENT)
		return rc;
	if (kl || vl) {
		if (kl != vl)
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: key length %u differs from value length %u",
					 what, kl, vl);
		c->head_dim = kl;
	}
	if (c->head_dim > MODEL_MAX_HEAD_DIM || c->head_dim % 2)
		return bn_seterr(err, BN_EFORMAT, "%s: head size %u is odd or too large", what, c->head_dim);
	if (c->sub_norms && config_n_q(c) != c->n_embd)
		return bn_seterr(err, BN_EFORMAT, "%s: %u heads of %u do not make the embedding length %u",
				 what, c->n_head, c->head_dim, c->n_embd);
	c->n_rot = c->head_dim;
	rc = model_kv_uint(r, KEY("rope.dimension_count"), false, false, MODEL_MAX_HEAD_DIM, &c->n_rot, what, err);
	if (rc && rc != -BN_ENOENT)
		return rc;
	if (c->n_rot > c->head_dim || c->n_rot % 2)
		return bn_seterr(err, BN_EFORMAT, "%s: rope dimension count %u is odd or exceeds the head size %u",
				 what, c->n_rot, c->head_dim);
	if (c->arch == ARCH_LLAMA && c->n_rot != c->head_dim)
		return bn_seterr(err, BN_EFORMAT, "%s: llama needs rope.dimension_count = head size (%u, got %u)",
				 what, c->head_dim, c->n_rot);
	c->rope_base = 10000.0f;
	if ((rc = kv_float(r, KEY("rope.freq_base"), false, &c->rope_base, what, err)) ||
	    (rc = kv_float(r, KEY("attention.layer_norm_rms_epsilon"), true, &c->rms_eps, what, err)))
		return rc;
	if (!(c->rope_base > 0) || !(c->rms_eps >= 0))
		return bn_seterr(err, BN_EFORMAT, "%s: rope.freq_base %g or rms epsilon %g out of range", what,
				 c->rope_base, c->rms_eps);
	c->rope_freq_scale = 1.0f;
	char scaling[32];
	if ((rc = kv_string(r, KEY("rope.scaling.type"), scaling, sizeof scaling, what, err)))
		return rc;
	if (scaling[0] && strcmp(scaling, "none") != 0) {
		if (strcmp(scaling, "linear") != 0)
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: rope scaling '%s' is not supported (linear only)",
					 what, scaling);
		float factor = 0.0f;
		if ((rc = kv_float(r, KEY("rope.scaling.factor"), false, &factor, what, err)))
			return rc;
		if (factor < 0)
			return bn_seterr(err, BN_EFORMAT, "%s: rope scaling factor %g is negative", what, factor);
		if (factor > 0)
			c->rope_freq_scale = 1.0f / factor;
	}
	/* mainline's bitnet reads the FFN activation from here (BitNet-b1.58-2B-4T) */
	if ((rc = kv_string(r, KEY("hidden_activation"), act, sizeof act, what, err)))
		return rc;
	if (act[0]) {
		if (strcmp(act, "silu") == 0 && c->arch != ARCH_BITNET_B158)
			c->act = FFN_SILU;
		else if (strcmp(act, "relu2") == 0 && c->arch != ARCH_LLAMA)
			c->act = FFN_RELU2;
		else
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s = '%s' is not supported for %s", what, key,
					 act, a);
	}
#undef KEY
	uint64_t n_tokens = 0;
	int64_t kv = gguf_find_key(r, "tokenizer.ggml.tokens");
	if (kv < 0)
		return bn_seterr(err, BN_EFORMAT, "%s: key tokenizer.ggml.tokens is missing", what);
	if ((rc = gguf_get_arr(r, kv, GGUF_VTYPE_STRING, &n_tokens, err)))
		return bn_err_prefix(err, "%s", what);
	if (n_tokens == 0 || n_tokens > MODEL_MAX_VOCAB)
		return bn_seterr(err, BN_EFORMAT, "%s: %llu tokens in tokenizer.ggml.tokens", what,
				 (unsigned long long)n_tokens);
	c->n_vocab = (uint32_t)n_tokens;
	uint32_t vs = 0;
	snprintf(key, sizeof key, "%s.vocab_size", a);
	rc = model_kv_uint(r, key, false, false, MODEL_MAX_VOCAB, &vs, what, err);
	if (rc && rc != -BN_ENOENT)
		return rc;
	if (vs && vs != c->n_vocab)
		return bn_seterr(err, BN_EFORMAT, "%s: %s = %u but the tokenizer has %u tokens", what, key, vs,
				 c->n_vocab);
	return 0;
}

/* ---- tensors ---------------------------------------------------------------------------------- */

static const char *type_name(uint32_t t)
{
	const char *n = gguf_type_name(t);
	return n ? n : "?";
}

static bool type_allowed(uint32_t t, const uint32_t *ok, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ok[i] == t)
			return true;
	return false;
}

static const uint32_t proj_types[] = { GGUF_TYPE_F32, GGUF_TYPE_F16, GGUF_TYPE_BF16, GGUF_TYPE_Q8_0,
				       GGUF_TYPE_I2_S, GGUF_TYPE_TQ1_0, GGUF_TYPE_TQ2_0, GGUF_TYPE_TL1,
				       GGUF_TYPE_TL2 };
static const uint32_t embd_types[] = { GGUF_TYPE_F32, GGUF_TYPE_F16, GGUF_TYPE_BF16, GGUF_TYPE_Q8_0 };

/* The tensor called name with exactly the extents ne0 x ne1 (ne1 = 1 for vectors), or NULL with
 * err set (or, if optional and absent, NULL with err untouched). */
static const struct gguf_tensor *get_tensor(const struct gguf_reader *r, const char *name, uint64_t ne0,
					    uint64_t ne1, bool optional, const char *what, struct bn_err *err)
{
	int64_t i = gguf_find_tensor(r, name);
	if (i < 0) {
		if (!optional)
			bn_seterr(err, BN_EFORMAT, "%s: tensor %s is missing", what, name);
		return NULL;
	}
	const struct gguf_tensor *t = gguf_tensor(r, (size_t)i);
	if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
		bn_seterr(err, BN_EFORMAT, "%s: %s: shape [%llu, %llu, %llu, %llu], expected [%llu, %llu]", what,
			  name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
			  (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (unsigned long long)ne0,
			  (unsigned long long)ne1);
		return NULL;
	}
	return t;
}

static int get_vec(const struct gguf_reader *r, const char *name, uint64_t n, const float **out,
		   const char *what, struct bn_err *err)
{
	const struct gguf_tensor *t = get_tensor(r, name, n, 1, false, what, err);
	if (!t)
		return -BN_EFORMAT;
	if (t->type != GGUF_TYPE_F32)
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s: type %s, expected F32", what, name,
				 type_name(t->type));
	*out = (const float *)t->data;
	return 0;
}

/* Matrix `name` of rows x cols whose type is in ok[]; the optional "<base>.scale" too. */
static int get_mat(const struct gguf_reader *r, const char *name, uint64_t rows, uint64_t cols,
		   const uint32_t *ok, size_t n_ok, struct mat *m, const char *what, struct bn_err *err)
{
	const struct gguf_tensor *t = get_tensor(r, name, cols, rows, false, what, err);
	if (!t)
		return -BN_EFORMAT;
	if (!type_allowed(t->type, ok, n_ok))
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s: type %s is not supported here", what, name,
				 type_name(t->type));
	if (t->type == GGUF_TYPE_I2_S && cols % 128)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: I2_S needs a row length that is a multiple of 128, not %llu",
				 what, name, (unsigned long long)cols);
	if ((t->type == GGUF_TYPE_TQ1_0 || t->type == GGUF_TYPE_TQ2_0) && cols % 256)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: %s needs a row length that is a multiple of 256", what,
				 name, type_name(t->type));
	m->name = t->name;
	m->type = t->type;
	m->rows = rows;
	m->cols = cols;
	m->data = t->data;
	m->nbytes = t->nbytes;
	m->scale = 1.0f;
	/* "blk.0.attn_q.weight" -> "blk.0.attn_q.scale" */
	char sname[GGUF_MAX_NAME + 16];
	size_t len = strlen(name);
	if (len > 7 && strcmp(name + len - 7, ".weight") == 0 && len - 7 + 7 < sizeof sname) {
		snprintf(sname, sizeof sname, "%.*s.scale", (int)(len - 7), name);
		struct bn_err e2;
		const struct gguf_tensor *s = get_tensor(r, sname, 1, 1, true, what, &e2);
		if (!s && gguf_find_tensor(r, sname) >= 0) {
			*err = e2;
			return -BN_EFORMAT;
		}
		if (s) {
			if (s->type != GGUF_TYPE_F32)
				return bn_seterr(err, BN_EUNSUPPORTED, "%s: %s: type %s, expected F32", what,
						 sname, type_name(s->type));
			memcpy(&m->scale, s->data, sizeof m->scale);
			if (!isfinite(m->scale))
				return bn_seterr(err, BN_EFORMAT, "%s: %s is not finite", what, sname);
		}
	}
	return 0;
}

static int load_layer(const struct gguf_reader *r, const struct config *c, uint32_t il, struct layer *l,
		      const char *what, struct bn_err *err)
{
	char n[GGUF_MAX_NAME + 1];
	const uint64_t d = c->n_embd, q = config_n_q(c), kv = config_n_kv(c), ff = c->n_ff;
	int rc;
#define NAME(s) (snprintf(n, sizeof n, "blk.%u.%s", il, s), n)
#define MAT(field, s, rows, cols)                                                                     \
	if ((rc = get_mat(r, NAME(s), rows, cols, proj_types, BN_ARRAY_LEN(proj_types), &l->field, what, err))) \
		return rc;
	if ((rc = get_vec(r, NAME("attn_norm.weight"), d, &l->attn_norm, what, err)) ||
	    (rc = get_vec(r, NAME("ffn_norm.weight"), d, &l->ffn_norm, what, err)))
		return rc;
	if (c->sub_norms) {
		if ((rc = get_vec(r, NAME("attn_sub_norm.weight"), q, &l->attn_sub_norm, what, err)) ||
		    (rc = get_vec(r, NAME("ffn_sub_norm.weight"), ff, &l->ffn_sub_norm, what, err)))
			return rc;
	}
	MAT(wq, "attn_q.weight", q, d)
	MAT(wk, "attn_k.weight", kv, d)
	MAT(wv, "attn_v.weight", kv, d)
	MAT(wo, "attn_output.weight", d, q)
	MAT(ffn_gate, "ffn_gate.weight", ff, d)
	MAT(ffn_up, "ffn_up.weight", ff, d)
	MAT(ffn_down, "ffn_down.weight", d, ff)
#undef MAT
#undef NAME
	return 0;
}

int model_load(struct model *m, struct gguf_reader *r, const char *what, struct bn_err *err)
{
	memset(m, 0, sizeof *m);
	m->gguf = r;
	m->path = what;
	struct config *c = &m->cfg;
	struct weights *w = &m->w;
	int rc = load_config(c, r, what, err);
	if (rc)
		goto fail;
	if ((rc = get_mat(r, "token_embd.weight", c->n_vocab, c->n_embd, embd_types, BN_ARRAY_LEN(embd_types),
			  &w->tok_embd, what, err)) ||
	    (rc = get_vec(r, "output_norm.weight", c->n_embd, &w->output_norm, what, err)))
		goto fail;
	if (gguf_find_tensor(r, "output.weight") >= 0) {
		if ((rc = get_mat(r, "output.weight", c->n_vocab, c->n_embd, embd_types, BN_ARRAY_LEN(embd_types),
				  &w->output, what, err)))
			goto fail;
	} else {
		w->output = w->tok_embd;
		w->tied = true;
	}
	w->layers = calloc(c->n_layer, sizeof *w->layers);
	if (!w->layers) {
		rc = bn_seterr(err, BN_ENOMEM, "%s: out of memory", what);
		goto fail;
	}
	for (uint32_t il = 0; il < c->n_layer; il++)
		if ((rc = load_layer(r, c, il, &w->layers[il], what, err)))
			goto fail;
	return 0;
fail:
	model_close(m);
	return rc;
}

int model_open(struct model *m, const char *path, struct bn_err *err)
{
	memset(m, 0, sizeof *m);
	struct gguf_reader *r = gguf_open(path, err);
	if (!r)
		return -(err && err->code ? err->code : BN_EIO);
	return model_load(m, r, path, err);
}

void model_close(struct model *m)
{
	if (!m)
		return;
	free(m->w.layers);
	gguf_close(m->gguf);
	memset(m, 0, sizeof *m);
}

/* ---- sizes ------------------------------------------------------------------------------------ */

static uint64_t mat_row_bytes(const struct mat *m)
{
	return m->rows ? m->nbytes / m->rows : 0;
}

uint64_t model_bytes_per_token(const struct model *m)
{
	const struct config *c = &m->cfg;
	uint64_t b = mat_row_bytes(&m->w.tok_embd) + m->w.output.nbytes + 4ull * c->n_embd;
	for (uint32_t il = 0; il < c->n_layer; il++) {
		const struct layer *l = &m->w.layers[il];
		b += l->wq.nbytes + l->wk.nbytes + l->wv.nbytes + l->wo.nbytes + l->ffn_gate.nbytes +
		     l->ffn_up.nbytes + l->ffn_down.nbytes;
		b += 4ull * (2ull * c->n_embd + (c->sub_norms ? config_n_q(c) + c->n_ff : 0));
	}
	return b;
}

uint64_t model_weight_bytes(const struct model *m)
{
	uint64_t b = 0;
	for (size_t i = 0; i < gguf_n_tensors(m->gguf); i++)
		b += gguf_tensor(m->gguf, i)->nbytes;
	return b;
}

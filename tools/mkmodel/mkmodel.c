/* mkmodel's generator: the tensor list of a preset, the weights (a per-tensor LCG, streamed in
 * 1 MiB chunks), the safetensors shards and index, config.json and the tokenizer files.
 * Invariant: each tensor's bytes depend only on (preset, dtype, seed, its ordinal), never on the
 * shard or layout it lands in, so every layout of one model holds the same tensors. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_log.h"
#include "bn_progress.h"
#include "bn_util.h"
#include "mkmodel.h"
#include "pyjson.h"

enum fill {
	FILL_LCG,     /* base + k/4096 (the §13.1 values; norms use base 1) */
	FILL_TERNARY, /* scale * t, t = (k mod 3) - 1: ternary already, so weight_quant keeps it */
	FILL_PACKED,  /* U8, four 2-bit codes (k mod 3) per byte, rows M/4 apart (§5.3) */
	FILL_CONST,   /* every element = value (weight_scale) */
};

struct tensor {
	char name[96];
	enum st_dtype dtype;
	unsigned n_dims;
	uint64_t shape[2];  /* as stored: [M/4, K] for packed weights */
	enum fill fill;
	uint32_t seed;
	float value;        /* LCG base, ternary scale or the constant */
	unsigned shard;
	uint64_t bytes;
};

struct list {
	struct tensor *t;
	size_t n, cap;
};

uint32_t mk_seed(uint32_t ordinal, uint32_t seed)
{
	return (ordinal + 1u) * 2654435761u + seed * 2246822519u;
}

uint32_t mk_lcg_skip(uint32_t s, uint64_t n)
{
	/* Compose the affine map x -> a x + c with itself n times by squaring. */
	uint32_t a = 1664525u, c = 1013904223u, A = 1, C = 0;
	while (n) {
		if (n & 1) {
			A *= a;
			C = C * a + c;
		}
		c = c * (a + 1);
		a *= a;
		n >>= 1;
	}
	return A * s + C;
}

static int add(struct list *l, const char *name, enum st_dtype dt, unsigned n_dims, uint64_t d0,
	       uint64_t d1, enum fill fill, uint32_t seed, float value, struct bn_err *err)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct tensor *nt = realloc(l->t, cap * sizeof *nt);
		if (!nt)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		l->t = nt;
		l->cap = cap;
	}
	struct tensor *t = &l->t[l->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->dtype = dt;
	t->n_dims = n_dims;
	t->shape[0] = d0;
	t->shape[1] = n_dims > 1 ? d1 : 1;
	t->fill = fill;
	t->seed = seed;
	t->value = value;
	t->bytes = d0 * t->shape[1] * st_dtype_size(dt);
	return 0;
}

/* 2^-round(log2(sqrt(K))): a bf16-exact scale that keeps x . w near unit size. */
static float fan_in_scale(uint64_t k)
{
	return ldexpf(1.0f, -(int)lround(0.5 * log2((double)k)));
}

/* Builds the tensor list in ordinal order (§13.1 for the test vectors). */
static int build(const struct mk_opts *o, struct list *l, struct bn_err *err)
{
	const struct mk_preset *p = o->preset;
	const bool tv = p->tv != 0;
	const enum st_dtype dt = o->dtype;
	const uint64_t H = p->hidden, I = p->intermediate, V = p->vocab;
	const uint64_t hd = p->head_dim ? p->head_dim : p->hidden / p->heads;
	const uint64_t Q = p->heads * hd, KV = p->kv_heads * hd;
	uint32_t ord = 0;
	char nm[96];
	int rc;
#define SEED() mk_seed(ord++, o->seed)
	if ((rc = add(l, "model.embed_tokens.weight", dt, 2, V, H, FILL_LCG, SEED(), 0.0f, err)) ||
	    (rc = add(l, "model.norm.weight", dt, 1, H, 0, FILL_LCG, SEED(), 1.0f, err)))
		return rc;
	if (p->family == MK_LLAMA &&
	    (rc = add(l, "lm_head.weight", dt, 2, V, H, FILL_LCG, SEED(), 0.0f, err)))
		return rc;
	const struct {
		const char *name;
		uint64_t m, k;
	} proj[7] = {
		{ "self_attn.q_proj", Q, H }, { "self_attn.k_proj", KV, H },
		{ "self_attn.v_proj", KV, H }, { "self_attn.o_proj", H, Q },
		{ "mlp.gate_proj", I, H },     { "mlp.up_proj", I, H },
		{ "mlp.down_proj", H, I },
	};
	for (unsigned L = 0; L < o->layers; L++) {
		const char *norms[4] = { "input_layernorm", "post_attention_layernorm", NULL, NULL };
		if (p->family == MK_BITNET) {
			norms[2] = "self_attn.inner_attn_ln";
			norms[3] = "mlp.ffn_layernorm";
		} else if (p->family == MK_BITNET2B) {
			norms[2] = "self_attn.attn_sub_norm";
			norms[3] = "mlp.ffn_sub_norm";
		}
		for (int i = 0; i < 4 && norms[i]; i++) {
			snprintf(nm, sizeof nm, "model.layers.%u.%s.weight", L, norms[i]);
			if ((rc = add(l, nm, dt, 1, i == 3 ? I : H, 0, FILL_LCG, SEED(), 1.0f, err)))
				return rc;
		}
		for (int i = 0; i < 7; i++) {
			snprintf(nm, sizeof nm, "model.layers.%u.%s.weight", L, proj[i].name);
			uint64_t m = proj[i].m, k = proj[i].k;
			if (!p->packed) {
				rc = add(l, nm, dt, 2, m, k, tv ? FILL_LCG : FILL_TERNARY, SEED(),
					 tv ? 0.0f : fan_in_scale(k), err);
				if (rc)
					return rc;
				continue;
			}
			if (m % 4)
				return bn_seterr(err, BN_EINVAL, "%s: %llu rows cannot be packed 4 to a "
						 "byte", nm, (unsigned long long)m);
			if ((rc = add(l, nm, ST_U8, 2, m / 4, k, FILL_PACKED, SEED(), 0.0f, err)))
				return rc;
			/* weight_scale: 42.5 for tv-llama; otherwise chosen so the dequantized
			 * weights are about 1/sqrt(K) (divided by the scale, or multiplied). */
			float ws = tv ? 42.5f : p->scale == MK_SCALE_MUL ? fan_in_scale(k)
									  : 1.0f / fan_in_scale(k);
			snprintf(nm, sizeof nm, "model.layers.%u.%s.weight_scale", L, proj[i].name);
			if ((rc = add(l, nm, dt, 1, 1, 0, FILL_CONST, 0, ws, err)))
				return rc;
		}
	}
#undef SEED
	return 0;
}

/* ---- tensor data ---------------------------------------------------------------------------- */

struct sink {
	struct bn_out *out;
	uint8_t *buf;
	size_t n, cap;
	struct bn_progress *pg;
	uint64_t done;
};

static int flush(struct sink *s, struct bn_err *err)
{
	if (bn_interrupted)
		return bn_seterr(err, BN_EINTR, "%s: interrupted", s->out->path);
	int rc = bn_out_write(s->out, s->buf, s->n, err);
	s->done += s->n;
	s->n = 0;
	if (s->pg)
		bn_progress_update(s->pg, s->done);
	return rc;
}

/* The encoded element for each possible k (table index = state >> 16). */
static uint32_t encode(enum st_dtype dt, float f)
{
	switch (dt) {
	case ST_F32: return bn_f32_bits(f);
	case ST_BF16: return bn_f32_bits(f) >> 16; /* §13.1: the top 16 bits (truncation) */
	case ST_F16: return bn_f32_to_f16(f);
	default: return 0;
	}
}

static int emit(struct sink *s, const struct tensor *t, uint32_t *tab, struct bn_err *err)
{
	const size_t esz = st_dtype_size(t->dtype);
	int rc;
	if (t->fill == FILL_PACKED) {
		/* Unpacked [M, K], rows r, r + M/4, r + M/2, r + 3M/4 share packed row r; the
		 * LCG runs over the unpacked elements in row-major order, so four streams. */
		const uint64_t mq = t->shape[0], k = t->shape[1];
		uint32_t st[4];
		for (int i = 0; i < 4; i++)
			st[i] = mk_lcg_skip(t->seed, (uint64_t)i * mq * k);
		for (uint32_t h = 0; h < 65536; h++)
			tab[h] = (uint32_t)((((int)(h % 127u) - 63) % 3 + 3) % 3);
		for (uint64_t r = 0; r < mq; r++)
			for (uint64_t c = 0; c < k; c++) {
				if (s->n == s->cap && (rc = flush(s, err)))
					return rc;
				uint8_t b = 0;
				for (int i = 0; i < 4; i++) {
					st[i] = mk_lcg_step(st[i]);
					b |= (uint8_t)(tab[st[i] >> 16] << (2 * i));
				}
				s->buf[s->n++] = b;
			}
		return 0;
	}
	const uint64_t n = t->shape[0] * t->shape[1];
	if (t->fill == FILL_CONST) {
		uint32_t v = encode(t->dtype, t->value);
		for (uint64_t i = 0; i < n; i++) {
			if (s->n + esz > s->cap && (rc = flush(s, err)))
				return rc;
			memcpy(s->buf + s->n, &v, esz); /* little-endian hosts */
			s->n += esz;
		}
		return 0;
	}
	for (uint32_t h = 0; h < 65536; h++) {
		int k = (int)(h % 127u) - 63;
		float f = t->fill == FILL_LCG ? t->value + (float)k / 4096.0f
					      : (float)((k % 3 + 3) % 3 - 1) * t->value;
		tab[h] = encode(t->dtype, f);
	}
	uint32_t st = t->seed;
	uint64_t i = 0;
	while (i < n) {
		if (s->n + esz > s->cap && (rc = flush(s, err)))
			return rc;
		size_t room = (s->cap - s->n) / esz;
		uint64_t m = BN_MIN((uint64_t)room, n - i);
		uint8_t *q = s->buf + s->n;
		if (esz == 4) {
			for (uint64_t j = 0; j < m; j++) {
				st = mk_lcg_step(st);
				memcpy(q + 4 * j, &tab[st >> 16], 4);
			}
		} else {
			for (uint64_t j = 0; j < m; j++) {
				st = mk_lcg_step(st);
				uint16_t v = (uint16_t)tab[st >> 16];
				memcpy(q + 2 * j, &v, 2);
			}
		}
		s->n += (size_t)m * esz;
		i += m;
	}
	return 0;
}

/* ---- small JSON files ----------------------------------------------------------------------- */

/* Writes j as Python's json.dumps(indent=2) + "\n" would (what transformers writes). */
static int write_json(const char *dir, const char *name, json_t *j, bool sort, struct bn_err *err)
{
	if (!j)
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", name);
	const struct py_json_opts po = { .sort_keys = sort, .ensure_ascii = true, .newline = true };
	size_t n;
	char *text = py_json_dumps(j, &po, &n);
	char *path = bn_path_join(dir, name);
	int rc;
	if (!text || !path)
		rc = bn_seterr(err, BN_ENOMEM, "%s: out of memory", name);
	else
		rc = bn_write_if_changed(path, text, n, NULL, err);
	free(text);
	free(path);
	json_decref(j);
	return rc;
}

static const char *torch_dtype(enum st_dtype dt)
{
	return dt == ST_F32 ? "float32" : dt == ST_F16 ? "float16" : "bfloat16";
}

static int write_config(const struct mk_opts *o, struct bn_err *err)
{
	const struct mk_preset *p = o->preset;
	const char *arch = p->family == MK_LLAMA ? "LlamaForCausalLM" :
			   p->family == MK_BITNET2B ? "BitNetForCausalLM" : "BitnetForCausalLM";
	int bos = o->bpe ? (int)p->vocab - 256 : 1, eos = bos + 1;
	json_t *c = json_object();
	if (!c)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	if (p->tv) {
		/* §13.1: exactly these keys, in this order. */
		json_object_set_new(c, "architectures", json_pack("[s]", arch));
		json_object_set_new(c, "hidden_size", json_integer(p->hidden));
		json_object_set_new(c, "intermediate_size", json_integer(p->intermediate));
		json_object_set_new(c, "num_hidden_layers", json_integer(o->layers));
		json_object_set_new(c, "num_attention_heads", json_integer(p->heads));
		json_object_set_new(c, "num_key_value_heads", json_integer(p->kv_heads));
		json_object_set_new(c, "max_position_embeddings", json_integer(p->max_pos));
		json_object_set_new(c, "rms_norm_eps", json_real(p->rms_eps));
		json_object_set_new(c, "rope_theta", json_real(p->rope_theta));
		json_object_set_new(c, "vocab_size", json_integer(p->vocab));
		json_object_set_new(c, "bos_token_id", json_integer(bos));
		json_object_set_new(c, "eos_token_id", json_integer(eos));
		return write_json(o->outdir, "config.json", c, false, err);
	}
	/* As transformers writes it (sorted keys); the keys the converters read plus the usual. */
	json_object_set_new(c, "architectures", json_pack("[s]", arch));
	json_object_set_new(c, "attention_bias", json_false());
	json_object_set_new(c, "bos_token_id", json_integer(bos));
	json_object_set_new(c, "eos_token_id", json_integer(eos));
	if (p->head_dim)
		json_object_set_new(c, "head_dim", json_integer(p->head_dim));
	if (p->hidden_act)
		json_object_set_new(c, "hidden_act", json_string(p->hidden_act));
	json_object_set_new(c, "hidden_size", json_integer(p->hidden));
	json_object_set_new(c, "initializer_range", json_real(0.02));
	json_object_set_new(c, "intermediate_size", json_integer(p->intermediate));
	json_object_set_new(c, "max_position_embeddings", json_integer(p->max_pos));
	json_object_set_new(c, "model_type", json_string(p->family == MK_BITNET2B ? "bitnet" : "llama"));
	json_object_set_new(c, "num_attention_heads", json_integer(p->heads));
	json_object_set_new(c, "num_hidden_layers", json_integer(o->layers));
	json_object_set_new(c, "num_key_value_heads", json_integer(p->kv_heads));
	if (p->packed)
		json_object_set_new(c, "quantization_config",
				    p->family == MK_BITNET2B ?
				    json_pack("{s:s,s:s,s:s}", "linear_class", "autobitlinear",
					      "quant_method", "bitnet", "quantization_mode", "offline") :
				    json_pack("{s:s}", "quant_method", "bitnet"));
	json_object_set_new(c, "rms_norm_eps", json_real(p->rms_eps));
	json_object_set_new(c, "rope_theta", json_real(p->rope_theta));
	json_object_set_new(c, "tie_word_embeddings", json_boolean(p->family != MK_LLAMA));
	json_object_set_new(c, "torch_dtype", json_string(torch_dtype(o->dtype)));
	json_object_set_new(c, "vocab_size", json_integer(p->vocab));
	return write_json(o->outdir, "config.json", c, true, err);
}

static int write_tokenizer(const struct mk_opts *o, struct bn_err *err)
{
	const struct mk_preset *p = o->preset;
	int rc;
	json_t *tc;
	if (p->tv == 1)
		tc = json_pack("{s:b,s:b,s:s}", "add_bos_token", 1, "add_eos_token", 0,
			       "chat_template", "{{ messages[0]['content'] }}");
	else if (p->tv == 2)
		tc = json_pack("{s:b}", "add_bos_token", 1);
	else if (o->bpe) /* no add_bos_token: convert-ms adds its own and a duplicate aborts it */
		tc = json_pack("{s:s,s:s,s:s,s:I,s:s}", "bos_token", "<|begin_of_text|>",
			       "chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}",
			       "eos_token", "<|end_of_text|>", "model_max_length",
			       (json_int_t)p->max_pos, "tokenizer_class", "PreTrainedTokenizerFast");
	else
		tc = json_pack("{s:b,s:b,s:s,s:s,s:s,s:I,s:s}", "add_bos_token", 1, "add_eos_token", 0,
			       "bos_token", "<s>", "chat_template",
			       "{% for m in messages %}{{ m['content'] }}{% endfor %}", "eos_token",
			       "</s>", "model_max_length", (json_int_t)p->max_pos, "tokenizer_class",
			       "LlamaTokenizer");
	if ((rc = write_json(o->outdir, "tokenizer_config.json", tc, true, err)))
		return rc;

	uint8_t *buf = NULL;
	size_t len = 0;
	const char *name = o->bpe ? "tokenizer.json" : "tokenizer.model";
	if (o->bpe)
		rc = mk_tokenizer_json(p->vocab, (char **)&buf, &len, err);
	else
		rc = mk_tokenizer_model(&buf, &len, err);
	if (rc)
		return rc;
	char *path = bn_path_join(o->outdir, name);
	if (!path)
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
	else
		rc = bn_write_if_changed(path, buf, len, NULL, err);
	free(path);
	free(buf);
	return rc;
}

/* ---- shards --------------------------------------------------------------------------------- */

static char *shard_name(unsigned i, unsigned n)
{
	char b[64];
	if (n == 1)
		snprintf(b, sizeof b, "model.safetensors");
	else
		snprintf(b, sizeof b, "model-%05u-of-%05u.safetensors", i + 1, n);
	return strdup(b);
}

/* Greedy split in ordinal order (as transformers shards a state dict): a new shard starts when
 * the current one would pass total/n bytes, or when each remaining tensor needs a shard. */
static void assign_shards(struct list *l, unsigned n)
{
	uint64_t total = 0, cur = 0;
	for (size_t i = 0; i < l->n; i++)
		total += l->t[i].bytes;
	uint64_t target = (total + n - 1) / n;
	unsigned sh = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t left = l->n - i;
		unsigned shards_left = n - 1 - sh;
		if (cur > 0 && shards_left > 0 &&
		    (cur + l->t[i].bytes > target || left <= shards_left)) {
			sh++;
			cur = 0;
		}
		l->t[i].shard = sh;
		cur += l->t[i].bytes;
	}
}

static int write_shard(const struct mk_opts *o, struct list *l, unsigned sh, unsigned n_shards,
		       struct sink *s, uint32_t *tab, struct bn_err *err)
{
	size_t cnt = 0;
	for (size_t i = 0; i < l->n; i++)
		cnt += l->t[i].shard == sh;
	struct st_entry *e = calloc(cnt ? cnt : 1, sizeof *e);
	struct tensor **map = calloc(cnt ? cnt : 1, sizeof *map);
	size_t *perm = calloc(cnt ? cnt : 1, sizeof *perm);
	char *name = shard_name(sh, n_shards);
	char *path = name ? bn_path_join(o->outdir, name) : NULL;
	uint8_t *hdr = NULL;
	struct bn_out out = { .fd = -1 };
	int rc = 0;
	if (!e || !map || !perm || !path) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct tensor *t = &l->t[i];
		if (t->shard != sh)
			continue;
		map[k] = t;
		e[k] = (struct st_entry){ .name = t->name, .dtype = t->dtype, .n_dims = t->n_dims,
					  .shape = { t->shape[0], t->shape[1] } };
		k++;
	}
	static const char *const meta_pt[] = { "format", "pt", NULL };
	enum st_layout lay = o->order == MK_ORDER_LIBRARY ? ST_LAYOUT_LIBRARY :
			     o->order == MK_ORDER_NAME ? ST_LAYOUT_NAME : ST_LAYOUT_GIVEN;
	size_t hdr_len;
	uint64_t data_len;
	rc = st_header_build(e, cnt, lay, o->preset->tv ? NULL : meta_pt, perm, &hdr, &hdr_len,
			     &data_len, err);
	if (rc)
		goto out;
	if ((rc = bn_out_open(&out, path, err)) || (rc = bn_out_write(&out, hdr, hdr_len, err)))
		goto out;
	s->out = &out;
	for (size_t i = 0; i < cnt; i++)
		if ((rc = emit(s, map[perm[i]], tab, err)))
			goto out;
	if ((rc = flush(s, err)))
		goto out;
	rc = bn_out_commit(&out, err);
out:
	if (rc)
		bn_out_abort(&out);
	s->out = NULL;
	s->n = 0;
	free(e);
	free(map);
	free(perm);
	free(name);
	free(path);
	free(hdr);
	return rc;
}

static int write_index(const struct mk_opts *o, const struct list *l, unsigned n_shards,
		       struct bn_err *err)
{
	uint64_t total = 0;
	json_t *wm = json_object();
	if (!wm)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		char *nm = shard_name(l->t[i].shard, n_shards);
		json_object_set_new(wm, l->t[i].name, json_string(nm ? nm : ""));
		free(nm);
		total += l->t[i].bytes;
	}
	json_t *idx = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total,
				"weight_map", wm);
	return write_json(o->outdir, ST_INDEX_NAME, idx, true, err);
}

/* Removes checkpoint files of an earlier run that this one does not write (a stale index or
 * shard would change what readers see): model.safetensors, the index, model-*-of-*.safetensors
 * of another shard count, and the other kind of tokenizer file. */
static void remove_stale(const struct mk_opts *o, unsigned n_shards)
{
	DIR *d = opendir(o->outdir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		unsigned i, m;
		char tail[32];
		bool stale = false;
		if (strcmp(n, "model.safetensors") == 0)
			stale = n_shards != 1;
		else if (strcmp(n, ST_INDEX_NAME) == 0)
			stale = n_shards == 1;
		else if (strcmp(n, "tokenizer.json") == 0)
			stale = !o->bpe;
		else if (strcmp(n, "tokenizer.model") == 0)
			stale = o->bpe;
		else if (sscanf(n, "model-%5u-of-%5u%31s", &i, &m, tail) == 3 &&
			 strcmp(tail, ".safetensors") == 0)
			stale = m != n_shards || i > m || i == 0;
		if (!stale)
			continue;
		char *p = bn_path_join(o->outdir, n);
		if (p)
			unlink(p);
		free(p);
	}
	closedir(d);
}

int mk_generate(const struct mk_opts *o, struct bn_err *err)
{
	struct list l = { 0 };
	uint32_t *tab = malloc(65536 * sizeof *tab);
	struct sink s = { .cap = 1u << 20 };
	s.buf = malloc(s.cap);
	struct bn_progress pg;
	int rc;
	if (!tab || !s.buf) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = build(o, &l, err)))
		goto out;
	if (o->shards == 0 || o->shards > l.n || o->shards > 99999) {
		rc = bn_seterr(err, BN_EINVAL, "--shards %u: must be between 1 and the number of "
			       "tensors (%zu)", o->shards, l.n);
		goto out;
	}
	if ((rc = bn_mkdir_p(o->outdir, err)))
		goto out;
	assign_shards(&l, o->shards);
	uint64_t total = 0;
	for (size_t i = 0; i < l.n; i++)
		total += l.t[i].bytes;
	char label[128];
	snprintf(label, sizeof label, "%s %s", o->preset->name, o->outdir);
	bn_progress_init(&pg, label, total);
	s.pg = &pg;
	for (unsigned sh = 0; sh < o->shards; sh++)
		if ((rc = write_shard(o, &l, sh, o->shards, &s, tab, err)))
			goto out;
	bn_progress_finish(&pg);
	if (o->shards > 1 && (rc = write_index(o, &l, o->shards, err)))
		goto out;
	if ((rc = write_config(o, err)) || (rc = write_tokenizer(o, err)))
		goto out;
	remove_stale(o, o->shards);
out:
	free(l.t);
	free(tab);
	free(s.buf);
	return rc;
}

/* Engine test fixtures (tests/engine_util.h): reference files, synthetic models and requantized
 * copies, cached under $BITMAKE_TMP/engine-cache so parallel tests and reruns share them.  Every
 * file is written to a temporary name and renamed, so a reader never sees half a file. */
#include "engine_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "gguf.h"
#include "quant_plan.h"
#include "test_util.h"

static char *cache_dir(void)
{
	const char *base = getenv("BITMAKE_TMP");
	char *dir = bn_path_join(base && *base ? base : "build/tests/tmp", "engine-cache");
	struct bn_err err;
	if (dir && bn_mkdir_p(dir, &err)) {
		free(dir);
		return NULL;
	}
	return dir;
}

char *eu_cache_path(const char *name)
{
	char *dir = cache_dir();
	char *p = dir ? bn_path_join(dir, name) : NULL;
	free(dir);
	return p;
}

char *eu_fixture(const char *name)
{
	char *out = eu_cache_path(name);
	if (!out || bn_file_exists(out))
		return out;
	char rel[512], cmd[8192];
	snprintf(rel, sizeof rel, "testdata/reference/%s.xz", name);
	char *src = tu_shared(rel); /* the reference tools' outputs, ../shared/testdata/reference */
	snprintf(cmd, sizeof cmd, "xz -dc '%s' > '%s.%ld.tmp' && mv '%s.%ld.tmp' '%s'", src, out, (long)getpid(), out,
		 (long)getpid(), out);
	free(src);
	struct tu_run r = tu_sh(cmd);
	int st = r.status;
	tu_run_free(&r);
	if (st != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- synthetic models ------------------------------------------------------------------------- */

struct lcg {
	uint32_t s;
};

static float uniform(struct lcg *g) /* in [-1, 1) */
{
	g->s = g->s * 1664525u + 1013904223u;
	return (float)((g->s >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

static int add_kv_u32(struct gguf_writer *w, const char *arch, const char *k, uint32_t v, struct bn_err *err)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, k);
	return gguf_writer_add_u32(w, key, v, err);
}

/* Tensor i of the synthetic layout: name, extents, and how to fill it. */
enum fill { FILL_EMBD, FILL_NORM, FILL_TERNARY };
struct tdesc {
	char name[64];
	uint64_t ne[2];
	uint32_t n_dims;
	enum fill fill;
};

static size_t describe(const struct eu_spec *s, struct tdesc *t)
{
	const bool sub = strcmp(s->arch, "llama") != 0;
	const uint64_t d = s->n_embd, kv = (uint64_t)s->n_embd / s->n_head * s->n_head_kv, ff = s->n_ff;
	size_t n = 0;
#define T(nm, a, b, nd, f)                                                    \
	do {                                                                  \
		snprintf(t[n].name, sizeof t[n].name, "%s", nm);              \
		t[n].ne[0] = (a), t[n].ne[1] = (b), t[n].n_dims = (nd);       \
		t[n].fill = (f);                                              \
		n++;                                                          \
	} while (0)
	T("token_embd.weight", d, s->n_vocab, 2, FILL_EMBD);
	for (unsigned l = 0; l < s->n_layer; l++) {
		char nm[64];
#define L(suffix, a, b, nd, f)                                       \
	do {                                                         \
		snprintf(nm, sizeof nm, "blk.%u.%s", l, suffix);      \
		T(nm, a, b, nd, f);                                   \
	} while (0)
		L("attn_norm.weight", d, 1, 1, FILL_NORM);
		L("attn_q.weight", d, d, 2, FILL_TERNARY);
		L("attn_k.weight", d, kv, 2, FILL_TERNARY);
		L("attn_v.weight", d, kv, 2, FILL_TERNARY);
		if (sub)
			L("attn_sub_norm.weight", d, 1, 1, FILL_NORM);
		L("attn_output.weight", d, d, 2, FILL_TERNARY);
		L("ffn_norm.weight", d, 1, 1, FILL_NORM);
		L("ffn_gate.weight", d, ff, 2, FILL_TERNARY);
		L("ffn_up.weight", d, ff, 2, FILL_TERNARY);
		if (sub)
			L("ffn_sub_norm.weight", ff, 1, 1, FILL_NORM);
		L("ffn_down.weight", ff, d, 2, FILL_TERNARY);
#undef L
	}
	T("output_norm.weight", d, 1, 1, FILL_NORM);
	if (s->output)
		T("output.weight", d, s->n_vocab, 2, FILL_EMBD);
#undef T
	return n;
}

static int write_synth(const char *path, const struct eu_spec *s, struct bn_err *err)
{
	const char *a = s->arch;
	const size_t max_t = 4 + 12 * (size_t)s->n_layer;
	struct tdesc *td = calloc(max_t, sizeof *td);
	char **tok = calloc(s->n_vocab, sizeof *tok);
	float *score = calloc(s->n_vocab, sizeof *score);
	int32_t *type = calloc(s->n_vocab, sizeof *type);
	float *buf = NULL;
	int rc = -1;
	struct gguf_writer *w = gguf_writer_open(path, err);
	if (!w || !td || !tok || !score || !type)
		goto out;
	/* vocabulary: <unk> <s> </s>, the 256 byte tokens, "▁", then "▁wN" fillers */
	for (unsigned i = 0; i < s->n_vocab; i++) {
		char t[32];
		if (i == 0)
			snprintf(t, sizeof t, "<unk>"), type[i] = 2;
		else if (i < 3)
			snprintf(t, sizeof t, i == 1 ? "<s>" : "</s>"), type[i] = 3;
		else if (i < 259)
			snprintf(t, sizeof t, "<0x%02X>", i - 3), type[i] = 6;
		else if (i == 259)
			snprintf(t, sizeof t, "\xe2\x96\x81"), type[i] = 1;
		else
			snprintf(t, sizeof t, "\xe2\x96\x81w%u", i), type[i] = 1;
		tok[i] = strdup(t);
		score[i] = -(float)i;
		if (!tok[i])
			goto out;
	}
	char key[128];
	if (gguf_writer_add_str(w, "general.architecture", a, err) ||
	    gguf_writer_add_str(w, "general.name", "synthetic", err) ||
	    add_kv_u32(w, a, "block_count", s->n_layer, err) || add_kv_u32(w, a, "context_length", s->n_ctx, err) ||
	    add_kv_u32(w, a, "embedding_length", s->n_embd, err) ||
	    add_kv_u32(w, a, "feed_forward_length", s->n_ff, err) ||
	    add_kv_u32(w, a, "attention.head_count", s->n_head, err) ||
	    add_kv_u32(w, a, "attention.head_count_kv", s->n_head_kv, err))
		goto out;
	snprintf(key, sizeof key, "%s.rope.freq_base", a);
	if (gguf_writer_add_f32(w, key, s->rope_base, err))
		goto out;
	snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
	if (gguf_writer_add_f32(w, key, 1e-5f, err) || gguf_writer_add_u32(w, "general.file_type", 0, err) ||
	    add_kv_u32(w, a, "vocab_size", s->n_vocab, err))
		goto out;
	if (s->hidden_act) {
		snprintf(key, sizeof key, "%s.hidden_activation", a);
		if (gguf_writer_add_str(w, key, s->hidden_act, err))
			goto out;
	}
	if (gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", err) ||
	    gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, NULL, s->n_vocab, err) ||
	    gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, score, s->n_vocab, err) ||
	    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, type, s->n_vocab, err) ||
	    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1, err) ||
	    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2, err) ||
	    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, err))
		goto out;
	size_t nt = describe(s, td);
	size_t maxn = 0;
	for (size_t i = 0; i < nt; i++) {
		if (gguf_writer_add_tensor(w, td[i].name, GGUF_TYPE_F32, td[i].n_dims, td[i].ne, err))
			goto out;
		maxn = td[i].ne[0] * td[i].ne[1] > maxn ? td[i].ne[0] * td[i].ne[1] : maxn;
	}
	if (gguf_writer_write_header(w, err) || !(buf = malloc(maxn * sizeof *buf)))
		goto out;
	for (size_t i = 0; i < nt; i++) {
		struct lcg g = { s->seed * 2654435761u + (uint32_t)i * 40503u + 1 };
		const size_t n = td[i].ne[0] * td[i].ne[1];
		/* one magnitude per ternary tensor, about 1/sqrt(row length) so activations stay O(1) */
		const float v = (1.0f + 0.25f * uniform(&g)) / sqrtf((float)td[i].ne[0]);
		for (size_t j = 0; j < n; j++) {
			float u = uniform(&g);
			switch (td[i].fill) {
			case FILL_EMBD: buf[j] = 0.5f * u; break;
			case FILL_NORM: buf[j] = 1.0f + 0.25f * u; break;
			case FILL_TERNARY: buf[j] = u < -1.0f / 3 ? -v : u < 1.0f / 3 ? 0.0f : v; break;
			}
		}
		if (gguf_writer_write(w, buf, n * sizeof *buf, err))
			goto out;
	}
	rc = gguf_writer_commit(w, err);
out:
	gguf_writer_close(w);
	for (unsigned i = 0; tok && i < s->n_vocab; i++)
		free(tok[i]);
	free(tok);
	free(score);
	free(type);
	free(td);
	free(buf);
	return rc ? -1 : 0;
}

int eu_synth(const char *path, const struct eu_spec *s, struct bn_err *err)
{
	char stamp[4096], want[512];
	snprintf(stamp, sizeof stamp, "%s.spec", path);
	snprintf(want, sizeof want, "v1 %s %u %u %u %u %u %u %u %g %d %s %u\n", s->arch, s->n_layer, s->n_embd,
		 s->n_ff, s->n_head, s->n_head_kv, s->n_vocab, s->n_ctx, s->rope_base, s->output,
		 s->hidden_act ? s->hidden_act : "-", s->seed);
	char *have = tu_read_file(stamp, NULL);
	bool same = have && strcmp(have, want) == 0 && bn_file_exists(path);
	free(have);
	if (same)
		return 0;
	if (write_synth(path, s, err))
		return -1;
	return bn_write_if_changed(stamp, want, strlen(want), NULL, err);
}

/* ---- requantization through the shared quantization plan ----------------------------------- */

int eu_quantize(const char *in, const char *out, uint32_t target, uint32_t embd_type, struct bn_err *err)
{
	enum qp_target tg = target == GGUF_TYPE_I2_S ? QP_I2_S : target == GGUF_TYPE_TQ1_0 ? QP_TQ1_0 : QP_TQ2_0;
	struct qp_opts o = { tg, (int)embd_type, (int)embd_type };
	struct gguf_reader *r = gguf_open(in, err);
	struct gguf_writer *w = NULL;
	struct qp_tensor *plan = NULL;
	uint8_t *dst = NULL;
	int rc = -1;
	if (!r)
		return -1;
	size_t nt = gguf_n_tensors(r);
	struct qp_model qm;
	plan = calloc(nt, sizeof *plan);
	if (!plan || qp_model_from_gguf(r, &qm, err) || !(w = gguf_writer_open(out, err)) || qp_copy_kvs(w, r, tg, err))
		goto done;
	uint64_t maxb = 0;
	for (size_t i = 0; i < nt; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		if (qp_plan_tensor(&o, &qm, t->name, t->type, t->n_dims, t->ne, &plan[i], err) ||
		    gguf_writer_add_tensor(w, t->name, plan[i].out_type, plan[i].n_dims, plan[i].ne, err))
			goto done;
		maxb = plan[i].out_nbytes > maxb ? plan[i].out_nbytes : maxb;
	}
	if (gguf_writer_write_header(w, err) || !(dst = malloc(maxb)))
		goto done;
	for (size_t i = 0; i < nt; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		const struct qp_tensor *p = &plan[i];
		if (!p->convert) {
			if (gguf_writer_write(w, t->data, t->nbytes, err))
				goto done;
			continue;
		}
		if (p->in_type != GGUF_TYPE_F32) {
			rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: eu_quantize reads f32 only", t->name);
			goto done;
		}
		const float *x = (const float *)t->data;
		struct qp_stats st;
		qp_stats_init(&st);
		qp_stats_add(&st, x, p->n, 0);
		uint64_t rows = qp_rows_nbytes(p->out_type, p->ne0, p->nrows);
		qp_encode_rows(p->out_type, x, p->ne0, p->nrows, st.absmax, dst);
		if (p->out_type == GGUF_TYPE_I2_S)
			qp_i2s_tail((float)st.absmax, NULL, dst + rows);
		if (gguf_writer_write(w, dst, p->out_nbytes, err))
			goto done;
	}
	rc = gguf_writer_commit(w, err);
done:
	free(dst);
	free(plan);
	gguf_writer_close(w);
	gguf_close(r);
	return rc ? -1 : 0;
}

static bool stale(const char *a, const char *b) /* a is missing or not newer than b */
{
	struct stat sa, sb;
	return stat(a, &sa) != 0 || (stat(b, &sb) == 0 && sb.st_mtime >= sa.st_mtime);
}

char *eu_converted(const char *dir, const char *preset, unsigned layers, const char *tokenizer, const char *outtype)
{
	char name[320], sub[256];
	snprintf(sub, sizeof sub, "%s-%u%s%s", preset, layers, tokenizer ? "-" : "", tokenizer ? tokenizer : "");
	snprintf(name, sizeof name, "%s.%s.gguf", sub, outtype);
	char *base = dir ? strdup(dir) : cache_dir();
	char *ckpt = base ? bn_path_join(base, sub) : NULL, *out = base ? bn_path_join(base, name) : NULL;
	free(base);
	char *mk = tu_bin("mkmodel"), *cv = tu_bin("gguf-convert");
	char *manifest = bn_path_join(ckpt, "config.json");
	char cmd[16384];
	int st = 0;
	if (stale(manifest, mk)) {
		char lay[32] = "", tk[64] = "";
		if (layers)
			snprintf(lay, sizeof lay, "--layers %u", layers);
		if (tokenizer)
			snprintf(tk, sizeof tk, "--tokenizer %s", tokenizer);
		snprintf(cmd, sizeof cmd, "%s -q --preset %s %s %s --outdir '%s'", mk, preset, lay, tk, ckpt);
		struct tu_run r = tu_sh(cmd);
		st = r.status;
		tu_run_free(&r);
	}
	if (st == 0 && (stale(out, cv) || stale(out, manifest))) {
		snprintf(cmd, sizeof cmd, "%s -q '%s' --outtype %s --outfile '%s.%ld.tmp' && mv '%s.%ld.tmp' '%s'", cv, ckpt,
			 outtype, out, (long)getpid(), out, (long)getpid(), out);
		struct tu_run r = tu_sh(cmd);
		st = r.status;
		tu_run_free(&r);
	}
	free(ckpt), free(mk), free(cv), free(manifest);
	if (st != 0) {
		free(out);
		return NULL;
	}
	return out;
}

int eu_retype(const char *in, const char *out, uint32_t type, struct bn_err *err)
{
	struct gguf_reader *r = gguf_open(in, err);
	struct gguf_writer *w = r ? gguf_writer_open(out, err) : NULL;
	uint16_t *buf = NULL;
	int rc = -1;
	if (!w)
		goto done;
	for (size_t i = 0; i < gguf_n_kv(r); i++)
		if (gguf_writer_copy_kv(w, r, (int64_t)i, err))
			goto done;
	size_t nt = gguf_n_tensors(r), maxn = 0;
	for (size_t i = 0; i < nt; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		bool proj = t->n_dims == 2 && (strstr(t->name, ".attn_") || strstr(t->name, ".ffn_"));
		if (gguf_writer_add_tensor(w, t->name, proj ? type : t->type, t->n_dims, t->ne, err))
			goto done;
		maxn = t->ne[0] * t->ne[1] > maxn ? t->ne[0] * t->ne[1] : maxn;
	}
	if (gguf_writer_write_header(w, err) || !(buf = malloc(maxn * 2)))
		goto done;
	for (size_t i = 0; i < nt; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		bool proj = t->n_dims == 2 && (strstr(t->name, ".attn_") || strstr(t->name, ".ffn_"));
		if (!proj) {
			if (gguf_writer_write(w, t->data, t->nbytes, err))
				goto done;
			continue;
		}
		const float *x = (const float *)t->data;
		const size_t n = t->ne[0] * t->ne[1];
		for (size_t j = 0; j < n; j++)
			buf[j] = type == GGUF_TYPE_F16 ? bn_f32_to_f16(x[j]) : bn_f32_to_bf16(x[j]);
		if (gguf_writer_write(w, buf, n * 2, err))
			goto done;
	}
	rc = gguf_writer_commit(w, err);
done:
	free(buf);
	gguf_writer_close(w);
	gguf_close(r);
	return rc ? -1 : 0;
}

double eu_max_abs_diff(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		if (d > m || d != d)
			m = d;
	}
	return m;
}

double eu_max_abs(const float *a, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)a[i]) > m)
			m = fabs((double)a[i]);
	return m;
}

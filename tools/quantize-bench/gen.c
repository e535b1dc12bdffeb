/* The bench-only f32 GGUF generator (gen.h): the converter's tensor names and order for the
 * bitnet architecture (convert-quantize.md §4, §13.2: per layer attn_norm, ffn_down,
 * ffn_sub_norm, ffn_gate, ffn_up, ffn_norm, attn_sub_norm, attn_k, attn_output, attn_q,
 * attn_v), streamed row by row through the GGUF writer. */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"
#include "gguf.h"
#include "mkmodel.h"

enum kind { EMBD, NORM, PROJ };

struct gt {
	char name[GGUF_MAX_NAME + 1];
	enum kind kind;
	uint64_t ne0, ne1;
};

static void add(struct gt *t, size_t *n, const char *name, enum kind k, uint64_t ne0, uint64_t ne1)
{
	snprintf(t[*n].name, sizeof t[*n].name, "%s", name);
	t[*n].kind = k;
	t[*n].ne0 = ne0;
	t[*n].ne1 = ne1;
	(*n)++;
}

int qb_generate_f32(const char *preset, unsigned layers, const char *path, struct bn_err *err)
{
	const struct mk_preset *p = mk_preset_find(preset);
	if (!p)
		return bn_seterr(err, BN_EINVAL, "%s: no such mkmodel preset", preset);
	unsigned nl = layers ? layers : p->layers;
	uint64_t h = p->hidden, f = p->intermediate, kv = (uint64_t)p->hidden / p->heads * p->kv_heads;
	size_t cap = 2 + 11 * (size_t)nl, n = 0;
	struct gt *t = calloc(cap, sizeof *t);
	float *row = malloc(sizeof(float) * BN_MAX(h, f));
	struct gguf_writer *w = NULL;
	int rc = 0;
	if (!t || !row) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	add(t, &n, "token_embd.weight", EMBD, h, p->vocab);
	for (unsigned l = 0; l < nl; l++) {
		char b[48];
#define L(s) (snprintf(b, sizeof b, "blk.%u.%s.weight", l, s), b)
		add(t, &n, L("attn_norm"), NORM, h, 1);
		add(t, &n, L("ffn_down"), PROJ, f, h);
		add(t, &n, L("ffn_sub_norm"), NORM, f, 1);
		add(t, &n, L("ffn_gate"), PROJ, h, f);
		add(t, &n, L("ffn_up"), PROJ, h, f);
		add(t, &n, L("ffn_norm"), NORM, h, 1);
		add(t, &n, L("attn_sub_norm"), NORM, h, 1);
		add(t, &n, L("attn_k"), PROJ, h, kv);
		add(t, &n, L("attn_output"), PROJ, h, h);
		add(t, &n, L("attn_q"), PROJ, h, h);
		add(t, &n, L("attn_v"), PROJ, h, kv);
#undef L
	}
	add(t, &n, "output_norm.weight", NORM, h, 1);

	if (!(w = gguf_writer_open(path, err))) {
		rc = -BN_EIO;
		goto out;
	}
	if ((rc = gguf_writer_add_str(w, "general.architecture", "bitnet", err)) ||
	    (rc = gguf_writer_add_str(w, "general.name", p->name, err)) ||
	    (rc = gguf_writer_add_u32(w, "bitnet.block_count", nl, err)) ||
	    (rc = gguf_writer_add_u32(w, "bitnet.embedding_length", p->hidden, err)) ||
	    (rc = gguf_writer_add_u32(w, "bitnet.feed_forward_length", p->intermediate, err)) ||
	    (rc = gguf_writer_add_u32(w, "bitnet.attention.head_count", p->heads, err)) ||
	    (rc = gguf_writer_add_u32(w, "general.file_type", 0, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t ne[2] = { t[i].ne0, t[i].ne1 };
		if ((rc = gguf_writer_add_tensor(w, t[i].name, 0, t[i].kind == NORM ? 1 : 2, ne, err)))
			goto out;
	}
	if ((rc = gguf_writer_write_header(w, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint32_t s = mk_seed((uint32_t)i, 7);
		/* v: what weight_quant gives, 1 / mean|w|, made a tensor-specific f32 */
		float v = 1.0f / (96.0f + (float)(i % 13));
		for (uint64_t r = 0; r < t[i].ne1; r++) {
			for (uint64_t c = 0; c < t[i].ne0; c++) {
				s = mk_lcg_step(s);
				int k = mk_lcg_k(s);
				if (t[i].kind == PROJ)
					row[c] = k % 3 == 0 ? (k & 1 ? -0.0f : 0.0f) : (k > 0 ? v : -v);
				else
					row[c] = (t[i].kind == NORM ? 1.0f : 0.0f) + (float)k / 4096.0f;
			}
			if ((rc = gguf_writer_write(w, row, t[i].ne0 * sizeof(float), err)))
				goto out;
		}
	}
	rc = gguf_writer_commit(w, err);
out:
	gguf_writer_close(w);
	free(t);
	free(row);
	return rc;
}

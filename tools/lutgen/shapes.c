/* Weight shapes from the model: config.json dimensions (lut-kernels.md §7, "take shapes from the
 * model, not a name") or an explicit MxK list.  No table of model names anywhere. */
#include "lutgen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_json.h"
#include "gguf.h"
#include "bn_util.h"

/* Whether a comma-separated list contains an item. */
static int has_label(const char *list, const char *item)
{
	size_t l = strlen(item);
	for (const char *p = list; (p = strstr(p, item)) != NULL; p += l)
		if ((p == list || p[-1] == ',') && (p[l] == ',' || p[l] == 0))
			return 1;
	return 0;
}

/* Adds [m,k] with a label, or appends the label to an existing entry with the same shape. */
static void add_shape(struct lutgen_shape *s, size_t *n, uint64_t m, uint64_t k, const char *label)
{
	for (size_t i = 0; i < *n; i++)
		if (s[i].p.m == m && s[i].p.k == k) {
			size_t l = strlen(s[i].label);
			if (!has_label(s[i].label, label))
				snprintf(s[i].label + l, sizeof s[i].label - l, ",%s", label);
			return;
		}
	memset(&s[*n], 0, sizeof s[*n]);
	s[*n].p.m = (uint32_t)m;
	s[*n].p.k = (uint32_t)k;
	snprintf(s[*n].label, sizeof s[*n].label, "%s", label);
	(*n)++;
}

/* An integer key: 1 if present, 0 if absent (and !required), <0 on error. */
static int get_dim(json_t *j, const char *path, const char *key, int required, uint64_t *v,
		   struct bn_err *err)
{
	json_t *x = json_object_get(j, key);
	if (!x || json_is_null(x)) {
		if (required)
			return bn_seterr(err, BN_EFORMAT, "%s: no '%s'; cannot derive the weight shapes "
				"(pass them with --shapes MxK,...)", path, key);
		return 0;
	}
	if (!json_is_integer(x) || json_integer_value(x) <= 0 ||
	    (uint64_t)json_integer_value(x) > LUT_MAX_DIM)
		return bn_seterr(err, BN_EFORMAT, "%s: '%s' is not an integer between 1 and %u", path,
				 key, LUT_MAX_DIM);
	*v = (uint64_t)json_integer_value(x);
	return 1;
}

int lutgen_shapes_from_config(const char *path, struct lutgen_shape **out, size_t *n,
			      struct bn_err *err)
{
	int rc = 0;
	struct lutgen_shape *s = NULL;
	json_t *j = bn_json_load(path, 1 << 20, err);
	if (!j)
		return -BN_EFORMAT;
	if (!json_is_object(j)) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: not a JSON object", path);
		goto out;
	}
	uint64_t H, I, nh, nkv = 0, hd = 0;
	if ((rc = get_dim(j, path, "hidden_size", 1, &H, err)) < 0 ||
	    (rc = get_dim(j, path, "intermediate_size", 1, &I, err)) < 0 ||
	    (rc = get_dim(j, path, "num_attention_heads", 1, &nh, err)) < 0 ||
	    (rc = get_dim(j, path, "num_key_value_heads", 0, &nkv, err)) < 0 ||
	    (rc = get_dim(j, path, "head_dim", 0, &hd, err)) < 0)
		goto out;
	rc = 0;
	if (!nkv)
		nkv = nh;
	if (!hd) {
		if (H % nh) {
			rc = bn_seterr(err, BN_EFORMAT,
				       "%s: hidden_size %" PRIu64 " is not a multiple of "
				       "num_attention_heads %" PRIu64 " and there is no head_dim",
				       path, H, nh);
			goto out;
		}
		hd = H / nh;
	}
	if (nh * hd > LUT_MAX_DIM || nkv * hd > LUT_MAX_DIM) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: heads x head_dim is larger than %u", path,
			       LUT_MAX_DIM);
		goto out;
	}
	s = calloc(6, sizeof *s);
	if (!s) {
		rc = bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	*n = 0;
	add_shape(s, n, nh * hd, H, "q_proj");
	add_shape(s, n, nkv * hd, H, "k_proj");
	add_shape(s, n, nkv * hd, H, "v_proj");
	add_shape(s, n, H, nh * hd, "o_proj");
	add_shape(s, n, I, H, "gate_proj");
	add_shape(s, n, I, H, "up_proj");
	add_shape(s, n, H, I, "down_proj");
	*out = s;
	s = NULL;
out:
	free(s);
	json_decref(j);
	return rc;
}

int lutgen_shapes_parse(const char *list, struct lutgen_shape **out, size_t *n,
			struct bn_err *err)
{
	size_t cap = 1;
	for (const char *c = list; *c; c++)
		cap += *c == ',';
	if (cap > LUT_MAX_SHAPES)
		return bn_seterr(err, BN_EINVAL, "--shapes: %zu shapes; at most %d", cap,
				 LUT_MAX_SHAPES);
	struct lutgen_shape *s = calloc(cap, sizeof *s);
	char *copy = strdup(list);
	int rc = 0;
	if (!s || !copy) {
		rc = bn_seterr(err, BN_ENOMEM, "--shapes: out of memory");
		goto out;
	}
	size_t k = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *x = strchr(t, 'x');
		unsigned m, kk;
		if (x)
			*x = 0;
		if (!x || bn_parse_uint(t, 1, LUT_MAX_DIM, &m) ||
		    bn_parse_uint(x + 1, 1, LUT_MAX_DIM, &kk)) {
			if (x)
				*x = 'x';
			rc = bn_seterr(err, BN_EINVAL,
				       "--shapes: '%s': expected MxK (M outputs, K inputs, each 1..%u), "
				       "e.g. 1536x4096",
				       t, LUT_MAX_DIM);
			goto out;
		}
		s[k].p.m = m;
		s[k].p.k = kk;
		k++;
	}
	if (k == 0) {
		rc = bn_seterr(err, BN_EINVAL, "--shapes: empty list");
		goto out;
	}
	*out = s;
	*n = k;
	s = NULL;
out:
	free(s);
	free(copy);
	return rc;
}

/* The converter's TL rule (lut-kernels.md §4.1, convert-quantize.md §9.1): 2-D weights except
 * the embeddings and the output head; TL1/TL2/I2_S tensors are ternary by construction. */
static int ternary_candidate(const struct gguf_tensor *t)
{
	if (t->type == GGUF_TYPE_TL1 || t->type == GGUF_TYPE_TL2 || t->type == GGUF_TYPE_I2_S)
		return 1;
	if (t->n_dims != 2 || (t->type != GGUF_TYPE_F32 && t->type != GGUF_TYPE_F16 &&
			       t->type != GGUF_TYPE_BF16))
		return 0;
	return strcmp(t->name, "token_embd.weight") != 0 && strcmp(t->name, "output.weight") != 0;
}

int lutgen_shapes_from_gguf(const char *path, enum lut_quant q, struct lutgen_shape **out,
			    size_t *n, bool *recorded, struct bn_err *err)
{
	struct gguf_reader *r = gguf_open(path, err);
	if (!r)
		return -(err && err->code ? err->code : BN_EFORMAT);
	int rc = 0;
	*recorded = false;
	/* A TL model of this quant type names the parameters it was packed with: use them. */
	int64_t kv = gguf_find_key(r, LUT_GGUF_KERNEL_CONFIG);
	const uint32_t tl = q == LUT_TL1 ? GGUF_TYPE_TL1 : GGUF_TYPE_TL2;
	bool has_tl = false;
	for (size_t i = 0; i < gguf_n_tensors(r); i++)
		has_tl |= gguf_tensor(r, i)->type == tl;
	if (kv >= 0 && has_tl) {
		struct gguf_str str;
		struct lut_params *p = NULL;
		if ((rc = gguf_get_str(r, kv, &str, err)) ||
		    (rc = lut_ini_parse(q, str.data, str.len, path, &p, n, err))) {
			gguf_close(r);
			return rc;
		}
		struct lutgen_shape *s = calloc(*n, sizeof *s);
		if (!s) {
			free(p);
			gguf_close(r);
			return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
		}
		for (size_t i = 0; i < *n; i++) {
			s[i].p = p[i];
			s[i].BM_from = s[i].BK_from = s[i].bm_from = LUT_GIVEN;
			snprintf(s[i].label, sizeof s[i].label, "%s", LUT_GGUF_KERNEL_CONFIG);
		}
		free(p);
		gguf_close(r);
		*out = s;
		*recorded = true;
		return 0;
	}
	struct lutgen_shape *s = calloc(LUT_MAX_SHAPES, sizeof *s);
	*n = 0;
	if (!s) {
		rc = bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		if (!ternary_candidate(t))
			continue;
		if (t->ne[0] > LUT_MAX_DIM || t->ne[1] > LUT_MAX_DIM) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: %s: [%" PRIu64 ",%" PRIu64 "] is larger than "
				       "%u rows or columns", path, t->name, t->ne[1], t->ne[0], LUT_MAX_DIM);
			goto out;
		}
		/* label: the name without "blk.N." and ".weight" */
		char label[64];
		const char *nm = t->name;
		if (strncmp(nm, "blk.", 4) == 0 && strchr(nm + 4, '.'))
			nm = strchr(nm + 4, '.') + 1;
		snprintf(label, sizeof label, "%s", nm);
		char *dot = strstr(label, ".weight");
		if (dot && dot[7] == 0)
			*dot = 0;
		if (*n == LUT_MAX_SHAPES) {
			int known = 0;
			for (size_t j = 0; j < *n; j++)
				known |= s[j].p.m == t->ne[1] && s[j].p.k == t->ne[0];
			if (!known) {
				rc = bn_seterr(err, BN_ERANGE, "%s: more than %d distinct weight shapes", path,
					       LUT_MAX_SHAPES);
				goto out;
			}
		}
		add_shape(s, n, t->ne[1], t->ne[0], label);
	}
	if (*n == 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: no ternary weight tensors (2-D weights other than "
			       "token_embd and output)", path);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	free(s);
	gguf_close(r);
	return rc;
}

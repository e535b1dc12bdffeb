/* The output types of gguf-convert: for each, which ggml type every tensor gets and how one
 * tensor's f32 rows are encoded (convert-quantize.md §4.3 for f32/f16).  Invariant: choose()
 * and setup() agree on type and byte count, and encode() writes exactly chunk_bytes() bytes.
 * A new type (TL1/TL2) is one table entry with its own choose/setup/add_kvs. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_fp16.h"
#include "bn_util.h"
#include "convert.h"

/* ---- plain float encoders -------------------------------------------------------------------- */

static uint64_t f32_bytes(const struct cv_enc *e, uint64_t r0, uint64_t nr)
{
	(void)r0;
	return nr * *(const uint64_t *)e->state * 4;
}

static void f32_encode(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
		       uint8_t *dst)
{
	(void)r0;
	memcpy(dst, x, nr * *(const uint64_t *)e->state * 4);
}

static uint64_t f16_bytes(const struct cv_enc *e, uint64_t r0, uint64_t nr)
{
	(void)r0;
	return nr * *(const uint64_t *)e->state * 2;
}

/* numpy astype(float16): round to nearest even */
static void f16_encode(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
		       uint8_t *dst)
{
	(void)r0;
	uint64_t n = nr * *(const uint64_t *)e->state;
	for (uint64_t i = 0; i < n; i++) {
		uint16_t h = bn_f32_to_f16(x[i]);
		memcpy(dst + 2 * i, &h, 2);
	}
}

static void free_state(struct cv_enc *e)
{
	free(e->state);
	e->state = NULL;
}

/* An encoder for a plain float type: state = the row length. */
static int float_enc(const struct cv_tensor *t, struct cv_enc *e, struct bn_err *err)
{
	uint64_t *cols = malloc(sizeof *cols);
	if (!cols)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	*cols = t->cols;
	memset(e, 0, sizeof *e);
	e->type = t->type;
	e->nbytes = t->nbytes;
	e->row_align = 1;
	e->state = cols;
	e->fini = free_state;
	if (t->type == GGUF_TYPE_F32) {
		e->chunk_bytes = f32_bytes;
		e->encode = f32_encode;
	} else {
		e->chunk_bytes = f16_bytes;
		e->encode = f16_encode;
	}
	return 0;
}

static int set_float(struct cv_tensor *t, uint32_t type, struct bn_err *err)
{
	t->type = type;
	return gguf_tensor_nbytes(type, t->n_dims, t->ne, &t->nbytes, err);
}

/* ---- f32: every tensor F32 (§4.3) --------------------------------------------------------------- */

static int f32_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err)
{
	(void)x;
	return set_float(t, GGUF_TYPE_F32, err);
}

static int float_setup(const struct cv_ctx *x, const struct cv_tensor *t, struct cv_enc *e,
		       struct bn_err *err)
{
	(void)x;
	return float_enc(t, e, err);
}

/* ---- f16: 2-D weights F16; 1-D, *_norm.weight and token_embd (unless --quant-embd) F32 ------ */

static int f16_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err)
{
	size_t nl = strlen(t->name);
	bool extra_f32 = t->n_dims == 1 || (nl >= 12 && strcmp(t->name + nl - 12, "_norm.weight") == 0) ||
			 (t->role == CV_TOKEN_EMBD && !x->o->quant_embd);
	bool extra_f16 = t->hf_weight && t->n_dims >= 2;
	return set_float(t, extra_f16 && !extra_f32 ? GGUF_TYPE_F16 : GGUF_TYPE_F32, err);
}

/* ---- the table ------------------------------------------------------------------------------- */

static const struct cv_outtype types[] = {
	{ "f32", GGUF_FTYPE_ALL_F32, false,
	  "every tensor F32 (what setup_env.py quantizes from)", f32_choose, float_setup, NULL },
	{ "f16", GGUF_FTYPE_MOSTLY_F16, false,
	  "2-D weights F16; norms, 1-D tensors and token_embd (unless --quant-embd) F32",
	  f16_choose, float_setup, NULL },
};

const struct cv_outtype *cv_outtype_find(const char *name)
{
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strcasecmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

const struct cv_outtype *cv_outtype_at(size_t i)
{
	return i < sizeof types / sizeof *types ? &types[i] : NULL;
}

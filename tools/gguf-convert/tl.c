/* The TL1/TL2 output types of gguf-convert (lut-kernels.md §4, convert-quantize.md §9): the
 * projections become TL1/TL2 tensors packed with the tile parameters of --kernel-config (the
 * kernel_config.ini lutgen wrote for the kernels; without it, lutgen's automatic choice), token_embd
 * F32 (F16 with --quant-embd), output F16, norms and 1-D tensors F32.  Each TL tensor's data is
 * the packed bytes, zeros to pad32, the f32 scale max|w| and 28 zeros (§9.4).  Unless
 * --no-kernel-kvs, the parameters are also recorded as bitmake.lut.kernel_config (kernel_config.ini
 * text of the model's shapes) so the runtime can refuse kernels generated for other ones.
 * Invariant: stateless between tensors; the parameters of a shape are derived again wherever they
 * are needed, from the same inputs, so choose(), setup() and add_kvs() always agree. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_util.h"
#include "convert.h"
#include "lut_pack.h"
#include "lut_params.h"

/* The parameters of W[m][k]: from the kernel config (which must list the shape) or automatic. */
static int tl_params(const struct cv_ctx *x, enum lut_quant q, uint64_t m, uint64_t k,
		     struct lut_params *out, struct bn_err *err)
{
	if (m > LUT_MAX_DIM || k > LUT_MAX_DIM)
		return bn_seterr(err, BN_EUNSUPPORTED, "[%" PRIu64 ",%" PRIu64 "]: too large for %s",
				 m, k, lut_quant_name(q));
	if (!x->o->kernel_config) {
		struct lut_params p = { .m = (uint32_t)m, .k = (uint32_t)k };
		int rc = lut_params_auto(q, &p, err);
		if (!rc)
			*out = p;
		return rc;
	}
	char *text = NULL;
	size_t len, n = 0;
	struct lut_params *list = NULL;
	int rc = bn_read_file(x->o->kernel_config, 1 << 20, &text, &len, err);
	if (!rc)
		rc = lut_ini_parse(q, text, len, x->o->kernel_config, &list, &n, err);
	free(text);
	if (rc)
		return rc;
	rc = bn_seterr(err, BN_EINVAL, "[%" PRIu64 ",%" PRIu64 "]: no section for this shape in %s; "
		       "generate the kernels and their kernel_config.ini for this model (lutgen --config "
		       "MODEL_DIR/config.json)", m, k, x->o->kernel_config);
	for (size_t i = 0; i < n; i++)
		if (list[i].m == m && list[i].k == k) {
			*out = list[i];
			rc = 0;
			bn_err_clear(err);
			break;
		}
	free(list);
	return rc;
}

static int set_plain(struct cv_tensor *t, uint32_t type, struct bn_err *err)
{
	t->type = type;
	return gguf_tensor_nbytes(type, t->n_dims, t->ne, &t->nbytes, err);
}

static int tl_choose(const struct cv_ctx *x, struct cv_tensor *t, enum lut_quant q,
		     struct bn_err *err)
{
	switch (t->role) {
	case CV_PROJ: {
		struct lut_params p;
		if (t->n_dims != 2)
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: %u-D; %s packs matrices only", t->name,
					 t->n_dims, lut_quant_name(q));
		int rc = tl_params(x, q, t->ne[1], t->ne[0], &p, err);
		if (rc)
			return bn_err_prefix(err, "%s", t->name);
		t->type = q == LUT_TL1 ? GGUF_TYPE_TL1 : GGUF_TYPE_TL2;
		t->nbytes = lut_tensor_extent(q, p.m, p.k);
		return 0;
	}
	case CV_TOKEN_EMBD:
		return set_plain(t, x->o->quant_embd ? GGUF_TYPE_F16 : GGUF_TYPE_F32, err);
	case CV_OUTPUT:
		return set_plain(t, GGUF_TYPE_F16, err);
	default:
		return set_plain(t, GGUF_TYPE_F32, err);
	}
}

int cv_tl1_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err)
{
	return tl_choose(x, t, LUT_TL1, err);
}

int cv_tl2_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err)
{
	return tl_choose(x, t, LUT_TL2, err);
}

/* ---- encoders -------------------------------------------------------------------------------- */

/* Plain float tensors of a TL file (same encodings as f32/f16). */
struct plain {
	uint64_t cols;
	uint32_t type;
};

static uint64_t plain_bytes(const struct cv_enc *e, uint64_t r0, uint64_t nr)
{
	const struct plain *s = e->state;
	(void)r0;
	return nr * s->cols * (s->type == GGUF_TYPE_F16 ? 2 : 4);
}

static void plain_encode(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
			 size_t chunk, uint8_t *dst)
{
	const struct plain *s = e->state;
	(void)r0;
	(void)chunk;
	const uint64_t n = nr * s->cols;
	if (s->type == GGUF_TYPE_F32) {
		memcpy(dst, x, n * 4);
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint16_t h = bn_f32_to_f16(x[i]); /* numpy astype(float16): nearest even */
		memcpy(dst + 2 * i, &h, 2);
	}
}

static void free_state(struct cv_enc *e)
{
	free(e->state);
	e->state = NULL;
}

/* A TL tensor: chunks of whole tiles are ternarized and packed into the tensor's packed buffer
 * (in parallel: tiles are disjoint); the trailer writes it, then the padding and the scale. */
struct tl_state {
	enum lut_quant q;
	struct lut_params p;
	uint8_t *packed;    /* lut_packed_size bytes, zero-initialized (TL2's padding stays 0) */
	uint32_t max_bits;  /* max |w| as f32 bits: non-negative floats order like their bits */
};

static uint64_t tl_chunk_bytes(const struct cv_enc *e, uint64_t r0, uint64_t nr)
{
	(void)e;
	(void)r0;
	(void)nr;
	return 0; /* everything goes out in the trailer */
}

static void tl_encode(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
		      size_t chunk, uint8_t *dst)
{
	struct tl_state *s = e->state;
	(void)chunk;
	(void)dst;
	const size_t n = (size_t)(nr * s->p.k);
	int8_t *t = malloc(n ? n : 1);
	if (!t)
		abort(); /* a chunk's worth of bytes (~1 MB); the encoder hook cannot fail */
	const float mx = lut_ternarize(x, n, t);
	uint32_t bits;
	memcpy(&bits, &mx, sizeof bits);
	uint32_t cur = __atomic_load_n(&s->max_bits, __ATOMIC_RELAXED);
	while (bits > cur &&
	       !__atomic_compare_exchange_n(&s->max_bits, &cur, bits, true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	/* r0 and nr are multiples of BM (row_align): lut_pack_tiles cannot fail on them */
	lut_pack_tiles(s->q, &s->p, t, (uint32_t)(r0 / s->p.BM), (uint32_t)(nr / s->p.BM), s->packed,
		       NULL);
	free(t);
}

static int tl_trailer(struct cv_enc *e, struct gguf_writer *w, struct bn_err *err)
{
	struct tl_state *s = e->state;
	const uint64_t size = lut_packed_size(s->q, s->p.m, s->p.k);
	const uint64_t off = lut_scale_offset(s->q, s->p.m, s->p.k);
	int rc = gguf_writer_write(w, s->packed, (size_t)size, err);
	if (!rc)
		rc = gguf_writer_zeros(w, (size_t)(off - size), err);
	if (!rc)
		rc = gguf_writer_write(w, &s->max_bits, 4, err); /* little-endian f32 max|w| */
	if (!rc)
		rc = gguf_writer_zeros(w, 28, err);
	return rc;
}

static void tl_fini(struct cv_enc *e)
{
	struct tl_state *s = e->state;
	if (s)
		free(s->packed);
	free_state(e);
}

int cv_tl_setup(const struct cv_ctx *x, const struct cv_tensor *t, struct cv_enc *e,
		    struct bn_err *err)
{
	memset(e, 0, sizeof *e);
	e->type = t->type;
	e->nbytes = t->nbytes;
	if (t->type != GGUF_TYPE_TL1 && t->type != GGUF_TYPE_TL2) {
		struct plain *s = malloc(sizeof *s);
		if (!s)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		s->cols = t->cols;
		s->type = t->type;
		e->row_align = 1;
		e->state = s;
		e->chunk_bytes = plain_bytes;
		e->encode = plain_encode;
		e->fini = free_state;
		return 0;
	}
	const enum lut_quant q = t->type == GGUF_TYPE_TL1 ? LUT_TL1 : LUT_TL2;
	struct tl_state *s = calloc(1, sizeof *s);
	if (!s)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	e->state = s;
	e->fini = tl_fini;
	s->q = q;
	int rc = tl_params(x, q, t->ne[1], t->ne[0], &s->p, err);
	if (rc)
		return bn_err_prefix(err, "%s", t->name);
	s->packed = calloc(1, (size_t)lut_packed_size(q, s->p.m, s->p.k));
	if (!s->packed)
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory for its packed weights", t->name);
	e->row_align = s->p.BM;
	e->chunk_bytes = tl_chunk_bytes;
	e->encode = tl_encode;
	e->trailer = tl_trailer;
	return 0;
}

/* bitmake.lut.kernel_config: the kernel_config.ini text of the model's TL shapes, in order. */
int cv_tl_add_kvs(const struct cv_ctx *x, struct gguf_writer *w, struct bn_err *err)
{
	if (x->o->no_kernel_kvs)
		return 0;
	struct lut_params *list = calloc(LUT_MAX_SHAPES, sizeof *list);
	size_t n = 0;
	enum lut_quant q = LUT_TL2;
	int rc = 0;
	if (!list)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < x->plan.n && !rc; i++) {
		const struct cv_tensor *t = &x->plan.t[i];
		if (t->type != GGUF_TYPE_TL1 && t->type != GGUF_TYPE_TL2)
			continue;
		q = t->type == GGUF_TYPE_TL1 ? LUT_TL1 : LUT_TL2;
		size_t j = 0;
		while (j < n && !(list[j].m == t->ne[1] && list[j].k == t->ne[0]))
			j++;
		if (j < n)
			continue;
		if (n == LUT_MAX_SHAPES) {
			rc = bn_seterr(err, BN_ERANGE, "more than %d TL weight shapes", LUT_MAX_SHAPES);
			break;
		}
		rc = tl_params(x, q, t->ne[1], t->ne[0], &list[n++], err);
	}
	char *ini = NULL;
	size_t len = 0;
	if (!rc && n)
		rc = lut_ini_format(list, n, &ini, &len, err);
	if (!rc && n)
		rc = gguf_writer_add_strn(w, LUT_GGUF_KERNEL_CONFIG, ini, len, err);
	free(ini);
	free(list);
	return rc;
}

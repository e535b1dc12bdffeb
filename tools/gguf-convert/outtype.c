/* The output types of gguf-convert: for each, which ggml type every tensor gets and how one
 * tensor's f32 rows are encoded (convert-quantize.md §4.3 for f32/f16).  Invariant: choose()
 * and setup() agree on type and byte count, and encode() writes exactly chunk_bytes() bytes.
 * A new type (TL1/TL2) is one table entry with its own choose/setup/add_kvs. */
#include <math.h>
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
		       size_t chunk, uint8_t *dst)
{
	(void)r0;
	(void)chunk;
	memcpy(dst, x, nr * *(const uint64_t *)e->state * 4);
}

static uint64_t f16_bytes(const struct cv_enc *e, uint64_t r0, uint64_t nr)
{
	(void)r0;
	return nr * *(const uint64_t *)e->state * 2;
}

/* numpy astype(float16): round to nearest even */
static void f16_encode(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
		       size_t chunk, uint8_t *dst)
{
	(void)r0;
	(void)chunk;
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

/* ---- direct ternary outputs: i2s-quantize's plan, straight from the checkpoint ----------------
 * Every tensor gets the type `llama-quantize <f32 file> <TYPE> 1` would give it (quant_plan:
 * I2_S/TQ for the projections, F16 or Q8_0 for the embedding, F32 copies for the rest), the KVs
 * are the f32 file's with general.file_type set in place and general.quantization_version
 * appended, so the file is byte for byte the two-step result. */

static enum qp_target target_of(const struct cv_outtype *ot)
{
	return ot->file_type == QP_FTYPE_TQ1_0 ? QP_TQ1_0 :
	       ot->file_type == QP_FTYPE_TQ2_0 ? QP_TQ2_0 : QP_I2_S;
}

static int direct_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err)
{
	const struct qp_opts qo = {
		.target = target_of(x->o->outtype),
		.token_embd_type = x->o->quant_embd ? GGUF_TYPE_F16 : QP_TYPE_RULE,
		.output_type = QP_TYPE_RULE,
	};
	const struct qp_model qm = { .has_output = x->has_output };
	int rc = qp_plan_tensor(&qo, &qm, t->name, GGUF_TYPE_F32, t->n_dims, t->ne, &t->qp, err);
	if (rc)
		return rc;
	t->type = t->qp.out_type;
	t->nbytes = t->qp.out_nbytes;
	return 0;
}

/* Run state: llama-quantize's stale I2_S padding (--emulate-stale-tail), or NULL for zeros. */
static int direct_begin(struct cv_ctx *x, struct bn_err *err)
{
	if (!x->o->emulate_stale_tail)
		return 0;
	struct qp_tensor *plan = malloc((x->plan.n ? x->plan.n : 1) * sizeof *plan);
	if (!plan)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < x->plan.n; i++)
		plan[i] = x->plan.t[i].qp;
	x->ot_state = qp_stale_new(plan, x->plan.n);
	free(plan);
	return x->ot_state ? 0 : bn_seterr(err, BN_ENOMEM, "out of memory");
}

static void direct_end(struct cv_ctx *x)
{
	qp_stale_free(x->ot_state);
	x->ot_state = NULL;
}

static int direct_kvs(const struct cv_ctx *x, struct gguf_writer *w, struct bn_err *err)
{
	(void)x;
	return gguf_writer_add_u32(w, "general.quantization_version", GGUF_QNT_VERSION, err);
}

struct denc {
	const struct cv_tensor *t;
	size_t index;                 /* in the plan, for the stale padding */
	struct qp_stale *stale;
	bool check;                   /* ternary target: refuse non-ternary input */
	bool force;
	const char *type_name;
	struct qp_stats *part;        /* per chunk, filled by encode() */
	size_t n_part;
};

static uint64_t direct_bytes(const struct cv_enc *e, uint64_t r0, uint64_t nr)
{
	(void)r0;
	const struct denc *d = e->state;
	return qp_rows_nbytes(d->t->type, d->t->cols, nr);
}

static int direct_begin_tensor(struct cv_enc *e, size_t n_chunks, struct bn_err *err)
{
	struct denc *d = e->state;
	free(d->part);
	if (!(d->part = malloc((n_chunks ? n_chunks : 1) * sizeof *d->part)))
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n_chunks; i++)
		qp_stats_init(&d->part[i]);
	d->n_part = n_chunks;
	return 0;
}

/* qp_stats_add over x[0..n) in the integer domain, where max and min reductions vectorize:
 * for finite floats the order of |x| is the order of their bit patterns without the sign.  A
 * chunk with NaN or infinity goes to qp_stats_add itself, which records where. */
CV_HOT static void fast_stats(struct qp_stats *st, const float *x, size_t n, uint64_t first)
{
	uint32_t mx = 0, mn = 0x7fffffffu, bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &x[i], 4);
		u &= 0x7fffffffu;
		mx = u > mx ? u : mx;
		uint32_t nz = u ? u : 0x7fffffffu;
		mn = nz < mn ? nz : mn;
		bad |= u >= 0x7f800000u;
	}
	if (bad) {
		qp_stats_add(st, x, n, first);
		return;
	}
	struct qp_stats c;
	qp_stats_init(&c);
	c.absmax = (double)bn_bits_f32(mx);
	if (mn != 0x7fffffffu)
		c.min_nonzero = bn_bits_f32(mn);
	qp_stats_merge(st, &c);
}

/* Encodes a chunk and records its statistics (the I2_S scale, the ternary and NaN checks),
 * which the trailer checks before the last bytes of the tensor: one pass over the values.
 * The I2_S codes depend only on the signs (§7.4: 1 if |x| < 1e-6, else 2 if x·scale > 0, else
 * 0, with scale = max|x| > 0 whenever any |x| >= 1e-6), so any positive scale gives the same
 * bytes and the real one is only needed for the tail. */
static void direct_encode(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
			  size_t chunk, uint8_t *dst)
{
	struct denc *d = e->state;
	const struct cv_tensor *t = d->t;
	fast_stats(&d->part[chunk], x, (size_t)(nr * t->cols), r0 * t->cols);
	qp_encode_rows(t->type, x, t->cols, (size_t)nr, 1.0, dst);
	if (d->stale)
		qp_stale_feed(d->stale, d->index, qp_rows_nbytes(t->type, t->cols, r0), dst,
			      (size_t)qp_rows_nbytes(t->type, t->cols, nr));
}

static int direct_trailer(struct cv_enc *e, struct gguf_writer *w, struct bn_err *err)
{
	struct denc *d = e->state;
	const struct cv_tensor *t = d->t;
	struct qp_stats all;
	qp_stats_init(&all);
	for (size_t i = 0; i < d->n_part; i++)
		qp_stats_merge(&all, &d->part[i]);
	if (all.n_nonfinite) /* llama-quantize rejects these too */
		return bn_seterr(err, BN_EFORMAT, "%s: %s holds %llu NaN or infinite values (the "
				 "first, %g, at element %llu)", t->name, t->src->name,
				 (unsigned long long)all.n_nonfinite, (double)all.first_bad_value,
				 (unsigned long long)all.first_nonfinite);
	if (d->check && !d->force && !qp_stats_ternary(&all, t->type))
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: not a 1.58-bit checkpoint: %s is not "
				 "ternary (nonzero magnitudes from %g to %g), so %s would destroy it; "
				 "use --force to convert anyway", t->name, t->src->name,
				 (double)all.min_nonzero, all.absmax, d->type_name);
	if (t->type != GGUF_TYPE_I2_S)
		return 0;
	uint8_t tail[32];
	qp_i2s_tail((float)all.absmax, d->stale ? qp_stale_pad(d->stale, d->index) : NULL, tail);
	if (d->stale)
		qp_stale_feed(d->stale, d->index, t->n / 4, tail, 4);
	return gguf_writer_write(w, tail, sizeof tail, err);
}

static void direct_fini(struct cv_enc *e)
{
	struct denc *d = e->state;
	if (d)
		free(d->part);
	free(d);
	e->state = NULL;
}

static int direct_setup(const struct cv_ctx *x, const struct cv_tensor *t, struct cv_enc *e,
			struct bn_err *err)
{
	struct denc *d = calloc(1, sizeof *d);
	if (!d)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	d->t = t;
	d->index = (size_t)(t - x->plan.t);
	d->stale = x->ot_state;
	d->force = x->o->force;
	d->type_name = x->o->outtype->name;
	d->check = t->type == GGUF_TYPE_I2_S || t->type == GGUF_TYPE_TQ1_0 ||
		   t->type == GGUF_TYPE_TQ2_0;
	memset(e, 0, sizeof *e);
	e->type = t->type;
	e->nbytes = t->nbytes;
	e->row_align = 1;
	e->checks = true;
	e->state = d;
	e->chunk_bytes = direct_bytes;
	e->begin = direct_begin_tensor;
	e->encode = direct_encode;
	e->trailer = direct_trailer;
	e->fini = direct_fini;
	return 0;
}

/* ---- the table ------------------------------------------------------------------------------- */

static const struct cv_outtype types[] = {
	{ "f32", GGUF_FTYPE_ALL_F32, false,
	  "every tensor F32 (what setup_env.py quantizes from)", f32_choose, float_setup, NULL,
	  NULL, NULL },
	{ "f16", GGUF_FTYPE_MOSTLY_F16, false,
	  "2-D weights F16; norms, 1-D tensors and token_embd (unless --quant-embd) F32",
	  f16_choose, float_setup, NULL, NULL, NULL },
	{ "i2_s", QP_FTYPE_I2_S, true,
	  "bitnet.cpp's 2-bit ternary; what the f32 file + i2s-quantize (llama-quantize) give",
	  direct_choose, direct_setup, direct_kvs, direct_begin, direct_end },
	{ "tq1_0", QP_FTYPE_TQ1_0, true,
	  "mainline llama.cpp's 1.69-bit ternary; the f32 file + i2s-quantize --type tq1_0",
	  direct_choose, direct_setup, direct_kvs, direct_begin, direct_end },
	{ "tq2_0", QP_FTYPE_TQ2_0, true,
	  "mainline llama.cpp's 2.06-bit ternary; the f32 file + i2s-quantize --type tq2_0",
	  direct_choose, direct_setup, direct_kvs, direct_begin, direct_end },
	{ "tl1", GGUF_FTYPE_MOSTLY_TL1, true,
	  "projections TL1 (ARM NEON LUT kernels, tiles from --kernel-config), output F16, rest F32",
	  cv_tl1_choose, cv_tl_setup, cv_tl_add_kvs, NULL, NULL },
	{ "tl2", GGUF_FTYPE_MOSTLY_TL2, true,
	  "projections TL2 (x86 AVX2 LUT kernels, tiles from --kernel-config), output F16, rest F32",
	  cv_tl2_choose, cv_tl_setup, cv_tl_add_kvs, NULL, NULL },
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

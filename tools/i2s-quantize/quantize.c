/* i2s-quantize's engine (quantize.h): plan every tensor, then stream the output tensor by
 * tensor in chunks of rows that the threads split: encode (with the statistics), write, read the
 * chunk back from the output file and check it against the input while that is still in cache.
 * Input and output pages are released as soon as a chunk is done, so the resident set is the
 * chunk buffers, not the model. */
#include "quantize.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_log.h"
#include "bn_progress.h"
#include "bn_util.h"
#include "i2s.h"
#include "kernels.h"

/* Elements per write chunk and thread: 1 MiB of f32, which stays in L2 between the encoding
 * and the check of the bytes read back. */
#define CHUNK_ELEMS ((size_t)1 << 18)
#define STEP_ELEMS ((size_t)1 << 14)  /* elements a thread handles at a time */
#define MAX_THREADS 256

/* ---- pages ----------------------------------------------------------------------------------- */

static size_t page_size(void)
{
	static size_t ps;
	if (!ps) {
		long v = sysconf(_SC_PAGESIZE);
		ps = v > 0 ? (size_t)v : 4096;
	}
	return ps;
}

/* How far behind a chunk we also drop: the kernel's fault-around maps the page-cache pages of
 * the aligned window around a fault (64 KiB by default), which reaches back into chunks already
 * dropped; 2 MiB covers any window and large folio. */
#define DROP_BEHIND ((size_t)2 << 20)

/* The mapping a pointer lies in: its first byte, to bound DROP_BEHIND. */
static const uint8_t *map_base(const struct gguf_reader *r)
{
	const struct gguf_tensor *t = gguf_n_tensors(r) ? gguf_tensor(r, 0) : NULL;
	return t ? t->data - t->offset - gguf_data_offset(r) : NULL;
}

/* Drops the mapped pages of [p, p+n), and of up to DROP_BEHIND bytes before it (never before
 * base), from our resident set; the page cache keeps them and a later read faults them back
 * in.  Rounded outwards: dropping a neighbour's page only costs a re-fault. */
static void drop_pages(const uint8_t *base, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	const uint8_t *lo = (size_t)(p - base) > DROP_BEHIND ? p - DROP_BEHIND : base;
	uintptr_t a = (uintptr_t)lo & ~(uintptr_t)(page_size() - 1);
	uintptr_t e = ((uintptr_t)p + n + page_size() - 1) & ~(uintptr_t)(page_size() - 1);
	madvise((void *)a, e - a, MADV_DONTNEED);
}

static void prefetch_pages(const void *p, size_t n)
{
	if (!n)
		return;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page_size() - 1);
	madvise((void *)a, (uintptr_t)p + n - a, MADV_WILLNEED);
}

/* Maps [p, p+n) in one call instead of a page fault every few pages (Linux 5.14+; older
 * kernels refuse the advice and the pages fault in as usual). */
static void populate_pages(const void *p, size_t n)
{
#ifdef MADV_POPULATE_READ
	if (!n)
		return;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page_size() - 1);
	madvise((void *)a, (uintptr_t)p + n - a, MADV_POPULATE_READ);
#else
	(void)p;
	(void)n;
#endif
}

/* ---- the values of a tensor ------------------------------------------------------------------ */

/* Where a converted tensor's f32 values come from. */
struct source {
	const uint8_t *data;
	uint32_t type; /* F32, F16, BF16 or I2_S */
	uint64_t ne0;
	float i2s_scale;
	enum iq_layout layout;
};

static uint64_t source_row_bytes(const struct source *s)
{
	return qp_rows_nbytes(s->type, s->ne0, 1);
}

/* Rows [r0, r0+n) as f32: a pointer into the mapping for F32, else decoded into buf. */
static const float *source_rows(const struct source *s, uint64_t r0, size_t n, float *buf)
{
	const uint8_t *p = s->data + r0 * source_row_bytes(s);
	switch (s->type) {
	case GGUF_TYPE_F32:
		return (const float *)(const void *)p;
	case GGUF_TYPE_I2_S:
		iq_i2s_decode(s->layout, p, (size_t)(n * s->ne0), s->i2s_scale, buf);
		return buf;
	default:
		qp_decode_rows(s->type, p, s->ne0, n, 0.0f, buf);
		return buf;
	}
}

/* ---- parallel row tasks ---------------------------------------------------------------------- */

enum task_kind { TASK_STATS, TASK_ENCODE, TASK_VERIFY };

struct task {
	enum task_kind kind;
	const struct source *src;
	const struct qp_tensor *t;
	uint64_t r0;            /* first row of the chunk */
	size_t nrows;           /* rows in the chunk */
	size_t step_rows;       /* rows per thread step */
	uint8_t *out;           /* encode: the chunk's output buffer */
	const uint8_t *written; /* verify: the chunk's bytes read back from the output file */
	float *scratch[MAX_THREADS];
	struct qp_stats stats[MAX_THREADS];
	uint64_t bad[MAX_THREADS]; /* verify: first element that does not read back right */
};

/* Every thread takes a contiguous share of the chunk's rows and walks it in steps small enough
 * for its scratch buffer and the L2 cache: whole rows, so whole blocks of every format. */
static void run_rows(void *arg, unsigned ith, unsigned nth)
{
	struct task *k = arg;
	const struct qp_tensor *t = k->t;
	size_t per = (k->nrows + nth - 1) / nth;
	size_t a = BN_MIN((size_t)ith * per, k->nrows), b = BN_MIN(a + per, k->nrows);
	uint64_t out_row = qp_rows_nbytes(t->out_type, t->ne0, 1);
	for (size_t r = a; r < b; r += k->step_rows) {
		size_t n = BN_MIN(k->step_rows, b - r);
		uint64_t row = k->r0 + r;
		const float *x = source_rows(k->src, row, n, k->scratch[ith]);
		if (k->kind == TASK_STATS) {
			qp_stats_add(&k->stats[ith], x, (size_t)(n * t->ne0), row * t->ne0);
		} else if (k->kind == TASK_ENCODE) {
			qp_stats_add(&k->stats[ith], x, (size_t)(n * t->ne0), row * t->ne0);
			qp_encode_rows(t->out_type, x, t->ne0, n, 1.0, k->out + r * out_row);
		} else if (k->bad[ith] == UINT64_MAX) {
			size_t i = qp_verify_rows(t->out_type, k->written + r * out_row, x, t->ne0, n);
			if (i != SIZE_MAX)
				k->bad[ith] = row * t->ne0 + i;
		}
	}
}

/* ---- the run --------------------------------------------------------------------------------- */

struct run {
	const struct iq_opts *o;
	struct gguf_reader *in;
	struct gguf_reader *back; /* the output file, re-opened once its header is written */
	const uint8_t *in_base, *back_base; /* their mappings' first bytes */
	struct qp_tensor *plan;
	struct source *src;       /* per tensor */
	size_t n;
	struct kern_ctx *kc;
	unsigned nth;
	struct task *task;
	uint8_t *chunk;           /* encode output buffer */
	struct qp_stale *stale;
	struct bn_progress prog;
	uint64_t done;
};

static size_t chunk_rows(const struct run *R, const struct qp_tensor *t)
{
	return (size_t)BN_MAX(1, BN_MIN(t->nrows, CHUNK_ELEMS * R->nth / BN_MAX(t->ne0, 1)));
}

static void task_run(struct run *R, enum task_kind kind, size_t i, uint64_t r0, size_t nrows)
{
	struct task *k = R->task;
	k->kind = kind;
	k->src = &R->src[i];
	k->t = &R->plan[i];
	k->r0 = r0;
	k->nrows = nrows;
	k->step_rows = (size_t)BN_MAX(1, STEP_ELEMS / BN_MAX(R->plan[i].ne0, 1));
	for (unsigned j = 0; j < R->nth; j++) {
		qp_stats_init(&k->stats[j]);
		k->bad[j] = UINT64_MAX;
	}
	kern_parallel(R->kc, run_rows, k);
}

static int interrupted(struct bn_err *err)
{
	return bn_interrupted ? bn_seterr(err, BN_EINTR, "interrupted") : 0;
}

static const char *tname(const struct run *R, size_t i)
{
	return gguf_tensor(R->in, i)->name;
}

static int write_bytes(struct run *R, struct gguf_writer *w, size_t i, uint64_t off,
		       const uint8_t *p, size_t n, struct bn_err *err)
{
	int rc = gguf_writer_write(w, p, n, err);
	if (rc)
		return rc;
	if (R->stale)
		qp_stale_feed(R->stale, i, off, p, n);
	R->done += n;
	bn_progress_update(&R->prog, R->done);
	return 0;
}

/* The first element of the chunk the threads found wrong, as an error. */
static int chunk_verdict(struct run *R, size_t i, struct bn_err *err)
{
	uint64_t bad = UINT64_MAX;
	for (unsigned j = 0; j < R->nth; j++)
		bad = BN_MIN(bad, R->task->bad[j]);
	if (bad == UINT64_MAX)
		return 0;
	return bn_seterr(err, BN_EVERIFY, "%s: element %llu (row %llu) does not read back from "
			 "%s.tmp as its input value demands (%s)", tname(R, i),
			 (unsigned long long)bad, (unsigned long long)(bad / R->plan[i].ne0),
			 R->o->out_path, gguf_type_name(R->plan[i].out_type));
}

static int nonfinite_error(struct run *R, size_t i, const struct qp_stats *st, struct bn_err *err)
{
	return bn_seterr(err, BN_EFORMAT, "%s: element %llu is %g (%llu non-finite values); the "
			 "input is corrupt", tname(R, i), (unsigned long long)st->first_nonfinite,
			 (double)st->first_bad_value, (unsigned long long)st->n_nonfinite);
}

/* Copies an unconverted tensor, checking float tensors for NaN/Inf as llama-quantize's loader
 * does, and compares the bytes read back. */
static int copy_tensor(struct run *R, struct gguf_writer *w, size_t i, struct bn_err *err)
{
	const struct gguf_tensor *in = gguf_tensor(R->in, i), *out = gguf_tensor(R->back, i);
	const struct qp_tensor *t = &R->plan[i];
	bool is_float = in->type == GGUF_TYPE_F32 || in->type == GGUF_TYPE_F16 ||
			in->type == GGUF_TYPE_BF16;
	uint64_t row_bytes = is_float ? qp_rows_nbytes(in->type, t->ne0, 1) : 1;
	size_t cr = is_float ? chunk_rows(R, t) : CHUNK_ELEMS;
	uint64_t rows = is_float ? t->nrows : in->nbytes;
	int rc;
	for (uint64_t r0 = 0; r0 < rows; r0 += cr) {
		size_t n = (size_t)BN_MIN(cr, rows - r0);
		uint64_t off = r0 * row_bytes, len = n * row_bytes;
		if (is_float) {
			task_run(R, TASK_STATS, i, r0, n);
			struct qp_stats st;
			qp_stats_init(&st);
			for (unsigned j = 0; j < R->nth; j++)
				qp_stats_merge(&st, &R->task->stats[j]);
			if (st.n_nonfinite)
				return nonfinite_error(R, i, &st, err);
		}
		if ((rc = write_bytes(R, w, i, off, in->data + off, (size_t)len, err)))
			return rc;
		if (memcmp(out->data + off, in->data + off, (size_t)len) != 0)
			return bn_seterr(err, BN_EVERIFY, "%s: the bytes read back from %s.tmp differ "
					 "from the input's", in->name, R->o->out_path);
		drop_pages(R->in_base, in->data + off, (size_t)len);
		drop_pages(R->back_base, out->data + off, (size_t)len);
	}
	return 0;
}

/* Encodes a tensor chunk by chunk in one pass over the input: statistics and codes together,
 * write, read the chunk back from the file and check it against the input (still in cache),
 * release both.  The checks that need the whole tensor (NaN/Inf, ternary, the I2_S scale)
 * follow its last chunk. */
static int convert_tensor(struct run *R, struct gguf_writer *w, size_t i, struct bn_err *err)
{
	const struct qp_tensor *t = &R->plan[i];
	const struct source *s = &R->src[i];
	const struct gguf_tensor *out = gguf_tensor(R->back, i);
	size_t cr = chunk_rows(R, t);
	uint64_t in_row = source_row_bytes(s), out_row = qp_rows_nbytes(t->out_type, t->ne0, 1);
	struct qp_stats st;
	qp_stats_init(&st);
	int rc;
	for (uint64_t r0 = 0; r0 < t->nrows; r0 += cr) {
		if ((rc = interrupted(err)))
			return rc;
		size_t n = (size_t)BN_MIN(cr, t->nrows - r0);
		const uint8_t *p = s->data + r0 * in_row;
		populate_pages(p, (size_t)(n * in_row));
		if (r0 + n < t->nrows)
			prefetch_pages(p + n * in_row, (size_t)(BN_MIN(cr, t->nrows - r0 - n) * in_row));
		task_run(R, TASK_ENCODE, i, r0, n);
		for (unsigned j = 0; j < R->nth; j++)
			qp_stats_merge(&st, &R->task->stats[j]);
		if (st.n_nonfinite)
			return nonfinite_error(R, i, &st, err);
		if ((rc = write_bytes(R, w, i, r0 * out_row, R->chunk, (size_t)(n * out_row), err)))
			return rc;
		R->task->written = out->data + r0 * out_row;
		task_run(R, TASK_VERIFY, i, r0, n);
		if ((rc = chunk_verdict(R, i, err)))
			return rc;
		drop_pages(R->in_base, p, (size_t)(n * in_row));
		drop_pages(R->back_base, out->data + r0 * out_row, (size_t)(n * out_row));
	}
	bool ternary_out = t->out_type == GGUF_TYPE_I2_S || t->out_type == GGUF_TYPE_TQ1_0 ||
			   t->out_type == GGUF_TYPE_TQ2_0;
	if (ternary_out && !qp_stats_ternary(&st, t->out_type) && !R->o->force) {
		if (t->out_type == GGUF_TYPE_I2_S && st.absmax < 1e-6 &&
		    (double)st.min_nonzero == st.absmax)
			return bn_seterr(err, BN_EINVAL,
					 "%s: every non-zero value is %g, below I2_S's 1e-6 dead zone; "
					 "--force writes them as 0", tname(R, i), st.absmax);
		return bn_seterr(err, BN_EINVAL,
				 "%s: not ternary: non-zero |values| range over %g .. %g where a "
				 "1.58-bit tensor has one magnitude; not a 1.58-bit model (or not "
				 "weight_quant'ed)? --force quantizes anyway (%s)", tname(R, i),
				 (double)st.min_nonzero, st.absmax,
				 t->out_type == GGUF_TYPE_I2_S ? "by sign" : "rounding to the block max");
	}
	if (t->out_type == GGUF_TYPE_I2_S) {
		/* codes verified, stored scale = max|x|, every non-zero |x| = max|x| (ternary): every
		 * element decodes to its input value exactly */
		uint8_t tail[I2S_TAIL];
		qp_i2s_tail((float)st.absmax, R->stale ? qp_stale_pad(R->stale, i) : NULL, tail);
		if ((rc = write_bytes(R, w, i, t->n / 4, tail, sizeof tail, err)))
			return rc;
		if (memcmp(out->data + t->n / 4, tail, sizeof tail) != 0)
			return bn_seterr(err, BN_EVERIFY, "%s: the scale and padding read back from "
					 "%s.tmp are not what was written", tname(R, i), R->o->out_path);
	}
	return 0;
}

/* Re-opens the output once its header is written: the file is extended to its final size
 * first (the writer keeps writing sequentially from its own offset), so the reader accepts it
 * and its mapping shows every chunk as soon as it is written.  Checks that the header says
 * what the plan says. */
static int open_back(struct run *R, const char *tmp, struct bn_err *err)
{
	struct stat sb;
	if (stat(tmp, &sb) < 0)
		return bn_seterrno(err, errno, "%s: cannot stat", tmp);
	uint64_t size = (uint64_t)sb.st_size;
	for (size_t i = 0; i < R->n; i++)
		size += (R->plan[i].out_nbytes + 31) / 32 * 32;
	if (truncate(tmp, (off_t)size) < 0)
		return bn_seterrno(err, errno, "%s: cannot extend to %llu bytes", tmp,
				   (unsigned long long)size);
	if (!(R->back = gguf_open(tmp, err))) {
		bn_err_prefix(err, "reading the output back");
		return -BN_EVERIFY;
	}
	R->back_base = map_base(R->back);
	uint32_t ft = 0;
	int64_t kv = gguf_find_key(R->back, "general.file_type");
	if (gguf_n_tensors(R->back) != R->n || kv < 0 || gguf_get_u32(R->back, kv, &ft, NULL) < 0 ||
	    ft != qp_target_ftype(R->o->plan.target))
		return bn_seterr(err, BN_EVERIFY, "%s: the header read back does not match the plan",
				 tmp);
	for (size_t i = 0; i < R->n; i++) {
		const struct gguf_tensor *b = gguf_tensor(R->back, i);
		const struct qp_tensor *t = &R->plan[i];
		if (strcmp(b->name, tname(R, i)) != 0 || b->type != t->out_type ||
		    b->nbytes != t->out_nbytes || qp_n_dims(b->n_dims, b->ne) != t->n_dims ||
		    memcmp(b->ne, t->ne, sizeof t->ne) != 0)
			return bn_seterr(err, BN_EVERIFY, "%s: tensor %zu read back as '%s' (type %u, "
					 "%llu bytes), not as planned", tmp, i, b->name, b->type,
					 (unsigned long long)b->nbytes);
	}
	return 0;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int plan_all(struct run *R, struct iq_summary *s, struct bn_err *err)
{
	struct qp_model m;
	int rc = qp_model_from_gguf(R->in, &m, err);
	if (rc)
		return bn_err_prefix(err, "%s", R->o->in_path);
	R->n = gguf_n_tensors(R->in);
	R->plan = calloc(R->n + 1, sizeof *R->plan);
	R->src = calloc(R->n + 1, sizeof *R->src);
	if (!R->plan || !R->src)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < R->n; i++) {
		const struct gguf_tensor *t = gguf_tensor(R->in, i);
		if ((rc = qp_plan_tensor(&R->o->plan, &m, t->name, t->type, t->n_dims, t->ne,
					 &R->plan[i], err)))
			return rc;
		s->has_i2s_input |= t->type == GGUF_TYPE_I2_S;
	}
	s->layout.layout = IQ_LAYOUT_X86;
	if (s->has_i2s_input) {
		if ((rc = iq_detect_layout(R->in, R->o->i2s_layout, &s->layout, err)))
			return bn_err_prefix(err, "%s", R->o->in_path);
		bn_info("%s: %s", R->o->in_path, s->layout.why);
	}
	for (size_t i = 0; i < R->n; i++) {
		const struct gguf_tensor *t = gguf_tensor(R->in, i);
		struct qp_tensor *p = &R->plan[i];
		/* an ARM-layout I2_S tensor kept as I2_S is repacked into the x86 layout */
		if (t->type == GGUF_TYPE_I2_S && p->out_type == GGUF_TYPE_I2_S &&
		    s->layout.layout == IQ_LAYOUT_ARM)
			p->convert = true;
		if (t->type == GGUF_TYPE_I2_S && p->convert && t->ne[0] % I2S_BLOCK)
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: I2_S input with ne[0] = %llu, "
					 "not a multiple of 128", t->name, (unsigned long long)t->ne[0]);
		R->src[i] = (struct source){ .data = t->data, .type = t->type, .ne0 = p->ne0,
					     .layout = s->layout.layout };
		if (t->type == GGUF_TYPE_I2_S)
			R->src[i].i2s_scale = i2s_get_scale(t->data, p->n);
		s->n_of_type[p->out_type]++;
		s->n_converted += p->convert;
		s->out_bytes += p->out_nbytes;
	}
	s->n_tensors = R->n;
	return 0;
}

static int alloc_buffers(struct run *R, struct bn_err *err)
{
	size_t max_ne0 = 1, max_chunk = 1;
	for (size_t i = 0; i < R->n; i++) {
		const struct qp_tensor *t = &R->plan[i];
		max_ne0 = BN_MAX(max_ne0, (size_t)t->ne0);
		if (t->convert)
			max_chunk = BN_MAX(max_chunk, (size_t)qp_rows_nbytes(t->out_type, t->ne0,
									    chunk_rows(R, t)));
	}
	R->task = calloc(1, sizeof *R->task);
	R->chunk = malloc(max_chunk);
	if (!R->task || !R->chunk)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	R->task->out = R->chunk;
	size_t elems = BN_MAX(STEP_ELEMS, max_ne0);
	for (unsigned j = 0; j < R->nth; j++)
		if (!(R->task->scratch[j] = malloc(elems * sizeof(float))))
			return bn_seterr(err, BN_ENOMEM, "out of memory");
	return 0;
}

static void run_free(struct run *R)
{
	if (R->task)
		for (unsigned j = 0; j < MAX_THREADS; j++)
			free(R->task->scratch[j]);
	free(R->task);
	free(R->chunk);
	free(R->plan);
	free(R->src);
	qp_stale_free(R->stale);
	kern_close(R->kc);
	gguf_close(R->back);
	gguf_close(R->in);
}

int iq_quantize(const struct iq_opts *o, struct iq_summary *s, struct bn_err *err)
{
	memset(s, 0, sizeof *s);
	struct run R = { .o = o, .nth = BN_MAX(1, BN_MIN(o->threads, MAX_THREADS)) };
	struct gguf_writer *w = NULL;
	char *tmp = NULL;
	int rc;
	if (!(R.in = gguf_open(o->in_path, err)))
		return -(err->code ? err->code : BN_EIO);
	R.in_base = map_base(R.in);
	if ((rc = plan_all(&R, s, err)))
		goto out;
	if (o->stale_tail && !(R.stale = qp_stale_new(R.plan, R.n))) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	struct kern_opts ko = { .isa = "ref", .threads = R.nth, .skip_self_test = true };
	if ((rc = kern_open(&R.kc, &ko, err)) || (rc = alloc_buffers(&R, err)))
		goto out;
	if (!(tmp = malloc(strlen(o->out_path) + 5))) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	sprintf(tmp, "%s.tmp", o->out_path); /* gguf_writer's temporary name */

	double t0 = bn_now();
	if (!(w = gguf_writer_open(o->out_path, err))) {
		rc = -(err->code ? err->code : BN_EIO);
		goto out;
	}
	if ((rc = qp_copy_kvs(w, R.in, o->plan.target, err)))
		goto out;
	for (size_t i = 0; i < R.n; i++)
		if ((rc = gguf_writer_add_tensor(w, tname(&R, i), R.plan[i].out_type,
						 R.plan[i].n_dims, R.plan[i].ne, err)))
			goto out;
	if ((rc = gguf_writer_write_header(w, err)) || (rc = open_back(&R, tmp, err)))
		goto out;
	bn_progress_init(&R.prog, "quantizing", s->out_bytes);
	for (size_t i = 0; i < R.n && !rc; i++) {
		if (!(rc = interrupted(err)))
			rc = R.plan[i].convert ? convert_tensor(&R, w, i, err)
					       : copy_tensor(&R, w, i, err);
		bn_verbose("%s: %s -> %s", tname(&R, i), gguf_type_name(R.plan[i].in_type),
			   gguf_type_name(R.plan[i].out_type));
	}
	if (rc)
		goto out;
	bn_progress_finish(&R.prog);
	s->t_write = bn_now() - t0;
	t0 = bn_now();
	rc = gguf_writer_commit(w, err);
	s->t_commit = bn_now() - t0;
out:
	gguf_writer_close(w);
	free(tmp);
	run_free(&R);
	return rc;
}

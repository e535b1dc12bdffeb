/* i2s-quantize's engine (quantize.h).  The model is cut into chunks of whole rows (about 1 MiB
 * of input each, so that a chunk stays in L2); N worker threads take chunks in order, and each
 * does the whole life of its chunk: encode with the statistics a step at a time, decoding each
 * step's encoding against its input values while both are still in L1/L2; wait for its turn
 * and write (the only serial part, in file order); read the chunk back from the output file and
 * compare it with the bytes it wrote; release both sets of pages.  The two checks together say
 * that the file decodes to the input values, at the cost of one extra read of the encoding
 * instead of a second pass over the four-times-larger input.  No barrier per
 * chunk or per tensor: workers only wait for the write turn, on a condition variable, so a busy
 * machine costs time but never spin.  The resident set is the chunk buffers, not the model. */
#include "quantize.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
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

#define CHUNK_ELEMS ((size_t)1 << 18) /* elements per chunk: 1 MiB of f32 */
#define CHUNK_BYTES ((size_t)1 << 20) /* bytes per chunk of a raw copy */
#define STEP_ELEMS ((size_t)1 << 14)  /* elements decoded into scratch at a time */
#define MAX_THREADS 256
#define WRITEBACK_STEP ((uint64_t)16 << 20) /* start the disk writes every 16 MiB */
/* How far behind a chunk its pages are dropped too: a page fault maps the cached pages around
 * it (the fault-around window, 64 KiB by default, or the page cache's large folio, up to 2 MiB
 * here), reaching back into chunks that were dropped already; without this the resident set
 * creeps up by ~3 % of the input. */
#define DROP_BEHIND ((size_t)2 << 20)

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

static uintptr_t page_down(const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)(page_size() - 1);
}

/* The first byte of the mapping a reader's tensors live in, to bound DROP_BEHIND. */
static const uint8_t *map_base(const struct gguf_reader *r)
{
	const struct gguf_tensor *t = gguf_n_tensors(r) ? gguf_tensor(r, 0) : NULL;
	return t ? t->data - t->offset - gguf_data_offset(r) : NULL;
}

/* Drops the mapped pages of [p, p+n), and up to DROP_BEHIND bytes before it (never before
 * base), from our resident set: the page cache keeps them, a later read faults them back in.
 * Rounded outwards: dropping a neighbour's page only costs a re-fault. */
static void drop_pages(const uint8_t *base, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	const uint8_t *lo = (size_t)(p - base) > DROP_BEHIND ? p - DROP_BEHIND : base;
	uintptr_t a = page_down(lo), e = page_down(p + n + page_size() - 1);
	madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Starts reading [p, p+n) from disk if it is not cached yet (a cold input).  The advice walks
 * the page cache even when everything is there (~7 % of a warm run), so it is only given when
 * the range's first page is missing. */
static void read_ahead(const uint8_t *p, size_t n)
{
	unsigned char in_core = 0;
	if (n && (mincore((void *)page_down(p), 1, &in_core) != 0 || !(in_core & 1)))
		madvise((void *)page_down(p), (uintptr_t)p + n - page_down(p), MADV_WILLNEED);
}

/* ---- the values of a tensor ------------------------------------------------------------------ */

/* Where a tensor's input values come from. */
struct source {
	const uint8_t *data;
	uint32_t type; /* F32, F16, BF16 or I2_S when converted or checked */
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

/* ---- the run --------------------------------------------------------------------------------- */

/* A piece of one tensor: rows [r0, r0+n) of a converted or float tensor, or bytes [r0, r0+n)
 * of a tensor copied as raw bytes. */
struct chunk {
	uint32_t tensor;
	bool raw, last;
	uint64_t r0, n;
};

struct run {
	const struct iq_opts *o;
	struct gguf_reader *in;
	struct gguf_reader *back; /* the output file, re-opened once its header is written */
	const uint8_t *in_base, *back_base;
	struct qp_tensor *plan;
	struct source *src;       /* per tensor */
	size_t n;
	struct chunk *chunks;
	size_t n_chunks;
	struct gguf_writer *w;
	struct qp_stale *stale;
	int wb_fd;                /* the output file, read-only, to start its writeback early */

	atomic_size_t next;       /* next chunk to take */
	pthread_mutex_t mu;       /* everything below */
	pthread_cond_t turn_cv;
	size_t turn;              /* the chunk whose write is next */
	struct qp_stats *tstats;  /* per tensor, merged in write order */
	bool failed;
	struct bn_err err;
	struct bn_progress prog;
	uint64_t done, wb_done;
};

struct worker {
	struct run *R;
	pthread_t tid;
	uint8_t *out;    /* the chunk's encoded bytes */
	float *scratch;  /* decoded input values */
};

static const char *tname(const struct run *R, size_t i)
{
	return gguf_tensor(R->in, i)->name;
}

/* Records the first error (others are dropped) and wakes everyone up.  Caller holds mu. */
static void fail_locked(struct run *R, const struct bn_err *e)
{
	if (!R->failed) {
		R->failed = true;
		R->err = *e;
	}
	pthread_cond_broadcast(&R->turn_cv);
}

static void fail(struct run *R, const struct bn_err *e)
{
	pthread_mutex_lock(&R->mu);
	fail_locked(R, e);
	pthread_mutex_unlock(&R->mu);
}

/* Writes n bytes of tensor i at offset off within it.  Caller holds mu and has the turn. */
static int write_locked(struct run *R, size_t i, uint64_t off, const uint8_t *p, size_t n,
			struct bn_err *e)
{
	int rc = gguf_writer_write(R->w, p, n, e);
	if (rc)
		return rc;
	if (R->stale)
		qp_stale_feed(R->stale, i, off, p, n);
	R->done += n;
	bn_progress_update(&R->prog, R->done);
	return 0;
}

static int nonfinite_error(struct run *R, size_t i, const struct qp_stats *st, struct bn_err *e)
{
	return bn_seterr(e, BN_EFORMAT, "%s: element %llu is %g (%llu non-finite values); the "
			 "input is corrupt", tname(R, i), (unsigned long long)st->first_nonfinite,
			 (double)st->first_bad_value, (unsigned long long)st->n_nonfinite);
}

/* After a converted tensor's last chunk: the ternary check and the I2_S tail.  Caller holds mu
 * and has the turn. */
static int finish_tensor_locked(struct run *R, size_t i, struct bn_err *e)
{
	const struct qp_tensor *t = &R->plan[i];
	const struct qp_stats *st = &R->tstats[i];
	bool ternary_out = t->out_type == GGUF_TYPE_I2_S || t->out_type == GGUF_TYPE_TQ1_0 ||
			   t->out_type == GGUF_TYPE_TQ2_0;
	if (ternary_out && !qp_stats_ternary(st, t->out_type) && !R->o->force) {
		if (t->out_type == GGUF_TYPE_I2_S && st->absmax < 1e-6 &&
		    (double)st->min_nonzero == st->absmax)
			return bn_seterr(e, BN_EINVAL,
					 "%s: every non-zero value is %g, below I2_S's 1e-6 dead zone; "
					 "--force writes them as 0", tname(R, i), st->absmax);
		return bn_seterr(e, BN_EINVAL,
				 "%s: not ternary: non-zero |values| range over %g .. %g where a "
				 "1.58-bit tensor has one magnitude; not a 1.58-bit model (or not "
				 "weight_quant'ed)? --force quantizes anyway (%s)", tname(R, i),
				 (double)st->min_nonzero, st->absmax,
				 t->out_type == GGUF_TYPE_I2_S ? "by sign" : "rounding to the block max");
	}
	if (t->out_type != GGUF_TYPE_I2_S)
		return 0;
	/* the codes are checked chunk by chunk; with the stored scale = max|x| and every non-zero
	 * |x| = max|x| (ternary), every element decodes to its input value exactly */
	uint8_t tail[I2S_TAIL];
	qp_i2s_tail((float)st->absmax, R->stale ? qp_stale_pad(R->stale, i) : NULL, tail);
	int rc = write_locked(R, i, t->n / 4, tail, sizeof tail, e);
	if (rc)
		return rc;
	if (memcmp(gguf_tensor(R->back, i)->data + t->n / 4, tail, sizeof tail) != 0)
		return bn_seterr(e, BN_EVERIFY, "%s: the scale and padding read back from %s.tmp are "
				 "not what was written", tname(R, i), R->o->out_path);
	return 0;
}

/* The whole life of one chunk (see the top of the file). */
static void do_chunk(struct worker *W, size_t c)
{
	struct run *R = W->R;
	const struct chunk *ch = &R->chunks[c];
	size_t i = ch->tensor;
	const struct qp_tensor *t = &R->plan[i];
	const struct source *s = &R->src[i];
	const struct gguf_tensor *in = gguf_tensor(R->in, i), *out = gguf_tensor(R->back, i);
	struct bn_err e = { 0 };
	struct qp_stats st;
	qp_stats_init(&st);

	/* 1. encode and check, or the statistics of a float tensor that is copied */
	uint64_t in_row = ch->raw ? 1 : source_row_bytes(s);
	uint64_t out_row = ch->raw ? 1 : qp_rows_nbytes(t->out_type, t->ne0, 1);
	const uint8_t *ip = in->data + ch->r0 * in_row;
	size_t in_len = (size_t)(ch->n * in_row), out_len = (size_t)(ch->n * out_row);
	const struct chunk *nx = c + 1 < R->n_chunks ? &R->chunks[c + 1] : NULL;
	if (nx && nx->tensor == i)
		read_ahead(ip + in_len, in_len);
	size_t step = (size_t)BN_MAX(1, STEP_ELEMS / BN_MAX(t->ne0, 1));
	if (!ch->raw)
		for (uint64_t r = 0; r < ch->n; r += step) {
			size_t k = (size_t)BN_MIN(step, ch->n - r);
			const float *x = source_rows(s, ch->r0 + r, k, W->scratch);
			if (!t->convert) {
				qp_stats_add(&st, x, (size_t)(k * t->ne0), (ch->r0 + r) * t->ne0);
				continue;
			}
			uint8_t *enc = W->out + r * out_row;
			qp_encode_stats_rows(t->out_type, x, t->ne0, k, enc, &st, (ch->r0 + r) * t->ne0);
			size_t bad = st.n_nonfinite ? SIZE_MAX /* reported at the write turn */
						   : qp_verify_rows(t->out_type, enc, x, t->ne0, k);
			if (bad != SIZE_MAX) {
				uint64_t el = (ch->r0 + r) * t->ne0 + bad;
				bn_seterr(&e, BN_EVERIFY, "%s: element %llu (row %llu) does not "
					  "decode from its %s encoding as its input value demands",
					  tname(R, i), (unsigned long long)el,
					  (unsigned long long)(el / t->ne0), gguf_type_name(t->out_type));
				fail(R, &e);
				return;
			}
		}
	const uint8_t *bytes = t->convert ? W->out : ip;

	/* 2. write, in file order */
	pthread_mutex_lock(&R->mu);
	while (R->turn != c && !R->failed)
		pthread_cond_wait(&R->turn_cv, &R->mu);
	if (R->failed) {
		pthread_mutex_unlock(&R->mu);
		return;
	}
	int rc = 0;
	qp_stats_merge(&R->tstats[i], &st);
	if (bn_interrupted)
		rc = bn_seterr(&e, BN_EINTR, "interrupted");
	else if (st.n_nonfinite)
		rc = nonfinite_error(R, i, &R->tstats[i], &e);
	if (!rc)
		rc = write_locked(R, i, ch->r0 * out_row, bytes, out_len, &e);
	if (!rc && ch->last && t->convert)
		rc = finish_tensor_locked(R, i, &e);
	if (rc) {
		fail_locked(R, &e);
		pthread_mutex_unlock(&R->mu);
		return;
	}
	/* every WRITEBACK_STEP bytes, start the disk writes of what was written so far, in the
	 * background, so that the commit's fsync finds little left to do; outside the lock, as
	 * submitting them can block on a busy disk */
	bool writeback = R->wb_fd >= 0 && R->done - R->wb_done >= WRITEBACK_STEP;
	if (writeback)
		R->wb_done = R->done;
	R->turn = c + 1;
	pthread_cond_broadcast(&R->turn_cv);
	pthread_mutex_unlock(&R->mu);
	if (writeback)
		sync_file_range(R->wb_fd, 0, 0, SYNC_FILE_RANGE_WRITE);

	/* 3. read back from the file: the bytes written, or the input's for a copied tensor */
	const uint8_t *back = out->data + ch->r0 * out_row;
	if (memcmp(back, bytes, out_len) != 0)
		rc = bn_seterr(&e, BN_EVERIFY, "%s: the bytes read back from %s.tmp differ from those "
			       "written; the disk or filesystem is corrupting data", tname(R, i),
			       R->o->out_path);
	if (rc)
		fail(R, &e);

	/* 4. release the pages; each worker its own chunk's (grouping chunks across workers left
	 * pages that a slower worker mapped again after the group was released) */
	drop_pages(R->in_base, ip, in_len);
	drop_pages(R->back_base, back, out_len);
}

static void *worker_main(void *arg)
{
	struct worker *W = arg;
	struct run *R = W->R;
	for (;;) {
		size_t c = atomic_fetch_add(&R->next, 1);
		if (c >= R->n_chunks)
			break;
		pthread_mutex_lock(&R->mu);
		bool stop = R->failed;
		pthread_mutex_unlock(&R->mu);
		if (stop)
			break;
		do_chunk(W, c);
	}
	return NULL;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int plan_all(struct run *R, struct iq_summary *s, struct bn_err *err)
{
	struct qp_model m;
	int rc = qp_check_input(R->in, err);
	if (!rc)
		rc = qp_model_from_gguf(R->in, &m, err);
	if (rc)
		return bn_err_prefix(err, "%s", R->o->in_path);
	R->n = gguf_n_tensors(R->in);
	R->plan = calloc(R->n + 1, sizeof *R->plan);
	R->src = calloc(R->n + 1, sizeof *R->src);
	R->tstats = calloc(R->n + 1, sizeof *R->tstats);
	if (!R->plan || !R->src || !R->tstats)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < R->n; i++) {
		const struct gguf_tensor *t = gguf_tensor(R->in, i);
		if ((rc = qp_plan_tensor(&R->o->plan, &m, t->name, t->type, t->n_dims, t->ne,
					 &R->plan[i], err)))
			return rc;
		s->has_i2s_input |= t->type == GGUF_TYPE_I2_S;
		qp_stats_init(&R->tstats[i]);
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

static bool is_float(uint32_t type)
{
	return type == GGUF_TYPE_F32 || type == GGUF_TYPE_F16 || type == GGUF_TYPE_BF16;
}

/* Cuts every tensor into chunks: converted and float tensors by rows (about CHUNK_ELEMS
 * values), anything else copied as raw bytes; an empty tensor gets one empty chunk (an I2_S
 * one still has its tail). */
static int make_chunks(struct run *R, struct bn_err *err)
{
	size_t cap = 0;
	for (size_t i = 0; i < R->n; i++) {
		const struct qp_tensor *t = &R->plan[i];
		bool raw = !t->convert && !is_float(t->in_type);
		uint64_t total = raw ? gguf_tensor(R->in, i)->nbytes : t->nrows;
		uint64_t per = raw ? CHUNK_BYTES : BN_MAX(1, CHUNK_ELEMS / BN_MAX(t->ne0, 1));
		uint64_t r0 = 0;
		do {
			if (R->n_chunks == cap) {
				cap = cap ? 2 * cap : 256;
				struct chunk *c = realloc(R->chunks, cap * sizeof *c);
				if (!c)
					return bn_seterr(err, BN_ENOMEM, "out of memory");
				R->chunks = c;
			}
			uint64_t n = BN_MIN(per, total - r0);
			R->chunks[R->n_chunks++] = (struct chunk){ .tensor = (uint32_t)i, .raw = raw,
								   .r0 = r0, .n = n,
								   .last = r0 + n == total };
			r0 += n;
		} while (r0 < total);
	}
	return 0;
}

/* Re-opens the output once its header is written: the file is extended to its final size
 * first (the writer keeps writing sequentially from its own offset), so the reader accepts it
 * and its mapping shows every chunk as soon as it is written.  Checks that the header read
 * back says what the plan says. */
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
	R->wb_fd = open(tmp, O_RDONLY | O_CLOEXEC);
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

/* Runs the chunks on nth workers (the calling thread is one of them). */
static int run_workers(struct run *R, unsigned nth, struct bn_err *err)
{
	size_t max_ne0 = 1, max_out = 1;
	for (size_t i = 0; i < R->n; i++) {
		const struct qp_tensor *t = &R->plan[i];
		max_ne0 = BN_MAX(max_ne0, (size_t)t->ne0);
		if (t->convert)
			max_out = BN_MAX(max_out, (size_t)qp_rows_nbytes(t->out_type, t->ne0,
				BN_MAX(1, CHUNK_ELEMS / BN_MAX(t->ne0, 1))));
	}
	size_t scratch = BN_MAX(STEP_ELEMS, max_ne0) * sizeof(float);
	struct worker *W = calloc(nth, sizeof *W);
	int rc = 0;
	unsigned started = 0;
	if (!W)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (unsigned j = 0; j < nth; j++) {
		W[j].R = R;
		if (!(W[j].out = malloc(max_out)) || !(W[j].scratch = malloc(scratch))) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (unsigned j = 1; j < nth; j++, started++)
		if (pthread_create(&W[j].tid, NULL, worker_main, &W[j]) != 0) {
			struct bn_err e;
			bn_seterr(&e, BN_ENOMEM, "cannot start thread %u of %u", j + 1, nth);
			fail(R, &e);
			break;
		}
	worker_main(&W[0]);
	for (unsigned j = 1; j <= started; j++)
		pthread_join(W[j].tid, NULL);
out:
	for (unsigned j = 0; j < nth; j++) {
		free(W[j].out);
		free(W[j].scratch);
	}
	free(W);
	return rc;
}

static void run_free(struct run *R)
{
	free(R->chunks);
	free(R->plan);
	free(R->src);
	free(R->tstats);
	qp_stale_free(R->stale);
	gguf_close(R->back);
	gguf_close(R->in);
	if (R->wb_fd >= 0)
		close(R->wb_fd);
	pthread_mutex_destroy(&R->mu);
	pthread_cond_destroy(&R->turn_cv);
}

int iq_quantize(const struct iq_opts *o, struct iq_summary *s, struct bn_err *err)
{
	memset(s, 0, sizeof *s);
	struct run R = { .o = o, .wb_fd = -1 };
	pthread_mutex_init(&R.mu, NULL);
	pthread_cond_init(&R.turn_cv, NULL);
	unsigned nth = BN_MAX(1, BN_MIN(o->threads, MAX_THREADS));
	char *tmp = NULL;
	int rc;
	if (!(R.in = gguf_open(o->in_path, err))) {
		rc = -(err->code ? err->code : BN_EIO);
		goto out;
	}
	R.in_base = map_base(R.in);
	if ((rc = plan_all(&R, s, err)) || (rc = make_chunks(&R, err)))
		goto out;
	if (o->stale_tail && !(R.stale = qp_stale_new(R.plan, R.n))) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	if (!(tmp = malloc(strlen(o->out_path) + 5))) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	sprintf(tmp, "%s.tmp", o->out_path); /* gguf_writer's temporary name */

	double t0 = bn_now();
	if (!(R.w = gguf_writer_open(o->out_path, err))) {
		rc = -(err->code ? err->code : BN_EIO);
		goto out;
	}
	if ((rc = qp_copy_kvs(R.w, R.in, o->plan.target, err)))
		goto out;
	for (size_t i = 0; i < R.n; i++)
		if ((rc = gguf_writer_add_tensor(R.w, tname(&R, i), R.plan[i].out_type,
						 R.plan[i].n_dims, R.plan[i].ne, err)))
			goto out;
	if ((rc = gguf_writer_write_header(R.w, err)) || (rc = open_back(&R, tmp, err)))
		goto out;
	bn_progress_init(&R.prog, "quantizing", s->out_bytes);
	if ((rc = run_workers(&R, nth, err)))
		goto out;
	if (R.failed) {
		*err = R.err;
		rc = -(err->code ? err->code : BN_EIO);
		goto out;
	}
	bn_progress_finish(&R.prog);
	s->t_write = bn_now() - t0;
	t0 = bn_now();
	rc = gguf_writer_commit(R.w, err);
	s->t_commit = bn_now() - t0;
out:
	gguf_writer_close(R.w);
	free(tmp);
	run_free(&R);
	return rc;
}

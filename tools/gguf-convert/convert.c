/* The conversion run: read config and tokenizer, plan every tensor (refusing early what cannot be
 * produced), check free disk against the exact output size, write the header, stream each tensor
 * through the worker pool in chunks (the write itself stays sequential), then re-open the file,
 * verify it and print a summary.  Invariant: memory is bounded by the chunk ring and the
 * tokenizer, never by the model: dense tensors are read with pread() a chunk at a time (no pages
 * mapped, nothing to unmap), and the few read through the mapping (packed or permuted rows) have
 * their pages dropped once converted. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_log.h"
#include "bn_progress.h"
#include "bn_util.h"
#include "convert.h"
#include "pool.h"

#define CHUNK_ELEMS (1u << 18)   /* ~1 MB of f32 per chunk: produced and encoded in cache */
#define MAX_CONFIG (16u << 20)
/* A weight_quant tensor is read twice (its mean first); up to this size it is read once into
 * memory instead, which bounds memory by this, not by the model. */
#define TBUF_MAX ((size_t)64 << 20)

void cv_model_name(const char *dir, char *buf, size_t size)
{
	/* Python's Path(dir).name: the last component that is not empty or "." */
	const char *best = "", *p = dir;
	size_t best_len = 0;
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t l = (size_t)(p - s);
		if (l && !(l == 1 && s[0] == '.')) {
			best = s;
			best_len = l;
		}
	}
	if (best_len >= size)
		best_len = size - 1;
	memcpy(buf, best, best_len);
	buf[best_len] = '\0';
}

char *cv_default_outfile(const char *model_dir, const char *outtype)
{
	char name[64];
	snprintf(name, sizeof name, "ggml-model-%s.gguf", outtype);
	return bn_path_join(model_dir, name);
}

/* ---- per-tensor streaming ---------------------------------------------------------------------- */

struct scratch {
	float *buf;
	size_t cap;   /* floats */
	uint8_t *raw; /* source bytes read with pread */
	size_t raw_cap;
};

static void scratch_fini(void *s_)
{
	free(((struct scratch *)s_)->buf);
	free(((struct scratch *)s_)->raw);
}

static uint8_t *scratch_raw(void *s_, size_t n)
{
	struct scratch *s = s_;
	if (n > s->raw_cap) {
		uint8_t *nb = realloc(s->raw, n);
		if (!nb)
			return NULL;
		s->raw = nb;
		s->raw_cap = n;
	}
	return s->raw;
}

static float *scratch_get(void *s_, size_t n)
{
	struct scratch *s = s_;
	if (n > s->cap) {
		float *nb = realloc(s->buf, n * sizeof *nb);
		if (!nb)
			return NULL;
		s->buf = nb;
		s->cap = n;
	}
	return s->buf;
}

/* What a scan chunk found about ternarity: |x| takes the values {0, v} only. */
struct tern {
	uint32_t v;          /* bits of the nonzero magnitude, 0 if none seen */
	bool bad;            /* a second magnitude */
	float a, b;          /* two different magnitudes, for the message */
};

struct run {
	const struct cv_opts *o;
	struct cv_ctx *x;
	struct cv_pool *pool;
	struct gguf_writer *w;
	struct bn_progress pg;
	uint64_t written;
	/* the tensor in flight */
	const struct cv_tensor *t;
	struct cv_prep prep;
	struct cv_enc enc;
	uint64_t chunk_rows, sum_rows;
	size_t n_chunks;
	double *partial;
	struct tern *tern;
	bool check_tern;
	int *fds;                /* per shard, for pread */
	size_t n_fds;
	int fd;                  /* the current tensor's shard if it is dense, else -1 */
	uint64_t foff;           /* file offset of its data */
	uint8_t *tbuf;           /* the current tensor's source bytes, if use_tbuf */
	size_t tbuf_cap;
	bool use_tbuf;
	/* the ring */
	size_t window;
	uint8_t **slot;
	uint64_t *slot_len;
	size_t slot_cap;
};

/* Drops the mapping's pages of source bytes [a, a + n) (whole pages inside only): they stay in
 * the page cache but stop counting towards our resident size. */
static void drop_pages(const uint8_t *a, size_t n)
{
	static long page;
	if (!page)
		page = sysconf(_SC_PAGESIZE);
	uintptr_t b = ((uintptr_t)a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	uintptr_t e = ((uintptr_t)a + n) & ~((uintptr_t)page - 1);
	if (e > b)
		madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Reads source rows [r0, r0 + nr) of the current (dense) tensor into buf. */
static int read_rows(const struct run *R, uint64_t r0, uint64_t nr, uint8_t *buf,
		     struct bn_err *err)
{
	const struct cv_tensor *t = R->t;
	size_t n = (size_t)(nr * cv_row_bytes(t));
	uint64_t off = R->foff + r0 * cv_row_bytes(t);
	while (n > 0) {
		ssize_t got = pread(R->fd, buf, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return bn_seterrno(err, got < 0 ? errno : EIO, "%s: reading %s",
					   R->x->st->shards[t->src->shard].path, t->src->name);
		buf += got;
		off += (uint64_t)got;
		n -= (size_t)got;
	}
	return 0;
}

/* The current tensor's f32 rows [r0, r0 + nr) into x. */
static int rows_into(const struct run *R, void *scratch, uint64_t r0, uint64_t nr, float *x,
		     struct bn_err *err)
{
	const struct cv_tensor *t = R->t;
	if (R->fd < 0) {
		cv_rows(t, &R->prep, r0, nr, x);
		return 0;
	}
	if (R->use_tbuf) {
		cv_rows_src(t, &R->prep, nr, R->tbuf + r0 * cv_row_bytes(t), x);
		return 0;
	}
	if (t->src->dtype == ST_F32 && !t->wquant) /* nothing to convert: read in place */
		return read_rows(R, r0, nr, (uint8_t *)x, err);
	uint8_t *raw = scratch_raw(scratch, (size_t)(nr * cv_row_bytes(t)));
	if (!raw)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int rc = read_rows(R, r0, nr, raw, err);
	if (!rc)
		cv_rows_src(t, &R->prep, nr, raw, x);
	return rc;
}

static int sum_item(void *arg, size_t i, void *scratch, struct bn_err *err)
{
	struct run *R = arg;
	uint64_t r0 = i * R->sum_rows, nr = BN_MIN(R->sum_rows, R->t->rows - r0);
	if (R->fd < 0) {
		R->partial[i] = cv_abs_sum(R->t, r0, nr);
		return 0;
	}
	uint8_t *raw = R->use_tbuf ? R->tbuf + r0 * cv_row_bytes(R->t) :
				     scratch_raw(scratch, (size_t)(nr * cv_row_bytes(R->t)));
	if (!raw)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int rc = read_rows(R, r0, nr, raw, err);
	if (!rc)
		R->partial[i] = cv_abs_sum_src(R->t, nr, raw);
	return rc;
}

static void tern_chunk(struct tern *tc, const float *x, size_t n)
{
	for (size_t i = 0; i < n && !tc->bad; i++) {
		uint32_t u = bn_f32_bits(x[i]) & 0x7fffffffu;
		if (u == 0)
			continue;
		if (!tc->v) {
			tc->v = u;
		} else if (u != tc->v) {
			tc->bad = true;
			tc->a = bn_bits_f32(tc->v);
			tc->b = bn_bits_f32(u);
		}
	}
}

static int scan_item(void *arg, size_t i, void *scratch, struct bn_err *err)
{
	struct run *R = arg;
	const struct cv_tensor *t = R->t;
	uint64_t r0 = i * R->chunk_rows, nr = BN_MIN(R->chunk_rows, t->rows - r0);
	float *x = scratch_get(scratch, nr * t->cols);
	if (!x)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int rc = rows_into(R, scratch, r0, nr, x, err);
	if (rc)
		return rc;
	if (R->check_tern) {
		memset(&R->tern[i], 0, sizeof R->tern[i]);
		tern_chunk(&R->tern[i], x, nr * t->cols);
	}
	if (R->enc.scan)
		R->enc.scan_chunk(&R->enc, x, r0, nr, i);
	return 0;
}

static int produce_item(void *arg, size_t i, void *scratch, struct bn_err *err)
{
	struct run *R = arg;
	const struct cv_tensor *t = R->t;
	uint64_t r0 = i * R->chunk_rows, nr = BN_MIN(R->chunk_rows, t->rows - r0);
	size_t s = i % R->window;
	uint64_t nb = R->enc.chunk_bytes(&R->enc, r0, nr);
	int rc;
	if (nb > R->slot_cap)
		return bn_seterr(err, BN_EINVAL, "%s: chunk of %llu bytes exceeds the %zu-byte buffer",
				 t->name, (unsigned long long)nb, R->slot_cap);
	if (R->enc.type == GGUF_TYPE_F32 && nb == nr * t->cols * 4 && R->enc.nbytes == t->n * 4 &&
	    !R->enc.trailer) {
		rc = rows_into(R, scratch, r0, nr, (float *)R->slot[s], err);
	} else {
		float *x = scratch_get(scratch, nr * t->cols);
		if (!x)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		rc = rows_into(R, scratch, r0, nr, x, err);
		if (!rc)
			R->enc.encode(&R->enc, x, r0, nr, i, R->slot[s]);
	}
	R->slot_len[s] = nb;
	return rc;
}

static int consume_item(void *arg, size_t i, struct bn_err *err)
{
	struct run *R = arg;
	if (bn_interrupted)
		return bn_seterr(err, BN_EINTR, "interrupted");
	size_t s = i % R->window;
	int rc = gguf_writer_write(R->w, R->slot[s], (size_t)R->slot_len[s], err);
	if (rc)
		return rc;
	R->written += R->slot_len[s];
	bn_progress_update(&R->pg, R->written);
	return 0;
}

static int ensure_slots(struct run *R, size_t need, struct bn_err *err)
{
	if (need <= R->slot_cap)
		return 0;
	for (size_t i = 0; i < R->window; i++) {
		uint8_t *nb = realloc(R->slot[i], need);
		if (!nb)
			return bn_seterr(err, BN_ENOMEM, "out of memory for %zu-byte buffers", need);
		R->slot[i] = nb;
	}
	R->slot_cap = need;
	return 0;
}

/* The chunk plan of tensor t for the encoder: whole multiples of row_align, ~CHUNK_ELEMS. */
static int plan_chunks(struct run *R, struct bn_err *err)
{
	const struct cv_tensor *t = R->t;
	uint64_t al = R->enc.row_align ? R->enc.row_align : 1;
	uint64_t per = CHUNK_ELEMS / (t->cols * al);
	R->chunk_rows = al * (per ? per : 1);
	if (R->chunk_rows > t->rows)
		R->chunk_rows = t->rows;
	R->n_chunks = (size_t)((t->rows + R->chunk_rows - 1) / R->chunk_rows);
	uint64_t need = 0;
	for (size_t i = 0; i < R->n_chunks; i++) {
		uint64_t r0 = i * R->chunk_rows;
		need = BN_MAX(need, R->enc.chunk_bytes(&R->enc, r0, BN_MIN(R->chunk_rows, t->rows - r0)));
	}
	return ensure_slots(R, (size_t)BN_MAX(need, (uint64_t)1), err);
}

static int stream_tensor(struct run *R, const struct cv_outtype *ot, const struct cv_tensor *t,
			 struct bn_err *err)
{
	int rc;
	R->t = t;
	R->fd = cv_dense(t) ? R->fds[t->src->shard] : -1;
	R->foff = (uint64_t)(t->src->data - R->x->st->shards[t->src->shard].map.data);
	memset(&R->prep, 0, sizeof R->prep);
	memset(&R->enc, 0, sizeof R->enc);
	if (t->scale)
		R->prep.wscale = st_get_f32(t->scale, 0);
	R->use_tbuf = false;
	size_t tbytes = (size_t)(t->rows * cv_row_bytes(t));
	if (t->wquant && R->fd >= 0 && tbytes <= TBUF_MAX) {
		if (tbytes > R->tbuf_cap) {
			uint8_t *nb = realloc(R->tbuf, tbytes);
			if (!nb)
				return bn_seterr(err, BN_ENOMEM, "out of memory");
			R->tbuf = nb;
			R->tbuf_cap = tbytes;
		}
		R->use_tbuf = true; /* the sum pass reads it in, the stream converts from it */
	}
	if (t->wquant) {
		/* weight_quant's mean |x|: a fixed decomposition, so the same for any threads */
		uint64_t per = CHUNK_ELEMS / t->cols;
		R->sum_rows = per ? per : 1;
		size_t n = (size_t)((t->rows + R->sum_rows - 1) / R->sum_rows);
		double *pa = realloc(R->partial, n * sizeof *pa);
		if (!pa)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		R->partial = pa;
		if ((rc = cv_pool_for(R->pool, n, sum_item, R, err)))
			return rc;
		double sum = 0;
		for (size_t i = 0; i < n; i++)
			sum += R->partial[i];
		cv_wquant_prep(t, sum, &R->prep);
	}
	if ((rc = ot->setup(R->x, t, &R->enc, err)))
		return rc;
	if ((rc = plan_chunks(R, err)))
		goto out;
	if (R->enc.begin && (rc = R->enc.begin(&R->enc, R->n_chunks, err)))
		goto out;
	R->check_tern = ot->ternary && t->role == CV_PROJ && !R->o->force && !R->enc.checks;
	if (R->enc.scan || R->check_tern) {
		if (R->check_tern) {
			struct tern *tn = realloc(R->tern, R->n_chunks * sizeof *tn);
			if (!tn) {
				rc = bn_seterr(err, BN_ENOMEM, "out of memory");
				goto out;
			}
			R->tern = tn;
		}
		if ((rc = cv_pool_for(R->pool, R->n_chunks, scan_item, R, err)))
			goto out;
		if (R->check_tern) {
			struct tern all = { 0 };
			for (size_t i = 0; i < R->n_chunks && !all.bad; i++) {
				const struct tern *c = &R->tern[i];
				if (c->bad) {
					all = *c;
				} else if (c->v && all.v && c->v != all.v) {
					all.bad = true;
					all.a = bn_bits_f32(all.v);
					all.b = bn_bits_f32(c->v);
				} else if (c->v) {
					all.v = c->v;
				}
			}
			if (all.bad) {
				rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: not a 1.58-bit checkpoint: "
					       "%s holds more than one magnitude (%g and %g), so it is "
					       "not ternary and %s would destroy it; use --force to "
					       "convert anyway", R->x->cfg.arch_hf, t->src->name,
					       (double)all.a, (double)all.b, ot->name);
				goto out;
			}
		}
		if (R->enc.scan && (rc = R->enc.scan_done(&R->enc, err)))
			goto out;
	}
	if ((rc = cv_pool_stream(R->pool, R->n_chunks, R->window, produce_item, consume_item, R,
				 err)))
		goto out;
	if (R->enc.trailer && (rc = R->enc.trailer(&R->enc, R->w, err)))
		goto out;
	if (R->fd < 0) /* read through the mapping: drop its pages */
		drop_pages(t->src->data, t->src->nbytes);
out:
	if (R->enc.fini)
		R->enc.fini(&R->enc);
	return rc;
}

/* ---- verification and summary --------------------------------------------------------------- */

static int verify(const struct cv_ctx *x, const char *path, uint64_t expect_size,
		  struct bn_err *err)
{
	struct gguf_reader *r = gguf_open(path, err);
	if (!r)
		return bn_err_prefix(err, "re-reading the output");
	int rc = 0;
	const struct cv_plan *p = &x->plan;
	uint32_t ft = 0;
	struct gguf_str arch;
	int64_t k;
	if (gguf_file_size(r) != expect_size) {
		rc = bn_seterr(err, BN_EVERIFY, "%s: %llu bytes, expected %llu", path,
			       (unsigned long long)gguf_file_size(r), (unsigned long long)expect_size);
		goto out;
	}
	if (gguf_n_tensors(r) != p->n) {
		rc = bn_seterr(err, BN_EVERIFY, "%s: %zu tensors, expected %zu", path,
			       gguf_n_tensors(r), p->n);
		goto out;
	}
	if ((k = gguf_find_key(r, "general.file_type")) < 0 || gguf_get_u32(r, k, &ft, err) ||
	    ft != x->o->outtype->file_type) {
		rc = bn_seterr(err, BN_EVERIFY, "%s: general.file_type is not %u", path,
			       x->o->outtype->file_type);
		goto out;
	}
	if ((k = gguf_find_key(r, "general.architecture")) < 0 || gguf_get_str(r, k, &arch, err) ||
	    arch.len != strlen(x->cfg.arch) || memcmp(arch.data, x->cfg.arch, arch.len) != 0) {
		rc = bn_seterr(err, BN_EVERIFY, "%s: general.architecture is not %s", path,
			       x->cfg.arch);
		goto out;
	}
	uint64_t off = 0;
	for (size_t i = 0; i < p->n; i++) {
		const struct gguf_tensor *g = gguf_tensor(r, i);
		const struct cv_tensor *t = &p->t[i];
		bool ok = strcmp(g->name, t->name) == 0 && g->type == t->type &&
			  g->n_dims == t->n_dims && g->offset == off && g->nbytes <= t->nbytes;
		for (unsigned d = 0; ok && d < GGUF_MAX_DIMS; d++)
			ok = g->ne[d] == t->ne[d];
		if (!ok) {
			rc = bn_seterr(err, BN_EVERIFY, "%s: tensor %zu is %s %s at offset %llu, "
				       "expected %s %s at %llu", path, i, g->name,
				       gguf_type_name(g->type), (unsigned long long)g->offset, t->name,
				       gguf_type_name(t->type), (unsigned long long)off);
			goto out;
		}
		off += (t->nbytes + 31) / 32 * 32;
	}
out:
	gguf_close(r);
	return rc;
}

static void summary(FILE *f, const struct cv_ctx *x, const char *path, uint64_t size, double dt)
{
	size_t cnt[GGUF_TYPE_COUNT] = { 0 };
	uint64_t bytes[GGUF_TYPE_COUNT] = { 0 };
	for (size_t i = 0; i < x->plan.n; i++) {
		cnt[x->plan.t[i].type]++;
		bytes[x->plan.t[i].type] += x->plan.t[i].nbytes;
	}
	char h[32];
	fprintf(f, "%s: %s, %zu tensors, %llu bytes (%s), general.file_type %u (%s), %.2f s\n",
		path, x->cfg.arch, x->plan.n, (unsigned long long)size,
		bn_fmt_bytes(size, h, sizeof h), x->o->outtype->file_type, x->o->outtype->name, dt);
	for (unsigned t = 0; t < GGUF_TYPE_COUNT; t++)
		if (cnt[t])
			fprintf(f, "  %-6s %5zu tensors %14llu bytes\n", gguf_type_name(t), cnt[t],
				(unsigned long long)bytes[t]);
}

/* ---- the run ---------------------------------------------------------------------------------- */

static int load_config(struct cv_ctx *x, struct bn_err *err)
{
	char *path = bn_path_join(x->o->model_dir, "config.json"), *text = NULL;
	size_t len;
	if (!path)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int rc = bn_read_file(path, MAX_CONFIG, &text, &len, err);
	if (!rc) {
		const struct cv_config_opts co = { .arch = x->o->arch };
		rc = cv_config_parse(&x->cfg, text, len, path, &co, err);
	}
	free(path);
	free(text);
	return rc;
}

/* Refuses a checkpoint that is not ternary before anything is written: the first projection the
 * type would quantize is checked completely (every one is checked again as it is written). */
static int early_ternary_check(struct run *R, struct bn_err *err)
{
	const struct cv_outtype *ot = R->o->outtype;
	if (!ot->ternary || R->o->force)
		return 0;
	for (size_t i = 0; i < R->x->plan.n; i++) {
		const struct cv_tensor *t = &R->x->plan.t[i];
		if (t->role != CV_PROJ || t->wquant)
			continue;  /* weight_quant makes the values ternary by construction */
		struct cv_prep pp = { .wscale = t->scale ? st_get_f32(t->scale, 0) : 0 };
		struct tern tn = { 0 };
		float *buf = malloc(t->cols * sizeof *buf);
		if (!buf)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		for (uint64_t r = 0; r < t->rows && !tn.bad; r++) {
			cv_rows(t, &pp, r, 1, buf);
			tern_chunk(&tn, buf, t->cols);
		}
		free(buf);
		drop_pages(t->src->data, t->src->nbytes);
		if (tn.bad)
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: not a 1.58-bit checkpoint: %s holds "
					 "more than one magnitude (%g and %g), so it is not ternary "
					 "and %s would destroy it; use --force to convert anyway",
					 R->x->cfg.arch_hf, t->src->name, (double)tn.a, (double)tn.b,
					 ot->name);
		return 0;
	}
	return 0;
}

int cv_convert(const struct cv_opts *o, struct bn_err *err)
{
	struct cv_ctx x = { .o = o };
	struct run R = { .o = o, .x = &x };
	char *outfile = NULL;
	char name[256];
	int rc;
	double t0 = bn_now();
	if ((rc = load_config(&x, err)))
		return rc;
	cv_model_name(o->model_dir, name, sizeof name);
	const struct cv_vocab_opts vo = { .pre = o->pre, .model_name = name };
	if ((rc = cv_vocab_load(&x.vocab, o->model_dir, &x.cfg, &vo, err)))
		goto out;
	if ((rc = st_open(&x.st, o->model_dir, o->order, err)))
		goto out;
	/* the shards again, for pread: dense tensors are read in chunks, not through the map */
	if (!(R.fds = malloc((x.st->n_shards ? x.st->n_shards : 1) * sizeof *R.fds))) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	for (; R.n_fds < x.st->n_shards; R.n_fds++) {
		int fd = open(x.st->shards[R.n_fds].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = bn_seterrno(err, errno, "%s: cannot open", x.st->shards[R.n_fds].path);
			goto out;
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		R.fds[R.n_fds] = fd;
	}
	if ((rc = cv_plan_build(&x.plan, x.st, &x.cfg, x.vocab.n, err)))
		goto out;
	for (size_t i = 0; i < x.plan.n; i++)
		if (x.plan.t[i].role == CV_OUTPUT)
			x.has_output = true;
	for (size_t i = 0; i < x.plan.n; i++)
		if ((rc = o->outtype->choose(&x, &x.plan.t[i], err)))
			goto out;
	if (o->outtype->begin && (rc = o->outtype->begin(&x, err)))
		goto out;
	outfile = o->outfile ? strdup(o->outfile) : cv_default_outfile(o->model_dir, o->outtype->name);
	if (!outfile) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	unsigned threads = o->threads ? o->threads : bn_cpu_count();
	/* threads - 1 workers produce chunks; the calling thread writes them in order and produces
	 * too while the next one is not ready */
	R.window = 2 * (size_t)threads + 2;
	R.slot = calloc(R.window, sizeof *R.slot);
	R.slot_len = calloc(R.window, sizeof *R.slot_len);
	if (!R.slot || !R.slot_len) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	if (!(R.pool = cv_pool_new(threads - 1, sizeof(struct scratch), R.window,
				  scratch_fini, err))) {
		rc = -BN_ENOMEM;
		goto out;
	}
	if ((rc = early_ternary_check(&R, err)))
		goto out;

	if (!(R.w = gguf_writer_open(outfile, err))) {
		rc = -BN_EIO;
		goto out;
	}
	int asp = x.vocab.add_space_prefix;
	if ((rc = cv_config_kvs(&x.cfg, R.w, name, o->outtype->file_type, asp, err)) ||
	    (rc = cv_vocab_kvs(&x.vocab, R.w, err)) ||
	    (o->outtype->add_kvs && (rc = o->outtype->add_kvs(&x, R.w, err))))
		goto out;
	for (size_t i = 0; i < x.plan.n; i++) {
		const struct cv_tensor *t = &x.plan.t[i];
		if ((rc = gguf_writer_add_tensor_sized(R.w, t->name, t->type, t->n_dims, t->ne,
						       t->nbytes, err)))
			goto out;
	}
	uint64_t total = gguf_writer_file_size(R.w), avail = bn_free_disk(outfile);
	if (avail != UINT64_MAX && avail < total) {
		char a[32], b[32];
		rc = bn_seterr(err, BN_ENOSPC, "%s: needs %s (%llu bytes) but only %s (%llu bytes) "
			       "is free there; free some space or write elsewhere with --outfile",
			       outfile, bn_fmt_bytes(total, a, sizeof a), (unsigned long long)total,
			       bn_fmt_bytes(avail, b, sizeof b), (unsigned long long)avail);
		goto out;
	}
	if ((rc = gguf_writer_write_header(R.w, err)))
		goto out;
	char label[300];
	snprintf(label, sizeof label, "%s", outfile);
	bn_progress_init(&R.pg, label, total);
	R.written = total;
	for (size_t i = 0; i < x.plan.n; i++)
		R.written -= (x.plan.t[i].nbytes + 31) / 32 * 32;
	for (size_t i = 0; i < x.plan.n; i++) {
		const struct cv_tensor *t = &x.plan.t[i];
		bn_verbose("[%3zu/%zu] %-32s %-4s -> %-4s [%llu, %llu]", i + 1, x.plan.n, t->name,
			   st_dtype_name(t->src->dtype), gguf_type_name(t->type),
			   (unsigned long long)t->ne[0], (unsigned long long)t->ne[1]);
		if ((rc = stream_tensor(&R, o->outtype, t, err))) {
			if (rc != -BN_EINTR && strncmp(err->msg, t->name, strlen(t->name)) != 0 &&
			    strstr(err->msg, t->src->name) == NULL)
				bn_err_prefix(err, "%s", t->name);
			goto out;
		}
		R.written += (t->nbytes + 31) / 32 * 32 - t->nbytes;
	}
	if ((rc = gguf_writer_commit(R.w, err)))
		goto out;
	bn_progress_finish(&R.pg);
	if ((rc = verify(&x, outfile, total, err))) {
		unlink(outfile);
		goto out;
	}
	if (o->summary)
		summary(o->summary, &x, outfile, total, bn_now() - t0);
out:
	if (o->outtype->end)
		o->outtype->end(&x);
	gguf_writer_close(R.w);
	cv_pool_free(R.pool);
	if (R.slot)
		for (size_t i = 0; i < R.window; i++)
			free(R.slot[i]);
	free(R.slot);
	free(R.slot_len);
	free(R.partial);
	free(R.tern);
	free(R.tbuf);
	for (size_t i = 0; i < R.n_fds; i++)
		close(R.fds[i]);
	free(R.fds);
	free(outfile);
	cv_plan_free(&x.plan);
	st_close(x.st);
	cv_vocab_free(&x.vocab);
	cv_config_free(&x.cfg);
	return rc;
}

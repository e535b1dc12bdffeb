/* The transfer engine: every file of a snapshot is a job driven by one libcurl multi loop:
 * HEAD the resolve URL (following relative redirects), then GET the download URL, as one
 * stream resumed with Range from the .incomplete file, or for large files as parallel ranged
 * chunks written in place.  The hasher thread verifies each file as its prefix grows; a file
 * only takes its final name after its SHA-256 (LFS) or git blob id matched, and an interrupted
 * or failed run always leaves an .incomplete the next run (or `hf download`) resumes.
 * hf-hub-protocol.md §4.3, §5, §6, §10.4-10.8. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_log.h"
#include "bn_util.h"
#include "hf_fetch.h"
#include "hf_hasher.h"

#define MAX_HOPS 10
#define MAX_REHEADS 3
#define DRAW_INTERVAL 0.25
#define MAX_BARS 8

enum job_state { J_WAIT, J_HEAD, J_GET, J_VERIFY, J_DONE };

/* A byte range of a file: [start, end), bytes [start, pos) written. */
struct seg {
	uint64_t start, pos, end;
	struct hf_req *req; /* the request filling it, or NULL */
	int fails;          /* consecutive attempts without progress */
	double retry_at;
	bool done;
};

struct engine;

struct job {
	struct engine *e;
	const struct hf_file *f;
	struct hf_paths paths;
	const char *etag;
	enum job_state state;
	char *head_url; /* resolve URL, or where a relative redirect sent us */
	char *url;      /* download URL from the HEAD */
	struct hf_req *head;
	int hops, reheads, verify_fails, head_fails;
	double head_retry_at;
	int fd, lockfd;
	bool have_file; /* temp file prepared and fd open */
	bool ranged;    /* parallel chunks in the .parts file */
	bool ranges_ok; /* the server answered a chunk with a correct 206 */
	struct seg *segs;
	size_t nsegs, first_open; /* segs[0..first_open) are done */
	uint64_t state_prefix;    /* prefix last recorded in the .parts.state file */
	struct hf_hashjob hj;
	bool hashing;
	bool disk_full, restart_single;
	const char *reject; /* why the sink refused an answer's body */
	int write_errno;
	uint64_t present;  /* bytes on disk that count as done, for progress */
	uint64_t received; /* body bytes received by this run */
	double t_start;
};

struct engine {
	struct hf_net *net;
	const struct hf_config *c;
	const char *commit;
	struct job *jobs;
	size_t n;
	unsigned active; /* requests in flight */
	struct hf_hasher hasher;
	struct bn_err *err;
	int rc; /* first fatal error */
	/* progress */
	bool tty, show;
	int lines;
	double t0, last_draw;
	uint64_t total, done_bytes, received;
	int last_decile;
	size_t files_done;
	struct hf_fetch_stats *st;
};

static int fail(struct engine *e, int rc)
{
	if (!e->rc)
		e->rc = rc ? rc : -BN_EIO;
	return e->rc;
}

static const char *repo_prefix(const char *type)
{
	if (strcmp(type, "dataset") == 0)
		return "datasets/";
	if (strcmp(type, "space") == 0)
		return "spaces/";
	return "";
}

/* ---- progress --------------------------------------------------------------------------------- */

static void clear_bars(struct engine *e)
{
	if (e->tty && e->lines) {
		fprintf(stderr, "\x1b[%dF\x1b[J", e->lines);
		e->lines = 0;
	}
}

static void draw(struct engine *e, bool force)
{
	if (!e->show)
		return;
	double now = bn_now();
	if (!force && now - e->last_draw < DRAW_INTERVAL)
		return;
	e->last_draw = now;
	char a[32], b[32], r[32];
	double dt = now - e->t0;
	uint64_t rate = dt > 0.05 ? (uint64_t)((double)e->received / dt) : 0;
	if (!e->tty) {
		/* logs: one line per 10 % (or 30 s) of a large download, plus a line per file */
		int dec = e->total ? (int)(10 * e->done_bytes / e->total) : 0;
		if (e->total >= (100u << 20) && ((dec > e->last_decile && dec < 10) || now - e->t0 > 30 * (e->last_decile + 1))) {
			e->last_decile = dec;
			fprintf(stderr, "%s: %d%% (%s of %s, %s/s)\n", bn_progname, (int)(100 * e->done_bytes / e->total),
				bn_fmt_bytes(e->done_bytes, a, sizeof a), bn_fmt_bytes(e->total, b, sizeof b),
				bn_fmt_bytes(rate, r, sizeof r));
		}
		return;
	}
	clear_bars(e);
	int shown = 0, active = 0;
	for (size_t i = 0; i < e->n; i++) {
		struct job *j = &e->jobs[i];
		if (j->state == J_WAIT || j->state == J_DONE)
			continue;
		active++;
		if (shown == MAX_BARS)
			continue;
		int width = 24, fill = j->f->size ? (int)((double)j->present / (double)j->f->size * width) : width;
		char bar[32];
		memset(bar, '#', (size_t)BN_MIN(fill, width));
		memset(bar + BN_MIN(fill, width), '.', (size_t)(width - BN_MIN(fill, width)));
		bar[width] = '\0';
		const char *name = j->f->path;
		size_t nl = strlen(name);
		fprintf(stderr, "  %-28.28s [%s] %3d%% %s/%s%s\n", nl > 28 ? name + nl - 28 : name, bar,
			j->f->size ? (int)(100 * j->present / j->f->size) : 100,
			bn_fmt_bytes(j->present, a, sizeof a), bn_fmt_bytes(j->f->size, b, sizeof b),
			j->state == J_VERIFY ? " verifying" : "");
		shown++;
	}
	fprintf(stderr, "  total: %zu/%zu files, %s of %s, %s/s\n", e->files_done, e->n,
		bn_fmt_bytes(e->done_bytes, a, sizeof a), bn_fmt_bytes(e->total, b, sizeof b),
		bn_fmt_bytes(rate, r, sizeof r));
	e->lines = shown + 1;
	(void)active;
}

static void file_line(struct engine *e, struct job *j)
{
	if (!e->show)
		return;
	clear_bars(e);
	char a[32], r[32];
	double dt = bn_now() - j->t_start;
	fprintf(stderr, "%s: %s: %s in %.1f s (%s/s)\n", bn_progname, j->f->path,
		bn_fmt_bytes(j->f->size, a, sizeof a), dt,
		bn_fmt_bytes(dt > 0.001 ? (uint64_t)((double)j->received / dt) : j->received, r, sizeof r));
	draw(e, true);
}

/* ---- temp files ------------------------------------------------------------------------------ */

static uint64_t prefix_of(struct job *j)
{
	while (j->first_open < j->nsegs && j->segs[j->first_open].done)
		j->first_open++;
	return j->first_open < j->nsegs ? j->segs[j->first_open].pos : j->f->size;
}

static void write_state(struct job *j, uint64_t prefix)
{
	char buf[64];
	int n = snprintf(buf, sizeof buf, "prefix %llu\n", (unsigned long long)prefix);
	if (bn_write_if_changed(j->paths.parts_state, buf, (size_t)n, NULL, NULL) == 0)
		j->state_prefix = prefix;
}

static uint64_t read_state(const char *path)
{
	char *buf = NULL;
	size_t len;
	unsigned long long p = 0;
	if (bn_file_exists(path) && bn_read_file(path, 256, &buf, &len, NULL) == 0 &&
	    sscanf(buf, "prefix %llu", &p) != 1)
		p = 0;
	free(buf);
	return p;
}

static int64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* A ranged download left by a killed run becomes a plain .incomplete of its known-good prefix. */
static void recover_parts(struct job *j)
{
	const struct hf_paths *p = &j->paths;
	if (!bn_file_exists(p->parts))
		return;
	uint64_t prefix = read_state(p->parts_state);
	int64_t inc = file_size(p->incomplete);
	if (inc >= 0 && (uint64_t)inc >= prefix) {
		unlink(p->parts);
	} else if (truncate(p->parts, (off_t)prefix) == 0 && rename(p->parts, p->incomplete) == 0) {
		bn_verbose("%s: resuming the parallel download left at %llu bytes", j->f->path,
			   (unsigned long long)prefix);
	} else {
		unlink(p->parts);
	}
	unlink(p->parts_state);
}

/* A clean stop: a ranged download keeps only its contiguous prefix, under the .incomplete
 * name the official client also resumes. */
static void stop_file(struct engine *e, struct job *j)
{
	if (!j->have_file)
		return;
	if (j->hashing) {
		hf_hasher_remove(&e->hasher, &j->hj);
		j->hashing = false;
	}
	if (j->ranged) {
		uint64_t prefix = prefix_of(j);
		if (ftruncate(j->fd, (off_t)prefix) == 0 && rename(j->paths.parts, j->paths.incomplete) == 0)
			unlink(j->paths.parts_state);
		j->ranged = false;
	}
	close(j->fd);
	j->fd = -1;
	j->have_file = false;
	free(j->segs);
	j->segs = NULL;
	j->nsegs = j->first_open = 0;
}

static void unlock_job(struct job *j)
{
	if (j->lockfd >= 0) {
		flock(j->lockfd, LOCK_UN);
		close(j->lockfd);
		j->lockfd = -1;
	}
}

static int set_single(struct job *j, uint64_t from)
{
	free(j->segs);
	j->segs = calloc(1, sizeof *j->segs);
	if (!j->segs)
		return -BN_ENOMEM;
	j->segs[0] = (struct seg){ .start = from, .pos = from, .end = j->f->size };
	j->nsegs = 1;
	j->first_open = 0;
	return 0;
}

static int prepare_file(struct engine *e, struct job *j)
{
	const struct hf_config *c = e->c;
	const struct hf_paths *p = &j->paths;
	if (j->lockfd < 0) {
		j->lockfd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		if (j->lockfd < 0)
			return bn_seterrno(e->err, errno, "%s: cannot create lock file", p->lock);
		if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
			int rc = bn_seterr(e->err, BN_EINVAL,
					   "%s: another download of this file is running (lock %s is held); "
					   "wait for it to finish", j->f->path, p->lock);
			close(j->lockfd);
			j->lockfd = -1;
			return rc;
		}
	}
	recover_parts(j);
	j->fd = open(p->incomplete, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (j->fd < 0)
		return bn_seterrno(e->err, errno, "%s: cannot create", p->incomplete);
	struct stat st;
	uint64_t have = 0;
	if (fstat(j->fd, &st) == 0)
		have = (uint64_t)st.st_size;
	if (have > j->f->size || c->force) {
		if (ftruncate(j->fd, 0) < 0)
			return bn_seterrno(e->err, errno, "%s: cannot truncate", p->incomplete);
		have = 0;
	}
	if (have)
		bn_info("%s: resuming at %llu of %llu bytes", j->f->path, (unsigned long long)have,
			(unsigned long long)j->f->size);
	j->have_file = true;
	j->hj.fd = j->fd;
	j->hj.git_sha1 = !j->f->sha256[0];
	j->hj.size = j->f->size;
	hf_hasher_add(&e->hasher, &j->hj, have);
	j->hashing = true;
	j->present = have;
	e->done_bytes += have;
	uint64_t left = j->f->size - have;
	if (c->jobs > 1 && left >= 2 * c->chunk_size) {
		size_t n = (size_t)((left + c->chunk_size - 1) / c->chunk_size);
		j->segs = calloc(n, sizeof *j->segs);
		if (!j->segs)
			return bn_seterr(e->err, BN_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			uint64_t s = have + (uint64_t)i * c->chunk_size;
			j->segs[i] = (struct seg){ .start = s, .pos = s, .end = BN_MIN(s + c->chunk_size, j->f->size) };
		}
		j->nsegs = n;
		if (rename(p->incomplete, p->parts) < 0)
			return bn_seterrno(e->err, errno, "%s: cannot rename", p->incomplete);
		j->ranged = true;
		j->ranges_ok = false;
		write_state(j, have);
	} else if (set_single(j, have)) {
		return bn_seterr(e->err, BN_ENOMEM, "out of memory");
	}
	j->state = have == j->f->size ? J_VERIFY : J_GET;
	return 0;
}

/* The server ignored a Range: throw the partial bytes away and take this answer, which holds
 * the whole file from byte 0, as a single stream. */
static int restart_as_single(struct engine *e, struct job *j)
{
	if (ftruncate(j->fd, 0) < 0)
		return bn_seterrno(e->err, errno, "%s: cannot truncate", j->ranged ? j->paths.parts : j->paths.incomplete);
	if (j->ranged) {
		if (rename(j->paths.parts, j->paths.incomplete) < 0)
			return bn_seterrno(e->err, errno, "%s: cannot rename", j->paths.parts);
		unlink(j->paths.parts_state);
		j->ranged = false;
	}
	e->done_bytes -= BN_MIN(e->done_bytes, j->present);
	j->present = 0;
	hf_hasher_reset(&e->hasher, &j->hj, 0);
	return set_single(j, 0) ? bn_seterr(e->err, BN_ENOMEM, "out of memory") : 0;
}

/* ---- requests -------------------------------------------------------------------------------- */

static size_t count_active(const struct job *j)
{
	size_t n = 0;
	for (size_t i = j->first_open; i < j->nsegs; i++)
		n += j->segs[i].req != NULL;
	return n;
}

static size_t on_data(struct hf_req *r, const char *data, size_t n)
{
	struct job *j = r->owner;
	struct engine *e = j->e;
	struct seg *s = r->seg;
	if (!r->sink_started) {
		r->sink_started = true;
		const struct hf_hdrs *h = &r->h;
		if (h->content_encoding[0] && strcasecmp(h->content_encoding, "identity") != 0) {
			/* we ask for identity: compressed bytes would only fail the hash (§4.3) */
			j->reject = "the server compressed the body (Content-Encoding) although identity was asked";
			return 0;
		}
		if (h->status == 206) {
			if (!h->cr_present || h->cr_unsatisfied || h->cr_start != s->pos ||
			    (h->cr_total_known && h->cr_total != j->f->size) || h->cr_end >= s->end) {
				j->reject = "the server answered with a wrong Content-Range";
				return 0;
			}
			j->ranges_ok = true;
		} else if (s->pos != 0 || j->ranged) {
			/* a 200 to a range request: the whole file from byte 0 (§4.3, PR #3778) */
			if (count_active(j) > 1) {
				j->restart_single = true;
				j->reject = "the server ignored the Range header";
				return 0;
			}
			bn_verbose("%s: the server ignored the Range header; restarting from byte 0", j->f->path);
			if (restart_as_single(e, j)) {
				j->reject = "cannot restart the download";
				return 0;
			}
			s = &j->segs[0];
			s->req = r;
			r->seg = s;
		}
	}
	if (n > s->end - s->pos) {
		j->reject = "the server sent more bytes than the file has";
		return 0;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(j->fd, data + done, n - done, (off_t)(s->pos + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			j->write_errno = w < 0 ? errno : EIO;
			if (j->write_errno == ENOSPC || j->write_errno == EDQUOT)
				j->disk_full = true;
			/* keep what did get written: the temp file stays for resume */
			s->pos += done;
			j->present += done;
			e->done_bytes += done;
			return 0;
		}
		done += (size_t)w;
	}
	s->pos += n;
	r->progress = true;
	j->present += n;
	j->received += n;
	e->done_bytes += n;
	e->received += n;
	hf_hasher_set_ready(&e->hasher, &j->hj, j->ranged ? prefix_of(j) : s->pos);
	return n;
}

static int start_req(struct engine *e, struct job *j, struct seg *s)
{
	const struct hf_config *c = e->c;
	struct hf_req *r = malloc(sizeof *r);
	if (!r)
		return fail(e, bn_seterr(e->err, BN_ENOMEM, "out of memory"));
	char range[64], *rp = NULL;
	if (s && j->ranged) {
		snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)s->pos, (unsigned long long)s->end - 1);
		rp = range;
	} else if (s && s->pos > 0) {
		snprintf(range, sizeof range, "%llu-", (unsigned long long)s->pos);
		rp = range;
	}
	const char *url = s ? j->url : j->head_url;
	int rc = hf_req_init(r, e->net, url, s == NULL, rp, s ? c->download_timeout : c->etag_timeout, e->err);
	if (rc) {
		free(r);
		return fail(e, rc);
	}
	r->owner = j;
	r->seg = s;
	if (s) {
		r->sink = on_data;
		s->req = r;
	} else {
		j->head = r;
		j->state = J_HEAD;
	}
	bn_verbose("%s %s%s%s", s ? "GET" : "HEAD", url, rp ? " Range: bytes=" : "", rp ? rp : "");
	curl_multi_add_handle(e->net->multi, r->easy);
	e->active++;
	return 0;
}

static void end_req(struct engine *e, struct hf_req *r)
{
	curl_multi_remove_handle(e->net->multi, r->easy);
	hf_req_free(r);
	free(r);
	e->active--;
}

static void cancel_segs(struct engine *e, struct job *j)
{
	for (size_t i = 0; i < j->nsegs; i++)
		if (j->segs[i].req) {
			end_req(e, j->segs[i].req);
			j->segs[i].req = NULL;
		}
}

static char *resolve_url(struct engine *e, const struct hf_file *f)
{
	const struct hf_config *c = e->c;
	char *qp = hf_url_quote(f->path, true);
	if (!qp)
		return NULL;
	size_t n = strlen(c->endpoint) + strlen(c->repo_id) + strlen(qp) + 80;
	char *url = malloc(n);
	if (url)
		snprintf(url, n, "%s/%s%s/resolve/%s/%s", c->endpoint, repo_prefix(c->repo_type), c->repo_id,
			 e->commit, qp);
	free(qp);
	return url;
}

/* Back to the HEAD (a stale signed URL): the file and its segments are kept. */
static int rehead(struct engine *e, struct job *j)
{
	cancel_segs(e, j);
	free(j->url);
	j->url = NULL;
	free(j->head_url);
	j->head_url = resolve_url(e, j->f);
	j->hops = 0;
	if (!j->head_url)
		return fail(e, bn_seterr(e->err, BN_ENOMEM, "out of memory"));
	j->state = J_WAIT;
	j->head_retry_at = 0;
	return 0;
}

/* ---- answers -------------------------------------------------------------------------------- */

static void head_done(struct engine *e, struct job *j, struct hf_req *r, CURLcode res)
{
	const struct hf_config *c = e->c;
	j->head = NULL;
	j->state = J_WAIT;
	double delay;
	if (res != CURLE_OK || hf_retryable(r, res, j->head_fails + 1, &delay)) {
		j->head_fails++;
		if (!hf_retryable(r, res, j->head_fails, &delay)) {
			char obj[600];
			snprintf(obj, sizeof obj, "%s: %s", c->repo_id, j->f->path);
			if (res != CURLE_OK)
				fail(e, hf_net_error(e->net, r, res, obj, j->head_fails, e->err));
			else
				fail(e, hf_http_error(e->net, r, j->f->path, e->err));
			return;
		}
		bn_warn("%s: %s; retrying in %.0f s", j->f->path,
			res != CURLE_OK ? (r->errbuf[0] ? r->errbuf : curl_easy_strerror(res)) : "server busy", delay);
		j->head_retry_at = bn_now() + delay * c->time_scale;
		return;
	}
	long s = r->h.status;
	if (s >= 300 && s < 400) {
		if (!r->h.location) {
			fail(e, bn_seterr(e->err, BN_ENET, "%s: HTTP %ld without a Location from %s", j->f->path, s, r->url));
			return;
		}
		bool relative = r->h.location[0] == '/' && r->h.location[1] != '/';
		char *next = hf_url_resolve(r->url, r->h.location);
		if (!next) {
			fail(e, bn_seterr(e->err, BN_ENET, "%s: unusable redirect to '%.200s'", j->f->path, r->h.location));
			return;
		}
		char origin[512];
		/* a redirect without the Hub's metadata that stays on the Hub is followed as well */
		if (!relative && !r->h.commit[0] && hf_url_origin(next, origin, sizeof origin) &&
		    strcmp(origin, e->net->origin) == 0)
			relative = true;
		if (relative) {
			/* a renamed repo or the resolve cache: follow it ourselves, token kept (same host) */
			if (++j->hops > MAX_HOPS) {
				free(next);
				fail(e, bn_seterr(e->err, BN_ENET, "%s: more than %d redirects from %s", j->f->path,
						  MAX_HOPS, e->net->origin));
				return;
			}
			free(j->head_url);
			j->head_url = next;
			j->head_retry_at = 0;
			return;
		}
		free(j->url);
		j->url = next; /* absolute: the CDN; the GET decides on the token by origin */
	} else if (s >= 400) {
		fail(e, hf_http_error(e->net, r, j->f->path, e->err));
		return;
	} else {
		free(j->url);
		j->url = strdup(r->url);
	}
	/* metadata (§4.3): commit, etag, size are required */
	char etag[HF_ETAG_MAX + 8];
	hf_etag_normalise(r->h.linked_etag[0] ? r->h.linked_etag : r->h.etag, etag, sizeof etag);
	int64_t size = r->h.linked_size >= 0 ? r->h.linked_size : (s == 200 ? r->h.content_length : -1);
	if (!r->h.commit[0]) {
		fail(e, bn_seterr(e->err, BN_ENET,
				  "%s: %s does not look like a Hugging Face Hub (no X-Repo-Commit header on "
				  "the resolve answer); check HF_ENDPOINT and your proxy settings",
				  j->f->path, e->net->origin));
		return;
	}
	if (!etag[0] || size < 0) {
		fail(e, bn_seterr(e->err, BN_ENET,
				  "%s: the resolve answer from %s has no %s; check HF_ENDPOINT and your proxy "
				  "settings", j->f->path, e->net->origin, etag[0] ? "size (X-Linked-Size or Content-Length)" : "ETag"));
		return;
	}
	if (strcasecmp(r->h.commit, e->commit) != 0 || strcmp(etag, j->etag) != 0 || (uint64_t)size != j->f->size) {
		fail(e, bn_seterr(e->err, BN_EFORMAT,
				  "%s: the Hub's answers disagree: the listing of commit %.12s says etag %.16s "
				  "and %llu bytes, the resolve answer says commit %.12s, etag %.16s and %lld "
				  "bytes; run again later", j->f->path, e->commit, j->etag,
				  (unsigned long long)j->f->size, r->h.commit, etag, (long long)size));
		return;
	}
	if (!j->url) {
		fail(e, bn_seterr(e->err, BN_ENOMEM, "out of memory"));
		return;
	}
	if (j->have_file) {
		j->state = J_GET; /* after a re-HEAD: carry on where the segments are */
		return;
	}
	j->t_start = bn_now();
	int rc = prepare_file(e, j);
	if (rc)
		fail(e, rc);
}

static void seg_retry(struct engine *e, struct job *j, struct seg *s, struct hf_req *r, CURLcode res,
		      bool progressed)
{
	const struct hf_config *c = e->c;
	double delay;
	if (progressed) {
		s->fails = 0; /* each chunk of bytes renews the budget (§6.1) */
		s->retry_at = bn_now() + 1.0 * c->time_scale;
		bn_verbose("%s: transfer interrupted at byte %llu (%s); resuming", j->f->path,
			   (unsigned long long)s->pos, r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		return;
	}
	s->fails++;
	if (!hf_retryable(r, res, s->fails, &delay)) {
		char obj[600];
		snprintf(obj, sizeof obj, "%s: %s", c->repo_id, j->f->path);
		if (res != CURLE_OK)
			fail(e, hf_net_error(e->net, r, res, obj, s->fails, e->err));
		else if (r->h.status < 300)
			fail(e, bn_seterr(e->err, BN_ENET,
					  "%s: the server keeps ending the body early (at byte %llu of %llu); "
					  "the partial download stays for resume; run again later", obj,
					  (unsigned long long)s->pos, (unsigned long long)j->f->size));
		else
			fail(e, hf_http_error(e->net, r, j->f->path, e->err));
		return;
	}
	const char *why = res != CURLE_OK ? (r->errbuf[0] ? r->errbuf : curl_easy_strerror(res)) : NULL;
	char buf[64];
	if (!why) {
		snprintf(buf, sizeof buf, "HTTP %ld%s", r->h.status,
			 r->h.status < 300 ? " with a short body" : "");
		why = buf;
	}
	bn_warn("%s: %s; retrying in %.0f s (attempt %d of %d)", j->f->path, why, delay, s->fails + 1,
		HF_MAX_RETRIES + 1);
	s->retry_at = bn_now() + delay * c->time_scale;
}

static void get_done(struct engine *e, struct job *j, struct hf_req *r, CURLcode res)
{
	struct seg *s = r->seg;
	s->req = NULL;
	long st = r->h.status;
	bool progressed = r->progress;
	char obj[600];
	snprintf(obj, sizeof obj, "%s: %s", e->c->repo_id, j->f->path);
	if (j->disk_full) {
		char a[32], b[32];
		fail(e, bn_seterr(e->err, BN_ENOSPC,
				  "%s: disk full after %s of %s; the partial download stays in %s/.cache/"
				  "huggingface/download for resume; free some space and run again",
				  j->paths.file, bn_fmt_bytes(j->present, a, sizeof a),
				  bn_fmt_bytes(j->f->size, b, sizeof b), e->c->local_dir));
		return;
	}
	if (j->write_errno) {
		fail(e, bn_seterr(e->err, BN_EIO, "%s: cannot write: %s", j->ranged ? j->paths.parts : j->paths.incomplete,
				  strerror(j->write_errno)));
		return;
	}
	if (j->restart_single) {
		j->restart_single = false;
		cancel_segs(e, j);
		if (restart_as_single(e, j))
			fail(e, -BN_EIO);
		return;
	}
	if (j->reject) {
		const char *why = j->reject;
		j->reject = NULL;
		if (strstr(why, "Content-Range") && s->pos > 0) {
			/* §10.5: require a 206 starting at N, else truncate and restart without Range */
			bn_warn("%s: %s; restarting from byte 0", j->f->path, why);
			cancel_segs(e, j);
			if (restart_as_single(e, j))
				fail(e, -BN_EIO);
			return;
		}
		fail(e, bn_seterr(e->err, BN_EFORMAT, "%s: %s (consistency check failed at byte %llu of %llu)",
				  obj, why, (unsigned long long)s->pos, (unsigned long long)j->f->size));
		return;
	}
	if (res == CURLE_OK && st >= 200 && st < 300) {
		if (s->pos == s->end) {
			s->done = true;
			if (j->ranged) {
				uint64_t prefix = prefix_of(j);
				if (prefix > j->state_prefix)
					write_state(j, prefix);
				hf_hasher_set_ready(&e->hasher, &j->hj, prefix);
			}
			if (prefix_of(j) == j->f->size)
				j->state = J_VERIFY;
			return;
		}
		seg_retry(e, j, s, r, res, progressed);
		return;
	}
	if (res == CURLE_OK && st == 416) {
		if (r->h.cr_total_known && r->h.cr_total == s->pos && s->pos == j->f->size) {
			s->done = true;
			j->state = J_VERIFY;
			return;
		}
		fail(e, bn_seterr(e->err, BN_EFORMAT,
				  "%s: the server holds %llu bytes but the Hub lists %llu (HTTP 416 at byte %llu; "
				  "consistency check failed); the partial download stays; run again later",
				  obj, (unsigned long long)r->h.cr_total, (unsigned long long)j->f->size,
				  (unsigned long long)s->pos));
		return;
	}
	if (res == CURLE_OK && st >= 300 && st < 400 && r->h.location) {
		char *next = hf_url_resolve(r->url, r->h.location);
		if (!next || ++j->hops > MAX_HOPS) {
			free(next);
			fail(e, bn_seterr(e->err, BN_ENET, "%s: too many or unusable redirects at %s", obj, r->url));
			return;
		}
		free(j->url);
		j->url = next;
		return;
	}
	char origin[512];
	bool hub = hf_url_origin(r->url, origin, sizeof origin) && strcmp(origin, e->net->origin) == 0;
	if (res == CURLE_OK && (st == 400 || st == 401 || st == 403) && !hub) {
		/* a signed CDN URL expired or was refused: ask the Hub for a fresh one (§4.3) */
		if (++j->reheads > MAX_REHEADS) {
			fail(e, hf_http_error(e->net, r, j->f->path, e->err));
			return;
		}
		bn_verbose("%s: the download URL was refused (HTTP %ld); asking the Hub for a new one", j->f->path, st);
		rehead(e, j);
		return;
	}
	if (res == CURLE_OK && st >= 400) {
		double delay;
		if (hf_retryable(r, res, s->fails + 1, &delay))
			seg_retry(e, j, s, r, res, false);
		else
			fail(e, hf_http_error(e->net, r, j->f->path, e->err));
		return;
	}
	seg_retry(e, j, s, r, res, progressed);
}

/* The hasher is done with a complete file: verify, then rename into place and record it. */
static void finish_job(struct engine *e, struct job *j)
{
	const struct hf_config *c = e->c;
	hf_hasher_remove(&e->hasher, &j->hj);
	j->hashing = false;
	const char *tmp = j->ranged ? j->paths.parts : j->paths.incomplete;
	if (j->hj.read_errno) {
		fail(e, bn_seterr(e->err, BN_EIO, "%s: cannot read it back: %s", tmp, strerror(j->hj.read_errno)));
		return;
	}
	const char *want = j->f->sha256[0] ? j->f->sha256 : j->f->blob_id;
	const char *kind = j->f->sha256[0] ? "SHA-256" : "git blob SHA-1";
	if (strcmp(j->hj.hex, want) != 0) {
		close(j->fd);
		j->fd = -1;
		unlink(tmp);
		unlink(j->paths.parts_state);
		j->have_file = j->ranged = false;
		free(j->segs);
		j->segs = NULL;
		j->nsegs = j->first_open = 0;
		e->done_bytes -= BN_MIN(e->done_bytes, j->present);
		j->present = 0;
		if (++j->verify_fails <= 1) {
			bn_warn("%s: %s mismatch (expected %.16s..., got %.16s...); the download was removed; "
				"downloading it again", j->f->path, kind, want, j->hj.hex);
			rehead(e, j);
			return;
		}
		fail(e, bn_seterr(e->err, BN_EVERIFY,
				  "%s: %s mismatch after two downloads (expected %s, got %s); the corrupt "
				  "download was removed; the server is sending bad data: try again later or "
				  "report it", j->f->path, kind, want, j->hj.hex));
		return;
	}
	if (fsync(j->fd) < 0) {
		fail(e, bn_seterrno(e->err, errno, "%s: cannot sync", tmp));
		return;
	}
	close(j->fd);
	j->fd = -1;
	j->have_file = false;
	if (rename(tmp, j->paths.file) < 0) {
		fail(e, bn_seterrno(e->err, errno, "%s: cannot rename to %s", tmp, j->paths.file));
		return;
	}
	if (j->ranged)
		unlink(j->paths.parts_state);
	j->ranged = false;
	char *dir = strdup(j->paths.file);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash) {
		*slash = '\0';
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	free(dir);
	int rc = hf_meta_write(j->paths.meta, e->commit, j->etag, e->err);
	if (rc) {
		fail(e, rc);
		return;
	}
	unlock_job(j);
	j->state = J_DONE;
	e->files_done++;
	e->st->files_downloaded++;
	file_line(e, j);
	(void)c;
}

/* ---- the loop -------------------------------------------------------------------------------- */

static void wake(void *arg)
{
	curl_multi_wakeup(arg);
}

/* Starts what the connection budget allows: first one request per file in order (files in
 * parallel), then extra chunks of ranged files. */
static void schedule(struct engine *e)
{
	const struct hf_config *c = e->c;
	double now = bn_now();
	for (int pass = 0; pass < 2 && !e->rc; pass++) {
		for (size_t i = 0; i < e->n && e->active < c->jobs && !e->rc; i++) {
			struct job *j = &e->jobs[i];
			if (j->state == J_WAIT && pass == 0) {
				if (j->head_retry_at <= now)
					start_req(e, j, NULL);
				continue;
			}
			if (j->state != J_GET)
				continue;
			size_t act = count_active(j);
			if (pass == 0 && act > 0)
				continue;
			if (j->ranged && act > 0 && !j->ranges_ok)
				continue; /* the first chunk probes whether the server honours ranges */
			for (size_t k = j->first_open; k < j->nsegs && e->active < c->jobs && !e->rc; k++) {
				struct seg *s = &j->segs[k];
				if (s->done || s->req || s->retry_at > now)
					continue;
				start_req(e, j, s);
				if (pass == 0 || !j->ranges_ok)
					break;
			}
		}
	}
}

static double next_wakeup(struct engine *e)
{
	double now = bn_now(), t = now + DRAW_INTERVAL;
	for (size_t i = 0; i < e->n; i++) {
		struct job *j = &e->jobs[i];
		if (j->state == J_WAIT)
			t = BN_MIN(t, j->head_retry_at);
		if (j->state == J_GET)
			for (size_t k = j->first_open; k < j->nsegs; k++)
				if (!j->segs[k].done && !j->segs[k].req)
					t = BN_MIN(t, j->segs[k].retry_at);
	}
	return t - now;
}

int hf_fetch(struct hf_net *net, const char *commit, const struct hf_file *const *files, size_t n,
	     struct hf_fetch_stats *st, struct bn_err *err)
{
	const struct hf_config *c = net->cfg;
	struct engine e = { .net = net, .c = c, .commit = commit, .n = n, .err = err, .st = st };
	memset(st, 0, sizeof *st);
	if (n == 0)
		return 0;
	e.jobs = calloc(n, sizeof *e.jobs);
	if (!e.jobs)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	e.show = !c->quiet && bn_log_level >= BN_LOG_NORMAL;
	e.tty = isatty(STDERR_FILENO);
	e.t0 = e.last_draw = bn_now();
	e.last_decile = 0;
	for (size_t i = 0; i < n && !e.rc; i++) {
		struct job *j = &e.jobs[i];
		j->e = &e;
		j->f = files[i];
		j->etag = hf_file_etag(files[i]);
		j->fd = j->lockfd = -1;
		e.total += files[i]->size;
		if (hf_paths_init(&j->paths, c->local_dir, files[i]->path, j->etag, err) ||
		    !(j->head_url = resolve_url(&e, files[i])))
			fail(&e, err->code ? -err->code : -BN_ENOMEM);
	}
	if (!e.rc && hf_hasher_start(&e.hasher, wake, net->multi))
		fail(&e, bn_seterr(err, BN_ENOMEM, "cannot start the hashing thread"));

	while (!e.rc) {
		if (bn_interrupted) {
			fail(&e, bn_seterr(err, BN_EINTR, "interrupted; run again to resume"));
			break;
		}
		schedule(&e);
		int running;
		curl_multi_perform(net->multi, &running);
		CURLMsg *m;
		int q;
		while ((m = curl_multi_info_read(net->multi, &q))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct hf_req *r = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			CURLcode res = hf_req_outcome(r, m->data.result);
			struct job *j = r->owner;
			bn_verbose("%s %s -> %ld%s%s", r->seg ? "GET" : "HEAD", r->url, r->h.status,
				   res ? ": " : "", res ? curl_easy_strerror(res) : "");
			curl_multi_remove_handle(net->multi, r->easy);
			if (r->seg)
				((struct seg *)r->seg)->req = NULL;
			else
				j->head = NULL;
			if (!e.rc) {
				if (r->seg)
					get_done(&e, j, r, res);
				else
					head_done(&e, j, r, res);
			}
			hf_req_free(r);
			free(r);
			e.active--;
		}
		size_t done = 0;
		for (size_t i = 0; i < n && !e.rc; i++) {
			struct job *j = &e.jobs[i];
			if (j->state == J_VERIFY && hf_hasher_finished(&e.hasher, &j->hj))
				finish_job(&e, j);
			done += j->state == J_DONE;
		}
		if (e.rc || done == n)
			break;
		draw(&e, false);
		double wait = next_wakeup(&e);
		curl_multi_poll(net->multi, NULL, 0, wait > 0 ? (int)(wait * 1000) + 1 : 0, NULL);
	}

	/* Stop cleanly: requests out, partial files back to resumable .incomplete form. */
	for (size_t i = 0; i < n; i++) {
		struct job *j = &e.jobs[i];
		if (j->head)
			end_req(&e, j->head);
		j->head = NULL;
		cancel_segs(&e, j);
		stop_file(&e, j);
		unlock_job(j);
		hf_paths_free(&j->paths);
		free(j->head_url);
		free(j->url);
		free(j->segs);
	}
	hf_hasher_stop(&e.hasher);
	clear_bars(&e);
	st->bytes_received = e.received;
	st->seconds = bn_now() - e.t0;
	free(e.jobs);
	return e.rc;
}

/* mockhub: a local Hugging Face Hub for hfget's tests (hf-hub-protocol.md §11).  Two listeners
 * on 127.0.0.1 with ephemeral ports: the "hub" (API, resolve, errors) and a "CDN" on another
 * port that serves LFS files behind signed, expiring URLs and rejects any Authorization header,
 * so a token leak fails the test.  Repos come from a config file (re-read when it changes),
 * faults are injected per request by rules in it, and every request is logged to a file the
 * tests read.  Prints "hub=PORT cdn=PORT" on stdout and serves until stdin reaches EOF.
 * --tls-cert FILE --tls-key FILE (PEM): the hub listener speaks HTTPS (libmicrohttpd's GnuTLS)
 * and its absolute URLs say https://; the CDN stays plain HTTP.
 *
 * Config lines (# comments):
 *   token TOKEN                           a valid token
 *   prefix /PATH                          the hub also answers under this path prefix (mirrors)
 *   repo ID [type=model|dataset] [private] [gated=auto|manual] [disabled] [allow=T1,T2]
 *           [lfs_min=BYTES] [page=N] [siblings=none|noblobs] [relative=1] [weak_etag=1]
 *           [rename_to=ID [absolute=1: redirect with the full URL]] [ttl=SECONDS]
 *   commit ID SHA DIR                     the files of commit SHA are the files under DIR
 *   ref ID NAME SHA                       branch or tag NAME points at SHA
 *   fake ID SHA PATH SIZE [lfs]           a listing-only entry (unsafe names, huge sizes)
 *   fault [host=hub|cdn] [method=GET|HEAD] [path=SUBSTRING] [skip=K] [times=N (0: always)]
 *         then one or more of: status=N retry_after=S ratelimit=S drop=BYTES stall=BYTES:MS
 *         corrupt=1 short=BYTES ignore_range=1 bad_range=1 no_commit=1 no_etag=1 no_size=1
 *         expire=1 (CDN: the signature has expired) delay=MS (before the headers)
 *         gzip=1 (claims Content-Encoding: gzip)
 * Log lines: host method path query range=R auth=0|1 ae=ACCEPT-ENCODING status=N */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_hash.h"

#define MAXF 4096

struct mfile {
	char *path;
	char *fs;           /* NULL for fake entries */
	uint64_t size;
	bool lfs;
	char sha256[65];    /* content (LFS) */
	char gitsha1[41];   /* git blob id of the content (regular) or of the pointer (LFS) */
};

struct mcommit {
	char *repo;
	char sha[41];
	struct mfile *files;
	size_t n;
};

struct mref {
	char *repo, *name;
	char sha[41];
};

struct mrepo {
	char *id, *type, *rename_to, *gated;
	bool private_, disabled, relative, weak_etag, absolute;
	char *allow; /* comma-separated, NULL: any valid token */
	uint64_t lfs_min;
	unsigned page;
	int siblings; /* 0 normal, 1 none, 2 noblobs */
	long ttl;
};

struct fault {
	char *key; /* the rule's text: counters survive reloads */
	char host[8], method[8];
	char *path;
	long skip, times;
	long status, retry_after, ratelimit;
	long long drop, stall_at, short_by;
	long stall_ms, delay_ms;
	bool gzip, corrupt, ignore_range, bad_range, no_commit, no_etag, no_size, expire;
};

struct config {
	char *prefix;
	char **tokens;
	size_t ntokens;
	struct mrepo *repos;
	size_t nrepos;
	struct mcommit *commits;
	size_t ncommits;
	struct mref *refs;
	size_t nrefs;
	struct fault *faults;
	size_t nfaults;
};

struct counter {
	char *key;
	long n;
};

static struct {
	pthread_mutex_t mu;
	const char *config_path, *log_path;
	FILE *log;
	struct config *cfg;
	struct config **old; /* replaced configs stay alive: requests in flight may use them */
	size_t nold;
	struct stat cfg_st;
	struct counter *counters;
	size_t ncounters;
	unsigned hub_port, cdn_port;
	char *tls_cert, *tls_key; /* PEM text; NULL: the hub speaks plain HTTP */
	const char *hub_scheme;   /* of the hub's own absolute URLs */
	long request_id;
	volatile bool stop;
	/* hash cache: fs path + size + mtime */
	struct hentry {
		char *fs;
		uint64_t size;
		long long mtime;
		char sha256[65], gitsha1[41];
	} *hc;
	size_t nhc;
} G = { .mu = PTHREAD_MUTEX_INITIALIZER, .hub_scheme = "http://" };

static const char secret[] = "mockhub-signing-key";

/* ---- hashing ------------------------------------------------------------------------------------ */

static void hex_of(const unsigned char *md, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void git_sha1_buf(const void *p, size_t n, char out[41])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char head[64];
	int hl = snprintf(head, sizeof head, "blob %zu", n);
	unsigned char md[20];
	unsigned len;
	EVP_DigestInit_ex(c, EVP_sha1(), NULL);
	EVP_DigestUpdate(c, head, (size_t)hl + 1);
	EVP_DigestUpdate(c, p, n);
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	hex_of(md, 20, out);
}

static void git_sha1_file(const char *fs, uint64_t size, char out[41])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char head[64];
	int hl = snprintf(head, sizeof head, "blob %llu", (unsigned long long)size);
	EVP_DigestInit_ex(c, EVP_sha1(), NULL);
	EVP_DigestUpdate(c, head, (size_t)hl + 1);
	int fd = open(fs, O_RDONLY);
	static unsigned char buf[1 << 16];
	ssize_t r;
	while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0)
		EVP_DigestUpdate(c, buf, (size_t)r);
	if (fd >= 0)
		close(fd);
	unsigned char md[20];
	unsigned len;
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	hex_of(md, 20, out);
}

/* Fills the hashes a file needs (under G.mu). */
static void hash_file(struct mfile *f)
{
	struct stat st;
	if (stat(f->fs, &st) < 0)
		return;
	long long mt = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	struct hentry *h = NULL;
	for (size_t i = 0; i < G.nhc; i++)
		if (strcmp(G.hc[i].fs, f->fs) == 0 && G.hc[i].size == (uint64_t)st.st_size && G.hc[i].mtime == mt)
			h = &G.hc[i];
	if (!h) {
		G.hc = realloc(G.hc, (G.nhc + 1) * sizeof *G.hc);
		h = &G.hc[G.nhc++];
		memset(h, 0, sizeof *h);
		h->fs = strdup(f->fs);
		h->size = (uint64_t)st.st_size;
		h->mtime = mt;
	}
	if (f->lfs && !h->sha256[0])
		bn_sha256_file(f->fs, h->sha256, NULL);
	if (!f->lfs && !h->gitsha1[0])
		git_sha1_file(f->fs, h->size, h->gitsha1);
	if (f->lfs) {
		memcpy(f->sha256, h->sha256, sizeof f->sha256);
		char ptr[256];
		int n = snprintf(ptr, sizeof ptr, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %llu\n",
				 f->sha256, (unsigned long long)f->size);
		git_sha1_buf(ptr, (size_t)n, f->gitsha1);
	} else {
		memcpy(f->gitsha1, h->gitsha1, sizeof f->gitsha1);
	}
}

/* ---- config ------------------------------------------------------------------------------------- */

static struct mrepo *find_repo(struct config *c, const char *id)
{
	for (size_t i = 0; i < c->nrepos; i++)
		if (strcmp(c->repos[i].id, id) == 0)
			return &c->repos[i];
	return NULL;
}

static void scan_dir(const char *root, const char *rel, struct mcommit *cm)
{
	char path[4096];
	snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char r[4096], full[8200];
		snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
		snprintf(full, sizeof full, "%s/%s", root, r);
		struct stat st;
		if (stat(full, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			scan_dir(root, r, cm);
		} else if (S_ISREG(st.st_mode) && cm->n < MAXF) {
			cm->files = realloc(cm->files, (cm->n + 1) * sizeof *cm->files);
			struct mfile *f = &cm->files[cm->n++];
			memset(f, 0, sizeof *f);
			f->path = strdup(r);
			f->fs = strdup(full);
			f->size = (uint64_t)st.st_size;
		}
	}
	closedir(d);
}

static int cmp_mfile(const void *a, const void *b)
{
	return strcmp(((const struct mfile *)a)->path, ((const struct mfile *)b)->path);
}

static const char *opt(char **kv, int n, const char *key)
{
	size_t kl = strlen(key);
	for (int i = 0; i < n; i++) {
		if (strcmp(kv[i], key) == 0)
			return "1";
		if (strncmp(kv[i], key, kl) == 0 && kv[i][kl] == '=')
			return kv[i] + kl + 1;
	}
	return NULL;
}

static long lopt(char **kv, int n, const char *key, long def)
{
	const char *v = opt(kv, n, key);
	return v ? atol(v) : def;
}

static struct config *load_config(void)
{
	FILE *f = fopen(G.config_path, "r");
	if (!f)
		return NULL;
	struct config *c = calloc(1, sizeof *c);
	char line[8192];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *copy = strdup(line);
		char *w[64];
		int n = 0;
		for (char *t = strtok(line, " \t"); t && n < 64; t = strtok(NULL, " \t"))
			w[n++] = t;
		if (n == 0 || w[0][0] == '#') {
			free(copy);
			continue;
		}
		if (strcmp(w[0], "token") == 0 && n >= 2) {
			c->tokens = realloc(c->tokens, (c->ntokens + 1) * sizeof *c->tokens);
			c->tokens[c->ntokens++] = strdup(w[1]);
		} else if (strcmp(w[0], "prefix") == 0 && n >= 2) {
			c->prefix = strdup(w[1]);
		} else if (strcmp(w[0], "repo") == 0 && n >= 2) {
			c->repos = realloc(c->repos, (c->nrepos + 1) * sizeof *c->repos);
			struct mrepo *r = &c->repos[c->nrepos++];
			memset(r, 0, sizeof *r);
			char **kv = w + 2;
			int nk = n - 2;
			r->id = strdup(w[1]);
			r->type = strdup(opt(kv, nk, "type") ? opt(kv, nk, "type") : "model");
			r->private_ = opt(kv, nk, "private") != NULL;
			r->disabled = opt(kv, nk, "disabled") != NULL;
			r->relative = lopt(kv, nk, "relative", 0) != 0;
			r->weak_etag = lopt(kv, nk, "weak_etag", 0) != 0;
			r->absolute = lopt(kv, nk, "absolute", 0) != 0;
			r->gated = opt(kv, nk, "gated") ? strdup(opt(kv, nk, "gated")) : NULL;
			r->allow = opt(kv, nk, "allow") ? strdup(opt(kv, nk, "allow")) : NULL;
			r->rename_to = opt(kv, nk, "rename_to") ? strdup(opt(kv, nk, "rename_to")) : NULL;
			r->lfs_min = (uint64_t)lopt(kv, nk, "lfs_min", 1024);
			r->page = (unsigned)lopt(kv, nk, "page", 50);
			r->ttl = lopt(kv, nk, "ttl", 3600);
			const char *s = opt(kv, nk, "siblings");
			r->siblings = !s ? 0 : strcmp(s, "none") == 0 ? 1 : 2;
		} else if (strcmp(w[0], "commit") == 0 && n >= 4) {
			c->commits = realloc(c->commits, (c->ncommits + 1) * sizeof *c->commits);
			struct mcommit *cm = &c->commits[c->ncommits++];
			memset(cm, 0, sizeof *cm);
			cm->repo = strdup(w[1]);
			snprintf(cm->sha, sizeof cm->sha, "%s", w[2]);
			scan_dir(w[3], "", cm);
		} else if (strcmp(w[0], "ref") == 0 && n >= 4) {
			c->refs = realloc(c->refs, (c->nrefs + 1) * sizeof *c->refs);
			struct mref *r = &c->refs[c->nrefs++];
			r->repo = strdup(w[1]);
			r->name = strdup(w[2]);
			snprintf(r->sha, sizeof r->sha, "%s", w[3]);
		} else if (strcmp(w[0], "fake") == 0 && n >= 5) {
			for (size_t i = 0; i < c->ncommits; i++) {
				struct mcommit *cm = &c->commits[i];
				if (strcmp(cm->repo, w[1]) || strcmp(cm->sha, w[2]))
					continue;
				cm->files = realloc(cm->files, (cm->n + 1) * sizeof *cm->files);
				struct mfile *mf = &cm->files[cm->n++];
				memset(mf, 0, sizeof *mf);
				mf->path = strdup(w[3]);
				mf->size = strtoull(w[4], NULL, 10);
				mf->lfs = n > 5 && strcmp(w[5], "lfs") == 0;
				char hex[65];
				bn_sha256_buf(mf->path, strlen(mf->path), hex);
				if (mf->lfs)
					memcpy(mf->sha256, hex, 65);
				memcpy(mf->gitsha1, hex, 40);
				mf->gitsha1[40] = '\0';
			}
		} else if (strcmp(w[0], "fault") == 0) {
			c->faults = realloc(c->faults, (c->nfaults + 1) * sizeof *c->faults);
			struct fault *ft = &c->faults[c->nfaults++];
			memset(ft, 0, sizeof *ft);
			char **kv = w + 1;
			int nk = n - 1;
			ft->key = strdup(copy);
			snprintf(ft->host, sizeof ft->host, "%s", opt(kv, nk, "host") ? opt(kv, nk, "host") : "");
			snprintf(ft->method, sizeof ft->method, "%s", opt(kv, nk, "method") ? opt(kv, nk, "method") : "");
			ft->path = opt(kv, nk, "path") ? strdup(opt(kv, nk, "path")) : NULL;
			ft->skip = lopt(kv, nk, "skip", 0);
			ft->times = lopt(kv, nk, "times", 1);
			ft->status = lopt(kv, nk, "status", 0);
			ft->retry_after = lopt(kv, nk, "retry_after", -1);
			ft->ratelimit = lopt(kv, nk, "ratelimit", -1);
			ft->drop = lopt(kv, nk, "drop", -1);
			ft->short_by = lopt(kv, nk, "short", 0);
			const char *st = opt(kv, nk, "stall");
			ft->stall_at = -1;
			if (st && strchr(st, ':')) {
				ft->stall_at = atoll(st);
				ft->stall_ms = atol(strchr(st, ':') + 1);
			}
			ft->delay_ms = lopt(kv, nk, "delay", 0);
			ft->corrupt = opt(kv, nk, "corrupt") != NULL;
			ft->gzip = opt(kv, nk, "gzip") != NULL;
			ft->ignore_range = opt(kv, nk, "ignore_range") != NULL;
			ft->bad_range = opt(kv, nk, "bad_range") != NULL;
			ft->no_commit = opt(kv, nk, "no_commit") != NULL;
			ft->no_etag = opt(kv, nk, "no_etag") != NULL;
			ft->no_size = opt(kv, nk, "no_size") != NULL;
			ft->expire = opt(kv, nk, "expire") != NULL;
		}
		free(copy);
	}
	fclose(f);
	for (size_t i = 0; i < c->ncommits; i++) {
		struct mcommit *cm = &c->commits[i];
		struct mrepo *r = find_repo(c, cm->repo);
		for (size_t k = 0; k < cm->n; k++) {
			struct mfile *mf = &cm->files[k];
			if (!mf->fs)
				continue;
			mf->lfs = r && mf->size >= r->lfs_min;
			hash_file(mf);
		}
		if (cm->n) /* qsort(NULL, 0) is undefined */
			qsort(cm->files, cm->n, sizeof *cm->files, cmp_mfile);
	}
	return c;
}

/* The current config (re-read when the file changed).  Called with G.mu held. */
static struct config *config(void)
{
	struct stat st;
	if (stat(G.config_path, &st) == 0 &&
	    (!G.cfg || st.st_mtim.tv_sec != G.cfg_st.st_mtim.tv_sec || st.st_mtim.tv_nsec != G.cfg_st.st_mtim.tv_nsec ||
	     st.st_size != G.cfg_st.st_size || st.st_ino != G.cfg_st.st_ino)) {
		struct config *c = load_config();
		if (c) {
			if (G.cfg) {
				G.old = realloc(G.old, (G.nold + 1) * sizeof *G.old);
				G.old[G.nold++] = G.cfg;
			}
			G.cfg = c;
			G.cfg_st = st;
		}
	}
	return G.cfg;
}

/* ---- requests ------------------------------------------------------------------------------------- */

struct req {
	struct MHD_Connection *conn;
	bool cdn;
	const char *method, *url;
	bool head;
	const char *range, *auth;
	struct config *cfg;
	struct fault *fault; /* the matching fault rule, if any */
	bool token_valid;
	const char *token;
};

struct body {
	int fd;
	uint64_t off, len;     /* file range served */
	long long drop;        /* cut after this many body bytes (-1: no) */
	long long stall_at;
	long stall_ms;
	bool stalled;
	long long corrupt_at;  /* body offset of the flipped byte (-1: none) */
};

static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *b = cls;
	if (b->drop >= 0 && pos >= (uint64_t)b->drop)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= b->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (b->stall_at >= 0 && !b->stalled && pos >= (uint64_t)b->stall_at) {
		b->stalled = true;
		for (long t = 0; t < b->stall_ms && !G.stop; t += 20)
			usleep(20000);
	}
	uint64_t n = b->len - pos;
	if (n > max)
		n = max;
	if (b->drop >= 0 && pos + n > (uint64_t)b->drop)
		n = (uint64_t)b->drop - pos;
	if (b->stall_at >= 0 && !b->stalled && pos + n > (uint64_t)b->stall_at)
		n = (uint64_t)b->stall_at - pos;
	if (n == 0)
		return 0;
	ssize_t r = pread(b->fd, buf, (size_t)n, (off_t)(b->off + pos));
	if (r <= 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (b->corrupt_at >= 0 && (uint64_t)b->corrupt_at >= pos && (uint64_t)b->corrupt_at < pos + (uint64_t)r)
		buf[b->corrupt_at - (long long)pos] ^= 0x5a;
	return r;
}

static void body_free(void *cls)
{
	struct body *b = cls;
	close(b->fd);
	free(b);
}

static void log_req(struct req *q, int status)
{
	if (!G.log)
		return;
	char query[1024] = "";
	size_t used = 0;
	const char *keys[] = { "blobs", "recursive", "expand", "cursor", NULL };
	for (int i = 0; keys[i]; i++) {
		const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, keys[i]);
		if (v && used < sizeof query - 64)
			used += (size_t)snprintf(query + used, sizeof query - used, "%s%s=%s", used ? "&" : "", keys[i], v);
	}
	const char *ae = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Accept-Encoding");
	fprintf(G.log, "%s %s %s q=%s range=%s auth=%d ae=%s status=%d\n", q->cdn ? "cdn" : "hub", q->method,
		q->url, query[0] ? query : "-", q->range ? q->range : "-", q->auth ? 1 : 0, ae ? ae : "-", status);
	fflush(G.log);
}

static enum MHD_Result send_resp(struct req *q, int status, struct MHD_Response *r)
{
	log_req(q, status);
	char id[32];
	snprintf(id, sizeof id, "mock-%ld", ++G.request_id);
	MHD_add_response_header(r, "X-Request-Id", id);
	enum MHD_Result ret = MHD_queue_response(q->conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static struct MHD_Response *text_resp(const char *text)
{
	return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result send_error(struct req *q, int status, const char *code, const char *msg, const char *commit)
{
	char body[1024];
	snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
	struct MHD_Response *r = text_resp(body);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (code)
		MHD_add_response_header(r, "X-Error-Code", code);
	MHD_add_response_header(r, "X-Error-Message", msg);
	if (commit)
		MHD_add_response_header(r, "X-Repo-Commit", commit);
	return send_resp(q, status, r);
}

static enum MHD_Result send_json(struct req *q, const char *json, const char *link)
{
	struct MHD_Response *r = text_resp(json);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (link)
		MHD_add_response_header(r, "Link", link);
	return send_resp(q, 200, r);
}

/* Finds the first fault rule matching this request and counts it (under G.mu). */
static struct fault *match_fault(struct req *q)
{
	for (size_t i = 0; i < q->cfg->nfaults; i++) {
		struct fault *f = &q->cfg->faults[i];
		if (f->host[0] && strcmp(f->host, q->cdn ? "cdn" : "hub") != 0)
			continue;
		if (f->method[0] && strcmp(f->method, q->method) != 0)
			continue;
		if (f->path && !strstr(q->url, f->path))
			continue;
		struct counter *ct = NULL;
		for (size_t k = 0; k < G.ncounters; k++)
			if (strcmp(G.counters[k].key, f->key) == 0)
				ct = &G.counters[k];
		if (!ct) {
			G.counters = realloc(G.counters, (G.ncounters + 1) * sizeof *G.counters);
			ct = &G.counters[G.ncounters++];
			ct->key = strdup(f->key);
			ct->n = 0;
		}
		long nth = ct->n++;
		if (nth < f->skip || (f->times > 0 && nth >= f->skip + f->times))
			continue;
		return f;
	}
	return NULL;
}

static enum MHD_Result send_injected_status(struct req *q, struct fault *f)
{
	char body[128];
	snprintf(body, sizeof body, "{\"error\":\"injected %ld\"}", f->status);
	struct MHD_Response *r = text_resp(body);
	if (f->retry_after >= 0) {
		char v[32];
		snprintf(v, sizeof v, "%ld", f->retry_after);
		MHD_add_response_header(r, "Retry-After", v);
	}
	if (f->ratelimit >= 0) {
		char v[64];
		snprintf(v, sizeof v, "\"api\";r=0;t=%ld", f->ratelimit);
		MHD_add_response_header(r, "RateLimit", v);
		MHD_add_response_header(r, "RateLimit-Policy", "\"fixed window\";\"api\";q=500;w=300");
	}
	return send_resp(q, (int)f->status, r);
}

/* Serves a file's bytes with single-range support and the body faults. */
static enum MHD_Result serve_file(struct req *q, const struct mfile *mf, void (*headers)(struct MHD_Response *, void *),
				  void *hcls)
{
	struct fault *f = q->fault;
	uint64_t size = mf->size;
	if (f && f->short_by > 0)
		size = (uint64_t)f->short_by < size ? size - (uint64_t)f->short_by : 0;
	uint64_t a = 0, b = size ? size - 1 : 0;
	bool ranged = false;
	if (q->range && !(f && f->ignore_range) && strncmp(q->range, "bytes=", 6) == 0 && !strchr(q->range, ',')) {
		const char *s = q->range + 6;
		char *end;
		if (*s == '-') {
			unsigned long long n = strtoull(s + 1, &end, 10);
			if (*end == '\0' && n > 0) {
				a = n >= size ? 0 : size - n;
				ranged = true;
			}
		} else {
			unsigned long long x = strtoull(s, &end, 10);
			if (*end == '-') {
				a = x;
				ranged = true;
				if (end[1]) {
					unsigned long long y = strtoull(end + 1, &end, 10);
					if (*end || y < x)
						ranged = false;
					else
						b = y >= size ? size - 1 : y;
				}
			}
		}
		if (ranged && a >= size) {
			struct MHD_Response *r = text_resp("");
			char cr[64];
			snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
			MHD_add_response_header(r, "Content-Range", cr);
			return send_resp(q, 416, r);
		}
	}
	uint64_t len = size ? b - a + 1 : 0;
	int fd = open(mf->fs, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return send_error(q, 500, NULL, "cannot open the file", NULL);
	struct MHD_Response *r;
	bool faulty = f && (f->drop >= 0 || f->stall_at >= 0 || f->corrupt);
	if (q->head || !faulty) {
		r = MHD_create_response_from_fd_at_offset64(len, fd, a);
	} else {
		struct body *bd = calloc(1, sizeof *bd);
		bd->fd = fd;
		bd->off = a;
		bd->len = len;
		bd->drop = f->drop;
		bd->stall_at = f->stall_at;
		bd->stall_ms = f->stall_ms;
		bd->corrupt_at = f->corrupt ? (long long)(len / 2) : -1;
		r = MHD_create_response_from_callback(len, 64 * 1024, body_reader, bd, body_free);
	}
	MHD_add_response_header(r, "Accept-Ranges", "bytes");
	if (f && f->gzip)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	if (headers)
		headers(r, hcls);
	if (ranged) {
		char cr[96];
		snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)(a + (f && f->bad_range ? 1 : 0)),
			 (unsigned long long)b, (unsigned long long)size);
		MHD_add_response_header(r, "Content-Range", cr);
	}
	return send_resp(q, ranged ? 206 : 200, r);
}

static bool token_allowed(struct req *q, const struct mrepo *r)
{
	if (!q->token_valid)
		return false;
	if (!r->allow)
		return true;
	char *list = strdup(r->allow);
	bool ok = false;
	for (char *t = strtok(list, ","); t && !ok; t = strtok(NULL, ","))
		ok = strcmp(t, q->token) == 0;
	free(list);
	return ok;
}

/* Repo access for metadata (info, tree) or content (resolve: gating applies).  Returns true when
 * an error answer was sent. */
static bool deny(struct req *q, const struct mrepo *r, bool content, enum MHD_Result *ret)
{
	if (!r || (r->private_ && !token_allowed(q, r))) {
		*ret = send_error(q, q->token ? 404 : 401, "RepoNotFound",
				  "Repository not found", NULL);
		return true;
	}
	if (r->disabled) {
		*ret = send_error(q, 403, NULL, "Access to this resource is disabled.", NULL);
		return true;
	}
	if (content && r->gated && !token_allowed(q, r)) {
		char msg[512];
		if (q->token)
			snprintf(msg, sizeof msg, "Access to model %s is restricted and you are not in the authorized list. Visit https://huggingface.co/%s to ask for access.", r->id, r->id);
		else
			snprintf(msg, sizeof msg, "Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", r->id);
		*ret = send_error(q, q->token ? 403 : 401, "GatedRepo", msg, NULL);
		return true;
	}
	return false;
}

/* Resolves a revision of repo to a commit: a commit sha or a ref name. */
static struct mcommit *find_commit(struct config *c, const char *repo, const char *rev)
{
	const char *sha = NULL;
	for (size_t i = 0; i < c->nrefs; i++)
		if (strcmp(c->refs[i].repo, repo) == 0 && strcmp(c->refs[i].name, rev) == 0)
			sha = c->refs[i].sha;
	if (!sha)
		sha = rev;
	for (size_t i = 0; i < c->ncommits; i++)
		if (strcmp(c->commits[i].repo, repo) == 0 && strcmp(c->commits[i].sha, sha) == 0)
			return &c->commits[i];
	return NULL;
}

/* Splits "REV/PATH" where REV may contain '/' (refs/pr/1): the longest ref name that prefixes it,
 * else the first segment. */
static struct mcommit *split_rev(struct config *c, const char *repo, const char *rest, const char **path)
{
	size_t best = 0;
	for (size_t i = 0; i < c->nrefs; i++) {
		size_t n = strlen(c->refs[i].name);
		if (strcmp(c->refs[i].repo, repo) == 0 && n > best && strncmp(rest, c->refs[i].name, n) == 0 &&
		    (rest[n] == '/' || rest[n] == '\0'))
			best = n;
	}
	if (!best)
		best = strcspn(rest, "/");
	char rev[512];
	snprintf(rev, sizeof rev, "%.*s", (int)best, rest);
	*path = rest[best] == '/' ? rest + best + 1 : rest + best;
	return find_commit(c, repo, rev);
}

static const struct mfile *find_file(const struct mcommit *cm, const char *path)
{
	for (size_t i = 0; i < cm->n; i++)
		if (strcmp(cm->files[i].path, path) == 0)
			return &cm->files[i];
	return NULL;
}

/* The repo whose id prefixes rest ("ns/name/..." or "name/..."), longest first. */
static struct mrepo *match_repo(struct config *c, const char *rest, const char **after, const char *type)
{
	struct mrepo *best = NULL;
	size_t bl = 0;
	for (size_t i = 0; i < c->nrepos; i++) {
		size_t n = strlen(c->repos[i].id);
		if (strcmp(c->repos[i].type, type) == 0 && n > bl && strncmp(rest, c->repos[i].id, n) == 0 &&
		    (rest[n] == '/' || rest[n] == '\0')) {
			best = &c->repos[i];
			bl = n;
		}
	}
	if (best)
		*after = rest[bl] == '/' ? rest + bl + 1 : rest + bl;
	return best;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *host_header(struct req *q)
{
	const char *h = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Host");
	return h ? h : "127.0.0.1";
}

static enum MHD_Result api_info(struct req *q, struct mrepo *r, struct mcommit *cm)
{
	bool blobs = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "blobs") && r->siblings != 2;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fprintf(f, "{\"_id\":\"mock\",\"id\":");
	json_str(f, r->id);
	fprintf(f, ",\"author\":\"mock\",\"sha\":\"%s\",\"lastModified\":\"2026-01-01T00:00:00.000Z\",\"private\":%s,"
		   "\"gated\":", cm->sha, r->private_ ? "true" : "false");
	if (r->gated)
		json_str(f, r->gated);
	else
		fprintf(f, "false");
	fprintf(f, ",\"disabled\":false,\"downloads\":0,\"likes\":0,\"tags\":[],\"siblings\":[");
	for (size_t i = 0; r->siblings != 1 && i < cm->n; i++) {
		const struct mfile *mf = &cm->files[i];
		fprintf(f, "%s{\"rfilename\":", i ? "," : "");
		json_str(f, mf->path);
		if (blobs) {
			fprintf(f, ",\"size\":%llu,\"blobId\":\"%s\"", (unsigned long long)mf->size, mf->gitsha1);
			if (mf->lfs)
				fprintf(f, ",\"lfs\":{\"sha256\":\"%s\",\"size\":%llu,\"pointerSize\":134}", mf->sha256,
					(unsigned long long)mf->size);
		}
		fprintf(f, "}");
	}
	fprintf(f, "],\"createdAt\":\"2026-01-01T00:00:00.000Z\",\"usedStorage\":0,\"cardData\":{}}");
	fclose(f);
	enum MHD_Result ret = send_json(q, buf, NULL);
	free(buf);
	return ret;
}

static enum MHD_Result api_tree(struct req *q, struct mrepo *r, struct mcommit *cm, const char *dir, const char *rev)
{
	const char *rec = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "recursive");
	bool recursive = rec && strcasecmp(rec, "true") == 0;
	const char *cur = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "cursor");
	size_t start = cur ? (size_t)atol(cur) : 0;
	/* entries: directories (derived) and files under dir, sorted */
	char **names = NULL;
	int *isdir = NULL;
	size_t n = 0;
	size_t dl = strlen(dir);
	for (size_t i = 0; i < cm->n; i++) {
		const char *p = cm->files[i].path;
		if (dl && (strncmp(p, dir, dl) != 0 || p[dl] != '/'))
			continue;
		const char *rel = dl ? p + dl + 1 : p;
		/* every directory on the way */
		for (const char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
			size_t l = (size_t)(s - p);
			bool seen = false;
			for (size_t k = 0; k < n && !seen; k++)
				seen = isdir[k] && strlen(names[k]) == l && strncmp(names[k], p, l) == 0;
			if (!seen && (recursive || !strchr(rel, '/') || (size_t)(s - rel) == strcspn(rel, "/"))) {
				names = realloc(names, (n + 1) * sizeof *names);
				isdir = realloc(isdir, (n + 1) * sizeof *isdir);
				names[n] = strndup(p, l);
				isdir[n++] = 1;
			}
			if (!recursive)
				break;
		}
		if (recursive || !strchr(rel, '/')) {
			names = realloc(names, (n + 1) * sizeof *names);
			isdir = realloc(isdir, (n + 1) * sizeof *isdir);
			names[n] = strdup(p);
			isdir[n++] = 0;
		}
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputc('[', f);
	size_t end = start + r->page < n ? start + r->page : n;
	for (size_t i = start; i < end; i++) {
		fprintf(f, "%s{\"type\":\"%s\",", i > start ? "," : "", isdir[i] ? "directory" : "file");
		if (isdir[i]) {
			fprintf(f, "\"oid\":\"%040d\",\"size\":0,\"path\":", 0);
			json_str(f, names[i]);
		} else {
			const struct mfile *mf = find_file(cm, names[i]);
			fprintf(f, "\"oid\":\"%s\",\"size\":%llu,\"path\":", mf->gitsha1, (unsigned long long)mf->size);
			json_str(f, mf->path);
			if (mf->lfs)
				fprintf(f, ",\"lfs\":{\"oid\":\"%s\",\"size\":%llu,\"pointerSize\":134}", mf->sha256,
					(unsigned long long)mf->size);
		}
		fputc('}', f);
	}
	fputc(']', f);
	fclose(f);
	char link[2048], *lp = NULL;
	if (end < n) {
		snprintf(link, sizeof link, "<%s%s%s/api/%ss/%s/tree/%s%s%s?recursive=%s&expand=false&cursor=%zu>; rel=\"next\"",
			 G.hub_scheme, host_header(q), G.cfg && G.cfg->prefix && strncmp(q->url, G.cfg->prefix, strlen(G.cfg->prefix)) == 0 ? G.cfg->prefix : "",
			 r->type, r->id, rev, dl ? "/" : "", dir, recursive ? "true" : "false", end);
		lp = link;
	}
	enum MHD_Result ret = send_json(q, buf, lp);
	free(buf);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(isdir);
	return ret;
}

static void sign(const char *repo, const char *commit, const char *path, long expires, char out[33])
{
	char buf[8192], hex[65];
	snprintf(buf, sizeof buf, "%s|%s|%s|%s|%ld", secret, repo, commit, path, expires);
	bn_sha256_buf(buf, strlen(buf), hex);
	memcpy(out, hex, 32);
	out[32] = '\0';
}

static char *urlenc(const char *s)
{
	char *o = malloc(strlen(s) * 3 + 1), *p = o;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c))
			*p++ = (char)c;
		else
			p += sprintf(p, "%%%02X", c);
	}
	*p = '\0';
	return o;
}

struct meta_hdr {
	const struct mfile *mf;
	const struct mcommit *cm;
	const struct mrepo *r;
	struct fault *f;
};

static void regular_headers(struct MHD_Response *resp, void *cls)
{
	struct meta_hdr *m = cls;
	char etag[64];
	snprintf(etag, sizeof etag, "%s\"%s\"", m->r->weak_etag ? "W/" : "", m->mf->gitsha1);
	if (!(m->f && m->f->no_etag))
		MHD_add_response_header(resp, "ETag", etag);
	if (!(m->f && m->f->no_commit))
		MHD_add_response_header(resp, "X-Repo-Commit", m->cm->sha);
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
}

static enum MHD_Result resolve(struct req *q, struct mrepo *r, struct mcommit *cm, const char *path, bool cached)
{
	const struct mfile *mf = find_file(cm, path);
	if (!mf || !mf->fs)
		return send_error(q, 404, "EntryNotFound", "Entry not found", cm->sha);
	char *enc = urlenc(path);
	if (r->relative && !cached) {
		char loc[8192];
		snprintf(loc, sizeof loc, "%s/api/resolve-cache/%ss/%s/%s/%s?etag=%s",
			 G.cfg->prefix && strncmp(q->url, G.cfg->prefix, strlen(G.cfg->prefix)) == 0 ? G.cfg->prefix : "",
			 r->type, r->id, cm->sha, enc, mf->gitsha1);
		free(enc);
		struct MHD_Response *resp = text_resp("");
		MHD_add_response_header(resp, "Location", loc);
		MHD_add_response_header(resp, "X-Repo-Commit", cm->sha);
		return send_resp(q, 307, resp);
	}
	struct fault *f = q->fault;
	if (mf->lfs) {
		long exp = (long)time(NULL) + r->ttl;
		char sig[33], loc[8192], *erepo = urlenc(r->id);
		sign(r->id, cm->sha, path, exp, sig);
		snprintf(loc, sizeof loc, "http://127.0.0.1:%u/lfs/%s?repo=%s&commit=%s&path=%s&Expires=%ld&Signature=%s",
			 G.cdn_port, mf->sha256, erepo, cm->sha, enc, exp, sig);
		free(erepo);
		free(enc);
		char body[8300];
		snprintf(body, sizeof body, "Found. Redirecting to %s", loc);
		struct MHD_Response *resp = text_resp(body);
		char v[96];
		MHD_add_response_header(resp, "Location", loc);
		if (!(f && f->no_size)) {
			snprintf(v, sizeof v, "%llu", (unsigned long long)mf->size);
			MHD_add_response_header(resp, "X-Linked-Size", v);
		}
		if (!(f && f->no_etag)) {
			snprintf(v, sizeof v, "\"%s\"", mf->sha256);
			MHD_add_response_header(resp, "X-Linked-Etag", v);
			snprintf(v, sizeof v, "\"%s\"", mf->gitsha1);
			MHD_add_response_header(resp, "ETag", v);
		}
		if (!(f && f->no_commit))
			MHD_add_response_header(resp, "X-Repo-Commit", cm->sha);
		return send_resp(q, 302, resp);
	}
	free(enc);
	struct meta_hdr m = { mf, cm, r, f };
	return serve_file(q, mf, regular_headers, &m);
}

static void cdn_headers(struct MHD_Response *resp, void *cls)
{
	const struct mfile *mf = cls;
	const char *base = strrchr(mf->path, '/');
	base = base ? base + 1 : mf->path;
	char v[600];
	snprintf(v, sizeof v, "inline; filename*=UTF-8''%s; filename=\"%s\";", base, base);
	MHD_add_response_header(resp, "Content-Disposition", v);
	snprintf(v, sizeof v, "\"s3-%.16s\"", mf->sha256 + 8);
	MHD_add_response_header(resp, "ETag", v);
	MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
}

static enum MHD_Result handle_cdn(struct req *q)
{
	if (q->auth)
		return send_error(q, 400, "InvalidArgument", "Only one auth mechanism allowed", NULL);
	if (strncmp(q->url, "/lfs/", 5) != 0)
		return send_error(q, 404, "NoSuchKey", "The specified key does not exist.", NULL);
	const char *repo = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "repo");
	const char *commit = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "commit");
	const char *path = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "path");
	const char *exps = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "Expires");
	const char *sig = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "Signature");
	if (!repo || !commit || !path || !exps || !sig)
		return send_error(q, 403, "AccessDenied", "Missing signature", NULL);
	char want[33];
	sign(repo, commit, path, atol(exps), want);
	if (strcmp(want, sig) != 0)
		return send_error(q, 403, "AccessDenied", "Invalid signature", NULL);
	if (atol(exps) < (long)time(NULL) || (q->fault && q->fault->expire))
		return send_error(q, 403, "AccessDenied", "Request has expired", NULL);
	struct mcommit *cm = find_commit(q->cfg, repo, commit);
	const struct mfile *mf = cm ? find_file(cm, path) : NULL;
	if (!mf || !mf->fs || strcmp(q->url + 5, mf->sha256) != 0)
		return send_error(q, 404, "NoSuchKey", "The specified key does not exist.", NULL);
	return serve_file(q, mf, cdn_headers, (void *)mf);
}

static enum MHD_Result handle_hub(struct req *q)
{
	struct config *c = q->cfg;
	const char *url = q->url;
	if (c->prefix && strncmp(url, c->prefix, strlen(c->prefix)) == 0)
		url += strlen(c->prefix);
	if (q->auth) {
		const char *a = q->auth;
		if (strncmp(a, "Bearer ", 7) == 0) {
			q->token = a + 7;
			for (size_t i = 0; i < c->ntokens; i++)
				q->token_valid |= strcmp(c->tokens[i], q->token) == 0;
		}
		if (!q->token_valid)
			return send_error(q, 401, NULL, "Invalid credentials in Authorization header", NULL);
	}
	const char *types[] = { "model", "dataset", "space" };
	enum MHD_Result ret;
	/* API: /api/{models,datasets,spaces}/REPO[/revision/REV | /tree/REV[/DIR]] */
	if (strncmp(url, "/api/", 5) == 0 && strncmp(url, "/api/resolve-cache/", 19) != 0) {
		for (int t = 0; t < 3; t++) {
			char pre[32];
			snprintf(pre, sizeof pre, "/api/%ss/", types[t]);
			if (strncmp(url, pre, strlen(pre)) != 0)
				continue;
			const char *rest = url + strlen(pre), *after = NULL;
			struct mrepo *r = match_repo(c, rest, &after, types[t]);
			if (r && r->rename_to) {
				char loc[4096];
				snprintf(loc, sizeof loc, "%s%s%s%s%s%s%s", r->absolute ? G.hub_scheme : "", r->absolute ? host_header(q) : "",
					 c->prefix && url != q->url ? c->prefix : "", pre, r->rename_to, after[0] ? "/" : "", after);
				const char *blobs = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "blobs");
				if (blobs)
					strncat(loc, "?blobs=true", sizeof loc - strlen(loc) - 1);
				struct MHD_Response *resp = text_resp("");
				MHD_add_response_header(resp, "Location", loc);
				return send_resp(q, 307, resp);
			}
			if (deny(q, r, false, &ret))
				return ret;
			if (q->fault && q->fault->status)
				return send_injected_status(q, q->fault);
			struct mcommit *cm;
			if (after[0] == '\0' || strncmp(after, "revision/", 9) == 0) {
				cm = find_commit(c, r->id, after[0] ? after + 9 : "main");
				if (!cm)
					return send_error(q, 404, "RevisionNotFound", "Invalid rev id", NULL);
				return api_info(q, r, cm);
			}
			if (strncmp(after, "tree/", 5) == 0) {
				const char *dir;
				cm = split_rev(c, r->id, after + 5, &dir);
				if (!cm)
					return send_error(q, 404, "RevisionNotFound", "Invalid rev id", NULL);
				char rev[64];
				snprintf(rev, sizeof rev, "%s", cm->sha);
				return api_tree(q, r, cm, dir, rev);
			}
			return send_error(q, 404, NULL, "Not found", NULL);
		}
		return send_error(q, 404, NULL, "Not found", NULL);
	}
	/* /api/resolve-cache/{models,datasets}/REPO/COMMIT/PATH and /[datasets/|spaces/]REPO/resolve/REV/PATH */
	bool cached = strncmp(url, "/api/resolve-cache/", 19) == 0;
	for (int t = 0; t < 3; t++) {
		char pre[48];
		if (cached)
			snprintf(pre, sizeof pre, "/api/resolve-cache/%ss/", types[t]);
		else
			snprintf(pre, sizeof pre, "/%s", t == 0 ? "" : t == 1 ? "datasets/" : "spaces/");
		if (strncmp(url, pre, strlen(pre)) != 0)
			continue;
		const char *after = NULL;
		struct mrepo *r = match_repo(c, url + strlen(pre), &after, types[t]);
		if (!r)
			continue;
		if (!cached && strncmp(after, "resolve/", 8) != 0)
			continue;
		if (r->rename_to && !cached) {
			char loc[4096];
			snprintf(loc, sizeof loc, "%s%s%s%s%s/%s", r->absolute ? G.hub_scheme : "", r->absolute ? host_header(q) : "",
				 c->prefix && url != q->url ? c->prefix : "", pre, r->rename_to, after);
			struct MHD_Response *resp = text_resp("");
			MHD_add_response_header(resp, "Location", loc);
			return send_resp(q, 307, resp);
		}
		if (deny(q, r, true, &ret))
			return ret;
		if (q->fault && q->fault->status)
			return send_injected_status(q, q->fault);
		const char *path;
		struct mcommit *cm = split_rev(c, r->id, cached ? after : after + 8, &path);
		if (!cm)
			return send_error(q, 404, "RevisionNotFound", "Invalid rev id", NULL);
		return resolve(q, r, cm, path, cached);
	}
	return send_error(q, q->token ? 404 : 401, "RepoNotFound", "Repository not found", NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static int marker;
	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	struct req q = { .conn = conn, .cdn = cls != NULL, .method = method, .url = url };
	q.head = strcmp(method, "HEAD") == 0;
	q.range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
	q.auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	pthread_mutex_lock(&G.mu);
	q.cfg = config();
	if (!q.cfg) {
		pthread_mutex_unlock(&G.mu);
		return MHD_NO;
	}
	q.fault = match_fault(&q);
	enum MHD_Result ret;
	struct fault *f = q.fault;
	if (f && f->delay_ms > 0) {
		pthread_mutex_unlock(&G.mu);
		for (long t = 0; t < f->delay_ms && !G.stop; t += 20)
			usleep(20000);
		pthread_mutex_lock(&G.mu);
	}
	bool early = f && f->status && q.cdn;
	if (early)
		ret = send_injected_status(&q, f);
	else
		ret = q.cdn ? handle_cdn(&q) : handle_hub(&q);
	pthread_mutex_unlock(&G.mu);
	return ret;
}

static struct MHD_Daemon *start(bool cdn, unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool tls = !cdn && G.tls_cert;
	/* without TLS, the list ends before the certificate options */
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
							(tls ? MHD_USE_TLS : 0),
						0, NULL, NULL, handler, cdn ? (void *)1 : NULL, MHD_OPTION_SOCK_ADDR, &sa,
						MHD_OPTION_CONNECTION_TIMEOUT, 60u,
						tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, G.tls_cert,
						MHD_OPTION_HTTPS_MEM_KEY, G.tls_key, MHD_OPTION_END);
	if (!d)
		return NULL;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	return d;
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--config") == 0)
			G.config_path = argv[i + 1];
		else if (strcmp(argv[i], "--log") == 0)
			G.log_path = argv[i + 1];
		else if (strcmp(argv[i], "--tls-cert") == 0)
			cert = argv[i + 1];
		else if (strcmp(argv[i], "--tls-key") == 0)
			key = argv[i + 1];
	}
	if (!G.config_path || !cert != !key) {
		fprintf(stderr, "usage: mockhub --config FILE [--log FILE] [--tls-cert PEM --tls-key PEM]\n");
		return 2;
	}
	size_t len;
	if (cert && (bn_read_file(cert, 1 << 20, &G.tls_cert, &len, NULL) ||
		     bn_read_file(key, 1 << 20, &G.tls_key, &len, NULL))) {
		fprintf(stderr, "mockhub: cannot read %s or %s\n", cert, key);
		return 1;
	}
	if (cert)
		G.hub_scheme = "https://";
	signal(SIGPIPE, SIG_IGN);
	if (G.log_path && !(G.log = fopen(G.log_path, "a"))) {
		perror(G.log_path);
		return 1;
	}
	pthread_mutex_lock(&G.mu);
	if (!config()) {
		pthread_mutex_unlock(&G.mu);
		fprintf(stderr, "mockhub: cannot read %s\n", G.config_path);
		return 1;
	}
	pthread_mutex_unlock(&G.mu);
	struct MHD_Daemon *cdn = start(true, &G.cdn_port);
	struct MHD_Daemon *hub = start(false, &G.hub_port);
	if (!hub || !cdn || !G.hub_port || !G.cdn_port) {
		fprintf(stderr, "mockhub: cannot listen on 127.0.0.1\n");
		return 1;
	}
	printf("hub=%u cdn=%u\n", G.hub_port, G.cdn_port);
	fflush(stdout);
	char buf[256];
	while (read(STDIN_FILENO, buf, sizeof buf) > 0)
		;
	G.stop = true;
	MHD_stop_daemon(hub);
	MHD_stop_daemon(cdn);
	return 0;
}

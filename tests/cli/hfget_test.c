/* CLI tests of hfget against the mock hub (tests/mockhub/mockhub.c) on 127.0.0.1: listing,
 * resolve, CDN redirects, metadata, resume, verification, retries, timeouts, errors, security,
 * offline mode, patterns, progress, the manifest and `make download`.  Each test builds small
 * repos in its own scratch directory, starts its own mock and reads the mock's request log to
 * check what hfget sent. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_hash.h"
#include "test_util.h"

/* A plain C condition as a Criterion assertion (pointers and negations included). */
static inline int truth(bool x)
{
	return x;
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define TOKEN "hf_goodtoken123"

struct hub {
	pid_t pid;
	int in; /* the mock's stdin: closing it stops the mock */
	unsigned port, cdn;
	char *dir, *cfg, *log, *out;
	char endpoint[128];
};

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void mkparent(const char *path)
{
	char *d = strdup(path);
	char *slash = strrchr(d, '/');
	if (slash) {
		*slash = '\0';
		bn_mkdir_p(d, NULL);
	}
	free(d);
}

/* size deterministic pseudo-random bytes (xorshift from seed) at path. */
static void mkfile(const char *path, size_t size, unsigned seed)
{
	mkparent(path);
	unsigned char *b = malloc(size + 1);
	uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	cr_assert(eq(int, tu_write_file(path, b, size), 0));
	free(b);
}

static void mktext(const char *path, const char *text)
{
	mkparent(path);
	cr_assert(eq(int, tu_write_file(path, text, strlen(text)), 0));
}

/* The standard repo: two regular files and two LFS files (lfs_min is 1024). */
static void std_repo(const char *dir)
{
	char *p;
	mktext(p = pathf("%s/config.json", dir), "{\"model_type\": \"bitnet\", \"hidden_size\": 64}\n");
	free(p);
	mktext(p = pathf("%s/README.md", dir), "# tiny\nA synthetic repo.\n");
	free(p);
	mkfile(p = pathf("%s/model.bin", dir), 300000, 1);
	free(p);
	mkfile(p = pathf("%s/sub/tok.model", dir), 5000, 2);
	free(p);
}

/* Replaces every "$D" in text with dir. */
static char *expand(const char *text, const char *dir)
{
	size_t n = 0;
	for (const char *s = text; (s = strstr(s, "$D")); s += 2)
		n++;
	char *out = malloc(strlen(text) + n * strlen(dir) + 1), *o = out;
	for (const char *s = text; *s;) {
		if (s[0] == '$' && s[1] == 'D') {
			o = stpcpy(o, dir);
			s += 2;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return out;
}

static void hub_config(struct hub *h, const char *text)
{
	char *t = expand(text, h->dir), *tmp = pathf("%s.tmp", h->cfg);
	cr_assert(eq(int, tu_write_file(tmp, t, strlen(t)), 0));
	cr_assert(eq(int, rename(tmp, h->cfg), 0));
	free(t);
	free(tmp);
}

#define STD_CONFIG                                                                                  \
	"token " TOKEN "\ntoken hf_othertoken\n"                                                     \
	"repo acme/tiny\ncommit acme/tiny " SHA_A " $D/repo\nref acme/tiny main " SHA_A "\n"

/* Starts a mock hub in a fresh scratch directory, with the standard repo in $D/repo; with a
 * certificate and key (PEM files), the hub listener speaks HTTPS. */
static void hub_start_tls(struct hub *h, const char *name, const char *config, const char *cert, const char *key)
{
	memset(h, 0, sizeof *h);
	h->dir = tu_mkdtemp(name);
	cr_assert(truth(h->dir));
	char *repo = pathf("%s/repo", h->dir);
	std_repo(repo);
	free(repo);
	h->cfg = pathf("%s/hub.conf", h->dir);
	h->log = pathf("%s/requests.log", h->dir);
	h->out = pathf("%s/out", h->dir);
	hub_config(h, config);
	int in[2], out[2];
	cr_assert(eq(int, pipe2(in, O_CLOEXEC), 0));
	cr_assert(eq(int, pipe2(out, O_CLOEXEC), 0));
	/* the mock lives next to the test binary's scratch area: $BITMAKE_BIN/../tests/mockhub */
	char *mock = tu_bin("../tests/mockhub");
	h->pid = fork();
	if (h->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (cert)
			execl(mock, mock, "--config", h->cfg, "--log", h->log, "--tls-cert", cert, "--tls-key", key,
			      (char *)NULL);
		else
			execl(mock, mock, "--config", h->cfg, "--log", h->log, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	h->in = in[1];
	char line[128] = "";
	FILE *f = fdopen(out[0], "r");
	cr_assert(truth(f && fgets(line, sizeof line, f)), "mockhub did not start (%s)", mock);
	fclose(f);
	free(mock);
	cr_assert(eq(int, sscanf(line, "hub=%u cdn=%u", &h->port, &h->cdn), 2), "mockhub said '%s'", line);
	snprintf(h->endpoint, sizeof h->endpoint, "%s://127.0.0.1:%u", cert ? "https" : "http", h->port);
}

static void hub_start(struct hub *h, const char *name, const char *config)
{
	hub_start_tls(h, name, config, NULL, NULL);
}

static void hub_stop(struct hub *h)
{
	close(h->in);
	int st;
	waitpid(h->pid, &st, 0);
}

/* Runs hfget with the test environment, then extra "K=V" entries (NULL-terminated or NULL), then
 * the arguments (NULL-terminated). */
static struct tu_run hfget_env(struct hub *h, const char *const *env, ...)
{
	const char *argv[64];
	int n = 0;
	char *bin = tu_bin("hfget");
	argv[n++] = bin;
	va_list ap;
	va_start(ap, env);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 62)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	char *ep = pathf("HF_ENDPOINT=%s", h->endpoint), *home = pathf("HF_HOME=%s/hfhome", h->dir);
	const char *e[64] = { ep, home, "HF_TOKEN=", "HUGGING_FACE_HUB_TOKEN=", "HF_TOKEN_PATH=",
			      "HF_HUB_OFFLINE=", "TRANSFORMERS_OFFLINE=", "HF_HUB_DISABLE_IMPLICIT_TOKEN=",
			      "HF_DEBUG=", "HFGET_TEST_TIME_SCALE=0.01", "HF_HUB_ETAG_TIMEOUT=3",
			      "HF_HUB_DOWNLOAD_TIMEOUT=3", "NO_PROXY=127.0.0.1,localhost",
			      "no_proxy=127.0.0.1,localhost", "http_proxy=", "HTTPS_PROXY=", "ALL_PROXY=",
			      "CURL_CA_BUNDLE=", "REQUESTS_CA_BUNDLE=", "SSL_CERT_FILE=", "SSL_CERT_DIR=" };
	int ne = 21;
	for (const char *const *x = env; x && *x && ne < 63; x++)
		e[ne++] = *x;
	e[ne] = NULL;
	struct tu_run r = tu_run(argv, e, NULL);
	free(bin);
	free(ep);
	free(home);
	return r;
}
#define hfget(h, ...) hfget_env((h), NULL, __VA_ARGS__, (const char *)NULL)
#define hfget_e(h, env, ...) hfget_env((h), (env), __VA_ARGS__, (const char *)NULL)

/* Log lines containing every one of the substrings. */
static int nlog_v(struct hub *h, const char *const *subs)
{
	char *text = tu_read_file(h->log, NULL);
	int count = 0;
	for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
		bool all = true;
		for (const char *const *s = subs; *s && all; s++)
			all = strstr(line, *s) != NULL;
		count += all;
	}
	free(text);
	return count;
}
#define nlog(h, ...) nlog_v((h), (const char *const[]){ __VA_ARGS__, NULL })

static void log_clear(struct hub *h)
{
	truncate(h->log, 0);
}

static bool same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
	bool same = x && y && la == lb && memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return same;
}

static bool exists(const char *fmt, const char *dir, const char *rel)
{
	char *p = pathf(fmt, dir, rel);
	bool e = access(p, F_OK) == 0;
	free(p);
	return e;
}
#define OUT_HAS(h, rel) exists("%s/%s", (h)->out, (rel))

static bool repo_same(struct hub *h, const char *rel)
{
	char *a = pathf("%s/repo/%s", h->dir, rel), *b = pathf("%s/%s", h->out, rel);
	bool s = same_file(a, b);
	free(a);
	free(b);
	return s;
}

static char *read_out(struct hub *h, const char *rel)
{
	char *p = pathf("%s/%s", h->out, rel);
	char *t = tu_read_file(p, NULL);
	free(p);
	return t;
}

static void git_sha1_hex(const char *path, char out[41])
{
	size_t n;
	char *d = tu_read_file(path, &n);
	char head[64];
	int hl = snprintf(head, sizeof head, "blob %zu", n);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char md[20];
	unsigned len;
	EVP_DigestInit_ex(c, EVP_sha1(), NULL);
	EVP_DigestUpdate(c, head, (size_t)hl + 1);
	EVP_DigestUpdate(c, d, n);
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	for (int i = 0; i < 20; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	free(d);
}

static long long mtime_ns(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

/* The official 0.28+ temp name of a file: <dir>/<b64(sha1(base.metadata))>.<etag>.incomplete */
static char *incomplete_path(struct hub *h, const char *rel, const char *etag)
{
	const char *slash = strrchr(rel, '/');
	char *base = pathf("%s.metadata", slash ? slash + 1 : rel);
	unsigned char md[20];
	unsigned len;
	EVP_Digest(base, strlen(base), md, &len, EVP_sha1(), NULL);
	free(base);
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char enc[32];
	int o = 0;
	for (int i = 0; i < 20; i += 3) {
		unsigned v = (unsigned)md[i] << 16 | (i + 1 < 20 ? (unsigned)md[i + 1] << 8 : 0) | (i + 2 < 20 ? md[i + 2] : 0);
		enc[o++] = b64[v >> 18 & 63];
		enc[o++] = b64[v >> 12 & 63];
		enc[o++] = i + 1 < 20 ? b64[v >> 6 & 63] : '=';
		enc[o++] = i + 2 < 20 ? b64[v & 63] : '=';
	}
	enc[o] = '\0';
	return pathf("%s/.cache/huggingface/download/%.*s%s%s.%s.incomplete", h->out, slash ? (int)(slash - rel) : 0,
		     rel, slash ? "/" : "", enc, etag);
}

static void sha256_of(struct hub *h, const char *rel, char hex[65])
{
	char *p = pathf("%s/repo/%s", h->dir, rel);
	cr_assert(eq(int, bn_sha256_file(p, hex, NULL), 0));
	free(p);
}

/* ============================================================================================ */
/* Listing, resolve, download, verification, metadata                                              */
/* ============================================================================================ */

Test(hfget, downloads_a_repo_into_the_official_local_dir_layout)
{
	struct hub h;
	hub_start(&h, "hfget-layout", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	char *abs = realpath(h.out, NULL);
	char *want = pathf("%s\n", abs);
	cr_assert(eq(str, r.out, want), "stdout is the absolute directory");
	free(abs);
	free(want);
	const char *files[] = { "config.json", "README.md", "model.bin", "sub/tok.model" };
	for (int i = 0; i < 4; i++)
		cr_assert(truth(repo_same(&h, files[i])), "%s differs", files[i]);
	char *gi = read_out(&h, ".cache/huggingface/.gitignore");
	cr_assert(eq(str, gi, "*"));
	free(gi);
	cr_assert(truth(OUT_HAS(&h, ".cache/huggingface/CACHEDIR.TAG")));
	/* metadata: commit, etag (git blob id or sha256), a float timestamp not older than the file */
	char *meta = read_out(&h, ".cache/huggingface/download/config.json.metadata");
	char gsha[41], *p = pathf("%s/repo/config.json", h.dir);
	git_sha1_hex(p, gsha);
	free(p);
	char commit[64], etag[80];
	double ts;
	cr_assert(eq(int, sscanf(meta, "%63s\n%79s\n%lf\n", commit, etag, &ts), 3), "metadata: %s", meta);
	cr_assert(eq(str, commit, SHA_A));
	cr_assert(eq(str, etag, gsha));
	p = pathf("%s/config.json", h.out);
	cr_assert(truth(mtime_ns(p) / 1e9 - 1 <= ts), "the official validity rule: mtime - 1 <= timestamp");
	free(p);
	free(meta);
	meta = read_out(&h, ".cache/huggingface/download/sub/tok.model.metadata");
	char sha[65];
	sha256_of(&h, "sub/tok.model", sha);
	char *want_meta = pathf("%s\n%s\n", SHA_A, sha);
	cr_assert(truth(strncmp(meta, want_meta, strlen(want_meta)) == 0), "LFS etag is the sha256: %s", meta);
	free(want_meta);
	free(meta);
	/* no temp files left */
	struct tu_run f = tu_sh(pathf("find '%s' -name '*.incomplete' -o -name '*.parts*' -o -name '*.tmp'", h.out));
	cr_assert(eq(str, f.out, ""));
	tu_run_free(&f);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, pins_every_resolve_to_the_listed_commit_and_asks_identity_encoding)
{
	struct hub h;
	hub_start(&h, "hfget-pin", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub HEAD", "/resolve/"), 4), "one HEAD per file on a first run");
	cr_assert(eq(int, nlog(&h, "hub HEAD", "/resolve/" SHA_A "/"), 4), "resolve URLs carry the commit");
	cr_assert(eq(int, nlog(&h, "/resolve/main/"), 0));
	cr_assert(eq(int, nlog(&h, "ae=identity"), nlog(&h, " ")), "every request sends Accept-Encoding: identity");
	cr_assert(eq(int, nlog(&h, "hub GET /api/models/acme/tiny/revision/main", "blobs=true"), 1));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, redirects_lfs_files_to_the_cdn_without_the_token)
{
	struct hub h;
	hub_start(&h, "hfget-cdn", STD_CONFIG);
	const char *env[] = { "HF_TOKEN=" TOKEN, NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET /lfs/"), 2), "both LFS files come from the CDN listener");
	cr_assert(eq(int, nlog(&h, "cdn ", "auth=1"), 0), "no Authorization header at the CDN (another port)");
	cr_assert(eq(int, nlog(&h, "hub ", "auth=0"), 0), "the token goes with every hub request");
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, lists_the_paginated_tree_when_siblings_are_empty)
{
	struct hub h;
	hub_start(&h, "hfget-tree",
		  "repo acme/tiny siblings=none page=2\ncommit acme/tiny " SHA_A " $D/repo\nref acme/tiny main " SHA_A "\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	/* 4 files + 1 directory = 5 entries, 2 per page: 3 pages, following Link: rel="next" */
	cr_assert(eq(int, nlog(&h, "hub GET /api/models/acme/tiny/tree/" SHA_A), 3));
	cr_assert(eq(int, nlog(&h, "/tree/", "cursor=4"), 1));
	cr_assert(truth(repo_same(&h, "sub/tok.model") && repo_same(&h, "config.json")));
	char *tc = pathf("%s/.cache/huggingface/trees/%s.json", h.out, SHA_A);
	char *t = tu_read_file(tc, NULL);
	cr_assert(truth(t && strstr(t, "\"format_version\": 1") && strstr(t, "\"lfs_sha256\"")), "official tree cache: %s", t);
	free(t);
	free(tc);
	/* the tree cache makes the next run a single API call again */
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0));
	cr_assert(eq(int, nlog(&h, "hub "), 1));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, uses_the_siblings_without_a_tree_call_when_they_carry_blobs)
{
	struct hub h;
	hub_start(&h, "hfget-siblings", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/tree/"), 0));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, falls_back_to_the_tree_when_siblings_lack_sizes)
{
	struct hub h;
	hub_start(&h, "hfget-noblobs",
		  "repo acme/tiny siblings=noblobs\ncommit acme/tiny " SHA_A " $D/repo\nref acme/tiny main " SHA_A "\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/tree/"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, an_up_to_date_rerun_costs_one_api_call_and_touches_nothing)
{
	struct hub h;
	hub_start(&h, "hfget-rerun", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	char *mb = pathf("%s/model.bin", h.out), *meta = pathf("%s/.cache/huggingface/download/model.bin.metadata", h.out);
	long long t1 = mtime_ns(mb), m1 = mtime_ns(meta);
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, " "), 1), "exactly one request");
	cr_assert(eq(int, nlog(&h, "hub GET /api/models/acme/tiny/revision/main"), 1));
	cr_assert(eq(i64, mtime_ns(mb), t1));
	cr_assert(eq(i64, mtime_ns(meta), m1));
	cr_assert(truth(strstr(r.err, "up to date")));
	/* --force-download fetches everything again */
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--force-download");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub HEAD"), 4));
	cr_assert(eq(int, nlog(&h, "cdn GET"), 2));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(mb);
	free(meta);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, a_moved_branch_with_the_same_content_only_updates_the_metadata)
{
	struct hub h;
	hub_start(&h, "hfget-moved", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	hub_config(&h, "repo acme/tiny\ncommit acme/tiny " SHA_A " $D/repo\ncommit acme/tiny " SHA_B
		       " $D/repo\nref acme/tiny main " SHA_B "\n");
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, " "), 1), "no HEAD, no GET");
	char *meta = read_out(&h, ".cache/huggingface/download/model.bin.metadata");
	cr_assert(truth(strncmp(meta, SHA_B "\n", 41) == 0), "metadata now names the new commit: %s", meta);
	free(meta);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, downloads_only_the_file_that_changed_in_a_new_commit)
{
	struct hub h;
	hub_start(&h, "hfget-changed", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	struct tu_run c = tu_sh(pathf("cp -r '%s/repo' '%s/repo2'", h.dir, h.dir));
	tu_run_free(&c);
	char *p = pathf("%s/repo2/model.bin", h.dir);
	mkfile(p, 300000, 99);
	hub_config(&h, "repo acme/tiny\ncommit acme/tiny " SHA_A " $D/repo\ncommit acme/tiny " SHA_B
		       " $D/repo2\nref acme/tiny main " SHA_B "\n");
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub HEAD"), 1));
	cr_assert(eq(int, nlog(&h, "cdn GET"), 1));
	char *o = pathf("%s/model.bin", h.out);
	cr_assert(truth(same_file(p, o)));
	free(o);
	free(p);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, adopts_a_correct_file_without_metadata_and_replaces_a_modified_one)
{
	struct hub h;
	hub_start(&h, "hfget-adopt", STD_CONFIG);
	/* model.bin already there (e.g. copied by hand): hashed, adopted, not downloaded */
	struct tu_run c = tu_sh(pathf("mkdir -p '%s' && cp '%s/repo/model.bin' '%s/'", h.out, h.dir, h.out));
	tu_run_free(&c);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/resolve/", "model.bin"), 0));
	cr_assert(truth(OUT_HAS(&h, ".cache/huggingface/download/model.bin.metadata")));
	/* a local edit makes the metadata stale (mtime newer): the file comes back */
	sleep(1);
	char *o = pathf("%s/model.bin", h.out);
	mkfile(o, 300000, 7);
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(o);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, accepts_metadata_written_by_the_official_client)
{
	struct hub h;
	hub_start(&h, "hfget-interop", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	/* rewrite one metadata file as Python would (shortest float repr), for an older commit */
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *meta = pathf("%s/.cache/huggingface/download/model.bin.metadata", h.out);
	char *text = pathf("%s\n%s\n%ld.5\n", SHA_B, sha, (long)time(NULL) + 5);
	tu_write_file(meta, text, strlen(text));
	log_clear(&h);
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, " "), 1));
	char *m = tu_read_file(meta, NULL);
	cr_assert(truth(strncmp(m, SHA_A "\n", 41) == 0), "commit updated in place: %s", m);
	free(m);
	free(text);
	free(meta);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, writes_the_checkpoint_manifest_with_every_file_hash)
{
	struct hub h;
	hub_start(&h, "hfget-manifest", STD_CONFIG);
	char *man = pathf("%s/checkpoint.manifest", h.out);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--manifest", man);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	char g1[41], g2[41], s1[65], s2[65], *p;
	git_sha1_hex(p = pathf("%s/repo/README.md", h.dir), g1);
	free(p);
	git_sha1_hex(p = pathf("%s/repo/config.json", h.dir), g2);
	free(p);
	sha256_of(&h, "model.bin", s1);
	sha256_of(&h, "sub/tok.model", s2);
	char *want = pathf("# bitmake checkpoint manifest 1\nrepo acme/tiny\nrevision main\ncommit %s\n"
			   "file gitsha1:%s 25 README.md\nfile gitsha1:%s 44 config.json\n"
			   "file sha256:%s 300000 model.bin\nfile sha256:%s 5000 sub/tok.model\n",
			   SHA_A, g1, g2, s1, s2);
	char *got = tu_read_file(man, NULL);
	cr_assert(eq(str, got, want));
	free(got);
	free(want);
	free(man);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, follows_relative_redirects_to_the_resolve_cache_and_of_a_renamed_repo)
{
	struct hub h;
	hub_start(&h, "hfget-relative",
		  "repo acme/new relative=1\nrepo acme/old rename_to=acme/new\n"
		  "commit acme/new " SHA_A " $D/repo\nref acme/new main " SHA_A "\n");
	struct tu_run r = hfget(&h, "acme/old", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub GET /api/models/acme/old", "status=307"), 1));
	cr_assert(ge(int, nlog(&h, "hub HEAD /api/resolve-cache/models/acme/new/"), 2));
	cr_assert(truth(repo_same(&h, "config.json") && repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, keeps_the_token_across_an_absolute_redirect_to_the_same_host)
{
	struct hub h;
	hub_start(&h, "hfget-absolute",
		  "token " TOKEN "\nrepo acme/new private\nrepo acme/old private rename_to=acme/new absolute=1\n"
		  "commit acme/new " SHA_A " $D/repo\nref acme/new main " SHA_A "\n");
	const char *env[] = { "HF_TOKEN=" TOKEN, NULL };
	struct tu_run r = hfget_e(&h, env, "acme/old", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub GET /api/models/acme/new/revision/main", "auth=1", "status=200"), 1));
	cr_assert(eq(int, nlog(&h, "cdn ", "auth=1"), 0));
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

/* ============================================================================================ */
/* Verification                                                                                     */
/* ============================================================================================ */

Test(hfget, removes_a_corrupted_download_and_fetches_it_again)
{
	struct hub h;
	hub_start(&h, "hfget-corrupt-once", STD_CONFIG "fault host=cdn method=GET path=/lfs/ corrupt=1 times=1\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--jobs", "1");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "SHA-256 mismatch")), "stderr: %s", r.err);
	cr_assert(truth(repo_same(&h, "model.bin") && repo_same(&h, "sub/tok.model")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, fails_loudly_when_the_content_hash_never_matches)
{
	struct hub h;
	hub_start(&h, "hfget-corrupt", STD_CONFIG "fault host=cdn method=GET path=/lfs/ corrupt=1 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: model.bin: SHA-256 mismatch after two downloads (expected ")), "stderr: %s", r.err);
	cr_assert(truth(!OUT_HAS(&h, "model.bin")), "no final file");
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	cr_assert(truth(access(inc, F_OK) != 0), "the corrupt temp file is removed");
	free(inc);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, verifies_small_files_by_their_git_blob_id)
{
	struct hub h;
	hub_start(&h, "hfget-gitsha", STD_CONFIG "fault host=hub method=GET path=config.json corrupt=1 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "config.json", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "config.json: git blob SHA-1 mismatch")), "stderr: %s", r.err);
	cr_assert(truth(!OUT_HAS(&h, "config.json")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, fails_on_a_body_shorter_than_the_listed_size)
{
	struct hub h;
	hub_start(&h, "hfget-short", STD_CONFIG "fault host=cdn path=/lfs/ short=1000 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "consistency check failed")), "stderr: %s", r.err);
	cr_assert(truth(!OUT_HAS(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

/* ============================================================================================ */
/* Resume, ranges, parallelism                                                                      */
/* ============================================================================================ */

Test(hfget, resumes_a_dropped_connection_with_a_range_request)
{
	struct hub h;
	hub_start(&h, "hfget-drop", STD_CONFIG "fault host=cdn method=GET path=/lfs/ drop=120000 times=1\n");
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=-"), 1));
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=120000-", "status=206"), 1), "resumed at the cut");
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, resumes_an_incomplete_file_left_by_the_official_client)
{
	struct hub h;
	hub_start(&h, "hfget-resume", STD_CONFIG);
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	char *src = pathf("%s/repo/model.bin", h.dir);
	size_t n;
	char *data = tu_read_file(src, &n);
	mkparent(inc);
	tu_write_file(inc, data, 100000);
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET"), 1));
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=100000-"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	cr_assert(truth(access(inc, F_OK) != 0));
	free(data);
	free(src);
	free(inc);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, truncates_and_restarts_when_a_range_request_gets_200)
{
	struct hub h;
	hub_start(&h, "hfget-ignore-range", STD_CONFIG "fault host=cdn method=GET path=/lfs/ ignore_range=1 times=0\n");
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	mkfile(inc, 100000, 55); /* wrong bytes: appending would corrupt the file */
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=100000-", "status=200"), 1));
	cr_assert(eq(int, nlog(&h, "cdn GET"), 1), "the 200 body is the whole file: no second request");
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(inc);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, restarts_from_zero_on_a_wrong_content_range)
{
	struct hub h;
	hub_start(&h, "hfget-bad-range", STD_CONFIG "fault host=cdn method=GET path=/lfs/ bad_range=1 times=1\n");
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	mkfile(inc, 100000, 55);
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "wrong Content-Range; restarting from byte 0")), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=-"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(inc);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, a_complete_incomplete_file_needs_no_transfer)
{
	struct hub h;
	hub_start(&h, "hfget-complete-inc", STD_CONFIG);
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	struct tu_run c = tu_sh(pathf("mkdir -p \"$(dirname '%s')\" && cp '%s/repo/model.bin' '%s'", inc, h.dir, inc));
	tu_run_free(&c);
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn "), 0));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(inc);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, downloads_a_large_file_in_parallel_ranges)
{
	struct hub h;
	hub_start(&h, "hfget-ranges", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out, "--chunk-size", "64K", "--jobs", "4");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	/* 300000 bytes in 64 KiB chunks: 5 ranged requests, the last one clamped to the end */
	cr_assert(eq(int, nlog(&h, "cdn GET", "status=206"), 5));
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=0-65535"), 1));
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=262144-299999"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	struct tu_run f = tu_sh(pathf("find '%s' -name '*.parts*'", h.out));
	cr_assert(eq(str, f.out, ""));
	tu_run_free(&f);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, resumes_a_parallel_download_left_by_a_killed_run)
{
	struct hub h;
	hub_start(&h, "hfget-parts", STD_CONFIG);
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	char *parts = strdup(inc);
	strcpy(strstr(parts, ".incomplete"), ".parts");
	char *state = pathf("%s.state", parts);
	/* a killed ranged run: the first 131072 bytes are good, later chunks half written */
	char *src = pathf("%s/repo/model.bin", h.dir);
	size_t n;
	char *data = tu_read_file(src, &n);
	memset(data + 131072, 0xee, n - 131072);
	mkparent(parts);
	tu_write_file(parts, data, n);
	tu_write_file(state, "prefix 131072\n", 14);
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out, "--chunk-size", "64K");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=131072-"), 1), "resumes at the recorded prefix");
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=0-"), 0));
	cr_assert(truth(repo_same(&h, "model.bin")));
	cr_assert(truth(access(state, F_OK) != 0 && access(parts, F_OK) != 0));
	free(data);
	free(src);
	free(state);
	free(parts);
	free(inc);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, downloads_files_in_parallel)
{
	struct hub h;
	/* the first file stalls for a second; the others finish meanwhile */
	hub_start(&h, "hfget-parallel", STD_CONFIG "fault host=hub method=GET path=README.md stall=3:1000 times=1\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--jobs", "4");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	const char *readme = strstr(r.err, "hfget: README.md:"), *tok = strstr(r.err, "hfget: sub/tok.model:");
	cr_assert(truth(readme && tok && tok < readme), "README.md (first, stalled) finishes last: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, refuses_a_compressed_body)
{
	struct hub h;
	hub_start(&h, "hfget-gzip", STD_CONFIG "fault host=cdn method=GET gzip=1 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "the server compressed the body (Content-Encoding) although identity was asked") != NULL),
		  "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "ae=identity"), 1));
	tu_run_free(&r);
	hub_stop(&h);
}

/* Starts hfget in the background with the test environment, stderr to errfile. */
static pid_t hfget_spawn(struct hub *h, const char *errfile, const char *const *args)
{
	char *bin = tu_bin("hfget");
	pid_t pid = fork();
	if (pid == 0) {
		const char *argv[32] = { bin };
		int n = 1;
		for (const char *const *a = args; *a && n < 30; a++)
			argv[n++] = *a;
		argv[n] = NULL;
		char *home = pathf("%s/hfhome", h->dir);
		setenv("HF_ENDPOINT", h->endpoint, 1);
		setenv("HF_HOME", home, 1);
		setenv("HF_TOKEN", "", 1);
		setenv("NO_PROXY", "127.0.0.1", 1);
		setenv("no_proxy", "127.0.0.1", 1);
		setenv("HF_HUB_DOWNLOAD_TIMEOUT", "30", 1);
		int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		int dn = open("/dev/null", O_WRONLY);
		dup2(dn, 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	free(bin);
	return pid;
}

Test(hfget, an_interrupted_parallel_download_leaves_a_resumable_incomplete_file)
{
	struct hub h;
	/* two chunks arrive, the others stall after 10000 bytes: then Ctrl+C */
	hub_start(&h, "hfget-sigint", STD_CONFIG "fault host=cdn method=GET skip=2 stall=10000:8000 times=0\n");
	char *errf = pathf("%s/err.txt", h.dir);
	const char *args[] = { "acme/tiny", "model.bin", "--local-dir", h.out, "--chunk-size", "64K", "--jobs", "4", NULL };
	pid_t pid = hfget_spawn(&h, errf, args);
	for (int i = 0; i < 100 && nlog(&h, "cdn GET") < 5; i++)
		usleep(50000);
	cr_assert(eq(int, nlog(&h, "cdn GET"), 5), "all five chunks requested");
	usleep(400000);
	kill(pid, SIGINT);
	int st;
	waitpid(pid, &st, 0);
	char *err = tu_read_file(errf, NULL);
	cr_assert(truth(WIFEXITED(st) && WEXITSTATUS(st) == 130), "status %d: %s", st, err);
	cr_assert(truth(strstr(err, "hfget: interrupted; run again to resume") != NULL), "%s", err);
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	struct stat sb;
	cr_assert(eq(int, stat(inc, &sb), 0), "the ranged temp file is back under the .incomplete name");
	long long have = (long long)sb.st_size;
	cr_assert(truth(have >= 65536 + 10000 && have < 300000), "kept the contiguous prefix: %lld", have);
	struct tu_run f = tu_sh(pathf("find '%s' -name '*.parts*'", h.out));
	cr_assert(eq(str, f.out, ""));
	tu_run_free(&f);
	cr_assert(truth(!OUT_HAS(&h, "model.bin")));
	/* the next run resumes from there */
	hub_config(&h, STD_CONFIG);
	log_clear(&h);
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	char *range = pathf("range=bytes=%lld-", have);
	cr_assert(eq(int, nlog(&h, "cdn GET", range), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(range);
	free(inc);
	free(err);
	free(errf);
	tu_run_free(&r);
	hub_stop(&h);
}

/* ============================================================================================ */
/* Retries and timeouts                                                                             */
/* ============================================================================================ */

Test(hfget, retries_server_errors_with_backoff)
{
	struct hub h;
	hub_start(&h, "hfget-500", STD_CONFIG "fault host=hub method=HEAD path=config.json status=500 times=2\n"
					      "fault host=cdn method=GET status=503 times=1\n"
					      "fault host=hub method=GET path=/api/ status=408 times=1\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub HEAD", "config.json"), 3));
	cr_assert(eq(int, nlog(&h, "cdn GET", "status=503"), 1));
	cr_assert(eq(int, nlog(&h, "hub GET /api/", "status=408"), 1));
	cr_assert(truth(repo_same(&h, "config.json") && repo_same(&h, "model.bin") && repo_same(&h, "sub/tok.model")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, honours_retry_after_on_429)
{
	struct hub h;
	hub_start(&h, "hfget-429", STD_CONFIG "fault host=hub path=/api/ status=429 retry_after=3 times=2\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "HTTP 429") && strstr(r.err, "retrying in 4 s")), "Retry-After + 1 s: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/api/models/", "status=429"), 2));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, says_so_when_still_rate_limited_after_the_retries)
{
	struct hub h;
	hub_start(&h, "hfget-429-forever", STD_CONFIG "fault host=hub path=/api/ status=429 ratelimit=1 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: acme/tiny: still rate-limited after 5 retries (HTTP 429")), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "set HF_TOKEN")));
	cr_assert(eq(int, nlog(&h, "status=429"), 6));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, fails_with_the_status_after_persistent_server_errors)
{
	struct hub h;
	hub_start(&h, "hfget-503", STD_CONFIG "fault host=hub path=/api/ status=503 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "the server answered HTTP 503: injected 503 after 5 retries; request id mock-")), "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, retries_a_failed_page_of_the_tree_listing)
{
	struct hub h;
	hub_start(&h, "hfget-page2",
		  "repo acme/tiny siblings=none page=2\ncommit acme/tiny " SHA_A " $D/repo\nref acme/tiny main " SHA_A "\n"
		  "fault host=hub path=/tree/ skip=1 status=500 times=1\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/tree/", "cursor=2"), 2));
	cr_assert(truth(repo_same(&h, "sub/tok.model")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, resumes_after_a_read_timeout_on_a_stalled_body)
{
	struct hub h;
	hub_start(&h, "hfget-stall", STD_CONFIG "fault host=cdn method=GET stall=50000:4000 times=1\n");
	const char *env[] = { "HF_HUB_DOWNLOAD_TIMEOUT=1", NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=50000-"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, retries_a_head_that_exceeds_the_etag_timeout)
{
	struct hub h;
	hub_start(&h, "hfget-etag-timeout", STD_CONFIG "fault host=hub method=HEAD path=model.bin delay=3000 times=1\n");
	const char *env[] = { "HF_HUB_ETAG_TIMEOUT=1", NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "model.bin: ") && strstr(r.err, "retrying")), "stderr: %s", r.err);
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, asks_the_hub_again_when_the_signed_url_expired)
{
	struct hub h;
	hub_start(&h, "hfget-expired", STD_CONFIG "fault host=cdn method=GET expire=1 times=1\n");
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub HEAD", "model.bin"), 2));
	cr_assert(eq(int, nlog(&h, "cdn GET", "status=403"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

/* ============================================================================================ */
/* Environment                                                                                      */
/* ============================================================================================ */

Test(hfget, honours_an_hf_endpoint_with_a_path_prefix_and_trailing_slash)
{
	struct hub h;
	hub_start(&h, "hfget-mirror", "prefix /mirror\n" STD_CONFIG);
	char *ep = pathf("HF_ENDPOINT=%s/mirror/", h.endpoint);
	const char *env[] = { ep, NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub GET /mirror/api/models/acme/tiny/revision/main"), 1));
	cr_assert(eq(int, nlog(&h, "hub HEAD /mirror/acme/tiny/resolve/"), 4));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(ep);
	tu_run_free(&r);
	hub_stop(&h);
}

#define PRIVATE_CONFIG                                                                                \
	"token " TOKEN "\ntoken hf_othertoken\n"                                                     \
	"repo acme/secret private allow=" TOKEN "\ncommit acme/secret " SHA_A " $D/repo\nref acme/secret main " SHA_A "\n"

Test(hfget, reads_the_token_from_the_token_file_in_hf_home)
{
	struct hub h;
	hub_start(&h, "hfget-tokenfile", PRIVATE_CONFIG);
	char *tf = pathf("%s/hfhome/token", h.dir);
	mktext(tf, TOKEN "\n");
	struct tu_run r = hfget(&h, "acme/secret", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub ", "auth=0"), 0));
	/* HF_TOKEN beats the file */
	mktext(tf, "hf_wrong\n");
	tu_run_free(&r);
	const char *env[] = { "HF_TOKEN=" TOKEN, NULL };
	r = hfget_e(&h, env, "acme/secret", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	free(tf);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, says_a_private_repo_is_not_found_or_private_without_a_token)
{
	struct hub h;
	hub_start(&h, "hfget-private", PRIVATE_CONFIG);
	struct tu_run r = hfget(&h, "acme/secret", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(eq(str, r.err, "hfget: acme/secret: repository not found (HTTP 401 RepoNotFound): it does not exist or "
				 "it is private; check the repo id, or set HF_TOKEN to a token that can read it\n"));
	tu_run_free(&r);
	/* with a valid token that cannot read it: 404 */
	const char *env[] = { "HF_TOKEN=hf_othertoken", NULL };
	r = hfget_e(&h, env, "acme/secret", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "repository not found (HTTP 404 RepoNotFound)") && strstr(r.err, "that your token can read it")),
		  "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

#define GATED_CONFIG                                                                                  \
	"token " TOKEN "\ntoken hf_othertoken\n"                                                     \
	"repo acme/gated gated=manual allow=" TOKEN "\ncommit acme/gated " SHA_A " $D/repo\nref acme/gated main " SHA_A "\n"

Test(hfget, explains_how_to_get_into_a_gated_repo)
{
	struct hub h;
	hub_start(&h, "hfget-gated", GATED_CONFIG);
	struct tu_run r = hfget(&h, "acme/gated", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	char *want = pathf("hfget: acme/gated: gated repository: downloads need an account that accepted its conditions; "
			   "accept them at %s/acme/gated and set HF_TOKEN (or save the token in $HF_HOME/token)\n", h.endpoint);
	cr_assert(eq(str, r.err, want));
	free(want);
	tu_run_free(&r);
	const char *env[] = { "HF_TOKEN=hf_othertoken", NULL };
	r = hfget_e(&h, env, "acme/gated", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "not in its authorized list yet (HTTP 403 GatedRepo); request access at")), "stderr: %s", r.err);
	tu_run_free(&r);
	const char *ok[] = { "HF_TOKEN=" TOKEN, NULL };
	r = hfget_e(&h, ok, "acme/gated", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn ", "auth=1"), 0));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, reports_a_rejected_token_without_printing_it)
{
	struct hub h;
	hub_start(&h, "hfget-badtoken", STD_CONFIG);
	const char *env[] = { "HF_TOKEN=hf_secretvalue42", NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out, "-v");
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: acme/tiny: the Hub rejected the token from HF_TOKEN (HTTP 401: Invalid credentials "
				"in Authorization header)")), "stderr: %s", r.err);
	cr_assert(truth(!strstr(r.err, "secretvalue") && !strstr(r.out, "secretvalue")), "the token never appears");
	tu_run_free(&r);
	/* nor in verbose output of a successful run */
	const char *ok[] = { "HF_TOKEN=" TOKEN, NULL };
	r = hfget_e(&h, ok, "acme/tiny", "--local-dir", h.out, "-v");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(!strstr(r.err, "goodtoken") && !strstr(r.out, "goodtoken")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, names_a_missing_revision_and_a_missing_file)
{
	struct hub h;
	hub_start(&h, "hfget-notfound", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--revision", "v9");
	cr_assert(eq(int, r.status, 1));
	cr_assert(eq(str, r.err, "hfget: acme/tiny: revision 'v9' not found (HTTP 404 RevisionNotFound); check --revision "
				 "(a branch, tag or commit of this repo)\n"));
	tu_run_free(&r);
	r = hfget(&h, "acme/tiny", "nope.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: acme/tiny: no file 'nope.bin' at revision 'main' (commit aaaaaaaaaaaa)")), "stderr: %s", r.err);
	tu_run_free(&r);
	/* listed but gone at resolve time: the Hub's 404 EntryNotFound */
	hub_config(&h, STD_CONFIG "fake acme/tiny " SHA_A " ghost.bin 10\n");
	char *fresh = pathf("%s/fresh", h.dir); /* h.out has the tree cache of the commit, without it */
	r = hfget(&h, "acme/tiny", "ghost.bin", "--local-dir", fresh);
	free(fresh);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: acme/tiny: ghost.bin: not found at revision 'main' (HTTP 404 EntryNotFound)")), "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, says_when_the_endpoint_is_not_a_hub)
{
	struct hub h;
	hub_start(&h, "hfget-nothub", STD_CONFIG "fault host=hub method=HEAD no_commit=1 times=0\n");
	struct tu_run r = hfget(&h, "acme/tiny", "config.json", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "does not look like a Hugging Face Hub (no X-Repo-Commit header")), "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, accepts_weak_etags_and_names_missing_metadata_headers)
{
	struct hub h;
	hub_start(&h, "hfget-etags", "repo acme/tiny weak_etag=1\ncommit acme/tiny " SHA_A " $D/repo\nref acme/tiny main " SHA_A "\n");
	struct tu_run r = hfget(&h, "acme/tiny", "config.json", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "W/\"...\" is the same etag: %s", r.err);
	tu_run_free(&r);
	hub_config(&h, STD_CONFIG "fault host=hub method=HEAD no_etag=1 times=0\n");
	r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "model.bin: the resolve answer from http://127.0.0.1:") != NULL &&
			strstr(r.err, " has no ETag; check HF_ENDPOINT") != NULL), "stderr: %s", r.err);
	tu_run_free(&r);
	hub_config(&h, STD_CONFIG "fault host=hub method=HEAD no_size=1 times=0\n");
	r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, " has no size (X-Linked-Size or Content-Length)") != NULL), "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, says_what_to_do_without_network)
{
	struct hub h;
	hub_start(&h, "hfget-nonet", STD_CONFIG);
	const char *env[] = { "HF_ENDPOINT=http://127.0.0.1:1", NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: acme/tiny: cannot reach http://127.0.0.1:1 (") &&
		  strstr(r.err, "; check the network, the proxy variables (https_proxy, no_proxy) and HF_ENDPOINT, or set "
				"HF_HUB_OFFLINE=1")), "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, goes_through_the_proxy_named_in_the_environment)
{
	struct hub h;
	hub_start(&h, "hfget-proxy", STD_CONFIG);
	/* a proxy that refuses connections: the download fails there, so the variable is honoured */
	const char *env[] = { "http_proxy=http://127.0.0.1:1", "NO_PROXY=", "no_proxy=", NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(eq(int, nlog(&h, " "), 0), "nothing reached the hub directly");
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, offline_mode_succeeds_on_a_complete_directory_and_lists_what_is_missing)
{
	struct hub h;
	hub_start(&h, "hfget-offline", STD_CONFIG);
	char *man = pathf("%s/m.manifest", h.dir);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	log_clear(&h);
	tu_run_free(&r);
	const char *env[] = { "HF_HUB_OFFLINE=1", NULL };
	r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out, "--manifest", man);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, " "), 0), "no request at all");
	char *m = tu_read_file(man, NULL);
	cr_assert(truth(m && strstr(m, "commit " SHA_A "\n") && strstr(m, " model.bin\n")));
	free(m);
	tu_run_free(&r);
	free(man);
	hub_stop(&h);
}

Test(hfget, offline_mode_lists_missing_files)
{
	struct hub h;
	hub_start(&h, "hfget-offline2", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	tu_run_free(&r);
	char *p = pathf("%s/model.bin", h.out);
	unlink(p);
	free(p);
	const char *env[] = { "HF_HUB_OFFLINE=1", NULL };
	r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: offline mode (HF_HUB_OFFLINE=1): 1 of 4 files of acme/tiny at commit aaaaaaaaaaaa are "
				"missing or incomplete in ") && strstr(r.err, ": model.bin; unset HF_HUB_OFFLINE to download them")),
		  "stderr: %s", r.err);
	tu_run_free(&r);
	/* never downloaded here: says so */
	char *other = pathf("%s/other", h.dir);
	r = hfget_e(&h, env, "acme/tiny", "--local-dir", other);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "offline mode (HF_HUB_OFFLINE=1): ") && strstr(r.err, "has no record of revision 'main'")),
		  "stderr: %s", r.err);
	free(other);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, uses_a_complete_local_copy_when_the_hub_is_unreachable)
{
	struct hub h;
	hub_start(&h, "hfget-fallback", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	tu_run_free(&r);
	const char *env[] = { "HF_ENDPOINT=http://127.0.0.1:1", NULL };
	r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "warning: acme/tiny: cannot reach") && strstr(r.err, "using the complete local copy")),
		  "stderr: %s", r.err);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, downloads_a_dataset_repo)
{
	struct hub h;
	hub_start(&h, "hfget-dataset", "repo acme/ds type=dataset\ncommit acme/ds " SHA_A " $D/repo\nref acme/ds main " SHA_A "\n");
	struct tu_run r = hfget(&h, "acme/ds", "--repo-type", "dataset", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "hub GET /api/datasets/acme/ds/revision/main"), 1));
	cr_assert(eq(int, nlog(&h, "hub HEAD /datasets/acme/ds/resolve/" SHA_A "/"), 4));
	cr_assert(truth(repo_same(&h, "model.bin")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, never_downgrades_an_https_endpoint)
{
	struct hub h;
	hub_start(&h, "hfget-tls", STD_CONFIG);
	char *ep = pathf("HF_ENDPOINT=https://127.0.0.1:%u", h.port); /* the mock speaks plain HTTP */
	const char *env[] = { ep, NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, ": TLS handshake with https://127.0.0.1:") != NULL), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "status=200"), 0), "nothing was served");
	free(ep);
	tu_run_free(&r);
	hub_stop(&h);
}

/* ============================================================================================ */
/* TLS: the hub over HTTPS with the committed test certificate (tests/mockhub/tls/README)         */
/* ============================================================================================ */

static char *tls_fixture(const char *name)
{
	char *rel = pathf("tests/mockhub/tls/%s", name), *p = tu_root(rel);
	free(rel);
	return p;
}

static void tls_hub_start(struct hub *h, const char *name)
{
	char *crt = tls_fixture("hub.crt"), *key = tls_fixture("hub.key");
	hub_start_tls(h, name, STD_CONFIG, crt, key);
	free(crt);
	free(key);
}

/* Runs hfget for two regular files (the CDN stays plain HTTP) into a fresh h->out; env holds
 * "K=V" entries with "@" standing for the directory of the fixtures. */
static struct tu_run tls_get(struct hub *h, const char *const *env)
{
	static int serial;
	free(h->out);
	h->out = pathf("%s/out%d", h->dir, ++serial);
	char *dir = tls_fixture(""), *e[8] = { 0 };
	for (int i = 0; env[i] && i < 7; i++) {
		const char *at = strchr(env[i], '@');
		e[i] = at ? pathf("%.*s%s%s", (int)(at - env[i]), env[i], dir, at + 1) : strdup(env[i]);
	}
	log_clear(h);
	struct tu_run r = hfget_e(h, (const char *const *)e, "acme/tiny", "config.json", "README.md", "--local-dir", h->out);
	for (int i = 0; e[i]; i++)
		free(e[i]);
	free(dir);
	return r;
}

static void tls_get_ok(struct hub *h, const char *const *env)
{
	struct tu_run r = tls_get(h, env);
	cr_assert(eq(int, r.status, 0), "with %s %s: %s", env[0], env[1] ? env[1] : "", r.err);
	cr_assert(truth(repo_same(h, "config.json") && repo_same(h, "README.md")), "the bytes came through TLS");
	cr_assert(eq(int, nlog(h, "hub GET /api/models/acme/tiny/revision/main", "status=200"), 1));
	tu_run_free(&r);
}

/* Refused before any request reaches the hub: one line naming the variables, nothing written
 * but .cache/huggingface/{.gitignore,CACHEDIR.TAG} (made before the first request). */
static void tls_get_refused(struct hub *h, const char *const *env)
{
	struct tu_run r = tls_get(h, env);
	cr_assert(eq(int, r.status, 1), "with %s: stderr: %s", env[0] ? env[0] : "no CA variable", r.err);
	char *want = pathf("hfget: acme/tiny: TLS certificate check failed for https://127.0.0.1:%u (", h->port);
	cr_assert(truth(strncmp(r.err, want, strlen(want)) == 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "; set CURL_CA_BUNDLE or SSL_CERT_FILE to ") != NULL), "stderr: %s", r.err);
	cr_assert(truth(strchr(r.err, '\n') == r.err + strlen(r.err) - 1), "one line: %s", r.err);
	cr_assert(eq(int, nlog(h, " "), 0), "no request got through");
	struct tu_run f = tu_sh(pathf("find '%s' -type f ! -name .gitignore ! -name CACHEDIR.TAG 2>/dev/null", h->out));
	cr_assert(eq(str, f.out, ""), "no file written, no temp file left (only the layout's marker files)");
	tu_run_free(&f);
	free(want);
	tu_run_free(&r);
}

Test(hfget_tls, refuses_an_unknown_certificate_without_a_ca_variable)
{
	struct hub h;
	tls_hub_start(&h, "hfget-tls-none");
	tls_get_refused(&h, (const char *const[]){ NULL });
	hub_stop(&h);
}

Test(hfget_tls, trusts_the_hub_through_each_ca_bundle_variable)
{
	struct hub h;
	tls_hub_start(&h, "hfget-tls-bundle");
	tls_get_ok(&h, (const char *const[]){ "CURL_CA_BUNDLE=@hub.crt", NULL });
	tls_get_ok(&h, (const char *const[]){ "REQUESTS_CA_BUNDLE=@hub.crt", NULL });
	tls_get_ok(&h, (const char *const[]){ "SSL_CERT_FILE=@hub.crt", NULL });
	hub_stop(&h);
}

Test(hfget_tls, takes_the_first_of_curl_requests_and_ssl_cert_file_bundles)
{
	struct hub h;
	tls_hub_start(&h, "hfget-tls-order");
	tls_get_refused(&h, (const char *const[]){ "CURL_CA_BUNDLE=@wrong-ca.crt", "REQUESTS_CA_BUNDLE=@hub.crt",
						   "SSL_CERT_FILE=@hub.crt", NULL });
	tls_get_refused(&h, (const char *const[]){ "REQUESTS_CA_BUNDLE=@wrong-ca.crt", "SSL_CERT_FILE=@hub.crt", NULL });
	tls_get_ok(&h, (const char *const[]){ "CURL_CA_BUNDLE=@hub.crt", "REQUESTS_CA_BUNDLE=@wrong-ca.crt",
					      "SSL_CERT_FILE=@wrong-ca.crt", NULL });
	tls_get_ok(&h, (const char *const[]){ "REQUESTS_CA_BUNDLE=@hub.crt", "SSL_CERT_FILE=@wrong-ca.crt", NULL });
	/* an empty variable counts as unset */
	tls_get_ok(&h, (const char *const[]){ "CURL_CA_BUNDLE=", "SSL_CERT_FILE=@hub.crt", NULL });
	hub_stop(&h);
}

Test(hfget_tls, refuses_the_hub_with_a_wrong_or_missing_bundle)
{
	struct hub h;
	tls_hub_start(&h, "hfget-tls-wrong");
	tls_get_refused(&h, (const char *const[]){ "CURL_CA_BUNDLE=@wrong-ca.crt", NULL });
	tls_get_refused(&h, (const char *const[]){ "SSL_CERT_FILE=@no-such-bundle.pem", NULL });
	hub_stop(&h);
}

Test(hfget_tls, refuses_a_trusted_certificate_for_another_host_name)
{
	struct hub h;
	tls_hub_start(&h, "hfget-tls-host");
	char *ep = pathf("HF_ENDPOINT=https://localhost:%u", h.port); /* the certificate names IP 127.0.0.1 only */
	struct tu_run r = tls_get(&h, (const char *const[]){ "CURL_CA_BUNDLE=@hub.crt", ep, NULL });
	cr_assert(eq(int, r.status, 1), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, ": TLS certificate check failed for https://localhost:") != NULL), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, " "), 0), "no request got through");
	free(ep);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget_tls, trusts_the_hub_through_ssl_cert_dir_by_subject_hash)
{
	struct hub h;
	tls_hub_start(&h, "hfget-tls-dir");
	char *crt = tls_fixture("hub.crt"), *certs = pathf("%s/certs", h.dir);
	FILE *f = fopen(crt, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	cr_assert(truth(x), "%s", crt);
	fclose(f);
	cr_assert(eq(int, bn_mkdir_p(certs, NULL), 0));
	/* an empty directory (and the system bundle) does not vouch for the hub */
	char *env = pathf("SSL_CERT_DIR=%s", certs);
	tls_get_refused(&h, (const char *const[]){ env, NULL });
	char *link = pathf("%s/%08lx.0", certs, X509_subject_name_hash(x));
	cr_assert(eq(int, symlink(crt, link), 0));
	tls_get_ok(&h, (const char *const[]){ env, NULL });
	X509_free(x);
	free(link);
	free(env);
	free(certs);
	free(crt);
	hub_stop(&h);
}

/* ============================================================================================ */
/* Patterns, security, disk                                                                         */
/* ============================================================================================ */

Test(hfget, include_and_exclude_follow_fnmatch_semantics)
{
	struct hub h;
	hub_start(&h, "hfget-globs", STD_CONFIG);
	char *p;
	mktext(p = pathf("%s/repo/data/x/y.json", h.dir), "{}\n");
	free(p);
	mktext(p = pathf("%s/repo/data/z.txt", h.dir), "z\n");
	free(p);
	hub_config(&h, STD_CONFIG); /* rescan */
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--include", "*.json", "sub/", "--exclude", "data/x/*");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(OUT_HAS(&h, "config.json") && OUT_HAS(&h, "sub/tok.model")));
	cr_assert(truth(!OUT_HAS(&h, "data/x/y.json")), "excluded");
	cr_assert(truth(!OUT_HAS(&h, "model.bin") && !OUT_HAS(&h, "README.md") && !OUT_HAS(&h, "data/z.txt")));
	tu_run_free(&r);
	/* '*' matches across '/' */
	r = hfget(&h, "acme/tiny", "--local-dir", h.out, "--include", "data*json");
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(OUT_HAS(&h, "data/x/y.json")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, refuses_a_repo_with_a_dotdot_file_name_before_writing_anything)
{
	struct hub h;
	hub_start(&h, "hfget-dotdot", STD_CONFIG "fake acme/tiny " SHA_A " ../escape.txt 10\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "hfget: repo file name '../escape.txt' is unsafe: it has a '..' segment; refusing to download")),
		  "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/resolve/"), 0));
	cr_assert(truth(!exists("%s/%s", h.dir, "escape.txt")));
	cr_assert(truth(!OUT_HAS(&h, "config.json")));
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, refuses_to_write_through_a_symlinked_directory)
{
	struct hub h;
	hub_start(&h, "hfget-symlink", STD_CONFIG);
	char *outside = pathf("%s/outside", h.dir), *link = pathf("%s/sub", h.out);
	bn_mkdir_p(outside, NULL);
	bn_mkdir_p(h.out, NULL);
	cr_assert(eq(int, symlink(outside, link), 0));
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "/sub: is a symbolic link; refusing to write through it")), "stderr: %s", r.err);
	struct tu_run f = tu_sh(pathf("ls -A '%s'", outside));
	cr_assert(eq(str, f.out, ""), "nothing written outside");
	tu_run_free(&f);
	free(outside);
	free(link);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, refuses_early_when_the_disk_is_too_small)
{
	struct hub h;
	hub_start(&h, "hfget-disk", STD_CONFIG "fake acme/tiny " SHA_A " huge.bin 562949953421312 lfs\n");
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, ": not enough free disk space: the download needs 563 TB more, ") &&
		  strstr(r.err, " is free; free some space or choose another --local-dir")), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "/resolve/"), 0), "refused before any download");
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, a_full_disk_keeps_the_partial_file_for_resume)
{
	struct hub h;
	hub_start(&h, "hfget-enospc", STD_CONFIG);
	char *so = tu_bin("../tests/enospc.so");
	char *pre = pathf("LD_PRELOAD=%s", so);
	const char *env[] = { pre, "ENOSPC_AFTER=100000", "ASAN_OPTIONS=verify_asan_link_order=0", NULL };
	struct tu_run r = hfget_e(&h, env, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "/model.bin: disk full after 100 kB of 300 kB; the partial download stays in ") &&
		  strstr(r.err, "for resume; free some space and run again")), "stderr: %s", r.err);
	cr_assert(truth(!OUT_HAS(&h, "model.bin")), "no final file");
	char sha[65];
	sha256_of(&h, "model.bin", sha);
	char *inc = incomplete_path(&h, "model.bin", sha);
	struct stat st;
	cr_assert(eq(int, stat(inc, &st), 0));
	cr_assert(eq(i64, (long long)st.st_size, 100000));
	tu_run_free(&r);
	log_clear(&h);
	r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(eq(int, nlog(&h, "cdn GET", "range=bytes=100000-"), 1));
	cr_assert(truth(repo_same(&h, "model.bin")));
	free(inc);
	free(pre);
	free(so);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, takes_a_lock_so_two_runs_do_not_share_a_temp_file)
{
	struct hub h;
	hub_start(&h, "hfget-lock", STD_CONFIG);
	char *lock = pathf("%s/.cache/huggingface/download/model.bin.lock", h.out);
	mkparent(lock);
	int fd = open(lock, O_RDWR | O_CREAT, 0644);
	cr_assert(truth(fd >= 0));
	cr_assert(eq(int, flock(fd, LOCK_EX), 0));
	struct tu_run r = hfget(&h, "acme/tiny", "model.bin", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 1));
	cr_assert(truth(strstr(r.err, "model.bin: another download of this file is running")), "stderr: %s", r.err);
	close(fd);
	free(lock);
	tu_run_free(&r);
	hub_stop(&h);
}

/* ============================================================================================ */
/* Progress and usage                                                                               */
/* ============================================================================================ */

Test(hfget, prints_one_line_per_file_when_not_on_a_terminal)
{
	struct hub h;
	hub_start(&h, "hfget-lines", STD_CONFIG);
	struct tu_run r = hfget(&h, "acme/tiny", "--local-dir", h.out);
	cr_assert(eq(int, r.status, 0), "stderr: %s", r.err);
	cr_assert(truth(strstr(r.err, "hfget: model.bin: 300 kB in ")));
	cr_assert(truth(strstr(r.err, "hfget: config.json: 44 B in ")));
	cr_assert(truth(!strstr(r.err, "\x1b[")), "no escape sequences in logs");
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, draws_progress_bars_on_a_terminal)
{
	struct hub h;
	hub_start(&h, "hfget-tty", STD_CONFIG "fault host=cdn method=GET stall=1000:700 times=1\n");
	int master;
	char *bin = tu_bin("hfget");
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	if (pid == 0) {
		setenv("HF_ENDPOINT", h.endpoint, 1);
		setenv("NO_PROXY", "127.0.0.1", 1);
		setenv("no_proxy", "127.0.0.1", 1);
		setenv("HF_TOKEN", "", 1);
		char *home = pathf("%s/hfhome", h.dir);
		setenv("HF_HOME", home, 1);
		execl(bin, bin, "acme/tiny", "--local-dir", h.out, (char *)NULL);
		_exit(127);
	}
	char buf[65536];
	size_t n = 0;
	for (;;) {
		ssize_t k = read(master, buf + n, sizeof buf - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	int st;
	waitpid(pid, &st, 0);
	close(master);
	cr_assert(eq(int, WEXITSTATUS(st), 0), "output: %s", buf);
	cr_assert(truth(strstr(buf, "\x1b[") && strstr(buf, "  total: ") && strstr(buf, "] ")), "bars: %s", buf);
	free(bin);
	hub_stop(&h);
}

Test(hfget, prints_help_and_rejects_bad_usage)
{
	char *bin = tu_bin("hfget");
	const char *help[] = { bin, "--help", NULL };
	struct tu_run r = tu_run(help, NULL, NULL);
	cr_assert(eq(int, r.status, 0));
	cr_assert(truth(strstr(r.out, "usage: hfget REPO_ID") && strstr(r.out, "HF_HUB_OFFLINE")));
	tu_run_free(&r);
	const char *bad[] = { bin, "../etc", "--local-dir", "x", NULL };
	r = tu_run(bad, NULL, NULL);
	cr_assert(eq(int, r.status, 2));
	cr_assert(truth(strstr(r.err, "is not a valid repo id") && strstr(r.err, "Try 'hfget --help'")));
	tu_run_free(&r);
	const char *nodir[] = { bin, "acme/tiny", NULL };
	r = tu_run(nodir, NULL, NULL);
	cr_assert(eq(int, r.status, 2));
	cr_assert(truth(strstr(r.err, "missing --local-dir")));
	tu_run_free(&r);
	free(bin);
}

/* ============================================================================================ */
/* The download step through the Make frame                                                         */
/* ============================================================================================ */

/* make -s -C ROOT TARGET with the hub as endpoint, scratch MODEL_DIR/LOG_DIR and no token. */
static struct tu_run make_download(struct hub *h, const char *args)
{
	char *root = tu_root(".");
	char *cmd = pathf("env NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 make -s -C '%s' download HF_ENDPOINT=%s "
			  "HF_TOKEN= HF_HOME='%s/hfhome' HF_HUB_OFFLINE= LOG_DIR='%s/logs' %s",
			  root, h->endpoint, h->dir, h->dir, args);
	struct tu_run r = tu_sh(cmd);
	free(cmd);
	free(root);
	return r;
}

Test(hfget, make_download_fetches_a_hub_checkpoint_and_writes_its_manifest)
{
	struct hub h;
	hub_start(&h, "hfget-make",
		  "repo acme/tiny-bitnet\ncommit acme/tiny-bitnet " SHA_A " $D/ckpt\nref acme/tiny-bitnet main " SHA_A "\n");
	/* a realistic checkpoint: mkmodel's synthetic tiny BitNet */
	char *mk = tu_bin("mkmodel"), *ckpt = pathf("%s/ckpt", h.dir);
	const char *argv[] = { mk, "--preset", "tiny", "--outdir", ckpt, "-q", NULL };
	struct tu_run g = tu_run(argv, NULL, NULL);
	cr_assert(eq(int, g.status, 0), "mkmodel: %s", g.err);
	tu_run_free(&g);
	hub_config(&h, "repo acme/tiny-bitnet\ncommit acme/tiny-bitnet " SHA_A " $D/ckpt\nref acme/tiny-bitnet main " SHA_A "\n");
	char *args = pathf("MODEL=hubtiny HF_REPO=acme/tiny-bitnet MODEL_DIR='%s/models/hubtiny'", h.dir);
	struct tu_run r = make_download(&h, args);
	cr_assert(eq(int, r.status, 0), "make download: %s%s", r.out, r.err);
	cr_assert(truth(strstr(r.out, ">>> hubtiny download") != NULL), "%s", r.out);
	char *man = pathf("%s/models/hubtiny/checkpoint.manifest", h.dir);
	char *m = tu_read_file(man, NULL);
	cr_assert(truth(m && strncmp(m, "# bitmake checkpoint manifest 1\nrepo acme/tiny-bitnet\nrevision main\ncommit " SHA_A "\n",
				   strlen("# bitmake checkpoint manifest 1\nrepo acme/tiny-bitnet\nrevision main\ncommit " SHA_A "\n")) == 0),
		  "%s", m);
	char sha[65], *st = pathf("%s/model.safetensors", ckpt);
	cr_assert(eq(int, bn_sha256_file(st, sha, NULL), 0));
	char *line = pathf("file sha256:%s ", sha);
	cr_assert(truth(strstr(m, line) != NULL && strstr(m, " model.safetensors\n") != NULL), "%s", m);
	cr_assert(truth(strstr(m, " config.json\n") != NULL));
	cr_assert(truth(exists("%s/%s", h.dir, "logs/download_model.log")));
	cr_assert(ge(int, nlog(&h, "cdn GET"), 1), "the safetensors came through the CDN");
	/* a second make does not even ask the Hub */
	log_clear(&h);
	tu_run_free(&r);
	r = make_download(&h, args);
	cr_assert(eq(int, r.status, 0), "%s%s", r.out, r.err);
	cr_assert(eq(str, r.out, ""));
	cr_assert(eq(int, nlog(&h, " "), 0));
	tu_run_free(&r);
	/* and the next steps take the downloaded checkpoint to the final model */
	char *conv = pathf("%s convert quantize", args);
	r = make_download(&h, conv);
	cr_assert(eq(int, r.status, 0), "make convert quantize: %s%s", r.out, r.err);
	cr_assert(truth(strstr(r.out, ">>> hubtiny convert") != NULL && strstr(r.out, ">>> hubtiny quantize") != NULL &&
			strstr(r.out, "download") == NULL), "%s", r.out);
	char *fin = pathf("%s/models/hubtiny/ggml-model-i2_s.gguf", h.dir);
	char *magic = tu_read_file(fin, NULL);
	cr_assert(truth(magic && memcmp(magic, "GGUF", 4) == 0));
	free(magic);
	free(fin);
	free(conv);
	free(line);
	free(st);
	free(m);
	free(man);
	free(args);
	free(ckpt);
	free(mk);
	tu_run_free(&r);
	hub_stop(&h);
}

Test(hfget, make_download_of_a_gguf_repo_goes_straight_to_the_final_model)
{
	struct hub h;
	hub_start(&h, "hfget-make-gguf", "repo acme/bitnet-gguf\n");
	char *g = pathf("%s/gg/ggml-model-i2_s.gguf", h.dir), *readme = pathf("%s/gg/README.md", h.dir);
	mkfile(g, 200000, 5);
	mktext(readme, "# gguf\n");
	hub_config(&h, "repo acme/bitnet-gguf\ncommit acme/bitnet-gguf " SHA_A " $D/gg\nref acme/bitnet-gguf main " SHA_A "\n");
	char *args = pathf("MODEL=BitNet-b1.58-2B-4T-gguf HF_REPO=acme/bitnet-gguf MODEL_DIR='%s/m'", h.dir);
	struct tu_run r = make_download(&h, args);
	cr_assert(eq(int, r.status, 0), "make download: %s%s", r.out, r.err);
	char *final = pathf("%s/m/ggml-model-i2_s.gguf", h.dir);
	cr_assert(truth(same_file(g, final)));
	cr_assert(truth(!exists("%s/%s", h.dir, "m/README.md")), "only the GGUF is fetched");
	char *m = tu_read_file(pathf("%s/m/checkpoint.manifest", h.dir), NULL);
	cr_assert(truth(m && strstr(m, " 200000 ggml-model-i2_s.gguf\n") != NULL), "%s", m);
	free(m);
	tu_run_free(&r);
	/* the whole pipeline has nothing to convert for this model */
	char *root = tu_root(".");
	char *cmd = pathf("make -n -C '%s' MODEL=BitNet-b1.58-2B-4T-gguf HF_REPO=acme/bitnet-gguf MODEL_DIR='%s/m' LOG_DIR='%s/logs'",
			  root, h.dir, h.dir);
	struct tu_run n = tu_sh(cmd);
	cr_assert(eq(int, n.status, 0), "%s", n.err);
	cr_assert(truth(strstr(n.out, "gguf-convert") == NULL), "make all would convert: %s", n.out);
	tu_run_free(&n);
	free(cmd);
	free(root);
	/* another quantization cannot come from this repo */
	char *tq = pathf("%s QUANT=tq2_0", args);
	r = make_download(&h, tq);
	cr_assert(ne(int, r.status, 0));
	cr_assert(truth(strstr(r.err, "acme/bitnet-gguf ships only the i2_s GGUF (ggml-model-i2_s.gguf); use QUANT=i2_s") != NULL),
		  "%s", r.err);
	free(tq);
	free(final);
	free(args);
	free(readme);
	free(g);
	tu_run_free(&r);
	hub_stop(&h);
}

/* hfget: a Hugging Face Hub downloader (hf-hub-protocol.md).  Shared declarations of the modules:
 * configuration (hf_config.c), listings (tools/common/hf_listing.c), patterns (hf_glob.c), the local directory
 * layout (hf_local.c), HTTP (hf_http.c), the transfer engine (hf_fetch.c) and the snapshot driver
 * (hf_snapshot.c).  Invariant: nothing is ever written outside the local directory, and the token
 * only travels to the endpoint's own scheme://host:port. */
#ifndef HF_H
#define HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "hf_listing.h"

#define HF_VERSION "0.1"
#define HF_ETAG_MAX 72   /* a normalised etag is a sha1 or a sha256 */
#define HF_MAX_RETRIES 5

/* ---- configuration (hf_config.c) ------------------------------------------------------------ */

struct hf_config {
	char *endpoint;          /* HF_ENDPOINT without trailing '/', e.g. https://huggingface.co */
	char *token;             /* NULL when anonymous; never printed */
	const char *token_source; /* "--token", "HF_TOKEN", or the token file's path */
	const char *repo_id;
	const char *repo_type;   /* model, dataset or space */
	const char *revision;    /* default "main" */
	const char *local_dir;
	const char *manifest;    /* --manifest FILE or NULL */
	char **include, **exclude, **files; /* NULL-terminated lists (may be empty) */
	size_t n_include, n_exclude, n_files;
	unsigned jobs;           /* concurrent connections */
	uint64_t chunk_size;     /* range size for parallel chunks of large files */
	double etag_timeout;     /* HF_HUB_ETAG_TIMEOUT, seconds */
	double download_timeout; /* HF_HUB_DOWNLOAD_TIMEOUT, seconds */
	double time_scale;       /* HFGET_TEST_TIME_SCALE: multiplies every back-off sleep (tests) */
	bool offline;            /* HF_HUB_OFFLINE */
	bool quiet;
	bool force;              /* --force-download */
	char *cainfo, *capath;   /* CURL_CA_BUNDLE, else REQUESTS_CA_BUNDLE, else SSL_CERT_FILE; SSL_CERT_DIR */
};

/* True values as the Python client reads them: 1, ON, YES, TRUE (any case). */
bool hf_env_true(const char *name);
/* Fills endpoint, token, timeouts, offline and CA settings from the environment (the fields
 * set from the command line beforehand win).  Returns 0 or -BN_EINVAL with a message. */
int hf_config_from_env(struct hf_config *c, const char *cli_token, struct bn_err *err);
void hf_config_free(struct hf_config *c);

/* ---- patterns (hf_glob.c) ---------------------------------------------------------------------- */

/* Python's fnmatch.fnmatchcase: '*' also matches '/', '?' one character, [...] / [!...] classes,
 * no escapes; a pattern ending in '/' matches everything below that directory; backslashes count
 * as '/' in both (§7). */
bool hf_fnmatch(const char *pattern, const char *name);
/* Keep a path if it matches an include pattern (or there are none) and no exclude pattern. */
bool hf_filter_keep(const struct hf_config *c, const char *path);

/* ---- the local directory (hf_local.c) ------------------------------------------------------------ */

/* Paths of one file's download in DIR (§5). */
struct hf_paths {
	char *file;       /* DIR/<path> */
	char *meta;       /* DIR/.cache/huggingface/download/<path>.metadata */
	char *lock;       /* DIR/.cache/huggingface/download/<path>.lock */
	char *incomplete; /* DIR/.cache/huggingface/download/<dir>/<b64(sha1(base.metadata))>.<etag>.incomplete */
	char *parts;      /* the same with .parts: a parallel-range download in progress (hfget only) */
	char *parts_state; /* <parts>.state: "prefix N", the bytes known good from offset 0 */
};
int hf_paths_init(struct hf_paths *p, const char *dir, const char *path, const char *etag,
		  struct bn_err *err);
void hf_paths_free(struct hf_paths *p);
/* Creates the parent directories of DIR/<rel> (rel may be a file path), refusing to go
 * through a symbolic link below DIR. */
int hf_mkdirs_below(const char *dir, const char *rel, struct bn_err *err);
/* DIR/.cache/huggingface with its .gitignore ("*") and CACHEDIR.TAG, as the official client. */
int hf_cache_dir_init(const char *dir, struct bn_err *err);

struct hf_meta {
	char commit[HF_SHA1_HEX + 24];
	char etag[HF_ETAG_MAX + 24];
	double timestamp;
};
/* 1 when meta_path holds valid metadata for file_path (parseable, and the file was not modified
 * after it was written: mtime - 1 <= timestamp), 0 otherwise.  A corrupt file is removed. */
int hf_meta_read(const char *meta_path, const char *file_path, struct hf_meta *m);
int hf_meta_write(const char *meta_path, const char *commit, const char *etag, struct bn_err *err);
/* urlsafe base64 of sha1(name), as _short_hash() (28 characters). */
void hf_short_hash(const char *name, char out[32]);
/* Git's blob id of a file: sha1("blob <size>\0" + content). */
int hf_git_sha1_file(const char *path, char hex[HF_SHA1_HEX], struct bn_err *err);

/* ---- URLs (hf_http.c) ------------------------------------------------------------------------- */

/* Percent-encodes s into a malloc'd string; keep_slash keeps '/' (file paths), else every
 * reserved character is encoded (revisions: refs/pr/1 -> refs%2Fpr%2F1). */
char *hf_url_quote(const char *s, bool keep_slash);
/* The origin (scheme://host:port, lowercase, default port filled in) of an absolute URL; false
 * when the URL is not absolute http(s). */
bool hf_url_origin(const char *url, char *out, size_t outsz);
/* Resolves a Location header against the URL it answered: absolute URLs are kept, a
 * host-relative path keeps the scheme and host of base.  malloc'd, NULL if unusable. */
char *hf_url_resolve(const char *base, const char *location);

/* ---- the snapshot (hf_snapshot.c) --------------------------------------------------------------- */

/* Downloads (or, offline, checks) the snapshot described by c into c->local_dir.  Returns 0,
 * or a negative code with err set; *interrupted is set when a signal stopped it. */
int hf_snapshot(const struct hf_config *c, struct bn_err *err);

#endif

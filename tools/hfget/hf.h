/* hfget: a Hugging Face Hub downloader (hf-hub-protocol.md).  Shared declarations of the modules:
 * configuration (hf_config.c), listings (hf_listing.c), patterns (hf_glob.c), the local directory
 * layout (hf_local.c), HTTP (hf_http.c), the transfer engine (hf_fetch.c) and the snapshot driver
 * (hf_snapshot.c).  Invariant: nothing is ever written outside the local directory, and the token
 * only travels to the endpoint's own scheme://host:port. */
#ifndef HF_H
#define HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

#define HF_VERSION "0.1"
#define HF_SHA1_HEX 41   /* 40 hex digits + NUL */
#define HF_SHA256_HEX 65 /* 64 hex digits + NUL */
#define HF_ETAG_MAX 72   /* a normalised etag is a sha1 or a sha256 */
#define HF_MAX_FILES 1000000u
#define HF_MAX_PATH 4096u
#define HF_MAX_FILE_SIZE (UINT64_C(1) << 50) /* 1 PiB: anything larger is a broken listing */
#define HF_MAX_JSON (256u << 20)             /* cap on one API answer */
#define HF_SIBLINGS_MAX 1000u                /* beyond this the client uses the tree listing (§4.1) */
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
	char *cainfo, *capath;   /* CA bundle from CURL_CA_BUNDLE / SSL_CERT_FILE / SSL_CERT_DIR */
};

/* True values as the Python client reads them: 1, ON, YES, TRUE (any case). */
bool hf_env_true(const char *name);
/* Fills endpoint, token, timeouts, offline and CA settings from the environment (the fields
 * set from the command line beforehand win).  Returns 0 or -BN_EINVAL with a message. */
int hf_config_from_env(struct hf_config *c, const char *cli_token, struct bn_err *err);
void hf_config_free(struct hf_config *c);

/* ---- listings (hf_listing.c) ------------------------------------------------------------------ */

struct hf_file {
	char *path;                /* repo-relative, '/'-separated, validated by hf_path_check */
	uint64_t size;
	char blob_id[HF_SHA1_HEX]; /* git blob sha1 (for LFS files: of the pointer) */
	char sha256[HF_SHA256_HEX]; /* LFS content sha256, "" for regular (git-stored) files */
};

/* The etag the Hub reports for a file: the sha256 for LFS files, else the git blob id. */
static inline const char *hf_file_etag(const struct hf_file *f)
{
	return f->sha256[0] ? f->sha256 : f->blob_id;
}

struct hf_listing {
	char commit[HF_SHA1_HEX];
	char gated[16];   /* "" (not gated), "auto" or "manual" */
	bool private_repo;
	struct hf_file *files;
	size_t n, cap;
};

/* Parses a repo info answer (§4.1): sha, gated, private and, with blobs=true, the siblings.
 * *siblings_usable says whether the siblings alone describe the repo (non-empty, at most
 * HF_SIBLINGS_MAX, every entry with size and blob id, LFS entries with their sha256). */
int hf_listing_parse_info(struct hf_listing *l, const char *buf, size_t len, bool *siblings_usable,
			  struct bn_err *err);
/* Appends the files of one tree listing page (§4.2, a JSON array); directories are skipped. */
int hf_listing_parse_tree(struct hf_listing *l, const char *buf, size_t len, struct bn_err *err);
/* The URL of rel="next" in a Link header (malloc'd), or NULL. */
char *hf_link_next(const char *link);
/* Sorts by path and rejects duplicates and unsafe names (hf_path_check). */
int hf_listing_finish(struct hf_listing *l, struct bn_err *err);
/* The official tree cache, DIR/.cache/huggingface/trees/<commit>.json (_tree_cache.py). */
int hf_tree_cache_write(const char *path, const struct hf_listing *l, struct bn_err *err);
int hf_tree_cache_read(const char *path, struct hf_listing *l, struct bn_err *err);
const struct hf_file *hf_listing_find(const struct hf_listing *l, const char *path);
void hf_listing_free(struct hf_listing *l);

bool hf_is_hex(const char *s, size_t n);

/* ---- patterns (hf_glob.c) ---------------------------------------------------------------------- */

/* Python's fnmatch.fnmatchcase: '*' also matches '/', '?' one character, [...] / [!...] classes,
 * no escapes; a pattern ending in '/' matches everything below that directory; backslashes count
 * as '/' in both (§7). */
bool hf_fnmatch(const char *pattern, const char *name);
/* Keep a path if it matches an include pattern (or there are none) and no exclude pattern. */
bool hf_filter_keep(const struct hf_config *c, const char *path);

/* ---- the local directory (hf_local.c) ------------------------------------------------------------ */

/* Rejects names that could escape the directory: empty, absolute, '..' segments, Windows drive or
 * UNC prefixes (backslashes count as separators), control characters, and the client's own
 * .cache/huggingface/ area.  The message names the file and says why. */
int hf_path_check(const char *path, struct bn_err *err);

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

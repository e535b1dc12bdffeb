/* Hugging Face Hub file listings (hf-hub-protocol.md §4.1, §4.2) and the check that a repo file
 * name is safe to write below a directory (§1).  Shared so that the fuzz targets, which link the
 * whole of tools/common, reach the parsers of these network answers.  Invariant: a listing is
 * only used after hf_listing_finish() has sorted it and rejected duplicate and unsafe names. */
#ifndef HF_LISTING_H
#define HF_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

#define HF_SHA1_HEX 41   /* 40 hex digits + NUL */
#define HF_SHA256_HEX 65 /* 64 hex digits + NUL */
#define HF_MAX_FILES 1000000u
#define HF_MAX_PATH 4096u
#define HF_MAX_FILE_SIZE (UINT64_C(1) << 50) /* 1 PiB: anything larger is a broken listing */
#define HF_MAX_JSON (256u << 20)             /* cap on one API answer */
#define HF_SIBLINGS_MAX 1000u                /* beyond this the client uses the tree listing (§4.1) */

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

/* Rejects names that could escape the directory: empty, absolute, '..' segments, Windows drive or
 * UNC prefixes (backslashes count as separators), control characters, and the client's own
 * .cache/huggingface/ area.  The message names the file and says why. */
int hf_path_check(const char *path, struct bn_err *err);

#endif

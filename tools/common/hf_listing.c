/* File listings of a repo at one commit: the siblings of the info answer (§4.1), the paginated
 * tree listing (§4.2), the official on-disk tree cache, and the safety check of file names.  Everything here parses text from the
 * network, so every field is type-checked, every count capped, and a listing is only used after
 * hf_listing_finish() has rejected duplicate and unsafe names. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_file.h"
#include "bn_json.h"
#include "hf_listing.h"

int hf_path_check(const char *path, struct bn_err *err)
{
	const char *why = NULL;
	size_t n = strlen(path);
	if (n == 0)
		why = "it is empty";
	else if (n > HF_MAX_PATH)
		why = "it is too long";
	for (size_t i = 0; !why && i < n; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			why = "it contains a control character";
	if (!why && (path[0] == '/' || path[0] == '\\'))
		why = "it is an absolute path";
	/* Segments split on '/' and '\\' (Windows rules too, as the official client checks). */
	const char *seg = path;
	int index = 0;
	const char *first = NULL;
	size_t first_len = 0;
	while (!why) {
		size_t len = strcspn(seg, "/\\");
		if (len == 0)
			why = seg[0] ? "it has an empty path segment" : "it ends with a separator";
		else if (len == 2 && seg[0] == '.' && seg[1] == '.')
			why = "it has a '..' segment";
		else if (len == 1 && seg[0] == '.')
			why = "it has a '.' segment";
		else if (len >= 2 && seg[1] == ':' &&
			 ((seg[0] >= 'a' && seg[0] <= 'z') || (seg[0] >= 'A' && seg[0] <= 'Z')))
			why = "it starts with a Windows drive";
		else if (len > 255)
			why = "a path segment is longer than 255 bytes";
		if (why)
			break;
		if (index == 0) {
			first = seg;
			first_len = len;
		} else if (index == 1 && first_len == 6 && memcmp(first, ".cache", 6) == 0 && len == 11 &&
			   memcmp(seg, "huggingface", 11) == 0) {
			why = "it is inside .cache/huggingface/, where the download metadata lives";
			break;
		}
		index++;
		if (!seg[len])
			break;
		seg += len + 1;
	}
	if (!why)
		return 0;
	char shown[204]; /* the name as printed: one line, control characters as '?' */
	size_t k = 0;
	for (; k < sizeof shown - 4 && path[k]; k++)
		shown[k] = (unsigned char)path[k] < 0x20 || path[k] == 0x7f ? '?' : path[k];
	strcpy(shown + k, path[k] ? "..." : "");
	return bn_seterr(err, BN_EFORMAT,
			 "repo file name '%s' is unsafe: %s; refusing to download this repo (ask its owner to "
			 "rename the file)", shown, why);
}

bool hf_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[n] == '\0';
}

/* A JSON string without embedded NUL (JSON_ALLOW_NUL lets "\u0000" through), else NULL. */
static const char *jstr(const json_t *j)
{
	if (!json_is_string(j))
		return NULL;
	const char *s = json_string_value(j);
	return strlen(s) == json_string_length(j) ? s : NULL;
}

/* A non-negative JSON integer no larger than HF_MAX_FILE_SIZE. */
static bool jsize(const json_t *j, uint64_t *out)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    (uint64_t)json_integer_value(j) > HF_MAX_FILE_SIZE)
		return false;
	*out = (uint64_t)json_integer_value(j);
	return true;
}

static void lower_copy(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
}

static int add_file(struct hf_listing *l, const char *path, uint64_t size, const char *blob_id,
		    const char *sha256, struct bn_err *err)
{
	if (l->n >= HF_MAX_FILES)
		return bn_seterr(err, BN_EFORMAT, "listing: more than %u files", HF_MAX_FILES);
	if (strlen(path) > HF_MAX_PATH)
		return bn_seterr(err, BN_EFORMAT, "listing: a file name is longer than %u bytes", HF_MAX_PATH);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct hf_file *f = realloc(l->files, cap * sizeof *f);
		if (!f)
			return bn_seterr(err, BN_ENOMEM, "listing: out of memory");
		l->files = f;
		l->cap = cap;
	}
	struct hf_file *f = &l->files[l->n];
	memset(f, 0, sizeof *f);
	if (!(f->path = strdup(path)))
		return bn_seterr(err, BN_ENOMEM, "listing: out of memory");
	f->size = size;
	if (blob_id)
		lower_copy(f->blob_id, blob_id, 40);
	if (sha256)
		lower_copy(f->sha256, sha256, 64);
	l->n++;
	return 0;
}

int hf_listing_parse_info(struct hf_listing *l, const char *buf, size_t len, bool *siblings_usable,
			  struct bn_err *err)
{
	*siblings_usable = false;
	json_t *root = bn_json_parse(buf, len, "repo info", err);
	if (!root)
		return -BN_EFORMAT;
	int rc = 0;
	const char *sha = jstr(json_object_get(root, "sha"));
	if (!json_is_object(root) || !sha || !hf_is_hex(sha, 40)) {
		rc = bn_seterr(err, BN_EFORMAT, "repo info: no 40-hex 'sha' (commit) in the answer");
		goto out;
	}
	lower_copy(l->commit, sha, 40);
	json_t *g = json_object_get(root, "gated");
	const char *gs = jstr(g);
	l->gated[0] = '\0';
	if (gs && strlen(gs) < sizeof l->gated)
		snprintf(l->gated, sizeof l->gated, "%s", gs);
	else if (gs || json_is_true(g))
		snprintf(l->gated, sizeof l->gated, "yes");
	l->private_repo = json_is_true(json_object_get(root, "private"));

	json_t *sib = json_object_get(root, "siblings");
	if (!json_is_array(sib) || json_array_size(sib) == 0 || json_array_size(sib) > HF_SIBLINGS_MAX)
		goto out; /* not usable: the caller lists the tree */
	size_t i;
	json_t *e;
	bool usable = true;
	json_array_foreach(sib, i, e) {
		const char *name = jstr(json_object_get(e, "rfilename"));
		const char *blob = jstr(json_object_get(e, "blobId"));
		uint64_t size;
		if (!name) {
			rc = bn_seterr(err, BN_EFORMAT, "repo info: sibling %zu has no 'rfilename'", i);
			goto out;
		}
		if (!jsize(json_object_get(e, "size"), &size) || !blob || !hf_is_hex(blob, 40)) {
			usable = false; /* blobs=true not honoured (a mirror): use the tree listing */
			break;
		}
		const char *sha256 = NULL;
		json_t *lfs = json_object_get(e, "lfs");
		if (lfs && !json_is_null(lfs)) {
			uint64_t lsize;
			sha256 = jstr(json_object_get(lfs, "sha256"));
			if (!sha256 || !hf_is_hex(sha256, 64) || !jsize(json_object_get(lfs, "size"), &lsize) ||
			    lsize != size) {
				usable = false;
				break;
			}
		}
		if ((rc = add_file(l, name, size, blob, sha256, err)))
			goto out;
	}
	if (!usable) {
		for (size_t k = 0; k < l->n; k++)
			free(l->files[k].path);
		l->n = 0;
	}
	*siblings_usable = usable;
out:
	json_decref(root);
	return rc;
}

int hf_listing_parse_tree(struct hf_listing *l, const char *buf, size_t len, struct bn_err *err)
{
	json_t *root = bn_json_parse(buf, len, "tree listing", err);
	if (!root)
		return -BN_EFORMAT;
	int rc = 0;
	if (!json_is_array(root)) {
		rc = bn_seterr(err, BN_EFORMAT, "tree listing: the answer is not a JSON array");
		goto out;
	}
	size_t i;
	json_t *e;
	json_array_foreach(root, i, e) {
		const char *type = jstr(json_object_get(e, "type"));
		const char *path = jstr(json_object_get(e, "path"));
		if (!type || !path) {
			rc = bn_seterr(err, BN_EFORMAT, "tree listing: entry %zu has no 'type' or 'path'", i);
			goto out;
		}
		if (strcmp(type, "file") != 0)
			continue; /* directories (and anything else) carry no content */
		const char *oid = jstr(json_object_get(e, "oid"));
		uint64_t size;
		if (!oid || !hf_is_hex(oid, 40) || !jsize(json_object_get(e, "size"), &size)) {
			rc = bn_seterr(err, BN_EFORMAT, "tree listing: file entry %zu has no valid 'oid' or 'size'", i);
			goto out;
		}
		const char *sha256 = NULL;
		json_t *lfs = json_object_get(e, "lfs");
		if (lfs && !json_is_null(lfs)) {
			uint64_t lsize;
			sha256 = jstr(json_object_get(lfs, "oid"));
			if (!sha256 || !hf_is_hex(sha256, 64) || !jsize(json_object_get(lfs, "size"), &lsize)) {
				rc = bn_seterr(err, BN_EFORMAT, "tree listing: LFS entry %zu has no valid 'lfs.oid' or 'lfs.size'", i);
				goto out;
			}
			size = lsize;
		}
		if ((rc = add_file(l, path, size, oid, sha256, err)))
			goto out;
	}
out:
	json_decref(root);
	return rc;
}

char *hf_link_next(const char *link)
{
	/* Link: <url>; rel="next", <url2>; rel="prev" (RFC 8288, the GitHub form). */
	const char *p = link;
	while (p && *p) {
		const char *lt = strchr(p, '<');
		if (!lt)
			return NULL;
		const char *gt = strchr(lt, '>');
		if (!gt)
			return NULL;
		const char *end = gt + 1;
		while (*end && *end != ',')
			end++;
		/* parameters between gt+1 and end */
		for (const char *q = gt + 1; q < end; q++) {
			if (strncasecmp(q, "rel", 3) != 0)
				continue;
			const char *v = q + 3;
			while (v < end && (*v == ' ' || *v == '='))
				v++;
			if (*v == '"')
				v++;
			if (end - v >= 4 && strncasecmp(v, "next", 4) == 0 &&
			    (v + 4 == end || v[4] == '"' || v[4] == ';' || v[4] == ' ')) {
				size_t n = (size_t)(gt - lt - 1);
				char *url = malloc(n + 1);
				if (url) {
					memcpy(url, lt + 1, n);
					url[n] = '\0';
				}
				return url;
			}
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct hf_file *)a)->path, ((const struct hf_file *)b)->path);
}

int hf_listing_finish(struct hf_listing *l, struct bn_err *err)
{
	if (l->n)
		qsort(l->files, l->n, sizeof *l->files, cmp_file);
	for (size_t i = 0; i < l->n; i++) {
		int rc = hf_path_check(l->files[i].path, err);
		if (rc)
			return rc;
		if (i && strcmp(l->files[i - 1].path, l->files[i].path) == 0)
			return bn_seterr(err, BN_EFORMAT, "listing: '%s' appears twice", l->files[i].path);
	}
	return 0;
}

const struct hf_file *hf_listing_find(const struct hf_listing *l, const char *path)
{
	struct hf_file key = { .path = (char *)path };
	return l->n ? bsearch(&key, l->files, l->n, sizeof *l->files, cmp_file) : NULL;
}

void hf_listing_free(struct hf_listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->files[i].path);
	free(l->files);
	l->files = NULL;
	l->n = l->cap = 0;
}

int hf_tree_cache_write(const char *path, const struct hf_listing *l, struct bn_err *err)
{
	json_t *root = json_object(), *files = json_object();
	int rc = 0;
	if (!root || !files) {
		json_decref(root);
		json_decref(files);
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	}
	json_object_set_new(root, "format_version", json_integer(1));
	json_object_set_new(root, "files", files);
	for (size_t i = 0; i < l->n; i++) {
		const struct hf_file *f = &l->files[i];
		json_t *e = json_object();
		json_object_set_new(e, "size", json_integer((json_int_t)f->size));
		json_object_set_new(e, "blob_id", json_string(f->blob_id));
		if (f->sha256[0]) {
			json_object_set_new(e, "lfs_sha256", json_string(f->sha256));
			json_object_set_new(e, "lfs_size", json_integer((json_int_t)f->size));
		}
		json_object_set_new(files, f->path, e);
	}
	char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	rc = bn_write_if_changed(path, text, strlen(text), NULL, err);
	free(text);
	return rc;
}

int hf_tree_cache_read(const char *path, struct hf_listing *l, struct bn_err *err)
{
	json_t *root = bn_json_load(path, HF_MAX_JSON, err);
	if (!root)
		return -BN_EFORMAT;
	int rc = 0;
	json_t *files = json_object_get(root, "files");
	json_t *ver = json_object_get(root, "format_version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1 || !json_is_object(files)) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: not a tree cache of format_version 1", path);
		goto out;
	}
	const char *key;
	json_t *e;
	json_object_foreach(files, key, e) {
		uint64_t size;
		const char *blob = jstr(json_object_get(e, "blob_id"));
		const char *sha = jstr(json_object_get(e, "lfs_sha256"));
		if (!jsize(json_object_get(e, "size"), &size) || !blob || !hf_is_hex(blob, 40) ||
		    (sha && !hf_is_hex(sha, 64))) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: bad entry for '%s'", path, key);
			goto out;
		}
		if ((rc = add_file(l, key, size, blob, sha, err)))
			goto out;
	}
out:
	json_decref(root);
	return rc;
}

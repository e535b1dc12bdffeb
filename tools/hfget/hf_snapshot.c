/* A whole snapshot (hf-hub-protocol.md §5.1): one info call pins the revision to a commit and,
 * with blobs=true, usually lists every file with its size and hash; otherwise the tree listing
 * (paginated) or the tree cache of an earlier run does.  Files whose metadata already matches
 * are skipped without any request, so an up-to-date run costs that single API call.  Then the
 * transfer engine fetches the rest and, when asked, a checkpoint manifest is written. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_hash.h"
#include "bn_log.h"
#include "bn_util.h"
#include "hf_fetch.h"

#define MAX_PAGES 100000
#define MAX_API_HOPS 10

static const char *api_type(const char *type)
{
	if (strcmp(type, "dataset") == 0)
		return "datasets";
	if (strcmp(type, "space") == 0)
		return "spaces";
	return "models";
}

static char *cache_path(const struct hf_config *c, const char *sub, const char *name, const char *ext)
{
	size_t n = strlen(c->local_dir) + strlen(sub) + strlen(name) + strlen(ext) + 40;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/.cache/huggingface/%s/%s%s", c->local_dir, sub, name, ext);
	return p;
}

/* GET an API URL, following redirects (a renamed repo answers with one).  On success
 * the caller frees r with hf_req_free. */
static int api_get(struct hf_net *net, struct hf_req *r, const char *url, struct bn_err *err)
{
	const struct hf_config *c = net->cfg;
	char *cur = strdup(url);
	int rc = cur ? 0 : bn_seterr(err, BN_ENOMEM, "out of memory");
	for (int hop = 0; !rc; hop++) {
		rc = hf_net_call(net, r, cur, false, c->etag_timeout, c->repo_id, err);
		if (rc)
			break;
		long s = r->h.status;
		if (s >= 300 && s < 400 && r->h.location) {
			/* the token follows only to the endpoint's own origin (hf_req_init decides) */
			char *next = hf_url_resolve(cur, r->h.location);
			if (!next)
				rc = bn_seterr(err, BN_ENET, "%s: unusable redirect to '%.200s' from %s", c->repo_id,
					       r->h.location, net->origin);
			hf_req_free(r);
			free(cur);
			cur = next;
			if (rc)
				break;
			if (hop >= MAX_API_HOPS)
				rc = bn_seterr(err, BN_ENET, "%s: more than %d redirects at %s", c->repo_id, MAX_API_HOPS, cur);
			continue;
		}
		if (s >= 300)
			rc = hf_http_error(net, r, NULL, err);
		break;
	}
	if (rc)
		hf_req_free(r); /* on failure nothing is left for the caller to free */
	free(cur);
	return rc;
}

static int list_tree(struct hf_net *net, struct hf_listing *l, struct bn_err *err)
{
	const struct hf_config *c = net->cfg;
	size_t n = strlen(c->endpoint) + strlen(c->repo_id) + 120;
	char *url = malloc(n), *prev = NULL;
	if (!url)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	snprintf(url, n, "%s/api/%s/%s/tree/%s?recursive=true&expand=false", c->endpoint,
		 api_type(c->repo_type), c->repo_id, l->commit);
	int rc = 0;
	for (int page = 0; url && !rc; page++) {
		if (page >= MAX_PAGES || (prev && strcmp(prev, url) == 0)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: the tree listing does not end (page %d repeats %s)",
				       c->repo_id, page, url);
			break;
		}
		struct hf_req r;
		bn_verbose("listing page %d", page + 1);
		rc = api_get(net, &r, url, err);
		if (!rc)
			rc = hf_listing_parse_tree(l, r.body ? r.body : "", r.body_len, err);
		char *next = !rc && r.h.link ? hf_link_next(r.h.link) : NULL;
		char *abs = next ? hf_url_resolve(url, next) : NULL;
		free(next);
		hf_req_free(&r);
		free(prev);
		prev = url;
		url = abs;
	}
	free(prev);
	free(url);
	return rc;
}

/* The commit, the listing and the gated flag of the revision. */
static int get_listing(struct hf_net *net, struct hf_listing *l, struct bn_err *err)
{
	const struct hf_config *c = net->cfg;
	char *rev = hf_url_quote(c->revision, false);
	size_t n = strlen(c->endpoint) + strlen(c->repo_id) + (rev ? strlen(rev) : 0) + 80;
	char *url = malloc(n);
	int rc = 0;
	if (!rev || !url) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(url, n, "%s/api/%s/%s/revision/%s?blobs=true", c->endpoint, api_type(c->repo_type),
		 c->repo_id, rev);
	struct hf_req r;
	if ((rc = api_get(net, &r, url, err)))
		goto out;
	bool siblings_ok = false;
	rc = hf_listing_parse_info(l, r.body ? r.body : "", r.body_len, &siblings_ok, err);
	hf_req_free(&r);
	if (rc) {
		bn_err_prefix(err, "%s: %s does not answer like a Hugging Face Hub (check HF_ENDPOINT)",
			      c->repo_id, c->endpoint);
		goto out;
	}
	char *tc = cache_path(c, "trees", l->commit, ".json");
	struct bn_err ignore = { 0 };
	bool from_cache = false;
	if (tc && bn_file_exists(tc)) {
		struct hf_listing cached = { 0 };
		if (hf_tree_cache_read(tc, &cached, &ignore) == 0 && hf_listing_finish(&cached, &ignore) == 0) {
			memcpy(cached.commit, l->commit, sizeof cached.commit);
			memcpy(cached.gated, l->gated, sizeof cached.gated);
			cached.private_repo = l->private_repo;
			hf_listing_free(l);
			*l = cached;
			from_cache = true;
			bn_verbose("file list of commit %.12s from %s", l->commit, tc);
		} else {
			hf_listing_free(&cached);
			bn_warn("%s: ignoring an unreadable tree cache: %s", tc, ignore.msg);
		}
	}
	if (!from_cache && !siblings_ok) {
		bn_verbose("listing the tree of commit %.12s", l->commit);
		for (size_t i = 0; i < l->n; i++)
			free(l->files[i].path);
		l->n = 0;
		rc = list_tree(net, l, err);
	}
	if (!rc)
		rc = hf_listing_finish(l, err);
	char trel[80];
	snprintf(trel, sizeof trel, ".cache/huggingface/trees/%s.json", l->commit);
	if (!rc && !from_cache && tc &&
	    (hf_mkdirs_below(c->local_dir, trel, &ignore) || hf_tree_cache_write(tc, l, &ignore)))
		bn_warn("%s", ignore.msg);
	free(tc);
	/* remember which commit the revision was, for offline runs */
	if (!rc && strcmp(c->revision, l->commit) != 0 && hf_path_check(c->revision, NULL) == 0) {
		char *ref = cache_path(c, "refs", c->revision, "");
		char rel[HF_MAX_PATH + 64];
		snprintf(rel, sizeof rel, ".cache/huggingface/refs/%s", c->revision);
		if (ref && hf_mkdirs_below(c->local_dir, rel, &ignore) == 0)
			bn_write_if_changed(ref, l->commit, 40, NULL, &ignore);
		free(ref);
	}
out:
	free(rev);
	free(url);
	return rc;
}

/* The files the run is about: explicit names, else the listing filtered by the patterns. */
static int select_files(const struct hf_config *c, const struct hf_listing *l, const struct hf_file ***out,
			size_t *nout, struct bn_err *err)
{
	const struct hf_file **sel = calloc(l->n + c->n_files + 1, sizeof *sel);
	size_t n = 0;
	if (!sel)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	if (c->n_files) {
		for (size_t i = 0; i < c->n_files; i++) {
			const struct hf_file *f = hf_listing_find(l, c->files[i]);
			if (!f) {
				free(sel);
				return bn_seterr(err, BN_ENOENT,
						 "%s: no file '%s' at revision '%s' (commit %.12s); the repo has %zu "
						 "files, e.g. '%s'", c->repo_id, c->files[i], c->revision, l->commit,
						 l->n, l->n ? l->files[0].path : "");
			}
			bool dup = false;
			for (size_t k = 0; k < n; k++)
				dup |= sel[k] == f;
			if (!dup)
				sel[n++] = f;
		}
	} else {
		for (size_t i = 0; i < l->n; i++)
			if (hf_filter_keep(c, l->files[i].path))
				sel[n++] = &l->files[i];
	}
	*out = sel;
	*nout = n;
	return 0;
}

/* 1 when DIR already holds f at its etag (valid metadata), 0 otherwise. */
static int is_current(const struct hf_config *c, const struct hf_file *f, const char *commit, bool fix_commit,
		      struct bn_err *err)
{
	struct hf_paths p;
	const char *etag = hf_file_etag(f);
	if (hf_paths_init(&p, c->local_dir, f->path, etag, err))
		return -BN_ENOMEM;
	struct hf_meta m;
	int ok = hf_meta_read(p.meta, p.file, &m) && strcmp(m.etag, etag) == 0;
	if (ok && fix_commit && strcmp(m.commit, commit) != 0 && hf_meta_write(p.meta, commit, etag, err))
		ok = -BN_EIO;
	hf_paths_free(&p);
	return ok;
}

static int write_manifest(const struct hf_config *c, const char *commit, const struct hf_file *const *sel,
			  size_t n, struct bn_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	fprintf(f, "# bitmake checkpoint manifest 1\nrepo %s\nrevision %s\ncommit %s\n", c->repo_id,
		c->revision, commit);
	for (size_t i = 0; i < n; i++) /* sel is in listing order, i.e. sorted by path */
		fprintf(f, "file %s:%s %llu %s\n", sel[i]->sha256[0] ? "sha256" : "gitsha1",
			sel[i]->sha256[0] ? sel[i]->sha256 : sel[i]->blob_id, (unsigned long long)sel[i]->size,
			sel[i]->path);
	fclose(f);
	int rc = bn_write_if_changed(c->manifest, buf, len, NULL, err);
	free(buf);
	return rc;
}

static int cmp_sel(const void *a, const void *b)
{
	return strcmp((*(const struct hf_file *const *)a)->path, (*(const struct hf_file *const *)b)->path);
}

static void print_dir(const struct hf_config *c)
{
	char abs[PATH_MAX];
	printf("%s\n", realpath(c->local_dir, abs) ? abs : c->local_dir);
	fflush(stdout);
}

/* The local copy of the revision, when DIR has the listing of its commit: 0 and *complete, or
 * an error when DIR has no record of it.  missing (may be NULL) receives the first names. */
static int local_state(const struct hf_config *c, struct hf_listing *l, bool *complete, char *missing,
		       size_t missing_sz, size_t *nmissing, size_t *nsel, struct bn_err *err)
{
	char commit[HF_SHA1_HEX] = "";
	*complete = false;
	if (hf_is_hex(c->revision, 40)) {
		snprintf(commit, sizeof commit, "%s", c->revision);
	} else {
		char *ref = hf_path_check(c->revision, NULL) == 0 ? cache_path(c, "refs", c->revision, "") : NULL;
		char *buf = NULL;
		size_t len;
		if (ref && bn_file_exists(ref) && bn_read_file(ref, 256, &buf, &len, NULL) == 0 && len >= 40) {
			buf[40] = '\0';
			if (hf_is_hex(buf, 40))
				snprintf(commit, sizeof commit, "%s", buf);
		}
		free(buf);
		free(ref);
	}
	if (!commit[0])
		return bn_seterr(err, BN_ENOENT, "%s has no record of revision '%s' of %s (it was never "
				 "downloaded there by hfget)", c->local_dir, c->revision, c->repo_id);
	char *tc = cache_path(c, "trees", commit, ".json");
	int rc = tc && bn_file_exists(tc) ? hf_tree_cache_read(tc, l, err) : -BN_ENOENT;
	if (rc == -BN_ENOENT)
		bn_seterr(err, BN_ENOENT, "%s has no file list of commit %.12s of %s", c->local_dir, commit, c->repo_id);
	free(tc);
	if (!rc)
		rc = hf_listing_finish(l, err);
	if (rc)
		return rc;
	memcpy(l->commit, commit, sizeof l->commit);
	const struct hf_file **sel = NULL;
	size_t n = 0;
	if ((rc = select_files(c, l, &sel, &n, err)))
		return rc;
	size_t miss = 0, used = 0;
	if (missing)
		missing[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int cur = is_current(c, sel[i], commit, false, err);
		if (cur < 0) {
			free(sel);
			return cur;
		}
		if (cur)
			continue;
		if (missing && used + strlen(sel[i]->path) + 8 < missing_sz && miss < 5)
			used += (size_t)snprintf(missing + used, missing_sz - used, "%s%s", miss ? ", " : "", sel[i]->path);
		miss++;
	}
	if (missing && miss > 5)
		snprintf(missing + used, missing_sz - used, ", ...");
	*nmissing = miss;
	*nsel = n;
	*complete = miss == 0;
	if (*complete && c->manifest)
		rc = write_manifest(c, commit, sel, n, err);
	free(sel);
	return rc;
}

static int offline(const struct hf_config *c, struct bn_err *err)
{
	struct hf_listing l = { 0 };
	bool complete;
	char missing[1024];
	size_t nmiss = 0, nsel = 0;
	int rc = local_state(c, &l, &complete, missing, sizeof missing, &nmiss, &nsel, err);
	if (rc) {
		bn_err_prefix(err, "offline mode (HF_HUB_OFFLINE=1)");
		size_t len = strlen(err->msg);
		snprintf(err->msg + len, sizeof err->msg - len, "; unset HF_HUB_OFFLINE to download it");
	} else if (!complete) {
		rc = bn_seterr(err, BN_ENOENT,
			       "offline mode (HF_HUB_OFFLINE=1): %zu of %zu files of %s at commit %.12s are "
			       "missing or incomplete in %s: %s; unset HF_HUB_OFFLINE to download them",
			       nmiss, nsel, c->repo_id, l.commit, c->local_dir, missing);
	} else {
		bn_info("%s: offline: all %zu files of commit %.12s are in %s", c->repo_id, nsel, l.commit,
			c->local_dir);
		print_dir(c);
	}
	hf_listing_free(&l);
	return rc;
}

int hf_snapshot(const struct hf_config *c, struct bn_err *err)
{
	if (c->offline)
		return offline(c, err);
	struct hf_listing l = { 0 };
	struct hf_net net = { 0 };
	const struct hf_file **sel = NULL, **dl = NULL;
	size_t nsel = 0, ndl = 0, current = 0, adopted = 0;
	uint64_t need = 0;
	int rc;
	if ((rc = bn_mkdir_p(c->local_dir, err)) || (rc = hf_cache_dir_init(c->local_dir, err)))
		return rc;
	if ((rc = hf_net_init(&net, c, err)))
		goto out;
	rc = get_listing(&net, &l, err);
	if (rc == -BN_ENET) {
		/* The Hub is unreachable: a complete local copy is still a success (§5.1 step 2). */
		struct hf_listing local = { 0 };
		struct bn_err e2 = { 0 };
		bool complete = false;
		size_t nm, ns;
		if (local_state(c, &local, &complete, NULL, 0, &nm, &ns, &e2) == 0 && complete) {
			bn_warn("%s; using the complete local copy (commit %.12s) in %s", err->msg, local.commit,
				c->local_dir);
			bn_err_clear(err);
			print_dir(c);
			rc = 0;
		}
		hf_listing_free(&local);
		goto out;
	}
	if (rc || (rc = select_files(c, &l, &sel, &nsel, err)))
		goto out;
	if (nsel == 0)
		bn_warn("%s: no file matches the --include/--exclude patterns (the repo has %zu files)",
			c->repo_id, l.n);
	dl = calloc(nsel + 1, sizeof *dl);
	if (!dl) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nsel && !rc; i++) {
		const struct hf_file *f = sel[i];
		char rel[HF_MAX_PATH + 64];
		snprintf(rel, sizeof rel, ".cache/huggingface/download/%s", f->path);
		if ((rc = hf_mkdirs_below(c->local_dir, f->path, err)) ||
		    (rc = hf_mkdirs_below(c->local_dir, rel, err)))
			break;
		if (!c->force) {
			int cur = is_current(c, f, l.commit, true, err);
			if (cur < 0) {
				rc = cur;
				break;
			}
			if (cur) {
				current++;
				continue;
			}
		}
		struct hf_paths p;
		const char *etag = hf_file_etag(f);
		if ((rc = hf_paths_init(&p, c->local_dir, f->path, etag, err)))
			break;
		struct stat st;
		if (!c->force && stat(p.file, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == f->size) {
			/* a file without (valid) metadata: adopt it if its bytes are right */
			char hex[HF_SHA256_HEX];
			struct bn_err ignore = { 0 };
			bn_verbose("%s: checking the existing file", f->path);
			int hr = f->sha256[0] ? bn_sha256_file(p.file, hex, &ignore) : hf_git_sha1_file(p.file, hex, &ignore);
			if (hr == 0 && strcmp(hex, etag) == 0) {
				rc = hf_meta_write(p.meta, l.commit, etag, err);
				hf_paths_free(&p);
				adopted++;
				continue;
			}
		}
		struct stat ist;
		uint64_t have = stat(p.incomplete, &ist) == 0 && (uint64_t)ist.st_size <= f->size ? (uint64_t)ist.st_size : 0;
		need += f->size - have;
		hf_paths_free(&p);
		dl[ndl++] = f;
	}
	if (rc)
		goto out;
	uint64_t avail = bn_free_disk(c->local_dir);
	if (need > avail) {
		char a[32], b[32];
		rc = bn_seterr(err, BN_ENOSPC,
			       "%s: not enough free disk space: the download needs %s more, %s is free; free "
			       "some space or choose another --local-dir", c->local_dir,
			       bn_fmt_bytes(need, a, sizeof a), bn_fmt_bytes(avail, b, sizeof b));
		goto out;
	}
	if (ndl && l.gated[0] && !c->token) {
		rc = bn_seterr(err, BN_EAUTH,
			       "%s: gated repository: downloads need an account that accepted its conditions; "
			       "accept them at %s/%s and set HF_TOKEN (or save the token in $HF_HOME/token)",
			       c->repo_id, c->endpoint, c->repo_id);
		goto out;
	}
	struct hf_fetch_stats st = { 0 };
	if (ndl) {
		char a[32];
		bn_info("%s: commit %.12s: downloading %zu of %zu files (%s)", c->repo_id, l.commit, ndl, nsel,
			bn_fmt_bytes(need, a, sizeof a));
	}
	if ((rc = hf_fetch(&net, l.commit, dl, ndl, &st, err)))
		goto out;
	if (c->manifest) {
		qsort(sel, nsel, sizeof *sel, cmp_sel);
		if ((rc = write_manifest(c, l.commit, sel, nsel, err)))
			goto out;
	}
	char a[32], b[32];
	if (ndl)
		bn_info("%s: commit %.12s: %zu files downloaded (%s in %.1f s, %s/s), %zu already up to date",
			c->repo_id, l.commit, st.files_downloaded, bn_fmt_bytes(st.bytes_received, a, sizeof a),
			st.seconds, bn_fmt_bytes(st.seconds > 0 ? (uint64_t)((double)st.bytes_received / st.seconds) : 0, b, sizeof b),
			current + adopted);
	else
		bn_info("%s: commit %.12s: all %zu files are up to date", c->repo_id, l.commit, nsel);
	bn_verbose("%u API call(s)", net.api_calls);
	print_dir(c);
out:
	hf_net_free(&net);
	hf_listing_free(&l);
	free(sel);
	free(dl);
	return rc;
}

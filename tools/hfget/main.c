/* hfget: download a Hugging Face Hub repo into a local directory the way `hf download REPO
 * --local-dir DIR` does, resumable, verified and parallel.  This file is the command line only:
 * parse, validate, run the snapshot, map errors to exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_log.h"
#include "bn_util.h"
#include "hf.h"

static void help(void)
{
	printf(
		"usage: hfget REPO_ID [FILE...] --local-dir DIR [options]\n"
		"Downloads a Hugging Face Hub repository (or some of its files) into DIR, as\n"
		"`hf download REPO_ID --local-dir DIR` does: same layout, same metadata in\n"
		"DIR/.cache/huggingface/, so the two tools can take turns on one directory.  Every file\n"
		"is checked against its SHA-256 (LFS files) or git blob id; interrupted downloads resume;\n"
		"an up-to-date directory costs one API call.  Prints DIR's absolute path on stdout.\n"
		"\n"
		"Options:\n"
		"  --local-dir DIR      where the files go (required)\n"
		"  --revision REV       branch, tag or commit (default: main)\n"
		"  --repo-type TYPE     model (default), dataset or space\n"
		"  --include GLOB...    only files matching one of these patterns\n"
		"  --exclude GLOB...    skip files matching one of these patterns\n"
		"                       (Python fnmatch: '*' also matches '/'; 'dir/' means everything below)\n"
		"  --token TOKEN        access token (prefer HF_TOKEN: arguments are visible to other users)\n"
		"  --jobs N             parallel connections (default 8; also --max-workers)\n"
		"  --chunk-size SIZE    range size for parallel chunks of large files (default 32M)\n"
		"  --manifest FILE      after a complete, verified download, write the checkpoint manifest\n"
		"                       (repo, revision, commit, one 'file <hash> <size> <path>' per file)\n"
		"  --force-download     download every file again\n"
		"  -q, --quiet          errors only\n"
		"  -v, --verbose        every request (never the token)\n"
		"  --help, --version\n"
		"\n"
		"Environment:\n"
		"  HF_ENDPOINT          Hub or mirror URL (default https://huggingface.co)\n"
		"  HF_TOKEN             token (else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH or\n"
		"                       $HF_HOME/token; HF_HUB_DISABLE_IMPLICIT_TOKEN=1 ignores the file)\n"
		"  HF_HOME              default ~/.cache/huggingface (only the token file is read there)\n"
		"  HF_HUB_OFFLINE=1     no network: succeed if DIR is complete, else list what is missing\n"
		"  HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT\n"
		"                       connect and no-progress timeouts in seconds (default 10)\n"
		"  https_proxy, http_proxy, no_proxy, ALL_PROXY   proxies (libcurl's rules)\n"
		"  CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE\n"
		"                       CA bundle: the first of these that is set (TLS is always verified)\n"
		"  SSL_CERT_DIR         directory of CA certificates named by subject hash (c_rehash)\n"
		"  HF_DEBUG=1           same as --verbose\n"
		"  HFGET_TEST_TIME_SCALE  multiplies back-off sleeps (tests only)\n"
		"\n"
		"Exit status: 0 success, 1 failure (one line on stderr says why and what to do),\n"
		"2 usage error, 130 interrupted (run again to resume).\n");
}

/* repo ids as the Hub accepts them: [namespace/]name, letters, digits, '-', '_', '.', no '--'
 * or '..', no leading or trailing '-' or '.', at most 96 characters per part. */
static bool repo_id_ok(const char *id)
{
	if (strstr(id, "--") || strstr(id, ".."))
		return false;
	int parts = 0;
	const char *p = id;
	for (;;) {
		size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");
		if (n == 0 || n > 96 || p[0] == '-' || p[0] == '.' || p[n - 1] == '-' || p[n - 1] == '.')
			return false;
		parts++;
		if (p[n] == '\0')
			return parts <= 2;
		if (p[n] != '/')
			return false;
		p += n + 1;
	}
}

/* Appends the values following argv[*i] up to the next option (argparse's nargs='*'). */
static int take_list(int argc, char **argv, int *i, char ***list, size_t *n)
{
	int start = *i + 1, end = start;
	while (end < argc && strncmp(argv[end], "--", 2) != 0 && strcmp(argv[end], "-q") != 0 &&
	       strcmp(argv[end], "-v") != 0)
		end++;
	if (end == start)
		return -1;
	char **l = realloc(*list, (*n + (size_t)(end - start) + 1) * sizeof *l);
	if (!l)
		return -1;
	for (int k = start; k < end; k++)
		l[(*n)++] = argv[k];
	l[*n] = NULL;
	*list = l;
	*i = end - 1;
	return 0;
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	struct hf_config c = { .revision = "main", .repo_type = "model", .jobs = 8, .chunk_size = 32u << 20 };
	const char *token = NULL;
	int rc = 2;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			help();
			rc = 0;
			goto out;
		} else if (strcmp(a, "--version") == 0) {
			printf("hfget %s\n", HF_VERSION);
			rc = 0;
			goto out;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			c.quiet = true;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			bn_log_level = BN_LOG_VERBOSE;
		} else if (strcmp(a, "--force-download") == 0) {
			c.force = true;
		} else if (strcmp(a, "--include") == 0 || strcmp(a, "--exclude") == 0) {
			bool inc = a[2] == 'i';
			if (take_list(argc, argv, &i, inc ? &c.include : &c.exclude, inc ? &c.n_include : &c.n_exclude)) {
				rc = bn_usage_error("%s needs at least one pattern", a);
				goto out;
			}
		} else if (a[0] == '-' && a[1] == '-') {
			if (!v) {
				rc = bn_usage_error("%s needs a value", a);
				goto out;
			}
			i++;
			unsigned u;
			if (strcmp(a, "--local-dir") == 0) {
				c.local_dir = v;
			} else if (strcmp(a, "--revision") == 0) {
				c.revision = v;
			} else if (strcmp(a, "--repo-type") == 0) {
				if (strcmp(v, "model") && strcmp(v, "dataset") && strcmp(v, "space")) {
					rc = bn_usage_error("--repo-type %s: use model, dataset or space", v);
					goto out;
				}
				c.repo_type = v;
			} else if (strcmp(a, "--token") == 0) {
				token = v;
			} else if (strcmp(a, "--jobs") == 0 || strcmp(a, "--max-workers") == 0) {
				if (bn_parse_uint(v, 1, 64, &u)) {
					rc = bn_usage_error("%s %s: expected a number from 1 to 64", a, v);
					goto out;
				}
				c.jobs = u;
			} else if (strcmp(a, "--chunk-size") == 0) {
				if (bn_parse_u64(v, &c.chunk_size) || c.chunk_size < 4096 || c.chunk_size > (UINT64_C(1) << 34)) {
					rc = bn_usage_error("--chunk-size %s: expected a size from 4K to 16G", v);
					goto out;
				}
			} else if (strcmp(a, "--manifest") == 0) {
				c.manifest = v;
			} else if (strcmp(a, "--cache-dir") == 0) {
				rc = bn_usage_error("--cache-dir: hfget only downloads into --local-dir");
				goto out;
			} else {
				rc = bn_usage_error("unknown option %s", a);
				goto out;
			}
		} else if (a[0] == '-' && a[1]) {
			rc = bn_usage_error("unknown option %s", a);
			goto out;
		} else if (!c.repo_id) {
			c.repo_id = a;
		} else {
			char **l = realloc(c.files, (c.n_files + 2) * sizeof *l);
			if (!l) {
				rc = 1;
				goto out;
			}
			c.files = l;
			c.files[c.n_files++] = argv[i];
			c.files[c.n_files] = NULL;
		}
	}
	if (!c.repo_id) {
		rc = bn_usage_error("missing REPO_ID (e.g. microsoft/BitNet-b1.58-2B-4T)");
		goto out;
	}
	if (!repo_id_ok(c.repo_id)) {
		rc = bn_usage_error("'%s' is not a valid repo id: expected namespace/name made of letters, "
				    "digits, '-', '_' and '.'", c.repo_id);
		goto out;
	}
	if (!c.local_dir || !*c.local_dir) {
		rc = bn_usage_error("missing --local-dir DIR (hfget downloads into a directory, not into "
				    "the shared cache)");
		goto out;
	}
	if (!*c.revision || strpbrk(c.revision, "\r\n")) {
		rc = bn_usage_error("--revision: expected a branch, tag or commit");
		goto out;
	}
	for (size_t k = 0; k < c.n_files; k++) {
		struct bn_err e = { 0 };
		if (hf_path_check(c.files[k], &e)) {
			rc = bn_usage_error("%s", e.msg);
			goto out;
		}
	}
	if (c.quiet)
		bn_log_level = BN_LOG_QUIET;
	else if (hf_env_true("HF_DEBUG"))
		bn_log_level = BN_LOG_VERBOSE;

	struct bn_err err = { 0 };
	if (hf_config_from_env(&c, token, &err)) {
		bn_error("%s", err.msg);
		rc = 2;
		goto out;
	}
	bn_catch_interrupts();
	int r = hf_snapshot(&c, &err);
	if (r) {
		bn_error("%s", err.msg);
		rc = r == -BN_EINTR ? 130 : 1;
	} else {
		rc = 0;
	}
out:
	hf_config_free(&c);
	free(c.include);
	free(c.exclude);
	free(c.files);
	return rc;
}

/* `bm-step manifest DIR OUT`: the content manifest of a local or generated checkpoint.
 * One line per regular file under DIR (sorted, relative paths) with its size and XXH3-128,
 * skipping what the pipeline itself writes there (hidden entries such as .cache/ and stamps,
 * *.gguf, temp files, the manifest).  Downstream steps depend on this one small file, so a
 * checkpoint's identity is its content, not its mtimes. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bn_err.h"
#include "bn_file.h"
#include "bn_hash.h"
#include "bn_log.h"

struct names {
	char **v;
	size_t n, cap;
};

static bool skipped(const char *name)
{
	size_t len = strlen(name);
	static const char *const suffixes[] = { ".gguf", ".tmp", ".incomplete", ".lock" };
	if (name[0] == '.' || strcmp(name, "checkpoint.manifest") == 0)
		return true;
	for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
		size_t sl = strlen(suffixes[i]);
		if (len >= sl && strcmp(name + len - sl, suffixes[i]) == 0)
			return true;
	}
	return false;
}

static int collect(const char *root, const char *rel, struct names *out, struct bn_err *err)
{
	char *dirpath = rel[0] ? bn_path_join(root, rel) : strdup(root);
	DIR *d = dirpath ? opendir(dirpath) : NULL;
	if (!d) {
		int rc = bn_seterr(err, BN_EIO, "%s: cannot read directory", dirpath ? dirpath : root);
		free(dirpath);
		return rc;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (skipped(e->d_name))
			continue;
		char *r = rel[0] ? bn_path_join(rel, e->d_name) : strdup(e->d_name);
		char *full = bn_path_join(root, r);
		struct stat st;
		if (r && full && stat(full, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				rc = collect(root, r, out, err);
			} else if (S_ISREG(st.st_mode)) {
				if (out->n == out->cap) {
					out->cap = out->cap ? 2 * out->cap : 16;
					out->v = realloc(out->v, out->cap * sizeof *out->v);
				}
				out->v[out->n++] = r;
				r = NULL;
			}
		}
		free(r);
		free(full);
	}
	closedir(d);
	free(dirpath);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int manifest_main(int argc, char **argv)
{
	if (argc != 3)
		return bn_usage_error("usage: bm-step manifest DIR OUT");
	const char *dir = argv[1], *outpath = argv[2];
	struct bn_err err = { 0 };
	struct names names = { 0 };
	char *buf = NULL;
	size_t len = 0;
	int rc = collect(dir, "", &names, &err);
	if (rc == 0 && names.n == 0)
		rc = bn_seterr(&err, BN_ENOENT, "%s: no checkpoint files found", dir);
	if (rc)
		goto out;
	qsort(names.v, names.n, sizeof *names.v, cmp_str);
	FILE *f = open_memstream(&buf, &len);
	fprintf(f, "# bitmake checkpoint manifest 1\n");
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		char *full = bn_path_join(dir, names.v[i]);
		char hex[BN_XXH128_HEX];
		struct stat st;
		rc = bn_xxh128_file(full, hex, &err);
		if (rc == 0 && stat(full, &st) == 0)
			fprintf(f, "file xxh128:%s %lld %s\n", hex, (long long)st.st_size, names.v[i]);
		free(full);
	}
	fclose(f);
	if (rc == 0) {
		struct bn_out o;
		rc = bn_out_open(&o, outpath, &err);
		if (rc == 0 && (rc = bn_out_write(&o, buf, len, &err)) == 0)
			rc = bn_out_commit(&o, &err);
		else
			bn_out_abort(&o);
	}
out:
	if (rc)
		bn_error("%s", err.msg);
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	free(buf);
	return rc ? 1 : 0;
}

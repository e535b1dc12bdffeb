/* The local directory in the official layout (hf-hub-protocol.md §5, _local_folder.py):
 * DIR/<path> for files, DIR/.cache/huggingface/download/<path>.metadata (commit, etag, timestamp)
 * and the resumable <b64(sha1(name.metadata))>.<etag>.incomplete temp files, so that hfget and
 * `hf download` recognise each other's work.  Invariant: every path built here stays below DIR:
 * names are checked by hf_path_check and directories are never entered through a symlink. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bn_file.h"
#include "hf.h"

void hf_short_hash(const char *name, char out[32])
{
	unsigned char md[20];
	unsigned int mdlen = 0;
	EVP_Digest(name, strlen(name), md, &mdlen, EVP_sha1(), NULL);
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < 20; i += 3) {
		uint32_t v = (uint32_t)md[i] << 16;
		if (i + 1 < 20)
			v |= (uint32_t)md[i + 1] << 8;
		if (i + 2 < 20)
			v |= md[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < 20 ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < 20 ? b64[v & 63] : '=';
	}
	out[o] = '\0';
}

static char *str_printf(const char *fmt, const char *a, const char *b, const char *c)
{
	int n = snprintf(NULL, 0, fmt, a, b, c);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s)
		snprintf(s, (size_t)n + 1, fmt, a, b, c);
	return s;
}

int hf_paths_init(struct hf_paths *p, const char *dir, const char *path, const char *etag,
		  struct bn_err *err)
{
	memset(p, 0, sizeof *p);
	p->file = str_printf("%s/%s%s", dir, path, "");
	p->meta = str_printf("%s/.cache/huggingface/download/%s%s", dir, path, ".metadata");
	p->lock = str_printf("%s/.cache/huggingface/download/%s%s", dir, path, ".lock");
	if (!p->file || !p->meta || !p->lock)
		goto nomem;
	const char *slash = strrchr(p->meta, '/');
	char hash[32];
	hf_short_hash(slash + 1, hash);
	size_t dlen = (size_t)(slash - p->meta);
	size_t cap = dlen + 1 + strlen(hash) + 1 + strlen(etag) + 32;
	p->incomplete = malloc(cap);
	p->parts = malloc(cap);
	p->parts_state = malloc(cap);
	if (!p->incomplete || !p->parts || !p->parts_state)
		goto nomem;
	snprintf(p->incomplete, cap, "%.*s/%s.%s.incomplete", (int)dlen, p->meta, hash, etag);
	snprintf(p->parts, cap, "%.*s/%s.%s.parts", (int)dlen, p->meta, hash, etag);
	snprintf(p->parts_state, cap, "%.*s/%s.%s.parts.state", (int)dlen, p->meta, hash, etag);
	return 0;
nomem:
	hf_paths_free(p);
	return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
}

void hf_paths_free(struct hf_paths *p)
{
	if (!p)
		return;
	free(p->file);
	free(p->meta);
	free(p->lock);
	free(p->incomplete);
	free(p->parts);
	free(p->parts_state);
	memset(p, 0, sizeof *p);
}

int hf_mkdirs_below(const char *dir, const char *rel, struct bn_err *err)
{
	size_t dl = strlen(dir), rl = strlen(rel);
	char *p = malloc(dl + rl + 2);
	if (!p)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	memcpy(p, dir, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, rel, rl + 1);
	int rc = 0;
	/* every '/' in rel ends a directory component (the last component is a file name) */
	for (char *s = p + dl + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		struct stat st;
		if (lstat(p, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				rc = bn_seterr(err, BN_EINVAL, "%s: is a symbolic link; refusing to write through it "
					       "(remove it, or download to another --local-dir)", p);
			else if (!S_ISDIR(st.st_mode))
				rc = bn_seterr(err, BN_EINVAL, "%s: exists and is not a directory", p);
		} else if (errno != ENOENT || (mkdir(p, 0777) < 0 && errno != EEXIST)) {
			rc = bn_seterrno(err, errno, "%s: cannot create directory", p);
		}
		*s = '/';
		if (rc)
			break;
	}
	free(p);
	return rc;
}

static const char cachedir_tag[] =
	"Signature: 8a477f597d28d172789f06886806bc55\n"
	"# This file is a cache directory tag created by huggingface_hub.\n"
	"# For information about cache directory tags, see:\n"
	"#\thttps://bford.info/cachedir/\n";

int hf_cache_dir_init(const char *dir, struct bn_err *err)
{
	int rc = hf_mkdirs_below(dir, ".cache/huggingface/download/x", err);
	if (rc)
		return rc;
	char *gi = bn_path_join(dir, ".cache/huggingface/.gitignore");
	char *tag = bn_path_join(dir, ".cache/huggingface/CACHEDIR.TAG");
	if (!gi || !tag)
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
	if (!rc && !bn_file_exists(gi))
		rc = bn_write_if_changed(gi, "*", 1, NULL, err);
	if (!rc && !bn_file_exists(tag))
		rc = bn_write_if_changed(tag, cachedir_tag, sizeof cachedir_tag - 1, NULL, err);
	free(gi);
	free(tag);
	return rc;
}

/* Copies one stripped line of s into out (false when it does not fit); advances *s. */
static bool take_line(const char **s, char *out, size_t outsz)
{
	const char *e = strchr(*s, '\n');
	size_t n = e ? (size_t)(e - *s) : strlen(*s);
	const char *b = *s;
	*s = e ? e + 1 : b + n;
	while (n && (*b == ' ' || *b == '\t' || *b == '\r')) {
		b++;
		n--;
	}
	while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\r'))
		n--;
	if (n >= outsz)
		return false;
	memcpy(out, b, n);
	out[n] = '\0';
	return true;
}

int hf_meta_read(const char *meta_path, const char *file_path, struct hf_meta *m)
{
	char *buf = NULL;
	size_t len;
	memset(m, 0, sizeof *m);
	if (!bn_file_exists(meta_path) || bn_read_file(meta_path, 64 << 10, &buf, &len, NULL))
		return 0;
	const char *s = buf;
	char ts[64];
	char *end = NULL;
	bool ok = take_line(&s, m->commit, sizeof m->commit) && take_line(&s, m->etag, sizeof m->etag) &&
		  take_line(&s, ts, sizeof ts);
	if (ok) {
		m->timestamp = strtod(ts, &end);
		ok = ts[0] && end && *end == '\0';
	}
	free(buf);
	if (!ok) {
		/* As the official client: a corrupt metadata file is removed. */
		unlink(meta_path);
		return 0;
	}
	struct stat st;
	if (stat(file_path, &st) < 0)
		return 0;
	double mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
	return mtime - 1 <= m->timestamp ? 1 : 0;
}

int hf_meta_write(const char *meta_path, const char *commit, const char *etag, struct bn_err *err)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char buf[256];
	int n = snprintf(buf, sizeof buf, "%s\n%s\n%lld.%06ld\n", commit, etag, (long long)now.tv_sec,
			 now.tv_nsec / 1000);
	struct bn_out o;
	int rc = bn_out_open(&o, meta_path, err);
	if (rc)
		return rc;
	if ((rc = bn_out_write(&o, buf, (size_t)n, err)) == 0)
		return bn_out_commit(&o, err);
	bn_out_abort(&o);
	return rc;
}

int hf_git_sha1_file(const char *path, char hex[HF_SHA1_HEX], struct bn_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bn_seterrno(err, errno, "%s: cannot open", path);
	struct stat st;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = malloc(1 << 20);
	int rc = 0;
	if (!ctx || !buf || fstat(fd, &st) < 0 || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1) {
		rc = bn_seterr(err, BN_EIO, "%s: cannot hash", path);
		goto out;
	}
	char head[64];
	int hl = snprintf(head, sizeof head, "blob %lld", (long long)st.st_size);
	EVP_DigestUpdate(ctx, head, (size_t)hl + 1); /* includes the NUL */
	for (;;) {
		ssize_t r = read(fd, buf, 1 << 20);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = bn_seterrno(err, errno, "%s: read failed", path);
			goto out;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
	}
	unsigned char md[20];
	unsigned int mdlen;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (int i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return rc;
}

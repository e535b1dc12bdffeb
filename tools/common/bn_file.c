/* mmap input, atomic output, write-if-changed (see bn_file.h). */
#include "bn_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bn_util.h"

int bn_map_open(struct bn_map *m, const char *path, struct bn_err *err)
{
	m->data = NULL;
	m->size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bn_seterrno(err, errno, "%s: cannot open", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return bn_seterrno(err, e, "%s: cannot stat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return bn_seterr(err, BN_EINVAL, "%s: not a regular file", path);
	}
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			return bn_seterrno(err, e, "%s: cannot map", path);
		}
		m->data = p;
		m->size = (size_t)st.st_size;
	}
	close(fd);
	return 0;
}

void bn_map_close(struct bn_map *m)
{
	if (m && m->data)
		munmap((void *)m->data, m->size);
	if (m) {
		m->data = NULL;
		m->size = 0;
	}
}

int bn_out_open(struct bn_out *o, const char *path, struct bn_err *err)
{
	memset(o, 0, sizeof *o);
	o->fd = -1;
	size_t len = strlen(path);
	o->path = strdup(path);
	o->tmp_path = malloc(len + 5);
	if (!o->path || !o->tmp_path) {
		bn_out_abort(o);
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	}
	memcpy(o->tmp_path, path, len);
	memcpy(o->tmp_path + len, ".tmp", 5);
	o->fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0) {
		int e = errno;
		int rc = bn_seterrno(err, e, "%s: cannot create", o->tmp_path);
		bn_out_abort(o);
		return rc;
	}
	return 0;
}

static int write_err(struct bn_out *o, int e, struct bn_err *err)
{
	if (e == ENOSPC) {
		char have[32];
		return bn_seterr(err, BN_ENOSPC,
				 "%s: disk full after writing %s; free some space and run again",
				 o->path, bn_fmt_bytes(o->offset, have, sizeof have));
	}
	return bn_seterrno(err, e, "%s: write failed", o->tmp_path);
}

int bn_out_write(struct bn_out *o, const void *buf, size_t n, struct bn_err *err)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t w = write(o->fd, p, n > (1u << 30) ? (1u << 30) : n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return write_err(o, errno, err);
		}
		p += w;
		n -= (size_t)w;
		o->offset += (uint64_t)w;
	}
	return 0;
}

int bn_out_zeros(struct bn_out *o, size_t n, struct bn_err *err)
{
	static const uint8_t zeros[4096];
	while (n > 0) {
		size_t k = n < sizeof zeros ? n : sizeof zeros;
		int rc = bn_out_write(o, zeros, k, err);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

int bn_out_pwrite(struct bn_out *o, const void *buf, size_t n, uint64_t off, struct bn_err *err)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t w = pwrite(o->fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return write_err(o, errno, err);
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static void fsync_parent_dir(const char *path)
{
	char *dir = strdup(path);
	if (!dir)
		return;
	char *slash = strrchr(dir, '/');
	const char *d = ".";
	if (slash) {
		*slash = '\0';
		d = slash == dir ? "/" : dir;
	}
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int bn_out_commit(struct bn_out *o, struct bn_err *err)
{
	int rc = 0;
	if (fsync(o->fd) < 0) {
		rc = write_err(o, errno, err);
		goto out;
	}
	if (close(o->fd) < 0) {
		o->fd = -1;
		rc = write_err(o, errno, err);
		goto out;
	}
	o->fd = -1;
	if (rename(o->tmp_path, o->path) < 0) {
		rc = bn_seterrno(err, errno, "%s: cannot rename into place", o->tmp_path);
		goto out;
	}
	fsync_parent_dir(o->path);
	free(o->tmp_path);
	o->tmp_path = NULL;
out:
	bn_out_abort(o);
	return rc;
}

void bn_out_abort(struct bn_out *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp_path)
		unlink(o->tmp_path);
	free(o->tmp_path);
	free(o->path);
	o->tmp_path = NULL;
	o->path = NULL;
}

int bn_write_if_changed(const char *path, const void *buf, size_t n, bool *changed,
			struct bn_err *err)
{
	struct bn_map old;
	struct bn_err ignored;
	if (bn_map_open(&old, path, &ignored) == 0) {
		bool same = old.size == n && (n == 0 || memcmp(old.data, buf, n) == 0);
		bn_map_close(&old);
		if (same) {
			if (changed)
				*changed = false;
			return 0;
		}
	}
	struct bn_out o;
	int rc = bn_out_open(&o, path, err);
	if (rc)
		return rc;
	rc = bn_out_write(&o, buf, n, err);
	if (rc) {
		bn_out_abort(&o);
		return rc;
	}
	rc = bn_out_commit(&o, err);
	if (rc == 0 && changed)
		*changed = true;
	return rc;
}

int bn_read_file(const char *path, size_t max_bytes, char **buf, size_t *len, struct bn_err *err)
{
	*buf = NULL;
	if (len)
		*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bn_seterrno(err, errno, "%s: cannot open", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bn_seterr(err, BN_EIO, "%s: not a readable regular file", path);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		close(fd);
		return bn_seterr(err, BN_EFORMAT, "%s: %lld bytes, more than the %zu this file may have",
				 path, (long long)st.st_size, max_bytes);
	}
	size_t size = (size_t)st.st_size;
	char *p = malloc(size + 1);
	if (!p) {
		close(fd);
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	}
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, p + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			free(p);
			close(fd);
			return bn_seterrno(err, e, "%s: read failed", path);
		}
		got += (size_t)r;
	}
	close(fd);
	p[size] = '\0';
	*buf = p;
	if (len)
		*len = size;
	return 0;
}

int bn_mkdir_p(const char *path, struct bn_err *err)
{
	char *p = strdup(path);
	if (!p)
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				int rc = bn_seterrno(err, e, "%s: cannot create directory", p);
				free(p);
				return rc;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return 0;
}

uint64_t bn_free_disk(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return UINT64_MAX;
	struct statvfs vfs;
	for (;;) {
		if (statvfs(p, &vfs) == 0) {
			free(p);
			return (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
		}
		char *slash = strrchr(p, '/');
		if (!slash) {
			if (strcmp(p, ".") == 0)
				break;
			strcpy(p, ".");
			continue;
		}
		if (slash == p) {
			if (p[1] == '\0')
				break;
			p[1] = '\0';
			continue;
		}
		*slash = '\0';
	}
	free(p);
	return UINT64_MAX;
}

char *bn_path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	bool slash = a > 0 && dir[a - 1] != '/';
	char *p = malloc(a + slash + b + 1);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (slash)
		p[a] = '/';
	memcpy(p + a + slash, name, b + 1);
	return p;
}

bool bn_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

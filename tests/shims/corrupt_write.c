/* LD_PRELOAD shim for the read-back tests: a disk that silently corrupts data.  The byte at
 * file offset CORRUPT_AT of the first file whose path ends in CORRUPT_SUFFIX (default ".tmp")
 * is written with its lowest bit flipped; the caller's buffer is left alone, and every other
 * write passes through unchanged. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int is_target(int fd)
{
	const char *suffix = getenv("CORRUPT_SUFFIX");
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	suffix = suffix ? suffix : ".tmp";
	size_t ls = strlen(suffix);
	return (size_t)n >= ls && strcmp(path + n - ls, suffix) == 0;
}

/* A copy of buf with the target byte flipped when [off, off+n) holds it, else NULL. */
static void *corrupted(int fd, const void *buf, size_t n, off_t off)
{
	const char *v = getenv("CORRUPT_AT");
	if (!v || off < 0)
		return NULL;
	long long at = atoll(v);
	if (at < off || at >= off + (long long)n || !is_target(fd))
		return NULL;
	unsigned char *copy = malloc(n);
	if (!copy)
		return NULL;
	memcpy(copy, buf, n);
	copy[at - off] ^= 1;
	return copy;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	void *copy = corrupted(fd, buf, n, lseek(fd, 0, SEEK_CUR));
	ssize_t r = real(fd, copy ? copy : buf, n);
	free(copy);
	return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	void *copy = corrupted(fd, buf, n, off);
	ssize_t r = real(fd, copy ? copy : buf, n, off);
	free(copy);
	return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

/* LD_PRELOAD shim for hfget's disk-full test: writes to download temp files under
 * .cache/huggingface/download/ fail with ENOSPC once ENOSPC_AFTER bytes have been written to
 * them (a partial write first, as a filling disk does).  Every other write passes through. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long long written;

static int is_download(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return strstr(path, "/.cache/huggingface/download/") &&
	       (strstr(path, ".incomplete") || strstr(path, ".parts"));
}

/* How many of n bytes may still be written: -1 means none (ENOSPC).  *counted says whether the
 * write goes to a download temp file. */
static ssize_t budget(int fd, size_t n, int *counted)
{
	const char *v = getenv("ENOSPC_AFTER");
	*counted = v && is_download(fd);
	if (!*counted)
		return (ssize_t)n;
	long long limit = atoll(v);
	if (written >= limit)
		return -1;
	if ((long long)n > limit - written)
		n = (size_t)(limit - written);
	return (ssize_t)n;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	int counted;
	ssize_t b = budget(fd, n, &counted);
	if (b < 0) {
		errno = ENOSPC;
		return -1;
	}
	ssize_t r = real(fd, buf, (size_t)b, off);
	if (r > 0 && counted)
		written += r;
	return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	int counted;
	ssize_t b = budget(fd, n, &counted);
	if (b < 0) {
		errno = ENOSPC;
		return -1;
	}
	ssize_t r = real(fd, buf, (size_t)b);
	if (r > 0 && counted)
		written += r;
	return r;
}

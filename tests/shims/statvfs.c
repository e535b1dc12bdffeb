/* LD_PRELOAD shim for the free-disk tests: statvfs and fstatvfs (and their 64-bit names) report
 * FAKE_FREE_BYTES bytes free, counted in 1-byte fragments so that any number is exact; the other
 * fields are the real ones.  Without FAKE_FREE_BYTES every call passes through unchanged. */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/statvfs.h>

static void fake(struct statvfs *v)
{
	const char *s = getenv("FAKE_FREE_BYTES");
	if (!s)
		return;
	unsigned long long n = strtoull(s, NULL, 10);
	v->f_frsize = 1;
	v->f_bavail = v->f_bfree = (fsblkcnt_t)n;
	if (v->f_blocks < v->f_bfree)
		v->f_blocks = v->f_bfree;
}

int statvfs(const char *path, struct statvfs *v)
{
	static int (*real)(const char *, struct statvfs *);
	if (!real)
		real = (int (*)(const char *, struct statvfs *))dlsym(RTLD_NEXT, "statvfs");
	int r = real(path, v);
	if (r == 0)
		fake(v);
	return r;
}

int fstatvfs(int fd, struct statvfs *v)
{
	static int (*real)(int, struct statvfs *);
	if (!real)
		real = (int (*)(int, struct statvfs *))dlsym(RTLD_NEXT, "fstatvfs");
	int r = real(fd, v);
	if (r == 0)
		fake(v);
	return r;
}

/* The 64-bit names, which a _FILE_OFFSET_BITS=64 build calls; on LP64 glibc both structs have
 * the same layout. */
_Static_assert(sizeof(struct statvfs64) == sizeof(struct statvfs), "statvfs64 is statvfs");

int statvfs64(const char *path, struct statvfs64 *v)
{
	return statvfs(path, (struct statvfs *)v);
}

int fstatvfs64(int fd, struct statvfs64 *v)
{
	return fstatvfs(fd, (struct statvfs *)v);
}

/* Helpers shared by the Criterion tests: locating the tree, scratch directories, running the
 * built tools and capturing their output. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* $BITMAKE_BIN/<tool> (malloc'd). */
char *tu_bin(const char *tool);
/* $BITMAKE_SHARED/<rel> (malloc'd), e.g. tu_shared("testdata/reference/tv-f32.f32.gguf.xz"). */
char *tu_shared(const char *rel);
/* $BITMAKE_ROOT/<rel> (malloc'd). */
char *tu_root(const char *rel);
/* A fresh, empty directory under $BITMAKE_TMP named after the caller (malloc'd). */
char *tu_mkdtemp(const char *name);

/* Result of running a command. out/err are NUL-terminated (malloc'd, caller frees with tu_run_free). */
struct tu_run {
	int status; /* exit status, or 128+signal */
	char *out;
	char *err;
};
/* Runs argv (argv[0] resolved through PATH) with extra environment entries "K=V" (NULL-terminated,
 * may be NULL) and an optional working directory; stdin is /dev/null. */
struct tu_run tu_run(const char *const *argv, const char *const *env, const char *cwd);
/* Runs a shell command line (sh -c). */
struct tu_run tu_sh(const char *cmdline);
void tu_run_free(struct tu_run *r);

/* Reads a whole file (malloc'd, NUL-terminated); NULL if it cannot be read. */
char *tu_read_file(const char *path, size_t *len);
int tu_write_file(const char *path, const void *buf, size_t len);
/* Lowercase hex SHA-256 of a file, into hex[65]; 0 on success. */
int tu_sha256_file(const char *path, char hex[65]);

#endif

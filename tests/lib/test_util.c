/* Test helpers (see tests/test_util.h). */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_hash.h"

static char *env_join(const char *var, const char *fallback, const char *rel)
{
	const char *base = getenv(var);
	if (!base || !*base)
		base = fallback;
	return bn_path_join(base, rel);
}

char *tu_bin(const char *tool)
{
	return env_join("BITMAKE_BIN", "build/bin", tool);
}

char *tu_shared(const char *rel)
{
	return env_join("BITMAKE_SHARED", "../shared", rel);
}

char *tu_root(const char *rel)
{
	return env_join("BITMAKE_ROOT", ".", rel);
}

char *tu_mkdtemp(const char *name)
{
	const char *base = getenv("BITMAKE_TMP");
	if (!base || !*base)
		base = "build/tests/tmp";
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.%ld", base, name, (long)getpid());
	char cmd[8300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
	if (system(cmd) != 0)
		return NULL;
	return strdup(path);
}

static void drain(int fd, char **buf, size_t *len, size_t *cap, int *open_)
{
	char tmp[65536];
	ssize_t n = read(fd, tmp, sizeof tmp);
	if (n <= 0) {
		if (n == 0 || errno != EINTR)
			*open_ = 0;
		return;
	}
	if (*len + (size_t)n + 1 > *cap) {
		*cap = (*len + (size_t)n + 1) * 2;
		*buf = realloc(*buf, *cap);
	}
	memcpy(*buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = '\0';
}

struct tu_run tu_run(const char *const *argv, const char *const *env, const char *cwd)
{
	struct tu_run r = { -1, calloc(1, 1), calloc(1, 1) };
	int po[2], pe[2];
	if (pipe(po) < 0 || pipe(pe) < 0)
		return r;
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		if (cwd && chdir(cwd) < 0)
			_exit(126);
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	size_t ol = 0, oc = 1, el = 0, ec = 1;
	int oo = 1, eo = 1;
	while (oo || eo) {
		struct pollfd fds[2] = { { oo ? po[0] : -1, POLLIN, 0 }, { eo ? pe[0] : -1, POLLIN, 0 } };
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (oo && fds[0].revents)
			drain(po[0], &r.out, &ol, &oc, &oo);
		if (eo && fds[1].revents)
			drain(pe[0], &r.err, &el, &ec, &eo);
	}
	close(po[0]);
	close(pe[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

struct tu_run tu_sh(const char *cmdline)
{
	const char *argv[] = { "/bin/sh", "-c", cmdline, NULL };
	return tu_run(argv, NULL, NULL);
}

void tu_run_free(struct tu_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

char *tu_read_file(const char *path, size_t *len)
{
	char *buf;
	if (bn_read_file(path, (size_t)1 << 34, &buf, len, NULL))
		return NULL;
	return buf;
}

int tu_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(buf, 1, len, f);
	return fclose(f) == 0 && w == len ? 0 : -1;
}

int tu_sha256_file(const char *path, char hex[65])
{
	return bn_sha256_file(path, hex, NULL);
}

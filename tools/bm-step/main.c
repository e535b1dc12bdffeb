/* bm-step: runs one build or pipeline command for make, with content stamps and per-step logs.
 *
 * Make decides by mtimes; bm-step then decides by content.  It hashes (XXH3-128) the command and
 * every input, and skips the command when the key equals the one recorded when the target was
 * last built and the target still holds the bytes it was built with: it only touches the target.
 * So restoring build/ and models/ from a cache (fresh mtimes, same bytes) rebuilds nothing.
 * The stamp lives next to the target as ".<name>.cmd" and doubles as a makefile fragment
 * (savedcmd_<target> := <command>) that mk/rules.mk reads to rebuild a target whose command
 * changed, in the manner of Kbuild's if_changed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bn_err.h"
#include "bn_file.h"
#include "bn_hash.h"
#include "bn_log.h"

#define STAMP_VERSION "bm-step 1"
#define MAX_INPUTS 4096

struct input {
	const char *path;
	long long size, mtime_ns, ino; /* for the hash cache; -1 if the file is missing */
	char hash[BN_XXH128_HEX];
	bool changed; /* differs from the stamp (for --why) */
};

/* What the stamp file recorded about the last successful run. */
struct stamp {
	char key[BN_XXH128_HEX];
	char cmd_hash[BN_XXH128_HEX];
	char target_hash[BN_XXH128_HEX];
	struct cached {
		char *path;
		long long size, mtime_ns, ino;
		char hash[BN_XXH128_HEX];
	} *cache;
	size_t ncache;
};

struct opts {
	const char *target, *cmd, *log, *title;
	bool verbose, why;
	struct input inputs[MAX_INPUTS];
	size_t ninputs;
};

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
	got_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bm-step --target FILE --cmd COMMAND [--log FILE] [--title TEXT] [--verbose] [--why]\n"
		"               [--] INPUT...\n"
		"       bm-step manifest DIR OUT\n"
		"Runs COMMAND with /bin/sh unless FILE is up to date by content: same command, same\n"
		"input bytes and FILE unchanged since it was built (then FILE is only touched).\n"
		"  --log FILE    append the command's output to FILE; on failure print its last error line\n"
		"  --title TEXT  line printed when the command runs (e.g. '>>> tiny convert')\n"
		"  --verbose     print the command before running it (make V=1)\n"
		"  --why         say why the command runs or is skipped (make V=2)\n");
}

static char *stamp_path(const char *target)
{
	const char *slash = strrchr(target, '/');
	size_t dirlen = slash ? (size_t)(slash - target + 1) : 0;
	const char *base = target + dirlen;
	size_t n = dirlen + 1 + strlen(base) + 5;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%.*s.%s.cmd", (int)dirlen, target, base);
	return p;
}

static void read_stamp(const char *path, struct stamp *st)
{
	memset(st, 0, sizeof *st);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	bool versioned = false;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		char hex[BN_XXH128_HEX], pathbuf[4096];
		long long a, b, c;
		if (strcmp(line, "# " STAMP_VERSION) == 0)
			versioned = true;
		else if (sscanf(line, "# key %32s", hex) == 1)
			snprintf(st->key, sizeof st->key, "%s", hex);
		else if (sscanf(line, "# cmd %32s", hex) == 1)
			snprintf(st->cmd_hash, sizeof st->cmd_hash, "%s", hex);
		else if (sscanf(line, "# target %32s", hex) == 1)
			snprintf(st->target_hash, sizeof st->target_hash, "%s", hex);
		else if (sscanf(line, "# in %lld %lld %lld %32s %4095[^\n]", &a, &b, &c, hex, pathbuf) == 5) {
			struct cached *n = realloc(st->cache, (st->ncache + 1) * sizeof *n);
			if (!n)
				break;
			st->cache = n;
			n[st->ncache] = (struct cached){ strdup(pathbuf), a, b, c, "" };
			snprintf(n[st->ncache].hash, BN_XXH128_HEX, "%s", hex);
			st->ncache++;
		}
	}
	free(line);
	fclose(f);
	if (!versioned) /* a stamp from another format: treat as absent */
		st->key[0] = st->target_hash[0] = '\0';
}

static void free_stamp(struct stamp *st)
{
	for (size_t i = 0; i < st->ncache; i++)
		free(st->cache[i].path);
	free(st->cache);
}

static int stat_file(const char *path, long long *size, long long *mtime_ns, long long *ino)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return -1;
	*size = (long long)sb.st_size;
	*mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
	*ino = (long long)sb.st_ino;
	return 0;
}

/* Hash one input, reusing the stamp's hash when size, mtime and inode are unchanged (as git's
 * index does): a normal incremental run never rereads a multi-GB model. */
static int hash_input(struct input *in, const struct stamp *st, struct bn_err *err)
{
	if (stat_file(in->path, &in->size, &in->mtime_ns, &in->ino) < 0) {
		in->size = in->mtime_ns = in->ino = -1;
		snprintf(in->hash, sizeof in->hash, "missing");
		return 0;
	}
	for (size_t i = 0; i < st->ncache; i++) {
		const struct cached *c = &st->cache[i];
		if (strcmp(c->path, in->path) == 0 && c->size == in->size &&
		    c->mtime_ns == in->mtime_ns && c->ino == in->ino) {
			memcpy(in->hash, c->hash, sizeof in->hash);
			return 0;
		}
	}
	struct stat sb;
	if (stat(in->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		snprintf(in->hash, sizeof in->hash, "directory");
		return 0;
	}
	return bn_xxh128_file(in->path, in->hash, err);
}

static void compute_key(const struct opts *o, char key[BN_XXH128_HEX], char cmd_hash[BN_XXH128_HEX])
{
	XXH3_state_t *s = XXH3_createState();
	XXH3_128bits_reset(s);
	XXH3_128bits_update(s, STAMP_VERSION, sizeof STAMP_VERSION);
	XXH3_128bits_update(s, o->cmd, strlen(o->cmd) + 1);
	for (size_t i = 0; i < o->ninputs; i++) {
		XXH3_128bits_update(s, o->inputs[i].path, strlen(o->inputs[i].path) + 1);
		XXH3_128bits_update(s, o->inputs[i].hash, strlen(o->inputs[i].hash) + 1);
	}
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s));
	XXH3_freeState(s);
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		key[2 * i] = digits[c.digest[i] >> 4];
		key[2 * i + 1] = digits[c.digest[i] & 15];
	}
	key[32] = '\0';
	bn_xxh128_buf(o->cmd, strlen(o->cmd), cmd_hash);
}

/* Writes the command so that `savedcmd_T := ...` in make yields exactly o->cmd. */
static void write_make_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '$')
			fputs("$$", f);
		else if (*s == '#')
			fputs("\\#", f);
		else if (*s == '\n')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

static int write_stamp(const char *path, const struct opts *o, const char *key, const char *cmd_hash,
		       const char *target_hash, struct bn_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	fprintf(f, "savedcmd_%s := ", o->target);
	write_make_escaped(f, o->cmd);
	fprintf(f, "\n# " STAMP_VERSION "\n# key %s\n# cmd %s\n# target %s\n", key, cmd_hash,
		target_hash);
	for (size_t i = 0; i < o->ninputs; i++) {
		const struct input *in = &o->inputs[i];
		if (in->size >= 0)
			fprintf(f, "# in %lld %lld %lld %s %s\n", in->size, in->mtime_ns, in->ino,
				in->hash, in->path);
	}
	fclose(f);
	int rc = bn_write_if_changed(path, buf, len, NULL, err);
	free(buf);
	return rc;
}

static void mkdir_parent(const char *path)
{
	char *d = strdup(path);
	char *slash = d ? strrchr(d, '/') : NULL;
	if (slash && slash != d) {
		*slash = '\0';
		bn_mkdir_p(d, NULL);
	}
	free(d);
}

/* The most useful line of a failed command's output: the last one that mentions an error,
 * else the last non-empty one. */
static void last_error_line(const char *log, long long from, char *out, size_t outsz)
{
	out[0] = '\0';
	FILE *f = fopen(log, "r");
	if (!f)
		return;
	fseeko(f, (off_t)from, SEEK_SET);
	char line[2048], last[2048] = "", lasterr[2048] = "", tagged[2048] = "";
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		snprintf(last, sizeof last, "%s", line);
		if (strstr(line, " generated.")) /* a compiler's "N errors generated." summary */
			continue;
		if (strcasestr(line, "error:") || strcasestr(line, "fatal:"))
			snprintf(tagged, sizeof tagged, "%s", line);
		else if (strcasestr(line, "error") || strcasestr(line, "fatal") || strcasestr(line, "failed") ||
			 strcasestr(line, "undefined reference"))
			snprintf(lasterr, sizeof lasterr, "%s", line);
	}
	fclose(f);
	snprintf(out, outsz, "%s", tagged[0] ? tagged : lasterr[0] ? lasterr : last);
}

static void print_log_tail(const char *log, long long from, int nlines)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return;
	fseeko(f, (off_t)from, SEEK_SET);
	char **ring = calloc((size_t)nlines, sizeof *ring);
	char line[2048];
	int n = 0;
	while (ring && fgets(line, sizeof line, f)) {
		free(ring[n % nlines]);
		ring[n % nlines] = strdup(line);
		n++;
	}
	fclose(f);
	for (int i = n > nlines ? n - nlines : 0; ring && i < n; i++)
		fprintf(stderr, "    | %s", ring[i % nlines]);
	for (int i = 0; ring && i < nlines; i++)
		free(ring[i]);
	free(ring);
}

static int run_command(const struct opts *o)
{
	long long log_start = 0;
	int logfd = -1;
	if (o->log) {
		mkdir_parent(o->log);
		logfd = open(o->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (logfd < 0) {
			bn_error("%s: cannot open log: %s", o->log, strerror(errno));
			return 1;
		}
		struct stat sb;
		if (fstat(logfd, &sb) == 0)
			log_start = (long long)sb.st_size;
		char head[64];
		time_t now = time(NULL);
		strftime(head, sizeof head, "%Y-%m-%d %H:%M:%S", localtime(&now));
		dprintf(logfd, "==> %s %s\n$ %s\n", head, o->target, o->cmd);
	}
	if (o->verbose)
		printf("%s\n", o->cmd);
	fflush(stdout);

	/* Ctrl+C reaches the whole foreground process group, the child included; we only wait for
	 * it to clean up (tools remove their temp files) and then report the interruption. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	pid_t pid = fork();
	if (pid < 0) {
		bn_error("%s: cannot fork: %s", o->target, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (logfd >= 0) {
			dup2(logfd, STDOUT_FILENO);
			dup2(logfd, STDERR_FILENO);
		}
		execl("/bin/sh", "sh", "-c", o->cmd, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
		if (got_signal)
			kill(pid, got_signal); /* also reaches a child in another process group */
	}
	if (logfd >= 0)
		close(logfd);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !got_signal)
		return 0;

	const char *what = o->title ? o->title : o->target;
	while (*what == ' ' || *what == '>')
		what++;
	if (got_signal || (WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM))) {
		fprintf(stderr, "bm-step: %s: interrupted; run make again to resume\n", what);
		return 130;
	}
	char line[2048] = "";
	if (o->log)
		last_error_line(o->log, log_start, line, sizeof line);
	if (WIFSIGNALED(status))
		fprintf(stderr, "bm-step: %s: failed: killed by signal %d (%s)%s%s\n", what,
			WTERMSIG(status), strsignal(WTERMSIG(status)),
			WTERMSIG(status) == SIGKILL ? "; out of memory? see dmesg" : "",
			line[0] ? "" : "");
	else
		fprintf(stderr, "bm-step: %s: failed (exit %d)%s%s\n", what, WEXITSTATUS(status),
			line[0] ? ": " : "", line);
	if (o->log) {
		if (o->verbose)
			print_log_tail(o->log, log_start, 20);
		fprintf(stderr, "bm-step: full log: %s\n", o->log);
	}
	return 1;
}

/* Decides by content whether the command must run, runs it and records the new stamp.
 * Returns the exit status. */
static int step(struct opts *o, const char *spath, const struct stamp *st)
{
	struct bn_err err = { 0 };
	for (size_t i = 0; i < o->ninputs; i++) {
		if (hash_input(&o->inputs[i], st, &err)) {
			bn_error("%s", err.msg);
			return 1;
		}
	}
	char key[BN_XXH128_HEX], cmd_hash[BN_XXH128_HEX];
	compute_key(o, key, cmd_hash);

	/* Skip when the key matches and the target still holds the bytes it was built with. */
	const char *reason = NULL;
	char target_hash[BN_XXH128_HEX] = "";
	if (!bn_file_exists(o->target))
		reason = "target missing";
	else if (!st->key[0])
		reason = "no stamp from an earlier build";
	else if (strcmp(st->cmd_hash, cmd_hash) != 0)
		reason = "command changed";
	else if (strcmp(st->key, key) != 0)
		reason = "inputs changed";
	else if (bn_xxh128_file(o->target, target_hash, &err) || strcmp(target_hash, st->target_hash) != 0)
		reason = "target modified since it was built";
	if (!reason) {
		if (o->why)
			printf("  SKIP    %s: inputs and command unchanged by content; touching it\n", o->target);
		if (utimensat(AT_FDCWD, o->target, NULL, 0) < 0) {
			bn_error("%s: cannot touch: %s", o->target, strerror(errno));
			return 1;
		}
		return 0;
	}
	if (o->why) {
		printf("  WHY     %s: %s", o->target, reason);
		if (strcmp(reason, "inputs changed") == 0) {
			const char *sep = ": ";
			for (size_t i = 0; i < o->ninputs; i++) {
				bool known = false;
				for (size_t j = 0; j < st->ncache; j++)
					if (strcmp(st->cache[j].path, o->inputs[i].path) == 0) {
						known = strcmp(st->cache[j].hash, o->inputs[i].hash) == 0;
						break;
					}
				if (!known) {
					printf("%s%s", sep, o->inputs[i].path);
					sep = ", ";
				}
			}
		}
		printf("\n");
	}
	if (o->title)
		printf("%s\n", o->title);
	mkdir_parent(o->target);
	int rc = run_command(o);
	if (rc)
		return rc;
	if (!bn_file_exists(o->target)) {
		bn_error("%s: the command succeeded but did not create it", o->target);
		return 1;
	}
	if (bn_xxh128_file(o->target, target_hash, &err) ||
	    write_stamp(spath, o, key, cmd_hash, target_hash, &err)) {
		bn_error("%s", err.msg);
		return 1;
	}
	return 0;
}

int manifest_main(int argc, char **argv);

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	if (argc > 1 && strcmp(argv[1], "manifest") == 0)
		return manifest_main(argc - 1, argv + 1);
	static struct opts o;
	bool dashdash = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!dashdash && a[0] == '-' && a[1] == '-') {
			if (strcmp(a, "--") == 0) {
				dashdash = true;
			} else if (strcmp(a, "--help") == 0) {
				usage(stdout);
				return 0;
			} else if (strcmp(a, "--verbose") == 0) {
				o.verbose = true;
			} else if (strcmp(a, "--why") == 0) {
				o.why = true;
			} else if (i + 1 < argc && strcmp(a, "--target") == 0) {
				o.target = argv[++i];
			} else if (i + 1 < argc && strcmp(a, "--cmd") == 0) {
				o.cmd = argv[++i];
			} else if (i + 1 < argc && strcmp(a, "--log") == 0) {
				o.log = argv[++i];
			} else if (i + 1 < argc && strcmp(a, "--title") == 0) {
				o.title = argv[++i];
			} else {
				return bn_usage_error("unknown option or missing value: %s", a);
			}
		} else {
			if (o.ninputs == MAX_INPUTS)
				return bn_usage_error("more than %d inputs", MAX_INPUTS);
			o.inputs[o.ninputs++].path = a;
		}
	}
	if (!o.target || !o.cmd)
		return bn_usage_error("--target and --cmd are required");

	char *spath = stamp_path(o.target);
	if (!spath)
		return 1;
	struct stamp st;
	read_stamp(spath, &st);
	int rc = step(&o, spath, &st);
	free_stamp(&st);
	free(spath);
	return rc;
}

/* The Make frame end to end on the synthetic `tiny` model: a second make does nothing, new
 * mtimes on unchanged content rebuild nothing, an interrupted run resumes to the same bytes,
 * and bad settings fail with a clear message.  Every test uses its own MODEL_DIR and LOG_DIR;
 * the tools come from the shared build/ that `make test` has just built. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bn_util.h"
#include "test_util.h"

static char root[4096];

static void setup(void)
{
	char *r = tu_root("");
	snprintf(root, sizeof root, "%s", r);
	free(r);
}

TestSuite(pipeline, .init = setup);

/* make -C ROOT MODEL_DIR=DIR/tiny LOG_DIR=DIR/logs ARGS */
static struct tu_run make_in(const char *dir, const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "make -s -C '%s' MODEL=tiny MODEL_DIR='%s/tiny' LOG_DIR='%s/logs' %s", root,
		 dir, dir, args);
	return tu_sh(cmd);
}

/* sha256 of every pipeline output under DIR/tiny (not stamps, not logs), one "hash  name" per line. */
static char *output_hashes(const char *dir)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
		 "cd '%s/tiny' && find . -type f ! -name '.*' ! -path './.cache/*' ! -name '*.tmp' | LC_ALL=C sort | xargs sha256sum",
		 dir);
	struct tu_run r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	free(r.err);
	return r.out;
}

Test(pipeline, a_second_make_runs_nothing)
{
	char *dir = tu_mkdtemp("pipeline_noop");
	struct tu_run r = make_in(dir, "");
	cr_assert(eq(int, r.status, 0), "first make failed: %s%s", r.out, r.err);
	cr_assert(strstr(r.out, ">>> tiny download") != NULL, "%s", r.out);
	tu_run_free(&r);

	r = make_in(dir, "-q");
	cr_assert(eq(int, r.status, 0), "make -q says something is out of date: %s%s", r.out, r.err);
	tu_run_free(&r);
	r = make_in(dir, "V=2");
	cr_assert(eq(int, r.status, 0));
	cr_assert(eq(str, r.out, ""), "a second make ran commands: %s", r.out);
	tu_run_free(&r);
	free(dir);
}

Test(pipeline, new_mtimes_on_unchanged_content_rebuild_nothing)
{
	char *dir = tu_mkdtemp("pipeline_touch");
	struct tu_run r = make_in(dir, "");
	cr_assert(eq(int, r.status, 0), "%s%s", r.out, r.err);
	tu_run_free(&r);
	char *before = output_hashes(dir);

	/* What a CI cache restore does: every file gets a new mtime, in an arbitrary order. */
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && wc -c < '%s/logs/download_model.log' > '%s/loglen' && "
		 "find '%s/tiny' build/bin build/lib build/obj build/gen -type f 2>/dev/null | shuf | "
		 "while read f; do touch \"$f\"; done",
		 root, dir, dir, dir);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);

	r = make_in(dir, "V=2");
	cr_assert(eq(int, r.status, 0), "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, ">>>") == NULL && strstr(r.out, "WHY") == NULL && strstr(r.out, "  LD ") == NULL,
		  "something was rebuilt after only mtimes changed:\n%s", r.out);
	tu_run_free(&r);
	char *after = output_hashes(dir);
	cr_assert(eq(str, after, before));
	snprintf(cmd, sizeof cmd, "test \"$(wc -c < '%s/logs/download_model.log')\" = \"$(cat '%s/loglen')\"", dir, dir);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "the download log grew: a step ran");
	tu_run_free(&r);
	/* And now make is quiet again. */
	r = make_in(dir, "-q");
	cr_assert(eq(int, r.status, 0));
	tu_run_free(&r);
	free(before);
	free(after);
	free(dir);
}

/* Starts make in its own process group, kills the whole group with sig after delay_s seconds
 * (as Ctrl+C or an OOM killer would), and waits for it. */
static void make_and_kill(const char *dir, double delay_s, int sig)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		char args[4096];
		snprintf(args, sizeof args, "MODEL_DIR=%s/tiny", dir);
		char logs[4096];
		snprintf(logs, sizeof logs, "LOG_DIR=%s/logs", dir);
		int devnull = open("/dev/null", 1);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("make", "make", "-s", "-C", root, "MODEL=tiny", args, logs, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	struct timespec ts = { (time_t)delay_s, (long)((delay_s - (double)(time_t)delay_s) * 1e9) };
	nanosleep(&ts, NULL);
	kill(-pid, sig);
	int st;
	waitpid(pid, &st, 0);
	/* Orphans of a SIGKILLed make may still be finishing: wait until the group is empty. */
	for (int i = 0; i < 600 && kill(-pid, 0) == 0; i++)
		usleep(50000);
}

Test(pipeline, an_interrupted_run_resumes_to_the_same_bytes)
{
	char *ref = tu_mkdtemp("pipeline_ref");
	double t0 = bn_now();
	struct tu_run r = make_in(ref, "");
	double full = bn_now() - t0;
	cr_assert(eq(int, r.status, 0), "%s%s", r.out, r.err);
	tu_run_free(&r);
	char *want = output_hashes(ref);

	char *dir = tu_mkdtemp("pipeline_kill");
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int round = 0; round < 6; round++) {
		double at = full * (double)rand() / RAND_MAX;
		make_and_kill(dir, at, round % 2 ? SIGKILL : SIGINT);
	}
	r = make_in(dir, "");
	cr_assert(eq(int, r.status, 0), "resuming failed: %s%s", r.out, r.err);
	tu_run_free(&r);
	char *got = output_hashes(dir);
	cr_assert(eq(str, got, want));
	free(got);
	free(want);
	free(dir);
	free(ref);
}

Test(pipeline, bad_settings_fail_with_a_clear_message)
{
	char *dir = tu_mkdtemp("pipeline_bad");
	struct tu_run r = make_in(dir, "QUANT=q4_0");
	cr_assert(ne(int, r.status, 0));
	cr_assert(strstr(r.err, "QUANT=q4_0 is not supported on") != NULL && strstr(r.err, "i2_s") != NULL, "%s", r.err);
	tu_run_free(&r);

	r = make_in(dir, "ARCH=sparc");
	cr_assert(ne(int, r.status, 0));
	cr_assert(strstr(r.err, "unknown ARCH 'sparc'") != NULL, "%s", r.err);
	tu_run_free(&r);

	char cmd[8192];
	snprintf(cmd, sizeof cmd, "make -s -C '%s' MODEL=no-such-model MODEL_DIR='%s/x' LOG_DIR='%s/logs' download", root,
		 dir, dir);
	r = tu_sh(cmd);
	cr_assert(ne(int, r.status, 0));
	cr_assert(strstr(r.err, "unknown model 'no-such-model'") != NULL && strstr(r.err, "bitnet_b1_58-large") != NULL,
		  "%s", r.err);
	tu_run_free(&r);
	free(dir);
}

Test(pipeline, a_failing_step_names_itself_and_its_log)
{
	/* A model directory that cannot be created makes the download step fail. */
	char *dir = tu_mkdtemp("pipeline_fail");
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "touch '%s/tiny'", dir); /* a file where the directory should be */
	struct tu_run r = tu_sh(cmd);
	tu_run_free(&r);
	snprintf(cmd, sizeof cmd, "make -s -C '%s' MODEL=tiny MODEL_DIR='%s/tiny/m' LOG_DIR='%s/logs'", root, dir, dir);
	r = tu_sh(cmd);
	cr_assert(ne(int, r.status, 0));
	cr_assert(strstr(r.out, ">>> tiny download") != NULL, "%s", r.out);
	cr_assert(strstr(r.err, "tiny download: failed") != NULL, "%s", r.err);
	cr_assert(strstr(r.err, "/logs/download_model.log") != NULL, "%s", r.err);
	tu_run_free(&r);
	free(dir);
}

/* make install puts every user-facing tool, runnable, under DESTDIR/PREFIX/bin and nothing
 * else; make uninstall takes exactly those away again. */
Test(pipeline, install_and_uninstall_the_tools)
{
	static const char *const tools[] = { "bitnet-run", "hfget", "gguf-convert", "i2s-quantize",
					     "lutgen", "gguf-dump", "mkmodel", "bitnet-kernels" };
	char *dir = tu_mkdtemp("pipeline_install");
	char args[1024], cmd[4700];
	snprintf(args, sizeof args, "install DESTDIR='%s/stage' PREFIX=/opt/bm", dir);
	struct tu_run r = make_in(dir, args);
	cr_assert(eq(int, r.status, 0), "make install: %s%s", r.out, r.err);
	tu_run_free(&r);
	snprintf(cmd, sizeof cmd, "ls '%s/stage/opt/bm/bin' | wc -l", dir);
	r = tu_sh(cmd);
	cr_assert(eq(int, atoi(r.out), (int)(sizeof tools / sizeof tools[0])), "%s", r.out);
	tu_run_free(&r);
	for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
		snprintf(cmd, sizeof cmd, "'%s/stage/opt/bm/bin/%s' --help", dir, tools[i]);
		r = tu_sh(cmd);
		cr_assert(eq(int, r.status, 0), "%s --help: %s", tools[i], r.err);
		cr_assert(strstr(r.out, "usage") || strstr(r.out, "Usage"), "%s: %s", tools[i], r.out);
		tu_run_free(&r);
	}
	snprintf(args, sizeof args, "uninstall DESTDIR='%s/stage' PREFIX=/opt/bm", dir);
	r = make_in(dir, args);
	cr_assert(eq(int, r.status, 0), "make uninstall: %s%s", r.out, r.err);
	tu_run_free(&r);
	snprintf(cmd, sizeof cmd, "ls -A '%s/stage/opt/bm/bin' | wc -l", dir);
	r = tu_sh(cmd);
	cr_assert(eq(int, atoi(r.out), 0), "left after uninstall: %s", r.out);
	tu_run_free(&r);
	free(dir);
}

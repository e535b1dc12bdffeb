/* bm-step, the content-stamp runner behind every make rule: skip on same content, rebuild on a
 * changed command or input, make-readable saved commands, failure reports. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static char *dir;
static char bmstep[4096];

static void setup(void)
{
	dir = tu_mkdtemp("bm_step");
	char *b = tu_bin("bm-step");
	snprintf(bmstep, sizeof bmstep, "%s", b);
	free(b);
}

static void teardown(void)
{
	free(dir);
}

TestSuite(bm_step, .init = setup, .fini = teardown);

/* Runs bm-step in `dir` with a shell-quoted argument string. */
static struct tu_run step(const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, bmstep, args);
	return tu_sh(cmd);
}

static void sh(const char *fmt, const char *arg)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, fmt, arg, arg, arg, arg, arg, arg);
	struct tu_run r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s: %s", cmd, r.err);
	tu_run_free(&r);
}

static int count_lines(const char *path)
{
	char *s = tu_read_file(path, NULL);
	int n = 0;
	for (char *p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

#define BUILD_OUT "--target out --cmd 'cat in >> runs; cat in > out' in"

Test(bm_step, runs_once_then_skips_when_only_mtimes_change)
{
	sh("echo data > '%s/in'", dir);
	struct tu_run r = step(BUILD_OUT);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	char runs[4096];
	snprintf(runs, sizeof runs, "%s/runs", dir);
	cr_assert(eq(int, count_lines(runs), 1));

	/* New mtimes, same bytes: the command must not run again, the target is only touched. */
	sh("sleep 0.02 && touch '%s/in' '%s/out'", dir);
	r = step("--why " BUILD_OUT);
	cr_assert(eq(int, r.status, 0));
	cr_assert(strstr(r.out, "SKIP") != NULL, "%s", r.out);
	tu_run_free(&r);
	cr_assert(eq(int, count_lines(runs), 1));

	/* Changed content: it runs, and says which input changed. */
	sh("echo more >> '%s/in'", dir);
	r = step("--why " BUILD_OUT);
	cr_assert(strstr(r.out, "inputs changed: in") != NULL, "%s", r.out);
	tu_run_free(&r);
	cr_assert(eq(int, count_lines(runs), 3));
}

Test(bm_step, reruns_when_the_command_changes_or_the_target_was_edited)
{
	sh("echo x > '%s/in'", dir);
	struct tu_run r = step(BUILD_OUT);
	tu_run_free(&r);
	r = step("--why --target out --cmd 'cat in >> runs; cat in in > out' in");
	cr_assert(strstr(r.out, "command changed") != NULL, "%s", r.out);
	tu_run_free(&r);
	sh("echo edited by hand > '%s/out'", dir);
	r = step("--why --target out --cmd 'cat in >> runs; cat in in > out' in");
	cr_assert(strstr(r.out, "target modified") != NULL, "%s", r.out);
	tu_run_free(&r);
	char path[4096];
	snprintf(path, sizeof path, "%s/out", dir);
	char *out = tu_read_file(path, NULL);
	cr_assert(eq(str, out, "x\nx\n"));
	free(out);
}

Test(bm_step, saves_the_command_as_a_make_variable)
{
	sh("echo x > '%s/in'", dir);
	struct tu_run r = step("--target out --cmd 'X=1; echo \"$X #\" > out' in");
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	/* make must read back exactly the command that ran. */
	sh("cd '%s' && printf 'include .out.cmd\\n$(info [$(savedcmd_out)])\\nall: ;\\n' > t.mk", dir);
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "cd '%s' && make -s -f t.mk", dir);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(eq(str, r.out, "[X=1; echo \"$X #\" > out]\n"));
	tu_run_free(&r);
}

Test(bm_step, a_failure_names_the_step_the_error_line_and_the_log)
{
	struct tu_run r = step("--log logs/step.log --title '>>> m convert' --target out "
			       "--cmd 'echo working; echo \"conv: blk.0: error: bad shape\"; echo done; exit 3'");
	cr_assert(eq(int, r.status, 1));
	cr_assert(strstr(r.out, ">>> m convert") != NULL);
	cr_assert(strstr(r.err, "m convert: failed (exit 3): conv: blk.0: error: bad shape") != NULL, "%s", r.err);
	cr_assert(strstr(r.err, "logs/step.log") != NULL, "%s", r.err);
	tu_run_free(&r);
	char path[4096];
	snprintf(path, sizeof path, "%s/out", dir);
	cr_assert_not(access(path, F_OK) == 0);
	snprintf(path, sizeof path, "%s/.out.cmd", dir);
	cr_assert_not(access(path, F_OK) == 0, "no stamp after a failure");
}

Test(bm_step, a_command_that_creates_nothing_is_an_error)
{
	struct tu_run r = step("--target out --cmd true");
	cr_assert(eq(int, r.status, 1));
	cr_assert(strstr(r.err, "did not create it") != NULL, "%s", r.err);
	tu_run_free(&r);
}

Test(bm_step, manifest_lists_checkpoint_files_but_not_outputs)
{
	sh("cd '%s' && mkdir -p m/sub m/.cache && echo a > m/config.json && echo b > m/sub/x.safetensors"
	   " && echo c > m/ggml-model-f32.gguf && echo d > m/.cache/meta && echo e > m/y.tmp", dir);
	struct tu_run r = step("manifest m m/checkpoint.manifest");
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	char path[4096];
	snprintf(path, sizeof path, "%s/m/checkpoint.manifest", dir);
	char *m = tu_read_file(path, NULL);
	cr_assert_not_null(m);
	cr_assert(strstr(m, " 2 config.json\n") != NULL, "%s", m);
	cr_assert(strstr(m, " 2 sub/x.safetensors\n") != NULL, "%s", m);
	cr_assert(strstr(m, "gguf") == NULL && strstr(m, "cache") == NULL && strstr(m, "tmp") == NULL, "%s", m);
	free(m);
}

/* bitnet-run as a user runs it: help and usage errors, one-line errors for bad files, greedy and
 * seeded generation, the prompt echo and timings, a full context (shifted, or a
 * notice with --no-context-shift), and chat mode. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "engine_util.h"
#include "test_util.h"

#define HAS(msg, s) cr_assert(strstr((msg), (s)) != NULL, "'%s' lacks '%s'", (msg), (s))

static struct tu_run run(const char *args)
{
	char *bin = tu_bin("bitnet-run"), *cmd = NULL;
	cr_assert(asprintf(&cmd, "%s %s", bin, args) > 0);
	free(bin);
	struct tu_run r = tu_sh(cmd);
	free(cmd);
	return r;
}

static char *i2s_model(void)
{
	char *f32 = eu_fixture("tv-f32.f32.gguf");
	char *q = eu_cache_path("tv-f32.i2_s.gguf");
	struct bn_err err = { 0 };
	if (!bn_file_exists(q))
		cr_assert(eq(int, eu_quantize(f32, q, 36 /* I2_S */, 1 /* F16 */, &err), 0), "%s", err.msg);
	free(f32);
	return q;
}

Test(bitnet_run_cli, help_and_usage_errors)
{
	struct tu_run r = run("--help");
	cr_assert(eq(int, r.status, 0));
	HAS(r.out, "usage: bitnet-run -m MODEL.gguf");
	HAS(r.out, "-cnv, --conversation");
	HAS(r.out, "--keep N");
	HAS(r.out, "--no-context-shift");
	tu_run_free(&r);
	r = run("-p hi");
	cr_assert(eq(int, r.status, 2));
	HAS(r.err, "bitnet-run: no model; give -m MODEL.gguf");
	tu_run_free(&r);
	r = run("-m x.gguf -p hi --temp hot");
	cr_assert(eq(int, r.status, 2));
	HAS(r.err, "--temp: 'hot' is not a number");
	tu_run_free(&r);
	r = run("-m x.gguf -p hi --frobnicate");
	cr_assert(eq(int, r.status, 2));
	HAS(r.err, "unknown option '--frobnicate'");
	tu_run_free(&r);
}

Test(bitnet_run_cli, a_malformed_or_unsupported_file_is_a_one_line_error)
{
	char *dir = tu_mkdtemp("bitnet_run_bad");
	char *q = i2s_model();
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "head -c 100000 '%s' > '%s/cut.gguf'", q, dir);
	struct tu_run r = tu_sh(cmd);
	tu_run_free(&r);
	snprintf(cmd, sizeof cmd, "-m '%s/cut.gguf' -p hi", dir);
	r = run(cmd);
	cr_assert(eq(int, r.status, 1));
	HAS(r.err, "bitnet-run: ");
	HAS(r.err, "cut.gguf");
	cr_assert(eq(sz, strlen(r.err), (size_t)(strchr(r.err, '\n') - r.err) + 1), "one line: %s", r.err);
	tu_run_free(&r);

	char *g = eu_cache_path("arch-gpt2.gguf");
	struct eu_spec s = { .arch = "gpt2", .n_layer = 1, .n_embd = 128, .n_ff = 256, .n_head = 2, .n_head_kv = 2,
			     .n_vocab = 300, .n_ctx = 64, .rope_base = 10000.0f, .seed = 1 };
	struct bn_err err = { 0 };
	cr_assert(eq(int, eu_synth(g, &s, &err), 0), "%s", err.msg);
	snprintf(cmd, sizeof cmd, "-m '%s' -p hi", g);
	r = run(cmd);
	cr_assert(eq(int, r.status, 1));
	HAS(r.err, "architecture 'gpt2' is not supported");
	tu_run_free(&r);
	free(g);
	free(q);
	free(dir);
}

Test(bitnet_run_cli, greedy_generation_is_deterministic_and_reports_timings)
{
	char *q = i2s_model();
	char args[8192];
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -n 12 --temp 0 -t 2", q);
	struct tu_run a = run(args), b = run(args);
	cr_assert(eq(int, a.status, 0), "%s", a.err);
	cr_assert(eq(str, a.out, b.out));
	cr_assert(eq(int, strncmp(a.out, "hello world", 11), 0), "the prompt is echoed: %s", a.out);
	cr_assert(gt(sz, strlen(a.out), 12), "something was generated");
	HAS(a.err, "bitnet-run: prompt: 9 tokens in ");
	HAS(a.err, "bitnet-run: generation: ");
	HAS(a.err, "tokens/s)");
	tu_run_free(&a);
	tu_run_free(&b);
	/* seeded sampling repeats; -n 0 only echoes; --no-display-prompt drops the echo */
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -n 12 --temp 1.5 --seed 7 -q", q);
	a = run(args), b = run(args);
	cr_assert(eq(str, a.out, b.out));
	cr_assert(eq(str, a.err, ""), "-q: %s", a.err);
	tu_run_free(&a);
	tu_run_free(&b);
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -n 0 -q", q);
	a = run(args);
	cr_assert(eq(str, a.out, "hello world\n"));
	tu_run_free(&a);
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -n 4 --temp 0 -q --no-display-prompt", q);
	a = run(args);
	cr_assert(ne(int, strncmp(a.out, "hello world", 11), 0));
	tu_run_free(&a);
	free(q);
}

Test(bitnet_run_cli, context_overflow_is_an_error_or_a_notice)
{
	char *q = i2s_model();
	char args[8192];
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -c 4", q);
	struct tu_run r = run(args);
	cr_assert(eq(int, r.status, 1));
	HAS(r.err, "the prompt is 9 tokens but only 4 of the 4 context positions are free; use a larger -c");
	tu_run_free(&r);
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -c 12 -n 50 --temp 0 --no-context-shift", q);
	r = run(args);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	HAS(r.err, "the context is full (12 tokens); stopped generating");
	HAS(r.err, "generation: 3 tokens");
	tu_run_free(&r);
	free(q);
}

static int count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

Test(bitnet_run_cli, a_full_context_is_shifted_unless_told_not_to)
{
	char *q = i2s_model();
	char args[8192];
	/* 9 prompt tokens (BOS first), 200 fed back: the context fills after 55, then every 31 */
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -c 64 -n 200 --temp 0", q);
	struct tu_run r = run(args);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(eq(int, count(r.err, "context full: kept 1, discarded 31 tokens\n"), 5), "%s", r.err);
	cr_assert(eq(int, count(r.err, "context full"), 5), "%s", r.err);
	HAS(r.err, "generation: 200 tokens");
	tu_run_free(&r);
	/* --keep counts prompt tokens after the BOS; -1 keeps the whole prompt */
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -c 64 -n 200 --temp 0 --keep 5 -t 2", q);
	r = run(args);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	HAS(r.err, "context full: kept 6, discarded 29 tokens\n");
	HAS(r.err, "generation: 200 tokens");
	tu_run_free(&r);
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -c 64 -n 100 --temp 0 --keep -1", q);
	r = run(args);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	HAS(r.err, "context full: kept 9, discarded 27 tokens\n");
	tu_run_free(&r);
	snprintf(args, sizeof args, "-m '%s' -p 'hello world' -c 64 -n 200 --temp 0 --no-context-shift", q);
	r = run(args);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	HAS(r.err, "the context is full (64 tokens); stopped generating");
	HAS(r.err, "generation: 55 tokens");
	cr_assert(eq(int, count(r.err, "context full:"), 0), "%s", r.err);
	tu_run_free(&r);
	const char *bad[] = { "--keep -2", "--keep x", "--keep 1.5", "--keep 99999999", "--keep" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(args, sizeof args, "-m '%s' -p hi %s", q, bad[i]);
		r = run(args);
		cr_assert(eq(int, r.status, 2), "%s: %s", bad[i], r.err);
		HAS(r.err, "--keep");
		tu_run_free(&r);
	}
	/* chat: later turns and replies shift too, keeping the system message */
	char *bin = tu_bin("bitnet-run"), cmd[8192];
	snprintf(cmd, sizeof cmd, "printf 'hello there\\nworld again\\nthird turn\\nfourth one\\n' | "
		 "%s -m '%s' -cnv -p 'sys msg' --keep -1 -c 32 -n 12 --temp 0", bin, q);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	HAS(r.err, "context full: kept 9, discarded 11 tokens\n");
	cr_assert(eq(int, count(r.out, "\n"), 4), "one reply line per turn: '%s'", r.out);
	tu_run_free(&r);
	free(bin);
	free(q);
}

Test(bitnet_run_cli, chat_mode_answers_each_line_in_the_model_template)
{
	char *q = i2s_model();
	char *bin = tu_bin("bitnet-run");
	char cmd[8192];
	/* the test vector's template is {{ messages[0]['content'] }}: each turn is its text */
	snprintf(cmd, sizeof cmd, "printf 'hello\\nworld\\n' | %s -m '%s' -cnv -n 3 --temp 0 -v", bin, q);
	struct tu_run r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	HAS(r.err, "chat template: content");
	HAS(r.err, "> > > ");
	int lines = 0;
	for (const char *p = r.out; *p; p++)
		lines += *p == '\n';
	cr_assert(eq(int, lines, 2), "one reply line per turn: '%s'", r.out);
	tu_run_free(&r);
	/* a model without a template, and a template nobody knows */
	char *g = eu_cache_path("chatless.gguf");
	struct eu_spec s = { .arch = "bitnet", .n_layer = 1, .n_embd = 128, .n_ff = 256, .n_head = 2, .n_head_kv = 2,
			     .n_vocab = 300, .n_ctx = 64, .rope_base = 10000.0f, .seed = 5 };
	struct bn_err err = { 0 };
	cr_assert(eq(int, eu_synth(g, &s, &err), 0), "%s", err.msg);
	snprintf(cmd, sizeof cmd, "%s -m '%s' -cnv < /dev/null", bin, g);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 1));
	HAS(r.err, "the model has no chat template; give --chat-template NAME");
	tu_run_free(&r);
	snprintf(cmd, sizeof cmd, "%s -m '%s' -cnv --chat-template '{%% weird %%}' < /dev/null", bin, g);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 1));
	HAS(r.err, "chat template '{% weird %}' is not one bitnet-run knows");
	tu_run_free(&r);
	snprintf(cmd, sizeof cmd, "printf 'hi\\n' | %s -m '%s' -cnv --chat-template llama3 -n 2 --temp 0 -c 512", bin, g);
	r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	free(g);
	free(bin);
	free(q);
}

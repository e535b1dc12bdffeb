/* bitnet-kernels, the compile step's tool: --info, --self-test, a smoke run of --bench, forcing a
 * kernel set through the environment, and its usage errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "test_util.h"

static struct tu_run run(const char *const *args, const char *const *env)
{
	char *bin = tu_bin("bitnet-kernels");
	const char *argv[8] = { bin };
	for (int i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	struct tu_run r = tu_run(argv, env, NULL);
	free(bin);
	return r;
}

Test(bitnet_kernels, info_reports_features_the_selected_set_and_threads)
{
	const char *args[] = { "--info", NULL };
	struct tu_run r = run(args, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(strstr(r.out, "features:") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "selected:") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "threads:") != NULL, "%s", r.out);
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	char line[128];
	snprintf(line, sizeof line, "selected:  %s (best for this CPU)", kern_set_best(&cpu)->name);
	cr_assert(strstr(r.out, line) != NULL, "want '%s' in:\n%s", line, r.out);
	tu_run_free(&r);
}

Test(bitnet_kernels, info_follows_a_forced_set)
{
	const char *args[] = { "--info", "--threads", "3", NULL };
	const char *env[] = { KERN_ISA_ENV "=ref", NULL };
	struct tu_run r = run(args, env);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(strstr(r.out, "selected:  ref (forced by " KERN_ISA_ENV ")") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "gemm_i2s_q8_ref") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "threads:   3\n") != NULL, "%s", r.out);
	tu_run_free(&r);
}

Test(bitnet_kernels, refuses_an_unknown_set_with_exit_1)
{
	const char *args[] = { "--info", NULL };
	const char *env[] = { KERN_ISA_ENV "=sse9", NULL };
	struct tu_run r = run(args, env);
	cr_assert(eq(int, r.status, 1));
	cr_assert(strstr(r.err, "bitnet-kernels: kernel set 'sse9' (forced by " KERN_ISA_ENV "): not in this build") != NULL,
		  "%s", r.err);
	tu_run_free(&r);
}

Test(bitnet_kernels, self_test_passes_every_supported_set)
{
	const char *args[] = { "--self-test", NULL };
	struct tu_run r = run(args, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(strstr(r.out, "ok   ref\n") != NULL, "%s", r.out);
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	char line[64];
	snprintf(line, sizeof line, "ok   %s\n", kern_set_best(&cpu)->name);
	cr_assert(strstr(r.out, line) != NULL, "%s", r.out);
	tu_run_free(&r);
}

Test(bitnet_kernels, quick_bench_prints_bandwidth_and_ratios, .timeout = 60)
{
	const char *args[] = { "--bench", "--quick", "--threads", "2", NULL };
	struct tu_run r = run(args, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(strstr(r.out, "read bandwidth (bn_read_bandwidth: best of its passes): 1 thread") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "I2_S    [1536,4096]  cold 1t") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "I2_S*64 [1536,4096]  gemm 1t") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "TQ2_0   [1536,4096]  cold 1t") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "same run = not measured") != NULL, "%s", r.out);
	tu_run_free(&r);
}

static char *fake_ref(void)
{
	const char *tmp = getenv("BITMAKE_TMP");
	cr_assert(tmp != NULL);
	char *p = malloc(strlen(tmp) + 64);
	sprintf(p, "%s/../libref-vec-dot.so", tmp); /* $(BUILD)/tests/, next to tmp/ */
	return p;
}

Test(bitnet_kernels, bench_times_a_reference_library_that_agrees, .timeout = 60)
{
	char *lib = fake_ref();
	const char *args[] = { "--bench", "--quick", "--ref-lib", lib, NULL };
	struct tu_run r = run(args, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(strstr(r.out, "same run = ") != NULL && strstr(r.out, "libref-vec-dot.so") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "warning") == NULL, "%s", r.out);
	tu_run_free(&r);

	const char *env[] = { "BITMAKE_FAKE_REF_OFF=1", NULL };
	r = run(args, env);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(strstr(r.out, "warning: the reference library differs from our kernels in 1536 of 1536 outputs of [1536,4096]") != NULL,
		  "%s", r.out);
	tu_run_free(&r);
	free(lib);
}

Test(bitnet_kernels, refuses_a_library_without_the_reference_kernel)
{
	const char *args[] = { "--bench", "--quick", "--ref-lib", "libm.so.6", NULL };
	struct tu_run r = run(args, NULL);
	cr_assert(eq(int, r.status, 1));
	cr_assert(strstr(r.err, "libm.so.6: no ggml_vec_dot_i2_i8_s in it") != NULL, "%s", r.err);
	tu_run_free(&r);
}

Test(bitnet_kernels, usage_errors_exit_2_and_help_exits_0)
{
	const char *none[] = { NULL };
	struct tu_run r = run(none, NULL);
	cr_assert(eq(int, r.status, 2));
	cr_assert(strstr(r.err, "Try 'bitnet-kernels --help'") != NULL, "%s", r.err);
	tu_run_free(&r);
	const char *two[] = { "--info", "--bench", NULL };
	r = run(two, NULL);
	cr_assert(eq(int, r.status, 2));
	tu_run_free(&r);
	const char *bad[] = { "--threads", "0", "--info", NULL };
	r = run(bad, NULL);
	cr_assert(eq(int, r.status, 2));
	tu_run_free(&r);
	const char *help[] = { "--help", NULL };
	r = run(help, NULL);
	cr_assert(eq(int, r.status, 0));
	cr_assert(strstr(r.out, "usage: bitnet-kernels") != NULL);
	cr_assert(strstr(r.out, KERN_ISA_ENV) != NULL);
	tu_run_free(&r);
}

/* bitnet-kernels: reports the CPU features and the kernels this build would run (--info), checks
 * every kernel set against the scalar references (--self-test) and measures them (--bench).
 * CLI only: parse, validate, call report.c / bench.c, map errors to exit status. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bn_err.h"
#include "bn_log.h"
#include "bn_util.h"
#include "report.h"

static void help(void)
{
	printf("usage: bitnet-kernels --info | --self-test | --bench [OPTIONS]\n"
	       "Ternary matmul kernels (I2_S, TQ1_0, TQ2_0) with run-time CPU dispatch.\n"
	       "\n"
	       "  --info          print the CPU, its features, the kernel sets in this build, the set\n"
	       "                  that would run and its kernel per format, and the thread count\n"
	       "  --self-test     compare every kernel set this CPU supports (or only --isa) with the\n"
	       "                  scalar references on random data; exit 1 on any difference\n"
	       "  --bench         measure read bandwidth and GEMV/GEMM throughput (make bench)\n"
	       "  --quick         with --bench: small buffers and few repetitions (a smoke test)\n"
	       "  --ref-lib FILE  with --bench: also time the reference I2_S kernel in this run, from\n"
	       "                  a shared library of a bitnet.cpp build that has ggml_vec_dot_i2_i8_s\n"
	       "                  (e.g. its libggml.so); it must agree with ours bit for bit\n"
	       "  --isa NAME      use kernel set NAME (ref, avx2, avx512, avx512vnni, neon, dotprod)\n"
	       "                  instead of the best one; overrides $%s\n"
	       "  --threads N     worker threads including the caller (default: physical cores)\n"
	       "  -q, --quiet     errors only on stderr\n"
	       "  -v, --verbose   more detail on stderr\n"
	       "  -h, --help      this help\n"
	       "\n"
	       "Environment: %s=NAME forces a kernel set (as --isa).\n"
	       "Exit status: 0 ok, 1 failure (self-test mismatch, unsupported CPU), 2 usage error.\n",
	       KERN_ISA_ENV, KERN_ISA_ENV);
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	enum { NONE, INFO, SELF_TEST, BENCH } mode = NONE;
	struct kern_opts opts = { 0 };
	bool quick = false;
	const char *ref_lib = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			help();
			return 0;
		} else if (!strcmp(a, "--info") || !strcmp(a, "--self-test") || !strcmp(a, "--bench")) {
			if (mode != NONE)
				return bn_usage_error("give only one of --info, --self-test, --bench");
			mode = a[2] == 'i' ? INFO : a[2] == 's' ? SELF_TEST : BENCH;
		} else if (!strcmp(a, "--quick")) {
			quick = true;
		} else if (!strcmp(a, "--ref-lib")) {
			if (++i == argc)
				return bn_usage_error("--ref-lib needs a shared library path");
			ref_lib = argv[i];
		} else if (!strcmp(a, "--isa")) {
			if (++i == argc)
				return bn_usage_error("--isa needs a kernel set name");
			opts.isa = argv[i];
		} else if (!strcmp(a, "--threads")) {
			if (++i == argc || bn_parse_uint(argv[i], 1, 1024, &opts.threads) < 0)
				return bn_usage_error("--threads needs a number from 1 to 1024");
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			bn_log_level = BN_LOG_QUIET;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			bn_log_level = BN_LOG_VERBOSE;
		} else {
			return bn_usage_error("unknown argument '%s'", a);
		}
	}
	if (mode == NONE)
		return bn_usage_error("give one of --info, --self-test, --bench");
	if ((quick || ref_lib) && mode != BENCH)
		return bn_usage_error("--quick and --ref-lib go with --bench");

	struct bn_err err = { 0 };
	int rc;
	switch (mode) {
	case INFO:
		rc = bk_info(&opts, &err);
		break;
	case SELF_TEST:
		rc = bk_self_test(opts.isa, &err);
		break;
	default:
		rc = bk_bench(&opts, quick, ref_lib, &err);
		break;
	}
	if (rc < 0) {
		bn_error("%s", err.msg);
		return 1;
	}
	return 0;
}

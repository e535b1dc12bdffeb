/* The NEON and dotprod kernel sets, cross-compiled into build/aarch64/kernels-check and run under
 * qemu-aarch64: on a CPU without dotprod (Cortex-A53) the neon set must agree with the scalar
 * references and the dotprod set must be refused; on qemu's "max" CPU both must agree. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static struct tu_run run_checker(const char *cpu)
{
	char *bin = tu_bin("../aarch64/kernels-check");
	const char *argv[] = { "qemu-aarch64", "-cpu", cpu, bin, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	free(bin);
	return r;
}

Test(kernels_neon, neon_set_matches_ref_and_dotprod_is_refused_on_a_cortex_a53, .timeout = 120)
{
	struct tu_run r = run_checker("cortex-a53");
	cr_assert(eq(int, r.status, 0), "stdout:\n%s\nstderr:\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "features: neon\n") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "ok neon: ") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "refused dotprod: kernel set 'dotprod' (requested): needs dotprod") != NULL, "%s",
		  r.out);
	cr_assert(strstr(r.out, "FAILED") == NULL, "%s", r.out);
	tu_run_free(&r);
}

Test(kernels_neon, neon_and_dotprod_sets_match_ref_on_a_dotprod_cpu, .timeout = 120)
{
	struct tu_run r = run_checker("max");
	cr_assert(eq(int, r.status, 0), "stdout:\n%s\nstderr:\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "features: neon dotprod\n") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "ok dotprod: ") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "ok neon: ") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "refused") == NULL, "%s", r.out);
	tu_run_free(&r);
}

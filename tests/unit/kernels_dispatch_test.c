/* The kernel runtime: set selection from CPU features, forcing a set (API and environment),
 * refusing sets the CPU lacks, the self-test catching a broken kernel, the thread pool, and the
 * matmul drivers' argument checks. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

Test(kernel_dispatch, picks_the_best_set_the_cpu_supports)
{
	struct kern_cpu cpu = { 0 };
	cr_assert(eq(str, (char *)kern_set_best(&cpu)->name, "ref"));
	size_t n;
	const struct kern_set *const *sets = kern_sets(&n);
	cr_assert(eq(str, (char *)sets[n - 1]->name, "ref"), "ref is always last");
	for (size_t i = 0; i < n; i++) {
		cpu.features = sets[i]->needs;
		const struct kern_set *best = kern_set_best(&cpu);
		cr_assert(eq(int, (best->needs & ~cpu.features) == 0, 1), "%s needs more than the CPU has", best->name);
		/* the first set (in order) whose needs are met */
		cr_assert(eq(str, (char *)best->name, (char *)sets[i]->name));
	}
	cpu.features = 0xffffffffu;
	cr_assert(eq(ptr, (void *)kern_set_best(&cpu), (void *)sets[0]));
}

Test(kernel_dispatch, refuses_an_unknown_set_and_lists_the_known_ones)
{
	struct kern_ctx *ctx = (void *)1;
	struct bn_err err = { 0 };
	struct kern_opts o = { "avx1024", 1, true };
	cr_assert(eq(int, kern_open(&ctx, &o, &err), -BN_EUNSUPPORTED));
	cr_assert(eq(ptr, ctx, NULL));
	cr_assert(strstr(err.msg, "kernel set 'avx1024' (requested): not in this build") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "ref") != NULL, "%s", err.msg);
}

Test(kernel_dispatch, follows_the_environment_variable)
{
	setenv(KERN_ISA_ENV, "ref", 1);
	struct kern_ctx *ctx;
	struct bn_err err = { 0 };
	struct kern_opts o = { NULL, 2, false };
	cr_assert(eq(int, kern_open(&ctx, &o, &err), 0), "%s", err.msg);
	cr_assert(eq(str, (char *)kern_selected(ctx)->name, "ref"));
	cr_assert(eq(u32, kern_threads(ctx), 2));
	kern_close(ctx);

	setenv(KERN_ISA_ENV, "nonesuch", 1);
	cr_assert(eq(int, kern_open(&ctx, &o, &err), -BN_EUNSUPPORTED));
	cr_assert(strstr(err.msg, "forced by " KERN_ISA_ENV) != NULL, "%s", err.msg);

	/* an explicit request wins over the environment */
	struct kern_opts o2 = { "ref", 1, true };
	cr_assert(eq(int, kern_open(&ctx, &o2, &err), 0), "%s", err.msg);
	kern_close(ctx);
}

Test(kernel_dispatch, names_the_missing_cpu_features)
{
	struct kern_cpu cpu = { .features = KERN_CPU_AVX2 | KERN_CPU_FMA };
	struct bn_err err = { 0 };
	cr_assert(eq(int, kern_cpu_require(&cpu, KERN_CPU_AVX2, "tl2 kernels", &err), 0));
	cr_assert(eq(int, kern_cpu_require(&cpu, KERN_CPU_AVX2 | KERN_CPU_AVX512VNNI, "tl2 kernels", &err),
		     -BN_EUNSUPPORTED));
	cr_assert(eq(str, err.msg, "tl2 kernels: needs avx512vnni, which this CPU (or its OS) lacks; it has: avx2 fma"));
}

Test(kernel_dispatch, refuses_a_forced_set_the_cpu_lacks)
{
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	size_t n;
	const struct kern_set *const *sets = kern_sets(&n);
	const struct kern_set *missing = NULL;
	for (size_t i = 0; i < n; i++)
		if ((sets[i]->needs & cpu.features) != sets[i]->needs)
			missing = sets[i];
	if (!missing)
		cr_skip_test("this CPU supports every kernel set in this build");
	struct kern_ctx *ctx;
	struct bn_err err = { 0 };
	struct kern_opts o = { missing->name, 1, true };
	cr_assert(eq(int, kern_open(&ctx, &o, &err), -BN_EUNSUPPORTED));
	cr_assert(strstr(err.msg, "which this CPU (or its OS) lacks") != NULL, "%s", err.msg);
}

/* The reference with one output off by one ulp at row 5 of the 37-row shape. */
static void broken_gemm(size_t k, const uint8_t *w, size_t nrows, float wscale, const struct i8s_acts *a,
			size_t ncols, float *y, size_t ldy)
{
	gemm_i2s_q8_ref(k, w, nrows, wscale, a, ncols, y, ldy);
	if (nrows == 37) {
		uint32_t u;
		memcpy(&u, &y[5], 4);
		u ^= 1;
		memcpy(&y[5], &u, 4);
	}
}

Test(kernel_dispatch, self_test_catches_a_broken_kernel)
{
	struct kern_set broken = *kern_set_find("ref");
	broken.name = "broken";
	broken.gemm_i2s = broken_gemm;
	broken.gemm_i2s_name = "gemm_i2s_q8_broken";
	struct bn_err err = { 0 };
	cr_assert(eq(int, kern_self_test(kern_set_find("ref"), 42, &err), 0), "%s", err.msg);
	cr_assert(eq(int, kern_self_test(&broken, 42, &err), -BN_EVERIFY));
	cr_assert(strstr(err.msg, "gemm_i2s_q8_broken: self-test: differs from gemm_i2s_q8_ref") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "row 5 token 0") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "set " KERN_ISA_ENV "=ref") != NULL, "%s", err.msg);
}

Test(kernel_dispatch, every_compiled_set_the_cpu_supports_passes_its_self_test)
{
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	size_t n;
	const struct kern_set *const *sets = kern_sets(&n);
	for (size_t i = 0; i < n; i++) {
		if ((sets[i]->needs & cpu.features) != sets[i]->needs)
			continue;
		struct bn_err err = { 0 };
		cr_assert(eq(int, kern_self_test(sets[i], 1000 + i, &err), 0), "%s", err.msg);
	}
}

struct pool_probe {
	atomic_uint calls;
	atomic_uint mask;
};

static void probe(void *arg, unsigned ith, unsigned nth)
{
	struct pool_probe *p = arg;
	atomic_fetch_add(&p->calls, 1);
	if (ith < 32)
		atomic_fetch_or(&p->mask, 1u << ith);
	(void)nth;
}

Test(kernel_pool, runs_every_chunk_exactly_once)
{
	struct kern_ctx *ctx;
	struct bn_err err = { 0 };
	struct kern_opts o = { "ref", 4, true };
	cr_assert(eq(int, kern_open(&ctx, &o, &err), 0), "%s", err.msg);
	for (int t = 0; t < 2000; t++) {
		struct pool_probe p;
		atomic_init(&p.calls, 0);
		atomic_init(&p.mask, 0);
		kern_parallel(ctx, probe, &p);
		cr_assert(eq(u32, atomic_load(&p.calls), 4));
		cr_assert(eq(u32, atomic_load(&p.mask), 0xf));
	}
	for (unsigned n = 1; n < 40; n++) {
		struct pool_probe p;
		atomic_init(&p.calls, 0);
		atomic_init(&p.mask, 0);
		kern_parallel_chunks(ctx, n, probe, &p);
		cr_assert(eq(u32, atomic_load(&p.calls), n));
		cr_assert(eq(u32, atomic_load(&p.mask), n == 32 ? 0xffffffffu : n > 32 ? 0xffffffffu : (1u << n) - 1));
	}
	kern_close(ctx);
}

Test(kernel_matmul, validates_shapes_sizes_and_activation_kinds)
{
	struct kern_weight w;
	struct bn_err err = { 0 };
	static uint8_t buf[8192];
	cr_assert(eq(int, kern_weight_init(&w, KERN_W_I2S, 200, 4, buf, sizeof buf, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "I2_S weight [4, 200]: row length 200 is not a multiple of 128") != NULL, "%s", err.msg);
	cr_assert(eq(int, kern_weight_init(&w, KERN_W_TQ2_0, 384, 4, buf, sizeof buf, &err), -BN_EINVAL));
	cr_assert(eq(int, kern_weight_init(&w, KERN_W_I2S, 256, 64, buf, 256 * 64 / 4 + 31, &err), -BN_EFORMAT));
	cr_assert(eq(int, kern_weight_init(&w, KERN_W_I2S, 256, 64, buf, 256 * 64 / 4 + 32, &err), 0), "%s", err.msg);
	cr_assert(eq(int, kern_weight_init(&w, KERN_W_TQ1_0, 512, 4, buf, 8 * 54, &err), 0), "%s", err.msg);

	struct kern_ctx *ctx;
	struct kern_opts o = { "ref", 1, true };
	cr_assert(eq(int, kern_open(&ctx, &o, &err), 0), "%s", err.msg);
	float x[512] = { 0 }, y[64];
	size_t ss = kern_acts_size(KERN_W_TQ1_0, 512, 1);
	void *scratch = malloc(ss);
	struct kern_acts a;
	cr_assert(eq(int, kern_quantize(ctx, KERN_W_TQ1_0, 512, x, 1, 512, scratch, ss - 65, &a, &err), -BN_EINVAL));
	cr_assert(eq(int, kern_quantize(ctx, KERN_W_TQ1_0, 512, x, 1, 512, scratch, ss, &a, &err), 0), "%s", err.msg);
	struct kern_weight wi;
	cr_assert(eq(int, kern_weight_init(&wi, KERN_W_I2S, 512, 4, buf, sizeof buf, &err), 0));
	cr_assert(eq(int, kern_matmul_q(ctx, &wi, &a, y, 4, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "TQ1_0 activations of length 512 do not fit I2_S weights") != NULL, "%s", err.msg);
	free(scratch);
	kern_close(ctx);
}

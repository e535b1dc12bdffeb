/* --info and --self-test of bitnet-kernels (see report.h). */
#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn_util.h"

int bk_info(const struct kern_opts *opts, struct bn_err *err)
{
	struct kern_ctx *ctx;
	struct kern_opts o = *opts;
	o.skip_self_test = true; /* --info reports; --self-test checks */
	int rc = kern_open(&ctx, &o, err);
	if (rc < 0)
		return rc;
	const struct kern_cpu *cpu = kern_ctx_cpu(ctx);
	char feats[256];
	printf("cpu:       %s (%s)\n", cpu->model[0] ? cpu->model : "unknown model", cpu->arch);
	printf("features:  %s\n", kern_cpu_features_str(cpu->features, feats, sizeof feats));
	size_t n;
	const struct kern_set *const *sets = kern_sets(&n);
	printf("built:    ");
	for (size_t i = 0; i < n; i++)
		printf(" %s%s", sets[i]->name, (sets[i]->needs & cpu->features) == sets[i]->needs ? "" : "(unsupported here)");
	printf("\n");
	const struct kern_set *s = kern_selected(ctx);
	const char *how = opts->isa && *opts->isa ? "requested" : getenv(KERN_ISA_ENV) ? "forced by " KERN_ISA_ENV : "best for this CPU";
	printf("selected:  %s (%s)\n", s->name, how);
	printf("  i2_s:    %s, activations %s\n", s->gemm_i2s_name, s->quantize_i8s_name);
	printf("  tq1_0:   %s\n", s->gemm_tq1_name);
	printf("  tq2_0:   %s\n", s->gemm_tq2_name);
	printf("threads:   %u%s\n", kern_threads(ctx), opts->threads ? "" : " (physical cores)");
	kern_close(ctx);
	return 0;
}

int bk_self_test(const char *isa, struct bn_err *err)
{
	struct kern_cpu cpu;
	kern_cpu_detect(&cpu);
	size_t n;
	const struct kern_set *const *sets = kern_sets(&n);
	uint64_t seed = (uint64_t)time(NULL);
	int tested = 0;
	for (size_t i = 0; i < n; i++) {
		const struct kern_set *s = sets[i];
		if (isa && strcmp(isa, s->name) != 0)
			continue;
		if ((s->needs & cpu.features) != s->needs) {
			if (isa)
				return kern_cpu_require(&cpu, s->needs, s->name, err);
			printf("skip %s: not supported by this CPU\n", s->name);
			continue;
		}
		int rc = kern_self_test(s, seed + i, err);
		if (rc < 0)
			return rc;
		printf("ok   %s\n", s->name);
		tested++;
	}
	if (!tested)
		return bn_seterr(err, BN_EINVAL, "bitnet-kernels: no kernel set named '%s' in this build", isa ? isa : "");
	return 0;
}

/* LUT kernel harness for bitmake's mode of a generated bitnet-lut-kernels.h: for every shape of
 * lut_generated_kernels, packs deterministic ternary weights, runs lut_gemm for each batch size
 * and weight/activation pattern, and compares with lut_ref_gemm bit for bit.
 *   harness [--batches 1,3,8,9,64] [--adv-batches 1,9] [--seed N]
 *       -> one "ok"/"MISMATCH" line per case; exit 0 iff all ok, 77 if the CPU lacks the ISA
 *   harness --vectors DIR                 -> lut-kernels.md §8.3 inputs: DIR/MxK.{packed,lut0,out}
 *   harness --gguf FILE                   -> every TL tensor of a converted GGUF through lut_gemm,
 *       after checking the file's bitmake.lut.kernel_config against these kernels (exit 3 and
 *       "REFUSED <why>" when they differ), as an engine loading the model would
 * Built by mk/lutgen.mk with -I<dir of the generated header>; run by tests/unit/lut_kernels_test.c
 * (TL1 under qemu-aarch64). */
#include "bitnet-lut-kernels.h"

#include "harness_util.h"

#include "gguf.h"

/* Random data runs at every batch size; the adversarial patterns (whose point is the block
 * sums, not the batching) at adv_batches, which keeps the qemu runs short. */
static int check(int nb, const int *batches, int nadv, const int *adv_batches)
{
	const struct lut_kernels *ks = &lut_generated_kernels;
	struct bn_err err = { 0 };
	if (lut_kernels_check(ks, &err)) {
		printf("SKIP %s\n", err.msg);
		return 77;
	}
	int maxn = 0;
	for (int b = 0; b < nb; b++)
		maxn = batches[b] > maxn ? batches[b] : maxn;
	for (int b = 0; b < nadv; b++)
		maxn = adv_batches[b] > maxn ? adv_batches[b] : maxn;
	size_t failures = 0;
	for (uint32_t s = 0; s < ks->n_kernels; s++) {
		const struct lut_kernel *kn = &ks->kernels[s];
		const int64_t m = kn->m, k = kn->k;
		struct lut_params p = { (uint32_t)m, (uint32_t)k, (uint32_t)kn->BM, (uint32_t)kn->BK,
					(uint32_t)kn->bm, 0, 0 };
		int8_t *w = hu_xmalloc((size_t)(m * k));
		float *act = hu_xmalloc((size_t)(maxn * k) * sizeof(float));
		float *out = hu_xmalloc((size_t)(maxn * m) * sizeof(float));
		float *ref = hu_xmalloc((size_t)(maxn * m) * sizeof(float));
		void *scratch = hu_xmalloc(lut_scratch_size(kn, maxn));
		for (int pat = 0; pat < HU_NPATTERNS; pat++) {
			hu_weights((enum hu_pattern)pat, m, k, w);
			const float ws = pat == HU_RANDOM ? 0.0371f : 1.5f;
			size_t size;
			uint8_t *t = hu_tensor((enum lut_quant)ks->quant, &p, w, ws, &size);
			struct lut_weight wt;
			if (lut_weight_init(&wt, ks, (enum lut_quant)ks->quant, m, k, t, size, NULL, &err)) {
				printf("MISMATCH [%" PRId64 ",%" PRId64 "]: %s\n", m, k, err.msg);
				return 1;
			}
			const int np = pat == HU_RANDOM ? nb : nadv;
			const int *bl = pat == HU_RANDOM ? batches : adv_batches;
			int pmax = 0;
			for (int b = 0; b < np; b++)
				pmax = bl[b] > pmax ? bl[b] : pmax;
			hu_acts((enum hu_pattern)pat, pmax, k, act);
			lut_ref_gemm(w, m, k, ws, act, pmax, ref);
			for (int b = 0; b < np; b++) {
				const int n = bl[b];
				char what[128];
				snprintf(what, sizeof what, "[%" PRId64 ",%" PRId64 "] BM=%d BK=%d bm=%d %s n=%d",
					 m, k, (int)kn->BM, (int)kn->BK, (int)kn->bm, hu_pattern_names[pat], n);
				memset(out, 0xff, (size_t)(n * m) * sizeof(float)); /* NaN: unwritten shows */
				if (lut_gemm(ks, &wt, act, n, out, scratch, lut_scratch_size(kn, maxn), &err)) {
					printf("MISMATCH %s: %s\n", what, err.msg);
					failures++;
					continue;
				}
				/* the reference's first n rows are the same computation for n rows */
				size_t bad = hu_compare(what, out, ref, n, m);
				failures += bad != 0;
				if (!bad)
					printf("ok %s\n", what);
			}
			free(t);
		}
		free(w);
		free(act);
		free(out);
		free(ref);
		free(scratch);
	}
	return failures ? 1 : 0;
}

static void dump(const char *dir, const char *name, const char *ext, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "%s: cannot write\n", path);
		exit(1);
	}
}

/* The deterministic inputs of lut-kernels.md §8.3: w = ((131m + 71c + (mc mod 7)) mod 3) - 1,
 * b[n][c] = (((37c + 11n) mod 101) - 50) / 8 for rows 0 and 1, ws = 0.5. */
static int vectors(const char *dir)
{
	const struct lut_kernels *ks = &lut_generated_kernels;
	struct bn_err err = { 0 };
	if (lut_kernels_check(ks, &err)) {
		printf("SKIP %s\n", err.msg);
		return 77;
	}
	for (uint32_t s = 0; s < ks->n_kernels; s++) {
		const struct lut_kernel *kn = &ks->kernels[s];
		const int64_t m = kn->m, k = kn->k;
		struct lut_params p = { (uint32_t)m, (uint32_t)k, (uint32_t)kn->BM, (uint32_t)kn->BK,
					(uint32_t)kn->bm, 0, 0 };
		int8_t *w = hu_xmalloc((size_t)(m * k));
		float *act = hu_xmalloc((size_t)(2 * k) * sizeof(float));
		float *out = hu_xmalloc((size_t)(2 * m) * sizeof(float));
		for (int64_t i = 0; i < m; i++)
			for (int64_t c = 0; c < k; c++)
				w[i * k + c] = (int8_t)((131 * i + 71 * c + (i * c % 7)) % 3 - 1);
		for (int64_t r = 0; r < 2; r++)
			for (int64_t c = 0; c < k; c++)
				act[r * k + c] = (float)((37 * c + 11 * r) % 101 - 50) / 8.0f;
		size_t size;
		uint8_t *t = hu_tensor((enum lut_quant)ks->quant, &p, w, 0.5f, &size);
		struct lut_weight wt;
		void *scratch = hu_xmalloc(lut_scratch_size(kn, 2));
		if (lut_weight_init(&wt, ks, (enum lut_quant)ks->quant, m, k, t, size, NULL, &err) ||
		    lut_gemm(ks, &wt, act, 2, out, scratch, lut_scratch_size(kn, 2), &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		char name[64];
		snprintf(name, sizeof name, "%" PRId64 "x%" PRId64, m, k);
		dump(dir, name, "packed", t, (size_t)lut_packed_size((enum lut_quant)ks->quant, (uint32_t)m, (uint32_t)k));
		/* row 0's LUTs: TL1 its one LUT, TL2 the three-LUT then the two-LUT (both row 0:
		 * lut_gemm_prepare lays out all rows' LUTs, then all rows' LUT2s) */
		const size_t l1 = lut_lut_stride(kn), l2 = lut_lut2_stride(kn);
		uint8_t *lut0 = hu_xmalloc(l1 + l2);
		memcpy(lut0, scratch, l1);
		memcpy(lut0 + l1, (const uint8_t *)scratch + 2 * l1, l2);
		dump(dir, name, "lut0", lut0, l1 + l2);
		dump(dir, name, "out", out, (size_t)(2 * m) * sizeof(float));
		printf("%s: %.7g %.7g %.7g %.7g\n", name, (double)out[0], (double)out[1], (double)out[2],
		       (double)out[3]);
		free(lut0);
		free(w);
		free(act);
		free(out);
		free(t);
		free(scratch);
	}
	return 0;
}

/* The engine's path for a TL model file. */
static int run_gguf(const char *path)
{
	const struct lut_kernels *ks = &lut_generated_kernels;
	struct bn_err err;
	memset(&err, 0, sizeof err);
	if (lut_kernels_check(ks, &err)) {
		printf("SKIP %s\n", err.msg);
		return 77;
	}
	struct gguf_reader *r = gguf_open(path, &err);
	if (!r) {
		printf("MISMATCH %s\n", err.msg);
		return 1;
	}
	const uint32_t type = ks->quant == LUT_TL1 ? GGUF_TYPE_TL1 : GGUF_TYPE_TL2;
	int64_t kv = gguf_find_key(r, LUT_GGUF_KERNEL_CONFIG);
	if (kv >= 0) {
		struct gguf_str s;
		if (gguf_get_str(r, kv, &s, &err) ||
		    lut_kernels_match_config(ks, s.data, s.len, &err)) {
			printf("REFUSED %s\n", err.msg);
			gguf_close(r);
			return 3;
		}
		printf("ok %s: the model's tile parameters are the kernels'\n", LUT_GGUF_KERNEL_CONFIG);
	}
	static const int batches[3] = { 1, 3, 9 };
	size_t failures = 0, tensors = 0;
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		if (t->type != type)
			continue;
		const int64_t m = (int64_t)t->ne[1], k = (int64_t)t->ne[0];
		struct lut_weight w;
		if (lut_weight_init(&w, ks, (enum lut_quant)ks->quant, m, k, t->data, (size_t)t->nbytes,
				    t->name, &err)) {
			printf("REFUSED %s\n", err.msg);
			gguf_close(r);
			return 3;
		}
		/* the reference sees the weights the file holds: unpacked with the same parameters */
		struct lut_params p = { (uint32_t)m, (uint32_t)k, (uint32_t)w.kern->BM, (uint32_t)w.kern->BK,
					(uint32_t)w.kern->bm, 0, 0 };
		int8_t *tern = hu_xmalloc((size_t)(m * k));
		float *act = hu_xmalloc((size_t)(9 * k) * sizeof(float));
		float *out = hu_xmalloc((size_t)(9 * m) * sizeof(float));
		float *ref = hu_xmalloc((size_t)(9 * m) * sizeof(float));
		void *scratch = hu_xmalloc(lut_scratch_size(w.kern, 9));
		if (lut_unpack((enum lut_quant)ks->quant, &p, t->data, tern, &err)) {
			printf("MISMATCH %s: %s\n", t->name, err.msg);
			failures++;
		} else {
			hu_acts(HU_RANDOM, 9, k, act);
			lut_ref_gemm(tern, m, k, w.scale, act, 9, ref);
			for (int b = 0; b < 3; b++) {
				char what[160];
				snprintf(what, sizeof what, "%s [%" PRId64 ",%" PRId64 "] n=%d", t->name, m, k,
					 batches[b]);
				lut_gemm(ks, &w, act, batches[b], out, scratch, lut_scratch_size(w.kern, 9), &err);
				size_t bad = hu_compare(what, out, ref, batches[b], m);
				failures += bad != 0;
				if (!bad)
					printf("ok %s\n", what);
			}
		}
		tensors++;
		free(tern);
		free(act);
		free(out);
		free(ref);
		free(scratch);
	}
	gguf_close(r);
	printf("%zu %s tensors\n", tensors, ks->quant == LUT_TL1 ? "TL1" : "TL2");
	return failures || !tensors ? 1 : 0;
}

int main(int argc, char **argv)
{
	int batches[32] = { 1, 3, 8, 9, 64 }, nb = 5;
	int adv[32] = { 1, 9 }, nadv = 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--vectors") && i + 1 < argc)
			return vectors(argv[i + 1]);
		else if (!strcmp(argv[i], "--gguf") && i + 1 < argc)
			return run_gguf(argv[i + 1]);
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
			nb = hu_parse_list(argv[++i], batches, 32);
		else if (!strcmp(argv[i], "--adv-batches") && i + 1 < argc)
			nadv = hu_parse_list(argv[++i], adv, 32);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			hu_state ^= strtoull(argv[++i], NULL, 10) * 0x9e3779b97f4a7c15ull;
		else {
			fprintf(stderr, "usage: harness [--batches LIST] [--adv-batches LIST] [--seed N] | "
					"--vectors DIR | --gguf FILE\n");
			return 2;
		}
	}
	if (nb <= 0 || nadv <= 0) {
		fprintf(stderr, "harness: bad --batches\n");
		return 2;
	}
	return check(nb, batches, nadv, adv);
}

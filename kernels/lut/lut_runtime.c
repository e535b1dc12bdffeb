/* TL runtime: checks, weight setup and the GEMM driver around lutgen's generated kernels.
 * Invariant: nothing here depends on the model; everything shape-specific comes through the
 * struct lut_kernels the generated header defines.  Scratch layout for n activation rows:
 * [n LUTs][n LUT2s (TL2)][n float scales], each LUT at a multiple of its stride. */
#include "lut.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#endif

int lut_kernels_check(const struct lut_kernels *ks, struct bn_err *err)
{
	if (ks->abi != LUT_ABI_VERSION)
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "generated LUT kernels: ABI version %" PRIu32 ", this runtime needs %d; "
				 "regenerate them with this lutgen (make codegen)",
				 ks->abi, LUT_ABI_VERSION);
	if (ks->quant == LUT_TL2) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx2"))
			return 0;
#endif
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "TL2 kernels: they need AVX2, which this CPU lacks; use QUANT=i2_s");
	}
	if (ks->quant == LUT_TL1) {
#if defined(__aarch64__)
#if defined(__linux__)
		if (getauxval(AT_HWCAP) & HWCAP_ASIMD)
			return 0;
#else
		return 0; /* Advanced SIMD is mandatory in AArch64 */
#endif
#endif
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "TL1 kernels: they need an AArch64 CPU with NEON, which this is not; "
				 "use QUANT=i2_s");
	}
	return bn_seterr(err, BN_EINVAL, "generated LUT kernels: unknown quant type %" PRIu32,
			 ks->quant);
}

const struct lut_kernel *lut_kernel_find(const struct lut_kernels *ks, int64_t m, int64_t k)
{
	for (uint32_t i = 0; i < ks->n_kernels; i++)
		if (ks->kernels[i].m == m && ks->kernels[i].k == k)
			return &ks->kernels[i];
	return NULL;
}

int lut_kernels_match(const struct lut_kernels *ks, const struct lut_params *p, size_t n,
		      struct bn_err *err)
{
	const char *q = lut_quant_name((enum lut_quant)ks->quant);
	for (size_t i = 0; i < n; i++) {
		const struct lut_kernel *kn = lut_kernel_find(ks, p[i].m, p[i].k);
		if (!kn)
			return bn_seterr(err, BN_EINVAL,
					 "%s [%" PRIu32 ",%" PRIu32 "]: the model has this weight shape "
					 "but the kernels were generated without it; regenerate them for "
					 "this model (make codegen)",
					 q, p[i].m, p[i].k);
		if ((uint32_t)kn->BM != p[i].BM || (uint32_t)kn->BK != p[i].BK ||
		    (uint32_t)kn->bm != p[i].bm)
			return bn_seterr(err, BN_EINVAL,
					 "%s [%" PRIu32 ",%" PRIu32 "]: the model was packed with BM=%" PRIu32
					 " BK=%" PRIu32 " bm=%" PRIu32 " but the kernels use BM=%d BK=%d "
					 "bm=%d; convert and generate from the same kernel_config.ini",
					 q, p[i].m, p[i].k, p[i].BM, p[i].BK, p[i].bm, (int)kn->BM,
					 (int)kn->BK, (int)kn->bm);
	}
	return 0;
}

int lut_kernels_match_config(const struct lut_kernels *ks, const char *text, size_t len,
			     struct bn_err *err)
{
	struct lut_params *p = NULL;
	size_t n = 0;
	int rc = lut_ini_parse((enum lut_quant)ks->quant, text, len, LUT_GGUF_KERNEL_CONFIG, &p, &n,
			       err);
	if (!rc)
		rc = lut_kernels_match(ks, p, n, err);
	free(p);
	return rc;
}

int lut_weight_init(struct lut_weight *w, const struct lut_kernels *ks, enum lut_quant type,
		    int64_t m, int64_t k, const void *data, size_t size, const char *name,
		    struct bn_err *err)
{
	const char *what = name ? name : "TL weight";
	if ((uint32_t)type != ks->quant)
		return bn_seterr(err, BN_EINVAL, "%s: a %s tensor, but the kernels are %s", what,
				 lut_quant_name(type), lut_quant_name((enum lut_quant)ks->quant));
	const struct lut_kernel *kn = lut_kernel_find(ks, m, k);
	if (!kn)
		return bn_seterr(err, BN_EINVAL,
				 "%s: [%" PRId64 ",%" PRId64 "]: no %s kernel for this shape; the kernels "
				 "were generated for another model; regenerate them (make codegen)",
				 what, m, k, lut_quant_name(type));
	uint64_t off = lut_scale_offset(type, (uint32_t)m, (uint32_t)k);
	if (size < off + 4)
		return bn_seterr(err, BN_EFORMAT,
				 "%s: %zu bytes of data, but a %s [%" PRId64 ",%" PRId64 "] tensor needs "
				 "%" PRIu64 " (packed weights, then the f32 scale)",
				 what, size, lut_quant_name(type), m, k, off + 4);
	w->kern = kn;
	w->data = (const uint8_t *)data;
	memcpy(&w->scale, w->data + off, sizeof w->scale);
	return 0;
}

size_t lut_lut_stride(const struct lut_kernel *kern)
{
	return kern->two_k || kern->three_k ? (size_t)kern->three_k / 3 * 32 : (size_t)kern->k * 16;
}

size_t lut_lut2_stride(const struct lut_kernel *kern)
{
	return (size_t)kern->two_k * 16;
}

size_t lut_scratch_size(const struct lut_kernel *kern, int64_t n)
{
	return (lut_lut_stride(kern) + lut_lut2_stride(kern) + sizeof(float)) * (size_t)n;
}

struct scratch_view {
	int8_t *lut, *lut2;
	float *scales;
};

static struct scratch_view view(const struct lut_kernel *kern, int64_t n, const void *scratch)
{
	struct scratch_view v;
	v.lut = (int8_t *)scratch;
	v.lut2 = v.lut + lut_lut_stride(kern) * (size_t)n;
	v.scales = (float *)(void *)(v.lut2 + lut_lut2_stride(kern) * (size_t)n);
	return v;
}

void lut_gemm_prepare(const struct lut_kernels *ks, const struct lut_weight *w, const float *act,
		      int64_t n, void *scratch)
{
	const struct lut_kernel *kn = w->kern;
	struct scratch_view v = view(kn, n, scratch);
	for (int64_t r = 0; r < n; r++)
		ks->preprocess(kn, act + r * kn->k, &v.scales[r], v.lut + lut_lut_stride(kn) * (size_t)r,
			       v.lut2 + lut_lut2_stride(kn) * (size_t)r);
}

void lut_gemm_compute(const struct lut_weight *w, int64_t n, float *out, const void *scratch,
		      int ith, int nth)
{
	const struct lut_kernel *kn = w->kern;
	struct scratch_view v = view(kn, n, scratch);
	const int32_t tiles = kn->m / kn->BM;
	const int32_t per = (tiles + nth - 1) / nth;
	const int32_t t0 = ith * per, t1 = t0 + per < tiles ? t0 + per : tiles;
	/* rows in chunks the kernels' int32 indexing and the stack stay comfortable with */
	for (int64_t r0 = 0; r0 < n; r0 += 4096) {
		const int32_t nb = (int32_t)(n - r0 < 4096 ? n - r0 : 4096);
		for (int32_t t = t0; t < t1; t++)
			kn->tile(w->data, t, v.lut + lut_lut_stride(kn) * (size_t)r0,
				 v.lut2 + lut_lut2_stride(kn) * (size_t)r0, v.scales + r0, w->scale,
				 out + r0 * kn->m, nb, kn->m);
	}
}

int lut_gemm(const struct lut_kernels *ks, const struct lut_weight *w, const float *act,
	     int64_t n, float *out, void *scratch, size_t scratch_size, struct bn_err *err)
{
	if (n < 0 || !w->kern)
		return bn_seterr(err, BN_EINVAL, "lut_gemm: bad arguments");
	if (scratch_size < lut_scratch_size(w->kern, n))
		return bn_seterr(err, BN_EINVAL, "lut_gemm: scratch of %zu bytes, %zu needed",
				 scratch_size, lut_scratch_size(w->kern, n));
	lut_gemm_prepare(ks, w, act, n, scratch);
	lut_gemm_compute(w, n, out, scratch, 0, 1);
	return 0;
}

/* The quantization plan (quant_plan.h): type rule, metadata rule, statistics, row encoders and
 * decoders, and the replay of llama-quantize's stale I2_S padding.  The I2_S and TQ encoders
 * here are branch-free rewrites of the kernels/ references that vectorise; the unit tests hold
 * them to the references byte for byte. */
#include "quant_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_fp16.h"
#include "bn_util.h"
#include "i2s.h"
#include "q8_0.h"
#include "tq.h"

/* The row loops are compiled for several instruction sets on x86-64 and the loader picks one
 * (ifunc): AVX2 and the baseline, plus AVX-512BW under clang, whose mask compares make the code
 * and check loops about a third cheaper than AVX2's blends (gcc 12 accepts no "avx512bw" clone,
 * and clang 14 never selects an "arch=x86-64-v4" one).  They round identically: AVX-512 brings
 * FMA, and mk/common.mk builds this library with -ffp-contract=off so that no a*b+c is fused.
 * Not under the sanitizers: an ifunc resolver runs before their runtime is set up
 * (ThreadSanitizer crashes). */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__x86_64__) && defined(__clang__) && !__has_feature(address_sanitizer) &&            \
	!__has_feature(thread_sanitizer) && !__has_feature(memory_sanitizer)
#define QP_HOT __attribute__((target_clones("avx512bw", "avx2", "default")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                           \
	!defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* gcc's -O2 "very cheap" cost model leaves the code loops scalar (2.3x slower) */
#define QP_HOT                                                                                     \
	__attribute__((target_clones("avx2", "default"), optimize("vect-cost-model=dynamic")))
#else
#define QP_HOT
#endif

static const struct {
	const char *name;
	uint32_t type, ftype;
} TARGETS[] = {
	[QP_I2_S] = { "I2_S", GGUF_TYPE_I2_S, QP_FTYPE_I2_S },
	[QP_TQ1_0] = { "TQ1_0", GGUF_TYPE_TQ1_0, QP_FTYPE_TQ1_0 },
	[QP_TQ2_0] = { "TQ2_0", GGUF_TYPE_TQ2_0, QP_FTYPE_TQ2_0 },
};

int qp_target_parse(const char *s, enum qp_target *out)
{
	for (size_t i = 0; i < BN_ARRAY_LEN(TARGETS); i++) {
		char num[12];
		snprintf(num, sizeof num, "%u", TARGETS[i].ftype);
		if (strcasecmp(s, TARGETS[i].name) == 0 || strcmp(s, num) == 0) {
			*out = (enum qp_target)i;
			return 0;
		}
	}
	return -1;
}

const char *qp_target_name(enum qp_target t)
{
	return TARGETS[t].name;
}

uint32_t qp_target_type(enum qp_target t)
{
	return TARGETS[t].type;
}

uint32_t qp_target_ftype(enum qp_target t)
{
	return TARGETS[t].ftype;
}

/* ---- the type rule ------------------------------------------------------------------------ */

int qp_model_from_gguf(const struct gguf_reader *r, struct qp_model *m, struct bn_err *err)
{
	memset(m, 0, sizeof *m);
	m->has_output = gguf_find_tensor(r, "output.weight") >= 0;
	int64_t kv = gguf_find_key(r, "general.architecture");
	struct gguf_str arch = { 0 };
	if (kv < 0 || gguf_get_str(r, kv, &arch, NULL) < 0)
		return 0;
	m->arch_falcon = arch.len == 6 && memcmp(arch.data, "falcon", 6) == 0;
	char key[160];
	if (arch.len > sizeof key - sizeof ".expert_count")
		return 0;
	memcpy(key, arch.data, arch.len);
	memcpy(key + arch.len, ".expert_count", sizeof ".expert_count");
	kv = gguf_find_key(r, key);
	if (kv >= 0 && gguf_get_u32(r, kv, &m->n_expert, err) < 0)
		return -BN_EFORMAT;
	return 0;
}

uint32_t qp_n_dims(uint32_t n_dims, const uint64_t *ne)
{
	while (n_dims > 1 && ne[n_dims - 1] == 1)
		n_dims--;
	return n_dims;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

bool qp_is_candidate(const char *name, uint32_t n_dims)
{
	static const char *const never_inside[] = {
		"_norm.weight",		 "ffn_gate_inp.weight", "ssm_conv1d.weight",
		"time_mix_first.weight", "time_mix_w1.weight",	"time_mix_w2.weight",
		"time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "attn_rel_b.weight",
	};
	if (!ends_with(name, "weight") || n_dims < 2)
		return false;
	for (size_t i = 0; i < BN_ARRAY_LEN(never_inside); i++)
		if (strstr(name, never_inside[i]))
			return false;
	return strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

/* The type llama-quantize picks for a candidate (before the TL rule). */
static uint32_t candidate_type(const struct qp_opts *o, const struct qp_model *m,
			       const char *name, const uint64_t *ne)
{
	uint32_t t = qp_target_type(o->target);
	bool is_output = strcmp(name, "output.weight") == 0;
	bool is_embd = strcmp(name, "token_embd.weight") == 0;
	if (is_output || (!m->has_output && is_embd)) {
		if (o->output_type != QP_TYPE_RULE)
			t = (uint32_t)o->output_type;
		else if (m->arch_falcon || ne[0] % QK_K != 0)
			t = GGUF_TYPE_Q8_0;
		else
			t = GGUF_TYPE_F16;
	} else if (is_embd) {
		t = GGUF_TYPE_F16;
	} else if (m->n_expert == 8 && (strstr(name, "attn_v.weight") || strstr(name, "attn_k.weight"))) {
		t = GGUF_TYPE_Q8_0;
	}
	if (o->token_embd_type != QP_TYPE_RULE && is_embd)
		t = (uint32_t)o->token_embd_type;
	if (o->output_type != QP_TYPE_RULE && is_output)
		t = (uint32_t)o->output_type;
	return t;
}

static bool is_float(uint32_t t)
{
	return t == GGUF_TYPE_F32 || t == GGUF_TYPE_F16 || t == GGUF_TYPE_BF16;
}

int qp_plan_tensor(const struct qp_opts *o, const struct qp_model *m, const char *name,
		   uint32_t in_type, uint32_t n_dims, const uint64_t *ne, struct qp_tensor *out,
		   struct bn_err *err)
{
	memset(out, 0, sizeof *out);
	if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
		return bn_seterr(err, BN_EFORMAT, "%s: n_dims %u is outside 1..%d", name, n_dims,
				 GGUF_MAX_DIMS);
	out->in_type = in_type;
	out->n_dims = qp_n_dims(n_dims, ne);
	out->n = 1;
	for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++) {
		out->ne[i] = i < n_dims ? ne[i] : 1;
		if (!bn_mul_u64(out->n, out->ne[i], &out->n))
			return bn_seterr(err, BN_ERANGE, "%s: element count overflows", name);
	}
	out->ne0 = out->ne[0];
	out->nrows = out->ne0 ? out->n / out->ne0 : 0;

	uint32_t t = in_type;
	if (qp_is_candidate(name, out->n_dims) && in_type != GGUF_TYPE_TL1 && in_type != GGUF_TYPE_TL2)
		t = candidate_type(o, m, name, out->ne);
	out->out_type = t;
	out->convert = t != in_type;

	const char *tn = gguf_type_name(t) ? gguf_type_name(t) : "?";
	if (out->convert) {
		bool from_i2s = in_type == GGUF_TYPE_I2_S &&
				(t == GGUF_TYPE_TQ1_0 || t == GGUF_TYPE_TQ2_0);
		if (!is_float(in_type) && !from_i2s)
			return bn_seterr(err, BN_EUNSUPPORTED,
					 "%s: cannot convert %s to %s; only F32, F16 and BF16 tensors "
					 "(and I2_S, to TQ1_0/TQ2_0) are converted",
					 name, gguf_type_name(in_type) ? gguf_type_name(in_type) : "?",
					 tn);
		if (t != GGUF_TYPE_F32 && t != GGUF_TYPE_F16 && t != GGUF_TYPE_Q8_0 &&
		    t != GGUF_TYPE_I2_S && t != GGUF_TYPE_TQ1_0 && t != GGUF_TYPE_TQ2_0)
			return bn_seterr(err, BN_EUNSUPPORTED, "%s: type %s is not supported; use "
					 "f32, f16 or q8_0", name, tn);
		uint64_t blk = gguf_type_block_size(t);
		if (t == GGUF_TYPE_I2_S)
			blk = I2S_BLOCK;
		if (out->ne0 % blk != 0)
			return bn_seterr(err, BN_EINVAL,
					 "%s: ne[0] = %llu is not a multiple of %llu; %s cannot pack it",
					 name, (unsigned long long)out->ne0, (unsigned long long)blk, tn);
		if (t == GGUF_TYPE_I2_S && out->n_dims > 2)
			return bn_seterr(err, BN_EUNSUPPORTED,
					 "%s: %u-dimensional tensor; I2_S holds one scale per 2-D "
					 "matrix and llama-quantize misplaces the others", name,
					 out->n_dims);
	}
	return gguf_tensor_nbytes(t, out->n_dims, out->ne, &out->out_nbytes, err) < 0
		       ? bn_err_prefix(err, "%s", name)
		       : 0;
}

/* ---- metadata ----------------------------------------------------------------------------- */

/* An integer KV of any integer type; false if absent or not an integer. */
static bool kv_int(const struct gguf_reader *r, const char *key, int64_t *out)
{
	struct gguf_value v;
	int64_t kv = gguf_find_key(r, key);
	if (kv < 0 || gguf_get_value(r, kv, &v, NULL) < 0)
		return false;
	switch (v.type) {
	case GGUF_VTYPE_UINT8: *out = v.v.u8; return true;
	case GGUF_VTYPE_INT8: *out = v.v.i8; return true;
	case GGUF_VTYPE_UINT16: *out = v.v.u16; return true;
	case GGUF_VTYPE_INT16: *out = v.v.i16; return true;
	case GGUF_VTYPE_UINT32: *out = v.v.u32; return true;
	case GGUF_VTYPE_INT32: *out = v.v.i32; return true;
	case GGUF_VTYPE_UINT64: *out = v.v.u64 > INT64_MAX ? INT64_MAX : (int64_t)v.v.u64; return true;
	case GGUF_VTYPE_INT64: *out = v.v.i64; return true;
	default: return false;
	}
}

int qp_check_input(const struct gguf_reader *r, struct bn_err *err)
{
	int64_t v;
	if (kv_int(r, "split.count", &v) && v > 1)
		return bn_seterr(err, BN_EUNSUPPORTED, "split.count = %lld: one file of a split model; "
				 "merge the parts first (llama-gguf-split --merge)", (long long)v);
	return 0;
}

int qp_copy_kvs(struct gguf_writer *w, const struct gguf_reader *r, enum qp_target t,
		struct bn_err *err)
{
	static const char QV[] = "general.quantization_version", FT[] = "general.file_type";
	bool have_qv = gguf_find_key(r, QV) >= 0, have_ft = gguf_find_key(r, FT) >= 0;
	for (size_t i = 0; i < gguf_n_kv(r); i++) {
		const char *key = gguf_kv_key(r, (int64_t)i);
		int rc;
		if (strcmp(key, "split.no") == 0 || strcmp(key, "split.count") == 0 ||
		    strcmp(key, "split.tensors.count") == 0)
			continue;
		if (strcmp(key, QV) == 0)
			rc = gguf_writer_add_u32(w, QV, GGUF_QNT_VERSION, err);
		else if (strcmp(key, FT) == 0)
			rc = gguf_writer_add_u32(w, FT, qp_target_ftype(t), err);
		else
			rc = gguf_writer_copy_kv(w, r, (int64_t)i, err);
		if (rc < 0)
			return rc;
	}
	int rc = 0;
	if (!have_qv)
		rc = gguf_writer_add_u32(w, QV, GGUF_QNT_VERSION, err);
	if (!rc && !have_ft)
		rc = gguf_writer_add_u32(w, FT, qp_target_ftype(t), err);
	return rc;
}

/* ---- statistics --------------------------------------------------------------------------- */

void qp_stats_init(struct qp_stats *s)
{
	s->absmax = 0.0;
	s->min_nonzero = INFINITY;
	s->n_nonfinite = 0;
	s->first_nonfinite = UINT64_MAX;
	s->first_bad_value = 0.0f;
}

/* The fast loop works on the bit patterns of |x| (for non-negative floats their order is the
 * integer order) in 16 independent lanes that the compiler vectorises; a maximum >= 0x7f800000
 * means an Inf or NaN is present, and the exact slow loop then finds it.  The minimum non-zero
 * value uses bits - 1, which wraps 0 to the top. */
#define STAT_LANES 16

QP_HOT static void stats_add(struct qp_stats *s, const float *x, size_t n, uint64_t first)
{
	uint32_t mx[STAT_LANES] = { 0 }, mn[STAT_LANES];
	for (int j = 0; j < STAT_LANES; j++)
		mn[j] = UINT32_MAX;
	size_t i = 0;
	for (; i + STAT_LANES <= n; i += STAT_LANES)
		for (int j = 0; j < STAT_LANES; j++) {
			uint32_t b = bn_f32_bits(x[i + (size_t)j]) & 0x7fffffffu, z = b - 1;
			mx[j] = b > mx[j] ? b : mx[j];
			mn[j] = z < mn[j] ? z : mn[j];
		}
	for (; i < n; i++) {
		uint32_t b = bn_f32_bits(x[i]) & 0x7fffffffu, z = b - 1;
		mx[0] = b > mx[0] ? b : mx[0];
		mn[0] = z < mn[0] ? z : mn[0];
	}
	uint32_t amax = 0, zmin = UINT32_MAX;
	for (int j = 0; j < STAT_LANES; j++) {
		amax = mx[j] > amax ? mx[j] : amax;
		zmin = mn[j] < zmin ? mn[j] : zmin;
	}
	if (amax >= 0x7f800000u) { /* Inf or NaN somewhere: the exact slow loop */
		amax = 0;
		zmin = UINT32_MAX;
		for (i = 0; i < n; i++) {
			uint32_t b = bn_f32_bits(x[i]) & 0x7fffffffu;
			if (b >= 0x7f800000u) {
				if (first + i < s->first_nonfinite) {
					s->first_nonfinite = first + i;
					s->first_bad_value = x[i];
				}
				s->n_nonfinite++;
				continue;
			}
			amax = b > amax ? b : amax;
			zmin = b - 1 < zmin ? b - 1 : zmin;
		}
	}
	if ((double)bn_bits_f32(amax) > s->absmax)
		s->absmax = bn_bits_f32(amax);
	float mnz = zmin == UINT32_MAX ? INFINITY : bn_bits_f32(zmin + 1);
	if (mnz < s->min_nonzero)
		s->min_nonzero = mnz;
}

void qp_stats_add(struct qp_stats *s, const float *x, size_t n, uint64_t first)
{
	stats_add(s, x, n, first); /* a static clone: clang 14 emits no ifunc for an unused extern one */
}

void qp_stats_merge(struct qp_stats *into, const struct qp_stats *from)
{
	if (from->absmax > into->absmax)
		into->absmax = from->absmax;
	if (from->min_nonzero < into->min_nonzero)
		into->min_nonzero = from->min_nonzero;
	into->n_nonfinite += from->n_nonfinite;
	if (from->first_nonfinite < into->first_nonfinite) {
		into->first_nonfinite = from->first_nonfinite;
		into->first_bad_value = from->first_bad_value;
	}
}

bool qp_stats_ternary(const struct qp_stats *s, uint32_t out_type)
{
	if (s->n_nonfinite)
		return false;
	if (s->absmax == 0.0)
		return true;
	if ((double)s->min_nonzero != s->absmax)
		return false;
	return out_type != GGUF_TYPE_I2_S || s->absmax >= 1e-6;
}

/* ---- encoders ----------------------------------------------------------------------------- */

uint64_t qp_rows_nbytes(uint32_t type, uint64_t ne0, uint64_t nrows)
{
	uint64_t n = ne0 * nrows;
	switch (type) {
	case GGUF_TYPE_F32:
		return 4 * n;
	case GGUF_TYPE_F16:
	case GGUF_TYPE_BF16:
		return 2 * n;
	case GGUF_TYPE_Q8_0:
		return n / QK8_0 * sizeof(struct q8_0_block);
	case GGUF_TYPE_TQ1_0:
		return n / QK_K * sizeof(struct tq1_block);
	case GGUF_TYPE_TQ2_0:
		return n / QK_K * sizeof(struct tq2_block);
	case GGUF_TYPE_I2_S:
		return n / 4;
	default:
		return 0;
	}
}

/* The smallest float above 1e-6: for a float a, (double)a < 1e-6 exactly when a < this (1e-6
 * is not a float, so no float equals it). */
static float dead_zone(void)
{
	float t = (float)1e-6;
	return (double)t < 1e-6 ? nextafterf(t, INFINITY) : t;
}

/* §7.4 codes for scale > 0 (then x·scale > 0 is x > 0): 1 in the dead zone, 2 above, 0 below,
 * written as 1 + (x >= dz) - (x <= -dz) so that it vectorises. */
QP_HOT static void i2s_pack_rows(const float *x, size_t n, uint8_t *dst)
{
	const float dz = dead_zone();
	for (size_t b = 0; b < n / I2S_BLOCK; b++) {
		const float *xb = x + b * I2S_BLOCK;
		uint8_t *d = dst + b * I2S_BLOCK_BYTES;
		for (int m = 0; m < 32; m++) {
			float v0 = xb[m], v1 = xb[32 + m], v2 = xb[64 + m], v3 = xb[96 + m];
			uint32_t c0 = 1u + (v0 >= dz) - (v0 <= -dz), c1 = 1u + (v1 >= dz) - (v1 <= -dz);
			uint32_t c2 = 1u + (v2 >= dz) - (v2 <= -dz), c3 = 1u + (v3 >= dz) - (v3 <= -dz);
			d[m] = (uint8_t)(c0 << 6 | c1 << 4 | c2 << 2 | c3);
		}
	}
}

/* f32 -> f16, round to nearest even, branch-free (bn_f32_to_f16's results, which the tests
 * check): normal results by integer rounding on bit 13, subnormal ones by the FPU's own
 * rounding when adding 0.5 (whose ulp, 2^-24, is the f16 subnormal step). */
static inline uint16_t f16_rne(float f)
{
	uint32_t u = bn_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
	uint32_t norm = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13; /* a - (112 << 23) + ... */
	uint32_t sub = bn_f32_bits(bn_bits_f32(a) + 0.5f) - 0x3f000000u;
	uint32_t r = a < 0x38800000u ? sub : norm;
	uint32_t special = a > 0x7f800000u ? 0x7e00u | ((a >> 13) & 0x3ffu) : 0x7c00u;
	r = a >= 0x47800000u ? special : r;
	return (uint16_t)(sign | r);
}

/* Mainline's block scale and trits; lroundf(y) for |y| <= 1 (always true: |x| <= max) is 1 from
 * 0.5 up, -1 from -0.5 down, else 0. */
/* max |x| of a block as a bit pattern (the integer order of non-negative floats), in lanes the
 * compiler vectorises. */
static inline uint32_t block_absmax_bits(const float *x, int n)
{
	uint32_t mx[8] = { 0 };
	for (int j = 0; j < n; j += 8)
		for (int l = 0; l < 8; l++) {
			uint32_t b = bn_f32_bits(x[j + l]) & 0x7fffffffu;
			mx[l] = b > mx[l] ? b : mx[l];
		}
	uint32_t m = 0;
	for (int l = 0; l < 8; l++)
		m = mx[l] > m ? mx[l] : m;
	return m;
}

/* Mainline's block scale and trits; lroundf(y) for |y| <= 1 (always true: |x| <= max) is 1 from
 * 0.5 up, -1 from -0.5 down, else 0. */
static inline float tq_trits(const float *x, uint8_t t[QK_K])
{
	float amax = bn_bits_f32(block_absmax_bits(x, QK_K));
	float id = amax != 0.0f ? 1.0f / amax : 0.0f;
	for (int j = 0; j < QK_K; j++) {
		float y = x[j] * id;
		t[j] = (uint8_t)(1 + (y >= 0.5f) - (y <= -0.5f));
	}
	return amax;
}

static uint8_t tq1_byte(unsigned v)
{
	return (uint8_t)((v * 256 + 242) / 243); /* ceil(v·256/243), v <= 242 */
}

QP_HOT static void tq1_encode(const float *x, size_t n, struct tq1_block *y)
{
	uint8_t t[QK_K];
	for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
		struct tq1_block *b = &y[i];
		b->d = bn_f32_to_f16(tq_trits(x, t));
		for (int m = 0; m < 32; m++)
			b->qs[m] = tq1_byte(t[m] * 81u + t[m + 32] * 27u + t[m + 64] * 9u +
					    t[m + 96] * 3u + t[m + 128]);
		for (int m = 0; m < 16; m++)
			b->qs[32 + m] = tq1_byte(t[160 + m] * 81u + t[176 + m] * 27u +
						 t[192 + m] * 9u + t[208 + m] * 3u + t[224 + m]);
		for (int j = 0; j < 4; j++)
			b->qh[j] = tq1_byte((t[240 + j] * 27u + t[244 + j] * 9u + t[248 + j] * 3u +
					     t[252 + j]) * 3u);
	}
}

QP_HOT static void tq2_encode(const float *x, size_t n, struct tq2_block *y)
{
	uint8_t t[QK_K];
	for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
		struct tq2_block *b = &y[i];
		b->d = bn_f32_to_f16(tq_trits(x, t));
		for (int h = 0; h < 2; h++)
			for (int m = 0; m < 32; m++) {
				const uint8_t *tt = t + 128 * h + m;
				b->qs[32 * h + m] = (uint8_t)(tt[0] | tt[32] << 2 | tt[64] << 4 |
							      tt[96] << 6);
			}
	}
}

QP_HOT static void f16_rows(const float *x, size_t n, uint8_t *dst)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h = f16_rne(x[i]);
		memcpy(dst + 2 * i, &h, 2);
	}
}

void qp_encode_rows(uint32_t out_type, const float *x, uint64_t ne0, size_t nrows,
		    double i2s_scale, uint8_t *dst)
{
	size_t n = (size_t)(ne0 * nrows);
	switch (out_type) {
	case GGUF_TYPE_F32:
		memcpy(dst, x, n * 4);
		break;
	case GGUF_TYPE_F16:
		f16_rows(x, n, dst);
		break;
	case GGUF_TYPE_Q8_0:
		quantize_q8_0_ref(x, n, (struct q8_0_block *)(void *)dst);
		break;
	case GGUF_TYPE_TQ1_0:
		tq1_encode(x, n, (struct tq1_block *)(void *)dst);
		break;
	case GGUF_TYPE_TQ2_0:
		tq2_encode(x, n, (struct tq2_block *)(void *)dst);
		break;
	case GGUF_TYPE_I2_S:
		if (i2s_scale > 0)
			i2s_pack_rows(x, n, dst);
		else /* an all-zero tensor (or a caller's odd scale): the reference decides */
			i2s_pack_f32(x, n, i2s_scale, dst);
		break;
	default:
		break;
	}
}

/* I2_S codes and the statistics of the same values in one pass (the values are read once):
 * per column m of the 32-byte block, the largest |x| bit pattern and the smallest (bits - 1),
 * as in stats_add. */
QP_HOT static void i2s_pack_stats(const float *x, size_t n, uint8_t *dst, uint32_t *amax,
				  uint32_t *zmin)
{
	const float dz = dead_zone();
	uint32_t mx[32], mn[32];
	for (int m = 0; m < 32; m++) {
		mx[m] = 0;
		mn[m] = UINT32_MAX;
	}
	for (size_t b = 0; b < n / I2S_BLOCK; b++) {
		const float *xb = x + b * I2S_BLOCK;
		uint8_t *d = dst + b * I2S_BLOCK_BYTES;
		/* 4 KiB ahead: the hardware prefetcher alone leaves a single thread at ~5 GB/s */
		for (int l = 0; l < 8; l++)
			__builtin_prefetch(xb + 1024 + 16 * l);
		for (int m = 0; m < 32; m++) {
			float v0 = xb[m], v1 = xb[32 + m], v2 = xb[64 + m], v3 = xb[96 + m];
			uint32_t c0 = 1u + (v0 >= dz) - (v0 <= -dz), c1 = 1u + (v1 >= dz) - (v1 <= -dz);
			uint32_t c2 = 1u + (v2 >= dz) - (v2 <= -dz), c3 = 1u + (v3 >= dz) - (v3 <= -dz);
			d[m] = (uint8_t)(c0 << 6 | c1 << 4 | c2 << 2 | c3);
			uint32_t a0 = bn_f32_bits(v0) & 0x7fffffffu, a1 = bn_f32_bits(v1) & 0x7fffffffu;
			uint32_t a2 = bn_f32_bits(v2) & 0x7fffffffu, a3 = bn_f32_bits(v3) & 0x7fffffffu;
			uint32_t h01 = a0 > a1 ? a0 : a1, h23 = a2 > a3 ? a2 : a3;
			uint32_t hi = h01 > h23 ? h01 : h23;
			uint32_t l01 = a0 - 1 < a1 - 1 ? a0 - 1 : a1 - 1;
			uint32_t l23 = a2 - 1 < a3 - 1 ? a2 - 1 : a3 - 1;
			uint32_t lo = l01 < l23 ? l01 : l23;
			mx[m] = hi > mx[m] ? hi : mx[m];
			mn[m] = lo < mn[m] ? lo : mn[m];
		}
	}
	uint32_t h = 0, l = UINT32_MAX;
	for (int m = 0; m < 32; m++) {
		h = mx[m] > h ? mx[m] : h;
		l = mn[m] < l ? mn[m] : l;
	}
	*amax = h;
	*zmin = l;
}

void qp_encode_stats_rows(uint32_t out_type, const float *x, uint64_t ne0, size_t nrows,
			  uint8_t *dst, struct qp_stats *st, uint64_t first)
{
	size_t n = (size_t)(ne0 * nrows);
	if (out_type != GGUF_TYPE_I2_S) {
		stats_add(st, x, n, first);
		qp_encode_rows(out_type, x, ne0, nrows, 1.0, dst);
		return;
	}
	uint32_t amax, zmin;
	i2s_pack_stats(x, n, dst, &amax, &zmin);
	if (amax >= 0x7f800000u) { /* NaN or Inf: the exact statistics name it */
		stats_add(st, x, n, first);
		return;
	}
	if ((double)bn_bits_f32(amax) > st->absmax)
		st->absmax = bn_bits_f32(amax);
	float mnz = zmin == UINT32_MAX ? INFINITY : bn_bits_f32(zmin + 1);
	if (mnz < st->min_nonzero)
		st->min_nonzero = mnz;
}

void qp_i2s_tail(float scale, const uint8_t *pad, uint8_t tail[32])
{
	memcpy(tail, &scale, 4);
	if (pad)
		memcpy(tail + 4, pad, QP_I2S_TAIL_PAD);
	else
		memset(tail + 4, 0, QP_I2S_TAIL_PAD);
}

/* ---- decoders ----------------------------------------------------------------------------- */

static void i2s_decode_rows(const uint8_t *src, size_t n, float scale, float *y)
{
	for (size_t b = 0; b < n / I2S_BLOCK; b++) {
		const uint8_t *s = src + b * I2S_BLOCK_BYTES;
		float *yb = y + b * I2S_BLOCK;
		for (int m = 0; m < 32; m++) {
			int v = s[m];
			yb[m] = (float)((v >> 6) - 1) * scale;
			yb[32 + m] = (float)(((v >> 4) & 3) - 1) * scale;
			yb[64 + m] = (float)(((v >> 2) & 3) - 1) * scale;
			yb[96 + m] = (float)((v & 3) - 1) * scale;
		}
	}
}

void qp_decode_rows(uint32_t type, const uint8_t *src, uint64_t ne0, size_t nrows,
		    float i2s_scale, float *y)
{
	size_t n = (size_t)(ne0 * nrows);
	uint16_t h;
	switch (type) {
	case GGUF_TYPE_F32:
		memcpy(y, src, n * 4);
		break;
	case GGUF_TYPE_F16:
		for (size_t i = 0; i < n; i++) {
			memcpy(&h, src + 2 * i, 2);
			y[i] = bn_f16_to_f32(h);
		}
		break;
	case GGUF_TYPE_BF16:
		for (size_t i = 0; i < n; i++) {
			memcpy(&h, src + 2 * i, 2);
			y[i] = bn_bf16_to_f32(h);
		}
		break;
	case GGUF_TYPE_Q8_0:
		dequantize_q8_0_ref((const struct q8_0_block *)(const void *)src, n, y);
		break;
	case GGUF_TYPE_TQ1_0:
		dequantize_tq1_ref((const struct tq1_block *)(const void *)src, n, y);
		break;
	case GGUF_TYPE_TQ2_0:
		dequantize_tq2_ref((const struct tq2_block *)(const void *)src, n, y);
		break;
	case GGUF_TYPE_I2_S:
		i2s_decode_rows(src, n, i2s_scale, y);
		break;
	default:
		break;
	}
}

/* Digit n (0 = most significant) of a stored TQ1_0 byte, as users.md part 3 describes: multiply
 * by 3^n in 8 bits, then by 3 in 16 bits, and take the high byte. */
static inline uint8_t tq1_digit(uint8_t q, unsigned pow3n)
{
	return (uint8_t)(((unsigned)(uint8_t)(q * pow3n) * 3u) >> 8);
}

/* The trits stored in a block, in weight order. */
static void tq_read_trits(uint32_t type, const uint8_t *blk, uint8_t t[QK_K])
{
	static const unsigned pow3[5] = { 1, 3, 9, 27, 81 };
	if (type == GGUF_TYPE_TQ2_0) {
		for (int h = 0; h < 2; h++)
			for (int k = 0; k < 4; k++)
				for (int m = 0; m < 32; m++)
					t[128 * h + 32 * k + m] = (blk[32 * h + m] >> (2 * k)) & 3;
		return;
	}
	for (int k = 0; k < 5; k++)
		for (int m = 0; m < 32; m++)
			t[32 * k + m] = tq1_digit(blk[m], pow3[k]);
	for (int k = 0; k < 5; k++)
		for (int m = 0; m < 16; m++)
			t[160 + 16 * k + m] = tq1_digit(blk[32 + m], pow3[k]);
	for (int k = 0; k < 4; k++)
		for (int j = 0; j < 4; j++)
			t[240 + 4 * k + j] = tq1_digit(blk[48 + j], pow3[k]);
}

/* A TQ block against its input: d = fp16(max|x|); trits = sign(x) + 1 when the block is
 * ternary (every non-zero |x| is the max), else the reference's lroundf(x/max) + 1. */
QP_HOT static size_t tq_verify(uint32_t type, const uint8_t *w, const float *x, size_t n)
{
	size_t bsz = type == GGUF_TYPE_TQ1_0 ? sizeof(struct tq1_block) : sizeof(struct tq2_block);
	uint8_t got[QK_K], want[QK_K];
	for (size_t b = 0; b < n / QK_K; b++) {
		const float *xb = x + b * QK_K;
		const uint8_t *blk = w + b * bsz;
		uint32_t mbits = block_absmax_bits(xb, QK_K);
		float m = bn_bits_f32(mbits);
		uint16_t d;
		memcpy(&d, blk + bsz - 2, 2);
		if (d != bn_f32_to_f16(m))
			return b * QK_K;
		unsigned odd = 0;
		for (int j = 0; j < QK_K; j++) {
			uint32_t a = bn_f32_bits(xb[j]) & 0x7fffffffu;
			odd |= a != 0 && a != mbits;
			want[j] = (uint8_t)(1 + (xb[j] > 0.0f) - (xb[j] < 0.0f));
		}
		if (odd) {
			float id = m != 0.0f ? 1.0f / m : 0.0f;
			for (int j = 0; j < QK_K; j++)
				want[j] = (uint8_t)(lroundf(xb[j] * id) + 1);
		}
		tq_read_trits(type, blk, got);
		if (memcmp(got, want, QK_K) != 0)
			for (int j = 0; j < QK_K; j++)
				if (got[j] != want[j])
					return b * QK_K + (size_t)j;
	}
	return SIZE_MAX;
}

/* The reference's code rule (i2s_code_of with a positive scale) in floats: |x| < 1e-6 in
 * double is |x| < dz in float; 1 in the dead zone, else 2 if x > 0, else 0.  Written without a
 * conditional choice so that gcc vectorises it too. */
static inline unsigned ref_code(float x, float dz)
{
	unsigned outside = !(fabsf(x) < dz);
	return (1u - outside) + 2u * (outside & (x > 0.0f));
}

/* Codes against the reference rule, a block at a time; the slow loop names the element. */
QP_HOT static size_t i2s_verify(const uint8_t *w, const float *x, size_t n)
{
	const float dz = dead_zone();
	for (size_t b = 0; b < n / I2S_BLOCK; b++) {
		const uint8_t *s = w + b * I2S_BLOCK_BYTES;
		const float *xb = x + b * I2S_BLOCK;
		unsigned bad = 0;
		for (int m = 0; m < 32; m++)
			bad |= s[m] ^ (ref_code(xb[m], dz) << 6 | ref_code(xb[32 + m], dz) << 4 |
				       ref_code(xb[64 + m], dz) << 2 | ref_code(xb[96 + m], dz));
		if (bad)
			for (int j = 0; j < I2S_BLOCK; j++)
				if (((s[j % 32] >> (6 - 2 * (j / 32))) & 3u) != i2s_code_of(xb[j], 1.0))
					return b * I2S_BLOCK + (size_t)j;
	}
	return SIZE_MAX;
}

QP_HOT static size_t f16_verify(const uint8_t *w, const float *x, size_t n)
{
	unsigned bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, w + 2 * i, 2);
		bad |= (unsigned)(h ^ f16_rne(x[i]));
	}
	if (bad)
		for (size_t i = 0; i < n; i++) {
			uint16_t h;
			memcpy(&h, w + 2 * i, 2);
			if (h != f16_rne(x[i]))
				return i;
		}
	return SIZE_MAX;
}

size_t qp_verify_rows(uint32_t out_type, const uint8_t *w, const float *x, uint64_t ne0,
		      size_t nrows)
{
	size_t n = (size_t)(ne0 * nrows);
	switch (out_type) {
	case GGUF_TYPE_I2_S:
		return i2s_verify(w, x, n);
	case GGUF_TYPE_TQ1_0:
	case GGUF_TYPE_TQ2_0:
		return tq_verify(out_type, w, x, n);
	case GGUF_TYPE_F16:
		return f16_verify(w, x, n);
	case GGUF_TYPE_Q8_0: {
		struct q8_0_block q;
		for (size_t b = 0; b < n / QK8_0; b++) {
			quantize_q8_0_ref(x + b * QK8_0, QK8_0, &q);
			if (memcmp(&q, w + b * sizeof q, sizeof q) != 0)
				return b * QK8_0;
		}
		return SIZE_MAX;
	}
	case GGUF_TYPE_F32:
		for (size_t i = 0; i < n; i++)
			if (memcmp(w + 4 * i, x + i, 4) != 0)
				return i;
		return SIZE_MAX;
	default:
		return 0;
	}
}

/* ---- stale padding ------------------------------------------------------------------------ */

/* One padding byte of one I2_S tensor: the byte at scratch position `pos` that tensor `src`
 * (the last converted tensor before it that wrote that far) left. */
struct stale_req {
	uint32_t src;
	uint64_t pos;
	uint8_t *dst;
};

struct qp_stale {
	size_t n;
	uint8_t (*pad)[QP_I2S_TAIL_PAD]; /* per tensor */
	bool *has_pad;
	struct stale_req *req;           /* sorted by src */
	size_t n_req;
	size_t *first_req;               /* per tensor: index of its first request, n+1 entries */
};

/* Bytes a converted tensor leaves in llama-quantize's scratch buffer: everything it encodes,
 * which for I2_S is the codes and the 4-byte scale but not the padding. */
static uint64_t scratch_bytes(const struct qp_tensor *t)
{
	if (!t->convert)
		return 0;
	return t->out_type == GGUF_TYPE_I2_S ? t->n / 4 + 4 : t->out_nbytes;
}

static int cmp_req(const void *a, const void *b)
{
	const struct stale_req *x = a, *y = b;
	return (x->src > y->src) - (x->src < y->src);
}

struct qp_stale *qp_stale_new(const struct qp_tensor *plan, size_t n)
{
	struct qp_stale *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->n = n;
	size_t n_i2s = 0;
	for (size_t i = 0; i < n; i++)
		n_i2s += plan[i].convert && plan[i].out_type == GGUF_TYPE_I2_S;
	s->pad = calloc(n ? n : 1, sizeof *s->pad);
	s->has_pad = calloc(n ? n : 1, sizeof *s->has_pad);
	s->req = calloc(n_i2s * QP_I2S_TAIL_PAD + 1, sizeof *s->req);
	s->first_req = calloc(n + 1, sizeof *s->first_req);
	if (!s->pad || !s->has_pad || !s->req || !s->first_req) {
		qp_stale_free(s);
		return NULL;
	}
	for (size_t j = 0; j < n; j++) {
		if (!plan[j].convert || plan[j].out_type != GGUF_TYPE_I2_S)
			continue;
		s->has_pad[j] = true;
		uint64_t base = plan[j].n / 4 + 4;
		for (int k = 0; k < QP_I2S_TAIL_PAD; k++)
			for (size_t i = j; i-- > 0;)
				if (scratch_bytes(&plan[i]) > base + (uint64_t)k) {
					s->req[s->n_req++] = (struct stale_req){
						.src = (uint32_t)i, .pos = base + (uint64_t)k,
						.dst = &s->pad[j][k] };
					break;
				}
	}
	qsort(s->req, s->n_req, sizeof *s->req, cmp_req);
	for (size_t i = 0, r = 0; i <= n; i++) {
		while (r < s->n_req && s->req[r].src < i)
			r++;
		s->first_req[i] = r;
	}
	return s;
}

void qp_stale_free(struct qp_stale *s)
{
	if (!s)
		return;
	free(s->pad);
	free(s->has_pad);
	free(s->req);
	free(s->first_req);
	free(s);
}

void qp_stale_feed(struct qp_stale *s, size_t i, uint64_t off, const uint8_t *p, size_t len)
{
	if (i >= s->n)
		return;
	for (size_t r = s->first_req[i]; r < s->first_req[i + 1]; r++)
		if (s->req[r].pos >= off && s->req[r].pos - off < len)
			*s->req[r].dst = p[s->req[r].pos - off];
}

const uint8_t *qp_stale_pad(const struct qp_stale *s, size_t i)
{
	return i < s->n && s->has_pad[i] ? s->pad[i] : NULL;
}

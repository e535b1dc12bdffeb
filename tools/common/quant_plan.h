/* The quantization plan shared by i2s-quantize and gguf-convert's direct outputs: which type
 * every tensor gets, the metadata rule, byte sizes, and the row encoders/decoders for I2_S,
 * TQ1_0, TQ2_0, F16 and Q8_0.  Invariant: a file written with this plan is what merge-dev's
 * `llama-quantize IN OUT <TYPE> 1` writes (../shared/docs/convert-quantize.md §7), except the
 * 28 I2_S padding bytes, which are zeros unless struct qp_stale reproduces llama-quantize's.
 *
 * Link order: this module calls the scalar references of kernels/ (i2s.h, tq.h, q8_0.h), so a
 * program linking libcommon.a links $(LIBDIR)/libkernels.a after it.
 *
 * Tensor types (§7.3, merge-dev llama_model_quantize_internal + llama_tensor_get_type; the same
 * rules for the three targets):
 *   candidate  name ends in "weight", ggml_n_dims >= 2, name does not contain "_norm.weight",
 *              "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
 *              "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
 *              "time_mix_decay_w2.weight", "attn_rel_b.weight", and is not
 *              "position_embd.weight" or "token_types.weight";
 *   output.weight, or token_embd.weight when there is no output.weight:
 *              --output-tensor-type if given, else Q8_0 if ne[0] % 256 != 0 or the architecture
 *              is "falcon", else F16;
 *   token_embd.weight when output.weight exists: F16;
 *   attn_k / attn_v of a model with exactly 8 experts: Q8_0;
 *   every other candidate: the target (I2_S, TQ1_0 or TQ2_0);
 *   then --token-embedding-type overrides token_embd.weight and --output-tensor-type
 *   output.weight; a TL1/TL2 tensor keeps its type; non-candidates keep theirs.
 *   A tensor whose type does not change is copied byte for byte; the others are converted
 *   from F32, F16 or BF16 (and, for the TQ targets, from I2_S; see i2s-quantize).
 * Unlike llama-quantize, a tensor the target cannot hold is an error, never a silent fallback:
 *   I2_S needs ne[0] % 128 == 0 (§8.1) and at most 2 dimensions, TQ1_0/TQ2_0 ne[0] % 256 == 0,
 *   Q8_0 ne[0] % 32 == 0; a quantized input (other than I2_S) is not requantized.
 *
 * Metadata (§7.2): every input KV in order; general.quantization_version = u32 2 set in place
 * or appended, then general.file_type = u32 <target ftype> set in place or appended; split.no,
 * split.count and split.tensors.count dropped.  ftypes: I2_S 40 (BitNet fork), TQ1_0 36,
 * TQ2_0 37 (llama.h LLAMA_FTYPE_MOSTLY_TQ1_0/TQ2_0, identical in merge-dev and mainline).
 *
 * Encodings (all little-endian):
 *   I2_S   §7.4 and §8.1 (layout in kernels/i2s.h): scale = max|x| over the whole tensor, in
 *          double, stored as f32 at byte N/4; code 1 if |x| < 1e-6, else 2 if x > 0, else 0;
 *          rows of ne[0]/4 bytes, then a 32-byte tail: scale + 28 padding bytes;
 *   TQ1_0, TQ2_0  mainline ggml (layout in kernels/tq.h, users.md part 3): per 256 values
 *          d = fp16(max|x|), trit = lroundf(x·(1/d32)) + 1 with d32 the f32 max;
 *   F16    round to nearest even;  Q8_0  §7.3 (kernels/q8_0.h).
 */
#ifndef QUANT_PLAN_H
#define QUANT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "gguf.h"

enum qp_target { QP_I2_S, QP_TQ1_0, QP_TQ2_0 };

#define QP_TYPE_RULE (-1)     /* "no override": the rule above decides */
#define QP_FTYPE_TQ1_0 36
#define QP_FTYPE_TQ2_0 37
#define QP_FTYPE_I2_S 40
#define QP_I2S_TAIL_PAD 28    /* padding bytes after the 4-byte I2_S scale */

/* "i2_s", "tq1_0", "tq2_0" in any case, or the ftype number ("40", "36", "37"), as
 * llama-quantize accepts its TYPE argument.  Returns 0, or -1 for anything else. */
int qp_target_parse(const char *s, enum qp_target *out);
/* "I2_S", "TQ1_0", "TQ2_0". */
const char *qp_target_name(enum qp_target t);
/* The ggml tensor type (36, 34, 35) and the general.file_type value (40, 36, 37). */
uint32_t qp_target_type(enum qp_target t);
uint32_t qp_target_ftype(enum qp_target t);

struct qp_opts {
	enum qp_target target;
	int token_embd_type; /* QP_TYPE_RULE, or GGUF_TYPE_F32 / F16 / Q8_0 (--token-embedding-type) */
	int output_type;     /* QP_TYPE_RULE, or GGUF_TYPE_F32 / F16 / Q8_0 (--output-tensor-type) */
};

/* What the type rule needs to know about the whole model. */
struct qp_model {
	bool has_output;   /* a tensor is named "output.weight" */
	bool arch_falcon;  /* general.architecture is "falcon" */
	uint32_t n_expert; /* <arch>.expert_count, 0 if absent */
};

/* Fills *m from a GGUF file's KVs and tensor names.  Fails only on a malformed expert_count. */
int qp_model_from_gguf(const struct gguf_reader *r, struct qp_model *m, struct bn_err *err);

/* ggml_n_dims: n_dims without trailing extents of 1, at least 1. */
uint32_t qp_n_dims(uint32_t n_dims, const uint64_t *ne);
/* The candidate test above; n_dims as qp_n_dims gives it. */
bool qp_is_candidate(const char *name, uint32_t n_dims);

/* One tensor of the plan. */
struct qp_tensor {
	uint32_t in_type, out_type;
	uint32_t n_dims;       /* qp_n_dims of the input: what llama-quantize writes */
	uint64_t ne[GGUF_MAX_DIMS];
	uint64_t n;            /* elements */
	uint64_t ne0, nrows;   /* row length and number of rows (n / ne0) */
	uint64_t out_nbytes;   /* gguf_tensor_nbytes of the output, I2_S tail included */
	bool convert;          /* out_type != in_type: encoded; otherwise copied */
};

/* Decides one tensor's output type and size.  Errors name the tensor, e.g.
 * "blk.3.ffn_down.weight: ne[0] = 6913 is not a multiple of 128; I2_S cannot pack it". */
int qp_plan_tensor(const struct qp_opts *o, const struct qp_model *m, const char *name,
		   uint32_t in_type, uint32_t n_dims, const uint64_t *ne, struct qp_tensor *out,
		   struct bn_err *err);

/* ---- metadata ---------------------------------------------------------------------------- */

/* Refuses one part of a split model (split.count > 1): quantized alone it would become a
 * partial model.  (A general.alignment other than 32, which llama-quantize copies while laying
 * the data out at 32, §2.5, is refused by gguf_writer_copy_kv.) */
int qp_check_input(const struct gguf_reader *r, struct bn_err *err);
/* Copies r's KVs into w by the metadata rule above. */
int qp_copy_kvs(struct gguf_writer *w, const struct gguf_reader *r, enum qp_target t,
		struct bn_err *err);

/* ---- statistics of f32 values (the I2_S scale and the input checks) ----------------------- */

/* Combinable over chunks and threads (merge in any order: the result is the same). */
struct qp_stats {
	double absmax;          /* max |x| in double: the I2_S scale */
	float min_nonzero;      /* smallest nonzero |x|, INFINITY if none */
	uint64_t n_nonfinite;   /* NaN and ±Inf */
	uint64_t first_nonfinite; /* smallest index of one, UINT64_MAX if none */
	float first_bad_value;    /* the value at first_nonfinite */
};
void qp_stats_init(struct qp_stats *s);
/* Adds x[0..n), whose first element has index `first` in the tensor. */
void qp_stats_add(struct qp_stats *s, const float *x, size_t n, uint64_t first);
void qp_stats_merge(struct qp_stats *into, const struct qp_stats *from);
/* Every value is +v, -v, +0 or -0 for one v (all zeros counts).  For I2_S also v >= 1e-6, so
 * that no nonzero value falls into the dead zone. */
bool qp_stats_ternary(const struct qp_stats *s, uint32_t out_type);

/* ---- rows -------------------------------------------------------------------------------- */

/* Bytes of nrows rows of ne0 values in `type` (F32, F16, BF16, Q8_0, TQ1_0, TQ2_0, and I2_S at
 * ne0/4 bytes a row, tail excluded); 0 for any other type. */
uint64_t qp_rows_nbytes(uint32_t type, uint64_t ne0, uint64_t nrows);

/* Encodes nrows whole rows x[0 .. nrows·ne0) into dst (qp_rows_nbytes bytes).  out_type is F32,
 * F16, Q8_0, TQ1_0, TQ2_0 or I2_S.  Row ranges may be encoded in any order and on any thread:
 * the bytes of a row depend only on that row.  I2_S codes depend on the scale only through its
 * sign, so any i2s_scale > 0 gives the bytes llama-quantize writes with scale = max|x| (the
 * scale itself goes into the tail, qp_i2s_tail): rows can be encoded before the whole tensor
 * was seen.  (An i2s_scale <= 0 reproduces the reference's codes for it.) */
void qp_encode_rows(uint32_t out_type, const float *x, uint64_t ne0, size_t nrows,
		    double i2s_scale, uint8_t *dst);

/* qp_encode_rows (with a positive I2_S scale) and qp_stats_add(st, x, ne0·nrows, first)
 * together, reading the values once. */
void qp_encode_stats_rows(uint32_t out_type, const float *x, uint64_t ne0, size_t nrows,
			  uint8_t *dst, struct qp_stats *st, uint64_t first);

/* The 32-byte I2_S tail: f32 scale, then the 28 bytes of `pad` (NULL: zeros). */
void qp_i2s_tail(float scale, const uint8_t *pad, uint8_t tail[32]);

/* Decodes nrows rows of `type` (F32, F16, BF16, Q8_0, TQ1_0, TQ2_0, I2_S in the §8.1 layout with
 * the given scale) into f32 values: what a loader computes. */
void qp_decode_rows(uint32_t type, const uint8_t *src, uint64_t ne0, size_t nrows,
		    float i2s_scale, float *y);

/* Checks nrows rows written as `w` (qp_rows_nbytes bytes, e.g. read back from the output
 * file) against the input rows x they were encoded from.  Returns the index (within these
 * rows) of the first element that does not read back as its value demands, or SIZE_MAX:
 *   I2_S   its code is i2s_code_of(x) (kernels/i2s.h; the scale and padding are checked by the
 *          caller, as they follow the last row) -- with a ternary tensor and the stored scale
 *          equal to max|x| this is "decodes to x exactly, ±0 as 0";
 *   TQ1_0, TQ2_0  its block's d is fp16(m), m = the block's max|x|, and its trit (read as
 *          users.md part 3 describes) is sign(x) + 1 -- for a block that is not ternary,
 *          lroundf(x/m) + 1 -- so it dequantizes to sign(x)·fp16(v) for a ternary tensor;
 *   F16    its bits are x rounded to nearest even;  Q8_0  its block is quantize_q8_0_ref's;
 *   F32    its bits are x's.
 * x must be finite (the caller's statistics refuse anything else). */
size_t qp_verify_rows(uint32_t out_type, const uint8_t *w, const float *x, uint64_t ne0,
		      size_t nrows);

/* ---- llama-quantize's stale I2_S padding (§7.5) -------------------------------------------
 * llama-quantize encodes every converted tensor into one scratch buffer that is never cleared
 * and writes an I2_S tensor's padding from whatever earlier tensors left there.  This replays
 * that with 28 bytes of state per I2_S tensor: before writing, create it from the whole plan;
 * feed it every converted tensor's output bytes in order; read each I2_S tensor's padding
 * once all earlier tensors were fed.  Bytes no earlier tensor wrote are zero. */
struct qp_stale;

/* NULL on allocation failure.  Caller frees with qp_stale_free.  `plan` is not kept. */
struct qp_stale *qp_stale_new(const struct qp_tensor *plan, size_t n_tensors);
void qp_stale_free(struct qp_stale *s);
/* Bytes [off, off + len) of tensor i's output (ignored unless tensor i is converted). */
void qp_stale_feed(struct qp_stale *s, size_t i, uint64_t off, const uint8_t *p, size_t len);
/* The 28 padding bytes of I2_S tensor i, or NULL if tensor i is not a converted I2_S tensor. */
const uint8_t *qp_stale_pad(const struct qp_stale *s, size_t i);

#endif

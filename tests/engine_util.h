/* Test support for the inference engine: GGUF fixtures (the reference files of
 * ../shared/testdata/reference/, synthetic models of any shape, requantized copies) and an independent,
 * naive float forward pass (tests/lib/engine_ref.c) that the engine is compared with. */
#ifndef ENGINE_UTIL_H
#define ENGINE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

/* ../shared/testdata/reference/<name>.xz decompressed once into $BITMAKE_TMP/engine-cache (malloc'd path). */
char *eu_fixture(const char *name);
/* $BITMAKE_TMP/engine-cache/<name> (malloc'd); the directory exists. */
char *eu_cache_path(const char *name);

/* A synthetic f32 model: ternary projections (one magnitude per tensor, as weight_quant writes
 * them), norms near 1, small random embeddings; an SPM vocabulary of <unk>, <s>, </s>, the 256
 * byte tokens, "▁" and filler pieces. */
struct eu_spec {
	const char *arch;            /* "bitnet", "bitnet-b1.58", "llama" */
	unsigned n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab, n_ctx;
	float rope_base;
	bool output;                 /* write output.weight (else tied) */
	const char *hidden_act;      /* NULL, or "relu2" written as <arch>.hidden_activation */
	uint32_t seed;
};
/* Writes path unless it already exists with the same spec (a side file records it). */
int eu_synth(const char *path, const struct eu_spec *s, struct bn_err *err);

/* in (f32) -> out with every projection in ggml type `target` (I2_S, TQ1_0, TQ2_0) and the
 * embedding/output in embd_type (F16, Q8_0 or F32), through tools/common/quant_plan. */
int eu_quantize(const char *in, const char *out, uint32_t target, uint32_t embd_type, struct bn_err *err);

/* The pipeline's own files: `mkmodel --preset P [--layers L] [--tokenizer T]` (L = 0: the
 * preset's; T NULL: the preset's) converted by gguf-convert to outtype (f32, f16, i2_s, tq1_0,
 * tq2_0) in dir (NULL: the cache, for small models), redone when either tool is newer than the
 * file (malloc'd path, NULL on failure). */
char *eu_converted(const char *dir, const char *preset, unsigned layers, const char *tokenizer,
		   const char *outtype);

/* in (f32) -> out with every projection (attn_*, ffn_* 2-D weights) stored as `type` (F16 or
 * BF16, rounded to nearest even) and everything else copied. */
int eu_retype(const char *in, const char *out, uint32_t type, struct bn_err *err);

/* ---- the reference forward pass (engine_ref.c) ---------------------------------------------- */

enum ref_act { REF_ACT_FLOAT, REF_ACT_I8S, REF_ACT_Q8K, REF_ACT_F16, REF_ACT_BF16 };

/* How to emulate a quantized file's arithmetic on top of the f32 weights. */
struct ref_opts {
	enum ref_act act;        /* activations of the projections: float, per-token int8 (I2_S), Q8_K (TQ),
				  * or rounded to f16 / bf16 (F16 / BF16 projections) */
	bool tq_scale_f16;       /* projection weights rounded to f16 (TQ block scales, F16 projections) */
	bool w_bf16;             /* projection weights rounded to bf16 (BF16 projections) */
	uint32_t embd_type;      /* GGUF type the token embedding/output head is stored in: F32, F16, Q8_0 */
	bool kv_f16;             /* K, V, q and the attention weights rounded to f16 as bitnet.cpp does */
};

struct ref_model;
/* Loads an f32 GGUF (bitnet, bitnet-b1.58, llama). */
int ref_open(struct ref_model **out, const char *path, struct bn_err *err);
void ref_close(struct ref_model *m);
uint32_t ref_n_vocab(const struct ref_model *m);
/* Runs tokens[0..n) from position 0, one token at a time; logits (n x n_vocab) for every token. */
int ref_forward(struct ref_model *m, const struct ref_opts *o, const int32_t *tokens, size_t n, float *logits,
		struct bn_err *err);

/* max |a - b| over n values, and max |b| */
double eu_max_abs_diff(const float *a, const float *b, size_t n);
double eu_max_abs(const float *a, size_t n);

#endif

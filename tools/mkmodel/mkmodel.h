/* mkmodel: deterministic synthetic Hugging Face checkpoints (config.json, safetensors, SentencePiece
 * tokenizer.model, tokenizer_config.json).  Invariant: the output is a pure function of the
 * preset and the options; every file is written atomically and streamed (the model is never held
 * in memory).  The test vectors tv-f32, tv-bf16 and tv-llama reproduce
 * ../shared/docs/convert-quantize.md §13.1 byte for byte. */
#ifndef MKMODEL_H
#define MKMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "bn_err.h"
#include "safetensors.h"

/* Model families, by the tensor names and the config.json they get. */
enum mk_family {
	MK_BITNET,   /* BitnetForCausalLM (1bitLLM): inner_attn_ln / ffn_layernorm sub-norms, no lm_head */
	MK_BITNET2B, /* BitNetForCausalLM (BitNet-b1.58-2B-4T): attn_sub_norm / ffn_sub_norm, tied */
	MK_LLAMA,    /* LlamaForCausalLM (Llama3-8B-1.58, Falcon3-*-1.58bit): lm_head, no sub-norms */
};

/* How a projection's weight_scale is meant: output * scale (AutoBitLinear, 2B-4T) or
 * output / scale (BitLinear, Llama3-8B-1.58 and Falcon3). */
enum mk_scale { MK_SCALE_NONE, MK_SCALE_MUL, MK_SCALE_DIV };

struct mk_preset {
	const char *name;
	const char *about;         /* one line for --list: what it is and where the numbers come from */
	enum mk_family family;
	int tv;                    /* 0, or the §13.1 vector: 1 tv-bitnet, 2 tv-llama */
	enum st_dtype dtype;       /* default dtype of the float tensors */
	bool packed;               /* projections stored as packed U8 + BF16 weight_scale (§5.3) */
	enum mk_scale scale;
	unsigned hidden, intermediate, layers, heads, kv_heads;
	unsigned head_dim;         /* 0: hidden / heads, and not written to config.json */
	unsigned vocab, max_pos;
	double rope_theta, rms_eps;
	const char *hidden_act;    /* NULL: not written */
	bool bpe;                  /* default tokenizer: Llama-3-style tokenizer.json (else SPM) */
};

/* Order of the tensors in a shard's data area (and header). */
enum mk_order {
	MK_ORDER_LIBRARY, /* what the Python safetensors library writes: dtype desc, then name */
	MK_ORDER_NAME,    /* name only (mixed dtypes interleaved) */
	MK_ORDER_ORDINAL, /* the generator's tensor ordinals (embed, norm, [lm_head], layer by layer) */
};

struct mk_opts {
	const struct mk_preset *preset;
	const char *outdir;
	enum st_dtype dtype;       /* float dtype of the tensors (preset default unless given) */
	unsigned layers;           /* depth (preset default unless given) */
	unsigned shards;           /* 1 = model.safetensors; N > 1 = model-0000i-of-0000N + index */
	uint32_t seed;             /* 0 = the §13.1 seeds */
	enum mk_order order;
	bool bpe;                  /* tokenizer.json instead of tokenizer.model */
};

const struct mk_preset *mk_preset_find(const char *name);
/* The i-th preset (NULL past the end), for --list. */
const struct mk_preset *mk_preset_at(unsigned i);

/* Writes the checkpoint into opts->outdir (created if missing). */
int mk_generate(const struct mk_opts *opts, struct bn_err *err);

/* ---- internals shared between the tool's files and its tests ---- */

/* The 32-bit LCG of §13.1: seed_t = ((ordinal + 1) * 2654435761 + seed * 2246822519) mod 2^32;
 * per element state = state * 1664525 + 1013904223, k = ((state >> 16) mod 127) - 63. */
uint32_t mk_seed(uint32_t ordinal, uint32_t seed);
static inline uint32_t mk_lcg_step(uint32_t s)
{
	return s * 1664525u + 1013904223u;
}
static inline int mk_lcg_k(uint32_t s)
{
	return (int)((s >> 16) % 127u) - 63;
}
/* The state after n further steps (jump ahead in O(log n)). */
uint32_t mk_lcg_skip(uint32_t s, uint64_t n);

/* The tokenizer.model of §13.1 (4857 bytes); caller frees *buf. */
int mk_tokenizer_model(uint8_t **buf, size_t *len, struct bn_err *err);
/* A Llama-3-style tokenizer.json: byte-level BPE with vocab - 256 base tokens (ids from 0) and
 * the 256 Llama-3 special tokens after them (<|begin_of_text|> = vocab - 256 is the BOS,
 * <|end_of_text|> the EOS); caller frees *buf. */
int mk_tokenizer_json(unsigned vocab, char **buf, size_t *len, struct bn_err *err);

#endif

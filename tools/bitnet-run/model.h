/* The transformer as a GGUF file describes it: hyperparameters (struct config) and weights
 * (struct weights: pointers into the read-only mapping, nothing copied), for the architectures
 * bitnet.cpp runs.  Invariant: after model_load succeeds every tensor the forward pass touches
 * exists, has the shape the hyperparameters imply and a type the engine can multiply, so the
 * forward pass never checks a shape again.
 *
 * Architectures (general.architecture):
 *   bitnet        1bitLLM bitnet_b1_58 (merge-dev build_bitnet): attention and FFN sub-norms,
 *                 NEOX rope, tied embeddings; FFN SiLU, or ReLU^2 when bitnet.hidden_activation
 *                 says "relu2" (mainline's spelling of BitNet-b1.58-2B-4T)
 *   bitnet-b1.58  BitNet-b1.58-2B-4T as bitnet.cpp's HEAD converter writes it: as bitnet, ReLU^2
 *   bitnet-25     the same model as convert-ms-to-gguf-bitnet.py writes it
 *   llama         ternary Llama (Llama3-8B-1.58, Falcon3-*-1.58bit, Falcon-E): NORM rope over
 *                 the converter's q/k row permutation (convert-quantize.md §4.4), GQA, SiLU FFN,
 *                 output.weight or tied embeddings
 * Optional per-matrix output scales "blk.N.<proj>.scale" (f32, one element) multiply the matmul
 * result, as in merge-dev's and mainline's bitnet graphs. */
#ifndef BR_MODEL_H
#define BR_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "gguf.h"

/* Caps on hyperparameters read from a file (far above every real model). */
#define MODEL_MAX_LAYERS 1024
#define MODEL_MAX_EMBD 65536
#define MODEL_MAX_FF (1u << 20)
#define MODEL_MAX_HEADS 1024
#define MODEL_MAX_HEAD_DIM 1024
#define MODEL_MAX_VOCAB (1u << 22)
#define MODEL_MAX_CTX (1u << 20)

enum model_arch { ARCH_BITNET, ARCH_BITNET_B158, ARCH_LLAMA };
enum rope_style { ROPE_NORM, ROPE_NEOX }; /* ggml's names: pairs (2i, 2i+1) vs (i, i + n_rot/2) */
enum ffn_act { FFN_SILU, FFN_RELU2 };

/* ---- Config ----------------------------------------------------------------------------------- */

struct config {
	enum model_arch arch;
	char arch_name[32];     /* general.architecture as written */
	uint32_t n_layer;
	uint32_t n_embd;        /* residual stream width */
	uint32_t n_ff;          /* FFN hidden width */
	uint32_t n_head, n_head_kv;
	uint32_t head_dim;      /* n_embd / n_head unless attention.key_length says otherwise */
	uint32_t n_rot;         /* rotated dimensions per head (rope.dimension_count), even */
	uint32_t n_vocab;       /* tokenizer.ggml.tokens length == token_embd rows */
	uint32_t n_ctx_train;   /* context_length */
	float rms_eps;
	float rope_base;        /* rope.freq_base, default 10000 */
	float rope_freq_scale;  /* 1 / rope.scaling.factor for linear scaling, else 1 */
	enum rope_style rope;
	enum ffn_act act;
	bool sub_norms;         /* attn_sub_norm and ffn_sub_norm (the bitnet architectures) */
};

/* q / kv widths */
static inline uint32_t config_n_q(const struct config *c)
{
	return c->n_head * c->head_dim;
}
static inline uint32_t config_n_kv(const struct config *c)
{
	return c->n_head_kv * c->head_dim;
}

/* ---- Weights ---------------------------------------------------------------------------------- */

/* A weight matrix W (rows outputs x cols inputs; ggml ne = [cols, rows]) borrowed from the
 * mapping.  y = W x, then y *= scale. */
struct mat {
	const char *name;      /* tensor name, owned by the reader */
	uint32_t type;         /* enum gguf_type: F32 F16 BF16 Q8_0 I2_S TQ1_0 TQ2_0 TL1 TL2 */
	uint64_t rows, cols;
	const uint8_t *data;
	uint64_t nbytes;       /* the loader's size (gguf_tensor_nbytes), I2_S/TL scale included */
	float scale;           /* from "<name minus .weight>.scale" if present, else 1 */
};

struct layer {
	const float *attn_norm;     /* (n_embd) */
	const float *attn_sub_norm; /* (n_head·head_dim), NULL unless sub_norms */
	const float *ffn_norm;      /* (n_embd) */
	const float *ffn_sub_norm;  /* (n_ff), NULL unless sub_norms */
	struct mat wq;              /* (n_head·head_dim, n_embd) */
	struct mat wk;              /* (n_head_kv·head_dim, n_embd) */
	struct mat wv;              /* (n_head_kv·head_dim, n_embd) */
	struct mat wo;              /* (n_embd, n_head·head_dim) */
	struct mat ffn_gate;        /* (n_ff, n_embd) */
	struct mat ffn_up;          /* (n_ff, n_embd) */
	struct mat ffn_down;        /* (n_embd, n_ff) */
};

struct weights {
	struct mat tok_embd;        /* (n_vocab, n_embd): rows are looked up */
	const float *output_norm;   /* (n_embd) */
	struct mat output;          /* (n_vocab, n_embd): output.weight, or token_embd when tied */
	bool tied;                  /* output is token_embd */
	struct layer *layers;       /* n_layer of them */
};

struct model {
	struct config cfg;
	struct weights w;
	struct gguf_reader *gguf;   /* owns the mapping every pointer above points into */
	const char *path;           /* for messages (borrowed) */
};

/* Maps `path` and validates it (model_load).  Errors are one line naming the file, the key or
 * tensor and the problem.  Close with model_close. */
int model_open(struct model *m, const char *path, struct bn_err *err);
/* Validates an opened GGUF and fills m; m takes ownership of r (closed by model_close, also on
 * failure).  `what` names the file in messages. */
int model_load(struct model *m, struct gguf_reader *r, const char *what, struct bn_err *err);
void model_close(struct model *m);

const char *model_arch_name(enum model_arch a);
/* Bytes of weight data one forward pass over one token reads: every matrix once, plus one
 * token_embd row and the norms (for the bandwidth estimate of the bench). */
uint64_t model_bytes_per_token(const struct model *m);
/* Total bytes of the tensors (what the file mostly is). */
uint64_t model_weight_bytes(const struct model *m);

/* Reads an unsigned integer KV of any integer GGUF type (u8..u64, i8..i64 when >= 0) into *out,
 * checking 0 < value <= max (min 0 allowed when allow_zero).  -BN_ENOENT if absent and
 * !required (then *out is untouched). */
int model_kv_uint(const struct gguf_reader *r, const char *key, bool required, bool allow_zero,
		  uint64_t max, uint32_t *out, const char *what, struct bn_err *err);

#endif

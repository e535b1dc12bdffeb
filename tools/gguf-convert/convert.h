/* gguf-convert: a Hugging Face safetensors checkpoint -> GGUF, byte-compatible with bitnet.cpp's
 * release converter (../shared/docs/convert-quantize.md §2-§6) and, for the direct ternary
 * outputs, with its converter + llama-quantize (§7).  Invariant: the checkpoint is never held in
 * memory: tensors are read from mmapped shards and written one chunk at a time, so peak memory
 * is a few chunk buffers whatever the model size.
 *
 * The pieces (one file each):
 *   config.c   config.json -> struct cv_config (class, GGUF arch, hyper-parameters, §3)
 *   vocab.c    tokenizer.model / tokenizer.json / tokenizer_config.json -> struct cv_vocab (§6)
 *   tensors.c  HF tensor -> GGUF name, shape, order and value transforms (§4, §5)
 *   outtype.c  the output types: per-tensor type choice and encoders (f32, f16, direct ternary)
 *   pool.c     worker threads: parallel passes over chunks and the ordered chunk stream
 *   convert.c  the whole run: plan, header, stream tensors, verify, summary */
#ifndef CV_CONVERT_H
#define CV_CONVERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bn_err.h"
#include "gguf.h"
#include "quant_plan.h"
#include "safetensors.h"

/* Hot loops get an AVX2 clone picked at load time on x86-64 (GCC and clang target_clones).  The
 * loops use only exact element-wise operations and a fixed accumulation order, so both clones
 * give the same bits. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(CV_NO_CLONES)
#define CV_HOT __attribute__((target_clones("avx2", "default")))
#else
#define CV_HOT
#endif

/* ---- config.json (§3) ------------------------------------------------------------------- */

/* The converter class of the reference (§3.1): it decides name mapping, weight_quant, q/k
 * permutation and the class-specific KVs. */
enum cv_class { CV_BITNET, CV_LLAMA };

/* An optional config value: `set` says whether config.json gives it. */
struct cv_u32 {
	bool set;
	uint32_t v;
};
struct cv_f32 {
	bool set;
	float v;
};

struct cv_config {
	json_t *root;                /* config.json, owned */
	char arch_hf[64];            /* architectures[0] as written (truncated for messages) */
	enum cv_class cls;
	const char *arch;            /* GGUF general.architecture: "bitnet", "bitnet-b1.58", "llama" */
	bool b158;                   /* the BitNet-b1.58-2B-4T family (ReLU^2 FFN, HEAD KVs) */
	/* §3.2 */
	uint32_t n_layer, n_embd, n_head;
	struct cv_u32 n_ctx, n_ff, n_head_kv;
	struct cv_f32 rope_theta, rms_eps, norm_eps;
	/* class extras (§3.3, §3.4) */
	uint32_t vocab_size;
	uint32_t head_dim;           /* head_dim, else n_embd / n_head */
	bool rope_linear;            /* rope_scaling {"type": "linear", "factor": f} */
	float rope_factor;
	const char *hidden_act;      /* borrowed from root, NULL if absent */
	bool scale_mul;              /* packed weights: value * weight_scale (AutoBitLinear), else
				      * value / weight_scale (BitLinear), §5.3 */
};

struct cv_config_opts {
	const char *arch;            /* --arch override for BitNet models, or NULL */
};

/* Parses config.json text; `what` names it in errors.  Refuses an unknown architecture with the
 * list of supported ones, missing required keys, wrong JSON types and MoE models.  Caller frees
 * with cv_config_free. */
int cv_config_parse(struct cv_config *c, const char *text, size_t len, const char *what,
		    const struct cv_config_opts *o, struct bn_err *err);
void cv_config_free(struct cv_config *c);

/* The KVs of §3.2-§3.4 in the reference order, general.architecture first; `name` is
 * general.name (skipped if empty, as gguf-py does) and `file_type` general.file_type.
 * `add_space_prefix` is tokenizer_config.json's add_prefix_space (LlamaModel, §3.4) or -1. */
int cv_config_kvs(const struct cv_config *c, struct gguf_writer *w, const char *name,
		  uint32_t file_type, int add_space_prefix, struct bn_err *err);

/* The architectures we accept, for messages: "BitnetForCausalLM, BitNetForCausalLM, ...". */
extern const char cv_supported_archs[];

/* ---- tokenizer (§6) --------------------------------------------------------------------- */

enum cv_special { CV_BOS, CV_EOS, CV_UNK, CV_SEP, CV_PAD, CV_CLS, CV_MASK, CV_N_SPECIAL };

struct cv_vocab {
	const char *model;           /* tokenizer.ggml.model: "llama" (SPM) or "gpt2" (BPE) */
	char pre[64];                /* tokenizer.ggml.pre */
	size_t n;                    /* tokens */
	char **tok;                  /* n strings (may hold NULs: use len) */
	size_t *len;
	float *scores;               /* n scores (SPM only; NULL for BPE) */
	int32_t *types;              /* n token types (§Appendix A) */
	size_t n_merges;
	char **merges;               /* BPE merges "a b" (NUL-terminated) */
	/* SpecialVocab (§6.4): ids in discovery order, add_* flags in type order */
	size_t n_ids;
	enum cv_special id_typ[CV_N_SPECIAL];
	uint32_t id_val[CV_N_SPECIAL];
	int add[CV_N_SPECIAL];       /* -1 unset, else 0/1 */
	char *chat_template;         /* tokenizer.chat_template, or NULL */
	size_t n_templates;          /* named templates: tokenizer.chat_template.<name> */
	char **template_name, **template_text;
	int add_space_prefix;        /* tokenizer_config.json add_prefix_space: -1 absent, 0/1 */
	/* private */
	void *arena;
};

struct cv_vocab_opts {
	const char *pre;             /* --pre override for BPE tokenizers, or NULL */
	const char *model_name;      /* general.name: a hint for the pre-tokenizer table */
};

/* Reads the tokenizer files of directory `dir` for the model `c`: tokenizer.model if present
 * (SentencePiece, §6.1), else tokenizer.json (byte-level BPE, §6.3); then the special tokens
 * (§6.4).  Caller frees with cv_vocab_free. */
int cv_vocab_load(struct cv_vocab *v, const char *dir, const struct cv_config *c,
		  const struct cv_vocab_opts *o, struct bn_err *err);
void cv_vocab_free(struct cv_vocab *v);

/* The pieces, on buffers (for tests and fuzzing).  cv_vocab_spm: a tokenizer.model plus an
 * optional added_tokens.json root (NULL), padded to vocab_size.  cv_vocab_bpe: a parsed
 * tokenizer.json.  cv_vocab_special: the SpecialVocab phases from parsed tokenizer.json,
 * tokenizer_config.json and config.json roots (each may be NULL); n_vocab 0 = no range check. */
int cv_vocab_spm(struct cv_vocab *v, const uint8_t *buf, size_t len, const json_t *added,
		 uint32_t vocab_size, struct bn_err *err);
int cv_vocab_bpe(struct cv_vocab *v, const json_t *tokenizer, uint32_t vocab_size,
		 struct bn_err *err);
int cv_vocab_special(struct cv_vocab *v, const json_t *tokenizer, const json_t *tok_config,
		     const json_t *config, bool merges, size_t n_vocab, struct bn_err *err);
/* Emits the tokenizer KVs in the reference order (§6.1/§6.3 then §6.4). */
int cv_vocab_kvs(const struct cv_vocab *v, struct gguf_writer *w, struct bn_err *err);

/* The pre-tokenizer names of the family table, for --help. */
extern const char cv_pre_names[];

/* ---- tensors (§4, §5) ------------------------------------------------------------------- */

/* What a tensor is in the model graph (decides the output type). */
enum cv_role {
	CV_TOKEN_EMBD,
	CV_OUTPUT,
	CV_OUTPUT_NORM,
	CV_NORM,       /* per-layer norms, sub-norms included */
	CV_PROJ,       /* q, k, v, o, gate, up, down */
};

struct cv_tensor {
	const struct st_tensor *src;     /* the HF tensor */
	const struct st_tensor *scale;   /* its weight_scale (packed U8 weights), or NULL */
	char name[GGUF_MAX_NAME + 1];    /* GGUF name */
	enum cv_role role;
	int bid;                         /* block id, -1 for global tensors */
	unsigned n_dims;                 /* GGUF dims after squeeze (1..4) */
	uint64_t ne[GGUF_MAX_DIMS];      /* ggml order: ne[0] = row length */
	uint64_t cols, rows;             /* ne[0] and the product of the others */
	uint64_t n;                      /* elements */
	bool hf_weight;                  /* the HF name ends in ".weight" */
	bool wquant;                     /* weight_quant (§5.1) */
	bool scale_mul;                  /* packed: value * weight_scale, else / (§5.3) */
	uint32_t perm_heads;             /* q/k permutation with this many heads (§4.4), or 0 */
	/* output, filled by the output type */
	uint32_t type;
	uint64_t nbytes;
	struct qp_tensor qp;             /* the quantization plan's view (direct ternary types) */
};

struct cv_plan {
	size_t n;
	struct cv_tensor *t;             /* in output order */
};

/* Maps, orders and validates the tensors of checkpoint m against config c: every HF name must
 * map (§4.1), packed weights need their weight_scale (§5.3), shapes must agree with config.json
 * and the token count, and every tensor llama.cpp needs must be there.  `n_tokens` is the token
 * count the vocab will write.  Caller frees with cv_plan_free. */
int cv_plan_build(struct cv_plan *p, const struct st_model *m, const struct cv_config *c,
		  size_t n_tokens, struct bn_err *err);
void cv_plan_free(struct cv_plan *p);

/* Per-tensor constants of the value transform, from cv_prepare. */
struct cv_prep {
	float s;                         /* weight_quant: 1/mean|x| clamped (f32) */
	float inv;                       /* 1/s: the magnitude of the ternary output (f32), rounded
					  * through f16 for F16 checkpoints (§5.1 step 5) */
	float wscale;                    /* packed: the weight_scale value */
};

/* Final f32 rows [r0, r0 + nr) of tensor t (after unpacking, weight_quant and permutation)
 * into dst (nr * t->cols floats), reading the mapped checkpoint.  Thread-safe. */
void cv_rows(const struct cv_tensor *t, const struct cv_prep *pp, uint64_t r0, uint64_t nr,
	     float *dst);
/* Sum of |x| in double over source rows [r0, r0 + nr) (weight_quant's mean, §5.1). */
double cv_abs_sum(const struct cv_tensor *t, uint64_t r0, uint64_t nr);
/* A tensor whose output row r comes from source row r (not packed, not permuted): its rows can
 * be read as one byte range, row r at byte r * cv_row_bytes(t) of its data. */
bool cv_dense(const struct cv_tensor *t);
uint64_t cv_row_bytes(const struct cv_tensor *t);
/* cv_rows and cv_abs_sum of a dense tensor from a copy of its source rows: src holds the bytes
 * of rows [r0, r0 + nr). */
void cv_rows_src(const struct cv_tensor *t, const struct cv_prep *pp, uint64_t nr,
		 const uint8_t *src, float *dst);
double cv_abs_sum_src(const struct cv_tensor *t, uint64_t nr, const uint8_t *src);
/* Derives s from the sum of |x| over the whole tensor. */
float cv_wquant_scale(double abs_sum, uint64_t n);
/* Fills pp->s and pp->inv for tensor t from the sum of |x|. */
void cv_wquant_prep(const struct cv_tensor *t, double abs_sum, struct cv_prep *pp);

/* ---- output types ----------------------------------------------------------------------- */

/* How one tensor is encoded: the output type's per-tensor hook fills this.  The converter
 * produces the tensor's final f32 values in chunks of whole rows (a multiple of row_align), and
 * gives each chunk to encode() with its chunk number (from several threads, in any order; the
 * bytes go to the file in chunk order).  begin() (optional) learns the number of chunks first.
 * When `scan` is set, every chunk is first given to scan_chunk() in the same way and then
 * scan_done() runs: for encoders that need the whole tensor before the first byte.  After the
 * last chunk, trailer() may check what encode() saw and write bytes of its own (a scale, a block
 * that needs the whole tensor).  The bytes of all chunks plus the trailer's are exactly nbytes.
 * `checks` says the encoder validates its input itself (the converter's ternary check is then
 * skipped). */
struct cv_enc {
	uint32_t type;                   /* ggml type written */
	uint64_t nbytes;                 /* declared data size (what the loader reads) */
	uint64_t row_align;              /* chunks hold a multiple of this many rows */
	bool scan;
	bool checks;
	void *state;                     /* the encoder's, freed by fini */
	/* bytes encode() writes for rows [r0, r0 + nr) */
	uint64_t (*chunk_bytes)(const struct cv_enc *e, uint64_t r0, uint64_t nr);
	int (*begin)(struct cv_enc *e, size_t n_chunks, struct bn_err *err);
	void (*encode)(const struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
		       size_t chunk, uint8_t *dst);
	void (*scan_chunk)(struct cv_enc *e, const float *x, uint64_t r0, uint64_t nr,
			   size_t chunk);
	int (*scan_done)(struct cv_enc *e, struct bn_err *err);
	int (*trailer)(struct cv_enc *e, struct gguf_writer *w, struct bn_err *err);
	void (*fini)(struct cv_enc *e);
};

struct cv_ctx; /* the run, for the hooks */

/* An output type: its name (--outtype), general.file_type, and hooks.  choose() decides tensor
 * t's ggml type and byte size (filling t->type and t->nbytes) and may refuse it with its name and
 * the reason; begin() (optional) runs once every tensor is chosen and may keep state in
 * x->ot_state, which end() releases; setup() prepares the encoder for one tensor; add_kvs()
 * appends KVs after the tokenizer's (e.g. general.quantization_version).  Adding a type (TL1,
 * TL2) is one entry in outtype.c. */
struct cv_outtype {
	const char *name;
	uint32_t file_type;
	bool ternary;                    /* refuses non-ternary checkpoints without --force */
	const char *about;               /* one line for --help */
	int (*choose)(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err);
	int (*setup)(const struct cv_ctx *x, const struct cv_tensor *t, struct cv_enc *e,
		     struct bn_err *err);
	int (*add_kvs)(const struct cv_ctx *x, struct gguf_writer *w, struct bn_err *err);
	int (*begin)(struct cv_ctx *x, struct bn_err *err);
	void (*end)(struct cv_ctx *x);
};

/* TL1/TL2 (tl.c): the hooks of their table entries. */
int cv_tl1_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err);
int cv_tl2_choose(const struct cv_ctx *x, struct cv_tensor *t, struct bn_err *err);
int cv_tl_setup(const struct cv_ctx *x, const struct cv_tensor *t, struct cv_enc *e,
		struct bn_err *err);
int cv_tl_add_kvs(const struct cv_ctx *x, struct gguf_writer *w, struct bn_err *err);

/* NULL-terminated table lookup by name (case-insensitive). */
const struct cv_outtype *cv_outtype_find(const char *name);
/* i-th output type, NULL past the end (for --help). */
const struct cv_outtype *cv_outtype_at(size_t i);

/* ---- the run ---------------------------------------------------------------------------- */

struct cv_opts {
	const char *model_dir;
	const char *outfile;             /* NULL: MODEL_DIR/ggml-model-<outtype>.gguf */
	const struct cv_outtype *outtype;
	bool quant_embd;                 /* token_embd F16 (f16, TL; --token-embedding-type f16) */
	const char *kernel_config;       /* TL tile configuration (kernel_config.ini) */
	bool no_kernel_kvs;              /* TL: no bitmake.lut.kernel_config KV (reference bytes) */
	enum st_order order;
	unsigned threads;                /* 0 = one per CPU */
	bool force;                      /* convert a non-ternary checkpoint to a ternary type */
	const char *arch;                /* --arch for BitNet models */
	const char *pre;                 /* --pre */
	bool emulate_stale_tail;         /* direct I2_S: llama-quantize's stale padding (§7.5) */
	FILE *summary;                   /* where the summary goes (stdout), or NULL */
};

struct cv_ctx {
	const struct cv_opts *o;
	struct cv_config cfg;
	struct cv_vocab vocab;
	struct st_model *st;
	struct cv_plan plan;
	bool has_output;                 /* the model has an output (lm_head) tensor */
	void *ot_state;                  /* the output type's, from begin() */
};

/* Converts o->model_dir to the output file.  On failure no output file is left behind. */
int cv_convert(const struct cv_opts *o, struct bn_err *err);

/* The default output path for a model directory and outtype name (malloc'd). */
char *cv_default_outfile(const char *model_dir, const char *outtype);
/* general.name: the last component of dir as Python's Path(dir).name gives it (trailing '/'
 * and "." components ignored), into buf. */
void cv_model_name(const char *dir, char *buf, size_t size);

#endif

/* The inference engine: a loaded model (model.h), the kernel context (selected instruction set
 * and thread pool), the scratch buffers of a forward pass (struct runstate) and the f16 KV cache.
 * engine_decode runs a batch of tokens through the transformer and leaves the logits.
 * Invariant: no allocation after engine_open; every buffer is sized for n_batch tokens and
 * n_ctx positions there.
 *
 * Arithmetic (what bitnet.cpp's llama.cpp computes, convert-quantize.md §8, lut-kernels.md §3):
 *   RMSNorm        sum of squares in double, scale = 1/sqrtf(mean + eps), y = (x·scale)·w
 *   I2_S matmul    per-token int8 activations (kernels.h: quantize_i8s), exact integer sums,
 *                  ((raw - sum)/act_scale)·w_scale
 *   TQ1_0/TQ2_0    Q8_K activations, mainline ggml's dot product
 *   TL1/TL2        the generated LUT kernels (lut.h)
 *   F16 / BF16     activations rounded to f16 / bf16, then f32 dot products (ggml vec_dot_f16)
 *   Q8_0           activations quantized to Q8_0, block dot products
 *   F32            f32 dot products
 *   RoPE           ggml's: theta_i = pos·freq_scale·base^(-2i/n_rot) by repeated f32 products
 *   attention      K and V cached as f16; q rounded to f16; softmax of q·k/sqrt(head_dim) in f32
 *                  (sum in double); probabilities rounded to f16 before weighting V
 *   FFN            silu(gate)·up or relu(gate)^2·up, then the sub-norm (bitnet) and down */
#ifndef BR_ENGINE_H
#define BR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "model.h"

struct lut_kernels;

#define ENGINE_DEFAULT_BATCH 128

struct engine_opts {
	unsigned threads;               /* 0: physical cores */
	uint32_t n_ctx;                 /* 0: the model's context_length */
	uint32_t n_batch;               /* tokens per forward pass; 0: ENGINE_DEFAULT_BATCH */
	const char *isa;                /* kernel set (kernels.h); NULL: $BITMAKE_KERNEL_ISA or the best */
	const struct lut_kernels *lut;  /* TL kernels linked into this program, or NULL */
	bool all_logits;                /* keep the logits of every token of a batch (tests) */
};

struct engine;

/* Opens and validates the model, selects and self-tests the kernels, starts the threads and
 * allocates every buffer.  Close with engine_close. */
int engine_open(struct engine **out, const char *path, const struct engine_opts *o, struct bn_err *err);
void engine_close(struct engine *e);

const struct model *engine_model(const struct engine *e);
uint32_t engine_n_ctx(const struct engine *e);
uint32_t engine_n_past(const struct engine *e);
unsigned engine_threads(const struct engine *e);
/* "avx512vnni kernels, avx2 ops, 2 threads" */
const char *engine_describe(const struct engine *e, char *buf, size_t size);

/* Feeds n tokens at positions n_past.. (n_past grows by n).  Afterwards engine_logits gives the
 * last token's logits; with all_logits (and n <= n_batch) row i holds token i's.
 * -BN_ERANGE (nothing changed) if n_past + n would exceed n_ctx; -BN_EINVAL for a token id
 * outside the vocabulary; -BN_EINTR when interrupted (the cache is then invalid: reset). */
int engine_decode(struct engine *e, const int32_t *tokens, size_t n, struct bn_err *err);
/* n_vocab floats: token `i` of the last batch (0 = the last token unless all_logits). */
const float *engine_logits(const struct engine *e, size_t i);
/* Forgets the cache (n_past = 0). */
void engine_reset(struct engine *e);
/* Context shift (llama-cli's, llama_memory_seq_rm + seq_add): forgets positions
 * [n_keep, n_keep + n_discard), moves the entries of the later positions down by n_discard and
 * rotates their cached K by -n_discard positions with the model's RoPE (K is cached after RoPE;
 * rotations compose, up to the f16 rounding of the result, as in llama.cpp's K-shift); n_past
 * drops by n_discard.  The logits of the last batch stay as they were.
 * -BN_EINVAL (nothing changed) unless n_discard > 0 and n_keep + n_discard <= n_past. */
int engine_shift(struct engine *e, uint32_t n_keep, uint32_t n_discard, struct bn_err *err);

/* Bytes of the KV cache at n_ctx positions (f16 K and V for every layer). */
uint64_t engine_kv_bytes(const struct engine *e);

#endif

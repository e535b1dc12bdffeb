/* i2s-quantize's engine: a GGUF (f32/f16/bf16, or I2_S for the TQ targets) to I2_S, TQ1_0 or
 * TQ2_0 by the shared plan (tools/common/quant_plan.h), tensor by tensor from the mapped input
 * through the streaming GGUF writer.  Invariant: nothing is committed under the output name
 * unless the written file, re-opened through the GGUF reader, has the planned header and every
 * byte of every tensor, read back from it, is what its input values demand (qp_verify_rows,
 * the I2_S scale and padding, copies byte for byte); memory stays bounded by chunk buffers
 * whatever the model size. */
#ifndef IQ_QUANTIZE_H
#define IQ_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "gguf.h"
#include "i2s_layout.h"
#include "quant_plan.h"

struct iq_opts {
	const char *in_path, *out_path;
	struct qp_opts plan;
	unsigned threads;          /* >= 1; threads split each tensor's rows */
	bool force;                /* quantize non-ternary input anyway (sign / round) */
	bool stale_tail;           /* llama-quantize's stale I2_S padding instead of zeros */
	enum iq_layout i2s_layout; /* of I2_S input tensors: IQ_LAYOUT_AUTO detects it */
};

struct iq_summary {
	size_t n_tensors, n_converted;
	size_t n_of_type[GGUF_TYPE_COUNT]; /* output tensors per type */
	uint64_t out_bytes;
	bool has_i2s_input;
	struct iq_layout_verdict layout;   /* when has_i2s_input */
	double t_write, t_commit;          /* seconds: encode+write+read-back, fsync+rename */
};

/* Runs the whole conversion.  Errors are one line naming the file or tensor. */
int iq_quantize(const struct iq_opts *o, struct iq_summary *s, struct bn_err *err);

#endif

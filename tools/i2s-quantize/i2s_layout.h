/* Which block layout a file's I2_S tensors use, and decoding in either.  Invariant: a layout is
 * only ever chosen on evidence that cannot point the wrong way; without it we refuse and ask
 * for --i2s-layout, never guess.
 *
 * The two layouts (convert-quantize.md §8.1, §8.2; kernels/i2s.h):
 *   x86  128-element blocks of 32 bytes: element j of a block in byte j mod 32, bits
 *        7-2(j div 32)..6-2(j div 32).  Written by merge-dev's and bitnet.cpp's llama-quantize
 *        on x86 and by every Python converter (HEAD's --outtype i2_s, the embedding converter),
 *        on any machine.  Microsoft's published BitNet-b1.58-2B-4T GGUF is an x86 file.
 *   arm  64-element blocks of 16 bytes: element j in byte j mod 16, bits 7-2(j div 16)..
 *        Written only by bitnet.cpp's llama-quantize built for ARM (commit 112f853, Nov 2025+).
 * Both have the same size, the same codes and the scale at byte N/4, and the file records
 * neither: any byte string is valid in both, each 128-element group just permutes (32 of its
 * 128 positions, 0..15 and 112..127, read the same in both).  So the bytes alone can never tell
 * them apart.  Detection (iq_detect_layout), in order:
 *   1. --i2s-layout x86|arm: what the user says.
 *   2. No general.quantization_version KV: llama-quantize always writes one and the Python
 *      converters never do, so the file came from a Python converter: x86.
 *   3. Evidence in the weights: in a trained network a feed-forward neuron's input rows
 *      (ffn_up/ffn_gate row j, whose non-zero count reads the same in both layouts) and its
 *      output column (ffn_down column j, which the wrong layout swaps with another neuron's)
 *      have correlated non-zero counts.  Per layer the correlation is computed both ways over
 *      the 96 of every 128 columns the layouts disagree on, Fisher z-scores are summed over
 *      layers (Z = sum z / sqrt(layers)), and a layout is chosen only if its Z >= 8 while the
 *      other's is <= 4 (under the wrong reading the pairs are unrelated, Z ~ N(0,1)).
 *   4. Otherwise (random synthetic weights, no feed-forward tensors): refuse. */
#ifndef IQ_I2S_LAYOUT_H
#define IQ_I2S_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "gguf.h"

enum iq_layout { IQ_LAYOUT_AUTO, IQ_LAYOUT_X86, IQ_LAYOUT_ARM };

#define IQ_LAYOUT_Z_DECIDE 8.0 /* the chosen layout's evidence at least this */
#define IQ_LAYOUT_Z_OTHER 4.0  /* and the other's at most this */

struct iq_layout_verdict {
	enum iq_layout layout; /* IQ_LAYOUT_X86 or IQ_LAYOUT_ARM */
	char why[256];         /* how it was decided, for the log */
	double z_x86, z_arm;   /* step 3's evidence (NAN if not computed) */
	unsigned layers;       /* layers that gave evidence */
};

/* "auto", "x86", "arm" (any case). 0 or -1. */
int iq_layout_parse(const char *s, enum iq_layout *out);
const char *iq_layout_name(enum iq_layout l);

/* Decides the layout of r's I2_S tensors as above.  Fails with BN_EUNSUPPORTED (message says
 * what to pass) when nothing decides it. */
int iq_detect_layout(const struct gguf_reader *r, enum iq_layout forced,
		     struct iq_layout_verdict *v, struct bn_err *err);

/* Step 3 on its own (tests): the summed z-scores of both readings and the number of layers. */
void iq_layout_evidence(const struct gguf_reader *r, double *z_x86, double *z_arm,
			unsigned *layers);

/* Values (code - 1)·scale of n elements starting at a multiple of 128 in the tensor, read in
 * layout l (x86 or arm). */
void iq_i2s_decode(enum iq_layout l, const uint8_t *src, size_t n, float scale, float *y);

#endif

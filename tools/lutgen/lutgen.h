/* lutgen: TL1/TL2 kernel generation from a model's real weight shapes.  Shapes come from the
 * model (config.json, a GGUF header, or an explicit list); tile parameters are given, taken from a
 * preset or chosen automatically; the output is a function of (quant, shapes, parameters) only. */
#ifndef LUTGEN_H
#define LUTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bn_err.h"
#include "lut_params.h"

#define LUTGEN_VERSION "1.0"

/* A weight shape with where it came from and who chose its parameters. */
struct lutgen_shape {
	struct lut_params p;
	char label[96]; /* e.g. "q_proj,o_proj"; empty for --shapes */
	enum lut_origin BM_from, BK_from, bm_from;
};

/* ---- shapes.c ---- */

/* Distinct [M,K] of the ternary linear layers from config.json: with H = hidden_size,
 * I = intermediate_size, nh = num_attention_heads, nkv = num_key_value_heads (default nh),
 * hd = head_dim (default H/nh): q [nh*hd, H], k/v [nkv*hd, H], o [H, nh*hd], gate/up [I, H],
 * down [H, I], deduplicated in that order.  *out is malloc'd. */
int lutgen_shapes_from_config(const char *path, struct lutgen_shape **out, size_t *n,
			      struct bn_err *err);
/* Distinct [M,K] of a GGUF's ternary weights: TL1/TL2/I2_S tensors, and 2-D F32/F16/BF16
 * tensors other than token_embd and output (the converter's TL rule), in file order.  A TL
 * model of type q that records its tile parameters (LUT_GGUF_KERNEL_CONFIG) gives those too:
 * *recorded is then true and every parameter is set. */
int lutgen_shapes_from_gguf(const char *path, enum lut_quant q, struct lutgen_shape **out,
			    size_t *n, bool *recorded, struct bn_err *err);
/* "MxK,MxK,..." */
int lutgen_shapes_parse(const char *list, struct lutgen_shape **out, size_t *n,
			struct bn_err *err);

/* ---- generate.c ---- */

/* A --BM/--BK/--bm list: one value per shape, or one for all. */
struct lutgen_list {
	size_t n;
	uint32_t v[LUT_MAX_SHAPES];
};
int lutgen_list_parse(const char *opt, const char *s, struct lutgen_list *l, struct bn_err *err);

/* Fills each shape's BM/BK/bm: command line (lists may be NULL) > preset (text may be NULL) >
 * automatic (lut_params_auto), then checks every constraint and that no shape is repeated. */
int lutgen_resolve(enum lut_quant q, struct lutgen_shape *s, size_t n,
		   const struct lutgen_list *BM, const struct lutgen_list *BK,
		   const struct lutgen_list *bm, const char *preset_text, const char *preset_path,
		   struct bn_err *err);
/* One line per shape: parameters, K split, who chose them, which layers. */
void lutgen_report(FILE *f, enum lut_quant q, const struct lutgen_shape *s, size_t n);
/* Writes outdir/bitnet-lut-kernels.h and outdir/kernel_config.ini, each only if its content
 * changed (changed[0], changed[1] say which were). */
int lutgen_write(enum lut_quant q, const struct lutgen_shape *s, size_t n, const char *outdir,
		 bool changed[2], struct bn_err *err);

/* ---- tune.c ---- */

struct lutgen_tune_opts {
	const char *cc;      /* compiler command for the timing harness (may contain flags) */
	const char *srcdir;  /* the repository root: tools/lutgen/bench/lut_bench.c and its sources */
	const char *workdir; /* scratch for the generated headers and binaries of each round */
	const char *out;     /* the preset to write (its other lines are kept) */
};
/* Times candidate parameters for every shape on this CPU (TL2: x86-64 with AVX2, TL1: AArch64),
 * starting from s[i].p, leaves the fastest in s[i].p and writes them to o->out as
 * `tlN.MxK = BM,BK,bm` lines; prints one line per shape on stdout. */
int lutgen_tune(enum lut_quant q, struct lutgen_shape *s, size_t n,
		const struct lutgen_tune_opts *o, struct bn_err *err);

/* ---- emit.c ---- */

/* Renders bitnet-lut-kernels.h for checked parameters (malloc'd text, caller frees). */
int lutgen_render_header(enum lut_quant q, const struct lut_params *p, size_t n, char **out,
			 size_t *len, struct bn_err *err);
/* The raw template text (tmpl/tl1.h.in, tmpl/tl2.h.in, built into the binary). */
const char *lutgen_template(enum lut_quant q);

#endif

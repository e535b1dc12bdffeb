/* TL1/TL2 tile parameters: the constraints every (shape, BM, BK, bm) must satisfy, the automatic
 * choice, kernel_config.ini (written byte-exactly as bitnet.cpp's generators write it) and the
 * preset keys.  Invariant: one set of parameters drives the generated kernels and the packer, so a
 * parameter set accepted here is valid for both (lut-kernels.md §1.4, §2.5, §7 W3/W7). */
#ifndef LUT_PARAMS_H
#define LUT_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

#ifdef __cplusplus
extern "C" {
#endif

enum lut_quant { LUT_TL1 = 1, LUT_TL2 = 2 };

/* Limits: real models stay far below them; they keep every size within the 32-bit int
 * arithmetic of bitnet.cpp's ggml (lut-kernels.md §7 W12) and let our own code use int32. */
#define LUT_MAX_DIM (1u << 20)
#define LUT_MAX_ELEMS (1ull << 30)
#define LUT_MAX_SHAPES 64
/* The int16 block accumulators hold |sum| <= 127*BK: BK <= 258 (TL1) resp. 240 (TL2, BK % 24). */
#define LUT_TL1_MAX_BK 256
#define LUT_TL2_MAX_BK 240
#define LUT_TL2_BK2 32 /* K-block of the TL2 two-weight part */
#define LUT_TL2_MAX_TWO_K 256

/* One weight matrix W[m][k] (m outputs = ggml ne[1], k inputs = ggml ne[0]) and its tiles. */
struct lut_params {
	uint32_t m, k;
	uint32_t BM; /* tile rows: M % BM == 0 */
	uint32_t BK; /* K-block (TL2: of the three-weight part) */
	uint32_t bm; /* micro-tile rows (TL1 32 or 64; TL2 always 32) */
	/* TL2 only (0 for TL1): columns [0, three_k) use 3-weight codes, [three_k, k) 2-weight codes. */
	uint32_t three_k, two_k;
};

/* The GGUF KV (string) in which gguf-convert records the kernel_config.ini text of a TL model's
 * shapes, so that the runtime can refuse kernels generated with other parameters. */
#define LUT_GGUF_KERNEL_CONFIG "bitmake.lut.kernel_config"

/* Which parameters were chosen by whom (for the report lutgen prints). */
enum lut_origin { LUT_AUTO = 0, LUT_GIVEN = 1, LUT_PRESET = 2 };

const char *lut_quant_name(enum lut_quant q); /* "tl1" / "tl2" */
int lut_quant_parse(const char *s, enum lut_quant *q);

/* Checks every constraint of lut-kernels.md §1.4 (real ones, not only what upstream asserts) and
 * fills three_k/two_k.  The message names the shape and the violated rule, e.g.
 * "tl2 [64,1056]: BK=264: more than 240; int16 block sums would overflow (127*BK > 32767)". */
int lut_params_check(enum lut_quant q, struct lut_params *p, struct bn_err *err);

/* Checks a whole list: each entry, then no duplicate [m,k]. */
int lut_params_check_list(enum lut_quant q, struct lut_params *p, size_t n, struct bn_err *err);

/* Fills the parameters that are 0 (BM, BK, bm; any subset) for shape p->m x p->k, keeping the
 * given ones, then checks the result.  The heuristic (always valid, documented in lutgen --help):
 *   bm: 32.
 *   BK: TL1 the largest divisor of K that is <= 256 and a multiple of 256/bm;
 *       TL2 among the multiples of 24 up to 240 whose remainder two_k = K mod BK is a multiple of
 *       32 and <= 256: first those whose activation LUT fits bitnet.cpp's workspace
 *       (lut_tl2_fits_ggml_wsize), then the smallest two_k (more weights in the denser 3-weight
 *       code), then the largest BK (fewer int16->int32 widenings).
 *   BM: the largest divisor of M that is a multiple of bm (TL2: of 32) and <= 256 leaving at least
 *       4 tiles (work for several threads); else the largest <= 256; else the smallest. */
int lut_params_auto(enum lut_quant q, struct lut_params *p, struct bn_err *err);

/* bitnet.cpp's ggml sizes the TL2 workspace as 11*K*N + 16*N bytes while the activation LUTs need
 * (32*three_k/3 + 16*two_k + 4)*N (lut-kernels.md §3.6, W4).  false: unsafe as a bitnet.cpp
 * drop-in (our own runtime sizes its scratch exactly and is not affected). */
bool lut_tl2_fits_ggml_wsize(const struct lut_params *p);

/* ---- sizes of the packed weights (lut-kernels.md §3.3, §3.4.5, §4.3) ---- */

/* Bytes of packed weight data the converter writes: TL1 M*K/4; TL2 the fixed formula
 * F = ((K-256)*M/3)*5/8 + 256*M/2*4/8 (>= the real size while two_k <= 256). */
uint64_t lut_packed_size(enum lut_quant q, uint32_t m, uint32_t k);
/* The bytes the packer really fills (TL2: M*three_k/6 + M*three_k/24 + M*two_k/4); the rest of
 * lut_packed_size() is zero padding. */
uint64_t lut_packed_used(enum lut_quant q, const struct lut_params *p);
/* Where the f32 weight scale lives, from the start of the tensor data: pad32(packed size)
 * (the kernels of bitnet.cpp read it there; lut-kernels.md §2.4, §4.2). */
uint64_t lut_scale_offset(enum lut_quant q, uint32_t m, uint32_t k);
/* Bytes a GGUF reserves for the tensor: pad32(packed size) + 32 (scale + 28 zero bytes). */
uint64_t lut_tensor_extent(enum lut_quant q, uint32_t m, uint32_t k);

/* ---- kernel_config.ini (lut-kernels.md §2.5): [Kernels_i] sections with m, k, bm (= BM),
 * bk (= BK), bmm (= bm), each followed by a blank line. ---- */

/* Writes the ini text for n shapes into a malloc'd buffer (caller frees). */
int lut_ini_format(const struct lut_params *p, size_t n, char **out, size_t *len, struct bn_err *err);
/* Parses ini text (what we write, and what ConfigParser accepts of it: any section names, keys in
 * any order and case, '=' or ':', comments).  *p is malloc'd (caller frees); each entry is
 * checked for quant q.  `what` names the file in errors. */
int lut_ini_parse(enum lut_quant q, const char *text, size_t len, const char *what,
		  struct lut_params **p, size_t *n, struct bn_err *err);

/* ---- presets (flat `key = value`, also read by make) ----
 * Tuned parameters are keys `tl1.<M>x<K> = BM,BK,bm` / `tl2.<M>x<K> = BM,BK,bm`.  Looks up the
 * key for p->m x p->k in a preset's text; 1 and fills BM/BK/bm if found, 0 if not, <0 on a
 * malformed value. */
int lut_preset_lookup(enum lut_quant q, const char *text, const char *what, struct lut_params *p,
		      struct bn_err *err);
/* Formats the preset line for p (without newline) into buf. */
void lut_preset_key(enum lut_quant q, uint32_t m, uint32_t k, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif

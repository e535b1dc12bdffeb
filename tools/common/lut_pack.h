/* TL1/TL2 weight packing (the converter side of the LUT kernels): ternary values plus tile
 * parameters in, the exact bytes bitnet.cpp's converter writes out.  Invariant: the byte
 * stream depends only on (ternary matrix, quant, m, k, BM, BK, bm), and lut_unpack inverts it.
 *
 * Layouts (lut-kernels.md §3.3, §3.4.5; convert-quantize.md §9.3), with W[m][k] row-major:
 *  TL1 (M*K/4 bytes): pair code 3*w[r][2c] + w[r][2c+1] + 4 (0..8), two per byte (high nibble
 *      first), ordered by tile (BM rows), K-block (BK columns), micro-tile (bm rows), inner step
 *      (256/bm columns), row group of 16, pair couple, row.
 *  TL2 (F = ((K-256)*M/3)*5/8 + 64*M bytes, zero padded): three_k = K - K mod BK columns as
 *      |9*w0 + 3*w1 + w2| nibbles (0..13) then one sign bit per triple (16-bit little-endian words),
 *      then the two_k remaining columns as TL1-style pair codes in blocks of 32 columns; rows
 *      inside each 32-row micro-tile are stored in 8-row groups in the order 0, 2, 1, 3.
 * The f32 weight scale is not part of the packed bytes: a GGUF stores it at pad32(size) after
 * them (lut_scale_offset). */
#ifndef LUT_PACK_H
#define LUT_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "lut_params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ternarizes n weights the way the converter does (lut-kernels.md §4.1): t = sign(w) with
 * |w| < 1e-6 -> 0; returns the scale max|w| (0 for an all-zero tensor). */
float lut_ternarize(const float *w, size_t n, int8_t *t);

/* Packs t[p->m][p->k] (values -1, 0, +1) into out, which must hold lut_packed_size(q, m, k)
 * bytes; every byte is written (padding zeroed).  p must have passed lut_params_check. */
int lut_pack(enum lut_quant q, const struct lut_params *p, const int8_t *t, uint8_t *out,
	     struct bn_err *err);

/* Packs only tiles [tile0, tile0 + ntiles) of W, given as `rows` = W's rows from tile0*BM on
 * (ntiles*BM rows of p->k values), into `out`, the whole tensor's packed buffer
 * (lut_packed_size bytes): TL1 fills their contiguous bytes, TL2 their parts of its three
 * regions; nothing else (TL2's zero padding is the caller's, see lut_pack).  Disjoint tile
 * ranges may be packed concurrently into the same buffer. */
int lut_pack_tiles(enum lut_quant q, const struct lut_params *p, const int8_t *rows,
		   uint32_t tile0, uint32_t ntiles, uint8_t *out, struct bn_err *err);

/* The inverse of lut_pack: t[p->m][p->k] from packed bytes.  Fails on a nibble no ternary
 * value packs to (TL1 codes 9..15, TL2 magnitudes 14..15 or a sign on magnitude 0). */
int lut_unpack(enum lut_quant q, const struct lut_params *p, const uint8_t *in, int8_t *t,
	       struct bn_err *err);

#ifdef __cplusplus
}
#endif

#endif

/* A bench-only f32 GGUF with a real model's shapes (an mkmodel preset) and ternary projections:
 * what gguf-convert --outtype f32 writes for that model, in tensor shapes, order, types and
 * value kinds, without needing the converter.  Not a test vector: the KVs are minimal and the
 * values are LCG draws (projections ±v/0, norms near 1, embeddings small floats). */
#ifndef QB_GEN_H
#define QB_GEN_H

#include "bn_err.h"

/* Writes the f32 GGUF of preset `preset` (e.g. "bitnet_b1_58-large") with `layers` layers
 * (0: the preset's) to path, atomically. */
int qb_generate_f32(const char *preset, unsigned layers, const char *path, struct bn_err *err);

#endif

/* GGUF v3 reader and streaming writer, with the BitNet fork's tensor types (I2_S, TL1, TL2).
 * Invariant: the reader never trusts the file (every length, count and offset is checked with
 * overflow-safe arithmetic against the mapped size); the writer never holds tensor data.
 *
 * The format (../shared/docs/convert-quantize.md §2; all numbers little-endian):
 *
 *   header      "GGUF" (47 47 55 46), u32 version = 3, u64 n_tensors, u64 n_kv
 *   n_kv KVs    string key, u32 value type, value        (insertion order, keys unique)
 *   n_tensors   string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset
 *   tensor infos
 *   padding     zeros up to the next multiple of ALIGN (absolute file offset); ALIGN = 32
 *               unless a u32 "general.alignment" KV says otherwise
 *   data        each tensor at data_start + offset (offset a multiple of ALIGN), followed by
 *               zeros up to a multiple of 32 of its size; the last tensor is padded too
 *
 *   string      u64 byte length + bytes (UTF-8, no NUL terminator)
 *   value types 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte), 8 string,
 *               9 array, 10 u64, 11 i64, 12 f64
 *   array       u32 element type + u64 count + elements back to back (no nested arrays)
 *   ne[]        ggml order: ne[0] is the row length (the last numpy axis)
 *
 * Tensor byte sizes are the loader's (merge-dev ggml_nbytes, §2.4): N·size/block for ordinary
 * types, I2_S and TL1 N/4 + 32 (the f32 scale lives inside), TL2 pad32(T) + 32 with
 * T = (K−256)·M/3·5/8 + 256·M/2·4/8.  Type ids 36–39 are read as the BitNet fork defines them
 * (I2_S, I8_S, TL1, TL2); mainline ggml reuses those ids for other types (39 = MXFP4), so a
 * mainline file with such tensors is misread — no bitnet pipeline produces one.
 *
 * Reader limits: versions 2 and 3 (identical layouts on little-endian files; version 1 and
 * big-endian files are refused), at most GGUF_MAX_KV KVs and GGUF_MAX_TENSORS tensors, keys of
 * at most 65535 bytes, tensor names of at most 63 bytes (ggml's GGML_MAX_NAME), strings of at
 * most 1 GiB, arrays of at most 2^30 elements, no nested arrays, bools 0 or 1, unique keys and
 * tensor names, n_dims 1..4, every ne[i] and their product below 2^63, known tensor types with
 * ne[0] a multiple of the block size, TL1/TL2 tensors 2-D, offsets aligned, every tensor's data
 * inside the file and no two tensors' data overlapping.  Every failure is one line in struct
 * bn_err naming the file, the field and its value. */
#ifndef GGUF_H
#define GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 63              /* tensor name bytes; ggml's GGML_MAX_NAME is 64 with NUL */
#define GGUF_MAX_KEY 65535
#define GGUF_MAX_STRING (1ull << 30)
#define GGUF_MAX_ARRAY (1ull << 30)
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_QNT_VERSION 2            /* general.quantization_version written by llama-quantize */

/* KV value types. */
enum gguf_vtype {
	GGUF_VTYPE_UINT8 = 0,
	GGUF_VTYPE_INT8 = 1,
	GGUF_VTYPE_UINT16 = 2,
	GGUF_VTYPE_INT16 = 3,
	GGUF_VTYPE_UINT32 = 4,
	GGUF_VTYPE_INT32 = 5,
	GGUF_VTYPE_FLOAT32 = 6,
	GGUF_VTYPE_BOOL = 7,
	GGUF_VTYPE_STRING = 8,
	GGUF_VTYPE_ARRAY = 9,
	GGUF_VTYPE_UINT64 = 10,
	GGUF_VTYPE_INT64 = 11,
	GGUF_VTYPE_FLOAT64 = 12,
	GGUF_VTYPE_COUNT
};

/* Tensor (ggml) types, as in the BitNet fork's ggml.h (merge-dev).  4 and 5 were removed from
 * ggml and are rejected; 31–33 are merge-dev's Q4_0 repacks. */
enum gguf_type {
	GGUF_TYPE_F32 = 0,
	GGUF_TYPE_F16 = 1,
	GGUF_TYPE_Q4_0 = 2,
	GGUF_TYPE_Q4_1 = 3,
	GGUF_TYPE_Q5_0 = 6,
	GGUF_TYPE_Q5_1 = 7,
	GGUF_TYPE_Q8_0 = 8,
	GGUF_TYPE_Q8_1 = 9,
	GGUF_TYPE_Q2_K = 10,
	GGUF_TYPE_Q3_K = 11,
	GGUF_TYPE_Q4_K = 12,
	GGUF_TYPE_Q5_K = 13,
	GGUF_TYPE_Q6_K = 14,
	GGUF_TYPE_Q8_K = 15,
	GGUF_TYPE_IQ2_XXS = 16,
	GGUF_TYPE_IQ2_XS = 17,
	GGUF_TYPE_IQ3_XXS = 18,
	GGUF_TYPE_IQ1_S = 19,
	GGUF_TYPE_IQ4_NL = 20,
	GGUF_TYPE_IQ3_S = 21,
	GGUF_TYPE_IQ2_S = 22,
	GGUF_TYPE_IQ4_XS = 23,
	GGUF_TYPE_I8 = 24,
	GGUF_TYPE_I16 = 25,
	GGUF_TYPE_I32 = 26,
	GGUF_TYPE_I64 = 27,
	GGUF_TYPE_F64 = 28,
	GGUF_TYPE_IQ1_M = 29,
	GGUF_TYPE_BF16 = 30,
	GGUF_TYPE_Q4_0_4_4 = 31,
	GGUF_TYPE_Q4_0_4_8 = 32,
	GGUF_TYPE_Q4_0_8_8 = 33,
	GGUF_TYPE_TQ1_0 = 34,
	GGUF_TYPE_TQ2_0 = 35,
	GGUF_TYPE_I2_S = 36, /* BitNet fork; mainline: removed IQ4_NL_4_4 */
	GGUF_TYPE_I8_S = 37, /* BitNet fork; mainline: removed IQ4_NL_4_8 */
	GGUF_TYPE_TL1 = 38,  /* BitNet fork; mainline: removed IQ4_NL_8_8 */
	GGUF_TYPE_TL2 = 39,  /* BitNet fork; mainline: MXFP4 */
	GGUF_TYPE_COUNT
};

/* general.file_type values used by the bitnet pipeline (llama ftypes, Appendix A). */
enum gguf_ftype {
	GGUF_FTYPE_ALL_F32 = 0,
	GGUF_FTYPE_MOSTLY_F16 = 1,
	GGUF_FTYPE_MOSTLY_Q8_0 = 7,
	GGUF_FTYPE_MOSTLY_TL1 = 38,
	GGUF_FTYPE_MOSTLY_TL2 = 39,
	GGUF_FTYPE_MOSTLY_I2_S = 40,
};

/* ---- type tables ----------------------------------------------------------------------- */

/* "F32", "Q8_0", "I2_S", "TL1"... (gguf-py's names); NULL for an unknown id. */
const char *gguf_type_name(uint32_t type);
/* Case-insensitive inverse of gguf_type_name; -1 if unknown. */
int gguf_type_from_name(const char *name);
/* Elements per block and bytes per block (ggml_blck_size/ggml_type_size; 1/1 for I2_S, I8_S,
 * TL1, TL2); 0 for an unknown id. */
uint32_t gguf_type_block_size(uint32_t type);
uint32_t gguf_type_size(uint32_t type);
/* "u8", "i32", "f32", "bool", "string", "array"...; NULL for an unknown id. */
const char *gguf_vtype_name(uint32_t vtype);
/* The loader's byte size of a tensor (§2.4) into *out: 0 if any extent is 0; N·size/block
 * (ne[0] must be a multiple of the block); I2_S, TL1 N/4 + 32; TL2 pad32(T) + 32 (T as above,
 * 2-D only).  Fails (BN_EFORMAT / BN_ERANGE, message names the dimension) for n_dims outside
 * 1..4, an unknown type, a bad ne[0] or an overflow. */
int gguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *out,
		       struct bn_err *err);

/* ---- reader ---------------------------------------------------------------------------- */

struct gguf_reader; /* opaque */

/* A string inside the file: not NUL-terminated, may contain any bytes. */
struct gguf_str {
	const char *data;
	size_t len;
};

/* A decoded value.  For arrays, gguf_get_value gives the element type and count. */
struct gguf_value {
	enum gguf_vtype type;
	union {
		uint8_t u8;
		int8_t i8;
		uint16_t u16;
		int16_t i16;
		uint32_t u32;
		int32_t i32;
		uint64_t u64;
		int64_t i64;
		float f32;
		double f64;
		bool b;
		struct gguf_str str;
		struct {
			enum gguf_vtype type;
			uint64_t n;
		} arr;
	} v;
};

struct gguf_tensor {
	const char *name;            /* NUL-terminated, owned by the reader */
	uint32_t n_dims;             /* 1..4, as stored */
	uint64_t ne[GGUF_MAX_DIMS];  /* extents, ne[0] = row length; ne[i] = 1 for i >= n_dims */
	uint32_t type;               /* enum gguf_type */
	uint64_t offset;             /* from the start of the data section */
	uint64_t nbytes;             /* gguf_tensor_nbytes: what a loader reads, scale included */
	const uint8_t *data;         /* nbytes bytes inside the mapping, valid until gguf_close */
};

/* Maps and validates a file.  Returns NULL and fills err on failure.  Caller closes the result
 * with gguf_close; every pointer the reader hands out stays valid until then. */
struct gguf_reader *gguf_open(const char *path, struct bn_err *err);
/* Same on a buffer the caller keeps alive and unchanged until gguf_close (tests, fuzzing);
 * `name` names it in errors. */
struct gguf_reader *gguf_open_mem(const void *data, size_t size, const char *name,
				  struct bn_err *err);
/* Unmaps and frees; accepts NULL. */
void gguf_close(struct gguf_reader *r);

uint32_t gguf_version(const struct gguf_reader *r);
uint64_t gguf_alignment(const struct gguf_reader *r);
uint64_t gguf_data_offset(const struct gguf_reader *r); /* absolute offset of the data section */
uint64_t gguf_file_size(const struct gguf_reader *r);

/* KVs are numbered 0..gguf_n_kv()-1 in file order. */
size_t gguf_n_kv(const struct gguf_reader *r);
/* Index of the KV with this key, or -1. */
int64_t gguf_find_key(const struct gguf_reader *r, const char *key);
/* NUL-terminated key (keys never contain NUL); NULL if kv is out of range. */
const char *gguf_kv_key(const struct gguf_reader *r, int64_t kv);
/* The value type, or -1 if kv is out of range. */
int gguf_kv_type(const struct gguf_reader *r, int64_t kv);
/* The whole encoded record (key, type, value) as it is in the file, for verbatim copies.
 * Returns 0, or -BN_EINVAL if kv is out of range. */
int gguf_kv_raw(const struct gguf_reader *r, int64_t kv, const uint8_t **rec, size_t *len);

/* Any value (strings point into the file; arrays give element type and count). */
int gguf_get_value(const struct gguf_reader *r, int64_t kv, struct gguf_value *out,
		   struct bn_err *err);
/* Element i of an array KV. */
int gguf_get_arr_value(const struct gguf_reader *r, int64_t kv, uint64_t i,
		       struct gguf_value *out, struct bn_err *err);

/* Typed getters: fail with BN_EFORMAT ("<key>: type is f32, expected u32") on a type mismatch
 * and BN_EINVAL on a bad index; no conversions. */
int gguf_get_u8(const struct gguf_reader *r, int64_t kv, uint8_t *out, struct bn_err *err);
int gguf_get_i8(const struct gguf_reader *r, int64_t kv, int8_t *out, struct bn_err *err);
int gguf_get_u16(const struct gguf_reader *r, int64_t kv, uint16_t *out, struct bn_err *err);
int gguf_get_i16(const struct gguf_reader *r, int64_t kv, int16_t *out, struct bn_err *err);
int gguf_get_u32(const struct gguf_reader *r, int64_t kv, uint32_t *out, struct bn_err *err);
int gguf_get_i32(const struct gguf_reader *r, int64_t kv, int32_t *out, struct bn_err *err);
int gguf_get_u64(const struct gguf_reader *r, int64_t kv, uint64_t *out, struct bn_err *err);
int gguf_get_i64(const struct gguf_reader *r, int64_t kv, int64_t *out, struct bn_err *err);
int gguf_get_f32(const struct gguf_reader *r, int64_t kv, float *out, struct bn_err *err);
int gguf_get_f64(const struct gguf_reader *r, int64_t kv, double *out, struct bn_err *err);
int gguf_get_bool(const struct gguf_reader *r, int64_t kv, bool *out, struct bn_err *err);
int gguf_get_str(const struct gguf_reader *r, int64_t kv, struct gguf_str *out,
		 struct bn_err *err);
/* Checks that kv is an array of `elem` and gives its length. */
int gguf_get_arr(const struct gguf_reader *r, int64_t kv, enum gguf_vtype elem, uint64_t *n,
		 struct bn_err *err);
/* Element i of an array of the matching element type. */
int gguf_get_arr_u8(const struct gguf_reader *r, int64_t kv, uint64_t i, uint8_t *out,
		    struct bn_err *err);
int gguf_get_arr_i8(const struct gguf_reader *r, int64_t kv, uint64_t i, int8_t *out,
		    struct bn_err *err);
int gguf_get_arr_u16(const struct gguf_reader *r, int64_t kv, uint64_t i, uint16_t *out,
		     struct bn_err *err);
int gguf_get_arr_i16(const struct gguf_reader *r, int64_t kv, uint64_t i, int16_t *out,
		     struct bn_err *err);
int gguf_get_arr_u32(const struct gguf_reader *r, int64_t kv, uint64_t i, uint32_t *out,
		     struct bn_err *err);
int gguf_get_arr_i32(const struct gguf_reader *r, int64_t kv, uint64_t i, int32_t *out,
		     struct bn_err *err);
int gguf_get_arr_u64(const struct gguf_reader *r, int64_t kv, uint64_t i, uint64_t *out,
		     struct bn_err *err);
int gguf_get_arr_i64(const struct gguf_reader *r, int64_t kv, uint64_t i, int64_t *out,
		     struct bn_err *err);
int gguf_get_arr_f32(const struct gguf_reader *r, int64_t kv, uint64_t i, float *out,
		     struct bn_err *err);
int gguf_get_arr_f64(const struct gguf_reader *r, int64_t kv, uint64_t i, double *out,
		     struct bn_err *err);
int gguf_get_arr_bool(const struct gguf_reader *r, int64_t kv, uint64_t i, bool *out,
		      struct bn_err *err);
int gguf_get_arr_str(const struct gguf_reader *r, int64_t kv, uint64_t i, struct gguf_str *out,
		     struct bn_err *err);

/* Tensors are numbered 0..gguf_n_tensors()-1 in tensor-info order. */
size_t gguf_n_tensors(const struct gguf_reader *r);
/* Borrowed tensor info, NULL if i is out of range. */
const struct gguf_tensor *gguf_tensor(const struct gguf_reader *r, size_t i);
/* Index of the tensor with this name, or -1. */
int64_t gguf_find_tensor(const struct gguf_reader *r, const char *name);

/* ---- writer ---------------------------------------------------------------------------- */

/* Writes a GGUF v3 file byte-identical to gguf-py's (§2) in three phases:
 *   1. gguf_writer_add_* / gguf_writer_copy_kv / gguf_writer_add_tensor*: KVs and tensor infos,
 *      kept in memory in insertion order (duplicate keys and names are refused);
 *   2. gguf_writer_write_header: header, KVs, tensor infos and padding, written once;
 *   3. gguf_writer_write / gguf_writer_zeros: each tensor's bytes in info order, in any number
 *      of chunks; when a tensor's declared size is reached the writer adds its zero padding to
 *      a multiple of 32 (the last tensor's too) and moves to the next one; a chunk may not
 *      cross into the next tensor;
 * then gguf_writer_commit checks that every declared byte was written, fsyncs and renames
 * "<path>.tmp" to path.  Offsets are running sums of pad32(declared size), alignment 32.
 * Anything after a failed call fails too (the file is never committed).
 * Unlike gguf-py, empty strings and empty arrays are written as given, not skipped: callers
 * that must match gguf-py byte for byte skip them themselves (§2.2). */
struct gguf_writer; /* opaque */

/* Creates "<path>.tmp".  Returns NULL on failure.  Caller ends with gguf_writer_close. */
struct gguf_writer *gguf_writer_open(const char *path, struct bn_err *err);
/* Frees; removes the temp file unless committed.  Accepts NULL. */
void gguf_writer_close(struct gguf_writer *w);

int gguf_writer_add_u8(struct gguf_writer *w, const char *key, uint8_t v, struct bn_err *err);
int gguf_writer_add_i8(struct gguf_writer *w, const char *key, int8_t v, struct bn_err *err);
int gguf_writer_add_u16(struct gguf_writer *w, const char *key, uint16_t v, struct bn_err *err);
int gguf_writer_add_i16(struct gguf_writer *w, const char *key, int16_t v, struct bn_err *err);
int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v, struct bn_err *err);
int gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v, struct bn_err *err);
int gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v, struct bn_err *err);
int gguf_writer_add_i64(struct gguf_writer *w, const char *key, int64_t v, struct bn_err *err);
int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v, struct bn_err *err);
int gguf_writer_add_f64(struct gguf_writer *w, const char *key, double v, struct bn_err *err);
int gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v, struct bn_err *err);
int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *s,
			struct bn_err *err);
int gguf_writer_add_strn(struct gguf_writer *w, const char *key, const char *s, size_t len,
			 struct bn_err *err);
/* An array of n numbers or bools: `vals` points to n C values of the element type (uint8_t,
 * int8_t, ..., float, bool, uint64_t, int64_t, double). */
int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem,
			const void *vals, uint64_t n, struct bn_err *err);
/* An array of n strings; lens may be NULL (then each string is NUL-terminated). */
int gguf_writer_add_arr_str(struct gguf_writer *w, const char *key, const char *const *strs,
			    const size_t *lens, uint64_t n, struct bn_err *err);
/* Appends KV `kv` of reader r verbatim (key, type and value bytes). */
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_reader *r, int64_t kv,
			struct bn_err *err);

/* Declares a tensor whose data size is gguf_tensor_nbytes(type, n_dims, ne). */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type,
			   uint32_t n_dims, const uint64_t *ne, struct bn_err *err);
/* Declares a tensor with an explicit data size, at least the loader size.  The TL converter
 * output (§2.3, §9.4) is written this way: nbytes = pad32(packed) + 32, and the caller streams
 * the packed bytes, zeros to pad32, the f32 scale and 28 zeros. */
int gguf_writer_add_tensor_sized(struct gguf_writer *w, const char *name, uint32_t type,
				 uint32_t n_dims, const uint64_t *ne, uint64_t nbytes,
				 struct bn_err *err);

/* The size the whole file will have, from the KVs and tensors declared so far (header, KVs,
 * tensor infos, padding and every tensor's padded data): known before anything is written. */
uint64_t gguf_writer_file_size(const struct gguf_writer *w);

/* Phase 2.  After it no KV or tensor can be added. */
int gguf_writer_write_header(struct gguf_writer *w, struct bn_err *err);
/* Phase 3: the next n bytes of the current tensor. */
int gguf_writer_write(struct gguf_writer *w, const void *buf, size_t n, struct bn_err *err);
int gguf_writer_zeros(struct gguf_writer *w, size_t n, struct bn_err *err);
/* Number of the tensor the next byte belongs to (== n_tensors when all are complete). */
size_t gguf_writer_current_tensor(const struct gguf_writer *w);
/* Checks completeness, fsyncs, renames into place.  The writer then only accepts close. */
int gguf_writer_commit(struct gguf_writer *w, struct bn_err *err);

#endif

/* safetensors checkpoints: one file, or shards (model.safetensors.index.json, else every
 * *.safetensors file of the directory, as the reference converter does), mmap'd read-only.
 * Invariant: once st_open succeeds, every tensor's bytes [data, data + nbytes) lie inside its
 * shard's map, nbytes == product(shape) * dtype size, and the tensors of a shard tile its data
 * area exactly (no overlap, no gap), as the safetensors library itself requires.
 *
 * File layout (safetensors format): u64 little-endian N, then N bytes of UTF-8 JSON (an object:
 * "__metadata__" -> {str: str}, optional; every other key a tensor name -> {"dtype": "F32",
 * "shape": [d0, d1, ...], "data_offsets": [begin, end]}), then the data area; offsets are
 * relative to the data area, shapes are row-major with the outermost dimension first.
 * The Python library pads the JSON with spaces to a multiple of 8 and stores tensors sorted by
 * dtype (descending in its enum order: F32 > BF16 > F16 > I8 > U8) then name
 * (../shared/docs/convert-quantize.md §4.2). */
#ifndef ST_SAFETENSORS_H
#define ST_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "bn_file.h"

#define ST_MAX_DIMS 4                       /* higher ranks are rejected (ggml has 4 dims) */
#define ST_MAX_HEADER 100000000ull          /* the safetensors library's own header cap */
#define ST_MAX_INDEX (64u << 20)            /* model.safetensors.index.json size cap */
#define ST_MAX_TENSORS (1u << 20)           /* per checkpoint */
#define ST_MAX_SHARDS 65536u
#define ST_INDEX_NAME "model.safetensors.index.json"

/* The dtypes we read.  Every other safetensors dtype (F64, I16, I32, I64, U16..U64, BOOL, F8_*,
 * F4, F6_*, C64, ...) is rejected by name. */
enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_U8, ST_I8, ST_DTYPE_COUNT };

/* Iteration order of st_model.tensors: shards in file-name (byte) order, and inside a shard
 * either by name (byte order: "model.layers.10." sorts before "model.layers.2.") or by data
 * offset.  Older Python safetensors returned names sorted, the current one in offset order. */
enum st_order { ST_ORDER_NAME, ST_ORDER_OFFSET };

struct st_tensor {
	const char *name;                /* NUL-terminated, owned by the st_model */
	enum st_dtype dtype;
	unsigned n_dims;                 /* 0 (a scalar) .. ST_MAX_DIMS */
	uint64_t shape[ST_MAX_DIMS];     /* outermost first, as in the header; unused dims are 1 */
	uint64_t n_elements;
	uint64_t offset;                 /* begin, relative to the shard's data area */
	size_t nbytes;
	const uint8_t *data;             /* into the shard's map; not aligned in general */
	unsigned shard;                  /* index into st_model.shards */
};

struct st_shard {
	char *path;                      /* as opened (directory joined with the file name) */
	const char *name;                /* its last path component (points into path) */
	struct bn_map map;               /* unmapped (data NULL) for st_open_buffer */
	uint64_t header_len;             /* N: the JSON header's length, padding included */
	size_t first, count;             /* this shard's range in st_model.tensors */
	void *metadata;                  /* json_t * of "__metadata__", or NULL */
};

struct st_model {
	size_t n_shards;
	struct st_shard *shards;
	size_t n_tensors;
	struct st_tensor *tensors;       /* in the st_order chosen at open */
	bool indexed;                    /* opened through model.safetensors.index.json */
	/* private */
	const struct st_tensor **by_name; /* sorted by name, for st_find */
	char *names;                      /* arena holding every tensor name */
};

/* Opens a checkpoint: `path` is a .safetensors file or a directory holding model.safetensors,
 * model-*-of-*.safetensors + model.safetensors.index.json, or any *.safetensors files.  With an
 * index, exactly the shards it names are read and every tensor must be where weight_map says
 * (other *.safetensors files in the directory are ignored); without one, every *.safetensors
 * file of the directory is a shard.  A tensor name may appear only once in the checkpoint.
 * Caller closes *out with st_close. */
int st_open(struct st_model **out, const char *path, enum st_order order, struct bn_err *err);

/* Parses one safetensors file held in memory (borrowed: buf must outlive the model); `name`
 * names it in errors.  Used by the fuzz target and tests. */
int st_open_buffer(struct st_model **out, const void *buf, size_t len, const char *name,
		   enum st_order order, struct bn_err *err);

void st_close(struct st_model *m);

/* The tensor with this exact name, or NULL. */
const struct st_tensor *st_find(const struct st_model *m, const char *name);

/* A value of the shard's "__metadata__" object, or NULL. */
const char *st_metadata(const struct st_model *m, size_t shard, const char *key);

const char *st_dtype_name(enum st_dtype t);
size_t st_dtype_size(enum st_dtype t);
/* 0 and *t on success; -BN_EUNSUPPORTED for a valid safetensors dtype we do not read,
 * -BN_EFORMAT for a name that is no safetensors dtype at all. */
int st_dtype_parse(const char *name, enum st_dtype *t);

/* Element i (row-major, i < n_elements) as f32: F32 as is, BF16 by shift, F16 exactly, U8/I8 as
 * their integer value. */
float st_get_f32(const struct st_tensor *t, uint64_t i);
/* Elements [first, first + n) as f32 into dst (first + n <= n_elements). */
void st_read_f32(const struct st_tensor *t, uint64_t first, size_t n, float *dst);

/* ---- writing: the header exactly as the Python safetensors library lays it out ----------- */

/* How a writer orders tensors in the data area (and the header, which follows data order). */
enum st_layout {
	ST_LAYOUT_LIBRARY, /* dtype descending (F32, BF16, F16, I8, U8), then name: what
			    * safetensors.torch/numpy.save_file writes */
	ST_LAYOUT_NAME,    /* name only */
	ST_LAYOUT_GIVEN,   /* the order of the entries as passed */
};

struct st_entry {
	const char *name;
	enum st_dtype dtype;
	unsigned n_dims;
	uint64_t shape[ST_MAX_DIMS];
	/* filled by st_header_build: */
	uint64_t begin, end;             /* data_offsets */
};

/* Orders the entries per `layout` (perm[i] = index into e of the i-th tensor in the file;
 * perm has n slots), assigns data_offsets, and returns in *hdr (malloc'd, caller frees) the
 * file's first *hdr_len bytes: the u64 length, the compact JSON header (serde_json layout:
 * "__metadata__" first when meta is non-NULL, then each tensor as
 * {"dtype":..,"shape":[..],"data_offsets":[b,e]} in data order) padded with spaces to a
 * multiple of 8.  meta is NULL or a NULL-terminated list of key, value, key, value, ...
 * *data_len receives the size of the data area. */
int st_header_build(struct st_entry *e, size_t n, enum st_layout layout, const char *const *meta,
		    size_t *perm, uint8_t **hdr, size_t *hdr_len, uint64_t *data_len,
		    struct bn_err *err);

#endif

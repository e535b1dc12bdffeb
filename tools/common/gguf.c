/* GGUF reader (mmap, every field bounds-checked) and streaming writer (see gguf.h).
 * Invariant of the reader: `pos <= size` always holds, and no byte at or past `size` is read;
 * every count that sizes an allocation is first bounded by the bytes left in the file. */
#include "gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bn_file.h"
#include "bn_util.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads and writes little-endian values with memcpy: little-endian hosts only"
#endif

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE-754 binary32/64 expected");

/* ---- type tables --------------------------------------------------------------------- */

struct type_info {
	const char *name;
	uint32_t blck; /* elements per block */
	uint32_t size; /* bytes per block */
};

/* ggml's type traits (merge-dev ggml.c); the K-quant and IQ block sizes follow ggml-common.h. */
static const struct type_info TYPES[GGUF_TYPE_COUNT] = {
	[GGUF_TYPE_F32] = { "F32", 1, 4 },
	[GGUF_TYPE_F16] = { "F16", 1, 2 },
	[GGUF_TYPE_Q4_0] = { "Q4_0", 32, 18 },
	[GGUF_TYPE_Q4_1] = { "Q4_1", 32, 20 },
	[GGUF_TYPE_Q5_0] = { "Q5_0", 32, 22 },
	[GGUF_TYPE_Q5_1] = { "Q5_1", 32, 24 },
	[GGUF_TYPE_Q8_0] = { "Q8_0", 32, 34 },
	[GGUF_TYPE_Q8_1] = { "Q8_1", 32, 36 },
	[GGUF_TYPE_Q2_K] = { "Q2_K", 256, 84 },
	[GGUF_TYPE_Q3_K] = { "Q3_K", 256, 110 },
	[GGUF_TYPE_Q4_K] = { "Q4_K", 256, 144 },
	[GGUF_TYPE_Q5_K] = { "Q5_K", 256, 176 },
	[GGUF_TYPE_Q6_K] = { "Q6_K", 256, 210 },
	[GGUF_TYPE_Q8_K] = { "Q8_K", 256, 292 },
	[GGUF_TYPE_IQ2_XXS] = { "IQ2_XXS", 256, 66 },
	[GGUF_TYPE_IQ2_XS] = { "IQ2_XS", 256, 74 },
	[GGUF_TYPE_IQ3_XXS] = { "IQ3_XXS", 256, 98 },
	[GGUF_TYPE_IQ1_S] = { "IQ1_S", 256, 50 },
	[GGUF_TYPE_IQ4_NL] = { "IQ4_NL", 32, 18 },
	[GGUF_TYPE_IQ3_S] = { "IQ3_S", 256, 110 },
	[GGUF_TYPE_IQ2_S] = { "IQ2_S", 256, 82 },
	[GGUF_TYPE_IQ4_XS] = { "IQ4_XS", 256, 136 },
	[GGUF_TYPE_I8] = { "I8", 1, 1 },
	[GGUF_TYPE_I16] = { "I16", 1, 2 },
	[GGUF_TYPE_I32] = { "I32", 1, 4 },
	[GGUF_TYPE_I64] = { "I64", 1, 8 },
	[GGUF_TYPE_F64] = { "F64", 1, 8 },
	[GGUF_TYPE_IQ1_M] = { "IQ1_M", 256, 56 },
	[GGUF_TYPE_BF16] = { "BF16", 1, 2 },
	[GGUF_TYPE_Q4_0_4_4] = { "Q4_0_4_4", 32, 18 },
	[GGUF_TYPE_Q4_0_4_8] = { "Q4_0_4_8", 32, 18 },
	[GGUF_TYPE_Q4_0_8_8] = { "Q4_0_8_8", 32, 18 },
	[GGUF_TYPE_TQ1_0] = { "TQ1_0", 256, 54 },
	[GGUF_TYPE_TQ2_0] = { "TQ2_0", 256, 66 },
	[GGUF_TYPE_I2_S] = { "I2_S", 1, 1 },
	[GGUF_TYPE_I8_S] = { "I8_S", 1, 1 },
	[GGUF_TYPE_TL1] = { "TL1", 1, 1 },
	[GGUF_TYPE_TL2] = { "TL2", 1, 1 },
};

static const struct type_info *type_info(uint32_t type)
{
	return type < GGUF_TYPE_COUNT && TYPES[type].name ? &TYPES[type] : NULL;
}

const char *gguf_type_name(uint32_t type)
{
	const struct type_info *t = type_info(type);
	return t ? t->name : NULL;
}

int gguf_type_from_name(const char *name)
{
	for (int i = 0; i < GGUF_TYPE_COUNT; i++)
		if (TYPES[i].name && strcasecmp(TYPES[i].name, name) == 0)
			return i;
	return -1;
}

uint32_t gguf_type_block_size(uint32_t type)
{
	const struct type_info *t = type_info(type);
	return t ? t->blck : 0;
}

uint32_t gguf_type_size(uint32_t type)
{
	const struct type_info *t = type_info(type);
	return t ? t->size : 0;
}

static const char *const VTYPE_NAMES[GGUF_VTYPE_COUNT] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
/* Encoded size of a scalar value; 0 for string and array. */
static const uint8_t VTYPE_SIZE[GGUF_VTYPE_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

const char *gguf_vtype_name(uint32_t vtype)
{
	return vtype < GGUF_VTYPE_COUNT ? VTYPE_NAMES[vtype] : NULL;
}

int gguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *out,
		       struct bn_err *err)
{
	const struct type_info *t = type_info(type);
	if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
		return bn_seterr(err, BN_EFORMAT, "n_dims %u is outside 1..%d", n_dims, GGUF_MAX_DIMS);
	if (!t)
		return bn_seterr(err, BN_EFORMAT, "unknown tensor type %u", type);
	uint64_t n = 1;
	for (uint32_t i = 0; i < n_dims; i++) {
		if (ne[i] > INT64_MAX)
			return bn_seterr(err, BN_ERANGE, "ne[%u] = %llu exceeds 2^63-1", i,
					 (unsigned long long)ne[i]);
		if (!bn_mul_u64(n, ne[i], &n) || n > INT64_MAX)
			return bn_seterr(err, BN_ERANGE,
					 "element count overflows at ne[%u] = %llu", i,
					 (unsigned long long)ne[i]);
	}
	if (ne[0] % t->blck != 0)
		return bn_seterr(err, BN_EFORMAT, "ne[0] = %llu is not a multiple of the %s block size %u",
				 (unsigned long long)ne[0], t->name, t->blck);
	bool tl = type == GGUF_TYPE_TL1 || type == GGUF_TYPE_TL2;
	for (uint32_t i = 2; tl && i < n_dims; i++)
		if (ne[i] != 1)
			return bn_seterr(err, BN_EFORMAT, "%s tensors are 2-D, but ne[%u] = %llu", t->name,
					 i, (unsigned long long)ne[i]);
	if (n == 0) {
		*out = 0;
		return 0;
	}
	if (type == GGUF_TYPE_I2_S || type == GGUF_TYPE_TL1) {
		*out = n / 4 + 32;
		return 0;
	}
	if (type == GGUF_TYPE_TL2) {
		/* ggml_nbytes evaluates this in int64_t, left to right, truncating toward zero; the
		 * first term is negative for K < 256 but never below -64·M, so the sum stays > 0. */
		int64_t k = (int64_t)ne[0], m = n_dims > 1 ? (int64_t)ne[1] : 1, a, b;
		if (__builtin_mul_overflow(k - 256, m, &a) || __builtin_mul_overflow(a / 3, 5, &a) ||
		    __builtin_mul_overflow(256, m, &b) || __builtin_mul_overflow(b / 2, 4, &b) ||
		    __builtin_add_overflow(a / 8, b / 8, &a) || a < 0)
			return bn_seterr(err, BN_ERANGE, "TL2 size overflows for K = %lld, M = %lld",
					 (long long)k, (long long)m);
		uint64_t sz;
		if (!bn_align_u64((uint64_t)a, 32, &sz) || !bn_add_u64(sz, 32, &sz))
			return bn_seterr(err, BN_ERANGE, "TL2 size overflows");
		*out = sz;
		return 0;
	}
	if (!bn_mul_u64(n / t->blck, t->size, out))
		return bn_seterr(err, BN_ERANGE, "%s tensor of %llu elements: byte size overflows",
				 t->name, (unsigned long long)n);
	return 0;
}

/* ---- reader ---------------------------------------------------------------------------- */

struct kv_entry {
	char *key;             /* NUL-terminated copy */
	uint32_t type;         /* enum gguf_vtype */
	uint32_t arr_type;     /* arrays: element type */
	uint64_t arr_n;        /* arrays: element count */
	const uint8_t *rec;    /* encoded record (key length prefix first) */
	size_t rec_len;
	const uint8_t *val;    /* scalar bytes; strings: length prefix; arrays: first element */
	uint64_t *str_off;     /* string arrays: offset of element i's length prefix from val */
};

struct gguf_reader {
	char *name;
	struct bn_map map;
	const uint8_t *data;
	size_t size;
	uint32_t version;
	uint64_t alignment;
	uint64_t data_offset;
	size_t n_kv, n_tensors;
	struct kv_entry *kv;
	struct gguf_tensor *tensors;
	size_t *kv_sorted;     /* KV indices sorted by key, for lookups */
	size_t *tensor_sorted; /* tensor indices sorted by name */
};

/* Parse state: position and the description of the field being read (for messages). */
struct parse {
	struct gguf_reader *r;
	size_t pos;
	char what[160];
	struct bn_err *err;
};

/* Copies s (up to n bytes) for a one-line message: control bytes become '?', long names are
 * cut with "...". */
static const char *printable(const char *s, size_t n, char *buf, size_t bufsize)
{
	size_t j = 0;
	for (size_t i = 0; i < n && j + 4 < bufsize; i++)
		buf[j++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (j + 4 >= bufsize && n > j)
		memcpy(buf + j, "...", 3), j += 3;
	buf[j] = '\0';
	return buf;
}

__attribute__((format(printf, 3, 4)))
static int perr(struct parse *p, int code, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return bn_seterr(p->err, code, "%s: %s: %s", p->r->name, p->what, why);
}

static int truncated(struct parse *p, const char *field, uint64_t need)
{
	return perr(p, BN_EFORMAT, "%s at offset %zu needs %llu bytes, but the file ends at %zu",
		    field, p->pos, (unsigned long long)need, p->r->size);
}

static int rd(struct parse *p, void *dst, size_t n, const char *field)
{
	if (n > p->r->size - p->pos)
		return truncated(p, field, n);
	memcpy(dst, p->r->data + p->pos, n);
	p->pos += n;
	return 0;
}

static int rd_u32(struct parse *p, uint32_t *v, const char *field)
{
	return rd(p, v, 4, field);
}

static int rd_u64(struct parse *p, uint64_t *v, const char *field)
{
	return rd(p, v, 8, field);
}

static size_t left(const struct parse *p)
{
	return p->r->size - p->pos;
}

/* Reads a string's length prefix and checks it against `cap` and the file; leaves pos at the
 * first byte of the string and stores its length. */
static int rd_strlen(struct parse *p, uint64_t cap, uint64_t *len, const char *noun)
{
	char field[96];
	snprintf(field, sizeof field, "%s length", noun);
	int rc = rd_u64(p, len, field);
	if (rc)
		return rc;
	if (*len > cap)
		return perr(p, BN_EFORMAT, "%s %llu exceeds the limit of %llu", field,
			    (unsigned long long)*len, (unsigned long long)cap);
	if (*len > left(p))
		return perr(p, BN_EFORMAT,
			    "%s %llu at offset %zu runs past the end of the file (%zu bytes)", field,
			    (unsigned long long)*len, p->pos - 8, p->r->size);
	return 0;
}

/* A key or tensor name: non-empty, at most `cap` bytes, no NUL; returns a malloc'd copy. */
static int rd_name(struct parse *p, uint64_t cap, char **out, const char *field)
{
	uint64_t len;
	int rc = rd_strlen(p, cap, &len, field);
	if (rc)
		return rc;
	if (len == 0)
		return perr(p, BN_EFORMAT, "empty %s", field);
	const char *s = (const char *)p->r->data + p->pos;
	if (memchr(s, '\0', (size_t)len))
		return perr(p, BN_EFORMAT, "%s contains a NUL byte", field);
	*out = malloc((size_t)len + 1);
	if (!*out)
		return perr(p, BN_ENOMEM, "out of memory");
	memcpy(*out, s, (size_t)len);
	(*out)[len] = '\0';
	p->pos += (size_t)len;
	return 0;
}

/* Checks one bool byte at pos (0 or 1). */
static int check_bool(struct parse *p, uint8_t b, const char *field)
{
	if (b > 1)
		return perr(p, BN_EFORMAT, "%s byte %u (must be 0 or 1)", field, b);
	return 0;
}

static int parse_kv(struct parse *p, size_t i)
{
	struct gguf_reader *r = p->r;
	struct kv_entry *e = &r->kv[i];
	char pk[80];
	int rc;
	size_t start = p->pos;
	snprintf(p->what, sizeof p->what, "KV %zu", i);
	if ((rc = rd_name(p, GGUF_MAX_KEY, &e->key, "key")))
		return rc;
	snprintf(p->what, sizeof p->what, "KV %zu '%s'", i,
		 printable(e->key, strlen(e->key), pk, sizeof pk));
	if ((rc = rd_u32(p, &e->type, "value type")))
		return rc;
	if (e->type >= GGUF_VTYPE_COUNT)
		return perr(p, BN_EFORMAT, "unknown value type %u", e->type);
	if (e->type == GGUF_VTYPE_STRING) {
		e->val = r->data + p->pos;
		uint64_t len;
		if ((rc = rd_strlen(p, GGUF_MAX_STRING, &len, "string")))
			return rc;
		p->pos += (size_t)len;
	} else if (e->type == GGUF_VTYPE_ARRAY) {
		if ((rc = rd_u32(p, &e->arr_type, "array element type")))
			return rc;
		if (e->arr_type == GGUF_VTYPE_ARRAY)
			return perr(p, BN_EUNSUPPORTED, "nested arrays are not supported");
		if (e->arr_type >= GGUF_VTYPE_COUNT)
			return perr(p, BN_EFORMAT, "unknown array element type %u", e->arr_type);
		if ((rc = rd_u64(p, &e->arr_n, "array count")))
			return rc;
		if (e->arr_n > GGUF_MAX_ARRAY)
			return perr(p, BN_EFORMAT, "array count %llu exceeds the limit of %llu",
				    (unsigned long long)e->arr_n, GGUF_MAX_ARRAY);
		e->val = r->data + p->pos;
		size_t esize = e->arr_type == GGUF_VTYPE_STRING ? 8 : VTYPE_SIZE[e->arr_type];
		if (e->arr_n > left(p) / esize)
			return perr(p, BN_EFORMAT,
				    "array of %llu %s at offset %zu runs past the end of the file (%zu bytes)",
				    (unsigned long long)e->arr_n, VTYPE_NAMES[e->arr_type], p->pos,
				    r->size);
		if (e->arr_type == GGUF_VTYPE_STRING) {
			e->str_off = malloc((size_t)(e->arr_n ? e->arr_n : 1) * sizeof *e->str_off);
			if (!e->str_off)
				return perr(p, BN_ENOMEM, "out of memory");
			for (uint64_t j = 0; j < e->arr_n; j++) {
				char field[64];
				snprintf(field, sizeof field, "element %llu string",
					 (unsigned long long)j);
				e->str_off[j] = (uint64_t)(r->data + p->pos - e->val);
				uint64_t len;
				if ((rc = rd_strlen(p, GGUF_MAX_STRING, &len, field)))
					return rc;
				p->pos += (size_t)len;
			}
		} else {
			size_t bytes = (size_t)e->arr_n * esize; /* <= left(p), checked above */
			if (e->arr_type == GGUF_VTYPE_BOOL)
				for (size_t j = 0; j < bytes; j++)
					if ((rc = check_bool(p, e->val[j], "bool element")))
						return rc;
			p->pos += bytes;
		}
	} else {
		size_t n = VTYPE_SIZE[e->type];
		if (n > left(p))
			return truncated(p, VTYPE_NAMES[e->type], n);
		e->val = r->data + p->pos;
		if (e->type == GGUF_VTYPE_BOOL && (rc = check_bool(p, e->val[0], "bool value")))
			return rc;
		p->pos += n;
	}
	e->rec = r->data + start;
	e->rec_len = p->pos - start;
	return 0;
}

static int parse_tensor_info(struct parse *p, size_t i)
{
	struct gguf_reader *r = p->r;
	struct gguf_tensor *t = &r->tensors[i];
	char pn[80];
	int rc;
	char *name = NULL;
	snprintf(p->what, sizeof p->what, "tensor %zu", i);
	/* Length first, so that an over-long name is reported with its length. */
	if ((rc = rd_name(p, GGUF_MAX_NAME, &name, "name")))
		return rc;
	t->name = name;
	snprintf(p->what, sizeof p->what, "tensor %zu '%s'", i,
		 printable(name, strlen(name), pn, sizeof pn));
	if ((rc = rd_u32(p, &t->n_dims, "n_dims")))
		return rc;
	if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
		return perr(p, BN_EFORMAT, "n_dims %u is outside 1..%d", t->n_dims, GGUF_MAX_DIMS);
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
		t->ne[d] = 1;
	for (uint32_t d = 0; d < t->n_dims; d++)
		if ((rc = rd_u64(p, &t->ne[d], "ne")))
			return rc;
	if ((rc = rd_u32(p, &t->type, "type")))
		return rc;
	if (!type_info(t->type))
		return perr(p, BN_EFORMAT, "unknown tensor type %u", t->type);
	if ((rc = rd_u64(p, &t->offset, "offset")))
		return rc;
	struct bn_err e2;
	if ((rc = gguf_tensor_nbytes(t->type, t->n_dims, t->ne, &t->nbytes, &e2)))
		return perr(p, e2.code, "%s", e2.msg);
	return 0;
}

/* qsort has no context argument: the reader being sorted, per thread. */
static _Thread_local const struct gguf_reader *sort_ctx;
static int cmp_key(const void *a, const void *b)
{
	return strcmp(sort_ctx->kv[*(const size_t *)a].key, sort_ctx->kv[*(const size_t *)b].key);
}
static int cmp_name(const void *a, const void *b)
{
	return strcmp(sort_ctx->tensors[*(const size_t *)a].name,
		      sort_ctx->tensors[*(const size_t *)b].name);
}
static int cmp_offset(const void *a, const void *b)
{
	uint64_t x = sort_ctx->tensors[*(const size_t *)a].offset;
	uint64_t y = sort_ctx->tensors[*(const size_t *)b].offset;
	return x < y ? -1 : x > y;
}

/* Indices 0..n-1 sorted with cmp; NULL when out of memory. */
static size_t *sorted_index(const struct gguf_reader *r, size_t n,
			    int (*cmp)(const void *, const void *))
{
	size_t *idx = malloc((n ? n : 1) * sizeof *idx);
	if (!idx)
		return NULL;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	sort_ctx = r;
	qsort(idx, n, sizeof *idx, cmp);
	sort_ctx = NULL;
	return idx;
}

/* Names tensor i in p->what. */
static void what_tensor(struct parse *p, size_t i)
{
	char pn[80];
	const char *name = p->r->tensors[i].name;
	snprintf(p->what, sizeof p->what, "tensor %zu '%s'", i,
		 printable(name, strlen(name), pn, sizeof pn));
}

static int parse(struct gguf_reader *r, struct bn_err *err)
{
	struct parse p = { .r = r, .pos = 0, .err = err };
	char buf[80];
	int rc;
	snprintf(p.what, sizeof p.what, "header");
	if (r->size < 4)
		return perr(&p, BN_EFORMAT, "file is %zu bytes, too short for a GGUF header",
			    r->size);
	if (memcmp(r->data, GGUF_MAGIC, 4) != 0)
		return perr(&p, BN_EFORMAT,
			    "bad magic %02x %02x %02x %02x (expected 47 47 55 46, \"GGUF\"); not a GGUF file",
			    r->data[0], r->data[1], r->data[2], r->data[3]);
	p.pos = 4;
	if ((rc = rd_u32(&p, &r->version, "version")))
		return rc;
	if (r->version != 2 && r->version != 3) {
		uint32_t sw = __builtin_bswap32(r->version);
		if (sw >= 1 && sw <= 3)
			return perr(&p, BN_EUNSUPPORTED,
				    "version field 0x%08x: big-endian GGUF files are not supported",
				    r->version);
		return perr(&p, BN_EUNSUPPORTED, "unsupported GGUF version %u (2 and 3 are read)",
			    r->version);
	}
	uint64_t n_tensors, n_kv;
	if ((rc = rd_u64(&p, &n_tensors, "n_tensors")) || (rc = rd_u64(&p, &n_kv, "n_kv")))
		return rc;
	/* Smallest records: KV 8+1 key, 4 type, 1 value; tensor 8+1 name, 4, 8, 4, 8. */
	if (n_kv > GGUF_MAX_KV || n_kv > left(&p) / 14)
		return n_kv > GGUF_MAX_KV
			       ? perr(&p, BN_EFORMAT, "n_kv %llu exceeds the limit of %u",
				      (unsigned long long)n_kv, GGUF_MAX_KV)
			       : perr(&p, BN_EFORMAT,
				      "n_kv %llu: the %zu bytes left in the file cannot hold that many KVs (truncated file?)",
				      (unsigned long long)n_kv, left(&p));
	if (n_tensors > GGUF_MAX_TENSORS || n_tensors > left(&p) / 33)
		return n_tensors > GGUF_MAX_TENSORS
			       ? perr(&p, BN_EFORMAT, "n_tensors %llu exceeds the limit of %u",
				      (unsigned long long)n_tensors, GGUF_MAX_TENSORS)
			       : perr(&p, BN_EFORMAT,
				      "n_tensors %llu: the %zu bytes left in the file cannot hold that many tensor infos (truncated file?)",
				      (unsigned long long)n_tensors, left(&p));
	r->n_kv = (size_t)n_kv;
	r->n_tensors = (size_t)n_tensors;
	r->kv = calloc(r->n_kv ? r->n_kv : 1, sizeof *r->kv);
	r->tensors = calloc(r->n_tensors ? r->n_tensors : 1, sizeof *r->tensors);
	if (!r->kv || !r->tensors)
		return perr(&p, BN_ENOMEM, "out of memory");

	for (size_t i = 0; i < r->n_kv; i++)
		if ((rc = parse_kv(&p, i)))
			return rc;
	r->kv_sorted = sorted_index(r, r->n_kv, cmp_key);
	if (!r->kv_sorted)
		return perr(&p, BN_ENOMEM, "out of memory");
	for (size_t i = 1; i < r->n_kv; i++) {
		size_t a = r->kv_sorted[i - 1], b = r->kv_sorted[i];
		if (strcmp(r->kv[a].key, r->kv[b].key) == 0) {
			snprintf(p.what, sizeof p.what, "KV %zu", BN_MAX(a, b));
			return perr(&p, BN_EFORMAT, "duplicate key '%s' (also KV %zu)",
				    printable(r->kv[a].key, strlen(r->kv[a].key), buf, sizeof buf),
				    BN_MIN(a, b));
		}
	}

	r->alignment = GGUF_DEFAULT_ALIGNMENT;
	int64_t ak = gguf_find_key(r, "general.alignment");
	if (ak >= 0) {
		snprintf(p.what, sizeof p.what, "KV %lld 'general.alignment'", (long long)ak);
		if (r->kv[ak].type != GGUF_VTYPE_UINT32)
			return perr(&p, BN_EFORMAT, "type is %s, expected u32",
				    VTYPE_NAMES[r->kv[ak].type]);
		uint32_t a;
		memcpy(&a, r->kv[ak].val, 4);
		if (a == 0 || (a & (a - 1)) != 0)
			return perr(&p, BN_EFORMAT, "alignment %u is not a power of two", a);
		r->alignment = a;
	}

	for (size_t i = 0; i < r->n_tensors; i++) {
		if ((rc = parse_tensor_info(&p, i)))
			return rc;
		if (r->tensors[i].offset % r->alignment != 0)
			return perr(&p, BN_EFORMAT, "offset %llu is not a multiple of the alignment %llu",
				    (unsigned long long)r->tensors[i].offset,
				    (unsigned long long)r->alignment);
	}
	r->tensor_sorted = sorted_index(r, r->n_tensors, cmp_name);
	if (!r->tensor_sorted)
		return perr(&p, BN_ENOMEM, "out of memory");
	for (size_t i = 1; i < r->n_tensors; i++) {
		size_t a = r->tensor_sorted[i - 1], b = r->tensor_sorted[i];
		if (strcmp(r->tensors[a].name, r->tensors[b].name) == 0) {
			what_tensor(&p, BN_MAX(a, b));
			return perr(&p, BN_EFORMAT, "duplicate tensor name (also tensor %zu)",
				    BN_MIN(a, b));
		}
	}

	snprintf(p.what, sizeof p.what, "data section");
	if (!bn_align_u64(p.pos, r->alignment, &r->data_offset))
		return perr(&p, BN_ERANGE, "start overflows");
	for (size_t i = 0; i < r->n_tensors; i++) {
		struct gguf_tensor *t = &r->tensors[i];
		uint64_t start, end;
		what_tensor(&p, i);
		if (!bn_add_u64(r->data_offset, t->offset, &start) ||
		    !bn_add_u64(start, t->nbytes, &end) || end > r->size)
			return perr(&p, BN_EFORMAT,
				    "%llu bytes of data at offset %llu (data section at %llu) end past the end of the file (%zu bytes)",
				    (unsigned long long)t->nbytes, (unsigned long long)t->offset,
				    (unsigned long long)r->data_offset, r->size);
		t->data = r->data + start;
	}
	/* No two tensors may share bytes (a loader would read one tensor's data as another's).
	 * Offsets and sizes are bounded by the file size here, so the sums cannot overflow. */
	size_t *by_off = sorted_index(r, r->n_tensors, cmp_offset);
	if (!by_off)
		return perr(&p, BN_ENOMEM, "out of memory");
	size_t prev = SIZE_MAX;
	rc = 0;
	for (size_t i = 0; i < r->n_tensors && !rc; i++) {
		const struct gguf_tensor *t = &r->tensors[by_off[i]];
		if (t->nbytes == 0)
			continue;
		if (prev != SIZE_MAX) {
			const struct gguf_tensor *q = &r->tensors[prev];
			if (q->offset + q->nbytes > t->offset) {
				what_tensor(&p, by_off[i]);
				rc = perr(&p, BN_EFORMAT,
					  "data at offset %llu overlaps tensor %zu (offset %llu, %llu bytes)",
					  (unsigned long long)t->offset, prev,
					  (unsigned long long)q->offset, (unsigned long long)q->nbytes);
			}
		}
		prev = by_off[i];
	}
	free(by_off);
	return rc;
}

static struct gguf_reader *reader_new(const char *name, struct bn_err *err)
{
	struct gguf_reader *r = calloc(1, sizeof *r);
	if (r)
		r->name = strdup(name);
	if (!r || !r->name) {
		free(r);
		bn_seterr(err, BN_ENOMEM, "%s: out of memory", name);
		return NULL;
	}
	return r;
}

struct gguf_reader *gguf_open_mem(const void *data, size_t size, const char *name,
				  struct bn_err *err)
{
	struct gguf_reader *r = reader_new(name, err);
	if (!r)
		return NULL;
	r->data = data;
	r->size = size;
	if (parse(r, err)) {
		gguf_close(r);
		return NULL;
	}
	return r;
}

struct gguf_reader *gguf_open(const char *path, struct bn_err *err)
{
	struct gguf_reader *r = reader_new(path, err);
	if (!r)
		return NULL;
	if (bn_map_open(&r->map, path, err)) {
		gguf_close(r);
		return NULL;
	}
	r->data = r->map.data;
	r->size = r->map.size;
	if (parse(r, err)) {
		gguf_close(r);
		return NULL;
	}
	return r;
}

void gguf_close(struct gguf_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->kv && i < r->n_kv; i++) {
		free(r->kv[i].key);
		free(r->kv[i].str_off);
	}
	for (size_t i = 0; r->tensors && i < r->n_tensors; i++)
		free((char *)r->tensors[i].name);
	free(r->kv);
	free(r->tensors);
	free(r->kv_sorted);
	free(r->tensor_sorted);
	bn_map_close(&r->map);
	free(r->name);
	free(r);
}

uint32_t gguf_version(const struct gguf_reader *r)
{
	return r->version;
}

uint64_t gguf_alignment(const struct gguf_reader *r)
{
	return r->alignment;
}

uint64_t gguf_data_offset(const struct gguf_reader *r)
{
	return r->data_offset;
}

uint64_t gguf_file_size(const struct gguf_reader *r)
{
	return r->size;
}

size_t gguf_n_kv(const struct gguf_reader *r)
{
	return r->n_kv;
}

int64_t gguf_find_key(const struct gguf_reader *r, const char *key)
{
	if (!r->kv_sorted)
		return -1;
	size_t lo = 0, hi = r->n_kv;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->kv[r->kv_sorted[mid]].key, key);
		if (c == 0)
			return (int64_t)r->kv_sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static const struct kv_entry *kv_at(const struct gguf_reader *r, int64_t kv)
{
	return kv >= 0 && (uint64_t)kv < r->n_kv ? &r->kv[kv] : NULL;
}

const char *gguf_kv_key(const struct gguf_reader *r, int64_t kv)
{
	const struct kv_entry *e = kv_at(r, kv);
	return e ? e->key : NULL;
}

int gguf_kv_type(const struct gguf_reader *r, int64_t kv)
{
	const struct kv_entry *e = kv_at(r, kv);
	return e ? (int)e->type : -1;
}

int gguf_kv_raw(const struct gguf_reader *r, int64_t kv, const uint8_t **rec, size_t *len)
{
	const struct kv_entry *e = kv_at(r, kv);
	if (!e)
		return -BN_EINVAL;
	*rec = e->rec;
	*len = e->rec_len;
	return 0;
}

/* Decodes a value of scalar or string type stored at p. */
static void decode(uint32_t type, const uint8_t *p, struct gguf_value *out)
{
	out->type = type;
	switch (type) {
	case GGUF_VTYPE_BOOL: out->v.b = p[0] != 0; break;
	case GGUF_VTYPE_STRING: {
		uint64_t len;
		memcpy(&len, p, 8);
		out->v.str.data = (const char *)p + 8;
		out->v.str.len = (size_t)len;
		break;
	}
	default: memcpy(&out->v, p, VTYPE_SIZE[type]); break;
	}
}

int gguf_get_value(const struct gguf_reader *r, int64_t kv, struct gguf_value *out,
		   struct bn_err *err)
{
	const struct kv_entry *e = kv_at(r, kv);
	if (!e)
		return bn_seterr(err, BN_EINVAL, "%s: no KV number %lld", r->name, (long long)kv);
	memset(out, 0, sizeof *out);
	if (e->type == GGUF_VTYPE_ARRAY) {
		out->type = GGUF_VTYPE_ARRAY;
		out->v.arr.type = e->arr_type;
		out->v.arr.n = e->arr_n;
	} else {
		decode(e->type, e->val, out);
	}
	return 0;
}

int gguf_get_arr_value(const struct gguf_reader *r, int64_t kv, uint64_t i,
		       struct gguf_value *out, struct bn_err *err)
{
	const struct kv_entry *e = kv_at(r, kv);
	if (!e)
		return bn_seterr(err, BN_EINVAL, "%s: no KV number %lld", r->name, (long long)kv);
	if (e->type != GGUF_VTYPE_ARRAY)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: type is %s, expected array", r->name,
				 e->key, VTYPE_NAMES[e->type]);
	if (i >= e->arr_n)
		return bn_seterr(err, BN_EINVAL, "%s: %s: index %llu is past the %llu elements",
				 r->name, e->key, (unsigned long long)i,
				 (unsigned long long)e->arr_n);
	memset(out, 0, sizeof *out);
	if (e->arr_type == GGUF_VTYPE_STRING)
		decode(GGUF_VTYPE_STRING, e->val + e->str_off[i], out);
	else
		decode(e->arr_type, e->val + i * VTYPE_SIZE[e->arr_type], out);
	return 0;
}

static int type_mismatch(const struct gguf_reader *r, int64_t kv, uint32_t have, uint32_t want,
			 bool elem, struct bn_err *err)
{
	return bn_seterr(err, BN_EFORMAT, "%s: %s: %stype is %s, expected %s", r->name,
			 r->kv[kv].key, elem ? "element " : "", VTYPE_NAMES[have],
			 VTYPE_NAMES[want]);
}

#define GETTER(suffix, ctype, vtype, field)                                                      \
	int gguf_get_##suffix(const struct gguf_reader *r, int64_t kv, ctype *out,               \
			      struct bn_err *err)                                                \
	{                                                                                        \
		struct gguf_value v;                                                             \
		int rc = gguf_get_value(r, kv, &v, err);                                         \
		if (rc)                                                                          \
			return rc;                                                               \
		if (v.type != (vtype))                                                           \
			return type_mismatch(r, kv, v.type, (vtype), false, err);               \
		*out = v.v.field;                                                                \
		return 0;                                                                        \
	}                                                                                        \
	int gguf_get_arr_##suffix(const struct gguf_reader *r, int64_t kv, uint64_t i,           \
				  ctype *out, struct bn_err *err)                                \
	{                                                                                        \
		const struct kv_entry *e = kv_at(r, kv);                                         \
		if (e && e->type == GGUF_VTYPE_ARRAY && e->arr_type != (vtype))                  \
			return type_mismatch(r, kv, e->arr_type, (vtype), true, err);            \
		struct gguf_value v;                                                             \
		int rc = gguf_get_arr_value(r, kv, i, &v, err);                                  \
		if (rc)                                                                          \
			return rc;                                                               \
		*out = v.v.field;                                                                \
		return 0;                                                                        \
	}

GETTER(u8, uint8_t, GGUF_VTYPE_UINT8, u8)
GETTER(i8, int8_t, GGUF_VTYPE_INT8, i8)
GETTER(u16, uint16_t, GGUF_VTYPE_UINT16, u16)
GETTER(i16, int16_t, GGUF_VTYPE_INT16, i16)
GETTER(u32, uint32_t, GGUF_VTYPE_UINT32, u32)
GETTER(i32, int32_t, GGUF_VTYPE_INT32, i32)
GETTER(u64, uint64_t, GGUF_VTYPE_UINT64, u64)
GETTER(i64, int64_t, GGUF_VTYPE_INT64, i64)
GETTER(f32, float, GGUF_VTYPE_FLOAT32, f32)
GETTER(f64, double, GGUF_VTYPE_FLOAT64, f64)
GETTER(bool, bool, GGUF_VTYPE_BOOL, b)
GETTER(str, struct gguf_str, GGUF_VTYPE_STRING, str)

int gguf_get_arr(const struct gguf_reader *r, int64_t kv, enum gguf_vtype elem, uint64_t *n,
		 struct bn_err *err)
{
	const struct kv_entry *e = kv_at(r, kv);
	if (!e)
		return bn_seterr(err, BN_EINVAL, "%s: no KV number %lld", r->name, (long long)kv);
	if (e->type != GGUF_VTYPE_ARRAY)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: type is %s, expected array of %s",
				 r->name, e->key, VTYPE_NAMES[e->type],
				 gguf_vtype_name(elem) ? gguf_vtype_name(elem) : "?");
	if (e->arr_type != (uint32_t)elem)
		return bn_seterr(err, BN_EFORMAT, "%s: %s: array of %s, expected array of %s",
				 r->name, e->key, VTYPE_NAMES[e->arr_type],
				 gguf_vtype_name(elem) ? gguf_vtype_name(elem) : "?");
	*n = e->arr_n;
	return 0;
}

size_t gguf_n_tensors(const struct gguf_reader *r)
{
	return r->n_tensors;
}

const struct gguf_tensor *gguf_tensor(const struct gguf_reader *r, size_t i)
{
	return i < r->n_tensors ? &r->tensors[i] : NULL;
}

int64_t gguf_find_tensor(const struct gguf_reader *r, const char *name)
{
	if (!r->tensor_sorted)
		return -1;
	size_t lo = 0, hi = r->n_tensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->tensors[r->tensor_sorted[mid]].name, name);
		if (c == 0)
			return (int64_t)r->tensor_sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- writer ---------------------------------------------------------------------------- */

#define WRITER_ALIGN 32u

struct wtensor {
	char *name;
	uint32_t type, n_dims;
	uint64_t ne[GGUF_MAX_DIMS];
	uint64_t nbytes, offset;
};

enum wstate { W_ADD, W_DATA, W_DONE, W_FAILED };

struct gguf_writer {
	struct bn_out out;
	bool out_open;
	char *path;
	enum wstate state;
	uint8_t *kv; /* encoded KV records */
	size_t kv_len, kv_cap;
	char **keys;
	size_t n_kv, keys_cap;
	struct wtensor *t;
	size_t n_t, t_cap;
	uint64_t data_size;   /* running sum of pad32(nbytes) = next tensor's offset */
	uint64_t data_offset; /* absolute start of the data section, once the header is written */
	size_t cur;           /* tensor receiving bytes */
	uint64_t cur_written;
};

static const char *const STATE_NAMES[] = {
	[W_ADD] = "before the header was written", [W_DATA] = "after the header was written",
	[W_DONE] = "after commit", [W_FAILED] = "after an earlier failure",
};

__attribute__((format(printf, 4, 5)))
static int wfail(struct gguf_writer *w, struct bn_err *err, int code, const char *fmt, ...)
{
	char why[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (w->state != W_DONE) /* a committed file stays committed */
		w->state = W_FAILED;
	return bn_seterr(err, code, "%s: %s", w->path, why);
}

/* Fails unless the writer is in state `want` (a failed or committed writer stays that way). */
static int wstate(struct gguf_writer *w, enum wstate want, const char *op, struct bn_err *err)
{
	if (w->state == want)
		return 0;
	return wfail(w, err, BN_EINVAL, "%s %s", op, STATE_NAMES[w->state]);
}

struct gguf_writer *gguf_writer_open(const char *path, struct bn_err *err)
{
	struct gguf_writer *w = calloc(1, sizeof *w);
	if (w)
		w->path = strdup(path);
	if (!w || !w->path) {
		free(w);
		bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	if (bn_out_open(&w->out, path, err)) {
		free(w->path);
		free(w);
		return NULL;
	}
	w->out_open = true;
	return w;
}

void gguf_writer_close(struct gguf_writer *w)
{
	if (!w)
		return;
	if (w->out_open)
		bn_out_abort(&w->out);
	for (size_t i = 0; i < w->n_kv; i++)
		free(w->keys[i]);
	for (size_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->keys);
	free(w->t);
	free(w->kv);
	free(w->path);
	free(w);
}

static int buf_put(struct gguf_writer *w, const void *p, size_t n, struct bn_err *err)
{
	size_t need;
	if (n == 0)
		return 0;
	if (!bn_add_size(w->kv_len, n, &need))
		return wfail(w, err, BN_ERANGE, "metadata size overflows");
	if (need > w->kv_cap) {
		size_t cap = w->kv_cap ? w->kv_cap : 4096;
		while (cap < need)
			if (!bn_mul_size(cap, 2, &cap))
				return wfail(w, err, BN_ERANGE, "metadata size overflows");
		uint8_t *q = realloc(w->kv, cap);
		if (!q)
			return wfail(w, err, BN_ENOMEM, "out of memory for %zu bytes of metadata", cap);
		w->kv = q;
		w->kv_cap = cap;
	}
	memcpy(w->kv + w->kv_len, p, n);
	w->kv_len += n;
	return 0;
}

static int buf_u32(struct gguf_writer *w, uint32_t v, struct bn_err *err)
{
	return buf_put(w, &v, 4, err);
}

static int buf_str(struct gguf_writer *w, const char *s, size_t len, struct bn_err *err)
{
	uint64_t n = len;
	int rc = buf_put(w, &n, 8, err);
	return rc ? rc : buf_put(w, s, len, err);
}

/* Validates the phase and the key, refuses duplicates and remembers the key. */
static int begin_kv(struct gguf_writer *w, const char *key, uint32_t vtype, struct bn_err *err)
{
	int rc = wstate(w, W_ADD, "adding a KV", err);
	if (rc)
		return rc;
	size_t len = strlen(key);
	char pk[80];
	if (len == 0 || len > GGUF_MAX_KEY)
		return wfail(w, err, BN_EINVAL, "key '%s': length %zu is outside 1..%d",
			     printable(key, len, pk, sizeof pk), len, GGUF_MAX_KEY);
	for (size_t i = 0; i < w->n_kv; i++)
		if (strcmp(w->keys[i], key) == 0)
			return wfail(w, err, BN_EINVAL, "key '%s': duplicate key (KV %zu)",
				     printable(key, len, pk, sizeof pk), i);
	if (strcmp(key, "general.alignment") == 0 && vtype != GGUF_VTYPE_UINT32)
		return wfail(w, err, BN_EINVAL, "general.alignment must be u32, not %s",
			     gguf_vtype_name(vtype));
	if (w->n_kv == w->keys_cap) {
		size_t cap = w->keys_cap ? 2 * w->keys_cap : 32;
		char **k = realloc(w->keys, cap * sizeof *k);
		if (!k)
			return wfail(w, err, BN_ENOMEM, "out of memory");
		w->keys = k;
		w->keys_cap = cap;
	}
	if (!(w->keys[w->n_kv] = strdup(key)))
		return wfail(w, err, BN_ENOMEM, "out of memory");
	w->n_kv++;
	return 0;
}

static int add_scalar(struct gguf_writer *w, const char *key, uint32_t vtype, const void *v,
		      struct bn_err *err)
{
	int rc = begin_kv(w, key, vtype, err);
	if (!rc)
		rc = buf_str(w, key, strlen(key), err);
	if (!rc)
		rc = buf_u32(w, vtype, err);
	if (!rc)
		rc = buf_put(w, v, VTYPE_SIZE[vtype], err);
	return rc;
}

#define ADDER(suffix, ctype, vtype)                                                              \
	int gguf_writer_add_##suffix(struct gguf_writer *w, const char *key, ctype v,            \
				     struct bn_err *err)                                         \
	{                                                                                        \
		return add_scalar(w, key, vtype, &v, err);                                       \
	}
ADDER(u8, uint8_t, GGUF_VTYPE_UINT8)
ADDER(i8, int8_t, GGUF_VTYPE_INT8)
ADDER(u16, uint16_t, GGUF_VTYPE_UINT16)
ADDER(i16, int16_t, GGUF_VTYPE_INT16)
ADDER(i32, int32_t, GGUF_VTYPE_INT32)
ADDER(u64, uint64_t, GGUF_VTYPE_UINT64)
ADDER(i64, int64_t, GGUF_VTYPE_INT64)
ADDER(f32, float, GGUF_VTYPE_FLOAT32)
ADDER(f64, double, GGUF_VTYPE_FLOAT64)

int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v, struct bn_err *err)
{
	if (w->state == W_ADD && strcmp(key, "general.alignment") == 0 && v != WRITER_ALIGN)
		return wfail(w, err, BN_EINVAL, "general.alignment %u: this writer aligns to 32 only",
			     v);
	return add_scalar(w, key, GGUF_VTYPE_UINT32, &v, err);
}

int gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v, struct bn_err *err)
{
	uint8_t b = v ? 1 : 0;
	return add_scalar(w, key, GGUF_VTYPE_BOOL, &b, err);
}

int gguf_writer_add_strn(struct gguf_writer *w, const char *key, const char *s, size_t len,
			 struct bn_err *err)
{
	int rc = begin_kv(w, key, GGUF_VTYPE_STRING, err);
	if (!rc && len > GGUF_MAX_STRING)
		rc = wfail(w, err, BN_EINVAL, "key '%s': string of %zu bytes exceeds the 1 GiB limit",
			   key, len);
	if (!rc)
		rc = buf_str(w, key, strlen(key), err);
	if (!rc)
		rc = buf_u32(w, GGUF_VTYPE_STRING, err);
	if (!rc)
		rc = buf_str(w, s, len, err);
	return rc;
}

int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *s,
			struct bn_err *err)
{
	return gguf_writer_add_strn(w, key, s, strlen(s), err);
}

static int begin_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem, uint64_t n,
		     struct bn_err *err)
{
	int rc = begin_kv(w, key, GGUF_VTYPE_ARRAY, err);
	if (rc)
		return rc;
	if ((uint32_t)elem >= GGUF_VTYPE_COUNT || elem == GGUF_VTYPE_ARRAY)
		return wfail(w, err, BN_EINVAL, "key '%s': bad array element type %d", key,
			     (int)elem);
	if (n > GGUF_MAX_ARRAY)
		return wfail(w, err, BN_EINVAL, "key '%s': %llu elements exceed the limit of %llu",
			     key, (unsigned long long)n, GGUF_MAX_ARRAY);
	if ((rc = buf_str(w, key, strlen(key), err)) || (rc = buf_u32(w, GGUF_VTYPE_ARRAY, err)) ||
	    (rc = buf_u32(w, (uint32_t)elem, err)))
		return rc;
	return buf_put(w, &n, 8, err);
}

int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem,
			const void *vals, uint64_t n, struct bn_err *err)
{
	if (elem == GGUF_VTYPE_STRING)
		return wfail(w, err, BN_EINVAL, "key '%s': use gguf_writer_add_arr_str for strings",
			     key);
	int rc = begin_arr(w, key, elem, n, err);
	if (rc)
		return rc;
	if (elem == GGUF_VTYPE_BOOL) {
		const bool *b = vals;
		for (uint64_t i = 0; i < n && !rc; i++) {
			uint8_t v = b[i] ? 1 : 0;
			rc = buf_put(w, &v, 1, err);
		}
		return rc;
	}
	return buf_put(w, vals, (size_t)n * VTYPE_SIZE[elem], err);
}

int gguf_writer_add_arr_str(struct gguf_writer *w, const char *key, const char *const *strs,
			    const size_t *lens, uint64_t n, struct bn_err *err)
{
	int rc = begin_arr(w, key, GGUF_VTYPE_STRING, n, err);
	for (uint64_t i = 0; i < n && !rc; i++)
		rc = buf_str(w, strs[i], lens ? lens[i] : strlen(strs[i]), err);
	return rc;
}

int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_reader *r, int64_t kv,
			struct bn_err *err)
{
	const struct kv_entry *e = kv_at(r, kv);
	if (!e)
		return wfail(w, err, BN_EINVAL, "copying KV %lld of %s: no such KV", (long long)kv,
			     r->name);
	if (e->type == GGUF_VTYPE_UINT32 && strcmp(e->key, "general.alignment") == 0 &&
	    r->alignment != WRITER_ALIGN)
		return wfail(w, err, BN_EINVAL,
			     "general.alignment %llu copied from %s: this writer aligns to 32 only",
			     (unsigned long long)r->alignment, r->name);
	int rc = begin_kv(w, e->key, e->type, err);
	return rc ? rc : buf_put(w, e->rec, e->rec_len, err);
}

int gguf_writer_add_tensor_sized(struct gguf_writer *w, const char *name, uint32_t type,
				 uint32_t n_dims, const uint64_t *ne, uint64_t nbytes,
				 struct bn_err *err)
{
	int rc = wstate(w, W_ADD, "adding a tensor", err);
	if (rc)
		return rc;
	size_t len = strlen(name);
	char pn[80];
	printable(name, len, pn, sizeof pn);
	if (len == 0 || len > GGUF_MAX_NAME)
		return wfail(w, err, BN_EINVAL,
			     "tensor '%s': name length %zu is outside 1..%d (ggml's GGML_MAX_NAME)",
			     pn, len, GGUF_MAX_NAME);
	for (size_t i = 0; i < w->n_t; i++)
		if (strcmp(w->t[i].name, name) == 0)
			return wfail(w, err, BN_EINVAL, "tensor '%s': duplicate name (tensor %zu)", pn,
				     i);
	uint64_t need, padded;
	struct bn_err e2;
	if (gguf_tensor_nbytes(type, n_dims, ne, &need, &e2))
		return wfail(w, err, e2.code, "tensor '%s': %s", pn, e2.msg);
	if (nbytes < need)
		return wfail(w, err, BN_EINVAL,
			     "tensor '%s': declared size %llu is smaller than the %llu bytes a loader reads for %s",
			     pn, (unsigned long long)nbytes, (unsigned long long)need,
			     gguf_type_name(type));
	if (!bn_align_u64(nbytes, WRITER_ALIGN, &padded) ||
	    !bn_add_u64(w->data_size, padded, &padded) || padded > INT64_MAX)
		return wfail(w, err, BN_ERANGE, "tensor '%s': data section size overflows", pn);
	if (w->n_t == w->t_cap) {
		size_t cap = w->t_cap ? 2 * w->t_cap : 64;
		struct wtensor *t = realloc(w->t, cap * sizeof *t);
		if (!t)
			return wfail(w, err, BN_ENOMEM, "out of memory");
		w->t = t;
		w->t_cap = cap;
	}
	struct wtensor *t = &w->t[w->n_t];
	memset(t, 0, sizeof *t);
	if (!(t->name = strdup(name)))
		return wfail(w, err, BN_ENOMEM, "out of memory");
	t->type = type;
	t->n_dims = n_dims;
	memcpy(t->ne, ne, n_dims * sizeof *ne);
	t->nbytes = nbytes;
	t->offset = w->data_size;
	w->data_size = padded;
	w->n_t++;
	return 0;
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type,
			   uint32_t n_dims, const uint64_t *ne, struct bn_err *err)
{
	int rc = wstate(w, W_ADD, "adding a tensor", err);
	if (rc)
		return rc;
	uint64_t nbytes;
	struct bn_err e2;
	if (gguf_tensor_nbytes(type, n_dims, ne, &nbytes, &e2))
		return wfail(w, err, e2.code, "tensor '%s': %s", name, e2.msg);
	return gguf_writer_add_tensor_sized(w, name, type, n_dims, ne, nbytes, err);
}

uint64_t gguf_writer_file_size(const struct gguf_writer *w)
{
	uint64_t meta = 24 + (uint64_t)w->kv_len, aligned;
	for (size_t i = 0; i < w->n_t; i++)
		meta += 8 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].n_dims + 4 + 8;
	if (!bn_align_u64(meta, WRITER_ALIGN, &aligned))
		return UINT64_MAX;
	return aligned + w->data_size;
}

/* Moves past completed (and empty) tensors, writing each one's padding. */
static int advance(struct gguf_writer *w, struct bn_err *err)
{
	while (w->cur < w->n_t && w->cur_written == w->t[w->cur].nbytes) {
		uint64_t pad = (WRITER_ALIGN - w->t[w->cur].nbytes % WRITER_ALIGN) % WRITER_ALIGN;
		int rc = bn_out_zeros(&w->out, (size_t)pad, err);
		if (rc) {
			w->state = W_FAILED;
			return rc;
		}
		w->cur++;
		w->cur_written = 0;
	}
	return 0;
}

int gguf_writer_write_header(struct gguf_writer *w, struct bn_err *err)
{
	int rc = wstate(w, W_ADD, "writing the header", err);
	if (rc)
		return rc;
	/* Append the header fields and tensor infos to the KV buffer's tail, then assemble. */
	size_t kv_len = w->kv_len;
	for (size_t i = 0; i < w->n_t && !rc; i++) {
		const struct wtensor *t = &w->t[i];
		rc = buf_str(w, t->name, strlen(t->name), err);
		if (!rc)
			rc = buf_u32(w, t->n_dims, err);
		if (!rc)
			rc = buf_put(w, t->ne, t->n_dims * sizeof t->ne[0], err);
		if (!rc)
			rc = buf_u32(w, t->type, err);
		if (!rc)
			rc = buf_put(w, &t->offset, 8, err);
	}
	if (rc)
		return rc;
	uint8_t head[24];
	uint32_t version = GGUF_VERSION;
	uint64_t n_t = w->n_t, n_kv = w->n_kv;
	memcpy(head, GGUF_MAGIC, 4);
	memcpy(head + 4, &version, 4);
	memcpy(head + 8, &n_t, 8);
	memcpy(head + 16, &n_kv, 8);
	uint64_t meta = sizeof head + (uint64_t)w->kv_len;
	if (!bn_align_u64(meta, WRITER_ALIGN, &w->data_offset))
		return wfail(w, err, BN_ERANGE, "metadata size overflows");
	if ((rc = bn_out_write(&w->out, head, sizeof head, err)) ||
	    (rc = bn_out_write(&w->out, w->kv, w->kv_len, err)) ||
	    (rc = bn_out_zeros(&w->out, (size_t)(w->data_offset - meta), err))) {
		w->state = W_FAILED;
		return rc;
	}
	w->kv_len = kv_len;
	w->state = W_DATA;
	w->cur = 0;
	w->cur_written = 0;
	return advance(w, err);
}

static int write_data(struct gguf_writer *w, const void *buf, size_t n, struct bn_err *err)
{
	int rc = wstate(w, W_DATA, "writing tensor data", err);
	if (rc || n == 0)
		return rc;
	if (w->cur >= w->n_t)
		return wfail(w, err, BN_EINVAL,
			     "%zu bytes written after the last tensor's data (%zu tensors declared)",
			     n, w->n_t);
	const struct wtensor *t = &w->t[w->cur];
	if (n > t->nbytes - w->cur_written)
		return wfail(w, err, BN_EINVAL,
			     "tensor '%s': %zu more bytes would exceed its declared size of %llu (%llu written)",
			     t->name, n, (unsigned long long)t->nbytes,
			     (unsigned long long)w->cur_written);
	rc = buf ? bn_out_write(&w->out, buf, n, err) : bn_out_zeros(&w->out, n, err);
	if (rc) {
		w->state = W_FAILED;
		return rc;
	}
	w->cur_written += n;
	return advance(w, err);
}

int gguf_writer_write(struct gguf_writer *w, const void *buf, size_t n, struct bn_err *err)
{
	if (!buf && n > 0)
		return wfail(w, err, BN_EINVAL, "gguf_writer_write: NULL buffer");
	return write_data(w, buf, n, err);
}

int gguf_writer_zeros(struct gguf_writer *w, size_t n, struct bn_err *err)
{
	return write_data(w, NULL, n, err);
}

size_t gguf_writer_current_tensor(const struct gguf_writer *w)
{
	return w->cur;
}

int gguf_writer_commit(struct gguf_writer *w, struct bn_err *err)
{
	int rc = wstate(w, W_DATA, "commit", err);
	if (rc)
		return rc;
	if (w->cur < w->n_t)
		return wfail(w, err, BN_EINVAL, "tensor '%s': only %llu of its %llu bytes written",
			     w->t[w->cur].name, (unsigned long long)w->cur_written,
			     (unsigned long long)w->t[w->cur].nbytes);
	if (w->out.offset != w->data_offset + w->data_size)
		return wfail(w, err, BN_EIO, "wrote %llu bytes, expected %llu",
			     (unsigned long long)w->out.offset,
			     (unsigned long long)(w->data_offset + w->data_size));
	w->out_open = false;
	if ((rc = bn_out_commit(&w->out, err))) {
		w->state = W_FAILED;
		return rc;
	}
	w->state = W_DONE;
	return 0;
}

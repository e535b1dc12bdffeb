/* Unit tests of the safetensors reader and header writer: the library's layout, both iteration
 * orders, sharded checkpoints, and malformed files that must each give one clear error. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_fp16.h"
#include "safetensors.h"
#include "test_util.h"

/* A safetensors file from a header text and a data area of data_len bytes (byte i = i & 255). */
static uint8_t *mkfile(const char *json, size_t data_len, size_t *len)
{
	size_t n = strlen(json);
	*len = 8 + n + data_len;
	uint8_t *b = malloc(*len);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)n >> (8 * i));
	memcpy(b + 8, json, n);
	for (size_t i = 0; i < data_len; i++)
		b[8 + n + i] = (uint8_t)i;
	return b;
}

/* Opens a buffer that must be rejected; returns the message (static) after checking it is one
 * line that names the file. */
static const char *reject(const char *json, size_t data_len, int code)
{
	static struct bn_err err;
	size_t len;
	uint8_t *b = mkfile(json, data_len, &len);
	struct st_model *m = NULL;
	int rc = st_open_buffer(&m, b, len, "bad.safetensors", ST_ORDER_NAME, &err);
	free(b);
	cr_assert(eq(int, rc, -code), "expected error %d, got %d: %s", code, -rc, err.msg);
	cr_assert_null(m);
	cr_assert(strchr(err.msg, '\n') == NULL, "%s", err.msg);
	cr_assert(strncmp(err.msg, "bad.safetensors: ", 17) == 0, "%s", err.msg);
	return err.msg;
}

#define HAS(msg, s) cr_assert(strstr((msg), (s)) != NULL, "'%s' lacks '%s'", (msg), (s))

Test(st_header, is_laid_out_as_the_python_library_writes_it)
{
	struct st_entry e[3] = {
		{ .name = "c", .dtype = ST_U8, .n_dims = 1, .shape = { 3 } },
		{ .name = "b", .dtype = ST_F32, .n_dims = 1, .shape = { 2 } },
		{ .name = "a", .dtype = ST_BF16, .n_dims = 2, .shape = { 2, 1 } },
	};
	size_t perm[3], len;
	uint8_t *h;
	uint64_t data;
	struct bn_err err = { 0 };
	const char *meta[] = { "format", "pt", NULL };
	cr_assert(eq(int, st_header_build(e, 3, ST_LAYOUT_LIBRARY, meta, perm, &h, &len, &data, &err),
		     0));
	/* dtype descending (F32 > BF16 > U8), then name; serde_json compact; spaces to 8. */
	const char *want = "{\"__metadata__\":{\"format\":\"pt\"},"
			   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			   "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[8,12]},"
			   "\"c\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[12,15]}}";
	size_t wl = strlen(want), padded = (wl + 7) / 8 * 8;
	cr_assert(eq(sz, len, 8 + padded));
	cr_assert(eq(u64, (uint64_t)h[0] | (uint64_t)h[1] << 8, padded));
	cr_assert(eq(int, memcmp(h + 8, want, wl), 0), "%.*s", (int)(len - 8), h + 8);
	for (size_t i = 8 + wl; i < len; i++)
		cr_assert(eq(u8, h[i], ' '));
	cr_assert(eq(u64, data, 15));
	cr_assert(eq(sz, perm[0], 1));
	cr_assert(eq(sz, perm[1], 2));
	cr_assert(eq(sz, perm[2], 0));
	free(h);

	/* Without metadata the first tensor opens the object; ST_LAYOUT_NAME ignores dtypes. */
	cr_assert(eq(int, st_header_build(e, 3, ST_LAYOUT_NAME, NULL, perm, &h, &len, &data, &err), 0));
	cr_assert(eq(int, memcmp(h + 8, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[0,4]}", 56), 0),
		  "%.*s", (int)(len - 8), h + 8);
	free(h);
	/* A scalar has shape [] and one element. */
	struct st_entry s = { .name = "s", .dtype = ST_F16, .n_dims = 0 };
	cr_assert(eq(int, st_header_build(&s, 1, ST_LAYOUT_LIBRARY, NULL, perm, &h, &len, &data, &err), 0));
	cr_assert(eq(int, memcmp(h + 8, "{\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]}}", 52), 0));
	cr_assert(eq(u64, data, 2));
	free(h);
}

Test(st_header, escapes_names_like_serde_json)
{
	struct st_entry e = { .name = "a\"b\\c\n\x01\xc3\xa9", .dtype = ST_U8, .n_dims = 1, .shape = { 1 } };
	size_t perm[1], len;
	uint8_t *h;
	uint64_t data;
	cr_assert(eq(int, st_header_build(&e, 1, ST_LAYOUT_LIBRARY, NULL, perm, &h, &len, &data, NULL), 0));
	const char *want = "{\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\":";
	cr_assert(eq(int, memcmp(h + 8, want, strlen(want)), 0), "%.*s", (int)(len - 8), h + 8);
	/* and the reader gets the name back */
	uint8_t *f = malloc(len + 1);
	memcpy(f, h, len);
	f[len] = 7;
	struct st_model *m;
	struct bn_err err;
	cr_assert(eq(int, st_open_buffer(&m, f, len + 1, "x", ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(eq(str, (char *)m->tensors[0].name, (char *)e.name));
	cr_assert(eq(u8, m->tensors[0].data[0], 7));
	st_close(m);
	free(f);
	free(h);
}

/* A mixed-dtype file as the library writes it: F32 "z.f" and "a.f", then BF16 "m.b", U8 "b.u". */
static uint8_t *mixed(size_t *len)
{
	struct st_entry e[4] = {
		{ .name = "b.u", .dtype = ST_U8, .n_dims = 2, .shape = { 2, 3 } },
		{ .name = "z.f", .dtype = ST_F32, .n_dims = 1, .shape = { 2 } },
		{ .name = "m.b", .dtype = ST_BF16, .n_dims = 1, .shape = { 3 } },
		{ .name = "a.f", .dtype = ST_F32, .n_dims = 1, .shape = { 1 } },
	};
	size_t perm[4], hl;
	uint8_t *h;
	uint64_t data;
	cr_assert(eq(int, st_header_build(e, 4, ST_LAYOUT_LIBRARY, NULL, perm, &h, &hl, &data, NULL), 0));
	*len = hl + data;
	uint8_t *b = calloc(1, *len);
	memcpy(b, h, hl);
	free(h);
	/* values: a.f = 0.5; z.f = 1, -2; m.b = 1.5, -0.25, 3 (bf16); b.u = 0..5 */
	float af = 0.5f, zf[2] = { 1.0f, -2.0f };
	uint16_t mb[3] = { bn_f32_to_bf16(1.5f), bn_f32_to_bf16(-0.25f), bn_f32_to_bf16(3.0f) };
	memcpy(b + hl + e[3].begin, &af, 4);
	memcpy(b + hl + e[1].begin, zf, 8);
	memcpy(b + hl + e[2].begin, mb, 6);
	for (int i = 0; i < 6; i++)
		b[hl + e[0].begin + i] = (uint8_t)i;
	return b;
}

Test(st_read, iterates_by_name_or_by_offset)
{
	size_t len;
	uint8_t *b = mixed(&len);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open_buffer(&m, b, len, "mixed", ST_ORDER_NAME, &err), 0), "%s", err.msg);
	const char *by_name[] = { "a.f", "b.u", "m.b", "z.f" };
	cr_assert(eq(sz, m->n_tensors, 4));
	for (int i = 0; i < 4; i++)
		cr_assert(eq(str, (char *)m->tensors[i].name, (char *)by_name[i]));
	st_close(m);
	cr_assert(eq(int, st_open_buffer(&m, b, len, "mixed", ST_ORDER_OFFSET, &err), 0), "%s", err.msg);
	const char *by_offset[] = { "a.f", "z.f", "m.b", "b.u" };
	for (int i = 0; i < 4; i++)
		cr_assert(eq(str, (char *)m->tensors[i].name, (char *)by_offset[i]));
	cr_assert(eq(u64, m->tensors[0].offset, 0));
	cr_assert(eq(u64, m->tensors[3].offset, 18));

	const struct st_tensor *t = st_find(m, "m.b");
	cr_assert_not_null(t);
	cr_assert(eq(int, t->dtype, ST_BF16));
	cr_assert(eq(u32, t->n_dims, 1));
	cr_assert(eq(u64, t->shape[0], 3));
	cr_assert(eq(flt, st_get_f32(t, 0), 1.5f));
	cr_assert(eq(flt, st_get_f32(t, 2), 3.0f));
	float v[3];
	st_read_f32(t, 0, 3, v);
	cr_assert(eq(flt, v[1], -0.25f));
	t = st_find(m, "b.u");
	cr_assert(eq(u64, t->n_elements, 6));
	cr_assert(eq(sz, t->nbytes, 6));
	cr_assert(eq(flt, st_get_f32(t, 5), 5.0f));
	t = st_find(m, "z.f");
	cr_assert(eq(flt, st_get_f32(t, 1), -2.0f));
	cr_assert_null(st_find(m, "nope"));
	cr_assert_null(st_find(m, "a"));
	cr_assert_null(st_metadata(m, 0, "format"));
	st_close(m);
	free(b);
}

Test(st_read, converts_f16_and_i8_exactly)
{
	const char *j = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
			"\"i\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[4,6]}}";
	size_t len;
	uint8_t *b = mkfile(j, 6, &len);
	uint8_t *d = b + 8 + strlen(j);
	uint16_t h[2] = { 0x3c00, 0x0001 }; /* 1.0 and the smallest subnormal */
	memcpy(d, h, 4);
	d[4] = 0xff;
	d[5] = 0x7f;
	struct st_model *m;
	struct bn_err err;
	cr_assert(eq(int, st_open_buffer(&m, b, len, "f", ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(eq(flt, st_get_f32(st_find(m, "h"), 0), 1.0f));
	cr_assert(eq(flt, st_get_f32(st_find(m, "h"), 1), 0x1p-24f));
	cr_assert(eq(flt, st_get_f32(st_find(m, "i"), 0), -1.0f));
	cr_assert(eq(flt, st_get_f32(st_find(m, "i"), 1), 127.0f));
	st_close(m);
	free(b);
}

Test(st_read, accepts_metadata_padding_empty_and_scalar_tensors)
{
	const char *j = "{\"__metadata__\":{\"format\":\"pt\",\"x\":\"y\"},"
			"\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
			"\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}      ";
	size_t len;
	uint8_t *b = mkfile(j, 4, &len);
	struct st_model *m;
	struct bn_err err;
	cr_assert(eq(int, st_open_buffer(&m, b, len, "f", ST_ORDER_OFFSET, &err), 0), "%s", err.msg);
	cr_assert(eq(str, (char *)st_metadata(m, 0, "format"), "pt"));
	cr_assert(eq(str, (char *)st_metadata(m, 0, "x"), "y"));
	cr_assert(eq(u64, st_find(m, "e")->n_elements, 0));
	cr_assert(eq(u32, st_find(m, "s")->n_dims, 0));
	cr_assert(eq(u64, st_find(m, "s")->n_elements, 1));
	cr_assert(eq(str, (char *)m->tensors[0].name, "e"));
	st_close(m);
	free(b);
}

Test(st_reject, truncated_file)
{
	struct bn_err err;
	struct st_model *m;
	cr_assert(eq(int, st_open_buffer(&m, "\x02\0\0", 3, "t.safetensors", ST_ORDER_NAME, &err),
		     -BN_EFORMAT));
	HAS(err.msg, "too short");
}

Test(st_reject, header_length_past_eof)
{
	uint8_t b[16] = { 0xf0, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
	struct bn_err err;
	struct st_model *m;
	cr_assert(eq(int, st_open_buffer(&m, b, sizeof b, "t", ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "header length 240 runs past the end of the file (16 bytes)");
	b[7] = 0x80; /* 2^63: over the cap, not an overflow */
	cr_assert(eq(int, st_open_buffer(&m, b, sizeof b, "t", ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "limit");
}

Test(st_reject, bad_json_and_wrong_types)
{
	HAS(reject("{\"a\":", 0, BN_EFORMAT), "invalid JSON");
	HAS(reject("[1,2]", 0, BN_EFORMAT), "not a JSON object");
	HAS(reject("{\"a\":3}", 0, BN_EFORMAT), "a: not an object");
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, BN_EFORMAT),
	    "duplicate");
	HAS(reject("{\"__metadata__\":{\"k\":1}}", 0, BN_EFORMAT), "__metadata__: k: not a string");
	/* names with control characters (a fuzzer find): still one line, the byte shown as '?' */
	HAS(reject("{\"__metadata__\":{\"k\\nl\":1}}", 0, BN_EFORMAT), "__metadata__: k?l: not a");
	HAS(reject("{\"a\\r\\nb\":3}", 0, BN_EFORMAT), "a??b: not an object");
	HAS(reject("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BN_EFORMAT), "a: dtype");
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, BN_EFORMAT),
	    "a: shape: dimension 0");
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, BN_EFORMAT),
	    "a: shape");
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, BN_EFORMAT),
	    "a: data_offsets");
	HAS(reject("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BN_EFORMAT),
	    "empty name");
}

Test(st_reject, unsupported_dtypes_by_name)
{
	const char *m = reject("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
			       BN_EUNSUPPORTED);
	HAS(m, "bad.safetensors: w: dtype: F64 is not supported");
	const char *names[] = { "I64", "BOOL", "F8_E4M3", "I32", "U16" };
	for (int i = 0; i < 5; i++) {
		char j[128];
		snprintf(j, sizeof j, "{\"w\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,1]}}",
			 names[i]);
		HAS(reject(j, 1, BN_EUNSUPPORTED), names[i]);
	}
	HAS(reject("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BN_EFORMAT),
	    "unknown dtype");
}

Test(st_reject, offsets_out_of_range_and_mismatched_sizes)
{
	HAS(reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, BN_EFORMAT),
	    "w: data_offsets: end 8 is past the end of the data area (4 bytes)");
	HAS(reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, BN_EFORMAT),
	    "begin 8 is after end 4");
	HAS(reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, BN_EFORMAT),
	    "w: data_offsets: [0, 8] holds 8 bytes but F32 of this shape needs 12");
	HAS(reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],"
		   "\"data_offsets\":[0,8]}}", 8, BN_ERANGE), "overflows");
	HAS(reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
		   BN_EUNSUPPORTED), "5 dimensions");
	HAS(reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}",
		   1, BN_EFORMAT), "w: data_offsets: end 9223372036854775807 is past");
}

Test(st_reject, overlaps_gaps_and_trailing_bytes)
{
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, BN_EFORMAT),
	    "b: data_offsets: [4, 12] overlaps a");
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, BN_EFORMAT),
	    "b: data_offsets: begins at 8, leaving bytes [4, 8)");
	HAS(reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, BN_EFORMAT),
	    "end at byte 4 of the data area but it has 6 bytes");
}

/* ---- directories ---------------------------------------------------------------------------- */

static void write_st(const char *dir, const char *name, const char *json, size_t data_len)
{
	size_t len;
	uint8_t *b = mkfile(json, data_len, &len);
	char *p = bn_path_join(dir, name);
	cr_assert(eq(int, tu_write_file(p, b, len), 0));
	free(p);
	free(b);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char *p = bn_path_join(dir, name);
	cr_assert(eq(int, tu_write_file(p, text, strlen(text)), 0));
	free(p);
}

static char *two_shards(const char *test)
{
	char *dir = tu_mkdtemp(test);
	write_st(dir, "b-2.safetensors",
		 "{\"x.10\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
		 "\"x.2\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", 3);
	write_st(dir, "a-1.safetensors",
		 "{\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		 "\"w\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[1,4]}}", 4);
	return dir;
}

Test(st_dir, without_index_reads_every_shard_in_file_name_order)
{
	char *dir = two_shards("st_dir_noindex");
	write_text(dir, "notes.txt", "not a shard");
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert_not(m->indexed);
	cr_assert(eq(sz, m->n_shards, 2));
	cr_assert(eq(str, (char *)m->shards[0].name, "a-1.safetensors"));
	const char *want[] = { "w", "y", "x.10", "x.2" }; /* byte order: "x.10" < "x.2" */
	for (int i = 0; i < 4; i++)
		cr_assert(eq(str, (char *)m->tensors[i].name, (char *)want[i]));
	cr_assert(eq(u32, st_find(m, "x.2")->shard, 1));
	cr_assert(eq(u8, st_find(m, "x.2")->data[0], 2));
	st_close(m);
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_OFFSET, &err), 0), "%s", err.msg);
	const char *want2[] = { "y", "w", "x.10", "x.2" };
	for (int i = 0; i < 4; i++)
		cr_assert(eq(str, (char *)m->tensors[i].name, (char *)want2[i]));
	st_close(m);
	/* one file opened directly */
	char *f = bn_path_join(dir, "b-2.safetensors");
	cr_assert(eq(int, st_open(&m, f, ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(eq(sz, m->n_tensors, 2));
	st_close(m);
	free(f);
	free(dir);
}

Test(st_dir, with_index_reads_the_named_shards_and_cross_checks)
{
	char *dir = two_shards("st_dir_index");
	write_st(dir, "stale.safetensors",
		 "{\"old\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
	const char *idx = "{\"metadata\":{\"total_size\":7},\"weight_map\":{\"x.10\":\"b-2.safetensors\","
			  "\"x.2\":\"b-2.safetensors\",\"y\":\"a-1.safetensors\",\"w\":\"a-1.safetensors\"}}";
	write_text(dir, ST_INDEX_NAME, idx);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), 0), "%s", err.msg);
	cr_assert(m->indexed);
	cr_assert(eq(sz, m->n_shards, 2));
	cr_assert(eq(sz, m->n_tensors, 4));
	cr_assert_null(st_find(m, "old"));
	st_close(m);

	/* a tensor the index names but its shard lacks */
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":{\"x.10\":\"b-2.safetensors\",\"x.2\":"
		   "\"b-2.safetensors\",\"y\":\"a-1.safetensors\",\"w\":\"a-1.safetensors\","
		   "\"z\":\"a-1.safetensors\"}}");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "weight_map: z: not in a-1.safetensors");
	/* a tensor in the wrong shard */
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":{\"x.10\":\"b-2.safetensors\",\"x.2\":"
		   "\"b-2.safetensors\",\"y\":\"b-2.safetensors\",\"w\":\"a-1.safetensors\"}}");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "weight_map: y: in a-1.safetensors, not in b-2.safetensors");
	/* a shard tensor missing from the index */
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":{\"x.10\":\"b-2.safetensors\",\"x.2\":"
		   "\"b-2.safetensors\",\"w\":\"a-1.safetensors\"}}");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "a-1.safetensors: y: not listed in");
	/* a missing shard file */
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":{\"q\":\"c-3.safetensors\"}}");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_ENOENT));
	HAS(err.msg, "c-3.safetensors");
	/* path traversal and malformed indexes */
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":{\"q\":\"../x.safetensors\"}}");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "not a plain file name");
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":[]}");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "weight_map: missing or not an object");
	write_text(dir, ST_INDEX_NAME, "{\"weight_map\":");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	cr_assert(strchr(err.msg, '\n') == NULL);
	free(dir);
}

Test(st_dir, rejects_a_tensor_in_two_shards_and_an_empty_directory)
{
	char *dir = two_shards("st_dir_dup");
	write_st(dir, "c-3.safetensors", "{\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "y: also in");
	free(dir);
	dir = tu_mkdtemp("st_dir_empty");
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_ENOENT));
	HAS(err.msg, "no *.safetensors");
	char *missing = bn_path_join(dir, "nope");
	cr_assert(eq(int, st_open(&m, missing, ST_ORDER_NAME, &err), -BN_ENOENT));
	free(missing);
	free(dir);
}

Test(st_dir, a_bad_shard_names_its_file)
{
	char *dir = two_shards("st_dir_bad");
	write_st(dir, "b-2.safetensors",
		 "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 5);
	struct st_model *m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, st_open(&m, dir, ST_ORDER_NAME, &err), -BN_EFORMAT));
	HAS(err.msg, "b-2.safetensors: x: data_offsets: end 8 is past");
	free(dir);
}

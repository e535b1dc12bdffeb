/* Unit tests of tools/common/gguf.{c,h}: the writer against hand-assembled bytes and the
 * reference GGUFs of ../shared/testdata, round trips of every value type, and a generated
 * corpus of corrupt files (like llama.cpp's test-gguf) that must each give a one-line error. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_util.h"
#include "gguf.h"
#include "test_util.h"

/* ---- a byte builder for hand-made files ------------------------------------------------ */

struct bb {
	uint8_t *p;
	size_t n, cap;
};

static size_t bb_put(struct bb *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	if (n)
		memcpy(b->p + b->n, d, n);
	b->n += n;
	return b->n - n;
}
static size_t bb_u8(struct bb *b, uint8_t v) { return bb_put(b, &v, 1); }
static size_t bb_u32(struct bb *b, uint32_t v) { return bb_put(b, &v, 4); }
static size_t bb_u64(struct bb *b, uint64_t v) { return bb_put(b, &v, 8); }
static size_t bb_f32(struct bb *b, float v) { return bb_put(b, &v, 4); }
/* Returns the position of the length prefix. */
static size_t bb_str(struct bb *b, const char *s)
{
	size_t at = bb_u64(b, strlen(s));
	bb_put(b, s, strlen(s));
	return at;
}
static void bb_pad(struct bb *b, size_t align)
{
	while (b->n % align)
		bb_u8(b, 0);
}
static void put_u32_at(uint8_t *p, size_t at, uint32_t v) { memcpy(p + at, &v, 4); }
static void put_u64_at(uint8_t *p, size_t at, uint64_t v) { memcpy(p + at, &v, 8); }

static char *tmpfile_in(const char *dir, const char *name)
{
	char *p = bn_path_join(dir, name);
	cr_assert_not_null(p);
	return p;
}

/* Opens a buffer through an exact-size heap copy, so that AddressSanitizer (make test SAN=1)
 * catches any read past its end. */
static struct gguf_reader *open_exact(const uint8_t *data, size_t n, struct bn_err *err,
				      uint8_t **copy)
{
	*copy = malloc(n ? n : 1);
	if (n)
		memcpy(*copy, data, n);
	return gguf_open_mem(n ? *copy : NULL, n, "mem.gguf", err);
}

/* Reads every value, array element and tensor byte of an accepted file; returns a checksum so
 * the reads cannot be optimised away. */
static uint64_t walk(const struct gguf_reader *r)
{
	uint64_t sum = 0;
	struct bn_err err;
	for (size_t i = 0; i < gguf_n_kv(r); i++) {
		struct gguf_value v;
		cr_assert(eq(int, gguf_get_value(r, (int64_t)i, &v, &err), 0));
		sum += strlen(gguf_kv_key(r, (int64_t)i));
		if (v.type == GGUF_VTYPE_STRING && v.v.str.len)
			sum += (uint8_t)v.v.str.data[v.v.str.len - 1];
		if (v.type != GGUF_VTYPE_ARRAY)
			continue;
		for (uint64_t j = 0; j < v.v.arr.n; j++) {
			struct gguf_value e;
			cr_assert(eq(int, gguf_get_arr_value(r, (int64_t)i, j, &e, &err), 0));
			if (e.type == GGUF_VTYPE_STRING && e.v.str.len)
				sum += (uint8_t)e.v.str.data[0] + (uint8_t)e.v.str.data[e.v.str.len - 1];
			else
				sum += e.v.u8;
		}
	}
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		if (t->nbytes)
			sum += t->data[0] + t->data[t->nbytes - 1];
	}
	return sum;
}

static void assert_one_line(const struct bn_err *err, const char *prefix)
{
	cr_assert(err->code != 0);
	cr_assert(err->msg[0] != '\0');
	cr_assert(strchr(err->msg, '\n') == NULL, "multi-line: %s", err->msg);
	if (prefix)
		cr_assert(strncmp(err->msg, prefix, strlen(prefix)) == 0, "%s", err->msg);
}

/* ---- type tables and sizes ------------------------------------------------------------- */

Test(gguf_types, names_and_block_sizes_follow_the_bitnet_fork)
{
	cr_assert(eq(str, (char *)gguf_type_name(GGUF_TYPE_F32), "F32"));
	cr_assert(eq(str, (char *)gguf_type_name(36), "I2_S"));
	cr_assert(eq(str, (char *)gguf_type_name(37), "I8_S"));
	cr_assert(eq(str, (char *)gguf_type_name(38), "TL1"));
	cr_assert(eq(str, (char *)gguf_type_name(39), "TL2"));
	cr_assert(eq(str, (char *)gguf_type_name(30), "BF16"));
	cr_assert(eq(str, (char *)gguf_type_name(34), "TQ1_0"));
	cr_assert(eq(str, (char *)gguf_type_name(35), "TQ2_0"));
	cr_assert_null(gguf_type_name(4));
	cr_assert_null(gguf_type_name(5));
	cr_assert_null(gguf_type_name(40));
	cr_assert(eq(int, gguf_type_from_name("i2_s"), 36));
	cr_assert(eq(int, gguf_type_from_name("Q8_0"), 8));
	cr_assert(eq(int, gguf_type_from_name("q4_2"), -1));
	cr_assert(eq(u32, gguf_type_block_size(GGUF_TYPE_Q8_0), 32));
	cr_assert(eq(u32, gguf_type_size(GGUF_TYPE_Q8_0), 34));
	cr_assert(eq(u32, gguf_type_block_size(GGUF_TYPE_TQ1_0), 256));
	cr_assert(eq(u32, gguf_type_size(GGUF_TYPE_TQ1_0), 54));
	cr_assert(eq(u32, gguf_type_size(GGUF_TYPE_TQ2_0), 66));
	cr_assert(eq(u32, gguf_type_size(GGUF_TYPE_Q6_K), 210));
	cr_assert(eq(u32, gguf_type_block_size(GGUF_TYPE_I2_S), 1));
	cr_assert(eq(u32, gguf_type_size(GGUF_TYPE_TL2), 1));
	cr_assert(eq(u32, gguf_type_size(4), 0));
	cr_assert(eq(str, (char *)gguf_vtype_name(GGUF_VTYPE_STRING), "string"));
	cr_assert_null(gguf_vtype_name(13));
}

static uint64_t nbytes2(uint32_t type, uint64_t k, uint64_t m)
{
	uint64_t ne[2] = { k, m }, out = 0;
	struct bn_err err;
	cr_assert(eq(int, gguf_tensor_nbytes(type, 2, ne, &out, &err), 0), "%s", err.msg);
	return out;
}

Test(gguf_types, tensor_sizes_follow_the_loader)
{
	/* Appendix A I2_S sizes and §2.4 formulas. */
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_I2_S, 2560, 2560), 1638432));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_I2_S, 2560, 6912), 4423712));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_I2_S, 4096, 14336), 14680096));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_TL1, 256, 256), 256 * 256 / 4 + 32));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_F32, 256, 300), 307200));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_F16, 256, 300), 153600));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_Q8_0, 384, 2), 2 * 12 * 34));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_TQ2_0, 512, 3), 3 * 2 * 66));
	/* TL2: T = (K-256)·M/3·5/8 + 256·M/2·4/8, pad32, +32; truncating toward zero. */
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_TL2, 256, 256), 16384 + 32));
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_TL2, 512, 256), 30048 + 32)); /* T = 30037 */
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_TL2, 128, 256), 9568 + 32));  /* T = 9558, K < 256 */
	cr_assert(eq(u64, nbytes2(GGUF_TYPE_F32, 0, 7), 0));

	struct bn_err err;
	uint64_t out, ne[4] = { 33, 2, 1, 1 };
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_Q8_0, 2, ne, &out, &err), -BN_EFORMAT));
	cr_assert(strstr(err.msg, "ne[0] = 33 is not a multiple of the Q8_0 block size 32") != NULL, "%s",
		  err.msg);
	cr_assert(eq(int, gguf_tensor_nbytes(4, 2, ne, &out, &err), -BN_EFORMAT));
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_F32, 0, ne, &out, &err), -BN_EFORMAT));
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_F32, 5, ne, &out, &err), -BN_EFORMAT));
	uint64_t big[2] = { 1ull << 32, 1ull << 31 };
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_F32, 2, big, &out, &err), -BN_ERANGE));
	uint64_t neg[1] = { 1ull << 63 };
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_F32, 1, neg, &out, &err), -BN_ERANGE));
	uint64_t bytes_ovf[1] = { 1ull << 62 };
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_F32, 1, bytes_ovf, &out, &err), -BN_ERANGE));
	uint64_t tl3[3] = { 256, 4, 2 };
	cr_assert(eq(int, gguf_tensor_nbytes(GGUF_TYPE_TL2, 3, tl3, &out, &err), -BN_EFORMAT));
}

/* ---- the §13.3 minimal file -------------------------------------------------------------- */

/* convert-quantize.md §13.3 assembled by hand: what gguf-py writes for these calls. */
static void minimal_expected(struct bb *b)
{
	bb_put(b, "GGUF", 4);
	bb_u32(b, 3);
	bb_u64(b, 2);
	bb_u64(b, 5);
	bb_str(b, "general.architecture");
	bb_u32(b, 8);
	bb_str(b, "bitnet");
	bb_str(b, "bitnet.block_count");
	bb_u32(b, 4);
	bb_u32(b, 1);
	bb_str(b, "bitnet.rope.freq_base");
	bb_u32(b, 6);
	bb_f32(b, 10000.0f);
	bb_str(b, "tokenizer.ggml.add_bos_token");
	bb_u32(b, 7);
	bb_u8(b, 1);
	bb_str(b, "tokenizer.ggml.tokens");
	bb_u32(b, 9);
	bb_u32(b, 8);
	bb_u64(b, 2);
	bb_str(b, "<s>");
	bb_str(b, "a");
	cr_assert(eq(sz, b->n, 0x0F7));
	bb_str(b, "output_norm.weight");
	bb_u32(b, 1);
	bb_u64(b, 3);
	bb_u32(b, 0);
	bb_u64(b, 0);
	bb_str(b, "blk.0.attn_q.weight");
	bb_u32(b, 2);
	bb_u64(b, 3);
	bb_u64(b, 2);
	bb_u32(b, 0);
	bb_u64(b, 32);
	cr_assert(eq(sz, b->n, 0x164));
	bb_pad(b, 32);
	cr_assert(eq(sz, b->n, 0x180));
	for (int i = 1; i <= 3; i++)
		bb_f32(b, (float)i);
	bb_pad(b, 32);
	for (int i = 0; i < 6; i++)
		bb_f32(b, (float)i);
	bb_pad(b, 32);
}

static void write_minimal(const char *path, size_t chunk)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	const char *toks[] = { "<s>", "a" };
	uint64_t ne1[1] = { 3 }, ne2[2] = { 3, 2 };
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "bitnet", &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "bitnet.block_count", 1, &err), 0));
	cr_assert(eq(int, gguf_writer_add_f32(w, "bitnet.rope.freq_base", 10000.0f, &err), 0));
	cr_assert(eq(int, gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 2, &err), 0));
	cr_assert(eq(int, gguf_writer_add_tensor(w, "output_norm.weight", GGUF_TYPE_F32, 1, ne1, &err), 0));
	cr_assert(eq(int, gguf_writer_add_tensor(w, "blk.0.attn_q.weight", GGUF_TYPE_F32, 2, ne2, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0), "%s", err.msg);
	float a[3] = { 1, 2, 3 }, q[6] = { 0, 1, 2, 3, 4, 5 };
	cr_assert(eq(int, gguf_writer_write(w, a, sizeof a, &err), 0), "%s", err.msg);
	cr_assert(eq(sz, gguf_writer_current_tensor(w), 1));
	for (size_t off = 0; off < sizeof q; off += chunk) {
		size_t n = sizeof q - off < chunk ? sizeof q - off : chunk;
		cr_assert(eq(int, gguf_writer_write(w, (const uint8_t *)q + off, n, &err), 0), "%s",
			  err.msg);
	}
	cr_assert(eq(sz, gguf_writer_current_tensor(w), 2));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
}

Test(gguf_write, reproduces_the_minimal_gguf_py_file_byte_for_byte)
{
	char *dir = tu_mkdtemp("gguf_minimal");
	struct bb want = { 0 };
	minimal_expected(&want);
	cr_assert(eq(sz, want.n, 448));
	static const uint8_t head[24] = { 0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
					  5, 0, 0, 0, 0, 0, 0, 0 };
	cr_assert(eq(int, memcmp(want.p, head, 24), 0));
	for (size_t chunk = 1; chunk <= 24; chunk *= 5) {
		char *path = tmpfile_in(dir, "min.gguf");
		write_minimal(path, chunk);
		size_t len;
		char *got = tu_read_file(path, &len);
		cr_assert_not_null(got);
		cr_assert(eq(sz, len, 448));
		cr_assert(eq(int, memcmp(got, want.p, 448), 0), "chunk %zu: bytes differ", chunk);
		/* Data at 0x180: 1.0 2.0 3.0 then 20 zero bytes. */
		static const uint8_t d0[12] = { 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40 };
		cr_assert(eq(int, memcmp(got + 0x180, d0, 12), 0));
		free(got);
		free(path);
	}
	free(want.p);
	free(dir);
}

Test(gguf_read, reads_the_minimal_file)
{
	struct bb b = { 0 };
	minimal_expected(&b);
	struct bn_err err = { 0 };
	uint8_t *copy;
	struct gguf_reader *r = open_exact(b.p, b.n, &err, &copy);
	cr_assert_not_null(r, "%s", err.msg);
	cr_assert(eq(u32, gguf_version(r), 3));
	cr_assert(eq(u64, gguf_alignment(r), 32));
	cr_assert(eq(u64, gguf_data_offset(r), 0x180));
	cr_assert(eq(u64, gguf_file_size(r), 448));
	cr_assert(eq(sz, gguf_n_kv(r), 5));
	cr_assert(eq(str, (char *)gguf_kv_key(r, 0), "general.architecture"));
	struct gguf_str s;
	cr_assert(eq(int, gguf_get_str(r, 0, &s, &err), 0));
	cr_assert(eq(sz, s.len, 6));
	cr_assert(eq(int, memcmp(s.data, "bitnet", 6), 0));
	int64_t k = gguf_find_key(r, "tokenizer.ggml.tokens");
	cr_assert(eq(i64, k, 4));
	uint64_t n;
	cr_assert(eq(int, gguf_get_arr(r, k, GGUF_VTYPE_STRING, &n, &err), 0));
	cr_assert(eq(u64, n, 2));
	cr_assert(eq(int, gguf_get_arr_str(r, k, 1, &s, &err), 0));
	cr_assert(eq(sz, s.len, 1));
	cr_assert(eq(chr, s.data[0], 'a'));
	cr_assert(eq(i64, gguf_find_key(r, "no.such.key"), -1));
	cr_assert(eq(sz, gguf_n_tensors(r), 2));
	const struct gguf_tensor *t = gguf_tensor(r, 1);
	cr_assert(eq(str, (char *)t->name, "blk.0.attn_q.weight"));
	cr_assert(eq(u32, t->n_dims, 2));
	cr_assert(eq(u64, t->ne[0], 3));
	cr_assert(eq(u64, t->ne[1], 2));
	cr_assert(eq(u64, t->ne[2], 1));
	cr_assert(eq(u64, t->offset, 32));
	cr_assert(eq(u64, t->nbytes, 24));
	float f;
	memcpy(&f, t->data + 20, 4);
	cr_assert(eq(flt, f, 5.0f));
	cr_assert(eq(i64, gguf_find_tensor(r, "output_norm.weight"), 0));
	cr_assert(eq(i64, gguf_find_tensor(r, "output_norm"), -1));
	cr_assert_null(gguf_tensor(r, 2));
	gguf_close(r);
	free(copy);
	free(b.p);
}

/* ---- round trips ------------------------------------------------------------------------ */

static const uint8_t U8S[] = { 0, 1, 255 };
static const int8_t I8S[] = { -128, 0, 127 };
static const uint16_t U16S[] = { 0, 65535 };
static const int16_t I16S[] = { -32768, 32767 };
static const uint32_t U32S[] = { 0, 1, 4294967295u };
static const int32_t I32S[] = { INT32_MIN, -1, INT32_MAX };
static const uint64_t U64S[] = { 0, UINT64_MAX };
static const int64_t I64S[] = { INT64_MIN, INT64_MAX };
static const float F32S[] = { -0.0f, 1e-5f, INFINITY };
static const double F64S[] = { 3.141592653589793, -1e300 };
static const bool BOOLS[] = { true, false, true };

/* Writes a file with every value type, scalar and array, and tensors of several types. */
static void write_all_types(const char *path)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
#define OK(call) cr_assert(eq(int, (call), 0), "%s", err.msg)
	OK(gguf_writer_add_u8(w, "s.u8", 200, &err));
	OK(gguf_writer_add_i8(w, "s.i8", -100, &err));
	OK(gguf_writer_add_u16(w, "s.u16", 60000, &err));
	OK(gguf_writer_add_i16(w, "s.i16", -30000, &err));
	OK(gguf_writer_add_u32(w, "s.u32", 4000000000u, &err));
	OK(gguf_writer_add_i32(w, "s.i32", -2000000000, &err));
	OK(gguf_writer_add_u64(w, "s.u64", 0xfedcba9876543210ull, &err));
	OK(gguf_writer_add_i64(w, "s.i64", -0x123456789abcdefll, &err));
	OK(gguf_writer_add_f32(w, "s.f32", 1e-5f, &err));
	OK(gguf_writer_add_f64(w, "s.f64", -2.5e-300, &err));
	OK(gguf_writer_add_bool(w, "s.bool", true, &err));
	OK(gguf_writer_add_str(w, "s.str", "héllo", &err));
	OK(gguf_writer_add_strn(w, "s.strn", "a\0b", 3, &err));
	OK(gguf_writer_add_str(w, "s.empty", "", &err));
	OK(gguf_writer_add_arr(w, "a.u8", GGUF_VTYPE_UINT8, U8S, 3, &err));
	OK(gguf_writer_add_arr(w, "a.i8", GGUF_VTYPE_INT8, I8S, 3, &err));
	OK(gguf_writer_add_arr(w, "a.u16", GGUF_VTYPE_UINT16, U16S, 2, &err));
	OK(gguf_writer_add_arr(w, "a.i16", GGUF_VTYPE_INT16, I16S, 2, &err));
	OK(gguf_writer_add_arr(w, "a.u32", GGUF_VTYPE_UINT32, U32S, 3, &err));
	OK(gguf_writer_add_arr(w, "a.i32", GGUF_VTYPE_INT32, I32S, 3, &err));
	OK(gguf_writer_add_arr(w, "a.u64", GGUF_VTYPE_UINT64, U64S, 2, &err));
	OK(gguf_writer_add_arr(w, "a.i64", GGUF_VTYPE_INT64, I64S, 2, &err));
	OK(gguf_writer_add_arr(w, "a.f32", GGUF_VTYPE_FLOAT32, F32S, 3, &err));
	OK(gguf_writer_add_arr(w, "a.f64", GGUF_VTYPE_FLOAT64, F64S, 2, &err));
	OK(gguf_writer_add_arr(w, "a.bool", GGUF_VTYPE_BOOL, BOOLS, 3, &err));
	const char *strs[] = { "x", "", "y\0z" };
	size_t lens[] = { 1, 0, 3 };
	OK(gguf_writer_add_arr_str(w, "a.str", strs, lens, 3, &err));
	OK(gguf_writer_add_arr(w, "a.empty", GGUF_VTYPE_INT32, NULL, 0, &err));
	OK(gguf_writer_add_u32(w, "general.alignment", 32, &err));

	uint64_t ne_f32[1] = { 3 }, ne_f16[2] = { 2, 2 }, ne_q8[2] = { 32, 2 },
		 ne_i2[2] = { 128, 2 }, ne_tl1[2] = { 64, 4 }, ne_tl2[2] = { 256, 4 },
		 ne_e[2] = { 0, 4 };
	OK(gguf_writer_add_tensor(w, "t.f32", GGUF_TYPE_F32, 1, ne_f32, &err));
	OK(gguf_writer_add_tensor(w, "t.empty", GGUF_TYPE_F32, 2, ne_e, &err));
	OK(gguf_writer_add_tensor(w, "t.f16", GGUF_TYPE_F16, 2, ne_f16, &err));
	OK(gguf_writer_add_tensor(w, "t.q8", GGUF_TYPE_Q8_0, 2, ne_q8, &err));
	OK(gguf_writer_add_tensor(w, "t.i2s", GGUF_TYPE_I2_S, 2, ne_i2, &err));
	/* TL1 as the converter writes it: N/4 = 64 packed bytes, pad32 (already), scale + 28. */
	OK(gguf_writer_add_tensor_sized(w, "t.tl1", GGUF_TYPE_TL1, 2, ne_tl1, 64 + 32, &err));
	OK(gguf_writer_add_tensor(w, "t.tl2", GGUF_TYPE_TL2, 2, ne_tl2, &err));
	OK(gguf_writer_write_header(w, &err));
	/* t.empty is skipped automatically; every other tensor gets bytes i & 0xff. */
	size_t sizes[] = { 12, 8, 2 * 34, 128 * 2 / 4 + 32, 96, 288 };
	uint8_t buf[512];
	for (size_t k = 0; k < BN_ARRAY_LEN(sizes); k++) {
		for (size_t i = 0; i < sizes[k]; i++)
			buf[i] = (uint8_t)(k * 16 + i);
		OK(gguf_writer_write(w, buf, sizes[k] / 2, &err));
		OK(gguf_writer_zeros(w, 0, &err));
		OK(gguf_writer_write(w, buf + sizes[k] / 2, sizes[k] - sizes[k] / 2, &err));
	}
	OK(gguf_writer_commit(w, &err));
#undef OK
	gguf_writer_close(w);
}

Test(gguf_roundtrip, every_value_type_and_tensor_type)
{
	char *dir = tu_mkdtemp("gguf_all");
	char *path = tmpfile_in(dir, "all.gguf");
	write_all_types(path);
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	cr_assert(eq(sz, gguf_n_kv(r), 28));

	uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
	uint64_t u64; int64_t i64; float f32; double f64; bool b; struct gguf_str s;
#define GET(fn, key, out) cr_assert(eq(int, fn(r, gguf_find_key(r, key), out, &err), 0), "%s", err.msg)
	GET(gguf_get_u8, "s.u8", &u8);
	cr_assert(eq(u8, u8, 200));
	GET(gguf_get_i8, "s.i8", &i8);
	cr_assert(eq(i8, i8, -100));
	GET(gguf_get_u16, "s.u16", &u16);
	cr_assert(eq(u16, u16, 60000));
	GET(gguf_get_i16, "s.i16", &i16);
	cr_assert(eq(i16, i16, -30000));
	GET(gguf_get_u32, "s.u32", &u32);
	cr_assert(eq(u32, u32, 4000000000u));
	GET(gguf_get_i32, "s.i32", &i32);
	cr_assert(eq(i32, i32, -2000000000));
	GET(gguf_get_u64, "s.u64", &u64);
	cr_assert(eq(u64, u64, 0xfedcba9876543210ull));
	GET(gguf_get_i64, "s.i64", &i64);
	cr_assert(eq(i64, i64, -0x123456789abcdefll));
	GET(gguf_get_f32, "s.f32", &f32);
	cr_assert(eq(flt, f32, 1e-5f));
	GET(gguf_get_f64, "s.f64", &f64);
	cr_assert(eq(dbl, f64, -2.5e-300));
	GET(gguf_get_bool, "s.bool", &b);
	cr_assert(b);
	GET(gguf_get_str, "s.str", &s);
	cr_assert(eq(sz, s.len, 6));
	cr_assert(eq(int, memcmp(s.data, "héllo", 6), 0));
	GET(gguf_get_str, "s.strn", &s);
	cr_assert(eq(sz, s.len, 3));
	cr_assert(eq(int, memcmp(s.data, "a\0b", 3), 0));
	GET(gguf_get_str, "s.empty", &s);
	cr_assert(eq(sz, s.len, 0));

	uint64_t n;
	int64_t k;
#define ARR(key, vt, count, fn, ctype, vals, cmp)                                                \
	k = gguf_find_key(r, key);                                                               \
	cr_assert(eq(int, gguf_get_arr(r, k, vt, &n, &err), 0), "%s", err.msg);                 \
	cr_assert(eq(u64, n, count));                                                            \
	for (uint64_t j = 0; j < n; j++) {                                                       \
		ctype x;                                                                         \
		cr_assert(eq(int, fn(r, k, j, &x, &err), 0), "%s", err.msg);                     \
		bool same_ = cmp(x, vals[j]);                                                    \
		cr_assert(same_, key "[%llu]", (unsigned long long)j);                                            \
	}
#define SAME(a, b2) ((a) == (b2))
#define SAME_BITS(a, b2) (memcmp(&(a), &(b2), sizeof(a)) == 0)
	ARR("a.u8", GGUF_VTYPE_UINT8, 3, gguf_get_arr_u8, uint8_t, U8S, SAME);
	ARR("a.i8", GGUF_VTYPE_INT8, 3, gguf_get_arr_i8, int8_t, I8S, SAME);
	ARR("a.u16", GGUF_VTYPE_UINT16, 2, gguf_get_arr_u16, uint16_t, U16S, SAME);
	ARR("a.i16", GGUF_VTYPE_INT16, 2, gguf_get_arr_i16, int16_t, I16S, SAME);
	ARR("a.u32", GGUF_VTYPE_UINT32, 3, gguf_get_arr_u32, uint32_t, U32S, SAME);
	ARR("a.i32", GGUF_VTYPE_INT32, 3, gguf_get_arr_i32, int32_t, I32S, SAME);
	ARR("a.u64", GGUF_VTYPE_UINT64, 2, gguf_get_arr_u64, uint64_t, U64S, SAME);
	ARR("a.i64", GGUF_VTYPE_INT64, 2, gguf_get_arr_i64, int64_t, I64S, SAME);
	ARR("a.f32", GGUF_VTYPE_FLOAT32, 3, gguf_get_arr_f32, float, F32S, SAME_BITS);
	ARR("a.f64", GGUF_VTYPE_FLOAT64, 2, gguf_get_arr_f64, double, F64S, SAME_BITS);
	ARR("a.bool", GGUF_VTYPE_BOOL, 3, gguf_get_arr_bool, bool, BOOLS, SAME);
	k = gguf_find_key(r, "a.str");
	cr_assert(eq(int, gguf_get_arr(r, k, GGUF_VTYPE_STRING, &n, &err), 0));
	cr_assert(eq(u64, n, 3));
	cr_assert(eq(int, gguf_get_arr_str(r, k, 1, &s, &err), 0));
	cr_assert(eq(sz, s.len, 0));
	cr_assert(eq(int, gguf_get_arr_str(r, k, 2, &s, &err), 0));
	cr_assert(eq(sz, s.len, 3));
	cr_assert(eq(int, memcmp(s.data, "y\0z", 3), 0));
	k = gguf_find_key(r, "a.empty");
	cr_assert(eq(int, gguf_get_arr(r, k, GGUF_VTYPE_INT32, &n, &err), 0));
	cr_assert(eq(u64, n, 0));

	/* Type checks: no conversions, clear messages. */
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, "s.f32"), &u32, &err), -BN_EFORMAT));
	cr_assert(strstr(err.msg, "s.f32: type is f32, expected u32") != NULL, "%s", err.msg);
	cr_assert(eq(int, gguf_get_arr_i32(r, gguf_find_key(r, "a.u32"), 0, &i32, &err), -BN_EFORMAT));
	cr_assert(strstr(err.msg, "element type is u32, expected i32") != NULL, "%s", err.msg);
	cr_assert(eq(int, gguf_get_arr_u32(r, gguf_find_key(r, "a.u32"), 3, &u32, &err), -BN_EINVAL));
	cr_assert(eq(int, gguf_get_arr(r, gguf_find_key(r, "a.u32"), GGUF_VTYPE_INT32, &n, &err),
		     -BN_EFORMAT));
	cr_assert(eq(int, gguf_get_arr_u32(r, gguf_find_key(r, "s.u32"), 0, &u32, &err), -BN_EFORMAT));
	cr_assert(eq(int, gguf_get_u8(r, 99, &u8, &err), -BN_EINVAL));
	cr_assert(eq(int, gguf_get_u8(r, -1, &u8, &err), -BN_EINVAL));
	cr_assert_null(gguf_kv_key(r, 28));
	cr_assert(eq(int, gguf_kv_type(r, 28), -1));
	cr_assert(eq(int, gguf_kv_type(r, 0), GGUF_VTYPE_UINT8));

	/* Tensors, with their loader sizes and data. */
	cr_assert(eq(sz, gguf_n_tensors(r), 7));
	static const char *names[] = { "t.f32", "t.empty", "t.f16", "t.q8", "t.i2s", "t.tl1", "t.tl2" };
	static const uint32_t types[] = { 0, 0, 1, 8, 36, 38, 39 };
	static const uint64_t nbytes[] = { 12, 0, 8, 68, 96, 96, 288 };
	static const uint64_t offsets[] = { 0, 32, 32, 64, 160, 256, 352 };
	for (size_t i = 0; i < 7; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		cr_assert(eq(str, (char *)t->name, (char *)names[i]));
		cr_assert(eq(u32, t->type, types[i]));
		cr_assert(eq(u64, t->nbytes, nbytes[i]), "%s", t->name);
		cr_assert(eq(u64, t->offset, offsets[i]), "%s", t->name);
	}
	const struct gguf_tensor *q8 = gguf_tensor(r, 3);
	cr_assert(eq(u8, q8->data[0], 2 * 16));
	cr_assert(eq(u8, q8->data[67], (uint8_t)(2 * 16 + 67)));
	cr_assert(eq(u64, gguf_file_size(r), gguf_data_offset(r) + 352 + 288));
	gguf_close(r);
	free(path);
	free(dir);
}

Test(gguf_roundtrip, copied_kvs_and_tensors_give_identical_bytes)
{
	char *dir = tu_mkdtemp("gguf_copy");
	char *a = tmpfile_in(dir, "a.gguf"), *b = tmpfile_in(dir, "b.gguf");
	write_all_types(a);
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(a, &err);
	cr_assert_not_null(r, "%s", err.msg);
	struct gguf_writer *w = gguf_writer_open(b, &err);
	cr_assert_not_null(w);
	for (size_t i = 0; i < gguf_n_kv(r); i++)
		cr_assert(eq(int, gguf_writer_copy_kv(w, r, (int64_t)i, &err), 0), "%s", err.msg);
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		cr_assert(eq(int, gguf_writer_add_tensor_sized(w, t->name, t->type, t->n_dims, t->ne,
							       t->nbytes, &err), 0), "%s", err.msg);
	}
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		cr_assert(eq(int, gguf_writer_write(w, t->data, t->nbytes, &err), 0), "%s", err.msg);
	}
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	const uint8_t *rec;
	size_t len;
	cr_assert(eq(int, gguf_kv_raw(r, 0, &rec, &len), 0));
	cr_assert(eq(sz, len, 8 + 4 + 4 + 1)); /* "s.u8": length, key, type, value */
	cr_assert(eq(int, gguf_kv_raw(r, 28, &rec, &len), -BN_EINVAL));
	gguf_close(r);
	size_t na, nb;
	char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
	cr_assert(eq(sz, na, nb));
	cr_assert(eq(int, memcmp(da, db, na), 0));
	free(da);
	free(db);
	free(a);
	free(b);
	free(dir);
}

/* ---- writer errors ---------------------------------------------------------------------- */

static struct gguf_writer *small_writer(const char *path, uint32_t ntensors)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "bitnet", &err), 0));
	uint64_t ne[1] = { 4 };
	char name[16];
	for (uint32_t i = 0; i < ntensors; i++) {
		snprintf(name, sizeof name, "t%u", i);
		cr_assert(eq(int, gguf_writer_add_tensor(w, name, GGUF_TYPE_F32, 1, ne, &err), 0));
	}
	return w;
}

Test(gguf_write, refuses_bytes_beyond_a_tensor_and_after_the_last)
{
	char *dir = tu_mkdtemp("gguf_werr1");
	char *path = tmpfile_in(dir, "x.gguf");
	struct bn_err err = { 0 };
	uint8_t buf[64] = { 0 };
	struct gguf_writer *w = small_writer(path, 2);
	cr_assert(eq(int, gguf_writer_write(w, buf, 4, &err), -BN_EINVAL), "data before the header");
	cr_assert(strstr(err.msg, "before the header was written") != NULL, "%s", err.msg);
	gguf_writer_close(w);

	w = small_writer(path, 2);
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 12, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 8, &err), -BN_EINVAL)); /* 12 + 8 > 16 */
	cr_assert(strstr(err.msg, "tensor 't0': 8 more bytes would exceed its declared size of 16") != NULL,
		  "%s", err.msg);
	assert_one_line(&err, path);
	/* The failure is sticky: nothing more is accepted and nothing is committed. */
	cr_assert(eq(int, gguf_writer_write(w, buf, 4, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "after an earlier failure") != NULL, "%s", err.msg);
	cr_assert(eq(int, gguf_writer_commit(w, &err), -BN_EINVAL));
	gguf_writer_close(w);
	cr_assert_not(bn_file_exists(path));

	w = small_writer(path, 1);
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 16, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 1, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "after the last tensor") != NULL, "%s", err.msg);
	gguf_writer_close(w);
	free(path);
	free(dir);
}

Test(gguf_write, refuses_to_commit_missing_bytes_and_cleans_up)
{
	char *dir = tu_mkdtemp("gguf_werr2");
	char *path = tmpfile_in(dir, "x.gguf");
	char *tmp = tmpfile_in(dir, "x.gguf.tmp");
	struct bn_err err = { 0 };
	uint8_t buf[16] = { 0 };
	struct gguf_writer *w = small_writer(path, 2);
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 16, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 10, &err), 0));
	cr_assert(bn_file_exists(tmp));
	cr_assert(eq(int, gguf_writer_commit(w, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "tensor 't1': only 10 of its 16 bytes written") != NULL, "%s", err.msg);
	gguf_writer_close(w);
	cr_assert_not(bn_file_exists(tmp));
	cr_assert_not(bn_file_exists(path));

	/* A writer closed without commit leaves nothing either. */
	w = small_writer(path, 0);
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	gguf_writer_close(w);
	cr_assert_not(bn_file_exists(tmp));
	cr_assert_not(bn_file_exists(path));
	free(tmp);
	free(path);
	free(dir);
}

Test(gguf_write, refuses_everything_after_commit)
{
	char *dir = tu_mkdtemp("gguf_werr3");
	char *path = tmpfile_in(dir, "x.gguf");
	struct bn_err err = { 0 };
	uint8_t buf[16] = { 0 };
	struct gguf_writer *w = small_writer(path, 1);
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_write(w, buf, 16, &err), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	cr_assert(eq(int, gguf_writer_write(w, buf, 1, &err), -BN_EINVAL));
	cr_assert(strstr(err.msg, "after commit") != NULL, "%s", err.msg);
	cr_assert(eq(int, gguf_writer_commit(w, &err), -BN_EINVAL));
	cr_assert(eq(int, gguf_writer_add_u8(w, "k", 1, &err), -BN_EINVAL));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), -BN_EINVAL));
	gguf_writer_close(w);
	/* Closing a committed writer keeps the file. */
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	cr_assert(eq(sz, gguf_n_tensors(r), 1));
	gguf_close(r);
	free(path);
	free(dir);
}

Test(gguf_write, refuses_bad_kvs_and_tensor_infos)
{
	char *dir = tu_mkdtemp("gguf_werr4");
	char *path = tmpfile_in(dir, "x.gguf");
	struct bn_err err = { 0 };
	uint64_t ne[2] = { 33, 2 }, ok[2] = { 32, 2 };
	struct {
		const char *what, *msg;
	} cases[] = {
		{ "dup key", "duplicate key" },
		{ "empty key", "length 0 is outside" },
		{ "alignment", "aligns to 32 only" },
		{ "alignment type", "general.alignment must be u32" },
		{ "dup tensor", "duplicate name" },
		{ "long name", "name length 64 is outside 1..63" },
		{ "block", "not a multiple of the Q8_0 block size" },
		{ "small size", "declared size 95 is smaller than the 96 bytes" },
		{ "unknown type", "unknown tensor type 40" },
		{ "nested", "bad array element type 9" },
		{ "kv after header", "adding a KV after the header was written" },
		{ "tensor after header", "adding a tensor after the header was written" },
	};
	char longname[70];
	memset(longname, 'x', 64);
	longname[64] = '\0';
	for (size_t c = 0; c < BN_ARRAY_LEN(cases); c++) {
		struct gguf_writer *w = small_writer(path, 1);
		int rc;
		switch (c) {
		case 0: rc = gguf_writer_add_u8(w, "general.architecture", 1, &err); break;
		case 1: rc = gguf_writer_add_u8(w, "", 1, &err); break;
		case 2: rc = gguf_writer_add_u32(w, "general.alignment", 64, &err); break;
		case 3: rc = gguf_writer_add_u64(w, "general.alignment", 32, &err); break;
		case 4: rc = gguf_writer_add_tensor(w, "t0", GGUF_TYPE_F32, 2, ok, &err); break;
		case 5: rc = gguf_writer_add_tensor(w, longname, GGUF_TYPE_F32, 2, ok, &err); break;
		case 6: rc = gguf_writer_add_tensor(w, "q", GGUF_TYPE_Q8_0, 2, ne, &err); break;
		case 7: {
			uint64_t tl[2] = { 128, 2 };
			rc = gguf_writer_add_tensor_sized(w, "tl", GGUF_TYPE_TL1, 2, tl, 95, &err);
			break;
		}
		case 8: rc = gguf_writer_add_tensor(w, "u", 40, 2, ok, &err); break;
		case 9: rc = gguf_writer_add_arr(w, "n", GGUF_VTYPE_ARRAY, ok, 1, &err); break;
		case 10:
			cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
			rc = gguf_writer_add_u8(w, "late", 1, &err);
			break;
		default:
			cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
			rc = gguf_writer_add_tensor(w, "late", GGUF_TYPE_F32, 2, ok, &err);
			break;
		}
		cr_assert(rc < 0, "%s: accepted", cases[c].what);
		cr_assert(strstr(err.msg, cases[c].msg) != NULL, "%s: %s", cases[c].what, err.msg);
		assert_one_line(&err, path);
		cr_assert(eq(int, gguf_writer_write_header(w, &err), -BN_EINVAL), "%s", cases[c].what);
		gguf_writer_close(w);
		cr_assert_not(bn_file_exists(path));
	}
	free(path);
	free(dir);
}

/* ---- reference files -------------------------------------------------------------------- */

/* Decompresses ../shared/testdata/reference/<name>.gguf.xz into a fresh directory. */
static char *ref_file(const char *name)
{
	char rel[256], cmd[8192];
	snprintf(rel, sizeof rel, "testdata/reference/%s.gguf.xz", name);
	char *xz = tu_shared(rel);
	char *dir = tu_mkdtemp(name);
	cr_assert_not_null(dir);
	char *out = bn_path_join(dir, "ref.gguf");
	snprintf(cmd, sizeof cmd, "xz -dc '%s' > '%s'", xz, out);
	struct tu_run run = tu_sh(cmd);
	cr_assert(eq(int, run.status, 0), "%s: %s", cmd, run.err);
	tu_run_free(&run);
	free(xz);
	free(dir);
	return out;
}

static uint32_t kv_u32(const struct gguf_reader *r, const char *key)
{
	struct bn_err err = { 0 };
	uint32_t v = 0;
	cr_assert(eq(int, gguf_get_u32(r, gguf_find_key(r, key), &v, &err), 0), "%s: %s", key,
		  err.msg);
	return v;
}

static size_t count_type(const struct gguf_reader *r, uint32_t type)
{
	size_t n = 0;
	for (size_t i = 0; i < gguf_n_tensors(r); i++)
		n += gguf_tensor(r, i)->type == type;
	return n;
}

static void assert_hex(const uint8_t *p, const char *hex)
{
	char got[129] = { 0 };
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++)
		snprintf(got + 2 * i, 3, "%02x", p[i]);
	cr_assert(eq(str, got, (char *)hex));
}

static const struct gguf_tensor *tensor_named(const struct gguf_reader *r, const char *name)
{
	int64_t i = gguf_find_tensor(r, name);
	cr_assert(i >= 0, "no tensor %s", name);
	return gguf_tensor(r, (size_t)i);
}

Test(gguf_reference, tv_f32_f32_has_the_documented_structure)
{
	char *path = ref_file("tv-f32.f32");
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	cr_assert(eq(u64, gguf_file_size(r), 5045984));
	cr_assert(eq(sz, gguf_n_kv(r), 24));
	cr_assert(eq(sz, gguf_n_tensors(r), 24));
	cr_assert(eq(u64, gguf_data_offset(r), 8928));
	cr_assert(eq(u32, kv_u32(r, "general.file_type"), 0));
	cr_assert(eq(u32, kv_u32(r, "bitnet.block_count"), 2));
	cr_assert(eq(u32, kv_u32(r, "tokenizer.ggml.bos_token_id"), 1));
	cr_assert(eq(str, (char *)gguf_kv_key(r, 0), "general.architecture"));
	cr_assert(eq(str, (char *)gguf_kv_key(r, 23), "tokenizer.chat_template"));
	struct gguf_str s;
	cr_assert(eq(int, gguf_get_str(r, 0, &s, &err), 0));
	cr_assert(eq(int, strncmp(s.data, "bitnet", s.len), 0));
	int64_t k = gguf_find_key(r, "tokenizer.ggml.tokens");
	uint64_t n;
	cr_assert(eq(int, gguf_get_arr(r, k, GGUF_VTYPE_STRING, &n, &err), 0));
	cr_assert(eq(u64, n, 300));
	cr_assert(eq(int, gguf_get_arr_str(r, k, 0, &s, &err), 0));
	cr_assert(eq(int, strncmp(s.data, "<unk>", s.len), 0));
	int32_t tt;
	cr_assert(eq(int, gguf_get_arr_i32(r, gguf_find_key(r, "tokenizer.ggml.token_type"), 3,
					   &tt, &err), 0));
	cr_assert(eq(i32, tt, 6)); /* <0x00> is a byte token */
	bool add_bos;
	cr_assert(eq(int, gguf_get_bool(r, gguf_find_key(r, "tokenizer.ggml.add_bos_token"),
					&add_bos, &err), 0));
	cr_assert(add_bos);
	/* Metadata ends at 8916: the last tensor info's offset (output_norm) fills 8908..8915. */
	uint64_t last_off;
	const struct gguf_tensor *on = gguf_tensor(r, 23);
	memcpy(&last_off, on->data - on->offset - 8928 + 8908, 8);
	cr_assert(eq(u64, last_off, on->offset));
	static const char *order[] = {
		"token_embd", "blk.0.attn_norm", "blk.0.ffn_down", "blk.0.ffn_sub_norm",
		"blk.0.ffn_gate", "blk.0.ffn_up", "blk.0.ffn_norm", "blk.0.attn_sub_norm",
		"blk.0.attn_k", "blk.0.attn_output", "blk.0.attn_q", "blk.0.attn_v",
	};
	for (size_t i = 0; i < 24; i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		char want[64];
		if (i < 12)
			snprintf(want, sizeof want, "%s.weight", order[i]);
		else if (i < 23)
			snprintf(want, sizeof want, "blk.1.%s.weight", order[i - 11] + 6);
		else
			snprintf(want, sizeof want, "output_norm.weight");
		cr_assert(eq(str, (char *)t->name, want));
		cr_assert(eq(u32, t->type, GGUF_TYPE_F32));
	}
	const struct gguf_tensor *te = tensor_named(r, "token_embd.weight");
	cr_assert(eq(u64, te->ne[0], 256));
	cr_assert(eq(u64, te->ne[1], 300));
	gguf_close(r);
	free(path);
}

Test(gguf_reference, i2_s_file_has_the_documented_structure)
{
	char *path = ref_file("tv-f32.i2_s");
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	cr_assert(eq(u64, gguf_file_size(r), 469184));
	cr_assert(eq(sz, gguf_n_kv(r), 25));
	cr_assert(eq(str, (char *)gguf_kv_key(r, 24), "general.quantization_version"));
	cr_assert(eq(u32, kv_u32(r, "general.quantization_version"), 2));
	cr_assert(eq(u32, kv_u32(r, "general.file_type"), GGUF_FTYPE_MOSTLY_I2_S));
	cr_assert(eq(u32, tensor_named(r, "token_embd.weight")->type, GGUF_TYPE_F16));
	cr_assert(eq(sz, count_type(r, GGUF_TYPE_I2_S), 14));
	/* §13.2 intermediate values. */
	const struct gguf_tensor *q = tensor_named(r, "blk.0.attn_q.weight");
	cr_assert(eq(u64, q->nbytes, 256 * 256 / 4 + 32));
	assert_hex(q->data, "991098a06889802a8a8a6a6808010042");
	assert_hex(q->data + 16384, "7722fe3b");
	const struct gguf_tensor *kk = tensor_named(r, "blk.0.attn_k.weight");
	assert_hex(kk->data, "9982642880aa822a8246684068588a29");
	assert_hex(kk->data + 256 * 128 / 4, "309dff3b");
	const struct gguf_tensor *d = tensor_named(r, "blk.0.ffn_down.weight");
	assert_hex(d->data, "099894166196081a9a082202a6a98490");
	assert_hex(d->data + 32768, "952ffe3b");
	gguf_close(r);
	free(path);
}

Test(gguf_reference, tl1_and_tl2_files_carry_the_hidden_scale)
{
	static const struct {
		const char *name;
		uint32_t type;
		uint64_t size;
	} files[] = {
		{ "tv-f32.tl1", GGUF_TYPE_TL1, 622752 },
		{ "tv-f32.tl1-quant-embd", GGUF_TYPE_TL1, 469152 },
		{ "tv-f32.tl2-quant-embd", GGUF_TYPE_TL2, 463712 },
	};
	for (size_t f = 0; f < BN_ARRAY_LEN(files); f++) {
		char *path = ref_file(files[f].name);
		struct bn_err err = { 0 };
		struct gguf_reader *r = gguf_open(path, &err);
		cr_assert_not_null(r, "%s", err.msg);
		cr_assert(eq(u64, gguf_file_size(r), files[f].size));
		cr_assert(eq(sz, gguf_n_kv(r), 24));
		cr_assert(eq(sz, gguf_n_tensors(r), 24)); /* the *_scale entries are not counted */
		cr_assert(eq(u32, kv_u32(r, "general.file_type"), files[f].type));
		cr_assert(eq(sz, count_type(r, files[f].type), 14));
		const struct gguf_tensor *q = tensor_named(r, "blk.0.attn_q.weight");
		/* The runtime reads the scale at K·M/4 (TL1) or pad32(T) (TL2): 16384 for 256×256,
		 * where the converter put max|w| = 0x3BFE2277, followed by 28 zero bytes. */
		cr_assert(eq(u64, q->nbytes, 16384 + 32));
		assert_hex(q->data + 16384, "7722fe3b00000000");
		const struct gguf_tensor *d = tensor_named(r, "blk.0.ffn_down.weight");
		uint64_t scale_at = files[f].type == GGUF_TYPE_TL1 ? 512 * 256 / 4 : 30048;
		cr_assert(eq(u64, d->nbytes, scale_at + 32));
		assert_hex(d->data + scale_at, "952ffe3b");
		uint32_t embd = tensor_named(r, "token_embd.weight")->type;
		cr_assert(eq(u32, embd, f == 0 ? GGUF_TYPE_F32 : GGUF_TYPE_F16));
		gguf_close(r);
		free(path);
	}
}

/* Re-writes a reference file through the writer (KVs copied verbatim, tensors streamed in
 * chunks) and checks the copy is byte-identical: the writer lays files out exactly like gguf-py
 * and llama-quantize did. */
static void assert_rewrite_identical(const char *name)
{
	char *path = ref_file(name);
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert_not_null(r, "%s", err.msg);
	char *copy = malloc(strlen(path) + 8);
	sprintf(copy, "%s.copy", path);
	struct gguf_writer *w = gguf_writer_open(copy, &err);
	cr_assert_not_null(w);
	for (size_t i = 0; i < gguf_n_kv(r); i++)
		cr_assert(eq(int, gguf_writer_copy_kv(w, r, (int64_t)i, &err), 0), "%s", err.msg);
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		cr_assert(eq(int, gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &err),
			     0), "%s", err.msg);
	}
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		for (uint64_t off = 0; off < t->nbytes; off += 10000) {
			size_t n = (size_t)BN_MIN(10000, t->nbytes - off);
			cr_assert(eq(int, gguf_writer_write(w, t->data + off, n, &err), 0), "%s",
				  err.msg);
		}
	}
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	gguf_close(r);
	char ha[65], hb[65];
	cr_assert(eq(int, tu_sha256_file(path, ha), 0));
	cr_assert(eq(int, tu_sha256_file(copy, hb), 0));
	cr_assert(eq(str, ha, hb), "%s: rewritten file differs", name);
	free(copy);
	free(path);
}

Test(gguf_reference, rewriting_every_reference_file_is_byte_identical)
{
	static const char *names[] = {
		"tv-f32.f32", "tv-f32.i2_s", "tv-f32.tl1", "tv-f32.tl1-quant-embd",
		"tv-f32.tl2-quant-embd", "tv-llama.offset-order.f32", "tv-llama.offset-order.i2_s",
	};
	for (size_t i = 0; i < BN_ARRAY_LEN(names); i++)
		assert_rewrite_identical(names[i]);
}

Test(gguf_reference, i2_s_file_is_the_zero_tail_variant_of_the_spec)
{
	/* §13.2: "tv-f32 -> I2_S, tail bytes zeroed".  The rewrite test above depends on this being
	 * the published file, so pin it. */
	char *path = ref_file("tv-f32.i2_s");
	char h[65];
	cr_assert(eq(int, tu_sha256_file(path, h), 0));
	cr_assert(eq(str, h, "6b5de4774bb030b578b3f750f6a7dd4fc24fce17ce69bf58c65e6183acfb6925"));
	free(path);
}

/* ---- corrupt files ---------------------------------------------------------------------- */

/* A small valid file, with the position of every field a corruption case patches.  Both
 * tensors' data are exactly 32 bytes, so the file has no trailing padding and cutting it
 * anywhere makes it invalid. */
struct small {
	struct bb b;
	size_t version, n_tensors, n_kv;
	size_t key0_len, key0, kv0_type, str0_len;
	size_t align_type, align_val, bool_val;
	size_t arr_type, arr_count, sarr_count, sarr_e1_len;
	size_t key_a2; /* the key bytes "test.a2" (same length as "test.a1") */
	size_t t0_name_len, t0_ndims, t0_ne0, t0_type, t0_offset;
	size_t t1_name, t1_ne0, t1_ne1, t1_type, t1_offset;
};

static void small_build(struct small *s)
{
	memset(s, 0, sizeof *s);
	struct bb *b = &s->b;
	bb_put(b, "GGUF", 4);
	s->version = bb_u32(b, 3);
	s->n_tensors = bb_u64(b, 2);
	s->n_kv = bb_u64(b, 7);
	s->key0_len = bb_str(b, "general.architecture");
	s->key0 = s->key0_len + 8;
	s->kv0_type = bb_u32(b, GGUF_VTYPE_STRING);
	s->str0_len = bb_str(b, "bitnet");
	bb_str(b, "general.alignment");
	s->align_type = bb_u32(b, GGUF_VTYPE_UINT32);
	s->align_val = bb_u32(b, 32);
	bb_str(b, "test.flag");
	bb_u32(b, GGUF_VTYPE_BOOL);
	s->bool_val = bb_u8(b, 1);
	bb_str(b, "test.list");
	bb_u32(b, GGUF_VTYPE_ARRAY);
	s->arr_type = bb_u32(b, GGUF_VTYPE_UINT32);
	s->arr_count = bb_u64(b, 3);
	for (uint32_t i = 1; i <= 3; i++)
		bb_u32(b, i);
	bb_str(b, "test.words");
	bb_u32(b, GGUF_VTYPE_ARRAY);
	bb_u32(b, GGUF_VTYPE_STRING);
	s->sarr_count = bb_u64(b, 2);
	bb_str(b, "ab");
	s->sarr_e1_len = bb_str(b, "c");
	bb_str(b, "test.a1");
	bb_u32(b, GGUF_VTYPE_UINT8);
	bb_u8(b, 7);
	s->key_a2 = bb_str(b, "test.a2") + 8;
	bb_u32(b, GGUF_VTYPE_INT8);
	bb_u8(b, 0xff);
	s->t0_name_len = bb_str(b, "t.one");
	s->t0_ndims = bb_u32(b, 1);
	s->t0_ne0 = bb_u64(b, 8);
	s->t0_type = bb_u32(b, GGUF_TYPE_F32);
	s->t0_offset = bb_u64(b, 0);
	s->t1_name = bb_str(b, "t.two") + 8;
	bb_u32(b, 2);
	s->t1_ne0 = bb_u64(b, 4);
	s->t1_ne1 = bb_u64(b, 2);
	s->t1_type = bb_u32(b, GGUF_TYPE_F32);
	s->t1_offset = bb_u64(b, 32);
	bb_pad(b, 32);
	for (int i = 0; i < 16; i++)
		bb_f32(b, (float)i);
}

Test(gguf_corrupt, the_small_file_itself_is_valid)
{
	struct small s;
	small_build(&s);
	struct bn_err err = { 0 };
	uint8_t *copy;
	struct gguf_reader *r = open_exact(s.b.p, s.b.n, &err, &copy);
	cr_assert_not_null(r, "%s", err.msg);
	cr_assert(eq(sz, gguf_n_kv(r), 7));
	cr_assert(eq(sz, gguf_n_tensors(r), 2));
	cr_assert(eq(u64, gguf_data_offset(r) + 64, s.b.n));
	walk(r);
	gguf_close(r);
	free(copy);
	free(s.b.p);
}

enum corrupt_case {
	BAD_MAGIC, VERSION_1, VERSION_BIG_ENDIAN, VERSION_99, HUGE_N_KV, HUGE_N_TENSORS,
	N_KV_TOO_MANY_FOR_FILE, N_KV_ONE_TOO_MANY, KEY_LEN_PAST_EOF, KEY_LEN_HUGE, KEY_EMPTY,
	KEY_NUL, STRING_LEN_PAST_EOF, STRING_LEN_HUGE, UNKNOWN_KV_TYPE, NESTED_ARRAY,
	UNKNOWN_ARRAY_TYPE, ARRAY_COUNT_OVERFLOW, ARRAY_COUNT_PAST_EOF, STRING_ARRAY_COUNT_PAST_EOF,
	STRING_ELEMENT_PAST_EOF, BAD_BOOL, DUPLICATE_KEY, ALIGNMENT_NOT_POW2, ALIGNMENT_ZERO,
	ALIGNMENT_WRONG_TYPE, NAME_TOO_LONG, N_DIMS_ZERO, N_DIMS_FIVE, NE_NEGATIVE, NE_OVERFLOW,
	UNKNOWN_TENSOR_TYPE, REMOVED_TENSOR_TYPE, BLOCK_MISMATCH, MISALIGNED_OFFSET, DATA_PAST_EOF,
	OFFSET_OVERFLOW, OVERLAP, DUPLICATE_NAME, N_CASES
};

static const struct {
	const char *name, *msg;
} CASES[N_CASES] = {
	[BAD_MAGIC] = { "bad_magic", "header: bad magic 58 47 55 46" },
	[VERSION_1] = { "version_1", "unsupported GGUF version 1" },
	[VERSION_BIG_ENDIAN] = { "version_big_endian", "big-endian GGUF files are not supported" },
	[VERSION_99] = { "version_99", "unsupported GGUF version 99" },
	[HUGE_N_KV] = { "huge_n_kv", "n_kv 9223372036854775808 exceeds the limit" },
	[HUGE_N_TENSORS] = { "huge_n_tensors", "n_tensors 18446744073709551615 exceeds the limit" },
	[N_KV_TOO_MANY_FOR_FILE] = { "n_kv_too_many_for_file", "cannot hold that many KVs (truncated file?)" },
	[N_KV_ONE_TOO_MANY] = { "n_kv_one_too_many", "tensor 0: empty name" },
	[KEY_LEN_PAST_EOF] = { "key_len_past_eof", "KV 0: key length 60000 at offset 24 runs past the end" },
	[KEY_LEN_HUGE] = { "key_len_huge", "KV 0: key length 1099511627776 exceeds the limit of 65535" },
	[KEY_EMPTY] = { "key_empty", "KV 0: empty key" },
	[KEY_NUL] = { "key_nul", "key contains a NUL byte" },
	[STRING_LEN_PAST_EOF] = { "string_len_past_eof", "'general.architecture': string length 10000 at offset" },
	[STRING_LEN_HUGE] = { "string_len_huge", "string length 18446744073709551615 exceeds the limit" },
	[UNKNOWN_KV_TYPE] = { "unknown_kv_type", "'general.architecture': unknown value type 13" },
	[NESTED_ARRAY] = { "nested_array", "'test.list': nested arrays are not supported" },
	[UNKNOWN_ARRAY_TYPE] = { "unknown_array_type", "unknown array element type 77" },
	[ARRAY_COUNT_OVERFLOW] = { "array_count_overflow", "array count 4611686018427387904 exceeds the limit" },
	[ARRAY_COUNT_PAST_EOF] = { "array_count_past_eof", "array of 536870912 u32 at offset" },
	[STRING_ARRAY_COUNT_PAST_EOF] = { "string_array_count_past_eof", "array of 1000 string" },
	[STRING_ELEMENT_PAST_EOF] = { "string_element_past_eof", "element 1 string length 1099511627776" },
	[BAD_BOOL] = { "bad_bool", "'test.flag': bool value byte 2 (must be 0 or 1)" },
	[DUPLICATE_KEY] = { "duplicate_key", "KV 6: duplicate key 'test.a1' (also KV 5)" },
	[ALIGNMENT_NOT_POW2] = { "alignment_not_pow2", "alignment 48 is not a power of two" },
	[ALIGNMENT_ZERO] = { "alignment_zero", "alignment 0 is not a power of two" },
	[ALIGNMENT_WRONG_TYPE] = { "alignment_wrong_type", "'general.alignment': type is i32, expected u32" },
	[NAME_TOO_LONG] = { "name_too_long", "tensor 0: name length 64 exceeds the limit of 63" },
	[N_DIMS_ZERO] = { "n_dims_zero", "tensor 0 't.one': n_dims 0 is outside 1..4" },
	[N_DIMS_FIVE] = { "n_dims_five", "n_dims 5 is outside 1..4" },
	[NE_NEGATIVE] = { "ne_negative", "ne[0] = 9223372036854775808 exceeds 2^63-1" },
	[NE_OVERFLOW] = { "ne_overflow", "tensor 1 't.two': element count overflows at ne[1]" },
	[UNKNOWN_TENSOR_TYPE] = { "unknown_tensor_type", "unknown tensor type 40" },
	[REMOVED_TENSOR_TYPE] = { "removed_tensor_type", "unknown tensor type 4" },
	[BLOCK_MISMATCH] = { "block_mismatch", "ne[0] = 4 is not a multiple of the Q8_0 block size 32" },
	[MISALIGNED_OFFSET] = { "misaligned_offset", "offset 33 is not a multiple of the alignment 32" },
	[DATA_PAST_EOF] = { "data_past_eof", "tensor 1 't.two': 32 bytes of data at offset 1048576" },
	[OFFSET_OVERFLOW] = { "offset_overflow", "end past the end of the file" },
	[OVERLAP] = { "overlap", "data at offset 0 overlaps tensor" },
	[DUPLICATE_NAME] = { "duplicate_name", "tensor 1 't.one': duplicate tensor name (also tensor 0)" },
};

static void corrupt(struct small *s, enum corrupt_case c)
{
	uint8_t *p = s->b.p;
	switch (c) {
	case BAD_MAGIC: p[0] = 'X'; break;
	case VERSION_1: put_u32_at(p, s->version, 1); break;
	case VERSION_BIG_ENDIAN: put_u32_at(p, s->version, 0x03000000); break;
	case VERSION_99: put_u32_at(p, s->version, 99); break;
	case HUGE_N_KV: put_u64_at(p, s->n_kv, 1ull << 63); break;
	case HUGE_N_TENSORS: put_u64_at(p, s->n_tensors, UINT64_MAX); break;
	case N_KV_TOO_MANY_FOR_FILE: put_u64_at(p, s->n_kv, 1000); break;
	case N_KV_ONE_TOO_MANY: put_u64_at(p, s->n_kv, 8); break;
	case KEY_LEN_PAST_EOF: put_u64_at(p, s->key0_len, 60000); break;
	case KEY_LEN_HUGE: put_u64_at(p, s->key0_len, 1ull << 40); break;
	case KEY_EMPTY: put_u64_at(p, s->key0_len, 0); break;
	case KEY_NUL: p[s->key0 + 3] = 0; break;
	case STRING_LEN_PAST_EOF: put_u64_at(p, s->str0_len, 10000); break;
	case STRING_LEN_HUGE: put_u64_at(p, s->str0_len, UINT64_MAX); break;
	case UNKNOWN_KV_TYPE: put_u32_at(p, s->kv0_type, 13); break;
	case NESTED_ARRAY: put_u32_at(p, s->arr_type, GGUF_VTYPE_ARRAY); break;
	case UNKNOWN_ARRAY_TYPE: put_u32_at(p, s->arr_type, 77); break;
	case ARRAY_COUNT_OVERFLOW: put_u64_at(p, s->arr_count, 1ull << 62); break;
	case ARRAY_COUNT_PAST_EOF: put_u64_at(p, s->arr_count, 1u << 29); break;
	case STRING_ARRAY_COUNT_PAST_EOF: put_u64_at(p, s->sarr_count, 1000); break;
	case STRING_ELEMENT_PAST_EOF: put_u64_at(p, s->sarr_e1_len, 1ull << 40); break;
	case BAD_BOOL: p[s->bool_val] = 2; break;
	case DUPLICATE_KEY: p[s->key_a2 + 6] = '1'; break;
	case ALIGNMENT_NOT_POW2: put_u32_at(p, s->align_val, 48); break;
	case ALIGNMENT_ZERO: put_u32_at(p, s->align_val, 0); break;
	case ALIGNMENT_WRONG_TYPE: put_u32_at(p, s->align_type, GGUF_VTYPE_INT32); break;
	case NAME_TOO_LONG: put_u64_at(p, s->t0_name_len, 64); break;
	case N_DIMS_ZERO: put_u32_at(p, s->t0_ndims, 0); break;
	case N_DIMS_FIVE: put_u32_at(p, s->t0_ndims, 5); break;
	case NE_NEGATIVE: put_u64_at(p, s->t0_ne0, 1ull << 63); break;
	case NE_OVERFLOW:
		put_u64_at(p, s->t1_ne0, 1ull << 32);
		put_u64_at(p, s->t1_ne1, 1ull << 32);
		break;
	case UNKNOWN_TENSOR_TYPE: put_u32_at(p, s->t0_type, 40); break;
	case REMOVED_TENSOR_TYPE: put_u32_at(p, s->t0_type, 4); break;
	case BLOCK_MISMATCH: put_u32_at(p, s->t1_type, GGUF_TYPE_Q8_0); break;
	case MISALIGNED_OFFSET: put_u64_at(p, s->t1_offset, 33); break;
	case DATA_PAST_EOF: put_u64_at(p, s->t1_offset, 1u << 20); break;
	case OFFSET_OVERFLOW: put_u64_at(p, s->t1_offset, UINT64_MAX - 31); break;
	case OVERLAP: put_u64_at(p, s->t1_offset, 0); break;
	case DUPLICATE_NAME: memcpy(p + s->t1_name, "t.one", 5); break;
	case N_CASES: break;
	}
}

Test(gguf_corrupt, every_generated_case_gives_its_one_line_error)
{
	char *dir = tu_mkdtemp("gguf_corpus");
	for (int c = 0; c < N_CASES; c++) {
		struct small s;
		small_build(&s);
		corrupt(&s, (enum corrupt_case)c);
		char fname[64];
		snprintf(fname, sizeof fname, "%s.gguf", CASES[c].name);
		char *path = tmpfile_in(dir, fname);
		cr_assert(eq(int, tu_write_file(path, s.b.p, s.b.n), 0));
		struct bn_err err = { 0 };
		struct gguf_reader *r = gguf_open(path, &err);
		cr_assert_null(r, "%s: accepted", CASES[c].name);
		assert_one_line(&err, path);
		cr_assert(strstr(err.msg, CASES[c].msg) != NULL, "%s: got \"%s\", want \"%s\"", CASES[c].name,
			  err.msg, CASES[c].msg);
		free(path);
		free(s.b.p);
	}
	free(dir);
}

Test(gguf_corrupt, every_truncation_of_a_valid_file_is_an_error)
{
	struct small s;
	small_build(&s);
	for (size_t len = 0; len < s.b.n; len++) {
		struct bn_err err = { 0 };
		uint8_t *copy;
		struct gguf_reader *r = open_exact(s.b.p, len, &err, &copy);
		cr_assert_null(r, "truncated to %zu of %zu bytes: accepted", len, s.b.n);
		assert_one_line(&err, "mem.gguf: ");
		free(copy);
	}
	free(s.b.p);
}

Test(gguf_corrupt, empty_and_missing_files_are_errors)
{
	char *dir = tu_mkdtemp("gguf_empty");
	char *path = tmpfile_in(dir, "empty.gguf");
	cr_assert(eq(int, tu_write_file(path, "", 0), 0));
	struct bn_err err = { 0 };
	cr_assert_null(gguf_open(path, &err));
	cr_assert(strstr(err.msg, "file is 0 bytes, too short") != NULL, "%s", err.msg);
	char *missing = tmpfile_in(dir, "missing.gguf");
	cr_assert_null(gguf_open(missing, &err));
	cr_assert(eq(int, err.code, BN_ENOENT));
	cr_assert_null(gguf_open(dir, &err)); /* a directory */
	assert_one_line(&err, dir);
	free(missing);
	free(path);
	free(dir);
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

Test(gguf_corrupt, seeded_random_mutations_never_crash)
{
	struct small s;
	small_build(&s);
	const size_t fields[] = { s.n_tensors, s.n_kv, s.key0_len, s.str0_len, s.arr_count,
				  s.sarr_count, s.sarr_e1_len, s.t0_ne0, s.t0_offset, s.t1_ne0,
				  s.t1_ne1, s.t1_offset, s.t0_name_len };
	const uint64_t interesting[] = { 0, 1, 31, 32, 33, 63, 64, 255, 1u << 16, 1ull << 31,
					 1ull << 32, 1ull << 62, 1ull << 63, UINT64_MAX,
					 UINT64_MAX - 31, s.b.n, s.b.n - 1 };
	uint64_t seed = 20241018;
	size_t accepted = 0, rejected = 0;
	uint8_t *m = malloc(s.b.n);
	for (int it = 0; it < 20000; it++) {
		memcpy(m, s.b.p, s.b.n);
		uint64_t r0 = rng_next(&seed);
		if (r0 % 3 == 0) {
			size_t f = fields[rng_next(&seed) % BN_ARRAY_LEN(fields)];
			put_u64_at(m, f, interesting[rng_next(&seed) % BN_ARRAY_LEN(interesting)]);
		} else {
			int nflips = 1 + (int)(rng_next(&seed) % 4);
			for (int k = 0; k < nflips; k++)
				m[rng_next(&seed) % s.b.n] = (uint8_t)rng_next(&seed);
		}
		size_t len = r0 % 7 == 0 ? (size_t)(rng_next(&seed) % s.b.n) : s.b.n;
		struct bn_err err = { 0 };
		uint8_t *copy;
		struct gguf_reader *r = open_exact(m, len, &err, &copy);
		if (r) {
			accepted++;
			walk(r);
			gguf_close(r);
		} else {
			rejected++;
			assert_one_line(&err, "mem.gguf: ");
		}
		free(copy);
	}
	cr_log_info("random mutations: %zu accepted, %zu rejected", accepted, rejected);
	cr_assert(rejected > 10000, "only %zu of 20000 mutants rejected", rejected);
	free(m);
	free(s.b.p);
}

/* ---- fuzz seeds ------------------------------------------------------------------------- */

/* A small bitnet-like model: tokenizer arrays, ftype, and one tensor of each type the
 * pipeline writes (I2_S with its scale, TL1/TL2 with the hidden scale, Q8_0, F16, F32). */
static void write_bitnet_seed(const char *path)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	const char *toks[] = { "<unk>", "<s>", "</s>", "<0x00>", "\xe2\x96\x81hello", "a" };
	float scores[6] = { 0, 0, 0, 0, -1, -20 };
	int32_t types[6] = { 2, 3, 3, 6, 1, 1 };
#define OK(call) cr_assert(eq(int, (call), 0), "%s", err.msg)
	OK(gguf_writer_add_str(w, "general.architecture", "bitnet", &err));
	OK(gguf_writer_add_str(w, "general.name", "seed", &err));
	OK(gguf_writer_add_u32(w, "bitnet.block_count", 1, &err));
	OK(gguf_writer_add_f32(w, "bitnet.attention.layer_norm_rms_epsilon", 1e-5f, &err));
	OK(gguf_writer_add_u32(w, "general.file_type", GGUF_FTYPE_MOSTLY_I2_S, &err));
	OK(gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", &err));
	OK(gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 6, &err));
	OK(gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, scores, 6, &err));
	OK(gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, types, 6, &err));
	OK(gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, &err));
	OK(gguf_writer_add_u32(w, "general.quantization_version", GGUF_QNT_VERSION, &err));
	uint64_t embd[2] = { 32, 6 }, norm[1] = { 32 }, i2[2] = { 128, 4 }, tl1[2] = { 64, 4 },
		 tl2[2] = { 256, 2 }, q8[2] = { 32, 2 };
	OK(gguf_writer_add_tensor(w, "token_embd.weight", GGUF_TYPE_F16, 2, embd, &err));
	OK(gguf_writer_add_tensor(w, "output_norm.weight", GGUF_TYPE_F32, 1, norm, &err));
	OK(gguf_writer_add_tensor(w, "blk.0.attn_q.weight", GGUF_TYPE_I2_S, 2, i2, &err));
	OK(gguf_writer_add_tensor_sized(w, "blk.0.attn_k.weight", GGUF_TYPE_TL1, 2, tl1, 64 + 32, &err));
	OK(gguf_writer_add_tensor(w, "blk.0.attn_v.weight", GGUF_TYPE_TL2, 2, tl2, &err));
	OK(gguf_writer_add_tensor(w, "output.weight", GGUF_TYPE_Q8_0, 2, q8, &err));
	OK(gguf_writer_write_header(w, &err));
	uint8_t buf[512];
	uint32_t state = 1;
	while (gguf_writer_current_tensor(w) < 6) {
		for (size_t i = 0; i < 64; i++)
			buf[i] = (uint8_t)((state = state * 1664525u + 1013904223u) >> 24);
		OK(gguf_writer_write(w, buf, 4, &err)); /* every size here is a multiple of 4 */
	}
	OK(gguf_writer_commit(w, &err));
#undef OK
	gguf_writer_close(w);
}

static void write_kv_only_seed(const char *path)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "llama", &err), 0));
	cr_assert(eq(int, gguf_writer_add_u64(w, "x.u64", 1ull << 40, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
}

/* The committed seeds of tests/fuzz/gguf/ are exactly what the writer produces today;
 * BITMAKE_WRITE_SEEDS=1 rewrites them. */
Test(gguf_fuzz_seeds, are_what_the_writer_writes)
{
	char *dir = tu_mkdtemp("gguf_seeds");
	static const char *names[] = { "minimal.gguf", "all-types.gguf", "bitnet.gguf", "kv-only.gguf" };
	size_t total = 0;
	for (size_t i = 0; i < BN_ARRAY_LEN(names); i++) {
		char *path = tmpfile_in(dir, names[i]);
		switch (i) {
		case 0: write_minimal(path, 24); break;
		case 1: write_all_types(path); break;
		case 2: write_bitnet_seed(path); break;
		default: write_kv_only_seed(path); break;
		}
		struct bn_err err = { 0 };
		struct gguf_reader *r = gguf_open(path, &err);
		cr_assert_not_null(r, "%s", err.msg);
		walk(r);
		gguf_close(r);
		char rel[128];
		snprintf(rel, sizeof rel, "tests/fuzz/gguf/%s", names[i]);
		char *seed = tu_root(rel);
		size_t n, m;
		char *want = tu_read_file(path, &n);
		const char *update = getenv("BITMAKE_WRITE_SEEDS");
		if (update && strcmp(update, "1") == 0)
			cr_assert(eq(int, tu_write_file(seed, want, n), 0));
		char *have = tu_read_file(seed, &m);
		cr_assert_not_null(have, "%s missing; run with BITMAKE_WRITE_SEEDS=1", seed);
		cr_assert(eq(sz, m, n), "%s is stale; run with BITMAKE_WRITE_SEEDS=1", seed);
		cr_assert(eq(int, memcmp(have, want, n), 0), "%s is stale", seed);
		total += n;
		free(have);
		free(want);
		free(seed);
		free(path);
	}
	cr_assert(total < 20000, "seeds are %zu bytes", total);
	free(dir);
}

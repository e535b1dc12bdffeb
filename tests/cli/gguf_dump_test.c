/* CLI tests of gguf-dump: the human and JSON forms of reference files (I2_S, TL1), value
 * formatting (escapes, abbreviation, exact numbers), and the one-line error of a bad file. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "gguf.h"
#include "test_util.h"

static char *unpack_ref(const char *name, const char *dir)
{
	char rel[256], cmd[8192];
	snprintf(rel, sizeof rel, "testdata/reference/%s.gguf.xz", name);
	char *xz = tu_shared(rel);
	char *out = bn_path_join(dir, "ref.gguf");
	snprintf(cmd, sizeof cmd, "xz -dc '%s' > '%s'", xz, out);
	struct tu_run run = tu_sh(cmd);
	cr_assert(eq(int, run.status, 0), "%s: %s", cmd, run.err);
	tu_run_free(&run);
	free(xz);
	return out;
}

static struct tu_run dump(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *bin = tu_bin("gguf-dump");
	const char *argv[] = { bin, a1, a2, a3, a4, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	free(bin);
	return r;
}

/* The line of stdout that contains `needle`, or fails. */
static char *line_with(const char *out, const char *needle)
{
	const char *p = strstr(out, needle);
	cr_assert_not_null(p, "no line with '%s' in:\n%s", needle, out);
	const char *b = p, *e = strchr(p, '\n');
	while (b > out && b[-1] != '\n')
		b--;
	size_t n = e ? (size_t)(e - b) : strlen(b);
	char *line = malloc(n + 1);
	memcpy(line, b, n);
	line[n] = '\0';
	return line;
}

/* Collapses runs of spaces, so that column widths do not matter. */
static void squeeze(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++)
		if (!(*r == ' ' && w > s && w[-1] == ' '))
			*w++ = *r;
	*w = '\0';
}

static void assert_line(const char *out, const char *needle, const char *want)
{
	char *l = line_with(out, needle);
	squeeze(l);
	cr_assert(eq(str, l, (char *)want));
	free(l);
}

Test(gguf_dump, prints_an_i2_s_file_for_humans)
{
	char *dir = tu_mkdtemp("dump_i2s");
	char *path = unpack_ref("tv-f32.i2_s", dir);
	struct tu_run r = dump(path, NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	cr_assert(eq(str, r.err, ""));
	char head[512];
	snprintf(head, sizeof head,
		 "%s: GGUF v3, 469184 bytes, 25 KVs, 24 tensors, alignment 32, data at 8960\n", path);
	cr_assert(eq(int, strncmp(r.out, head, strlen(head)), 0), "%s", r.out);
	assert_line(r.out, "general.file_type", " 10 general.file_type u32 40 (MOSTLY_I2_S)");
	assert_line(r.out, "rope.freq_base", " 8 bitnet.rope.freq_base f32 10000");
	assert_line(r.out, "rms_epsilon", " 9 bitnet.attention.layer_norm_rms_epsilon f32 1e-05");
	assert_line(r.out, "tokenizer.ggml.tokens",
		    " 16 tokenizer.ggml.tokens string[300] [\"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", "
		    "\"<0x01>\", \"<0x02>\", \"<0x03>\", \"<0x04>\", ...]");
	assert_line(r.out, "chat_template",
		    " 23 tokenizer.chat_template string \"{{ messages[0]['content'] }}\"");
	assert_line(r.out, "blk.0.attn_q.weight", " 10 blk.0.attn_q.weight I2_S 256 x 256 281760 16416");
	assert_line(r.out, "output_norm.weight", " 23 output_norm.weight F32 256 459200 1024");
	assert_line(r.out, "token_embd.weight", " 0 token_embd.weight F16 256 x 300 0 153600");
	cr_assert_not_null(strstr(r.out, "\nnote: tensor type ids 36-39 are read as the BitNet fork"));
	tu_run_free(&r);

	r = dump("--no-kv", path, NULL, NULL);
	cr_assert(eq(int, r.status, 0));
	cr_assert_null(strstr(r.out, "general.file_type"));
	cr_assert_not_null(strstr(r.out, "blk.1.attn_v.weight"));
	tu_run_free(&r);
	r = dump("--no-tensors", path, NULL, NULL);
	cr_assert(eq(int, r.status, 0));
	cr_assert_not_null(strstr(r.out, "general.file_type"));
	cr_assert_null(strstr(r.out, "blk.1.attn_v.weight"));
	tu_run_free(&r);
	free(path);
	free(dir);
}

static json_t *parse_json(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "JSON: %s at %d:%d", je.text, je.line, je.column);
	return j;
}

static json_t *kv_named(json_t *kvs, const char *key)
{
	size_t i;
	json_t *kv;
	json_array_foreach(kvs, i, kv) {
		if (strcmp(json_string_value(json_object_get(kv, "key")), key) == 0)
			return kv;
	}
	bool found = false;
	cr_assert(found, "no KV %s", key);
	return NULL;
}

Test(gguf_dump, prints_a_tl1_file_as_json)
{
	char *dir = tu_mkdtemp("dump_tl1");
	char *path = unpack_ref("tv-f32.tl1", dir);
	struct tu_run r = dump("--json", path, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	json_t *j = parse_json(r.out);
	cr_assert(eq(int, (int)json_integer_value(json_object_get(j, "version")), 3));
	cr_assert(eq(i64, json_integer_value(json_object_get(j, "size")), 622752));
	cr_assert(eq(i64, json_integer_value(json_object_get(j, "data_offset")), 8928));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(j, "type_ids")), "bitnet"));
	cr_assert_not_null(json_object_get(j, "note"));
	json_t *kvs = json_object_get(j, "kv"), *ts = json_object_get(j, "tensors");
	cr_assert(eq(sz, json_array_size(kvs), 24));
	cr_assert(eq(sz, json_array_size(ts), 24));

	json_t *ft = kv_named(kvs, "general.file_type");
	cr_assert(eq(str, (char *)json_string_value(json_object_get(ft, "type")), "u32"));
	cr_assert(eq(i64, json_integer_value(json_object_get(ft, "value")), 38));
	json_t *tok = kv_named(kvs, "tokenizer.ggml.tokens");
	cr_assert(eq(str, (char *)json_string_value(json_object_get(tok, "element_type")), "string"));
	cr_assert(eq(i64, json_integer_value(json_object_get(tok, "count")), 300));
	json_t *vals = json_object_get(tok, "value");
	cr_assert(eq(sz, json_array_size(vals), 300)); /* complete, not abbreviated */
	cr_assert(eq(str, (char *)json_string_value(json_array_get(vals, 259)), "<|user|>"));
	json_t *eps = kv_named(kvs, "bitnet.attention.layer_norm_rms_epsilon");
	float e = (float)json_real_value(json_object_get(eps, "value"));
	cr_assert(eq(flt, e, 1e-5f)); /* exact after the round trip through the decimal */
	json_t *bos = kv_named(kvs, "tokenizer.ggml.add_bos_token");
	bool bos_true = json_is_true(json_object_get(bos, "value"));
	cr_assert(bos_true);

	json_t *t = json_array_get(ts, 2);
	cr_assert(eq(str, (char *)json_string_value(json_object_get(t, "name")), "blk.0.ffn_down.weight"));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(t, "type")), "TL1"));
	cr_assert(eq(i64, json_integer_value(json_object_get(t, "type_id")), 38));
	json_t *shape = json_object_get(t, "shape");
	cr_assert(eq(sz, json_array_size(shape), 2));
	cr_assert(eq(i64, json_integer_value(json_array_get(shape, 0)), 512));
	cr_assert(eq(i64, json_integer_value(json_array_get(shape, 1)), 256));
	cr_assert(eq(i64, json_integer_value(json_object_get(t, "offset")), 308224));
	cr_assert(eq(i64, json_integer_value(json_object_get(t, "bytes")), 32800));
	json_decref(j);
	tu_run_free(&r);

	r = dump("--json", "--no-kv", "--no-tensors", path);
	cr_assert(eq(int, r.status, 0));
	j = parse_json(r.out);
	cr_assert_null(json_object_get(j, "kv"));
	cr_assert_null(json_object_get(j, "tensors"));
	cr_assert(eq(i64, json_integer_value(json_object_get(j, "n_tensors")), 24));
	json_decref(j);
	tu_run_free(&r);
	free(path);
	free(dir);
}

/* A file with awkward values: escapes, invalid UTF-8, long strings and arrays, extremes. */
static char *awkward_file(const char *dir)
{
	char *path = bn_path_join(dir, "awkward.gguf");
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	char longs[300];
	memset(longs, 'x', sizeof longs);
	uint8_t many[20];
	for (int i = 0; i < 20; i++)
		many[i] = (uint8_t)i;
	cr_assert(eq(int, gguf_writer_add_strn(w, "s.esc", "a\"b\\c\nd\x01\xff\xc3\xa9", 11, &err), 0));
	cr_assert(eq(int, gguf_writer_add_strn(w, "s.long", longs, sizeof longs, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr(w, "a.many", GGUF_VTYPE_UINT8, many, 20, &err), 0));
	cr_assert(eq(int, gguf_writer_add_u64(w, "n.u64max", UINT64_MAX, &err), 0));
	cr_assert(eq(int, gguf_writer_add_i64(w, "n.i64min", INT64_MIN, &err), 0));
	cr_assert(eq(int, gguf_writer_add_f32(w, "n.nan", NAN, &err), 0));
	cr_assert(eq(int, gguf_writer_add_f64(w, "n.third", 1.0 / 3.0, &err), 0));
	cr_assert(eq(int, gguf_writer_add_f32(w, "n.tenth", 0.1f, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	return path;
}

Test(gguf_dump, escapes_abbreviates_and_keeps_numbers_exact)
{
	char *dir = tu_mkdtemp("dump_awkward");
	char *path = awkward_file(dir);
	struct tu_run r = dump(path, NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	assert_line(r.out, "s.esc", " 0 s.esc string \"a\\\"b\\\\c\\nd\\x01\\xff\xc3\xa9\"");
	char want[256];
	snprintf(want, sizeof want, " 1 s.long string \"%.*s\"... (300 bytes)", 100,
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	assert_line(r.out, "s.long", want);
	assert_line(r.out, "a.many", " 2 a.many u8[20] [0, 1, 2, 3, 4, 5, 6, 7, ...]");
	assert_line(r.out, "n.u64max", " 3 n.u64max u64 18446744073709551615");
	assert_line(r.out, "n.i64min", " 4 n.i64min i64 -9223372036854775808");
	assert_line(r.out, "n.third", " 6 n.third f64 0.3333333333333333");
	assert_line(r.out, "n.tenth", " 7 n.tenth f32 0.1");
	cr_assert_null(strstr(r.out, "note:"), "no fork types, no note");
	tu_run_free(&r);

	r = dump("--json", path, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	json_t *j = parse_json(r.out);
	json_t *kvs = json_object_get(j, "kv");
	const char *esc = json_string_value(json_object_get(kv_named(kvs, "s.esc"), "value"));
	cr_assert(eq(str, (char *)esc, "a\"b\\c\nd\x01\xef\xbf\xbd\xc3\xa9")); /* 0xff -> U+FFFD */
	cr_assert(eq(sz, strlen(json_string_value(json_object_get(kv_named(kvs, "s.long"), "value"))), 300));
	cr_assert(eq(sz, json_array_size(json_object_get(kv_named(kvs, "a.many"), "value")), 20));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(kv_named(kvs, "n.u64max"), "value")),
		     "18446744073709551615"));
	cr_assert(eq(i64, json_integer_value(json_object_get(kv_named(kvs, "n.i64min"), "value")),
		     INT64_MIN));
	cr_assert(eq(str, (char *)json_string_value(json_object_get(kv_named(kvs, "n.nan"), "value")),
		     "nan"));
	cr_assert(eq(dbl, json_real_value(json_object_get(kv_named(kvs, "n.third"), "value")), 1.0 / 3.0));
	cr_assert(eq(flt, (float)json_real_value(json_object_get(kv_named(kvs, "n.tenth"), "value")), 0.1f));
	cr_assert_not_null(strstr(r.out, "\"value\": 0.1\n"), "f32 0.1 printed shortest");
	json_decref(j);
	tu_run_free(&r);
	free(path);
	free(dir);
}

Test(gguf_dump, reports_a_corrupt_file_in_one_line)
{
	char *dir = tu_mkdtemp("dump_bad");
	char *path = unpack_ref("tv-f32.i2_s", dir);
	/* Move blk.0.attn_q.weight (tensor 10, offset 281760) one byte off its alignment. */
	size_t len;
	char *data = tu_read_file(path, &len);
	/* Its offset field is the only 8-byte 281760 in the metadata. */
	uint64_t off = 281760, bad = 281761;
	char *p = memmem(data, 8960, &off, 8);
	cr_assert_not_null(p);
	memcpy(p, &bad, 8);
	char *badpath = bn_path_join(dir, "bad.gguf");
	cr_assert(eq(int, tu_write_file(badpath, data, len), 0));
	struct tu_run r = dump(badpath, NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 1));
	cr_assert(eq(str, r.out, ""));
	char want[512];
	snprintf(want, sizeof want,
		 "gguf-dump: %s: tensor 10 'blk.0.attn_q.weight': offset 281761 is not a multiple of the alignment 32\n",
		 badpath);
	cr_assert(eq(str, r.err, want));
	tu_run_free(&r);
	r = dump("--json", badpath, NULL, NULL);
	cr_assert(eq(int, r.status, 1));
	cr_assert(eq(str, r.out, ""));
	tu_run_free(&r);
	free(badpath);
	free(data);
	free(path);
	free(dir);
}

Test(gguf_dump, usage_errors_exit_2_and_help_exits_0)
{
	struct tu_run r = dump(NULL, NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 2));
	cr_assert_not_null(strstr(r.err, "gguf-dump: missing FILE"));
	tu_run_free(&r);
	r = dump("--frobnicate", "x.gguf", NULL, NULL);
	cr_assert(eq(int, r.status, 2));
	cr_assert_not_null(strstr(r.err, "unknown option '--frobnicate'"));
	tu_run_free(&r);
	r = dump("a.gguf", "b.gguf", NULL, NULL);
	cr_assert(eq(int, r.status, 2));
	tu_run_free(&r);
	r = dump("--help", NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 0));
	cr_assert(eq(int, strncmp(r.out, "usage: gguf-dump", 16), 0));
	cr_assert(eq(str, r.err, ""));
	tu_run_free(&r);
	r = dump("/nonexistent/x.gguf", NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 1));
	cr_assert(eq(str, r.err, "gguf-dump: /nonexistent/x.gguf: cannot open: No such file or directory\n"));
	tu_run_free(&r);
}

Test(gguf_dump, keeps_doubles_that_need_17_digits_exact)
{
	char *dir = tu_mkdtemp("dump_f64");
	char *path = bn_path_join(dir, "f64.gguf");
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert_not_null(w, "%s", err.msg);
	volatile double a = 0.1, b = 0.2;
	double sum = a + b; /* 0.30000000000000004 needs 17 significant digits */
	cr_assert(eq(int, gguf_writer_add_f64(w, "n.sum", sum, &err), 0));
	cr_assert(eq(int, gguf_writer_add_f32(w, "n.tenth", 0.1f, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0));
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	struct tu_run r = dump(path, NULL, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	assert_line(r.out, "n.sum", " 0 n.sum f64 0.30000000000000004");
	tu_run_free(&r);
	r = dump("--json", path, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	json_t *j = parse_json(r.out), *kvs = json_object_get(j, "kv");
	cr_assert(eq(dbl, json_real_value(json_object_get(kv_named(kvs, "n.sum"), "value")), sum));
	cr_assert(eq(flt, (float)json_real_value(json_object_get(kv_named(kvs, "n.tenth"), "value")), 0.1f));
	json_decref(j);
	tu_run_free(&r);
	free(path);
	free(dir);
}

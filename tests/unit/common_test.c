/* Unit tests of the shared core: fp16/bf16, checked parsing, atomic files, hashes, JSON. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_err.h"
#include "bn_file.h"
#include "bn_fp16.h"
#include "bn_hash.h"
#include "bn_json.h"
#include "bn_util.h"
#include "test_util.h"

Test(fp16, round_trips_every_half_value)
{
	for (uint32_t h = 0; h < 65536; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) /* NaN payloads need not survive */
			continue;
		cr_assert(eq(u16, bn_f32_to_f16(bn_f16_to_f32((uint16_t)h)), (uint16_t)h), "h=%04x", h);
	}
}

Test(fp16, rounds_to_nearest_even)
{
	/* 1 + 2^-11 lies exactly between 1.0 (0x3c00) and the next half (0x3c01): ties go to even. */
	cr_assert(eq(u16, bn_f32_to_f16(1.0f + 0x1p-11f), 0x3c00));
	cr_assert(eq(u16, bn_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02));
	cr_assert(eq(u16, bn_f32_to_f16(65520.0f), 0x7c00)); /* overflow to +inf */
	cr_assert(eq(u16, bn_f32_to_f16(-0.0f), 0x8000));
	cr_assert(eq(u16, bn_f32_to_f16(0x1p-24f), 0x0001)); /* smallest subnormal */
	cr_assert(eq(u16, bn_f32_to_f16(0x1p-25f), 0x0000)); /* tie with zero goes to even */
}

Test(bf16, widens_by_shift_and_rounds_to_nearest_even)
{
	cr_assert(eq(u32, bn_f32_bits(bn_bf16_to_f32(0x3f80)), 0x3f800000));
	cr_assert(eq(u16, bn_f32_to_bf16(bn_bits_f32(0x3f808000)), 0x3f80)); /* tie -> even */
	cr_assert(eq(u16, bn_f32_to_bf16(bn_bits_f32(0x3f818000)), 0x3f82));
	cr_assert(eq(u16, bn_f32_to_bf16(bn_bits_f32(0x3f808001)), 0x3f81));
}

Test(parse, accepts_suffixes_and_rejects_garbage)
{
	uint64_t v;
	cr_assert(eq(int, bn_parse_u64("8", &v), 0));
	cr_assert(eq(u64, v, 8));
	cr_assert(eq(int, bn_parse_u64("8G", &v), 0));
	cr_assert(eq(u64, v, 8ull << 30));
	cr_assert(eq(int, bn_parse_u64("2KiB", &v), 0));
	cr_assert(eq(u64, v, 2048));
	cr_assert(eq(int, bn_parse_u64("-1", &v), -1));
	cr_assert(eq(int, bn_parse_u64("12x", &v), -1));
	cr_assert(eq(int, bn_parse_u64("", &v), -1));
	cr_assert(eq(int, bn_parse_u64("99999999999999999999", &v), -1));
	cr_assert(eq(int, bn_parse_u64("20000000T", &v), -1));
	unsigned u;
	cr_assert(eq(int, bn_parse_uint("4", 1, 8, &u), 0));
	cr_assert(eq(int, bn_parse_uint("9", 1, 8, &u), -1));
	cr_assert(eq(int, bn_parse_uint("0", 1, 8, &u), -1));
}

Test(size_math, detects_overflow)
{
	size_t out;
	cr_assert(bn_mul_size(1u << 20, 1u << 20, &out));
	cr_assert_not(bn_mul_size(SIZE_MAX / 2, 3, &out));
	cr_assert_not(bn_add_size(SIZE_MAX, 1, &out));
	uint64_t a;
	cr_assert(bn_align_u64(33, 32, &a));
	cr_assert(eq(u64, a, 64));
	cr_assert_not(bn_align_u64(UINT64_MAX - 3, 32, &a));
}

Test(byte_buffer, appends_grow_and_stay_nul_terminated)
{
	struct bn_buf b = { 0 };
	bn_buf_puts(&b, "");
	cr_assert(eq(sz, b.len, 0));
	cr_assert(eq(str, b.p, ""));
	char chunk[300];
	for (int i = 0; i < 300; i++)
		chunk[i] = (char)('a' + i % 26);
	for (int k = 0; k < 10; k++) /* 3000 bytes: past the first allocation twice */
		bn_buf_put(&b, chunk, sizeof chunk);
	bn_buf_put(&b, "\0x", 2); /* binary data is kept as is */
	cr_assert(eq(sz, b.len, 3002));
	cr_assert(b.cap > b.len && b.p[b.len] == '\0' && !b.oom);
	cr_assert(eq(int, memcmp(b.p + 2700, chunk, 300), 0));
	cr_assert(eq(int, memcmp(b.p + 3000, "\0x", 2), 0));
	/* a size that cannot fit marks the buffer and keeps what it had */
	bn_buf_put(&b, chunk, SIZE_MAX - 8);
	cr_assert(b.oom && b.len == 3002);
	bn_buf_puts(&b, "more");
	cr_assert(eq(sz, b.len, 3002));
	free(b.p);

	/* formatted appends, short and longer than any fixed scratch */
	struct bn_buf f = { 0 };
	bn_buf_printf(&f, "%d-%s", 42, "x");
	bn_buf_printf(&f, "%.*s", 300, chunk);
	cr_assert(eq(sz, f.len, 4 + 300));
	cr_assert(f.p[f.len] == '\0' && !f.oom);
	cr_assert(eq(int, strncmp(f.p, "42-xabc", 7), 0));
	free(f.p);
}

Test(out_file, appears_only_on_commit)
{
	char *dir = tu_mkdtemp("out_file");
	char *path = bn_path_join(dir, "x.bin");
	char *tmp = bn_path_join(dir, "x.bin.tmp");
	struct bn_out o;
	struct bn_err err = { 0 };
	cr_assert(eq(int, bn_out_open(&o, path, &err), 0), "%s", err.msg);
	cr_assert(eq(int, bn_out_write(&o, "hello", 5, &err), 0));
	cr_assert(eq(int, bn_out_zeros(&o, 3, &err), 0));
	cr_assert_not(bn_file_exists(path));
	cr_assert(bn_file_exists(tmp));
	cr_assert(eq(int, bn_out_pwrite(&o, "J", 1, 0, &err), 0));
	cr_assert(eq(int, bn_out_commit(&o, &err), 0), "%s", err.msg);
	cr_assert_not(bn_file_exists(tmp));
	size_t len;
	char *data = tu_read_file(path, &len);
	cr_assert(eq(sz, len, 8));
	cr_assert(eq(int, memcmp(data, "Jello\0\0\0", 8), 0));
	free(data);

	/* An aborted output leaves the previous file alone and no temp file behind. */
	cr_assert(eq(int, bn_out_open(&o, path, &err), 0));
	cr_assert(eq(int, bn_out_write(&o, "partial", 7, &err), 0));
	bn_out_abort(&o);
	data = tu_read_file(path, &len);
	cr_assert(eq(sz, len, 8));
	cr_assert_not(bn_file_exists(tmp));
	free(data);
	free(path);
	free(tmp);
	free(dir);
}

Test(out_file, reports_a_full_disk_in_one_line)
{
	if (access("/dev/full", W_OK) != 0)
		cr_skip_test("no /dev/full");
	/* /dev/full cannot be renamed onto, but a write to it fails with ENOSPC like a full disk. */
	struct bn_out o = { .fd = -1 };
	o.path = strdup("model.gguf");
	o.tmp_path = NULL;
	o.fd = open("/dev/full", O_WRONLY);
	struct bn_err err = { 0 };
	int rc = bn_out_write(&o, "x", 1, &err);
	cr_assert(eq(int, rc, -BN_ENOSPC));
	cr_assert(eq(int, err.code, BN_ENOSPC));
	cr_assert(strstr(err.msg, "disk full") != NULL, "%s", err.msg);
	cr_assert(strchr(err.msg, '\n') == NULL);
	bn_out_abort(&o);
}

Test(write_if_changed, keeps_mtime_of_identical_content)
{
	char *dir = tu_mkdtemp("wic");
	char *path = bn_path_join(dir, "gen.h");
	bool changed;
	cr_assert(eq(int, bn_write_if_changed(path, "abc", 3, &changed, NULL), 0));
	cr_assert(changed);
	struct stat a, b;
	stat(path, &a);
	usleep(20000);
	cr_assert(eq(int, bn_write_if_changed(path, "abc", 3, &changed, NULL), 0));
	cr_assert_not(changed);
	stat(path, &b);
	cr_assert(eq(i64, (int64_t)a.st_mtim.tv_nsec, (int64_t)b.st_mtim.tv_nsec));
	cr_assert(eq(int, bn_write_if_changed(path, "abd", 3, &changed, NULL), 0));
	cr_assert(changed);
	free(path);
	free(dir);
}

Test(hash, known_answers)
{
	char hex[BN_SHA256_HEX];
	bn_sha256_buf("abc", 3, hex);
	cr_assert(eq(str, hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	char x[BN_XXH128_HEX];
	bn_xxh128_buf("", 0, x);
	cr_assert(eq(str, x, "99aa06d3014798d86001c324468d497f"));
	char *dir = tu_mkdtemp("hash");
	char *path = bn_path_join(dir, "abc");
	tu_write_file(path, "abc", 3);
	char f[BN_SHA256_HEX];
	cr_assert(eq(int, bn_sha256_file(path, f, NULL), 0));
	cr_assert(eq(str, f, hex));
	free(path);
	free(dir);
}

Test(json, errors_name_the_position)
{
	struct bn_err err = { 0 };
	json_t *j = bn_json_parse("{\"a\": 1,}", 9, "config.json", &err);
	cr_assert_null(j);
	cr_assert(strstr(err.msg, "config.json:1:") == err.msg, "%s", err.msg);
	j = bn_json_parse("{\"a\": 1, \"a\": 2}", 16, "h", &err);
	cr_assert_null(j, "duplicate keys must be rejected");
	j = bn_json_parse("{\"a\": [1, 2]}", 13, "h", &err);
	cr_assert_not_null(j);
	json_decref(j);
}

Test(err, prefix_and_errno)
{
	struct bn_err err = { 0 };
	cr_assert(eq(int, bn_seterrno(&err, ENOSPC, "%s: write", "f"), -BN_ENOSPC));
	cr_assert(eq(str, err.msg, "f: write: No space left on device"));
	bn_err_prefix(&err, "step %d", 3);
	cr_assert(eq(str, err.msg, "step 3: f: write: No space left on device"));
}

/* Names in messages come from files: a newline or other control byte in one must not split the
 * error line (found by the safetensors fuzzer: a __metadata__ key with "\n"). */
Test(err, messages_stay_one_line_whatever_the_names)
{
	struct bn_err err = { 0 };
	bn_seterr(&err, BN_EFORMAT, "%s: not a string", "emb\ns.weight\r\t\x7f");
	cr_assert(eq(str, err.msg, "emb?s.weight???: not a string"));
	bn_seterrno(&err, ENOENT, "%s", "a\nb");
	cr_assert(eq(str, err.msg, "a?b: No such file or directory"));
	bn_err_prefix(&err, "in\n%s", "c");
	cr_assert(eq(str, err.msg, "in?c: a?b: No such file or directory"));
}

/* Unit tests of the SentencePiece tokenizer.model reader/writer: round trip, protobuf details
 * (defaults, unknown fields of every wire type), and malformed inputs. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fp16.h"
#include "spm.h"

#define HAS(msg, s) cr_assert(strstr((msg), (s)) != NULL, "'%s' lacks '%s'", (msg), (s))

Test(spm, round_trips_pieces_scores_types_and_specs)
{
	struct spm_piece in[4] = {
		{ "<unk>", 5, 0.0f, SPM_UNKNOWN },
		{ "\xe2\x96\x81the", 6, -1.5f, SPM_NORMAL },
		{ "a\0b", 3, -0.0f, SPM_USER_DEFINED },
		{ "<0x0A>", 6, 0.0f, SPM_BYTE },
	};
	struct spm_write_opts o = { .model_type = 2, .byte_fallback = true, .normalizer_name = "identity",
				    .add_dummy_prefix = true, .remove_extra_whitespaces = false };
	uint8_t *buf;
	size_t len;
	struct bn_err err = { 0 };
	cr_assert(eq(int, spm_serialize(in, 4, &o, &buf, &len, &err), 0));
	/* first piece: 0a 0e | 0a 05 "<unk>" | 15 00000000 | 18 02 */
	const uint8_t head[] = { 0x0a, 0x0e, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x15, 0, 0, 0, 0, 0x18, 0x02 };
	cr_assert(eq(int, memcmp(buf, head, sizeof head), 0));
	struct spm_model m;
	cr_assert(eq(int, spm_parse(&m, buf, len, "t", &err), 0), "%s", err.msg);
	cr_assert(eq(sz, m.n_pieces, 4));
	for (int i = 0; i < 4; i++) {
		cr_assert(eq(sz, m.pieces[i].len, in[i].len));
		cr_assert(eq(int, memcmp(m.pieces[i].piece, in[i].piece, in[i].len), 0));
		cr_assert(eq(u32, bn_f32_bits(m.pieces[i].score), bn_f32_bits(in[i].score)), "piece %d", i);
		cr_assert(eq(int, m.pieces[i].type, in[i].type));
	}
	cr_assert(eq(int, m.model_type, 2));
	cr_assert(eq(i64, m.vocab_size, 4));
	cr_assert(eq(int, m.byte_fallback, 1));
	cr_assert(eq(str, m.normalizer_name, "identity"));
	cr_assert(eq(int, m.add_dummy_prefix, 1));
	cr_assert(eq(int, m.remove_extra_whitespaces, 0));
	spm_free(&m);
	free(buf);
}

Test(spm, applies_defaults_and_skips_unknown_fields)
{
	/* field 5 varint, field 6 64-bit, field 7 bytes, field 9 32-bit at top level; inside the
	 * piece an unknown field 4 (bytes) and no score/type: score 0, type NORMAL. */
	const uint8_t f[] = {
		0x28, 0x96, 0x01,                                       /* 5: varint 150 */
		0x31, 1, 2, 3, 4, 5, 6, 7, 8,                           /* 6: fixed64 */
		0x3a, 0x02, 'h', 'i',                                   /* 7: bytes */
		0x4d, 1, 2, 3, 4,                                       /* 9: fixed32 */
		0x0a, 0x07, 0x0a, 0x01, 'x', 0x22, 0x02, 'z', 'z',      /* piece "x" + field 4 */
		0x12, 0x00,                                             /* empty trainer_spec */
	};
	struct spm_model m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, spm_parse(&m, f, sizeof f, "t", &err), 0), "%s", err.msg);
	cr_assert(eq(sz, m.n_pieces, 1));
	cr_assert(eq(str, (char *)m.pieces[0].piece, "x"));
	cr_assert(eq(flt, m.pieces[0].score, 0.0f));
	cr_assert(eq(int, m.pieces[0].type, SPM_NORMAL));
	cr_assert(eq(int, m.model_type, -1));
	cr_assert_null(m.normalizer_name);
	spm_free(&m);
}

static void reject(const uint8_t *b, size_t n, const char *what)
{
	struct spm_model m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, spm_parse(&m, b, n, "tokenizer.model", &err), -BN_EFORMAT),
		  "accepted: expected '%s'", what);
	cr_assert(strncmp(err.msg, "tokenizer.model: ", 17) == 0, "%s", err.msg);
	cr_assert(strchr(err.msg, '\n') == NULL);
	HAS(err.msg, what);
}

Test(spm, rejects_malformed_protobuf)
{
	reject((const uint8_t *)"", 0, "no pieces");
	const uint8_t trunc_len[] = { 0x0a, 0x10, 0x0a, 0x01 };
	reject(trunc_len, sizeof trunc_len, "truncated or malformed");
	const uint8_t trunc_varint[] = { 0x0a, 0x80 };
	reject(trunc_varint, sizeof trunc_varint, "truncated or malformed");
	const uint8_t long_varint[] = { 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	reject(long_varint, sizeof long_varint, "malformed");
	const uint8_t group[] = { 0x0b };
	reject(group, sizeof group, "malformed");
	const uint8_t wrong_wt[] = { 0x08, 0x01 };
	reject(wrong_wt, sizeof wrong_wt, "pieces field has wire type varint");
	const uint8_t bad_type[] = { 0x0a, 0x05, 0x0a, 0x01, 'x', 0x18, 0x07 };
	reject(bad_type, sizeof bad_type, "piece 0: unknown type 7");
	const uint8_t bad_score[] = { 0x0a, 0x05, 0x0a, 0x01, 'x', 0x10, 0x01 };
	reject(bad_score, sizeof bad_score, "piece 0: score has wire type varint");
	const uint8_t bad_piece[] = { 0x0a, 0x04, 0x0d, 1, 2, 3 };
	reject(bad_piece, sizeof bad_piece, "piece 0: byte 2: truncated");
	const uint8_t bad_spec[] = { 0x0a, 0x03, 0x0a, 0x01, 'x', 0x12, 0x02, 0x18, 0x80 };
	reject(bad_spec, sizeof bad_spec, "trainer_spec: truncated");
}

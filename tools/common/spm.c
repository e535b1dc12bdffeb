/* SentencePiece ModelProto reader/writer (see spm.h).  Invariant: every read is preceded by a
 * check that the bytes are inside the current message's bounds. */
#include "spm.h"

#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_util.h"

/* A protobuf message being read: [p, end). */
struct rd {
	const uint8_t *p, *end;
};

static bool varint(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return false;
		uint8_t b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false; /* more than 10 bytes */
}

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Reads a field's payload according to its wire type: a varint value, or a sub-range for
 * length-delimited fields; fixed-size fields are returned as a sub-range too. */
static bool field(struct rd *r, unsigned wt, uint64_t *v, struct rd *sub)
{
	uint64_t n;
	switch (wt) {
	case WT_VARINT:
		return varint(r, v);
	case WT_I64:
		n = 8;
		break;
	case WT_I32:
		n = 4;
		break;
	case WT_LEN:
		if (!varint(r, &n))
			return false;
		break;
	default: /* 3/4 (groups, deprecated) and 6/7 are not used by sentencepiece */
		return false;
	}
	if (n > (uint64_t)(r->end - r->p))
		return false;
	sub->p = r->p;
	sub->end = r->p + n;
	r->p += n;
	return true;
}

static const char *wt_name(unsigned wt)
{
	static const char *const names[] = { "varint", "64-bit", "length-delimited", "group start",
					     "group end", "32-bit", "6", "7" };
	return names[wt & 7];
}

/* One pass over a ModelProto.  With m->pieces == NULL it only counts pieces and string bytes;
 * with them allocated it fills them. */
static int walk(struct spm_model *m, const uint8_t *buf, size_t len, const char *what,
		size_t *n_pieces, size_t *str_bytes, struct bn_err *err)
{
	struct rd r = { buf, buf + len };
	size_t np = 0, sb = 0;
	char *arena = m->arena;
	while (r.p < r.end) {
		uint64_t key, v = 0;
		struct rd sub = { 0 };
		size_t at = (size_t)(r.p - buf);
		if (!varint(&r, &key) || !field(&r, key & 7, &v, &sub))
			return bn_seterr(err, BN_EFORMAT, "%s: byte %zu: truncated or malformed "
					 "protobuf field (not a SentencePiece tokenizer.model?)", what, at);
		uint64_t num = key >> 3;
		unsigned wt = key & 7;
		if (num == 1) { /* pieces */
			if (wt != WT_LEN)
				return bn_seterr(err, BN_EFORMAT, "%s: byte %zu: pieces field has wire "
						 "type %s, expected length-delimited", what, at,
						 wt_name(wt));
			if (np >= SPM_MAX_PIECES)
				return bn_seterr(err, BN_EFORMAT, "%s: more than %u pieces", what,
						 SPM_MAX_PIECES);
			struct spm_piece pc = { .piece = "", .len = 0, .score = 0.0f,
						.type = SPM_NORMAL };
			struct rd s = { 0 };
			bool have_piece = false;
			while (sub.p < sub.end) {
				uint64_t k2, v2 = 0;
				struct rd f = { 0 };
				size_t at2 = (size_t)(sub.p - buf);
				if (!varint(&sub, &k2) || !field(&sub, k2 & 7, &v2, &f))
					return bn_seterr(err, BN_EFORMAT, "%s: piece %zu: byte %zu: "
							 "truncated or malformed field", what, np, at2);
				unsigned w2 = k2 & 7;
				switch (k2 >> 3) {
				case 1:
					if (w2 != WT_LEN)
						return bn_seterr(err, BN_EFORMAT, "%s: piece %zu: "
								 "piece string has wire type %s", what,
								 np, wt_name(w2));
					s = f;
					have_piece = true;
					break;
				case 2:
					if (w2 != WT_I32)
						return bn_seterr(err, BN_EFORMAT, "%s: piece %zu: score has "
								 "wire type %s, expected 32-bit", what,
								 np, wt_name(w2));
					memcpy(&pc.score, f.p, 4); /* little-endian hosts only */
					break;
				case 3:
					if (w2 != WT_VARINT)
						return bn_seterr(err, BN_EFORMAT, "%s: piece %zu: type has "
								 "wire type %s, expected varint", what,
								 np, wt_name(w2));
					if (v2 < SPM_NORMAL || v2 > SPM_BYTE)
						return bn_seterr(err, BN_EFORMAT, "%s: piece %zu: unknown "
								 "type %llu (1..6 are defined)", what, np,
								 (unsigned long long)v2);
					pc.type = (enum spm_type)v2;
					break;
				default:
					break; /* unknown field: skipped */
				}
			}
			size_t l = have_piece ? (size_t)(s.end - s.p) : 0;
			if (m->pieces) {
				memcpy(arena, have_piece ? (const char *)s.p : "", l);
				arena[l] = '\0';
				pc.piece = arena;
				pc.len = l;
				arena += l + 1;
				m->pieces[np] = pc;
			}
			sb += l + 1;
			np++;
		} else if ((num == 2 || num == 3) && wt == WT_LEN) { /* trainer / normalizer spec */
			while (sub.p < sub.end) {
				uint64_t k2, v2 = 0;
				struct rd f = { 0 };
				if (!varint(&sub, &k2) || !field(&sub, k2 & 7, &v2, &f))
					return bn_seterr(err, BN_EFORMAT, "%s: %s: truncated or "
							 "malformed field", what, num == 2 ?
							 "trainer_spec" : "normalizer_spec");
				unsigned w2 = k2 & 7;
				uint64_t n2 = k2 >> 3;
				if (!m->pieces)
					continue;
				if (num == 2 && w2 == WT_VARINT) {
					if (n2 == 3)
						m->model_type = (int)(v2 & 0xff);
					else if (n2 == 4)
						m->vocab_size = (int64_t)(int32_t)v2;
					else if (n2 == 35)
						m->byte_fallback = v2 != 0;
				} else if (num == 3 && w2 == WT_VARINT) {
					if (n2 == 3)
						m->add_dummy_prefix = v2 != 0;
					else if (n2 == 4)
						m->remove_extra_whitespaces = v2 != 0;
				} else if (num == 3 && n2 == 1 && w2 == WT_LEN) {
					size_t l = (size_t)(f.end - f.p);
					char *nm = malloc(l + 1);
					if (!nm)
						return bn_seterr(err, BN_ENOMEM, "out of memory");
					memcpy(nm, f.p, l);
					nm[l] = '\0';
					free(m->normalizer_name);
					m->normalizer_name = nm;
				}
			}
		}
		/* every other field (self_test_data, denormalizer_spec, ...) is skipped */
	}
	*n_pieces = np;
	*str_bytes = sb;
	return 0;
}

int spm_parse(struct spm_model *m, const uint8_t *buf, size_t len, const char *what,
	      struct bn_err *err)
{
	memset(m, 0, sizeof *m);
	m->model_type = m->byte_fallback = m->add_dummy_prefix = m->remove_extra_whitespaces = -1;
	m->vocab_size = -1;
	size_t np, sb;
	int rc = walk(m, buf, len, what, &np, &sb, err);
	if (rc)
		return rc;
	if (np == 0)
		return bn_seterr(err, BN_EFORMAT, "%s: no pieces; not a SentencePiece tokenizer.model",
				 what);
	m->pieces = calloc(np, sizeof *m->pieces);
	m->arena = malloc(sb);
	if (!m->pieces || !m->arena) {
		spm_free(m);
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", what);
	}
	rc = walk(m, buf, len, what, &np, &sb, err);
	if (rc) {
		spm_free(m);
		return rc;
	}
	m->n_pieces = np;
	return 0;
}

int spm_load(struct spm_model *m, const char *path, struct bn_err *err)
{
	memset(m, 0, sizeof *m);
	struct bn_map map;
	int rc = bn_map_open(&map, path, err);
	if (rc)
		return rc;
	if (map.size > SPM_MAX_FILE) {
		bn_map_close(&map);
		return bn_seterr(err, BN_EFORMAT, "%s: %zu bytes, more than a tokenizer.model may have "
				 "(%u)", path, map.size, SPM_MAX_FILE);
	}
	rc = spm_parse(m, map.data, map.size, path, err);
	bn_map_close(&map);
	return rc;
}

void spm_free(struct spm_model *m)
{
	if (!m)
		return;
	free(m->pieces);
	free(m->arena);
	free(m->normalizer_name);
	memset(m, 0, sizeof *m);
}

/* ---- writing -------------------------------------------------------------------------------- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void wvarint(struct bn_buf *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	bn_buf_put(w, b, n);
}

static void wkey(struct bn_buf *w, unsigned num, unsigned wt)
{
	wvarint(w, (uint64_t)num << 3 | wt);
}

static size_t piece_len(const struct spm_piece *p)
{
	size_t n = 1 + varint_len(p->len) + p->len + 1 + 4;
	if (p->type != SPM_NORMAL)
		n += 1 + varint_len((uint64_t)p->type);
	return n;
}

int spm_serialize(const struct spm_piece *pieces, size_t n, const struct spm_write_opts *opts,
		  uint8_t **out, size_t *out_len, struct bn_err *err)
{
	struct bn_buf w = { 0 };
	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < n; i++) {
		const struct spm_piece *p = &pieces[i];
		wkey(&w, 1, WT_LEN);
		wvarint(&w, piece_len(p));
		wkey(&w, 1, WT_LEN);
		wvarint(&w, p->len);
		bn_buf_put(&w, p->piece, p->len);
		wkey(&w, 2, WT_I32);
		bn_buf_put(&w, &p->score, 4); /* little-endian hosts only */
		if (p->type != SPM_NORMAL) {
			wkey(&w, 3, WT_VARINT);
			wvarint(&w, (uint64_t)p->type);
		}
	}
	/* trainer_spec */
	size_t tl = 1 + varint_len(n);
	if (opts->model_type > 0)
		tl += 1 + varint_len((uint64_t)opts->model_type);
	if (opts->byte_fallback)
		tl += 2 + 1;
	wkey(&w, 2, WT_LEN);
	wvarint(&w, tl);
	if (opts->model_type > 0) {
		wkey(&w, 3, WT_VARINT);
		wvarint(&w, (uint64_t)opts->model_type);
	}
	wkey(&w, 4, WT_VARINT);
	wvarint(&w, n);
	if (opts->byte_fallback) {
		wkey(&w, 35, WT_VARINT);
		wvarint(&w, 1);
	}
	/* normalizer_spec */
	if (opts->normalizer_name) {
		size_t nl = strlen(opts->normalizer_name);
		wkey(&w, 3, WT_LEN);
		wvarint(&w, 1 + varint_len(nl) + nl + 2 + 2);
		wkey(&w, 1, WT_LEN);
		wvarint(&w, nl);
		bn_buf_put(&w, opts->normalizer_name, nl);
		wkey(&w, 3, WT_VARINT);
		wvarint(&w, opts->add_dummy_prefix);
		wkey(&w, 4, WT_VARINT);
		wvarint(&w, opts->remove_extra_whitespaces);
	}
	if (w.oom) {
		free(w.p);
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	}
	*out = (uint8_t *)w.p;
	*out_len = w.len;
	return 0;
}

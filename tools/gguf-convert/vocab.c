/* Tokenizer export (convert-quantize.md §6): SentencePiece tokenizer.model (§6.1), byte-level
 * BPE tokenizer.json (§6.3) and gguf-py's SpecialVocab (§6.4).  Invariant: tokens, types, scores
 * and the order of the special-token KVs are exactly what the reference converter writes; every
 * count and id read from the files is range-checked before use. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "bn_file.h"
#include "bn_json.h"
#include "bn_log.h"
#include "bn_util.h"
#include "convert.h"
#include "spm.h"

#define MAX_JSON (512u << 20)    /* tokenizer.json of a 256K vocabulary is ~20 MB */
#define MAX_SMALL_JSON (64u << 20)
#define MAX_TEMPLATE (16u << 20)  /* a chat template is a few kB, the largest seen ~100 kB */
#define MAX_EXTRA_TEMPLATES 64    /* files in additional_chat_templates/ */

static const char *const special_name[CV_N_SPECIAL] = { "bos", "eos", "unk", "sep",
							 "pad", "cls", "mask" };
/* gguf-py key names (sic "seperator") */
static const char *const special_key[CV_N_SPECIAL] = {
	"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
	"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
	"tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
	"tokenizer.ggml.mask_token_id",
};

/* ---- a string arena ------------------------------------------------------------------------ */

struct blk {
	struct blk *next;
	size_t used, cap;
	char data[];
};

static char *arena_dup(struct cv_vocab *v, const char *s, size_t n)
{
	struct blk *b = v->arena;
	if (!b || b->cap - b->used < n + 1) {
		size_t cap = BN_MAX(n + 1, (size_t)1 << 20);
		struct blk *nb = malloc(sizeof *nb + cap);
		if (!nb)
			return NULL;
		nb->next = b;
		nb->used = 0;
		nb->cap = cap;
		v->arena = b = nb;
	}
	char *p = b->data + b->used;
	memcpy(p, s, n);
	p[n] = '\0';
	b->used += n + 1;
	return p;
}

void cv_vocab_free(struct cv_vocab *v)
{
	if (!v)
		return;
	for (struct blk *b = v->arena, *nx; b; b = nx) {
		nx = b->next;
		free(b);
	}
	free(v->tok);
	free(v->len);
	free(v->scores);
	free(v->types);
	free(v->merges);
	free(v->template_name);
	free(v->template_text);
	memset(v, 0, sizeof *v);
}

static int alloc_tokens(struct cv_vocab *v, size_t n, bool scores, struct bn_err *err)
{
	v->n = n;
	v->tok = calloc(n ? n : 1, sizeof *v->tok);
	v->len = calloc(n ? n : 1, sizeof *v->len);
	v->types = calloc(n ? n : 1, sizeof *v->types);
	v->scores = scores ? calloc(n ? n : 1, sizeof *v->scores) : NULL;
	if (!v->tok || !v->len || !v->types || (scores && !v->scores))
		return bn_seterr(err, BN_ENOMEM, "out of memory for %zu tokens", n);
	return 0;
}

static int set_token(struct cv_vocab *v, size_t i, const char *s, size_t n, struct bn_err *err)
{
	if (!(v->tok[i] = arena_dup(v, s, n)))
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	v->len[i] = n;
	return 0;
}

/* ---- a set of byte strings (SentencePiece added_tokens.json membership) ------------------- */

struct strset {
	const char **s;
	size_t *n;
	size_t cap;
};

static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

/* true if (s, n) was not in the set (and is now). */
static bool set_add(struct strset *st, const char *s, size_t n)
{
	size_t i = fnv(s, n) & (st->cap - 1);
	while (st->s[i]) {
		if (st->n[i] == n && memcmp(st->s[i], s, n) == 0)
			return false;
		i = (i + 1) & (st->cap - 1);
	}
	st->s[i] = s;
	st->n[i] = n;
	return true;
}

/* ---- SentencePiece (§6.1) ------------------------------------------------------------------ */

int cv_vocab_spm(struct cv_vocab *v, const uint8_t *buf, size_t len, const json_t *added,
		 uint32_t vocab_size, struct bn_err *err)
{
	struct spm_model m;
	struct strset set = { 0 };
	int rc = spm_parse(&m, buf, len, "tokenizer.model", err);
	if (rc)
		return rc;
	v->model = "llama";
	snprintf(v->pre, sizeof v->pre, "default");
	size_t n_added = json_is_object(added) ? json_object_size(added) : 0;
	size_t n = m.n_pieces + n_added;
	if (n < vocab_size)
		n = vocab_size;
	if ((rc = alloc_tokens(v, n, true, err)))
		goto out;
	set.cap = 16;
	while (set.cap < 2 * n)
		set.cap <<= 1;
	set.s = calloc(set.cap, sizeof *set.s);
	set.n = calloc(set.cap, sizeof *set.n);
	if (!set.s || !set.n) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < m.n_pieces; i++, k++) {
		const struct spm_piece *p = &m.pieces[i];
		if ((rc = set_token(v, k, p->piece, p->len, err)))
			goto out;
		set_add(&set, v->tok[k], p->len);
		v->scores[k] = p->score;
		v->types[k] = p->type == SPM_UNKNOWN ? 2 : p->type == SPM_CONTROL ? 3 :
			      p->type == SPM_UNUSED ? 5 : p->type == SPM_BYTE ? 6 : 1;
	}
	if (n_added) {
		const char *key;
		const json_t *val;
		json_object_foreach((json_t *)added, key, val) {
			(void)val;
			size_t kl = strlen(key);
			if ((rc = set_token(v, k, key, kl, err)))
				goto out;
			if (!set_add(&set, v->tok[k], kl))
				continue; /* already a token: the slot is reused */
			v->scores[k] = -1000.0f;
			v->types[k] = 4;
			k++;
		}
	}
	if (k > vocab_size) {
		rc = bn_seterr(err, BN_EFORMAT, "tokenizer.model: %zu tokens (added_tokens.json "
			       "included) but config.json vocab_size is %u", k, vocab_size);
		goto out;
	}
	for (size_t i = 1; k < vocab_size; i++, k++) {
		char pad[32];
		int pl = snprintf(pad, sizeof pad, "[PAD%zu]", i);
		if ((rc = set_token(v, k, pad, (size_t)pl, err)))
			goto out;
		v->scores[k] = -1000.0f;
		v->types[k] = 5;
	}
	v->n = k;
out:
	free(set.s);
	free(set.n);
	spm_free(&m);
	return rc;
}

/* ---- byte-level BPE tokenizer.json (§6.3) --------------------------------------------------- */

/* GPT-2's byte <-> printable code point table: printable bytes map to themselves, the other 68
 * to U+0100 + their rank. byte_of[cp] = byte + 1, 0 if cp is not in the table. */
static void byte_table(uint16_t byte_of[324])
{
	memset(byte_of, 0, 324 * sizeof *byte_of);
	unsigned extra = 0;
	for (unsigned b = 0; b < 256; b++) {
		bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
		unsigned cp = printable ? b : 256 + extra++;
		byte_of[cp] = (uint16_t)(b + 1);
	}
}

/* Decodes one UTF-8 sequence at s (valid UTF-8, as jansson guarantees); returns its length. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80 || n < 2) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && n >= 3) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	if (n >= 4) {
		*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		return 4;
	}
	*cp = s[0];
	return 1;
}

/* Length of the valid UTF-8 sequence at s, or 0 and in *bad the length of the maximal invalid
 * prefix to replace by one U+FFFD (the WHATWG / Rust from_utf8_lossy rule). */
static size_t utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else {
		*bad = 1;
		return 0;
	}
	for (size_t i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

/* decode(encode(content)) for a non-special added token: the ByteLevel decoder maps each char
 * back to its byte (content unchanged if any char is outside the table), then the bytes are read
 * as UTF-8 with invalid sequences replaced by U+FFFD.  Result in out (4·len + 1 bytes). */
static size_t bytelevel_decode(const char *content, size_t len, const uint16_t byte_of[324],
			       char *out)
{
	unsigned char *tmp = (unsigned char *)out + 3 * len; /* bytes never outnumber chars */
	size_t nb = 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		i += utf8_next((const unsigned char *)content + i, len - i, &cp);
		if (cp >= 324 || !byte_of[cp]) {
			memmove(out, content, len);
			return len;
		}
		tmp[nb++] = (unsigned char)(byte_of[cp] - 1);
	}
	size_t o = 0;
	for (size_t i = 0; i < nb;) {
		size_t bad = 0, ok = utf8_valid(tmp + i, nb - i, &bad);
		if (ok) {
			memmove(out + o, tmp + i, ok);
			o += ok;
			i += ok;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i += bad;
		}
	}
	return o;
}

int cv_vocab_bpe(struct cv_vocab *v, const json_t *tj, uint32_t vocab_size, struct bn_err *err)
{
	const char *what = "tokenizer.json";
	const json_t *model = json_object_get(tj, "model");
	if (!json_is_object(model))
		return bn_seterr(err, BN_EFORMAT, "%s: no \"model\" object", what);
	const json_t *ty = json_object_get(model, "type");
	if (ty && !(json_is_string(ty) && strcmp(json_string_value(ty), "BPE") == 0))
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: model type %s is not supported (only "
				 "byte-level BPE; SentencePiece models need tokenizer.model)", what,
				 json_is_string(ty) ? json_string_value(ty) : "(not a string)");
	if (json_is_true(json_object_get(model, "byte_fallback")))
		return bn_seterr(err, BN_EUNSUPPORTED, "%s: a BPE tokenizer with byte_fallback "
				 "(SentencePiece-style, convert-quantize.md §6.2) is not supported "
				 "without tokenizer.model", what);
	const json_t *vocab = json_object_get(model, "vocab");
	if (!json_is_object(vocab))
		return bn_seterr(err, BN_EFORMAT, "%s: model.vocab is not an object", what);
	const json_t *added = json_object_get(tj, "added_tokens");
	if (added && !json_is_array(added))
		return bn_seterr(err, BN_EFORMAT, "%s: added_tokens is not a list", what);
	v->model = "gpt2";
	int rc = alloc_tokens(v, vocab_size, false, err);
	if (rc)
		return rc;
	/* by id: the vocab string, or the added token (which wins: it is what that id decodes to) */
	const char **text = calloc(vocab_size, sizeof *text);
	size_t *tlen = calloc(vocab_size, sizeof *tlen);
	signed char *special = calloc(vocab_size, 1); /* -1 vocab, 0 added, 1 added special */
	char *buf = NULL;
	if (!text || !tlen || !special) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)vocab, key, val) {
		json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
		if (id < 0) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: model.vocab[\"%.40s\"] is not a "
				       "non-negative integer id", what, key);
			goto out;
		}
		if (id >= (json_int_t)vocab_size) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: token id %lld is not below config.json "
				       "vocab_size %u", what, (long long)id, vocab_size);
			goto out;
		}
		if (text[id]) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: token id %lld is used twice in "
				       "model.vocab", what, (long long)id);
			goto out;
		}
		text[id] = key;
		tlen[id] = strlen(key);
		special[id] = -1;
	}
	size_t n_add = added ? json_array_size(added) : 0;
	for (size_t i = 0; i < n_add; i++) {
		const json_t *at = json_array_get(added, i);
		const json_t *jid = json_object_get(at, "id"), *jc = json_object_get(at, "content");
		if (!json_is_integer(jid) || !json_is_string(jc)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: added_tokens[%zu] needs an integer "
				       "\"id\" and a string \"content\"", what, i);
			goto out;
		}
		json_int_t id = json_integer_value(jid);
		if (id < 0 || id >= (json_int_t)vocab_size) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: added token id %lld is not below "
				       "config.json vocab_size %u", what, (long long)id, vocab_size);
			goto out;
		}
		text[id] = json_string_value(jc);
		tlen[id] = json_string_length(jc);
		special[id] = json_is_true(json_object_get(at, "special")) ? 1 : 0;
	}
	uint16_t byte_of[324];
	byte_table(byte_of);
	size_t cap = 0;
	for (uint32_t i = 0; i < vocab_size; i++) {
		if (!text[i]) {
			char pad[32];
			int pl = snprintf(pad, sizeof pad, "[PAD%u]", i);
			rc = set_token(v, i, pad, (size_t)pl, err);
			v->types[i] = 4;
		} else if (special[i] == 1) {
			rc = set_token(v, i, text[i], tlen[i], err);
			v->types[i] = 3;
		} else if (special[i] == 0) {
			if (4 * tlen[i] + 1 > cap) {
				cap = 4 * tlen[i] + 64;
				char *nb = realloc(buf, cap);
				if (!nb) {
					rc = bn_seterr(err, BN_ENOMEM, "out of memory");
					goto out;
				}
				buf = nb;
			}
			size_t dl = bytelevel_decode(text[i], tlen[i], byte_of, buf);
			rc = set_token(v, i, buf, dl, err);
			v->types[i] = 4;
		} else {
			rc = set_token(v, i, text[i], tlen[i], err);
			v->types[i] = 1;
		}
		if (rc)
			goto out;
	}
out:
	free(text);
	free(tlen);
	free(special);
	free(buf);
	return rc;
}

/* ---- the pre-tokenizer table ------------------------------------------------------------------ */

/* Llama-3's split regex (as tokenizer.json stores it). */
static const char llama3_regex[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
	"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char cv_pre_names[] = "llama-bpe (Llama-3, BitNet-b1.58-2B-4T), falcon3 "
			    "(Falcon3-*-1.58bit), falcon_e (Falcon-E)";

static bool contains_string(const json_t *j, const char *s)
{
	if (json_is_string(j))
		return strcmp(json_string_value(j), s) == 0;
	if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++)
			if (contains_string(json_array_get(j, i), s))
				return true;
	} else if (json_is_object(j)) {
		const char *k;
		const json_t *val;
		json_object_foreach((json_t *)j, k, val)
			if (contains_string(val, s))
				return true;
	}
	return false;
}

static bool icontains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; hay && *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* tokenizer.ggml.pre by model family (the reference hashes a tokenization, §6.3): the model's
 * name says Falcon-E or Falcon3; otherwise Llama-3's split regex says llama-bpe. */
static int choose_pre(struct cv_vocab *v, const json_t *tj, const json_t *config,
		      const struct cv_vocab_opts *o, struct bn_err *err)
{
	if (o && o->pre) {
		snprintf(v->pre, sizeof v->pre, "%s", o->pre);
		return 0;
	}
	const json_t *np = json_object_get(config, "_name_or_path");
	const char *names[2] = { o ? o->model_name : NULL,
				 json_is_string(np) ? json_string_value(np) : NULL };
	for (int i = 0; i < 2; i++) {
		if (icontains(names[i], "falcon-e") || icontains(names[i], "falcon_e")) {
			snprintf(v->pre, sizeof v->pre, "falcon_e");
			return 0;
		}
		if (icontains(names[i], "falcon3")) {
			snprintf(v->pre, sizeof v->pre, "falcon3");
			return 0;
		}
	}
	if (contains_string(json_object_get(tj, "pre_tokenizer"), llama3_regex)) {
		snprintf(v->pre, sizeof v->pre, "llama-bpe");
		return 0;
	}
	return bn_seterr(err, BN_EUNSUPPORTED, "tokenizer.json: cannot tell which pre-tokenizer "
			 "this BPE tokenizer uses; pass --pre NAME (known: %s)", cv_pre_names);
}

/* ---- SpecialVocab (§6.4) --------------------------------------------------------------------- */

static int set_special(struct cv_vocab *v, enum cv_special typ, const json_t *id, size_t n_vocab,
		       const char *from, struct bn_err *err)
{
	json_int_t tid;
	if (json_is_integer(id))
		tid = json_integer_value(id);
	else if (json_is_boolean(id)) /* Python: bool is an int */
		tid = json_is_true(id);
	else
		return 0;
	if (tid < 0)
		return bn_seterr(err, BN_EFORMAT, "%s: invalid value for special token type %s: "
				 "%lld", from, special_name[typ], (long long)tid);
	if (n_vocab && (uint64_t)tid >= n_vocab) {
		bn_warn("%s: special token type %s, id %lld out of range, must be under %zu - "
			"skipping", from, special_name[typ], (long long)tid, n_vocab);
		return 0;
	}
	if (tid > UINT32_MAX)
		return bn_seterr(err, BN_EFORMAT, "%s: %s token id %lld does not fit a u32", from,
				 special_name[typ], (long long)tid);
	for (size_t i = 0; i < v->n_ids; i++)
		if (v->id_typ[i] == typ)
			return 0;
	v->id_typ[v->n_ids] = typ;
	v->id_val[v->n_ids] = (uint32_t)tid;
	v->n_ids++;
	return 0;
}

static int add_merge(struct cv_vocab *v, size_t *cap, const char *s, size_t n, struct bn_err *err)
{
	if (v->n_merges == *cap) {
		size_t nc = *cap ? 2 * *cap : 1024;
		char **nm = realloc(v->merges, nc * sizeof *nm);
		if (!nm)
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		v->merges = nm;
		*cap = nc;
	}
	if (!(v->merges[v->n_merges] = arena_dup(v, s, n)))
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	v->n_merges++;
	return 0;
}

/* model.merges: a list of "a b" strings, or of [a, b] pairs (spaces inside a part become
 * U+0120 'Ġ', then joined with one space). */
static int load_merges(struct cv_vocab *v, const json_t *tj, struct bn_err *err)
{
	const json_t *m = json_object_get(json_object_get(tj, "model"), "merges");
	if (!json_is_array(m) || json_array_size(m) == 0)
		return 0;
	size_t cap = 0, n = json_array_size(m);
	bool strs = json_is_string(json_array_get(m, 0));
	char *buf = NULL;
	size_t bcap = 0;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const json_t *e = json_array_get(m, i);
		if (strs) {
			if (!json_is_string(e)) {
				rc = bn_seterr(err, BN_EFORMAT, "tokenizer.json: model.merges[%zu] is "
					       "not a string", i);
				break;
			}
			rc = add_merge(v, &cap, json_string_value(e), json_string_length(e), err);
			continue;
		}
		if (!json_is_array(e) || json_array_size(e) != 2 ||
		    !json_is_string(json_array_get(e, 0)) || !json_is_string(json_array_get(e, 1))) {
			rc = bn_seterr(err, BN_EFORMAT, "tokenizer.json: model.merges[%zu] is not a "
				       "pair of strings", i);
			break;
		}
		size_t need = 2 * (json_string_length(json_array_get(e, 0)) +
				   json_string_length(json_array_get(e, 1))) + 2;
		if (need > bcap) {
			bcap = need + 64;
			char *nb = realloc(buf, bcap);
			if (!nb) {
				rc = bn_seterr(err, BN_ENOMEM, "out of memory");
				break;
			}
			buf = nb;
		}
		size_t o = 0;
		for (int part = 0; part < 2; part++) {
			const json_t *ps = json_array_get(e, part);
			const char *s = json_string_value(ps);
			size_t sl = json_string_length(ps);
			if (part)
				buf[o++] = ' ';
			for (size_t j = 0; j < sl; j++) {
				if (s[j] == ' ') {
					buf[o++] = (char)0xc4;
					buf[o++] = (char)0xa0;
				} else {
					buf[o++] = s[j];
				}
			}
		}
		rc = add_merge(v, &cap, buf, o, err);
	}
	free(buf);
	return rc;
}

/* merges.txt: a first line starting with '#' is skipped, lines that are not two fields are
 * ignored (with a warning), fields joined with one space. */
static int load_merges_txt(struct cv_vocab *v, const char *dir, struct bn_err *err)
{
	char *path = bn_path_join(dir, "merges.txt"), *text = NULL;
	size_t len, cap = 0;
	int rc = 0;
	if (!path)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	if (!bn_file_exists(path))
		goto out;
	if ((rc = bn_read_file(path, MAX_JSON, &text, &len, err)))
		goto out;
	size_t line_no = 0;
	for (char *p = text, *e; p < text + len; p = e + 1) {
		e = memchr(p, '\n', (size_t)(text + len - p));
		if (!e)
			e = text + len;
		line_no++;
		/* strip */
		char *b = p, *t = e;
		while (b < t && (*b == ' ' || *b == '\t' || *b == '\r'))
			b++;
		while (t > b && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
			t--;
		if (line_no == 1 && b < t && *b == '#')
			continue;
		if (b == t)
			continue;
		char *f1e = b;
		while (f1e < t && *f1e != ' ' && *f1e != '\t')
			f1e++;
		char *f2 = f1e;
		while (f2 < t && (*f2 == ' ' || *f2 == '\t'))
			f2++;
		char *f2e = f2;
		while (f2e < t && *f2e != ' ' && *f2e != '\t')
			f2e++;
		if (f2 == t || f2e != t) {
			bn_warn("merges.txt: line %zu: entry malformed, ignoring", line_no);
			continue;
		}
		char tmp[1024];
		size_t l1 = (size_t)(f1e - b), l2 = (size_t)(f2e - f2);
		if (l1 + l2 + 1 >= sizeof tmp) {
			bn_warn("merges.txt: line %zu: entry too long, ignoring", line_no);
			continue;
		}
		memcpy(tmp, b, l1);
		tmp[l1] = ' ';
		memcpy(tmp + l1 + 1, f2, l2);
		if ((rc = add_merge(v, &cap, tmp, l1 + l2 + 1, err)))
			goto out;
	}
out:
	free(path);
	free(text);
	return rc;
}

static int chat_templates(struct cv_vocab *v, const json_t *ct, struct bn_err *err)
{
	if (json_is_string(ct)) {
		if (json_string_length(ct) &&
		    !(v->chat_template = arena_dup(v, json_string_value(ct), json_string_length(ct))))
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		return 0;
	}
	if (!json_is_array(ct)) {
		if (ct && !json_is_null(ct))
			bn_warn("tokenizer_config.json: bad type for chat_template - ignoring");
		return 0;
	}
	size_t n = json_array_size(ct);
	v->template_name = calloc(n ? n : 1, sizeof *v->template_name);
	v->template_text = calloc(n ? n : 1, sizeof *v->template_text);
	if (!v->template_name || !v->template_text)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *c = json_array_get(ct, i);
		const json_t *jn = json_object_get(c, "name"), *jt = json_object_get(c, "template");
		if (!json_is_string(jt))
			continue;
		const char *nm = json_is_string(jn) ? json_string_value(jn) : "";
		size_t nl = strlen(nm);
		char safe[256];
		size_t k = 0;
		/* per character (not byte): ASCII letters and digits kept, anything else '_' */
		for (size_t ci = 0; ci < nl && k + 1 < sizeof safe;) {
			uint32_t ch;
			ci += utf8_next((const unsigned char *)nm + ci, nl - ci, &ch);
			bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				  (ch >= '0' && ch <= '9');
			safe[k++] = ok ? (char)ch : '_';
		}
		safe[k] = '\0';
		if (!k)
			continue;
		const char *tt = json_string_value(jt);
		size_t tl = json_string_length(jt);
		if (strcmp(safe, "default") == 0) {
			if (tl && !(v->chat_template = arena_dup(v, tt, tl)))
				return bn_seterr(err, BN_ENOMEM, "out of memory");
			continue;
		}
		size_t j;
		for (j = 0; j < v->n_templates; j++)
			if (strcmp(v->template_name[j], safe) == 0)
				break;
		if (j < v->n_templates)
			return bn_seterr(err, BN_EFORMAT, "tokenizer_config.json: two chat templates "
					 "named '%s'", safe);
		if (!(v->template_name[j] = arena_dup(v, safe, k)) ||
		    !(v->template_text[j] = arena_dup(v, tt, tl)))
			return bn_seterr(err, BN_ENOMEM, "out of memory");
		v->n_templates++;
	}
	return 0;
}

int cv_vocab_special(struct cv_vocab *v, const json_t *tj, const json_t *tc,
		     const json_t *config, bool merges, size_t n_vocab, struct bn_err *err)
{
	int rc;
	for (int t = 0; t < CV_N_SPECIAL; t++)
		v->add[t] = -1;
	if (merges && tj && (rc = load_merges(v, tj, err)))
		return rc;
	const json_t *added = tj ? json_object_get(tj, "added_tokens") : NULL;
	if (json_is_object(tc)) {
		if ((rc = chat_templates(v, json_object_get(tc, "chat_template"), err)))
			return rc;
		for (int t = 0; t < CV_N_SPECIAL; t++) {
			char k[32];
			snprintf(k, sizeof k, "add_%s_token", special_name[t]);
			const json_t *ae = json_object_get(tc, k);
			if (json_is_boolean(ae))
				v->add[t] = json_is_true(ae);
			snprintf(k, sizeof k, "%s_token", special_name[t]);
			const json_t *e = json_object_get(tc, k);
			if (json_is_object(e))
				e = json_object_get(e, "content");
			if (!json_is_string(e))
				continue;
			for (size_t i = 0; json_is_array(added) && i < json_array_size(added); i++) {
				const json_t *at = json_array_get(added, i);
				const json_t *c = json_object_get(at, "content");
				if (json_is_string(c) && json_string_length(c) == json_string_length(e) &&
				    memcmp(json_string_value(c), json_string_value(e),
					   json_string_length(e)) == 0) {
					rc = set_special(v, (enum cv_special)t, json_object_get(at, "id"),
							 n_vocab, "tokenizer_config.json", err);
					if (rc)
						return rc;
					break;
				}
			}
		}
	}
	if (json_is_object(config)) {
		for (int t = 0; t < CV_N_SPECIAL; t++) {
			char k[32];
			snprintf(k, sizeof k, "%s_token_id", special_name[t]);
			if ((rc = set_special(v, (enum cv_special)t, json_object_get(config, k),
					      n_vocab, "config.json", err)))
				return rc;
		}
	}
	return 0;
}

int cv_vocab_kvs(const struct cv_vocab *v, struct gguf_writer *w, struct bn_err *err)
{
	int rc;
	const char *const *toks = (const char *const *)v->tok;
	if ((rc = gguf_writer_add_str(w, "tokenizer.ggml.model", v->model, err)) ||
	    (rc = gguf_writer_add_str(w, "tokenizer.ggml.pre", v->pre, err)) ||
	    (v->n && (rc = gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, v->len, v->n,
						   err))) ||
	    (v->scores && v->n &&
	     (rc = gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, v->scores,
				       v->n, err))) ||
	    (v->n && (rc = gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32,
					       v->types, v->n, err))))
		return rc;
	if (v->n_merges && (rc = gguf_writer_add_arr_str(w, "tokenizer.ggml.merges",
							 (const char *const *)v->merges, NULL,
							 v->n_merges, err)))
		return rc;
	for (size_t i = 0; i < v->n_ids; i++)
		if ((rc = gguf_writer_add_u32(w, special_key[v->id_typ[i]], v->id_val[i], err)))
			return rc;
	for (int t = 0; t < CV_N_SPECIAL; t++) {
		if (v->add[t] < 0)
			continue;
		char k[64];
		snprintf(k, sizeof k, "tokenizer.ggml.add_%s_token", special_name[t]);
		if ((rc = gguf_writer_add_bool(w, k, v->add[t], err)))
			return rc;
	}
	for (size_t i = 0; i < v->n_templates; i++) {
		char k[300];
		snprintf(k, sizeof k, "tokenizer.chat_template.%s", v->template_name[i]);
		if (*v->template_text[i] && (rc = gguf_writer_add_str(w, k, v->template_text[i], err)))
			return rc;
	}
	if (v->n_templates &&
	    (rc = gguf_writer_add_arr_str(w, "tokenizer.chat_templates",
					  (const char *const *)v->template_name, NULL,
					  v->n_templates, err)))
		return rc;
	if (v->chat_template &&
	    (rc = gguf_writer_add_str(w, "tokenizer.chat_template", v->chat_template, err)))
		return rc;
	return 0;
}

/* ---- loading from a directory ----------------------------------------------------------------- */

static json_t *load_json_opt(const char *dir, const char *name, size_t cap, struct bn_err *err,
			     int *rc)
{
	char *p = bn_path_join(dir, name);
	json_t *j = NULL;
	*rc = 0;
	if (!p) {
		*rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		return NULL;
	}
	if (bn_file_exists(p)) {
		j = bn_json_load(p, cap, err);
		if (!j)
			*rc = -BN_EFORMAT;
	}
	free(p);
	return j;
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A Jinja file as gguf-py reads it (open(path, encoding='utf-8').read()): strict UTF-8, a BOM
 * kept, universal newlines (\r\n and a lone \r become \n); *out is a JSON string.  Invalid UTF-8
 * is an error, not a warning: the reference's decode raises and its conversion stops.  A NUL
 * byte is refused too (Python would keep it, but no template has one and the vocabulary keeps C
 * strings).  An empty file is valid but writes no key (gguf-py skips empty strings), so it is a
 * warning when the template is `used`. */
static int read_template(const char *path, bool used, json_t **out, struct bn_err *err)
{
	char *text = NULL;
	size_t len, o = 0;
	int rc = bn_read_file(path, MAX_TEMPLATE, &text, &len, err);
	if (rc)
		return rc;
	for (size_t i = 0, ok, bad; i < len; i += ok) {
		if (!(ok = utf8_valid((const unsigned char *)text + i, len - i, &bad))) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: not valid UTF-8 at byte %zu; save the "
				       "template as UTF-8", path, i);
			goto out;
		}
		if (!text[i]) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: a NUL byte at byte %zu; a chat template "
				       "is text", path, i);
			goto out;
		}
	}
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		text[o++] = c == '\r' ? '\n' : c;
		if (c == '\r' && i + 1 < len && text[i + 1] == '\n')
			i++;
	}
	if (!o && used)
		bn_warn("%s: empty; no chat template is written from it", path);
	if (!(*out = json_stringn(text, o)))
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
out:
	free(text);
	return rc;
}

/* Appends {name, template} to list; takes t. */
static int append_template(json_t *list, const char *name, json_t *t, struct bn_err *err)
{
	json_t *e = json_pack("{s:s,s:o}", "name", name, "template", t);
	if (!e || json_array_append_new(list, e))
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	return 0;
}

static int by_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* additional_chat_templates/<name>.jinja appended to list, in name order (gguf-py takes the
 * directory's order, which is not stable).  A name byte outside an ASCII letter or digit becomes
 * '_' here already, as add_chat_template would make of Python's surrogate-escaped name: the JSON
 * name must be UTF-8. */
static int extra_templates(const char *dir, json_t *list, bool used, struct bn_err *err)
{
	char *sub = bn_path_join(dir, "additional_chat_templates"), *name[MAX_EXTRA_TEMPLATES];
	size_t n = 0;
	int rc = 0;
	if (!sub)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	DIR *d = opendir(sub);
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l <= 6 || strcmp(e->d_name + l - 6, ".jinja") != 0)
			continue;
		if (n == MAX_EXTRA_TEMPLATES) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: more than %d .jinja files", sub,
				       MAX_EXTRA_TEMPLATES);
			goto out;
		}
		if (!(name[n] = strdup(e->d_name))) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	qsort(name, n, sizeof *name, by_strcmp);
	for (size_t i = 0; i < n; i++) {
		char *path = bn_path_join(sub, name[i]);
		json_t *t = NULL;
		rc = path ? read_template(path, used, &t, err) : bn_seterr(err, BN_ENOMEM,
									     "out of memory");
		free(path);
		if (rc)
			goto out;
		size_t l = strlen(name[i]) - 6, o = 0;
		for (size_t k = 0, ok, bad; k < l; k += ok ? ok : 1) {
			unsigned char ch = (unsigned char)name[i][k];
			ok = utf8_valid((const unsigned char *)name[i] + k, l - k, &bad);
			bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				     (ch >= '0' && ch <= '9');
			name[i][o++] = ok == 1 && alnum ? (char)ch : '_';
		}
		name[i][o] = '\0';
		if ((rc = append_template(list, name[i], t, err)))
			goto out;
	}
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(name[i]);
	free(sub);
	return rc;
}

/* Where gguf-py's SpecialVocab takes the chat template from (vocab.py,
 * _try_load_from_tokenizer_json): tokenizer_config.json's "chat_template" if the key is there at
 * all (even null); else chat_template.jinja, the "default" of a named list when
 * additional_chat_templates/ has .jinja files; else chat_template.json's "chat_template".  None
 * of them without a non-empty tokenizer_config.json.  The files are read, and a bad one refused,
 * even when the key wins, as the reference does.  The result is set as tc's key. */
static int alt_template(const char *dir, json_t *tc, struct bn_err *err)
{
	char *jinja = bn_path_join(dir, "chat_template.jinja");
	char *jsonf = bn_path_join(dir, "chat_template.json");
	json_t *alt = NULL, *cj = NULL;
	int rc = 0;
	if (!jinja || !jsonf) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	bool used = tc && json_object_size(tc) && !json_object_get(tc, "chat_template");
	if (!tc || !json_object_size(tc)) {
		if (is_file(jinja) || is_file(jsonf))
			bn_warn("%s: ignored without a non-empty tokenizer_config.json next to it (as "
				"gguf-py does)", is_file(jinja) ? jinja : jsonf);
	} else if (is_file(jinja)) {
		json_t *def = NULL;
		if ((rc = read_template(jinja, used, &def, err)) ||
		    !(alt = json_array()) || (rc = append_template(alt, "default", def, err)) ||
		    (rc = extra_templates(dir, alt, used, err))) {
			if (!alt)
				json_decref(def);
			rc = rc ? rc : bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		if (json_array_size(alt) == 1) { /* no named ones: the plain string */
			json_t *only = json_incref(def);
			json_decref(alt);
			alt = only;
		}
	} else if (is_file(jsonf)) {
		if (!(cj = bn_json_load(jsonf, MAX_SMALL_JSON, err))) {
			rc = -BN_EFORMAT;
			goto out;
		}
		if (!json_is_object(cj)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: not a JSON object", jsonf);
			goto out;
		}
		alt = json_incref(json_object_get(cj, "chat_template"));
	}
	if (alt && used && json_object_set(tc, "chat_template", alt))
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
out:
	json_decref(alt);
	json_decref(cj);
	free(jinja);
	free(jsonf);
	return rc;
}

int cv_vocab_load(struct cv_vocab *v, const char *dir, const struct cv_config *c,
		  const struct cv_vocab_opts *o, struct bn_err *err)
{
	memset(v, 0, sizeof *v);
	v->add_space_prefix = -1;
	int rc = 0;
	json_t *tj = NULL, *tc = NULL, *added = NULL;
	uint8_t *spm = NULL;
	size_t spm_len = 0;
	char *spm_path = bn_path_join(dir, "tokenizer.model");
	if (!spm_path)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	if ((tj = load_json_opt(dir, "tokenizer.json", MAX_JSON, err, &rc)), rc)
		goto out;
	if ((tc = load_json_opt(dir, "tokenizer_config.json", MAX_SMALL_JSON, err, &rc)), rc)
		goto out;
	if (tj && !json_is_object(tj)) {
		rc = bn_seterr(err, BN_EFORMAT, "tokenizer.json: not a JSON object");
		goto out;
	}
	if (tc && !json_is_object(tc)) {
		rc = bn_seterr(err, BN_EFORMAT, "tokenizer_config.json: not a JSON object");
		goto out;
	}
	if ((rc = alt_template(dir, tc, err)))
		goto out;
	if (bn_file_exists(spm_path)) {
		if ((added = load_json_opt(dir, "added_tokens.json", MAX_SMALL_JSON, err, &rc)), rc)
			goto out;
		if (added && !json_is_object(added)) {
			rc = bn_seterr(err, BN_EFORMAT, "added_tokens.json: not a JSON object");
			goto out;
		}
		if ((rc = bn_read_file(spm_path, SPM_MAX_FILE, (char **)&spm, &spm_len, err)) ||
		    (rc = cv_vocab_spm(v, spm, spm_len, added, c->vocab_size, err)) ||
		    (rc = cv_vocab_special(v, tj, tc, c->root, false, v->n, err)))
			goto out;
	} else if (tj) {
		if ((rc = cv_vocab_bpe(v, tj, c->vocab_size, err)) ||
		    (rc = choose_pre(v, tj, c->root, o, err)) ||
		    (rc = cv_vocab_special(v, tj, tc, c->root, true, 0, err)))
			goto out;
		if (!v->n_merges && (rc = load_merges_txt(v, dir, err)))
			goto out;
		if (!v->n_merges)
			bn_warn("tokenizer.json: no merges found; the tokenizer may not work");
	} else {
		rc = bn_seterr(err, BN_ENOENT, "%s: no tokenizer: neither tokenizer.model nor "
			       "tokenizer.json is there", dir);
		goto out;
	}
	if (tc && c->cls == CV_LLAMA) {
		const json_t *ap = json_object_get(tc, "add_prefix_space");
		if (ap) /* Python truthiness, as struct.pack('?') sees it */
			v->add_space_prefix = json_is_true(ap) ||
					      (json_is_integer(ap) && json_integer_value(ap)) ||
					      (json_is_real(ap) && json_real_value(ap) != 0) ||
					      (json_is_string(ap) && json_string_length(ap)) ||
					      (json_is_array(ap) && json_array_size(ap)) ||
					      (json_is_object(ap) && json_object_size(ap));
	}
out:
	if (rc)
		cv_vocab_free(v);
	free(spm_path);
	free(spm);
	json_decref(tj);
	json_decref(tc);
	json_decref(added);
	return rc;
}

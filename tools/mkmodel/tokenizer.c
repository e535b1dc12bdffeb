/* mkmodel's tokenizers: the SentencePiece tokenizer.model of convert-quantize.md §13.1, and a
 * synthetic Llama-3-style tokenizer.json (byte-level BPE).  Invariant: both are pure functions
 * of their parameters (no randomness beyond the fixed LCG). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel.h"
#include "pyjson.h"
#include "spm.h"

/* ---- tokenizer.model (§13.1) ---------------------------------------------------------------- */

int mk_tokenizer_model(uint8_t **buf, size_t *len, struct bn_err *err)
{
	enum { N = 3 + 256 + 2 + 10 + 26 };
	static const char *const words[10] = { "\xe2\x96\x81", "\xe2\x96\x81hello",
					       "\xe2\x96\x81world", ("\xe2\x96\x81" "bit"),
					       "\xe2\x96\x81net", "ll", "lo", "\xe2\x96\x81h",
					       "\xe2\x96\x81w", "or" };
	struct spm_piece p[N];
	char bytes[256][7], letters[26][2];
	size_t n = 0;
	p[n++] = (struct spm_piece){ "<unk>", 5, 0.0f, SPM_UNKNOWN };
	p[n++] = (struct spm_piece){ "<s>", 3, 0.0f, SPM_CONTROL };
	p[n++] = (struct spm_piece){ "</s>", 4, 0.0f, SPM_CONTROL };
	for (int b = 0; b < 256; b++) {
		snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
		p[n++] = (struct spm_piece){ bytes[b], 6, 0.0f, SPM_BYTE };
	}
	p[n++] = (struct spm_piece){ "<|user|>", 8, 0.0f, SPM_USER_DEFINED };
	p[n++] = (struct spm_piece){ "<unused0>", 9, 0.0f, SPM_UNUSED };
	for (int i = 0; i < 10; i++)
		p[n++] = (struct spm_piece){ words[i], strlen(words[i]), (float)(-1 - i), SPM_NORMAL };
	for (int i = 0; i < 26; i++) {
		letters[i][0] = (char)('a' + i);
		letters[i][1] = '\0';
		p[n++] = (struct spm_piece){ letters[i], 1, (float)(-20 - i), SPM_NORMAL };
	}
	const struct spm_write_opts opts = {
		.model_type = 2, /* BPE */
		.byte_fallback = true,
		.normalizer_name = "identity",
		.add_dummy_prefix = true,
		.remove_extra_whitespaces = false,
	};
	return spm_serialize(p, n, &opts, buf, len, err);
}

/* ---- tokenizer.json (Llama-3 style) --------------------------------------------------------- */

/* GPT-2's byte -> printable code point table (the byte-level alphabet): printable bytes map to
 * themselves, the others to U+0100 + their rank. */
static void byte_alphabet(unsigned cp[256], unsigned order[256])
{
	unsigned n = 0, extra = 0;
	bool printable[256] = { 0 };
	for (unsigned b = 33; b <= 126; b++)
		printable[b] = true;
	for (unsigned b = 161; b <= 172; b++)
		printable[b] = true;
	for (unsigned b = 174; b <= 255; b++)
		printable[b] = true;
	for (unsigned b = 0; b < 256; b++)
		if (printable[b])
			order[n++] = b;
	for (unsigned b = 0; b < 256; b++)
		if (!printable[b])
			order[n++] = b;
	for (unsigned b = 0; b < 256; b++)
		cp[b] = printable[b] ? b : 256 + extra++;
}

static size_t utf8(unsigned c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	o[0] = (char)(0xc0 | c >> 6);
	o[1] = (char)(0x80 | (c & 0x3f));
	return 2;
}

/* Open-addressing set of the token strings made so far. */
struct strset {
	char **slot;
	size_t cap;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* true if s was added (it was not there yet). */
static bool set_add(struct strset *set, char *s)
{
	size_t i = hash(s) & (set->cap - 1);
	while (set->slot[i]) {
		if (strcmp(set->slot[i], s) == 0)
			return false;
		i = (i + 1) & (set->cap - 1);
	}
	set->slot[i] = s;
	return true;
}

static const char *const specials_head[10] = {
	"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
	"<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
	"<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
	"<|reserved_special_token_4|>", "<|eot_id|>",
};

int mk_tokenizer_json(unsigned vocab, char **buf, size_t *len, struct bn_err *err)
{
	enum { N_SPECIAL = 256, MAX_LEN = 24 };
	*buf = NULL;
	*len = 0;
	if (vocab < 256 + N_SPECIAL + 1)
		return bn_seterr(err, BN_EINVAL, "tokenizer.json: vocab %u is too small (at least %u)",
				 vocab, 256 + N_SPECIAL + 1);
	unsigned base = vocab - N_SPECIAL;
	char **tok = calloc(base, sizeof *tok);
	unsigned *left = calloc(base, sizeof *left), *right = calloc(base, sizeof *right);
	struct strset set = { NULL, 1 };
	while (set.cap < 2 * (size_t)base)
		set.cap <<= 1;
	set.slot = calloc(set.cap, sizeof *set.slot);
	json_t *root = NULL;
	int rc = 0;
	if (!tok || !left || !right || !set.slot) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	unsigned cp[256], order[256];
	byte_alphabet(cp, order);
	for (unsigned i = 0; i < 256; i++) {
		char s[3] = { 0 };
		utf8(cp[order[i]], s);
		tok[i] = strdup(s);
		if (!tok[i]) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		set_add(&set, tok[i]);
	}
	/* Merges: token i (>= 256) joins two earlier tokens chosen by the LCG so that the pieces
	 * look like a trained English vocabulary: letters, words with a leading U+0120 (the
	 * byte-level space) and word pieces; the space only ever starts a token, as the Llama-3
	 * pre-tokenizer splits before it.  Ranks follow ids. */
	unsigned letter[52], space = 0, n_letter = 0; /* A-Z then a-z, by byte */
	for (unsigned i = 0; i < 256; i++) {
		char c = tok[i][0];
		if (!tok[i][1] && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			letter[n_letter++] = i;
		if (strcmp(tok[i], "\xc4\xa0") == 0)
			space = i;
	}
	uint32_t s = mk_seed(1000, 0);
	for (unsigned i = 256; i < base;) {
		unsigned a, b;
		s = mk_lcg_step(s);
		unsigned r = s >> 8;
		if (r % 4 == 0)
			a = space;
		else if (i > 256 && r % 4 == 1)
			a = 256 + (r >> 2) % (i - 256);
		else
			a = letter[(r >> 2) % 26 + (r % 16 == 2 ? 0 : 26)]; /* mostly lower case */
		s = mk_lcg_step(s);
		r = s >> 8;
		if (i > 256 && r % 3 == 0)
			b = 256 + (r >> 2) % (i - 256);
		else
			b = letter[26 + (r >> 2) % 26];
		if (tok[b][0] == tok[space][0] && tok[b][1] == tok[space][1])
			continue; /* never a space inside a token */
		size_t la = strlen(tok[a]), lb = strlen(tok[b]);
		if (la + lb > MAX_LEN)
			continue;
		char *t = malloc(la + lb + 1);
		if (!t) {
			rc = bn_seterr(err, BN_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(t, tok[a], la);
		memcpy(t + la, tok[b], lb + 1);
		if (!set_add(&set, t)) {
			free(t);
			continue;
		}
		tok[i] = t;
		left[i] = a;
		right[i] = b;
		i++;
	}

	root = json_object();
	json_t *added = json_array();
	json_t *vocab_o = json_object();
	json_t *merges = json_array();
	if (!root || !added || !vocab_o || !merges) {
		json_decref(added);
		json_decref(vocab_o);
		json_decref(merges);
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < N_SPECIAL; i++) {
		char name[48];
		if (i < 10)
			snprintf(name, sizeof name, "%s", specials_head[i]);
		else
			snprintf(name, sizeof name, "<|reserved_special_token_%u|>", i - 5);
		json_array_append_new(added, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id",
						       (int)(base + i), "content", name,
						       "single_word", 0, "lstrip", 0, "rstrip", 0,
						       "normalized", 0, "special", 1));
	}
	for (unsigned i = 0; i < base; i++)
		json_object_set_new(vocab_o, tok[i], json_integer(i));
	for (unsigned i = 256; i < base; i++) {
		size_t la = strlen(tok[left[i]]), lb = strlen(tok[right[i]]);
		char m[2 * MAX_LEN + 2];
		memcpy(m, tok[left[i]], la);
		m[la] = ' ';
		memcpy(m + la + 1, tok[right[i]], lb + 1);
		json_array_append_new(merges, json_string(m));
	}
	const char *regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
			    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
	const char *bos_s = specials_head[0];
	int bos = (int)base;
	json_object_set_new(root, "version", json_string("1.0"));
	json_object_set_new(root, "truncation", json_null());
	json_object_set_new(root, "padding", json_null());
	json_object_set_new(root, "added_tokens", added);
	json_object_set_new(root, "normalizer", json_null());
	json_object_set_new(
		root, "pre_tokenizer",
		json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]}", "type", "Sequence",
			  "pretokenizers", "type", "Split", "pattern", "Regex", regex, "behavior",
			  "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0,
			  "trim_offsets", 1, "use_regex", 0));
	json_object_set_new(
		root, "post_processor",
		json_pack("{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}}],s:[{s:{s:s,s:i}},{s:{s:s,s:i}},"
			  "{s:{s:s,s:i}},{s:{s:s,s:i}}],s:{s:{s:s,s:[i],s:[s]}}}",
			  "type", "TemplateProcessing", "single", "SpecialToken", "id", bos_s,
			  "type_id", 0, "Sequence", "id", "A", "type_id", 0, "pair", "SpecialToken",
			  "id", bos_s, "type_id", 0, "Sequence", "id", "A", "type_id", 0,
			  "SpecialToken", "id", bos_s, "type_id", 1, "Sequence", "id", "B", "type_id",
			  1, "special_tokens", bos_s, "id", bos_s, "ids", bos, "tokens",
			  bos_s));
	json_object_set_new(root, "decoder",
			    json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 1,
				      "trim_offsets", 1, "use_regex", 1));
	json_t *model = json_pack("{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:b}", "type", "BPE", "dropout",
				  "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
				  "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 1);
	if (!model) {
		json_decref(vocab_o);
		json_decref(merges);
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(model, "vocab", vocab_o);
	json_object_set_new(model, "merges", merges);
	json_object_set_new(root, "model", model);
	/* as the tokenizers library saves it: pretty, insertion order, raw UTF-8 */
	const struct py_json_opts po = { .sort_keys = false, .ensure_ascii = false, .newline = false };
	*buf = py_json_dumps(root, &po, len);
	if (!*buf) {
		rc = bn_seterr(err, BN_ENOMEM, "tokenizer.json: out of memory");
		goto out;
	}
out:
	json_decref(root);
	if (tok)
		for (unsigned i = 0; i < base; i++)
			free(tok[i]);
	free(tok);
	free(left);
	free(right);
	free(set.slot);
	return rc;
}

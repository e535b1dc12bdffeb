/* Tokenizer tests.  SentencePiece: a BPE model trained here with spm_train on a text written
 * below, its vocabulary exported into a GGUF with our writer, and many strings (ASCII, spaces,
 * digits, accented and CJK letters, emoji and other characters the model never saw) compared id
 * for id with spm_encode.  Byte-level BPE: a hand-built vocabulary and merge list whose results
 * are worked out by hand in the comments, the pre-tokenizer splits (Llama 3, GPT-2, default)
 * checked case by case, special tokens, BOS/EOS and decoding; and the Llama-3-style vocabulary
 * the pipeline converts (mkmodel + gguf-convert) round-trips. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "engine_util.h"
#include "gguf.h"
#include "spm.h"
#include "test_util.h"
#include "tokenizer.h"
#include "unicode.h"

#define HAS(msg, s) cr_assert(strstr((msg), (s)) != NULL, "'%s' lacks '%s'", (msg), (s))

/* ---- SentencePiece against spm_encode ---------------------------------------------------------- */

static const char *const corpus[] = {
	"The quick brown fox jumps over the lazy dog.",
	"A ternary weight is minus one, zero or plus one; activations are eight-bit integers.",
	"BitNet b1.58 models run on ordinary CPUs with lookup tables and packed two-bit codes.",
	"In 2024 the first release shipped three kernels: I2_S, TL1 and TL2.",
	"Hello world! Hello again, world. Hello, hello, hello.",
	"Tokenizers split text into pieces; the pieces are looked up in a vocabulary.",
	"Numbers like 3.14159, 2718 and 1,000,000 appear in text too.",
	"Das Wetter ist heute schön, und die Straße ist nass.",
	"Le café est très chaud ; où est la bibliothèque ?",
	"El niño comió una manzana y bebió agua fría.",
	"Unicode has letters such as ä, ö, ü, é, è, ñ and ç.",
	"the the the and and and of of of to to to in in in",
	"Make builds targets from prerequisites; a stamp records the command.",
	"Memory bandwidth limits the speed of matrix-vector products.",
	"We measured tokens per second with one and two threads.",
	"She sells sea shells by the sea shore, and the shells she sells are sea shells.",
	"Peter Piper picked a peck of pickled peppers.",
	"How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
	"Testing, testing, one two three.",
	"    indented lines keep their spaces    and so do double  spaces",
	"email@example.com, https://example.org/path?query=1&x=2",
	"C code: for (int i = 0; i < n; i++) { sum += x[i] * y[i]; }",
	"Quantization maps floats to integers; dequantization maps them back.",
	"Attention weights come from a softmax over scaled dot products.",
	"Residual streams add each block's output to its input.",
	"Rotary position embeddings rotate pairs of dimensions.",
	"Greedy decoding picks the most likely token at every step.",
	"Sampling with temperature, top-k and top-p adds variety.",
	"The context window holds two thousand and forty-eight tokens.",
	"End of corpus. Thank you for reading all of it!",
};

static const char *const probes[] = {
	"Hello world",
	"hello world",
	"The quick brown fox",
	"the lazy dog jumps over the quick fox",
	"  two leading spaces",
	"trailing spaces   ",
	"multiple   inner    spaces",
	"x",
	" ",
	"a b c d e f g",
	"Numbers 12345 and 3.14159 and 1,000,000",
	"Tokenizers, tokenizers; TOKENIZERS!",
	"schön Straße café très niño",
	"日本語のテキスト",
	"emoji 🙂 and 🚀 are unknown",
	"tab\tseparated\tvalues",
	"mixed: äöü ÄÖÜ ß ẞ",
	"symbols ~ ` ^ | \\ @ # $ % & * ( ) [ ] { } < >",
	"email@example.com https://example.org/path?query=1",
	"for (int i = 0; i < n; i++) { sum += x[i]; }",
	"woodchuck woodchuck woodchuck",
	"Bandwidth-limited matrix-vector products",
	"ǅ ǈ ǋ titlecase",
	"Ω≈ç√∫˜µ≤≥÷",
	"¡Hola! ¿Qué tal?",
	"zzzzzzzzzzzzzzzzzzzzzzzz",
	"The the THE tHe",
	"end.",
};

static char *write_lines(const char *dir, const char *name, const char *const *lines, size_t n)
{
	char *path = bn_path_join(dir, name);
	FILE *f = fopen(path, "w");
	cr_assert(f != NULL);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[i]);
	fclose(f);
	return path;
}

/* The vocabulary of a SentencePiece model as GGUF tokenizer KVs (convert-quantize.md §6.1). */
static void spm_to_gguf(const struct spm_model *m, const char *out)
{
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(out, &err);
	cr_assert(w != NULL, "%s", err.msg);
	const char **toks = calloc(m->n_pieces, sizeof *toks);
	size_t *lens = calloc(m->n_pieces, sizeof *lens);
	float *scores = calloc(m->n_pieces, sizeof *scores);
	int32_t *types = calloc(m->n_pieces, sizeof *types);
	for (size_t i = 0; i < m->n_pieces; i++) {
		toks[i] = m->pieces[i].piece;
		lens[i] = m->pieces[i].len;
		scores[i] = m->pieces[i].score;
		types[i] = (int32_t)m->pieces[i].type;
	}
	cr_assert(eq(int, gguf_writer_add_str(w, "general.architecture", "llama", &err), 0));
	cr_assert(eq(int, gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, lens, m->n_pieces, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, scores, m->n_pieces, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, types, m->n_pieces, &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1, &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2, &err), 0));
	cr_assert(eq(int, gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", m->add_dummy_prefix != 0, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0), "%s", err.msg);
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	free(toks);
	free(lens);
	free(scores);
	free(types);
}

static struct tokenizer *open_tok(const char *path)
{
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	cr_assert(r != NULL, "%s", err.msg);
	struct tokenizer *t = NULL;
	cr_assert(eq(int, tok_open(&t, r, path, &err), 0), "%s", err.msg);
	gguf_close(r);
	return t;
}

static void encode(const struct tokenizer *t, const char *s, bool special, bool parse, int32_t **ids, size_t *n)
{
	struct bn_err err = { 0 };
	cr_assert(eq(int, tok_encode(t, s, strlen(s), special, parse, ids, n, &err), 0), "%s", err.msg);
}

Test(tokenizer_spm, matches_spm_encode_on_a_trained_bpe_model)
{
	char *dir = tu_mkdtemp("tok_spm");
	char *text = write_lines(dir, "corpus.txt", corpus, sizeof corpus / sizeof *corpus);
	char *probe = write_lines(dir, "probes.txt", probes, sizeof probes / sizeof *probes);
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && spm_train --input=corpus.txt --model_prefix=m --vocab_size=520 --model_type=bpe "
		 "--byte_fallback=true --normalization_rule_name=identity --remove_extra_whitespaces=false "
		 "--character_coverage=1.0 --num_threads=1 --minloglevel=2 > train.log 2>&1 && "
		 "spm_encode --model=m.model --output_format=id < probes.txt > ids.txt",
		 dir);
	struct tu_run r = tu_sh(cmd);
	cr_assert(eq(int, r.status, 0), "spm_train/spm_encode failed: %s", r.err);
	tu_run_free(&r);

	char *model = bn_path_join(dir, "m.model"), *gguf = bn_path_join(dir, "vocab.gguf");
	struct spm_model m;
	struct bn_err err = { 0 };
	cr_assert(eq(int, spm_load(&m, model, &err), 0), "%s", err.msg);
	cr_assert(eq(int, m.byte_fallback, 1));
	spm_to_gguf(&m, gguf);
	spm_free(&m);
	struct tokenizer *t = open_tok(gguf);
	cr_assert(eq(int, tok_model(t), TOK_SPM));

	char *ids_path = bn_path_join(dir, "ids.txt");
	char *want = tu_read_file(ids_path, NULL);
	cr_assert(want != NULL);
	char *save = NULL, *line = want;
	size_t total = 0, bytes = 0;
	for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
		char *nl = strchr(line, '\n');
		cr_assert(nl != NULL, "spm_encode gave fewer lines than probes");
		*nl = 0;
		int32_t *ids;
		size_t n;
		encode(t, probes[i], false, false, &ids, &n);
		size_t k = 0;
		for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), k++) {
			cr_assert(lt(sz, k, n), "'%s': we produced only %zu ids", probes[i], n);
			cr_assert(eq(i32, ids[k], atoi(tok)), "'%s': id %zu is %d, spm_encode says %s", probes[i], k,
				  ids[k], tok);
			size_t len;
			const char *s = tok_text(t, ids[k], &len);
			bytes += (len == 6 && strncmp(s, "<0x", 3) == 0);
		}
		cr_assert(eq(sz, k, n), "'%s': %zu ids, spm_encode gave %zu", probes[i], n, k);
		total += n;
		free(ids);
		line = nl + 1;
	}
	cr_assert(gt(sz, total, 200));
	cr_assert(gt(sz, bytes, 10), "the probes should exercise the byte fallback");
	free(want);
	free(ids_path);
	tok_close(t);
	free(model);
	free(gguf);
	free(text);
	free(probe);
	free(dir);
}

/* ---- byte-level BPE with a hand-built vocabulary ----------------------------------------------- */

/* GPT-2's printable form of a byte string. */
static void bytes_to_bpe(const char *s, char *out)
{
	size_t n = 0;
	for (; *s; s++)
		n += uni_encode(uni_byte_to_cp((unsigned char)*s), out + n);
	out[n] = 0;
}

/* Tokens 0..255 are the bytes (in byte order); then the merged tokens and specials below.  The
 * merges are listed in rank order. */
static const char *const merged[] = { " t", "he", "in", " the", "the", " a", "ing", " th", " thing", "ab", "abc" };
static const char *const merges[] = {
	"Ġ t",   /* 0 */
	"h e",   /* 1 */
	"i n",   /* 2 */
	"Ġt he", /* 3 */
	"t he",  /* 4 */
	"Ġ a",   /* 5 */
	"in g",  /* 6 */
	"Ġt h",  /* 7 */
	"a b",   /* 8 */
	"ab c",  /* 9 */
};
enum { ID_T_ = 256, ID_HE, ID_IN, ID__THE, ID_THE, ID__A, ID_ING, ID__TH, ID__THING, ID_AB, ID_ABC, ID_BOS, ID_EOT,
       ID_USER, N_VOCAB };

static char *bpe_vocab(const char *pre, bool add_eos)
{
	char *dir = tu_mkdtemp("tok_bpe");
	char *path = bn_path_join(dir, "bpe.gguf");
	free(dir);
	char *toks[N_VOCAB];
	int32_t types[N_VOCAB];
	for (int i = 0; i < N_VOCAB; i++) {
		char buf[64];
		types[i] = 1;
		if (i < 256) {
			buf[uni_encode(uni_byte_to_cp((uint8_t)i), buf)] = 0;
		} else if (i < ID_BOS) {
			bytes_to_bpe(merged[i - 256], buf);
		} else {
			snprintf(buf, sizeof buf, "%s", i == ID_BOS ? "<|begin_of_text|>" : i == ID_EOT ? "<|eot_id|>" : "<|user_tok|>");
			types[i] = i == ID_USER ? 4 : 3;
		}
		toks[i] = strdup(buf);
	}
	struct bn_err err = { 0 };
	struct gguf_writer *w = gguf_writer_open(path, &err);
	cr_assert(w != NULL);
	cr_assert(eq(int, gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &err), 0));
	if (pre)
		cr_assert(eq(int, gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, N_VOCAB, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, types, N_VOCAB, &err), 0));
	cr_assert(eq(int, gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, NULL, sizeof merges / sizeof *merges, &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", ID_BOS, &err), 0));
	cr_assert(eq(int, gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", ID_EOT, &err), 0));
	if (add_eos)
		cr_assert(eq(int, gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", true, &err), 0));
	cr_assert(eq(int, gguf_writer_write_header(w, &err), 0), "%s", err.msg);
	cr_assert(eq(int, gguf_writer_commit(w, &err), 0), "%s", err.msg);
	gguf_writer_close(w);
	for (int i = 0; i < N_VOCAB; i++)
		free(toks[i]);
	return path;
}

static void expect_ids(const struct tokenizer *t, const char *s, bool special, bool parse, const int32_t *want, size_t nw)
{
	int32_t *ids;
	size_t n;
	encode(t, s, special, parse, &ids, &n);
	cr_assert(eq(sz, n, nw), "'%s': %zu ids, expected %zu", s, n, nw);
	for (size_t i = 0; i < n; i++)
		cr_assert(eq(i32, ids[i], want[i]), "'%s': id %zu is %d, expected %d", s, i, ids[i], want[i]);
	free(ids);
}
#define EXPECT(t, s, sp, parse, ...)                                                           \
	do {                                                                                   \
		const int32_t w_[] = { __VA_ARGS__ };                                          \
		expect_ids(t, s, sp, parse, w_, sizeof w_ / sizeof *w_);                       \
	} while (0)

Test(tokenizer_bpe, merges_by_rank_as_worked_out_by_hand)
{
	char *path = bpe_vocab("gpt-2", false);
	struct tokenizer *t = open_tok(path);
	cr_assert(eq(int, tok_pre(t), PRE_GPT2));
	/* "the": t h e; (h e) rank 1 -> t he; (t he) rank 4 -> the */
	EXPECT(t, "the", false, false, ID_THE);
	/* " the": Ġ t h e; (Ġ t) 0 -> Ġt h e; (h e) 1 -> Ġt he; (Ġt he) 3 -> Ġthe */
	EXPECT(t, " the", false, false, ID__THE);
	/* " thing": Ġ t h i n g: (Ġ t) 0, (i n) 2, (in g) 6, then (Ġt h) 7 -> " th" "ing"; "Ġthing" is
	 * a token, but GPT-2 does not skip merging whole words */
	EXPECT(t, " thing", false, false, ID__TH, ID_ING);
	/* "abcab": one word; (a b) 8 twice -> ab c ab; (ab c) 9 -> abc ab */
	EXPECT(t, "abcab", false, false, ID_ABC, ID_AB);
	/* " a": (Ġ a) 5 */
	EXPECT(t, " a the", false, false, ID__A, ID__THE);
	/* no merge applies: single bytes */
	EXPECT(t, "xyz", false, false, 'x', 'y', 'z');
	/* "!" and a newline are bytes 0x21 and 0x0a */
	EXPECT(t, "!\n", false, false, '!', '\n');
	/* gpt2 adds no BOS unless the file says so */
	EXPECT(t, "the", true, false, ID_THE);
	tok_close(t);
	free(path);
}

Test(tokenizer_bpe, llama3_skips_merging_a_word_that_is_a_token_and_adds_bos)
{
	char *path = bpe_vocab("llama-bpe", false);
	struct tokenizer *t = open_tok(path);
	cr_assert(eq(int, tok_pre(t), PRE_LLAMA3));
	cr_assert(tok_add_bos(t));
	/* " thing" is a token: taken whole (tokenizer_ignore_merges) */
	EXPECT(t, " thing", false, false, ID__THING);
	EXPECT(t, "the thing", true, false, ID_BOS, ID_THE, ID__THING);
	tok_close(t);
	free(path);
}

Test(tokenizer_bpe, special_tokens_are_cut_out_only_when_asked_but_user_defined_always)
{
	char *path = bpe_vocab("llama3", true);
	struct tokenizer *t = open_tok(path);
	/* parse_special: "<|eot_id|>" becomes its id; the text around it is tokenized apart */
	EXPECT(t, "the<|eot_id|>the", false, true, ID_THE, ID_EOT, ID_THE);
	/* without parse_special the control token is plain text: "<|" "eot" "_id" "|>" by the
	 * Llama 3 split, all bytes here */
	int32_t *ids;
	size_t n;
	encode(t, "<|eot_id|>", false, false, &ids, &n);
	cr_assert(eq(sz, n, strlen("<|eot_id|>")));
	free(ids);
	/* user-defined tokens are always cut out */
	EXPECT(t, "a<|user_tok|>b", false, false, 'a', ID_USER, 'b');
	/* add_special: BOS (llama3 default) and EOS (add_eos_token = true) */
	EXPECT(t, "the", true, false, ID_BOS, ID_THE, ID_EOT);
	/* end of generation: the EOS id and the <|eot_id|> text */
	cr_assert(tok_is_eog(t, ID_EOT));
	cr_assert(not(tok_is_eog(t, ID_THE)));
	tok_close(t);
	free(path);
}

Test(tokenizer_bpe, decodes_pieces_back_to_bytes)
{
	char *path = bpe_vocab("llama3", false);
	struct tokenizer *t = open_tok(path);
	char buf[64];
	size_t n = tok_piece(t, ID__THE, false, buf, sizeof buf);
	cr_assert(eq(sz, n, 4));
	cr_assert(eq(int, memcmp(buf, " the", 4), 0));
	n = tok_piece(t, '\n', false, buf, sizeof buf);
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, buf[0], '\n'));
	n = tok_piece(t, 0xe6, false, buf, sizeof buf); /* a byte that is half of a UTF-8 character */
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, (unsigned char)buf[0], 0xe6));
	cr_assert(eq(sz, tok_piece(t, ID_EOT, false, buf, sizeof buf), 0), "control tokens print nothing");
	cr_assert(eq(sz, tok_piece(t, ID_EOT, true, buf, sizeof buf), 10));
	cr_assert(eq(sz, tok_piece(t, ID_USER, false, buf, sizeof buf), 12));
	/* round trip of arbitrary bytes, invalid UTF-8 included */
	const char s[] = "caf\xc3\xa9 \xff\xfe ok \xe6\x97";
	int32_t *ids;
	size_t k;
	encode(t, s, false, false, &ids, &k);
	char out[64];
	size_t m = 0;
	for (size_t i = 0; i < k; i++)
		m += tok_piece(t, ids[i], false, out + m, sizeof out - m);
	cr_assert(eq(sz, m, strlen(s)));
	cr_assert(eq(int, memcmp(out, s, m), 0));
	free(ids);
	tok_close(t);
	free(path);
}

Test(tokenizer_bpe, reads_the_converters_llama3_style_vocabulary)
{
	/* mkmodel's Llama-3-style tokenizer.json (32002 tokens, 31490 merges, the Llama-3 specials)
	 * through gguf-convert, as the pipeline makes it for BitNet-b1.58-2B-4T and Llama3-8B-1.58 */
	char *dir = tu_mkdtemp("tok_converted"); /* ~260 MB, removed at the end */
	char *path = eu_converted(dir, "bitnet_b1_58-large", 1, "bpe", "i2_s");
	cr_assert(path != NULL, "mkmodel or gguf-convert failed");
	struct tokenizer *t = open_tok(path);
	cr_assert(eq(int, tok_model(t), TOK_BPE));
	cr_assert(eq(int, tok_pre(t), PRE_LLAMA3));
	const int32_t bos = tok_find(t, "<|begin_of_text|>"), eot = tok_find(t, "<|eot_id|>");
	cr_assert(eq(i32, tok_bos(t), bos));
	cr_assert(tok_is_eog(t, eot) && tok_is_eog(t, tok_eos(t)));
	const char *s = "Hello world, the quick brown fox jumps over 12345 lazy dogs.\n\tcaf\xc3\xa9 \xf0\x9f\x99\x82 done";
	int32_t *ids;
	size_t n;
	encode(t, s, true, true, &ids, &n);
	cr_assert(eq(i32, ids[0], bos));
	cr_assert(lt(sz, n, strlen(s)), "merges apply: %zu ids for %zu bytes", n, strlen(s));
	char out[256];
	size_t m = 0;
	for (size_t i = 1; i < n; i++)
		m += tok_piece(t, ids[i], false, out + m, sizeof out - m);
	cr_assert(eq(sz, m, strlen(s)));
	cr_assert(eq(int, memcmp(out, s, m), 0), "decode(encode(s)) == s");
	free(ids);
	/* the end-of-turn marker of the llama3 chat template is one token */
	encode(t, "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", false, true, &ids, &n);
	cr_assert(eq(i32, ids[0], tok_find(t, "<|start_header_id|>")));
	cr_assert(eq(i32, ids[n - 1], eot));
	free(ids);
	tok_close(t);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	struct tu_run r = tu_sh(cmd);
	tu_run_free(&r);
	free(path);
	free(dir);
}

/* ---- pre-tokenizer splits --------------------------------------------------------------------- */

static void expect_split(enum tok_pre pre, const char *s, const char *const *words, size_t nw)
{
	size_t *ends, n;
	struct bn_err err = { 0 };
	cr_assert(eq(int, tok_split(pre, s, strlen(s), &ends, &n, &err), 0));
	size_t b = 0;
	for (size_t i = 0; i < n && i < nw; i++) {
		cr_assert(eq(sz, ends[i] - b, strlen(words[i])), "'%s' word %zu: '%.*s', expected '%s'", s, i,
			  (int)(ends[i] - b), s + b, words[i]);
		cr_assert(eq(int, memcmp(s + b, words[i], ends[i] - b), 0), "'%s' word %zu", s, i);
		b = ends[i];
	}
	cr_assert(eq(sz, n, nw), "'%s': %zu words, expected %zu", s, n, nw);
	free(ends);
}
#define SPLIT(pre, s, ...)                                                      \
	do {                                                                    \
		const char *const w_[] = { __VA_ARGS__ };                       \
		expect_split(pre, s, w_, sizeof w_ / sizeof *w_);               \
	} while (0)

Test(tokenizer_split, llama3_regex_cases)
{
	SPLIT(PRE_LLAMA3, "Hello world", "Hello", " world");
	SPLIT(PRE_LLAMA3, "I'm here", "I", "'m", " here");
	SPLIT(PRE_LLAMA3, "IT'S THEY'LL", "IT", "'S", " THEY", "'LL");   /* case-insensitive contractions */
	SPLIT(PRE_LLAMA3, "12345", "123", "45");                          /* \p{N}{1,3} */
	SPLIT(PRE_LLAMA3, "a  b", "a", " ", " b");                        /* \s+(?!\S) leaves one space */
	SPLIT(PRE_LLAMA3, "hi  ", "hi", "  ");                            /* trailing spaces: \s+ */
	SPLIT(PRE_LLAMA3, "x\n\ny", "x", "\n\n", "y");                    /* \s*[\r\n]+ */
	SPLIT(PRE_LLAMA3, "hi!!!\n", "hi", "!!!\n");                      /* punctuation takes the newlines */
	SPLIT(PRE_LLAMA3, "(x) $100", "(x", ")", " $", "100");            /* one non-letter before letters */
	SPLIT(PRE_LLAMA3, "3.14", "3", ".", "14");
	SPLIT(PRE_LLAMA3, "ça va", "ça", " va");                          /* Unicode letters */
	SPLIT(PRE_LLAMA3, "日本語 text", "日本語", " text");
	SPLIT(PRE_LLAMA3, "٣٤٥٦", "٣٤٥", "٦");                            /* Arabic-Indic digits are \p{N} */
	SPLIT(PRE_LLAMA3, "a\u00a0b", "a", "\u00a0b");                    /* NBSP: not a letter, before one */
	SPLIT(PRE_LLAMA3, "🙂🙂 ok", "🙂🙂", " ok");
}

Test(tokenizer_split, gpt2_regex_cases)
{
	SPLIT(PRE_GPT2, "Hello world", "Hello", " world");
	SPLIT(PRE_GPT2, "I'M", "I", "'", "M");                            /* contractions are lowercase only */
	SPLIT(PRE_GPT2, "it's", "it", "'s");
	SPLIT(PRE_GPT2, "12345 678", "12345", " 678");                    /* numbers are not cut to 3 */
	SPLIT(PRE_GPT2, "a  b", "a", " ", " b");
	SPLIT(PRE_GPT2, "x\n\ny", "x", "\n", "\n", "y");                  /* \s+(?!\S) then \s+ */
	SPLIT(PRE_GPT2, "hi!!", "hi", "!!");
}

Test(tokenizer_split, default_pre_tokenizer_applies_four_regexes_in_turn)
{
	/* punctuation runs, then GPT-2, then \p{N}+ splits " 1234" into " " "1234", then three digits */
	SPLIT(PRE_DEFAULT, "Hello, world! 1234", "Hello", ",", " world", "!", " ", "123", "4");
	SPLIT(PRE_DEFAULT, "a+b=c", "a", "+", "b", "=", "c");
}

/* ---- Unicode table ---------------------------------------------------------------------------- */

Test(tokenizer_unicode, categories_and_whitespace)
{
	cr_assert(eq(int, uni_category('A'), UNI_L));
	cr_assert(eq(int, uni_category('z'), UNI_L));
	cr_assert(eq(int, uni_category('5'), UNI_N));
	cr_assert(eq(int, uni_category('!'), UNI_P));
	cr_assert(eq(int, uni_category('$'), UNI_OTHER)); /* Sc */
	cr_assert(eq(int, uni_category(0xe9), UNI_L));    /* é */
	cr_assert(eq(int, uni_category(0x663), UNI_N));   /* ٣ */
	cr_assert(eq(int, uni_category(0x65e5), UNI_L));  /* 日 */
	cr_assert(eq(int, uni_category(0x2160), UNI_N));  /* Ⅰ, Nl */
	cr_assert(eq(int, uni_category(0x1f642), UNI_OTHER));
	cr_assert(eq(int, uni_category(0xbf), UNI_P));    /* ¿ */
	cr_assert(uni_is_space(0xa0) && uni_is_space(0x3000) && uni_is_space('\t'));
	cr_assert(not(uni_is_space(0x200b)));             /* zero width space is not White_Space */
	for (unsigned b = 0; b < 256; b++)
		cr_assert(eq(int, uni_cp_to_byte(uni_byte_to_cp((uint8_t)b)), (int)b));
	cr_assert(eq(u32, uni_byte_to_cp(' '), 0x120)); /* Ġ */
	cr_assert(eq(u32, uni_byte_to_cp('\n'), 0x10a)); /* Ċ */
}

/* ---- errors ------------------------------------------------------------------------------------ */

Test(tokenizer_bpe, refuses_an_unknown_pre_tokenizer_and_missing_merges)
{
	char *path = bpe_vocab("starcoder", false);
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	struct tokenizer *t = NULL;
	cr_assert(eq(int, tok_open(&t, r, "x.gguf", &err), -BN_EUNSUPPORTED));
	HAS(err.msg, "x.gguf: pre-tokenizer 'starcoder' is not supported");
	gguf_close(r);
	free(path);
}

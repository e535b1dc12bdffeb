/* The tokenizer stored in a GGUF (tokenizer.ggml.*), as llama.cpp's llama-vocab.cpp runs it:
 *   "llama"  SentencePiece-style BPE over scores: text with spaces escaped as U+2581 and a space
 *            prefix (tokenizer.ggml.add_space_prefix, default true), pairs merged best score
 *            first (leftmost on ties), unknown characters as <0xXX> byte tokens (or <unk>);
 *   "gpt2"   byte-level BPE over tokenizer.ggml.merges ranks after a pre-tokenizer chosen by
 *            tokenizer.ggml.pre: "llama3"/"llama-v3"/"llama-bpe"/"falcon3"/"falcon_e" use
 *            Llama-3's split regex (and skip merging a word that is itself a token), "gpt-2" the
 *            GPT-2 regex, "default" (or none) llama.cpp's default sequence of four regexes.
 * Special tokens (CONTROL, USER_DEFINED, UNKNOWN types) are cut out of the text before either
 * runs, longest first; control/unknown ones only when parse_special is set.  BOS/EOS are added
 * per tokenizer.ggml.add_bos_token / add_eos_token.  The split regexes are implemented by hand
 * (unicode.h gives the categories), as llama.cpp's unicode.cpp does; invalid UTF-8 bytes keep
 * their own byte (llama.cpp would substitute U+FFFD). */
#ifndef BR_TOKENIZER_H
#define BR_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"
#include "gguf.h"

/* tokenizer.ggml.token_type values */
enum tok_type {
	TOK_UNDEFINED = 0,
	TOK_NORMAL = 1,
	TOK_UNKNOWN = 2,
	TOK_CONTROL = 3,
	TOK_USER_DEFINED = 4,
	TOK_UNUSED = 5,
	TOK_BYTE = 6,
};

enum tok_model { TOK_SPM, TOK_BPE };
enum tok_pre { PRE_NONE, PRE_LLAMA3, PRE_GPT2, PRE_DEFAULT };

struct tokenizer;

/* Reads the vocabulary from an open GGUF (the strings are copied: r may be closed afterwards).
 * Free with tok_close. */
int tok_open(struct tokenizer **out, const struct gguf_reader *r, const char *what, struct bn_err *err);
void tok_close(struct tokenizer *t);

/* Tokenizes text[0..len).  add_special: BOS/EOS as the model asks; parse_special: control
 * tokens written in the text become those tokens.  *ids is malloc'd (caller frees), *n set. */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
	       int32_t **ids, size_t *n, struct bn_err *err);

/* The bytes a token stands for in output text (control and unknown tokens: nothing unless
 * special).  Returns the length (may exceed size: then only size bytes were written). */
size_t tok_piece(const struct tokenizer *t, int32_t id, bool special, char *buf, size_t size);

uint32_t tok_n_vocab(const struct tokenizer *t);
enum tok_model tok_model(const struct tokenizer *t);
enum tok_pre tok_pre(const struct tokenizer *t);
int32_t tok_bos(const struct tokenizer *t); /* -1 if none */
int32_t tok_eos(const struct tokenizer *t);
bool tok_add_bos(const struct tokenizer *t);
/* End of generation: EOS, EOT and the end-of-turn tokens llama.cpp recognises by their text. */
bool tok_is_eog(const struct tokenizer *t, int32_t id);
/* The id of the token whose text is exactly s, or -1. */
int32_t tok_find(const struct tokenizer *t, const char *s);
/* Raw stored text of a token (not NUL-terminated in general; *len set), NULL if out of range. */
const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len);
enum tok_type tok_type_of(const struct tokenizer *t, int32_t id);

/* The pre-tokenizer alone: the byte offsets where the words of text[0..len) end (*ends is
 * malloc'd, caller frees).  For tests and tools; tok_encode does this internally. */
int tok_split(enum tok_pre pre, const char *text, size_t len, size_t **ends, size_t *n, struct bn_err *err);

#endif

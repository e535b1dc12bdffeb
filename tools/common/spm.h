/* SentencePiece tokenizer.model (a protobuf ModelProto) reader and writer.  Invariant: the
 * reader never reads outside the buffer it is given, whatever the bytes; unknown fields are
 * skipped by wire type, known fields with the wrong wire type are errors.
 *
 * What we read (../shared/docs/convert-quantize.md §6.1): ModelProto field 1 (repeated
 * SentencePiece, wire 2); in each piece field 1 piece (string), 2 score (float, wire 5,
 * default 0), 3 type (varint enum, default 1 NORMAL).  Also, for information,
 * trainer_spec (field 2) {3 model_type, 4 vocab_size, 35 byte_fallback} and normalizer_spec
 * (field 3) {1 name, 3 add_dummy_prefix, 4 remove_extra_whitespaces}. */
#ifndef SPM_H
#define SPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

#define SPM_MAX_PIECES (1u << 22)   /* 4M pieces; real vocabularies are <= 256K */
#define SPM_MAX_FILE (256u << 20)   /* tokenizer.model size cap for spm_load */

/* SentencePiece piece types (sentencepiece_model.proto). */
enum spm_type {
	SPM_NORMAL = 1,
	SPM_UNKNOWN = 2,
	SPM_CONTROL = 3,
	SPM_USER_DEFINED = 4,
	SPM_UNUSED = 5,
	SPM_BYTE = 6,
};

struct spm_piece {
	const char *piece; /* NUL-terminated copy (may contain NULs itself: use len) */
	size_t len;
	float score;
	enum spm_type type;
};

struct spm_model {
	size_t n_pieces;
	struct spm_piece *pieces;
	/* trainer_spec / normalizer_spec; -1 where the file does not say */
	int model_type;               /* 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR */
	int64_t vocab_size;
	int byte_fallback;
	int add_dummy_prefix;
	int remove_extra_whitespaces;
	char *normalizer_name;        /* NULL if absent */
	/* private */
	char *arena;
};

/* Parses a serialized ModelProto; `what` names it in errors.  The model owns copies of every
 * string; free with spm_free.  A file without pieces is an error. */
int spm_parse(struct spm_model *m, const uint8_t *buf, size_t len, const char *what,
	      struct bn_err *err);
/* Reads and parses a tokenizer.model file. */
int spm_load(struct spm_model *m, const char *path, struct bn_err *err);
void spm_free(struct spm_model *m);

/* What spm_serialize writes after the pieces: trainer_spec {model_type (if > 0), vocab_size =
 * number of pieces, byte_fallback (if set)} and normalizer_spec {name (if non-NULL),
 * add_dummy_prefix, remove_extra_whitespaces}. */
struct spm_write_opts {
	int model_type;                /* 0 = omit */
	bool byte_fallback;
	const char *normalizer_name;   /* NULL = no normalizer_spec at all */
	bool add_dummy_prefix;
	bool remove_extra_whitespaces;
};

/* Serializes pieces as protobuf: each piece message holds field 1 piece, field 2 score (always
 * written, 0.0 included) and field 3 type only when it is not NORMAL; fields in number order,
 * as the protobuf library writes them.  *out is malloc'd (caller frees). */
int spm_serialize(const struct spm_piece *pieces, size_t n, const struct spm_write_opts *opts,
		  uint8_t **out, size_t *out_len, struct bn_err *err);

#endif

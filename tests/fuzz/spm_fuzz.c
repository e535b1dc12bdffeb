/* Fuzz target: the SentencePiece tokenizer.model (protobuf) reader. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spm_model m;
	struct bn_err err;
	if (spm_parse(&m, data, size, "fuzz", &err) != 0)
		return 0;
	volatile size_t sink = 0;
	for (size_t i = 0; i < m.n_pieces; i++) {
		const struct spm_piece *p = &m.pieces[i];
		if (p->piece[p->len] != '\0' || p->type < SPM_NORMAL || p->type > SPM_BYTE)
			__builtin_trap();
		sink += p->len ? (unsigned char)p->piece[p->len - 1] : 0;
	}
	(void)sink;
	spm_free(&m);
	return 0;
}

/* libFuzzer target for the engine's loader: any bytes through the GGUF reader, then the model
 * validation (hyperparameters against tensor shapes and types, model.c) and the tokenizer's
 * vocabulary reader with one short encode (tokenizer.c).  Neither may crash, read out of
 * bounds or leak, whatever the file says.  The engine sources are included directly (the fuzz
 * build links only the shared core).  Seeds: tests/fuzz/model_load/ (tiny valid models). */
#include <stddef.h>
#include <stdint.h>

#include "../../tools/bitnet-run/model.c"
#include "../../tools/bitnet-run/tokenizer.c"
#include "../../tools/bitnet-run/unicode.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open_mem(data, size, "fuzz.gguf", &err);
	if (!r)
		return 0;
	struct tokenizer *t = NULL;
	if (tok_open(&t, r, "fuzz.gguf", &err) == 0) {
		static const char text[] = "Hello, world! <s> 12345 caf\xc3\xa9 \xff";
		int32_t *ids = NULL;
		size_t n = 0;
		if (tok_encode(t, text, sizeof text - 1, true, true, &ids, &n, &err) == 0) {
			char buf[64];
			for (size_t i = 0; i < n; i++)
				tok_piece(t, ids[i], true, buf, sizeof buf);
		}
		free(ids);
		tok_close(t);
	}
	struct model m;
	if (model_load(&m, r, "fuzz.gguf", &err) == 0) { /* model_load owns r from here on */
		(void)model_bytes_per_token(&m);
		model_close(&m);
	}
	return 0;
}

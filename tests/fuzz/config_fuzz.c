/* Fuzz target: gguf-convert's readers of downloaded model files: config.json (class, arch and
 * hyper-parameters), tokenizer.json (BPE vocabulary, added tokens, merges in both formats) with
 * tokenizer_config.json's special tokens and chat templates, and tokenizer.model with
 * added_tokens.json.  The first input byte picks the reader; the converter's sources are
 * compiled in because the fuzz build links only the shared core. */
#include <stddef.h>
#include <stdint.h>

#include "../../tools/gguf-convert/config.c"
#include "../../tools/gguf-convert/vocab.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	bn_log_level = BN_LOG_QUIET;
	struct bn_err err;
	const char *text = (const char *)data + 3;
	size_t len = size - 3;
	uint32_t vocab = (uint32_t)data[1] | (uint32_t)data[2] << 8;
	switch (data[0] % 3) {
	case 0: {
		struct cv_config c;
		const struct cv_config_opts o = { .arch = (data[1] & 1) ? "bitnet" : NULL };
		if (cv_config_parse(&c, text, len, "config.json", &o, &err) == 0)
			cv_config_free(&c);
		break;
	}
	case 1: {
		json_t *j = bn_json_parse(text, len, "tokenizer.json", &err);
		if (!j)
			break;
		struct cv_vocab v = { 0 };
		cv_vocab_bpe(&v, j, vocab, &err);
		cv_vocab_free(&v);
		cv_vocab_special(&v, j, json_object_get(j, "tokenizer_config"), j, true,
				 data[1] & 1 ? 0 : vocab, &err);
		cv_vocab_free(&v);
		json_decref(j);
		break;
	}
	default: {
		struct cv_vocab v = { 0 };
		cv_vocab_spm(&v, (const uint8_t *)text, len, NULL, vocab, &err);
		cv_vocab_free(&v);
		break;
	}
	}
	return 0;
}

/* Fuzz target: the JSON loader used for config.json, tokenizer files and Hub API answers. */
#include <stddef.h>
#include <stdint.h>

#include "bn_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_err err;
	json_t *j = bn_json_parse((const char *)data, size, "fuzz", &err);
	json_decref(j);
	return 0;
}

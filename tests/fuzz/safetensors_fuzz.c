/* Fuzz target: the safetensors header parser and offset checks (checkpoints come from the
 * internet).  Every tensor the reader accepts must lie inside the input: reading its first and
 * last element would trip ASan otherwise. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int order = 0; order < 2; order++) {
		struct st_model *m = NULL;
		struct bn_err err;
		if (st_open_buffer(&m, data, size, "fuzz", (enum st_order)order, &err) != 0) {
			if (memchr(err.msg, '\n', strnlen(err.msg, sizeof err.msg)))
				__builtin_trap(); /* errors are one line */
			continue;
		}
		volatile float sink = 0;
		for (size_t i = 0; i < m->n_tensors; i++) {
			const struct st_tensor *t = &m->tensors[i];
			if (st_find(m, t->name) != t)
				__builtin_trap();
			if (t->n_elements) {
				sink += st_get_f32(t, 0);
				sink += st_get_f32(t, t->n_elements - 1);
			}
		}
		(void)sink;
		(void)st_metadata(m, 0, "format");
		st_close(m);
	}
	return 0;
}

/* Fuzz target: the GGUF reader (tools/common/gguf.c).  Any input must either be rejected with
 * a one-line error or give a reader whose every value, array element, lookup and tensor byte
 * can be read without leaving the input buffer.  Seeds: tests/fuzz/gguf/ (made by the writer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

static volatile uint64_t sink;

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open_mem(data, size, "fuzz", &err);
	if (!r) {
		check(err.code != 0 && err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
		return 0;
	}
	uint64_t sum = 0;
	for (size_t i = 0; i < gguf_n_kv(r); i++) {
		const char *key = gguf_kv_key(r, (int64_t)i);
		check(gguf_find_key(r, key) == (int64_t)i);
		const uint8_t *rec;
		size_t len;
		check(gguf_kv_raw(r, (int64_t)i, &rec, &len) == 0);
		check(rec >= data && len <= size && rec + len <= data + size);
		sum += rec[len - 1];
		struct gguf_value v;
		check(gguf_get_value(r, (int64_t)i, &v, &err) == 0);
		if (v.type == GGUF_VTYPE_STRING && v.v.str.len)
			sum += (uint8_t)v.v.str.data[v.v.str.len - 1];
		if (v.type != GGUF_VTYPE_ARRAY) {
			uint32_t u32;
			int rc = gguf_get_u32(r, (int64_t)i, &u32, &err);
			check((rc == 0) == (v.type == GGUF_VTYPE_UINT32));
			continue;
		}
		uint64_t n;
		check(gguf_get_arr(r, (int64_t)i, v.v.arr.type, &n, &err) == 0 && n == v.v.arr.n);
		for (uint64_t j = 0; j < n; j++) {
			struct gguf_value e;
			check(gguf_get_arr_value(r, (int64_t)i, j, &e, &err) == 0);
			if (e.type == GGUF_VTYPE_STRING && e.v.str.len)
				sum += (uint8_t)e.v.str.data[0] + (uint8_t)e.v.str.data[e.v.str.len - 1];
			else
				sum += e.v.u8;
		}
		struct gguf_value past;
		check(gguf_get_arr_value(r, (int64_t)i, n, &past, &err) < 0);
	}
	for (size_t i = 0; i < gguf_n_tensors(r); i++) {
		const struct gguf_tensor *t = gguf_tensor(r, i);
		check(gguf_find_tensor(r, t->name) == (int64_t)i);
		uint64_t nb;
		check(gguf_tensor_nbytes(t->type, t->n_dims, t->ne, &nb, &err) == 0 && nb == t->nbytes);
		check(t->data >= data && t->nbytes <= size && (size_t)(t->data - data) <= size - t->nbytes);
		if (t->nbytes)
			sum += t->data[0] + t->data[t->nbytes - 1];
	}
	sink = sum;
	gguf_close(r);
	return 0;
}

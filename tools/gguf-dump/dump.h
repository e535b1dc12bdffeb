/* gguf-dump's printers: a GGUF's header, KVs and tensor table, for humans or as one JSON
 * document.  Both read only through the gguf_ reader API, so whatever it accepts prints. */
#ifndef GGUF_DUMP_H
#define GGUF_DUMP_H

#include <stdbool.h>
#include <stdio.h>

#include "bn_err.h"
#include "gguf.h"

struct dump_opts {
	bool kv;      /* print the KVs */
	bool tensors; /* print the tensor table */
};

/* Human form: strings quoted with C escapes and cut after DUMP_STR_MAX bytes, arrays cut after
 * DUMP_ARR_MAX elements (with their count), one line per KV and per tensor. */
#define DUMP_STR_MAX 100
#define DUMP_ARR_STR_MAX 40
#define DUMP_ARR_MAX 8
int dump_human(FILE *out, const struct gguf_reader *r, const char *path,
	       const struct dump_opts *o, struct bn_err *err);

/* JSON form: every value in full (see gguf-dump --help for the schema). */
int dump_json(FILE *out, const struct gguf_reader *r, const char *path,
	      const struct dump_opts *o, struct bn_err *err);

#endif

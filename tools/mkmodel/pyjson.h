/* JSON text in the layout of Python's json.dumps(indent=2) (and serde_json's pretty printer,
 * which matches it for the values we write). */
#ifndef PYJSON_H
#define PYJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct py_json_opts {
	bool sort_keys;    /* json.dumps(sort_keys=True) */
	bool ensure_ascii; /* escape non-ASCII as \uXXXX (Python's default); false = raw UTF-8 */
	bool newline;      /* append "\n" (transformers does) */
};

/* Malloc'd NUL-terminated text (caller frees), NULL on allocation failure. */
char *py_json_dumps(const json_t *j, const struct py_json_opts *opts, size_t *len);

/* Python's repr() of a float: 1e-05, 10000.0, 0.02, 1e+16. */
void py_float_repr(double x, char *buf, size_t size);

#endif

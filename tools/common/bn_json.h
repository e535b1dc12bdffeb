/* JSON files through jansson, with a size cap and one-line errors ("file:line:col: why"). */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "bn_err.h"

/* Loads and parses a JSON file of at most max_bytes.  Caller releases with json_decref. */
json_t *bn_json_load(const char *path, size_t max_bytes, struct bn_err *err);
/* Parses a buffer (not NUL-terminated); `what` names it in errors. */
json_t *bn_json_parse(const char *buf, size_t len, const char *what, struct bn_err *err);

#endif

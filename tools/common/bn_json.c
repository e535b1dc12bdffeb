/* JSON loading with caps and readable errors (see bn_json.h). */
#include "bn_json.h"

#include <stdlib.h>

#include "bn_file.h"

json_t *bn_json_parse(const char *buf, size_t len, const char *what, struct bn_err *err)
{
	json_error_t je;
	/* REJECT_DUPLICATES: a header that names a tensor twice is ambiguous, not "last wins". */
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!j)
		bn_seterr(err, BN_EFORMAT, "%s:%d:%d: invalid JSON: %s", what, je.line, je.column,
			  je.text);
	return j;
}

json_t *bn_json_load(const char *path, size_t max_bytes, struct bn_err *err)
{
	char *buf;
	size_t len;
	if (bn_read_file(path, max_bytes, &buf, &len, err))
		return NULL;
	json_t *j = bn_json_parse(buf, len, path, err);
	free(buf);
	return j;
}

/* Fuzz target: hfget's parsers of Hub answers (repo info with siblings, tree listing pages, Link
 * headers) and the listing checks that follow them, on the same bytes.  The first byte picks
 * the parser so one corpus covers all of them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hf_listing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	struct hf_listing l = { 0 };
	struct bn_err err;
	bool usable;
	switch (data[0] % 3) {
	case 0:
		if (hf_listing_parse_info(&l, buf, len, &usable, &err) == 0)
			hf_listing_finish(&l, &err);
		break;
	case 1:
		if (hf_listing_parse_tree(&l, buf, len, &err) == 0 && hf_listing_parse_tree(&l, buf, len, &err) == 0)
			hf_listing_finish(&l, &err); /* the same page twice: duplicates */
		break;
	default: {
		char *s = malloc(len + 1);
		memcpy(s, buf, len);
		s[len] = '\0';
		free(hf_link_next(s));
		hf_path_check(s, &err);
		free(s);
	}
	}
	for (size_t i = 0; i < l.n; i++)
		(void)hf_listing_find(&l, l.files[i].path);
	hf_listing_free(&l);
	return 0;
}

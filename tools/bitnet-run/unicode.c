/* Unicode helpers (unicode.h): a binary search over the generated category ranges, the
 * White_Space list and GPT-2's byte alphabet. */
#include "unicode.h"

struct uni_range {
	uint32_t first, last;
	uint8_t cat;
};

#include "unicode_table.h"

size_t uni_decode(const char *str, size_t len, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		goto invalid;
	}
	if (n > len)
		goto invalid;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto invalid;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		goto invalid;
	*cp = v;
	return n;
invalid:
	*cp = UNI_INVALID_BASE + c;
	return 1;
}

size_t uni_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

enum uni_cat uni_category(uint32_t cp)
{
	size_t lo = 0, hi = sizeof uni_ranges / sizeof *uni_ranges;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < uni_ranges[mid].first)
			hi = mid;
		else if (cp > uni_ranges[mid].last)
			lo = mid + 1;
		else
			return (enum uni_cat)uni_ranges[mid].cat;
	}
	return UNI_OTHER;
}

int uni_is_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
	       cp == 0x3000;
}

/* GPT-2 bytes_to_unicode: '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the other 68
 * bytes take 256, 257, ... in increasing byte order. */
static int printable(unsigned b)
{
	return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t uni_byte_to_cp(uint8_t b)
{
	if (printable(b))
		return b;
	uint32_t n = 0;
	for (unsigned i = 0; i < b; i++)
		n += !printable(i);
	return 256 + n;
}

int uni_cp_to_byte(uint32_t cp)
{
	if (cp < 256)
		return printable(cp) ? (int)cp : -1;
	uint32_t n = 256;
	for (unsigned b = 0; b < 256; b++)
		if (!printable(b) && n++ == cp)
			return (int)b;
	return -1;
}

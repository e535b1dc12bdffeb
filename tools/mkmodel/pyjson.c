/* JSON text as Python's json.dumps(obj, indent=2) writes it (what transformers and the Hub tools
 * write for config.json, tokenizer_config.json and the shard index): "key": value, one member per
 * line, floats as Python's repr (1e-05, 10000.0).  Invariant: the output parses back to the
 * same jansson value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"
#include "pyjson.h"

static void indent(struct bn_buf *o, int level)
{
	static const char sp[] = "                                ";
	for (int i = 0; i < level; i++)
		bn_buf_put(o, sp, 2);
}

/* Decodes one UTF-8 sequence at s (jansson strings are valid UTF-8); returns its length. */
static size_t utf8_dec(const unsigned char *s, unsigned *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		*cp = (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0) {
		*cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	*cp = (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 |
	      (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	return 4;
}

static void put_string(struct bn_buf *o, const char *str, size_t len, bool ascii)
{
	char esc[16];
	bn_buf_put(o, "\"", 1);
	const unsigned char *s = (const unsigned char *)str, *end = s + len;
	while (s < end) {
		unsigned c = *s;
		switch (c) {
		case '"': bn_buf_puts(o, "\\\""); s++; continue;
		case '\\': bn_buf_puts(o, "\\\\"); s++; continue;
		case '\n': bn_buf_puts(o, "\\n"); s++; continue;
		case '\r': bn_buf_puts(o, "\\r"); s++; continue;
		case '\t': bn_buf_puts(o, "\\t"); s++; continue;
		case '\b': bn_buf_puts(o, "\\b"); s++; continue;
		case '\f': bn_buf_puts(o, "\\f"); s++; continue;
		default: break;
		}
		if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			bn_buf_puts(o, esc);
			s++;
		} else if (c < 0x80 || !ascii) {
			bn_buf_put(o, (const char *)s, 1);
			s++;
		} else {
			unsigned cp;
			s += utf8_dec(s, &cp);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
					 0xdc00 + (cp & 0x3ff));
			} else {
				snprintf(esc, sizeof esc, "\\u%04x", cp);
			}
			bn_buf_puts(o, esc);
		}
	}
	bn_buf_put(o, "\"", 1);
}

void py_float_repr(double x, char *buf, size_t size)
{
	if (isnan(x)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(x)) {
		snprintf(buf, size, x < 0 ? "-Infinity" : "Infinity");
		return;
	}
	/* Shortest round-tripping digits, then Python's choice of notation: positional for
	 * decimal exponents -4 <= e < 16, scientific with a signed 2+ digit exponent otherwise. */
	char e[40];
	int p;
	for (p = 1; p <= 17; p++) {
		snprintf(e, sizeof e, "%.*e", p - 1, x);
		if (strtod(e, NULL) == x)
			break;
	}
	char *ep = strchr(e, 'e');
	int exp10 = atoi(ep + 1);
	if (exp10 >= -4 && exp10 < 16) {
		int decimals = p - 1 - exp10;
		snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, x);
		if (!strchr(buf, '.'))
			strncat(buf, ".0", size - strlen(buf) - 1);
		return;
	}
	*ep = '\0';
	snprintf(buf, size, "%se%c%02d", e, exp10 < 0 ? '-' : '+', abs(exp10));
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void dump(struct bn_buf *o, const json_t *j, int level, const struct py_json_opts *opts)
{
	char num[64];
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(j);
		if (n == 0) {
			bn_buf_puts(o, "{}");
			return;
		}
		const char **keys = malloc(n * sizeof *keys);
		if (!keys) {
			o->oom = true;
			return;
		}
		size_t k = 0;
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)j, key, v) keys[k++] = key;
		if (opts->sort_keys)
			qsort(keys, n, sizeof *keys, cmp_keys);
		bn_buf_puts(o, "{\n");
		for (size_t i = 0; i < n; i++) {
			indent(o, level + 1);
			put_string(o, keys[i], strlen(keys[i]), opts->ensure_ascii);
			bn_buf_puts(o, ": ");
			dump(o, json_object_get(j, keys[i]), level + 1, opts);
			bn_buf_puts(o, i + 1 < n ? ",\n" : "\n");
		}
		indent(o, level);
		bn_buf_puts(o, "}");
		free(keys);
		return;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		if (n == 0) {
			bn_buf_puts(o, "[]");
			return;
		}
		bn_buf_puts(o, "[\n");
		for (size_t i = 0; i < n; i++) {
			indent(o, level + 1);
			dump(o, json_array_get(j, i), level + 1, opts);
			bn_buf_puts(o, i + 1 < n ? ",\n" : "\n");
		}
		indent(o, level);
		bn_buf_puts(o, "]");
		return;
	}
	case JSON_STRING:
		put_string(o, json_string_value(j), json_string_length(j), opts->ensure_ascii);
		return;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		bn_buf_puts(o, num);
		return;
	case JSON_REAL:
		py_float_repr(json_real_value(j), num, sizeof num);
		bn_buf_puts(o, num);
		return;
	case JSON_TRUE: bn_buf_puts(o, "true"); return;
	case JSON_FALSE: bn_buf_puts(o, "false"); return;
	case JSON_NULL: bn_buf_puts(o, "null"); return;
	}
}

char *py_json_dumps(const json_t *j, const struct py_json_opts *opts, size_t *len)
{
	struct bn_buf o = { 0 };
	dump(&o, j, 0, opts);
	if (opts->newline)
		bn_buf_puts(&o, "\n");
	if (o.oom || !o.p) {
		free(o.p);
		return NULL;
	}
	if (len)
		*len = o.len;
	return o.p;
}

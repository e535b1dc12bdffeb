/* JSON text as Python's json.dumps(obj, indent=2) writes it (what transformers and the Hub tools
 * write for config.json, tokenizer_config.json and the shard index): "key": value, one member per
 * line, floats as Python's repr (1e-05, 10000.0).  Invariant: the output parses back to the
 * same jansson value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyjson.h"

struct out {
	char *p;
	size_t n, cap;
	bool oom;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->n + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->n + n + 1)
			cap *= 2;
		char *np = realloc(o->p, cap);
		if (!np) {
			o->oom = true;
			return;
		}
		o->p = np;
		o->cap = cap;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void indent(struct out *o, int level)
{
	static const char sp[] = "                                ";
	for (int i = 0; i < level; i++)
		put(o, sp, 2);
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

static void put_string(struct out *o, const char *str, size_t len, bool ascii)
{
	char esc[16];
	put(o, "\"", 1);
	const unsigned char *s = (const unsigned char *)str, *end = s + len;
	while (s < end) {
		unsigned c = *s;
		switch (c) {
		case '"': puts_(o, "\\\""); s++; continue;
		case '\\': puts_(o, "\\\\"); s++; continue;
		case '\n': puts_(o, "\\n"); s++; continue;
		case '\r': puts_(o, "\\r"); s++; continue;
		case '\t': puts_(o, "\\t"); s++; continue;
		case '\b': puts_(o, "\\b"); s++; continue;
		case '\f': puts_(o, "\\f"); s++; continue;
		default: break;
		}
		if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			puts_(o, esc);
			s++;
		} else if (c < 0x80 || !ascii) {
			put(o, (const char *)s, 1);
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
			puts_(o, esc);
		}
	}
	put(o, "\"", 1);
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

static void dump(struct out *o, const json_t *j, int level, const struct py_json_opts *opts)
{
	char num[64];
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(j);
		if (n == 0) {
			puts_(o, "{}");
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
		puts_(o, "{\n");
		for (size_t i = 0; i < n; i++) {
			indent(o, level + 1);
			put_string(o, keys[i], strlen(keys[i]), opts->ensure_ascii);
			puts_(o, ": ");
			dump(o, json_object_get(j, keys[i]), level + 1, opts);
			puts_(o, i + 1 < n ? ",\n" : "\n");
		}
		indent(o, level);
		puts_(o, "}");
		free(keys);
		return;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		if (n == 0) {
			puts_(o, "[]");
			return;
		}
		puts_(o, "[\n");
		for (size_t i = 0; i < n; i++) {
			indent(o, level + 1);
			dump(o, json_array_get(j, i), level + 1, opts);
			puts_(o, i + 1 < n ? ",\n" : "\n");
		}
		indent(o, level);
		puts_(o, "]");
		return;
	}
	case JSON_STRING:
		put_string(o, json_string_value(j), json_string_length(j), opts->ensure_ascii);
		return;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		puts_(o, num);
		return;
	case JSON_REAL:
		py_float_repr(json_real_value(j), num, sizeof num);
		puts_(o, num);
		return;
	case JSON_TRUE: puts_(o, "true"); return;
	case JSON_FALSE: puts_(o, "false"); return;
	case JSON_NULL: puts_(o, "null"); return;
	}
}

char *py_json_dumps(const json_t *j, const struct py_json_opts *opts, size_t *len)
{
	struct out o = { 0 };
	dump(&o, j, 0, opts);
	if (opts->newline)
		puts_(&o, "\n");
	if (o.oom || !o.p) {
		free(o.p);
		return NULL;
	}
	if (len)
		*len = o.n;
	return o.p;
}

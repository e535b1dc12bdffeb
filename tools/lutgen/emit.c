/* Header rendering: a small template engine over tmpl/tl{1,2}.h.in, which are compiled into the
 * binary with .incbin (so they stay real, readable files; make lists them as prerequisites of
 * this object).  Template syntax: "@@for shape" ... "@@end" repeats lines per shape, @NAME@ is a
 * slot, "@@#" lines are comments.  An unknown slot is an error, so template typos cannot reach a
 * generated file. */
#include "lutgen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"

/* The templates, NUL-terminated.  Paths are relative to the directory make runs the compiler in
 * (the repository root). */
__asm__(".section .rodata\n"
	".balign 16\n"
	".global lutgen_tmpl_tl1\n"
	"lutgen_tmpl_tl1:\n"
	".incbin \"tools/lutgen/tmpl/tl1.h.in\"\n"
	".byte 0\n"
	".balign 16\n"
	".global lutgen_tmpl_tl2\n"
	"lutgen_tmpl_tl2:\n"
	".incbin \"tools/lutgen/tmpl/tl2.h.in\"\n"
	".byte 0\n"
	".previous\n");
extern const char lutgen_tmpl_tl1[];
extern const char lutgen_tmpl_tl2[];

const char *lutgen_template(enum lut_quant q)
{
	return q == LUT_TL1 ? lutgen_tmpl_tl1 : lutgen_tmpl_tl2;
}

struct ctx {
	enum lut_quant q;
	const struct lut_params *p;
	size_t n;
	const char *kernel_config; /* C string literal(s) */
};

/* Value of slot `name` (len bytes) for shape i (SIZE_MAX outside a loop) into out. */
static int slot(const struct ctx *c, const char *name, size_t len, size_t i, char *out, size_t size)
{
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
	if (IS("VERSION"))
		snprintf(out, size, "%s", LUTGEN_VERSION);
	else if (IS("N"))
		snprintf(out, size, "%zu", c->n);
	else if (IS("KERNEL_CONFIG"))
		return 1; /* long: the caller copies c->kernel_config */
	else if (i == SIZE_MAX)
		return -1;
	else {
		const struct lut_params *p = &c->p[i];
		uint32_t v;
		if (IS("I"))
			v = (uint32_t)i;
		else if (IS("M"))
			v = p->m;
		else if (IS("K"))
			v = p->k;
		else if (IS("BM"))
			v = p->BM;
		else if (IS("BK"))
			v = p->BK;
		else if (IS("bm"))
			v = p->bm;
		else if (IS("THREE_K"))
			v = p->three_k;
		else if (IS("TWO_K"))
			v = p->two_k;
		else if (IS("TILES"))
			v = p->m / p->BM;
		else
			return -1;
		snprintf(out, size, "%" PRIu32, v);
	}
	return 0;
#undef IS
}

static int emit_line(const struct ctx *c, struct bn_buf *b, const char *line, size_t len, size_t i,
		     unsigned lineno, struct bn_err *err)
{
	const char *s = line, *end = line + len;
	while (s < end) {
		const char *at = memchr(s, '@', (size_t)(end - s));
		if (!at) {
			bn_buf_put(b, s, (size_t)(end - s));
			break;
		}
		bn_buf_put(b, s, (size_t)(at - s));
		const char *close = memchr(at + 1, '@', (size_t)(end - at - 1));
		char val[32];
		int r = close ? slot(c, at + 1, (size_t)(close - at - 1), i, val, sizeof val) : -1;
		if (r < 0)
			return bn_seterr(err, BN_EINVAL, "template %s.h.in:%u: unknown slot in '%.*s'",
					 lut_quant_name(c->q), lineno, (int)len, line);
		bn_buf_puts(b, r == 1 ? c->kernel_config : val);
		s = close + 1;
	}
	bn_buf_put(b, "\n", 1);
	return 0;
}

/* The kernel_config.ini text as C string literals, one per line. */
static char *c_literal(const char *ini, size_t len)
{
	struct bn_buf b = { 0 };
	const char *s = ini, *end = ini + len;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (b.len)
			bn_buf_puts(&b, "\n\t");
		bn_buf_puts(&b, "\"");
		bn_buf_put(&b, s, n); /* ini text: digits, letters, '_', ' ', '=', '[' and ']' only */
		bn_buf_puts(&b, nl ? "\\n\"" : "\"");
		s += n + (nl ? 1 : 0);
	}
	if (!b.len)
		bn_buf_puts(&b, "\"\"");
	return b.oom ? (free(b.p), NULL) : b.p;
}

int lutgen_render_header(enum lut_quant q, const struct lut_params *p, size_t n, char **out,
			 size_t *len, struct bn_err *err)
{
	char *ini = NULL, *lit = NULL;
	size_t ini_len;
	struct bn_buf b = { 0 };
	int rc = lut_ini_format(p, n, &ini, &ini_len, err);
	if (rc)
		return rc;
	lit = c_literal(ini, ini_len);
	if (!lit) {
		rc = bn_seterr(err, BN_ENOMEM, "bitnet-lut-kernels.h: out of memory");
		goto out;
	}
	struct ctx c = { q, p, n, lit };
	const char *t = lutgen_template(q);
	const char *loop = NULL; /* first line of the loop body */
	unsigned lineno = 0, loop_line = 0;
	for (const char *line = t; *line;) {
		const char *nl = strchr(line, '\n');
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		const char *next = nl ? nl + 1 : line + l;
		lineno++;
		if (l >= 2 && line[0] == '@' && line[1] == '@') {
			if (l >= 11 && strncmp(line, "@@for shape", 11) == 0) {
				loop = next;
				loop_line = lineno;
			} else if (strncmp(line, "@@end", 5) == 0 && loop) {
				for (size_t i = 0; i < n; i++) {
					unsigned ln = loop_line;
					for (const char *bl = loop; bl < line;) {
						const char *bnl = strchr(bl, '\n');
						ln++;
						rc = emit_line(&c, &b, bl, (size_t)(bnl - bl), i, ln, err);
						if (rc)
							goto out;
						bl = bnl + 1;
					}
				}
				loop = NULL;
			} else if (line[2] != '#') {
				rc = bn_seterr(err, BN_EINVAL, "template %s.h.in:%u: unknown directive",
					       lut_quant_name(q), lineno);
				goto out;
			}
		} else if (!loop) {
			rc = emit_line(&c, &b, line, l, SIZE_MAX, lineno, err);
			if (rc)
				goto out;
		}
		line = next;
	}
	if (loop) {
		rc = bn_seterr(err, BN_EINVAL, "template %s.h.in:%u: @@for without @@end",
			       lut_quant_name(q), loop_line);
		goto out;
	}
	if (b.oom) {
		rc = bn_seterr(err, BN_ENOMEM, "bitnet-lut-kernels.h: out of memory");
		goto out;
	}
	*out = b.p;
	*len = b.len;
	b.p = NULL;
out:
	free(b.p);
	free(ini);
	free(lit);
	return rc;
}

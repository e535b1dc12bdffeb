/* --include / --exclude patterns with the semantics of Python's fnmatch.fnmatchcase, which the
 * official client uses (§7): '*' matches any run of characters *including* '/', '?' exactly one
 * character, '[...]' a class ('!' negates, ranges a-z, reversed ranges are empty), no escape
 * character, and an unclosed '[' is literal.  Matching is on Unicode code points. */
#include <stdlib.h>
#include <string.h>

#include "hf.h"

enum { T_LIT, T_ANY, T_STAR, T_CLASS };

struct range {
	uint32_t lo, hi;
};

struct tok {
	int kind;
	uint32_t cp;       /* T_LIT */
	bool negate;       /* T_CLASS */
	bool never, any;   /* T_CLASS that matches nothing / every character */
	struct range *r;   /* T_CLASS: into the pattern's range pool */
	size_t nr;
};

/* Decodes UTF-8 into code points (invalid bytes become themselves, as surrogateescape would map
 * them to distinct code points); '\\' is read as '/'.  Returns the count. */
static size_t decode(const char *s, uint32_t *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	while (*p) {
		uint32_t c = *p;
		int extra = c >= 0xf0 && c < 0xf8 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (c >= 0x80 && c < 0xc0)
			extra = 0;
		bool ok = extra > 0;
		for (int i = 1; i <= extra && ok; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (c < 0x80) {
			p++;
		} else if (ok) {
			c &= 0x3fu >> extra;
			for (int i = 1; i <= extra; i++)
				c = (c << 6) | (p[i] & 0x3fu);
			p += extra + 1;
		} else {
			c = 0xdc00u + *p; /* lone byte */
			p++;
		}
		out[n++] = c == '\\' ? '/' : c;
	}
	return n;
}

/* Builds the class of pat[i..j) as Python's fnmatch.translate() does: split at the dashes that
 * act as range operators, drop reversed ranges (merging their neighbours), then every chunk's
 * characters are literals and each pair of adjacent chunks contributes one range. */
static void build_class(const uint32_t *pat, size_t i, size_t j, struct tok *t, struct range *pool)
{
	size_t n = j - i;
	/* chunks live in one buffer; chunk c is buf[off[c] .. off[c]+len[c]) */
	uint32_t *buf = malloc((n + 2) * sizeof *buf);
	size_t *off = malloc((n + 2) * sizeof *off), *len = malloc((n + 2) * sizeof *len);
	size_t nc = 0, used = 0;
	if (!buf || !off || !len) {
		t->never = true;
		goto out;
	}
	size_t k = pat[i] == '!' ? i + 2 : i + 1, start = i;
	for (;;) {
		size_t d = k;
		while (d < j && pat[d] != '-')
			d++;
		if (d >= j)
			break;
		off[nc] = used;
		len[nc] = d - start;
		memcpy(buf + used, pat + start, len[nc] * sizeof *buf);
		used += len[nc++];
		start = d + 1;
		k = d + 3;
	}
	if (start < j) {
		off[nc] = used;
		len[nc] = j - start;
		memcpy(buf + used, pat + start, len[nc] * sizeof *buf);
		used += len[nc++];
	} else {
		buf[used++] = '-'; /* chunks[-1] += '-': the last chunk is the last one written */
		len[nc - 1]++;
	}
	for (size_t c = nc - 1; c >= 1; c--) {
		if (len[c - 1] && len[c] && buf[off[c - 1] + len[c - 1] - 1] > buf[off[c]]) {
			/* chunks[c-1] = chunks[c-1][:-1] + chunks[c][1:].  Chunks are stored back to back
			 * and merged from the end, so this is a shift left by two, in place. */
			memmove(buf + off[c - 1] + len[c - 1] - 1, buf + off[c] + 1, (len[c] - 1) * sizeof *buf);
			len[c - 1] += len[c] - 2;
			memmove(off + c, off + c + 1, (nc - c - 1) * sizeof *off);
			memmove(len + c, len + c + 1, (nc - c - 1) * sizeof *len);
			nc--;
		}
	}
	size_t total = 0;
	for (size_t c = 0; c < nc; c++)
		total += len[c];
	if (total == 0) {
		t->never = true;
		goto out;
	}
	bool neg = buf[off[0]] == '!';
	if (neg && total == 1) {
		t->any = true;
		goto out;
	}
	t->negate = neg;
	t->r = pool;
	for (size_t c = 0; c < nc; c++) {
		for (size_t x = 0; x < len[c]; x++)
			if (!(c == 0 && x == 0 && neg))
				pool[t->nr++] = (struct range){ buf[off[c] + x], buf[off[c] + x] };
		if (c + 1 < nc && len[c] && len[c + 1])
			pool[t->nr++] = (struct range){ buf[off[c] + len[c] - 1], buf[off[c + 1]] };
	}
out:
	free(buf);
	free(off);
	free(len);
}

static bool tok_match(const struct tok *t, uint32_t c)
{
	switch (t->kind) {
	case T_LIT:
		return t->cp == c;
	case T_ANY:
		return true;
	case T_CLASS:
		if (t->never)
			return false;
		if (t->any)
			return true;
		for (size_t i = 0; i < t->nr; i++)
			if (c >= t->r[i].lo && c <= t->r[i].hi)
				return !t->negate;
		return t->negate;
	}
	return false;
}

static bool match_cp(const uint32_t *pat, size_t np, const uint32_t *name, size_t nn)
{
	struct tok *toks = malloc((np + 1) * sizeof *toks);
	struct range *pool = malloc((2 * np + 2) * sizeof *pool);
	if (!toks || !pool) {
		free(toks);
		free(pool);
		return false;
	}
	size_t nt = 0, used = 0;
	for (size_t i = 0; i < np;) {
		uint32_t c = pat[i++];
		struct tok t = { 0 };
		if (c == '*') {
			while (i < np && pat[i] == '*')
				i++;
			t.kind = T_STAR;
		} else if (c == '?') {
			t.kind = T_ANY;
		} else if (c == '[') {
			size_t j = i;
			if (j < np && pat[j] == '!')
				j++;
			if (j < np && pat[j] == ']')
				j++;
			while (j < np && pat[j] != ']')
				j++;
			if (j >= np) {
				t.kind = T_LIT;
				t.cp = '[';
			} else {
				t.kind = T_CLASS;
				if (j == i) {
					t.never = true; /* unreachable: "[]" never closes at i */
				} else {
					build_class(pat, i, j, &t, pool + used);
					used += t.nr;
				}
				i = j + 1;
			}
		} else {
			t.kind = T_LIT;
			t.cp = c;
		}
		toks[nt++] = t;
	}
	/* Single-character tokens and stars: greedy matching with one backtrack point is exact. */
	size_t p = 0, s = 0, star_p = SIZE_MAX, star_s = 0;
	bool ok;
	while (s < nn) {
		if (p < nt && toks[p].kind != T_STAR && tok_match(&toks[p], name[s])) {
			p++;
			s++;
		} else if (p < nt && toks[p].kind == T_STAR) {
			star_p = p++;
			star_s = s;
		} else if (star_p != SIZE_MAX) {
			p = star_p + 1;
			s = ++star_s;
		} else {
			break;
		}
	}
	if (s < nn) {
		ok = false;
	} else {
		while (p < nt && toks[p].kind == T_STAR)
			p++;
		ok = p == nt;
	}
	free(toks);
	free(pool);
	return ok;
}

bool hf_fnmatch(const char *pattern, const char *name)
{
	size_t lp = strlen(pattern), ln = strlen(name);
	if (lp > HF_MAX_PATH || ln > HF_MAX_PATH)
		return false;
	uint32_t *pat = malloc((lp + 2) * sizeof *pat), *nm = malloc((ln + 1) * sizeof *nm);
	bool r = false;
	if (pat && nm) {
		size_t np = decode(pattern, pat), nn = decode(name, nm);
		if (np && pat[np - 1] == '/') /* a directory: everything below it */
			pat[np++] = '*';
		r = match_cp(pat, np, nm, nn);
	}
	free(pat);
	free(nm);
	return r;
}

bool hf_filter_keep(const struct hf_config *c, const char *path)
{
	if (c->n_include) {
		bool any = false;
		for (size_t i = 0; i < c->n_include && !any; i++)
			any = hf_fnmatch(c->include[i], path);
		if (!any)
			return false;
	}
	for (size_t i = 0; i < c->n_exclude; i++)
		if (hf_fnmatch(c->exclude[i], path))
			return false;
	return true;
}

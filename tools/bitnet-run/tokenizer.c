/* Tokenizers from GGUF metadata (tokenizer.h): the vocabulary and its hash map, special-token
 * partitioning, the SentencePiece-style and byte-level BPE merge loops, the pre-tokenizer split
 * rules, and decoding of pieces.  The algorithms follow llama.cpp's llama-vocab.cpp and
 * unicode.cpp (merge-dev), so token ids match what bitnet.cpp feeds its models. */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_util.h"
#include "unicode.h"

#define TOK_MAX_TEXT (64u << 20) /* total bytes of token texts and merges we accept */

/* ---- an open-addressing map from byte strings to ids ------------------------------------------- */

struct strmap {
	uint32_t *slot; /* id + 1, 0 = empty */
	size_t mask;
};

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

struct tokenizer {
	enum tok_model model;
	enum tok_pre pre;
	uint32_t n;
	char *arena;            /* token texts, then merges, NUL-separated */
	const char **text;      /* n */
	uint32_t *len;          /* n */
	float *score;           /* n */
	uint8_t *type;          /* n, enum tok_type */
	bool *eog;              /* n */
	struct strmap vocab;    /* text -> id */
	uint32_t n_merges;
	const char **merge;     /* "left right" */
	uint32_t *merge_len;
	struct strmap merges;   /* "left right" -> rank */
	int32_t *special;       /* ids cut out of text, longest first */
	uint32_t n_special;
	int32_t bos, eos, unk, eot;
	bool add_bos, add_eos, add_space_prefix, ignore_merges;
	int32_t byte_tok[256];  /* SPM: id of <0xXX>, or of the one-byte token, or -1 */
	uint32_t byte_cp[256];  /* BPE: GPT-2 alphabet */
};

typedef const char *(*key_fn)(const struct tokenizer *t, uint32_t id, size_t *len);

static const char *vocab_key(const struct tokenizer *t, uint32_t id, size_t *len)
{
	*len = t->len[id];
	return t->text[id];
}

static const char *merge_key(const struct tokenizer *t, uint32_t id, size_t *len)
{
	*len = t->merge_len[id];
	return t->merge[id];
}

static int map_build(struct strmap *m, const struct tokenizer *t, uint32_t n, key_fn key)
{
	size_t cap = 16;
	while (cap < 2 * (size_t)n)
		cap <<= 1;
	m->slot = calloc(cap, sizeof *m->slot);
	if (!m->slot)
		return -1;
	m->mask = cap - 1;
	for (uint32_t id = 0; id < n; id++) {
		size_t len;
		const char *s = key(t, id, &len);
		size_t i = fnv1a(s, len) & m->mask;
		for (;; i = (i + 1) & m->mask) {
			uint32_t v = m->slot[i];
			if (!v) {
				m->slot[i] = id + 1;
				break;
			}
			size_t l2;
			const char *s2 = key(t, v - 1, &l2);
			if (l2 == len && memcmp(s2, s, len) == 0)
				break; /* duplicate text: the first id wins, as in llama.cpp's token_to_id */
		}
	}
	return 0;
}

static int32_t map_find(const struct strmap *m, const struct tokenizer *t, key_fn key, const char *s, size_t len)
{
	if (!m->slot)
		return -1;
	for (size_t i = fnv1a(s, len) & m->mask;; i = (i + 1) & m->mask) {
		uint32_t v = m->slot[i];
		if (!v)
			return -1;
		size_t l2;
		const char *s2 = key(t, v - 1, &l2);
		if (l2 == len && memcmp(s2, s, len) == 0)
			return (int32_t)(v - 1);
	}
}

static int32_t find_token(const struct tokenizer *t, const char *s, size_t len)
{
	return map_find(&t->vocab, t, vocab_key, s, len);
}

/* ---- growable arrays -------------------------------------------------------------------------- */

/* The array v (cap elements of size elem) with room for element n: v itself or a larger copy;
 * when out of memory v unchanged and *oom set. */
static void *grow(void *v, size_t *cap, size_t n, size_t elem, bool *oom)
{
	if (n < *cap)
		return v;
	size_t c = *cap ? 2 * *cap : 64;
	void *p = realloc(v, c * elem);
	if (!p) {
		*oom = true;
		return v;
	}
	*cap = c;
	return p;
}

struct ids {
	int32_t *v;
	size_t n, cap;
	bool oom;
};

static void push(struct ids *o, int32_t id)
{
	o->v = grow(o->v, &o->cap, o->n, sizeof *o->v, &o->oom);
	if (o->n < o->cap)
		o->v[o->n++] = id;
}

/* ---- a binary heap of merge candidates ------------------------------------------------------- */

struct bigram {
	int32_t left, right;
	float score;      /* SPM: higher first */
	uint32_t rank;    /* BPE: lower first */
	uint32_t nl, nr;  /* symbol lengths when pushed (staleness check) */
};

struct heap {
	struct bigram *v;
	size_t n, cap;
	bool bpe;
	bool oom;
};

/* a comes out before b */
static bool before(const struct heap *h, const struct bigram *a, const struct bigram *b)
{
	if (h->bpe) {
		if (a->rank != b->rank)
			return a->rank < b->rank;
	} else if (a->score != b->score) {
		return a->score > b->score;
	}
	return a->left < b->left;
}

static void heap_push(struct heap *h, struct bigram b)
{
	h->v = grow(h->v, &h->cap, h->n, sizeof *h->v, &h->oom);
	if (h->n == h->cap)
		return;
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(h, &b, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = b;
}

static struct bigram heap_pop(struct heap *h)
{
	struct bigram top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(h, &h->v[c + 1], &h->v[c]))
			c++;
		if (!before(h, &h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

/* ---- symbols: a doubly linked list over a byte string ---------------------------------------- */

struct sym {
	const char *text;
	uint32_t n;
	int32_t prev, next;
};

struct merger {
	const struct tokenizer *t;
	struct sym *sym;
	size_t n_sym, cap;
	struct heap heap;
	char *key;        /* BPE: "left right" scratch */
	size_t key_cap;
	bool oom;
};

/* Splits s[0..len) into UTF-8 characters (llama.cpp's unicode_len_utf8 by the lead byte). */
static void split_chars(struct merger *m, const char *s, size_t len)
{
	static const uint8_t lead_len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
	m->n_sym = 0;
	for (size_t off = 0; off < len;) {
		size_t n = lead_len[(unsigned char)s[off] >> 4];
		if (n > len - off)
			n = len - off;
		m->sym = grow(m->sym, &m->cap, m->n_sym, sizeof *m->sym, &m->oom);
		if (m->n_sym == m->cap)
			return;
		struct sym *y = &m->sym[m->n_sym];
		y->text = s + off;
		y->n = (uint32_t)n;
		y->prev = (int32_t)m->n_sym - 1;
		off += n;
		y->next = off == len ? -1 : (int32_t)m->n_sym + 1;
		m->n_sym++;
	}
}

static void try_bigram(struct merger *m, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return;
	const struct tokenizer *t = m->t;
	const struct sym *a = &m->sym[l], *b = &m->sym[r];
	struct bigram g = { l, r, 0.0f, 0, a->n, b->n };
	if (t->model == TOK_SPM) {
		int32_t id = find_token(t, a->text, (size_t)a->n + b->n);
		if (id < 0)
			return;
		g.score = t->score[id];
	} else {
		size_t need = (size_t)a->n + 1 + b->n;
		if (need > m->key_cap) {
			char *k = realloc(m->key, need);
			if (!k) {
				m->oom = true;
				return;
			}
			m->key = k;
			m->key_cap = need;
		}
		memcpy(m->key, a->text, a->n);
		m->key[a->n] = ' ';
		memcpy(m->key + a->n + 1, b->text, b->n);
		int32_t rank = map_find(&t->merges, t, merge_key, m->key, need);
		if (rank < 0)
			return;
		g.rank = (uint32_t)rank;
	}
	heap_push(&m->heap, g);
}

/* Merges adjacent symbols of s[0..len) until no candidate is left. */
static void merge_all(struct merger *m, const char *s, size_t len)
{
	split_chars(m, s, len);
	m->heap.n = 0;
	m->heap.bpe = m->t->model == TOK_BPE;
	for (size_t i = 1; i < m->n_sym; i++)
		try_bigram(m, (int32_t)i - 1, (int32_t)i);
	while (m->heap.n) {
		struct bigram g = heap_pop(&m->heap);
		struct sym *a = &m->sym[g.left], *b = &m->sym[g.right];
		if (a->n != g.nl || b->n != g.nr || a->next != g.right)
			continue; /* one side changed since the pair was queued */
		a->n += b->n;
		b->n = 0;
		a->next = b->next;
		if (b->next >= 0)
			m->sym[b->next].prev = g.left;
		try_bigram(m, a->prev, g.left);
		try_bigram(m, g.left, a->next);
	}
}

/* ---- SentencePiece-style ---------------------------------------------------------------------- */

static void spm_encode(struct merger *m, const char *text, size_t len, bool prefix, struct ids *out,
		       char **buf, size_t *buf_cap)
{
	const struct tokenizer *t = m->t;
	/* escape: (optional leading space) then ' ' -> U+2581 */
	size_t n = 0, need = 3 * (len + 1);
	if (need > *buf_cap) {
		char *b = realloc(*buf, need);
		if (!b) {
			m->oom = true;
			return;
		}
		*buf = b;
		*buf_cap = need;
	}
	char *s = *buf;
	for (size_t i = 0; i < len + prefix; i++) {
		char c = i < prefix ? ' ' : text[i - prefix];
		if (c == ' ') {
			memcpy(s + n, "\xe2\x96\x81", 3);
			n += 3;
		} else {
			s[n++] = c;
		}
	}
	merge_all(m, s, n);
	if (m->oom || m->heap.oom)
		return;
	for (int32_t i = m->n_sym ? 0 : -1; i >= 0; i = m->sym[i].next) {
		const struct sym *y = &m->sym[i];
		int32_t id = find_token(t, y->text, y->n);
		if (id >= 0) {
			push(out, id);
			continue;
		}
		/* a character with no piece: its bytes as byte tokens (SentencePiece byte fallback) */
		for (uint32_t j = 0; j < y->n; j++) {
			int32_t b = t->byte_tok[(unsigned char)y->text[j]];
			if (b >= 0)
				push(out, b);
			else if (t->unk >= 0 && j == 0)
				push(out, t->unk);
		}
	}
}

/* ---- BPE pre-tokenizers ----------------------------------------------------------------------- */

/* The codepoints of a fragment with their byte offsets; words are emitted as codepoint ranges. */
struct cpview {
	uint32_t *cp;
	uint32_t *off; /* n + 1 */
	size_t n;
};

static bool is_l(const struct cpview *v, size_t p)
{
	return p < v->n && uni_category(v->cp[p]) == UNI_L;
}
static bool is_n(const struct cpview *v, size_t p)
{
	return p < v->n && uni_category(v->cp[p]) == UNI_N;
}
static bool is_s(const struct cpview *v, size_t p)
{
	return p < v->n && uni_is_space(v->cp[p]);
}
static bool is_lns(const struct cpview *v, size_t p)
{
	return is_l(v, p) || is_n(v, p) || is_s(v, p);
}
static uint32_t cp_at(const struct cpview *v, size_t p)
{
	return p < v->n ? v->cp[p] : 0xffffffffu;
}
static uint32_t ascii_lower(uint32_t c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* A list of word end positions (codepoint indices), in order. */
struct ends {
	size_t *v;
	size_t n, cap;
	bool oom;
};

static void add_end(struct ends *e, size_t end)
{
	if (e->n && e->v[e->n - 1] == end)
		return; /* empty word */
	e->v = grow(e->v, &e->cap, e->n, sizeof *e->v, &e->oom);
	if (e->n < e->cap)
		e->v[e->n++] = end;
}

/* 's 't 're 've 'm 'll 'd at pos (case-insensitive for Llama 3): the length matched, or 0. */
static size_t contraction(const struct cpview *v, size_t pos, size_t end, bool icase)
{
	if (cp_at(v, pos) != '\'' || pos + 1 >= end)
		return 0;
	uint32_t a = cp_at(v, pos + 1), b = pos + 2 < end ? cp_at(v, pos + 2) : 0;
	if (icase) {
		a = ascii_lower(a);
		b = ascii_lower(b);
	}
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return 2;
	if (pos + 2 < end && ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
		return 3;
	return 0;
}

/* Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+  over codepoints [b, e). */
static void split_llama3(const struct cpview *v, size_t b, size_t e, struct ends *out)
{
	struct cpview w = { v->cp, v->off, e }; /* positions >= e are "outside" */
	for (size_t pos = b; pos < e;) {
		const uint32_t c = cp_at(&w, pos);
		size_t k = contraction(&w, pos, e, true);
		if (k) {
			pos += k;
			add_end(out, pos);
			continue;
		}
		if (!(c == '\r' || c == '\n' || is_n(&w, pos)) && (is_l(&w, pos) || is_l(&w, pos + 1))) {
			pos++;
			while (is_l(&w, pos))
				pos++;
			add_end(out, pos);
			continue;
		}
		if (is_n(&w, pos)) {
			size_t ini = pos;
			while (is_n(&w, pos)) {
				if (++pos - ini >= 3) {
					add_end(out, pos);
					ini = pos;
				}
			}
			add_end(out, pos);
			continue;
		}
		const size_t p2 = c == ' ' ? pos + 1 : pos;
		if (!is_lns(&w, p2)) {
			pos = p2;
			while (pos < e && !is_lns(&w, pos))
				pos++;
			while (cp_at(&w, pos) == '\r' || cp_at(&w, pos) == '\n')
				pos++;
			add_end(out, pos);
			continue;
		}
		size_t nws = 0, last_rn = 0;
		while (is_s(&w, pos + nws)) {
			uint32_t c2 = cp_at(&w, pos + nws);
			if (c2 == '\r' || c2 == '\n')
				last_rn = pos + nws + 1;
			nws++;
		}
		if (last_rn) {
			pos = last_rn;
		} else if (nws > 1 && pos + nws < e) {
			pos += nws - 1;
		} else if (nws > 0) {
			pos += nws;
		} else {
			pos++;
		}
		add_end(out, pos);
	}
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(const struct cpview *v, size_t b, size_t e, struct ends *out)
{
	struct cpview w = { v->cp, v->off, e };
	for (size_t pos = b; pos < e;) {
		const uint32_t c = cp_at(&w, pos);
		size_t k = contraction(&w, pos, e, false);
		if (k) {
			pos += k;
			add_end(out, pos);
			continue;
		}
		const size_t p2 = c == ' ' ? pos + 1 : pos;
		if (is_l(&w, p2) || is_n(&w, p2)) {
			bool (*same)(const struct cpview *, size_t) = is_l(&w, p2) ? is_l : is_n;
			pos = p2;
			while (same(&w, pos))
				pos++;
			add_end(out, pos);
			continue;
		}
		if (p2 < e && !is_lns(&w, p2)) {
			pos = p2;
			while (pos < e && !is_lns(&w, pos))
				pos++;
			add_end(out, pos);
			continue;
		}
		size_t nws = 0;
		while (is_s(&w, pos + nws))
			nws++;
		if (nws > 1 && pos + nws < e)
			pos += nws - 1;
		else if (nws > 0)
			pos += nws;
		else
			pos++;
		add_end(out, pos);
	}
}

/* llama.cpp's default pre-tokenizer: four regexes in turn, each splitting every piece of the
 * previous one into its matches and the text between them:
 *   [\p{P}\$\+<=>\^~\|]+,  the GPT-2 regex,  \p{N}+,  [0-9][0-9][0-9] */
static bool default_punct(const struct cpview *v, size_t p)
{
	uint32_t c = cp_at(v, p);
	return p < v->n && (uni_category(c) == UNI_P || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
			    c == '^' || c == '~' || c == '|');
}

/* Splits [b, e) into maximal runs of `in` and what lies between them. */
static void split_runs(const struct cpview *v, size_t b, size_t e, bool (*in)(const struct cpview *, size_t),
		       struct ends *out)
{
	struct cpview w = { v->cp, v->off, e };
	for (size_t pos = b; pos < e;) {
		bool m = in(&w, pos);
		while (pos < e && in(&w, pos) == m)
			pos++;
		add_end(out, pos);
	}
}

static void split_digits3(const struct cpview *v, size_t b, size_t e, struct ends *out)
{
	size_t pos = b, last = b;
	while (pos + 3 <= e) {
		bool d3 = true;
		for (size_t i = 0; i < 3; i++)
			d3 = d3 && cp_at(v, pos + i) >= '0' && cp_at(v, pos + i) <= '9';
		if (d3) {
			if (pos > last)
				add_end(out, pos);
			pos += 3;
			add_end(out, pos);
			last = pos;
		} else {
			pos++;
		}
	}
	if (e > last)
		add_end(out, e);
}

/* Word ends of v[0..n) by the pre-tokenizer. */
static void pretokenize(enum tok_pre pre, const struct cpview *v, struct ends *out)
{
	if (pre == PRE_LLAMA3) {
		split_llama3(v, 0, v->n, out);
		return;
	}
	if (pre == PRE_GPT2) {
		split_gpt2(v, 0, v->n, out);
		return;
	}
	/* PRE_DEFAULT: successive refinement */
	struct ends cur = { 0 }, next = { 0 };
	add_end(&cur, v->n);
	for (int stage = 0; stage < 4 && !cur.oom; stage++) {
		next.n = 0;
		size_t b = 0;
		for (size_t i = 0; i < cur.n; i++) {
			size_t e = cur.v[i];
			switch (stage) {
			case 0: split_runs(v, b, e, default_punct, &next); break;
			case 1: split_gpt2(v, b, e, &next); break;
			case 2: split_runs(v, b, e, is_n, &next); break;
			default: split_digits3(v, b, e, &next); break;
			}
			b = e;
		}
		struct ends tmp = cur;
		cur = next;
		next = tmp;
		cur.oom |= next.oom;
	}
	for (size_t i = 0; i < cur.n; i++)
		add_end(out, cur.v[i]);
	out->oom |= cur.oom;
	free(cur.v);
	free(next.v);
}

/* Decodes text into v (arrays of len + 1) and splits it; false when out of memory. */
static bool split_text(enum tok_pre pre, const char *text, size_t len, struct cpview *v, struct ends *ends)
{
	v->cp = malloc((len + 1) * sizeof *v->cp);
	v->off = malloc((len + 1) * sizeof *v->off);
	v->n = 0;
	if (!v->cp || !v->off)
		return false;
	for (size_t off = 0; off < len;) {
		v->off[v->n] = (uint32_t)off;
		off += uni_decode(text + off, len - off, &v->cp[v->n]);
		v->n++;
	}
	v->off[v->n] = (uint32_t)len;
	pretokenize(pre, v, ends);
	return !ends->oom;
}

int tok_split(enum tok_pre pre, const char *text, size_t len, size_t **out, size_t *n, struct bn_err *err)
{
	struct cpview v;
	struct ends ends = { 0 };
	*out = NULL;
	*n = 0;
	bool ok = split_text(pre, text, len, &v, &ends);
	for (size_t i = 0; ok && i < ends.n; i++)
		ends.v[i] = v.off[ends.v[i]]; /* codepoint -> byte offsets */
	free(v.cp);
	free(v.off);
	if (!ok) {
		free(ends.v);
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	}
	*out = ends.v;
	*n = ends.n;
	return 0;
}

static void bpe_encode(struct merger *m, const char *text, size_t len, struct ids *out, char **buf, size_t *buf_cap)
{
	const struct tokenizer *t = m->t;
	struct cpview v;
	struct ends ends = { 0 };
	if (!split_text(t->pre, text, len, &v, &ends)) {
		m->oom = true;
		goto out;
	}
	size_t b = 0;
	for (size_t wi = 0; wi < ends.n; wi++) {
		const size_t e = ends.v[wi];
		const char *wb = text + v.off[b];
		const size_t wl = v.off[e] - v.off[b];
		b = e;
		/* the word's bytes in GPT-2's printable alphabet */
		if (2 * wl > *buf_cap) {
			char *nb = realloc(*buf, 2 * wl);
			if (!nb) {
				m->oom = true;
				goto out;
			}
			*buf = nb;
			*buf_cap = 2 * wl;
		}
		size_t n = 0;
		for (size_t i = 0; i < wl; i++)
			n += uni_encode(t->byte_cp[(unsigned char)wb[i]], *buf + n);
		int32_t whole = t->ignore_merges ? find_token(t, *buf, n) : -1;
		if (whole >= 0) {
			push(out, whole);
			continue;
		}
		merge_all(m, *buf, n);
		if (m->oom || m->heap.oom)
			goto out;
		for (int32_t i = m->n_sym ? 0 : -1; i >= 0; i = m->sym[i].next) {
			const struct sym *y = &m->sym[i];
			int32_t id = find_token(t, y->text, y->n);
			if (id >= 0) {
				push(out, id);
				continue;
			}
			for (uint32_t j = 0; j < y->n; j++) { /* llama.cpp: any single-byte tokens */
				int32_t bid = find_token(t, y->text + j, 1);
				if (bid >= 0)
					push(out, bid);
			}
		}
	}
out:
	free(v.cp);
	free(v.off);
	free(ends.v);
}

/* ---- special tokens and the top level ---------------------------------------------------------- */

/* A piece of the input: raw text, or a special token already recognised. */
struct frag {
	int32_t id;      /* -1 for text */
	size_t off, len; /* text */
};

int tok_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
	       int32_t **ids, size_t *n, struct bn_err *err)
{
	*ids = NULL;
	*n = 0;
	struct ids out = { 0 };
	struct merger m = { .t = t };
	char *buf = NULL;
	size_t buf_cap = 0, nf = 0, fcap = 16;
	struct frag *f = malloc(fcap * sizeof *f);
	int rc = 0;
	if (!f)
		goto oom;
	if (len)
		f[nf++] = (struct frag){ -1, 0, len };
	/* cut out every special token, longest first (llama.cpp tokenizer_st_partition) */
	for (uint32_t si = 0; si < t->n_special; si++) {
		const int32_t id = t->special[si];
		if (!parse_special && t->type[id] != TOK_USER_DEFINED)
			continue;
		const char *st = t->text[id];
		const size_t sl = t->len[id];
		for (size_t i = 0; i < nf; i++) {
			if (f[i].id >= 0 || f[i].len < sl)
				continue;
			const char *base = text + f[i].off;
			const char *hit = memmem(base, f[i].len, st, sl);
			if (!hit)
				continue;
			/* [left][token][right]: replace fragment i by up to three */
			if (nf + 2 > fcap) {
				struct frag *g = realloc(f, 2 * fcap * sizeof *f);
				if (!g)
					goto oom;
				f = g;
				fcap *= 2;
			}
			const size_t lo = (size_t)(hit - base), ro = lo + sl;
			struct frag left = { -1, f[i].off, lo }, tok = { id, 0, 0 };
			struct frag right = { -1, f[i].off + ro, f[i].len - ro };
			struct frag parts[3];
			size_t np = 0;
			if (left.len)
				parts[np++] = left;
			parts[np++] = tok;
			if (right.len)
				parts[np++] = right;
			memmove(&f[i + np], &f[i + 1], (nf - i - 1) * sizeof *f);
			memcpy(&f[i], parts, np * sizeof *parts);
			nf += np - 1;
			/* continue scanning after the token: the right part is fragment i + (left ? 2 : 1) */
			i += np - 1 - (right.len ? 1 : 0);
		}
	}
	if (add_special && t->add_bos && t->bos >= 0)
		push(&out, t->bos);
	bool prev_special = true; /* SPM: a space prefix at the start and after special tokens */
	for (size_t i = 0; i < nf && !out.oom && !m.oom && !m.heap.oom; i++) {
		if (f[i].id >= 0) {
			push(&out, f[i].id);
			prev_special = true;
			continue;
		}
		if (t->model == TOK_SPM)
			spm_encode(&m, text + f[i].off, f[i].len, t->add_space_prefix && prev_special, &out, &buf, &buf_cap);
		else
			bpe_encode(&m, text + f[i].off, f[i].len, &out, &buf, &buf_cap);
		prev_special = false;
	}
	if (add_special && t->add_eos && t->eos >= 0)
		push(&out, t->eos);
	if (out.oom || m.oom || m.heap.oom)
		goto oom;
	*ids = out.v;
	*n = out.n;
	out.v = NULL;
	goto done;
oom:
	rc = bn_seterr(err, BN_ENOMEM, "out of memory while tokenizing %zu bytes", len);
done:
	free(out.v);
	free(f);
	free(buf);
	free(m.sym);
	free(m.heap.v);
	free(m.key);
	return rc;
}

/* ---- decoding -------------------------------------------------------------------------------- */

size_t tok_piece(const struct tokenizer *t, int32_t id, bool special, char *buf, size_t size)
{
	if (id < 0 || (uint32_t)id >= t->n)
		return 0;
	const enum tok_type ty = (enum tok_type)t->type[id];
	const char *s = t->text[id];
	const size_t len = t->len[id];
	size_t n = 0;
#define OUT(c)                          \
	do {                            \
		if (n < size)           \
			buf[n] = (c);   \
		n++;                    \
	} while (0)
	if (ty == TOK_CONTROL || ty == TOK_UNKNOWN) {
		if (!special)
			return 0;
		for (size_t i = 0; i < len; i++)
			OUT(s[i]);
		return n;
	}
	if (ty == TOK_USER_DEFINED) {
		for (size_t i = 0; i < len; i++)
			OUT(s[i]);
		return n;
	}
	if (t->model == TOK_SPM) {
		if (ty == TOK_BYTE) {
			unsigned v;
			if (len == 6 && sscanf(s, "<0x%2x>", &v) == 1)
				OUT((char)v);
			return n;
		}
		if (ty != TOK_NORMAL)
			return 0;
		for (size_t i = 0; i < len; i++) {
			if (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
				OUT(' ');
				i += 2;
			} else {
				OUT(s[i]);
			}
		}
		return n;
	}
	if (ty != TOK_NORMAL)
		return 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = uni_decode(s + i, len - i, &cp);
		int b = uni_cp_to_byte(cp);
		if (b >= 0) {
			OUT((char)b);
		} else { /* not in the byte alphabet: keep the text */
			for (size_t j = 0; j < k; j++)
				OUT(s[i + j]);
		}
		i += k;
	}
	return n;
#undef OUT
}

/* ---- build / free ---------------------------------------------------------------------------- */

static int32_t kv_id(const struct gguf_reader *r, const char *key, int32_t dflt, uint32_t n)
{
	int64_t kv = gguf_find_key(r, key);
	if (kv < 0)
		return dflt;
	struct gguf_value v;
	if (gguf_get_value(r, kv, &v, NULL))
		return dflt;
	int64_t x;
	switch (v.type) {
	case GGUF_VTYPE_UINT32: x = v.v.u32; break;
	case GGUF_VTYPE_INT32: x = v.v.i32; break;
	case GGUF_VTYPE_UINT64: x = v.v.u64 > INT32_MAX ? -1 : (int64_t)v.v.u64; break;
	case GGUF_VTYPE_INT64: x = v.v.i64; break;
	default: return dflt;
	}
	return x >= 0 && x < (int64_t)n ? (int32_t)x : dflt; /* llama.cpp keeps the default for a bad id */
}

static bool kv_bool(const struct gguf_reader *r, const char *key, bool dflt)
{
	int64_t kv = gguf_find_key(r, key);
	bool b;
	if (kv < 0 || gguf_get_bool(r, kv, &b, NULL))
		return dflt;
	return b;
}

static int cmp_special(const void *a, const void *b, void *arg)
{
	const struct tokenizer *t = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	if (t->len[x] != t->len[y])
		return t->len[x] > t->len[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Reads string array `key` (n entries) into the arena at *used; fills ptrs/lens. */
static int read_strings(const struct gguf_reader *r, int64_t kv, uint32_t n, char *arena, size_t *used,
			const char **ptrs, uint32_t *lens, const char *what, struct bn_err *err)
{
	for (uint32_t i = 0; i < n; i++) {
		struct gguf_str s;
		int rc = gguf_get_arr_str(r, kv, i, &s, err);
		if (rc)
			return bn_err_prefix(err, "%s", what);
		memcpy(arena + *used, s.data, s.len);
		ptrs[i] = arena + *used;
		lens[i] = (uint32_t)s.len;
		*used += s.len;
		arena[(*used)++] = 0;
	}
	return 0;
}

static int string_bytes(const struct gguf_reader *r, int64_t kv, uint32_t n, size_t *total, const char *what,
			struct bn_err *err)
{
	for (uint32_t i = 0; i < n; i++) {
		struct gguf_str s;
		int rc = gguf_get_arr_str(r, kv, i, &s, err);
		if (rc)
			return bn_err_prefix(err, "%s", what);
		*total += s.len + 1;
		if (*total > TOK_MAX_TEXT)
			return bn_seterr(err, BN_EFORMAT, "%s: the tokenizer's strings exceed %u bytes", what, TOK_MAX_TEXT);
	}
	return 0;
}

int tok_open(struct tokenizer **out, const struct gguf_reader *r, const char *what, struct bn_err *err)
{
	*out = NULL;
	struct tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int rc = 0;
	char model[32] = "", pre[64] = "";
	int64_t kv = gguf_find_key(r, "tokenizer.ggml.model");
	struct gguf_str s;
	if (kv < 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: key tokenizer.ggml.model is missing", what);
		goto fail;
	}
	if ((rc = gguf_get_str(r, kv, &s, err)))
		goto fail_prefix;
	snprintf(model, sizeof model, "%.*s", (int)BN_MIN(s.len, sizeof model - 1), s.data);
	if (strcmp(model, "llama") == 0) {
		t->model = TOK_SPM;
	} else if (strcmp(model, "gpt2") == 0) {
		t->model = TOK_BPE;
	} else {
		rc = bn_seterr(err, BN_EUNSUPPORTED, "%s: tokenizer model '%s' is not supported (llama and gpt2 are)",
			       what, model);
		goto fail;
	}
	if ((kv = gguf_find_key(r, "tokenizer.ggml.pre")) >= 0) {
		if ((rc = gguf_get_str(r, kv, &s, err)))
			goto fail_prefix;
		snprintf(pre, sizeof pre, "%.*s", (int)BN_MIN(s.len, sizeof pre - 1), s.data);
	}
	if (t->model == TOK_BPE) {
		if (!pre[0] || strcmp(pre, "default") == 0) {
			t->pre = PRE_DEFAULT;
		} else if (strcmp(pre, "llama3") == 0 || strcmp(pre, "llama-v3") == 0 || strcmp(pre, "llama-bpe") == 0 ||
			   strcmp(pre, "falcon3") == 0 || strcmp(pre, "falcon_e") == 0) {
			t->pre = PRE_LLAMA3;
			t->ignore_merges = true;
			t->add_bos = true;
		} else if (strcmp(pre, "gpt-2") == 0 || strcmp(pre, "gpt2") == 0) {
			t->pre = PRE_GPT2;
		} else {
			rc = bn_seterr(err, BN_EUNSUPPORTED,
				       "%s: pre-tokenizer '%s' is not supported (llama-bpe, llama3, falcon3, falcon_e, "
				       "gpt-2 and default are)", what, pre);
			goto fail;
		}
	}

	int64_t kt = gguf_find_key(r, "tokenizer.ggml.tokens");
	uint64_t n64 = 0;
	if (kt < 0) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: key tokenizer.ggml.tokens is missing", what);
		goto fail;
	}
	if ((rc = gguf_get_arr(r, kt, GGUF_VTYPE_STRING, &n64, err)))
		goto fail_prefix;
	if (n64 == 0 || n64 > (1u << 22)) {
		rc = bn_seterr(err, BN_EFORMAT, "%s: %llu tokens", what, (unsigned long long)n64);
		goto fail;
	}
	t->n = (uint32_t)n64;
	int64_t km = -1;
	uint64_t nm = 0;
	if (t->model == TOK_BPE) {
		km = gguf_find_key(r, "tokenizer.ggml.merges");
		if (km < 0) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: key tokenizer.ggml.merges is missing (a gpt2 tokenizer needs it)",
				       what);
			goto fail;
		}
		if ((rc = gguf_get_arr(r, km, GGUF_VTYPE_STRING, &nm, err)))
			goto fail_prefix;
		if (nm > (1u << 22)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: %llu merges", what, (unsigned long long)nm);
			goto fail;
		}
		t->n_merges = (uint32_t)nm;
	}
	size_t total = 0, used = 0;
	if ((rc = string_bytes(r, kt, t->n, &total, what, err)) ||
	    (km >= 0 && (rc = string_bytes(r, km, t->n_merges, &total, what, err))))
		goto fail;
	t->arena = malloc(total ? total : 1);
	t->text = calloc(t->n, sizeof *t->text);
	t->len = calloc(t->n, sizeof *t->len);
	t->score = calloc(t->n, sizeof *t->score);
	t->type = calloc(t->n, sizeof *t->type);
	t->eog = calloc(t->n, sizeof *t->eog);
	t->merge = calloc(t->n_merges + 1, sizeof *t->merge);
	t->merge_len = calloc(t->n_merges + 1, sizeof *t->merge_len);
	t->special = calloc(t->n, sizeof *t->special);
	if (!t->arena || !t->text || !t->len || !t->score || !t->type || !t->eog || !t->merge || !t->merge_len ||
	    !t->special)
		goto oom;
	if ((rc = read_strings(r, kt, t->n, t->arena, &used, t->text, t->len, what, err)) ||
	    (km >= 0 && (rc = read_strings(r, km, t->n_merges, t->arena, &used, t->merge, t->merge_len, what, err))))
		goto fail;

	if ((kv = gguf_find_key(r, "tokenizer.ggml.scores")) >= 0) {
		uint64_t ns;
		if ((rc = gguf_get_arr(r, kv, GGUF_VTYPE_FLOAT32, &ns, err)))
			goto fail_prefix;
		if (ns != t->n) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: %llu scores for %u tokens", what, (unsigned long long)ns, t->n);
			goto fail;
		}
		for (uint32_t i = 0; i < t->n; i++)
			if ((rc = gguf_get_arr_f32(r, kv, i, &t->score[i], err)))
				goto fail_prefix;
	}
	for (uint32_t i = 0; i < t->n; i++)
		t->type[i] = TOK_NORMAL;
	if ((kv = gguf_find_key(r, "tokenizer.ggml.token_type")) >= 0) {
		uint64_t nt;
		struct gguf_value v;
		if ((rc = gguf_get_value(r, kv, &v, err)))
			goto fail_prefix;
		if (v.type != GGUF_VTYPE_ARRAY || (v.v.arr.type != GGUF_VTYPE_INT32 && v.v.arr.type != GGUF_VTYPE_UINT32)) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: tokenizer.ggml.token_type is not an array of i32", what);
			goto fail;
		}
		nt = v.v.arr.n;
		if (nt != t->n) {
			rc = bn_seterr(err, BN_EFORMAT, "%s: %llu token types for %u tokens", what, (unsigned long long)nt, t->n);
			goto fail;
		}
		for (uint32_t i = 0; i < t->n; i++) {
			struct gguf_value e;
			if ((rc = gguf_get_arr_value(r, kv, i, &e, err)))
				goto fail_prefix;
			int64_t ty = e.type == GGUF_VTYPE_INT32 ? e.v.i32 : (int64_t)e.v.u32;
			t->type[i] = ty >= 0 && ty <= TOK_BYTE ? (uint8_t)ty : TOK_UNDEFINED;
		}
	}
	if (map_build(&t->vocab, t, t->n, vocab_key) || (t->n_merges && map_build(&t->merges, t, t->n_merges, merge_key)))
		goto oom;

	/* special ids and flags: llama.cpp's defaults, then the KVs */
	if (t->model == TOK_SPM) {
		t->bos = 1 < t->n ? 1 : -1;
		t->eos = 2 < t->n ? 2 : -1;
		t->unk = 0;
		t->add_bos = true;
		t->add_space_prefix = true;
	} else {
		t->bos = t->eos = 11 < t->n ? 11 : -1;
		t->unk = -1;
	}
	t->eot = -1;
	t->bos = kv_id(r, "tokenizer.ggml.bos_token_id", t->bos, t->n);
	t->eos = kv_id(r, "tokenizer.ggml.eos_token_id", t->eos, t->n);
	t->unk = kv_id(r, "tokenizer.ggml.unknown_token_id", t->unk, t->n);
	t->eot = kv_id(r, "tokenizer.ggml.eot_token_id", t->eot, t->n);
	int32_t eom = kv_id(r, "tokenizer.ggml.eom_token_id", -1, t->n);
	t->add_bos = kv_bool(r, "tokenizer.ggml.add_bos_token", t->add_bos);
	t->add_eos = kv_bool(r, "tokenizer.ggml.add_eos_token", t->add_eos);
	t->add_space_prefix = kv_bool(r, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);

	/* end of generation: llama.cpp recognises these texts and makes them control tokens */
	static const char *const eog_texts[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
						 "<|endoftext|>", "<|eom_id|>", "<EOT>" };
	for (size_t i = 0; i < BN_ARRAY_LEN(eog_texts); i++) {
		int32_t id = find_token(t, eog_texts[i], strlen(eog_texts[i]));
		if (id >= 0) {
			t->eog[id] = true;
			t->type[id] = TOK_CONTROL;
			if (t->eot < 0 && i < 5)
				t->eot = id;
		}
	}
	if (t->eos >= 0)
		t->eog[t->eos] = true;
	if (t->eot >= 0)
		t->eog[t->eot] = true;
	if (eom >= 0)
		t->eog[eom] = true;

	for (uint32_t i = 0; i < t->n; i++) {
		uint8_t ty = t->type[i];
		if ((ty == TOK_CONTROL || ty == TOK_USER_DEFINED || ty == TOK_UNKNOWN) && t->len[i])
			t->special[t->n_special++] = (int32_t)i;
	}
	qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);

	for (unsigned b = 0; b < 256; b++) {
		char name[8];
		snprintf(name, sizeof name, "<0x%02X>", b);
		int32_t id = find_token(t, name, 6);
		if (id < 0) {
			char c = (char)b;
			id = find_token(t, &c, 1);
		}
		t->byte_tok[b] = id;
		t->byte_cp[b] = uni_byte_to_cp((uint8_t)b);
	}
	*out = t;
	return 0;
oom:
	rc = bn_seterr(err, BN_ENOMEM, "%s: out of memory for the tokenizer", what);
	goto fail;
fail_prefix:
	bn_err_prefix(err, "%s", what);
fail:
	tok_close(t);
	return rc;
}

void tok_close(struct tokenizer *t)
{
	if (!t)
		return;
	free(t->arena);
	free(t->text);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->eog);
	free(t->merge);
	free(t->merge_len);
	free(t->special);
	free(t->vocab.slot);
	free(t->merges.slot);
	free(t);
}

uint32_t tok_n_vocab(const struct tokenizer *t)
{
	return t->n;
}

enum tok_model tok_model(const struct tokenizer *t)
{
	return t->model;
}

enum tok_pre tok_pre(const struct tokenizer *t)
{
	return t->pre;
}

int32_t tok_bos(const struct tokenizer *t)
{
	return t->bos;
}

int32_t tok_eos(const struct tokenizer *t)
{
	return t->eos;
}

bool tok_add_bos(const struct tokenizer *t)
{
	return t->add_bos;
}

bool tok_is_eog(const struct tokenizer *t, int32_t id)
{
	return id >= 0 && (uint32_t)id < t->n && t->eog[id];
}

int32_t tok_find(const struct tokenizer *t, const char *s)
{
	return find_token(t, s, strlen(s));
}

const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len)
{
	if (id < 0 || (uint32_t)id >= t->n)
		return NULL;
	*len = t->len[id];
	return t->text[id];
}

enum tok_type tok_type_of(const struct tokenizer *t, int32_t id)
{
	return id >= 0 && (uint32_t)id < t->n ? (enum tok_type)t->type[id] : TOK_UNDEFINED;
}

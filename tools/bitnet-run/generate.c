/* Generation and chat loops (generate.h).  The loop per token: sample from the logits, stop on
 * an end-of-generation token, write the piece, make room (a context shift) if the context is
 * full, feed the token back. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

#include "bn_log.h"
#include "bn_util.h"

/* llama-cli's n_keep for a first prompt ids[0..n): its first o->keep tokens (all of them for -1
 * or more), plus the BOS the tokenizer put in front. */
static uint32_t keep_of(const struct tokenizer *tok, const struct gen_opts *o, const int32_t *ids, size_t n)
{
	const size_t bos = n > 0 && ids[0] == tok_bos(tok) && tok_add_bos(tok);
	const size_t k = o->keep < 0 || (size_t)o->keep > n - bos ? n - bos : (size_t)o->keep;
	return (uint32_t)(k + bos);
}

/* Makes room for n more tokens by a context shift when they do not fit: positions n_keep ..
 * n_keep+d-1 go, d = (n_past - n_keep) / 2 as in llama-cli, or as many as n needs.  Returns 0
 * when they fit, 1 when they cannot (shifting is off, or even discarding everything after
 * n_keep would not do), or an error. */
static int make_room(struct engine *e, size_t n, uint32_t n_keep, const struct gen_opts *o, struct bn_err *err)
{
	const uint32_t ctx = engine_n_ctx(e), past = engine_n_past(e);
	if (n <= ctx - past)
		return 0;
	if (o->no_shift || n_keep >= past || n > ctx - n_keep)
		return 1;
	uint32_t d = (past - n_keep) / 2;
	if (d < past + n - ctx)
		d = (uint32_t)(past + n - ctx);
	int rc = engine_shift(e, n_keep, d, err);
	if (rc)
		return rc;
	bn_info("context full: kept %u, discarded %u tokens", n_keep, d);
	return 0;
}

/* Feeds tokens and accounts the time as prompt time. */
static int feed_prompt(struct engine *e, const int32_t *ids, size_t n, struct gen_stats *st, struct bn_err *err)
{
	if (n > engine_n_ctx(e) - engine_n_past(e))
		return bn_seterr(err, BN_ERANGE,
				 "the prompt is %zu tokens but only %u of the %u context positions are free; use a "
				 "larger -c or a shorter prompt", n, engine_n_ctx(e) - engine_n_past(e), engine_n_ctx(e));
	double t0 = bn_now();
	int rc = engine_decode(e, ids, n, err);
	st->t_prompt += bn_now() - t0;
	st->n_prompt += n;
	return rc;
}

static void put_piece(const struct tokenizer *tok, int32_t id, FILE *out)
{
	char buf[256];
	size_t n = tok_piece(tok, id, false, buf, sizeof buf);
	if (n > sizeof buf) { /* a long token: fetch it whole */
		char *big = malloc(n);
		if (big) {
			tok_piece(tok, id, false, big, n);
			fwrite(big, 1, n, out);
			free(big);
		}
	} else {
		fwrite(buf, 1, n, out);
	}
	fflush(out);
}

/* Samples and feeds up to n_predict tokens.  *eog_fed says whether the reply ended with an
 * end-of-generation token that is now in the context. */
static int reply(struct engine *e, const struct tokenizer *tok, struct sampler *smp, const struct gen_opts *o,
		 bool feed_eog, uint32_t n_keep, struct gen_stats *st, struct bn_err *err)
{
	for (int i = 0; o->n_predict < 0 || i < o->n_predict; i++) {
		if (bn_interrupted)
			return bn_seterr(err, BN_EINTR, "interrupted");
		double t0 = bn_now();
		int32_t id = sampler_sample(smp, engine_logits(e, 0));
		st->n_sampled++;
		const bool eog = tok_is_eog(tok, id);
		if (!eog)
			put_piece(tok, id, o->out);
		if (eog && !feed_eog) {
			st->t_gen += bn_now() - t0;
			break;
		}
		int rc = make_room(e, 1, n_keep, o, err);
		if (rc > 0) {
			st->ctx_full = true;
			st->t_gen += bn_now() - t0;
			break;
		}
		if (rc == 0)
			rc = engine_decode(e, &id, 1, err);
		st->t_gen += bn_now() - t0;
		if (rc)
			return rc;
		st->n_gen++;
		if (eog)
			break;
	}
	return 0;
}

int gen_run(struct engine *e, const struct tokenizer *tok, struct sampler *smp, const char *prompt,
	    const struct gen_opts *o, struct gen_stats *st, struct bn_err *err)
{
	int32_t *ids = NULL;
	size_t n = 0;
	int rc = tok_encode(tok, prompt, strlen(prompt), true, true, &ids, &n, err);
	if (rc)
		return rc;
	if (n == 0) {
		free(ids);
		return bn_seterr(err, BN_EINVAL, "the prompt is empty and the model adds no BOS token; give -p TEXT");
	}
	if (o->echo_prompt) {
		fputs(prompt, o->out);
		fflush(o->out);
	}
	const uint32_t n_keep = keep_of(tok, o, ids, n);
	rc = feed_prompt(e, ids, n, st, err);
	free(ids);
	if (rc == 0)
		rc = reply(e, tok, smp, o, false, n_keep, st, err);
	return rc;
}

/* Formats a message, tokenizes it (BOS only at the very start), shifts the context if it does
 * not fit, and feeds it.  *n_keep: set by a first (system) turn, used by the later ones. */
static int feed_turn(struct engine *e, const struct tokenizer *tok, enum chat_tmpl tmpl, const char *role,
		     const char *content, bool add_assistant, const struct gen_opts *o, uint32_t *n_keep,
		     struct gen_stats *st, struct bn_err *err)
{
	char *text = chat_format(tmpl, role, content, add_assistant);
	if (!text)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int32_t *ids = NULL;
	size_t n = 0;
	const bool first = engine_n_past(e) == 0;
	int rc = tok_encode(tok, text, strlen(text), first, true, &ids, &n, err);
	free(text);
	if (rc == 0 && first && strcmp(role, "system") == 0)
		*n_keep = keep_of(tok, o, ids, n);
	if (rc == 0 && !first)
		rc = make_room(e, n, *n_keep, o, err);
	if (rc >= 0 && n) /* 1: feed_prompt says it does not fit */
		rc = feed_prompt(e, ids, n, st, err);
	free(ids);
	return rc;
}

int gen_chat(struct engine *e, const struct tokenizer *tok, struct sampler *smp, enum chat_tmpl tmpl,
	     const char *system, FILE *in, const struct gen_opts *o, struct gen_stats *st, struct bn_err *err)
{
	int rc = 0;
	char *line = NULL;
	size_t cap = 0;
	/* without a system message a shift keeps the BOS only (llama-cli's empty first prompt) */
	const int32_t bos = tok_add_bos(tok) ? tok_bos(tok) : -1;
	uint32_t n_keep = keep_of(tok, o, &bos, bos >= 0);
	if (system && *system && (rc = feed_turn(e, tok, tmpl, "system", system, false, o, &n_keep, st, err)))
		return rc;
	for (;;) {
		fputs("> ", o->log);
		fflush(o->log);
		ssize_t len = getline(&line, &cap, in);
		if (len < 0 || bn_interrupted)
			break;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0)
			continue;
		if ((rc = feed_turn(e, tok, tmpl, "user", line, true, o, &n_keep, st, err)))
			break;
		rc = reply(e, tok, smp, o, true, n_keep, st, err);
		fputc('\n', o->out);
		fflush(o->out);
		if (rc)
			break;
		if (st->ctx_full) {
			fprintf(o->log, "%s: the context is full (%u tokens); ending the chat\n", bn_progname, engine_n_ctx(e));
			break;
		}
	}
	free(line);
	return rc;
}

/* Generation and chat loops (generate.h).  The loop per token: sample from the logits, stop on
 * an end-of-generation token, write the piece, feed the token back. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

#include "bn_log.h"
#include "bn_util.h"

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
		 bool feed_eog, struct gen_stats *st, struct bn_err *err)
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
		if (engine_n_past(e) >= engine_n_ctx(e)) {
			st->ctx_full = true;
			st->t_gen += bn_now() - t0;
			break;
		}
		int rc = engine_decode(e, &id, 1, err);
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
	rc = feed_prompt(e, ids, n, st, err);
	free(ids);
	if (rc == 0)
		rc = reply(e, tok, smp, o, false, st, err);
	return rc;
}

/* Formats a message, tokenizes it (BOS only at the very start) and feeds it. */
static int feed_turn(struct engine *e, const struct tokenizer *tok, enum chat_tmpl tmpl, const char *role,
		     const char *content, bool add_assistant, struct gen_stats *st, struct bn_err *err)
{
	char *text = chat_format(tmpl, role, content, add_assistant);
	if (!text)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	int32_t *ids = NULL;
	size_t n = 0;
	int rc = tok_encode(tok, text, strlen(text), engine_n_past(e) == 0, true, &ids, &n, err);
	free(text);
	if (rc == 0 && n)
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
	if (system && *system && (rc = feed_turn(e, tok, tmpl, "system", system, false, st, err)))
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
		if ((rc = feed_turn(e, tok, tmpl, "user", line, true, st, err)))
			break;
		rc = reply(e, tok, smp, o, true, st, err);
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

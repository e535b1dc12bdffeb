/* The generation loop (a prompt, then sampled tokens streamed to a FILE) and the chat loop
 * (turns read from a FILE, formatted with the model's chat template), with timings.
 * Context overflow: when a token or a chat turn does not fit, a context shift (engine_shift) as
 * llama-cli does it: keep the first n_keep tokens, discard half of the rest (more if a turn needs
 * it), one notice per shift; with no_shift (or nothing left to discard) generation stops with a
 * message instead.  A first prompt that does not fit is an error before anything runs. */
#ifndef BR_GENERATE_H
#define BR_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bn_err.h"
#include "chat.h"
#include "engine.h"
#include "sampler.h"
#include "tokenizer.h"

struct gen_stats {
	size_t n_prompt;   /* tokens fed as prompt (all turns) */
	double t_prompt;   /* seconds spent on them */
	size_t n_gen;      /* tokens generated and fed back */
	double t_gen;      /* seconds of those forward passes and sampling */
	size_t n_sampled;  /* tokens sampled (n_gen + the last one of each reply) */
	bool ctx_full;     /* a reply stopped because the context was full */
};

struct gen_opts {
	int n_predict;       /* tokens per reply; < 0: until end of generation (or a full context) */
	bool echo_prompt;    /* write the prompt text before the generated text */
	FILE *out;           /* generated text */
	FILE *log;           /* "> " prompts and notices (chat) */
	bool no_shift;       /* stop at a full context instead of shifting it */
	int keep;            /* tokens of the first prompt (the system message in chat) a shift keeps,
			      * BOS not counted and always kept; -1 or more than the prompt: all of it */
};

/* Tokenizes prompt (BOS as the model asks, special tokens parsed), runs it, then samples up to
 * n_predict tokens, writing each piece as soon as it is known. */
int gen_run(struct engine *e, const struct tokenizer *tok, struct sampler *smp, const char *prompt,
	    const struct gen_opts *o, struct gen_stats *st, struct bn_err *err);

/* Chat: an optional system message, then one user turn per line of `in` until end of file.
 * Each reply ends at an end-of-generation token (kept in the context) or after n_predict. */
int gen_chat(struct engine *e, const struct tokenizer *tok, struct sampler *smp, enum chat_tmpl tmpl,
	     const char *system, FILE *in, const struct gen_opts *o, struct gen_stats *st, struct bn_err *err);

#endif

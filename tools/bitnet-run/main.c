/* bitnet-run: runs a BitNet b1.58 GGUF (bitnet.cpp's run_inference.py / llama-cli): a prompt
 * completion or a chat, streamed to stdout, timings on stderr.  CLI only; the engine lives in
 * engine.c, the tokenizer in tokenizer.c, the loops in generate.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn_file.h"
#include "bn_log.h"
#include "bn_util.h"
#include "chat.h"
#include "engine.h"
#include "generate.h"
#include "lut/lut.h"
#include "sampler.h"
#include "tokenizer.h"

/* The TL kernels generated for one model (mk/codegen.mk) when this binary was linked with them
 * (QUANT=tl1/tl2); NULL otherwise. */
extern const struct lut_kernels lut_generated_kernels __attribute__((weak));

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bitnet-run -m MODEL.gguf [-p PROMPT | -f FILE] [OPTIONS]\n"
		"Runs a BitNet b1.58 model (bitnet, bitnet-b1.58, bitnet-25 or ternary llama GGUF; f32, f16, i2_s,\n"
		"tq1_0, tq2_0, and tl1/tl2 when built for the model) on the CPU.  The prompt and the generated\n"
		"text go to stdout as they are produced; timings go to stderr.\n"
		"\n"
		"  -m, --model FILE       the GGUF model (required)\n"
		"  -p, --prompt TEXT      the prompt; with -cnv the system message\n"
		"  -f, --file FILE        read the prompt from FILE\n"
		"  -n, --n-predict N      tokens to generate (default 128; -1: until the end of text, or a\n"
		"                         full context with --no-context-shift)\n"
		"  -t, --threads N        threads (default: physical cores)\n"
		"  -c, --ctx-size N       context length in tokens (default: the model's)\n"
		"  -b, --batch-size N     prompt tokens per forward pass (default %d)\n"
		"      --temp T           temperature (default 0.8; 0 = greedy)\n"
		"      --top-k K          keep the K most likely tokens (default 40; 0 = off)\n"
		"      --top-p P          keep the most likely tokens up to probability P (default 0.95)\n"
		"      --min-p P          drop tokens below P times the best one's probability (default 0.05)\n"
		"  -s, --seed S           sampling seed (default: from the clock)\n"
		"  -cnv, --conversation   chat: read user turns from stdin, one per line, and answer each in\n"
		"                         the model's chat template (content, llama3, falcon3, bitnet)\n"
		"      --chat-template T  use template T instead of the model's\n"
		"      --no-display-prompt  do not echo the prompt\n"
		"      --keep N           tokens of the prompt (-cnv: of the system message) kept when the\n"
		"                         context is shifted (default 0; -1: all; the BOS is always kept)\n"
		"      --no-context-shift stop generating when the context is full\n"
		"      --isa NAME         kernel set (ref, avx2, avx512, avx512vnni, neon, dotprod)\n"
		"  -q, --quiet            errors only on stderr (no timings)\n"
		"  -v, --verbose          model and kernel details on stderr\n"
		"  -h, --help             this help\n"
		"\n"
		"When the context fills up, it is shifted as llama-cli does: the first --keep tokens stay, half\n"
		"of the rest is discarded (a notice on stderr each time) and generation goes on.\n"
		"Exit status: 0 ok, 1 failure (bad model file, unsupported architecture, ...), 2 usage error.\n",
		ENGINE_DEFAULT_BATCH);
}

struct args {
	const char *model, *prompt, *file, *chat_template, *isa;
	int n_predict;
	int keep;
	unsigned threads, ctx, batch;
	struct sampler_opts smp;
	bool seed_given, conversation, echo, no_shift;
};

static int need(int argc, char **argv, int i)
{
	if (i + 1 >= argc) {
		bn_usage_error("%s needs a value", argv[i]);
		return 0;
	}
	return 1;
}

static int parse_float(const char *opt, const char *s, double lo, double hi, float *out)
{
	double d;
	if (bn_parse_double(s, &d) || d < lo || d > hi)
		return bn_usage_error("%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
	*out = (float)d;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof *a);
	a->n_predict = 128;
	a->echo = true;
	a->smp = (struct sampler_opts){ .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f };
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
#define IS(s, l) (strcmp(o, s) == 0 || strcmp(o, l) == 0)
		if (IS("-h", "--help")) {
			usage(stdout);
			exit(0);
		} else if (IS("-q", "--quiet")) {
			bn_log_level = BN_LOG_QUIET;
		} else if (IS("-v", "--verbose")) {
			bn_log_level = BN_LOG_VERBOSE;
		} else if (IS("-cnv", "--conversation")) {
			a->conversation = true;
		} else if (IS("--no-display-prompt", "--no-display-prompt")) {
			a->echo = false;
		} else if (IS("--no-context-shift", "--no-context-shift")) {
			a->no_shift = true;
		} else if (IS("-m", "--model") || IS("-p", "--prompt") || IS("-f", "--file") ||
			   IS("--chat-template", "--chat-template") || IS("--isa", "--isa")) {
			if (!need(argc, argv, i))
				return 2;
			const char *v = argv[++i];
			if (IS("-m", "--model"))
				a->model = v;
			else if (IS("-p", "--prompt"))
				a->prompt = v;
			else if (IS("-f", "--file"))
				a->file = v;
			else if (IS("--chat-template", "--chat-template"))
				a->chat_template = v;
			else
				a->isa = v;
		} else if (IS("-n", "--n-predict")) {
			if (!need(argc, argv, i))
				return 2;
			const char *v = argv[++i];
			unsigned u;
			if (strcmp(v, "-1") == 0)
				a->n_predict = -1;
			else if (bn_parse_uint(v, 0, 1u << 24, &u) == 0)
				a->n_predict = (int)u;
			else
				return bn_usage_error("%s: '%s' is not a token count (or -1)", o, v);
		} else if (IS("--keep", "--keep")) {
			if (!need(argc, argv, i))
				return 2;
			const char *v = argv[++i];
			unsigned u;
			if (strcmp(v, "-1") == 0)
				a->keep = -1;
			else if (bn_parse_uint(v, 0, MODEL_MAX_CTX, &u) == 0)
				a->keep = (int)u;
			else
				return bn_usage_error("%s: '%s' is not a token count in [0, %u] (or -1)", o, v, MODEL_MAX_CTX);
		} else if (IS("-t", "--threads") || IS("-c", "--ctx-size") || IS("-b", "--batch-size") ||
			   IS("--top-k", "--top-k")) {
			if (!need(argc, argv, i))
				return 2;
			const char *v = argv[++i];
			unsigned u, lo = IS("--top-k", "--top-k") ? 0 : 1;
			unsigned hi = IS("-t", "--threads") ? 1024 : IS("--top-k", "--top-k") ? (1u << 22) : (1u << 20);
			if (bn_parse_uint(v, lo, hi, &u))
				return bn_usage_error("%s: '%s' is not a number in [%u, %u]", o, v, lo, hi);
			if (IS("-t", "--threads"))
				a->threads = u;
			else if (IS("-c", "--ctx-size"))
				a->ctx = u;
			else if (IS("-b", "--batch-size"))
				a->batch = u;
			else
				a->smp.top_k = (int)u;
		} else if (IS("--temp", "--temperature") || IS("--top-p", "--top-p") || IS("--min-p", "--min-p")) {
			if (!need(argc, argv, i))
				return 2;
			const char *v = argv[++i];
			float *dst = IS("--temp", "--temperature") ? &a->smp.temp : IS("--top-p", "--top-p") ? &a->smp.top_p : &a->smp.min_p;
			if (parse_float(o, v, 0.0, IS("--temp", "--temperature") ? 100.0 : 1.0, dst))
				return 2;
		} else if (IS("-s", "--seed")) {
			if (!need(argc, argv, i))
				return 2;
			uint64_t s;
			if (bn_parse_u64(argv[++i], &s))
				return bn_usage_error("%s: '%s' is not a seed (an unsigned integer)", o, argv[i]);
			a->smp.seed = s;
			a->seed_given = true;
		} else {
			return bn_usage_error("unknown option '%s'", o);
		}
#undef IS
	}
	if (!a->model)
		return bn_usage_error("no model; give -m MODEL.gguf");
	if (a->prompt && a->file)
		return bn_usage_error("give the prompt with -p or -f, not both");
	if (!a->prompt && !a->file && !a->conversation)
		return bn_usage_error("no prompt; give -p TEXT, -f FILE or -cnv");
	if (!a->seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		a->smp.seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
	}
	return 0;
}

static int exit_status(int rc)
{
	return rc == -BN_EINVAL ? 2 : 1;
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	struct args a;
	int st = parse_args(argc, argv, &a);
	if (st)
		return st;
	bn_catch_interrupts();

	struct bn_err err = { 0 };
	struct engine *e = NULL;
	struct tokenizer *tok = NULL;
	struct sampler smp = { 0 };
	char *file_prompt = NULL;
	int rc = 0;
	if (a.file) {
		size_t len;
		if ((rc = bn_read_file(a.file, 64u << 20, &file_prompt, &len, &err)))
			goto out;
		a.prompt = file_prompt;
	}
	struct engine_opts eo = { .threads = a.threads, .n_ctx = a.ctx, .n_batch = a.batch, .isa = a.isa,
				  .lut = &lut_generated_kernels };
	if ((rc = engine_open(&e, a.model, &eo, &err)))
		goto out;
	const struct model *m = engine_model(e);
	if ((rc = tok_open(&tok, m->gguf, a.model, &err)) || (rc = sampler_init(&smp, m->cfg.n_vocab, &a.smp, &err)))
		goto out;
	char desc[128];
	bn_verbose("%s: %s, %u layers, embedding %u, FFN %u, %u/%u heads, vocab %u, context %u of %u; %s",
		   a.model, m->cfg.arch_name, m->cfg.n_layer, m->cfg.n_embd, m->cfg.n_ff, m->cfg.n_head,
		   m->cfg.n_head_kv, m->cfg.n_vocab, engine_n_ctx(e), m->cfg.n_ctx_train, engine_describe(e, desc, sizeof desc));

	struct gen_stats gs = { 0 };
	struct gen_opts go = { .n_predict = a.n_predict, .echo_prompt = a.echo, .out = stdout, .log = stderr,
			      .no_shift = a.no_shift, .keep = a.keep };
	if (a.conversation) {
		const char *t = a.chat_template;
		size_t tl = t ? strlen(t) : 0;
		struct gguf_str s;
		int64_t kv = gguf_find_key(m->gguf, "tokenizer.chat_template");
		if (!t) {
			if (kv < 0 || gguf_get_str(m->gguf, kv, &s, NULL)) {
				rc = bn_seterr(&err, BN_EUNSUPPORTED, "%s: the model has no chat template; give --chat-template NAME",
					       a.model);
				goto out;
			}
			t = s.data;
			tl = s.len;
		}
		enum chat_tmpl tmpl;
		if ((rc = chat_detect(t, tl, &tmpl, &err))) {
			bn_err_prefix(&err, "%s", a.model);
			goto out;
		}
		bn_verbose("chat template: %s", chat_name(tmpl));
		rc = gen_chat(e, tok, &smp, tmpl, a.prompt, stdin, &go, &gs, &err);
	} else {
		rc = gen_run(e, tok, &smp, a.prompt, &go, &gs, &err);
		if (rc == 0)
			fputc('\n', stdout);
	}
	if (gs.ctx_full && !a.conversation)
		bn_warn("the context is full (%u tokens); stopped generating", engine_n_ctx(e));
	if (gs.n_prompt)
		bn_info("prompt: %zu tokens in %.2f s (%.1f tokens/s)", gs.n_prompt, gs.t_prompt,
			gs.t_prompt > 0 ? (double)gs.n_prompt / gs.t_prompt : 0.0);
	if (gs.n_gen)
		bn_info("generation: %zu tokens in %.2f s (%.1f tokens/s)", gs.n_gen, gs.t_gen,
			gs.t_gen > 0 ? (double)gs.n_gen / gs.t_gen : 0.0);
out:
	if (rc)
		bn_error("%s", err.msg);
	sampler_free(&smp);
	tok_close(tok);
	engine_close(e);
	free(file_prompt);
	return rc ? exit_status(rc) : 0;
}

/* engine-bench: bitnet-run's prompt and generation speed the way anchors.md measured llama-cli
 * (a 64-token prompt, 64 generated tokens, greedy), with 1 and 2 threads, next to the reference
 * figures as ratios, next to this machine's memory-bandwidth limit measured in the same run
 * (bytes the model reads per generated token / read bandwidth), and the peak RSS against the
 * model file plus KV cache.  bitnet-run runs as a child process, so its RSS is its own.
 * Several --run/--model pairs (e.g. I2_S and TL2 builds of one checkpoint) are measured in the
 * same run, their runs interleaved; the later ones are also printed as ratios to the first. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bn_membw.h"
#include "bn_util.h"
#include "model.h"
#include "tokenizer.h"

/* anchors.md (d): bitnet.cpp on a 24-layer bitnet_b1_58-large I2_S file, medians, tokens/s */
static const double ANCHOR_CLI_PROMPT[2] = { 56.6, 104.5 }, ANCHOR_CLI_GEN[2] = { 19.7, 34.4 };
static const double ANCHOR_BENCH_PP[2] = { 53.4, 106.3 }, ANCHOR_BENCH_TG[2] = { 22.2, 37.0 };

#define MAX_RUNS 16
#define MAX_BUILDS 4

/* ---- running bitnet-run ----------------------------------------------------------------------- */

struct run_result {
	double prompt_tps, gen_tps, prompt_s, gen_s;
	size_t prompt_n, gen_n;
	long maxrss_kb;
	double cpu_s;
};

static int run_once(const char *bin, const char *model, const char *prompt, unsigned threads, unsigned ctx,
		    unsigned n_gen, struct run_result *r)
{
	char tbuf[16], cbuf[16], nbuf[16];
	snprintf(tbuf, sizeof tbuf, "%u", threads);
	snprintf(cbuf, sizeof cbuf, "%u", ctx);
	snprintf(nbuf, sizeof nbuf, "%u", n_gen);
	int fd[2];
	if (pipe(fd))
		return -1;
	fflush(stdout); /* the child must not inherit (and later flush) our buffered lines */
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(bin, bin, "-m", model, "-p", prompt, "-n", nbuf, "-t", tbuf, "-c", cbuf, "--temp", "0",
		      "--no-display-prompt", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char out[4096];
	size_t len = 0;
	ssize_t k;
	while ((k = read(fd[0], out + len, sizeof out - 1 - len)) > 0)
		len += (size_t)k;
	out[len] = 0;
	close(fd[0]);
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "engine-bench: %s failed: %s\n", bin, out);
		return -1;
	}
	memset(r, 0, sizeof *r);
	const char *p = strstr(out, "prompt: "), *g = strstr(out, "generation: ");
	if (!p || !g || sscanf(p, "prompt: %zu tokens in %lf s (%lf", &r->prompt_n, &r->prompt_s, &r->prompt_tps) != 3 ||
	    sscanf(g, "generation: %zu tokens in %lf s (%lf", &r->gen_n, &r->gen_s, &r->gen_tps) != 3) {
		fprintf(stderr, "engine-bench: no timings from bitnet-run: %s\n", out);
		return -1;
	}
	r->maxrss_kb = ru.ru_maxrss;
	r->cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		   ru.ru_stime.tv_usec / 1e6;
	return 0;
}

/* A text the model's tokenizer turns into exactly n tokens (BOS included), cut from a long one. */
static char *prompt_of(const struct tokenizer *t, size_t n)
{
	static const char base[] =
		"The quick brown fox jumps over the lazy dog while the bandwidth of the memory bus limits "
		"how fast a ternary model can generate text on an ordinary CPU, so the kernels read packed "
		"two-bit weights and the engine keeps every other step out of the way of that stream. ";
	size_t cap = 64 * sizeof base;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	s[0] = 0;
	while (strlen(s) + sizeof base < cap)
		strcat(s, base);
	size_t lo = 1, hi = strlen(s);
	while (lo < hi) { /* the shortest prefix with >= n tokens */
		size_t mid = (lo + hi) / 2, k;
		int32_t *ids;
		struct bn_err err;
		if (tok_encode(t, s, mid, true, false, &ids, &k, &err)) {
			free(s);
			return NULL;
		}
		free(ids);
		if (k >= n)
			hi = mid;
		else
			lo = mid + 1;
	}
	s[lo] = 0;
	return s;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median [min-max] of v[0..n) into buf */
static const char *stats(double *v, int n, char *buf, size_t size)
{
	qsort(v, (size_t)n, sizeof *v, cmp_dbl);
	snprintf(buf, size, "%7.1f [%.1f-%.1f]", v[n / 2], v[0], v[n - 1]);
	return buf;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_dbl);
	return v[n / 2];
}

/* One engine build and the model it runs. */
struct build {
	const char *bin, *model, *label;
	double per_token, file, bwt[2]; /* bytes read per generated token, file size, bandwidth over per_token */
	double pp[2][MAX_RUNS], tg[2][MAX_RUNS];
	long rss_kb;
};

int main(int argc, char **argv)
{
	struct build b[MAX_BUILDS] = { 0 };
	int nb = 0, runs = 3;
	unsigned ctx = 2048, n_prompt = 64, n_gen = 64;
	bool bad = false;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--run") == 0) {
			if (nb == MAX_BUILDS) {
				bad = true;
				break;
			}
			b[nb++].bin = argv[i + 1];
		} else if (strcmp(argv[i], "--model") == 0 && nb > 0)
			b[nb - 1].model = argv[i + 1];
		else if (strcmp(argv[i], "--label") == 0 && nb > 0)
			b[nb - 1].label = argv[i + 1];
		else if (strcmp(argv[i], "--runs") == 0)
			runs = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--ctx") == 0)
			ctx = (unsigned)atoi(argv[i + 1]);
		else
			bad = true;
	}
	for (int j = 0; j < nb; j++)
		bad |= !b[j].model;
	if (bad || nb == 0 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr,
			"usage: engine-bench --run BITNET-RUN --model GGUF [--label NAME] [--run ... (up to %d builds; ratios to "
			"the first)] [--runs N (1..%d)] [--ctx N]\n",
			MAX_BUILDS, MAX_RUNS);
		return 2;
	}
	char *prompt = NULL;
	struct config cfg = { 0 };
	const struct config *c = &cfg;
	for (int j = 0; j < nb; j++) {
		struct model m;
		struct bn_err err = { 0 };
		if (model_open(&m, b[j].model, &err)) {
			fprintf(stderr, "engine-bench: %s\n", err.msg);
			return 1;
		}
		if (j == 0) { /* the prompt and the KV cache of the first model; the others have the same vocabulary */
			struct tokenizer *tok = NULL;
			if (tok_open(&tok, m.gguf, b[j].model, &err)) {
				fprintf(stderr, "engine-bench: %s\n", err.msg);
				return 1;
			}
			prompt = prompt_of(tok, n_prompt);
			tok_close(tok);
			cfg = m.cfg;
		}
		b[j].per_token = (double)model_bytes_per_token(&m);
		struct stat sb;
		b[j].file = stat(b[j].model, &sb) ? 0 : (double)sb.st_size;
		if (!b[j].label) {
			const char *slash = strrchr(b[j].model, '/');
			b[j].label = slash ? slash + 1 : b[j].model;
		}
		model_close(&m);
	}
	if (!prompt)
		return 1;
	const double kv_full = 2.0 * c->n_layer * ctx * config_n_kv(c) * 2;
	const double kv_used = 2.0 * c->n_layer * (n_prompt + n_gen) * config_n_kv(c) * 2;

	/* The bandwidths first, then let the buffer go so that it does not compete: over 1 GiB (main
	 * memory), and over as many bytes as one generated token of each model reads, which a large
	 * last-level cache partly holds (this machine's L3 is 260 MiB) - the limit that applies to the
	 * model. */
	const size_t words = (1ull << 30) / 8;
	uint64_t *buf = malloc(words * 8);
	if (!buf)
		return 1;
	for (size_t i = 0; i < words; i++)
		buf[i] = i;
	double bw[2] = { bn_read_bandwidth(buf, words * 8, 1, 5), bn_read_bandwidth(buf, words * 8, 2, 5) };
	for (int j = 0; j < nb; j++) {
		const size_t tok_words = (size_t)b[j].per_token / 8;
		b[j].bwt[0] = bn_read_bandwidth(buf, tok_words * 8, 1, 5);
		b[j].bwt[1] = bn_read_bandwidth(buf, tok_words * 8, 2, 5);
	}
	free(buf);

	double load[3] = { 0 };
	getloadavg(load, 3);
	for (int j = 0; j < nb; j++)
		printf("    %s: %s: %u layers, %.0f MB file, %.0f MB read per generated token\n", b[j].label, b[j].model,
		       c->n_layer, b[j].file / 1e6, b[j].per_token / 1e6);
	printf("    %u-token prompt, %u generated (greedy), -c %u, %d runs%s: median [min-max]; load average %.2f\n",
	       n_prompt, n_gen, ctx, runs, nb > 1 ? " (the builds' runs interleaved)" : "", load[0]);
	printf("    threads  %-10s  prompt tok/s          vs llama-cli  vs llama-bench  vs %-8s  generation tok/s     "
	       "vs llama-cli  vs llama-bench  vs %-8s  bandwidth limit: per-token working set | 1 GiB (main memory)\n",
	       "build", b[0].label, b[0].label);
	for (unsigned ti = 0; ti < 2; ti++) {
		for (int r = 0; r < runs; r++)
			for (int j = 0; j < nb; j++) {
				struct run_result rr;
				if (run_once(b[j].bin, b[j].model, prompt, ti + 1, ctx, n_gen, &rr))
					return 1;
				if (rr.prompt_n != n_prompt)
					fprintf(stderr, "engine-bench: %s: the prompt was %zu tokens, not %u\n", b[j].label,
						rr.prompt_n, n_prompt);
				b[j].pp[ti][r] = rr.prompt_tps;
				b[j].tg[ti][r] = rr.gen_tps;
				b[j].rss_kb = rr.maxrss_kb > b[j].rss_kb ? rr.maxrss_kb : b[j].rss_kb;
			}
		const double mp0 = median(b[0].pp[ti], runs), mg0 = median(b[0].tg[ti], runs);
		for (int j = 0; j < nb; j++) {
			char a[64], g[64];
			const double mp = median(b[j].pp[ti], runs), mg = median(b[j].tg[ti], runs);
			stats(b[j].pp[ti], runs, a, sizeof a);
			stats(b[j].tg[ti], runs, g, sizeof g);
			const double lt = b[j].bwt[ti] / b[j].per_token, lm = bw[ti] / b[j].per_token;
			printf("    %u        %-10s  %-20s  %5.2fx        %5.2fx          %5.2fx       %-20s %5.2fx        %5.2fx  "
			       "        %5.2fx       %.1f tok/s (%.0f MB at %.1f GB/s): %.0f%% | %.1f tok/s (%.1f GB/s): %.0f%%\n",
			       ti + 1, b[j].label, a, mp / ANCHOR_CLI_PROMPT[ti], mp / ANCHOR_BENCH_PP[ti], mp / mp0, g,
			       mg / ANCHOR_CLI_GEN[ti], mg / ANCHOR_BENCH_TG[ti], mg / mg0, lt, b[j].per_token / 1e6,
			       b[j].bwt[ti] / 1e9, 100.0 * mg / lt, lm, bw[ti] / 1e9, 100.0 * mg / lm);
		}
	}
	printf("    reference (anchors.md): llama-cli prompt %.1f / %.1f, generation %.1f / %.1f tok/s (1 / 2 threads), on "
	       "the I2_S file (anchors.md has no end-to-end TL2 figures); bitnet.cpp at ~55%% / ~49%% of its 1 GiB "
	       "bandwidth limit (10.9 / 20.3 GB/s)\n",
	       ANCHOR_CLI_PROMPT[0], ANCHOR_CLI_PROMPT[1], ANCHOR_CLI_GEN[0], ANCHOR_CLI_GEN[1]);
	for (int j = 0; j < nb; j++) {
		const double rss = (double)b[j].rss_kb * 1024;
		printf("    %s: peak RSS %.0f MB = %.2fx (model file %.0f MB + KV cache %.0f MB at -c %u); %.2fx of the file + "
		       "the %.0f MB of KV cache the run used\n",
		       b[j].label, rss / 1e6, rss / (b[j].file + kv_full), b[j].file / 1e6, kv_full / 1e6, ctx,
		       rss / (b[j].file + kv_used), kv_used / 1e6);
	}
	free(prompt);
	return 0;
}

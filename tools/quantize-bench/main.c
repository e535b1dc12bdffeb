/* quantize-bench: wall time and peak RSS of `i2s-quantize IN OUT I2_S N` on a model-sized f32
 * GGUF, with 1 and more threads, printed next to llama-quantize's figures (anchors.md) and to
 * the time this machine takes to read the same input from the page cache (measured in the same
 * run).  Each configuration runs several times in a child process; wall time is the median,
 * peak RSS the child's ru_maxrss (file pages it has mapped included). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bn_file.h"
#include "bn_log.h"
#include "bn_util.h"

/* anchors.md (a), 24 layers: `llama-quantize … I2_S 1`. */
#define ANCHOR_WALL 3.06
#define ANCHOR_RSS_MB 2890.0

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quantize-bench --quantizer PATH --f32 FILE [--threads LIST] [--repeat N]\n"
		"Times i2s-quantize (I2_S) on an f32 GGUF and reports its peak RSS, next to the\n"
		"reference llama-quantize figures of anchors.md (3.06 s, 2890 MiB for\n"
		"bitnet_b1_58-large) and to a page-cache read of the same input measured now.\n"
		"\n"
		"  --quantizer PATH  the i2s-quantize binary\n"
		"  --f32 FILE        input f32 GGUF (gguf-convert's output for the model); the output\n"
		"                    goes to FILE.bench-i2_s.gguf and is removed at the end\n"
		"  --threads LIST    thread counts, comma-separated (default 1,2)\n"
		"  --repeat N        runs per thread count (default 3; the median is reported)\n"
		"  -h, --help        this help\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Reads the whole file once (1 MiB reads); seconds, or -1. */
static double read_file_time(const char *path, uint64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	static char buf[1 << 20];
	double t0 = bn_now();
	ssize_t n;
	*bytes = 0;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		*bytes += (uint64_t)n;
	double t = bn_now() - t0;
	close(fd);
	return n < 0 ? -1 : t;
}

/* Runs argv; wall seconds and the child's peak RSS in KiB.  -1 if it fails. */
static double run_child(char *const *argv, long *maxrss_kb)
{
	double t0 = bn_now();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0)
		return -1;
	double t = bn_now() - t0;
	*maxrss_kb = ru.ru_maxrss;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t : -1;
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	const char *quantizer = NULL, *f32 = NULL, *threads = "1,2";
	unsigned repeat = 3;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (!v) {
			return bn_usage_error("unknown option or missing value: %s", a);
		} else if (strcmp(a, "--quantizer") == 0) {
			quantizer = argv[++i];
		} else if (strcmp(a, "--f32") == 0) {
			f32 = argv[++i];
		} else if (strcmp(a, "--threads") == 0) {
			threads = argv[++i];
		} else if (strcmp(a, "--repeat") == 0) {
			if (bn_parse_uint(argv[++i], 1, 100, &repeat) < 0)
				return bn_usage_error("--repeat: '%s' is not 1..100", argv[i]);
		} else {
			return bn_usage_error("unknown option: %s", a);
		}
	}
	if (!quantizer || !f32)
		return bn_usage_error("missing --quantizer or --f32");
	char out_path[4096];
	snprintf(out_path, sizeof out_path, "%s.bench-i2_s.gguf", f32);

	/* baseline: the input read from the page cache (second read; the first warms the cache) */
	uint64_t bytes = 0;
	double floor_s = read_file_time(f32, &bytes);
	double f2 = read_file_time(f32, &bytes);
	if (floor_s < 0 || f2 < 0) {
		bn_error("%s: cannot read", f32);
		return 1;
	}
	floor_s = BN_MIN(floor_s, f2);
	char sz[32];
	printf("input: %s, %s\n", f32, bn_fmt_bytes(bytes, sz, sizeof sz));
	printf("read floor: %.3f s to read it from the page cache (%.1f GB/s, 1 thread)\n", floor_s,
	       (double)bytes / floor_s / 1e9);
	printf("reference: llama-quantize ... I2_S 1: %.2f s, %.0f MiB max RSS (anchors.md, "
	       "bitnet_b1_58-large)\n", ANCHOR_WALL, ANCHOR_RSS_MB);
	printf("%-8s %-26s %-12s %-22s %-10s\n", "threads", "wall s median [min-max]",
	       "peak RSS MiB", "vs reference (speed, RSS)", "vs floor");

	double first = 0;
	char list[256];
	snprintf(list, sizeof list, "%s", threads);
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		unsigned nt;
		if (bn_parse_uint(tok, 1, 1024, &nt) < 0)
			return bn_usage_error("--threads: '%s' is not a thread count", tok);
		char nts[16];
		snprintf(nts, sizeof nts, "%u", nt);
		char *cargv[] = { (char *)quantizer, "-q", (char *)f32, out_path, "I2_S", nts, NULL };
		double *w = calloc(repeat, sizeof *w);
		long rss = 0;
		for (unsigned r = 0; r < repeat; r++) {
			long kb = 0;
			w[r] = run_child(cargv, &kb);
			if (w[r] < 0) {
				bn_error("%s failed on %s", quantizer, f32);
				free(w);
				return 1;
			}
			rss = BN_MAX(rss, kb);
		}
		qsort(w, repeat, sizeof *w, cmp_double);
		double med = repeat % 2 ? w[repeat / 2] : (w[repeat / 2 - 1] + w[repeat / 2]) / 2;
		if (!first)
			first = med;
		char wall[64], ref[64];
		snprintf(wall, sizeof wall, "%.3f [%.3f-%.3f]", med, w[0], w[repeat - 1]);
		snprintf(ref, sizeof ref, "%.1fx faster, %.0fx less", ANCHOR_WALL / med,
			 ANCHOR_RSS_MB / ((double)rss / 1024.0));
		printf("%-8u %-26s %-12.1f %-22s %.2fx", nt, wall, (double)rss / 1024.0, ref,
		       med / floor_s);
		if (med != first)
			printf("  (%.2fx the first row's speed)", first / med);
		printf("\n");
		free(w);
	}
	unlink(out_path);
	return 0;
}

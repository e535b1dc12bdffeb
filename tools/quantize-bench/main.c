/* quantize-bench: wall time and peak RSS of `i2s-quantize IN OUT I2_S N` on a model-sized f32
 * GGUF, for several thread counts N, next to llama-quantize's figures (anchors.md) and to two
 * baselines measured in the same run for the same N: the time N threads take to read the input
 * from the page cache (the floor of a one-pass tool), and the CPU the machine actually gives N
 * busy threads (a shared machine may give 2 threads 1 CPU; then no tool can scale).  Each
 * configuration runs several times in a child; wall time is the median, peak RSS the child's
 * ru_maxrss (the mapped file pages it touched included); each run writes a new output file. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bn_log.h"
#include "bn_util.h"

/* anchors.md (a), 24 layers: `llama-quantize … I2_S 1`. */
#define ANCHOR_WALL 3.06
#define ANCHOR_RSS_MB 2890.0
#define MAX_BENCH_THREADS 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quantize-bench --quantizer PATH --f32 FILE [--threads LIST] [--repeat N]\n"
		"Times i2s-quantize (I2_S) on an f32 GGUF and reports its peak RSS, next to the\n"
		"reference llama-quantize figures of anchors.md (3.06 s, 2890 MiB for\n"
		"bitnet_b1_58-large) and to baselines measured now for each thread count: reading\n"
		"the input from the page cache with that many threads, and the CPUs that many\n"
		"spinning threads get.\n"
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

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- baselines ------------------------------------------------------------------------------- */

struct reader {
	int fd;
	off_t from, to;
	pthread_t tid;
	int ok;
};

static void *read_stripe(void *arg)
{
	struct reader *r = arg;
	char *buf = malloc(1 << 20);
	r->ok = buf != NULL;
	for (off_t o = r->from; buf && o < r->to;) {
		ssize_t n = pread(r->fd, buf, (size_t)BN_MIN((off_t)1 << 20, r->to - o), o);
		if (n <= 0) {
			r->ok = 0;
			break;
		}
		o += n;
	}
	free(buf);
	return NULL;
}

/* Seconds for nt threads to read the file (each a contiguous 1/nt), or -1. */
static double read_floor(const char *path, unsigned nt)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	struct reader r[MAX_BENCH_THREADS];
	double t0 = bn_now();
	for (unsigned j = 0; j < nt; j++) {
		r[j] = (struct reader){ fd, st.st_size / nt * j,
					j + 1 == nt ? st.st_size : st.st_size / nt * (j + 1), 0, 0 };
		pthread_create(&r[j].tid, NULL, read_stripe, &r[j]);
	}
	int ok = 1;
	for (unsigned j = 0; j < nt; j++) {
		pthread_join(r[j].tid, NULL);
		ok &= r[j].ok;
	}
	double t = bn_now() - t0;
	close(fd);
	return ok ? t : -1;
}

static volatile unsigned long spin_sink; /* keeps the busy loop from being optimised away */

static void *spin(void *arg)
{
	double *cpu = arg, t0 = bn_now();
	while (bn_now() - t0 < 0.4)
		for (int k = 0; k < 100000; k++)
			spin_sink += (unsigned long)k;
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	*cpu = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return NULL;
}

/* CPUs that nt spinning threads get, on average over 0.4 s. */
static double cpu_capacity(unsigned nt)
{
	pthread_t tid[MAX_BENCH_THREADS];
	double cpu[MAX_BENCH_THREADS], t0 = bn_now(), sum = 0;
	for (unsigned j = 0; j < nt; j++)
		pthread_create(&tid[j], NULL, spin, &cpu[j]);
	for (unsigned j = 0; j < nt; j++) {
		pthread_join(tid[j], NULL);
		sum += cpu[j];
	}
	return sum / (bn_now() - t0);
}

/* Runs argv; wall seconds and the child's peak RSS in KiB.  -1 if it fails. */
static double run_child(char *const *argv, long *maxrss_kb)
{
	double t0 = bn_now();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
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
	struct stat st;
	if (stat(f32, &st) < 0 || read_floor(f32, 1) < 0) { /* also warms the page cache */
		bn_error("%s: cannot read", f32);
		return 1;
	}
	char sz[32];
	printf("input: %s, %s\n", f32, bn_fmt_bytes((uint64_t)st.st_size, sz, sizeof sz));
	printf("reference: llama-quantize ... I2_S 1: %.2f s, %.0f MiB max RSS (anchors.md, "
	       "bitnet_b1_58-large)\n", ANCHOR_WALL, ANCHOR_RSS_MB);
	printf("baselines, same run: read = the input read from the page cache by that many "
	       "threads;\n  CPUs = what that many spinning threads get on this machine now\n");
	printf("%-7s %-25s %-8s %-11s %-8s %-6s %-22s %s\n", "threads", "wall s median [min-max]",
	       "RSS MiB", "read s", "x read", "CPUs", "vs llama-quantize", "speed-up");

	double first = 0;
	char list[256];
	snprintf(list, sizeof list, "%s", threads);
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		unsigned nt;
		if (bn_parse_uint(tok, 1, MAX_BENCH_THREADS, &nt) < 0)
			return bn_usage_error("--threads: '%s' is not 1..%d", tok, MAX_BENCH_THREADS);
		char nts[16];
		snprintf(nts, sizeof nts, "%u", nt);
		char *cargv[] = { (char *)quantizer, "-q", (char *)f32, out_path, "I2_S", nts, NULL };
		double w[100], rf[3];
		long rss = 0;
		for (int k = 0; k < 3; k++)
			rf[k] = read_floor(f32, nt);
		double cpus = cpu_capacity(nt);
		for (unsigned r = 0; r < repeat; r++) {
			/* the previous run's output goes first, untimed: replacing a file makes the
			 * rename free its blocks and cached pages (~0.08 s here), which is not the
			 * quantizer's work */
			unlink(out_path);
			sync();
			long kb = 0;
			w[r] = run_child(cargv, &kb);
			if (w[r] < 0) {
				bn_error("%s failed on %s", quantizer, f32);
				return 1;
			}
			rss = BN_MAX(rss, kb);
		}
		double lo = w[0], hi = w[0];
		for (unsigned r = 1; r < repeat; r++) {
			lo = BN_MIN(lo, w[r]);
			hi = BN_MAX(hi, w[r]);
		}
		double med = median(w, repeat), floor_s = median(rf, 3);
		if (!first)
			first = med;
		char wall[64], ref[64];
		snprintf(wall, sizeof wall, "%.3f [%.3f-%.3f]", med, lo, hi);
		snprintf(ref, sizeof ref, "%.1fx faster, %.0fx less", ANCHOR_WALL / med,
			 ANCHOR_RSS_MB / ((double)rss / 1024.0));
		printf("%-7u %-25s %-8.1f %-11.3f %-8.2f %-6.2f %-22s %.2fx\n", nt, wall,
		       (double)rss / 1024.0, floor_s, med / floor_s, cpus, ref, first / med);
	}
	unlink(out_path);
	return 0;
}

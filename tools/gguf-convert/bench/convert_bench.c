/* bench-convert: wall time and peak RSS of gguf-convert on a checkpoint (f32 and direct i2_s),
 * next to the time this machine takes to write the same number of bytes sequentially with
 * fdatasync (measured in the same run, interleaved with the conversions) and to the reference
 * figures of ../shared/docs/anchors.md.  Invariant: every figure is a median over --runs runs
 * and is printed with its min-max; outputs are deleted after each run. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* anchors.md (a), 24 layers: converter --outtype f32, llama-quantize I2_S 1 (median, s / MiB) */
#define REF_F32_S 9.46
#define REF_F32_RSS_MIB 5314.0
#define REF_QUANT_S 3.06
#define REF_QUANT_RSS_MIB 2890.0

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct series {
	double v[64];
	int n;
};

static void add(struct series *s, double v)
{
	if (s->n < 64)
		s->v[s->n++] = v;
}

static double median(const struct series *s, double *lo, double *hi)
{
	double t[64];
	memcpy(t, s->v, (size_t)s->n * sizeof *t);
	qsort(t, (size_t)s->n, sizeof *t, cmp_dbl);
	*lo = t[0];
	*hi = t[s->n - 1];
	return s->n % 2 ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}

/* Runs argv; wall seconds and the child's peak RSS in MiB. */
static int run(char *const *argv, double *wall, double *rss_mib)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0)
		return -1;
	*wall = now() - t0;
	*rss_mib = (double)ru.ru_maxrss / 1024.0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Writes `bytes` sequentially in 4 MiB writes, then fdatasync; seconds. */
static double write_floor(const char *path, uint64_t bytes)
{
	static uint8_t buf[4 << 20];
	uint32_t s = 0x9e3779b9u;
	for (size_t i = 0; i < sizeof buf; i += 4) {
		s = s * 1664525u + 1013904223u;
		memcpy(buf + i, &s, 4);
	}
	double t0 = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	for (uint64_t done = 0; done < bytes;) {
		size_t n = bytes - done < sizeof buf ? (size_t)(bytes - done) : sizeof buf;
		ssize_t w = write(fd, buf, n);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		done += (uint64_t)w;
	}
	if (fdatasync(fd) != 0 || close(fd) != 0)
		return -1;
	double t = now() - t0;
	unlink(path);
	return t;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int main(int argc, char **argv)
{
	const char *conv = NULL, *model = NULL, *out = NULL, *threads = NULL;
	int runs = 3;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--convert") == 0)
			conv = argv[i + 1];
		else if (strcmp(argv[i], "--model") == 0)
			model = argv[i + 1];
		else if (strcmp(argv[i], "--out") == 0)
			out = argv[i + 1];
		else if (strcmp(argv[i], "--threads") == 0)
			threads = argv[i + 1];
		else if (strcmp(argv[i], "--runs") == 0)
			runs = atoi(argv[i + 1]);
	}
	if (!conv || !model || !out || runs < 1 || runs > 64) {
		fprintf(stderr, "usage: convert-bench --convert BIN --model DIR --out DIR [--runs N] "
				"[--threads N]\n");
		return 2;
	}
	mkdir(out, 0755);
	char f32[4096], i2s[4096], floor_path[4096], st_path[4096];
	snprintf(f32, sizeof f32, "%s/bench-f32.gguf", out);
	snprintf(i2s, sizeof i2s, "%s/bench-i2_s.gguf", out);
	snprintf(floor_path, sizeof floor_path, "%s/bench-floor.bin", out);
	snprintf(st_path, sizeof st_path, "%s/model.safetensors", model);
	char *a_f32[] = { (char *)conv, "-q", (char *)model, "--outfile", f32,
			  threads ? "--threads" : NULL, (char *)threads, NULL };
	char *a_i2s[] = { (char *)conv, "-q", (char *)model, "--outtype", "i2_s", "--outfile", i2s,
			  threads ? "--threads" : NULL, (char *)threads, NULL };
	struct series floor_s = { 0 }, f32_s = { 0 }, f32_m = { 0 }, i2s_s = { 0 }, i2s_m = { 0 };
	uint64_t f32_bytes = 0, i2s_bytes = 0;
	for (int r = 0; r < runs; r++) {
		double w, m;
		if (run(a_f32, &w, &m)) {
			fprintf(stderr, "convert-bench: %s --outtype f32 failed\n", conv);
			return 1;
		}
		add(&f32_s, w);
		add(&f32_m, m);
		f32_bytes = file_size(f32);
		unlink(f32);
		double fl = write_floor(floor_path, f32_bytes);
		if (fl < 0) {
			fprintf(stderr, "convert-bench: %s: %s\n", floor_path, strerror(errno));
			return 1;
		}
		add(&floor_s, fl);
		if (run(a_i2s, &w, &m)) {
			fprintf(stderr, "convert-bench: %s --outtype i2_s failed\n", conv);
			return 1;
		}
		add(&i2s_s, w);
		add(&i2s_m, m);
		i2s_bytes = file_size(i2s);
		unlink(i2s);
	}
	double lo, hi, mlo, mhi;
	double fl = median(&floor_s, &lo, &hi);
	printf("  %-34s %7.2f s [%.2f-%.2f]  %.2f GB/s\n", "write floor (same bytes, fdatasync)", fl,
	       lo, hi, (double)f32_bytes / fl / 1e9);
	double tf = median(&f32_s, &lo, &hi), mf = median(&f32_m, &mlo, &mhi);
	printf("  %-34s %7.2f s [%.2f-%.2f]  %.2fx the write floor (goal <= 1.3x); reference "
	       "%.2f s: %.1fx faster\n", "gguf-convert --outtype f32", tf, lo, hi, tf / fl, REF_F32_S,
	       REF_F32_S / tf);
	printf("  %-34s %7.0f MiB [%.0f-%.0f]  (goal < 256 MB; reference %.0f MiB: %.0fx less)\n",
	       "  peak RSS", mf, mlo, mhi, REF_F32_RSS_MIB, REF_F32_RSS_MIB / mf);
	double ti = median(&i2s_s, &lo, &hi), mi = median(&i2s_m, &mlo, &mhi);
	double ref2 = REF_F32_S + REF_QUANT_S;
	printf("  %-34s %7.2f s [%.2f-%.2f]  reference two-step %.2f s (%.2f + %.2f): %.1fx faster "
	       "(goal >= 10x)\n", "gguf-convert --outtype i2_s", ti, lo, hi, ref2, REF_F32_S,
	       REF_QUANT_S, ref2 / ti);
	printf("  %-34s %7.0f MiB [%.0f-%.0f]  (reference %.0f MiB peak over its two steps)\n",
	       "  peak RSS", mi, mlo, mhi, REF_F32_RSS_MIB);
	printf("  sizes: checkpoint %.2f GB, f32 %.2f GB, i2_s %.3f GB\n",
	       (double)file_size(st_path) / 1e9, (double)f32_bytes / 1e9, (double)i2s_bytes / 1e9);
	return 0;
}

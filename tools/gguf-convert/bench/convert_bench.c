/* bench-convert: wall time and peak RSS of gguf-convert on a checkpoint (f32 and direct i2_s),
 * next to the time this machine takes to write the same bytes sequentially with fdatasync (the
 * f32 output itself, and as many random bytes; measured in the same run, interleaved with the
 * conversions: virtual disks write compressible data faster) and to the reference figures of
 * ../shared/docs/anchors.md.  Invariant: every figure is a median over --runs runs
 * and is printed with its min-max; outputs are deleted after each run. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Writes `bytes` sequentially in 4 MiB writes, then fdatasync; seconds.  Every 4 KiB page is
 * different (random data with the page number stamped in), so that a virtual disk cannot make
 * the floor look faster by deduplicating or compressing repeated blocks. */
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
		for (size_t pg = 0; pg < sizeof buf; pg += 4096) {
			uint64_t no = (done + pg) / 4096;
			memcpy(buf + pg, &no, 8);
		}
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

/* Writes the bytes of file `src` to `path` in 4 MiB writes from a read-only mapping (one copy,
 * as the converter's own writes), then fdatasync; seconds. */
static double write_same(const char *src, const char *path)
{
	int in = open(src, O_RDONLY);
	if (in < 0)
		return -1;
	struct stat st;
	if (fstat(in, &st) != 0 || st.st_size == 0) {
		close(in);
		return -1;
	}
	size_t n = (size_t)st.st_size;
	const uint8_t *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, in, 0);
	close(in);
	if (m == MAP_FAILED)
		return -1;
	volatile uint8_t sink = 0; /* fault the source in before the clock starts */
	for (size_t i = 0; i < n; i += 4096)
		sink += m[i];
	(void)sink;
	double t0 = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		munmap((void *)m, n);
		return -1;
	}
	for (size_t done = 0; done < n;) {
		size_t k = n - done < (4u << 20) ? n - done : (4u << 20);
		ssize_t w = write(fd, m + done, k);
		if (w <= 0) {
			close(fd);
			munmap((void *)m, n);
			return -1;
		}
		done += (size_t)w;
	}
	int rc = fdatasync(fd) | close(fd);
	double t = now() - t0;
	munmap((void *)m, n);
	unlink(path);
	return rc ? -1 : t;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int main(int argc, char **argv)
{
	const char *conv = NULL, *model = NULL, *out = NULL, *threads = NULL;
	int runs = 3, settle = 3;
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
		else if (strcmp(argv[i], "--settle") == 0)
			settle = atoi(argv[i + 1]);
	}
	if (!conv || !model || !out || runs < 1 || runs > 64 || settle < 0) {
		fprintf(stderr, "usage: convert-bench --convert BIN --model DIR --out DIR [--runs N] "
				"[--threads N] [--settle SECONDS]\n");
		return 2;
	}
	mkdir(out, 0755);
	char f32[4096], ref[4096], i2s[4096], floor_path[4096], st_path[4096];
	snprintf(f32, sizeof f32, "%s/bench-f32.gguf", out);
	snprintf(ref, sizeof ref, "%s/bench-f32-bytes.gguf", out);
	snprintf(i2s, sizeof i2s, "%s/bench-i2_s.gguf", out);
	snprintf(floor_path, sizeof floor_path, "%s/bench-floor.bin", out);
	snprintf(st_path, sizeof st_path, "%s/model.safetensors", model);
	char *a_f32[] = { (char *)conv, "-q", (char *)model, "--outfile", f32,
			  threads ? "--threads" : NULL, (char *)threads, NULL };
	char *a_ref[] = { (char *)conv, "-q", (char *)model, "--outfile", ref, NULL };
	char *a_i2s[] = { (char *)conv, "-q", (char *)model, "--outtype", "i2_s", "--outfile", i2s,
			  threads ? "--threads" : NULL, (char *)threads, NULL };
	struct series floor_s = { 0 }, rnd_s = { 0 }, f32_s = { 0 }, f32_m = { 0 }, i2s_s = { 0 },
		      i2s_m = { 0 };
	uint64_t f32_bytes = 0, i2s_bytes = 0;
	double w, m;
	/* the f32 output's bytes, kept for the floor (and a warm-up of the page cache) */
	if (run(a_ref, &w, &m)) {
		fprintf(stderr, "convert-bench: %s --outtype f32 failed\n", conv);
		return 1;
	}
	f32_bytes = file_size(ref);
	/* Each timed write starts on a settled disk (a virtual disk keeps absorbing a big write
	 * after fsync returns), and the conversion and the floor take turns going first. */
#define SETTLE() do { sync(); sleep((unsigned)settle); } while (0)
	for (int r = 0; r < runs; r++) {
		for (int k = 0; k < 2; k++) {
			SETTLE();
			if ((k == 0) == (r % 2 == 0)) {
				if (run(a_f32, &w, &m)) {
					fprintf(stderr, "convert-bench: %s --outtype f32 failed\n", conv);
					goto fail;
				}
				add(&f32_s, w);
				add(&f32_m, m);
				unlink(f32);
			} else {
				double fl = write_same(ref, floor_path);
				if (fl < 0)
					goto fail_io;
				add(&floor_s, fl);
			}
		}
		SETTLE();
		double fr = write_floor(floor_path, f32_bytes);
		if (fr < 0)
			goto fail_io;
		add(&rnd_s, fr);
		SETTLE();
		if (run(a_i2s, &w, &m)) {
			fprintf(stderr, "convert-bench: %s --outtype i2_s failed\n", conv);
			goto fail;
		}
		add(&i2s_s, w);
		add(&i2s_m, m);
		i2s_bytes = file_size(i2s);
		unlink(i2s);
	}
	unlink(ref);
	double load_end = -1;
	FILE *la = fopen("/proc/loadavg", "r");
	if (la) {
		if (fscanf(la, "%lf", &load_end) != 1)
			load_end = -1;
		fclose(la);
	}
	double lo, hi, mlo, mhi;
	double fr = median(&rnd_s, &lo, &hi);
	printf("  %-34s %7.2f s [%.2f-%.2f]  %.2f GB/s (unique random pages)\n",
	       "write, random data, fdatasync", fr, lo, hi, (double)f32_bytes / fr / 1e9);
	double fl = median(&floor_s, &lo, &hi);
	printf("  %-34s %7.2f s [%.2f-%.2f]  %.2f GB/s (the f32 output's own bytes: the floor)\n",
	       "write floor, same bytes, fdatasync", fl, lo, hi, (double)f32_bytes / fl / 1e9);
	double flo = lo;
	double tf = median(&f32_s, &lo, &hi), mf = median(&f32_m, &mlo, &mhi);
	printf("  %-34s %7.2f s [%.2f-%.2f]  %.2fx the write floor (best runs: %.2fx; goal <= 1.3x); "
	       "reference %.2f s: %.1fx faster\n", "gguf-convert --outtype f32", tf, lo, hi, tf / fl,
	       lo / flo, REF_F32_S, REF_F32_S / tf);
	printf("  %-34s %7.0f MiB [%.0f-%.0f]  (goal < 256 MB; reference %.0f MiB: %.0fx less)\n",
	       "  peak RSS", mf, mlo, mhi, REF_F32_RSS_MIB, REF_F32_RSS_MIB / mf);
	double ti = median(&i2s_s, &lo, &hi), mi = median(&i2s_m, &mlo, &mhi);
	double ref2 = REF_F32_S + REF_QUANT_S;
	printf("  %-34s %7.2f s [%.2f-%.2f]  reference two-step %.2f s (%.2f + %.2f): %.1fx faster "
	       "(best run: %.1fx; goal >= 10x)\n", "gguf-convert --outtype i2_s", ti, lo, hi, ref2,
	       REF_F32_S, REF_QUANT_S, ref2 / ti, ref2 / lo);
	printf("  %-34s %7.0f MiB [%.0f-%.0f]  (reference %.0f MiB peak over its two steps)\n",
	       "  peak RSS", mi, mlo, mhi, REF_F32_RSS_MIB);
	printf("  sizes: checkpoint %.2f GB, f32 %.2f GB, i2_s %.3f GB\n",
	       (double)file_size(st_path) / 1e9, (double)f32_bytes / 1e9, (double)i2s_bytes / 1e9);
	printf("  %-34s %.2f (1-minute load average; the machine is shared: compare ratios)\n",
	       "load during the runs", load_end);
	return 0;
fail_io:
	fprintf(stderr, "convert-bench: %s: %s\n", floor_path, strerror(errno));
fail:
	unlink(ref);
	unlink(f32);
	unlink(floor_path);
	return 1;
}

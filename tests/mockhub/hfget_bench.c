/* hfget-bench: hfget against `curl -o` on one large file served over loopback by the mock hub's
 * CDN listener (sendfile, no faults), in the same run, alternating, best of N rounds each.
 * Prints wall time, throughput, peak RSS (getrusage of the child) and the ratio to curl's single
 * stream.  The file is sparse (the server reads zeros from holes, so it serves at full speed)
 * and everything is written below --dir, which is removed at the end. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result {
	double seconds; /* best wall time */
	double cpu;     /* user + system seconds of that run */
	long max_rss_kb; /* largest peak RSS over the rounds */
	bool ok;
};

/* Runs argv with extra environment entries; wall time and the child's peak RSS. */
static int run(char *const argv[], char *const env[], double *secs, double *cpu, long *rss_kb)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		for (char *const *e = env; e && *e; e++)
			putenv(*e);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0)
		return -1;
	*secs = now() - t0;
	*cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
	*rss_kb = ru.ru_maxrss;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void record(struct result *r, double secs, double cpu, long rss)
{
	if (!r->ok || secs < r->seconds) {
		r->seconds = secs;
		r->cpu = cpu;
	}
	if (rss > r->max_rss_kb)
		r->max_rss_kb = rss;
	r->ok = true;
}

static size_t on_header(char *d, size_t s, size_t n, void *u)
{
	char **loc = u;
	size_t len = s * n;
	if (len > 9 && strncasecmp(d, "Location:", 9) == 0) {
		const char *v = d + 9;
		while (*v == ' ')
			v++;
		size_t vl = len - (size_t)(v - d);
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		free(*loc);
		*loc = strndup(v, vl);
	}
	return len;
}

/* The signed CDN URL the hub redirects the file to. */
static char *cdn_url(const char *resolve)
{
	char *loc = NULL;
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, resolve);
	curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &loc);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_perform(e);
	curl_easy_cleanup(e);
	return loc;
}

static void rm_rf(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", path, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY);
	int rc = fd >= 0 ? fsync(fd) : -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	const char *hfget = NULL, *mock = NULL, *dir = NULL;
	unsigned long long size = 2ull << 30;
	int rounds = 2;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--hfget") == 0)
			hfget = argv[i + 1];
		else if (strcmp(argv[i], "--mock") == 0)
			mock = argv[i + 1];
		else if (strcmp(argv[i], "--dir") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--size") == 0)
			size = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
	}
	if (!hfget || !mock || !dir || size == 0 || rounds < 1) {
		fprintf(stderr, "usage: hfget-bench --hfget BIN --mock BIN --dir DIR [--size BYTES] [--rounds N]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	char path[4096], cfg[4096], out[4096], ep[128], url[512];
	rm_rf(dir);
	snprintf(path, sizeof path, "mkdir -p '%s/repo'", dir);
	if (system(path) != 0)
		return 1;
	snprintf(path, sizeof path, "%s/repo/big.bin", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror(path);
		return 1;
	}
	close(fd);
	snprintf(cfg, sizeof cfg, "%s/hub.conf", dir);
	FILE *f = fopen(cfg, "w");
	fprintf(f, "repo bench/big\ncommit bench/big %s %s/repo\nref bench/big main %s\n",
		"1111111111111111111111111111111111111111", dir, "1111111111111111111111111111111111111111");
	fclose(f);

	/* the mock hashes the file once at start-up, before it prints its ports */
	int in[2], po[2];
	if (pipe(in) < 0 || pipe(po) < 0)
		return 1;
	pid_t mpid = fork();
	if (mpid == 0) {
		dup2(in[0], 0);
		dup2(po[1], 1);
		close(in[1]);
		close(po[0]);
		execl(mock, mock, "--config", cfg, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(po[1]);
	fcntl(in[1], F_SETFD, FD_CLOEXEC);
	char line[128] = "";
	FILE *pf = fdopen(po[0], "r");
	unsigned hub = 0, cdn = 0;
	if (!pf || !fgets(line, sizeof line, pf) || sscanf(line, "hub=%u cdn=%u", &hub, &cdn) != 2) {
		fprintf(stderr, "hfget-bench: the mock hub did not start\n");
		return 1;
	}
	fclose(pf);
	snprintf(ep, sizeof ep, "HF_ENDPOINT=http://127.0.0.1:%u", hub);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/bench/big/resolve/main/big.bin", hub);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char *cdnurl = cdn_url(url);
	if (!cdnurl) {
		fprintf(stderr, "hfget-bench: no redirect from %s\n", url);
		return 1;
	}

	struct result curl_r = { 0 }, curl_sync = { 0 }, hf1 = { 0 }, hf8 = { 0 };
	char *env[] = { ep, "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1", "HF_TOKEN=", "HF_HUB_OFFLINE=", NULL };
	snprintf(out, sizeof out, "%s/curl.out", dir);
	char hfdir[4096];
	snprintf(hfdir, sizeof hfdir, "%s/hf", dir);
	int failures = 0;
	for (int r = 0; r < rounds; r++) {
		double s, s2, cpu;
		long rss;
		char *curl_argv[] = { "curl", "-s", "--noproxy", "*", "-o", out, cdnurl, NULL };
		if (run(curl_argv, NULL, &s, &cpu, &rss) == 0) {
			record(&curl_r, s, cpu, rss);
			double t = now();
			fsync_path(out);
			s2 = s + (now() - t);
			record(&curl_sync, s2, cpu, rss);
		} else {
			failures++;
		}
		unlink(out);
		char *hf1_argv[] = { (char *)hfget, "bench/big", "--local-dir", hfdir, "-q", "--jobs", "1", NULL };
		if (run(hf1_argv, env, &s, &cpu, &rss) == 0)
			record(&hf1, s, cpu, rss);
		else
			failures++;
		rm_rf(hfdir);
		char *hf8_argv[] = { (char *)hfget, "bench/big", "--local-dir", hfdir, "-q", NULL };
		if (run(hf8_argv, env, &s, &cpu, &rss) == 0)
			record(&hf8, s, cpu, rss);
		else
			failures++;
		rm_rf(hfdir);
	}
	close(in[1]); /* stops the mock */
	waitpid(mpid, NULL, 0);
	free(cdnurl);
	rm_rf(dir);
	if (failures || !curl_r.ok || !hf1.ok || !hf8.ok) {
		fprintf(stderr, "hfget-bench: %d of the runs failed\n", failures);
		return 1;
	}

	double gb = (double)size / 1e9;
	printf("  file: %.2f GB over loopback from the mock hub's CDN listener; best of %d rounds each\n", gb, rounds);
	printf("  %-34s %7.2f s %7.0f MB/s  cpu %5.2f s  peak RSS %5.1f MB  (baseline)\n", "curl -o (single stream)",
	       curl_r.seconds, gb * 1e3 / curl_r.seconds, curl_r.cpu, (double)curl_r.max_rss_kb / 1024);
	printf("  %-34s %7.2f s %7.0f MB/s  (curl's file made durable, as hfget does)\n", "curl -o, then fsync",
	       curl_sync.seconds, gb * 1e3 / curl_sync.seconds);
	const struct {
		const char *name;
		struct result *r;
	} hf[] = { { "hfget --jobs 1 (single stream)", &hf1 }, { "hfget (8 x 32 MiB parallel ranges)", &hf8 } };
	bool met = true;
	for (int i = 0; i < 2; i++) {
		double ratio = curl_r.seconds / hf[i].r->seconds;
		double rss = (double)hf[i].r->max_rss_kb / 1024;
		printf("  %-34s %7.2f s %7.0f MB/s  cpu %5.2f s  peak RSS %5.1f MB  %.2fx curl, %.2fx curl+fsync\n",
		       hf[i].name, hf[i].r->seconds, gb * 1e3 / hf[i].r->seconds, hf[i].r->cpu, rss, ratio,
		       curl_sync.seconds / hf[i].r->seconds);
		met &= rss < 32;
	}
	double best = curl_r.seconds / (hf1.seconds < hf8.seconds ? hf1.seconds : hf8.seconds);
	met &= best >= 0.9;
	double load[1] = { 0 };
	getloadavg(load, 1);
	printf("  hfget hashes (SHA-256) and fsyncs every byte; curl does neither.  Load average %.1f on %ld CPUs:\n"
	       "  the ratio falls when the CPUs are busy (hfget needs more CPU time than curl).\n",
	       load[0], sysconf(_SC_NPROCESSORS_ONLN));
	printf("  goal (>= 0.90x curl single stream, peak RSS < 32 MB): %s (best %.2fx)\n", met ? "met" : "NOT met", best);
	return 0;
}

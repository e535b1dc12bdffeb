/* Checked parsing, clock, byte formatting, CPU counts (see bn_util.h). */
#include "bn_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int bn_parse_u64(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -1;
	uint64_t mult = 1;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': mult = 1ull << 10; break;
		case 'M': mult = 1ull << 20; break;
		case 'G': mult = 1ull << 30; break;
		case 'T': mult = 1ull << 40; break;
		default: return -1;
		}
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -1;
	}
	uint64_t r;
	if (!bn_mul_u64(v, mult, &r))
		return -1;
	*out = r;
	return 0;
}

int bn_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (errno == ERANGE || *end || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int bn_parse_double(const char *s, double *out)
{
	if (!s || !*s)
		return -1;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno == ERANGE || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

double bn_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *bn_fmt_bytes(uint64_t n, char *buf, size_t bufsize)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1000.0 && u + 1 < BN_ARRAY_LEN(units)) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, bufsize, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, bufsize, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
	return buf;
}

unsigned bn_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

unsigned bn_physical_core_count(void)
{
	/* Count distinct (physical id, core id) pairs in /proc/cpuinfo: SMT siblings share the
	 * memory bandwidth and the vector units that our kernels saturate. */
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return bn_cpu_count();
	char line[512];
	long phys = 0, pairs[1024][2];
	unsigned npairs = 0;
	while (fgets(line, sizeof line, f)) {
		long v;
		if (sscanf(line, "physical id : %ld", &v) == 1) {
			phys = v;
		} else if (sscanf(line, "core id : %ld", &v) == 1) {
			unsigned i;
			for (i = 0; i < npairs; i++)
				if (pairs[i][0] == phys && pairs[i][1] == v)
					break;
			if (i == npairs && npairs < BN_ARRAY_LEN(pairs)) {
				pairs[npairs][0] = phys;
				pairs[npairs][1] = v;
				npairs++;
			}
		}
	}
	fclose(f);
	unsigned online = bn_cpu_count();
	return npairs > 0 && npairs <= online ? npairs : online;
}

void bn_buf_put(struct bn_buf *b, const void *s, size_t n)
{
	if (b->oom)
		return;
	if (n >= SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void bn_buf_puts(struct bn_buf *b, const char *s)
{
	bn_buf_put(b, s, strlen(s));
}

void bn_buf_printf(struct bn_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true; /* an encoding error: treat the buffer as unusable, as for memory */
	} else if ((size_t)n < sizeof small) {
		bn_buf_put(b, small, (size_t)n);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big && vsnprintf(big, (size_t)n + 1, fmt, again) == n)
			bn_buf_put(b, big, (size_t)n);
		else
			b->oom = true;
		free(big);
	}
	va_end(again);
}

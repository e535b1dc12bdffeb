/* lutgen --tune: measures candidate tile parameters for a model's shapes on this CPU and writes
 * the fastest to a preset.  Coordinate descent from the current parameters: first every valid
 * BK, then BM (at most 8 divisors of M from 64 to 1024 that leave at least 4 tiles when M has
 * room for them), then for TL1 the other micro-tile.  A
 * round holds one candidate per shape in one generated header, compiled with the bench harness
 * (tools/lutgen/bench/lut_bench.c) and timed in --tune mode: hot single-threaded GEMV, the
 * minimum of 9 samples (the least disturbed on a shared machine). */
#include "lutgen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "bn_file.h"
#include "bn_log.h"
#include "bn_util.h"

#define MAX_CAND 16

struct cand {
	struct lut_params p[MAX_CAND];
	int n;
};

/* Appends p to c if it is valid and not already there. */
static void cand_add(enum lut_quant q, struct cand *c, struct lut_params p)
{
	if (c->n == MAX_CAND || lut_params_check(q, &p, NULL))
		return;
	for (int i = 0; i < c->n; i++)
		if (c->p[i].BM == p.BM && c->p[i].BK == p.BK && c->p[i].bm == p.bm)
			return;
	c->p[c->n++] = p;
}

static void cands_BK(enum lut_quant q, const struct lut_params *best, struct cand *c)
{
	c->n = 0;
	cand_add(q, c, *best);
	for (uint32_t bk = 8; bk <= LUT_TL1_MAX_BK; bk += 8) {
		struct lut_params p = *best;
		p.BK = bk;
		if (q == LUT_TL1 && bk < 32 && best->k >= 256)
			continue; /* tiny blocks only matter when K itself is small */
		cand_add(q, c, p);
	}
}

static void cands_BM(enum lut_quant q, const struct lut_params *best, struct cand *c)
{
	c->n = 0;
	cand_add(q, c, *best);
	uint32_t list[64];
	int n = 0;
	/* like the automatic choice, keep at least 4 tiles (work for 4 threads) when M allows:
	 * a single-threaded timing alone would favour one huge tile */
	const uint32_t max_bm = best->m / 32 >= 4 ? best->m / 4 : best->m;
	for (uint32_t bm = 64; bm <= 1024 && bm <= max_bm && n < 64; bm += 32)
		if (best->m % bm == 0)
			list[n++] = bm;
	/* at most 8, spread over the range */
	for (int i = 0; i < 8 && i < n; i++) {
		struct lut_params p = *best;
		p.BM = list[n <= 8 ? i : i * (n - 1) / 7];
		cand_add(q, c, p);
	}
}

static void cands_bm(enum lut_quant q, const struct lut_params *best, struct cand *c)
{
	c->n = 0;
	cand_add(q, c, *best);
	if (q != LUT_TL1)
		return;
	struct lut_params p = *best;
	p.bm = best->bm == 32 ? 64 : 32;
	if (p.BM % p.bm) {
		const uint32_t whole = p.BM / p.bm * p.bm;
		p.BM = whole ? whole : p.bm;
	}
	while (p.BM > p.bm && p.m % p.BM)
		p.BM -= p.bm;
	cand_add(q, c, p);
}

/* "'path'" for sh, with embedded quotes escaped. */
static void shq(char *out, size_t size, const char *s)
{
	size_t o = 0;
	if (o + 1 < size)
		out[o++] = '\'';
	for (; *s && o + 5 < size; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	if (o + 1 < size)
		out[o++] = '\'';
	out[o] = 0;
}

/* Generates, compiles and runs one round; stores each shape's time (ns) in t[]. */
static int round_run(enum lut_quant q, const struct lut_params *p, size_t n,
		     const struct lutgen_tune_opts *o, int round, double *t, struct bn_err *err)
{
	char dir[4096], path[4200], *hdr = NULL;
	size_t len;
	int rc;
	snprintf(dir, sizeof dir, "%s/round%d", o->workdir, round);
	if ((rc = bn_mkdir_p(dir, err)) || (rc = lutgen_render_header(q, p, n, &hdr, &len, err)))
		return rc;
	snprintf(path, sizeof path, "%s/bitnet-lut-kernels.h", dir);
	rc = bn_write_if_changed(path, hdr, len, NULL, err);
	free(hdr);
	if (rc)
		return rc;
	char qdir[8300], qsrc[8300], cmd[65536];
	shq(qdir, sizeof qdir, dir);
	shq(qsrc, sizeof qsrc, o->srcdir);
	const char *srcs[] = { "tools/lutgen/bench/lut_bench.c", "tools/common/lut_params.c",
			       "tools/common/lut_pack.c", "tools/common/bn_err.c",
			       "tools/common/bn_util.c", "tools/common/bn_membw.c",
			       "kernels/lut/lut_runtime.c" };
	int w = snprintf(cmd, sizeof cmd, "cd %s && %s -std=c11 -O2 %s -D_GNU_SOURCE -I%s -Itools/common -Ikernels",
			 qsrc, o->cc, q == LUT_TL2 ? "-mavx2" : "", qdir);
	for (size_t i = 0; i < BN_ARRAY_LEN(srcs); i++)
		w += snprintf(cmd + w, sizeof cmd - (size_t)w, " %s", srcs[i]);
	snprintf(cmd + w, sizeof cmd - (size_t)w, " -lm -pthread -o %s/lut_bench 2>&1", qdir);
	bn_verbose("tune: %s", cmd);
	FILE *f = popen(cmd, "r");
	char line[4096], first[512] = "";
	if (!f)
		return bn_seterrno(err, errno, "tune: cannot run the compiler");
	while (fgets(line, sizeof line, f))
		if (!first[0])
			snprintf(first, sizeof first, "%.500s", line);
	if (pclose(f) != 0)
		return bn_seterr(err, BN_EIO, "tune: compiling %s/bitnet-lut-kernels.h with '%s' failed: %s",
				 dir, o->cc, first);
	snprintf(cmd, sizeof cmd, "%s/lut_bench --tune", qdir);
	f = popen(cmd, "r");
	if (!f)
		return bn_seterrno(err, errno, "tune: cannot run %s/lut_bench", dir);
	size_t got = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned m, k, BM, BK, bm;
		double ns;
		if (sscanf(line, "tune %u %u %u %u %u %lf", &m, &k, &BM, &BK, &bm, &ns) != 6)
			continue;
		for (size_t i = 0; i < n; i++)
			if (p[i].m == m && p[i].k == k) {
				t[i] = ns;
				got++;
			}
	}
	if (pclose(f) != 0 || got != n)
		return bn_seterr(err, BN_EIO, "tune: %s/lut_bench --tune failed or gave %zu of %zu timings",
				 dir, got, n);
	return 0;
}

/* Writes the tuned keys of quant q into the preset, keeping its other lines. */
static int write_preset(enum lut_quant q, const struct lutgen_shape *s, size_t n,
			const double *best_ns, const char *path, struct bn_err *err)
{
	char *old = NULL;
	size_t old_len = 0;
	if (bn_file_exists(path) && bn_read_file(path, 1 << 20, &old, &old_len, err))
		return -BN_EIO;
	size_t cap = old_len + 256 * (n + 4), len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		free(old);
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", path);
	}
	char prefix[8];
	snprintf(prefix, sizeof prefix, "%s.", lut_quant_name(q));
	if (!old)
		len += (size_t)snprintf(buf + len, cap - len,
					"# Tile parameters tuned on this machine by `make tune` (lutgen --tune);\n"
					"# make PRETUNED=1 prefers this file to presets/<model>.ini.  Not committed.\n");
	for (char *line = old, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		/* drop this quant's keys and the comments written with them */
		if (strncmp(line, prefix, strlen(prefix)) == 0 ||
		    strncmp(line, "# tuned ", 8) == 0)
			continue;
		len += (size_t)snprintf(buf + len, cap - len, "%s\n", line);
	}
	struct utsname u;
	const char *machine = uname(&u) == 0 ? u.machine : "?";
	for (size_t i = 0; i < n; i++) {
		const struct lut_params *p = &s[i].p;
		char key[64];
		lut_preset_key(q, p->m, p->k, key, sizeof key);
		len += (size_t)snprintf(buf + len, cap - len,
					"# tuned %s: %.1f us per GEMV (1 thread, %s)\n%s = %" PRIu32 ",%" PRIu32
					",%" PRIu32 "\n",
					key, best_ns[i] / 1000.0, machine, key, p->BM, p->BK, p->bm);
	}
	int rc = bn_write_if_changed(path, buf, len, NULL, err);
	free(buf);
	free(old);
	return rc;
}

int lutgen_tune(enum lut_quant q, struct lutgen_shape *s, size_t n,
		const struct lutgen_tune_opts *o, struct bn_err *err)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (q != LUT_TL2 || !__builtin_cpu_supports("avx2"))
#elif defined(__aarch64__)
	if (q != LUT_TL1)
#else
	if (1)
#endif
		return bn_seterr(err, BN_EUNSUPPORTED,
				 "tune: %s kernels can only be timed on %s; run make tune on such a machine",
				 lut_quant_name(q), q == LUT_TL2 ? "an x86-64 CPU with AVX2" : "an AArch64 CPU");
	struct lut_params *cur = malloc(n * sizeof *cur), *best = malloc(n * sizeof *best);
	double *best_ns = malloc(n * sizeof *best_ns), *t = malloc(n * sizeof *t), *start_ns = malloc(n * sizeof *start_ns);
	struct cand *c = malloc(n * sizeof *c);
	int rc = 0, round = 0;
	if (!cur || !best || !best_ns || !t || !start_ns || !c) {
		rc = bn_seterr(err, BN_ENOMEM, "tune: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		best[i] = s[i].p;
		best_ns[i] = start_ns[i] = 1e300;
	}
	static const char *const pass_name[3] = { "BK", "BM", "bm" };
	for (int pass = 0; pass < 3; pass++) {
		int rounds = 0;
		for (size_t i = 0; i < n; i++) {
			if (pass == 0)
				cands_BK(q, &best[i], &c[i]);
			else if (pass == 1)
				cands_BM(q, &best[i], &c[i]);
			else
				cands_bm(q, &best[i], &c[i]);
			rounds = c[i].n > rounds ? c[i].n : rounds;
		}
		if (pass == 2 && rounds <= 1)
			break;
		for (int r = 0; r < rounds; r++) {
			if (bn_interrupted) {
				rc = bn_seterr(err, BN_EINTR, "tune: interrupted");
				goto out;
			}
			for (size_t i = 0; i < n; i++)
				cur[i] = c[i].p[r < c[i].n ? r : c[i].n - 1];
			bn_info("tune: %s pass, round %d of %d", pass_name[pass], r + 1, rounds);
			if ((rc = round_run(q, cur, n, o, round++, t, err)))
				goto out;
			for (size_t i = 0; i < n; i++) {
				if (pass == 0 && r == 0)
					start_ns[i] = t[i]; /* candidate 0 is the starting point */
				if (t[i] < best_ns[i]) {
					best_ns[i] = t[i];
					best[i] = cur[i];
				}
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		s[i].p = best[i];
		lut_params_check(q, &s[i].p, NULL);
		printf("%s [%" PRIu32 ",%" PRIu32 "]  BM=%" PRIu32 " BK=%" PRIu32 " bm=%" PRIu32
		       "  %.1f us per GEMV (start: %.1f us)\n",
		       lut_quant_name(q), best[i].m, best[i].k, best[i].BM, best[i].BK, best[i].bm,
		       best_ns[i] / 1000.0, start_ns[i] / 1000.0);
	}
	if ((rc = write_preset(q, s, n, best_ns, o->out, err)))
		goto out;
	printf("%s: written\n", o->out);
out:
	free(cur);
	free(best);
	free(best_ns);
	free(start_ns);
	free(t);
	free(c);
	return rc;
}

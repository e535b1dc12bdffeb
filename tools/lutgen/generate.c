/* Parameter resolution (command line > preset > automatic) and the write-if-changed outputs. */
#include "lutgen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_log.h"
#include "bn_util.h"

int lutgen_list_parse(const char *opt, const char *s, struct lutgen_list *l, struct bn_err *err)
{
	char *copy = strdup(s);
	if (!copy)
		return bn_seterr(err, BN_ENOMEM, "%s: out of memory", opt);
	l->n = 0;
	int rc = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned v;
		if (l->n == LUT_MAX_SHAPES || bn_parse_uint(t, 1, LUT_MAX_DIM, &v)) {
			rc = bn_seterr(err, BN_EINVAL, "%s %s: expected a comma-separated list of "
				       "positive numbers (one per shape, or one for all)", opt, s);
			break;
		}
		l->v[l->n++] = v;
	}
	if (!rc && l->n == 0)
		rc = bn_seterr(err, BN_EINVAL, "%s: empty list", opt);
	free(copy);
	return rc;
}

static int pick(const struct lutgen_list *l, const char *opt, size_t i, size_t n, uint32_t *v,
		struct bn_err *err)
{
	if (!l || l->n == 0)
		return 0;
	if (l->n != 1 && l->n != n)
		return bn_seterr(err, BN_EINVAL, "%s has %zu values for %zu shapes; give one per "
				 "shape or one for all", opt, l->n, n);
	*v = l->v[l->n == 1 ? 0 : i];
	return 1;
}

int lutgen_resolve(enum lut_quant q, struct lutgen_shape *s, size_t n,
		   const struct lutgen_list *BM, const struct lutgen_list *BK,
		   const struct lutgen_list *bm, const char *preset_text, const char *preset_path,
		   struct bn_err *err)
{
	for (size_t i = 0; i < n; i++) {
		struct lut_params *p = &s[i].p;
		struct lut_params given = { .m = p->m, .k = p->k };
		s[i].BM_from = s[i].BK_from = s[i].bm_from = LUT_AUTO;
		if (preset_text) {
			int r = lut_preset_lookup(q, preset_text, preset_path, &given, err);
			if (r < 0)
				return r;
			if (r > 0)
				s[i].BM_from = s[i].BK_from = s[i].bm_from = LUT_PRESET;
		}
		int r;
		if ((r = pick(BM, "--BM", i, n, &given.BM, err)) < 0)
			return r;
		if (r)
			s[i].BM_from = LUT_GIVEN;
		if ((r = pick(BK, "--BK", i, n, &given.BK, err)) < 0)
			return r;
		if (r)
			s[i].BK_from = LUT_GIVEN;
		if ((r = pick(bm, "--bm", i, n, &given.bm, err)) < 0)
			return r;
		if (r)
			s[i].bm_from = LUT_GIVEN;
		*p = given;
		r = lut_params_auto(q, p, err);
		if (r) {
			if (s[i].BM_from == LUT_PRESET || s[i].BK_from == LUT_PRESET ||
			    s[i].bm_from == LUT_PRESET) {
				char key[64];
				lut_preset_key(q, p->m, p->k, key, sizeof key);
				bn_err_prefix(err, "%s: %s", preset_path, key);
			}
			return r;
		}
	}
	struct lut_params *flat = malloc(n * sizeof *flat);
	if (!flat)
		return bn_seterr(err, BN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		flat[i] = s[i].p;
	int rc = lut_params_check_list(q, flat, n, err);
	free(flat);
	return rc;
}

static const char *origin(enum lut_origin o)
{
	return o == LUT_GIVEN ? "given" : o == LUT_PRESET ? "preset" : "auto";
}

void lutgen_report(FILE *f, enum lut_quant q, const struct lutgen_shape *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct lut_params *p = &s[i].p;
		char shape[48];
		snprintf(shape, sizeof shape, "[%" PRIu32 ",%" PRIu32 "]", p->m, p->k);
		fprintf(f, "%s %-14s BM=%-4" PRIu32 " BK=%-3" PRIu32 " bm=%-2" PRIu32, lut_quant_name(q),
			shape, p->BM, p->BK, p->bm);
		if (q == LUT_TL2)
			fprintf(f, " three_k=%-5" PRIu32 " two_k=%-3" PRIu32, p->three_k, p->two_k);
		fprintf(f, "  (BM %s, BK %s, bm %s)", origin(s[i].BM_from), origin(s[i].BK_from),
			origin(s[i].bm_from));
		if (s[i].label[0])
			fprintf(f, "  %s", s[i].label);
		fputc('\n', f);
	}
}

int lutgen_write(enum lut_quant q, const struct lutgen_shape *s, size_t n, const char *outdir,
		 bool changed[2], struct bn_err *err)
{
	struct lut_params *p = malloc(n * sizeof *p);
	char *hdr = NULL, *ini = NULL, *hpath = NULL, *ipath = NULL;
	size_t hlen, ilen;
	int rc;
	if (!p) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = s[i].p;
	if ((rc = lutgen_render_header(q, p, n, &hdr, &hlen, err)) ||
	    (rc = lut_ini_format(p, n, &ini, &ilen, err)))
		goto out;
	hpath = bn_path_join(outdir, "bitnet-lut-kernels.h");
	ipath = bn_path_join(outdir, "kernel_config.ini");
	if (!hpath || !ipath) {
		rc = bn_seterr(err, BN_ENOMEM, "out of memory");
		goto out;
	}
	/* the header first: make treats kernel_config.ini as the later of the two */
	if ((rc = bn_mkdir_p(outdir, err)) ||
	    (rc = bn_write_if_changed(hpath, hdr, hlen, &changed[0], err)) ||
	    (rc = bn_write_if_changed(ipath, ini, ilen, &changed[1], err)))
		goto out;
out:
	free(p);
	free(hdr);
	free(ini);
	free(hpath);
	free(ipath);
	return rc;
}

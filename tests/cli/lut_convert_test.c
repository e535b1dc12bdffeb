/* gguf-convert --outtype tl1|tl2 (tools/gguf-convert/tl.c): the convert-quantize.md §13.2 TL
 * outputs byte for byte (with the §13.1 tile configurations and --no-kernel-kvs), the recorded
 * bitmake.lut.kernel_config, refusals, thread independence, and converted files run through the
 * generated kernels the way an engine loads them - refusing kernels made for other parameters. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "bn_file.h"
#include "gguf.h"
#include "lut_params.h"
#include "test_util.h"

/* convert-quantize.md §13.1: m, k, bm (BM), bk (BK), bmm (bm) */
static const char TL1_INI[] =
	"[Kernels_0]\nm = 256\nk = 256\nbm = 128\nbk = 64\nbmm = 32\n\n"
	"[Kernels_1]\nm = 128\nk = 256\nbm = 128\nbk = 128\nbmm = 64\n\n"
	"[Kernels_2]\nm = 512\nk = 256\nbm = 256\nbk = 64\nbmm = 32\n\n"
	"[Kernels_3]\nm = 256\nk = 512\nbm = 128\nbk = 128\nbmm = 32\n\n";
static const char TL2_INI[] =
	"[Kernels_0]\nm = 256\nk = 256\nbm = 128\nbk = 96\nbmm = 32\n\n"
	"[Kernels_1]\nm = 128\nk = 256\nbm = 128\nbk = 96\nbmm = 32\n\n"
	"[Kernels_2]\nm = 512\nk = 256\nbm = 256\nbk = 96\nbmm = 32\n\n"
	"[Kernels_3]\nm = 256\nk = 512\nbm = 128\nbk = 192\nbmm = 32\n\n";

/* A §13.1 checkpoint from mkmodel in a fresh directory, with the two ini files next to it. */
static char *checkpoint(const char *test, const char *preset)
{
	char *dir = tu_mkdtemp(test);
	char *out = bn_path_join(dir, preset); /* general.name is the directory name */
	char *bin = tu_bin("mkmodel");
	const char *argv[] = { bin, "-q", "--preset", preset, "--outdir", out, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	cr_assert(eq(int, r.status, 0), "mkmodel: %s", r.err);
	tu_run_free(&r);
	char path[4200];
	snprintf(path, sizeof path, "%s/tl1.ini", dir);
	cr_assert(eq(int, tu_write_file(path, TL1_INI, strlen(TL1_INI)), 0));
	snprintf(path, sizeof path, "%s/tl2.ini", dir);
	cr_assert(eq(int, tu_write_file(path, TL2_INI, strlen(TL2_INI)), 0));
	free(bin);
	free(out);
	return dir;
}

/* gguf-convert DIR/PRESET --outtype Q --outfile DIR/OUT [extra...] */
static struct tu_run convert(const char *dir, const char *preset, const char *q, const char *out,
			     const char *const *extra)
{
	char *bin = tu_bin("gguf-convert");
	char model[4200], outfile[4200];
	snprintf(model, sizeof model, "%s/%s", dir, preset);
	snprintf(outfile, sizeof outfile, "%s/%s", dir, out);
	const char *argv[24] = { bin, "-q", model, "--outtype", q, "--outfile", outfile };
	size_t n = 7;
	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	struct tu_run r = tu_run(argv, NULL, NULL);
	free(bin);
	return r;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
		n++;
	return n;
}

static char *in(const char *dir, const char *name)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	return p;
}

static void expect_file(const char *path, long size, const char *sha)
{
	struct stat st;
	char hex[65];
	cr_assert(eq(int, stat(path, &st), 0), "%s", path);
	cr_expect(eq(i64, (int64_t)st.st_size, size), "%s", path);
	cr_assert(eq(int, tu_sha256_file(path, hex), 0));
	cr_expect(eq(str, hex, (char *)sha), "%s", path);
}

static void section13(const char *preset, const char *sha_tl1, const char *sha_tl1e,
		      const char *sha_tl2e)
{
	char *dir = checkpoint(preset, preset);
	char *ini1 = in(dir, "tl1.ini"), *ini2 = in(dir, "tl2.ini");
	const char *a1[] = { "--kernel-config", ini1, "--no-kernel-kvs", NULL };
	const char *a1e[] = { "--kernel-config", ini1, "--no-kernel-kvs", "--quant-embd", NULL };
	const char *a2e[] = { "--kernel-config", ini2, "--no-kernel-kvs", "--quant-embd", NULL };
	struct tu_run r = convert(dir, preset, "tl1", "tl1.gguf", a1);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	r = convert(dir, preset, "tl1", "tl1e.gguf", a1e);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	r = convert(dir, preset, "tl2", "tl2e.gguf", a2e);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	char *o1 = in(dir, "tl1.gguf"), *o1e = in(dir, "tl1e.gguf"), *o2e = in(dir, "tl2e.gguf");
	expect_file(o1, 622752, sha_tl1);
	expect_file(o1e, 469152, sha_tl1e);
	expect_file(o2e, 463712, sha_tl2e);
	free(o1);
	free(o1e);
	free(o2e);
	free(ini1);
	free(ini2);
	free(dir);
}

Test(lut_convert, tv_f32_tl_outputs_are_byte_identical_to_the_reference)
{
	section13("tv-f32", "88f67be910433d1fd81f7f7abe7594e80370c2a40d2ff333577ba317b410fb63",
		  "5b6cfefbbf7d41ad6d2ebda0131500b40be78b80fd9ca4214c15f35f21e013cd",
		  "8eb1294a12965c14f80faf68b0691be5536f5c8d511b55b1d76fc5ea8aa27bc8");
}

Test(lut_convert, tv_bf16_tl_outputs_are_byte_identical_to_the_reference)
{
	section13("tv-bf16", "675702a54cb9568878e3d34f8126e0fa29391dfbe417a193f2ade2d9dc7fec5b",
		  "286533cc528f9b7b7dd3ab40cab5e48375ab4804264e37602a42a84b331734d3",
		  "b5e42defc7bff68838d913cf4cf1aef084cc7eb4bcc48f3434dc2858820f05e8");
}

/* The bytes of every tensor of two files (same tensors, in the same order). */
static void expect_same_tensors(const char *a, const char *b)
{
	struct bn_err err = { 0 };
	struct gguf_reader *ra = gguf_open(a, &err), *rb = gguf_open(b, &err);
	cr_assert(ne(ptr, ra, NULL), "%s", err.msg);
	cr_assert(ne(ptr, rb, NULL), "%s", err.msg);
	cr_assert(eq(sz, gguf_n_tensors(ra), gguf_n_tensors(rb)));
	for (size_t i = 0; i < gguf_n_tensors(ra); i++) {
		const struct gguf_tensor *x = gguf_tensor(ra, i), *y = gguf_tensor(rb, i);
		cr_assert(eq(str, (char *)x->name, (char *)y->name));
		cr_assert(eq(u64, x->nbytes, y->nbytes), "%s", x->name);
		/* the 28 bytes after a TL scale are padding: compare everything the loader reads */
		cr_expect(eq(int, memcmp(x->data, y->data, (size_t)x->nbytes), 0), "%s", x->name);
	}
	gguf_close(ra);
	gguf_close(rb);
}

Test(lut_convert, records_the_tile_parameters_and_changes_nothing_else)
{
	char *dir = checkpoint("lut_convert_kv", "tv-f32");
	char *ini = in(dir, "tl2.ini");
	const char *plain[] = { "--kernel-config", ini, "--no-kernel-kvs", NULL };
	const char *kv[] = { "--kernel-config", ini, "--threads", "1", NULL };
	const char *kv2[] = { "--kernel-config", ini, "--threads", "3", NULL };
	struct tu_run r = convert(dir, "tv-f32", "tl2", "plain.gguf", plain);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	r = convert(dir, "tv-f32", "tl2", "kv.gguf", kv);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	r = convert(dir, "tv-f32", "tl2", "kv3.gguf", kv2);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	char *p = in(dir, "plain.gguf"), *k = in(dir, "kv.gguf"), *k3 = in(dir, "kv3.gguf");
	expect_same_tensors(p, k);
	char h1[65], h3[65];
	tu_sha256_file(k, h1);
	tu_sha256_file(k3, h3);
	cr_expect(eq(str, h1, h3), "the output depends on the thread count");
	struct bn_err err = { 0 };
	struct gguf_reader *g = gguf_open(k, &err);
	cr_assert(ne(ptr, g, NULL), "%s", err.msg);
	int64_t i = gguf_find_key(g, LUT_GGUF_KERNEL_CONFIG);
	cr_assert(ge(i64, i, 0));
	cr_expect(eq(i64, i, (int64_t)gguf_n_kv(g) - 1), "the last KV");
	struct gguf_str s;
	cr_assert(eq(int, gguf_get_str(g, i, &s, &err), 0));
	/* the model's shapes in tensor order (ffn_down first in lexicographic HF order) */
	const char *want = "[Kernels_0]\nm = 256\nk = 512\nbm = 128\nbk = 192\nbmm = 32\n\n"
			   "[Kernels_1]\nm = 512\nk = 256\nbm = 256\nbk = 96\nbmm = 32\n\n"
			   "[Kernels_2]\nm = 128\nk = 256\nbm = 128\nbk = 96\nbmm = 32\n\n"
			   "[Kernels_3]\nm = 256\nk = 256\nbm = 128\nbk = 96\nbmm = 32\n\n";
	cr_expect(eq(int, (int)s.len, (int)strlen(want)));
	cr_expect(eq(int, strncmp(s.data, want, s.len), 0), "%.*s", (int)s.len, s.data);
	uint32_t ft;
	cr_assert(eq(int, gguf_get_u32(g, gguf_find_key(g, "general.file_type"), &ft, &err), 0));
	cr_expect(eq(u32, ft, 39));
	gguf_close(g);
	free(p);
	free(k);
	free(k3);
	free(ini);
	free(dir);
}

Test(lut_convert, refuses_a_kernel_config_without_the_models_shapes)
{
	char *dir = checkpoint("lut_convert_missing", "tv-f32");
	char *ini = in(dir, "partial.ini");
	const char *text = "[Kernels_0]\nm = 256\nk = 256\nbm = 128\nbk = 96\nbmm = 32\n\n";
	cr_assert(eq(int, tu_write_file(ini, text, strlen(text)), 0));
	const char *a[] = { "--kernel-config", ini, NULL };
	struct tu_run r = convert(dir, "tv-f32", "tl2", "x.gguf", a);
	cr_expect(eq(int, r.status, 1));
	char want[4400];
	snprintf(want, sizeof want, "gguf-convert: blk.0.ffn_down.weight: [256,512]: no section for this shape in %s", ini);
	cr_expect(ne(ptr, strstr(r.err, want), NULL), "%s", r.err);
	char *o = in(dir, "x.gguf");
	cr_expect(not(bn_file_exists(o)), "no output on failure");
	tu_run_free(&r);
	/* an invalid parameter set is refused with lutgen's message */
	const char *bad = "[Kernels_0]\nm = 256\nk = 512\nbm = 128\nbk = 264\nbmm = 32\n\n";
	cr_assert(eq(int, tu_write_file(ini, bad, strlen(bad)), 0));
	r = convert(dir, "tv-f32", "tl2", "x.gguf", a);
	cr_expect(eq(int, r.status, 1));
	cr_expect(ne(ptr, strstr(r.err, "tl2 [256,512]: BK=264: more than 240"), NULL), "%s", r.err);
	tu_run_free(&r);
	free(o);
	free(ini);
	free(dir);
}

/* ---- converted files through the generated kernels (the harnesses of mk/lutgen.mk) ---------- */

static char *harness(const char *name)
{
	char *bin = tu_bin("x");
	char *p = malloc(strlen(bin) + strlen(name) + 32);
	*strrchr(bin, '/') = 0;
	*strrchr(bin, '/') = 0; /* <build> */
	sprintf(p, "%s/tests/lut/%s/harness", bin, name);
	free(bin);
	return p;
}

static struct tu_run run_model(const char *name, int tl1, const char *gguf)
{
	char *h = harness(name);
	const char *a[] = { h, "--gguf", gguf, NULL };
	const char *q[] = { "qemu-aarch64", h, "--gguf", gguf, NULL };
	struct tu_run r = tu_run(tl1 ? q : a, NULL, NULL);
	free(h);
	return r;
}

static void engine_path(int tl1)
{
	const char *q = tl1 ? "tl1" : "tl2";
	char *dir = checkpoint(tl1 ? "lut_convert_engine1" : "lut_convert_engine2", "tv-f32");
	char *ini = in(dir, tl1 ? "tl1.ini" : "tl2.ini");
	const char *a[] = { "--kernel-config", ini, NULL };
	const char *autop[] = { NULL };
	struct tu_run r = convert(dir, "tv-f32", q, "m.gguf", a);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	r = convert(dir, "tv-f32", q, "auto.gguf", autop);
	cr_assert(eq(int, r.status, 0), "%s", r.err);
	tu_run_free(&r);
	char *m = in(dir, "m.gguf"), *au = in(dir, "auto.gguf");
	/* the kernels generated for the §13.1 configuration (case tl?-tv) run the model ... */
	r = run_model(tl1 ? "tl1-tv" : "tl2-tv", tl1, m);
	if (r.status == 77)
		cr_skip("%s", r.out);
	cr_expect(eq(int, r.status, 0), "%s%s", r.out, r.err);
	cr_expect(ne(ptr, strstr(r.out, "14 "), NULL), "%s", r.out);
	cr_expect(eq(ptr, strstr(r.out, "MISMATCH"), NULL), "%s", r.out);
	tu_run_free(&r);
	/* ... and refuse one packed with other parameters (lutgen's automatic ones) */
	r = run_model(tl1 ? "tl1-tv" : "tl2-tv", tl1, au);
	cr_expect(eq(int, r.status, 3), "%s%s", r.out, r.err);
	cr_expect(ne(ptr, strstr(r.out, "REFUSED tl"), NULL), "%s", r.out);
	cr_expect(ne(ptr, strstr(r.out, "convert and generate from the same kernel_config.ini"), NULL), "%s", r.out);
	tu_run_free(&r);
	/* lutgen regenerates the model's own kernels from the file */
	char *gen = in(dir, "gen"), *lutgen = tu_bin("lutgen");
	const char *la[] = { lutgen, "--quant", q, "--gguf", m, "--outdir", gen, "-q", NULL };
	r = tu_run(la, NULL, NULL);
	cr_expect(eq(int, r.status, 0), "%s", r.err);
	cr_expect(eq(int, count(r.out, "(BM given, BK given, bm given)"), 4), "%s", r.out);
	tu_run_free(&r);
	char *gini = in(gen, "kernel_config.ini");
	char *got = tu_read_file(gini, NULL);
	cr_assert(ne(ptr, got, NULL));
	for (const char *sec = strstr(tl1 ? TL1_INI : TL2_INI, "\nm = "); sec; sec = strstr(sec + 1, "\nm = ")) {
		char one[128];
		snprintf(one, sizeof one, "%.*s", (int)(strstr(sec, "\n\n") - sec), sec);
		cr_expect(ne(ptr, strstr(got, one), NULL), "%s not in %s", one, got);
	}
	free(got);
	free(gini);
	free(gen);
	free(lutgen);
	/* kernels for other shapes refuse the model */
	r = run_model(tl1 ? "tl1-odd" : "tl2-odd", tl1, m);
	cr_expect(eq(int, r.status, 3), "%s%s", r.out, r.err);
	cr_expect(ne(ptr, strstr(r.out, "the kernels were generated without it"), NULL), "%s", r.out);
	tu_run_free(&r);
	free(m);
	free(au);
	free(ini);
	free(dir);
}

Test(lut_convert, a_converted_tl2_model_runs_on_its_kernels_and_others_are_refused)
{
	struct utsname u;
	if (uname(&u) != 0 || strcmp(u.machine, "x86_64") != 0)
		cr_skip("TL2 kernels run on x86_64");
	engine_path(0);
}

Test(lut_convert, a_converted_tl1_model_runs_on_its_kernels_under_qemu)
{
	engine_path(1);
}

/* The generated TL1/TL2 kernels against the scalar reference: every case of mk/lutgen.mk (a
 * lutgen header compiled once into tests/lut/harness.c and ggml_harness.c) is run here, TL2
 * natively, TL1 (aarch64, static) under qemu-aarch64.  Tolerance: none - the kernels must equal
 * lut_ref_gemm bit for bit (same integer sums, same float operations in the same order), for
 * batches 1, 3, 8, 9 and 64 of random data and for the adversarial inputs that made upstream's
 * int16 block sums wrap (lut-kernels.md §8.4).  Also the §8.3 vectors: packed bytes, activation
 * LUTs and outputs against the published SHA-256. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bn_hash.h"
#include "test_util.h"

/* build/tests/lut/<name>/<file> (BITMAKE_BIN is build/bin). */
static char *case_file(const char *name, const char *file)
{
	char *bin = tu_bin("x");
	char *build = dirname(dirname(bin)); /* "<build>/bin/x" -> "<build>" */
	char *p = malloc(strlen(build) + strlen(name) + strlen(file) + 16);
	sprintf(p, "%s/tests/lut/%s/%s", build, name, file);
	free(bin);
	return p;
}

static int count_lines(const char *s, const char *prefix)
{
	int n = 0;
	size_t l = strlen(prefix);
	for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		n += strncmp(p, prefix, l) == 0;
	return n;
}

/* Runs a harness (via qemu-aarch64 for TL1) and expects `want_ok` "ok" lines and no mismatch.
 * a1 == INI stands for "--ini <the case's kernel_config.ini>". */
#define INI ((const char *)1)
static void run_harness(const char *name, const char *file, int tl1, int want_ok,
			const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *path = case_file(name, file), *ini = case_file(name, "kernel_config.ini");
	const char *argv[10];
	int i = 0;
	if (tl1)
		argv[i++] = "qemu-aarch64";
	argv[i++] = path;
	if (a1 == INI) {
		argv[i++] = "--ini";
		argv[i++] = ini;
		a1 = a2;
		a2 = a3;
		a3 = a4;
		a4 = NULL;
	}
	const char *extra[] = { a1, a2, a3, a4 };
	for (int j = 0; j < 4 && extra[j]; j++)
		argv[i++] = extra[j];
	argv[i] = NULL;
	struct tu_run r = tu_run(argv, NULL, NULL);
	if (r.status == 77)
		cr_skip("%s", r.out);
	const char *bad = strstr(r.out, "MISMATCH");
	cr_expect(eq(ptr, (void *)bad, NULL), "%s: %.400s", name, bad ? bad : "");
	cr_expect(eq(int, r.status, 0), "%s/%s exited %d: %s", name, file, r.status, r.err);
	cr_expect(eq(int, count_lines(r.out, "ok "), want_ok), "%s: ok lines:\n%s", name, r.out);
	tu_run_free(&r);
	free(path);
	free(ini);
}

/* shapes x (5 random batches + 3 adversarial patterns x 2 batches) */
#define CHECKS(shapes) ((shapes) * (5 + 3 * 2))

TestSuite(lut_kernels);

Test(lut_kernels, tl2_large_model_shapes_with_setup_env_parameters_match_the_reference)
{
	run_harness("tl2-large", "harness", 0, CHECKS(3), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl2_bitnet_2b4t_real_shapes_with_automatic_parameters_match_the_reference)
{
	run_harness("tl2-2b4t", "harness", 0, CHECKS(4), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl2_falcon3_real_shapes_with_automatic_parameters_match_the_reference)
{
	run_harness("tl2-falcon3", "harness", 0, CHECKS(4), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl2_section13_tile_configs_match_the_reference)
{
	run_harness("tl2-tv", "harness", 0, CHECKS(4), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl2_odd_shapes_and_parameters_match_the_reference_up_to_512_rows)
{
	run_harness("tl2-odd", "harness", 0, 6 * (6 + 3 * 2), "--batches", "1,3,8,9,64,512", NULL,
		    NULL);
}

Test(lut_kernels, tl2_drop_in_mode_driven_like_ggml_matches_the_reference)
{
	run_harness("tl2-large", "ggml_harness", 0, 3 * 6, INI, "--batches", "1,3,8,9,64,300", NULL);
	run_harness("tl2-2b4t", "ggml_harness", 0, 4 * 5, INI, NULL, NULL, NULL);
	run_harness("tl2-tv", "ggml_harness", 0, 4 * 5, INI, NULL, NULL, NULL);
	run_harness("tl2-odd", "ggml_harness", 0, 6 * 6, INI, "--batches", "1,3,8,9,64,512", NULL);
}

Test(lut_kernels, tl2_drop_in_mode_compiles_as_cxx_with_upstreams_templates)
{
	char *path = case_file("tl2-large", "ggml_harness_cxx");
	if (access(path, X_OK) != 0)
		cr_skip("no C++ compiler was found when building the tests");
	run_harness("tl2-large", "ggml_harness_cxx", 0, 3 * 2 + 1, INI, "--batches", "1,9", NULL);
	free(path);
}

Test(lut_kernels, tl1_large_model_shapes_with_setup_env_parameters_match_the_reference)
{
	run_harness("tl1-large", "harness", 1, CHECKS(3), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl1_falcon3_real_shapes_with_automatic_parameters_match_the_reference)
{
	/* 40M weights under qemu: fewer batch sizes keep it to a few seconds */
	run_harness("tl1-falcon3", "harness", 1, 4 * (2 + 3 * 1), "--batches", "1,9",
		    "--adv-batches", "1");
}

Test(lut_kernels, tl1_section13_tile_configs_match_the_reference)
{
	run_harness("tl1-tv", "harness", 1, CHECKS(4), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl1_odd_shapes_and_parameters_match_the_reference)
{
	run_harness("tl1-odd", "harness", 1, CHECKS(4), NULL, NULL, NULL, NULL);
}

Test(lut_kernels, tl1_drop_in_mode_driven_like_ggml_matches_the_reference)
{
	run_harness("tl1-large", "ggml_harness", 1, 3 * 2, INI, "--batches", "1,3", NULL);
	run_harness("tl1-tv", "ggml_harness", 1, 4 * 3, INI, "--batches", "1,3,9", NULL);
	run_harness("tl1-odd", "ggml_harness", 1, 4 * 3, INI, "--batches", "1,3,9", NULL);
}

/* lut-kernels.md §8.3: packed bytes, row 0's LUT(s) and the 2 x M outputs. */
static void check_vectors(const char *name, int tl1, const char *shape, const char *packed,
			  const char *lut0, const char *out)
{
	char *dir = tu_mkdtemp(name);
	char *path = case_file(name, "harness");
	const char *argv[] = { tl1 ? "qemu-aarch64" : path, tl1 ? path : "--vectors",
			       tl1 ? "--vectors" : dir, tl1 ? dir : NULL, NULL };
	struct tu_run r = tu_run(argv, NULL, NULL);
	if (r.status == 77)
		cr_skip("%s", r.out);
	cr_assert(eq(int, r.status, 0), "%s: %s", name, r.err);
	const char *ext[3] = { "packed", "lut0", "out" }, *want[3] = { packed, lut0, out };
	for (int i = 0; i < 3; i++) {
		char file[4200], hex[65];
		snprintf(file, sizeof file, "%s/%s.%s", dir, shape, ext[i]);
		cr_assert(eq(int, tu_sha256_file(file, hex), 0), "%s", file);
		cr_expect(eq(str, hex, (char *)want[i]), "%s %s %s", name, shape, ext[i]);
	}
	tu_run_free(&r);
	free(path);
	free(dir);
}

Test(lut_kernels, tl2_reproduces_the_section_8_3_vectors)
{
	check_vectors("tl2-vec", 0, "256x608",
		      "507a13855f9c1b847af2752f33c12cfcda27b0e455c474ba36165094b0993682",
		      "0311cc3073c67cf00eaf736a7477af834725e6916f9bbb6278417968300bd510",
		      "f9a7ba2911f4c61b0ea184abe0385eb03c797b66731e7c3e8fddef1714d17ab4");
	check_vectors("tl2-vec", 0, "256x512",
		      "b55885449de8d42f8d09da238874852cc386db6bc5c51290935176eb6e098969",
		      "53cff76f798bdd1a684e4121d2779af0e604bab0e571c1563f99cb5927c38851",
		      "007882aea5bb6bc75f7638b14fbde9b3b03c57896ebc277dd4e79fc222ccfd77");
}

Test(lut_kernels, tl1_reproduces_the_section_8_3_vectors)
{
	check_vectors("tl1-vec32", 1, "256x512",
		      "2d8f062bd7ad703f062b6cc21aaf1ffdda1e8ed3ef36da49ae5f71cbf1ed21b1",
		      "a446d3456dd375be99134cdb43717160ae417d2c9050ab06263341b89e0f53e2",
		      "007882aea5bb6bc75f7638b14fbde9b3b03c57896ebc277dd4e79fc222ccfd77");
	check_vectors("tl1-vec64", 1, "256x512",
		      "ffe05a46f680ea32c506c5097c1540a8621c696fce08bf2e668156af48e63d5d",
		      "a446d3456dd375be99134cdb43717160ae417d2c9050ab06263341b89e0f53e2",
		      "007882aea5bb6bc75f7638b14fbde9b3b03c57896ebc277dd4e79fc222ccfd77");
}

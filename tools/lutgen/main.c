/* lutgen: generates the TL1/TL2 lookup-table kernels (bitnet-lut-kernels.h) and
 * kernel_config.ini for a model's real weight shapes.  CLI only: parse, validate, call the
 * module, map errors to the exit status (0 ok, 1 failure, 2 usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_file.h"
#include "bn_log.h"
#include "lutgen.h"

static void help(void)
{
	printf(
"usage: lutgen --quant tl1|tl2 SHAPES [--BM LIST] [--BK LIST] [--bm LIST] [--preset FILE]\n"
"              --outdir DIR [-q] [-v]\n"
"       lutgen --tune --quant tl1|tl2 SHAPES [...] --preset-out FILE [--cc CC] [--src DIR]\n"
"              [--workdir DIR]\n"
"Generates the lookup-table kernels for a model's weight shapes: DIR/bitnet-lut-kernels.h\n"
"(TL1: AArch64 NEON, TL2: x86-64 AVX2) and DIR/kernel_config.ini, the tile parameters the\n"
"converter must pack the weights with.  Each file is rewritten only if its content changes.\n"
"The header is a drop-in for bitnet.cpp's include/bitnet-lut-kernels.h (with\n"
"GGML_BITNET_ARM_TL1 / GGML_BITNET_X86_TL2 defined) and otherwise defines\n"
"lut_generated_kernels for bitmake's TL runtime (kernels/lut/lut.h).\n"
"\n"
"SHAPES, exactly one of:\n"
"  --config FILE         a model's config.json: the shapes of its ternary linear layers from\n"
"                        hidden_size H, intermediate_size I, num_attention_heads nh,\n"
"                        num_key_value_heads nkv (default nh), head_dim hd (default H/nh):\n"
"                        q [nh*hd,H], k/v [nkv*hd,H], o [H,nh*hd], gate/up [I,H], down [H,I]\n"
"  --model NAME          the same with models/NAME/config.json\n"
"  --gguf FILE           a GGUF's ternary weights: its TL1/TL2/I2_S tensors, or its 2-D\n"
"                        F32/F16/BF16 tensors other than token_embd and output; a TL model\n"
"                        converted by bitmake also gives the tile parameters it was packed\n"
"                        with (bitmake.lut.kernel_config), so its kernels can be regenerated\n"
"  --shapes MxK,...      explicit shapes: M outputs, K inputs (e.g. 1536x4096,1536x1536)\n"
"  --kernel-config FILE  shapes and parameters of an existing kernel_config.ini\n"
"\n"
"Tile parameters (each one: from the command line, else the preset, else automatic):\n"
"  --BM LIST             tile rows; one value for all shapes or one per shape, in the order\n"
"                        lutgen prints them\n"
"  --BK LIST             K-block length (TL2: of the three-weight part)\n"
"  --bm LIST             micro-tile rows: TL1 32 or 64, TL2 32\n"
"  --preset FILE         tuned parameters, lines 'tl1.MxK = BM,BK,bm' / 'tl2.MxK = BM,BK,bm'\n"
"                        (presets/<model>.ini; make tune writes presets/local/<model>.ini)\n"
"\n"
"Constraints (checked for every shape, with a message naming the shape and the rule):\n"
"  TL1: bm 32 or 64; M %% BM = 0; BM %% bm = 0; K %% 16 = 0; K %% BK = 0;\n"
"       BK %% (256/bm) = 0; BK <= 256 (int16 block sums: 127*BK <= 32767)\n"
"  TL2: K >= 256; bm = 32; BM %% 32 = 0; M %% BM = 0; BK %% 24 = 0; BK <= 240;\n"
"       two_k = K mod BK is a multiple of 32 and <= 256 (three_k = K - two_k)\n"
"  Both: no shape twice; at most 2^20 rows or columns and 2^30 weights.\n"
"\n"
"Automatic choice (always valid; `make tune` measures instead):\n"
"  bm = 32.\n"
"  BK: TL1 the largest divisor of K up to 256 that is a multiple of 256/bm.  TL2 among the\n"
"      multiples of 24 up to 240 with a valid two_k: first those whose LUTs fit bitnet.cpp's\n"
"      TL2 workspace (11*K+16 bytes per row), then the smallest two_k (more weights in the\n"
"      denser 3-weight code), then the largest BK (fewer int16->int32 widenings).\n"
"  BM: the largest divisor of M that is a multiple of bm (TL2: 32) and at most 256 while\n"
"      leaving at least 4 tiles for the threads; else the largest up to 256; else the smallest.\n"
"\n"
"Tuning (make tune): --tune times candidate parameters on this CPU (TL2 needs x86-64 with\n"
"AVX2, TL1 AArch64): starting from the parameters above, every valid BK, then up to 8 BM\n"
"(divisors of M from 64 to 1024 leaving at least 4 tiles when M allows), then (TL1) the\n"
"other bm; each round compiles one header\n"
"with the bench harness; the measure is a single-threaded GEMV with the weights in cache, the\n"
"minimum of 9 samples.  The fastest go to FILE as tlN.MxK lines (other lines are kept).\n"
"  --preset-out FILE     the preset to write (make tune: presets/local/MODEL.ini)\n"
"  --cc CC               compiler for the timing harness (default cc)\n"
"  --src DIR             the bitmake source tree (default .)\n"
"  --workdir DIR         scratch directory (default build/tune)\n"
"\n"
"Output: stdout lists each shape's parameters and who chose them, then the files written.\n"
"  -q, --quiet           no warnings\n"
"  -v, --verbose         more detail\n"
"  -h, --help            this help\n"
"Exit status: 0 ok, 1 failure (e.g. a violated constraint), 2 usage error.\n");
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	const char *quant = NULL, *config = NULL, *model = NULL, *shapes = NULL, *kconfig = NULL;
	const char *gguf = NULL, *preset_out = NULL, *cc = "cc", *src = ".", *workdir = "build/tune";
	bool tune = false;
	const char *preset = NULL, *outdir = NULL, *BM = NULL, *BK = NULL, *bm = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			help();
			return 0;
		} else if (!strcmp(a, "--tune")) {
			tune = true;
			continue;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			bn_log_level = BN_LOG_QUIET;
			continue;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			bn_log_level = BN_LOG_VERBOSE;
			continue;
		} else if (!strcmp(a, "--quant"))
			dst = &quant;
		else if (!strcmp(a, "--config"))
			dst = &config;
		else if (!strcmp(a, "--model"))
			dst = &model;
		else if (!strcmp(a, "--gguf"))
			dst = &gguf;
		else if (!strcmp(a, "--shapes"))
			dst = &shapes;
		else if (!strcmp(a, "--kernel-config"))
			dst = &kconfig;
		else if (!strcmp(a, "--preset"))
			dst = &preset;
		else if (!strcmp(a, "--outdir"))
			dst = &outdir;
		else if (!strcmp(a, "--preset-out"))
			dst = &preset_out;
		else if (!strcmp(a, "--cc"))
			dst = &cc;
		else if (!strcmp(a, "--src"))
			dst = &src;
		else if (!strcmp(a, "--workdir"))
			dst = &workdir;
		else if (!strcmp(a, "--BM"))
			dst = &BM;
		else if (!strcmp(a, "--BK"))
			dst = &BK;
		else if (!strcmp(a, "--bm"))
			dst = &bm;
		else
			return bn_usage_error("unknown option '%s'", a);
		if (i + 1 >= argc)
			return bn_usage_error("%s needs a value", a);
		*dst = argv[++i];
	}

	enum lut_quant q;
	if (!quant)
		return bn_usage_error("--quant tl1|tl2 is required");
	if (lut_quant_parse(quant, &q))
		return bn_usage_error("--quant %s: expected tl1 or tl2", quant);
	if (!!config + !!model + !!gguf + !!shapes + !!kconfig != 1)
		return bn_usage_error("give the shapes with exactly one of --config, --model, --gguf, "
				      "--shapes and --kernel-config");
	if (tune && !preset_out)
		return bn_usage_error("--tune needs --preset-out FILE");
	if (!tune && !outdir)
		return bn_usage_error("--outdir DIR is required");
	if (kconfig && (BM || BK || bm || preset))
		return bn_usage_error("--kernel-config gives the parameters too; it cannot be "
				      "combined with --BM, --BK, --bm or --preset");
	if (model && (!*model || strchr(model, '/')))
		return bn_usage_error("--model %s: expected a model name (a directory under models/)",
				      model);

	struct bn_err err = { 0 };
	struct lutgen_list lBM = { 0 }, lBK = { 0 }, lbm = { 0 };
	if ((BM && lutgen_list_parse("--BM", BM, &lBM, &err)) ||
	    (BK && lutgen_list_parse("--BK", BK, &lBK, &err)) ||
	    (bm && lutgen_list_parse("--bm", bm, &lbm, &err)))
		return bn_usage_error("%s", err.msg);

	int status = 1;
	struct lutgen_shape *s = NULL;
	size_t n = 0;
	bool recorded = false; /* the parameters came with the shapes (a TL GGUF) */
	char *preset_text = NULL, *model_config = NULL;
	if (shapes) {
		if (lutgen_shapes_parse(shapes, &s, &n, &err)) {
			status = bn_usage_error("%s", err.msg);
			goto out;
		}
	} else if (gguf) {
		if (lutgen_shapes_from_gguf(gguf, q, &s, &n, &recorded, &err)) {
			bn_error("%s", err.msg);
			goto out;
		}
		config = gguf; /* names the source in errors */
		if (recorded && (BM || BK || bm || preset))
			bn_warn("%s records the tile parameters it was packed with; kernels generated "
				"with others will refuse it", gguf);
	} else if (kconfig) {
		char *text = NULL;
		size_t len;
		struct lut_params *p = NULL;
		if (bn_read_file(kconfig, 1 << 20, &text, &len, &err) ||
		    lut_ini_parse(q, text, len, kconfig, &p, &n, &err)) {
			free(text);
			bn_error("%s", err.msg);
			goto out;
		}
		free(text);
		s = calloc(n, sizeof *s);
		if (!s) {
			free(p);
			bn_error("out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			s[i].p = p[i];
			s[i].BM_from = s[i].BK_from = s[i].bm_from = LUT_GIVEN;
		}
		free(p);
	} else {
		if (model) {
			model_config = malloc(strlen(model) + 32);
			if (!model_config) {
				bn_error("out of memory");
				goto out;
			}
			sprintf(model_config, "models/%s/config.json", model);
			config = model_config;
			if (!bn_file_exists(config)) {
				bn_error("%s: not found; download the model first (make download "
					 "MODEL=%s) or give --config or --shapes",
					 config, model);
				goto out;
			}
		}
		if (lutgen_shapes_from_config(config, &s, &n, &err)) {
			bn_error("%s", err.msg);
			goto out;
		}
	}
	if (preset) {
		size_t len;
		if (bn_read_file(preset, 1 << 20, &preset_text, &len, &err)) {
			bn_error("%s", err.msg);
			goto out;
		}
	}
	const struct lutgen_list *lists[3] = { BM ? &lBM : NULL, BK ? &lBK : NULL, bm ? &lbm : NULL };
	static const char *const names[3] = { "--BM", "--BK", "--bm" };
	for (int i = 0; i < 3; i++)
		if (lists[i] && lists[i]->n != 1 && lists[i]->n != n) {
			status = bn_usage_error("%s has %zu values for %zu shapes; give one per shape "
						"or one for all", names[i], lists[i]->n, n);
			goto out;
		}
	if (recorded && !(BM || BK || bm || preset)) {
		struct lut_params *flat = malloc(n * sizeof *flat);
		int bad = !flat;
		for (size_t i = 0; flat && i < n; i++)
			flat[i] = s[i].p;
		if (flat)
			bad = lut_params_check_list(q, flat, n, &err) != 0;
		free(flat);
		if (bad) {
			bn_error("%s: %s", gguf, flat ? err.msg : "out of memory");
			goto out;
		}
	} else if (!kconfig &&
		   lutgen_resolve(q, s, n, lists[0], lists[1], lists[2], preset_text, preset, &err)) {
		bn_error("%s%s%s", config ? config : "", config ? ": " : "", err.msg);
		goto out;
	}
	if (preset) {
		size_t used = 0;
		for (size_t i = 0; i < n; i++)
			used += s[i].BM_from == LUT_PRESET || s[i].BK_from == LUT_PRESET ||
				s[i].bm_from == LUT_PRESET;
		if (!used)
			bn_warn("%s: no %s parameters for these shapes (keys like %s.%ux%u); using "
				"automatic ones", preset, lut_quant_name(q), lut_quant_name(q), s[0].p.m,
				s[0].p.k);
	}
	if (q == LUT_TL2)
		for (size_t i = 0; i < n; i++)
			if (!lut_tl2_fits_ggml_wsize(&s[i].p))
				bn_warn("tl2 [%u,%u]: BK=%u leaves two_k=%u: its LUTs (%u bytes per row) "
					"exceed bitnet.cpp's TL2 workspace (11*K+16); fine for bitmake, "
					"unsafe as a bitnet.cpp drop-in",
					s[i].p.m, s[i].p.k, s[i].p.BK, s[i].p.two_k,
					s[i].p.three_k / 3 * 32 + s[i].p.two_k * 16 + 4);
	if (tune) {
		struct lutgen_tune_opts o = { cc, src, workdir, preset_out };
		bn_catch_interrupts();
		if (lutgen_tune(q, s, n, &o, &err)) {
			bn_error("%s", err.msg);
			goto out;
		}
		status = 0;
		goto out;
	}
	lutgen_report(stdout, q, s, n);
	bool changed[2];
	if (lutgen_write(q, s, n, outdir, changed, &err)) {
		bn_error("%s", err.msg);
		goto out;
	}
	printf("%s/bitnet-lut-kernels.h: %s\n", outdir, changed[0] ? "written" : "unchanged");
	printf("%s/kernel_config.ini: %s\n", outdir, changed[1] ? "written" : "unchanged");
	status = 0;
out:
	free(s);
	free(preset_text);
	free(model_config);
	return status;
}

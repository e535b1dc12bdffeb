/* mkmodel command line: parse and validate options, then mk_generate.  Exit 0 ok, 1 failure,
 * 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_log.h"
#include "bn_util.h"
#include "mkmodel.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mkmodel --preset NAME --outdir DIR [--dtype bf16|f16|f32] [--layers N]\n"
		"               [--shards N] [--seed S] [--tensor-order library|name|ordinal]\n"
		"               [--tokenizer spm|bpe] [-q] [-v]\n"
		"       mkmodel --list\n"
		"Writes a deterministic synthetic Hugging Face checkpoint into DIR: config.json,\n"
		"model.safetensors (or model-0000i-of-0000N.safetensors + model.safetensors.index.json),\n"
		"tokenizer_config.json and tokenizer.model (SentencePiece) or tokenizer.json (BPE).\n"
		"Each file is written atomically; tensors are streamed, never held in memory.\n"
		"\n"
		"  --preset NAME     model shape (see --list); tv-f32, tv-bf16 and tv-llama are the\n"
		"                    test vectors of convert-quantize.md 13.1, byte for byte (DIR should\n"
		"                    be named like the preset: the converter names the model after it)\n"
		"  --outdir DIR      output directory (created if missing); model files of an earlier\n"
		"                    run that this one does not write are removed\n"
		"  --dtype T         float tensors as bf16, f16 or f32 (default: the preset's)\n"
		"  --layers N        number of layers (default: the preset's), e.g. to cut depth for a\n"
		"                    benchmark\n"
		"  --shards N        split into N shards plus model.safetensors.index.json (default 1)\n"
		"  --seed S          weight seed (default 0, the 13.1 seeds); any S gives other weights\n"
		"  --tensor-order O  data layout inside each shard: library (dtype then name, what the\n"
		"                    Python safetensors library writes; default), name, or ordinal\n"
		"                    (generation order: embeddings, norm, layer by layer)\n"
		"  --tokenizer K     spm (tokenizer.model) or bpe (Llama-3-style tokenizer.json);\n"
		"                    default: bpe for the models whose real tokenizer is BPE\n"
		"  -q, -v            less / more output on stderr\n"
		"  --list            print the presets and what they are\n"
		"  --help            this text\n"
		"\n"
		"Weights: a 32-bit LCG per tensor (seed from the tensor's ordinal). Test vectors use the\n"
		"13.1 values; other presets store ternary projections (scale * {-1,0,1}, or packed U8\n"
		"codes + weight_scale for the packed models) so that quantization is exact and the\n"
		"pipeline's outputs are meaningful. The test vectors accept only --outdir, --shards and\n"
		"--tensor-order.\n");
}

static void list(void)
{
	for (unsigned i = 0; mk_preset_at(i); i++) {
		const struct mk_preset *p = mk_preset_at(i);
		printf("%-30s %s\n", p->name, p->about);
	}
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	struct mk_opts o = { .shards = 1, .order = MK_ORDER_LIBRARY };
	const char *preset = NULL, *dtype = NULL, *layers = NULL, *seed = NULL, *tok = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--list") == 0) {
			list();
			return 0;
		} else if (strcmp(a, "-q") == 0) {
			bn_log_level = BN_LOG_QUIET;
		} else if (strcmp(a, "-v") == 0) {
			bn_log_level = BN_LOG_VERBOSE;
		} else if (!v) {
			return bn_usage_error("unknown option or missing value: %s", a);
		} else if (strcmp(a, "--preset") == 0) {
			preset = argv[++i];
		} else if (strcmp(a, "--outdir") == 0) {
			o.outdir = argv[++i];
		} else if (strcmp(a, "--dtype") == 0) {
			dtype = argv[++i];
		} else if (strcmp(a, "--layers") == 0) {
			layers = argv[++i];
		} else if (strcmp(a, "--seed") == 0) {
			seed = argv[++i];
		} else if (strcmp(a, "--tokenizer") == 0) {
			tok = argv[++i];
		} else if (strcmp(a, "--shards") == 0) {
			if (bn_parse_uint(argv[++i], 1, 99999, &o.shards))
				return bn_usage_error("--shards %s: expected a number from 1 to 99999", v);
		} else if (strcmp(a, "--tensor-order") == 0) {
			i++;
			if (strcmp(v, "library") == 0)
				o.order = MK_ORDER_LIBRARY;
			else if (strcmp(v, "name") == 0)
				o.order = MK_ORDER_NAME;
			else if (strcmp(v, "ordinal") == 0)
				o.order = MK_ORDER_ORDINAL;
			else
				return bn_usage_error("--tensor-order %s: expected library, name or "
						      "ordinal", v);
		} else {
			return bn_usage_error("unknown option: %s", a);
		}
	}
	if (!preset || !o.outdir)
		return bn_usage_error("--preset and --outdir are required");
	if (!(o.preset = mk_preset_find(preset)))
		return bn_usage_error("unknown preset '%s'; mkmodel --list shows them", preset);
	const struct mk_preset *p = o.preset;
	if (p->tv && (dtype || layers || seed || tok))
		return bn_usage_error("%s is a fixed test vector: --dtype, --layers, --seed and "
				      "--tokenizer do not apply", p->name);
	o.dtype = p->dtype;
	if (dtype) {
		if (strcmp(dtype, "bf16") == 0)
			o.dtype = ST_BF16;
		else if (strcmp(dtype, "f16") == 0)
			o.dtype = ST_F16;
		else if (strcmp(dtype, "f32") == 0)
			o.dtype = ST_F32;
		else
			return bn_usage_error("--dtype %s: expected bf16, f16 or f32", dtype);
	}
	o.layers = p->layers;
	if (layers && bn_parse_uint(layers, 1, 1000, &o.layers))
		return bn_usage_error("--layers %s: expected a number from 1 to 1000", layers);
	unsigned s = 0;
	if (seed && bn_parse_uint(seed, 0, 0xffffffffu, &s))
		return bn_usage_error("--seed %s: expected a number from 0 to 4294967295", seed);
	o.seed = s;
	o.bpe = p->bpe;
	if (tok) {
		if (strcmp(tok, "spm") == 0)
			o.bpe = false;
		else if (strcmp(tok, "bpe") == 0)
			o.bpe = true;
		else
			return bn_usage_error("--tokenizer %s: expected spm or bpe", tok);
	}
	bn_catch_interrupts();
	struct bn_err err = { 0 };
	double t0 = bn_now();
	if (mk_generate(&o, &err)) {
		bn_error("%s", err.msg);
		return 1;
	}
	bn_info("%s: wrote %s in %.2f s", p->name, o.outdir, bn_now() - t0);
	printf("%s\n", o.outdir);
	return 0;
}

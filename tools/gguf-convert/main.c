/* gguf-convert command line: parse and validate options, then cv_convert.  Exit 0 converted,
 * 1 failure (nothing written), 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_log.h"
#include "bn_util.h"
#include "convert.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gguf-convert MODEL_DIR [--outtype TYPE] [--outfile PATH] [--quant-embd]\n"
		"                    [--tensor-order lexicographic|offset] [--threads N] [--force]\n"
		"                    [--arch bitnet|bitnet-b1.58] [--pre NAME] [--kernel-config FILE]\n"
		"                    [-q] [-v]\n"
		"Converts a Hugging Face safetensors checkpoint (config.json, model.safetensors or\n"
		"shards with model.safetensors.index.json, tokenizer.model or tokenizer.json,\n"
		"tokenizer_config.json) into a GGUF file, byte for byte what bitnet.cpp's\n"
		"convert-hf-to-gguf-bitnet.py writes for the same output type.  Tensors are streamed\n"
		"from the mapped shards, so memory stays bounded whatever the model size.\n"
		"\n"
		"  --outtype TYPE    output type (default f32):\n");
	for (size_t i = 0; cv_outtype_at(i); i++)
		fprintf(f, "                      %-6s %s\n", cv_outtype_at(i)->name,
			cv_outtype_at(i)->about);
	fprintf(f,
		"  --outfile PATH    output file (default MODEL_DIR/ggml-model-TYPE.gguf)\n"
		"  --quant-embd      token_embd as F16 (f16, tl1, tl2: instead of F32; i2_s, tq1_0,\n"
		"                    tq2_0: instead of Q8_0 when its rows are not a multiple of 256, as\n"
		"                    llama-quantize --token-embedding-type f16)\n"
		"  --tensor-order O  order of the tensors inside each shard: lexicographic (by name,\n"
		"                    what older Python safetensors returned; default) or offset (data\n"
		"                    order, what the current safetensors returns)\n"
		"  --threads N       conversion threads (default: one per CPU); the output does not\n"
		"                    depend on N\n"
		"  --force           convert a checkpoint that is not ternary to a ternary type anyway\n"
		"  --emulate-stale-tail  i2_s: fill the 28 padding bytes after each I2_S scale as\n"
		"                    llama-quantize leaves them (stale scratch bytes) instead of zeros,\n"
		"                    for byte comparisons with the reference\n"
		"  --arch A          GGUF architecture for BitNet models: bitnet-b1.58 (default for\n"
		"                    hidden_act relu2, i.e. BitNet-b1.58-2B-4T: what bitnet.cpp runs\n"
		"                    with a squared-ReLU FFN) or bitnet (default otherwise; for a relu2\n"
		"                    model this targets mainline llama.cpp and adds\n"
		"                    bitnet.hidden_activation = relu2)\n"
		"  --pre NAME        tokenizer.ggml.pre for BPE tokenizers; by default from the model\n"
		"                    family: %s\n"
		"  --kernel-config F tl1/tl2: the tile parameters (BM, BK, bm) of every weight shape:\n"
		"                    the kernel_config.ini lutgen wrote with the kernels (make codegen);\n"
		"                    without it, lutgen's automatic parameters.  They are recorded in\n"
		"                    the GGUF as bitmake.lut.kernel_config so that the runtime refuses\n"
		"                    kernels generated with other ones\n"
		"  --no-kernel-kvs   tl1/tl2: do not record them (the file is then byte for byte\n"
		"                    bitnet.cpp's converter's)\n"
		"  -q, -v            less / more output on stderr\n"
		"  -h, --help        this help\n"
		"\n"
		"Architectures (config.json architectures[0], any letter case): %s.\n"
		"Anything the requested type cannot represent stops the conversion with the tensor's\n"
		"name and the reason; nothing is written then.  The output is written as PATH.tmp and\n"
		"renamed when complete; it is then re-read and checked, and a summary (tensors per\n"
		"type, bytes) is printed on stdout.\n"
		"\n"
		"Exit status: 0 converted, 1 failure (no output file), 2 usage error.\n",
		cv_pre_names, cv_supported_archs);
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	struct cv_opts o = { .order = ST_ORDER_NAME, .summary = stdout };
	const char *outtype = "f32";
	bool no_more = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (no_more || a[0] != '-' || a[1] == '\0') {
			if (o.model_dir)
				return bn_usage_error("one MODEL_DIR only ('%s' and '%s' given)",
						      o.model_dir, a);
			o.model_dir = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			no_more = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-q") == 0) {
			bn_log_level = BN_LOG_QUIET;
		} else if (strcmp(a, "-v") == 0) {
			bn_log_level = BN_LOG_VERBOSE;
		} else if (strcmp(a, "--quant-embd") == 0) {
			o.quant_embd = true;
		} else if (strcmp(a, "--force") == 0) {
			o.force = true;
		} else if (strcmp(a, "--emulate-stale-tail") == 0) {
			o.emulate_stale_tail = true;
		} else if (strcmp(a, "--no-kernel-kvs") == 0) {
			o.no_kernel_kvs = true;
		} else if (i + 1 >= argc) {
			return bn_usage_error("unknown option or missing value: %s", a);
		} else if (strcmp(a, "--outtype") == 0) {
			outtype = argv[++i];
		} else if (strcmp(a, "--outfile") == 0) {
			o.outfile = argv[++i];
		} else if (strcmp(a, "--kernel-config") == 0) {
			o.kernel_config = argv[++i];
		} else if (strcmp(a, "--arch") == 0) {
			o.arch = argv[++i];
		} else if (strcmp(a, "--pre") == 0) {
			o.pre = argv[++i];
		} else if (strcmp(a, "--threads") == 0) {
			if (bn_parse_uint(argv[++i], 1, 1024, &o.threads))
				return bn_usage_error("--threads: '%s' is not a number from 1 to 1024",
						      argv[i]);
		} else if (strcmp(a, "--tensor-order") == 0) {
			const char *v = argv[++i];
			if (strcmp(v, "lexicographic") == 0 || strcmp(v, "sorted") == 0)
				o.order = ST_ORDER_NAME;
			else if (strcmp(v, "offset") == 0)
				o.order = ST_ORDER_OFFSET;
			else
				return bn_usage_error("--tensor-order: '%s' is neither lexicographic "
						      "nor offset", v);
		} else {
			return bn_usage_error("unknown option '%s'", a);
		}
	}
	if (!o.model_dir)
		return bn_usage_error("missing MODEL_DIR");
	o.outtype = cv_outtype_find(outtype);
	if (!o.outtype) {
		char list[256] = "";
		for (size_t i = 0; cv_outtype_at(i); i++)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
				 i ? ", " : "", cv_outtype_at(i)->name);
		return bn_usage_error("--outtype %s: unknown type; choose one of %s", outtype, list);
	}
	if (o.emulate_stale_tail && strcmp(o.outtype->name, "i2_s") != 0)
		return bn_usage_error("--emulate-stale-tail is only for --outtype i2_s");
	if ((o.kernel_config || o.no_kernel_kvs) && strcmp(o.outtype->name, "tl1") != 0 &&
	    strcmp(o.outtype->name, "tl2") != 0)
		return bn_usage_error("--kernel-config and --no-kernel-kvs are only for --outtype tl1 "
				      "and tl2");

	bn_catch_interrupts();
	struct bn_err err = { 0 };
	if (cv_convert(&o, &err)) {
		bn_error("%s", err.msg);
		return 1;
	}
	if (fflush(stdout) != 0) {
		bn_error("standard output: write failed");
		return 1;
	}
	return 0;
}

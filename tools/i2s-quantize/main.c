/* i2s-quantize command line: options and llama-quantize's positional form, validation, the
 * summary on stdout.  Exit 0 ok, 1 failure, 2 usage error.  The work is in quantize.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "bn_log.h"
#include "bn_util.h"
#include "quantize.h"

/* More threads than this only add memory (a chunk each): the work is memory-bound. */
#define DEFAULT_MAX_THREADS 8u

static void usage(FILE *f)
{
	fprintf(f,
		"usage: i2s-quantize [options] IN.gguf OUT.gguf [TYPE] [NTHREADS]\n"
		"Quantizes a GGUF model (F32, F16 or BF16 tensors, as gguf-convert --outtype f32\n"
		"writes it) to I2_S, bitnet.cpp's 2-bit format, or to TQ1_0 / TQ2_0, mainline\n"
		"llama.cpp's ternary formats; and turns an I2_S file (including Microsoft's\n"
		"BitNet-b1.58-2B-4T GGUF) into TQ1_0 / TQ2_0, losslessly.  The output is what\n"
		"`llama-quantize IN OUT I2_S 1` writes, byte for byte except the 28 padding bytes after\n"
		"each I2_S scale (zeros here), and it is correct with any number of threads.\n"
		"\n"
		"  --type T                     i2_s (default), tq1_0 or tq2_0; also the TYPE argument\n"
		"                               (names in any case, or the ftype numbers 40, 36, 37)\n"
		"  --threads N                  threads (default: one per CPU, at most 8: the work is\n"
		"                               memory-bound); also NTHREADS (0 = that default)\n"
		"  --token-embedding-type T     f16, f32 or q8_0 for token_embd.weight\n"
		"  --output-tensor-type T       f16, f32 or q8_0 for output.weight\n"
		"  --i2s-layout L               I2_S input block layout: auto (default), x86 or arm\n"
		"  --force                      quantize tensors that are not ternary anyway (I2_S by\n"
		"                               sign, TQ by rounding); normally that is an error\n"
		"  --emulate-stale-tail         reproduce llama-quantize's stale padding bytes too\n"
		"  -q, -v                       less / more output on stderr\n"
		"  -h, --help                   this help\n"
		"\n"
		"Positional form: `i2s-quantize IN OUT I2_S 1` as setup_env.py runs llama-quantize.\n"
		"Like llama-quantize, arguments after NTHREADS are ignored (setup_env passes\n"
		"`I2_S 1 1` with --token-embedding-type); a warning names them.\n"
		"\n"
		"Types (llama-quantize's rules): projections become TYPE; token_embd.weight (the\n"
		"output head of models without output.weight) F16, or Q8_0 when its rows are not a\n"
		"multiple of 256; output.weight likewise; norms and 1-D tensors stay F32.  A tensor\n"
		"TYPE cannot hold is an error naming it: I2_S needs rows that are a multiple of 128,\n"
		"TQ1_0/TQ2_0 multiples of 256.  Input values must be ternary (+v, -v, 0) per tensor\n"
		"and finite.  general.file_type becomes 40 (I2_S), 36 (TQ1_0) or 37 (TQ2_0) and\n"
		"general.quantization_version 2 is added.\n"
		"\n"
		"I2_S input: its block layout (x86 128-element or ARM 64-element) is not recorded\n"
		"in files; auto takes x86 for files without general.quantization_version (written\n"
		"by a Python converter, always x86) and otherwise decides from the feed-forward\n"
		"weights only when the evidence is decisive, else asks for --i2s-layout.  TQ blocks\n"
		"get the tensor scale rounded to fp16 as their d, as mainline's quantizer gives it.\n"
		"\n"
		"The input is memory-mapped and streamed tensor by tensor in chunks that the threads\n"
		"share; the output is written as OUT.tmp, every chunk is read back from it and checked\n"
		"against the input (I2_S: each decodes to its input value exactly; TQ: to the value\n"
		"times fp16(block max)), and only then is OUT.tmp renamed to OUT.  Memory stays a few\n"
		"MB whatever the model size.  stdout: one summary line.\n"
		"\n"
		"Exit status: 0 written and verified, 1 failure (nothing written), 2 usage error.\n");
}

static int parse_float_type(const char *s, int *out)
{
	static const struct {
		const char *name;
		int type;
	} types[] = { { "f16", GGUF_TYPE_F16 }, { "f32", GGUF_TYPE_F32 }, { "q8_0", GGUF_TYPE_Q8_0 } };
	for (size_t i = 0; i < BN_ARRAY_LEN(types); i++)
		if (strcasecmp(s, types[i].name) == 0) {
			*out = types[i].type;
			return 0;
		}
	return -1;
}

static void print_summary(const struct iq_opts *o, const struct iq_summary *s)
{
	char types[256] = "";
	for (int t = 0; t < GGUF_TYPE_COUNT; t++)
		if (s->n_of_type[t]) {
			size_t len = strlen(types);
			snprintf(types + len, sizeof types - len, "%s%zu %s", len ? ", " : "",
				 s->n_of_type[t], gguf_type_name((uint32_t)t));
		}
	struct stat st;
	unsigned long long size = stat(o->out_path, &st) == 0 ? (unsigned long long)st.st_size : 0;
	printf("%s: %s, %zu tensors (%s), %llu bytes, %zu converted, verified\n", o->out_path,
	       qp_target_name(o->plan.target), s->n_tensors, types, size, s->n_converted);
	bn_info("written and read back in %.2f s, committed in %.2f s", s->t_write, s->t_commit);
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	struct iq_opts o = { .plan = { QP_I2_S, QP_TYPE_RULE, QP_TYPE_RULE } };
	const char *pos[4] = { NULL };
	int npos = 0;
	const char *type_opt = NULL, *threads_opt = NULL;
	bool no_more_opts = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (no_more_opts || a[0] != '-' || a[1] == '\0') {
			if (npos < 4)
				pos[npos++] = a;
			else
				bn_warn("ignoring extra argument '%s' (as llama-quantize does)", a);
			continue;
		}
		if (strcmp(a, "--") == 0) {
			no_more_opts = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-q") == 0) {
			bn_log_level = BN_LOG_QUIET;
		} else if (strcmp(a, "-v") == 0) {
			bn_log_level = BN_LOG_VERBOSE;
		} else if (strcmp(a, "--force") == 0) {
			o.force = true;
		} else if (strcmp(a, "--emulate-stale-tail") == 0) {
			o.stale_tail = true;
		} else if (!v) {
			return bn_usage_error("unknown option or missing value: %s", a);
		} else if (strcmp(a, "--type") == 0) {
			type_opt = argv[++i];
		} else if (strcmp(a, "--threads") == 0) {
			threads_opt = argv[++i];
		} else if (strcmp(a, "--token-embedding-type") == 0) {
			if (parse_float_type(argv[++i], &o.plan.token_embd_type) < 0)
				return bn_usage_error("--token-embedding-type: '%s' is not f16, f32 or "
						      "q8_0", argv[i]);
		} else if (strcmp(a, "--output-tensor-type") == 0) {
			if (parse_float_type(argv[++i], &o.plan.output_type) < 0)
				return bn_usage_error("--output-tensor-type: '%s' is not f16, f32 or "
						      "q8_0", argv[i]);
		} else if (strcmp(a, "--i2s-layout") == 0) {
			if (iq_layout_parse(argv[++i], &o.i2s_layout) < 0)
				return bn_usage_error("--i2s-layout: '%s' is not auto, x86 or arm",
						      argv[i]);
		} else {
			return bn_usage_error("unknown option: %s", a);
		}
	}
	if (npos < 2)
		return bn_usage_error(npos ? "missing OUT.gguf" : "missing IN.gguf and OUT.gguf");
	o.in_path = pos[0];
	o.out_path = pos[1];
	if (strcmp(o.in_path, o.out_path) == 0)
		return bn_usage_error("IN and OUT are the same file: %s", o.in_path);
	if (pos[2] && type_opt && strcasecmp(pos[2], type_opt) != 0)
		return bn_usage_error("TYPE '%s' and --type '%s' disagree", pos[2], type_opt);
	const char *type = pos[2] ? pos[2] : type_opt;
	if (type && qp_target_parse(type, &o.plan.target) < 0)
		return bn_usage_error("unknown type '%s'; use i2_s, tq1_0 or tq2_0", type);
	if (pos[3] && threads_opt && strcmp(pos[3], threads_opt) != 0)
		return bn_usage_error("NTHREADS '%s' and --threads '%s' disagree", pos[3], threads_opt);
	const char *threads = pos[3] ? pos[3] : threads_opt;
	unsigned nt = 0;
	if (threads && bn_parse_uint(threads, 0, 1024, &nt) < 0)
		return bn_usage_error("threads: '%s' is not a number from 0 to 1024", threads);
	o.threads = nt ? nt : BN_MIN(bn_cpu_count(), DEFAULT_MAX_THREADS);

	bn_catch_interrupts();
	struct iq_summary s;
	struct bn_err err = { 0 };
	if (iq_quantize(&o, &s, &err) < 0) {
		bn_error("%s", err.msg);
		return 1;
	}
	print_summary(&o, &s);
	return 0;
}

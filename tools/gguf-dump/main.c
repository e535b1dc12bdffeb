/* gguf-dump: prints a GGUF file's KVs and tensor table, for humans or as JSON.
 * CLI only: argument parsing and exit statuses; the printing is in dump.c. */
#include <stdio.h>
#include <string.h>

#include "bn_log.h"
#include "dump.h"
#include "gguf.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gguf-dump [--json] [--no-kv] [--no-tensors] FILE\n"
		"Prints the header, key/value metadata and tensor table of a GGUF file (versions 2\n"
		"and 3), including the BitNet fork's I2_S, TL1 and TL2 files that mainline tools\n"
		"cannot read.  The file is validated completely first; a malformed file gives one\n"
		"error line naming the bad field and its value.\n"
		"\n"
		"  --json        one JSON document instead of the human form\n"
		"  --no-kv       leave out the key/value metadata\n"
		"  --no-tensors  leave out the tensor table\n"
		"  -h, --help    this help\n"
		"\n"
		"Human form: one line per KV (index, key, type, value) and per tensor (index, name,\n"
		"type, shape in ggml order with ne[0] first, offset from the data section, bytes).\n"
		"Strings are quoted with C escapes and cut after %d bytes; arrays show their first\n"
		"%d elements; general.file_type is followed by its name when known.\n"
		"\n"
		"JSON form: {\"file\", \"version\", \"size\", \"alignment\", \"data_offset\", \"n_kv\",\n"
		"\"n_tensors\", \"type_ids\": \"bitnet\", [\"note\"], \"kv\": [{\"key\", \"type\",\n"
		"[\"element_type\", \"count\"], \"value\"}], \"tensors\": [{\"name\", \"type\", \"type_id\",\n"
		"\"shape\", \"offset\", \"bytes\"}]}.  Every value is complete, arrays included.  u64\n"
		"values above 2^63-1 and non-finite floats (\"nan\", \"inf\", \"-inf\") are strings;\n"
		"invalid UTF-8 in strings is replaced by U+FFFD.\n"
		"\n"
		"Tensor sizes are what the BitNet fork's loader reads: I2_S and TL1 N/4+32 bytes,\n"
		"TL2 pad32(T)+32 (the per-tensor scale included).  Type ids 36-39 are read as the\n"
		"fork's I2_S, I8_S, TL1 and TL2; mainline ggml gives these ids other meanings\n"
		"(39 = MXFP4), so the output says so when a file uses them.\n"
		"\n"
		"Exit status: 0 printed, 1 unreadable or malformed file, 2 usage error.\n",
		DUMP_STR_MAX, DUMP_ARR_MAX);
}

int main(int argc, char **argv)
{
	bn_log_init(argv[0]);
	struct dump_opts o = { .kv = true, .tensors = true };
	bool json = false, no_more_opts = false;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!no_more_opts && a[0] == '-' && a[1] != '\0') {
			if (strcmp(a, "--") == 0) {
				no_more_opts = true;
			} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				usage(stdout);
				return 0;
			} else if (strcmp(a, "--json") == 0) {
				json = true;
			} else if (strcmp(a, "--no-kv") == 0) {
				o.kv = false;
			} else if (strcmp(a, "--no-tensors") == 0) {
				o.tensors = false;
			} else {
				return bn_usage_error("unknown option '%s'", a);
			}
		} else if (path) {
			return bn_usage_error("one FILE only ('%s' and '%s' given)", path, a);
		} else {
			path = a;
		}
	}
	if (!path)
		return bn_usage_error("missing FILE");

	struct bn_err err = { 0 };
	struct gguf_reader *r = gguf_open(path, &err);
	if (!r) {
		bn_error("%s", err.msg);
		return 1;
	}
	int rc = json ? dump_json(stdout, r, path, &o, &err) : dump_human(stdout, r, path, &o, &err);
	gguf_close(r);
	if (!rc && fflush(stdout) != 0)
		rc = bn_seterr(&err, BN_EIO, "standard output: write failed");
	if (rc) {
		bn_error("%s: %s", path, err.msg);
		return 1;
	}
	return 0;
}

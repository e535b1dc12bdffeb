/* The transfer engine (hf_fetch.c): downloads a set of files of one commit into the local
 * directory, in parallel, resumable, verified. */
#ifndef HF_FETCH_H
#define HF_FETCH_H

#include "hf_net.h"

struct hf_fetch_stats {
	size_t files_downloaded;
	uint64_t bytes_received;
	double seconds;
};

/* files are pinned to commit; their parent directories must exist.  Returns 0 when every file
 * is in place with its metadata, else a negative code with err set (partial downloads stay as
 * .incomplete files for the next run). */
int hf_fetch(struct hf_net *net, const char *commit, const struct hf_file *const *files, size_t n,
	     struct hf_fetch_stats *st, struct bn_err *err);

#endif

/* Progress reporting on stderr.  On a terminal: one redrawn bar, at most 4 updates a second.
 * Otherwise (logs, CI): one line per 10 % or per 30 s, whichever comes first, which reads well
 * in logs/.  Silent below BN_LOG_NORMAL. */
#ifndef BN_PROGRESS_H
#define BN_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct bn_progress {
	char label[96];
	uint64_t total; /* 0 if unknown */
	uint64_t done;
	double t_start, t_last_draw;
	int last_decile;
	bool tty;
	bool drawn;
};

void bn_progress_init(struct bn_progress *p, const char *label, uint64_t total);
void bn_progress_update(struct bn_progress *p, uint64_t done);
/* Prints the final line (size, time, rate) and ends the bar. */
void bn_progress_finish(struct bn_progress *p);

#endif

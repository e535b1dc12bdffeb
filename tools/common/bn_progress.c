/* Terminal bar or periodic log lines (see bn_progress.h). */
#include "bn_progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bn_log.h"
#include "bn_util.h"

void bn_progress_init(struct bn_progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof *p);
	snprintf(p->label, sizeof p->label, "%s", label);
	p->total = total;
	p->tty = isatty(STDERR_FILENO);
	p->t_start = p->t_last_draw = bn_now();
}

static void draw(struct bn_progress *p, double now, bool final)
{
	char done[32], total[32], rate[32];
	double dt = now - p->t_start;
	bn_fmt_bytes(p->done, done, sizeof done);
	bn_fmt_bytes(dt > 0 ? (uint64_t)((double)p->done / dt) : 0, rate, sizeof rate);
	if (p->tty && !final) {
		int width = 30, fill = 0;
		double frac = p->total ? (double)p->done / (double)p->total : 0;
		if (frac > 1)
			frac = 1;
		fill = (int)(frac * width);
		char bar[64];
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(width - fill));
		bar[width] = '\0';
		fprintf(stderr, "\r%s: %s [%s] %3d%% %s/%s %s/s\x1b[K", bn_progname, p->label, bar,
			(int)(frac * 100), done, p->total ? bn_fmt_bytes(p->total, total, sizeof total) : "?",
			rate);
	} else if (final) {
		fprintf(stderr, "%s%s: %s: %s in %.1f s (%s/s)\n", p->tty && p->drawn ? "\r\x1b[K" : "",
			bn_progname, p->label, done, dt, rate);
	} else {
		int pct = p->total ? (int)(100.0 * (double)p->done / (double)p->total) : -1;
		if (pct >= 0)
			fprintf(stderr, "%s: %s: %d%% (%s)\n", bn_progname, p->label, pct, done);
		else
			fprintf(stderr, "%s: %s: %s\n", bn_progname, p->label, done);
	}
	p->drawn = true;
	p->t_last_draw = now;
}

void bn_progress_update(struct bn_progress *p, uint64_t done)
{
	p->done = done;
	if (bn_log_level < BN_LOG_NORMAL)
		return;
	double now = bn_now();
	if (p->tty) {
		if (now - p->t_last_draw >= 0.25)
			draw(p, now, false);
		return;
	}
	int decile = p->total ? (int)(10.0 * (double)done / (double)p->total) : 0;
	if ((p->total && decile > p->last_decile && decile < 10) || now - p->t_last_draw >= 30.0) {
		p->last_decile = decile;
		draw(p, now, false);
	}
}

void bn_progress_finish(struct bn_progress *p)
{
	if (bn_log_level < BN_LOG_NORMAL)
		return;
	draw(p, bn_now(), true);
}

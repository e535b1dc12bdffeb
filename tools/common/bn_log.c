/* Logging, usage errors and the interrupt flag (see bn_log.h). */
#include "bn_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *bn_progname = "bitmake";
int bn_log_level = BN_LOG_NORMAL;
volatile sig_atomic_t bn_interrupted;

void bn_log_init(const char *argv0)
{
	if (argv0 && *argv0) {
		const char *slash = strrchr(argv0, '/');
		bn_progname = slash ? slash + 1 : argv0;
	}
}

static void vlog(const char *tag, const char *fmt, va_list ap)
{
	/* One fprintf per line so parallel writers to the same log do not interleave mid-line. */
	char line[4096];
	int n = vsnprintf(line, sizeof line, fmt, ap);
	if (n < 0)
		return;
	fprintf(stderr, "%s: %s%s\n", bn_progname, tag, line);
}

#define DEFINE_LOG(name, level, tag)              \
	void name(const char *fmt, ...)           \
	{                                         \
		if (bn_log_level < (level))       \
			return;                   \
		va_list ap;                       \
		va_start(ap, fmt);                \
		vlog(tag, fmt, ap);               \
		va_end(ap);                       \
	}

DEFINE_LOG(bn_error, BN_LOG_QUIET, "")
DEFINE_LOG(bn_warn, BN_LOG_NORMAL, "warning: ")
DEFINE_LOG(bn_info, BN_LOG_NORMAL, "")
DEFINE_LOG(bn_verbose, BN_LOG_VERBOSE, "")
DEFINE_LOG(bn_debug, BN_LOG_DEBUG, "debug: ")

int bn_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", bn_progname);
	return 2;
}

static void on_signal(int sig)
{
	if (bn_interrupted == sig) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	bn_interrupted = sig;
}

void bn_catch_interrupts(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

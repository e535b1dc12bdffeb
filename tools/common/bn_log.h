/* Diagnostics on stderr with the program name as prefix, filtered by a global level set from
 * -q/-v.  stdout is reserved for results.  The only process-wide state in the project lives here:
 * the program name, the log level and the interrupt flag. */
#ifndef BN_LOG_H
#define BN_LOG_H

#include <signal.h>

enum bn_log_level {
	BN_LOG_QUIET = 0,   /* errors only */
	BN_LOG_NORMAL = 1,  /* + warnings, progress, summaries */
	BN_LOG_VERBOSE = 2, /* + details */
	BN_LOG_DEBUG = 3,
};

extern const char *bn_progname;
extern int bn_log_level;
/* Set by the SIGINT/SIGTERM handler that bn_catch_interrupts() installs; long loops poll it and
 * unwind (removing their temp files) instead of dying mid-write. */
extern volatile sig_atomic_t bn_interrupted;

/* Sets bn_progname to the basename of argv0. */
void bn_log_init(const char *argv0);

void bn_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bn_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bn_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bn_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "<prog>: <msg>" and "Try '<prog> --help' for more information." and returns 2, the
 * usage-error exit status: `return bn_usage_error("missing REPO_ID");`. */
int bn_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Install SIGINT/SIGTERM/SIGHUP handlers that set bn_interrupted.  A second signal of the same
 * kind restores the default action, so a stuck program can still be killed with two Ctrl+C. */
void bn_catch_interrupts(void);

#endif

/* Error reporting for library code: functions fill a caller-owned struct bn_err and return a
 * negative code; only main() prints and exits.  A message is one line without the program name:
 * "<object>: <what failed>: <why>[; <what to do>]" (see ../shared/docs/style.md, house style). */
#ifndef BN_ERR_H
#define BN_ERR_H

#include <stddef.h>

#define BN_ERR_MSG_MAX 1024

enum bn_errcode {
	BN_OK = 0,
	BN_EINVAL = 1,     /* bad argument or configuration */
	BN_EIO = 2,        /* read/write/open failure */
	BN_EFORMAT = 3,    /* malformed input file */
	BN_ENOMEM = 4,     /* allocation failure */
	BN_ENOSPC = 5,     /* disk full */
	BN_EUNSUPPORTED = 6, /* valid but not supported (type, architecture, ...) */
	BN_ENOENT = 7,     /* file or key not found */
	BN_ERANGE = 8,     /* arithmetic overflow, value out of range */
	BN_EINTR = 9,      /* interrupted by a signal */
	BN_ENET = 10,      /* network failure */
	BN_EAUTH = 11,     /* authentication / authorisation failure */
	BN_EVERIFY = 12,   /* checksum or self-test mismatch */
};

struct bn_err {
	int code;                 /* enum bn_errcode, 0 when no error was recorded */
	char msg[BN_ERR_MSG_MAX]; /* one line, no trailing newline */
};

/* Record an error; returns -code so callers can write `return bn_seterr(err, ...)`.
 * err may be NULL (the message is dropped).  Control characters in the formatted message (a
 * newline in a tensor name read from a file) become '?' here and in the two below. */
int bn_seterr(struct bn_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like bn_seterr, appending ": <strerror(errnum)>" and mapping ENOSPC/EDQUOT to BN_ENOSPC,
 * ENOENT to BN_ENOENT, ENOMEM to BN_ENOMEM, EINTR to BN_EINTR; everything else is BN_EIO. */
int bn_seterrno(struct bn_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the existing message with "<prefix>: " (used to add context when passing errors up). */
int bn_err_prefix(struct bn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void bn_err_clear(struct bn_err *err);

#endif

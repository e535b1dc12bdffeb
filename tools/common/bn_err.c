/* Error reporting helpers: formatting into struct bn_err, errno mapping. */
#include "bn_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages quote names read from files (tensor names, JSON keys), which may hold any byte: a
 * control character becomes '?', so that an error stays one line whatever the input. */
static void one_line(char *msg)
{
	for (unsigned char *c = (unsigned char *)msg; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			*c = '?';
}

int bn_seterr(struct bn_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		one_line(err->msg);
		err->code = code;
	}
	return -code;
}

static int code_from_errno(int errnum)
{
	switch (errnum) {
	case ENOSPC:
#ifdef EDQUOT
	case EDQUOT:
#endif
		return BN_ENOSPC;
	case ENOENT: return BN_ENOENT;
	case ENOMEM: return BN_ENOMEM;
	case EINTR: return BN_EINTR;
	default: return BN_EIO;
	}
}

int bn_seterrno(struct bn_err *err, int errnum, const char *fmt, ...)
{
	int code = code_from_errno(errnum);
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		size_t n = strlen(err->msg);
		const char *why = strerror(errnum);
		if (n + 2 < sizeof err->msg) {
			memcpy(err->msg + n, ": ", 2);
			size_t room = sizeof err->msg - n - 3, wl = strlen(why);
			memcpy(err->msg + n + 2, why, wl < room ? wl : room);
			err->msg[n + 2 + (wl < room ? wl : room)] = '\0';
		}
		one_line(err->msg);
		err->code = code;
	}
	return -code;
}

int bn_err_prefix(struct bn_err *err, const char *fmt, ...)
{
	if (!err)
		return -BN_EINVAL;
	char prefix[BN_ERR_MSG_MAX];
	char old[BN_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	/* Truncation is fine here: the message stays one line, its end is the least useful part. */
	int n = snprintf(err->msg, sizeof err->msg, "%.*s: ", (int)(sizeof err->msg / 2), prefix);
	snprintf(err->msg + n, sizeof err->msg - (size_t)n, "%.*s", (int)(sizeof err->msg / 2 - 3), old);
	one_line(err->msg);
	return -(err->code ? err->code : BN_EINVAL);
}

void bn_err_clear(struct bn_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

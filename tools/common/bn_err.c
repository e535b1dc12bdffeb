/* Error reporting helpers: formatting into struct bn_err, errno mapping. */
#include "bn_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int bn_seterr(struct bn_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
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
		int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < sizeof err->msg)
			snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
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
	snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
	return -(err->code ? err->code : BN_EINVAL);
}

void bn_err_clear(struct bn_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

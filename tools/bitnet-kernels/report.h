/* bitnet-kernels reports: what this machine and build offer (--info) and the self-tests of every
 * kernel set the CPU can run (--self-test).  Results go to stdout. */
#ifndef BK_REPORT_H
#define BK_REPORT_H

#include "bn_err.h"
#include "kernels.h"

/* Prints CPU, features, the compiled sets, the selected set and its kernel per format, threads. */
int bk_info(const struct kern_opts *opts, struct bn_err *err);
/* Self-tests `isa` (or, when NULL, every compiled set this CPU supports); one line per set. */
int bk_self_test(const char *isa, struct bn_err *err);

#endif

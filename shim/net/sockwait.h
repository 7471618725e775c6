/* Waiting for a socket within a deadline, on the monotonic clock. */
#ifndef BW_SOCKWAIT_H
#define BW_SOCKWAIT_H

#include <stdint.h>

enum bw_restart {
	BW_RESTART_NEVER,        /* a handler always ends the wait (the kernel's rule for a
				  * call on a socket with its own timeout) */
	BW_RESTART_SA,           /* a handler ends it unless it was installed with SA_RESTART */
	BW_RESTART_ALWAYS        /* signals never end it */
};

/* Wait until fd is writable or until the absolute monotonic time `until_us` (0: no limit).
 * Returns 0 when ready, ETIMEDOUT, or EINTR when a signal handler ran that, by `restart`,
 * ends the call. */
int bw_wait_writable(int fd, int64_t until_us, enum bw_restart restart);

#endif

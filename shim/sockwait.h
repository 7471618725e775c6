/* Waiting for a socket within a deadline, on the monotonic clock. */
#ifndef BW_SOCKWAIT_H
#define BW_SOCKWAIT_H

#include <stdint.h>

/* Wait until fd is writable or until the absolute monotonic time `until_us` (0: no limit).
 * Signals do not cut the wait short. Returns 0 when ready, ETIMEDOUT otherwise. */
int bw_wait_writable(int fd, int64_t until_us);

#endif

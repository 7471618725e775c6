/* poll() is never restarted after a signal, even with SA_RESTART: loop on EINTR against a
 * deadline computed once, so a stream of signals cannot stretch or shorten the wait. */
#include <errno.h>
#include <poll.h>
#include "sockwait.h"
#include "state.h"

int bw_wait_writable(int fd, int64_t until_us)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	for (;;) {
		int ms = -1;
		if (until_us) {
			int64_t left = until_us - bw_mono_us();
			if (left <= 0)
				return ETIMEDOUT;
			ms = (int)((left + 999) / 1000);
		}
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n == 0 && until_us)
			continue;    /* rounding: re-check the clock */
		if (n < 0 && errno != EINTR)
			return 0;    /* let SO_ERROR tell what is wrong */
	}
}

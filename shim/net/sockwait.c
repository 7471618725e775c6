/* poll() is never restarted after a signal, even with SA_RESTART: loop on EINTR against a
 * deadline computed once, so a stream of signals cannot stretch or shorten the wait, and
 * decide ourselves, as the kernel would for the program's own call, whether the handler
 * that ran ends it. */
#include <errno.h>
#include <poll.h>
#include "sigrestart.h"
#include "sockwait.h"
#include "state.h"

int bw_wait_writable(int fd, int64_t until_us, enum bw_restart restart)
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
		if (n < 0 && errno == EINTR) {
			if (restart == BW_RESTART_NEVER ||
			    (restart == BW_RESTART_SA && !bw_sig_restarts()))
				return EINTR;
			continue;
		}
		if (n < 0)
			return 0;    /* let the next connect tell what is wrong */
	}
}

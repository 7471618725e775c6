/* See sigrestart.h. */
#include <errno.h>
#include <signal.h>
#include "sigrestart.h"

int bw_sig_restarts(void)
{
	int saved = errno;
	int all = 1;
	for (int s = 1; s < NSIG && all; s++) {
		struct sigaction sa;
		/* glibc refuses the signals it keeps for itself: they have no program handler */
		if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) != 0)
			continue;
		if (!(sa.sa_flags & SA_SIGINFO) &&
		    (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
			continue;
		if (!(sa.sa_flags & SA_RESTART))
			all = 0;
	}
	errno = saved;
	return all;
}

/* Socket options the library watches: the program's own SO_RCVTIMEO/SO_SNDTIMEO (which
 * keep their meaning over a policy's timeouts, and read back as the program set them),
 * and SO_ERROR, where a connect left to finish on its own reports its outcome. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "fdtable.h"
#include "hook.h"
#include "match.h"
#include "hold.h"
#include "overdue.h"
#include "pending.h"
#include "real.h"
#include "state.h"

static int is_timeo(int level, int name)
{
	return level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO);
}

BW_HOOK int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int rc = BW_REAL(setsockopt)(fd, level, name, val, len);
	if (rc == 0 && is_timeo(level, name) && bw_tracking() && val &&
	    len >= sizeof(struct timeval)) {
		struct bw_fdinfo fi;
		bw_fd_get(fd, &fi);
		if (fi.kind == BW_FD_SOCKET) {
			const struct timeval *tv = val;
			int set = tv->tv_sec != 0 || tv->tv_usec != 0;
			if (name == SO_RCVTIMEO)
				fi.app_rcvtimeo = set;
			else
				fi.app_sndtimeo = set;
			/* cleared by the program: the policy's timeout is set anew on next use,
			 * and the ones still ours stay hidden meanwhile */
			if (!set && fi.timeouts)
				fi.io_known = 0;
			bw_fd_put(fd, &fi);
		}
	}
	return rc;
}

/* SO_ERROR reads 0 while the handshake is still under way, too. */
static int still_connecting(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	return BW_REAL(getsockopt)(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       (ti.tcpi_state == TCP_SYN_SENT || ti.tcpi_state == TCP_SYN_RECV);
}

static void record_connect_outcome(int fd, int soerr)
{
	struct bw_engine *e = bw_engine_for(BW_OP_CONNECT);
	struct bw_pending p;
	if (!e || !bw_pending_take(fd, &p))
		return;
	int saved = errno;
	bw_pending_resume(&p);
	if (soerr == 0 && p.addr.ss_family != AF_UNIX && still_connecting(fd)) {
		bw_pending_add(fd, p.rule, (struct sockaddr *)&p.addr, p.len, p.started,
			       p.admitted);
		errno = saved;
		return;
	}
	char dest[BW_DEST_NAME_MAX];
	bw_format_sockaddr((struct sockaddr *)&p.addr, p.len, dest, sizeof dest);
	struct bw_call c = { .rule = p.rule, .op = BW_OP_CONNECT, .call = "connect", .dest = dest,
			     .fd = fd, .key = bw_key_sockaddr((struct sockaddr *)&p.addr, p.len),
			     .confirm_later = p.rule->breaker.enabled };
	bw_attempt_injected = 0;
	c.started = p.started;
	c.admitted = p.admitted;
	bw_engine_outcome(e, &c, soerr);
	if (soerr == 0 && c.confirm_later) {
		bw_fd_watch(fd, bw_engine_rule_no(e, p.rule), c.slow, c.began);
		if (bw_engine_slow_timed(p.rule))
			bw_overdue_add(fd);
	} else if (soerr)
		bw_hold_fail(fd);       /* the connection it held a slot for failed */
	errno = saved;
}

BW_HOOK int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	int rc = BW_REAL(getsockopt)(fd, level, name, val, len);
	if (rc != 0 || !val || !len || !bw_tracking())
		return rc;
	if (level == SOL_SOCKET && name == SO_ERROR && bw_pending_any() &&
	    *len >= sizeof(int))
		record_connect_outcome(fd, *(int *)val);
	if (is_timeo(level, name) && *len >= sizeof(struct timeval)) {
		struct bw_fdinfo fi;
		bw_fd_get(fd, &fi);
		int app = name == SO_RCVTIMEO ? fi.app_rcvtimeo : fi.app_sndtimeo;
		if (fi.kind == BW_FD_SOCKET && fi.timeouts && !app)
			memset(val, 0, sizeof(struct timeval));   /* ours, not the program's */
	}
	return rc;
}

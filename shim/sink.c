/* Event sinks. Every write is one write(2) of a whole line (< PIPE_BUF), through the real
 * function, so processes can share a file and our logging never enters our own hooks. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "decimal.h"
#include "events.h"
#include "clock.h"
#include "real.h"
#include "sink.h"

/* Our descriptors live high, out of the way of programs that assume small numbers. */
#define SINK_MIN_FD 100

static struct {
	enum bw_sink_kind kind;
	int fd;                  /* file or syslog socket; -1 none */
	int inflight;            /* writers between loading fd and finishing write */
	int stderr_ok;
	dev_t err_dev;
	ino_t err_ino;
	int facility;
} sink = { BW_SINK_STDERR, -1, 0, 0, 0, 0, LOG_USER };

static int move_high(int fd)
{
	int hi = BW_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, SINK_MIN_FD);
	if (hi < 0)
		return fd;
	BW_REAL(close)(fd);
	return hi;
}

#define SYSLOG_PATH "/dev/log"

/* The syslog socket, or -1 with why (no syslog daemon: ENOENT or ECONNREFUSED). */
static int open_syslog(char *why, size_t cap)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = SYSLOG_PATH };
	int fd = BW_REAL(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || BW_REAL(connect)(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		snprintf(why, cap, "%s", strerror(errno));
		if (fd >= 0)
			BW_REAL(close)(fd);
		return -1;
	}
	return move_high(fd);
}

static void watch_stderr(void)
{
	struct stat st;
	/* a socket on fd 2 is a protocol channel (inetd, ssh): keep out of it */
	sink.stderr_ok = fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode);
	sink.err_dev = st.st_dev;
	sink.err_ino = st.st_ino;
}

/* The log file, opened so that whoever else can create its path (another user in /tmp)
 * can neither redirect our writes (a symbolic link, a hard link to a file of root's, a
 * file of theirs) nor hang every process of the run in its constructor (a FIFO with no
 * reader): no link followed, never blocking, and only a regular file of the user's or
 * root's with no other name. Its descriptor, or -1 with why. */
static int open_file(const char *path, char *why, size_t cap)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW |
		      O_NONBLOCK, 0600);
	if (fd < 0) {
		int err = errno;
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(why, cap, "it is a symbolic link");
		else if (err == ENXIO)
			snprintf(why, cap, "it is not a regular file (a FIFO or socket)");
		else
			snprintf(why, cap, "%s", strerror(err));
		return -1;
	}
	why[0] = '\0';
	if (fstat(fd, &st) < 0)
		snprintf(why, cap, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, cap, "it is not a regular file");
	else if (st.st_uid != geteuid() && st.st_uid != 0)
		snprintf(why, cap, "it belongs to another user (uid %u)", (unsigned)st.st_uid);
	else if (st.st_nlink > 1)
		snprintf(why, cap, "it has other hard links");
	if (why[0]) {
		BW_REAL(close)(fd);
		return -1;
	}
	return fd;
}

/* One config_error event on stderr: the file or socket and why it is not written. */
static void refused(const char *what, const char *path, const char *why)
{
	char msg[384], extra[PATH_MAX + 32], line[BW_EVENT_MAX];
	size_t n = 0;
	snprintf(msg, sizeof msg, "log: cannot write events to %s: %s; they go to standard "
		 "error instead", what, why);
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"file\":");
	bw_json_str(extra, sizeof extra, &n, path);
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_CONFIG_ERROR, BW_LVL_ERROR);
	ev.msg = msg;
	ev.extra = extra;
	struct bw_event_ctx ctx = { bw_clock_us(CLOCK_REALTIME),
				    (long)getpid(), (long)syscall(SYS_gettid),
				    program_invocation_short_name };
	size_t len = bw_event_format(line, sizeof line, &ctx, &ev);
	if (sink.stderr_ok)
		BW_REAL(write)(2, line, len);
}

int bw_sink_open(enum bw_sink_kind kind, const char *path, int facility)
{
	int saved = errno, fd = -1;
	char why[256];
	sink.kind = kind;
	sink.facility = facility;
	switch (kind) {
	case BW_SINK_STDERR:
		watch_stderr();
		break;
	case BW_SINK_FILE:
		fd = open_file(path, why, sizeof why);
		if (fd >= 0) {
			fd = move_high(fd);
		} else {
			/* where events go by default, rather than nowhere */
			sink.kind = BW_SINK_STDERR;
			watch_stderr();
			refused("this file", path, why);
		}
		break;
	case BW_SINK_SYSLOG:
		/* no syslog daemon (a container, a minimal image): rather than vanish, events
		 * go where they go by default, and say so once */
		fd = open_syslog(why, sizeof why);
		if (fd < 0) {
			sink.kind = BW_SINK_STDERR;
			watch_stderr();
			refused("syslog", SYSLOG_PATH, why);
		}
		break;
	}
	/* opened twice when a bad environment setting was reported through the sink
	 * first: the earlier descriptor is ours to close, once its writers are done */
	int old = __atomic_exchange_n(&sink.fd, fd, __ATOMIC_ACQ_REL);
	if (old >= 0 && old != fd) {
		for (int i = 0; i < 1000000 && __atomic_load_n(&sink.inflight, __ATOMIC_ACQUIRE);
		     i++)
			;
		BW_REAL(close)(old);
	}
	errno = saved;
	return (sink.kind == BW_SINK_STDERR ? sink.stderr_ok : fd >= 0) ? 0 : -1;
}

/* fd 2 still the file it was when we started? Programs reopen stderr, daemons close it. */
static int stderr_same(void)
{
	struct stat st;
	return __atomic_load_n(&sink.stderr_ok, __ATOMIC_ACQUIRE) && fstat(2, &st) == 0 &&
	       st.st_dev == sink.err_dev && st.st_ino == sink.err_ino;
}

static void send_syslog(int fd, enum bw_level lvl, const char *line, size_t len)
{
	static const int sev[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[4200];
	int pri = sink.facility | sev[lvl];
	size_t o = 0;
	msg[o++] = '<';
	o += bw_decimal(msg + o, (uint64_t)pri);
	static const char ident[] = ">bulwark: ";
	memcpy(msg + o, ident, sizeof ident - 1);
	o += sizeof ident - 1;
	if (len && line[len - 1] == '\n')
		len--;
	if (len > sizeof msg - o)
		len = sizeof msg - o;
	memcpy(msg + o, line, len);
	BW_REAL(sendto)(fd, msg, o + len, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
}

void bw_sink_write(enum bw_level lvl, const char *line, size_t len)
{
	int saved = errno;
	if (sink.kind == BW_SINK_STDERR) {
		if (stderr_same())
			BW_REAL(write)(2, line, len);
		errno = saved;
		return;
	}
	__atomic_add_fetch(&sink.inflight, 1, __ATOMIC_ACQ_REL);
	int fd = __atomic_load_n(&sink.fd, __ATOMIC_ACQUIRE);
	if (fd >= 0) {
		if (sink.kind == BW_SINK_SYSLOG)
			send_syslog(fd, lvl, line, len);
		else
			BW_REAL(write)(fd, line, len);
	}
	__atomic_sub_fetch(&sink.inflight, 1, __ATOMIC_ACQ_REL);
	errno = saved;
}

enum bw_sink_kind bw_sink_kind(void)
{
	return sink.kind;
}

int bw_sink_owns(int fd)
{
	return fd >= 0 && fd == __atomic_load_n(&sink.fd, __ATOMIC_ACQUIRE);
}

int bw_sink_fd(void)
{
	return __atomic_load_n(&sink.fd, __ATOMIC_ACQUIRE);
}

void bw_sink_evict(int fd)
{
	if (!bw_sink_owns(fd))
		return;
	int saved = errno;
	int hi = BW_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, fd + 1);
	__atomic_store_n(&sink.fd, hi, __ATOMIC_RELEASE);
	/* let writers that still hold the old number finish before it is replaced; bounded,
	 * since a writer we interrupted (signal handler) cannot finish */
	for (int i = 0; i < 1000000 && __atomic_load_n(&sink.inflight, __ATOMIC_ACQUIRE); i++)
		;
	errno = saved;
}

void bw_sink_after_fork(void)
{
	__atomic_store_n(&sink.inflight, 0, __ATOMIC_RELEASE);
}

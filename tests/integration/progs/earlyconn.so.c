/* A library that connects from its own constructor, to check that bulwark's hooks work
 * before bulwark's constructor has run (docs/design.md, H1). Loaded as
 * LD_PRELOAD="libbulwark.so:earlyconn.so", its constructor runs first (preload
 * constructors run in reverse order) while its connect() still binds to bulwark's hook
 * (symbol lookup follows load order).
 *
 * Environment: EARLY_PORT (an echo server on 127.0.0.1, possibly late), EARLY_OUT (a
 * file that gets "OK" or "FAIL <reason>"). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *out, const char *what, int err)
{
	char line[256];
	int n = err ? snprintf(line, sizeof line, "FAIL %s: %s\n", what, strerror(err))
		    : snprintf(line, sizeof line, "OK\n");
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (n > 0 && write(fd, line, (size_t)n) < 0) { /* the test sees a missing result */ }
	close(fd);
}

__attribute__((constructor)) static void early_connect(void)
{
	const char *port = getenv("EARLY_PORT"), *out = getenv("EARLY_OUT");
	if (!port || !out)
		return;
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)atoi(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report(out, "socket", errno);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(fd);
		return report(out, "connect", e);
	}
	char buf[4];
	if (send(fd, "ping", 4, 0) != 4 || recv(fd, buf, 4, MSG_WAITALL) != 4 ||
	    memcmp(buf, "ping", 4) != 0) {
		int e = errno ? errno : EIO;
		close(fd);
		return report(out, "echo", e);
	}
	close(fd);
	report(out, "", 0);
}

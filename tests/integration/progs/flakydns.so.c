/* A test-only preload that makes name resolution flaky on purpose: the first N lookups
 * fail with a temporary error, later ones go to the real resolver. Placed after bulwark
 * in LD_PRELOAD ("libbulwark.so:flakydns.so") it sits between bulwark's hooks and libc, so
 * bulwark's resolve retry meets the failures a real DNS outage would produce.
 *
 * Environment:
 *   FLAKYDNS_FAILS  how many lookups fail, per function, per process (default 0)
 *   FLAKYDNS_HOST   only lookups of this exact name are affected (default: all)
 *   FLAKYDNS_ERR    AGAIN (default: EAI_AGAIN / TRY_AGAIN) or NONAME (EAI_NONAME /
 *                   HOST_NOT_FOUND, which must never be retried)
 *   FLAKYDNS_LOG    a file that gets one line per affected lookup: "FUNC NAME fail|pass"
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { F_GAI, F_GHBN, F_GHBN2, F_GHBNR, F_COUNT };
static const char *const fname[F_COUNT] = {
	"getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r"
};
static long calls[F_COUNT];

static void *real(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p) {
		/* Never call through NULL: a broken test setup should say so and stop. */
		static const char msg[] = "flakydns: real function not found\n";
		if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
		_exit(99);
	}
	return p;
}

static void note(int f, const char *name, int failed)
{
	const char *path = getenv("FLAKYDNS_LOG");
	if (!path || !*path)
		return;
	char line[512];
	int n = snprintf(line, sizeof line, "%s %s %s\n", fname[f], name ? name : "(null)",
			 failed ? "fail" : "pass");
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (n > 0 && write(fd, line, (size_t)n) < 0) { /* a lost note only weakens the test */ }
	close(fd);
}

/* Whether this lookup should fail: the first FLAKYDNS_FAILS matching calls do. */
static int flaky(int f, const char *name)
{
	const char *host = getenv("FLAKYDNS_HOST");
	if (host && *host && (!name || strcmp(host, name) != 0))
		return -1;   /* not ours: no note either */
	const char *fails = getenv("FLAKYDNS_FAILS");
	long n = fails ? atol(fails) : 0;
	long k = __atomic_fetch_add(&calls[f], 1, __ATOMIC_SEQ_CST);
	int failed = k < n;
	note(f, name, failed);
	return failed;
}

static int noname(void)
{
	const char *e = getenv("FLAKYDNS_ERR");
	return e && strcmp(e, "NONAME") == 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	int (*next)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
		real("getaddrinfo");
	if (flaky(F_GAI, node) == 1)
		return noname() ? EAI_NONAME : EAI_AGAIN;
	return next(node, service, hints, res);
}

struct hostent *gethostbyname(const char *name)
{
	struct hostent *(*next)(const char *) = real("gethostbyname");
	if (flaky(F_GHBN, name) == 1) {
		h_errno = noname() ? HOST_NOT_FOUND : TRY_AGAIN;
		return NULL;
	}
	return next(name);
}

struct hostent *gethostbyname2(const char *name, int af)
{
	struct hostent *(*next)(const char *, int) = real("gethostbyname2");
	if (flaky(F_GHBN2, name) == 1) {
		h_errno = noname() ? HOST_NOT_FOUND : TRY_AGAIN;
		return NULL;
	}
	return next(name, af);
}

int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
		    struct hostent **result, int *h_errnop)
{
	int (*next)(const char *, struct hostent *, char *, size_t, struct hostent **, int *) =
		real("gethostbyname_r");
	if (flaky(F_GHBNR, name) == 1) {
		/* glibc's shape of a temporary failure: EAGAIN returned, TRY_AGAIN in h_errno. */
		*result = NULL;
		if (noname()) {
			*h_errnop = HOST_NOT_FOUND;
			return 0;
		}
		*h_errnop = TRY_AGAIN;
		return EAGAIN;
	}
	return next(name, ret, buf, buflen, result, h_errnop);
}

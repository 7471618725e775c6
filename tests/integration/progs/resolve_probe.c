/* Every output of the resolver calls, printed, so that a lookup that met a real failure can
 * be compared with one that bulwark failed (a refusal or an injected fault). Outputs start
 * as sentinels: a result pointer the call left alone prints as "untouched".
 *
 * usage: resolve_probe NAME CALL...
 *   CALL  getaddrinfo gethostbyname gethostbyname2 gethostbyname_r; the calls are made
 *         in this order, in this one process.
 * One line per call, then "done". The contents of gethostbyname_r's hostent and buffer
 * are not shown: glibc leaves them unspecified on a failure. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static char sentinel;
#define UNTOUCHED ((void *)&sentinel)

static const char *ename(int e)
{
	static char buf[16];
	switch (e) {
	case 0: return "0";
	case EDOM: return "EDOM(untouched)";
	case EAGAIN: return "EAGAIN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENOMEM: return "ENOMEM";
	case ENOENT: return "ENOENT";
	case ERANGE: return "ERANGE";
	}
	snprintf(buf, sizeof buf, "%d", e);
	return buf;
}

static const char *eainame(int rc)
{
	static char buf[16];
	switch (rc) {
	case 0: return "0";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_NODATA: return "EAI_NODATA";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_MEMORY: return "EAI_MEMORY";
	}
	snprintf(buf, sizeof buf, "%d", rc);
	return buf;
}

static const char *hname(int h)
{
	static char buf[16];
	switch (h) {
	case -5: return "untouched";
	case TRY_AGAIN: return "TRY_AGAIN";
	case HOST_NOT_FOUND: return "HOST_NOT_FOUND";
	case NO_DATA: return "NO_DATA";
	case NO_RECOVERY: return "NO_RECOVERY";
	case NETDB_INTERNAL: return "NETDB_INTERNAL";
	case 0: return "0";
	}
	snprintf(buf, sizeof buf, "%d", h);
	return buf;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: resolve_probe NAME CALL...\n");
		return 2;
	}
	const char *name = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *call = argv[i];
		h_errno = -5;
		errno = EDOM;
		if (!strcmp(call, "getaddrinfo")) {
			struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
			struct addrinfo *res = UNTOUCHED;
			int rc = getaddrinfo(name, "80", &hints, &res);
			int err = errno;
			printf("getaddrinfo rc=%s errno=%s res=%s\n", eainame(rc), ename(err),
			       res == UNTOUCHED ? "untouched" : !res ? "NULL" : "list");
			if (rc == 0 && res && res != UNTOUCHED)
				freeaddrinfo(res);
		} else if (!strcmp(call, "gethostbyname") || !strcmp(call, "gethostbyname2")) {
			struct hostent *he = call[13] ? gethostbyname2(name, AF_INET)
						      : gethostbyname(name);
			int err = errno, herr = h_errno;
			printf("%s ret=%s h_errno=%s errno=%s\n", call, he ? "hostent" : "NULL",
			       hname(herr), ename(err));
		} else if (!strcmp(call, "gethostbyname_r")) {
			struct hostent ret, *result = UNTOUCHED;
			char buf[2048];
			int herr = -5;
			int rc = gethostbyname_r(name, &ret, buf, sizeof buf, &result, &herr);
			int err = errno, global = h_errno;
			printf("gethostbyname_r rc=%s errno=%s result=%s h_errnop=%s\n", ename(rc),
			       ename(err), result == UNTOUCHED ? "untouched" : !result ? "NULL"
			       : result == &ret ? "ret" : "other", hname(herr));
			(void)global;
		} else {
			fprintf(stderr, "unknown call %s\n", call);
			return 2;
		}
		fflush(stdout);
	}
	printf("done\n");
	return 0;
}

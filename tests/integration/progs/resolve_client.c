/* Resolve one name through the chosen libc entry point, as a program would.
 *
 * usage: resolve_client getaddrinfo|gethostbyname|gethostbyname2|gethostbyname_r NAME
 * Prints "OK ADDRESS" and exits 0, or "FAIL REASON" and exits 1. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int show(const struct hostent *h, int herr)
{
	if (!h || !h->h_addr_list[0]) {
		printf("FAIL h_errno=%s\n", herr == TRY_AGAIN ? "TRY_AGAIN" :
		       herr == HOST_NOT_FOUND ? "HOST_NOT_FOUND" : "other");
		return 1;
	}
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(h->h_addrtype, h->h_addr_list[0], buf, sizeof buf);
	printf("OK %s\n", buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s FUNCTION NAME\n", argv[0]);
		return 2;
	}
	const char *fn = argv[1], *name = argv[2];
	if (strcmp(fn, "getaddrinfo") == 0) {
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
		int rc = getaddrinfo(name, "80", &hints, &res);
		if (rc != 0) {
			printf("FAIL %s\n", rc == EAI_AGAIN ? "EAI_AGAIN" :
			       rc == EAI_NONAME ? "EAI_NONAME" : gai_strerror(rc));
			return 1;
		}
		char buf[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof buf);
		printf("OK %s\n", buf);
		freeaddrinfo(res);
		return 0;
	}
	if (strcmp(fn, "gethostbyname") == 0) {
		struct hostent *h = gethostbyname(name);
		return show(h, h_errno);
	}
	if (strcmp(fn, "gethostbyname2") == 0) {
		struct hostent *h = gethostbyname2(name, AF_INET);
		return show(h, h_errno);
	}
	if (strcmp(fn, "gethostbyname_r") == 0) {
		struct hostent he, *h = NULL;
		char buf[4096];
		int herr = 0;
		int rc = gethostbyname_r(name, &he, buf, sizeof buf, &h, &herr);
		if (rc != 0 && !h)
			herr = herr ? herr : TRY_AGAIN;
		return show(h, herr);
	}
	fprintf(stderr, "unknown function %s\n", fn);
	return 2;
}

/* What a program in secure-execution mode (setuid) sees, for the secure-mode test.
 *
 * usage: secure_probe PORT [LIB]
 * Prints, on stdout:
 *   secure N            getauxval(AT_SECURE)
 *   bulwark env hidden|visible
 *                       whether any BULWARK_* variable is visible to secure_getenv(3),
 *                       the way the library reads its environment
 *   preloaded yes|no    whether a libbulwark is mapped into the process at start
 *   dlopen ok|FAILED    only with LIB: LIB was loaded with dlopen(3), and the connect
 *                       below is LIB's own exported connect (its hook), called directly;
 *                       this reaches the library's code even where the loader refuses
 *                       LD_PRELOAD, as it does for a setuid program
 *   connect rc=RC errno=NAME
 *                       a connect to 127.0.0.1:PORT (where nothing listens)
 * and on stderr "environ BULWARK_*: N" and "euid E ruid R": the plain getenv(3) view
 * (a setuid program does have those variables in its environment) and its ids, for the
 * test to check what it set up. Exit 0. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

static const char *const names[] = { "BULWARK_CONFIG", "BULWARK_LOG", "BULWARK_LEVEL",
				     "BULWARK_MODE", "BULWARK_SEED", "BULWARK_DISABLE" };

static int found_lib(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	if (info->dlpi_name && strstr(info->dlpi_name, "libbulwark"))
		*(int *)data = 1;
	return 0;
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT [LIB]\n", argv[0]);
		return 2;
	}
	int visible = 0, in_environ = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		visible |= secure_getenv(names[i]) != NULL;
	for (char **e = environ; *e; e++)
		in_environ += strncmp(*e, "BULWARK_", 8) == 0;
	int preloaded = 0;
	dl_iterate_phdr(found_lib, &preloaded);

	printf("secure %lu\n", getauxval(AT_SECURE));
	printf("bulwark env %s\n", visible ? "visible" : "hidden");
	printf("preloaded %s\n", preloaded ? "yes" : "no");
	fprintf(stderr, "environ BULWARK_*: %d\neuid %d ruid %d\n", in_environ, (int)geteuid(),
		(int)getuid());

	int (*conn)(int, const struct sockaddr *, socklen_t) = connect;
	if (argc > 2) {
		void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
		void *sym = h ? dlsym(h, "connect") : NULL;
		printf("dlopen %s\n", sym ? "ok" : "FAILED");
		if (!sym)
			fprintf(stderr, "dlopen %s: %s\n", argv[2], dlerror());
		else
			memcpy(&conn, &sym, sizeof sym);
	}

	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	errno = 0;
	int rc = conn(fd, (struct sockaddr *)&a, sizeof a);
	printf("connect rc=%d errno=%s\n", rc, ename(rc < 0 ? errno : 0));
	close(fd);
	return 0;
}

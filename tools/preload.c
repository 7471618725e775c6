/* Where libbulwark.so is, and how it goes into LD_PRELOAD. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "paths.h"
#include "run.h"

/* ld.so splits LD_PRELOAD at these; a path holding one cannot be preloaded. */
#define PRELOAD_SEPARATORS " :"

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int usable(const char *path)
{
	if (strpbrk(path, PRELOAD_SEPARATORS)) {
		fprintf(stderr, "bulwark: %s: LD_PRELOAD cannot carry a path with a space or ':'; "
			"set BULWARK_LIB to a path without them (a symbolic link will do)\n", path);
		return 0;
	}
	return 1;
}

static int from_env(const char *lib, char *out, size_t cap)
{
	/* Made absolute but not resolved, so a symbolic link chosen to avoid a space in the
	 * real path survives. */
	errno = 0;
	if (bw_abs_path(lib, out, cap) < 0 || !is_file(out)) {
		fprintf(stderr, "bulwark: BULWARK_LIB=%s: %s\n", lib,
			errno ? strerror(errno) : "not a regular file");
		return -1;
	}
	return usable(out) ? 0 : -1;
}

int bw_find_library(char *out, size_t cap)
{
	const char *env = getenv("BULWARK_LIB");
	if (env && *env)
		return from_env(env, out, cap);

	char exe[PATH_MAX], beside[PATH_MAX + 32], installed[PATH_MAX + 32];
	if (!realpath("/proc/self/exe", exe)) {
		fprintf(stderr, "bulwark: cannot find %s: /proc/self/exe: %s; set BULWARK_LIB to "
			"its path\n", BW_LIB_NAME, strerror(errno));
		return -1;
	}
	*strrchr(exe, '/') = '\0';
	snprintf(beside, sizeof beside, "%s/%s", exe, BW_LIB_NAME);
	snprintf(installed, sizeof installed, "%s/../lib/%s", exe, BW_LIB_NAME);
	const char *tries[] = { beside, installed };
	for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		/* realpath also tidies "bin/../lib" into the path an operator would write. */
		if (is_file(tries[i]) && realpath(tries[i], out) && strlen(out) < cap)
			return usable(out) ? 0 : -1;
	}
	fprintf(stderr, "bulwark: cannot find %s: tried %s and %s; set BULWARK_LIB to its path\n",
		BW_LIB_NAME, beside, installed);
	return -1;
}

/* Same file under another spelling (relative, through a link) counts as the same entry. */
static int same_file(const char *a, const char *b, const struct stat *bst)
{
	struct stat ast;
	if (strcmp(a, b) == 0)
		return 1;
	return bst && stat(a, &ast) == 0 && ast.st_dev == bst->st_dev && ast.st_ino == bst->st_ino;
}

char *bw_preload_list(const char *lib, const char *old)
{
	struct stat lst;
	const struct stat *lp = stat(lib, &lst) == 0 ? &lst : NULL;
	size_t cap = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	strcpy(out, lib);
	size_t len = strlen(out);
	for (const char *p = old ? old : ""; *p;) {
		size_t n = strcspn(p, PRELOAD_SEPARATORS);
		if (n > 0) {
			char entry[PATH_MAX];
			snprintf(entry, sizeof entry, "%.*s", (int)n, p);
			if (n >= sizeof entry || !same_file(entry, lib, lp)) {
				out[len++] = ':';
				memcpy(out + len, p, n);
				len += n;
				out[len] = '\0';
			}
		}
		p += n;
		p += strspn(p, PRELOAD_SEPARATORS);
	}
	return out;
}

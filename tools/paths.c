/* File names as a shell would treat them: made absolute, or searched along $PATH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "paths.h"

/* Appends one component, dropping "." and empty ones; ".." is kept because only the
 * kernel knows what it means once a symbolic link is on the way. */
static int append_component(char *out, size_t cap, size_t *len, const char *c, size_t n)
{
	if (n == 0 || (n == 1 && c[0] == '.'))
		return 0;
	int slash = !(*len > 0 && out[*len - 1] == '/');
	if (*len + slash + n + 1 > cap)
		return -1;
	if (slash)
		out[(*len)++] = '/';
	memcpy(out + *len, c, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

static int append_path(char *out, size_t cap, size_t *len, const char *p)
{
	while (*p) {
		size_t n = strcspn(p, "/");
		if (append_component(out, cap, len, p, n) < 0)
			return -1;
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

int bw_abs_path(const char *path, char *out, size_t cap)
{
	size_t len = 1;
	if (cap < 2)
		return -1;
	strcpy(out, "/");
	if (path[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (!cwd)
			return -1;
		int rc = append_path(out, cap, &len, cwd);
		free(cwd);
		if (rc < 0)
			return -1;
	}
	return append_path(out, cap, &len, path);
}

static int is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int bw_path_search(const char *cmd, char *out, size_t cap)
{
	if (strchr(cmd, '/')) {
		if ((size_t)snprintf(out, cap, "%s", cmd) >= cap)
			return -1;
		return access(cmd, F_OK) == 0 ? 0 : -1;
	}
	/* glibc's execvp searches this when PATH is unset. */
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	while (1) {
		size_t n = strcspn(path, ":");
		/* An empty element means the working directory, as in a shell. */
		int len = n ? snprintf(out, cap, "%.*s/%s", (int)n, path, cmd)
			    : snprintf(out, cap, "%s", cmd);
		if (len > 0 && (size_t)len < cap && is_executable_file(out))
			return 0;
		if (path[n] == '\0')
			return -1;
		path += n + 1;
	}
}

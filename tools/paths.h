/* File names as a shell would treat them: made absolute, or searched along $PATH. */
#ifndef BW_PATHS_H
#define BW_PATHS_H

#include <stddef.h>

/* path made absolute against the working directory, without resolving symbolic links (a
 * policy or log behind a symlink that is later repointed keeps working). 0, or -1 when
 * the result would not fit or the working directory is unknown. */
int bw_abs_path(const char *path, char *out, size_t cap);

/* The file execvp(3) would run for cmd: cmd itself when it has a '/', else the first
 * executable regular file along $PATH. 0 when found, else -1. */
int bw_path_search(const char *cmd, char *out, size_t cap);

#endif

/* The pieces of `bulwark run`: finding the library, LD_PRELOAD, running the command. */
#ifndef BW_RUN_H
#define BW_RUN_H

#include <stddef.h>

#define BW_LIB_NAME "libbulwark.so"

/* The absolute path of libbulwark.so: $BULWARK_LIB, else beside the real path of this
 * program (the build/ layout), else ../lib beside it (the installed layout). On failure
 * a message naming what was tried has been printed, and -1 is returned. */
int bw_find_library(char *out, size_t cap);

/* LD_PRELOAD with lib first and only once, the other entries kept in their order
 * (old may be NULL). malloc'ed. */
char *bw_preload_list(const char *lib, const char *old);

/* Runs argv[0] found along $PATH, forwarding the usual termination signals, and returns
 * the exit status a shell would report: the command's, 128+N when signal N killed it,
 * 127 when not found, 126 when it could not be executed. */
int bw_spawn_wait(char **argv);

#endif

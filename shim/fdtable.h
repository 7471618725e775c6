/* What we know about each descriptor: whether it is a socket, of which family and type.
 * Lock-free and allocation-free on lookup, so read/write hooks can ask about a
 * non-socket without a system call or a lock, also inside signal handlers. */
#ifndef BW_FDTABLE_H
#define BW_FDTABLE_H

#include <stdint.h>

enum bw_fd_kind {
	BW_FD_UNKNOWN = 0,       /* never seen, or closed since: classify on demand */
	BW_FD_OTHER = 1,         /* known not to be a socket */
	BW_FD_SOCKET = 2
};

struct bw_fdinfo {
	enum bw_fd_kind kind;
	int family;              /* AF_* for sockets */
	int type;                /* SOCK_STREAM, SOCK_DGRAM, ... */
};

/* Entries beyond this many descriptors are not tracked (they stay UNKNOWN). */
#define BW_FD_MAX (1 << 20)

void bw_fd_get(int fd, struct bw_fdinfo *out);
void bw_fd_set_socket(int fd, int family, int type);
void bw_fd_set_other(int fd);
void bw_fd_forget(int fd);                         /* -> UNKNOWN */
void bw_fd_forget_range(unsigned lo, unsigned hi);
void bw_fd_copy(int from, int to);                 /* dup: `to` is what `from` is */
/* Known facts, else ask the kernel (keeps errno). Returns the kind. */
enum bw_fd_kind bw_fd_classify(int fd, struct bw_fdinfo *out);

#endif

/* A small Redis client for the fleet syncer (docs/design.md §6.1): RESP2 over one socket,
 * one command at a time, every wait bounded by a deadline. It calls the real libc
 * functions, never the library's own hooks, and is used only from the syncer's thread. */
#ifndef BW_RESP_H
#define BW_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "config.h"

#define BW_RESP_BUF 16384
#define BW_RESP_VALS 512

/* A reply, flattened in pre-order: an array is followed by its elements. */
struct bw_resp_val {
	char type;               /* '+', '-', ':', '$', '*'; '_' a nil */
	int64_t i;               /* ':' the integer; '*' the element count */
	const char *s;           /* '+', '-', '$': the text (in the client's buffer) */
	size_t n;
};

struct bw_resp {
	int fd;                  /* -1: not connected */
	dev_t dev;               /* the socket's identity: a program that closed our */
	ino_t ino;               /* descriptor and reused its number is not written to */
	size_t len;
	char buf[BW_RESP_BUF];
	struct bw_resp_val v[BW_RESP_VALS];
	int nv;
};

/* Connect to the fleet's Redis by deadline (monotonic us) and select its database. 0, or
 * -1 with why. */
int bw_resp_connect(struct bw_resp *r, const struct bw_fleet *f, int64_t deadline,
		    char *why, size_t cap);
/* Send one command and read its reply into r->v (r->nv values). 0, or -1 with why: the
 * connection is then closed (a late reply would answer the next command). */
int bw_resp_call(struct bw_resp *r, int argc, const char *const *argv, const size_t *lens,
		 int64_t deadline, char *why, size_t cap);
/* Close the socket: never shut down, since a forked child's copy is the parent's
 * connection too. */
void bw_resp_close(struct bw_resp *r);
/* The descriptor is still the socket we opened (a program may have closed it and
 * reused the number). */
int bw_resp_ours(const struct bw_resp *r);
/* Forget a socket without closing it (it is not ours any more). */
void bw_resp_forget(struct bw_resp *r);

/* Parse one reply from buf (pure; for the unit tests too): the bytes it takes, 0 when it
 * is not all there yet, -1 when it is no RESP. */
long bw_resp_parse(const char *buf, size_t len, struct bw_resp_val *v, int cap, int *nv);

#endif

/* What injected faults leave on a connection (bulwark.yaml(5), INJECT): the per:
 * connection entries that chose it, a byte limit and the bytes moved so far, a stall, a
 * slow close, a datagram held back to be sent after the next one. Kept per descriptor,
 * forgotten when the descriptor is learned again (a new connection on that number, or a
 * new policy). The table is mapped the first time a fault needs it, so a policy without
 * these faults pays nothing; descriptors from BW_CONNFAULT_FDS on have none. */
#ifndef BW_CONNFAULT_H
#define BW_CONNFAULT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BW_CONNFAULT_FDS 4096
#define BW_CONNFAULT_HOLD 65536     /* the largest datagram held back (UDP's is 65507) */

enum { BW_CF_SEND, BW_CF_RECV };

struct bw_connfault {
	int lock;                /* taken around every use: threads may share a socket */
	int used;
	/* per: connection choices, per rule (a connection's send and receive rules are
	 * usually one rule, which chooses once) */
	int sel_rule[2];         /* rule index + 1; 0: none */
	uint64_t sel[2];
	long limit[2];           /* per direction: bytes before the connection closes, 0 none */
	long long moved[2];
	int closed;              /* a byte limit was reached: shut down, ends of file from now */
	int stalled[2];
	int64_t slow_close_us;
	int64_t eof_due;         /* a non-blocking socket's delayed end of file: when, 0 none */
	unsigned char *held;     /* a datagram sent after the next one, BW_CONNFAULT_HOLD */
	size_t held_len;
	struct sockaddr_storage held_to;
	socklen_t held_tolen;
};

/* fd's entry, locked (bw_connfault_put unlocks it); NULL when fd is out of range, or when
 * create is 0 and nothing was left on fd, or the table cannot be mapped. */
struct bw_connfault *bw_connfault_get(int fd, int create);
void bw_connfault_put(struct bw_connfault *cf);
/* fd is a new connection (or learned anew): what was left on the old one goes. */
void bw_connfault_forget(int fd);

#endif

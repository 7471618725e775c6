/* Bulkhead slots held by descriptors (bulwark.yaml(5), CONCURRENCY; design.md §6). A
 * connection made under a bulkhead holds a slot from its connect (or accept) until its
 * last descriptor in this process closes: the slot belongs to the open file
 * description, which dup, dup2, dup3 and F_DUPFD share, so the table keeps one hold per
 * connection with a count of the descriptors that share it. Whatever way a descriptor
 * goes (close, close_range, closefrom, dup2 or dup3 over it, fclose, freopen, its number
 * found reused), the fd table lets go of its share (bw_fd_forget); the last share gives
 * the slot back to the store. No lock, no allocation: a fixed table claimed by
 * compare-and-swap, safe in a signal handler. */
#ifndef BW_HOLD_H
#define BW_HOLD_H

#include <stdint.h>
#include "engine.h"

/* A hold of one slot taken for c (c->slot_held) under e, for descriptor fd: fd's hold
 * from now on (one it held before lets go). When the table is full the slot goes back at
 * once, and the connection is not counted. Clears c->slot_held. */
void bw_hold_attach(int fd, struct bw_engine *e, struct bw_call *c);
/* fd's connection did not come to be (its connect failed): its slot goes back, whatever
 * copies of the descriptor share it. */
void bw_hold_fail(int fd);
/* One more descriptor shares hold h; one fewer (the last gives the slot back). */
void bw_hold_ref(uint32_t h);
void bw_hold_unref(uint32_t h);
/* In a forked child of a group: the slots are the parent's, which keeps them until its
 * own descriptors close; the child's copies hold none (design.md §6). */
void bw_hold_after_fork(void);

#endif

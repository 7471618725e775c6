/* Connects left in progress for the program to finish (observe mode, `nonblocking:
 * observe`): their rule and address, until the program reads SO_ERROR. */
#ifndef BW_PENDING_H
#define BW_PENDING_H

#include <stdint.h>
#include <sys/socket.h>
#include "config.h"
#include "engine.h"

struct bw_pending {
	const struct bw_rule *rule;
	struct sockaddr_storage addr;
	socklen_t len;
	long n;                          /* the attempt's number and measure (engine.h */
	struct bw_tally_mark mark;       /* bw_attempt_n, tally.h): its outcome comes later */
	int64_t started;         /* when the attempt began, for trip.slow (bw_call.started) */
	int64_t admitted;        /* when the call was admitted, for metrics (bw_call.admitted) */
};

/* Also keeps this thread's bw_attempt_n and bw_tally_cur, which bw_pending_resume gives
 * back to the thread that learns the outcome. */
void bw_pending_add(int fd, const struct bw_rule *rule, const struct sockaddr *sa, socklen_t len,
		    int64_t started, int64_t admitted);
/* 1 and the entry (removed) when fd has one. */
int bw_pending_take(int fd, struct bw_pending *out);
static inline void bw_pending_resume(const struct bw_pending *p)
{
	bw_attempt_n = p->n;
	bw_tally_cur = p->mark;
}
int bw_pending_any(void);

#endif

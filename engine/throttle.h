/* Adaptive throttling (bulwark.yaml(5), THROTTLE), the client-side rejection of the
 * Google SRE book: over the last `window`, a call is rejected with probability
 *
 *     max(0, (requests - k * accepts) / (requests + 1)),  at most max_reject,
 *
 * where requests counts every call that ended (rejected ones too; one in flight counts
 * with its outcome) and accepts the calls the destination answered. Pure: the caller supplies the time and serializes access. */
#ifndef BW_THROTTLE_H
#define BW_THROTTLE_H

#include <stdint.h>
#include "config.h"

#define BW_THR_SLOTS 10   /* the window is kept in this many sub-windows */

struct bw_throttle_state {
	struct { int64_t slot; uint32_t requests, accepts; } win[BW_THR_SLOTS];
	/* The length of the sub-windows the counts are in: counts kept under another
	 * window (a policy loaded anew) start afresh. 0: never used. */
	int64_t len;
};

/* The rejection probability now, from the counts in the window. */
double bw_throttle_p(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now);
/* One more request, or one more accept, in the sub-window of now. */
void bw_throttle_request(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now);
void bw_throttle_accept(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now);
/* The requests and accepts in the window now. */
void bw_throttle_counts(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now,
			long *requests, long *accepts);

#endif

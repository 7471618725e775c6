/* Token bucket (bulwark.yaml(5), RATE_LIMIT): `rate` tokens a second, at most `burst` banked. Tokens are calls
 * or bytes. Pure: the caller supplies the time and serializes access to one bucket. */
#ifndef BW_BUCKET_H
#define BW_BUCKET_H

#include <stdint.h>
#include "config.h"

struct bw_bucket {
	double tokens;
	int64_t last;            /* time of the last refill; 0: never used (starts full) */
	/* The burst its tokens were counted against. A policy loaded anew with another
	 * burst finds its tokens scaled to the new one (tokens * new / old), whichever
	 * process of a group comes first; with the same burst, as they were. */
	double burst;
};

/* Take between `least` and `want` tokens (least >= want: exactly want, all or nothing).
 * Returns how many were taken with *wait = 0, or 0 with *wait = microseconds until enough
 * will be there. What must be there is capped at burst, so a datagram larger than the
 * bucket still passes whole once the bucket is full: never split, never stuck. */
double bw_bucket_take(const struct bw_rate_limit *c, struct bw_bucket *b, int64_t now,
		      double want, double least, int64_t *wait);

/* The common case of bw_bucket_take, inline on the hot path: enough tokens for want after
 * the refill (returns want), or -1 for the full story. */
static inline double bw_bucket_take_all(const struct bw_rate_limit *c, struct bw_bucket *b,
					int64_t now, double want)
{
	int64_t last = b->last;
	double t = b->tokens;
	if (__builtin_expect(!last || want > c->burst || b->burst != c->burst, 0))
		return -1;
	if (now > last) {
		/* the refill is kept even when it is not enough: bw_bucket_take goes on from it */
		/* a fleet's bucket is filled by its syncer from leases, never by time */
		t += c->fleet ? 0 : (double)(now - last) * (c->rate * 1e-6);
		t = t > c->burst ? c->burst : t;
		b->tokens = t;
		b->last = now;
	}
	if (t + 1e-9 < want)
		return -1;
	b->tokens = t > want ? t - want : 0;
	return want;
}

#endif

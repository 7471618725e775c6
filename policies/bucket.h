/* Token bucket (bulwark.yaml(5), RATE_LIMIT): `rate` tokens a second, at most `burst` banked. Tokens are calls
 * or bytes. Pure: the caller supplies the time and serializes access to one bucket. */
#ifndef BW_BUCKET_H
#define BW_BUCKET_H

#include <stdint.h>
#include "config.h"

struct bw_bucket {
	double tokens;
	int64_t last;            /* time of the last refill; 0: never used (starts full) */
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
	if (!b->last || want > c->burst)
		return -1;
	double t = b->tokens;
	if (now > b->last) {
		t += (double)(now - b->last) * (c->rate * 1e-6);
		if (t > c->burst)
			t = c->burst;
	}
	if (t + 1e-9 < want)
		return -1;
	b->tokens = t - want < 0 ? 0 : t - want;
	if (now > b->last)
		b->last = now;
	return want;
}

#endif

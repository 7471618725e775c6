/* Token bucket (SPEC 3.6): `rate` tokens a second, at most `burst` banked. Tokens are calls
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

#endif

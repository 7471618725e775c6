/* Backoff delays (bulwark.yaml(5), RETRY); jitter spreads clients that failed together so they do not
 * come back together. */
#include <assert.h>
#include "backoff.h"

static bw_usec uniform(struct bw_rng *rng, bw_usec lo, bw_usec hi)
{
	if (hi <= lo)
		return lo;
	return lo + (bw_usec)(bw_rng_unit(rng) * (double)(hi - lo));
}

/* min(max, base * multiplier^(n-1)) without overflowing for large n. */
static bw_usec capped_exp(const struct bw_retry *r, int n)
{
	double c = (double)r->base;
	for (int i = 1; i < n && c < (double)r->max; i++)
		c *= r->multiplier;
	return c >= (double)r->max ? r->max : (bw_usec)c;
}

bw_usec bw_backoff_delay(const struct bw_retry *r, int n, bw_usec prev, struct bw_rng *rng)
{
	assert(n >= 1);
	bw_usec c = capped_exp(r, n);
	switch (r->jitter) {
	case BW_JITTER_NONE:
		return c;
	case BW_JITTER_FULL:
		return uniform(rng, 0, c);
	case BW_JITTER_EQUAL:
		return c / 2 + uniform(rng, 0, c - c / 2);
	case BW_JITTER_DECORRELATED: {
		bw_usec last = prev > 0 ? prev : r->base;
		bw_usec hi = last > r->max / 3 ? r->max : 3 * last;
		bw_usec d = uniform(rng, r->base, hi);
		return d > r->max ? r->max : d;
	}
	}
	return c;
}

/* Token bucket arithmetic. Invariant (asserted): 0 <= tokens <= burst. */
#include <assert.h>
#include "bucket.h"

/* libm is not ours to link (the library needs only libc): whole-number rounding by hand,
 * for the non-negative values a bucket holds. */
static double floor_pos(double x)
{
	return (double)(int64_t)x;
}

static double ceil_pos(double x)
{
	double f = floor_pos(x);
	return f < x ? f + 1 : f;
}

static void refill(const struct bw_rate_limit *c, struct bw_bucket *b, int64_t now)
{
	if (b->last != 0 && b->burst != c->burst) {
		/* counted against another burst (a policy loaded since, or before): the same
		 * share of the new one */
		if (b->burst > 0)
			b->tokens = b->tokens * c->burst / b->burst;
		if (b->tokens > c->burst)
			b->tokens = c->burst;
		if (b->tokens < 0)
			b->tokens = 0;
	}
	b->burst = c->burst;
	if (b->last == 0) {
		/* a fleet's tokens are granted by the fleet (design.md §6.1) */
		b->tokens = c->fleet ? 0 : c->burst;
	} else if (now > b->last && !c->fleet) {
		b->tokens += (double)(now - b->last) * c->rate / 1e6;
		if (b->tokens > c->burst)
			b->tokens = c->burst;
	}
	if (now > b->last)
		b->last = now;
	assert(b->tokens >= 0 && b->tokens <= c->burst);
}

double bw_bucket_take(const struct bw_rate_limit *c, struct bw_bucket *b, int64_t now,
		      double want, double least, int64_t *wait)
{
	int whole = least >= want;     /* all or nothing: a call, or a datagram */
	double need = least > c->burst ? c->burst : least;
	if (need < 1)
		need = 1;
	refill(c, b, now);
	if (b->tokens + 1e-9 >= need) {
		double got = whole ? want : floor_pos(b->tokens + 1e-9);
		if (got > want)
			got = want;
		b->tokens = got > b->tokens ? 0 : b->tokens - got;
		*wait = 0;
		return got;
	}
	*wait = (int64_t)ceil_pos((need - b->tokens) * 1e6 / c->rate);
	if (*wait < 1)
		*wait = 1;
	return 0;
}

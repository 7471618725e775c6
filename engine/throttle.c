/* Adaptive throttling's counts: a window of BW_THR_SLOTS sub-windows, as the breaker's
 * rate window keeps them (breaker.c). */
#include <string.h>
#include "throttle.h"

static int64_t slot_len(const struct bw_throttle *t)
{
	int64_t len = t->window / BW_THR_SLOTS;
	return len > 0 ? len : 1;
}

/* Counts kept under another window length say nothing of this one. */
static void settle(const struct bw_throttle *t, struct bw_throttle_state *s)
{
	int64_t len = slot_len(t);
	if (__builtin_expect(s->len != len, 0)) {
		memset(s, 0, sizeof *s);
		s->len = len;
	}
}

void bw_throttle_counts(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now,
			long *requests, long *accepts)
{
	settle(t, s);
	int64_t slot = now / s->len;
	long r = 0, a = 0;
	for (int i = 0; i < BW_THR_SLOTS; i++) {
		if (s->win[i].slot <= slot - BW_THR_SLOTS || s->win[i].slot > slot)
			continue;
		r += s->win[i].requests;
		a += s->win[i].accepts;
	}
	*requests = r;
	*accepts = a;
}

double bw_throttle_p(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now)
{
	long r, a;
	bw_throttle_counts(t, s, now, &r, &a);
	double p = ((double)r - t->k * (double)a) / ((double)r + 1);
	if (p < 0)
		p = 0;
	return p > t->max_reject ? t->max_reject : p;
}

static void add(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now, int accept)
{
	settle(t, s);
	int64_t slot = now / s->len;
	int i = (int)(slot % BW_THR_SLOTS);
	if (s->win[i].slot != slot) {
		s->win[i].slot = slot;
		s->win[i].requests = s->win[i].accepts = 0;
	}
	if (accept)
		s->win[i].accepts++;
	else
		s->win[i].requests++;
}

void bw_throttle_request(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now)
{
	add(t, s, now, 0);
}

void bw_throttle_accept(const struct bw_throttle *t, struct bw_throttle_state *s, int64_t now)
{
	add(t, s, now, 1);
}

/* The breaker's transitions. Invariants (asserted): positions only move along
 * closed->open, open->half_open, half_open->open and half_open->closed; probes out never
 * exceed half_open_probes. */
#include <assert.h>
#include <string.h>
#include "breaker.h"

const char *bw_brk_name(int pos)
{
	static const char *const names[] = { "closed", "open", "half_open" };
	return pos >= 0 && pos <= 2 ? names[pos] : "?";
}

static void move(struct bw_breaker_state *s, int to, struct bw_brk_move *mv)
{
	assert((s->pos == BW_BRK_CLOSED && to == BW_BRK_OPEN) ||
	       (s->pos == BW_BRK_OPEN && to == BW_BRK_HALF_OPEN) ||
	       (s->pos == BW_BRK_HALF_OPEN && (to == BW_BRK_OPEN || to == BW_BRK_CLOSED)));
	mv->from = s->pos;
	mv->to = to;
	s->pos = to;
}

static void open_it(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
		    struct bw_brk_move *mv)
{
	/* a failed probe doubles the time open; a fresh trip starts from open_for */
	if (s->pos == BW_BRK_HALF_OPEN && s->open_for > 0)
		s->open_for = s->open_for * 2 > c->open_for_max ? c->open_for_max : s->open_for * 2;
	else
		s->open_for = c->open_for;
	s->opened_at = now;
	s->probes_out = s->probes_ok = 0;
	move(s, BW_BRK_OPEN, mv);
}

static void close_it(struct bw_breaker_state *s, struct bw_brk_move *mv)
{
	s->consecutive = 0;
	s->probes_out = s->probes_ok = 0;
	s->open_for = 0;
	memset(s->win, 0, sizeof s->win);
	move(s, BW_BRK_CLOSED, mv);
}

static void mix(uint32_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 16777619u;
}

uint32_t bw_breaker_stamp(const struct bw_breaker *c)
{
	uint32_t h = 2166136261u;
	int scope = (int)c->scope;
	mix(&h, &scope, sizeof scope);
	mix(&h, &c->consecutive, sizeof c->consecutive);
	mix(&h, &c->rate, sizeof c->rate);
	mix(&h, &c->window, sizeof c->window);
	mix(&h, &c->min_calls, sizeof c->min_calls);
	mix(&h, &c->half_open_probes, sizeof c->half_open_probes);
	if (c->slow_over) {
		mix(&h, &c->slow_over, sizeof c->slow_over);
		mix(&h, &c->slow_rate, sizeof c->slow_rate);
	}
	return h ? h : 1;
}

/* A state counted under other settings starts closed and empty (reported as a move when
 * it was not closed); one never used takes c's. */
static void settle_stamp(const struct bw_breaker *c, struct bw_breaker_state *s,
			 struct bw_brk_move *mv)
{
	uint32_t stamp = bw_breaker_stamp(c);
	if (__builtin_expect(s->stamp == stamp, 1))
		return;
	if (s->stamp) {
		int from = s->pos;
		memset(s, 0, sizeof *s);
		mv->from = from;
		mv->to = BW_BRK_CLOSED;
	}
	s->stamp = stamp;
}

int bw_breaker_allow(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
		     struct bw_brk_move *mv)
{
	mv->from = mv->to = s->pos;
	settle_stamp(c, s, mv);
	if (s->pos == BW_BRK_OPEN && now - s->opened_at >= s->open_for) {
		s->probes_out = s->probes_ok = 0;
		move(s, BW_BRK_HALF_OPEN, mv);
	}
	switch (s->pos) {
	case BW_BRK_CLOSED:
		return 1;
	case BW_BRK_HALF_OPEN:
		if (s->probes_out >= c->half_open_probes)
			return 0;
		s->probes_out++;
		return 1;
	default:
		return 0;
	}
}

static int64_t slot_len(const struct bw_breaker *c)
{
	int64_t len = c->window / BW_BRK_SLOTS;
	return len > 0 ? len : 1;
}

static void window_add(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
		       int failed, int slow)
{
	int64_t slot = now / slot_len(c);
	int i = (int)(slot % BW_BRK_SLOTS);
	if (s->win[i].slot != slot) {
		s->win[i].slot = slot;
		s->win[i].calls = s->win[i].fails = s->win[i].slows = 0;
	}
	s->win[i].calls++;
	s->win[i].fails += failed;
	s->win[i].slows += slow;
}

/* Whether the failures (or, slow set, the slow calls) reach their ratio of the window. */
static int rate_tripped(const struct bw_breaker *c, const struct bw_breaker_state *s, int64_t now,
			int slow)
{
	double rate = slow ? c->slow_rate : c->rate;
	if (rate <= 0 || (slow && !c->slow_over))
		return 0;
	int64_t slot = now / slot_len(c);
	long calls = 0, hits = 0;
	for (int i = 0; i < BW_BRK_SLOTS; i++) {
		if (s->win[i].slot <= slot - BW_BRK_SLOTS)
			continue;
		calls += s->win[i].calls;
		hits += slow ? s->win[i].slows : s->win[i].fails;
	}
	return calls >= c->min_calls && calls > 0 && (double)hits >= rate * (double)calls;
}

void bw_breaker_record(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
		       int failed, struct bw_brk_move *mv)
{
	bw_breaker_record_call(c, s, now, failed, 0, mv);
}

void bw_breaker_record_call(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
			    int failed, int slow, struct bw_brk_move *mv)
{
	mv->from = mv->to = s->pos;
	settle_stamp(c, s, mv);
	slow = slow && c->slow_over > 0;
	switch (s->pos) {
	case BW_BRK_CLOSED:
		s->consecutive = failed ? s->consecutive + 1 : 0;
		window_add(c, s, now, failed, slow);
		if ((failed && ((c->consecutive > 0 && s->consecutive >= c->consecutive) ||
				rate_tripped(c, s, now, 0))) ||
		    (slow && rate_tripped(c, s, now, 1)))
			open_it(c, s, now, mv);
		break;
	case BW_BRK_HALF_OPEN:
		if (s->probes_out > 0)
			s->probes_out--;
		if (failed || slow) {
			open_it(c, s, now, mv);
		} else if (++s->probes_ok >= c->half_open_probes) {
			close_it(s, mv);
		}
		break;
	default:
		/* an outcome that arrives after the breaker opened (a call in flight) */
		break;
	}
	assert(s->probes_out >= 0 && s->probes_out <= c->half_open_probes);
}

void bw_breaker_release(struct bw_breaker_state *s)
{
	if (s->pos == BW_BRK_HALF_OPEN && s->probes_out > 0)
		s->probes_out--;
}

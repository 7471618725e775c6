/* Circuit breaker state machine (bulwark.yaml(5), BREAKER): closed -> open on consecutive failures, a
 * failure ratio over a window, or a ratio of slow calls over the same window; open -> half_open after open_for; half_open -> closed when
 * every probe succeeds, or back to open with open_for doubled (up to open_for_max).
 * Pure: the caller supplies the time and serializes access to one state. */
#ifndef BW_BREAKER_H
#define BW_BREAKER_H

#include <stdint.h>
#include "config.h"

enum bw_brk_pos { BW_BRK_CLOSED, BW_BRK_OPEN, BW_BRK_HALF_OPEN };

#define BW_BRK_SLOTS 10   /* the rate window is kept in this many sub-windows */

struct bw_breaker_state {
	int pos;                 /* enum bw_brk_pos */
	int consecutive;
	int64_t opened_at, open_for;
	int probes_out, probes_ok;
	struct { int64_t slot; int calls, fails, slows, pad; } win[BW_BRK_SLOTS];
	/* The settings this state was counted under (bw_breaker_stamp); 0: never used. A
	 * policy loaded anew with other trip settings finds its breaker closed and its
	 * counts empty, whichever process of a group comes first; the same settings find
	 * the state as it was. */
	uint32_t stamp;
	int32_t pad;
};

/* A state change, reported so the caller can log it; from == to when none happened. */
struct bw_brk_move { int from, to; };

/* May this call go ahead? Moves open -> half_open when open_for has passed. */
int bw_breaker_allow(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
		     struct bw_brk_move *mv);
/* The outcome of an allowed call. */
void bw_breaker_record(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
		       int failed, struct bw_brk_move *mv);
/* The same for a call that may have been slow (it took longer than c->slow_over): it
 * counts in the window toward trip.slow, whatever its outcome; a slow probe of a
 * half-open breaker opens it again as a failed one does (the destination is still slow). */
void bw_breaker_record_call(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now,
			    int failed, int slow, struct bw_brk_move *mv);
/* A call that was allowed but whose outcome will never be recorded (e.g. abandoned). */
void bw_breaker_release(struct bw_breaker_state *s);

const char *bw_brk_name(int pos);

/* What a state counted under c must be counted under again: the trip settings (failures
 * in a row, the rate, the slow threshold and rate, the window and min_calls) and the
 * half-open probes. Never 0.
 * open_for and the refusal's error are not in it: a breaker open keeps its time. */
uint32_t bw_breaker_stamp(const struct bw_breaker *c);

#endif

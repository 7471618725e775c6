/* What observe mode measures, per rule, op and destination of this process: the number
 * of each attempt (the fail event's n, which `bulwark report --replay` turns into an
 * inject entry's `after`), how long attempts took (a fixed histogram), their busiest
 * second, and the failures in a row that end when the destination answers again (an
 * `outage` event). At exit, one `calls` event per destination sums it up, for
 * `bulwark suggest` (bulwark.yaml(5), EVENTS).
 *
 * Only an engine in observe mode has a tally, so enforcing pays nothing for it. A fixed
 * table: entries are claimed with compare-and-swap and counted with atomics, no lock and
 * no allocation, so it works from a signal handler; when it is full, a destination goes
 * uncounted (its fail events have no n). */
#ifndef BW_TALLY_H
#define BW_TALLY_H

#include <stddef.h>
#include <stdint.h>
#include "match.h"

struct bw_engine;
struct bw_call;

#define BW_TALLY_SLOTS 1024
#define BW_TALLY_PROBES 32       /* entries looked at before a destination goes uncounted */
#define BW_TALLY_BUCKETS 17      /* the last one is above the last bound */
#define BW_TALLY_FDS 4096        /* descriptors whose last send is remembered */

/* Upper bounds of the histogram's buckets, in microseconds: 0.1 ms to 10 s, 1-2-5. */
extern const int64_t bw_tally_bounds_us[BW_TALLY_BUCKETS - 1];

struct bw_tally_ent {
	uint64_t key;            /* 0: free */
	long seq;                /* attempts numbered so far; a forked child goes on from its
				  * parent's count, as inject entries do */
	long calls, fails;       /* this process's own */
	long streak;             /* failures in a row, the first of them at streak_t0 */
	int64_t streak_t0;
	int64_t first, last;     /* monotonic microseconds of the first and latest attempt */
	int64_t sec;             /* the second of the latest attempt, its count, the most in */
	long in_sec, peak, active;   /* any one second, and how many seconds had calls */
	int64_t max_us;
	long hist[BW_TALLY_BUCKETS];
	int rule, op;
	char what;               /* the name is a 'd'est, a 'h'ost or a data'b'ase */
	char name[BW_DEST_NAME_MAX];
};

struct bw_tally {
	struct bw_tally_ent ent[BW_TALLY_SLOTS];
	int64_t sent[BW_TALLY_FDS];      /* per descriptor: when a send last moved bytes */
};

/* The attempt this thread is making: its entry (slot -1: none), when it began, and for a
 * receive that brought a reply, when the request went out. */
struct bw_tally_mark {
	const struct bw_tally *t;
	int slot;
	int skip;                /* no latency to record (a non-blocking call's EAGAIN) */
	int64_t t0, since;
};
extern __thread struct bw_tally_mark bw_tally_cur;

struct bw_tally *bw_tally_new(void);
void bw_tally_free(struct bw_tally *t);

/* An attempt of c begins (from bw_engine_inject): its number, 0 when uncounted. */
long bw_tally_begin(struct bw_engine *e, const struct bw_call *c);
/* The attempt of c that began on this thread ended with err (0, or a bw_err code). */
void bw_tally_end(struct bw_engine *e, const struct bw_call *c, int err);
/* A send on fd moved bytes; a receive on fd brought some in: its wait is counted from
 * the send (the time to the reply, which a recv timeout must allow), not from the call,
 * which on a non-blocking socket began only once poll said the reply was there. */
void bw_tally_sent(struct bw_engine *e, int fd);
void bw_tally_replied(struct bw_engine *e, int fd);
/* In a forked child: its own counts start at zero; attempt numbers go on. */
void bw_tally_after_fork(struct bw_tally *t);
/* The `calls` events of e and of the generations it replaced. */
void bw_tally_report(struct bw_engine *e);

#endif

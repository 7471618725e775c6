/* The decision engine: runs a call through its rule (retry, deadline, budget) and reports
 * events. It knows no libc I/O: time, sleep and output come in through bw_env. */
#ifndef BW_ENGINE_H
#define BW_ENGINE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "config.h"
#include "events.h"
#include "match.h"
#include "breaker.h"
#include "bucket.h"
#include "keyed.h"
#include "store.h"
#include "rng.h"
#include "tally.h"

struct bw_env {
	int64_t (*mono_us)(void);        /* monotonic clock */
	int64_t (*wall_us)(void);        /* UTC, for event timestamps */
	void (*sleep_us)(int64_t us);    /* sleeps the whole time */
	void (*emit)(enum bw_level lvl, const char *line, size_t len);
	long (*tid)(void);
	/* Sleeps up to us; returns 0 when it slept the whole time, or the time left when a
	 * signal handler ran that the interrupted call must not outlive (one installed
	 * without SA_RESTART). NULL: sleep_us, never interrupted. */
	int64_t (*nap_us)(int64_t us);
};

enum bw_stat {
	BW_ST_CALLS, BW_ST_FAILURES, BW_ST_RETRIES, BW_ST_RECOVERED, BW_ST_GAVE_UP,
	BW_ST_REJECTED, BW_ST_THROTTLED, BW_ST_LIMITED, BW_ST_INJECTED, BW_ST_BULKHEAD_FULL,
	BW_ST_SHED, BW_ST_COUNT
};

#define BW_BUDGET_SLOTS 10   /* seconds the retry budget looks back over */

struct bw_budget_slot {
	int64_t sec;
	long calls, retries;
};

#define BW_CALL_STRIPES 8      /* `calls` counts every matched call: spread it over lines */

struct bw_rule_rt {
	long stats[BW_ST_COUNT];                 /* atomics; calls live in the stripes */
	long flushed[BW_ST_COUNT];               /* what of them the group's metrics have */
	struct { long n; char pad[64 - sizeof(long)]; } calls[BW_CALL_STRIPES];
	struct bw_budget_slot budget[BW_BUDGET_SLOTS];
	int slot;                                /* its cells in the store */
	/* per inject entry: calls seen, injected (per: connection: connections); then, in
	 * inj_seen[n_inject + i], the calls on the connections an entry chose, which draw
	 * their latency. (One array: the size of this struct is the hot path's stride.) */
	long *inj_seen, *inj_done;
	long thr_seen;                           /* draws of the throttle (the seeded stream) */
	unsigned direct_ops;                     /* ops that may skip the retry driver */
	unsigned plain_ops;                      /* ... and have no byte bucket either */
	unsigned paced_ops;                      /* ... and have a byte bucket */
	double piece;                            /* the least a byte bucket gives a stream send
						  * it may cut: 10 ms of its rate */
	const struct bw_rate_limit *rate_limit;  /* the rule's, at hand */
};

/* A fault to inject into one attempt (bulwark.yaml(5), INJECT). */
struct bw_fault {
	int err;                 /* bw_err code, 0 none */
	bw_usec delay;           /* delays and latencies drawn, added up */
	int partial, eof, reset;
	/* what the connection's direction keeps from now on (the hook remembers it) */
	long limit_data;         /* the least of the entries' byte limits; 0 none */
	int stall;
	bw_usec slow_close;
	int loss, duplicate, reorder;        /* this datagram */
	uint64_t draw;           /* a reproducible number for sizing a partial transfer */
};

enum { BW_LATCHED_LIMIT = 1, BW_LATCHED_STALL = 2, BW_LATCHED_SLOW_CLOSE = 4 };

struct bw_engine {
	const struct bw_config *cfg;
	struct bw_env env;
	long pid;
	const char *prog;
	unsigned char *active;           /* per rule: prog matched */
	unsigned ops;                    /* ops of the active rules, and send/recv when a
					  * connect breaker watches connections */
	struct bw_rule_rt *rt;
	uint64_t seed;                   /* effective seed (never 0) */
	unsigned gen;                    /* generation of the loaded policy (from 1) */
	struct bw_store *store;          /* breakers and buckets: own_store, or the store
					  * of the policy this one replaced */
	struct bw_store own_store;
	enum bw_level level;
	enum bw_mode mode;
	const struct bw_engine *prev;    /* the generation this one replaced, or NULL */
	uint64_t cmd_hash;               /* the process's command line (BW_CMD_HASH_DIGITS),
					  * 0 unknown */
	long ppid;                       /* its parent, 0 unknown: for the start event */
	struct bw_tally *tally;          /* observe mode: what calls measured (tally.h) */
};

/* An attempt that failed in a way retrying cannot mend sets `now`: the engine then ends
 * the call at once, with a gave_up event carrying reason and advice (none if reason is
 * NULL: the error just goes back to the program). */
struct bw_stop {
	int now;
	const char *reason;
	const char *advice;
};

/* A give-up held back from the log (bw_call.held); reason NULL: none. */
struct bw_gave_up {
	const char *reason, *advice;
	int err, attempts;
};

/* Call facts for events and the retry driver. */
struct bw_call {
	const struct bw_rule *rule;
	int op;
	const char *call;                /* libc or SQLite function name */
	const char *dest, *host, *db;
	int fd;
	uint64_t key;                    /* destination key for dest-scoped state */
	int unix_dest;                   /* ENOENT is retryable for unix: paths */
	/* A connect whose success the breaker judges later, once the connection has
	 * delivered a byte (or failed before it did): see bw_engine_confirm. There, started
	 * is when the connection's wait for an answer began (0: not timed). */
	int confirm_later;
	/* One attempt: 0 on success, else a bw_err code. deadline_us is the absolute
	 * monotonic time the whole call must end by, 0 for none. */
	int (*attempt)(void *arg, int n, int64_t deadline_us);
	void *arg;
	/* Fills in dest for an event when dest is NULL (looked up only when logging). */
	void (*dest_of)(const struct bw_call *c, char *buf, size_t cap);
	/* Called before a retry (e.g. to reset a socket); may be NULL. */
	void (*before_retry)(void *arg);
	/* Carries out a refusal (open breaker, limiter in fail mode) where the op needs it
	 * done below the API, and returns the bw_err code the call ended with. NULL: the
	 * refusal's code is returned as it is. */
	int (*refuse)(void *arg, int err);
	/* A signal handler ran while the engine waited (`where`: BW_WAIT_*) and the program
	 * must see the call interrupted: returns 1 to end the call with *result (0, a
	 * bw_err code, or EINTR/EINPROGRESS for an attempt left to finish on its own), 0 to
	 * wait on. NULL: signals never end this call (its real function never says EINTR). */
	int (*on_signal)(void *arg, int where, int *result);
	struct bw_stop *stop;            /* may be NULL */
	/* Non-NULL: a give-up is recorded here (and counted) instead of logged, for the
	 * caller to log with bw_engine_gave_up once it knows whether the call goes on to
	 * another destination (a fallback) or ends. */
	struct bw_gave_up *held;
	/* The call has no effect of its own (a SQLite prepare): it is retried as the rule
	 * says, but breaker and call limit neither admit it nor learn from its outcome; they
	 * judge the call that acts (the statement's step). Admitting it would spend a token
	 * or a half-open probe on a call that changes nothing. */
	int unguarded;
	/* Written by the engine. A bulkhead slot the call holds, which bw_engine_admit took:
	 * given back with the attempt's outcome, except a connection's (a socket op's call
	 * that succeeded or goes on in the background), which stays with the call for the
	 * hook to hand to the descriptor (or give back, bw_engine_give_slot). */
	int slot_held;
	/* When the attempt under way began (monotonic), for trip.slow; 0: not timed. A
	 * hook that records an outcome later (a connect left in progress) keeps it. */
	int64_t started;
	/* The outcome settled was a slow one: a connection a breaker waits on is judged
	 * slow when its first byte comes. */
	int slow;
	/* Written by the engine when it settles an attempt: when it began (0: not timed),
	 * where a connection a breaker waits on starts its wait for an answer. */
	int64_t began;
	/* Written by the engine: when bw_engine_admit_call admitted the call, in a group
	 * that keeps metrics (0: not timed); its outcome gives the call's time. */
	int64_t admitted;
};

/* A call of op under rule r, named `call` in events, every other field empty. */
static inline void bw_call_init(struct bw_call *c, const struct bw_rule *r, int op,
				const char *call)
{
	memset(c, 0, sizeof *c);
	c->rule = r;
	c->op = op;
	c->call = call;
	c->fd = -1;
}

enum bw_wait { BW_WAIT_BACKOFF, BW_WAIT_LIMIT, BW_WAIT_DELAY };

/* Wait `us` for call c; returns 1 when c's on_signal ended the call (with *result). */
int bw_engine_wait(struct bw_engine *e, const struct bw_call *c, int64_t us, int where,
		   int *result);
/* An attempt's result that has an outcome later, not now: a signal handler interrupted
 * it (EINTR) or it goes on without the caller (EINPROGRESS). */
static inline int bw_engine_later(int err)
{
	return err == EINTR || err == EINPROGRESS;
}

/* An attempt's result that says nothing of the destination: an outcome to come (above),
 * or the program's own business (a socket already connected or connecting, a bad
 * argument, a descriptor that is not a socket). The call ends with it, passed through
 * and uncounted. An injected code is always an outcome. */
static inline int bw_engine_unfinished(int err, int injected)
{
	if (injected)
		return 0;
	switch (err) {
	case EINTR: case EINPROGRESS: case EALREADY: case EISCONN: case ENOTCONN:
	case EBADF: case ENOTSOCK: case EFAULT: case EINVAL: case EAFNOSUPPORT:
	case EPROTOTYPE: case EADDRINUSE: case EOPNOTSUPP: case EDESTADDRREQ:
		return 1;
	}
	return 0;
}

int bw_engine_init(struct bw_engine *e, const struct bw_config *cfg, const struct bw_env *env,
		   long pid, const char *prog, uint64_t seed);
/* The process's command-line hash and parent, which the start event carries and rules
 * with match.cmd_hash select on; sets which rules apply anew. */
void bw_engine_set_proc(struct bw_engine *e, uint64_t cmd_hash, long ppid);
/* FNV-1a over n bytes from h (BW_CMD_HASH_INIT to begin): the command-line hash, in
 * pieces. */
#define BW_CMD_HASH_INIT UINT64_C(14695981039346656037)
uint64_t bw_cmd_hash(const void *p, size_t n, uint64_t h);
/* A later generation of a loaded policy: cfg replaces prev's, and finds its rules'
 * breakers and buckets in prev's store by name. prev stays as it is (calls under way
 * finish under it). */
int bw_engine_init_next(struct bw_engine *e, const struct bw_engine *prev,
			const struct bw_config *cfg, uint64_t seed);
void bw_engine_fini(struct bw_engine *e);

/* A rule's number in the table kept per descriptor: index + 1, 0 for none. */
static inline int bw_engine_rule_no(const struct bw_engine *e, const struct bw_rule *r)
{
	return r ? (int)(r - e->cfg->rules) + 1 : 0;
}

const struct bw_rule *bw_engine_match(struct bw_engine *e, const struct bw_target *t,
				      const char **host_out);

/* Run c through its rule; returns 0 or the final bw_err code. */
int bw_engine_run(struct bw_engine *e, struct bw_call *c, struct bw_rng *rng);
/* A call with a single attempt and nothing to decide before it (no admission, injection
 * or retry) may skip bw_engine_run: the caller counts BW_ST_CALLS, makes the attempt
 * (bw_engine_bytes still applies) and reports an error with bw_engine_failed. The
 * outcome is the same; only the hot send/recv path takes it. */
int bw_engine_direct(const struct bw_rule *r, int op);
void bw_engine_failed(struct bw_engine *e, const struct bw_call *c, int err, int attempt,
		      int injected);

/* A call the program carries to its end itself (a connect left in progress): counted and
 * admitted now (0 to go ahead, else the refusal's code), its outcome reported later with
 * bw_engine_outcome. */
int bw_engine_admit_call(struct bw_engine *e, struct bw_call *c);
/* Record one attempt's outcome (0 or a bw_err code) without retrying: for calls left to
 * complete on their own (observe mode, non-blocking connects without retry). */
void bw_engine_outcome(struct bw_engine *e, struct bw_call *c, int err);
/* The bulkhead slot c holds (slot_held), given back: its connection did not come to be. */
void bw_engine_give_slot(struct bw_engine *e, struct bw_call *c);
/* The cell a bulkhead slot of c is taken from and given back to, for a descriptor that
 * keeps the slot after the call (design.md §6). */
struct bw_ref bw_engine_slot_ref(const struct bw_engine *e, const struct bw_call *c);
/* A connection whose connect succeeded under c (confirm_later) has now shown whether it
 * works: it delivered a byte (failed 0) or broke before it did (failed 1); c->slow says
 * whether its connect was slow. */
void bw_engine_confirm(struct bw_engine *e, const struct bw_call *c, int failed);
/* trip.slow times the connects of rule r (and their connections' wait for an answer). */
int bw_engine_slow_timed(const struct bw_rule *r);
/* A connection of rule r waiting for its answer since t0 (monotonic) is past
 * trip.slow.over: counted slow now, while still in flight (design.md §4.7). */
int bw_engine_overdue(const struct bw_engine *e, const struct bw_rule *r, int64_t t0);

int bw_retryable(const struct bw_rule *r, const struct bw_call *c, int err);

/* Who refused a call at admission (bw_engine_admit): the ones that end a retry loop
 * with a give-up naming them. */
enum bw_refuser { BW_BY_NONE, BW_BY_BREAKER, BW_BY_THROTTLE, BW_BY_BULKHEAD };

/* Admission before an attempt: an open breaker refuses (event `rejected`), adaptive
 * throttling may reject (`shed`), a call-rate limit waits (`throttled`) or refuses
 * (`limited`), a full bulkhead waits and refuses (`bulkhead_full`), or takes a slot for
 * the call (c->slot_held). 0 to go ahead, else the bw_err code to fail with; *by_breaker
 * tells who refused (enum bw_refuser; 0 for the rate limit). */
int bw_engine_admit(struct bw_engine *e, struct bw_call *c, int *by_breaker);
/* Whether bw_engine_admit has anything to check for this rule and op. */
int bw_engine_admits(const struct bw_rule *r, int op);
/* The outcome of an admitted attempt, for the breaker and the throttle (0 or a bw_err
 * code); a slot it held goes back (a connection that was made keeps it). */
void bw_engine_settle(struct bw_engine *e, struct bw_call *c, int err);
/* An admitted attempt that will have no outcome (the program's own error): a half-open
 * breaker's probe it held is free again, and so is its bulkhead slot. */
void bw_engine_release(struct bw_engine *e, struct bw_call *c);
/* A uniform draw in [0, 1) for rule r's stream `stream` at its k-th use: with a seed in
 * the policy it depends only on the seed, the rule, the stream and k (reproducible); else
 * on the process's random seed. */
double bw_engine_draw(const struct bw_engine *e, const struct bw_rule *r, int stream, long k);
/* A connection failure seen by send/recv, counted against the destination's breaker. */
void bw_engine_count_failure(struct bw_engine *e, const struct bw_call *c, int err);
/* Byte limit: how many of `want` bytes may move now (waits as needed; a datagram, whole,
 * is never split). Returns want when the rule has no byte limit. */
size_t bw_engine_bytes(struct bw_engine *e, const struct bw_call *c, size_t want, int whole);
/* The same, where a signal handler may end the wait: then 0 with *err set. */
size_t bw_engine_take_bytes(struct bw_engine *e, const struct bw_call *c, size_t want,
			    int whole, int *err);
/* The least a byte bucket gives a stream send it may cut. */
double bw_engine_piece(const struct bw_rate_limit *rl);
/* Give back bytes taken by bw_engine_bytes that did not move. */
void bw_engine_unbytes(struct bw_engine *e, const struct bw_call *c, size_t n);
/* The fault, if any, to inject into this attempt of c: decided from the seed, the rule
 * and the count of calls (reproducible with a non-zero seed), counted and logged. Its
 * delay is waited here, as a wait of c (BW_WAIT_DELAY): when c's on_signal ends it, the
 * attempt fails with the result it gave (f->err) and nothing else is injected. Returns
 * 1 when something is to be injected; in observe mode it only logs and returns 0. The
 * hook then fails the attempt with f->err, or carries out f->reset, eof or partial. */
int bw_engine_inject(struct bw_engine *e, const struct bw_call *c, struct bw_fault *f);
/* The per: connection entries of r (bit i: entry i). */
static inline uint64_t bw_rule_conn_entries(const struct bw_rule *r)
{
	uint64_t m = 0;
	for (int i = 0; i < r->n_inject && i < BW_INJECT_CONN_MAX; i++)
		if (r->inject[i].per == BW_PER_CONNECTION)
			m |= UINT64_C(1) << i;
	return m;
}
/* A new connection under rule r: which of its per: connection entries choose it (bit i:
 * entry i), decided as a call's are, with the connections counted where calls are (the
 * k-th connection of the rule for `after`, `count` and the draw). Counts even in observe
 * mode, where nothing is then injected. */
uint64_t bw_engine_conn_select(struct bw_engine *e, const struct bw_rule *r);
/* A latency of in for a hit whose draw was d: latency, give or take jitter as its
 * distribution says, never below 0. */
bw_usec bw_inject_latency(const struct bw_inject *in, uint64_t d);
/* Set by bw_engine_inject for the attempt this thread is making: its failure is marked
 * "injected" in the fail event. */
extern __thread int bw_attempt_injected;
/* Set by bw_engine_inject too: the attempt's number, which the fail event carries as n;
 * 0 when not counted. Reset with bw_attempt_injected wherever an attempt begins. In
 * observe mode it counts this process's attempts of the op to the destination under the
 * rule (tally.h); under a rule with inject entries, the count its entries see. */
extern __thread long bw_attempt_n;
/* Set by a transfer's hook just before bw_engine_inject, which reads and clears them (a
 * thread-local rather than a field of bw_call: every other call would pay for zeroing
 * it): the per: connection entries that chose the transfer's connection (bit i: entry i;
 * bw_engine_conn_select), and what its direction already keeps from an earlier hit
 * (BW_LATCHED_*), where an entry that would only set it again neither logs nor counts. */
extern __thread uint64_t bw_inject_conn_sel;
extern __thread unsigned bw_inject_latched;

/* Locks that threads absent in a forked child may have held. */
void bw_engine_after_fork(struct bw_engine *e);

/* Emit an event with the call's fields filled in (c may be NULL). */
void bw_engine_emit(struct bw_engine *e, const struct bw_call *c, struct bw_event *ev);
/* Log the give-up held in *g (if any) for c at lvl, and clear it: error when the call
 * ends with it, warn when it goes on to a fallback. */
void bw_engine_gave_up(struct bw_engine *e, const struct bw_call *c, struct bw_gave_up *g,
		       enum bw_level lvl);
/* A timeout of the rule ended an attempt of c after `after`: the timeout event. */
void bw_engine_timed_out(struct bw_engine *e, const struct bw_call *c, bw_usec after);
int bw_engine_wants(const struct bw_engine *e, enum bw_level lvl);
void bw_engine_count(struct bw_engine *e, const struct bw_rule *r, enum bw_stat st);

extern __thread unsigned bw_call_stripe __attribute__((tls_model("initial-exec")));
unsigned bw_call_stripe_slow(void);
/* One more call of rule index i, on this thread's stripe: the hot path's only write. */
static inline void bw_engine_count_call(struct bw_engine *e, int i)
{
	unsigned s = bw_call_stripe;
	if (__builtin_expect(!s, 0))
		s = bw_call_stripe_slow();
	__atomic_add_fetch(&e->rt[i].calls[s % BW_CALL_STRIPES].n, 1, __ATOMIC_RELAXED);
}
long bw_engine_stat(const struct bw_engine *e, int rule, enum bw_stat st);
/* Add what the counters of e and the engines it replaced grew by since they last were to
 * the group's metrics (bulwark(1), METRICS): each count is added once, whichever thread
 * flushes, with atomics only (safe at exit and on any slow path). No-op outside a group. */
void bw_engine_flush(struct bw_engine *e);
/* The same over every generation of the policy: the counts of the rules of this name in
 * e and the engines it replaced (what the exit event reports). */
long bw_engine_stat_all(const struct bw_engine *e, int rule, enum bw_stat st);
void bw_engine_start_event(struct bw_engine *e, const char *version);
/* The policy file was read again and e's policy is now the one in force (e itself when
 * the file said nothing new): a `reload` event naming the rules added, removed and
 * changed against `before`, and a change of mode. warn, or info when nothing changed.
 * `asked`: by `bulwark reload`, not by a change of the file. */
void bw_engine_reload_event(struct bw_engine *e, const struct bw_config *before,
			    const char *file, int asked);
/* The policy file read again could not be loaded (d: its first problem, NULL if none is
 * known): a `reload` event at level error with FILE:LINE:COL in msg; e's policy stays. */
void bw_engine_reload_error(struct bw_engine *e, const struct bw_diag *d, const char *file,
			    int asked);
void bw_engine_exit_event(struct bw_engine *e);

#endif

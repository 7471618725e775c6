/* What an op is, one row each: the only place that knows. A new client library is a row
 * here and a hook file in the shim (design.md §2). */
#ifndef BW_OPS_H
#define BW_OPS_H

#include <stddef.h>
#include "config.h"

enum bw_op_flag {
	BW_OPF_SOCKET = 1 << 0,         /* calls on a socket descriptor */
	BW_OPF_REFUSE = 1 << 1,         /* may be refused (open breaker, limiter `fail`);
					 * otherwise a limit only waits: a made-up EAGAIN on
					 * a ready descriptor stalls edge-triggered loops */
	BW_OPF_BREAKER = 1 << 2,        /* a breaker admits each call and hears its outcome */
	BW_OPF_BREAKER_COUNTS = 1 << 3, /* its connection failures count against a breaker */
	BW_OPF_BYTES = 1 << 4,          /* a rate limit may count its bytes */
	BW_OPF_STREAM_FAULTS = 1 << 5,  /* partial transfers and resets can be injected */
	BW_OPF_EOF = 1 << 6,            /* an end of file can be injected */
	BW_OPF_SIGNALS = 1 << 7,        /* a signal handler may end its waits (EINTR) */
	BW_OPF_CONFIRM = 1 << 8,        /* a success is confirmed by the connection's first
					 * byte before a closed breaker counts it */
	BW_OPF_NONBLOCKING = 1 << 9,    /* `nonblocking` applies */
	BW_OPF_FALLBACK = 1 << 10,      /* a failed call may move to a `fallback` destination */
	BW_OPF_IDEMPOTENT = 1 << 11,    /* `idempotent` names statements or commands */
	BW_OPF_BULKHEAD = 1 << 12,      /* `concurrency` counts it: on a socket op, the
					 * connection it makes, from then until its descriptor
					 * closes; on the others, the call while it runs */
	BW_OPF_THROTTLE = 1 << 13,      /* adaptive `throttle` may reject it before it is made */
	BW_OPF_SLOW = 1 << 14,          /* its duration counts toward a breaker's trip.slow */
	BW_OPF_ANSWERS = 1 << 15        /* an error its default retry list does not name is
					 * still an answer of the peer's (an application error):
					 * an accept for `throttle` */
};

enum bw_match_key {
	BW_KEY_DEST = 1 << 0,           /* match.dest: the peer address */
	BW_KEY_HOST = 1 << 1,           /* match.host: the name looked up */
	BW_KEY_DB = 1 << 2              /* match.db: the database */
};

struct bw_op_def {
	const char *name;
	unsigned spaces;                /* enum bw_err_space: the codes its calls end with */
	const int *retry_on;            /* default retryable codes, 0-terminated */
	const int *retry_on_unix;       /* ... and for unix: destinations */
	const int *healthy;             /* answers that say nothing against the destination */
	int refusal;                    /* what a refused call ends with */
	unsigned flags;                 /* enum bw_op_flag */
	unsigned keys;                  /* enum bw_match_key: what match may look at */
	const char *what;               /* "errno names", for messages */
};

extern const struct bw_op_def bw_ops[BW_OP_COUNT];
/* Their names in op order, NULL-terminated (for the loader's enum parser). */
extern const char *const bw_op_names[BW_OP_COUNT + 1];

static inline const struct bw_op_def *bw_op(int op)
{
	return &bw_ops[op];
}

static inline int bw_op_has(int op, unsigned flag)
{
	return (bw_ops[op].flags & flag) != 0;
}

/* The ops (a BW_OPBIT mask) whose row has flag / uses key / ends with codes of space. */
unsigned bw_ops_with(unsigned flag);
unsigned bw_ops_keyed(unsigned key);
unsigned bw_ops_in_space(unsigned space);
/* An op by name, or -1. */
int bw_op_parse(const char *name);
const char *bw_op_name(int op);

/* Whether code is in the 0-terminated list (bw_err_matches). */
int bw_err_listed(const int *list, int code);

/* "connect, accept, send and recv": the ops of mask as a phrase, into buf. */
void bw_ops_phrase(unsigned mask, char *buf, size_t cap);

#endif

/* The op table. Reasons for each default are in design.md: retry lists (§4.3, what is the
 * program's business and what the destination's), refusals (§4.2, H14), signals (§4.5),
 * connections judged on their first byte (§4.7). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include "errnames.h"
#include "ops.h"

#define EAI(x) (BW_ERR_EAI_BASE - (x))
#define SQL(x) (BW_ERR_SQLITE_BASE + (x))
#define MY(x) (BW_ERR_MYSQL_BASE + (x))
/* an error reply by its place in errnames.c's list (REDIS_LOADING is 1) */
#define RD(x) (BW_ERR_REDIS_BASE + (x))
/* a SQLSTATE's five base-36 characters, as bw_err_sqlstate reads them */
#define B36(c) ((c) >= 'A' ? (c) - 'A' + 10 : (c) - '0')
#define SQLSTATE(s) (BW_ERR_SQLSTATE_BASE + (((B36(s[0]) * 36 + B36(s[1])) * 36 + B36(s[2])) \
						 * 36 + B36(s[3])) * 36 + B36(s[4]))

static const int connect_retry[] = { ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH,
				     ENETDOWN, ECONNRESET, EAGAIN, EADDRNOTAVAIL, 0 };
/* a unix server that has not made its socket yet */
static const int connect_retry_unix[] = { ENOENT, 0 };
static const int accept_retry[] = { ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM, EPROTO, 0 };
/* EINTR is the program's (a signal handler ran) and EAGAIN is a non-blocking socket's or
 * the program's own timeout: neither is ours to retry */
static const int io_retry[] = { ENOBUFS, 0 };
static const int resolve_retry[] = { EAI(EAI_AGAIN), 0 };
/* primary codes: each stands for its extended ones */
static const int sqlite_retry[] = { SQL(5) /* BUSY */, SQL(6) /* LOCKED */, 0 };
/* PostgreSQL: the answers that say the server could not take the call now, which the
 * pg hook still retries only where running the statement again cannot repeat an effect
 * (bulwark.yaml(5), RETRY): a connection exception (class 08, which 08000 stands for),
 * the server shutting down or starting up (57P01 57P02 57P03), too many connections
 * (53300), and a serialization failure or deadlock (40001 40P01) */
static const int pg_retry[] = { SQLSTATE("08000"), SQLSTATE("57P01"), SQLSTATE("57P02"),
				SQLSTATE("57P03"), SQLSTATE("53300"), SQLSTATE("40001"),
				SQLSTATE("40P01"), 0 };
/* MySQL and MariaDB: a server that cannot be reached or went away (client errors 2002
 * 2003 2006 2013), too many connections (1040), and the two lock conflicts that roll a
 * lone autocommit statement back (1205 lock wait timeout, 1213 deadlock); the mysql hook
 * still runs a statement again only where that cannot repeat an effect */
static const int mysql_retry[] = { MY(2002), MY(2003), MY(2006), MY(2013), MY(1040),
				   MY(1205), MY(1213), 0 };
/* Redis: the replies of a server that declined the command without running it, and a
 * connection refused or lost (a lost one runs a command again only where the redis hook
 * finds that safe); a timed-out read is ETIMEDOUT */
static const int redis_retry[] = { RD(1) /* LOADING */, RD(2) /* BUSY */, RD(3) /* TRYAGAIN */,
				   RD(4) /* CLUSTERDOWN */, RD(5) /* MASTERDOWN */,
				   ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, EHOSTUNREACH,
				   ENETUNREACH, 0 };
/* a name that does not exist says nothing about the resolver's health */
static const int resolve_healthy[] = { EAI(EAI_NONAME), EAI(EAI_NODATA), 0 };
static const int none[] = { 0 };

const struct bw_op_def bw_ops[BW_OP_COUNT] = {
	[BW_OP_CONNECT] = {
		.name = "connect", .spaces = BW_SPACE_ERRNO, .retry_on = connect_retry,
		.retry_on_unix = connect_retry_unix, .healthy = none, .refusal = ECONNREFUSED,
		.flags = BW_OPF_SOCKET | BW_OPF_REFUSE | BW_OPF_BREAKER | BW_OPF_SIGNALS |
			 BW_OPF_CONFIRM | BW_OPF_NONBLOCKING | BW_OPF_FALLBACK | BW_OPF_BULKHEAD |
			 BW_OPF_THROTTLE | BW_OPF_SLOW,
		.keys = BW_KEY_DEST, .what = "errno names",
	},
	[BW_OP_ACCEPT] = {
		.name = "accept", .spaces = BW_SPACE_ERRNO, .retry_on = accept_retry,
		.retry_on_unix = none, .healthy = none, .refusal = 0,
		.flags = BW_OPF_SOCKET | BW_OPF_SIGNALS | BW_OPF_BULKHEAD,
		.keys = BW_KEY_DEST, .what = "errno names",
	},
	[BW_OP_SEND] = {
		.name = "send", .spaces = BW_SPACE_ERRNO, .retry_on = io_retry,
		.retry_on_unix = none, .healthy = none, .refusal = 0,
		.flags = BW_OPF_SOCKET | BW_OPF_BREAKER_COUNTS | BW_OPF_BYTES |
			 BW_OPF_STREAM_FAULTS | BW_OPF_SIGNALS,
		.keys = BW_KEY_DEST, .what = "errno names",
	},
	[BW_OP_RECV] = {
		.name = "recv", .spaces = BW_SPACE_ERRNO, .retry_on = io_retry,
		.retry_on_unix = none, .healthy = none, .refusal = 0,
		.flags = BW_OPF_SOCKET | BW_OPF_BREAKER_COUNTS | BW_OPF_BYTES |
			 BW_OPF_STREAM_FAULTS | BW_OPF_EOF | BW_OPF_SIGNALS,
		.keys = BW_KEY_DEST, .what = "errno names",
	},
	[BW_OP_RESOLVE] = {
		.name = "resolve", .spaces = BW_SPACE_EAI, .retry_on = resolve_retry,
		.retry_on_unix = none, .healthy = resolve_healthy, .refusal = EAI(EAI_AGAIN),
		.flags = BW_OPF_REFUSE | BW_OPF_BREAKER | BW_OPF_BULKHEAD | BW_OPF_THROTTLE |
			 BW_OPF_SLOW | BW_OPF_ANSWERS,
		.keys = BW_KEY_HOST, .what = "EAI_* names",
	},
	[BW_OP_SQLITE] = {
		.name = "sqlite", .spaces = BW_SPACE_SQLITE, .retry_on = sqlite_retry,
		.retry_on_unix = none, .healthy = none, .refusal = SQL(5),
		.flags = BW_OPF_REFUSE | BW_OPF_BREAKER | BW_OPF_BULKHEAD | BW_OPF_THROTTLE |
			 BW_OPF_SLOW | BW_OPF_ANSWERS,
		.keys = BW_KEY_DB, .what = "SQLITE_* names",
	},
	/* libpq's calls: a breaker, a call limit, a bulkhead and throttling act on
	 * connections (the connect family and the reconnects bulwark makes), a refusal is a
	 * connection that could not be established (08001) */
	[BW_OP_PG] = {
		.name = "pg", .spaces = BW_SPACE_SQLSTATE, .retry_on = pg_retry,
		.retry_on_unix = none, .healthy = none, .refusal = SQLSTATE("08001"),
		.flags = BW_OPF_REFUSE | BW_OPF_BREAKER | BW_OPF_BULKHEAD | BW_OPF_THROTTLE |
			 BW_OPF_SLOW | BW_OPF_ANSWERS,
		.keys = BW_KEY_DEST | BW_KEY_DB, .what = "SQLSTATE_* names",
	},
	/* libmariadb's calls: a breaker and a call limit act on connections (mysql_real_connect
	 * and the reconnects bulwark makes), a refusal is a server that cannot be reached
	 * (2002, CR_CONNECTION_ERROR, as libmariadb says it by TCP and by socket file) */
	[BW_OP_MYSQL] = {
		.name = "mysql", .spaces = BW_SPACE_MYSQL, .retry_on = mysql_retry,
		.retry_on_unix = none, .healthy = none, .refusal = MY(2002),
		.flags = BW_OPF_REFUSE | BW_OPF_BREAKER | BW_OPF_IDEMPOTENT,
		.keys = BW_KEY_DEST | BW_KEY_DB, .what = "MYSQL_* names",
	},
	/* hiredis's calls: connection failures are errno names, error replies REDIS_* names;
	 * a breaker and a call limit act on connections (redisConnect*, redisReconnect and
	 * the reconnects bulwark makes) */
	[BW_OP_REDIS] = {
		.name = "redis", .spaces = BW_SPACE_REDIS | BW_SPACE_ERRNO, .retry_on = redis_retry,
		.retry_on_unix = connect_retry_unix, .healthy = none, .refusal = ECONNREFUSED,
		.flags = BW_OPF_REFUSE | BW_OPF_BREAKER | BW_OPF_IDEMPOTENT,
		.keys = BW_KEY_DEST | BW_KEY_DB, .what = "REDIS_* names",
	},
};

const char *const bw_op_names[BW_OP_COUNT + 1] = {
	"connect", "accept", "send", "recv", "resolve", "sqlite", "pg", "mysql", "redis", NULL
};

void bw_ops_phrase(unsigned mask, char *buf, size_t cap)
{
	int n = 0, total = 0;
	size_t o = 0;
	for (int i = 0; i < BW_OP_COUNT; i++)
		total += (mask & BW_OPBIT(i)) != 0;
	buf[0] = '\0';
	for (int i = 0; i < BW_OP_COUNT && o < cap; i++) {
		if (!(mask & BW_OPBIT(i)))
			continue;
		const char *sep = n == 0 ? "" : n == total - 1 ? " and " : ", ";
		int w = snprintf(buf + o, cap - o, "%s%s", sep, bw_ops[i].name);
		o += w > 0 ? (size_t)w : 0;
		n++;
	}
}

unsigned bw_ops_with(unsigned flag)
{
	unsigned m = 0;
	for (int i = 0; i < BW_OP_COUNT; i++)
		if (bw_ops[i].flags & flag)
			m |= BW_OPBIT(i);
	return m;
}

unsigned bw_ops_keyed(unsigned key)
{
	unsigned m = 0;
	for (int i = 0; i < BW_OP_COUNT; i++)
		if (bw_ops[i].keys & key)
			m |= BW_OPBIT(i);
	return m;
}

unsigned bw_ops_in_space(unsigned space)
{
	unsigned m = 0;
	for (int i = 0; i < BW_OP_COUNT; i++)
		if (bw_ops[i].spaces & space)
			m |= BW_OPBIT(i);
	return m;
}

int bw_op_parse(const char *name)
{
	for (int i = 0; i < BW_OP_COUNT; i++)
		if (strcmp(bw_op_names[i], name) == 0)
			return i;
	return -1;
}

const char *bw_op_name(int op)
{
	return op >= 0 && op < BW_OP_COUNT ? bw_ops[op].name : "?";
}

int bw_err_listed(const int *list, int code)
{
	for (; list && *list; list++)
		if (bw_err_matches(*list, code))
			return 1;
	return 0;
}

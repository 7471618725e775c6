/* Redis client calls (hiredis), found at run time: the library never links hiredis.
 *
 * The connect family (redisConnect, redisConnectWithTimeout, redisConnectUnix,
 * redisConnectUnixWithTimeout, redisConnectWithOptions; they meet in the last in 1.x) and
 * redisReconnect are retried when the connection fails for a reason that passes (refused,
 * reset, timed out, a socket file not there yet), and refused by an open breaker or a
 * spent call limit. A refused or injected connection is a context hiredis made itself
 * around no descriptor (redisConnectFd(-1)), its error set with hiredis's own
 * __redisSetError: err REDIS_ERR_IO and an errstr that names the rule, as a failed
 * connect returns it, and no connect(2) made. The non-blocking starts are refused alike,
 * never retried.
 *
 * A command (redisCommand, redisvCommand, redisCommandArgv) is sent again only where that
 * cannot repeat an effect (bulwark.yaml(5), RETRY), and only on a blocking context that
 * was idle: no MULTI, WATCH or subscription, no pipelined command waiting for its reply.
 * Then: a reply that says the server declined it without running it (LOADING, BUSY,
 * TRYAGAIN, CLUSTERDOWN, MASTERDOWN) sends it again; a server that closed the connection
 * before the command was sent, seen on the socket before the call, gets a new connection
 * first (redisReconnect, with the database SELECTed again); a connection lost after the
 * command was sent leaves its outcome unknown, and only a read-only command (an
 * allow-list) or one the rule's `idempotent` list names goes again on a new connection. Scripts (EVAL, FCALL) are never sent again
 * after an error reply, which may be their own. A session that holds state a new
 * connection would lose (AUTH, HELLO, CLIENT SETNAME, a subscription) is not reconnected.
 * Pipelines (redisAppendCommand, redisGetReply) are observed: their replies are counted,
 * never sent again. The async API's connects (redisAsyncConnect, ...Unix, ...WithOptions)
 * are admitted or refused as the non-blocking starts they make; its commands pass. Commands are neither refused nor counted by a breaker; the
 * reconnects made for them are. Events carry the server, the database number and the
 * error, never command arguments or values. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dbwhere.h"
#include "errnames.h"
#include "hook.h"
#include "ops.h"
#include "redis_real.h"
#include "state.h"

BW_FOREIGN_DEPTH(depth);

static int resolve(const void *caller)
{
	return bw_foreign_resolve(&bw_rd_lib, caller);
}

/* The layout of hiredis's structures: 0 (0.13, 0.14), 1 (1.x), or -1 unknown: passed
 * through. */
static int layout(void)
{
	if (bw_rd.connect_with_options)
		return 1;
	return bw_rd.connect_bind_nonblock_reuse ? 0 : -1;
}

/* What acting needs of hiredis beyond the calls it hooks. */
static int understood(void)
{
	return layout() >= 0 && bw_rd.connect_fd && bw_rd.set_error && bw_rd.free &&
	       bw_rd.reconnect && bw_rd.vcommand && bw_rd.command_argv &&
	       bw_rd.vformat_command && bw_rd.free_command && bw_rd.free_reply &&
	       bw_rd.reader_create && bw_rd.reader_feed && bw_rd.reader_get_reply &&
	       bw_rd.reader_free;
}

/* ---- a context and a reply, in the layout of the hiredis at hand ---- */

#define CTX(c, field) (layout() == 1 ? ((const struct bw_redis_ctx1 *)(c))->field \
				      : ((const struct bw_redis_ctx0 *)(c))->field)
#define REPLY(r, field) (layout() == 1 ? ((const struct bw_redis_reply1 *)(r))->field \
					: ((const struct bw_redis_reply0 *)(r))->field)

/* ---- where a connection goes ---- */

static void init_call(struct bw_call *c, const struct bw_rule *r, const char *call,
		      const struct bw_db_where *w)
{
	bw_call_init(c, r, BW_OP_REDIS, call);
	c->dest = w->dest;
	c->db = w->db;
	c->key = w->key;
	c->unix_dest = w->unix_dest;
}

/* ---- what each context holds ----
 *
 * Recorded for the contexts that hold something: the database SELECTed (given back to a
 * new connection), state a new connection would lose (AUTH, HELLO, CLIENT SETNAME and the
 * like, a subscription, MONITOR), an open MULTI or WATCH, and the pipelined commands whose
 * replies the program has not read. A context that cannot be recorded (the table is
 * full) stops every retry of a command in the process. */

enum { RS_STATE = 1, RS_MULTI = 2, RS_WATCH = 4 };

#define RD_SESSIONS 256
static struct rd_sess {
	redisContext *c;             /* claimed by a compare-and-swap; NULL: free */
	int db;
	int flags;
	int pending;
} sess[RD_SESSIONS];
static int n_sess;
static int sess_lost;

static struct rd_sess *sess_find(const redisContext *c)
{
	if (!__atomic_load_n(&n_sess, __ATOMIC_RELAXED))
		return NULL;
	for (int i = 0; i < RD_SESSIONS; i++)
		if (__atomic_load_n(&sess[i].c, __ATOMIC_ACQUIRE) == c)
			return &sess[i];
	return NULL;
}

/* c's entry, made when it has none; NULL when the table is full. A context is used by
 * one thread at a time: its entry's fields are written by that thread only. */
static struct rd_sess *sess_get(redisContext *c)
{
	struct rd_sess *s = sess_find(c);
	if (s)
		return s;
	for (int i = 0; i < RD_SESSIONS; i++) {
		redisContext *expect = NULL;
		if (__atomic_load_n(&sess[i].c, __ATOMIC_RELAXED) ||
		    !__atomic_compare_exchange_n(&sess[i].c, &expect, c, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		sess[i].db = 0;
		sess[i].flags = 0;
		sess[i].pending = 0;
		__atomic_add_fetch(&n_sess, 1, __ATOMIC_RELAXED);
		return &sess[i];
	}
	__atomic_store_n(&sess_lost, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* c's session is new (connected anew) or gone (freed). */
static void sess_forget(redisContext *c)
{
	struct rd_sess *s = sess_find(c);
	if (!s)
		return;
	redisContext *expect = c;
	if (__atomic_compare_exchange_n(&s->c, &expect, NULL, 0, __ATOMIC_RELEASE,
					__ATOMIC_RELAXED))
		__atomic_sub_fetch(&n_sess, 1, __ATOMIC_RELAXED);
}

/* ---- commands by name ---- */

enum cmd_kind {
	K_OTHER, K_READ, K_SELECT, K_MULTI, K_END_MULTI, K_WATCH, K_UNWATCH, K_STATE,
	K_SCRIPT, K_QUIT
};

struct cmd {
	enum cmd_kind kind;
	int db;                      /* SELECT's argument */
	char name[32];               /* for the rule's idempotent list; "" when longer */
};

/* Commands that read and change nothing, so that one sent again after its connection was
 * lost cannot repeat an effect. An allow-list: a command not named here is not sent
 * again. */
static const char *const read_only[] = {
	"GET", "MGET", "EXISTS", "TTL", "PTTL", "TYPE", "STRLEN", "GETRANGE", "SUBSTR",
	"GETBIT", "BITCOUNT", "BITPOS", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "HKEYS",
	"HVALS", "HSTRLEN", "HSCAN", "LLEN", "LRANGE", "LINDEX", "LPOS", "SCARD", "SISMEMBER",
	"SMISMEMBER", "SMEMBERS", "SSCAN", "SINTER", "SUNION", "SDIFF", "ZCARD", "ZSCORE",
	"ZMSCORE", "ZRANGE", "ZRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGE", "ZREVRANGEBYSCORE",
	"ZREVRANGEBYLEX", "ZRANK", "ZREVRANK", "ZCOUNT", "ZLEXCOUNT", "ZSCAN", "XRANGE",
	"XREVRANGE", "XLEN", "PFCOUNT", "GEOPOS", "GEODIST", "GEOHASH", "SCAN", "KEYS",
	"DBSIZE", "RANDOMKEY", "PING", "ECHO", "TIME", "EXPIRETIME", "PEXPIRETIME", "DUMP",
	"LCS", "SORT_RO",
};

/* Commands after which a new connection is not the same session. */
static const char *const session_state[] = {
	"AUTH", "HELLO", "CLIENT", "READONLY", "READWRITE", "SUBSCRIBE", "PSUBSCRIBE",
	"SSUBSCRIBE", "MONITOR", "RESET",
};

static const char *const scripts[] = {
	"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO",
};

static int name_is(const char *name, size_t n, const char *s)
{
	size_t i = 0;
	for (; i < n && s[i]; i++) {
		char c = name[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != s[i])
			return 0;
	}
	return i == n && !s[i];
}

static int listed(const char *const *list, size_t count, const char *name, size_t n)
{
	for (size_t i = 0; i < count; i++)
		if (name_is(name, n, list[i]))
			return 1;
	return 0;
}

#define LISTED(list, name, n) listed(list, sizeof list / sizeof list[0], name, n)

/* A command from its name and first argument (arg may be NULL). */
static struct cmd classify(const char *name, size_t n, const char *arg, size_t an)
{
	struct cmd c = { K_OTHER, 0, "" };
	if (n < sizeof c.name && !memchr(name, '\0', n)) {
		memcpy(c.name, name, n);
		c.name[n] = '\0';
	}
	if (name_is(name, n, "SELECT")) {
		long v = 0;
		size_t i = 0;
		for (; arg && i < an && i < 9 && arg[i] >= '0' && arg[i] <= '9'; i++)
			v = v * 10 + (arg[i] - '0');
		c.kind = arg && i == an && an > 0 ? K_SELECT : K_STATE;
		c.db = (int)v;
	} else if (name_is(name, n, "MULTI")) {
		c.kind = K_MULTI;
	} else if (name_is(name, n, "EXEC") || name_is(name, n, "DISCARD")) {
		c.kind = K_END_MULTI;
	} else if (name_is(name, n, "WATCH")) {
		c.kind = K_WATCH;
	} else if (name_is(name, n, "UNWATCH")) {
		c.kind = K_UNWATCH;
	} else if (name_is(name, n, "QUIT")) {
		c.kind = K_QUIT;
	} else if (LISTED(session_state, name, n)) {
		/* CLIENT ID, INFO, LIST and GETNAME only read */
		c.kind = K_STATE;
		if (name_is(name, n, "CLIENT") && arg &&
		    (name_is(arg, an, "ID") || name_is(arg, an, "INFO") ||
		     name_is(arg, an, "LIST") || name_is(arg, an, "GETNAME")))
			c.kind = K_OTHER;
	} else if (LISTED(scripts, name, n)) {
		c.kind = K_SCRIPT;
	} else if (LISTED(read_only, name, n)) {
		c.kind = K_READ;
	}
	return c;
}

/* One bulk string of a formatted command at *p ("$3\r\nGET\r\n"): its bytes and length,
 * *p moved past it; NULL when there is none. */
static const char *bulk(const char **p, const char *end, size_t *n)
{
	const char *q = *p;
	size_t len = 0;
	if (q >= end || *q != '$')
		return NULL;
	for (q++; q < end && *q >= '0' && *q <= '9' && len < ((size_t)1 << 40); q++)
		len = len * 10 + (size_t)(*q - '0');
	if (end - q < 2 || q[0] != '\r' || q[1] != '\n' || (size_t)(end - q - 2) < len + 2)
		return NULL;
	q += 2;
	*n = len;
	*p = q + len + 2;
	return q;
}

/* The command a format string and its arguments make, as hiredis formats it. */
static struct cmd classify_format(const char *fmt, va_list ap)
{
	struct cmd c = { K_OTHER, 0, "" };
	char *cmd = NULL;
	va_list aq;
	va_copy(aq, ap);
	int len = bw_rd.vformat_command(&cmd, fmt, aq);
	va_end(aq);
	if (len <= 0 || !cmd)
		return c;
	const char *p = cmd, *end = cmd + len;
	while (p < end && *p != '\n')
		p++;
	p++;
	size_t n = 0, an = 0;
	const char *name = p < end ? bulk(&p, end, &n) : NULL;
	const char *arg = name ? bulk(&p, end, &an) : NULL;
	if (name)
		c = classify(name, n, arg, an);
	bw_rd.free_command(cmd);
	return c;
}

/* ---- what a failure says ---- */

/* A failed context's error as a code: errno names for a connection refused, reset, lost
 * or timed out (hiredis words them as strerror does, in this thread's language), 0 for
 * what says nothing against the server (an unknown host, a protocol error). */
static int ctx_failure(const redisContext *c)
{
	static const int errs[] = { ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, EHOSTUNREACH,
				    ENETUNREACH, ENETDOWN, ENOENT, EAGAIN, ECONNABORTED };
	int type = CTX(c, err);
	if (type == BW_REDIS_ERR_EOF)
		return ECONNRESET;
	if (type == BW_REDIS_ERR_TIMEOUT)
		return ETIMEDOUT;
	if (type != BW_REDIS_ERR_IO)
		return 0;
	const char *m = CTX(c, errstr);
	int saved = errno;
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		char buf[128];
		const char *text = strerror_r(errs[i], buf, sizeof buf);
		if (text && text[0] && strstr(m, text)) {
			errno = saved;
			/* a read that timed out comes back as EAGAIN from a blocking socket */
			return errs[i] == EAGAIN ? ETIMEDOUT : errs[i];
		}
	}
	errno = saved;
	return 0;
}

/* The server declined the command without running it. */
static int declined(int code)
{
	return code == BW_ERR_REDIS_BASE + 1 || code == BW_ERR_REDIS_BASE + 2 ||
	       code == BW_ERR_REDIS_BASE + 3 || code == BW_ERR_REDIS_BASE + 4 ||
	       code == BW_ERR_REDIS_BASE + 5;
}

static int reply_code(const void *reply)
{
	if (!reply || REPLY(reply, type) != BW_REDIS_REPLY_ERROR || !REPLY(reply, str))
		return 0;
	return bw_err_redis_reply(REPLY(reply, str), REPLY(reply, len));
}

/* An error reply made by hiredis's own reader (freed with freeReplyObject), saying
 * text; NULL when it cannot be made. */
static void *error_reply(const char *text)
{
	char buf[256];
	void *reply = NULL;
	int n = snprintf(buf, sizeof buf, "-%s\r\n", text);
	redisReader *r = bw_rd.reader_create();
	if (!r || n <= 0 || (size_t)n >= sizeof buf)
		goto out;
	if (bw_rd.reader_feed(r, buf, (size_t)n) != BW_REDIS_OK ||
	    bw_rd.reader_get_reply(r, &reply) != BW_REDIS_OK)
		reply = NULL;
out:
	if (r)
		bw_rd.reader_free(r);
	return reply;
}

/* ---- the connect family ---- */

enum open_kind { O_TCP, O_TCP_TIMEOUT, O_TCP_NONBLOCK, O_UNIX, O_UNIX_TIMEOUT,
		 O_UNIX_NONBLOCK, O_OPTIONS };

struct rd_open {
	enum open_kind kind;
	const char *host;
	int port;
	const char *path;
	struct timeval tv;
	const struct bw_redis_options *opts;
	redisContext *ret;
	struct bw_db_where w;
	struct bw_engine *e;
	const struct bw_call *c;
};

static int nonblocking(const struct rd_open *o)
{
	return o->kind == O_TCP_NONBLOCK || o->kind == O_UNIX_NONBLOCK ||
	       (o->kind == O_OPTIONS && (o->opts->options & BW_REDIS_OPT_NONBLOCK));
}

static redisContext *open_real(const struct rd_open *o)
{
	switch (o->kind) {
	case O_TCP: return bw_rd.connect(o->host, o->port);
	case O_TCP_TIMEOUT: return bw_rd.connect_timeout(o->host, o->port, o->tv);
	case O_TCP_NONBLOCK: return bw_rd.connect_nonblock(o->host, o->port);
	case O_UNIX: return bw_rd.connect_unix(o->path);
	case O_UNIX_TIMEOUT: return bw_rd.connect_unix_timeout(o->path, o->tv);
	case O_UNIX_NONBLOCK: return bw_rd.connect_unix_nonblock(o->path);
	default: return bw_rd.connect_with_options(o->opts);
	}
}

/* A context that says text, made without connecting; NULL when hiredis gives none. */
static redisContext *failed_context(const char *text, int err)
{
	redisContext *c = bw_rd.connect_fd(-1);
	if (c) {
		bw_rd.set_error(c, BW_REDIS_ERR_IO, text);
		errno = bw_err_is_errno(err) ? err : ECONNREFUSED;
	}
	return c;
}

static void drop(struct rd_open *o)
{
	if (o->ret)
		bw_rd.free(o->ret);
	o->ret = NULL;
}

static int open_attempt(void *arg, int n, int64_t deadline)
{
	struct rd_open *o = arg;
	(void)deadline;
	drop(o);
	struct bw_fault f;
	if (bw_engine_inject(o->e, o->c, &f) && f.err) {
		char msg[BW_DEST_NAME_MAX + BW_NAME_MAX + 160];
		snprintf(msg, sizeof msg, "bulwark: injected %s (rule \"%s\"); no connection to "
			 "%s was attempted", bw_err_name(f.err), o->c->rule->name, o->w.dest);
		o->ret = failed_context(msg, f.err);
		if (o->ret)
			return f.err;
	}
	(void)n;
	o->ret = open_real(o);
	return o->ret && CTX(o->ret, err) ? ctx_failure(o->ret) : 0;
}

static int open_refuse(void *arg, int err)
{
	struct rd_open *o = arg;
	char msg[BW_DEST_NAME_MAX + BW_NAME_MAX + 160];
	drop(o);
	snprintf(msg, sizeof msg, "bulwark refused %s: rule \"%s\" (breaker open or call "
		 "limit spent); no connection attempted", o->w.dest, o->c->rule->name);
	o->ret = failed_context(msg, err);
	return err;
}

static redisContext *open_conn(const void *caller, struct rd_open *o, const char *call)
{
	struct bw_engine *e = understood() ? bw_engine_for(BW_OP_REDIS) : NULL;
	int acting = e ? bw_foreign_enter(&bw_rd_lib, &depth, caller) : 0;
	const struct bw_rule *r = NULL;
	if (acting) {
		if (o->path)
			bw_db_where_set(&o->w, BW_OP_REDIS, NULL, 0, o->path, "0");
		else if (o->host)
			bw_db_where_set(&o->w, BW_OP_REDIS, o->host, o->port, NULL, "0");
		if (o->path || o->host)
			r = bw_engine_match(e, &o->w.t, NULL);
	}
	if (!r) {
		o->ret = open_real(o);
	} else {
		struct bw_call c;
		init_call(&c, r, call, &o->w);
		c.attempt = open_attempt;
		c.arg = o;
		c.refuse = open_refuse;
		o->e = e;
		o->c = &c;
		if (nonblocking(o)) {
			/* connecting goes on in the program's event loop: admitted or refused
			 * now, never retried, its outcome met by the connect rules */
			if (bw_engine_admit_call(e, &c) == 0) {
				o->ret = open_real(o);
				if (o->ret && CTX(o->ret, err))
					bw_engine_outcome(e, &c, ctx_failure(o->ret));
				else
					bw_engine_release(e, &c);
			}
		} else {
			bw_foreign_ruled_enter(r);
			bw_engine_run(e, &c, bw_thread_rng());
			bw_foreign_ruled_leave(r);
		}
	}
	bw_foreign_leave(&depth, acting);
	if (o->ret)
		sess_forget(o->ret);
	return o->ret;
}

#define OPEN_HOOK(fn, kind_, call, params, ...)                                        \
	BW_HOOK redisContext *fn params                                               \
	{                                                                              \
		const void *caller = __builtin_return_address(0);                      \
		struct rd_open o = { .kind = kind_, __VA_ARGS__ };                      \
		if (resolve(caller) < 0 || !bw_rd.call)                                 \
			return NULL;                                                   \
		return open_conn(caller, &o, #fn);                                     \
	}

OPEN_HOOK(redisConnect, O_TCP, connect, (const char *ip, int port), .host = ip, .port = port)
OPEN_HOOK(redisConnectWithTimeout, O_TCP_TIMEOUT, connect_timeout,
	  (const char *ip, int port, const struct timeval tv), .host = ip, .port = port, .tv = tv)
OPEN_HOOK(redisConnectNonBlock, O_TCP_NONBLOCK, connect_nonblock, (const char *ip, int port),
	  .host = ip, .port = port)
OPEN_HOOK(redisConnectUnix, O_UNIX, connect_unix, (const char *path), .path = path)
OPEN_HOOK(redisConnectUnixWithTimeout, O_UNIX_TIMEOUT, connect_unix_timeout,
	  (const char *path, const struct timeval tv), .path = path, .tv = tv)
OPEN_HOOK(redisConnectUnixNonBlock, O_UNIX_NONBLOCK, connect_unix_nonblock, (const char *path),
	  .path = path)

BW_HOOK redisContext *redisConnectWithOptions(const struct bw_redis_options *opts)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.connect_with_options)
		return NULL;
	struct rd_open o = { .kind = O_OPTIONS, .opts = opts };
	if (opts && opts->type == BW_REDIS_CONN_TCP) {
		o.host = opts->endpoint.tcp.ip;
		o.port = opts->endpoint.tcp.port;
	} else if (opts && opts->type == BW_REDIS_CONN_UNIX) {
		o.path = opts->endpoint.unix_socket;
	}
	return open_conn(caller, &o, "redisConnectWithOptions");
}

/* ---- the async API's connects ----
 *
 * They start a non-blocking connection through the library's own redisConnectNonBlock,
 * redisConnectUnixNonBlock or redisConnectWithOptions: as wrappers, the policy acts on
 * that inner call as the program's, which admits or refuses it (a refused one gives an
 * async context with err set, as hiredis copies a failed context's error). Commands and
 * their replies, which come back in the program's callbacks, are passed through. */

BW_HOOK void *redisAsyncConnect(const char *ip, int port)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.async_connect)
		return NULL;
	int inner = bw_foreign_wrap_enter(&bw_rd_lib, &depth, caller);
	void *ac = bw_rd.async_connect(ip, port);
	bw_foreign_wrap_leave(&depth, inner);
	return ac;
}

BW_HOOK void *redisAsyncConnectUnix(const char *path)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.async_connect_unix)
		return NULL;
	int inner = bw_foreign_wrap_enter(&bw_rd_lib, &depth, caller);
	void *ac = bw_rd.async_connect_unix(path);
	bw_foreign_wrap_leave(&depth, inner);
	return ac;
}

BW_HOOK void *redisAsyncConnectWithOptions(const struct bw_redis_options *opts)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.async_connect_with_options)
		return NULL;
	int inner = bw_foreign_wrap_enter(&bw_rd_lib, &depth, caller);
	void *ac = bw_rd.async_connect_with_options(opts);
	bw_foreign_wrap_leave(&depth, inner);
	return ac;
}

/* ---- commands ---- */

enum cmd_call { C_COMMAND, C_VCOMMAND, C_ARGV };

static const char *const cmd_call_names[] = { "redisCommand", "redisvCommand",
					      "redisCommandArgv" };

struct rd_cmd {
	enum cmd_call call_kind;
	redisContext *c;
	const char *fmt;
	va_list *ap;
	int argc;
	const char **argv;
	const size_t *argvlen;
	struct cmd cmd;
	void *reply;
	int ran;
	int idle;                    /* the context was idle before the call */
	int reconnect;               /* connect anew before it is sent */
	int db;                      /* the database to SELECT on a new connection */
	struct bw_stop stop;
	struct bw_engine *e;
	struct bw_call call;
	struct bw_call reconnect_call;
};

static void cmd_run(struct rd_cmd *s)
{
	s->ran = 1;
	if (s->call_kind == C_ARGV) {
		s->reply = bw_rd.command_argv(s->c, s->argc, s->argv, s->argvlen);
	} else {
		va_list aq;
		va_copy(aq, *s->ap);
		s->reply = bw_rd.vcommand(s->c, s->fmt, aq);
		va_end(aq);
	}
}

static int ctx_fd(const redisContext *c)
{
	return CTX(c, fd);
}

/* The server closed an idle connection (a restart, CLIENT KILL, a timeout): its end of
 * the socket is closed, though hiredis has not read it yet. A command sent now would
 * never run. */
static int server_gone(const redisContext *c)
{
	int fd = ctx_fd(c);
	if (fd < 0)
		return 0;
	int saved = errno;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	int rc = poll(&p, 1, 0);
	errno = saved;
	return rc == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static const struct bw_stop stop_state = { 1, "session_state",
	"the connection holds state (AUTH, HELLO, CLIENT SETNAME, a subscription) which a new "
	"connection would lose: not reconnected" };
static const struct bw_stop stop_unknown = { 1, "unknown_outcome",
	"the connection was lost after the command was sent: it may have run, and it is not "
	"known to be read-only, so it is not sent again" };

/* Give a new connection the database the old one had SELECTed, and say so. 0, or the
 * error that stops the call. */
static int restore_db(struct rd_cmd *s)
{
	if (s->db == 0)
		return 0;
	char num[16];
	int n = snprintf(num, sizeof num, "%d", s->db);
	const char *argv[2] = { "SELECT", num };
	const size_t len[2] = { 6, (size_t)n };
	void *reply = bw_rd.command_argv(s->c, 2, argv, len);
	int ok = reply && REPLY(reply, type) != BW_REDIS_REPLY_ERROR;
	if (reply)
		bw_rd.free_reply(reply);
	struct bw_event ev;
	if (!ok) {
		s->stop = stop_state;
		return CTX(s->c, err) ? ctx_failure(s->c) : ECONNRESET;
	}
	struct rd_sess *rs = sess_get(s->c);
	if (rs)
		rs->db = s->db;
	bw_event_init(&ev, BW_EV_RESTORED, BW_LVL_INFO);
	ev.reason = "session_state";
	ev.msg = "the new connection SELECTed the database the old one had";
	bw_engine_emit(s->e, &s->reconnect_call, &ev);
	return 0;
}

/* A new connection in place of the old, admitted and judged like a connect:
 * redisReconnect keeps the context, its server and timeouts. */
static int reconnect(struct rd_cmd *s)
{
	struct bw_call *c = &s->reconnect_call;
	if (bw_engine_admits(c->rule, BW_OP_REDIS)) {
		int by_breaker;
		int err = bw_engine_admit(s->e, c, &by_breaker);
		if (err) {
			s->stop = (struct bw_stop){ 1, NULL, NULL };
			return err;
		}
	}
	int rc = bw_rd.reconnect(s->c);
	int err = rc == BW_REDIS_OK ? 0 : ctx_failure(s->c);
	bw_engine_settle(s->e, c, err);
	if (rc != BW_REDIS_OK && !err) {
		s->stop = (struct bw_stop){ 1, NULL, NULL };
		return ECONNRESET;
	}
	if (err)
		return err;
	sess_forget(s->c);
	return restore_db(s);
}

/* The session may be made anew: it holds nothing a new connection would lose but its
 * database, which is SELECTed again. */
static int may_reconnect(const redisContext *c)
{
	const struct rd_sess *rs = sess_find(c);
	return !__atomic_load_n(&sess_lost, __ATOMIC_RELAXED) && !(rs && (rs->flags & RS_STATE));
}

/* The rule's author says the command may run twice (`idempotent: [SET, HSET]`). Not a
 * command of MULTI or WATCH, nor one that changes the session: those say what the
 * connection is, which a new one is not. */
static int vouched(const struct rd_cmd *s)
{
	const struct bw_rule *r = s->call.rule;
	if (s->cmd.kind != K_OTHER && s->cmd.kind != K_SCRIPT)
		return 0;
	for (int i = 0; s->cmd.name[0] && i < r->n_idempotent; i++)
		if (strcasecmp(s->cmd.name, r->idempotent[i]) == 0)
			return 1;
	return 0;
}

static int cmd_outcome(struct rd_cmd *s)
{
	if (!s->reply) {
		int err = CTX(s->c, err) ? ctx_failure(s->c) : 0;
		if (!err)
			return 0;
		s->stop = (struct bw_stop){ 1, NULL, NULL };
		if (!s->idle)
			return err;
		if (s->cmd.kind != K_READ && !vouched(s))
			s->stop = stop_unknown;
		else if (!may_reconnect(s->c))
			s->stop = stop_state;
		else
			s->stop.now = 0, s->reconnect = 1;
		return err;
	}
	int code = reply_code(s->reply);
	if (!code || !declined(code))
		return 0;
	/* declined, not run: sent again on the same connection, but a script's error may be
	 * its own, and inside MULTI it was queued */
	if (!s->idle || s->cmd.kind == K_SCRIPT)
		s->stop = (struct bw_stop){ 1, NULL, NULL };
	return code;
}

/* An injected fault, never sent: an error reply (REDIS_*), a server that declined it;
 * an errno, a connection that broke before it was sent, which hiredis's context then
 * holds as it would hold a real one (the next attempt connects anew). */
static int cmd_injected(struct rd_cmd *s)
{
	struct bw_fault f;
	char text[160];
	if (!bw_engine_inject(s->e, &s->call, &f) || !f.err)
		return 0;
	if (bw_err_space(f.err) == BW_SPACE_REDIS) {
		snprintf(text, sizeof text, "%s bulwark: injected (rule \"%s\"); the command was "
			 "not sent", bw_err_name(f.err) + 6, s->call.rule->name);
		s->reply = error_reply(text);
		if (!s->reply)
			return 0;
	} else {
		snprintf(text, sizeof text, "bulwark: injected %s (rule \"%s\"); the command was "
			 "not sent", bw_err_name(f.err), s->call.rule->name);
		bw_rd.set_error(s->c, BW_REDIS_ERR_IO, text);
		errno = f.err;
		if (!s->idle)
			s->stop = (struct bw_stop){ 1, NULL, NULL };
		else if (!may_reconnect(s->c))
			s->stop = stop_state;
		else
			s->reconnect = 1;
	}
	s->ran = 1;
	return f.err;
}

static int cmd_attempt(void *arg, int n, int64_t deadline)
{
	struct rd_cmd *s = arg;
	(void)deadline;
	s->stop = (struct bw_stop){ 0, NULL, NULL };
	if (s->reply) {
		/* an answer that declined the command: this attempt brings the next */
		bw_rd.free_reply(s->reply);
		s->reply = NULL;
	}
	if (s->reconnect) {
		if (n == 1) {
			/* not sent: its server had closed the connection */
			if (!may_reconnect(s->c))
				s->stop = stop_state;
			return ECONNRESET;
		}
		int err = reconnect(s);
		if (err)
			return err;
		s->reconnect = 0;
	}
	int err = cmd_injected(s);
	if (err)
		return err;
	cmd_run(s);
	return cmd_outcome(s);
}

/* What the command did to its session, once its reply is in. */
static void note_session(redisContext *c, const struct cmd *cmd, const void *reply, int lost)
{
	if (!c || cmd->kind == K_OTHER || cmd->kind == K_READ || cmd->kind == K_SCRIPT ||
	    cmd->kind == K_QUIT)
		return;
	int ok = reply && REPLY(reply, type) != BW_REDIS_REPLY_ERROR;
	struct rd_sess *rs = sess_find(c);
	switch (cmd->kind) {
	case K_SELECT:
		if (ok && (rs || cmd->db != 0) && (rs || (rs = sess_get(c))))
			rs->db = cmd->db;
		break;
	case K_MULTI:
		if (ok && (rs || (rs = sess_get(c))))
			rs->flags |= RS_MULTI;
		break;
	case K_WATCH:
		if (ok && (rs || (rs = sess_get(c))))
			rs->flags |= RS_WATCH;
		break;
	case K_END_MULTI:
		if (rs && (reply || lost))
			rs->flags &= ~(RS_MULTI | RS_WATCH);
		break;
	case K_UNWATCH:
		if (rs && ok)
			rs->flags &= ~RS_WATCH;
		break;
	default:
		/* sent, whatever came back: the session may hold it */
		if (rs || (rs = sess_get(c)))
			rs->flags |= RS_STATE;
		break;
	}
}

/* A blocking context with no MULTI, WATCH, subscription or unread pipelined reply. */
static int ctx_idle(const redisContext *c, int *db)
{
	const struct rd_sess *rs = sess_find(c);
	*db = rs ? rs->db : 0;
	if (__atomic_load_n(&sess_lost, __ATOMIC_RELAXED) || CTX(c, err) ||
	    !(CTX(c, flags) & BW_REDIS_BLOCK))
		return 0;
	return !rs || (!(rs->flags & (RS_MULTI | RS_WATCH)) && rs->pending == 0);
}

/* Where a connected context goes: its host and port, or socket file, and its database. */
static int where_ctx(const redisContext *c, int db, struct bw_db_where *w)
{
	char num[16];
	snprintf(num, sizeof num, "%d", db);
	int type = CTX(c, connection_type);
	if (type == BW_REDIS_CONN_UNIX && CTX(c, unix_sock.path))
		bw_db_where_set(w, BW_OP_REDIS, NULL, 0, CTX(c, unix_sock.path), num);
	else if (type == BW_REDIS_CONN_TCP && CTX(c, tcp.host))
		bw_db_where_set(w, BW_OP_REDIS, CTX(c, tcp.host), CTX(c, tcp.port), NULL, num);
	else
		return -1;
	return 0;
}

static void cmd_call(const void *caller, struct rd_cmd *s)
{
	struct bw_engine *e = s->c && understood() ? bw_engine_for(BW_OP_REDIS) : NULL;
	int acting = e ? bw_foreign_enter(&bw_rd_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = NULL;
	if (acting) {
		s->cmd = s->call_kind == C_ARGV
			? (s->argc > 0 && s->argv && s->argv[0]
			   ? classify(s->argv[0], s->argvlen ? s->argvlen[0] : strlen(s->argv[0]),
				      s->argc > 1 ? s->argv[1] : NULL,
				      s->argc > 1 ? (s->argvlen ? s->argvlen[1]
						     : strlen(s->argv[1])) : 0)
			   : (struct cmd){ K_OTHER, 0, "" })
			: classify_format(s->fmt, *s->ap);
		s->idle = ctx_idle(s->c, &s->db);
		if (where_ctx(s->c, s->db, &w) == 0)
			r = bw_engine_match(e, &w.t, NULL);
	}
	if (!r) {
		cmd_run(s);
	} else {
		init_call(&s->call, r, cmd_call_names[s->call_kind], &w);
		s->call.attempt = cmd_attempt;
		s->call.arg = s;
		s->call.stop = &s->stop;
		s->call.unguarded = 1;
		s->reconnect_call = s->call;
		s->reconnect_call.call = "redisReconnect";
		s->reconnect_call.unguarded = 0;
		s->e = e;
		s->reconnect = s->idle && server_gone(s->c);
		bw_foreign_ruled_enter(r);
		bw_engine_run(e, &s->call, bw_thread_rng());
		bw_foreign_ruled_leave(r);
		if (!s->ran)
			cmd_run(s);
	}
	if (acting)
		note_session(s->c, &s->cmd, s->reply, !s->reply && s->c && CTX(s->c, err));
	bw_foreign_leave(&depth, acting);
}

BW_HOOK void *redisvCommand(redisContext *c, const char *format, va_list ap)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.vcommand)
		return NULL;
	va_list aq;
	va_copy(aq, ap);
	struct rd_cmd s = { .call_kind = C_VCOMMAND, .c = c, .fmt = format, .ap = &aq };
	cmd_call(caller, &s);
	va_end(aq);
	return s.reply;
}

BW_HOOK void *redisCommand(redisContext *c, const char *format, ...)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.vcommand)
		return NULL;
	va_list ap;
	va_start(ap, format);
	struct rd_cmd s = { .call_kind = C_COMMAND, .c = c, .fmt = format, .ap = &ap };
	cmd_call(caller, &s);
	va_end(ap);
	return s.reply;
}

BW_HOOK void *redisCommandArgv(redisContext *c, int argc, const char **argv,
			       const size_t *argvlen)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.command_argv)
		return NULL;
	struct rd_cmd s = { .call_kind = C_ARGV, .c = c, .argc = argc, .argv = argv,
			    .argvlen = argvlen };
	cmd_call(caller, &s);
	return s.reply;
}

/* ---- pipelines: observed ---- */

/* A command the program appended: its reply is to come through redisGetReply, and until
 * then the context is not idle. */
static void appended(const void *caller, redisContext *c, int rc)
{
	if (rc != BW_REDIS_OK || !c || !understood() || !bw_engine_for(BW_OP_REDIS) ||
	    bw_foreign_internal(&bw_rd_lib, caller))
		return;
	struct rd_sess *rs = sess_get(c);
	if (rs)
		rs->pending++;
}

BW_HOOK int redisvAppendCommand(redisContext *c, const char *format, va_list ap)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.vappend_command)
		return BW_REDIS_ERR;
	va_list aq;
	va_copy(aq, ap);
	int rc = bw_rd.vappend_command(c, format, aq);
	va_end(aq);
	appended(caller, c, rc);
	return rc;
}

BW_HOOK int redisAppendCommand(redisContext *c, const char *format, ...)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.vappend_command)
		return BW_REDIS_ERR;
	va_list ap;
	va_start(ap, format);
	int rc = bw_rd.vappend_command(c, format, ap);
	va_end(ap);
	appended(caller, c, rc);
	return rc;
}

BW_HOOK int redisAppendCommandArgv(redisContext *c, int argc, const char **argv,
				   const size_t *argvlen)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.append_command_argv)
		return BW_REDIS_ERR;
	int rc = bw_rd.append_command_argv(c, argc, argv, argvlen);
	appended(caller, c, rc);
	return rc;
}

BW_HOOK int redisAppendFormattedCommand(redisContext *c, const char *cmd, size_t len)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.append_formatted)
		return BW_REDIS_ERR;
	int rc = bw_rd.append_formatted(c, cmd, len);
	appended(caller, c, rc);
	return rc;
}

/* A reply the program reads itself: counted under its rule (a failure, a connection lost),
 * never sent again. */
BW_HOOK int redisGetReply(redisContext *c, void **reply)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.get_reply)
		return BW_REDIS_ERR;
	struct bw_engine *e = c && understood() ? bw_engine_for(BW_OP_REDIS) : NULL;
	int acting = e ? bw_foreign_enter(&bw_rd_lib, &depth, caller) : 0;
	int rc = bw_rd.get_reply(c, reply);
	if (acting) {
		struct rd_sess *rs = sess_find(c);
		void *got = reply ? *reply : NULL;
		if (rs && rs->pending > 0 && (got || rc != BW_REDIS_OK))
			rs->pending = rc == BW_REDIS_OK ? rs->pending - 1 : 0;
		struct bw_db_where w;
		const struct bw_rule *r = where_ctx(c, rs ? rs->db : 0, &w) == 0
					  ? bw_engine_match(e, &w.t, NULL) : NULL;
		if (r && (got || rc != BW_REDIS_OK)) {
			struct bw_call call;
			init_call(&call, r, "redisGetReply", &w);
			call.unguarded = 1;
			bw_engine_count(e, r, BW_ST_CALLS);
			int err = rc != BW_REDIS_OK ? ctx_failure(c) : reply_code(got);
			if (err && (rc != BW_REDIS_OK || declined(err)))
				bw_engine_failed(e, &call, err, 1, 0);
		}
	}
	bw_foreign_leave(&depth, acting);
	return rc;
}

/* ---- a context's end, and the program's own reconnect ---- */

BW_HOOK void redisFree(redisContext *c)
{
	if (resolve(__builtin_return_address(0)) < 0 || !bw_rd.free)
		return;
	if (c)
		sess_forget(c);
	bw_rd.free(c);
}

BW_HOOK int redisFreeKeepFd(redisContext *c)
{
	if (resolve(__builtin_return_address(0)) < 0 || !bw_rd.free_keep_fd)
		return -1;
	if (c)
		sess_forget(c);
	return bw_rd.free_keep_fd(c);
}

struct rd_reconnect {
	redisContext *c;
	int rc;
	const struct bw_call *call;
	struct bw_db_where w;
};

static int reconnect_attempt(void *arg, int n, int64_t deadline)
{
	struct rd_reconnect *rr = arg;
	(void)n, (void)deadline;
	rr->rc = bw_rd.reconnect(rr->c);
	return rr->rc == BW_REDIS_OK ? 0 : ctx_failure(rr->c);
}

/* A refused reconnect: the context says why, its old connection (if any) left as it
 * was. */
static int reconnect_refuse(void *arg, int err)
{
	struct rd_reconnect *rr = arg;
	char msg[BW_DEST_NAME_MAX + BW_NAME_MAX + 160];
	snprintf(msg, sizeof msg, "bulwark refused %s: rule \"%s\" (breaker open or call "
		 "limit spent); no connection attempted", rr->w.dest, rr->call->rule->name);
	bw_rd.set_error(rr->c, BW_REDIS_ERR_IO, msg);
	rr->rc = BW_REDIS_ERR;
	return err;
}

BW_HOOK int redisReconnect(redisContext *c)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_rd.reconnect)
		return BW_REDIS_ERR;
	struct bw_engine *e = c && understood() ? bw_engine_for(BW_OP_REDIS) : NULL;
	int acting = e ? bw_foreign_enter(&bw_rd_lib, &depth, caller) : 0;
	struct rd_reconnect rr = { .c = c, .rc = BW_REDIS_ERR };
	const struct bw_rule *r = acting && where_ctx(c, 0, &rr.w) == 0
				  ? bw_engine_match(e, &rr.w.t, NULL) : NULL;
	if (!r) {
		rr.rc = bw_rd.reconnect(c);
	} else {
		struct bw_call call;
		init_call(&call, r, "redisReconnect", &rr.w);
		call.attempt = reconnect_attempt;
		call.arg = &rr;
		call.refuse = reconnect_refuse;
		rr.call = &call;
		bw_foreign_ruled_enter(r);
		bw_engine_run(e, &call, bw_thread_rng());
		bw_foreign_ruled_leave(r);
	}
	bw_foreign_leave(&depth, acting);
	/* the program's new session starts afresh, database 0 */
	if (c && rr.rc == BW_REDIS_OK)
		sess_forget(c);
	return rr.rc;
}

/* PostgreSQL client calls (libpq), found at run time: the library never links libpq.
 *
 * The connect family (PQconnectdb, PQconnectdbParams, PQsetdbLogin, PQreset) is retried
 * when the connection fails for a reason that passes (the server starting up or shutting
 * down, too many clients, a refused or lost connection), and refused by an open breaker
 * or a spent call limit. A refused or injected failure is a connection handle libpq made
 * itself, CONNECTION_BAD with a message that says why and no connect(2) made: libpq
 * validates the options of a new connection before it connects, so a connection started
 * with an option value it rejects fails in its own way, whole (bw_pq_handle). The same
 * handle, made with a value that says nothing, tells where a connection would go before
 * it is made: host, port and database as libpq works them out from the arguments, the
 * environment and its defaults.
 *
 * The asynchronous starts (PQconnectStart*, PQresetStart) are refused the same way and
 * their outcome, met in PQconnectPoll or PQresetPoll, is recorded.
 *
 * A statement is run again only where that cannot repeat an effect (bulwark.yaml(5),
 * RETRY): the session was idle (no transaction, no command in progress) and either its
 * server went away before the statement was sent (the connection is made anew first,
 * unless the session holds state a new one would lose), or it failed with a serialization
 * failure or deadlock as a single statement in autocommit, or its connection was lost
 * after it was sent and it only reads (pq_sql.c). Otherwise a connection lost after the
 * statement was sent leaves its outcome unknown: that error goes back to the program.
 * Statements sent with PQsend* are followed into PQgetResult and PQconsumeInput (their
 * flight, below).
 * Statements are neither refused nor counted by a breaker; the reconnects made for them
 * are. Events carry the server, the database and the SQLSTATE, never SQL text. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "dbsess.h"
#include "dbwhere.h"
#include "errnames.h"
#include "hook.h"
#include "keyed.h"
#include "pq_real.h"
#include "pq_sql.h"
#include "state.h"

/* The policy looks at the program's calls, not at the ones libpq makes to its own API
 * (PQconnectdb starts with PQconnectStart, PQexec sends with PQsendQuery), nor at calls
 * made while it already acts on one on this thread (the statement that reconnects). */
BW_FOREIGN_DEPTH(depth);

/* A rule acts on the program's call: the connections libpq makes for it are that call's
 * work (foreign.h, bw_foreign_ruled). */
#define ruled_enter bw_foreign_ruled_enter
#define ruled_leave bw_foreign_ruled_leave

static int resolve(const void *caller)
{
	return bw_foreign_resolve(&bw_pq_lib, caller);
}

static int sqlstate(const char *s)
{
	return bw_err_sqlstate(s);
}

/* ---- where a connection goes ---- */


static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static int port_number(const char *s)
{
	long v = 0;
	if (!*s)
		return 5432;
	for (; *s >= '0' && *s <= '9' && v <= 65535; s++)
		v = v * 10 + (*s - '0');
	return !*s && v > 0 && v <= 65535 ? (int)v : 0;
}

/* The socket file of a unix-domain server: libpq's host is its directory ('@' for the
 * abstract namespace) and the file is named after the port. */
static int unix_socket(const char *dir, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	memset(ss, 0, sizeof *ss);
	un->sun_family = AF_UNIX;
	int n = snprintf(un->sun_path, sizeof un->sun_path, "%s/.s.PGSQL.%d", dir, port);
	if (n < 0 || (size_t)n >= sizeof un->sun_path)
		return 0;
	if (dir[0] == '@')
		un->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + (dir[0] != '@'));
	return 1;
}

/* The server and database of conn as libpq reports them: the host it uses (or would try
 * first), its address once connected, the port, the database. */
static void where_of(const PGconn *conn, struct bw_db_where *w)
{
	const char *host = or_empty(bw_pq.host(conn));
	const char *addr = bw_pq.hostaddr ? or_empty(bw_pq.hostaddr(conn)) : "";
	int port = port_number(or_empty(bw_pq.port(conn)));
	socklen_t len = 0;
	int have, named = 0;
	memset(&w->t, 0, sizeof w->t);
	w->t.op = BW_OP_PG;
	w->unix_dest = host[0] == '/' || host[0] == '@';
	snprintf(w->db, sizeof w->db, "%s", or_empty(bw_pq.db(conn)));
	snprintf(w->host, sizeof w->host, "%s", host);
	if (w->unix_dest) {
		have = unix_socket(host, port, &w->ss, &len);
	} else {
		have = bw_db_inet_literal(host, port, &w->ss, &len);
		/* a host name: matched by name, and by the address libpq reached, if any */
		named = !have && host[0];
		have = have || (addr[0] && bw_db_inet_literal(addr, port, &w->ss, &len));
	}
	if (have) {
		w->t.addr = (const struct sockaddr *)&w->ss;
		w->t.addrlen = len;
	}
	/* a server named by the program is one destination (one breaker) whether or not it
	 * is connected yet: named by its name */
	if (named) {
		w->t.host = w->host;
		snprintf(w->dest, sizeof w->dest, "%s:%d", host, port);
		w->key = bw_key_bytes(w->dest, strlen(w->dest), 2);
	} else if (have) {
		bw_format_sockaddr(w->t.addr, len, w->dest, sizeof w->dest);
		w->key = bw_key_sockaddr(w->t.addr, len);
	} else {
		snprintf(w->dest, sizeof w->dest, "%s:%d", host, port);
		w->key = bw_key_bytes(w->dest, strlen(w->dest), 2);
	}
	w->t.port = port;
	w->t.db = w->db;
}

/* Bumped whenever a connection is made, reset or finished: where a connection handle goes
 * (the memo below) may have changed, or the handle be another one. */
static unsigned where_epoch;

static void where_moved(void)
{
	__atomic_add_fetch(&where_epoch, 1, __ATOMIC_RELAXED);
}

static void init_call(struct bw_call *c, const struct bw_rule *r, const char *call,
		      const struct bw_db_where *w)
{
	bw_call_init(c, r, BW_OP_PG, call);
	c->dest = w->dest;
	c->db = w->db;
	c->key = w->key;
}

/* ---- what a failure says about the server ---- */

/* A connection that could not be made, by libpq's message: the SQLSTATE the failure
 * stands for, or 0 when it says nothing against the server (a password or a database
 * name that is wrong, which retrying cannot mend). Server messages are recognised in
 * English; the socket's own errors in this thread's language, as libpq wrote them. */
static int conn_failure(const PGconn *conn, int unix_dest)
{
	static const struct { const char *text, *state; } said[] = {
		{ "the database system is starting up", "57P03" },
		{ "the database system is shutting down", "57P03" },
		{ "the database system is not yet accepting connections", "57P03" },
		{ "the database system is not accepting connections", "57P03" },
		{ "the database system is in recovery mode", "57P03" },
		{ "sorry, too many clients already", "53300" },
		{ "remaining connection slots are reserved", "53300" },
		{ "terminating connection due to administrator command", "57P01" },
		{ "terminating connection because of crash of another server process", "57P02" },
		{ "server closed the connection unexpectedly", "08006" },
		{ "timeout expired", "08001" },
	};
	/* ENOENT only for a socket file: over TCP it would be a certificate file missing */
	static const struct { int err; const char *state; } socket_errors[] = {
		{ ECONNREFUSED, "08001" }, { ETIMEDOUT, "08001" }, { EHOSTUNREACH, "08001" },
		{ ENETUNREACH, "08001" }, { ENETDOWN, "08001" }, { ECONNRESET, "08006" },
		{ EPIPE, "08006" }, { ENOENT, "08001" },
	};
	const char *m = conn ? bw_pq.error_message(conn) : NULL;
	if (!m)
		return 0;
	for (size_t i = 0; i < sizeof said / sizeof said[0]; i++)
		if (strstr(m, said[i].text))
			return sqlstate(said[i].state);
	int saved = errno;
	for (size_t i = 0; i < sizeof socket_errors / sizeof socket_errors[0]; i++) {
		char buf[128];
		if (socket_errors[i].err == ENOENT && !unix_dest)
			continue;
		const char *text = strerror_r(socket_errors[i].err, buf, sizeof buf);
		if (text && text[0] && strstr(m, text)) {
			errno = saved;
			return sqlstate(socket_errors[i].state);
		}
	}
	errno = saved;
	return 0;
}

static int sqlstate_class(int err)
{
	return (err - BW_ERR_SQLSTATE_BASE) / (36 * 36 * 36);
}

/* Errors of a statement that speak of the server, not of the statement: connection
 * exceptions (08), insufficient resources (53), the server going away (57), system
 * errors (58, XX), and the two transaction conflicts the rule may retry. A syntax error
 * or a constraint violation is the program's business. */
static int speaks_of_server(int err)
{
	int k = sqlstate_class(err);
	return k == sqlstate_class(sqlstate("08000")) || k == sqlstate_class(sqlstate("53000")) ||
	       k == sqlstate_class(sqlstate("57000")) || k == sqlstate_class(sqlstate("58000")) ||
	       k == sqlstate_class(sqlstate("XX000")) || err == sqlstate("40001") ||
	       err == sqlstate("40P01");
}

/* ---- sessions that hold state a new connection would lose ----
 *
 * Reconnecting before a statement is sound only when the new session is the same as the
 * old one to the statement. A session that ran SET, PREPARE, LISTEN or DECLARE, made a
 * temporary table or took a session-level advisory lock is recorded here, and is never
 * reconnected behind the program's back. The check on the SQL text is conservative: it
 * may record a session that holds nothing, never the other way round, but it cannot see
 * state set from inside a function. A session that cannot be recorded (the table is full)
 * turns reconnects off in the whole process. */

static struct bw_db_sessions stateful;

static int is_stateful(const PGconn *conn)
{
	return bw_db_sess_has(&stateful, conn);
}

static void mark_stateful(PGconn *conn)
{
	bw_db_sess_add(&stateful, conn);
}

/* conn's session is new (made, reset) or gone (finished). */
static void forget_session(PGconn *conn)
{
	bw_db_sess_forget(&stateful, conn);
}

/* a statement in flight on a connection (below), ended by PQfinish and PQreset */
struct flight;
static struct flight *flight_of(const PGconn *conn);
static void flight_drop(struct flight *f);

/* ---- connections started and finished by the program (PQconnectStart, PQresetStart):
 * the outcome is recorded when PQconnectPoll or PQresetPoll reaches it ---- */

#define PQ_PENDING 64

struct pending {
	PGconn *conn;                /* claimed by a compare-and-swap; NULL: free */
	int ready;                   /* the fields below are written */
	struct bw_engine *e;
	const struct bw_rule *rule;
	const char *call;
	struct bw_db_where w;
	int slot_held;               /* the call's bulkhead slot, until its outcome */
	int64_t started;             /* for trip.slow */
};

static struct pending pending[PQ_PENDING];
static int n_pending;

static int pending_add(PGconn *conn, struct bw_engine *e, const struct bw_call *c,
		       const struct bw_db_where *w)
{
	for (int i = 0; i < PQ_PENDING; i++) {
		PGconn *expect = NULL;
		if (!__atomic_compare_exchange_n(&pending[i].conn, &expect, conn, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		pending[i].e = e;
		pending[i].rule = c->rule;
		pending[i].call = c->call;
		pending[i].slot_held = c->slot_held;
		pending[i].started = c->started;
		pending[i].w = *w;
		pending[i].w.t.addr = w->t.addr ? (const struct sockaddr *)&pending[i].w.ss : NULL;
		pending[i].w.t.host = w->t.host ? pending[i].w.host : NULL;
		pending[i].w.t.db = pending[i].w.db;
		__atomic_store_n(&pending[i].ready, 1, __ATOMIC_RELEASE);
		__atomic_add_fetch(&n_pending, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return -1;
}

/* Takes conn's entry out into *out; 0 when there was one. */
static int pending_take(PGconn *conn, struct pending *out)
{
	if (!__atomic_load_n(&n_pending, __ATOMIC_RELAXED))
		return -1;
	for (int i = 0; i < PQ_PENDING; i++) {
		if (__atomic_load_n(&pending[i].conn, __ATOMIC_RELAXED) != conn ||
		    !__atomic_load_n(&pending[i].ready, __ATOMIC_ACQUIRE))
			continue;
		*out = pending[i];
		out->w.t.addr = out->w.t.addr ? (const struct sockaddr *)&out->w.ss : NULL;
		out->w.t.host = out->w.t.host ? out->w.host : NULL;
		out->w.t.db = out->w.db;
		__atomic_store_n(&pending[i].ready, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&pending[i].conn, NULL, __ATOMIC_RELEASE);
		__atomic_sub_fetch(&n_pending, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return -1;
}

/* A poll reached its end (PGRES_POLLING_OK or _FAILED): the outcome of a start we
 * admitted. */
static void pending_done(PGconn *conn, int polled)
{
	struct pending p;
	if (pending_take(conn, &p) < 0)
		return;
	struct bw_call c;
	init_call(&c, p.rule, p.call, &p.w);
	c.slot_held = p.slot_held;
	c.started = p.started;
	int err = polled == BW_PQ_POLLING_OK ? 0 : conn_failure(conn, p.w.unix_dest);
	/* its attempt was numbered by another call of this thread's, long since over */
	bw_attempt_n = 0;
	bw_tally_cur.slot = -1;
	bw_engine_outcome(p.e, &c, err);
}

/* ---- handles libpq makes for us ---- */

enum open_kind { OPEN_CONNINFO, OPEN_PARAMS, OPEN_SETDB };

/* The arguments of a call of the connect family. */
struct pq_open {
	int kind;
	const char *conninfo;
	const char *const *kw;
	const char *const *vals;
	int expand;
	const char *setdb[7];        /* host, port, options, tty, dbname, login, password */
	PGconn *conn;                /* what the last attempt gave */
	struct bw_db_where w;
	struct bw_engine *e;
	const struct bw_call *c;
};

#define PQ_MAX_OPTIONS 128
/* A value target_session_attrs never takes: the handle fails in libpq's option checks,
 * after host, port and database are worked out and before anything is connected. */
#define PQ_PROBE "bulwark-probe"

/* A connection handle started from o's arguments with target_session_attrs set to mark:
 * libpq rejects that value, so the handle is CONNECTION_BAD with no connection tried,
 * its message naming the value. NULL when libpq gives none (out of memory) or o's
 * arguments cannot be read. A password is given so that no password file is read (which
 * may warn on stderr) for a connection never made. */
static PGconn *bw_pq_handle(const struct pq_open *o, const char *mark)
{
	static const char *const setdb_keys[7] = { "host", "port", "options", NULL, "dbname",
						   "user", "password" };
	const char *k[PQ_MAX_OPTIONS + 3], *v[PQ_MAX_OPTIONS + 3];
	int n = 0, expand = 0;
	PQconninfoOption *parsed = NULL;
	switch (o->kind) {
	case OPEN_CONNINFO: {
		char *err = NULL;
		parsed = bw_pq.conninfo_parse(o->conninfo ? o->conninfo : "", &err);
		if (err)
			bw_pq.freemem(err);
		if (!parsed)
			return NULL;
		for (PQconninfoOption *p = parsed; p->keyword; p++) {
			if (!p->val)
				continue;
			if (n == PQ_MAX_OPTIONS) {
				bw_pq.conninfo_free(parsed);
				return NULL;
			}
			k[n] = p->keyword;
			v[n++] = p->val;
		}
		break;
	}
	case OPEN_PARAMS:
		if (!o->kw || !o->vals)
			return NULL;
		for (; o->kw[n]; n++) {
			if (n == PQ_MAX_OPTIONS)
				return NULL;
			k[n] = o->kw[n];
			v[n] = o->vals[n];
		}
		expand = o->expand;
		break;
	default:
		/* PQsetdbLogin: dbname may be a connection string, which the other
		 * arguments override when given */
		k[n] = "dbname";
		v[n++] = o->setdb[4];
		for (int i = 0; i < 7; i++)
			if (setdb_keys[i] && i != 4) {
				k[n] = setdb_keys[i];
				v[n++] = o->setdb[i];
			}
		expand = 1;
		break;
	}
	k[n] = "password";
	v[n++] = "bulwark";
	k[n] = "target_session_attrs";
	v[n++] = mark;
	k[n] = v[n] = NULL;
	PGconn *conn = bw_pq.connect_start_params(k, v, expand);
	if (parsed)
		bw_pq.conninfo_free(parsed);
	return conn;
}

/* A failed handle that says msg, or NULL (out of memory). libpq's message quotes the
 * rejected value: the message is cut down to that value, in place, within the string
 * libpq wrote (PQerrorMessage gives it to be read, and libpq empties it before it
 * writes the next). */
static PGconn *failed_handle(const struct pq_open *o, const char *msg)
{
	PGconn *conn = bw_pq_handle(o, msg);
	if (!conn)
		return NULL;
	char *m = bw_pq.error_message(conn);
	char *at = m ? strstr(m, msg) : NULL;
	size_t n = strlen(msg);
	if (at && strlen(m) >= n + 1) {
		memmove(m, at, n);
		m[n] = '\n';
		m[n + 1] = '\0';
	}
	return conn;
}

/* ---- the connect family ---- */

static PGconn *open_real(const struct pq_open *o, int start)
{
	switch (o->kind) {
	case OPEN_CONNINFO:
		return start ? bw_pq.connect_start(o->conninfo) : bw_pq.connectdb(o->conninfo);
	case OPEN_PARAMS:
		return start ? bw_pq.connect_start_params(o->kw, o->vals, o->expand)
			     : bw_pq.connectdb_params(o->kw, o->vals, o->expand);
	default:
		return bw_pq.setdb_login(o->setdb[0], o->setdb[1], o->setdb[2], o->setdb[3],
					 o->setdb[4], o->setdb[5], o->setdb[6]);
	}
}

/* ---- where a connection would go, remembered by its arguments ----
 *
 * The handle that says where a connection would go costs the client an eighth of what
 * the connection itself costs it (libpq works out every option, looks up the user...). A
 * program connects with the same arguments again and again (pgbench -C, a pool), so the
 * answer is kept for the last few sets of arguments, together with what libpq reads
 * besides them: the environment variables that name a server or a database, and the
 * user the process runs as. A service file may say anything and change: arguments that
 * name a service are asked every time. */

#define PQ_OPEN_MEMO 4
#define PQ_OPEN_KEY 1024

struct open_memo {
	size_t len;                  /* 0: empty */
	char key[PQ_OPEN_KEY];
	struct bw_db_where w;
};

static struct open_memo open_memo[PQ_OPEN_MEMO];
static int open_memo_lock;
static unsigned open_memo_next;

struct key_buf {
	char b[PQ_OPEN_KEY];
	size_t n;
	int over;
};

static void key_put(struct key_buf *k, const char *s)
{
	/* a missing value and an empty one differ */
	size_t m = s ? strlen(s) + 1 : 1;
	if (k->over || k->n + m + 1 > sizeof k->b) {
		k->over = 1;
		return;
	}
	k->b[k->n++] = s ? 's' : 'n';
	if (s)
		memcpy(k->b + k->n, s, m);
	k->n += s ? m : 0;
}

/* The key of o's arguments; 0 when they cannot be remembered. */
static size_t open_key(const struct pq_open *o, struct key_buf *k)
{
	static const char *const env[] = { "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE",
					   "PGUSER", "PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR",
					   "PGOPTIONS", NULL };
	char num[32];
	k->n = 0;
	k->over = 0;
	snprintf(num, sizeof num, "%d %d %u", o->kind, o->expand, (unsigned)geteuid());
	key_put(k, num);
	switch (o->kind) {
	case OPEN_CONNINFO:
		key_put(k, o->conninfo);
		break;
	case OPEN_PARAMS:
		if (!o->kw || !o->vals)
			return 0;
		for (int i = 0; o->kw[i] && !k->over; i++) {
			key_put(k, o->kw[i]);
			key_put(k, o->vals[i]);
		}
		break;
	default:
		for (int i = 0; i < 7; i++)
			key_put(k, o->setdb[i]);
		break;
	}
	for (int i = 0; env[i]; i++)
		key_put(k, getenv(env[i]));
	if (k->over || memmem(k->b, k->n, "service", 7) || getenv("PGSERVICE"))
		return 0;
	return k->n;
}

static int open_memo_find(const struct key_buf *k, struct bw_db_where *w)
{
	int found = 0;
	if (__atomic_exchange_n(&open_memo_lock, 1, __ATOMIC_ACQUIRE))
		return 0;   /* another thread is at it: ask libpq */
	for (int i = 0; i < PQ_OPEN_MEMO && !found; i++)
		if (open_memo[i].len == k->n && memcmp(open_memo[i].key, k->b, k->n) == 0) {
			bw_db_where_copy(w, &open_memo[i].w);
			found = 1;
		}
	__atomic_store_n(&open_memo_lock, 0, __ATOMIC_RELEASE);
	return found;
}

static void open_memo_add(const struct key_buf *k, const struct bw_db_where *w)
{
	if (__atomic_exchange_n(&open_memo_lock, 1, __ATOMIC_ACQUIRE))
		return;
	struct open_memo *m = &open_memo[open_memo_next++ % PQ_OPEN_MEMO];
	memcpy(m->key, k->b, k->n);
	m->len = k->n;
	bw_db_where_copy(&m->w, w);
	__atomic_store_n(&open_memo_lock, 0, __ATOMIC_RELEASE);
}

/* The rule for a connection about to be made, from where libpq would make it; NULL when
 * none matches or the arguments are ones libpq rejects anyway (it then fails without
 * connecting, as it would have). */
static const struct bw_rule *open_rule(struct bw_engine *e, struct pq_open *o)
{
	struct key_buf k;
	size_t n = open_key(o, &k);
	if (n && open_memo_find(&k, &o->w))
		return bw_engine_match(e, &o->w.t, NULL);
	PGconn *probe = bw_pq_handle(o, PQ_PROBE);
	if (!probe)
		return NULL;
	const char *m = bw_pq.error_message(probe);
	const struct bw_rule *r = NULL;
	if (m && strstr(m, PQ_PROBE)) {
		where_of(probe, &o->w);
		r = bw_engine_match(e, &o->w.t, NULL);
		if (n)
			open_memo_add(&k, &o->w);
	}
	bw_pq.finish(probe);
	return r;
}

static void drop(struct pq_open *o)
{
	if (o->conn)
		bw_pq.finish(o->conn);
	o->conn = NULL;
}

static int open_outcome(const struct pq_open *o)
{
	if (!o->conn || bw_pq.status(o->conn) != BW_PQ_CONNECTION_BAD)
		return 0;
	return conn_failure(o->conn, o->w.unix_dest);
}

/* An injected fault: the error of an attempt that is not made. 0 to make it. */
static int open_injected(struct pq_open *o)
{
	struct bw_fault f;
	if (!bw_engine_inject(o->e, o->c, &f) || !f.err)
		return 0;
	char msg[BW_DEST_NAME_MAX + 160];
	snprintf(msg, sizeof msg, "bulwark: injected %s (rule \"%s\"); no connection to %s was "
		 "attempted", bw_err_name(f.err), o->c->rule->name, o->w.dest);
	o->conn = failed_handle(o, msg);
	return o->conn ? f.err : 0;
}

static int open_attempt(void *arg, int n, int64_t deadline)
{
	struct pq_open *o = arg;
	(void)n, (void)deadline;
	drop(o);
	int err = open_injected(o);
	if (err)
		return err;
	o->conn = open_real(o, 0);
	return open_outcome(o);
}

static int open_refuse(void *arg, int err)
{
	struct pq_open *o = arg;
	char msg[BW_DEST_NAME_MAX + 200];
	drop(o);
	snprintf(msg, sizeof msg, "bulwark refused the connection to %s: rule \"%s\" (its "
		 "circuit breaker is open, or its call limit is spent); no connection was "
		 "attempted", o->w.dest, o->c->rule->name);
	o->conn = failed_handle(o, msg);
	return err;
}

static PGconn *open_conn(const void *caller, struct pq_open *o, const char *call)
{
	struct bw_engine *e = bw_engine_for(BW_OP_PG);
	int acting = e ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	const struct bw_rule *r = acting ? open_rule(e, o) : NULL;
	ruled_enter(r);
	if (!r) {
		o->conn = open_real(o, 0);
	} else {
		struct bw_call c;
		init_call(&c, r, call, &o->w);
		c.attempt = open_attempt;
		c.arg = o;
		c.refuse = open_refuse;
		o->e = e;
		o->c = &c;
		bw_engine_run(e, &c, bw_thread_rng());
	}
	ruled_leave(r);
	bw_foreign_leave(&depth, acting);
	if (o->conn)
		forget_session(o->conn);
	where_moved();
	return o->conn;
}

/* PQconnectStart*: admitted (or refused) now, the outcome recorded when the program's
 * PQconnectPoll reaches it. */
static PGconn *start_conn(const void *caller, struct pq_open *o, const char *call)
{
	struct bw_engine *e = bw_engine_for(BW_OP_PG);
	int acting = e ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	const struct bw_rule *r = acting ? open_rule(e, o) : NULL;
	ruled_enter(r);
	if (!r) {
		o->conn = open_real(o, 1);
	} else {
		struct bw_call c;
		init_call(&c, r, call, &o->w);
		c.arg = o;
		c.refuse = open_refuse;
		o->e = e;
		o->c = &c;
		/* a refusal (open_refuse made the handle) is no outcome of the server's */
		if (bw_engine_admit_call(e, &c) == 0) {
			bw_attempt_injected = 0;
			int err = open_injected(o);
			if (!err)
				o->conn = open_real(o, 1);
			if (err)
				bw_engine_outcome(e, &c, err);
			else if (!o->conn)
				bw_engine_release(e, &c);
			else if (bw_pq.status(o->conn) == BW_PQ_CONNECTION_BAD)
				bw_engine_outcome(e, &c, open_outcome(o));
			else if (pending_add(o->conn, e, &c, &o->w) < 0)
				bw_engine_release(e, &c);   /* no room to follow it: no outcome */
		}
	}
	ruled_leave(r);
	bw_foreign_leave(&depth, acting);
	if (o->conn)
		forget_session(o->conn);
	where_moved();
	return o->conn;
}

BW_HOOK PGconn *PQconnectdb(const char *conninfo)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_open o = { .kind = OPEN_CONNINFO, .conninfo = conninfo };
	return open_conn(caller, &o, "PQconnectdb");
}

BW_HOOK PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values,
				  int expand_dbname)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_open o = { .kind = OPEN_PARAMS, .kw = keywords, .vals = values,
			     .expand = expand_dbname };
	return open_conn(caller, &o, "PQconnectdbParams");
}

BW_HOOK PGconn *PQsetdbLogin(const char *pghost, const char *pgport, const char *pgoptions,
			     const char *pgtty, const char *dbName, const char *login,
			     const char *pwd)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_open o = { .kind = OPEN_SETDB,
			     .setdb = { pghost, pgport, pgoptions, pgtty, dbName, login, pwd } };
	return open_conn(caller, &o, "PQsetdbLogin");
}

BW_HOOK PGconn *PQconnectStart(const char *conninfo)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_open o = { .kind = OPEN_CONNINFO, .conninfo = conninfo };
	return start_conn(caller, &o, "PQconnectStart");
}

BW_HOOK PGconn *PQconnectStartParams(const char *const *keywords, const char *const *values,
				     int expand_dbname)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_open o = { .kind = OPEN_PARAMS, .kw = keywords, .vals = values,
			     .expand = expand_dbname };
	return start_conn(caller, &o, "PQconnectStartParams");
}

BW_HOOK int PQconnectPoll(PGconn *conn)
{
	if (resolve(__builtin_return_address(0)) < 0)
		return BW_PQ_POLLING_FAILED;
	int st = bw_pq.connect_poll(conn);
	if (st == BW_PQ_POLLING_OK || st == BW_PQ_POLLING_FAILED)
		pending_done(conn, st);
	return st;
}

/* ---- reset: the program's, and the one a statement makes ---- */

struct pq_reset {
	PGconn *conn;
	int unix_dest;
};

static int reset_attempt(void *arg, int n, int64_t deadline)
{
	struct pq_reset *rs = arg;
	(void)n, (void)deadline;
	bw_pq.reset(rs->conn);
	where_moved();
	return bw_pq.status(rs->conn) == BW_PQ_CONNECTION_BAD
		       ? conn_failure(rs->conn, rs->unix_dest) : 0;
}

/* A refused reset leaves the connection as it was: no connection is attempted. */
static int reset_refuse(void *arg, int err)
{
	(void)arg;
	return err;
}

/* The last connection this thread looked up: a program runs statement after statement
 * on one connection, and libpq's answers and the match cost as much as a short statement
 * itself. Valid while nothing connected, reset or finished anywhere (where_epoch). */
static __thread struct {
	const PGconn *conn;
	unsigned epoch;
	const struct bw_engine *e;
	const struct bw_rule *r;
	struct bw_db_where w;
} conn_memo __attribute__((tls_model("initial-exec")));

/* The rule for calls on conn, with where it goes in *w. */
static const struct bw_rule *conn_rule(struct bw_engine *e, const PGconn *conn,
				       struct bw_db_where *w)
{
	unsigned epoch = __atomic_load_n(&where_epoch, __ATOMIC_ACQUIRE);
	if (conn_memo.conn == conn && conn_memo.epoch == epoch && conn_memo.e == e) {
		bw_db_where_copy(w, &conn_memo.w);
		return conn_memo.r;
	}
	where_of(conn, w);
	const struct bw_rule *r = bw_engine_match(e, &w->t, NULL);
	/* a connection still being made may yet move to its next host */
	if (bw_pq.status(conn) == BW_PQ_CONNECTION_OK) {
		conn_memo.conn = NULL;
		bw_db_where_copy(&conn_memo.w, w);
		conn_memo.r = r;
		conn_memo.e = e;
		conn_memo.epoch = epoch;
		conn_memo.conn = conn;
	}
	return r;
}

BW_HOOK void PQreset(PGconn *conn)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return;
	struct bw_engine *e = conn ? bw_engine_for(BW_OP_PG) : NULL;
	int acting = e ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = acting ? conn_rule(e, conn, &w) : NULL;
	ruled_enter(r);
	if (conn)
		flight_drop(flight_of(conn));
	if (!r) {
		bw_pq.reset(conn);
	} else {
		struct pq_reset rs = { conn, w.unix_dest };
		struct bw_call c;
		init_call(&c, r, "PQreset", &w);
		c.attempt = reset_attempt;
		c.arg = &rs;
		c.refuse = reset_refuse;
		bw_engine_run(e, &c, bw_thread_rng());
	}
	ruled_leave(r);
	bw_foreign_leave(&depth, acting);
	if (conn && bw_pq.status(conn) == BW_PQ_CONNECTION_OK)
		forget_session(conn);
	where_moved();
}

BW_HOOK int PQresetStart(PGconn *conn)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return 0;
	struct bw_engine *e = conn ? bw_engine_for(BW_OP_PG) : NULL;
	int acting = e ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = acting ? conn_rule(e, conn, &w) : NULL;
	ruled_enter(r);
	int rc = 0;
	if (conn)
		flight_drop(flight_of(conn));
	if (!r) {
		rc = bw_pq.reset_start(conn);
	} else {
		struct bw_call c;
		init_call(&c, r, "PQresetStart", &w);
		c.refuse = reset_refuse;
		if (bw_engine_admit_call(e, &c) == 0) {
			rc = bw_pq.reset_start(conn);
			if (!rc)
				bw_engine_outcome(e, &c, conn_failure(conn, w.unix_dest));
			else if (pending_add(conn, e, &c, &w) < 0)
				bw_engine_release(e, &c);
		}
	}
	ruled_leave(r);
	bw_foreign_leave(&depth, acting);
	if (rc)
		forget_session(conn);
	where_moved();
	return rc;
}

BW_HOOK int PQresetPoll(PGconn *conn)
{
	if (resolve(__builtin_return_address(0)) < 0)
		return BW_PQ_POLLING_FAILED;
	int st = bw_pq.reset_poll(conn);
	if (st == BW_PQ_POLLING_OK || st == BW_PQ_POLLING_FAILED)
		pending_done(conn, st);
	return st;
}

BW_HOOK void PQfinish(PGconn *conn)
{
	if (resolve(__builtin_return_address(0)) < 0)
		return;
	if (conn) {
		struct pending p;
		forget_session(conn);
		flight_drop(flight_of(conn));
		where_moved();
		if (pending_take(conn, &p) == 0) {
			struct bw_call c;
			init_call(&c, p.rule, p.call, &p.w);
			c.slot_held = p.slot_held;
			bw_engine_release(p.e, &c);
		}
	}
	bw_pq.finish(conn);
}

/* ---- statements ---- */

enum stmt_kind {
	S_EXEC, S_EXEC_PARAMS, S_PREPARE, S_EXEC_PREPARED,
	S_SEND, S_SEND_PARAMS, S_SEND_PREPARE, S_SEND_PREPARED
};

static const char *const stmt_call_names[] = {
	"PQexec", "PQexecParams", "PQprepare", "PQexecPrepared",
	"PQsendQuery", "PQsendQueryParams", "PQsendPrepare", "PQsendQueryPrepared",
};

struct pq_stmt {
	enum stmt_kind kind;
	PGconn *conn;
	const char *name;            /* prepared statement */
	const char *sql;
	int n;
	const Oid *types;
	const char *const *values;
	const int *lengths;
	const int *formats;
	int result_format;
	PGresult *res;               /* PQexec* */
	int rc;                      /* PQsend* */
	int ran;                     /* res or rc is the real call's */
	int idle;                    /* the session was idle before the call */
	int reconnect;               /* its server went away: connect anew before it runs */
	int unix_dest;
	struct bw_stop stop;
	struct bw_engine *e;
	struct bw_call reconnect_call;   /* the reconnect, for breaker and call limit */
	const struct bw_call *call;      /* the statement's own, for injection */
	int injected;                    /* the last attempt's error was injected */
};

static int sends(const struct pq_stmt *s)
{
	return s->kind >= S_SEND;
}

static void stmt_run(struct pq_stmt *s)
{
	if (s->ran && s->res)
		bw_pq.clear(s->res);
	s->res = NULL;
	s->ran = 1;
	s->injected = 0;
	switch (s->kind) {
	case S_EXEC:
		s->res = bw_pq.exec(s->conn, s->sql);
		break;
	case S_EXEC_PARAMS:
		s->res = bw_pq.exec_params(s->conn, s->sql, s->n, s->types, s->values, s->lengths,
					   s->formats, s->result_format);
		break;
	case S_PREPARE:
		s->res = bw_pq.prepare(s->conn, s->name, s->sql, s->n, s->types);
		break;
	case S_EXEC_PREPARED:
		s->res = bw_pq.exec_prepared(s->conn, s->name, s->n, s->values, s->lengths,
					     s->formats, s->result_format);
		break;
	case S_SEND:
		s->rc = bw_pq.send_query(s->conn, s->sql);
		break;
	case S_SEND_PARAMS:
		s->rc = bw_pq.send_query_params(s->conn, s->sql, s->n, s->types, s->values,
						s->lengths, s->formats, s->result_format);
		break;
	case S_SEND_PREPARE:
		s->rc = bw_pq.send_prepare(s->conn, s->name, s->sql, s->n, s->types);
		break;
	case S_SEND_PREPARED:
		s->rc = bw_pq.send_query_prepared(s->conn, s->name, s->n, s->values, s->lengths,
						  s->formats, s->result_format);
		break;
	}
}

/* The session is idle: connected, in no transaction, no command under way, not in
 * pipeline mode. */
static int session_idle(const PGconn *conn)
{
	return bw_pq.status(conn) == BW_PQ_CONNECTION_OK &&
	       bw_pq.transaction_status(conn) == BW_PQ_TRANS_IDLE &&
	       (!bw_pq.pipeline_status || bw_pq.pipeline_status(conn) == BW_PQ_PIPELINE_OFF);
}

/* The server closed an idle session (a shutdown, a restart, pg_terminate_backend): its
 * end of the socket is closed, though libpq has not read it yet. A statement sent now
 * would never run. */
static int server_gone(const PGconn *conn)
{
	int fd = bw_pq.socket(conn);
	if (fd < 0)
		return 0;
	int saved = errno;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	int rc = poll(&p, 1, 0);
	errno = saved;
	return rc == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Connect anew before the statement runs again, admitted and judged like a connect. */
static int reconnect(struct pq_stmt *s)
{
	struct bw_call *c = &s->reconnect_call;
	if (bw_engine_admits(c->rule, BW_OP_PG)) {
		int by_breaker;
		int err = bw_engine_admit(s->e, c, &by_breaker);
		if (err) {
			s->stop = (struct bw_stop){ 1, NULL, NULL };
			return err;
		}
	}
	bw_pq.reset(s->conn);
	where_moved();
	int ok = bw_pq.status(s->conn) == BW_PQ_CONNECTION_OK;
	int err = ok ? 0 : conn_failure(s->conn, s->unix_dest);
	bw_engine_settle(s->e, c, err);
	if (!ok && !err) {
		/* a failure waiting cannot mend (a password changed meanwhile) */
		s->stop = (struct bw_stop){ 1, NULL, NULL };
		return sqlstate("08006");
	}
	return err;
}

/* What a statement's result says: 0, or the SQLSTATE of an error that speaks of the
 * server, with s->stop saying whether it may run again. */
static int stmt_outcome(struct pq_stmt *s)
{
	if (sends(s) || !s->res)
		return 0;
	int st = bw_pq.result_status(s->res);
	if (st != BW_PQ_FATAL_ERROR && st != BW_PQ_BAD_RESPONSE)
		return 0;
	const char *code = bw_pq.result_error_field(s->res, BW_PQ_DIAG_SQLSTATE);
	int err = code ? sqlstate(code) : 0;
	int lost = bw_pq.status(s->conn) == BW_PQ_CONNECTION_BAD;
	if (!err && lost)
		err = sqlstate("08006");
	if (!err || !speaks_of_server(err))
		return 0;
	int conflict = err == sqlstate("40001") || err == sqlstate("40P01");
	int single = s->kind == S_EXEC_PARAMS || s->kind == S_EXEC_PREPARED ||
		     (s->kind == S_EXEC && bw_pq_single_statement(s->sql));
	if (conflict && s->idle && single && session_idle(s->conn)) {
		s->stop.now = 0;
		return err;
	}
	if (lost && s->idle && (s->kind == S_EXEC || s->kind == S_EXEC_PARAMS) &&
	    bw_pq_read_only(s->sql)) {
		/* it may have run, but running it again changes nothing */
		s->stop.now = 0;
		s->reconnect = 1;
		return err;
	}
	s->stop = (struct bw_stop){ 1, NULL, NULL };
	if (lost && s->idle)
		s->stop = (struct bw_stop){ 1, "unknown_outcome",
			"the connection was lost after the statement was sent: it may have run, "
			"so it is not run again" };
	return err;
}

/* An injected SQLSTATE: the server raises it in place of the statement (a DO block), so
 * the program gets a real error result with that code from a statement that did not run,
 * and the session stays (an explicit transaction is aborted, as by any error). Kept in
 * s->res, for a PQsend form too (stmt_call hands it out through PQgetResult). Where the
 * session was idle, the statement may run again: it never ran. */
static int stmt_injected(struct pq_stmt *s)
{
	struct bw_fault f;
	if (!s->call || !bw_engine_inject(s->e, s->call, &f) || !f.err)
		return 0;
	const char *name = bw_err_name(f.err);
	const char *code = name && strncmp(name, "SQLSTATE_", 9) == 0 && strlen(name) == 14
				   ? name + 9 : "08006";
	char sql[192];
	snprintf(sql, sizeof sql, "DO $bulwark$BEGIN RAISE EXCEPTION USING ERRCODE = '%s', "
		 "MESSAGE = 'bulwark: injected SQLSTATE %s'; END$bulwark$", code, code);
	if (s->ran && s->res)
		bw_pq.clear(s->res);
	s->res = bw_pq.exec(s->conn, sql);
	s->ran = 1;
	s->injected = 1;
	if (!s->idle)
		s->stop = (struct bw_stop){ 1, NULL, NULL };
	return f.err;
}

static int stmt_attempt(void *arg, int n, int64_t deadline)
{
	struct pq_stmt *s = arg;
	(void)deadline;
	s->stop = (struct bw_stop){ 0, NULL, NULL };
	if (s->reconnect) {
		/* n 1: the statement was not sent, its server had closed the session; later:
		 * it was lost in flight, and only reads */
		if (is_stateful(s->conn)) {
			s->stop = (struct bw_stop){ 1, "session_state",
				"the server closed a session that holds state (SET, PREPARE, "
				"LISTEN, DECLARE, a temporary table or an advisory lock) which a "
				"new connection would lose: not reconnected" };
			return sqlstate("08006");
		}
		if (n == 1)
			return sqlstate("08006");
		int err = reconnect(s);
		if (err)
			return err;
		s->reconnect = 0;
	}
	int err = stmt_injected(s);
	if (err)
		return err;
	stmt_run(s);
	return stmt_outcome(s);
}

/* What a statement may leave in its session (sets_session_state). */
static void note_session_state(const struct pq_stmt *s)
{
	if (!s->conn)
		return;
	if (s->kind == S_PREPARE || s->kind == S_SEND_PREPARE ||
	    ((s->kind == S_EXEC || s->kind == S_SEND || s->kind == S_EXEC_PARAMS ||
	      s->kind == S_SEND_PARAMS) && s->sql && bw_pq_sets_session_state(s->sql)))
		mark_stateful(s->conn);
}

/* ---- statements sent with PQsend* and read with PQgetResult ----
 *
 * psql and pgbench send a statement (PQsendQuery*) and read its results later with
 * PQgetResult, some waiting on the socket themselves in between (PQconsumeInput,
 * PQisBusy). A failure of the statement shows in PQgetResult, or as the connection that
 * PQconsumeInput finds lost. A statement the program sends on an idle session under a
 * rule is recorded here, with a copy of its arguments, until its results end (its
 * flight), so that it can be sent again where stmt_outcome's rules allow it: the
 * connection was lost or closed by the server and the statement only reads, or it met a
 * serialization failure or deadlock alone in autocommit. Nothing is sent again once a
 * result of it has reached the program. A statement sent again is read to its end here
 * and its results handed out from the queue: the program never has to wait on the new
 * connection's socket for them, so a program that watches the old one still gets them.
 * In pipeline mode (several statements in flight) failures are only counted. */

#define PQ_FLIGHTS 256              /* statements in flight at once, process-wide */
#define PQ_FLIGHT_MAX (64 * 1024)    /* arguments beyond this are not copied: no retry */
#define PQ_QUEUE 16

/* PGRES_* values a drain must not wait past: a COPY wants the program's data */
#define BW_PQ_COPY_OUT 3
#define BW_PQ_COPY_IN 4
#define BW_PQ_COPY_BOTH 8

struct flight {
	PGconn *conn;                /* claimed by a compare-and-swap; NULL: free */
	/* the rest belongs to the thread that uses conn (libpq: one at a time) */
	enum stmt_kind kind;
	int idle;                    /* the session was idle when it was sent */
	int retry;                   /* may be sent again, its rules permitting */
	int judged;                  /* its failure was met (retried or not): the rest of
				      * its results are libpq's to give */
	int delivered;               /* results handed to the program */
	int read_only, single;        /* what the text says, -1 until asked */
	const char *sql, *name;
	int n;
	const Oid *types;
	const char *const *values;
	const int *lengths, *formats;
	int result_format;
	PGresult *queue[PQ_QUEUE];   /* results of a statement sent again, to hand out */
	int q_head, q_len;
	int q_done;                  /* the queue holds them to their end: then NULL */
	char *buf;                   /* the copies; kept for the slot's next statement */
	size_t cap;
};

static struct flight flights[PQ_FLIGHTS];
static int n_flights;

/* The slot this thread used last: statements come one after another on a connection. */
static __thread struct flight *flight_hint __attribute__((tls_model("initial-exec")));

static struct flight *flight_of(const PGconn *conn)
{
	if (!__atomic_load_n(&n_flights, __ATOMIC_RELAXED))
		return NULL;
	struct flight *h = flight_hint;
	if (h && __atomic_load_n(&h->conn, __ATOMIC_ACQUIRE) == conn)
		return h;
	for (int i = 0; i < PQ_FLIGHTS; i++)
		if (__atomic_load_n(&flights[i].conn, __ATOMIC_ACQUIRE) == conn)
			return flight_hint = &flights[i];
	return NULL;
}

static struct flight *flight_claim(PGconn *conn)
{
	struct flight *f = flight_of(conn);
	if (f)
		return f;
	for (int i = 0; i < PQ_FLIGHTS; i++) {
		PGconn *expect = NULL;
		if (__atomic_compare_exchange_n(&flights[i].conn, &expect, conn, 0,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			__atomic_add_fetch(&n_flights, 1, __ATOMIC_RELAXED);
			return flight_hint = &flights[i];
		}
	}
	return NULL;
}

static void flight_clear_queue(struct flight *f)
{
	for (; f->q_len; f->q_len--, f->q_head = (f->q_head + 1) % PQ_QUEUE)
		bw_pq.clear(f->queue[f->q_head]);
	f->q_head = 0;
	f->q_done = 0;
}

static void flight_drop(struct flight *f)
{
	if (!f)
		return;
	flight_clear_queue(f);
	/* a large copy is not kept for whoever takes the slot next */
	if (f->cap > 4096) {
		free(f->buf);
		f->buf = NULL;
		f->cap = 0;
	}
	__atomic_store_n(&f->conn, NULL, __ATOMIC_RELEASE);
	__atomic_sub_fetch(&n_flights, 1, __ATOMIC_RELAXED);
}

static size_t param_size(const struct pq_stmt *s, int i)
{
	if (!s->values[i])
		return 0;
	if (s->formats && s->formats[i])
		return s->lengths && s->lengths[i] > 0 ? (size_t)s->lengths[i] : 0;
	return strlen(s->values[i]) + 1;
}

/* A copy of s's arguments into f's buffer; -1 when they are too large (or no memory). */
static int flight_copy(struct flight *f, const struct pq_stmt *s)
{
	size_t n = s->n > 0 ? (size_t)s->n : 0;
	size_t sql = s->sql ? strlen(s->sql) + 1 : 0, name = s->name ? strlen(s->name) + 1 : 0;
	size_t need = n * sizeof(char *) + sql + name;
	if (s->values) {
		for (size_t i = 0; i < n && need <= PQ_FLIGHT_MAX; i++)
			need += param_size(s, (int)i);
	}
	need += (s->types ? n * sizeof(Oid) : 0) + (s->lengths ? n * sizeof(int) : 0) +
		(s->formats ? n * sizeof(int) : 0);
	if (need > PQ_FLIGHT_MAX)
		return -1;
	if (f->cap < need || !f->buf) {
		char *b = realloc(f->buf, need ? need : 1);
		if (!b)
			return -1;
		f->buf = b;
		f->cap = need ? need : 1;
	}
	/* pointers first, then the ints, then the bytes: each part aligned as it needs */
	char *p = f->buf;
	const char **values = s->values ? (const char **)(void *)p : NULL;
	p += s->values ? n * sizeof(char *) : 0;
	Oid *types = s->types ? (Oid *)(void *)p : NULL;
	p += s->types ? n * sizeof(Oid) : 0;
	int *lengths = s->lengths ? (int *)(void *)p : NULL;
	p += s->lengths ? n * sizeof(int) : 0;
	int *formats = s->formats ? (int *)(void *)p : NULL;
	p += s->formats ? n * sizeof(int) : 0;
	if (types)
		memcpy(types, s->types, n * sizeof(Oid));
	if (lengths)
		memcpy(lengths, s->lengths, n * sizeof(int));
	if (formats)
		memcpy(formats, s->formats, n * sizeof(int));
	for (size_t i = 0; values && i < n; i++) {
		size_t k = param_size(s, (int)i);
		values[i] = s->values[i] ? p : NULL;
		if (k)
			memcpy(p, s->values[i], k);
		p += k;
	}
	f->sql = s->sql ? memcpy(p, s->sql, sql) : NULL;
	p += sql;
	f->name = s->name ? memcpy(p, s->name, name) : NULL;
	f->n = s->n;
	f->types = types;
	f->values = values;
	f->lengths = lengths;
	f->formats = formats;
	f->result_format = s->result_format;
	return 0;
}

/* The program sent s (it returned 1) under a rule: its flight begins. */
static void flight_begin(struct pq_stmt *s)
{
	struct flight *f = flight_claim(s->conn);
	if (!f)
		return;
	flight_clear_queue(f);
	f->kind = s->kind;
	f->idle = s->idle;
	f->delivered = 0;
	f->judged = 0;
	/* the text is read when a failure asks, not on every statement */
	f->single = s->kind != S_SEND ? 1 : -1;
	f->read_only = s->kind == S_SEND || s->kind == S_SEND_PARAMS ? -1 : 0;
	/* in a transaction or a pipeline, a failure is the program's: counted only */
	f->retry = s->idle && s->kind != S_SEND_PREPARE && flight_copy(f, s) == 0;
}

/* Of a flight that may be sent again (its text is copied). */
static int flight_read_only(struct flight *f)
{
	if (f->read_only < 0)
		f->read_only = bw_pq_read_only(f->sql);
	return f->read_only;
}

static int flight_single(struct flight *f)
{
	if (f->single < 0)
		f->single = bw_pq_single_statement(f->sql);
	return f->single;
}

static int result_failed(const PGresult *res)
{
	int st = bw_pq.result_status(res);
	return st == BW_PQ_FATAL_ERROR || st == BW_PQ_BAD_RESPONSE;
}

static int result_copies(const PGresult *res)
{
	int st = bw_pq.result_status(res);
	return st == BW_PQ_COPY_OUT || st == BW_PQ_COPY_IN || st == BW_PQ_COPY_BOTH;
}

/* The results left of a statement whose first result we hold: read and dropped, as
 * libpq's PQexec does. 0 when they ended (libpq is idle). */
static int drain(PGconn *conn)
{
	for (int i = 0; i < 1000; i++) {
		PGresult *r = bw_pq.get_result(conn);
		if (!r)
			return 0;
		int copies = result_copies(r);
		bw_pq.clear(r);
		if (copies)
			return -1;
	}
	return -1;
}

/* The flight's statement, sent again on its connection. */
static int flight_send(const struct flight *f)
{
	switch (f->kind) {
	case S_SEND:
		return bw_pq.send_query(f->conn, f->sql);
	case S_SEND_PARAMS:
		return bw_pq.send_query_params(f->conn, f->sql, f->n, f->types, f->values,
					       f->lengths, f->formats, f->result_format);
	case S_SEND_PREPARED:
		return bw_pq.send_query_prepared(f->conn, f->name, f->n, f->values, f->lengths,
						 f->formats, f->result_format);
	default:
		return 0;
	}
}

/* Whether err ends the session: the connection is gone, or the server said so before it
 * closed it (a shutdown, a crash of another backend, pg_terminate_backend). */
static int ends_session(const PGconn *conn, int err)
{
	return bw_pq.status(conn) == BW_PQ_CONNECTION_BAD ||
	       sqlstate_class(err) == sqlstate_class(sqlstate("08000")) ||
	       err == sqlstate("57P01") || err == sqlstate("57P02") || err == sqlstate("57P03");
}

struct pq_fetch {
	struct pq_stmt s;            /* conn, e, stop, reconnect_call, unix_dest */
	struct flight *f;
	PGresult *res;               /* the first result of the last attempt, or NULL */
	int err;                     /* the failure of the last attempt */
	int sent;                    /* the statement was sent again */
};

/* What the flight's first result says: 0, or the SQLSTATE of an error that speaks of
 * the server, with stop saying whether the statement may be sent again. */
static int fetch_outcome(struct pq_fetch *q)
{
	struct bw_stop *stop = &q->s.stop;
	PGconn *conn = q->s.conn;
	int err = 0;
	if (q->res) {
		if (!result_failed(q->res))
			return 0;
		const char *code = bw_pq.result_error_field(q->res, BW_PQ_DIAG_SQLSTATE);
		err = code ? sqlstate(code) : 0;
	}
	int lost = bw_pq.status(conn) == BW_PQ_CONNECTION_BAD;
	if (!err && lost)
		err = sqlstate("08006");
	if (!err || !speaks_of_server(err))
		return 0;
	int ends = ends_session(conn, err);
	int conflict = err == sqlstate("40001") || err == sqlstate("40P01");
	if (q->f->retry && !q->f->delivered) {
		if (conflict && flight_single(q->f) && !lost)
			return err;
		if (ends && flight_read_only(q->f)) {
			q->s.reconnect = 1;
			return err;
		}
	}
	*stop = (struct bw_stop){ 1, NULL, NULL };
	if (ends && q->f->idle && !q->f->delivered)
		*stop = (struct bw_stop){ 1, "unknown_outcome",
			"the connection was lost after the statement was sent: it may have run, "
			"and it is not one that can run again (it may write, or its rows were "
			"being read one by one)" };
	return err;
}

static int fetch_step(struct pq_fetch *q, int n);

static int fetch_attempt(void *arg, int n, int64_t deadline)
{
	struct pq_fetch *q = arg;
	(void)deadline;
	q->s.stop = (struct bw_stop){ 0, NULL, NULL };
	if (n > 1 || q->res)
		q->err = fetch_step(q, n);
	return q->err;
}

/* Attempt n of the flight's statement: n 1 is the program's own (its result in q->res),
 * the later ones send it again. */
static int fetch_step(struct pq_fetch *q, int n)
{
	PGconn *conn = q->s.conn;
	if (n == 1)
		return fetch_outcome(q);
	int err = q->err;
	if (drain(conn) < 0) {
		q->s.stop = (struct bw_stop){ 1, NULL, NULL };
		return err;
	}
	if (q->s.reconnect || bw_pq.status(conn) == BW_PQ_CONNECTION_BAD || server_gone(conn)) {
		if (is_stateful(conn)) {
			q->s.stop = (struct bw_stop){ 1, "session_state",
				"the session held state (SET, PREPARE, LISTEN, DECLARE, a temporary "
				"table or an advisory lock) which a new connection would lose: the "
				"statement is not sent again" };
			return err;
		}
		err = reconnect(&q->s);
		if (err)
			return err;
		q->s.reconnect = 0;
	} else if (!session_idle(conn)) {
		q->s.stop = (struct bw_stop){ 1, NULL, NULL };
		return err;
	}
	if (!flight_send(q->f)) {
		err = conn_failure(conn, q->s.unix_dest);
		return err ? err : sqlstate("08006");
	}
	q->sent = 1;
	PGresult *r = bw_pq.get_result(conn);
	if (q->res)
		bw_pq.clear(q->res);
	q->res = r;
	return fetch_outcome(q);
}

/* After a statement was sent again: its first result and the rest, to be handed out from
 * the queue. */
static void flight_fill(struct flight *f, PGresult *first)
{
	flight_clear_queue(f);
	if (!first) {
		f->q_done = 1;
		return;
	}
	f->queue[0] = first;
	f->q_len = 1;
	if (result_copies(first))
		return;
	while (f->q_len < PQ_QUEUE) {
		PGresult *r = bw_pq.get_result(f->conn);
		if (!r) {
			f->q_done = 1;
			return;
		}
		f->queue[f->q_len++] = r;
		if (result_copies(r))
			return;
	}
}

static PGresult *flight_pop(struct flight *f)
{
	PGresult *r = f->queue[f->q_head];
	f->q_head = (f->q_head + 1) % PQ_QUEUE;
	f->q_len--;
	f->delivered++;
	return r;
}

/* A failure met by the flight's statement, in the program's PQgetResult (res, its first
 * result) or PQconsumeInput (res NULL: the connection was lost): the statement is sent
 * again where that is safe. Returns 1 when it was and its results wait in the queue; 0
 * when the program is to get res, or its own call's failure, as they are. */
static int flight_failed(const void *caller, struct flight *f, PGresult *res, int err)
{
	struct bw_engine *e = bw_engine_for(BW_OP_PG);
	int acting = e ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = acting ? conn_rule(e, f->conn, &w) : NULL;
	ruled_enter(r);
	int sent = 0;
	f->judged = 1;
	if (r) {
		struct pq_fetch q = { .f = f, .res = res, .err = err };
		struct bw_call c;
		init_call(&c, r, stmt_call_names[f->kind], &w);
		c.attempt = fetch_attempt;
		c.arg = &q;
		c.stop = &q.s.stop;
		c.unguarded = 1;
		q.s.kind = f->kind;
		q.s.conn = f->conn;
		q.s.e = e;
		q.s.unix_dest = w.unix_dest;
		q.s.reconnect_call = c;
		q.s.reconnect_call.call = "PQreset";
		q.s.reconnect_call.unguarded = 0;
		bw_engine_run(e, &c, bw_thread_rng());
		f->retry = 0;
		if (q.sent) {
			/* sent again: whatever its attempts ended with is the program's now */
			flight_fill(f, q.res);
			sent = 1;
		}
	}
	ruled_leave(r);
	bw_foreign_leave(&depth, acting);
	return sent;
}

/* A failure outside any flight (pipeline mode, a full table): counted and logged. */
static void observe_failure(const void *caller, PGconn *conn, int err, const char *call)
{
	struct bw_engine *e = bw_engine_for(BW_OP_PG);
	int acting = e ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = acting ? conn_rule(e, conn, &w) : NULL;
	if (r && err && speaks_of_server(err)) {
		struct bw_call c;
		init_call(&c, r, call, &w);
		bw_engine_failed(e, &c, err, 1, 0);
	}
	bw_foreign_leave(&depth, acting);
}

static int result_err(const PGconn *conn, const PGresult *res)
{
	const char *code = bw_pq.result_error_field(res, BW_PQ_DIAG_SQLSTATE);
	int err = code ? sqlstate(code) : 0;
	return !err && bw_pq.status(conn) == BW_PQ_CONNECTION_BAD ? sqlstate("08006") : err;
}

/* The program's own call, not libpq's (PQconnectPoll reads its setup with PQgetResult,
 * PQexec its results) nor one made while the policy acts on another on this thread (the
 * reconnect of a statement sent again). */
static int programs_call(const void *caller)
{
	return !depth.acting && !bw_foreign_internal(&bw_pq_lib, caller);
}

BW_HOOK PGresult *PQgetResult(PGconn *conn)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct flight *f = conn ? flight_of(conn) : NULL;
	if (f && !programs_call(caller))
		return bw_pq.get_result(conn);
	if (f && f->q_len)
		return flight_pop(f);
	if (f && f->q_done) {
		flight_drop(f);
		return NULL;
	}
	PGresult *res = bw_pq.get_result(conn);
	if (!f) {
		if (res && result_failed(res))
			observe_failure(caller, conn, result_err(conn, res), "PQgetResult");
		return res;
	}
	if (!res) {
		flight_drop(f);
		return NULL;
	}
	if (!result_failed(res) || f->judged) {
		f->delivered++;
		return res;
	}
	if (flight_failed(caller, f, res, 0))
		return flight_pop(f);
	f->delivered++;
	return res;
}

BW_HOOK int PQconsumeInput(PGconn *conn)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return 0;
	int rc = bw_pq.consume_input(conn);
	if (rc || !conn || !programs_call(caller))
		return rc;
	struct flight *f = flight_of(conn);
	int err = conn_failure(conn, 0);
	if (!err)
		err = sqlstate("08006");
	if (f && f->retry && !f->delivered && !f->judged && flight_read_only(f))
		return flight_failed(caller, f, NULL, err);
	if (!f || !f->judged)
		observe_failure(caller, conn, err, "PQconsumeInput");
	if (f)
		f->judged = 1;
	return 0;
}

BW_HOOK int PQsetSingleRowMode(PGconn *conn)
{
	if (resolve(__builtin_return_address(0)) < 0 || !bw_pq.set_single_row_mode)
		return 0;
	int rc = bw_pq.set_single_row_mode(conn);
	struct flight *f = rc && conn ? flight_of(conn) : NULL;
	/* sent again, the statement would come back whole, not row by row */
	if (f)
		f->retry = 0;
	return rc;
}

/* A PQsend call that ends with an injected error: sent, as far as the program knows,
 * and the error its result, handed out by PQgetResult. Without a slot to hand it from,
 * the call fails as a send that could not be made. */
static void injected_sent(struct pq_stmt *s)
{
	struct flight *f = s->res ? flight_claim(s->conn) : NULL;
	if (!f) {
		if (s->res)
			bw_pq.clear(s->res);
		s->res = NULL;
		s->rc = 0;
		return;
	}
	flight_clear_queue(f);
	f->kind = s->kind;
	f->idle = s->idle;
	f->retry = 0;
	f->judged = 1;
	f->delivered = 0;
	f->queue[0] = s->res;
	f->q_len = 1;
	f->q_done = 1;
	s->res = NULL;
	s->rc = 1;
}

static void stmt_call(const void *caller, struct pq_stmt *s)
{
	struct bw_engine *e = bw_engine_for(BW_OP_PG);
	/* libpq's own statements count too: PQsetClientEncoding runs a SET */
	if (e)
		note_session_state(s);
	/* a statement run whole (PQexec*) ends the results of one in flight, as libpq does;
	 * results of one sent again that the program did not read end with a new send */
	struct flight *f = e && s->conn ? flight_of(s->conn) : NULL;
	if (f && (!sends(s) || f->q_len || f->q_done))
		flight_drop(f);
	int acting = e && s->conn ? bw_foreign_enter(&bw_pq_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = acting ? conn_rule(e, s->conn, &w) : NULL;
	ruled_enter(r);
	if (!r) {
		stmt_run(s);
		if (sends(s) && s->rc && e && s->conn)
			flight_drop(flight_of(s->conn));
	} else {
		struct bw_call c;
		init_call(&c, r, stmt_call_names[s->kind], &w);
		c.attempt = stmt_attempt;
		c.arg = s;
		c.stop = &s->stop;
		/* breaker and call limit judge connections: the reconnect, not the statement */
		c.unguarded = 1;
		s->reconnect_call = c;
		s->reconnect_call.call = "PQreset";
		s->reconnect_call.unguarded = 0;
		s->e = e;
		s->unix_dest = w.unix_dest;
		s->idle = session_idle(s->conn);
		s->reconnect = s->idle && server_gone(s->conn);
		s->call = &c;
		bw_engine_run(e, &c, bw_thread_rng());
		/* not run at all (the reconnect failed or was not made): the program gets
		 * libpq's own answer for the connection as it is */
		if (!s->ran)
			stmt_run(s);
		if (sends(s) && s->injected)
			injected_sent(s);
		else if (sends(s) && s->rc)
			flight_begin(s);
	}
	ruled_leave(r);
	bw_foreign_leave(&depth, acting);
}

BW_HOOK PGresult *PQexec(PGconn *conn, const char *query)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_stmt s = { .kind = S_EXEC, .conn = conn, .sql = query };
	stmt_call(caller, &s);
	return s.res;
}

BW_HOOK PGresult *PQexecParams(PGconn *conn, const char *command, int nParams,
			       const Oid *paramTypes, const char *const *paramValues,
			       const int *paramLengths, const int *paramFormats, int resultFormat)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_stmt s = { .kind = S_EXEC_PARAMS, .conn = conn, .sql = command, .n = nParams,
			     .types = paramTypes, .values = paramValues, .lengths = paramLengths,
			     .formats = paramFormats, .result_format = resultFormat };
	stmt_call(caller, &s);
	return s.res;
}

BW_HOOK PGresult *PQprepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
			    const Oid *paramTypes)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_stmt s = { .kind = S_PREPARE, .conn = conn, .name = stmtName, .sql = query,
			     .n = nParams, .types = paramTypes };
	stmt_call(caller, &s);
	return s.res;
}

BW_HOOK PGresult *PQexecPrepared(PGconn *conn, const char *stmtName, int nParams,
				 const char *const *paramValues, const int *paramLengths,
				 const int *paramFormats, int resultFormat)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct pq_stmt s = { .kind = S_EXEC_PREPARED, .conn = conn, .name = stmtName,
			     .n = nParams, .values = paramValues, .lengths = paramLengths,
			     .formats = paramFormats, .result_format = resultFormat };
	stmt_call(caller, &s);
	return s.res;
}

BW_HOOK int PQsendQuery(PGconn *conn, const char *query)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return 0;
	struct pq_stmt s = { .kind = S_SEND, .conn = conn, .sql = query };
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK int PQsendQueryParams(PGconn *conn, const char *command, int nParams,
			      const Oid *paramTypes, const char *const *paramValues,
			      const int *paramLengths, const int *paramFormats, int resultFormat)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return 0;
	struct pq_stmt s = { .kind = S_SEND_PARAMS, .conn = conn, .sql = command, .n = nParams,
			     .types = paramTypes, .values = paramValues, .lengths = paramLengths,
			     .formats = paramFormats, .result_format = resultFormat };
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK int PQsendPrepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
			  const Oid *paramTypes)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return 0;
	struct pq_stmt s = { .kind = S_SEND_PREPARE, .conn = conn, .name = stmtName, .sql = query,
			     .n = nParams, .types = paramTypes };
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK int PQsendQueryPrepared(PGconn *conn, const char *stmtName, int nParams,
				const char *const *paramValues, const int *paramLengths,
				const int *paramFormats, int resultFormat)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return 0;
	struct pq_stmt s = { .kind = S_SEND_PREPARED, .conn = conn, .name = stmtName,
			     .n = nParams, .values = paramValues, .lengths = paramLengths,
			     .formats = paramFormats, .result_format = resultFormat };
	stmt_call(caller, &s);
	return s.rc;
}

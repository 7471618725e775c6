/* MySQL and MariaDB client calls (libmariadb), found at run time: the library never links
 * the client library.
 *
 * mysql_real_connect is retried when the connection fails for a reason that passes (a
 * server that cannot be reached or went away, too many connections), and refused by an
 * open breaker or a spent call limit. A refusal, like an injected failure, makes no
 * connection: the call returns NULL with the handle's error set as the library sets it
 * (mysql_errno 2002, CR_CONNECTION_ERROR, and a message that says why). The
 * handle's error fields are found through the library's own accessors, mysql_error and
 * mysql_errno, and written only once a write has proved where the error number lives
 * (bw_my_set_error); the rest of the handle is left as the program set it.
 *
 * A statement (mysql_real_query, mysql_query, mysql_stmt_prepare, mysql_stmt_execute)
 * is run again only where that cannot repeat an effect (bulwark.yaml(5), RETRY): the
 * session was idle (autocommit, no transaction open) and either its server went away
 * before the statement was sent (the connection is made anew first, with
 * mariadb_reconnect, unless the session holds state a new one would lose), or it failed
 * with a deadlock or lock wait timeout as a single statement in autocommit, which rolled
 * it back. A connection lost after the statement was sent leaves its outcome unknown:
 * that error goes back to the program, unless the statement only reads (a conservative
 * look at its text) or the rule's `idempotent` list names it. mysql_ping reconnects an idle session whose
 * server went away. Statements are neither refused nor counted by a breaker; the
 * reconnects made for them are. Events carry the server, the database and the error
 * number, never SQL text. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dbsess.h"
#include "dbwhere.h"
#include "errnames.h"
#include "hook.h"
#include "mysql_real.h"
#include "mysql_sql.h"
#include "ops.h"
#include "state.h"

BW_FOREIGN_DEPTH(depth);

static int resolve(const void *caller)
{
	return bw_foreign_resolve(&bw_my_lib, caller);
}

/* What acting needs of libmariadb: a session's status, a reconnect, the options, the
 * error accessors. */
static int understood(void)
{
	return bw_my.get_infov && bw_my.reconnect && bw_my.optionsv && bw_my.get_optionv &&
	       bw_my.get_socket && bw_my.errno_ && bw_my.error && bw_my.sqlstate &&
	       bw_my.stmt_errno && bw_my.real_query && bw_my.query && bw_my.ping &&
	       bw_my.stmt_prepare && bw_my.stmt_execute;
}

static int my_code(unsigned n)
{
	return bw_err_mysql((int)n);
}

/* Errors that speak of the server and its connection, not of the statement: a server
 * that cannot be reached or went away, too many connections, a shutdown, a killed
 * connection, and the two lock conflicts. A syntax error or a duplicate key is the
 * program's business. */
static int speaks_of_server(unsigned n)
{
	switch (n) {
	case 2002: case 2003: case 2006: case 2013: case 2055:
	case 1040: case 1053: case 1203: case 1205: case 1213: case 1927:
		return 1;
	}
	return 0;
}

/* The connection went away while the call was under way. */
static int lost(unsigned n)
{
	return n == 2006 || n == 2013 || n == 2055 || n == 1927 || n == 1053;
}

/* ---- the handle's error, written as the library writes it ---- */

/* In libmariadb's NET (and libmysqlclient's), the error number sits 7 bytes before the
 * message buffer that mysql_error returns, or 5 in later layouts. */
static const int errno_gaps[] = { 7, 5 };

static int in_handle(const MYSQL *m, const char *p)
{
	return p && p >= (const char *)m + 8 && p < (const char *)m + 4096;
}

/* Set m's error to number n with message text: 0, or -1 when the handle's layout could
 * not be confirmed (its error is then left as it was). */
static int bw_my_set_error(MYSQL *m, unsigned n, const char *text)
{
	char *msg = (char *)bw_my.error(m);
	unsigned cur = bw_my.errno_(m);
	if (!in_handle(m, msg))
		return -1;
	for (size_t i = 0; i < sizeof errno_gaps / sizeof errno_gaps[0]; i++) {
		char *slot = msg - errno_gaps[i];
		unsigned v;
		if ((uintptr_t)slot % _Alignof(unsigned))
			continue;
		memcpy(&v, slot, sizeof v);
		if (v != cur)
			continue;
		memcpy(slot, &n, sizeof n);
		if (bw_my.errno_(m) != n) {
			memcpy(slot, &v, sizeof v);
			continue;
		}
		snprintf(msg, BW_MY_ERRMSG_SIZE < 256 ? BW_MY_ERRMSG_SIZE : 256, "%s", text);
		char *state = (char *)bw_my.sqlstate(m);
		if (in_handle(m, state))
			memcpy(state, "HY000", 6);
		return 0;
	}
	return -1;
}

/* ---- where a connection goes ---- */

static int port_of(unsigned port)
{
	if (port)
		return (int)port;
	const char *env = getenv("MYSQL_TCP_PORT");
	long v = env ? strtol(env, NULL, 10) : 0;
	return v > 0 && v <= 65535 ? (int)v : BW_MY_DEFAULT_PORT;
}

/* Where mysql_real_connect's arguments lead, as libmariadb works it out: no host (or
 * "localhost") is the socket file unless the program asked for TCP; the first of several
 * hosts. -1 for a connection string or a connection plugin, which it cannot tell. */
static int where_args(MYSQL *m, const char *host, unsigned port, const char *sock,
		      const char *db, struct bw_db_where *w)
{
	char first[256];
	unsigned protocol = 0;
	if (host && (strchr(host, '=') || strchr(host, ';') || strstr(host, "://")))
		return -1;
	if (host && !*host)
		host = NULL;
	if (host && strchr(host, ',')) {
		/* "h1:3307,h2": the first host, its port if it names one */
		snprintf(first, sizeof first, "%.*s", (int)strcspn(host, ","), host);
		char *close = first[0] == '[' ? strchr(first, ']') : NULL;
		char *colon = strrchr(close ? close : first, ':');
		if (colon) {
			*colon = '\0';
			port = (unsigned)strtoul(colon + 1, NULL, 10);
		}
		if (close) {
			*close = '\0';
			memmove(first, first + 1, strlen(first));
		}
		host = first;
	}
	bw_my.get_optionv(m, BW_MY_OPT_PROTOCOL, &protocol);
	if ((!host || strcmp(host, "localhost") == 0) && protocol != BW_MY_PROTOCOL_TCP) {
		const char *path = sock && *sock ? sock : getenv("MYSQL_UNIX_PORT");
		if (!path || !*path)
			path = getenv("MARIADB_UNIX_PORT");
		if (!path || !*path)
			path = BW_MY_DEFAULT_SOCKET;
		bw_db_where_set(w, BW_OP_MYSQL, NULL, 0, path, db);
	} else {
		bw_db_where_set(w, BW_OP_MYSQL, host ? host : "localhost", port_of(port), NULL, db);
	}
	return 0;
}

/* Where a connected handle is connected, as libmariadb reports it. */
static int where_conn(MYSQL *m, struct bw_db_where *w)
{
	const char *host = NULL, *sock = NULL, *db = NULL;
	unsigned port = 0;
	if (bw_my.get_infov(m, BW_MY_CONN_HOST, &host) || !host)
		return -1;
	bw_my.get_infov(m, BW_MY_CONN_UNIX_SOCKET, &sock);
	bw_my.get_infov(m, BW_MY_CONN_PORT, &port);
	bw_my.get_infov(m, BW_MY_CONN_SCHEMA, &db);
	if (sock && *sock)
		bw_db_where_set(w, BW_OP_MYSQL, NULL, 0, sock, db);
	else
		bw_db_where_set(w, BW_OP_MYSQL, host, port_of(port), NULL, db);
	return 0;
}

static void init_call(struct bw_call *c, const struct bw_rule *r, const char *call,
		      const struct bw_db_where *w)
{
	bw_call_init(c, r, BW_OP_MYSQL, call);
	c->dest = w->dest;
	c->db = w->db;
	c->key = w->key;
	c->unix_dest = w->unix_dest;
}

/* ---- sessions that hold state a new connection would lose ----
 *
 * A session that ran SET, PREPARE, LOCK TABLES, USE, HANDLER, XA, made a temporary table,
 * named a user variable or GET_LOCK, or prepared a statement through the API is recorded
 * here and never reconnected behind the program's back. The check on the SQL text is
 * conservative; a session that cannot be recorded (the table is full) turns reconnects
 * off in the whole process. */

static struct bw_db_sessions stateful;

static int is_stateful(const MYSQL *m)
{
	return bw_db_sess_has(&stateful, m);
}

static void mark_stateful(MYSQL *m)
{
	bw_db_sess_add(&stateful, m);
}

/* m's session is new (made, reset) or gone (finished). */
static void forget_session(MYSQL *m)
{
	bw_db_sess_forget(&stateful, m);
}

/* Prepared statements and their connections (mysql_stmt_init): what a statement's
 * session is in. A statement not found here is passed through. */
#define MY_STMTS 1024
static struct { MYSQL_STMT *stmt; MYSQL *m; } stmts[MY_STMTS];
static int n_stmts;

static void stmt_add(MYSQL_STMT *st, MYSQL *m)
{
	for (int i = 0; i < MY_STMTS; i++) {
		MYSQL_STMT *expect = NULL;
		if (__atomic_compare_exchange_n(&stmts[i].stmt, &expect, st, 0, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			__atomic_store_n(&stmts[i].m, m, __ATOMIC_RELEASE);
			__atomic_add_fetch(&n_stmts, 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

static MYSQL *stmt_conn(const MYSQL_STMT *st)
{
	if (!__atomic_load_n(&n_stmts, __ATOMIC_RELAXED))
		return NULL;
	for (int i = 0; i < MY_STMTS; i++)
		if (__atomic_load_n(&stmts[i].stmt, __ATOMIC_RELAXED) == st)
			return __atomic_load_n(&stmts[i].m, __ATOMIC_ACQUIRE);
	return NULL;
}

/* Forget st, or every statement of m when st is NULL. */
static void stmt_forget(const MYSQL_STMT *st, const MYSQL *m)
{
	if (!__atomic_load_n(&n_stmts, __ATOMIC_RELAXED))
		return;
	for (int i = 0; i < MY_STMTS; i++) {
		MYSQL_STMT *cur = __atomic_load_n(&stmts[i].stmt, __ATOMIC_RELAXED);
		if (!cur || (st ? cur != st : __atomic_load_n(&stmts[i].m, __ATOMIC_RELAXED) != m))
			continue;
		__atomic_store_n(&stmts[i].m, NULL, __ATOMIC_RELAXED);
		if (__atomic_compare_exchange_n(&stmts[i].stmt, &cur, NULL, 0, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			__atomic_sub_fetch(&n_stmts, 1, __ATOMIC_RELAXED);
	}
}

/* ---- the session ---- */

static unsigned server_status(MYSQL *m)
{
	unsigned st = 0;
	if (bw_my.get_infov(m, BW_MY_CONN_SERVER_STATUS, &st))
		return BW_MY_STATUS_IN_TRANS;
	return st;
}

/* Connected, in autocommit, with no transaction open. */
static int session_idle(MYSQL *m)
{
	unsigned st = server_status(m);
	return bw_my.get_socket(m) >= 0 && (st & BW_MY_STATUS_AUTOCOMMIT) &&
	       !(st & BW_MY_STATUS_IN_TRANS);
}

/* The server closed an idle session (a restart, a shutdown, KILL CONNECTION): its end of
 * the socket is closed, though the library has not read it yet. A statement sent now
 * would never run. */
static int server_gone(MYSQL *m)
{
	int fd = bw_my.get_socket(m);
	if (fd < 0)
		return 0;
	int saved = errno;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	int rc = poll(&p, 1, 0);
	errno = saved;
	return rc == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* The code of a failed connection, or 0 when it says nothing against the server (a
 * wrong password, an unknown database). */
static int conn_failure(MYSQL *m)
{
	unsigned n = bw_my.errno_(m);
	return n && speaks_of_server(n) ? my_code(n) : 0;
}

/* ---- mysql_real_connect ---- */

struct my_open {
	MYSQL *m;
	const char *host, *user, *passwd, *db;
	unsigned port;
	const char *sock;
	unsigned long flags;
	MYSQL *ret;
	struct bw_db_where w;
	struct bw_engine *e;
	const struct bw_call *c;
};

/* The number a refused or injected connection sets: the refusal's or the fault's own,
 * else CR_CONNECTION_ERROR, which libmariadb sets for a server it cannot reach by TCP as
 * by a socket file. */
static unsigned refusal_number(int err)
{
	return bw_err_space(err) == BW_SPACE_MYSQL ? (unsigned)(err - BW_ERR_MYSQL_BASE) : 2002;
}

static int open_injected(struct my_open *o)
{
	struct bw_fault f;
	if (!bw_engine_inject(o->e, o->c, &f) || !f.err)
		return 0;
	char msg[BW_DEST_NAME_MAX + 160];
	snprintf(msg, sizeof msg, "bulwark: injected %s (rule \"%s\"); no connection to %s was "
		 "attempted", bw_err_name(f.err), o->c->rule->name, o->w.dest);
	bw_my_set_error(o->m, refusal_number(f.err), msg);
	return f.err;
}

static int open_attempt(void *arg, int n, int64_t deadline)
{
	struct my_open *o = arg;
	(void)n, (void)deadline;
	int err = open_injected(o);
	if (err) {
		o->ret = NULL;
		return err;
	}
	/* the options the program set survive a failed attempt for the next one */
	o->ret = bw_my.real_connect(o->m, o->host, o->user, o->passwd, o->db, o->port, o->sock,
				    o->flags | BW_MY_CLIENT_REMEMBER_OPTIONS);
	return o->ret ? 0 : conn_failure(o->m);
}

static int open_refuse(void *arg, int err)
{
	struct my_open *o = arg;
	char msg[BW_DEST_NAME_MAX + 200];
	snprintf(msg, sizeof msg, "bulwark refused the connection to %s: rule \"%s\" (its "
		 "circuit breaker is open, or its call limit is spent); no connection was "
		 "attempted", o->w.dest, o->c->rule->name);
	bw_my_set_error(o->m, refusal_number(err), msg);
	o->ret = NULL;
	return err;
}

BW_HOOK MYSQL *mysql_real_connect(MYSQL *m, const char *host, const char *user,
				  const char *passwd, const char *db, unsigned port,
				  const char *unix_socket, unsigned long client_flag)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return NULL;
	struct my_open o = { .m = m, .host = host, .user = user, .passwd = passwd, .db = db,
			     .port = port, .sock = unix_socket, .flags = client_flag };
	struct bw_engine *e = m && understood() ? bw_engine_for(BW_OP_MYSQL) : NULL;
	int acting = e ? bw_foreign_enter(&bw_my_lib, &depth, caller) : 0;
	/* a handle already connected fails in the library at once, without connecting */
	const struct bw_rule *r = acting && bw_my.get_socket(m) < 0 &&
					  where_args(m, host, port, unix_socket, db, &o.w) == 0
				  ? bw_engine_match(e, &o.w.t, NULL) : NULL;
	if (!r) {
		o.ret = bw_my.real_connect(m, host, user, passwd, db, port, unix_socket,
					   client_flag);
	} else {
		struct bw_call c;
		init_call(&c, r, "mysql_real_connect", &o.w);
		c.attempt = open_attempt;
		c.arg = &o;
		c.refuse = open_refuse;
		o.e = e;
		o.c = &c;
		bw_foreign_ruled_enter(r);
		bw_engine_run(e, &c, bw_thread_rng());
		bw_foreign_ruled_leave(r);
	}
	bw_foreign_leave(&depth, acting);
	if (o.ret)
		forget_session(m);
	return o.ret;
}

/* ---- statements ---- */

enum stmt_kind { S_REAL_QUERY, S_QUERY, S_PREPARE, S_EXECUTE, S_PING };

static const char *const call_names[] = {
	"mysql_real_query", "mysql_query", "mysql_stmt_prepare", "mysql_stmt_execute",
	"mysql_ping",
};

struct my_stmt {
	enum stmt_kind kind;
	MYSQL *m;
	MYSQL_STMT *stmt;
	const char *sql;
	unsigned long len;
	int rc;
	int ran;
	int idle;                    /* the session was idle before the call */
	int single;                  /* one statement */
	int reconnect;               /* connect anew before it runs */
	struct bw_stop stop;
	struct bw_engine *e;
	struct bw_call call;
	struct bw_call reconnect_call;
};

static void stmt_run(struct my_stmt *s)
{
	s->ran = 1;
	switch (s->kind) {
	case S_REAL_QUERY:
		s->rc = bw_my.real_query(s->m, s->sql, s->len);
		break;
	case S_QUERY:
		s->rc = bw_my.query(s->m, s->sql);
		break;
	case S_PREPARE:
		s->rc = bw_my.stmt_prepare(s->stmt, s->sql, s->len);
		break;
	case S_EXECUTE:
		s->rc = bw_my.stmt_execute(s->stmt);
		break;
	case S_PING:
		s->rc = bw_my.ping(s->m);
		break;
	}
}

static unsigned stmt_errno(const struct my_stmt *s)
{
	return s->stmt ? bw_my.stmt_errno(s->stmt) : bw_my.errno_(s->m);
}

/* Connect anew before the call runs again, admitted and judged like a connect:
 * mariadb_reconnect keeps the handle, its options, user, database and character set.
 * It reconnects only when the program allows it, so it is allowed for that one call. */
static int reconnect(struct my_stmt *s)
{
	struct bw_call *c = &s->reconnect_call;
	if (bw_engine_admits(c->rule, BW_OP_MYSQL)) {
		int by_breaker;
		int err = bw_engine_admit(s->e, c, &by_breaker);
		if (err) {
			s->stop = (struct bw_stop){ 1, NULL, NULL };
			return err;
		}
	}
	char was = 0, on = 1;
	bw_my.get_optionv(s->m, BW_MY_OPT_RECONNECT, &was);
	bw_my.optionsv(s->m, BW_MY_OPT_RECONNECT, &on);
	int failed = bw_my.reconnect(s->m) != 0;
	bw_my.optionsv(s->m, BW_MY_OPT_RECONNECT, &was);
	int err = failed ? conn_failure(s->m) : 0;
	bw_engine_settle(s->e, c, err);
	if (failed && !err) {
		/* a failure waiting cannot mend (a password changed meanwhile) */
		s->stop = (struct bw_stop){ 1, NULL, NULL };
		return my_code(2006);
	}
	return err;
}

static const struct bw_stop stop_state = { 1, "session_state",
	"the server closed a session that holds state (SET, a user variable, PREPARE, a "
	"prepared statement, a temporary table, LOCK TABLES, USE) which a new connection "
	"would lose: not reconnected" };
static const struct bw_stop stop_unknown = { 1, "unknown_outcome",
	"the connection was lost after the statement was sent: it may have run, and it is "
	"neither known to be read-only nor named in the rule's idempotent list, so it is not "
	"run again" };

/* A query that may run again after its connection was lost once it was sent: one
 * statement that only reads, or one the rule names in `idempotent`. */
static int may_run_twice(const struct my_stmt *s)
{
	if ((s->kind != S_REAL_QUERY && s->kind != S_QUERY) || !s->sql || !s->single)
		return 0;
	if (bw_my_read_only(s->sql, s->len))
		return 1;
	const struct bw_rule *r = s->call.rule;
	for (int i = 0; i < r->n_idempotent; i++)
		if (bw_my_starts_with(s->sql, s->len, r->idempotent[i]))
			return 1;
	return 0;
}

/* What the call's result says: 0, or the code of an error that speaks of the server,
 * with s->stop saying whether it may run again. */
static int stmt_outcome(struct my_stmt *s)
{
	if (s->rc == 0)
		return 0;
	unsigned n = stmt_errno(s);
	if (!n || !speaks_of_server(n))
		return 0;
	int err = my_code(n);
	s->stop = (struct bw_stop){ 1, NULL, NULL };
	if (n == 1205 || n == 1213) {
		/* the lone statement was its whole transaction, and was rolled back */
		if (s->idle && s->single && session_idle(s->m))
			s->stop.now = 0;
		return err;
	}
	if (!lost(n) || !s->idle)
		return err;
	if (s->kind == S_PING || s->kind == S_PREPARE || may_run_twice(s)) {
		/* no effect to repeat: the session is made anew where it holds nothing */
		if (is_stateful(s->m) && s->kind != S_PREPARE)
			s->stop = stop_state;
		else if (!is_stateful(s->m))
			s->stop.now = 0, s->reconnect = 1;
		return err;
	}
	s->stop = stop_unknown;
	return err;
}

static int stmt_injected(struct my_stmt *s)
{
	struct bw_fault f;
	if (!bw_engine_inject(s->e, &s->call, &f) || !f.err)
		return 0;
	char msg[160];
	snprintf(msg, sizeof msg, "bulwark: injected %s (rule \"%s\"); the statement was not "
		 "sent", bw_err_name(f.err), s->call.rule->name);
	if (bw_my_set_error(s->m, (unsigned)(f.err - BW_ERR_MYSQL_BASE), msg) < 0)
		return 0;
	/* never sent: it may be tried again as the rule says */
	s->ran = 1;
	s->rc = 1;
	return f.err;
}

static int stmt_attempt(void *arg, int n, int64_t deadline)
{
	struct my_stmt *s = arg;
	(void)deadline;
	s->stop = (struct bw_stop){ 0, NULL, NULL };
	if (s->reconnect) {
		if (n == 1) {
			/* not sent: its server had closed the session */
			if (is_stateful(s->m) || s->kind == S_EXECUTE)
				s->stop = stop_state;
			return my_code(2006);
		}
		int err = reconnect(s);
		if (err)
			return err;
		s->reconnect = 0;
	}
	/* faults are injected into queries, whose error the handle holds */
	int err = s->kind == S_REAL_QUERY || s->kind == S_QUERY ? stmt_injected(s) : 0;
	if (err)
		return err;
	stmt_run(s);
	return stmt_outcome(s);
}

/* What a query may leave in its session; a prepared statement is marked once it is
 * made (a prepare may itself go on a new connection). */
static void note_session_state(const struct my_stmt *s)
{
	if ((s->kind == S_REAL_QUERY || s->kind == S_QUERY) && s->sql &&
	    bw_my_sql_facts(s->sql, s->len).state)
		mark_stateful(s->m);
}

static void stmt_call(const void *caller, struct my_stmt *s)
{
	struct bw_engine *e = s->m && understood() ? bw_engine_for(BW_OP_MYSQL) : NULL;
	/* the library's own statements count too: mysql_autocommit runs a SET */
	if (e)
		note_session_state(s);
	int acting = e ? bw_foreign_enter(&bw_my_lib, &depth, caller) : 0;
	struct bw_db_where w;
	const struct bw_rule *r = acting && where_conn(s->m, &w) == 0
				  ? bw_engine_match(e, &w.t, NULL) : NULL;
	if (!r) {
		stmt_run(s);
	} else {
		init_call(&s->call, r, call_names[s->kind], &w);
		s->call.attempt = stmt_attempt;
		s->call.arg = s;
		s->call.stop = &s->stop;
		/* breaker and call limit judge connections: the reconnect, not the statement */
		s->call.unguarded = 1;
		s->reconnect_call = s->call;
		s->reconnect_call.call = "mariadb_reconnect";
		s->reconnect_call.unguarded = 0;
		s->e = e;
		s->idle = session_idle(s->m);
		s->single = s->sql ? bw_my_sql_facts(s->sql, s->len).statements <= 1 : 1;
		s->reconnect = s->idle && server_gone(s->m);
		bw_foreign_ruled_enter(r);
		bw_engine_run(e, &s->call, bw_thread_rng());
		bw_foreign_ruled_leave(r);
		/* not run at all (the reconnect failed or was not made): the program gets the
		 * library's own answer for the connection as it is */
		if (!s->ran)
			stmt_run(s);
	}
	bw_foreign_leave(&depth, acting);
	if (e && s->kind == S_PREPARE)
		mark_stateful(s->m);
}

BW_HOOK int mysql_real_query(MYSQL *m, const char *q, unsigned long length)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_my.real_query)
		return 1;
	struct my_stmt s = { .kind = S_REAL_QUERY, .m = m, .sql = q, .len = q ? length : 0 };
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK int mysql_query(MYSQL *m, const char *q)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_my.query)
		return 1;
	struct my_stmt s = { .kind = S_QUERY, .m = m, .sql = q, .len = q ? strlen(q) : 0 };
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK int mysql_ping(MYSQL *m)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_my.ping)
		return 1;
	struct my_stmt s = { .kind = S_PING, .m = m };
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK MYSQL_STMT *mysql_stmt_init(MYSQL *m)
{
	if (resolve(__builtin_return_address(0)) < 0 || !bw_my.stmt_init)
		return NULL;
	MYSQL_STMT *st = bw_my.stmt_init(m);
	if (st && m && understood() && bw_engine_for(BW_OP_MYSQL))
		stmt_add(st, m);
	return st;
}

BW_HOOK int mysql_stmt_prepare(MYSQL_STMT *st, const char *q, unsigned long length)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_my.stmt_prepare)
		return 1;
	struct my_stmt s = { .kind = S_PREPARE, .m = st ? stmt_conn(st) : NULL, .stmt = st,
			     .sql = q, .len = q ? length : 0 };
	if (!s.m) {
		s.rc = bw_my.stmt_prepare(st, q, length);
		return s.rc;
	}
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK int mysql_stmt_execute(MYSQL_STMT *st)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_my.stmt_execute)
		return 1;
	struct my_stmt s = { .kind = S_EXECUTE, .m = st ? stmt_conn(st) : NULL, .stmt = st };
	if (!s.m)
		return bw_my.stmt_execute(st);
	stmt_call(caller, &s);
	return s.rc;
}

BW_HOOK char mysql_stmt_close(MYSQL_STMT *st)
{
	if (resolve(__builtin_return_address(0)) < 0 || !bw_my.stmt_close)
		return 1;
	if (st)
		stmt_forget(st, NULL);
	return bw_my.stmt_close(st);
}

BW_HOOK void mysql_close(MYSQL *m)
{
	if (resolve(__builtin_return_address(0)) < 0 || !bw_my.close)
		return;
	if (m) {
		forget_session(m);
		stmt_forget(NULL, m);
	}
	bw_my.close(m);
}

/* SQLite client calls. Retry SQLITE_BUSY and SQLITE_LOCKED only where re-running cannot
 * repeat an effect (design.md H19): a statement that has not yet returned a row,
 * in autocommit, in a transaction that holds no lock yet, or a COMMIT. A busy error that
 * waiting cannot mend (a deferred transaction that must upgrade its read lock, a WAL
 * snapshot that went stale) ends at once with advice. The program's own busy handler or
 * busy_timeout is kept: SQLite waits with it first, our retries begin when it gives up.
 * Refusals (open breaker, limiter in fail mode) are locks that report busy, met by the
 * statement's step, never result codes made up here; a prepare is never refused. Calls
 * SQLite makes to its own API pass straight through, except the statements of a program's
 * sqlite3_exec, which are its own. */
#include <string.h>
#include <strings.h>
#include "errnames.h"
#include "hook.h"
#include "keyed.h"
#include "sqlite_real.h"
#include "sqlite_vfs.h"
#include "reload.h"
#include "state.h"

/* The policy looks at the program's calls, and at the steps and prepares of a program's
 * sqlite3_exec (a wrapper); not at SQLite's own work (schema loading runs sqlite3_exec)
 * nor at calls made while it already acts on one on this thread. */
BW_FOREIGN_DEPTH(depth);

static int resolve(const void *caller)
{
	return bw_foreign_resolve(&bw_sq_lib, caller);
}

static int is_failure(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: case SQLITE_IOERR: case SQLITE_FULL:
	case SQLITE_CANTOPEN: case SQLITE_PROTOCOL:
		return 1;
	}
	return 0;
}

static const struct bw_rule *rule_for(struct bw_engine *e, sqlite3 *db, const char **file)
{
	*file = db ? bw_sq.db_filename(db, "main") : NULL;
	struct bw_target t = { .op = BW_OP_SQLITE, .db = *file ? *file : "" };
	return bw_engine_match(e, &t, NULL);
}

static void init_call(struct bw_call *c, const struct bw_rule *r, const char *call,
		      const char *file)
{
	bw_call_init(c, r, BW_OP_SQLITE, call);
	c->db = file;
	c->key = file ? bw_key_bytes(file, strlen(file), 2) : 1;
}

static void install_vfs(void)
{
	bw_reload_tick();
	if (bw_engine_for(BW_OP_SQLITE))
		bw_sq_vfs_install();
}

BW_HOOK int sqlite3_open(const char *file, sqlite3 **db)
{
	if (resolve(__builtin_return_address(0)) < 0) {
		if (db)
			*db = NULL;
		return SQLITE_ERROR;
	}
	install_vfs();
	return bw_sq.open(file, db);
}

BW_HOOK int sqlite3_open_v2(const char *file, sqlite3 **db, int flags, const char *vfs)
{
	if (resolve(__builtin_return_address(0)) < 0) {
		if (db)
			*db = NULL;
		return SQLITE_ERROR;
	}
	install_vfs();
	return bw_sq.open_v2(file, db, flags, vfs);
}

/* ---- prepare: no effect yet, so a busy schema lock can always be waited out ----
 *
 * Breaker and call limit do not apply here but at the step. A prepare changes nothing: the
 * statement acts, if ever, when it is stepped, and the step is refused through locks that
 * report busy. Refusing the prepare as well would have no sound form: it would spend a
 * token (or a half-open probe) on a call with no effect, so a limit of N statements would
 * allow fewer; a refusal made through the storage layer would meet SQLite only when the
 * schema has to be read, so it would mostly not happen at all; and a result code made up
 * here would leave *ppStmt and sqlite3_errmsg out of step with SQLite. So prepare returns
 * what SQLite returns, *ppStmt and *pzTail as SQLite writes them, and its busy errors are
 * retried as the rule says. */

struct prep {
	sqlite3 *db;
	const char *sql;
	int n;
	unsigned flags;
	int v3;
	sqlite3_stmt **st;
	const char **tail;
	int rc;
};

static int prep_attempt(void *arg, int n, int64_t deadline)
{
	struct prep *p = arg;
	(void)n, (void)deadline;
	p->rc = p->v3 ? bw_sq.prepare_v3(p->db, p->sql, p->n, p->flags, p->st, p->tail)
		      : bw_sq.prepare_v2(p->db, p->sql, p->n, p->st, p->tail);
	return is_failure(p->rc) ? bw_err_sqlite(bw_sq.extended_errcode(p->db)) : 0;
}

static int prepare(const void *caller, struct prep *p)
{
	bw_reload_tick();
	struct bw_engine *e = bw_engine_for(BW_OP_SQLITE);
	int acting = e ? bw_foreign_enter(&bw_sq_lib, &depth, caller) : 0;
	const char *file;
	const struct bw_rule *r = acting ? rule_for(e, p->db, &file) : NULL;
	if (!r) {
		prep_attempt(p, 1, 0);
	} else {
		struct bw_call c;
		init_call(&c, r, p->v3 ? "sqlite3_prepare_v3" : "sqlite3_prepare_v2", file);
		c.attempt = prep_attempt;
		c.arg = p;
		c.unguarded = 1;
		bw_engine_run(e, &c, bw_thread_rng());
	}
	bw_foreign_leave(&depth, acting);
	return p->rc;
}

BW_HOOK int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st,
			       const char **tail)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0) {
		if (st)
			*st = NULL;   /* as SQLite leaves it on any failure */
		return SQLITE_ERROR;
	}
	struct prep p = { db, sql, n, 0, 0, st, tail, 0 };
	return prepare(caller, &p);
}

BW_HOOK int sqlite3_prepare_v3(sqlite3 *db, const char *sql, int n, unsigned flags,
			       sqlite3_stmt **st, const char **tail)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0 || !bw_sq.prepare_v3) {
		if (st)
			*st = NULL;
		return SQLITE_ERROR;
	}
	struct prep p = { db, sql, n, flags, 1, st, tail, 0 };
	return prepare(caller, &p);
}

/* ---- step ---- */

struct step {
	struct bw_engine *e;
	const struct bw_call *c;
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc;
	struct bw_stop stop;
};

/* COMMIT (or END) is the one statement of an open transaction that can be retried. */
static int is_commit(sqlite3_stmt *st)
{
	const char *s = bw_sq.sql(st);
	if (!s)
		return 0;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return strncasecmp(s, "COMMIT", 6) == 0 || strncasecmp(s, "END", 3) == 0;
}

/* Whether waiting can mend this busy error; if not, stop says why. */
static void judge_busy(struct step *s, int ext)
{
	s->stop.now = 0;
	if (ext == SQLITE_BUSY_SNAPSHOT) {
		s->stop = (struct bw_stop){ 1, "snapshot",
			"WAL snapshot is stale: another connection wrote since this transaction "
			"began reading; roll back and run the transaction again" };
		return;
	}
	if (bw_sq.get_autocommit(s->db) || is_commit(s->st))
		return;
	int txn = bw_sq.txn_state ? bw_sq.txn_state(s->db, NULL) : -1;
	if (txn == SQLITE_TXN_NONE)
		return;
	if (txn == SQLITE_TXN_READ) {
		s->stop = (struct bw_stop){ 1, "upgrade",
			"a deferred transaction holds a read lock and needs the write lock, which "
			"waiting cannot give it; roll back and run it again, or begin it with BEGIN "
			"IMMEDIATE" };
		return;
	}
	s->stop = (struct bw_stop){ 1, NULL, NULL };   /* inside a write: the program decides */
}

static int step_attempt(void *arg, int n, int64_t deadline)
{
	struct step *s = arg;
	(void)n, (void)deadline;
	struct bw_fault f;
	if (s->e && bw_engine_inject(s->e, s->c, &f) && f.err)
		bw_sq_inject_fault(f.err - BW_ERR_SQLITE_BASE);
	s->rc = bw_sq.step(s->st);
	bw_sq_inject_fault(0);
	if (!is_failure(s->rc))
		return 0;
	int ext = bw_sq.extended_errcode(s->db);
	int prim = ext & 0xff;
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		judge_busy(s, ext);
	else
		s->stop.now = 0;
	return bw_err_sqlite(ext);
}

/* An open breaker or a limiter in fail mode: run the statement with every lock it asks
 * for failing with the refusal's code (SQLITE_BUSY unless the rule names another), so
 * SQLite ends it the way a real lock conflict would, sqlite3_errmsg and all. */
static int step_refuse(void *arg, int err)
{
	struct step *s = arg;
	bw_sq_refuse_locks(err - BW_ERR_SQLITE_BASE);
	s->rc = bw_sq.step(s->st);
	bw_sq_refuse_locks(0);
	return is_failure(s->rc) ? bw_err_sqlite(bw_sq.extended_errcode(s->db)) : 0;
}

BW_HOOK int sqlite3_step(sqlite3_stmt *st)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return SQLITE_ERROR;
	struct bw_engine *e = bw_engine_for(BW_OP_SQLITE);
	if (!e || !st)
		return bw_sq.step(st);
	int acting = bw_foreign_enter(&bw_sq_lib, &depth, caller);
	const struct bw_rule *r = NULL;
	struct step s = { e, NULL, st, NULL, 0, { 0, NULL, NULL } };
	const char *file;
	/* a statement in the middle of its rows is not ours to re-run: pass it through */
	if (acting && !bw_sq.stmt_busy(st)) {
		s.db = bw_sq.db_handle(st);
		r = rule_for(e, s.db, &file);
	}
	if (!r) {
		s.rc = bw_sq.step(st);
	} else {
		struct bw_call c;
		init_call(&c, r, "sqlite3_step", file);
		s.c = &c;
		c.attempt = step_attempt;
		c.arg = &s;
		c.refuse = step_refuse;
		c.stop = &s.stop;
		bw_engine_run(e, &c, bw_thread_rng());
	}
	bw_foreign_leave(&depth, acting);
	return s.rc;
}

/* ---- exec: its statements are stepped one by one through the hooks above, so a busy
 * statement is retried where it stopped and the ones before it never run twice ---- */

BW_HOOK int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
			 void *arg, char **errmsg)
{
	const void *caller = __builtin_return_address(0);
	if (resolve(caller) < 0)
		return SQLITE_ERROR;
	int inner = bw_foreign_wrap_enter(&bw_sq_lib, &depth, caller);
	int rc = bw_sq.exec(db, sql, cb, arg, errmsg);
	bw_foreign_wrap_leave(&depth, inner);
	return rc;
}

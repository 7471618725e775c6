/* A SQLite writer for the integration tests (tests/integration/test_sqlite.py), linked
 * against the system libsqlite3 so that the shim's SQLite hooks see its calls.
 *
 * It is not in progs/ proper: the Makefile builds the .c files of progs/ with -lpthread only, so the
 * test compiles this one itself (cc ... -lsqlite3) into its temporary directory.
 *
 *   sqlite_client exec DB ID N START   N x sqlite3_exec of two INSERTs in one string
 *   sqlite_client step DB ID N START   N x BEGIN IMMEDIATE; INSERT; COMMIT through
 *                                      prepare_v2/step, with a little work inside
 *
 * No busy handler is set (the C API has none by default): a lock conflict comes back as
 * SQLITE_BUSY at once. The program does what a plain program does with an error: it
 * reports it on stderr (result code, extended code, message), rolls back an open
 * transaction, and goes on with the next item. It never retries by itself. START is a
 * wall-clock time (seconds since the epoch, fractional) to wait for, so that all
 * writers start together. Payloads are "ID-i-a", "ID-i-b" (exec) and "ID-i" (step), in
 * table ledger(note). Prints "errors E" at the end; exit 0 when the run completed
 * (with or without errors), 2 on a usage or open failure.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void wait_until(double start)
{
	for (;;) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		double now = tv.tv_sec + tv.tv_usec / 1e6;
		if (now >= start)
			return;
		double left = start - now;
		struct timespec ts = { (time_t)left, (long)((left - (time_t)left) * 1e9) };
		nanosleep(&ts, NULL);
	}
}

static void report(sqlite3 *db, const char *what, int rc)
{
	fprintf(stderr, "%s: rc=%d ext=%d %s\n", what, rc, sqlite3_extended_errcode(db),
		sqlite3_errmsg(db));
}

static int run_exec(sqlite3 *db, const char *id, int n)
{
	int errors = 0;
	for (int i = 0; i < n; i++) {
		char sql[256];
		snprintf(sql, sizeof sql,
			 "INSERT INTO ledger(note) VALUES('%s-%d-a');"
			 "INSERT INTO ledger(note) VALUES('%s-%d-b');", id, i, id, i);
		char *msg = NULL;
		int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			errors++;
			fprintf(stderr, "exec %d: rc=%d ext=%d %s\n", i, rc,
				sqlite3_extended_errcode(db), msg ? msg : "");
		}
		sqlite3_free(msg);
	}
	return errors;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		report(db, what, rc);
	sqlite3_reset(st);
	return rc == SQLITE_DONE;
}

static sqlite3_stmt *begin, *ins, *commit, *rollback;

/* Before the start time, while nobody writes yet: a prepare that has to read the schema
 * while another writer commits would fail too, and the loop would never run. */
static int prepare_step(sqlite3 *db)
{
	if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO ledger(note) VALUES(?1)", -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "ROLLBACK", -1, &rollback, NULL) != SQLITE_OK) {
		report(db, "prepare", sqlite3_errcode(db));
		return -1;
	}
	return 0;
}

static int run_step(sqlite3 *db, const char *id, int n)
{
	int errors = 0;
	for (int i = 0; i < n; i++) {
		char payload[64];
		snprintf(payload, sizeof payload, "%s-%d", id, i);
		if (!step_done(db, begin, "begin")) {
			errors++;
			continue;
		}
		sqlite3_bind_text(ins, 1, payload, -1, SQLITE_TRANSIENT);
		int ok = step_done(db, ins, "insert");
		sqlite3_clear_bindings(ins);
		if (ok) {
			usleep(1000);           /* a little work inside the transaction */
			ok = step_done(db, commit, "commit");
		}
		if (!ok) {
			errors++;
			if (!sqlite3_get_autocommit(db))
				step_done(db, rollback, "rollback");
		}
	}
	sqlite3_finalize(begin);
	sqlite3_finalize(ins);
	sqlite3_finalize(commit);
	sqlite3_finalize(rollback);
	return errors;
}

int main(int argc, char **argv)
{
	if (argc != 6 || (strcmp(argv[1], "exec") && strcmp(argv[1], "step"))) {
		fprintf(stderr, "usage: %s exec|step DB ID N START\n", argv[0]);
		return 2;
	}
	sqlite3 *db;
	/* open_v2 with explicit flags: the open hook is exercised as most programs call it */
	if (sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "open %s: %s\n", argv[2], sqlite3_errmsg(db));
		return 2;
	}
	int n = atoi(argv[4]);
	int exec = strcmp(argv[1], "exec") == 0;
	if (!exec && prepare_step(db) != 0)
		return 2;
	wait_until(atof(argv[5]));
	int errors = exec ? run_exec(db, argv[3], n) : run_step(db, argv[3], n);
	sqlite3_close(db);
	printf("errors %d\n", errors);
	return 0;
}

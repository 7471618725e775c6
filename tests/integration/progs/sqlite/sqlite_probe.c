/* Every output of the SQLite calls bulwark hooks, printed, so that a statement that met a
 * real lock conflict (run bare while another connection holds the write lock) can be
 * compared line by line with one that bulwark refused or failed. Linked against the
 * system libsqlite3; tests/integration/test_refusals.py compiles it (cc ... -lsqlite3).
 *
 * usage: sqlite_probe DB N [BUSY_MS]
 *   N inserts into ledger(note), each prepared (prepare_v2 and prepare_v3 in turn), stepped,
 *   reset and finalized; then a prepare that fails (no such table) and one sqlite3_exec.
 *   BUSY_MS sets the connection's busy timeout (none by default, as in the C API).
 * Output parameters start as sentinels: "untouched" means the call left one alone.
 * Each step's wall time goes on a line of its own ("elapsed I MS"), apart from the lines
 * to compare. Ends with "done"; exit 2 when the database cannot be opened. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char sentinel_stmt;
#define STMT_UNTOUCHED ((sqlite3_stmt *)(void *)&sentinel_stmt)
static const char tail_sentinel[] = "sentinel";

static const char *code(int rc)
{
	static char buf[2][48];
	static int k;
	const char *name = NULL;
	switch (rc) {
	case SQLITE_OK: name = "SQLITE_OK"; break;
	case SQLITE_ERROR: name = "SQLITE_ERROR"; break;
	case SQLITE_BUSY: name = "SQLITE_BUSY"; break;
	case SQLITE_LOCKED: name = "SQLITE_LOCKED"; break;
	case SQLITE_IOERR: name = "SQLITE_IOERR"; break;
	case SQLITE_IOERR_READ: name = "SQLITE_IOERR_READ"; break;
	case SQLITE_IOERR_WRITE: name = "SQLITE_IOERR_WRITE"; break;
	case SQLITE_IOERR_LOCK: name = "SQLITE_IOERR_LOCK"; break;
	case SQLITE_IOERR_SHORT_READ: name = "SQLITE_IOERR_SHORT_READ"; break;
	case SQLITE_FULL: name = "SQLITE_FULL"; break;
	case SQLITE_DONE: name = "SQLITE_DONE"; break;
	case SQLITE_ROW: name = "SQLITE_ROW"; break;
	case SQLITE_MISUSE: name = "SQLITE_MISUSE"; break;
	}
	k ^= 1;
	if (name)
		snprintf(buf[k], sizeof buf[k], "%s", name);
	else
		snprintf(buf[k], sizeof buf[k], "%d", rc);
	return buf[k];
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void tail_of(const char *sql, const char *tail, char *out, size_t cap)
{
	if (tail == tail_sentinel)
		snprintf(out, cap, "untouched");
	else if (!tail)
		snprintf(out, cap, "NULL");
	else
		snprintf(out, cap, "+%ld", (long)(tail - sql));
}

static int prepare(sqlite3 *db, int v3, const char *sql, sqlite3_stmt **st)
{
	const char *tail = tail_sentinel;
	*st = STMT_UNTOUCHED;
	int rc = v3 ? sqlite3_prepare_v3(db, sql, -1, 0, st, &tail)
		    : sqlite3_prepare_v2(db, sql, -1, st, &tail);
	char t[32];
	tail_of(sql, tail, t, sizeof t);
	printf("prepare_v%d rc=%s st=%s tail=%s", v3 ? 3 : 2, code(rc),
	       *st == STMT_UNTOUCHED ? "untouched" : *st ? "stmt" : "NULL", t);
	if (rc != SQLITE_OK)
		printf(" ext=%s msg=%s", code(sqlite3_extended_errcode(db)), sqlite3_errmsg(db));
	printf("\n");
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sqlite_probe DB N [BUSY_MS]\n");
		return 2;
	}
	int n = atoi(argv[2]);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "open: %s\n", db ? sqlite3_errmsg(db) : code(rc));
		return 2;
	}
	if (argc > 3)
		sqlite3_busy_timeout(db, atoi(argv[3]));
	static const char sql[] = "INSERT INTO ledger(note) VALUES (?1); SELECT 1";
	for (int i = 0; i < n; i++) {
		sqlite3_stmt *st;
		prepare(db, i % 2, sql, &st);
		if (st == STMT_UNTOUCHED || !st)
			continue;     /* nothing to step: never use an unwritten handle */
		char note[32];
		snprintf(note, sizeof note, "p-%d", i);
		sqlite3_bind_text(st, 1, note, -1, SQLITE_TRANSIENT);
		double t0 = now_ms();
		rc = sqlite3_step(st);
		double took = now_ms() - t0;
		printf("step rc=%s ext=%s msg=%s autocommit=%d\n", code(rc),
		       code(sqlite3_extended_errcode(db)), sqlite3_errmsg(db),
		       sqlite3_get_autocommit(db));
		printf("elapsed %d %.0f\n", i, took);
		rc = sqlite3_reset(st);
		printf("reset rc=%s msg=%s\n", code(rc), sqlite3_errmsg(db));
		printf("finalize rc=%s\n", code(sqlite3_finalize(st)));
	}
	sqlite3_stmt *bad;
	prepare(db, 0, "INSERT INTO nosuch VALUES (1)", &bad);
	if (bad != STMT_UNTOUCHED && bad)
		sqlite3_finalize(bad);
	char *msg = (char *)tail_sentinel;
	rc = sqlite3_exec(db, "INSERT INTO ledger(note) VALUES ('exec')", NULL, NULL, &msg);
	printf("exec rc=%s ext=%s errmsg=%s\n", code(rc), code(sqlite3_extended_errcode(db)),
	       msg == tail_sentinel ? "untouched" : msg ? msg : "NULL");
	if (msg != tail_sentinel)
		sqlite3_free(msg);
	printf("close rc=%s\n", code(sqlite3_close(db)));
	printf("done\n");
	return 0;
}

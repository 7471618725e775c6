/* Writers contending for one SQLite database, each in its own process.
 *
 * usage: sqlite_contention DB WRITERS N BUSY_TIMEOUT_MS
 * Creates DB (which must not exist) with one table, then forks WRITERS processes. Each
 * opens DB, sets sqlite3_busy_timeout(BUSY_TIMEOUT_MS) (0: no busy handler, a lock
 * conflict is SQLITE_BUSY at once) and, once all are ready, makes N autocommit INSERTs
 * through one prepared statement. A failed INSERT is counted and not retried: the
 * program does nothing about errors but report them.
 *
 * Prints "inserts_per_s VALUE" (all writers, from the common start to the last one done)
 * on stdout. Exit status 0 only when every INSERT succeeded and the table then holds
 * WRITERS x N distinct rows; otherwise 1, with the first errors of each writer on stderr
 * and a one-line account last. Linked
 * against the system libsqlite3, so LD_PRELOAD=libbulwark.so sees its calls. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(const char *path)
{
	sqlite3 *db;
	char *msg = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, i INTEGER)",
				  NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "setup %s: %s\n", path, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* One writer process: returns how many INSERTs failed, -1 when it could not start. */
static long writer(const char *path, int w, long n, int timeout_ms, int go)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, timeout_ms) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t(w, i) VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "writer %d: setup: %s\n", w, sqlite3_errmsg(db));
		return -1;
	}
	char c;
	if (read(go, &c, 1) < 0)        /* EOF when the parent has started everyone */
		return -1;
	long errors = 0;
	for (long i = 0; i < n; i++) {
		sqlite3_bind_int(st, 1, w);
		sqlite3_bind_int64(st, 2, i);
		int rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			if (errors++ < 3)
				fprintf(stderr, "writer %d: insert %ld: rc=%d %s\n", w, i,
					sqlite3_extended_errcode(db), sqlite3_errmsg(db));
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return errors;
}

static long count_rows(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(db, 10000) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(DISTINCT w * 1000000000 + i) FROM t", -1, &st,
			       NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s DB WRITERS N BUSY_TIMEOUT_MS\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	int writers = atoi(argv[2]);
	long n = atol(argv[3]);
	int timeout_ms = atoi(argv[4]);
	if (writers < 1 || writers > 64 || n < 1 || timeout_ms < 0) {
		fprintf(stderr, "sqlite_contention: bad arguments\n");
		return 2;
	}
	if (setup(path) != 0)
		return 1;

	int gate[2], res[2];
	if (pipe(gate) < 0 || pipe(res) < 0) {
		perror("pipe");
		return 1;
	}
	pid_t pids[64];
	for (int w = 0; w < writers; w++) {
		pids[w] = fork();
		if (pids[w] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[w] == 0) {
			close(gate[1]);
			close(res[0]);
			long errors = writer(path, w, n, timeout_ms, gate[0]);
			/* one small write to a pipe: atomic, read back whole by the parent */
			_exit(write(res[1], &errors, sizeof errors) == sizeof errors ? 0 : 1);
		}
	}
	close(gate[0]);
	close(res[1]);
	usleep(200000);                 /* every writer has opened and prepared */
	double t0 = now();
	close(gate[1]);                 /* go */
	int broken = 0;
	for (int w = 0; w < writers; w++) {
		int status;
		if (waitpid(pids[w], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			broken++;
	}
	double elapsed = now() - t0;
	/* a writer that crashed wrote nothing (counted above); one that could not start
	 * wrote -1 */
	long errors = 0, e;
	while (read(res[0], &e, sizeof e) == sizeof e) {
		if (e < 0)
			broken++;
		else
			errors += e;
	}
	long rows = count_rows(path);
	if (errors || broken || rows != writers * n) {
		/* one line, the last on stderr: the bench script quotes it */
		fprintf(stderr, "sqlite_contention: %ld of %ld inserts failed, %d writer(s) did not "
			"finish, %ld distinct rows of %ld\n", errors, writers * n, broken, rows,
			writers * n);
		return 1;
	}
	printf("inserts_per_s %.1f\n", (double)(writers * n) / elapsed);
	return 0;
}

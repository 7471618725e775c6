/* A MySQL/MariaDB client on libmariadb for the mysql tests (the mariadb command line
 * client links its client library statically, where no preload reaches it).
 *
 * usage: mysql_client HOST PORT USER DB [SOCKET]     (HOST "-": none, SOCKET "-": none)
 *
 * Connects with mysql_real_connect (exit 2 when that fails, after printing "connect
 * error N MESSAGE"), then runs the lines of its standard input in order, printing one
 * line for each, and stops at the first error (exit 1):
 *   SQL                 mysql_real_query: "ok N" (affected rows) or "row A B ..." lines
 *                       then "ok"; "error N MESSAGE"
 *   \query SQL          the same through mysql_query
 *   \ping               mysql_ping: "ok" or "error N MESSAGE"
 *   \prepare SQL        mysql_stmt_init and mysql_stmt_prepare (one statement at a time)
 *   \execute            mysql_stmt_execute of the prepared statement: "ok N"
 *   \connect            mysql_close, then a new handle connected as at the start
 *   \sleep MS           wait
 * Every line printed is flushed at once, so a test can wait for it. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *host, *user, *db, *sock;
static unsigned port;

static MYSQL *open_conn(void)
{
	MYSQL *m = mysql_init(NULL);
	if (!m) {
		printf("connect error 0 out of memory\n");
		return NULL;
	}
	if (!mysql_real_connect(m, host, user, "", db, port, sock, 0)) {
		printf("connect error %u %s\n", mysql_errno(m), mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	printf("connected\n");
	return m;
}

static int result(MYSQL *m, int rc)
{
	if (rc) {
		printf("error %u %s\n", mysql_errno(m), mysql_error(m));
		return 1;
	}
	MYSQL_RES *res = mysql_store_result(m);
	if (!res) {
		if (mysql_field_count(m)) {
			printf("error %u %s\n", mysql_errno(m), mysql_error(m));
			return 1;
		}
		printf("ok %llu\n", (unsigned long long)mysql_affected_rows(m));
		return 0;
	}
	unsigned n = mysql_num_fields(res);
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res))) {
		printf("row");
		for (unsigned i = 0; i < n; i++)
			printf(" %s", row[i] ? row[i] : "NULL");
		printf("\n");
	}
	mysql_free_result(res);
	printf("ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	char line[4096];
	MYSQL_STMT *st = NULL;
	if (argc < 5) {
		fprintf(stderr, "usage: mysql_client HOST PORT USER DB [SOCKET]\n");
		return 64;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	host = strcmp(argv[1], "-") ? argv[1] : NULL;
	port = (unsigned)atoi(argv[2]);
	user = argv[3];
	db = argv[4];
	sock = argc > 5 && strcmp(argv[5], "-") ? argv[5] : NULL;
	MYSQL *m = open_conn();
	if (!m)
		return 2;
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		int failed = 0;
		if (strncmp(line, "\\query ", 7) == 0) {
			failed = result(m, mysql_query(m, line + 7));
		} else if (strcmp(line, "\\ping") == 0) {
			failed = mysql_ping(m) != 0;
			if (failed)
				printf("error %u %s\n", mysql_errno(m), mysql_error(m));
			else
				printf("ok\n");
		} else if (strncmp(line, "\\prepare ", 9) == 0) {
			if (st)
				mysql_stmt_close(st);
			st = mysql_stmt_init(m);
			failed = !st || mysql_stmt_prepare(st, line + 9, strlen(line + 9)) != 0;
			if (failed)
				printf("error %u %s\n", st ? mysql_stmt_errno(st) : 0,
				       st ? mysql_stmt_error(st) : "no statement");
			else
				printf("ok\n");
		} else if (strcmp(line, "\\execute") == 0) {
			failed = !st || mysql_stmt_execute(st) != 0;
			if (failed)
				printf("error %u %s\n", st ? mysql_stmt_errno(st) : 0,
				       st ? mysql_stmt_error(st) : "no statement");
			else
				printf("ok %llu\n", (unsigned long long)mysql_stmt_affected_rows(st));
		} else if (strcmp(line, "\\connect") == 0) {
			if (st)
				mysql_stmt_close(st);
			st = NULL;
			mysql_close(m);
			if (!(m = open_conn()))
				return 2;
		} else if (strncmp(line, "\\sleep ", 7) == 0) {
			long ms = atol(line + 7);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			printf("ok\n");
		} else {
			failed = result(m, mysql_real_query(m, line, strlen(line)));
		}
		if (failed) {
			if (st)
				mysql_stmt_close(st);
			mysql_close(m);
			return 1;
		}
	}
	if (st)
		mysql_stmt_close(st);
	mysql_close(m);
	return 0;
}

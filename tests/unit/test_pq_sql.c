/* What the pg hook reads in a statement's text before it runs the statement again
 * (shim/db/pq_sql.c): that it only reads, that it is one statement, that it may leave
 * state in the session. Each check must err on the side that retries less. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "pq_sql.h"

static void test_read_only_yes(void **state)
{
	static const char *const yes[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = 61093;",
		"SELECT 1",
		"  select count(*) AS seen FROM counter ;  ",
		"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		"-- a comment\nSELECT a FROM t /* and another */ WHERE b IN (1, 2)",
		"SELECT 'insert into t values (1)' AS text",
		"SELECT \"for\" FROM t",
		"SELECT coalesce(max(k), 0) FROM t WHERE EXISTS (SELECT 1 FROM u)",
		"VALUES (1), (2)",
		"TABLE t",
		"SHOW search_path",
		"WITH x AS (SELECT k FROM t) SELECT count(*) FROM x",
		"SELECT 'it''s' FROM t",
		NULL
	};
	(void)state;
	for (int i = 0; yes[i]; i++) {
		if (!bw_pq_read_only(yes[i]))
			fail_msg("read-only not seen: %s", yes[i]);
	}
}

static void test_read_only_no(void **state)
{
	static const char *const no[] = {
		"INSERT INTO t VALUES (1)",
		"UPDATE t SET v = 1",
		"DELETE FROM t",
		"SELECT nextval('s')",
		"SELECT setval('s', 1)",
		"SELECT f(1)",                          /* a function may write */
		"SELECT app.count(1)",                  /* someone's own count */
		"SELECT app . count(1)",
		"SELECT \"count\"(1)",
		"SELECT * FROM t FOR UPDATE",
		"SELECT * INTO u FROM t",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"SELECT 1; SELECT 2",
		"SELECT 1; DELETE FROM t",
		"SELECT $$x$$",                         /* dollar quotes are not followed */
		"SELECT E'\\'' , nextval('s')",         /* nor backslash escapes */
		"SELECT 'unterminated",
		"EXPLAIN ANALYZE DELETE FROM t",
		"LOCK TABLE t",
		"DO $x$BEGIN END$x$",
		"CALL p()",
		"COPY t TO STDOUT",
		"",
		"  -- only a comment",
		NULL
	};
	(void)state;
	for (int i = 0; no[i]; i++) {
		if (bw_pq_read_only(no[i]))
			fail_msg("taken as read-only: %s", no[i]);
	}
	assert_false(bw_pq_read_only(NULL));
}

static void test_single_statement(void **state)
{
	(void)state;
	assert_true(bw_pq_single_statement("SELECT 1"));
	assert_true(bw_pq_single_statement("SELECT 1;"));
	assert_true(bw_pq_single_statement("SELECT 1; ; -- done"));
	assert_false(bw_pq_single_statement("SELECT 1; SELECT 2"));
	/* a ';' inside a string counts too: fewer retries, never more */
	assert_false(bw_pq_single_statement("SELECT ';'; SELECT 2"));
}

static void test_session_state(void **state)
{
	static const char *const yes[] = {
		"SET search_path = app", "set statement_timeout = 0;", "PREPARE p AS SELECT 1",
		"LISTEN ch", "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "LOAD 'x'",
		"CREATE TEMP TABLE x (k int)", "CREATE TEMPORARY TABLE x (k int)",
		"SELECT set_config('a.b', 'c', false)", "SELECT pg_advisory_lock(1)",
		"SELECT 1; SET search_path = app", "/* c */ SET x = 1",
		NULL
	};
	static const char *const no[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = 1;", "SET LOCAL x = 1",
		"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET CONSTRAINTS ALL DEFERRED",
		"INSERT INTO t VALUES (1)", "SELECT * FROM temperature_log", "UPDATE t SET n_lock = 1",
		NULL
	};
	(void)state;
	for (int i = 0; yes[i]; i++)
		if (!bw_pq_sets_session_state(yes[i]))
			fail_msg("session state not seen: %s", yes[i]);
	for (int i = 0; no[i]; i++)
		if (bw_pq_sets_session_state(no[i]))
			fail_msg("session state seen in: %s", no[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_only_yes),
		cmocka_unit_test(test_read_only_no),
		cmocka_unit_test(test_single_statement),
		cmocka_unit_test(test_session_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* What the mysql hook reads in a statement's text (shim/db/mysql_sql.c, no preload): the
 * read-only check may refuse a read but must never pass anything that writes, locks,
 * waits or calls what might; the idempotent entries match a statement's beginning only
 * at a word's end; the facts count statements and see session state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "mysql_sql.h"

static int ro(const char *sql)
{
	return bw_my_read_only(sql, strlen(sql));
}

static void test_reads(void **state)
{
	(void)state;
	static const char *const yes[] = {
		"SELECT 1",
		"select k, note from counter where k = 8",
		"  /* a comment */ SELECT COUNT(*) FROM t WHERE a IN (1, 2)",
		"-- first\nSELECT a FROM t",
		"SELECT a FROM (SELECT a FROM t) x WHERE EXISTS (SELECT 1 FROM u)",
		"SELECT CONCAT(a, 'sleep(1)') FROM t",
		"SELECT `update` FROM t",
		"SHOW TABLES",
		"DESCRIBE t",
		"SELECT 1;",
		"SELECT NOW(), MAX(id) FROM t GROUP BY k",
	};
	static const char *const no[] = {
		"INSERT INTO t VALUES (1)",
		"UPDATE t SET a = 1",
		"WITH x AS (SELECT 1) SELECT * FROM x",
		"SELECT a FROM t FOR UPDATE",
		"SELECT a FROM t LOCK IN SHARE MODE",
		"SELECT a INTO @x FROM t",
		"SELECT a FROM t INTO OUTFILE '/tmp/x'",
		"SELECT GET_LOCK('x', 10)",
		"SELECT SLEEP(5)",
		"SELECT get_lock ('x', 10)",
		"SELECT NEXTVAL(s)",
		"SELECT NEXT VALUE FOR s",
		"SELECT my_function(1)",
		"SELECT `my_function`(1)",
		"SELECT @x := 1",
		"SELECT 1; DELETE FROM t",
		"SELECT 1 /*!; DELETE FROM t */",
		"/*!50000 DELETE FROM t */",
		"SELECT a FROM t PROCEDURE ANALYSE()",
		"",
		"   ",
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!ro(yes[i]))
			fail_msg("not taken as read-only: %s", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (ro(no[i]))
			fail_msg("taken as read-only: %s", no[i]);
	/* only the n bytes given are read */
	assert_true(bw_my_read_only("SELECT 1; DELETE FROM t", 9));
	assert_false(bw_my_read_only("SELECT a FROM t FOR UPDATE", 26));
}

static void test_starts_with(void **state)
{
	(void)state;
	const char *sql = "  update  jobs SET\tstate = 'done' WHERE id = 3";
	size_t n = strlen(sql);
	assert_true(bw_my_starts_with(sql, n, "UPDATE jobs SET state = 'done'"));
	assert_true(bw_my_starts_with(sql, n, "update jobs"));
	assert_false(bw_my_starts_with(sql, n, "UPDATE job"));
	assert_false(bw_my_starts_with(sql, n, "UPDATE jobs SET state = 'done' WHERE id = 30"));
	assert_false(bw_my_starts_with(sql, n, ""));
	assert_false(bw_my_starts_with(sql, n, "   "));
	assert_false(bw_my_starts_with("DELETE FROM cache_2", 19, "DELETE FROM cache"));
	assert_true(bw_my_starts_with("DELETE FROM cache", 17, "DELETE FROM cache"));
}

static void test_facts(void **state)
{
	(void)state;
	struct bw_my_sql_facts f;
	f = bw_my_sql_facts("INSERT INTO t VALUES (1);", 25);
	assert_int_equal(f.statements, 1);
	assert_int_equal(f.state, 0);
	f = bw_my_sql_facts("INSERT INTO t VALUES (';'); SELECT 1", 36);
	assert_int_equal(f.statements, 2);
	f = bw_my_sql_facts("SET @who = 'me'", 15);
	assert_int_equal(f.state, 1);
	f = bw_my_sql_facts("CREATE TEMPORARY TABLE x (a int)", 32);
	assert_int_equal(f.state, 1);
	f = bw_my_sql_facts("SELECT @@version", 16);
	assert_int_equal(f.state, 0);
	f = bw_my_sql_facts("SELECT 'SET x'", 14);
	assert_int_equal(f.state, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_starts_with),
		cmocka_unit_test(test_facts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

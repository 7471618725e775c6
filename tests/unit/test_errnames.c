/* Error names: every name parses back to the code it names, in all three spaces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <cmocka.h>
#include "errnames.h"
#include "ops.h"

static void test_errno_round_trip(void **state)
{
	int named = 0;
	(void)state;
	for (int e = 1; e < 200; e++) {
		const char *n = bw_err_name(bw_err_errno(e));
		if (strcmp(n, "E?") == 0)
			continue;
		named++;
		assert_int_equal(bw_err_parse(n), e);
	}
	assert_int_equal(named, 131);   /* 1..133 but 41 and 58, which Linux leaves unused */
	assert_string_equal(bw_err_name(ECONNREFUSED), "ECONNREFUSED");
	assert_string_equal(bw_err_name(EHWPOISON), "EHWPOISON");
	assert_string_equal(bw_err_name(EAGAIN), "EAGAIN");
}

static void test_errno_aliases(void **state)
{
	(void)state;
	assert_int_equal(bw_err_parse("EWOULDBLOCK"), EAGAIN);
	assert_int_equal(bw_err_parse("EDEADLOCK"), EDEADLK);
	assert_int_equal(bw_err_parse("ENOTSUP"), EOPNOTSUPP);
}

static void test_eai(void **state)
{
	static const int codes[] = { EAI_AGAIN, EAI_NONAME, EAI_FAIL, EAI_MEMORY, EAI_SYSTEM,
				     EAI_NODATA, EAI_FAMILY, EAI_SERVICE, EAI_SOCKTYPE,
				     EAI_BADFLAGS, EAI_OVERFLOW, EAI_ADDRFAMILY };
	(void)state;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		int c = bw_err_eai(codes[i]);
		assert_true(bw_err_is_eai(c));
		assert_int_equal(bw_err_parse(bw_err_name(c)), c);
	}
	assert_string_equal(bw_err_name(bw_err_eai(EAI_AGAIN)), "EAI_AGAIN");
	assert_int_equal(bw_err_parse("EAI_AGAIN"), BW_ERR_EAI_BASE + 3);
	assert_string_equal(bw_err_name(bw_err_eai(-77)), "EAI_?");
}

static void test_sqlite(void **state)
{
	(void)state;
	assert_int_equal(bw_err_parse("SQLITE_ERROR"), bw_err_sqlite(1));
	assert_int_equal(bw_err_parse("SQLITE_BUSY"), bw_err_sqlite(5));
	assert_int_equal(bw_err_parse("SQLITE_LOCKED"), bw_err_sqlite(6));
	assert_int_equal(bw_err_parse("SQLITE_IOERR"), bw_err_sqlite(10));
	assert_int_equal(bw_err_parse("SQLITE_FULL"), bw_err_sqlite(13));
	assert_int_equal(bw_err_parse("SQLITE_CANTOPEN"), bw_err_sqlite(14));
	assert_int_equal(bw_err_parse("SQLITE_PROTOCOL"), bw_err_sqlite(15));
	assert_int_equal(bw_err_parse("SQLITE_BUSY_RECOVERY"), bw_err_sqlite(5 | 1 << 8));
	assert_int_equal(bw_err_parse("SQLITE_BUSY_SNAPSHOT"), bw_err_sqlite(5 | 2 << 8));
	assert_int_equal(bw_err_parse("SQLITE_BUSY_TIMEOUT"), bw_err_sqlite(5 | 3 << 8));
	assert_int_equal(bw_err_parse("SQLITE_LOCKED_SHAREDCACHE"), bw_err_sqlite(6 | 1 << 8));
	assert_int_equal(bw_err_parse("SQLITE_IOERR_READ"), bw_err_sqlite(10 | 1 << 8));
	assert_int_equal(bw_err_parse("SQLITE_IOERR_SHORT_READ"), bw_err_sqlite(10 | 2 << 8));
	assert_int_equal(bw_err_parse("SQLITE_IOERR_WRITE"), bw_err_sqlite(10 | 3 << 8));
	assert_int_equal(bw_err_parse("SQLITE_IOERR_FSYNC"), bw_err_sqlite(10 | 4 << 8));
	assert_int_equal(bw_err_parse("SQLITE_IOERR_LOCK"), bw_err_sqlite(10 | 15 << 8));
	for (int rc = 1; rc < 40 << 8; rc++) {
		const char *n = bw_err_name(bw_err_sqlite(rc));
		if (strcmp(n, "SQLITE_?") != 0)
			assert_int_equal(bw_err_parse(n), bw_err_sqlite(rc));
	}
	assert_string_equal(bw_err_name(bw_err_sqlite(5)), "SQLITE_BUSY");
	assert_string_equal(bw_err_name(bw_err_sqlite(5 | 9 << 8)), "SQLITE_?");
}

static void test_unknown(void **state)
{
	(void)state;
	assert_int_equal(bw_err_parse("ECONNREFUSE"), 0);
	assert_int_equal(bw_err_parse("econnrefused"), 0);
	assert_int_equal(bw_err_parse("EAI_BOGUS"), 0);
	assert_int_equal(bw_err_parse("SQLITE_OK"), 0);
	assert_int_equal(bw_err_parse(""), 0);
	assert_int_equal(bw_err_parse("E?"), 0);
	assert_string_equal(bw_err_name(0), "E?");
	assert_string_equal(bw_err_name(-1), "E?");
	assert_string_equal(bw_err_name(9999), "E?");
	assert_true(bw_err_is_errno(bw_err_parse("ECONNRESET")));
	assert_true(bw_err_is_sqlite(bw_err_parse("SQLITE_BUSY")));
}

/* The spaces the next client libraries need: SQLSTATEs, MySQL error numbers, Redis
 * error replies, each with a name that parses back. */
static void test_more_spaces(void **state)
{
	(void)state;
	int st = bw_err_parse("SQLSTATE_57P03");
	assert_int_equal(st, bw_err_sqlstate("57P03"));
	assert_int_equal(bw_err_space(st), BW_SPACE_SQLSTATE);
	assert_string_equal(bw_err_name(st), "SQLSTATE_57P03");
	assert_string_equal(bw_err_name(bw_err_sqlstate("40001")), "SQLSTATE_40001");
	assert_int_equal(bw_err_sqlstate("57p03"), 0);
	assert_int_equal(bw_err_sqlstate("57P0"), 0);
	int my = bw_err_parse("MYSQL_2013");
	assert_int_equal(my, bw_err_mysql(2013));
	assert_int_equal(bw_err_space(my), BW_SPACE_MYSQL);
	assert_string_equal(bw_err_name(my), "MYSQL_2013");
	assert_int_equal(bw_err_parse("MYSQL_x"), 0);
	int rd = bw_err_parse("REDIS_LOADING");
	assert_int_equal(bw_err_space(rd), BW_SPACE_REDIS);
	assert_string_equal(bw_err_name(rd), "REDIS_LOADING");
	assert_int_equal(bw_err_parse("REDIS_NOPE"), 0);
	/* every space apart from the others */
	assert_int_equal(bw_err_space(ECONNREFUSED), BW_SPACE_ERRNO);
	assert_int_equal(bw_err_space(bw_err_eai(EAI_AGAIN)), BW_SPACE_EAI);
	assert_int_equal(bw_err_space(bw_err_sqlite(5 | 2 << 8)), BW_SPACE_SQLITE);
	/* a code of a space is one its name can say: five base-36 characters, a MySQL
	 * number of one to six digits; past them, no space (the fuzzer found both) */
	int zzzzz = bw_err_sqlstate("ZZZZZ");
	assert_int_equal(bw_err_space(zzzzz), BW_SPACE_SQLSTATE);
	assert_int_equal(bw_err_space(zzzzz + 1), 0);
	assert_int_equal(bw_err_space(bw_err_mysql(0)), 0);
	assert_int_equal(bw_err_space(bw_err_mysql(999999)), BW_SPACE_MYSQL);
	assert_int_equal(bw_err_space(bw_err_mysql(1000000)), 0);
	assert_string_equal(bw_err_name(bw_err_mysql(1000000)), "E?");
}

/* A primary SQLite code stands for its extended codes; nothing else matches loosely. */
static void test_matches(void **state)
{
	(void)state;
	assert_true(bw_err_matches(bw_err_sqlite(5), bw_err_sqlite(5 | 2 << 8)));
	assert_true(bw_err_matches(bw_err_sqlite(5), bw_err_sqlite(5)));
	assert_false(bw_err_matches(bw_err_sqlite(5 | 2 << 8), bw_err_sqlite(5)));
	assert_false(bw_err_matches(bw_err_sqlite(5), bw_err_sqlite(6)));
	assert_true(bw_err_matches(ECONNREFUSED, ECONNREFUSED));
	assert_false(bw_err_matches(ECONNREFUSED, ECONNRESET));
	/* a SQLSTATE class's generic code (last three characters 0) stands for its class;
	 * a specific code stands for itself only */
	assert_true(bw_err_matches(bw_err_sqlstate("08000"), bw_err_sqlstate("08006")));
	assert_true(bw_err_matches(bw_err_sqlstate("08000"), bw_err_sqlstate("08P01")));
	assert_true(bw_err_matches(bw_err_sqlstate("08000"), bw_err_sqlstate("08000")));
	assert_false(bw_err_matches(bw_err_sqlstate("08000"), bw_err_sqlstate("09000")));
	assert_false(bw_err_matches(bw_err_sqlstate("08006"), bw_err_sqlstate("08001")));
	assert_false(bw_err_matches(bw_err_sqlstate("57P01"), bw_err_sqlstate("57P02")));
	assert_false(bw_err_matches(bw_err_sqlstate("57000"), bw_err_sqlstate("58000")));
	assert_false(bw_err_matches(bw_err_sqlstate("00000"), ECONNREFUSED));
	assert_false(bw_err_matches(bw_err_sqlstate("08000"), bw_err_sqlite(5)));
}

/* One row per op: names round-trip, refusals are in the op's own space, retry lists
 * hold codes of that space, and the flags say what the engine and the loader read. */
static void test_op_table(void **state)
{
	(void)state;
	for (int op = 0; op < BW_OP_COUNT; op++) {
		const struct bw_op_def *d = bw_op(op);
		assert_int_equal(bw_op_parse(d->name), op);
		assert_string_equal(bw_op_names[op], d->name);
		if (d->flags & BW_OPF_REFUSE)
			assert_true(bw_err_space(d->refusal) & d->spaces);
		for (const int *c = d->retry_on; *c; c++)
			assert_true(bw_err_space(*c) & d->spaces);
	}
	assert_null(bw_op_names[BW_OP_COUNT]);
	assert_int_equal(bw_op_parse("write"), -1);
	/* a limit never refuses accept, send or recv: a made-up EAGAIN stalls event loops */
	assert_int_equal(bw_ops_with(BW_OPF_REFUSE), BW_OPBIT(BW_OP_CONNECT) |
			 BW_OPBIT(BW_OP_RESOLVE) | BW_OPBIT(BW_OP_SQLITE) | BW_OPBIT(BW_OP_PG) |
			 BW_OPBIT(BW_OP_MYSQL) | BW_OPBIT(BW_OP_REDIS));
	assert_int_equal(bw_ops_keyed(BW_KEY_HOST), BW_OPBIT(BW_OP_RESOLVE));
	assert_int_equal(bw_ops_in_space(BW_SPACE_EAI), BW_OPBIT(BW_OP_RESOLVE));
	char buf[80];
	bw_ops_phrase(bw_ops_keyed(BW_KEY_DEST), buf, sizeof buf);
	assert_string_equal(buf, "connect, accept, send, recv, pg, mysql and redis");
	bw_ops_phrase(bw_ops_keyed(BW_KEY_DB), buf, sizeof buf);
	assert_string_equal(buf, "sqlite, pg, mysql and redis");
	/* pg's defaults: class 08 through its generic code, the server declining, and the
	 * two transaction conflicts (the hook retries those only where it is safe) */
	const struct bw_op_def *pg = bw_op(BW_OP_PG);
	assert_int_equal(bw_op_parse("pg"), BW_OP_PG);
	assert_true(bw_err_listed(pg->retry_on, bw_err_sqlstate("08006")));
	assert_true(bw_err_listed(pg->retry_on, bw_err_sqlstate("57P03")));
	assert_true(bw_err_listed(pg->retry_on, bw_err_sqlstate("40P01")));
	assert_false(bw_err_listed(pg->retry_on, bw_err_sqlstate("28P01")));
	assert_false(bw_err_listed(pg->retry_on, bw_err_sqlstate("23505")));
	assert_string_equal(bw_err_name(pg->refusal), "SQLSTATE_08001");
	/* mysql's: the client errors of a server not reached or gone, too many connections,
	 * and the lock conflicts; never a duplicate key or an access denied */
	const struct bw_op_def *my = bw_op(BW_OP_MYSQL);
	for (int n = 0, want[] = { 2002, 2003, 2006, 2013, 1040, 1205, 1213 }; n < 7; n++)
		assert_true(bw_err_listed(my->retry_on, bw_err_mysql(want[n])));
	assert_false(bw_err_listed(my->retry_on, bw_err_mysql(1062)));
	assert_false(bw_err_listed(my->retry_on, bw_err_mysql(1045)));
	assert_string_equal(bw_err_name(my->refusal), "MYSQL_2002");
	/* redis's: the replies of a server that declined, and connection errors */
	const struct bw_op_def *rd = bw_op(BW_OP_REDIS);
	for (const char *const *n = (const char *const[]){ "REDIS_LOADING", "REDIS_BUSY",
		"REDIS_TRYAGAIN", "REDIS_CLUSTERDOWN", "REDIS_MASTERDOWN", "ECONNREFUSED",
		"ECONNRESET", NULL }; *n; n++)
		assert_true(bw_err_listed(rd->retry_on, bw_err_parse(*n)));
	assert_false(bw_err_listed(rd->retry_on, bw_err_parse("REDIS_ERR")));
	assert_false(bw_err_listed(rd->retry_on, bw_err_parse("REDIS_WRONGTYPE")));
	assert_int_equal(bw_err_redis_reply("LOADING Redis is loading", 24),
			 bw_err_parse("REDIS_LOADING"));
	assert_int_equal(bw_err_redis_reply("LOADINGX", 8), 0);
	assert_int_equal(bw_err_redis_reply("BUSY", 4), bw_err_parse("REDIS_BUSY"));
	bw_ops_phrase(BW_OPBIT(BW_OP_SQLITE), buf, sizeof buf);
	assert_string_equal(buf, "sqlite");
	/* EINTR is no op's default retry: a signal handler ran, the program hears of it */
	for (int op = 0; op < BW_OP_COUNT; op++)
		assert_false(bw_err_listed(bw_op(op)->retry_on, EINTR));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_round_trip),
		cmocka_unit_test(test_errno_aliases),
		cmocka_unit_test(test_eai),
		cmocka_unit_test(test_sqlite),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_more_spaces),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_op_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The fleet syncer's RESP parser (shim/resp.c): whole replies, replies that are not all
 * there yet (0: read more), and bytes that are no RESP (-1), never read past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "resp.h"

static long parse(const char *s, struct bw_resp_val *v, int *nv)
{
	return bw_resp_parse(s, strlen(s), v, 64, nv);
}

static void test_whole_replies(void **st)
{
	(void)st;
	struct bw_resp_val v[64];
	int nv;
	assert_int_equal(parse("+OK\r\n", v, &nv), 5);
	assert_int_equal(v[0].type, '+');
	assert_int_equal(v[0].n, 2);
	assert_int_equal(parse("-NOSCRIPT No matching script\r\n", v, &nv), 30);
	assert_int_equal(v[0].type, '-');
	assert_memory_equal(v[0].s, "NOSCRIPT", 8);
	assert_int_equal(parse(":-42\r\n", v, &nv), 6);
	assert_true(v[0].i == -42);
	assert_int_equal(parse("$-1\r\n", v, &nv), 5);
	assert_int_equal(v[0].type, '_');
	assert_int_equal(parse("$3\r\na\r\n\r\n", v, &nv), 9);    /* a bulk may hold CR LF */
	assert_int_equal(v[0].n, 3);
	assert_int_equal(parse("*3\r\n:2\r\n:0\r\n$4\r\nab\tc\r\n", v, &nv), 22);
	assert_int_equal(nv, 4);
	assert_true(v[0].i == 3 && v[1].i == 2 && v[2].i == 0);
	assert_memory_equal(v[3].s, "ab\tc", 4);
	assert_int_equal(parse("*0\r\n", v, &nv), 4);
	assert_int_equal(nv, 1);
}

static void test_partial_replies(void **st)
{
	(void)st;
	struct bw_resp_val v[64];
	int nv;
	const char *whole = "*2\r\n:1\r\n$5\r\nhello\r\n";
	for (size_t n = 0; n < strlen(whole); n++)
		assert_int_equal(bw_resp_parse(whole, n, v, 64, &nv), 0);
	assert_int_equal(bw_resp_parse(whole, strlen(whole), v, 64, &nv), (long)strlen(whole));
}

static void test_not_resp(void **st)
{
	(void)st;
	struct bw_resp_val v[4];
	int nv;
	assert_int_equal(bw_resp_parse("HTTP/1.1 200 OK\r\n", 17, v, 4, &nv), -1);
	assert_int_equal(bw_resp_parse(":12x\r\n", 6, v, 4, &nv), -1);
	assert_int_equal(bw_resp_parse("$-5\r\n", 5, v, 4, &nv), -1);
	/* more elements than room for them */
	assert_int_equal(bw_resp_parse("*9\r\n:1\r\n:1\r\n:1\r\n:1\r\n", 20, v, 4, &nv), -1);
	/* nested deeper than any reply we ask for */
	assert_int_equal(bw_resp_parse("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 31, v, 4,
				       &nv), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_replies),
		cmocka_unit_test(test_partial_replies),
		cmocka_unit_test(test_not_resp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

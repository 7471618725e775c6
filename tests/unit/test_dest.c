/* Destinations as a policy writes them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <string.h>
#include <cmocka.h>
#include "dest.h"

static struct bw_dest ok(const char *s, enum bw_dest_kind kind, int port)
{
	struct bw_dest d;
	char err[200] = "";
	int r = bw_dest_parse(s, &d, err, sizeof err);
	if (r)
		print_error("%s: %s\n", s, err);
	assert_int_equal(r, 0);
	assert_int_equal(d.kind, kind);
	assert_int_equal(d.port, port);
	assert_string_equal(d.text, s);
	return d;
}

static void bad(const char *s, const char *want)
{
	struct bw_dest d;
	char err[200] = "";
	assert_int_equal(bw_dest_parse(s, &d, err, sizeof err), -1);
	assert_string_equal(err, want);
	assert_null(d.text);
	assert_null(d.pattern);
}

static void test_host(void **state)
{
	(void)state;
	struct bw_dest d = ok("db.internal:5432", BW_DEST_HOST, 5432);
	assert_string_equal(d.pattern, "db.internal");
	assert_true(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("*.internal:5432", BW_DEST_HOST, 5432);
	assert_string_equal(d.pattern, "*.internal");
	assert_false(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("localhost", BW_DEST_HOST, -1);
	assert_false(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("db:*", BW_DEST_HOST, -1);
	bw_dest_free(&d);
}

static void test_ipv4(void **state)
{
	static const uint8_t ten[4] = { 10, 0, 0, 1 };
	(void)state;
	struct bw_dest d = ok("10.0.0.1:80", BW_DEST_ADDR, 80);
	assert_int_equal(d.family, AF_INET);
	assert_int_equal(d.prefix, 32);
	assert_memory_equal(d.addr, ten, 4);
	assert_true(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("10.0.0.1", BW_DEST_ADDR, -1);
	assert_false(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("10.0.0.0/8", BW_DEST_ADDR, -1);
	assert_int_equal(d.prefix, 8);
	bw_dest_free(&d);
	d = ok("10.0.0.0/8:5432", BW_DEST_ADDR, 5432);
	assert_int_equal(d.prefix, 8);
	assert_false(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("0.0.0.0/0", BW_DEST_ADDR, -1);
	assert_int_equal(d.prefix, 0);
	bw_dest_free(&d);
}

static void test_ipv6(void **state)
{
	uint8_t one[16] = { 0 };
	one[15] = 1;
	(void)state;
	struct bw_dest d = ok("[::1]:6379", BW_DEST_ADDR, 6379);
	assert_int_equal(d.family, AF_INET6);
	assert_int_equal(d.prefix, 128);
	assert_memory_equal(d.addr, one, 16);
	assert_true(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("[::1]", BW_DEST_ADDR, -1);
	bw_dest_free(&d);
	d = ok("[fd00::/8]:*", BW_DEST_ADDR, -1);
	assert_int_equal(d.prefix, 8);
	assert_int_equal(d.addr[0], 0xfd);
	bw_dest_free(&d);
	d = ok("fd00::/8", BW_DEST_ADDR, -1);
	assert_int_equal(d.prefix, 8);
	bw_dest_free(&d);
	d = ok("::1", BW_DEST_ADDR, -1);
	assert_int_equal(d.family, AF_INET6);
	bw_dest_free(&d);
}

static void test_any_and_unix(void **state)
{
	(void)state;
	struct bw_dest d = ok("*:443", BW_DEST_ANYADDR, 443);
	assert_false(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("*", BW_DEST_ANYADDR, -1);
	bw_dest_free(&d);
	d = ok("unix:/run/app/*.sock", BW_DEST_UNIX, -1);
	assert_string_equal(d.pattern, "/run/app/*.sock");
	assert_false(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("unix:/run/app/db.sock", BW_DEST_UNIX, -1);
	assert_true(bw_dest_concrete(&d));
	bw_dest_free(&d);
	d = ok("unix:@abstract", BW_DEST_UNIX, -1);
	bw_dest_free(&d);
}

static void test_errors(void **state)
{
	(void)state;
	bad("", "empty destination; expected host:port, ip:port, a CIDR such as 10.0.0.0/8, "
	    "[ipv6]:port, *:port or unix:path");
	bad("db:0", "invalid port '0'; expected 1 to 65535 or *");
	bad("db:65536", "invalid port '65536'; expected 1 to 65535 or *");
	bad("db:http", "invalid port 'http'; expected 1 to 65535 or *");
	bad("db:", "invalid port ''; expected 1 to 65535 or *");
	bad(":80", "missing host before ':'; expected host:port, ip:port, a CIDR such as "
	    "10.0.0.0/8, [ipv6]:port, *:port or unix:path");
	bad("10.0.0.256:80", "invalid IPv4 address '10.0.0.256'");
	bad("10.0.0.1/8", "'10.0.0.1/8' has bits set past the prefix length");
	bad("10.0.0.0/33", "invalid prefix length '/33'; expected 0 to 32");
	bad("[::1", "missing ']' in '[::1'");
	bad("[::1]6379", "unexpected '6379' after ']'; expected :port");
	bad("[10.0.0.1]:80", "invalid IPv6 address '10.0.0.1'");
	bad("fd00::1/129", "invalid prefix length '/129'; expected 0 to 128");
	bad("unix:", "empty path after 'unix:'");
	bad("db host:80", "invalid host name 'db host'; expected host:port, ip:port, a CIDR such "
	    "as 10.0.0.0/8, [ipv6]:port, *:port or unix:path");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_any_and_unix),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Units of the policy file: parsing, errors, and formatting back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "units.h"

static bw_usec dur(const char *s)
{
	bw_usec v = -1;
	char err[160];
	assert_int_equal(bw_parse_duration(s, &v, err, sizeof err), 0);
	return v;
}

static void dur_err(const char *s, const char *want)
{
	bw_usec v;
	char err[160] = "";
	assert_int_equal(bw_parse_duration(s, &v, err, sizeof err), -1);
	assert_string_equal(err, want);
}

static void test_duration_parse(void **state)
{
	(void)state;
	assert_int_equal(dur("500us"), 500);
	assert_int_equal(dur("250ms"), 250000);
	assert_int_equal(dur("1.5s"), 1500000);
	assert_int_equal(dur("2m"), 120000000);
	assert_int_equal(dur("1h"), 3600000000LL);
	assert_int_equal(dur("0.001ms"), 1);
	assert_int_equal(dur("1.500000s"), 1500000);
	assert_int_equal(dur("0s"), 0);
	assert_int_equal(dur("1.25h"), 4500000000LL);
	assert_int_equal(dur("2562047788h"), 2562047788LL * 3600000000LL);
}

static void test_duration_errors(void **state)
{
	(void)state;
	dur_err("250", "duration needs a unit, e.g. 250ms");
	dur_err("1.5", "duration needs a unit, e.g. 250ms");
	dur_err("", "expected a duration like 250ms or 1.5s, got ''");
	dur_err("-1s", "a duration cannot be negative, got '-1s'");
	dur_err("5sec", "unknown duration unit 'sec' in '5sec'; expected us, ms, s, m or h");
	dur_err("1.5us", "'1.5us' is not a whole number of microseconds");
	dur_err("0.0000001s", "'0.0000001s' is not a whole number of microseconds");
	dur_err("ms", "expected a duration like 250ms or 1.5s, got 'ms'");
	dur_err("1.s", "expected a duration like 250ms or 1.5s, got '1.s'");
	dur_err("1 s", "unknown duration unit ' s' in '1 s'; expected us, ms, s, m or h");
	dur_err("99999999999999999999s", "duration '99999999999999999999s' is too large");
	dur_err("2562047789h", "duration '2562047789h' is too large");
}

static void fmt_dur(bw_usec us, const char *want)
{
	char buf[48];
	bw_format_duration(us, buf, sizeof buf);
	assert_string_equal(buf, want);
	if (us > 0)
		assert_int_equal(dur(buf), us);
}

static void test_duration_format(void **state)
{
	(void)state;
	fmt_dur(0, "0s");
	fmt_dur(1, "1us");
	fmt_dur(500, "500us");
	fmt_dur(1500, "1.5ms");
	fmt_dur(200000, "200ms");
	fmt_dur(250000, "250ms");
	fmt_dur(1000000, "1s");
	fmt_dur(1500000, "1.5s");
	fmt_dur(1250000, "1.25s");
	fmt_dur(90000000, "90s");
	fmt_dur(120000000, "2m");
	fmt_dur(300000000, "5m");
	fmt_dur(3600000000LL, "1h");
	fmt_dur(5400000000LL, "90m");
	fmt_dur(7200000000LL, "2h");
	fmt_dur(9000000000LL, "150m");
	fmt_dur(37800000000LL, "630m");
	fmt_dur(2700000, "2.7s");
	fmt_dur(1000001, "1000001us");
	fmt_dur(100000000, "100s");
	fmt_dur(-250000, "-250ms");
}

static void rate_ok(const char *s, double want, int want_bytes)
{
	double v;
	int bytes = -1;
	char err[160];
	assert_int_equal(bw_parse_rate(s, &v, &bytes, err, sizeof err), 0);
	assert_true(v == want);
	assert_int_equal(bytes, want_bytes);
}

static void rate_err(const char *s, const char *want)
{
	double v;
	int bytes;
	char err[160] = "";
	assert_int_equal(bw_parse_rate(s, &v, &bytes, err, sizeof err), -1);
	assert_string_equal(err, want);
}

static void test_rate_parse(void **state)
{
	(void)state;
	rate_ok("50/s", 50, 0);
	rate_ok("600/min", 10, 0);
	rate_ok("10/h", 10.0 / 3600, 0);
	rate_ok("0.5/s", 0.5, 0);
	rate_ok("512KiB/s", 524288, 1);
	rate_ok("1MiB/s", 1048576, 1);
	rate_ok("100KB/s", 100000, 1);
	rate_ok("64B/s", 64, 1);
	rate_ok("1GB/s", 1e9, 1);
	rate_ok("2GiB/s", 2147483648.0, 1);
	rate_err("50", "rate needs a unit, e.g. 50/s or 1MiB/s");
	rate_err("0/s", "a rate must be greater than 0, got '0/s'");
	rate_err("5/d", "unknown rate unit '/d' in '5/d'; expected /s, /min or /h");
	rate_err("5kb/s", "unknown size unit 'kb' in '5kb/s'; expected B, KB, KiB, MB, MiB, GB or "
		 "GiB");
	rate_err("fast", "expected a rate like 50/s or 1MiB/s, got 'fast'");
	rate_err("-5/s", "expected a rate like 50/s or 1MiB/s, got '-5/s'");
	rate_err("5 per s", "expected a rate like 50/s or 1MiB/s, got '5 per s'");
}

static void fmt_rate(double v, int bytes, const char *want)
{
	char buf[64];
	bw_format_rate(v, bytes, buf, sizeof buf);
	assert_string_equal(buf, want);
	rate_ok(buf, v, bytes);
}

static void test_rate_format(void **state)
{
	(void)state;
	fmt_rate(50, 0, "50/s");
	fmt_rate(10, 0, "10/s");
	fmt_rate(10.0 / 3600, 0, "10/h");
	fmt_rate(1.0 / 60, 0, "60/h");
	fmt_rate(1.5, 0, "1.5/s");
	fmt_rate(0.5, 0, "0.5/s");
	fmt_rate(524288, 1, "512KiB/s");
	fmt_rate(1048576, 1, "1MiB/s");
	fmt_rate(100000, 1, "100KB/s");
	fmt_rate(64, 1, "64B/s");
	fmt_rate(1536, 1, "1536B/s");
	fmt_rate(1572864, 1, "1.5MiB/s");
	fmt_rate(1e9, 1, "1GB/s");
}

static void size_ok(const char *s, double want, int want_sized)
{
	double v = -1;
	int sized = -1;
	char err[160] = "";
	assert_int_equal(bw_parse_size(s, &v, &sized, err, sizeof err), 0);
	assert_true(v == want);
	assert_int_equal(sized, want_sized);
}

static void size_err(const char *s, const char *want)
{
	double v;
	int sized;
	char err[160] = "";
	assert_int_equal(bw_parse_size(s, &v, &sized, err, sizeof err), -1);
	assert_string_equal(err, want);
}

/* The sizes of a byte bucket: the units of byte rates, or a plain number. */
static void test_size_parse(void **state)
{
	(void)state;
	size_ok("64KiB", 65536, 1);
	size_ok("100KB", 100000, 1);
	size_ok("100kB", 100000, 1);
	size_ok("1.5MiB", 1572864, 1);
	size_ok("512B", 512, 1);
	size_ok("2GiB", 2147483648.0, 1);
	size_ok("1GB", 1e9, 1);
	size_ok("4096", 4096, 0);
	size_ok("2.5", 2.5, 0);
	size_err("64KiBs", "unknown size unit 'KiBs' in '64KiBs'; expected B, KB, KiB, MB, MiB, "
		 "GB or GiB");
	size_err("64 KiB", "unknown size unit ' KiB' in '64 KiB'; expected B, KB, KiB, MB, MiB, "
		 "GB or GiB");
	size_err("64KiB/s", "unknown size unit 'KiB/s' in '64KiB/s'; expected B, KB, KiB, MB, "
		 "MiB, GB or GiB");
	size_err("KiB", "expected a number like 10 or a size like 64KiB, got 'KiB'");
	size_err("-1KiB", "expected a number like 10 or a size like 64KiB, got '-1KiB'");
	size_err("1000000GiB", "size '1000000GiB' is too large");
	size_err("1234567890123456B", "'1234567890123456B' has more than 15 significant digits");
}

static void fmt_size(double v, const char *want)
{
	char buf[64];
	bw_format_size(v, buf, sizeof buf);
	assert_string_equal(buf, want);
	size_ok(buf, v, 1);
}

static void test_size_format(void **state)
{
	(void)state;
	fmt_size(65536, "64KiB");
	fmt_size(1048576, "1MiB");
	fmt_size(1572864, "1.5MiB");
	fmt_size(100000, "100KB");
	fmt_size(1500, "1500B");
	fmt_size(1, "1B");
	fmt_size(2.5, "2.5B");
	fmt_size(1e9, "1GB");
	fmt_size(999999999999999, "999999999999999B");
}

static void test_ratio(void **state)
{
	double v;
	char err[160], buf[32];
	(void)state;
	assert_int_equal(bw_parse_ratio("50%", &v, err, sizeof err), 0);
	assert_true(v == 0.5);
	assert_int_equal(bw_parse_ratio("0.5", &v, err, sizeof err), 0);
	assert_true(v == 0.5);
	assert_int_equal(bw_parse_ratio("12.5%", &v, err, sizeof err), 0);
	assert_true(v == 0.125);
	assert_int_equal(bw_parse_ratio("1", &v, err, sizeof err), 0);
	assert_true(v == 1);
	assert_int_equal(bw_parse_ratio("0%", &v, err, sizeof err), 0);
	assert_true(v == 0);
	assert_int_equal(bw_parse_ratio("101%", &v, err, sizeof err), -1);
	assert_string_equal(err, "expected a ratio from 0 to 1 or 0% to 100%, got '101%'");
	assert_int_equal(bw_parse_ratio("1.5", &v, err, sizeof err), -1);
	assert_int_equal(bw_parse_ratio("-0.5", &v, err, sizeof err), -1);
	assert_int_equal(bw_parse_ratio("50 %", &v, err, sizeof err), -1);
	bw_format_ratio(0.2, buf, sizeof buf);
	assert_string_equal(buf, "20%");
	bw_format_ratio(0.125, buf, sizeof buf);
	assert_string_equal(buf, "12.5%");
	bw_format_ratio(1, buf, sizeof buf);
	assert_string_equal(buf, "100%");
	bw_format_ratio(0.001, buf, sizeof buf);
	assert_string_equal(buf, "0.1%");
	assert_int_equal(bw_parse_ratio("33.333%", &v, err, sizeof err), 0);
	bw_format_ratio(v, buf, sizeof buf);
	assert_string_equal(buf, "33.333%");
}

static void test_number(void **state)
{
	double v;
	char err[160], buf[32];
	(void)state;
	assert_int_equal(bw_parse_number("2", &v, err, sizeof err), 0);
	assert_true(v == 2);
	assert_int_equal(bw_parse_number("1.5", &v, err, sizeof err), 0);
	assert_true(v == 1.5);
	assert_int_equal(bw_parse_number("1e3", &v, err, sizeof err), -1);
	assert_string_equal(err, "expected a number like 2 or 1.5, got '1e3'");
	assert_int_equal(bw_parse_number("1234567890123456", &v, err, sizeof err), -1);
	assert_string_equal(err, "'1234567890123456' has more than 15 significant digits");
	assert_int_equal(bw_parse_number("0.1", &v, err, sizeof err), 0);
	bw_format_number(v, buf, sizeof buf);
	assert_string_equal(buf, "0.1");
	bw_format_number(2, buf, sizeof buf);
	assert_string_equal(buf, "2");
	bw_format_number(1.25, buf, sizeof buf);
	assert_string_equal(buf, "1.25");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_errors),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_rate_format),
		cmocka_unit_test(test_size_parse),
		cmocka_unit_test(test_size_format),
		cmocka_unit_test(test_ratio),
		cmocka_unit_test(test_number),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Rule matching: ops, dest forms (IPv4, IPv6, CIDR, any address, host names through the
 * resolver cache, unix globs), host, db; first match wins; address formatting; globs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>
#include "match.h"
#include "names.h"

static struct sockaddr_storage ss;

static const struct sockaddr *v4(const char *ip, int port, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	memset(&ss, 0, sizeof ss);
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &in->sin_addr);
	*len = sizeof *in;
	return (struct sockaddr *)&ss;
}

static const struct sockaddr *v6(const char *ip, int port, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	memset(&ss, 0, sizeof ss);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, ip, &in6->sin6_addr);
	*len = sizeof *in6;
	return (struct sockaddr *)&ss;
}

static const struct sockaddr *unx(const char *path, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&ss;
	memset(&ss, 0, sizeof ss);
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	return (struct sockaddr *)&ss;
}

static int dest_hits_at(const char *pattern, const struct sockaddr *sa, const socklen_t *len,
			const char *host)
{
	struct bw_dest d;
	char err[128];
	assert_int_equal(bw_dest_parse(pattern, &d, err, sizeof err), 0);
	int hit = bw_match_dest(&d, sa, *len, host);
	bw_dest_free(&d);
	return hit;
}

static void test_dest_forms(void **s)
{
	(void)s;
	socklen_t len;
	assert_true(dest_hits_at("127.0.0.1:5432", v4("127.0.0.1", 5432, &len), &len, NULL));
	assert_false(dest_hits_at("127.0.0.1:5432", v4("127.0.0.1", 5433, &len), &len, NULL));
	assert_false(dest_hits_at("127.0.0.1:5432", v4("127.0.0.2", 5432, &len), &len, NULL));
	assert_true(dest_hits_at("10.0.0.0/8", v4("10.9.8.7", 1, &len), &len, NULL));
	assert_false(dest_hits_at("10.0.0.0/8", v4("11.0.0.1", 1, &len), &len, NULL));
	assert_true(dest_hits_at("*:443", v4("1.2.3.4", 443, &len), &len, NULL));
	assert_true(dest_hits_at("*:443", v6("::1", 443, &len), &len, NULL));
	assert_false(dest_hits_at("*:443", v4("1.2.3.4", 80, &len), &len, NULL));
	assert_true(dest_hits_at("[::1]:6379", v6("::1", 6379, &len), &len, NULL));
	assert_true(dest_hits_at("127.0.0.1:80", v6("::ffff:127.0.0.1", 80, &len), &len, NULL));
	assert_true(dest_hits_at("127.0.0.0/8", v6("::ffff:127.9.9.9", 1, &len), &len, NULL));
	assert_false(dest_hits_at("127.0.0.1:80", v6("::ffff:127.0.0.2", 80, &len), &len, NULL));
	assert_false(dest_hits_at("[::1]:6379", v4("127.0.0.1", 6379, &len), &len, NULL));
	assert_true(dest_hits_at("unix:/run/app/*.sock", unx("/run/app/x.sock", &len), &len, NULL));
	assert_false(dest_hits_at("unix:/run/app/*.sock", unx("/run/other.sock", &len), &len, NULL));
	assert_false(dest_hits_at("unix:/run/app/*.sock", v4("1.2.3.4", 1, &len), &len, NULL));
	assert_true(dest_hits_at("db.internal:5432", v4("10.1.1.1", 5432, &len), &len, "db.internal"));
	assert_false(dest_hits_at("db.internal:5432", v4("10.1.1.1", 5432, &len), &len, NULL));
	assert_true(dest_hits_at("*.internal:5432", v4("10.1.1.1", 5432, &len), &len, "db.internal"));
}

static struct bw_rule rules[3];
static struct bw_config cfg;
static struct bw_dest dests[2];

static int setup(void **s)
{
	(void)s;
	char err[128];
	memset(rules, 0, sizeof rules);
	bw_names_reset();
	strcpy(rules[0].name, "db");
	rules[0].match.ops = BW_OPBIT(BW_OP_CONNECT);
	assert_int_equal(bw_dest_parse("db.internal:5432", &dests[0], err, sizeof err), 0);
	assert_int_equal(bw_dest_parse("10.0.0.0/8", &dests[1], err, sizeof err), 0);
	rules[0].match.dest = dests;
	rules[0].match.n_dest = 2;
	static char *hosts[] = { "*.example" };
	strcpy(rules[1].name, "dns");
	rules[1].match.ops = BW_OPBIT(BW_OP_RESOLVE);
	rules[1].match.host = hosts;
	rules[1].match.n_host = 1;
	strcpy(rules[2].name, "all");
	rules[2].match.ops = BW_OPS_ALL;
	cfg.rules = rules;
	cfg.n_rules = 3;
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	bw_dest_free(&dests[0]);
	bw_dest_free(&dests[1]);
	return 0;
}

static const char *rule_for(const struct bw_target *t, const char **host)
{
	const struct bw_rule *r = bw_match(&cfg, NULL, t, host);
	return r ? r->name : "-";
}

static void test_first_match_wins_and_host_names(void **s)
{
	(void)s;
	socklen_t len;
	const char *host;
	struct bw_target t = { .op = BW_OP_CONNECT };
	t.addr = v4("10.2.3.4", 80, &len);
	t.addrlen = len;
	assert_string_equal(rule_for(&t, &host), "db");
	t.addr = v4("192.168.1.1", 5432, &len);
	assert_string_equal(rule_for(&t, &host), "all");
	assert_null(host);
	/* once the resolver said db.internal is 192.168.1.1, a connect there is "db" */
	bw_names_remember("db.internal", t.addr, len);
	assert_string_equal(rule_for(&t, &host), "db");
	assert_string_equal(host, "db.internal");
	/* other port: the host dest names 5432 only */
	t.addr = v4("192.168.1.1", 5433, &len);
	assert_string_equal(rule_for(&t, &host), "all");
}

static void test_resolve_host_globs(void **s)
{
	(void)s;
	const char *host;
	struct bw_target t = { .op = BW_OP_RESOLVE, .host = "api.example" };
	assert_string_equal(rule_for(&t, &host), "dns");
	assert_string_equal(host, "api.example");
	t.host = "api.example.org";
	assert_string_equal(rule_for(&t, &host), "all");
}

static void test_ops_mask(void **s)
{
	(void)s;
	rules[2].match.ops = BW_OPBIT(BW_OP_SQLITE);
	struct bw_target t = { .op = BW_OP_ACCEPT };
	assert_string_equal(rule_for(&t, NULL), "-");
	t.op = BW_OP_SQLITE;
	t.db = "/srv/app.db";
	assert_string_equal(rule_for(&t, NULL), "all");
	static char *dbs[] = { "*/other.db" };
	rules[2].match.db = dbs;
	rules[2].match.n_db = 1;
	assert_string_equal(rule_for(&t, NULL), "-");
	rules[2].match.n_db = 0;
}

/* A client library that knows its server by name and port before it connects (pg):
 * dests that name the host match by name and port, any-address dests by port, address
 * dests cannot tell. */
static void test_named_server(void **s)
{
	(void)s;
	rules[0].match.ops |= BW_OPBIT(BW_OP_PG);
	struct bw_target t = { .op = BW_OP_PG, .host = "db.internal", .port = 5432 };
	assert_string_equal(rule_for(&t, NULL), "db");
	t.port = 5433;
	assert_string_equal(rule_for(&t, NULL), "all");
	t.host = "db.other";
	t.port = 5432;
	assert_string_equal(rule_for(&t, NULL), "all");
	struct bw_dest any;
	char err[128];
	assert_int_equal(bw_dest_parse("*:5432", &any, err, sizeof err), 0);
	struct bw_dest *saved = rules[0].match.dest;
	rules[0].match.dest = &any;
	rules[0].match.n_dest = 1;
	assert_string_equal(rule_for(&t, NULL), "db");
	t.port = 1;
	assert_string_equal(rule_for(&t, NULL), "all");
	rules[0].match.dest = saved;
	rules[0].match.n_dest = 2;
	bw_dest_free(&any);
}

static void test_active_mask(void **s)
{
	(void)s;
	unsigned char active[3] = { 1, 1, 0 };
	struct bw_target t = { .op = BW_OP_ACCEPT };
	assert_null(bw_match(&cfg, active, &t, NULL));
}

static void test_format_sockaddr(void **s)
{
	(void)s;
	char buf[128];
	socklen_t len;
	const struct sockaddr *sa = v4("127.0.0.1", 5432, &len);
	bw_format_sockaddr(sa, len, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:5432");
	sa = v6("::1", 6379, &len);
	bw_format_sockaddr(sa, len, buf, sizeof buf);
	assert_string_equal(buf, "[::1]:6379");
	sa = v6("2001:db8:0:0:1:0:0:1", 80, &len);
	bw_format_sockaddr(sa, len, buf, sizeof buf);
	assert_string_equal(buf, "[2001:db8::1:0:0:1]:80");
	sa = v6("fe80::", 1, &len);
	bw_format_sockaddr(sa, len, buf, sizeof buf);
	assert_string_equal(buf, "[fe80::]:1");
	sa = unx("/tmp/x.sock", &len);
	bw_format_sockaddr(sa, len, buf, sizeof buf);
	assert_string_equal(buf, "unix:/tmp/x.sock");
	bw_format_sockaddr(sa, len, buf, 8);
	assert_string_equal(buf, "unix:/t");
}

static void test_glob(void **s)
{
	(void)s;
	assert_true(bw_glob("*", ""));
	assert_true(bw_glob("python3*", "python3.11"));
	assert_false(bw_glob("python3*", "python"));
	assert_true(bw_glob("*/app.db", "/srv/data/app.db"));
	assert_true(bw_glob("a?c", "abc"));
	assert_false(bw_glob("a?c", "ac"));
	assert_true(bw_glob("[a-c]x", "bx"));
	assert_false(bw_glob("[!a-c]x", "bx"));
	assert_true(bw_glob("*.sock", "a.b.sock"));
	assert_false(bw_glob("*.sock", "a.sockx"));
	assert_true(bw_glob("**a", "bba"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dest_forms),
		cmocka_unit_test_setup_teardown(test_first_match_wins_and_host_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_host_globs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_named_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_active_mask, setup, teardown),
		cmocka_unit_test(test_format_sockaddr),
		cmocka_unit_test(test_glob),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

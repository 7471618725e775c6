/* Fleet mode's arithmetic with a fake clock (engine/lease.c), the fleet's keys in a policy
 * (config/redis_url.c, the loader), and the bound the leases keep: a simulated fleet of
 * hosts taking from Redis's bucket never admits more than rate x T + burst + hosts x lease. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "bucket.h"
#include "config.h"
#include "lease.h"
#include "redis_url.h"

#define MS 1000LL
#define S 1000000LL

static void test_lease_size(void **st)
{
	(void)st;
	/* 100/s, synced every 100 ms: 10 tokens a period, shared by the hosts seen */
	assert_true(bw_lease_size(100, 50, 100 * MS, 1) == 10);
	assert_true(bw_lease_size(100, 50, 100 * MS, 2) == 5);
	assert_true(bw_lease_size(100, 50, 100 * MS, 3) == 4);     /* rounded up */
	assert_true(bw_lease_size(100, 50, 100 * MS, 0) == 10);    /* none seen yet: one */
	assert_true(bw_lease_size(100, 50, 100 * MS, 1000) == 1);  /* never less than one */
	assert_true(bw_lease_size(10000, 20, 100 * MS, 1) == 20);  /* never past the burst */
	assert_true(bw_lease_want(5, 0) == 5);
	assert_true(bw_lease_want(5, 3.5) == 1);
	assert_true(bw_lease_want(5, 7) == 0);
}

static void test_local_share(void **st)
{
	(void)st;
	/* 100/s over 4 hosts: 25/s each */
	assert_true(bw_local_share(100, 4, 1 * S) == 25);
	assert_true(bw_local_share(100, 4, 100 * MS) == 2.5);
	assert_true(bw_local_share(100, 4, 0) == 0);
	assert_true(bw_local_share(100, 4, -5) == 0);
	assert_true(bw_local_cap(40, 4) == 10);
	assert_true(bw_local_cap(2, 40) == 1);
}

static void test_link_modes(void **st)
{
	(void)st;
	struct bw_link l = { 0 };
	/* late replies now and then are not an outage */
	assert_int_equal(bw_link_result(&l, 0, 1 * S), 0);
	assert_int_equal(bw_link_result(&l, 0, 1 * S), 0);
	assert_int_equal(l.mode, BW_LINK_FLEET);
	assert_int_equal(bw_link_result(&l, 1, 2 * S), 0);
	assert_int_equal(bw_link_result(&l, 0, 3 * S), 0);
	assert_int_equal(bw_link_result(&l, 0, 3 * S), 0);
	/* three in a row are: one change, said once */
	assert_int_equal(bw_link_result(&l, 0, 4 * S), 1);
	assert_int_equal(l.mode, BW_LINK_UNREACHABLE);
	assert_true(l.since == 4 * S);
	for (int i = 0; i < 10; i++)
		assert_int_equal(bw_link_result(&l, 0, (5 + i) * S), 0);
	/* back at the first success */
	assert_int_equal(bw_link_result(&l, 1, 20 * S), 1);
	assert_int_equal(l.mode, BW_LINK_FLEET);
	assert_int_equal(bw_link_result(&l, 1, 21 * S), 0);
}

static void test_quorum(void **st)
{
	(void)st;
	struct bw_fleet f = { .hosts = 40 };
	assert_int_equal(bw_fleet_quorum(&f), 4);       /* 10 % of 40 */
	f.hosts = 3;
	assert_int_equal(bw_fleet_quorum(&f), 2);       /* at least 2 */
	assert_false(bw_quorum_reached(&f, 1));         /* one bad host poisons no one */
	assert_true(bw_quorum_reached(&f, 2));
	f.hosts = 1;
	assert_int_equal(bw_fleet_quorum(&f), 1);       /* never more than the fleet */
	f.hosts = 10;
	f.quorum = 3;
	assert_int_equal(bw_fleet_quorum(&f), 3);
	f.quorum = 25;
	f.quorum_pct = 1;
	assert_int_equal(bw_fleet_quorum(&f), 3);       /* 25 % of 10, rounded up */
	f.quorum = 100;
	assert_int_equal(bw_fleet_quorum(&f), 10);
}

/* Hosts sync every 100 ms in turn against a bucket like the script's (Redis's clock,
 * starts empty), each wanting all it can take: admitted over any window of T stays
 * within rate x T + burst + hosts x lease, and each host gets its share. */
static void test_fleet_bound(void **st)
{
	(void)st;
	enum { HOSTS = 3, STEPS = 600 };   /* 60 s in 100 ms steps */
	const double rate = 100, burst = 10;
	const bw_usec sync = 100 * MS;
	struct bw_rate_limit rl = { .enabled = 1, .rate = rate, .burst = burst, .fleet = 1 };
	struct bw_bucket local[HOSTS];
	double redis = 0, took[HOSTS] = { 0 }, at[STEPS + 1];
	int64_t ts = 0;
	memset(local, 0, sizeof local);
	at[0] = 0;
	for (int step = 1; step <= STEPS; step++) {
		int64_t now = step * sync;
		for (int h = 0; h < HOSTS; h++) {
			int64_t t = now + h * 30 * MS;            /* each syncs at its own phase */
			redis += (double)(t - ts) * rate / 1e6;
			redis = redis > burst ? burst : redis;
			ts = t;
			double lease = bw_lease_size(rate, burst, sync, HOSTS);
			int64_t wait;
			bw_bucket_take(&rl, &local[h], t, 0, 0, &wait);  /* a cell in use */
			double want = bw_lease_want(lease, local[h].tokens);
			double grant = want < (double)(int64_t)redis ? want : (double)(int64_t)redis;
			redis -= grant;
			local[h].tokens += grant;
			/* the host's calls take everything it holds */
			while (bw_bucket_take(&rl, &local[h], t + 1, 1, 1, &wait) == 1)
				took[h]++;
		}
		at[step] = took[0] + took[1] + took[2];
	}
	double lease = bw_lease_size(rate, burst, sync, HOSTS);
	for (int w = 1; w <= 50; w *= 5)
		for (int s = 0; s + w <= STEPS; s++)
			assert_true(at[s + w] - at[s] <= rate * (double)(w * sync) / 1e6 + burst +
				    HOSTS * lease + 1e-6);
	double total = at[STEPS];
	assert_true(total >= rate * 60 * 0.95);         /* the fleet gets its rate */
	for (int h = 0; h < HOSTS; h++)
		assert_true(took[h] > total / HOSTS * 0.75 && took[h] < total / HOSTS * 1.25);
}

static void test_bucket_never_refills_by_time(void **st)
{
	(void)st;
	struct bw_rate_limit rl = { .enabled = 1, .rate = 100, .burst = 10, .fleet = 1 };
	struct bw_bucket b = { 0, 0, 0 };
	int64_t wait;
	/* starts empty: the fleet grants the first tokens */
	assert_true(bw_bucket_take(&rl, &b, 1 * S, 1, 1, &wait) == 0);
	assert_true(wait > 0);
	assert_true(bw_bucket_take(&rl, &b, 60 * S, 1, 1, &wait) == 0);
	assert_true(bw_bucket_take_all(&rl, &b, 61 * S, 1) == -1);
	b.tokens = 2;                                    /* a grant */
	assert_true(bw_bucket_take_all(&rl, &b, 62 * S, 1) == 1);
	assert_true(bw_bucket_take(&rl, &b, 3600 * S, 1, 1, &wait) == 1);
	assert_true(bw_bucket_take(&rl, &b, 3601 * S, 1, 1, &wait) == 0);
}

static void test_redis_urls(void **st)
{
	(void)st;
	struct bw_fleet f;
	char err[200];
	memset(&f, 0, sizeof f);
	assert_int_equal(bw_parse_redis_url("redis://10.0.0.5:6380/3", &f, err, sizeof err), 0);
	assert_int_equal(f.family, AF_INET);
	assert_int_equal(f.port, 6380);
	assert_int_equal(f.db, 3);
	assert_int_equal(f.addr[0], 10);
	assert_int_equal(bw_parse_redis_url("redis://localhost", &f, err, sizeof err), 0);
	assert_int_equal(f.port, 6379);
	assert_int_equal(f.db, 0);
	assert_int_equal(bw_parse_redis_url("redis://[::1]:7000", &f, err, sizeof err), 0);
	assert_int_equal(f.family, AF_INET6);
	assert_int_equal(f.port, 7000);
	assert_int_equal(bw_parse_redis_url("unix:/run/redis.sock?db=2", &f, err, sizeof err), 0);
	assert_int_equal(f.family, AF_UNIX);
	assert_string_equal(f.unix_path, "/run/redis.sock");
	assert_int_equal(f.db, 2);
	free(f.unix_path);
	f.unix_path = NULL;
	const char *bad[] = { "rediss://10.0.0.5", "redis://db.internal:6379", "redis://1.2.3.4:0",
			      "redis://1.2.3.4:99999", "redis://1.2.3.4/x", "unix:relative",
			      "redis://u:p@1.2.3.4", "http://1.2.3.4", "redis://", "redis://[::1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(bw_parse_redis_url(bad[i], &f, err, sizeof err), -1);
}

static const char *load_err(const char *yaml)
{
	static char line[600];
	struct bw_diags dg = { .n = 0 };
	struct bw_config *cfg = bw_config_load_string("p.yaml", yaml, strlen(yaml), &dg);
	if (cfg) {
		bw_config_free(cfg);
		return "";
	}
	bw_diag_format(&dg.d[0], line, sizeof line);
	return line;
}

static void test_policy_keys(void **st)
{
	(void)st;
	const char *ok = "version: 1\nstate:\n  share: fleet\n  redis: \"redis://127.0.0.1:6379/1\"\n"
			 "  hosts: 40\n  fleet_quorum: 25%\n  on_unreachable: closed\n"
			 "  key_prefix: \"shop:\"\n  sync: 200ms\n"
			 "rules:\n  - name: a\n    match: { ops: [connect] }\n"
			 "    rate_limit: { rate: 100/s }\n"
			 "  - name: b\n    match: { ops: [connect] }\n"
			 "    rate_limit: { rate: 100/s, scope: process }\n";
	struct bw_diags dg = { .n = 0 };
	struct bw_config *cfg = bw_config_load_string("p.yaml", ok, strlen(ok), &dg);
	assert_non_null(cfg);
	assert_int_equal(cfg->state.share, BW_SHARE_FLEET);
	assert_int_equal(cfg->state.fleet.hosts, 40);
	assert_int_equal(cfg->state.fleet.db, 1);
	assert_int_equal(bw_fleet_quorum(&cfg->state.fleet), 10);
	assert_int_equal(cfg->state.fleet.on_unreachable, BW_UNREACH_CLOSED);
	assert_string_equal(cfg->state.fleet.key_prefix, "shop:");
	assert_true(cfg->state.fleet.sync == 200 * MS);
	assert_int_equal(cfg->rules[0].rate_limit.fleet, 1);
	assert_int_equal(cfg->rules[1].rate_limit.fleet, 0);   /* per process stays its own */
	bw_config_free(cfg);

	assert_string_equal(load_err("version: 1\nstate: { share: fleet, hosts: 2 }\n"),
			    "p.yaml:2:8: state: share: fleet needs redis: \"redis://HOST:PORT/DB\" "
			    "or \"unix:/PATH\"");
	assert_string_equal(load_err("version: 1\nstate: { share: fleet, redis: \"unix:/r\" }\n"),
			    "p.yaml:2:8: state: share: fleet needs hosts: N, the expected number "
			    "of hosts (each gets rate / N while Redis is out of reach)");
	assert_string_equal(load_err("version: 1\nstate: { share: group, hosts: 2 }\n"),
			    "p.yaml:2:31: state.hosts: only with share: fleet");
	assert_string_equal(load_err("version: 1\nstate:\n  share: fleet\n  redis: \"unix:/r\"\n"
				     "  hosts: 2\n  on_unreachable: maybe\n"),
			    "p.yaml:6:19: state.on_unreachable: expected one of local, open, "
			    "closed, got 'maybe'");
	assert_string_equal(load_err("version: 1\nstate:\n  share: fleet\n  redis: \"unix:/r\"\n"
				     "  hosts: 2\n  fleet_quorum: 0\n"),
			    "p.yaml:6:17: state.fleet_quorum: expected a number of hosts (1 or "
			    "more) or a percentage (1% to 100%), got '0'");
	assert_string_equal(load_err("version: 1\nstate:\n  share: fleet\n  redis: \"unix:/r\"\n"
				     "  hosts: 2\n  sync: 1ms\n"),
			    "p.yaml:6:9: state.sync: expected 10ms to 10s");
	assert_string_equal(load_err("version: 1\nstate:\n  share: fleet\n  redis: \"unix:/r\"\n"
				     "  hosts: 2\n  key_prefix: \"a b\"\n"),
			    "p.yaml:6:15: state.key_prefix: expected 1 to 64 printable characters "
			    "without spaces");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease_size),
		cmocka_unit_test(test_local_share),
		cmocka_unit_test(test_link_modes),
		cmocka_unit_test(test_quorum),
		cmocka_unit_test(test_fleet_bound),
		cmocka_unit_test(test_bucket_never_refills_by_time),
		cmocka_unit_test(test_redis_urls),
		cmocka_unit_test(test_policy_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

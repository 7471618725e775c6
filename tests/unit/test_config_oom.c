/* Allocation failures while loading a policy: whichever allocation fails, the load gives
 * the whole policy or an error, never a policy with parts missing (a rule whose dest or
 * prog list lost an entry would match more than was written; one that lost its rules
 * would do nothing).
 *
 * This binary is linked with -Wl,--wrap for malloc, calloc, realloc, strdup and strndup
 * and with libyaml's static archive (see the Makefile), so that every allocation of the
 * policy code and of libyaml goes through the counters below, which can make the Nth
 * one fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "config.h"
#include "dump_text.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static long counted;     /* allocations since counting began */
static long fail_at;     /* 0: none fails */
static int fail_rest;    /* 1: every allocation from fail_at on fails, not only that one */
static long failed;      /* allocations made to fail */

static int fails(void)
{
	long n = ++counted;
	if (!fail_at || n < fail_at || (n > fail_at && !fail_rest))
		return 0;
	failed++;
	errno = ENOMEM;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	return fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fails() ? NULL : __real_strndup(s, n);
}

/* Something of everything that allocates: log path, state dir, dest lists of every kind,
 * host, db and prog lists, fallbacks and faults of a rule's own and from defaults, aliases,
 * several rules. */
static const char rich_policy[] =
	"version: 1\n"
	"log: { sink: file:/tmp/bw-oom.jsonl, level: debug }\n"
	"state: { share: group, dir: /run/bw-oom }\n"
	"defaults:\n"
	"  retry: { attempts: 3, on: [ECONNREFUSED, EAI_AGAIN] }\n"
	"  fallback: [\"127.0.0.1:5433\", \"unix:/run/db.sock\"]\n"
	"  inject: [ { delay: 1ms, probability: 1% }, { ops: [recv], eof: true, count: 2 } ]\n"
	"  rate_limit: { rate: 1MiB/s, burst: 64KiB }\n"
	"rules:\n"
	"  - name: db\n"
	"    match:\n"
	"      ops: [connect, send, recv]\n"
	"      dest: &dests [\"db.internal:5432\", 10.0.0.0/8, \"[::1]:6379\", \"*:443\",\n"
	"                    \"unix:/run/app/*.sock\"]\n"
	"      prog: [psql, \"python3*\", node]\n"
	"    breaker: { trip: { consecutive: 3 }, open_for: 2s }\n"
	"    fallback: [\"127.0.0.1:6000\", \"db-replica.internal:5432\"]\n"
	"    inject:\n"
	"      - { ops: [connect], errno: ECONNREFUSED, probability: 20%, after: 2 }\n"
	"      - { ops: [send], partial: true }\n"
	"  - name: same-dests\n"
	"    match: { ops: [connect], dest: *dests, prog: &progs [curl, wget] }\n"
	"  - name: dns\n"
	"    match: { ops: resolve, host: [\"*.internal\", \"*.example.com\"], prog: *progs }\n"
	"    rate_limit: { rate: 10/s, on_limit: fail, errno: EAI_AGAIN }\n"
	"  - name: lite\n"
	"    match: { ops: [sqlite], db: [\"*/app.db\", \"/var/lib/*.sqlite\"] }\n"
	"    retry: { on: [SQLITE_BUSY] }\n"
	"  - name: inherits\n"
	"    match: { ops: [connect, recv] }\n";

static char path[] = "/tmp/bw-oom-XXXXXX";

static int setup(void **state)
{
	(void)state;
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, rich_policy, strlen(rich_policy));
	close(fd);
	return n == (ssize_t)strlen(rich_policy) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static int has_oom(const struct bw_diags *dg)
{
	for (int i = 0; i < dg->n && i < BW_MAX_DIAGS; i++)
		if (strstr(dg->d[i].msg, "out of memory"))
			return 1;
	return 0;
}

/* The Nth allocation fails (or every one from the Nth on), for every N the load makes. */
static void each_failure(int rest)
{
	struct bw_diags dg = { .n = 0 };
	char line[600];
	counted = fail_at = failed = 0;
	struct bw_config *cfg = bw_config_load_file(path, &dg);
	long total = counted;
	assert_non_null(cfg);
	assert_int_equal(cfg->n_rules, 5);
	char *want = dump_text(cfg);
	bw_config_free(cfg);
	print_message("a whole load makes %ld allocations\n", total);
	assert_true(total > 100);

	fail_rest = rest;
	for (long n = 1; n <= total; n++) {
		memset(&dg, 0, sizeof dg);
		counted = failed = 0;
		fail_at = n;
		cfg = bw_config_load_file(path, &dg);
		fail_at = 0;
		assert_int_equal(failed, rest ? counted - n + 1 : 1);
		if (cfg) {   /* the failure was handled on the way: all of it, or no policy */
			char *got = dump_text(cfg);
			if (strcmp(got, want) != 0)
				print_error("allocation %ld failed: a partial policy\n%s", n, got);
			assert_string_equal(got, want);
			free(got);
			bw_config_free(cfg);
			continue;
		}
		if (!has_oom(&dg)) {
			for (int i = 0; i < dg.n && i < BW_MAX_DIAGS; i++) {
				bw_diag_format(&dg.d[i], line, sizeof line);
				print_error("allocation %ld failed: %s\n", n, line);
			}
			fail_msg("allocation %ld failed: no 'out of memory' among %d diagnostics", n,
				 dg.n);
		}
	}
	free(want);
}

static void test_one_allocation_fails(void **state)
{
	(void)state;
	each_failure(0);
}

static void test_allocations_fail_from_then_on(void **state)
{
	(void)state;
	each_failure(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_allocation_fails),
		cmocka_unit_test(test_allocations_fail_from_then_on),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

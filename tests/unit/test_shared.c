/* The shared state layout: laid out and checked, updated by several forked processes at
 * once, and still usable after a process is killed while it holds a lock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "fake_env.h"
#include "shared.h"

static struct bw_rule rules[2];
static struct bw_config cfg;

static void make_cfg(void)
{
	memset(rules, 0, sizeof rules);
	memset(&cfg, 0, sizeof cfg);
	strcpy(rules[0].name, "whole");
	rules[0].match.ops = BW_OPS_ALL;
	rules[0].max_keys = 64;
	rules[0].breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE,
						.consecutive = 1000000, .window = 1000000,
						.min_calls = 1, .open_for = 1000000,
						.open_for_max = 1000000, .half_open_probes = 1 };
	strcpy(rules[1].name, "dests");
	rules[1].match.ops = BW_OPS_ALL;
	rules[1].max_keys = 64;
	rules[1].breaker = rules[0].breaker;
	rules[1].breaker.scope = BW_SCOPE_DEST;
	cfg.rules = rules;
	cfg.n_rules = 2;
	cfg.log.level = BW_LVL_ERROR;
	cfg.path = "p.yaml";
}

static int alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void *shared_region(size_t size)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	return m;
}

static void test_layout_round_trip(void **s)
{
	(void)s;
	make_cfg();
	size_t size = bw_shm_size(&cfg);
	void *m = shared_region(size);
	assert_int_not_equal(bw_shm_check(m, size, &cfg), 0);      /* not ready yet */
	bw_shm_format(m, size, &cfg, "g1", "/p.yaml", 5);
	assert_int_equal(bw_shm_check(m, size, &cfg), 0);
	assert_string_equal(bw_shm_rules(m)[1].name, "dests");
	assert_int_equal(bw_shm_rules(m)[0].sets, 0);
	assert_int_equal(bw_shm_rules(m)[1].sets, 8);
	strcpy(rules[1].name, "other");                           /* another policy */
	assert_int_not_equal(bw_shm_check(m, size, &cfg), 0);
	munmap(m, size);
}

static void hammer(void *m, int n)
{
	struct bw_engine e;
	fake_reset();
	bw_engine_init(&e, &cfg, &fake_env, getpid(), "child", 1);
	bw_engine_share(&e, m, getpid(), alive);
	struct bw_call w = { .rule = &rules[0], .op = BW_OP_CONNECT, .key = 1 };
	struct bw_call d = { .rule = &rules[1], .op = BW_OP_CONNECT, .key = 42, .dest = "x:1" };
	for (int i = 0; i < n; i++) {
		bw_engine_settle(&e, &w, ECONNREFUSED);
		bw_engine_settle(&e, &d, ECONNREFUSED);
	}
	bw_engine_fini(&e);
}

struct seen { int n; int consecutive; char label[BW_LABEL_MAX]; };

static void note(const struct bw_dest_state *st, void *arg)
{
	struct seen *s = arg;
	s->n++;
	s->consecutive = st->brk.consecutive;
	memcpy(s->label, st->label, sizeof s->label);
}

static void test_forked_processes_update_together(void **s)
{
	(void)s;
	make_cfg();
	size_t size = bw_shm_size(&cfg);
	void *m = shared_region(size);
	bw_shm_format(m, size, &cfg, "g", "/p", 0);
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			hammer(m, 2000);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* no update lost: every failure of every process counted once */
	assert_int_equal(bw_shm_rules(m)[0].whole.brk.consecutive, 8000);
	struct seen seen = { 0 };
	bw_shm_each_dest(m, 1, note, &seen);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.consecutive, 8000);
	assert_string_equal(seen.label, "x:1");
	munmap(m, size);
}

static void test_lock_of_a_killed_process_is_taken_over(void **s)
{
	(void)s;
	make_cfg();
	size_t size = bw_shm_size(&cfg);
	void *m = shared_region(size);
	bw_shm_format(m, size, &cfg, "g", "/p", 0);
	int *lock = &bw_shm_rules(m)[0].lock;
	pid_t kid = fork();
	if (kid == 0) {
		bw_spin_lock(lock, getpid(), alive);
		raise(SIGKILL);              /* dies holding it */
		_exit(1);
	}
	int st;
	waitpid(kid, &st, 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(*lock, kid);
	assert_int_equal(bw_spin_lock(lock, getpid(), alive), 0);
	assert_int_equal(*lock, getpid());
	bw_spin_unlock(lock);
	/* and the state behind it keeps working */
	hammer(m, 10);
	assert_int_equal(bw_shm_rules(m)[0].whole.brk.consecutive, 10);
	munmap(m, size);
}

static int64_t ms_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void test_live_holder_is_not_robbed(void **s)
{
	(void)s;
	int lock = getppid();                    /* a live process holds it and never lets go */
	int64_t t0 = ms_now();
	assert_int_equal(bw_spin_lock(&lock, getpid(), alive), -1);
	int64_t waited = ms_now() - t0;
	assert_int_equal(lock, getppid());
	assert_true(waited >= 150 && waited < 5000);     /* bounded, not abandoned at once */
}

/* A holder that keeps the lock far longer than a spin (preempted on a busy machine) is
 * waited for: giving up would lose the update. */
static void test_slow_holder_is_waited_for(void **s)
{
	(void)s;
	int *lock = shared_region(sizeof *lock);
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t kid = fork();
	if (kid == 0) {
		bw_spin_lock(lock, getpid(), alive);
		char c = 1;
		if (write(go[1], &c, 1) != 1)
			_exit(1);
		usleep(60 * 1000);
		bw_spin_unlock(lock);
		_exit(0);
	}
	char c;
	assert_int_equal(read(go[0], &c, 1), 1);
	assert_int_equal(*lock, kid);
	assert_int_equal(bw_spin_lock(lock, getpid(), alive), 0);
	assert_int_equal(*lock, getpid());
	bw_spin_unlock(lock);
	int st;
	waitpid(kid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(go[0]);
	close(go[1]);
	munmap(lock, sizeof *lock);
}

/* A thread that already holds a lock is a signal handler that interrupted the holder:
 * it gets none at once instead of waiting for itself. */
static void test_reentry_gives_up_at_once(void **s)
{
	(void)s;
	int a = 0, b = getppid();
	assert_int_equal(bw_spin_lock(&a, getpid(), alive), 0);
	int64_t t0 = ms_now();
	assert_int_equal(bw_spin_lock(&a, getpid(), alive), -1);
	assert_int_equal(bw_spin_lock(&b, getpid(), alive), -1);
	assert_true(ms_now() - t0 < 100);
	bw_spin_unlock(&a);
	assert_int_equal(bw_spin_lock(&a, getpid(), alive), 0);   /* and works again after */
	bw_spin_unlock(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_round_trip),
		cmocka_unit_test(test_forked_processes_update_together),
		cmocka_unit_test(test_lock_of_a_killed_process_is_taken_over),
		cmocka_unit_test(test_live_holder_is_not_robbed),
		cmocka_unit_test(test_slow_holder_is_waited_for),
		cmocka_unit_test(test_reentry_gives_up_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

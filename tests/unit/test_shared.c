/* The shared state layout: laid out and checked, updated by several forked processes at
 * once, and still usable after a process is killed while it holds a lock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
	assert_int_not_equal(bw_shm_check(m, size, &cfg), 0);      /* laid out, not published */
	bw_shm_publish(m);
	assert_int_equal(bw_shm_check(m, size, &cfg), 0);
	assert_null(bw_shm_verify(m, size));
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
	bw_store_share(e.store, m, getpid(), alive);
	struct bw_call w = { .rule = &rules[0], .op = BW_OP_CONNECT, .key = 1 };
	struct bw_call d = { .rule = &rules[1], .op = BW_OP_CONNECT, .key = 42, .dest = "x:1" };
	for (int i = 0; i < n; i++) {
		bw_engine_settle(&e, &w, ECONNREFUSED);
		bw_engine_settle(&e, &d, ECONNREFUSED);
	}
	bw_engine_fini(&e);
}

struct seen { int n; int consecutive; char label[BW_LABEL_MAX]; };

static void note(const struct bw_cell_view *v, void *arg)
{
	struct seen *s = arg;
	if (v->whole || v->slot != 1)
		return;
	s->n++;
	s->consecutive = v->st->brk.consecutive;
	memcpy(s->label, v->st->label, sizeof s->label);
}

static void test_forked_processes_update_together(void **s)
{
	(void)s;
	make_cfg();
	size_t size = bw_shm_size(&cfg);
	void *m = shared_region(size);
	bw_shm_format(m, size, &cfg, "g", "/p", 0);
	bw_shm_publish(m);
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
	struct bw_store view;
	bw_store_view(&view, m);
	bw_store_snapshot(&view, note, &seen);
	bw_store_fini(&view);
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
	bw_shm_publish(m);
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

/* A fresh, published file for cfg in ordinary memory. */
static void *ready_file(size_t *size)
{
	make_cfg();
	*size = bw_shm_size(&cfg);
	void *m = calloc(1, *size);
	assert_non_null(m);
	bw_shm_format(m, *size, &cfg, "g", "/p", 0);
	bw_shm_publish(m);
	assert_null(bw_shm_verify(m, *size));
	assert_int_equal(bw_shm_check(m, *size, &cfg), 0);
	return m;
}

/* Each way a file can lie about where things are: verify says so (and the library's
 * check with it) instead of anyone reading where the file points. */
static void test_every_offset_and_count_is_checked(void **s)
{
	(void)s;
	size_t size;
	struct bw_shm_header *h;
	struct bw_shm_rule *r;
	void *m;
#define DAMAGED(stmt, why)                                                      \
	do {                                                                    \
		m = ready_file(&size);                                          \
		h = m;                                                          \
		r = bw_shm_rules(m);                                            \
		(void)h;                                                        \
		(void)r;                                                        \
		stmt;                                                           \
		const char *got = bw_shm_verify(m, size);                       \
		assert_non_null(got);                                           \
		assert_non_null(strstr(got, why));                              \
		assert_int_not_equal(bw_shm_check(m, size, &cfg), 0);          \
		free(m);                                                        \
	} while (0)
	DAMAGED(h->rules_off = (uint64_t)1 << 40, "rule table");
	DAMAGED(h->rules_off += 64, "rule table");
	DAMAGED(h->rules_off = UINT64_MAX - 7, "rule table");
	DAMAGED(h->procs_off = (uint64_t)1 << 40, "process table");
	DAMAGED(h->procs_off = 0, "process table");
	DAMAGED(h->n_procs = 1u << 30, "process table");
	DAMAGED(h->n_rules = 1u << 30, "rule table");
	DAMAGED(h->n_rules = 1, "size");
	DAMAGED(h->entry_size = 8, "entry size");
	DAMAGED(h->size = size + 1, "shorter than its header");
	DAMAGED(h->size = size - 64, "a rule's tables");     /* its set locks past the end */
	DAMAGED(h->size = size + 64, "shorter than its header");
	m = ready_file(&size);
	m = realloc(m, size + 64);                   /* the file's end is not the layout's */
	((struct bw_shm_header *)m)->size = size + 64;
	assert_non_null(strstr(bw_shm_verify(m, size + 64), "size"));
	free(m);
	DAMAGED(h->magic = 0, "not ready");
	DAMAGED(h->magic = 1, "bad magic");
	DAMAGED(h->version = 99, "version");
	DAMAGED(r[1].dests_off = (uint64_t)1 << 40, "a rule's tables");
	DAMAGED(r[1].locks_off = r[1].dests_off, "a rule's tables");
	DAMAGED(r[1].sets = 1 << 30, "a rule's tables");
	DAMAGED(r[1].sets = -1, "a rule's tables");
	DAMAGED(r[1].sets = 4, "a rule's tables");
	DAMAGED(r[0].sets = 1, "a rule's tables");
	/* a whole file cut short */
	m = ready_file(&size);
	assert_non_null(bw_shm_verify(m, size - 1));
	assert_non_null(bw_shm_verify(m, sizeof(struct bw_shm_header) - 1));
	free(m);
#undef DAMAGED
}

/* A file of another policy whose layout holds together is not damaged, just not ours. */
static void test_other_policy_is_not_damaged(void **s)
{
	(void)s;
	size_t size;
	void *m = ready_file(&size);
	strcpy(rules[1].name, "other");
	assert_null(bw_shm_verify(m, size));
	assert_int_not_equal(bw_shm_check(m, size, &cfg), 0);
	strcpy(rules[1].name, "dests");
	rules[1].max_keys = 65;                  /* one set more: another size */
	assert_int_not_equal(bw_shm_check(m, size, &cfg), 0);
	free(m);
}

static void test_state_dir_too_long_is_refused_not_cut(void **s)
{
	(void)s;
	static char long_dir[BW_STATE_DIR_MAX + 2], buf[PATH_MAX];
	struct bw_config c = { 0 };
	memset(long_dir, 'd', sizeof long_dir - 1);
	long_dir[0] = '/';
	c.state.dir = long_dir;
	assert_int_equal(bw_state_dir(&c, NULL, 0, buf, sizeof buf), -1);
	assert_string_equal(buf, "");
	long_dir[BW_STATE_DIR_MAX] = '\0';      /* the longest that fits */
	assert_int_equal(bw_state_dir(&c, NULL, 0, buf, sizeof buf), 0);
	assert_string_equal(buf, long_dir);
	char group[BW_GROUP_MAX + 1], path[PATH_MAX];
	memset(group, 'g', BW_GROUP_MAX);
	group[BW_GROUP_MAX] = '\0';
	assert_int_equal(bw_state_path(buf, group, path, sizeof path), 0);
	/* a buffer too small for it is no excuse to cut it */
	char small[64];
	assert_int_equal(bw_state_dir(&c, NULL, 0, small, sizeof small), -1);
	assert_string_equal(small, "");

	/* $XDG_RUNTIME_DIR/bulwark, the same */
	static char xdg[PATH_MAX];
	memset(xdg, 'x', sizeof xdg - 1);
	xdg[0] = '/';
	xdg[BW_STATE_DIR_MAX - 8 + 1] = '\0';  /* "/bulwark" takes it one past */
	assert_int_equal(bw_state_dir(NULL, xdg, 0, buf, sizeof buf), -1);
	xdg[BW_STATE_DIR_MAX - 8] = '\0';
	assert_int_equal(bw_state_dir(NULL, xdg, 0, buf, sizeof buf), 0);
	assert_int_equal(bw_state_dir(NULL, NULL, 1000, buf, sizeof buf), 0);
	assert_string_equal(buf, "/tmp/bulwark-1000");
	assert_int_equal(bw_state_dir(NULL, "", 1000, buf, sizeof buf), 0);
	assert_string_equal(buf, "/tmp/bulwark-1000");
}

static void test_group_names(void **s)
{
	(void)s;
	char buf[BW_GROUP_MAX + 1], other[BW_GROUP_MAX + 1], big[BW_GROUP_MAX + 2];
	int own = -1;
	make_cfg();
	assert_int_equal(bw_group_name(&cfg, "run-1-2", 0, buf, sizeof buf, &own), 0);
	assert_string_equal(buf, "run-1-2");
	assert_int_equal(own, 0);
	assert_int_equal(bw_group_name(&cfg, NULL, 0, buf, sizeof buf, &own), 0);
	assert_int_equal(own, 1);
	assert_int_equal(strncmp(buf, "policy-", 7), 0);
	assert_int_equal(bw_group_name(&cfg, "a/b", 0, other, sizeof other, &own), 0);
	assert_string_equal(other, buf);             /* not a file name: the policy's */
	assert_int_equal(bw_group_name(&cfg, "", 1, other, sizeof other, &own), 0);
	assert_string_not_equal(other, buf);         /* another user's */
	memset(big, 'n', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(bw_group_name(&cfg, big, 0, buf, sizeof buf, &own), -1);
	big[BW_GROUP_MAX] = '\0';
	assert_int_equal(bw_group_name(&cfg, big, 0, buf, sizeof buf, &own), 0);
	char path[32];
	assert_int_equal(bw_state_path("/d", "g", path, sizeof path), 0);
	assert_string_equal(path, "/d/g.state");
	assert_int_equal(bw_state_path("/d", "a-long-name-here-and-on", path, sizeof path), -1);
	assert_string_equal(path, "");
}

static void test_proc_stat_parse(void **s)
{
	(void)s;
	char st = 0;
	unsigned long long t = 0;
	/* starttime is the 22nd field, the 20th after the state */
	const char *ok = "1234 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
			 "987654321 99 100\n";
	assert_int_equal(bw_proc_stat_parse(ok, &st, &t), 0);
	assert_int_equal(st, 'S');
	assert_true(t == 987654321ull);
	assert_int_equal(bw_proc_stat_parse("12 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 5",
					    &st, &t), 0);
	assert_int_equal(st, 'Z');
	assert_true(t == 5);
	assert_int_equal(bw_proc_stat_parse("12 (x) S 1 2", &st, &t), -1);
	assert_int_equal(bw_proc_stat_parse("no paren", &st, &t), -1);
	assert_int_equal(bw_proc_stat_parse("1 (x)", &st, &t), -1);
	assert_int_equal(bw_proc_stat_parse("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
					    "x9", &st, &t), -1);
	/* our own, for real */
	FILE *f = fopen("/proc/self/stat", "r");
	if (f) {
		char line[1024];
		assert_non_null(fgets(line, sizeof line, f));
		fclose(f);
		assert_int_equal(bw_proc_stat_parse(line, &st, &t), 0);
		assert_int_equal(st, 'R');
	}
}


/* ---- bulkhead slots in a group's file: the ledger of each process ---- */

static int member_alive(const void *p)
{
	pid_t pid = ((const struct bw_shm_proc *)p)->pid;
	return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* A store of the group's file as process table entry `proc`, with rule 0 a bulkhead of
 * max 3 over the whole rule and rule 1 one per destination. */
static void join(struct bw_engine *e, void *m, int proc)
{
	bw_engine_init(e, &cfg, &fake_env, getpid(), "p", 1);
	bw_store_share(e->store, m, getpid(), alive);
	bw_shm_procs(m)[proc].pid = getpid();
	e->store->proc = proc;
	e->store->member_alive = member_alive;
}

static void *bulkhead_file(size_t *size)
{
	make_cfg();
	rules[0].concurrency = (struct bw_concurrency){ .enabled = 1, .scope = BW_SCOPE_RULE,
							.max = 3, .max_wait = 1000 };
	rules[1].concurrency = rules[0].concurrency;
	rules[1].concurrency.scope = BW_SCOPE_DEST;
	*size = bw_shm_size(&cfg);
	void *m = shared_region(*size);
	bw_shm_format(m, *size, &cfg, "g", "/p", 0);
	bw_shm_publish(m);
	return m;
}

static int take(struct bw_engine *e, int rule, uint64_t key, int reclaim)
{
	struct bw_ref ref = { e->rt[rule].slot, rules[rule].concurrency.scope, key, NULL, NULL };
	return bw_store_take_slot(e->store, &ref, &rules[rule].concurrency, 1, 0, reclaim);
}

static void give(struct bw_engine *e, int rule, uint64_t key)
{
	struct bw_ref ref = { e->rt[rule].slot, rules[rule].concurrency.scope, key, NULL, NULL };
	bw_store_give_slot(e->store, &ref);
}

static void test_slots_of_a_killed_process_are_counted_back(void **s)
{
	(void)s;
	size_t size;
	void *m = bulkhead_file(&size);
	pid_t kid = fork();
	if (kid == 0) {
		struct bw_engine e;
		join(&e, m, 1);
		int ok = take(&e, 0, 1, 0) == 1 && take(&e, 0, 1, 0) == 1 &&
			 take(&e, 1, 42, 0) == 1 && take(&e, 1, 42, 0) == 1;
		if (!ok)
			_exit(1);
		raise(SIGKILL);              /* dies holding 2 + 2 */
		_exit(1);
	}
	int st;
	waitpid(kid, &st, 0);
	assert_true(WIFSIGNALED(st));
	struct bw_engine e;
	join(&e, m, 0);
	assert_int_equal(bw_shm_rules(m)[0].whole.bulk.in_use, 2);
	assert_int_equal(take(&e, 0, 1, 0), 1);
	assert_int_equal(take(&e, 0, 1, 0), 0);          /* full: 2 of the dead, 1 of ours */
	assert_int_equal(take(&e, 0, 1, 1), 1);          /* counted back: 1 + this one */
	assert_int_equal(bw_shm_rules(m)[0].whole.bulk.in_use, 2);
	/* per destination the same, and the dead process's ledger is empty now */
	assert_int_equal(take(&e, 1, 42, 0), 1);
	assert_int_equal(take(&e, 1, 42, 0), 0);
	assert_int_equal(take(&e, 1, 42, 1), 1);
	for (int i = 0; i < BW_SHM_HELD; i++)
		assert_int_equal(bw_shm_procs(m)[1].held[i].cell, 0);
	bw_engine_fini(&e);
	munmap(m, size);
}

static void test_exit_gives_back_exactly_once(void **s)
{
	(void)s;
	size_t size;
	void *m = bulkhead_file(&size);
	struct bw_engine a, b;
	join(&a, m, 0);
	join(&b, m, 1);
	assert_int_equal(take(&a, 0, 1, 0), 1);
	assert_int_equal(take(&a, 0, 1, 0), 1);
	assert_int_equal(take(&b, 0, 1, 0), 1);
	assert_int_equal(take(&a, 1, 42, 0), 1);
	assert_int_equal(take(&b, 1, 42, 0), 1);
	assert_int_equal(bw_shm_rules(m)[0].whole.bulk.in_use, 3);
	/* a leaves: its slots go back, b's stay */
	bw_store_give_ledger(a.store, 0);
	assert_int_equal(bw_shm_rules(m)[0].whole.bulk.in_use, 1);
	assert_int_equal(take(&b, 1, 42, 0), 1);
	assert_int_equal(take(&b, 1, 42, 0), 1);
	assert_int_equal(take(&b, 1, 42, 0), 0);         /* a's one went back: b holds 3 */
	/* a close another thread of a makes after that gives nothing back twice */
	give(&a, 0, 1);
	give(&a, 1, 42);
	assert_int_equal(bw_shm_rules(m)[0].whole.bulk.in_use, 1);
	assert_int_equal(take(&b, 1, 42, 0), 0);
	/* b's own give does */
	give(&b, 1, 42);
	assert_int_equal(take(&b, 1, 42, 0), 1);
	bw_engine_fini(&a);
	bw_engine_fini(&b);
	munmap(m, size);
}

static void name_of(const void *arg, char *buf, size_t cap)
{
	snprintf(buf, cap, "dest-%d", *(const int *)arg);
}

/* The first BW_MET_DESTS destinations get a row each, the rest one row between them;
 * each call lands in one bucket, by its time. */
static void test_metrics_rows_are_capped(void **s)
{
	(void)s;
	struct bw_shm_met *m = calloc(1, sizeof *m);
	assert_non_null(m);
	for (int round = 0; round < 2; round++)
		for (int d = 0; d < BW_MET_DESTS + 4; d++)
			bw_met_call(m, (uint64_t)d * 7919 + 3, name_of, &d, 3000 * (d + 1), d % 2);
	for (int d = 0; d < BW_MET_DESTS; d++) {
		char want[32];
		snprintf(want, sizeof want, "dest-%d", d);
		assert_string_equal(m->dest[d].label, want);
		assert_int_equal(m->dest[d].calls, 2);
		assert_int_equal(m->dest[d].failed, 2 * (d % 2));
		assert_int_equal(m->dest[d].sum_us, 2 * 3000 * (d + 1));
	}
	struct bw_shm_met_dest *o = &m->dest[BW_MET_DESTS];
	assert_int_equal(o->calls, 2 * 4);
	assert_int_equal(o->label[0], '\0');
	/* 3 ms is within 5 ms (bucket 1), 6 ms within 10 ms (2), 48 ms within 50 ms (4) */
	assert_int_equal(m->dest[0].le[1], 2);
	assert_int_equal(m->dest[1].le[2], 2);
	assert_int_equal(m->dest[15].le[4], 2);
	uint64_t total = 0;
	for (int d = 0; d <= BW_MET_DESTS; d++)
		for (int b = 0; b <= BW_MET_BUCKETS; b++)
			total += m->dest[d].le[b];
	assert_int_equal(total, 2 * (BW_MET_DESTS + 4));
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_round_trip),
		cmocka_unit_test(test_metrics_rows_are_capped),
		cmocka_unit_test(test_forked_processes_update_together),
		cmocka_unit_test(test_lock_of_a_killed_process_is_taken_over),
		cmocka_unit_test(test_live_holder_is_not_robbed),
		cmocka_unit_test(test_slow_holder_is_waited_for),
		cmocka_unit_test(test_reentry_gives_up_at_once),
		cmocka_unit_test(test_every_offset_and_count_is_checked),
		cmocka_unit_test(test_other_policy_is_not_damaged),
		cmocka_unit_test(test_state_dir_too_long_is_refused_not_cut),
		cmocka_unit_test(test_group_names),
		cmocka_unit_test(test_proc_stat_parse),
		cmocka_unit_test(test_slots_of_a_killed_process_are_counted_back),
		cmocka_unit_test(test_exit_gives_back_exactly_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

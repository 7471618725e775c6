/* The table of connects left for the program to finish (shim/net/pending.c, no preload): an
 * entry comes back once, whole, to the first taker; a full table drops what does not
 * fit; threads adding and taking at once never see each other's entries. The table is
 * process-wide: every test leaves it empty. */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>
#include "pending.h"

#define SLOTS 64                    /* the table's size, as pending.c fixes it */

/* Only their addresses are kept: the table never looks inside a rule. */
static const struct bw_rule *rule_no(int n)
{
	static char rules[256];
	return (const struct bw_rule *)(void *)&rules[n];
}

static struct sockaddr_in addr_of(int n)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)n) };
	sin.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)n);
	return sin;
}

static void add(int fd, int n)
{
	struct sockaddr_in sin = addr_of(n);
	bw_pending_add(fd, rule_no(n), (struct sockaddr *)&sin, sizeof sin, 0, 0);
}

/* The entry of fd is the one added as n. */
static void assert_taken(int fd, int n)
{
	struct bw_pending p;
	memset(&p, 0x55, sizeof p);
	assert_int_equal(bw_pending_take(fd, &p), 1);
	struct sockaddr_in sin = addr_of(n);
	assert_ptr_equal(p.rule, rule_no(n));
	assert_int_equal(p.len, sizeof sin);
	assert_memory_equal(&p.addr, &sin, sizeof sin);
}

static void assert_empty(void)
{
	assert_int_equal(bw_pending_any(), 0);
}

static void test_add_take_once(void **st)
{
	(void)st;
	assert_empty();
	add(7, 1);
	assert_int_equal(bw_pending_any(), 1);
	assert_taken(7, 1);
	assert_empty();
	struct bw_pending p;
	assert_int_equal(bw_pending_take(7, &p), 0);          /* once only */
}

/* Taking a descriptor with no entry: 0, out untouched, the others kept. */
static void test_take_missing(void **st)
{
	(void)st;
	struct bw_pending p, before;
	memset(&p, 0x33, sizeof p);
	before = p;
	assert_int_equal(bw_pending_take(5, &p), 0);
	assert_memory_equal(&p, &before, sizeof p);
	add(8, 2);
	assert_int_equal(bw_pending_take(9, &p), 0);
	assert_memory_equal(&p, &before, sizeof p);
	assert_taken(8, 2);
	assert_empty();
}

/* Each descriptor its own entry, in whatever order they are taken. */
static void test_many_descriptors(void **st)
{
	(void)st;
	for (int fd = 100; fd < 110; fd++)
		add(fd, fd - 100);
	for (int fd = 109; fd >= 100; fd -= 2)
		assert_taken(fd, fd - 100);
	for (int fd = 100; fd < 110; fd += 2)
		assert_taken(fd, fd - 100);
	assert_empty();
}

/* The address is copied whole, whatever its family; a length larger than any address
 * is cut to the storage. */
static void test_addresses_copied(void **st)
{
	(void)st;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memset(sun.sun_path, 'x', sizeof sun.sun_path - 1);
	bw_pending_add(11, rule_no(3), (struct sockaddr *)&sun, sizeof sun, 0, 0);
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(5) };
	memset(&sin6.sin6_addr, 0xfe, sizeof sin6.sin6_addr);
	bw_pending_add(12, rule_no(4), (struct sockaddr *)&sin6, sizeof sin6, 0, 0);
	unsigned char big[sizeof(struct sockaddr_storage) + 64];
	memset(big, 0xa5, sizeof big);
	((struct sockaddr *)(void *)big)->sa_family = AF_INET;
	bw_pending_add(13, rule_no(5), (struct sockaddr *)(void *)big, sizeof big, 0, 0);

	struct bw_pending p;
	assert_int_equal(bw_pending_take(11, &p), 1);
	assert_int_equal(p.len, sizeof sun);
	assert_memory_equal(&p.addr, &sun, sizeof sun);
	assert_ptr_equal(p.rule, rule_no(3));
	assert_int_equal(bw_pending_take(12, &p), 1);
	assert_int_equal(p.len, sizeof sin6);
	assert_memory_equal(&p.addr, &sin6, sizeof sin6);
	assert_int_equal(bw_pending_take(13, &p), 1);
	assert_int_equal(p.len, sizeof(struct sockaddr_storage));
	assert_memory_equal(&p.addr, big, sizeof(struct sockaddr_storage));
	assert_empty();
}

/* A descriptor added twice (the program connects again before reading SO_ERROR) has
 * two entries, taken one after the other. */
static void test_same_descriptor_twice(void **st)
{
	(void)st;
	add(20, 1);
	add(20, 2);
	struct bw_pending a, b;
	assert_int_equal(bw_pending_take(20, &a), 1);
	assert_int_equal(bw_pending_take(20, &b), 1);
	assert_true((a.rule == rule_no(1) && b.rule == rule_no(2)) ||
		    (a.rule == rule_no(2) && b.rule == rule_no(1)));
	assert_int_equal(bw_pending_take(20, &a), 0);
	assert_empty();
}

/* Full: what does not fit goes unrecorded, what is there is intact, and the room
 * taking makes is used again. */
static void test_full_table(void **st)
{
	(void)st;
	for (int i = 0; i < SLOTS; i++)
		add(1000 + i, i);
	add(2000, 9);                                    /* no room */
	struct bw_pending p;
	assert_int_equal(bw_pending_take(2000, &p), 0);
	assert_taken(1000 + 17, 17);
	add(2001, 10);                                   /* the freed slot */
	assert_taken(2001, 10);
	for (int i = 0; i < SLOTS; i++)
		if (i != 17)
			assert_taken(1000 + i, i);
	assert_empty();
}

/* The table's two markers for its own slots are not descriptors: a negative number has
 * no entry, and adding one records nothing. */
static void test_negative_descriptors(void **st)
{
	(void)st;
	struct bw_pending p;
	assert_int_equal(bw_pending_take(-1, &p), 0);
	assert_int_equal(bw_pending_take(-2, &p), 0);
	assert_empty();
	add(-1, 1);
	add(-2, 2);
	assert_empty();
	assert_int_equal(bw_pending_take(-1, &p), 0);
	add(30, 3);
	assert_int_equal(bw_pending_take(-1, &p), 0);
	assert_int_equal(bw_pending_any(), 1);
	assert_taken(30, 3);
	assert_empty();
}

#define THREADS 4
#define ROUNDS 5000

static int per_thread;              /* entries each thread has at once */
static int failures[THREADS];

/* Each thread adds and takes descriptors of its own, with its own addresses: a take must
 * find its own entry, whole; with room for all of them (THREADS * per_thread < SLOTS)
 * every take must find one. */
static void *churn(void *arg)
{
	int id = (int)(intptr_t)arg;
	int room = THREADS * per_thread < SLOTS;
	for (int r = 0; r < ROUNDS; r++) {
		int base = 10000 + id * 100;
		for (int k = 0; k < per_thread; k++)
			add(base + k, id * per_thread + k);
		for (int k = per_thread - 1; k >= 0; k--) {
			struct bw_pending p;
			struct sockaddr_in want = addr_of(id * per_thread + k);
			int got = bw_pending_take(base + k, &p);
			if ((!got && room) ||
			    (got && (p.rule != rule_no(id * per_thread + k) ||
				     p.len != sizeof want || memcmp(&p.addr, &want, sizeof want))))
				failures[id]++;
		}
		struct bw_pending p;
		if (bw_pending_take(base, &p) != 0)
			failures[id]++;
	}
	return NULL;
}

static void run_churn(int n)
{
	pthread_t t[THREADS];
	per_thread = n;
	memset(failures, 0, sizeof failures);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(failures[i], 0);
	assert_empty();
}

static void test_concurrent_add_take(void **st)
{
	(void)st;
	run_churn(8);
}

/* More entries than slots: some go unrecorded, none is ever handed to another. */
static void test_concurrent_full_table(void **st)
{
	(void)st;
	run_churn(24);
}

/* Threads racing to take one entry: exactly one gets it, every round. */
static int taken[THREADS];
static pthread_barrier_t go;

static void *taker(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int r = 0; r < ROUNDS / 5; r++) {
		pthread_barrier_wait(&go);
		struct bw_pending p;
		if (bw_pending_take(42, &p))
			taken[id]++;
		pthread_barrier_wait(&go);
	}
	return NULL;
}

static void test_racing_takers(void **st)
{
	(void)st;
	pthread_t t[THREADS];
	pthread_barrier_init(&go, NULL, THREADS + 1);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, taker, (void *)(intptr_t)i);
	for (int r = 0; r < ROUNDS / 5; r++) {
		add(42, 1);
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&go);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	int total = 0;
	for (int i = 0; i < THREADS; i++)
		total += taken[i];
	assert_int_equal(total, ROUNDS / 5);
	assert_empty();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_take_once),
		cmocka_unit_test(test_take_missing),
		cmocka_unit_test(test_many_descriptors),
		cmocka_unit_test(test_addresses_copied),
		cmocka_unit_test(test_same_descriptor_twice),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_negative_descriptors),
		cmocka_unit_test(test_concurrent_add_take),
		cmocka_unit_test(test_concurrent_full_table),
		cmocka_unit_test(test_racing_takers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

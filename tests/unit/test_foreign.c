/* The foreign-library resolver (shim/foreign.c, no preload) against a real library:
 * libsqlite3, loaded here RTLD_LOCAL as Python loads it, so that dlsym(RTLD_NEXT) cannot
 * see it. Finding it by soname and by the caller's own object, optional and missing
 * names, a library that is nowhere, many threads making the first call at once, and the
 * rule that the policy acts on the outermost call only. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "foreign.h"

/* Defined by the library's init.c, which this test does not link. */
__thread volatile int bw_guard_depth __attribute__((tls_model("initial-exec")));

struct fns {
	void *libversion;
	void *step;
	void *absent;
};

#define SYM(field, name, optional) BW_FOREIGN_SYM(struct fns, field, name, optional)

static const struct bw_foreign_sym syms[] = {
	SYM(libversion, "sqlite3_libversion", 0),
	SYM(step, "sqlite3_step", 0),
	SYM(absent, "sqlite3_bulwark_test_absent", 1),
};

static const struct bw_foreign_sym syms_missing[] = {
	SYM(libversion, "sqlite3_libversion", 0),
	SYM(absent, "sqlite3_bulwark_test_absent", 0),
};

static const struct bw_foreign_sym syms_optional_anchor[] = {
	SYM(libversion, "sqlite3_libversion", 1),
};

static const struct bw_foreign_sym syms_nowhere[] = {
	SYM(libversion, "bulwark_test_defined_nowhere", 0),
};

static const char *const sqlite_sonames[] = { "libbulwark-test-absent.so.1", "libsqlite3.so.0",
					      NULL };
static const char *const no_sonames[] = { NULL };

static void *lib_handle;            /* libsqlite3, loaded RTLD_LOCAL */
static void *real_libversion, *real_step;

static int setup(void **st)
{
	(void)st;
	lib_handle = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
	if (lib_handle) {
		real_libversion = dlsym(lib_handle, "sqlite3_libversion");
		real_step = dlsym(lib_handle, "sqlite3_step");
	}
	return 0;
}

#define NEED_SQLITE() \
	do { \
		if (!lib_handle || !real_libversion || !real_step) \
			skip(); \
	} while (0)

static struct bw_foreign descriptor(struct fns *f, const char *const *sonames,
				    const struct bw_foreign_sym *table, size_t n)
{
	memset(f, 0, sizeof *f);
	struct bw_foreign lib = { .sonames = sonames, .syms = table, .n_syms = n, .fns = f };
	return lib;
}

/* A function of the program's: its address is a caller outside the library. */
static void program_function(void) {}
#define PROGRAM ((const void *)(uintptr_t)program_function)

static void assert_caller_state(void)
{
	assert_int_equal(bw_guard_depth, 0);
}

static void test_found_by_soname(void **st)
{
	(void)st;
	NEED_SQLITE();
	/* not in the global scope: RTLD_NEXT cannot find it */
	assert_null(dlsym(RTLD_NEXT, "sqlite3_libversion"));
	struct fns f;
	struct bw_foreign lib = descriptor(&f, sqlite_sonames, syms, BW_FOREIGN_COUNT(syms));
	errno = 77;
	assert_int_equal(bw_foreign_resolve(&lib, NULL), 0);
	assert_int_equal(errno, 77);
	assert_caller_state();
	assert_ptr_equal(f.libversion, real_libversion);
	assert_ptr_equal(f.step, real_step);
	assert_null(f.absent);                  /* optional: left NULL, not a failure */
	assert_int_equal(lib.state, 1);
	assert_true(lib.n_ranges > 0);
	/* once resolved, it stays so, whoever asks */
	assert_int_equal(bw_foreign_resolve(&lib, PROGRAM), 0);
}

/* No soname known: the caller's own object (here the library itself) and its
 * dependencies are searched. */
static void test_found_from_the_caller(void **st)
{
	(void)st;
	NEED_SQLITE();
	struct fns f;
	struct bw_foreign lib = descriptor(&f, no_sonames, syms, BW_FOREIGN_COUNT(syms));
	assert_int_equal(bw_foreign_resolve(&lib, real_step), 0);
	assert_ptr_equal(f.libversion, real_libversion);
	assert_ptr_equal(f.step, real_step);
	struct fns g;
	struct bw_foreign nolist = descriptor(&g, NULL, syms, BW_FOREIGN_COUNT(syms));
	assert_int_equal(bw_foreign_resolve(&nolist, real_libversion), 0);
	assert_ptr_equal(g.step, real_step);
}

/* Without a soname and from a caller that does not use the library: nowhere to find
 * it. The verdict is kept: later calls fail at once, never through NULL. */
static void test_not_found(void **st)
{
	(void)st;
	struct fns f;
	struct bw_foreign lib = descriptor(&f, no_sonames, syms, BW_FOREIGN_COUNT(syms));
	errno = 5;
	assert_int_equal(bw_foreign_resolve(&lib, PROGRAM), -1);
	assert_int_equal(errno, 5);
	assert_caller_state();
	assert_int_equal(lib.state, -1);
	assert_null(f.libversion);
	assert_int_equal(bw_foreign_resolve(&lib, lib_handle ? real_step : NULL), -1);

	struct bw_foreign nowhere = descriptor(&f, sqlite_sonames, syms_nowhere,
					       BW_FOREIGN_COUNT(syms_nowhere));
	assert_int_equal(bw_foreign_resolve(&nowhere, NULL), -1);
	assert_int_equal(nowhere.n_ranges, 0);
}

/* A name that is not optional and missing: the library is not usable at all, rather
 * than half usable. */
static void test_missing_name_fails_the_library(void **st)
{
	(void)st;
	NEED_SQLITE();
	struct fns f;
	struct bw_foreign lib = descriptor(&f, sqlite_sonames, syms_missing,
					   BW_FOREIGN_COUNT(syms_missing));
	assert_int_equal(bw_foreign_resolve(&lib, NULL), -1);
	assert_null(f.libversion);
	assert_null(f.absent);
}

/* The anchor decides which object is the library: it cannot be optional. An empty or
 * oversized table is refused too. */
static void test_bad_descriptors(void **st)
{
	(void)st;
	struct fns f;
	struct bw_foreign lib = descriptor(&f, sqlite_sonames, syms_optional_anchor,
					   BW_FOREIGN_COUNT(syms_optional_anchor));
	assert_int_equal(bw_foreign_resolve(&lib, NULL), -1);
	struct bw_foreign empty = descriptor(&f, sqlite_sonames, syms, 0);
	assert_int_equal(bw_foreign_resolve(&empty, NULL), -1);
	struct bw_foreign big = descriptor(&f, sqlite_sonames, syms, BW_FOREIGN_MAX_SYMS + 1);
	assert_int_equal(bw_foreign_resolve(&big, NULL), -1);
}

static void test_internal_calls(void **st)
{
	(void)st;
	NEED_SQLITE();
	struct fns f;
	struct bw_foreign lib = descriptor(&f, sqlite_sonames, syms, BW_FOREIGN_COUNT(syms));
	assert_int_equal(bw_foreign_resolve(&lib, NULL), 0);
	assert_int_equal(bw_foreign_internal(&lib, real_step), 1);
	assert_int_equal(bw_foreign_internal(&lib, (const char *)real_libversion + 1), 1);
	assert_int_equal(bw_foreign_internal(&lib, PROGRAM), 0);
	assert_int_equal(bw_foreign_internal(&lib, NULL), 0);
	assert_int_equal(bw_foreign_internal(&lib, (const void *)&errno), 0);
}

#define RACERS 6
#define RACES 40

static struct bw_foreign race_lib;
static struct fns race_fns;
static pthread_barrier_t race_start;
static int race_rc[RACERS];
static void *race_seen[RACERS];

static void *racer(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int r = 0; r < RACES; r++) {
		pthread_barrier_wait(&race_start);
		race_rc[id] |= bw_foreign_resolve(&race_lib, NULL);
		race_seen[id] = race_fns.step;
		pthread_barrier_wait(&race_start);
	}
	return NULL;
}

/* Many threads making the library's first call at once: every one of them gets the
 * whole table, none waits on a lock, the table is written once. */
static void test_first_calls_race(void **st)
{
	(void)st;
	NEED_SQLITE();
	pthread_t t[RACERS];
	pthread_barrier_init(&race_start, NULL, RACERS + 1);
	memset(race_rc, 0, sizeof race_rc);
	for (int i = 0; i < RACERS; i++)
		pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i);
	for (int r = 0; r < RACES; r++) {
		race_lib = descriptor(&race_fns, sqlite_sonames, syms, BW_FOREIGN_COUNT(syms));
		pthread_barrier_wait(&race_start);
		pthread_barrier_wait(&race_start);
		assert_int_equal(race_lib.state, 1);
		for (int i = 0; i < RACERS; i++)
			assert_ptr_equal(race_seen[i], real_step);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&race_start);
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(race_rc[i], 0);
}

/* ---- the policy acts on the outermost call only ---- */

static struct bw_foreign depth_lib;
static struct fns depth_fns;
BW_FOREIGN_DEPTH(depth);

static const void *inside(void)
{
	return real_step;
}

static int depth_setup(void **st)
{
	(void)st;
	if (!lib_handle)
		return 0;
	depth_lib = descriptor(&depth_fns, sqlite_sonames, syms, BW_FOREIGN_COUNT(syms));
	return bw_foreign_resolve(&depth_lib, NULL);
}

static void assert_depth_zero(void)
{
	assert_int_equal(depth.acting, 0);
	assert_int_equal(depth.app_wrap, 0);
	assert_int_equal(depth.lib_wrap, 0);
}

/* The program's call is acted on; anything made while it runs is not, whoever makes it;
 * the library's own calls never are. */
static void test_outermost_program_call(void **st)
{
	(void)st;
	NEED_SQLITE();
	int outer = bw_foreign_enter(&depth_lib, &depth, PROGRAM);
	assert_int_equal(outer, 1);
	int nested = bw_foreign_enter(&depth_lib, &depth, PROGRAM);     /* a callback */
	assert_int_equal(nested, 0);
	bw_foreign_leave(&depth, nested);
	int own = bw_foreign_enter(&depth_lib, &depth, inside());
	assert_int_equal(own, 0);
	bw_foreign_leave(&depth, own);
	bw_foreign_leave(&depth, outer);
	assert_depth_zero();
	/* the next call of the program's is outermost again */
	int next = bw_foreign_enter(&depth_lib, &depth, PROGRAM);
	assert_int_equal(next, 1);
	bw_foreign_leave(&depth, next);
	/* the library's own call, outside any wrapper: never */
	own = bw_foreign_enter(&depth_lib, &depth, inside());
	assert_int_equal(own, 0);
	bw_foreign_leave(&depth, own);
	assert_depth_zero();
}

/* A wrapper the program calls (sqlite3_exec): the calls it makes to the library's API
 * are the program's, one by one; a wrapper the library calls for itself (schema loading
 * inside them) is not, nor are its calls. */
static void test_wrappers(void **st)
{
	(void)st;
	NEED_SQLITE();
	int w = bw_foreign_wrap_enter(&depth_lib, &depth, PROGRAM);
	assert_int_equal(w, 0);
	for (int stmt = 0; stmt < 3; stmt++) {
		int a = bw_foreign_enter(&depth_lib, &depth, inside());
		assert_int_equal(a, 1);
		/* inside that statement the library runs a wrapper of its own */
		int iw = bw_foreign_wrap_enter(&depth_lib, &depth, inside());
		assert_int_equal(iw, 1);
		int b = bw_foreign_enter(&depth_lib, &depth, inside());
		assert_int_equal(b, 0);
		bw_foreign_leave(&depth, b);
		bw_foreign_wrap_leave(&depth, iw);
		bw_foreign_leave(&depth, a);
	}
	/* a wrapper of the library's own, straight inside the program's wrapper */
	int iw = bw_foreign_wrap_enter(&depth_lib, &depth, inside());
	int b = bw_foreign_enter(&depth_lib, &depth, inside());
	assert_int_equal(b, 0);
	bw_foreign_leave(&depth, b);
	bw_foreign_wrap_leave(&depth, iw);
	bw_foreign_wrap_leave(&depth, w);
	assert_depth_zero();
	/* a wrapper the program calls while a call of its is acted on: nothing inside */
	int a = bw_foreign_enter(&depth_lib, &depth, PROGRAM);
	w = bw_foreign_wrap_enter(&depth_lib, &depth, PROGRAM);
	b = bw_foreign_enter(&depth_lib, &depth, inside());
	assert_int_equal(b, 0);
	bw_foreign_leave(&depth, b);
	bw_foreign_wrap_leave(&depth, w);
	bw_foreign_leave(&depth, a);
	assert_depth_zero();
}

static int other_thread_entered = -1;

static void *enter_elsewhere(void *arg)
{
	(void)arg;
	other_thread_entered = bw_foreign_enter(&depth_lib, &depth, PROGRAM);
	bw_foreign_leave(&depth, other_thread_entered);
	return NULL;
}

/* The depth is per thread: another thread's call is outermost on its own thread. */
static void test_depth_is_per_thread(void **st)
{
	(void)st;
	NEED_SQLITE();
	int a = bw_foreign_enter(&depth_lib, &depth, PROGRAM);
	assert_int_equal(a, 1);
	pthread_t t;
	pthread_create(&t, NULL, enter_elsewhere, NULL);
	pthread_join(t, NULL);
	assert_int_equal(other_thread_entered, 1);
	bw_foreign_leave(&depth, a);
	assert_depth_zero();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_by_soname),
		cmocka_unit_test(test_found_from_the_caller),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_missing_name_fails_the_library),
		cmocka_unit_test(test_bad_descriptors),
		cmocka_unit_test(test_internal_calls),
		cmocka_unit_test(test_first_calls_race),
		cmocka_unit_test_setup(test_outermost_program_call, depth_setup),
		cmocka_unit_test_setup(test_wrappers, depth_setup),
		cmocka_unit_test_setup(test_depth_is_per_thread, depth_setup),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
